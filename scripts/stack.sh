#!/usr/bin/env bash
# Workers for server 1 children 1 and 2, the ActiveMQ bridge and Flower, in the background: up, down, serve.
set -euo pipefail
RUN=.run
BIN=${VENV:-.venv}/bin
mkdir -p "$RUN"

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {  # name, then the environment and command
  local name=$1; shift
  if alive "$name"; then echo "$name already running"; return; fi
  : >"$RUN/$name.log"
  setsid env "$@" >>"$RUN/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN/$name.pid"
}

ready() {  # until `contactq doctor` passes: Redis, the broker, ActiveMQ, a worker per child, the bridge connected
  for _ in $(seq 120); do
    "$BIN/contactq" doctor >"$RUN/doctor.out" 2>&1 && return 0
    for name in worker-1 worker-2 bridge flower; do
      alive "$name" || { echo "$name failed:"; tail -20 "$RUN/$name.log"; return 1; }
    done
    sleep 0.5
  done
  echo "contactq did not get ready:"; cat "$RUN/doctor.out"; return 1
}

listening() {  # port
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on $1; see $RUN/flower.log"; return 1
}

up() {
  start worker-1 CONTACTQ_CHILD_IDS=1 "$BIN/contactq" worker
  start worker-2 CONTACTQ_CHILD_IDS=2 "$BIN/contactq" worker
  start bridge "$BIN/contactq" bridge
  start flower "$BIN/contactq" flower
  ready
  listening "${CONTACTQ_FLOWER_PORT:-5555}"
  echo "contactq is up: workers for server 1 children 1 and 2, the ActiveMQ bridge (STOMP 127.0.0.1:61613),"
  echo "Flower on http://127.0.0.1:${CONTACTQ_FLOWER_PORT:-5555}/"
  echo "logs in $RUN/; stop with: make down"
}

down() {
  for name in flower bridge worker-2 worker-1; do
    alive "$name" || { rm -f "$RUN/$name.pid"; continue; }
    local pid; pid=$(cat "$RUN/$name.pid")
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$RUN/$name.pid"
    echo "stopped $name"
  done
}

serve() {
  trap "down; scripts/activemq.sh down" EXIT
  echo "serving; press Ctrl-C to stop"
  tail -n 0 -F "$RUN/worker-1.log" "$RUN/worker-2.log" "$RUN/bridge.log" &
  while alive worker-1 && alive worker-2 && alive bridge && alive flower; do sleep 1; done
}

"$@"
