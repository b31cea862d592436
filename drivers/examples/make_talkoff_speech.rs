//! Writes the speech the DTMF talk-off test ships with (`drivers/tests/data/talkoff-speech.wav`):
//! the passages in `drivers/tests/speech/mod.rs` (`SHIPPED`) spoken by espeak-ng, each
//! set to an active level of -16 dBm0, 300 ms of silence between them, 8 kHz A-law.
//! `drivers/tests/data/make-talkoff-speech.sh` runs it; it needs espeak-ng.
//!
//!     cargo run -p hotline-drivers --example make_talkoff_speech -- OUT.wav

#[path = "../tests/speech/mod.rs"]
mod speech;

use hotline_drivers::dsp::wav::{write_wav_file, Encoding};
use hotline_drivers::SAMPLE_RATE;

fn main() {
    let Some(out) = std::env::args().nth(1) else {
        eprintln!("usage: make_talkoff_speech OUT.wav");
        std::process::exit(2);
    };
    if !speech::espeak_present() {
        eprintln!("make_talkoff_speech: espeak-ng is not installed (apt-get install espeak-ng)");
        std::process::exit(1);
    }
    let gap = vec![0i16; speech::GAP_MS * SAMPLE_RATE as usize / 1000];
    let mut all = Vec::new();
    for &(voice, wpm, pitch, text) in speech::SHIPPED {
        let pcm = speech::at_level(&speech::speak(voice, wpm, pitch, text), -16.0);
        println!("{voice:<12} {:5.1} s", pcm.len() as f64 / f64::from(SAMPLE_RATE));
        all.extend_from_slice(&pcm);
        all.extend_from_slice(&gap);
    }
    if let Err(e) = write_wav_file(&out, SAMPLE_RATE, 1, Encoding::Alaw, &all) {
        eprintln!("make_talkoff_speech: cannot write {out}: {e}");
        std::process::exit(1);
    }
    println!("{out}: {:.1} s of speech, 8 kHz A-law", all.len() as f64 / f64::from(SAMPLE_RATE));
}
