#!/usr/bin/env bash
# Runs every crmgate test on a fresh Debian machine: installs what the tests
# need (Debian packages, Go modules), starts the real services they talk to,
# then runs gofmt, go vet and the whole Go suite with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2"
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || { echo "Go is required (https://go.dev/dl)"; exit 1; }

# A real Redis for the session-store tests; crmgate's tests use their own key prefix.
need_pkg redis-server redis-server
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting redis-server"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
export CRMGATE_TEST_REDIS=127.0.0.1:6379

# Debian's Chromium, driven headless by test/browser (never a downloaded browser).
need_pkg chromium chromium

# The real OpenID provider (node oidc-provider) in test/idp, with its locked
# dependencies; oidc-provider 9 needs node >= 20.19.
need_pkg node nodejs
need_pkg npm npm
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || { echo "node >= 20.19 is required by test/idp (found $(node --version))"; exit 1; }
if [ ! -d test/idp/node_modules ]; then
  log "npm ci (test/idp)"
  (cd test/idp && npm ci --no-audit --no-fund)
fi

# deploy/: promtool (Debian prometheus) for the alert rules and their unit
# tests; systemd-analyze for the unit file. The deploy Go tests fail, rather
# than skip, when a tool is missing.
need_pkg promtool prometheus
need_pkg systemd-analyze systemd
for tool in promtool systemd-analyze; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool missing after install"; exit 1; }
done
log "promtool check rules + test rules (deploy/prometheus)"
(cd deploy/prometheus && promtool check rules crmgate-rules.yml && promtool test rules crmgate-rules.test.yml)

log "go mod download"
go mod download

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then echo "not gofmt'ed:"; echo "$unformatted"; exit 1; fi

log "go vet"
go vet ./...

log "node --test (test/idp)"
(cd test/idp && node --test)

log "go test -race"
go test -race -count=1 -timeout 20m ./...
