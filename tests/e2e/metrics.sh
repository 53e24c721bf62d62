#!/bin/bash
# Prometheus metrics (issue 13): GET /metrics on the scheduler's API and the
# textfile-collector file backy.prom next to the status file, both accepted
# by `promtool check metrics` and agreeing with the status file (and the
# status file with the repositories); /metrics needs the token unless
# api.metrics-public is true, and then only /metrics is public.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires curl promtool

rand_bytes good 4 > "$T/good.raw"
write_config 2 "  fast: {often: {interval: 3s, keep: 5}}" \
"  good: {schedule: fast, source: {type: file, filename: $T/good.raw}}
  broken: {schedule: fast, source: {type: file, filename: $T/missing.raw}}"
start_daemon
wait_for 20 "[ \$(revisions good) -ge 2 ] && [ \"\$(status_field broken failures-total)\" -ge 2 ] 2>/dev/null" ||
  fail "no runs: good $(revisions good), broken $(status_field broken failures-total)"

log "/metrics needs the token"
api GET /metrics > /dev/null
[ "$(cat "$T/code")" = 401 ] || fail "/metrics without a token: $(cat "$T/code")"
api GET /metrics -H "Authorization: Bearer wrong" > /dev/null
[ "$(cat "$T/code")" = 401 ] || fail "/metrics with a wrong token: $(cat "$T/code")"
curl -s -D "$T/headers" -o "$T/metrics" --unix-socket "$BASE/api.sock" \
  -H "Authorization: Bearer $TOKEN" http://backy/metrics
grep -q "^HTTP/1.1 200" "$T/headers" || fail "/metrics: $(head -1 "$T/headers")"
grep -qi "^content-type: text/plain; version=0.0.4" "$T/headers" ||
  fail "/metrics content type: $(grep -i content-type "$T/headers")"
promtool check metrics < "$T/metrics" || fail "promtool rejects /metrics: $(cat "$T/metrics")"
grep -q '^backy_jobs_running ' "$T/metrics" || fail "no backy_jobs_running"
grep -q '^backy_revisions{job="good"} ' "$T/metrics" || fail "no backy_revisions for good"

log "metrics-public: /metrics without a token, nothing else"
sed -i "s/^api: {token: $TOKEN}/api: {token: $TOKEN, metrics-public: true}/" "$CONF"
kill -HUP "$DPID"
wait_for 10 "grep -q 'SIGHUP: config reloaded' '$BASE/scheduler.log'" || fail "no reload"
[ "$(api GET /metrics | grep -c '^backy_sla_ok{')" = 2 ] || fail "public /metrics: $(cat "$T/body")"
[ "$(cat "$T/code")" = 200 ] || fail "public /metrics: $(cat "$T/code")"
api GET /v1/status > /dev/null
[ "$(cat "$T/code")" = 401 ] || fail "/v1/status without a token: $(cat "$T/code")"
api POST /v1/jobs/good/run > /dev/null
[ "$(cat "$T/code")" = 401 ] || fail "run without a token: $(cat "$T/code")"
api POST /metrics > /dev/null
[ "$(cat "$T/code")" = 405 ] || fail "POST /metrics: $(cat "$T/code")"
stop_daemon
grep -q "api: GET /metrics 200" "$BASE/scheduler.log" &&
  fail "every scrape is logged: $(grep -c "GET /metrics 200" "$BASE/scheduler.log") lines"
grep -q "api: GET /metrics 401" "$BASE/scheduler.log" || fail "the refused scrape is not logged"

log "backy.prom: owner-only, accepted by promtool, the same figures as the status file"
PROM=$BASE/backy.prom
[ -f "$PROM" ] || fail "no $PROM"
[ "$(stat -c %a "$PROM")" = 600 ] || fail "backy.prom mode $(stat -c %a "$PROM")"
promtool check metrics < "$PROM" || fail "promtool rejects backy.prom: $(cat "$PROM")"
ls -A "$BASE" | grep -q "^\.tmp-" && fail "a temporary file is left in $BASE: $(ls -A "$BASE")"

# metric NAME JOB: the sample's value in backy.prom ("" if none).
metric() {
  awk -v m="$1{job=\"$2\"}" '$1 == m { print $2 }' "$PROM"
}
same() {  # same WHAT A B
  [ "$2" = "$3" ] || fail "$1: $2 != $3"
  log "$1: $2"
}
num() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }

same "good revisions" "$(metric backy_revisions good)" "$(status_field good revisions)"
same "good revisions on disk" "$(status_field good revisions)" "$(revisions good)"
same "good bytes read" "$(num "$(metric backy_last_bytes_read good)")" "$(status_field good newest-bytes-read)"
same "good bytes read (revision)" "$(status_field good newest-bytes-read)" "$(rev_field "$BASE/good" last bytes_read)"
same "good bytes written" "$(num "$(metric backy_last_bytes_written good)")" "$(status_field good newest-bytes-written)"
same "good bytes written (revision)" "$(status_field good newest-bytes-written)" "$(rev_field "$BASE/good" last bytes_written)"
same "good last success" "$(num "$(metric backy_last_success_timestamp_seconds good)")" \
  "$(date -d "$(status_field good newest-revision)" +%s)"
same "good last duration" "$(metric backy_last_duration_seconds good)" \
  "$(awk -v v="$(status_field good last-duration)" 'BEGIN { print v + 0 }')"
same "good sla" "$(metric backy_sla_ok good)" 1
same "good repository bytes" "$(num "$(metric backy_repository_bytes good)")" "$(status_field good repository-bytes)"
[ "$(status_field good repository-bytes)" -ge $((4 * 1024 * 1024)) ] ||
  fail "good's repository is $(status_field good repository-bytes) bytes, holding a 4 MiB image"
same "broken failures" "$(metric backy_failures_total broken)" "$(status_field broken failures-total)"
same "good failures" "$(metric backy_failures_total good)" 0
same "broken revisions" "$(metric backy_revisions broken)" 0
[ -z "$(metric backy_last_success_timestamp_seconds broken)" ] || fail "broken has a last success"
same "running" "$(awk '$1 == "backy_jobs_running" { print $2 }' "$PROM")" "$(awk '$1 == "running:" { print $2 }' "$BASE/status")"
same "queued" "$(awk '$1 == "backy_jobs_queued" { print $2 }' "$PROM")" "$(awk '$1 == "queued:" { print $2 }' "$BASE/status")"
log "ok"
