#!/usr/bin/env bash
# Create the Secrets the manifests reference (never committed), for a dev or CI cluster:
# fresh random Dapr/app API tokens per app and for the gateway, and identity's signing keys
# and service clients copied from the local dev secret store (var/secrets/secrets.json,
# written by `make bootstrap`). Existing Secrets are kept, so re-running changes nothing.
# Production: create the same names and keys from your secret manager instead.
#   <app>-dapr-api-token, <app>-app-api-token    key `token`   (namespace kaya787-<app>)
#   identity-signing-keys, identity-clients,     key = name    (namespace kaya787-identity)
#   identity-staff
#   gateway-dapr-api-token                       key `token`   (namespace kaya787-gateway)
#   gateway-dapr-token-header                    key `headers` = ["dapr-api-token:<token>"]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
store="$root/var/secrets/secrets.json"

fail() { echo "error: $*" >&2; exit 1; }
command -v kubectl >/dev/null || fail "kubectl is not installed"
command -v openssl >/dev/null || fail "openssl is not installed"
[[ -f "$store" ]] || fail "$store is missing: run make bootstrap (or .venv/bin/kaya787 secrets) first"

token() { openssl rand -base64 48 | tr -d '\n/+='; }
exists() { kubectl get secret "$1" -n "$2" >/dev/null 2>&1; }
# put NAME NAMESPACE KEY VALUE: create the Secret unless it exists.
put() {
  local name="$1" namespace="$2" key="$3" value="$4"
  if exists "$name" "$namespace"; then
    echo "==> secret $namespace/$name kept"
    return 0
  fi
  kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # Through a private file, not the command line (no trailing newline in the value).
  local file
  file="$(mktemp)"
  chmod 600 "$file"
  printf '%s' "$value" >"$file"
  kubectl create secret generic "$name" -n "$namespace" --from-file="$key=$file" >/dev/null \
    || { rm -f "$file"; fail "cannot create secret $namespace/$name"; }
  rm -f "$file"
  echo "==> secret $namespace/$name created"
}

for app in identity accounts transactions analytics partner; do
  put "$app-dapr-api-token" "kaya787-$app" token "$(token)"
  put "$app-app-api-token" "kaya787-$app" token "$(token)"
done
for name in identity-signing-keys identity-clients identity-staff; do
  value="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$store" "$name")" \
    || fail "$name is not in $store"
  put "$name" kaya787-identity "$name" "$value"
done
if ! exists gateway-dapr-api-token kaya787-gateway; then
  gateway_token="$(token)"
  put gateway-dapr-api-token kaya787-gateway token "$gateway_token"
  kubectl delete secret gateway-dapr-token-header -n kaya787-gateway --ignore-not-found >/dev/null
  put gateway-dapr-token-header kaya787-gateway headers "[\"dapr-api-token:$gateway_token\"]"
else
  echo "==> secret kaya787-gateway/gateway-dapr-api-token kept"
fi
