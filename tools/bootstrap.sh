#!/usr/bin/env bash
# Install everything the platform and its tests need, idempotently, printing progress:
# Debian packages, uv, the locked Python environment, the Dapr runtime built from Go
# modules, and the dev secrets. A warm run returns in seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cd "$root"

fail() { echo "error: $*" >&2; exit 1; }

# --- prerequisites -----------------------------------------------------------------
command -v python3 >/dev/null || fail "python3 (3.11) is not installed"
python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || fail "Python 3.11 is required, found $(python3 --version 2>&1)"

# --- Debian packages -----------------------------------------------------------------
missing=()
for pkg in $DEBIAN_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || fail "Debian packages ${missing[*]} are missing and apt-get is not available"
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  echo "==> installing Debian packages: ${missing[*]}"
  # Keep the packages' init scripts from starting system-wide servers (e.g. Redis on 6379):
  # the launcher runs its own on loopback.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null && $sudo chmod +x $policy && created_policy=1
  fi
  $sudo apt-get update -q >/dev/null || fail "apt-get update failed: is a Debian mirror reachable?"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
  [[ $created_policy -eq 1 ]] && $sudo rm -f $policy
else
  echo "==> Debian packages present: $DEBIAN_PACKAGES"
fi

# --- uv and the locked Python environment ----------------------------------------------
if ! command -v uv >/dev/null || [[ "$(uv --version | awk '{print $2}')" != "$UV_VERSION" ]]; then
  echo "==> installing uv $UV_VERSION from PyPI"
  python3 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" \
    || fail "cannot install uv $UV_VERSION from PyPI"
fi
echo "==> syncing the Python workspace from uv.lock"
UV_PYTHON_DOWNLOADS=never uv sync --frozen --quiet --python "$(command -v python3)" \
  || fail "uv sync failed (is PyPI reachable? is uv.lock in step with pyproject.toml?)"

# --- Dapr runtime ----------------------------------------------------------------------
bash "$here/build-dapr-runtime.sh"

# --- Kafka broker jars from Maven Central, Jaeger v2 from its Go module ---------------------
bash "$here/fetch-kafka.sh"
bash "$here/build-jaeger.sh"

# --- the analytics dashboard's chart library from npm (package-lock.json) -----------------
dashboard="$root/apps/analytics/dashboard"
if [[ ! -f $dashboard/node_modules/.package-lock.json || $dashboard/package-lock.json -nt $dashboard/node_modules/.package-lock.json ]]; then
  command -v npm >/dev/null || fail "npm is not installed (needed for the dashboard's chart library)"
  echo "==> installing the dashboard's npm packages (npm ci)"
  npm ci --prefix "$dashboard" --no-audit --no-fund --loglevel=error >/dev/null \
    || fail "npm ci in apps/analytics/dashboard failed (is the npm registry reachable?)"
else
  echo "==> dashboard npm packages present"
fi

# --- offline Kubernetes tooling (kustomize, actionlint), built from Go modules -------------
if [[ -f "$here/install-k8s-tools.sh" ]]; then
  bash "$here/install-k8s-tools.sh"
fi

# --- dev secrets and Sentry certificates -------------------------------------------------
.venv/bin/kaya787 secrets
echo "==> bootstrap done"
