#!/usr/bin/env bash
# make test-k8s: start the simulator unless it is running, run tests/k8s against it, and stop
# it again if it was started here (also when the tests fail or are interrupted).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
[[ -x .venv/bin/pytest ]] || { echo "error: .venv is missing: run \`make bootstrap\` first" >&2; exit 1; }
[[ -x "${KAYA787_TOOLS:-$HOME/.cache/kaya787/bin}/kustomize" ]] \
  || { echo "error: kustomize is missing: run \`make bootstrap\` (tools/install-k8s-tools.sh)" >&2; exit 1; }
if bash "$here/sim.sh" status >/dev/null 2>&1; then
  echo "==> using the running simulator"
else
  bash "$here/sim.sh" down >/dev/null # what a half-started earlier run left, if anything
  trap 'echo "==> stopping the simulator started for the tests"; bash "$here/sim.sh" down' EXIT
  bash "$here/sim.sh" up
fi
echo "==> tests/k8s against the simulator"
.venv/bin/pytest tests/k8s "$@"
