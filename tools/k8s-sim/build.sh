#!/usr/bin/env bash
# Build the local Kubernetes simulator from pinned Go modules (tools/k8s-sim/versions.env):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, and Dapr's
# operator and sidecar injector (same github.com/dapr/dapr module as daprd). Idempotent: a
# group whose binaries and build stamp are present is skipped. Installs into
# ${KAYA787_TOOLS:-$HOME/.cache/kaya787/bin}. Cold: ~10 min on 2 cores, a few GB of Go caches
# (shared with the daprd build).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$(cd "$here/.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=../versions.env
source "$tools/versions.env"
# shellcheck source=../go-build.sh
source "$tools/go-build.sh"
bin_dir="${KAYA787_TOOLS:-$HOME/.cache/kaya787/bin}"

fail() { echo "error: $*" >&2; exit 1; }
command -v go >/dev/null || fail "Go is not installed (needed to build the Kubernetes simulator); install Go >= 1.26"
mkdir -p "$bin_dir"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# fresh GROUP WANT BIN...: 0 when every binary exists and the group's stamp says WANT.
fresh() {
  local group=$1 want=$2 b
  shift 2
  for b in "$@"; do [[ -x "$bin_dir/$b" ]] || return 1; done
  [[ -f "$bin_dir/.k8s-sim-$group" && "$(cat "$bin_dir/.k8s-sim-$group")" == "$want" ]]
}
stamp() { echo "$2" >"$bin_dir/.k8s-sim-$1"; }

# --- etcd -------------------------------------------------------------------------------
want="etcd=$ETCD_VERSION recipe=$K8S_SIM_RECIPE"
if fresh etcd "$want" etcd; then
  echo "==> etcd $ETCD_VERSION already in $bin_dir"
else
  echo "==> building etcd $ETCD_VERSION (wrapper module tools/k8s-sim/etcd)"
  go_build_with_progress etcd "$scratch/etcd.log" "$here/etcd" -trimpath -v -ldflags "-s -w" \
    -o "$scratch/etcd" go.etcd.io/etcd/server/v3
  mv -f "$scratch/etcd" "$bin_dir/etcd"
  stamp etcd "$want"
fi

# --- Kubernetes control plane + kubectl ---------------------------------------------------
kube_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
want="kube=$KUBE_VERSION staging=$KUBE_STAGING_VERSION ($KUBE_STAGING_EXCEPTIONS) recipe=$K8S_SIM_RECIPE"
if fresh kube "$want" "${kube_bins[@]}"; then
  echo "==> Kubernetes $KUBE_VERSION (${kube_bins[*]}) already in $bin_dir"
else
  grep -Eq "k8s.io/kubernetes v$KUBE_VERSION( |$)" "$here/kube/go.mod" \
    || fail "tools/k8s-sim/kube/go.mod does not require k8s.io/kubernetes v$KUBE_VERSION"
  v=k8s.io/component-base/version
  minor="${KUBE_VERSION#*.}"; minor="${minor%%.*}"
  ldflags="-s -w -X $v.gitVersion=v$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor"
  ldflags+=" -X $v.gitCommit=$KUBE_GIT_COMMIT -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
  i=0
  for b in "${kube_bins[@]}"; do
    i=$((i + 1))
    note=""; [[ $i -eq 1 ]] && note=" - cold, the long one (~5 min on 2 cores)"
    echo "==> [$i/${#kube_bins[@]}] building $b v$KUBE_VERSION$note"
    go_build_with_progress "$b" "$scratch/$b.log" "$here/kube" -trimpath -v -ldflags "$ldflags" \
      -o "$scratch/$b" "k8s.io/kubernetes/cmd/$b"
  done
  for b in "${kube_bins[@]}"; do mv -f "$scratch/$b" "$bin_dir/$b"; done
  stamp kube "$want"
fi

# --- kwok ---------------------------------------------------------------------------------
want="kwok=$KWOK_VERSION recipe=$K8S_SIM_RECIPE"
if fresh kwok "$want" kwok; then
  echo "==> kwok $KWOK_VERSION already in $bin_dir"
