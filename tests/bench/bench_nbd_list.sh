#!/usr/bin/env bash
# Benchmark of issue 12: `nbdinfo --list` against `backy nbd-server` for a
# repository with many revisions (100, 1000, 10000 by default). nbdinfo
# asks for each listed export's details (NBD_OPT_INFO), so before the
# revision list was cached the server re-read every revision's metadata
# per export: 1000 revisions took 112 s. Revisions are made with
# tests/support/clone_revisions.py (copies of one real backup). Reported per
# count: the first listing of a fresh server (reads the metadata once), and
# the median of 3 listings once the list is cached. Not a test: run by hand.
#
#   tests/bench/bench_nbd_list.sh [-b BACKY] [-c "100 1000 10000"] [-o RESULTS.md]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BACKY=./build/src/backup/backy
COUNTS="100 1000 10000"
RESULTS="$HERE/RESULTS-list.md"
CMDLINE="$0 $*"
while [ $# -gt 0 ]; do
  case $1 in
    -b) BACKY=$2; shift 2 ;;
    -c) COUNTS=$2; shift 2 ;;
    -o) RESULTS=$2; shift 2 ;;
    *) echo "usage: $0 [-b BACKY] [-c COUNTS] [-o RESULTS.md]" >&2; exit 2 ;;
  esac
done
BACKY=$(realpath "$BACKY")
command -v nbdinfo >/dev/null || { echo "nbdinfo (libnbd-bin) is needed" >&2; exit 1; }

W=$(mktemp -d /var/tmp/backy-bench-list.XXXXXX)
server=""
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$W"' EXIT

seconds() { # seconds CMD...: wall time of CMD, 2 decimals
  local s e
  s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N)
  awk -v n=$(( e - s )) 'BEGIN { printf "%.2f", n / 1e9 }'
}
list() { nbdinfo --list "nbd+unix:///?socket=$W/s"; }

rows=""
for n in $COUNTS; do
  repo=$W/repo-$n
  head -c $(( 8 << 20 )) /dev/urandom > "$W/img"
  "$BACKY" -b "$repo" init file "$W/img" >/dev/null 2>&1
  "$BACKY" -b "$repo" backup daily 2>/dev/null
  /usr/bin/python3 "$HERE/../support/clone_revisions.py" "$repo" $(( n - 1 ))
  sleep 4  # past RevisionCache::kSettle: the steady state
  taskset -c 0 "$BACKY" -b "$repo" nbd-server --socket "$W/s" 2>/dev/null &
  server=$!
  for _ in $(seq 100); do [ -S "$W/s" ] && break; sleep 0.1; done
  got=$(list | grep -c '^export=')
  [ "$got" = "$n" ] || { echo "listed $got, not $n" >&2; exit 1; }
  kill $server; wait $server 2>/dev/null || true
  rm -f "$W/s"
  taskset -c 0 "$BACKY" -b "$repo" nbd-server --socket "$W/s" 2>/dev/null &
  server=$!
  for _ in $(seq 100); do [ -S "$W/s" ] && break; sleep 0.1; done
  first=$(seconds taskset -c 1 nbdinfo --list "nbd+unix:///?socket=$W/s")
  t=()
  for _ in 1 2 3; do t+=("$(seconds taskset -c 1 nbdinfo --list "nbd+unix:///?socket=$W/s")"); done
  median=$(printf '%s\n' "${t[@]}" | sort -n | sed -n 2p)
  kill $server; wait $server 2>/dev/null || true
  server=""
  rm -f "$W/s"
  rm -rf "$repo"
  echo "$n revisions: first listing ${first} s, cached ${median} s" >&2
  rows+="| $n | $first | $median |"$'\n'
done

{
  echo "# nbdinfo --list with many revisions"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores; \`$CMDLINE\`; server on CPU 0, nbdinfo on CPU 1."
  echo "Before the revision list was cached: 100 revisions 0.9 s, 1000 revisions 112 s."
  echo
  echo "| revisions | first listing, fresh server (s) | cached, median of 3 (s) |"
  echo "|---:|---:|---:|"
  printf '%s' "$rows"
} > "$RESULTS"
cat "$RESULTS"
