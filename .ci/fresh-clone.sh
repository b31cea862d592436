#!/usr/bin/env bash
# The README's two commands on a clean clone, on a machine with only Rust and a C
# compiler: the committed tree is cloned into a scratch directory and run with a PATH
# that holds the base system's tools, Rust and the C compiler, and none of espeak-ng,
# sox, chromium, python, node or pkg-config: a test that needs one of those fails here.
# HOME is a scratch directory too (cargo's and rustup's own homes are kept, so the
# registry cache and the toolchain are found).
#
#   bash .ci/fresh-clone.sh            # both commands, on a clone of the committed tree
#   DEMO_ONLY=1 bash .ci/fresh-clone.sh
#   IN_PLACE=1 bash .ci/fresh-clone.sh # in this checkout (CI's checkout is a clean clone)
#
# CARGO_TARGET_DIR is honoured (a warm target directory saves compiling the
# dependencies again); by default the clone builds into its own target/.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

if [ "${IN_PLACE:-}" = 1 ]; then
  work="$repo"
else
  work="$scratch/hotline"
  git clone -q --no-hardlinks "$repo" "$work"
fi
# The base system's tools (make, awk, ... which C build scripts use) and Rust's, but none
# of the extras a test might lean on: a test that needs one of those fails here.
bin="$scratch/bin"
mkdir -p "$bin"
extras=" espeak-ng espeak sox play rec chromium chromium-browser chromedriver google-chrome
  python python3 node nodejs npm npx pkg-config pkgconf x86_64-linux-gnu-pkg-config "
for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
  [ -d "$dir" ] || continue
  for p in "$dir"/*; do
    t="$(basename "$p")"
    case "$extras" in *" $t "*) continue ;; esac
    case "$t" in python3*|python2*) continue ;; esac
    [ -e "$bin/$t" ] || { [ -x "$p" ] && [ ! -d "$p" ] && ln -s "$p" "$bin/$t"; } || true
  done
done
# rustup's cargo/rustc are proxies that need rustup and the toolchain's own bin.
for t in cargo rustc rustdoc rustup; do
  p="$(command -v "$t" 2>/dev/null || true)"
  [ -n "$p" ] && ln -sf "$p" "$bin/$t"
done
if command -v rustup >/dev/null 2>&1; then
  toolchain_bin="$(dirname "$(rustup which rustc)")"
  for t in cargo rustc rustdoc; do ln -sf "$toolchain_bin/$t" "$bin/$t"; done
fi
for t in espeak-ng sox chromium chromium-browser python3 node pkg-config; do
  if [ -e "$bin/$t" ]; then echo "fresh-clone: $t must not be on the PATH" >&2; exit 1; fi
done

mkdir -p "$scratch/home"
run() {
  (cd "$work" && env -i HOME="$scratch/home" PATH="$bin" \
     CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
     ${CARGO_TARGET_DIR:+CARGO_TARGET_DIR="$CARGO_TARGET_DIR"} \
     ${CARGO_INCREMENTAL:+CARGO_INCREMENTAL="$CARGO_INCREMENTAL"} ${CI:+CI="$CI"} "$@")
}

echo "== fresh clone in $work; PATH: the base system's $(ls "$bin" | wc -l) tools, without espeak-ng, sox, chromium, python, node or pkg-config"
if [ "${DEMO_ONLY:-}" != 1 ]; then
  echo "== cargo test --workspace"
  run cargo test --workspace
fi
echo "== cargo run --release -p hotline -- demo --duration 20 --plain"
run cargo run -q --release -p hotline -- demo --duration 20 --plain | tee "$scratch/demo.out"
grep -q "agent 1001" "$scratch/demo.out" || { echo "fresh-clone: the demo did not print agent 1001's seat" >&2; exit 1; }
grep -q "calls" "$scratch/demo.out" || { echo "fresh-clone: the demo printed no calls" >&2; exit 1; }
echo "== fresh clone: the README's commands passed with only Rust and a C compiler"
