#!/usr/bin/env bash
# A local Kubernetes control plane as plain processes on 127.0.0.1, for applying k8s/ for real:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes: pods are
# scheduled, "run" and become Ready by simulation, no container runs), and Dapr's control plane
# against it (Sentry in Kubernetes mode, the operator, the sidecar injector as the mutating
# webhook). Binaries come from tools/k8s-sim/build.sh (run by `up` when missing).
#
#   tools/k8s-sim/sim.sh up        start (fresh state every time), wait until nodes are Ready
#                                  and the injector is registered; prints KUBECONFIG
#   tools/k8s-sim/sim.sh down      stop exactly what `up` started (pid files), keep the logs
#   tools/k8s-sim/sim.sh status    every process, its pid, state and log; the nodes
#   tools/k8s-sim/sim.sh env       `export KUBECONFIG=...` for eval
#
# State, certificates, tokens, logs and pid files live in var/k8s-sim/ (git-ignored); every
# certificate and token is generated at `up`. Ports, on 127.0.0.1 and below the ephemeral
# range: etcd 23790/23800, kube-apiserver 6443, controller-manager 10257, scheduler 10259,
# kwok 10247, Sentry 26101, operator 26102, injector 26103 (on KAYA787_K8S_WEBHOOK_IP, see
# webhook_ip), healthz 26180-26182.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=../versions.env
source "$root/tools/versions.env"
bin="${KAYA787_TOOLS:-$HOME/.cache/kaya787/bin}"
state="$root/var/k8s-sim"
pki="$state/pki"
logs="$state/logs"
pids="$state/pids"
kubeconfig="$state/admin.kubeconfig"
api=https://127.0.0.1:6443
nodes=(kaya-sim-a kaya-sim-b kaya-sim-c)
# Components are started in this order and stopped in the reverse one.
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok dapr-sentry dapr-operator dapr-injector)

fail() { echo "error: $*" >&2; exit 1; }
t0=$SECONDS
step() { printf '==> [%3ss] %s\n' "$((SECONDS - t0))" "$*"; }
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

