#!/usr/bin/env bash
# Validate docker-compose.yml without a Docker engine: docker-compose 1.29 (Debian's package) resolves and checks
# the file against .env.example, then lists the services. Run from the repo root; installs docker-compose if absent.
set -euo pipefail

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "installing docker-compose from Debian's packages"
  log=$(mktemp)
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose; } >"$log" 2>&1 ||
    { cat "$log" >&2; rm -f "$log"; exit 1; }
  rm -f "$log"
fi

compose() { docker-compose --project-directory . --file docker-compose.yml --env-file .env.example "$@"; }

docker-compose version --short
compose config -q
echo "docker-compose.yml is valid; services:"
compose config --services
