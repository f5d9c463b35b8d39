#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with only the Rust toolchain.
# Installs what the tests need (nothing outside Cargo yet), then runs every test.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -d ../shared/corpus ]; then
  echo "test.sh: ../shared/corpus is missing (the peer corpus lives beside the project)" >&2
  exit 2
fi

cargo test --workspace --locked "$@"
