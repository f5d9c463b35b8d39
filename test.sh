#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine with only the Rust toolchain.
# Installs what the tests need (SIPp from the sip-tester package, openssl for the TLS
# test certificate, baresip and Linphone for the interoperability tests, SIPVicious for the
# scanner-detection test, Go and its golang.org/x/mod for the evidence-log verifier nobody
# here wrote, python3 for the corpus extraction check, sngrep and tshark as the HEP capture
# readers nobody here wrote, Prometheus and promtool for the metrics, Chromium and
# playwright-core from npm for the dashboard), then runs every test of the workspace.
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
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

# the dashboard's browser driver, at the version its lock file names
if [ ! -d crates/palisade/tests/dashboard/node_modules/playwright-core ]; then
  (cd crates/palisade/tests/dashboard && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo test --workspace --locked "$@"
