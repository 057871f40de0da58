#!/usr/bin/env bash
# The whole test suite. Installs what the tests need when it is missing (a Python virtual
# environment with aiosmtpd, a real SMTP server, and openapi-spec-validator; Debian's
# Chromium and poppler-utils; Node.js, npm and a C compiler; the browser-test npm packages
# from their lock file), then runs `cargo test`.
# On PostgreSQL: TEST_DATABASE_URL=postgres://user@host/db scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sipas-target}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages the tests need, installed in one go when something is missing: Chromium
# for the browser tests, Node.js and npm to drive it, a C compiler for the crates that build
# C code (SQLite, ring), python3-venv for the Python tools below.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
# The console's printed report is checked in the PDF Chromium prints (pdftotext, pdftoppm).
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
if [ "${#missing[@]}" -gt 0 ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Python test tools live in a virtual environment of their own: Debian's python3 refuses
# `pip install` into the system (PEP 668). The tests find its interpreter in SIPAS_PYTHON.
# Exact versions, so a new release cannot change what the tests check.
venv="${SIPAS_VENV:-$HOME/.cache/sipas-venv}"
python_tools="aiosmtpd==1.4.6 openapi-spec-validator==0.9.0 PyYAML==6.0.4"
if [ "$(cat "$venv/.tools" 2>/dev/null)" != "$python_tools" ] || ! "$venv/bin/python" -c 'import aiosmtpd, openapi_spec_validator, yaml' 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086 # one word per package
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $python_tools
  echo "$python_tools" > "$venv/.tools"
fi
export SIPAS_PYTHON="$venv/bin/python"
if [ ! -d tests/browser/node_modules/playwright-core ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules ]; then
  # Nothing here downloads a browser: the tests use Debian's Chromium.
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
export SIPAS_SCREENSHOTS="${SIPAS_SCREENSHOTS:-$PWD/screenshots}"
cargo test --workspace --locked "$@"
echo "browser screenshots and the Lighthouse report: $SIPAS_SCREENSHOTS"
