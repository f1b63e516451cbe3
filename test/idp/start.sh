#!/usr/bin/env bash
# Starts the test OpenID provider on 127.0.0.1:PORT (default 9400), installing
# its locked dependencies first if they are missing. Further arguments go to
# server.mjs (see its header), e.g.
#   test/idp/start.sh 9400 --redirect-uri http://127.0.0.1:8080/.crmgate/callback
# It prints "crmgate test idp ready at ..." once it accepts connections.
set -euo pipefail
cd "$(dirname "$0")"
port="${1:-9400}"
[ $# -gt 0 ] && shift
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
exec node server.mjs --port "$port" "$@"
