#!/usr/bin/env bash
# Checks the Helm chart offline, with no helm binary and no cluster (see scripts/check_chart.py
# for what is checked). The tools come from PyPI, pinned, into .venv-chart/:
# helm-python-sdk ships Helm v4's own library (lint, render, schema validation, package),
# kubernetes-validate the Kubernetes JSON schemas. The tributary binary (built here if needed)
# supplies the RBAC table and judges the chart's arguments.
#
#   scripts/check-chart.sh            # check
#   scripts/check-chart.sh --update   # also rewrite deploy/tributary.yaml from the chart
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-chart
requirements=scripts/check-chart-requirements.txt
stamp="$venv/.requirements"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -r "$requirements"
  "$venv/bin/python" -m pip check >/dev/null
  cp "$requirements" "$stamp"
fi

cargo build --locked --quiet --bin tributary
binary="${CARGO_TARGET_DIR:-target}/debug/tributary"

exec "$venv/bin/python" scripts/check_chart.py --binary "$binary" "$@"