pid_of() { if [[ -f "$pids/$1.pid" ]]; then cat "$pids/$1.pid"; fi; }
alive() {
  local pid
  pid="$(pid_of "$1")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}
any_alive() {
  local c
  for c in "${components[@]}"; do alive "$c" && return 0; done
  return 1
}

# wait_for WHAT SECONDS COMMAND...: poll every 0.2 s; on timeout, fail with the log's tail.
wait_for() {
  local what=$1 limit=$2 log=${LOG_HINT:-}
  shift 2
  local deadline=$((SECONDS + limit)) comp=""
  [[ -n $log ]] && comp="$(basename "$log" .log)"
  until "$@" >/dev/null 2>&1; do
    if [[ -n $comp && -f "$pids/$comp.pid" ]] && ! alive "$comp"; then
      echo "error: $comp exited while waiting for $what; last lines of $log:" >&2
      tail -n 25 "$log" >&2
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "error: timed out after ${limit}s waiting for $what" >&2
      [[ -n "$log" && -f "$log" ]] && { echo "--- last lines of $log:" >&2; tail -n 25 "$log" >&2; }
      exit 1
    fi
    sleep 0.2
  done
}

# start NAME [ENV=VALUE...] -- BINARY ARGS...: a detached process with a pid file and a log.
start() {
  local name=$1
  shift
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  local log="$logs/$name.log"
  alive "$name" && fail "$name is already running (pid $(pid_of "$name")); run \`$0 down\` first"
  [[ -x "$1" ]] || fail "$1 is missing: run tools/k8s-sim/build.sh"
  (cd "$state" && exec setsid env ${envs[@]+"${envs[@]}"} "$@" </dev/null >"$log" 2>&1) &
  echo $! >"$pids/$name.pid"
}

check_running() {
  alive "$1" || { echo "error: $1 exited; last lines of $logs/$1.log:" >&2; tail -n 25 "$logs/$1.log" >&2; exit 1; }
}

# ---------------------------------------------------------------------------------------------
# Certificates and kubeconfigs, generated fresh at every `up` (nothing secret is committed).
gen_pki() {
  command -v openssl >/dev/null || fail "openssl is not installed (needed for the simulator's certificates)"
  rm -rf "$pki" && mkdir -p "$pki"
  (
    cd "$pki"
    umask 077
    # ECDSA P-256 throughout: as good as RSA here and generated in milliseconds.
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
    openssl req -x509 "${ec[@]}" -nodes -days 2 -subj "/CN=kaya787-k8s-sim-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    # cert NAME SUBJECT [subjectAltName]
    cert() {
      local name=$1 subj=$2 san=${3:-}
      openssl req "${ec[@]}" -nodes -subj "$subj" -keyout "$name.key" -out "$name.csr" 2>/dev/null
      {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=digitalSignature,keyEncipherment"
        if [[ -n $san ]]; then echo "extendedKeyUsage=serverAuth"; echo "subjectAltName=$san"; else echo "extendedKeyUsage=clientAuth"; fi
      } >"$name.ext"
      openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$name.ext" -out "$name.crt" 2>/dev/null
      rm -f "$name.csr" "$name.ext"
    }
    cert apiserver "/CN=kube-apiserver" \
      "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    cert admin "/O=system:masters/CN=kaya787-admin"
    cert controller-manager "/CN=system:kube-controller-manager"
    cert scheduler "/CN=system:kube-scheduler"
    openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
    openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  local who
  for who in admin controller-manager scheduler; do
    local file="$state/$who.kubeconfig"
    [[ $who == admin ]] && file="$kubeconfig"
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: kaya787-sim
    cluster:
      server: $api
      certificate-authority: $pki/ca.crt
users:
  - name: $who
    user:
      client-certificate: $pki/$who.crt
      client-key: $pki/$who.key
contexts:
  - name: kaya787-sim
    context: {cluster: kaya787-sim, user: $who}
current-context: kaya787-sim
EOF
    chmod 600 "$file"
  done
}

# kwok's stages (how a fake node and its pods change state) from the kwok module, rendered
# into one KwokConfiguration with the parallelism options set. Pods become Ready after a
# short delay so that a rolling update has an observable in-between state.
render_kwok_config() {
  local stages="$bin/kwok-stages"
  [[ -d $stages ]] || fail "$stages is missing: run tools/k8s-sim/build.sh"
  {
    cat <<'EOF'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  manageAllNodes: false
  manageNodesWithAnnotationSelector: kwok.x-k8s.io/node=fake
  cidr: 10.244.0.1/16
  nodeIP: 10.97.1.1
  serverAddress: 127.0.0.1:10247
  nodeLeaseDurationSeconds: 40
  nodeLeaseParallelism: 4
  nodePlayStageParallelism: 4
  podPlayStageParallelism: 8
  podsOnNodeSyncParallelism: 4
  enableCRDs: []
EOF
    local f
    for f in "$stages"/*.yaml; do
      echo "---"
      if [[ $(basename "$f") == pod-ready.yaml ]]; then
        # delay: Ready ~1 s after the pod is scheduled (kwok's "fast" stage has none).
        awk '{print} /^spec:$/ && !done {print "  delay:\n    durationMilliseconds: 1000\n    jitterDurationMilliseconds: 1200"; done=1}' "$f"
      else
        cat "$f"
      fi
    done
  } >"$state/kwok.yaml"
}

https_ok() { curl -fsS --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$1"; }
insecure_ok() { curl -fsSk --max-time 2 "$1"; }
node_ready() {
  local n
  for n in "${nodes[@]}"; do
    [[ $(kubectl get node "$n" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] || return 1
  done
}

# The non-loopback address the apiserver calls the injector webhook on: a Service's
# Endpoints may not be loopback, and the injector's certificate (issued by Sentry) names
# only dapr-sidecar-injector.dapr-system.svc, so the webhook is a Service reference.
webhook_ip() {
  if [[ -n ${KAYA787_K8S_WEBHOOK_IP:-} ]]; then echo "$KAYA787_K8S_WEBHOOK_IP"; return; fi
  ip -4 -o addr show scope global 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}'
}

# ---------------------------------------------------------------------------------------------
up() {
  any_alive && fail "the simulator is already running (\`$0 status\`); \`$0 down\` first"
  # Builds what is missing (cold: ~10-20 min on 2 cores); a warm check takes a second.
  bash "$here/build.sh" | sed 's/^/    /'
  local sentry="${DAPR_RUNTIME_PATH:-$HOME}/.dapr/bin/sentry"
  [[ -x $sentry ]] || fail "$sentry is missing: run \`make bootstrap\` (tools/build-dapr-runtime.sh builds it)"
  command -v curl >/dev/null || fail "curl is not installed"
  local wip
  wip="$(webhook_ip)"
  [[ -n $wip ]] || fail "no non-loopback IPv4 address for the injector webhook; set KAYA787_K8S_WEBHOOK_IP"

  rm -rf "$state" && mkdir -p "$state" "$logs" "$pids"
  # A failed start stops whatever it had started.
  trap 'echo "==> start failed: stopping what was started" >&2; down >&2' EXIT
  step "certificates and kubeconfigs (var/k8s-sim/pki)"
  gen_pki
  render_kwok_config

  step "[1/8] etcd $ETCD_VERSION (127.0.0.1:23790)"
  start etcd -- "$bin/etcd" --name sim --data-dir "$state/etcd" \
    --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster sim=http://127.0.0.1:23800 --listen-metrics-urls "" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
  LOG_HINT="$logs/etcd.log" wait_for "etcd health" 30 curl -fsS --max-time 2 http://127.0.0.1:23790/health

  step "[2/8] kube-apiserver v$KUBE_VERSION (127.0.0.1:6443)"
  start kube-apiserver -- "$bin/kube-apiserver" \
    --etcd-servers http://127.0.0.1:23790 --bind-address 127.0.0.1 --secure-port 6443 \
    --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
    --service-cluster-ip-range 10.96.0.0/16 \
    --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --enable-aggregator-routing=true \
    --allow-privileged=true --profiling=false --v 1
  LOG_HINT="$logs/kube-apiserver.log" wait_for "kube-apiserver /readyz" 90 https_ok "$api/readyz"

  step "[3/8] kube-controller-manager, kube-scheduler"
  start kube-controller-manager -- "$bin/kube-controller-manager" \
    --kubeconfig "$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$state/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --controllers '*,-cloud-node-lifecycle-controller,-node-ipam-controller' \
    --horizontal-pod-autoscaler-sync-period 5s --profiling=false --v 1
  start kube-scheduler -- "$bin/kube-scheduler" \
    --kubeconfig "$state/scheduler.kubeconfig" \
    --authentication-kubeconfig "$state/scheduler.kubeconfig" \
    --authorization-kubeconfig "$state/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false --v 1
  LOG_HINT="$logs/kube-controller-manager.log" wait_for "kube-controller-manager /healthz" 60 insecure_ok https://127.0.0.1:10257/healthz
  LOG_HINT="$logs/kube-scheduler.log" wait_for "kube-scheduler /healthz" 60 insecure_ok https://127.0.0.1:10259/healthz

  step "[4/8] kwok $KWOK_VERSION and ${#nodes[@]} fake nodes (zones a, b, c)"
  start kwok -- "$bin/kwok" --kubeconfig "$kubeconfig" --config "$state/kwok.yaml"
  local n zone
  for n in "${nodes[@]}"; do
    zone="zone-${n##*-}"
    kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $n
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $n
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    type: kwok
    topology.kubernetes.io/zone: $zone
    topology.kubernetes.io/region: kaya-sim
EOF
  done
  LOG_HINT="$logs/kwok.log" wait_for "the fake nodes to be Ready" 60 node_ready

  start_dapr "$wip" "$sentry"
  trap - EXIT
  step "ready in $((SECONDS - t0))s: export KUBECONFIG=$kubeconfig"
}

# ---------------------------------------------------------------------------------------------
# Dapr's control plane against the sim. Each real process runs here, outside the cluster; the
# cluster holds a simulated Pod for each (kwok runs it), because Sentry's Kubernetes validator
# only signs a certificate for a service-account token bound to an existing Pod whose
# `dapr.io/control-plane` annotation names the service.
start_dapr() {
  local wip=$1 sentry=$2 d="$state/dapr"
  mkdir -p "$d/credentials"
  # Dapr's control plane refuses to run as root "in Kubernetes environments"; here it is a
  # host process, so when this runs as root (a dev VM, CI) the documented override is set.
  local asroot=()
  [[ $(id -u) -eq 0 ]] && asroot=(DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK=true)
  step "[5/8] Dapr CRDs, dapr-system, trust bundle placeholders (Sentry fills them)"
  # Dapr's own CRDs, as its Helm chart installs them (copied from the module by build.sh).
  cat "$bin"/dapr-crds/*.yaml | sed 's/namespace: replaceme.*/namespace: dapr-system/' | kubectl apply --server-side -f - >/dev/null
  wait_for "the Dapr CRDs to be Established" 30 kubectl wait --for condition=Established --timeout 1s \
    crd/components.dapr.io crd/configurations.dapr.io crd/resiliencies.dapr.io crd/subscriptions.dapr.io crd/httpendpoints.dapr.io
  wait_for "the controllers' service accounts" 30 kubectl get serviceaccount -n kube-system replicaset-controller
  sed "s|@WEBHOOK_IP@|$wip|g; s|@VERSION@|$DAPR_RUNTIME_VERSION|g" "$here/dapr-system.yaml" | kubectl apply -f - >/dev/null
  local c sa
  for c in sentry operator injector; do
    sa="dapr-$c"
    kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: dapr-$c
  namespace: dapr-system
  labels: {app: dapr-$c, app.kubernetes.io/part-of: dapr}
  annotations:
    dapr.io/control-plane: $c
    kaya787.io/simulated: "the real process runs on the host (tools/k8s-sim/sim.sh), this Pod is its identity"
spec:
  serviceAccountName: $sa
  containers:
    - name: $c
      image: ghcr.io/dapr/dapr:$DAPR_RUNTIME_VERSION
EOF
  done
  LOG_HINT="$logs/kwok.log" wait_for "the control-plane Pods to run" 60 kubectl wait -n dapr-system --for condition=Ready --timeout 1s pod/dapr-sentry pod/dapr-operator pod/dapr-injector

  step "[6/8] Dapr Sentry $DAPR_RUNTIME_VERSION, Kubernetes mode (127.0.0.1:26101)"
  start dapr-sentry ${asroot[@]+"${asroot[@]}"} NAMESPACE=dapr-system -- "$sentry" --mode kubernetes \
    --kubeconfig "$kubeconfig" --config daprsystem --trust-domain cluster.local \
    --issuer-credentials "$d/credentials" \
    --listen-address 127.0.0.1 --port 26101 --healthz-listen-address 127.0.0.1 --healthz-port 26180 \
    --enable-metrics=false --log-as-json
  LOG_HINT="$logs/dapr-sentry.log" wait_for "Sentry to write the trust bundle" 60 \
    bash -c "'$bin/kubectl' --kubeconfig '$kubeconfig' get configmap -n dapr-system dapr-trust-bundle -o jsonpath='{.data.ca\\.crt}' | grep -q BEGIN"
  kubectl get configmap -n dapr-system dapr-trust-bundle -o jsonpath='{.data.ca\.crt}' >"$d/ca.crt"
  for c in operator injector; do
    (umask 077 && kubectl create token "dapr-$c" -n dapr-system --audience dapr.io/sentry \
      --bound-object-kind Pod --bound-object-name "dapr-$c" --duration 48h >"$d/$c.token")
  done
  local common=(${asroot[@]+"${asroot[@]}"} NAMESPACE=dapr-system DAPR_TRUST_ANCHORS_FILE="$d/ca.crt" DAPR_SENTRY_ADDRESS=127.0.0.1:26101
    DAPR_CONTROL_PLANE_TRUST_DOMAIN=cluster.local)

  step "[7/8] Dapr operator $DAPR_RUNTIME_VERSION (127.0.0.1:26102)"
  start dapr-operator "${common[@]}" DAPR_SENTRY_TOKEN_FILE="$d/operator.token" ENABLE_WEBHOOKS=false -- \
    "$bin/dapr-operator" --kubeconfig "$kubeconfig" --config daprsystem --trust-anchors-file "$d/ca.crt" \
    --disable-leader-election --listen-address 127.0.0.1 --port 26102 \
    --healthz-listen-address 127.0.0.1 --healthz-port 26182 --webhook-server-listen-address 127.0.0.1 \
    --enable-metrics=false --log-as-json
  LOG_HINT="$logs/dapr-operator.log" wait_for "the Dapr operator /healthz" 60 curl -fsS --max-time 2 http://127.0.0.1:26182/healthz

  step "[8/8] Dapr sidecar injector $DAPR_RUNTIME_VERSION (webhook on $wip:26103)"
  # Sidecar settings: the same as k8s/helm/dapr.yaml gives the chart (hardened, mTLS).
  start dapr-injector "${common[@]}" DAPR_SENTRY_TOKEN_FILE="$d/injector.token" \
    SIDECAR_IMAGE="ghcr.io/dapr/daprd:$DAPR_RUNTIME_VERSION" SIDECAR_IMAGE_PULL_POLICY=IfNotPresent \
    KUBE_CLUSTER_DOMAIN=cluster.local SIDECAR_RUN_AS_NON_ROOT=true SIDECAR_READ_ONLY_ROOT_FILESYSTEM=true \
    SIDECAR_DROP_ALL_CAPABILITIES=true ACTORS_ENABLED=true \
    ACTORS_SERVICE_NAME=placement ACTORS_SERVICE_ADDRESS="dapr-placement-server.dapr-system.svc.cluster.local:50005" \
    -- "$bin/dapr-injector" --kubeconfig "$kubeconfig" --listen-address "$wip" --port 26103 \
    --healthz-listen-address 127.0.0.1 --healthz-port 26181 --enable-metrics=false --log-as-json
  LOG_HINT="$logs/dapr-injector.log" wait_for "the injector to register its webhook" 60 \
    curl -fsS --max-time 2 http://127.0.0.1:26181/healthz
}

# ---------------------------------------------------------------------------------------------
down() {
  local i c pid stopped=0
  for ((i = ${#components[@]} - 1; i >= 0; i--)); do
    c=${components[$i]}
    pid="$(pid_of "$c")"
    [[ -n $pid ]] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      local deadline=$((SECONDS + 15))
      while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid" 2>/dev/null || true; }
      echo "==> stopped $c (pid $pid)"
      stopped=$((stopped + 1))
    fi
    rm -f "$pids/$c.pid"
  done
  ((stopped)) || echo "==> the simulator is not running"
  [[ -d $logs ]] && echo "    logs kept in $logs"
  return 0
}

status() {
  local c pid running=0
  printf '%-24s %-8s %-8s %s\n' COMPONENT PID STATE LOG
  for c in "${components[@]}"; do
    pid="$(pid_of "$c")"
    if alive "$c"; then
      printf '%-24s %-8s %-8s %s\n' "$c" "$pid" running "$logs/$c.log"; running=$((running + 1))
    else
      printf '%-24s %-8s %-8s %s\n' "$c" "${pid:--}" stopped "$logs/$c.log"
    fi
  done
  if alive kube-apiserver; then
    echo
    kubectl get nodes -o wide 2>&1 || true
    echo
    echo "export KUBECONFIG=$kubeconfig"
  fi
  ((running == ${#components[@]}))
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export KUBECONFIG=$kubeconfig" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
