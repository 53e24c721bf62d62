#!/bin/bash
# issue 15: the scheduler copies each job's new revisions to a second
# repository (global.copy-to, a job opting out with copy-to: false) and
# expires them there by the copy's own schedule; a copy into an unwritable
# target fails the copy step (job log, status, metrics) and the next run
# sends what is missing. Runs are requested over the API, so each one's
# tags are known: the first gets often and rare, the others often.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires openssl curl

OFF=$T/offsite
rand_bytes a1 4 > "$T/a.raw"
rand_bytes b1 1 > "$T/b.raw"
write_config 2 "  s: {often: {interval: 1h, keep: 3}, rare: {interval: 1w, keep: 1}}" \
"  a: {schedule: s, source: {type: file, filename: $T/a.raw}}
  b: {schedule: s, source: {type: file, filename: $T/b.raw}, copy-to: false}" \
"copy-to: $OFF, copy-schedule: {often: {keep: 1}}"
start_daemon
LOG=$BASE/a/backy.log

# runs_ended JOB: how many runs of JOB ended (its log says so).
runs_ended() { { grep -c "scheduler: job $1: run .* ended" "$BASE/$1/backy.log" 2>/dev/null || true; } | tail -1; }

# run_a N: request a's run and wait for its end (the N-th).
run_a() {
  api POST /v1/jobs/a/run -H "Authorization: Bearer $TOKEN" > /dev/null
  grep -q 202 "$T/code" || fail "run of a not accepted: $(cat "$T/code") $(cat "$T/body")"
  wait_for 30 "[ \$(runs_ended a) -ge $1 ]" || fail "run $1 of a did not end: $(tail -20 "$LOG")"
}

log "four runs of a: each copies what is new, the target keeps its own often: 1"
wait_for 30 "[ \$(runs_ended a) -ge 1 ] && [ \$(runs_ended b) -ge 1 ]" ||
  fail "no first runs: $(cat "$LOG" 2>/dev/null)"
for n in 2 3 4; do
  rand_bytes a$n 4 > "$T/a.raw.new"; mv "$T/a.raw.new" "$T/a.raw"
  run_a $n
done
grep -q "ended ok" "$LOG" || fail "a's runs did not end ok: $(grep ended "$LOG")"
[ "$(grep -c 'ended ok' "$LOG")" -eq 4 ] || fail "not every run of a ended ok: $(grep ended "$LOG")"
mapfile -t src < <(rev_ids "$BASE/a")
mapfile -t dst < <(rev_ids "$OFF/a")
[ "${#src[@]}" -eq 4 ] || fail "source has ${#src[@]} revisions, not 4 (often: 3 + the first, rare)"
# The target: the first revision (rare, kept as in the job's schedule) and
# the newest (often: keep 1 there).
[ "${dst[*]}" = "${src[0]} ${src[3]}" ] || fail "target has ${dst[*]}, expected ${src[0]} ${src[3]}"
for id in "${dst[@]}"; do
  st=$("$BACKY" -b "$BASE/a" status --yaml | awk -v id="$id" '$0 ~ "id: " id { f = 1 } f && /tags:/ { print; exit }')
  tt=$("$BACKY" -b "$OFF/a" status --yaml | awk -v id="$id" '$0 ~ "id: " id { f = 1 } f && /tags:/ { print; exit }')
  [ -n "$st" ] && [ "$st" = "$tt" ] || fail "revision $id: tags $st in the source, $tt in the target"
  [ "$(rev_field "$OFF/a" "$id" timestamp)" = "$(rev_field "$BASE/a" "$id" timestamp)" ] ||
    fail "revision $id: another timestamp in the target"
  rm -f "$T/from-target.raw" "$T/from-source.raw"
  "$BACKY" -b "$OFF/a" restore -r "$id" "$T/from-target.raw" 2>/dev/null
  "$BACKY" -b "$BASE/a" restore -r "$id" "$T/from-source.raw" 2>/dev/null
  cmp -s "$T/from-target.raw" "$T/from-source.raw" || fail "revision $id restores differently from the target"
done
cmp -s "$T/from-target.raw" "$T/a.raw" || fail "the newest copied revision is not the image"
grep -Fq "rare" <<<"$("$BACKY" -b "$OFF/a" status)" || fail "the target lost the rare revision"
# The target's config has the copy's schedule: a manual expire keeps all.
grep -Eq 'often:.*' "$OFF/a/config" || fail "no schedule in the target's config: $(cat "$OFF/a/config")"
[ "$("$BACKY" -b "$OFF/a" expire 2>&1 | grep -c 'removed revision')" -eq 0 ] ||
  fail "a manual expire of the target removes more than the scheduler's"
# Each run sent only what was new: its copy named only the revision it made.
for n in 2 3 4; do
  id=${src[$((n - 1))]}
  [ "$(grep -E "copy started .* copy --to $OFF/a" "$LOG" | sed -n ${n}p | grep -o -- '-r [^ ]*' | tr '\n' ' ')" = "-r $id " ] ||
    fail "run $n did not copy just $id: $(grep 'copy started' "$LOG" | sed -n ${n}p)"
