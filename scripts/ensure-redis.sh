#!/usr/bin/env bash
# Redis on 127.0.0.1:6379: use the one running, or install Debian's and start it.
set -euo pipefail
up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
up && exit 0
if ! command -v redis-server >/dev/null; then
  echo "installing redis-server from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
mkdir -p .run
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir "$PWD/.run" \
  --logfile "$PWD/.run/redis.log"
for _ in $(seq 50); do up && exit 0; sleep 0.1; done
echo "redis did not start; see .run/redis.log" >&2
exit 1
