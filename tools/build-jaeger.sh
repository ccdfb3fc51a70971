#!/usr/bin/env bash
# Build Jaeger v2 (cmd/jaeger) from the pinned tools module in tools/jaeger, so go.mod and
# go.sum there fix every dependency. Idempotent: skips when the binary of this version and
# recipe is already in ${KAYA787_TOOLS:-$HOME/.cache/kaya787/bin}. Go's module and build
# caches (GOMODCACHE, GOCACHE) are left where Go puts them, so a rebuild is incremental.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=go-build.sh
source "$here/go-build.sh"

bin_dir="${KAYA787_TOOLS:-$HOME/.cache/kaya787/bin}"
bin="$bin_dir/jaeger"
stamp="$bin_dir/.jaeger-build"
# Bump when the build recipe changes (flags, ldflags), so a cached binary is rebuilt.
recipe=1
mod=github.com/jaegertracing/jaeger
want="module=$mod@v$JAEGER_MODULE_VERSION version=v$JAEGER_VERSION recipe=$recipe"

fail() { echo "error: $*" >&2; exit 1; }

have() {
  [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] || return 1
  "$bin" version 2>/dev/null | grep -q "\"gitVersion\": *\"v$JAEGER_VERSION\""
}

if have; then
  echo "==> Jaeger v$JAEGER_VERSION already built in $bin_dir"
  exit 0
fi

command -v go >/dev/null || fail "Go is not installed (needed to build Jaeger); install Go >= 1.26"
# The tools module must pin exactly the version versions.env names, or the stamp would lie.
pinned="$(cd "$here/jaeger" && go list -m -f '{{.Version}}' "$mod")" \
  || fail "cannot read $mod from tools/jaeger/go.mod"
[[ "$pinned" == "v$JAEGER_MODULE_VERSION" ]] \
  || fail "tools/jaeger/go.mod pins $mod $pinned but versions.env says v$JAEGER_MODULE_VERSION"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
log="$scratch/build.log"
echo "==> downloading the Jaeger tools module's dependencies (Go module proxy $(go env GOPROXY))"
if ! (cd "$here/jaeger" && go mod download >"$log" 2>&1); then
  if grep -q "verifying" "$log"; then
    # No checksum database here: tools/jaeger/go.sum still checks every module.
    echo "    checksum database unreachable; retrying with GOSUMDB=off"
    export GOSUMDB=off
    (cd "$here/jaeger" && go mod download >"$log" 2>&1) || fail "go mod download failed: $(tail -n 3 "$log")"
  else
    fail "go mod download failed (is the Go module proxy reachable?): $(tail -n 3 "$log")"
  fi
fi

pkg="$mod/internal/version"
# The module's release time, not the wall clock, so two builds of one pin are identical.
ldflags="-s -w -X $pkg.latestVersion=v$JAEGER_VERSION -X $pkg.commitSHA=v$JAEGER_MODULE_VERSION -X $pkg.date=2025-12-03T16:07:08Z"
echo "==> building jaeger v$JAEGER_VERSION ($mod@v$JAEGER_MODULE_VERSION/cmd/jaeger) - cold, 5-20 min on 2 cores"
go_build_with_progress jaeger "$log" "$here/jaeger" -v -trimpath -ldflags "$ldflags" -o "$scratch/jaeger" "$mod/cmd/jaeger"
mkdir -p "$bin_dir"
mv -f "$scratch/jaeger" "$bin"
echo "$want" >"$stamp"
have || fail "the built $bin does not report v$JAEGER_VERSION"
echo "==> Jaeger v$JAEGER_VERSION installed in $bin_dir ($(du -h "$bin" | cut -f1))"
