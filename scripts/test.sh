#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing (aiosmtpd, a real
# SMTP server; Debian's Chromium; the browser-test npm packages from their lock file), then
# runs `cargo test`. On PostgreSQL: TEST_DATABASE_URL=postgres://user@host/db scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check aiosmtpd
if ! command -v chromium >/dev/null 2>&1; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The console's printed report is checked in the PDF Chromium prints (pdftotext, pdftoppm).
if ! command -v pdftotext >/dev/null 2>&1; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules ]; then
  # Nothing here downloads a browser: the tests use Debian's Chromium.
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
export SIPAS_SCREENSHOTS="${SIPAS_SCREENSHOTS:-$PWD/screenshots}"
cargo test --workspace --locked "$@"
echo "browser screenshots and the Lighthouse report: $SIPAS_SCREENSHOTS"
