#!/usr/bin/env bash
# ActiveMQ 5.17 from Debian's packages, run from the repo's activemq/ config without systemd.
#   scripts/activemq.sh install|up|down|status     (run from the repo root)
# BASE (${ACTIVEMQ_BASE:-.run/activemq}) holds conf/ (links to activemq/), data/ (KahaDB, activemq.log), lib/,
# activemq.pid and activemq.out. Ports: OpenWire 127.0.0.1:61616, STOMP 127.0.0.1:61613.
set -euo pipefail
HOME_DIR=/usr/share/activemq
BASE=${ACTIVEMQ_BASE:-$PWD/.run/activemq}
CONF_SRC=$PWD/activemq
PIDFILE=$BASE/activemq.pid
PORTS=(61616 61613)

open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
all_open() { local p; for p in "${PORTS[@]}"; do open "$p" || return 1; done; }
alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

install() {
  [ -f "$HOME_DIR/bin/activemq.jar" ] && [ -f /usr/share/java/xstream.jar ] && [ -f /usr/share/java/jettison.jar ] &&
    return 0
  echo "installing activemq from Debian's packages"
  local log; log=$(mktemp)
  # xstream and jettison are only Recommends; the broker needs them for STOMP's jms-map-json transformation.
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq activemq libxstream-java libjettison-java; } >"$log" 2>&1 ||
    { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
}

prepare() {
  mkdir -p "$BASE/conf" "$BASE/data" "$BASE/lib"
  ln -sfn "$CONF_SRC/activemq.xml" "$BASE/conf/activemq.xml"
  ln -sfn "$CONF_SRC/log4j.properties" "$BASE/conf/log4j.properties"
  # activemq.jar puts every jar in ${activemq.base}/lib on the broker's classpath (base differs from home).
  ln -sfn /usr/share/java/xstream.jar "$BASE/lib/xstream.jar"
  ln -sfn /usr/share/java/jettison.jar "$BASE/lib/jettison.jar"
}

tail_logs() {
  echo "--- $BASE/data/activemq.log (tail)" >&2; tail -n 30 "$BASE/data/activemq.log" >&2 2>/dev/null || true
  echo "--- $BASE/activemq.out (tail)" >&2; tail -n 30 "$BASE/activemq.out" >&2 2>/dev/null || true
}

wait_ports() {  # until both ports accept connections, 60 s at most
  for _ in $(seq 600); do
    all_open && { echo "activemq is up: openwire 127.0.0.1:61616, stomp 127.0.0.1:61613 (log: $BASE/data/activemq.log)"; return 0; }
    alive || { echo "activemq exited during startup" >&2; tail_logs; rm -f "$PIDFILE"; exit 1; }
    sleep 0.1
  done
  echo "activemq did not open its ports within 60 s" >&2
  tail_logs
  exit 1
}

up() {
  if all_open; then echo "activemq is running"; return 0; fi
  if alive; then echo "activemq is starting"; wait_ports; return 0; fi
  install
  prepare
  setsid java -Xmx512M --add-opens java.base/java.lang=ALL-UNNAMED \
    -Dactivemq.home="$HOME_DIR" -Dactivemq.base="$BASE" -Dactivemq.conf="$BASE/conf" \
    -Dactivemq.data="$BASE/data" -Dactivemq.classpath="$BASE/conf" \
    -Dlog4j.configuration="file:$BASE/conf/log4j.properties" \
    -jar "$HOME_DIR/bin/activemq.jar" start "xbean:file:$BASE/conf/activemq.xml" \
    >"$BASE/activemq.out" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  wait_ports
}

down() {
  if ! alive; then
    rm -f "$PIDFILE"
    if all_open; then echo "activemq is running but was not started from $BASE; leaving it"; else echo "activemq is not running"; fi
    return 0
  fi
  local pid; pid=$(cat "$PIDFILE")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "activemq ignored SIGTERM for 30 s; killing it" >&2; kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  echo "activemq stopped"
}

status() {
  if all_open; then echo "activemq is up"; return 0; fi
  echo "activemq is down"; return 1
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 install|up|down|status" >&2; exit 2 ;;
esac
