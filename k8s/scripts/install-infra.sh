#!/usr/bin/env bash
# Install the operators KAYA787 runs on, in dependency order, with the pinned chart versions
# (k8s/helm/versions.env) and values (k8s/helm/*.yaml). Idempotent (helm upgrade --install).
#   k8s/scripts/install-infra.sh            # core: cert-manager, Dapr, Strimzi, CNPG, KEDA, Kong
#   k8s/scripts/install-infra.sh --observability   # + kube-prometheus-stack, ECK, Jaeger
# Extra Helm flags for one release: KAYA787_HELM_<NAME>="--set a=b" (NAME in upper case,
# e.g. KAYA787_HELM_KONG="--set proxy.type=ClusterIP" on kind). Releases to leave out:
# KAYA787_SKIP="dapr" (e.g. when `dapr init -k` installed the control plane).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
helm_dir="$here/../helm"
# shellcheck source=../helm/versions.env
source "$helm_dir/versions.env"

fail() { echo "error: $*" >&2; exit 1; }
command -v helm >/dev/null || fail "helm is not installed (https://helm.sh/docs/intro/install/)"
command -v kubectl >/dev/null || fail "kubectl is not installed"
kubectl version >/dev/null 2>&1 || fail "no cluster reachable with the current kubeconfig"

observability=0
[[ "${1:-}" == "--observability" ]] && observability=1

echo "==> helm repositories"
helm repo add dapr https://dapr.github.io/helm-charts >/dev/null
helm repo add jetstack https://charts.jetstack.io >/dev/null
helm repo add cnpg https://cloudnative-pg.github.io/charts >/dev/null
helm repo add kedacore https://kedacore.github.io/charts >/dev/null
helm repo add kong https://charts.konghq.com >/dev/null
if ((observability)); then
  helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
  helm repo add elastic https://helm.elastic.co >/dev/null
  helm repo add jaegertracing https://jaegertracing.github.io/helm-charts >/dev/null
fi
helm repo update >/dev/null

# release NAME CHART VERSION NAMESPACE VALUES
release() {
  local name="$1" chart="$2" version="$3" namespace="$4" values="$5" extra_var
  extra_var="KAYA787_HELM_$(echo "$name" | tr '[:lower:]-' '[:upper:]_')"
  if [[ " ${KAYA787_SKIP:-} " == *" $name "* ]]; then
    echo "==> $name skipped (KAYA787_SKIP)"
    return 0
  fi
  echo "==> $name ($chart $version) in namespace $namespace"
  # shellcheck disable=SC2086 # the extra flags are meant to split
  helm upgrade --install "$name" "$chart" --version "$version" -n "$namespace" \
    --create-namespace -f "$helm_dir/$values" --wait --timeout 10m ${!extra_var:-} \
    || fail "helm install of $name failed"
}

release cert-manager jetstack/cert-manager "$CERT_MANAGER_CHART_VERSION" cert-manager cert-manager.yaml
release dapr dapr/dapr "$DAPR_CHART_VERSION" dapr-system dapr.yaml
release strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator "$STRIMZI_CHART_VERSION" strimzi strimzi.yaml
release cnpg cnpg/cloudnative-pg "$CNPG_CHART_VERSION" cnpg-system cloudnative-pg.yaml
release keda kedacore/keda "$KEDA_CHART_VERSION" keda keda.yaml
if ((observability)); then
  release kube-prometheus-stack prometheus-community/kube-prometheus-stack \
    "$KUBE_PROMETHEUS_STACK_CHART_VERSION" monitoring kube-prometheus-stack.yaml
  release elastic-operator elastic/eck-operator "$ECK_OPERATOR_CHART_VERSION" elastic-system eck-operator.yaml
  release jaeger-operator jaegertracing/jaeger-operator "$JAEGER_OPERATOR_CHART_VERSION" observability jaeger-operator.yaml
fi
# Kong last: its pods' gateway sidecar needs the namespace's Configuration (applied with the
# overlay) and token secret (create-secrets.sh); it converges once both exist.
release kong kong/kong "$KONG_CHART_VERSION" kaya787-gateway kong.yaml
echo "==> operators installed; next: k8s/scripts/create-secrets.sh, then kubectl apply -k k8s/overlays/<env>"