else
  echo "==> building kwok $KWOK_VERSION from sigs.k8s.io/kwok"
  (cd "$scratch" && go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" >kwok-dl.json 2>kwok-dl.err) \
    || fail "cannot download sigs.k8s.io/kwok@v$KWOK_VERSION: $(head -c 300 "$scratch/kwok-dl.err") $(grep -o '"Error": "[^"]*"' "$scratch/kwok-dl.json")"
  src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$scratch/kwok-dl.json")"
  go_build_with_progress kwok "$scratch/kwok.log" "$src" -trimpath -v \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBE_VERSION" \
    -o "$scratch/kwok" ./cmd/kwok
  mv -f "$scratch/kwok" "$bin_dir/kwok"
  stamp kwok "$want"
fi

# --- Dapr operator and sidecar injector ------------------------------------------------------
dapr_bins=(operator injector)
want="dapr=$DAPR_RUNTIME_VERSION commit=$DAPR_RUNTIME_COMMIT recipe=$K8S_SIM_RECIPE"
if fresh dapr "$want" dapr-operator dapr-injector; then
  echo "==> Dapr operator and injector $DAPR_RUNTIME_VERSION already in $bin_dir"
else
  module="github.com/dapr/dapr@v$DAPR_RUNTIME_VERSION"
  echo "==> downloading $module (the module daprd is built from)"
  if ! (cd "$scratch" && go mod download -json "$module" >dapr-dl.json 2>dapr-dl.err); then
    export GOSUMDB=off # no checksum database: dapr's own go.sum still checks every dependency
    (cd "$scratch" && go mod download -json "$module" >dapr-dl.json 2>dapr-dl.err) || true
  fi
  src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$scratch/dapr-dl.json")"
  [[ -n "$src" && -f "$src/go.mod" ]] || fail "cannot download $module: $(head -c 300 "$scratch/dapr-dl.err")"
  pkg=github.com/dapr/dapr/pkg/buildinfo
  ldflags="-s -w -X $pkg.version=$DAPR_RUNTIME_VERSION -X $pkg.gitversion=v$DAPR_RUNTIME_VERSION -X $pkg.gitcommit=$DAPR_RUNTIME_COMMIT -X github.com/dapr/kit/logger.DaprVersion=$DAPR_RUNTIME_VERSION"
  i=0
  for b in "${dapr_bins[@]}"; do
    i=$((i + 1))
    echo "==> [$i/${#dapr_bins[@]}] building Dapr $b $DAPR_RUNTIME_VERSION"
    go_build_with_progress "dapr-$b" "$scratch/$b.log" "$src" -trimpath -v -ldflags "$ldflags" \
      -o "$scratch/dapr-$b" "./cmd/$b"
  done
  for b in "${dapr_bins[@]}"; do mv -f "$scratch/dapr-$b" "$bin_dir/dapr-$b"; done
  stamp dapr "$want"
fi
# --- data the simulator reads from the same modules ---------------------------------------------
# kwok's node and pod stages (rendered into the KwokConfiguration by sim.sh) and Dapr's own CRDs
# (what its Helm chart installs), copied from the module cache; nothing upstream is committed.
module_dir() {
  (cd "$scratch" && go mod download -json "$1" >dl.json 2>dl.err) || { export GOSUMDB=off; (cd "$scratch" && go mod download -json "$1" >dl.json 2>dl.err) || true; }
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$scratch/dl.json"
}
want="kwok=$KWOK_VERSION dapr=$DAPR_RUNTIME_VERSION recipe=$K8S_SIM_RECIPE"
if [[ -d "$bin_dir/kwok-stages" && -d "$bin_dir/dapr-crds" && -f "$bin_dir/.k8s-sim-data" && "$(cat "$bin_dir/.k8s-sim-data")" == "$want" ]]; then
  echo "==> kwok stages and Dapr CRDs already in $bin_dir"
else
  echo "==> copying kwok $KWOK_VERSION stages and Dapr $DAPR_RUNTIME_VERSION CRDs into $bin_dir"
  src="$(module_dir "sigs.k8s.io/kwok@v$KWOK_VERSION")"
  [[ -n "$src" ]] || fail "cannot download sigs.k8s.io/kwok@v$KWOK_VERSION"
  rm -rf "$bin_dir/kwok-stages" && mkdir -p "$bin_dir/kwok-stages"
  cp "$src"/kustomize/stage/node/fast/node-initialize.yaml \
    "$src"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    "$src"/kustomize/stage/pod/fast/pod-ready.yaml "$src"/kustomize/stage/pod/fast/pod-complete.yaml \
    "$src"/kustomize/stage/pod/fast/pod-delete.yaml "$bin_dir/kwok-stages/"
  src="$(module_dir "github.com/dapr/dapr@v$DAPR_RUNTIME_VERSION")"
  [[ -n "$src" ]] || fail "cannot download github.com/dapr/dapr@v$DAPR_RUNTIME_VERSION"
  rm -rf "$bin_dir/dapr-crds" && mkdir -p "$bin_dir/dapr-crds"
  cp "$src"/charts/dapr/crds/*.yaml "$bin_dir/dapr-crds/"
  chmod -R u+w "$bin_dir/kwok-stages" "$bin_dir/dapr-crds"
  stamp data "$want"
fi
echo "==> Kubernetes simulator binaries ready in $bin_dir"
