#!/usr/bin/env bash
# Runs the JmsTemplate client (building it first if needed); one JSON line per result on stdout:
#   tests/java/run.sh send QUEUE map|text|bytes JSON            -> {"sent": "<JMSMessageID>"}
#   tests/java/run.sh send-many QUEUE map|text|bytes < lines     -> one {"sent": ...} per stdin line
#   tests/java/run.sh publish TOPIC JSON                         -> TextMessage to a topic, {"sent": ...}
#   tests/java/run.sh receive QUEUE COUNT TIMEOUT_S [--full]     -> {"type","correlationId","persistent","destination","text"}
#   tests/java/run.sh subscribe T1[,T2...] COUNT TIMEOUT_S [--full] -> {"ready": true}, then one line per message
# Broker: $JMS_BROKER_URL, default tcp://127.0.0.1:61616. Run from the repo root.
set -euo pipefail
OUT=${JAVA_OUT:-.run/java}
"$(dirname "$0")/build.sh"
# Java decodes argv by the locale: a UTF-8 one keeps Chinese JSON arguments intact.
export LC_ALL=C.UTF-8
# Debian's commons-logging.jar pulls log4j 1.2 in through its Class-Path: use its SimpleLog (stderr, WARN and up).
exec java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dfile.encoding=UTF-8 \
  -Dorg.apache.commons.logging.Log=org.apache.commons.logging.impl.SimpleLog \
  -Dorg.apache.commons.logging.simplelog.defaultlog=warn \
  -cp "$OUT:$(cat "$OUT/classpath")" contactq.JmsClient "$@"
