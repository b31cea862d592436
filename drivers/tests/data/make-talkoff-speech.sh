#!/usr/bin/env bash
# Regenerates drivers/tests/data/talkoff-speech.wav, the speech the DTMF talk-off test
# ships with: the passages in drivers/tests/speech/mod.rs (SHIPPED) spoken by espeak-ng
# (apt-get install espeak-ng), 8 kHz A-law. See docs/dsp.md.
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v espeak-ng >/dev/null || { echo "espeak-ng is not installed (apt-get install espeak-ng)" >&2; exit 1; }
cargo run -q -p hotline-drivers --example make_talkoff_speech -- drivers/tests/data/talkoff-speech.wav
