#!/usr/bin/env bash
# RabbitMQ on 127.0.0.1:5672 (guest/guest), for running Celery on RabbitMQ: use the one running, or install
# Debian's and start it.
set -euo pipefail
up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
up && exit 0
if ! command -v rabbitmq-server >/dev/null; then
  echo "installing rabbitmq-server from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi
rabbitmq-server -detached
for _ in $(seq 600); do up && exit 0; sleep 0.1; done
echo "rabbitmq did not start; see /var/log/rabbitmq/" >&2
exit 1
