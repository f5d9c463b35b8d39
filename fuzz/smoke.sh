#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 30), after replaying the
# inputs under fuzz/regressions/<target>/ (each one once crashed that target).
# Installs cargo-fuzz when missing. Uses the nightly toolchain with AddressSanitizer
# when one is installed, else the default toolchain without a sanitizer (the crates
# forbid unsafe code; the fuzzers look for panics and broken invariants).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz=(cargo +nightly fuzz)
  san=()
else
  fuzz=(cargo fuzz)
  san=(-s none)
fi

"${fuzz[@]}" build "${san[@]}"
for t in $(cargo fuzz list); do
  mkdir -p "corpus/$t"
  if [ -d "regressions/$t" ]; then
    echo "-- $t: replaying regressions/$t"
    "${fuzz[@]}" run "${san[@]}" "$t" regressions/"$t"/* -- -runs=1
  fi
  seeds=()
  case "$t" in
    parse_write|shield) seeds=(../tests/corpus) ;;
    media) seeds=(seeds/media) ;;
  esac
  echo "-- $t: ${secs} s"
  log="$(mktemp)"
  if ! "${fuzz[@]}" run "${san[@]}" "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -max_len=4096 -len_control=0 -dict=sip.dict \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $t failed (the input is under fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|Done)' "$log" || true
  rm -f "$log"
done