done
grep -Eq "info scheduler: copy done in [0-9.]+s$" "$LOG" || fail "no copy outcome in the log"
grep -Eq "info scheduler: job a: copy-expire started \(pid [0-9]+\): backy -l $LOG -b $OFF/a expire$" "$LOG" ||
  fail "no expire of the target: $(grep copy-expire "$LOG")"
[ "$(status_field a last-copy-result)" = ok ] || fail "status: last-copy-result $(status_field a last-copy-result)"
[ -n "$(status_field a last-copy-time)" ] || fail "status: no last-copy-time"
[ "$(status_field a copy-to)" = "$OFF/a" ] || fail "status: copy-to $(status_field a copy-to)"
grep -Eq "^backy_last_copy_success_timestamp_seconds\{job=\"a\"\} [1-9]" "$BASE/backy.prom" ||
  fail "no copy metric for a: $(grep copy "$BASE/backy.prom")"

log "b opted out: no copy, no target"
[ ! -e "$OFF/b" ] || fail "b was copied"
! grep -q "copy started" "$BASE/b/backy.log" || fail "b ran a copy"
[ "$(status_field b copy-to)" = "" ] && [ "$(status_field b last-copy-result)" = none ] ||
  fail "b's status shows a copy"
! grep -q 'backy_last_copy_success_timestamp_seconds{job="b"}' "$BASE/backy.prom" || fail "b has a copy metric"

log "an unwritable target: the copy fails, logged, in the status and metrics"
if mount --bind "$OFF/a" "$OFF/a" 2>/dev/null && mount -o remount,bind,ro "$OFF/a"; then
  CLEANUPS+=("umount $OFF/a 2>/dev/null")
  fix_target() { umount "$OFF/a"; }
else
  # Without mounts: the target's place holds a file, not a repository.
  mv "$OFF/a" "$OFF/a.away" && touch "$OFF/a"
  fix_target() { rm "$OFF/a" && mv "$OFF/a.away" "$OFF/a"; }
fi
rand_bytes a5 4 > "$T/a.raw.new"; mv "$T/a.raw.new" "$T/a.raw"
run_a 5
id5=$(rev_ids "$BASE/a" | tail -1)
grep -Eq "error scheduler: copy failed after [0-9.]+s \(exit [0-9]+\): .+" "$LOG" ||
  fail "no copy failure in the job log: $(tail -8 "$LOG")"
err=$(grep -E "error scheduler: copy failed" "$LOG" | tail -1 | sed 's/.*(exit [0-9]*): //')
log "the copy's error: $err"
grep -q "ended warning after .*: copy to $OFF/a: " "$LOG" || fail "the run did not end warning: $(grep ended "$LOG" | tail -1)"
[ "$(grep -c 'copy-expire started' "$LOG")" -eq 4 ] || fail "the unwritable target was expired"
wait_for 5 "[ \"\$(status_field a last-copy-result)\" = failed ]" ||
  fail "status: last-copy-result $(status_field a last-copy-result)"
[ "$(status_field a last-copy-message)" = "$err" ] ||
  fail "status: last-copy-message '$(status_field a last-copy-message)', the log says '$err'"
[ "$(status_field a copy-failures-total)" = 1 ] || fail "status: copy-failures-total $(status_field a copy-failures-total)"
[ "$(status_field a last-result)" = warning ] || fail "status: last-result $(status_field a last-result)"
wait_for 5 "grep -q '^backy_copy_failures_total{job=\"a\"} 1' $BASE/backy.prom" ||
  fail "no copy failure in the metrics: $(grep copy "$BASE/backy.prom")"
api GET /v1/status -H "Authorization: Bearer $TOKEN" | grep -q "\"last-copy-result\":\"failed\"" ||
  fail "/v1/status does not show the failed copy: $(cat "$T/body")"
[ "$(rev_ids "$OFF/a" 2>/dev/null | tail -1)" != "$id5" ] || fail "revision $id5 reached the unwritable target"

log "fixed: the next run sends what is missing"
fix_target
rand_bytes a6 4 > "$T/a.raw.new"; mv "$T/a.raw.new" "$T/a.raw"
run_a 6
id6=$(rev_ids "$BASE/a" | tail -1)
grep -E "copy started .* copy --to $OFF/a" "$LOG" | tail -1 | grep -q -- "-r $id5 -r $id6" ||
  fail "the copy after the fix did not send $id5 and $id6: $(grep 'copy started' "$LOG" | tail -1)"
[ "$(status_field a last-copy-result)" = ok ] || fail "status after the fix: $(status_field a last-copy-result)"
[ "$(status_field a last-copy-message)" = "" ] || fail "status keeps the old error"
[ "$(rev_ids "$OFF/a" | tail -1)" = "$id6" ] || fail "the target's newest is not $id6"
rm -f "$T/from-target.raw"
"$BACKY" -b "$OFF/a" restore -r "$id6" "$T/from-target.raw" 2>/dev/null
cmp -s "$T/from-target.raw" "$T/a.raw" || fail "revision $id6 restores differently from the target"
stop_daemon
log "ok"
