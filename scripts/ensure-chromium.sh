#!/usr/bin/env bash
# Headless Chromium and its driver for the browser tests: Debian's packages, installed only when missing.
set -euo pipefail
[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] && exit 0
echo "installing chromium and chromium-driver from Debian's packages"
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
