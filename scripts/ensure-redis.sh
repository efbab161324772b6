#!/usr/bin/env bash
# Redis on 127.0.0.1:6379: use the one running, or install Debian's and start it, durable: the append-only file is
# fsynced every second, under .run/redis (a crash loses at most the last second of writes).
set -euo pipefail
up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
if up; then
  if command -v redis-cli >/dev/null && [ "$(redis-cli config get appendonly 2>/dev/null | tail -1)" = "no" ]; then
    echo "note: the Redis on 6379 keeps no append-only file; a restart of it loses every queued task and reply" >&2
    echo "      (redis-cli config set appendonly yes turns it on; see README, Lose nothing)" >&2
  fi
  exit 0
fi
if ! command -v redis-server >/dev/null; then
  echo "installing redis-server from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
mkdir -p .run/redis
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --dir "$PWD/.run/redis" --logfile "$PWD/.run/redis/redis.log" \
  --appendonly yes --appendfsync everysec --save "" --maxmemory-policy noeviction
for _ in $(seq 50); do up && exit 0; sleep 0.1; done
echo "redis did not start; see .run/redis/redis.log" >&2
exit 1
