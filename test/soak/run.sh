#!/usr/bin/env bash
# Soak (issue 6, not in CI): drives one crmgate target of test/load/targets at
# about 70% of its measured capacity for 30 minutes with wrk's persona mix,
# scraping crmgate's admin /metrics every minute for resident memory and
# goroutines, and fails on any error (status other than 200/403, socket
# error) or on memory or goroutines that keep growing.
#
#   test/soak/run.sh                          # 30 minutes, crmgate-session-redis
#   SOAK=2m TARGET=crmgate-bearer test/soak/run.sh
#
# Debian's wrk has no rate flag (wrk2 is not packaged), so the script halves
# the connection count until a 10 s probe stays at or under 70% of the
# capacity it measured first.
set -euo pipefail
cd "$(dirname "$0")/../.."

SOAK=${SOAK:-30m}
TARGET=${TARGET:-crmgate-session-redis}
THREADS=${THREADS:-2}
SAMPLE=${SAMPLE:-60}
REDIS=${REDIS:-127.0.0.1:6379}

log() { printf '== %s\n' "$*" >&2; }
need_pkg() {
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
need_pkg wrk wrk
need_pkg redis-server redis-server

seconds() { # 30m, 90s, 1h -> seconds
  local v=$1
  case $v in *h) echo $(( ${v%h} * 3600 ));; *m) echo $(( ${v%m} * 60 ));; *s) echo "${v%s}";; *) echo "$v";; esac
}
total=$(seconds "$SOAK")

work=$(mktemp -d /tmp/crmgate-soak.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

redis_host=${REDIS%:*} redis_port=${REDIS##*:}
if ! redis-cli -h "$redis_host" -p "$redis_port" ping >/dev/null 2>&1; then
  redis-server --bind "$redis_host" --port "$redis_port" --save "" --appendonly no >"$work/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -h "$redis_host" -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

go build -o "$work/targets" ./test/load/targets
"$work/targets" -dir "$work" -redis "$REDIS" >"$work/targets.out" 2>"$work/targets.err" &
targets_pid=$!
pids+=("$targets_pid")
for _ in $(seq 300); do
  [ -f "$work/targets.tsv" ] && break
  kill -0 "$targets_pid" 2>/dev/null || { cat "$work/targets.err" >&2; exit 1; }
  sleep 0.1
done
. "$work/crm.env"
row=$(awk -F'\t' -v t="$TARGET" '$1 == t' "$work/targets.tsv")
[ -n "$row" ] || { echo "unknown TARGET $TARGET; one of: $(cut -f1 "$work/targets.tsv" | xargs)" >&2; exit 1; }
IFS=$'\t' read -r _ url script admin <<<"$row"
[ "$admin" != "-" ] || { echo "$TARGET has no admin listener to sample" >&2; exit 1; }

# RESULT fields: req/s p50 p99 200s 403s other socket-errors
probe() { wrk -c "$1" -t "$THREADS" -d "$2" -s "$script" "$url" 2>&1 | grep '^RESULT' | cut -d' ' -f2-; }

log "measuring capacity of $TARGET (32 connections, 15 s)"
read -r cap _ <<<"$(probe 32 15s)"
goal=$(awk -v c="$cap" 'BEGIN { printf "%.0f", c * 0.7 }')
# Closed-loop wrk: throughput falls with fewer connections once latency is
# dominated by the service time; pick the largest count whose rate <= goal.
conns=32
while [ "$conns" -gt 1 ]; do
  read -r rate _ <<<"$(probe "$conns" 10s)"
  awk -v r="$rate" -v g="$goal" 'BEGIN { exit !(r <= g) }' && break
  conns=$(( conns / 2 ))
done
log "capacity ${cap} req/s; soaking at ${conns} connections (~${rate} req/s, goal ${goal}) for ${SOAK}"

metric() { # metric NAME -> value from crmgate's admin /metrics
  curl -fs -H "Authorization: Bearer $ADMIN_TOKEN" "$admin/metrics" | awk -v m="$1" '$1 == m { printf "%.0f\n", $2 }'
}

samples="$work/samples.tsv"
printf 'seconds\trss_mb\tgoroutines\n' >"$samples"
sample() { printf '%s\t%s\t%s\n' "$1" "$(( $(metric process_resident_memory_bytes) / 1048576 ))" "$(metric go_goroutines)" >>"$samples"; }

sample 0
wrk -c "$conns" -t "$THREADS" -d "${total}s" -s "$script" "$url" >"$work/wrk.out" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")
elapsed=0
while kill -0 "$wrk_pid" 2>/dev/null; do
  sleep "$SAMPLE" & wait $! || true
  elapsed=$(( elapsed + SAMPLE ))
  kill -0 "$wrk_pid" 2>/dev/null && sample "$elapsed"
done
wait "$wrk_pid" || true
sleep 2
sample end

read -r rps p50 p99 ok denied other sockerr <<<"$(grep '^RESULT' "$work/wrk.out" | cut -d' ' -f2-)"
echo
echo "crmgate soak — $(date -u +%Y-%m-%dT%H:%MZ), $TARGET, $SOAK at $conns connections, $(nproc) CPU"
printf 'throughput %.0f req/s (capacity %.0f), p50 %s ms, p99 %s ms, 200: %s, 403: %s, other statuses: %s, socket errors: %s\n' \
  "$rps" "$cap" "$p50" "$p99" "$ok" "$denied" "$other" "$sockerr"
column -t "$samples"
# Flat: the last sample within 25% (RSS) and 50 goroutines of the first
# sample taken under load, so start-up growth does not count.
awk -F'\t' -v other="$other" -v sockerr="$sockerr" '
  NR == 3 { rss0 = $2; g0 = $3 }
  NR > 1 { rss = $2; g = $3 }
  END {
    fail = 0
    if (other + sockerr > 0) { print "FAIL: errors during the soak"; fail = 1 }
    if (rss0 != "" && rss > rss0 * 1.25) { printf "FAIL: RSS grew from %d MB to %d MB\n", rss0, rss; fail = 1 }
    if (g0 != "" && g > g0 + 50) { printf "FAIL: goroutines grew from %d to %d\n", g0, g; fail = 1 }
    if (!fail) print "PASS: no errors; RSS and goroutines flat"
    exit fail
  }' "$samples"
