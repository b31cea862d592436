#!/usr/bin/env bash
# CI: the web pages in a real headless browser (tests/browser). Under CI=true as root
# it installs Debian's chromium and the pinned node packages (playwright-core drives
# the system chromium; no browser is downloaded). Called by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ]; then
  need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
  if [ ${#need[@]} -gt 0 ]; then
    echo "== apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

command -v chromium >/dev/null 2>&1 || { echo "browser tests: no chromium: apt-get install chromium" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "browser tests: no npm: apt-get install nodejs npm" >&2; exit 1; }

echo "== browser tests: npm ci"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
echo "== browser tests: build the web fixture"
cargo build -q -p hotline-cti --example web_fixture
echo "== browser tests: chromium"
(cd tests/browser && npm test)
echo "== browser tests: a person at the desk during hotline demo (release build)"
cargo build -q --release -p hotline
(cd tests/browser && npm run demo)
