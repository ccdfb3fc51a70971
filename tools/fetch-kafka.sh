#!/usr/bin/env bash
# Put the Apache Kafka broker (org.apache.kafka:kafka_2.13, the version pinned in
# versions.env) and its runtime jars into one cached folder, the classpath the launcher
# starts `kafka.Kafka` from. Idempotent: skips when the pinned jars are already there.
#
#   cache: ${KAYA787_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/kaya787}/kafka-<version>/libs
#   (the launcher's brokers.kafka_libs() looks in the same place)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

fail() { echo "error: $*" >&2; exit 1; }
[[ -n "${KAFKA_VERSION:-}" ]] || fail "KAFKA_VERSION is not set in $here/versions.env"

cache="${KAYA787_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kaya787}"
home="$cache/kafka-$KAFKA_VERSION"
libs="$home/libs"
stamp="$home/.kaya787-fetch"
pom="$here/kafka/pom.xml"
# The stamp names the pom's content too: a changed dependency list fetches again.
want="kafka=$KAFKA_VERSION pom=$(sha256sum "$pom" | cut -c1-16)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$libs/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
  echo "==> Kafka $KAFKA_VERSION jars already in $libs"
  exit 0
fi

command -v java >/dev/null || fail "java is not installed (Kafka $KAFKA_VERSION needs Java 17+): apt-get install openjdk-17-jre-headless"
java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
[[ "${java_major%%.*}" -ge 17 ]] 2>/dev/null || fail "Kafka $KAFKA_VERSION needs Java 17+, found ${java_major:-unknown}"
command -v mvn >/dev/null || fail "mvn is not installed (used to fetch the Kafka jars): apt-get install maven"

echo "==> fetching Kafka $KAFKA_VERSION broker jars from Maven Central (org.apache.kafka:kafka_2.13)"
started=$SECONDS
mkdir -p "$cache"
scratch="$(mktemp -d "$cache/.kafka-fetch-XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
# Into a scratch folder first, then one rename: an interrupted fetch never looks complete.
if ! mvn -B -q -f "$pom" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$scratch/libs" \
    >"$scratch/mvn.log" 2>&1; then
  tail -n 20 "$scratch/mvn.log" >&2
  fail "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its dependencies (is Maven Central reachable?)"
fi
[[ -f "$scratch/libs/kafka_2.13-$KAFKA_VERSION.jar" ]] || fail "the broker jar kafka_2.13-$KAFKA_VERSION.jar is missing after the fetch"
mkdir -p "$home"
rm -rf "$libs"
mv "$scratch/libs" "$libs"
echo "$want" >"$stamp"
echo "    $(find "$libs" -name '*.jar' | wc -l) jars ($(du -sh "$libs" | cut -f1)) in $libs, $((SECONDS - started))s"
