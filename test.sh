#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with only the Rust toolchain.
# Installs what the tests need (SIPp from the sip-tester package, openssl for the TLS
# test certificate, baresip and Linphone for the interoperability tests, SIPVicious for the
# scanner-detection test, Go and its golang.org/x/mod for the evidence-log verifier nobody
# here wrote, python3 for the corpus extraction check, sngrep and tshark as the HEP capture
# readers nobody here wrote, Prometheus and promtool for the metrics, Chromium and
# playwright-core from npm for the dashboard and the softphone, JsSIP and esbuild from npm
# for the softphone's bundle, PostgreSQL for the store's shared suite and
# the cluster tests, procps for stopping background SIPp runs),
# starts a private PostgreSQL server, then runs every test of the workspace.
# Everything the tests read is in the repository (tests/corpus, bench/harness).
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v baresip >/dev/null 2>&1 || need+=(baresip-core)
command -v linphone-daemon >/dev/null 2>&1 || need+=(linphone-cli)
command -v svmap >/dev/null 2>&1 || need+=(sipvicious)
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] || need+=(golang-golang-x-mod-dev)
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v sngrep >/dev/null 2>&1 || need+=(sngrep)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v pkill >/dev/null 2>&1 || need+=(procps)
# Debian keeps PostgreSQL's programs out of PATH, under /usr/lib/postgresql/VERSION/bin
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

# the dashboard's and softphone's browser driver, at the version its lock file names
if [ ! -d crates/palisade/tests/dashboard/node_modules/playwright-core ]; then
  (cd crates/palisade/tests/dashboard && npm ci --no-audit --no-fund --loglevel=error)
fi
# JsSIP and esbuild, at the versions their lock file names: a test rebuilds the
# softphone's committed bundle (crates/palisade/assets/jssip.js) and compares
if [ ! -d crates/palisade/phone/node_modules/jssip ]; then
  (cd crates/palisade/phone && npm ci --no-audit --no-fund --loglevel=error)
fi

# A private PostgreSQL server for the store's suite (crates/store/tests/storage_suite.rs):
# its own data and socket directory under a fresh temporary one, on 127.0.0.1 and a free
# port, trust authentication, no fsync (nothing here outlives the run); stopped and
# removed when this script exits, however it exits. Run as root, it runs as the
# `postgres` user (the server refuses root).
pg_dir="$(mktemp -d "${TMPDIR:-/tmp}/palisade-pg.XXXXXX")"
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_stop() {
  if [ -f "$pg_dir/data/postmaster.pid" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$pg_dir"
}
trap pg_stop EXIT
trap 'exit 130' INT TERM
[ "$(id -u)" -eq 0 ] && chown postgres: "$pg_dir"
pg_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg "$(pg_bin)/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
if ! as_pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$pg_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null; then
  cat "$pg_dir/server.log" >&2
  exit 1
fi
as_pg "$(pg_bin)/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres palisade_test
export PALISADE_TEST_PG_URL="postgres://postgres@127.0.0.1:$pg_port/palisade_test"
echo "PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') for the tests: $PALISADE_TEST_PG_URL"

cargo test --workspace --locked "$@"
