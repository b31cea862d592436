#!/usr/bin/env bash
# CI: the checked-in bindgen output in hotline-sys matches a fresh generation, and the
# DAHDI ioctl numbers and struct sizes match the C header. Run as root under CI=true it
# installs what it needs (Debian: dahdi-source, libclang-dev). Called by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ]; then
  need=()
  [ -f /usr/src/dahdi.tar.bz2 ] || need+=(dahdi-source)
  command -v bzip2 >/dev/null 2>&1 || need+=(bzip2)
  ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
  [ -f /usr/include/libpri.h ] || need+=(libpri-dev)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

[ -f /usr/src/dahdi.tar.bz2 ] || {
  echo "check-bindings: no /usr/src/dahdi.tar.bz2: apt-get install dahdi-source libclang-dev bzip2" >&2
  exit 1
}
# One unpacked copy of DAHDI's headers for both checks.
hdr=$(mktemp -d)
trap 'rm -rf "$hdr"' EXIT
tar -xjf /usr/src/dahdi.tar.bz2 -C "$hdr" --wildcards '*/include/dahdi/*.h'
export HOTLINE_DAHDI_INCLUDE_DIR="$hdr/modules/dahdi/include"
[ -f "$HOTLINE_DAHDI_INCLUDE_DIR/dahdi/user.h" ] || { echo "check-bindings: no dahdi/user.h in dahdi-source" >&2; exit 1; }

echo "== DAHDI: checked-in bindings vs bindgen; ioctl numbers and struct sizes vs the C header"
CI=true cargo test -q -p hotline-sys --features bindgen,dahdi --test dahdi_bindings --test dahdi_abi

echo "== libpri: checked-in bindings vs bindgen; the library links and talks through our callbacks"
CI=true cargo test -q -p hotline-sys --features bindgen,libpri --test libpri_bindings --test libpri_link
