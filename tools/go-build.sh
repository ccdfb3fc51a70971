# Sourced by the build scripts: one `go build` in the background, with a progress line
# every 30 s (cold builds take minutes on 2 cores) and the log's tail when it fails.
#   go_build_with_progress NAME LOG DIR [go build arguments...]
go_build_with_progress() {
  local name=$1 log=$2 dir=$3
  shift 3
  local start=$SECONDS last=$SECONDS pid
  (cd "$dir" && CGO_ENABLED=0 go build "$@") >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS - last >= 30)) && kill -0 "$pid" 2>/dev/null; then
      last=$SECONDS
      echo "    ... $name: $(grep -vc '^go: downloading' "$log" || true) packages compiled, $((SECONDS - start))s"
    fi
  done
  if ! wait "$pid"; then
    echo "error: building $name failed; last lines:" >&2
    grep -v '^go: downloading' "$log" | tail -20 >&2
    exit 1
  fi
  echo "    $name built in $((SECONDS - start))s"
}
