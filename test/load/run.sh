#!/usr/bin/env bash
# Load harness (issue 6): in one run, on loopback, drives the bare Go reverse
# proxy, nginx as a plain reverse proxy, and crmgate in four modes (bearer
# JWT with and without the decision log, browser sessions in memory and in
# Redis) with wrk, the same connections, threads, duration and persona mix
# for each, and prints one table per phase with every ratio to the bare Go
# proxy.
#
#   test/load/run.sh                      # 32 connections, 2 threads
#   ROUNDS=15 ROUND=3s test/load/run.sh  # longer, steadier figures
#
# Two phases. Saturated: wrk flat out, which measures requests/s; its p99 is
# mostly queueing (32 connections over a saturated 2-core machine: by
# Little's law mean latency is 32 / throughput), so it moves with the
# throughput ratio. Paced: every target at the same low offered load, which
# measures what a request costs in latency. The p99 target is read from the
# paced phase.
#
# A shared VM's speed drifts by tens of percent within minutes and it
# stalls for milliseconds now and then; one long run per target turned both
# into errors as large as the gaps measured. So the saturated phase runs in
# ROUNDS rounds, in each of which every target gets ROUND of wrk, in an
# order rotated by one each round; its figures are medians over rounds, and
# x bare is the median of same-round ratios. The paced phase drives all
# targets at once (PACED_ROUNDS runs of PACED_ROUND), each at an equal share
# of the offered load, so a stall of the machine lands on every target
# alike and the p99 differences are crmgate's own.
#
# The targets come from test/load/targets (see its doc comment). Finishes in
# about four minutes at the defaults and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-9}
ROUND=${ROUND:-2s}
WARMUP=${WARMUP:-3s}
# The paced phase offers PACED_RATE req/s in all, split evenly over the
# targets: each connection waits on average (uniformly from 0 to twice
# that) long enough between an answer and its next request.
PACED_RATE=${PACED_RATE:-2000}
PACED_ROUNDS=${PACED_ROUNDS:-5}
PACED_ROUND=${PACED_ROUND:-10s}
REDIS=${REDIS:-127.0.0.1:6379}

log() { printf '== %s\n' "$*" >&2; }

apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0
  log "installing $2"
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
need_pkg wrk wrk
need_pkg nginx nginx-light
need_pkg redis-server redis-server
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d /tmp/crmgate-load.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The session-redis mode needs Redis; start one on loopback if none answers.
redis_host=${REDIS%:*} redis_port=${REDIS##*:}
if ! redis-cli -h "$redis_host" -p "$redis_port" ping >/dev/null 2>&1; then
  log "starting redis-server on $REDIS"
  redis-server --bind "$redis_host" --port "$redis_port" --save "" --appendonly no >"$work/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -h "$redis_host" -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

log "building test/load/targets"
go build -o "$work/targets" ./test/load/targets
"$work/targets" -dir "$work" -redis "$REDIS" >"$work/targets.out" 2>"$work/targets.err" &
targets_pid=$!
pids+=("$targets_pid")
for _ in $(seq 300); do
  [ -f "$work/targets.tsv" ] && break
  kill -0 "$targets_pid" 2>/dev/null || { cat "$work/targets.err" >&2; exit 1; }
  sleep 0.1
done
[ -f "$work/targets.tsv" ] || { echo "targets did not come up" >&2; cat "$work/targets.err" >&2; exit 1; }
# shellcheck source=/dev/null
. "$work/crm.env"

# nginx as a plain reverse proxy to the emulator, with an upstream keepalive
# pool, adding the same CRM credential the bare Go proxy adds. Everything in
# $work: no root paths, no system config, loopback only.
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream crm {
    server ${CRM_URL#http://};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://crm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer $CRM_TOKEN";
      proxy_buffering on;
    }
  }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr" &
pids+=($!)
for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$nginx_port/Api/V8/module/Accounts/load-2k" && break; sleep 0.1; done
curl -fs -o /dev/null "http://127.0.0.1:$nginx_port/Api/V8/module/Accounts/load-2k" \
  || { echo "nginx did not come up" >&2; cat "$work/nginx/stderr" "$work/nginx/error.log" >&2; exit 1; }

# Order: the bare Go proxy first (the reference), then nginx, then crmgate.
{
  head -n1 "$work/targets.tsv"
  printf 'nginx\thttp://127.0.0.1:%s\t%s\t-\n' "$nginx_port" "$work/plain.lua"
  tail -n +2 "$work/targets.tsv"
} >"$work/order.tsv"

# phase OUT PACE_MS: a warm-up of every target, then ROUNDS rounds; writes
# a line per wrk run: round, target, then the RESULT fields.
phase() {
  local out=$1 pace=$2 n r i row name url script _admin line
  local -a rows
  mapfile -t rows <"$work/order.tsv"
  n=${#rows[@]}
  : >"$out"
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r name url script _admin <<<"$row"
    WRK_PACE_MS=$pace wrk -c "$CONNS" -t "$THREADS" -d "$WARMUP" -s "$script" "$url" >/dev/null 2>&1 || true
  done
  for r in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
      row=${rows[$(((i + r - 1) % n))]}
      IFS=$'\t' read -r name url script _admin <<<"$row"
      line=$(WRK_PACE_MS=$pace wrk -c "$CONNS" -t "$THREADS" -d "$ROUND" -s "$script" "$url" 2>&1 | grep '^RESULT' || true)
      [ -n "$line" ] || { echo "wrk against $name printed no result" >&2; exit 1; }
      printf '%s %s %s\n' "$r" "$name" "${line#RESULT }" >>"$out"
    done
    log "round $r of $ROUNDS done"
  done
}

# paced OUT: PACED_ROUNDS runs in which every target is driven at once,
# one wrk thread each; writes lines as phase does.
paced() {
  local out=$1 n r i row name url script _admin line pace
  local -a rows pids
  mapfile -t rows <"$work/order.tsv"
  n=${#rows[@]}
  pace=$((CONNS * n * 1000 / PACED_RATE))
  : >"$out"
  for r in $(seq 0 "$PACED_ROUNDS"); do
    pids=()
    for i in $(seq 0 $((n - 1))); do
      IFS=$'\t' read -r name url script _admin <<<"${rows[$i]}"
      # Round 0 is the warm-up.
      WRK_SEED=$((r * n + i)) WRK_PACE_MS=$pace wrk -c "$CONNS" -t 1 -d "$([ "$r" = 0 ] && echo "$WARMUP" || echo "$PACED_ROUND")" \
        -s "$script" "$url" >"$work/paced.$i" 2>&1 &
      pids+=($!)
    done
    wait "${pids[@]}" || true
    [ "$r" = 0 ] && continue
    for i in $(seq 0 $((n - 1))); do
      IFS=$'\t' read -r name url script _admin <<<"${rows[$i]}"
      line=$(grep '^RESULT' "$work/paced.$i" || true)
      [ -n "$line" ] || { echo "paced wrk against $name printed no result" >&2; cat "$work/paced.$i" >&2; exit 1; }
      printf '%s %s %s\n' "$r" "$name" "${line#RESULT }" >>"$out"
    done
    log "paced run $r of $PACED_ROUNDS done"
  done
}

log "saturated: wrk -c $CONNS -t $THREADS, $ROUNDS rounds of $ROUND per target"
results="$work/results.txt"
phase "$results" 0
log "paced: all targets at once, $PACED_RATE req/s in all, $PACED_ROUNDS runs of $PACED_ROUND"
paced="$work/paced.txt"
paced "$paced"

# RAW=DIR keeps the per-round results (round, target, RESULT fields).
if [ -n "${RAW:-}" ]; then mkdir -p "$RAW" && cp "$results" "$paced" "$RAW/"; fi

kill -0 "$targets_pid" 2>/dev/null || { echo "targets died during the run" >&2; cat "$work/targets.err" >&2; exit 1; }

echo
echo "crmgate load harness — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), wrk -c $CONNS -t $THREADS"
echo "mix: 35% 2 KB record reads, 30% 50-record lists (filtered), 10% product lists (buy price hidden), 10% contact reads (masked), 5% customer own account, 10% denied (403 from crmgate; the plain proxies pass them to the CRM)"
table() { # table FILE TITLE
  echo
  echo "$2"
  awk -v base="$(head -n1 "$work/order.tsv" | cut -f1)" '
  function median(list,    a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  {
    r = $1; t = $2
    if (!(t in seen)) { seen[t] = 1; order[++nt] = t }
    rps[r, t] = $3; p99[r, t] = $5
    l_rps[t] = l_rps[t] " " $3; l_p50[t] = l_p50[t] " " $4; l_p99[t] = l_p99[t] " " $5
    ok[t] += $6; denied[t] += $7; errs[t] += $8 + $9
    rounds[r] = 1
  }
  END {
    printf "%-24s %10s %9s %9s %8s %10s %8s %6s %7s\n", "target", "req/s", "p50 ms", "p99 ms", "x bare", "p99 delta", "200", "403", "errors"
    fail = 0
    for (k = 1; k <= nt; k++) {
      t = order[k]; ratio = ""; delta = ""
      for (r in rounds) {
        ratio = ratio " " rps[r, t] / rps[r, base]
        delta = delta " " p99[r, t] - p99[r, base]
      }
      printf "%-24s %10.0f %9.3f %9.3f %7.0f%% %+9.3fms %8d %6d %7d\n", t, median(l_rps[t]), median(l_p50[t]), median(l_p99[t]), 100 * median(ratio), median(delta), ok[t], denied[t], errs[t]
      if (errs[t] > 0) fail = 1
    }
    exit fail
  }' "$1"
}
status=0
table "$results" "saturated (flat out; medians of $ROUNDS rounds of $ROUND; x bare and p99 delta are medians of same-round ratios and differences)" || status=1
table "$paced" "paced (all targets at once, $PACED_RATE req/s offered in all, an equal share each; medians of $PACED_ROUNDS runs of $PACED_ROUND)" || status=1
echo
echo "targets (issue 6): crmgate >= 70% of bare-go req/s (saturated), p99 <= bare-go p99 + 1 ms (paced); errors = statuses other than 200/403 plus socket errors"
exit $status
