#!/usr/bin/env bash
# Smoke checks of a deployed overlay, through the edge and from inside the mesh:
#   1. every app is Ready (its /readyz passes: the sidecar and its components are up);
#   2. the public API answers through Kong -> gateway sidecar -> app (OIDC discovery);
#   3. a path that is not public answers 404 at the edge;
#   4. zero trust inside: analytics' sidecar may not invoke accounts /internal/* (Dapr ACL 403),
#      nor reach the payment-partner simulator at all (only transactions may).
# Needs kubectl and curl; GATEWAY_URL defaults to a port-forward of Kong's proxy.
set -euo pipefail
gateway="${GATEWAY_URL:-http://127.0.0.1:8080}"
fail() { echo "error: $*" >&2; exit 1; }

for app in identity accounts transactions analytics partner; do
  echo "==> $app ready"
  kubectl rollout status "deployment/$app" -n "kaya787-$app" --timeout=300s \
    || fail "$app did not become ready"
done

echo "==> public route through the edge: GET /.well-known/openid-configuration"
body="$(curl -fsS --retry 10 --retry-delay 3 --retry-all-errors "$gateway/.well-known/openid-configuration")" \
  || fail "the edge did not answer the discovery document"
grep -q '"jwks_uri"' <<<"$body" || fail "discovery document without jwks_uri: $body"

echo "==> a non-public path answers 404 at the edge"
code="$(curl -s -o /dev/null -w '%{http_code}' "$gateway/internal/revocations/x")"
[[ "$code" == 404 ]] || fail "expected 404 for /internal/* at the edge, got $code"

# invoke_from_analytics TARGET PATH: the HTTP status analytics' sidecar answers for a POST.
invoke_from_analytics() {
  kubectl exec -n kaya787-analytics deploy/analytics -c app -- python -c '
import os, sys, urllib.error, urllib.request
req = urllib.request.Request(
    f"http://127.0.0.1:3500/v1.0/invoke/{sys.argv[1]}/method/{sys.argv[2]}",
    data=b"{}", method="POST",
    headers={"dapr-api-token": os.environ["DAPR_API_TOKEN"], "content-type": "application/json"})
try:
    print(urllib.request.urlopen(req, timeout=60).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
' "$1" "$2"
}

echo "==> Dapr access control: analytics may not call accounts /internal/*"
code="$(invoke_from_analytics accounts.kaya787-accounts internal/postings)"
[[ "$code" == 403 ]] || fail "expected 403 from the ACL, got $code"

echo "==> only transactions reaches the partner: analytics' call to /internal/payouts fails"
code="$(invoke_from_analytics partner.kaya787-partner internal/payouts)"
[[ "$code" != 2* ]] || fail "analytics reached the partner simulator ($code)"
echo "==> smoke checks passed"
