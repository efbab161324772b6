#!/usr/bin/env bash
# Compiles tests/java (the JmsTemplate client that plays the legacy Java platform) into ${JAVA_OUT:-.run/java}
# when a source is newer than the classes, and writes the jar classpath to OUT/classpath for run.sh.
# Only Debian's jars in /usr/share/java, which the activemq package brings. Run from the repo root.
set -euo pipefail
OUT=${JAVA_OUT:-.run/java}
SRC=tests/java
J=/usr/share/java
JARS=(activemq-client geronimo-jms_1.1_spec geronimo-j2ee-management-1.1-spec hawtbuf slf4j-api slf4j-nop
      commons-logging spring3-core spring3-beans spring3-transaction spring3-context spring3-jms jettison)

[ -f $J/spring3-jms.jar ] && [ -f $J/jettison.jar ] || scripts/activemq.sh install
if ! command -v javac >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless >/dev/null
fi

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9  # tests may start several run.sh at once
CP=$(printf "$J/%s.jar:" "${JARS[@]}")
CP=${CP%:}
MARK=$OUT/contactq/JmsClient.class
if [ ! -f "$MARK" ] || [ -n "$(find "$SRC" -name '*.java' -newer "$MARK")" ] || [ "$(cat "$OUT/classpath" 2>/dev/null)" != "$CP" ]; then
  # Compile aside, then rename into place: a run.sh already past this script never sees a half-written class.
  TMP=$(mktemp -d "$OUT/.build.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  javac -nowarn -encoding UTF-8 --release 17 -cp "$CP" -d "$TMP" $(find "$SRC" -name '*.java')
  mkdir -p "$OUT/contactq"
  for f in "$TMP"/contactq/*.class; do mv -f "$f" "$OUT/contactq/"; done
  echo "$CP" >"$OUT/classpath"
fi
