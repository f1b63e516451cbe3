#!/usr/bin/env bash
# Runs every native Go fuzz target in the module (issue 6, not in CI), each
# for FUZZTIME (default 10m), one after the other, and prints one line per
# target. A finding leaves its input under the package's testdata/fuzz and
# makes the script fail.
#
#   test/fuzz/run.sh                 # 10 minutes per target
#   FUZZTIME=30s test/fuzz/run.sh
#   PARALLEL=1 test/fuzz/run.sh      # one fuzz worker, leaves a core free
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"

FUZZTIME=${FUZZTIME:-10m}
PARALLEL=${PARALLEL:-$(nproc)}
log="$(mktemp -d /tmp/crmgate-fuzz.XXXXXX)"
trap 'rm -rf "$log"' EXIT

# go test -list prints the matching names, then "ok <package> <time>".
targets=()
while read -r pkg; do
  while read -r name; do
    targets+=("$pkg $name")
  done < <(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
done < <(go list ./...)
[ "${#targets[@]}" -gt 0 ] || { echo "no fuzz targets found" >&2; exit 1; }

echo "crmgate fuzz — $(date -u +%Y-%m-%dT%H:%MZ), ${#targets[@]} targets, $FUZZTIME each, $PARALLEL of $(nproc) CPU"
fail=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  out="$log/$name.log"
  if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel "$PARALLEL" "$pkg" >"$out" 2>&1; then
    execs=$(grep -o 'execs: [0-9]*' "$out" | tail -1 | awk '{print $2}')
    printf 'ok    %-60s %s execs\n' "${pkg#github.com/crmgate/crmgate/}.$name" "${execs:-?}"
  else
    fail=1
    printf 'FAIL  %-60s\n' "${pkg#github.com/crmgate/crmgate/}.$name"
    tail -20 "$out" | sed 's/^/      /'
  fi
done
exit "$fail"
