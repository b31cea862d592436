#!/usr/bin/env bash
# The README's two commands on a clean clone, on a machine with only Rust and a C
# compiler: the committed tree is cloned into a scratch directory and run with a PATH
# that holds Rust's tools, the C compiler and the basic shell tools and nothing else
# (no espeak-ng, sox, chromium, python, node, pkg-config, ...): a test that needs one
# of those fails here. HOME is a scratch directory too (cargo's and rustup's own homes
# are kept, so the registry cache and the toolchain are found).
#
#   bash .ci/fresh-clone.sh            # both commands
#   DEMO_ONLY=1 bash .ci/fresh-clone.sh
#
# CARGO_TARGET_DIR is honoured (a warm target directory saves compiling the
# dependencies again); by default the clone builds into its own target/.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

git clone -q --no-hardlinks "$repo" "$scratch/hotline"
# Only what Rust and a C compiler bring, and the shell's basic tools.
bin="$scratch/bin"
mkdir -p "$bin"
need=(cargo rustc rustdoc cc gcc c++ g++ ld as ar ranlib strip
      sh bash env cat ls mkdir rm cp mv ln chmod dirname basename uname tr sed grep head tail sort
      wc date sleep true false test expr id mktemp touch readlink printf echo)
for t in "${need[@]}"; do
  p="$(command -v "$t" 2>/dev/null || true)"
  [ -n "$p" ] && [ -x "$p" ] && ln -sf "$(readlink -f "$p")" "$bin/$t"
done
# rustup's cargo/rustc are proxies that need rustup and the toolchain's own bin.
if command -v rustup >/dev/null 2>&1; then
  toolchain_bin="$(dirname "$(rustup which rustc)")"
  for t in cargo rustc rustdoc; do ln -sf "$toolchain_bin/$t" "$bin/$t"; done
fi
for t in espeak-ng sox chromium chromium-browser python3 node pkg-config; do
  if [ -e "$bin/$t" ]; then echo "fresh-clone: $t must not be on the PATH" >&2; exit 1; fi
done

mkdir -p "$scratch/home"
run() {
  (cd "$scratch/hotline" && env -i HOME="$scratch/home" PATH="$bin" \
     CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
     ${CARGO_TARGET_DIR:+CARGO_TARGET_DIR="$CARGO_TARGET_DIR"} "$@")
}

echo "== fresh clone in $scratch/hotline; PATH holds: $(ls "$bin" | tr '\n' ' ')"
echo "== cargo run --release -p hotline -- demo --duration 20 --plain"
run cargo run -q --release -p hotline -- demo --duration 20 --plain | tee "$scratch/demo.out"
grep -q "agent 1001" "$scratch/demo.out"
grep -q "calls" "$scratch/demo.out"
if [ "${DEMO_ONLY:-}" != 1 ]; then
  echo "== cargo test --workspace"
  run cargo test --workspace
fi
echo "== fresh clone: the README's commands passed with only Rust and a C compiler"
