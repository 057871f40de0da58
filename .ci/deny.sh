#!/usr/bin/env bash
# cargo-deny (configured in deny.toml): licences (no GPL, LGPL or AGPL), bans and sources on
# every run; known vulnerabilities (RustSec advisories) against the RustSec database. That
# database is a GitHub repository, which these CI machines cannot reach: when fetching fails
# the check uses a local copy (SIPAS_ADVISORY_DB, a git repository of
# github.com/RustSec/advisory-db, for instance a mirror) and prints how old it is, or says
# plainly that advisories were not checked.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
tools="${SIPAS_TOOLS:-$HOME/.cache/sipas-tools}"
deny="$tools/bin/cargo-deny"
if ! "$deny" deny --version 2>/dev/null | grep -q "$version"; then
  cargo install --quiet --locked cargo-deny --version "$version" --root "$tools"
fi
# cargo-deny reads metadata for every target platform offline; a build fetches only this
# host's crates, so fetch the rest (from crates.io, which CI can reach) first.
cargo fetch --locked --quiet
"$deny" deny --offline check licenses bans sources

# Where cargo-deny keeps the default database (named after its URL).
db="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691"
mirror="${SIPAS_ADVISORY_DB:-/work/.mirror/rustsec+advisory-db/repo}"
if ! timeout 60 "$deny" deny fetch db >/dev/null 2>&1 || [ ! -d "$db/crates" ]; then
  if [ -d "$mirror" ]; then
    rm -rf "$db" && mkdir -p "$(dirname "$db")" && git clone --quiet "$mirror" "$db"
  fi
fi
if [ -d "$db/crates" ]; then
  echo "advisories: RustSec database last changed $(git -C "$db" log -1 --format=%cs)"
  "$deny" deny --offline check advisories
else
  echo "advisories: NOT CHECKED - the RustSec database cannot be fetched here and no local copy was found"
fi
