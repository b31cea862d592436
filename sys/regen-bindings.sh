#!/usr/bin/env bash
# Regenerates the checked-in bindgen output of every interface in hotline-sys and copies
# it over the files in src/. Needs libclang (Debian: libclang-dev) and each interface's
# header package (below). Run from anywhere; review `git diff` afterwards.
set -euo pipefail
cd "$(dirname "$0")"
out_dir() { # the OUT_DIR of the newest hotline-sys build that wrote file $1
  ls -t ../target/debug/build/hotline-sys-*/out/"$1" 2>/dev/null | head -1
}

# --- DAHDI: include/dahdi/user.h from dahdi-source (/usr/src/dahdi.tar.bz2), or a folder
# given in HOTLINE_DAHDI_INCLUDE_DIR. -----------------------------------------------------
cargo build -q -p hotline-sys --features bindgen,dahdi
fresh=$(out_dir dahdi_bindings.rs)
[ -n "$fresh" ] || { echo "regen-bindings: the build wrote no dahdi_bindings.rs" >&2; exit 1; }
cp "$fresh" src/dahdi/bindings.rs
echo "regen-bindings: src/dahdi/bindings.rs <- $fresh"

# --- libpri: filled in by the `pri` branch (libpri-dev). ----------------------------------
cargo build -q -p hotline-sys --features bindgen,libpri
fresh=$(out_dir libpri_bindings.rs)
[ -n "$fresh" ] || { echo "regen-bindings: the build wrote no libpri_bindings.rs" >&2; exit 1; }
cp "$fresh" src/libpri/bindings.rs
echo "regen-bindings: src/libpri/bindings.rs <- $fresh"
