#!/usr/bin/env bash
# Build the offline Kubernetes tooling from pinned Go modules: kustomize (renders
# k8s/overlays/*) and actionlint (lints .github/workflows). Idempotent and cached: a tool
# already present at a pinned version is skipped. Installs into
# ${KAYA787_TOOLS:-$HOME/.cache/kaya787/bin}, where the tests look for them too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=k8s-tools.env
source "$here/k8s-tools.env"
bin_dir="${KAYA787_TOOLS:-$HOME/.cache/kaya787/bin}"

fail() { echo "error: $*" >&2; exit 1; }

# The version a binary reports, without the leading "v" ("" when it cannot run).
reported_version() {
  local bin="$1" flag="$2"
  [[ -x "$bin" ]] || return 0
  "$bin" "$flag" 2>/dev/null | head -n 1 | sed 's/^v//'
}

# install_tool NAME MODULE VERSION_FLAG "V1 V2 ...": keep a present pinned version, else
# build the first pinned version the module proxy serves.
install_tool() {
  local name="$1" module="$2" flag="$3" versions="$4"
  local have v
  have="$(reported_version "$bin_dir/$name" "$flag")"
  for v in $versions; do
    if [[ "$have" == "$v" ]]; then
      echo "==> $name $v already in $bin_dir"
      return 0
    fi
  done
  command -v go >/dev/null || fail "Go is not installed (needed to build $name from $module); install Go >= 1.26"
  mkdir -p "$bin_dir"
  local scratch log
  scratch="$(mktemp -d)"
  log="$scratch/build.log"
  for v in $versions; do
    echo "==> building $name $v from $module@v$v (Go module proxy $(go env GOPROXY))"
    if GOBIN="$scratch/bin" GOFLAGS="${GOFLAGS:--buildvcs=false}" go install "$module@v$v" >"$log" 2>&1; then
      mv -f "$scratch/bin/$name" "$bin_dir/$name"
      rm -rf "$scratch"
      echo "    $name $(reported_version "$bin_dir/$name" "$flag") installed in $bin_dir"
      return 0
    fi
    echo "    $name $v could not be built: $(grep -m1 -iE 'not available|error|cannot' "$log" || tail -n 1 "$log")"
  done
  rm -rf "$scratch"
  fail "cannot build $name from $module at any pinned version ($versions); is the Go module proxy reachable (GOPROXY=$(go env GOPROXY 2>/dev/null))?"
}

install_tool kustomize "$KUSTOMIZE_MODULE" version "$KUSTOMIZE_VERSIONS"
install_tool actionlint "$ACTIONLINT_MODULE" -version "$ACTIONLINT_VERSIONS"
