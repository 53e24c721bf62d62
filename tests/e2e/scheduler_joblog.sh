#!/bin/bash
# Each job's backy.log tells its runs (issue 13): every step's start with
# its command, its outcome, and for a failed backup the one-line error; for
# a good job the backup's revision id, the revisions expire removed and the
# bytes purge freed, all in the job's log (the children's stdout is not
# needed for that).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires openssl

rand_bytes g1 4 > "$T/good.raw"
write_config 2 "  fast: {often: {interval: 3s, keep: 1}}" \
"  good: {schedule: fast, source: {type: file, filename: $T/good.raw}}
  broken: {schedule: fast, source: {type: file, filename: $T/missing.raw}}"
start_daemon
GOOD=$BASE/good/backy.log
BROKEN=$BASE/broken/backy.log

log "a failing backup: start, command, the one-line error, the run's end"
wait_for 15 "grep -q 'scheduler: job broken: run often ended failed' $BROKEN 2>/dev/null" ||
  fail "no failed run in broken's log: $(cat "$BROKEN" 2>/dev/null)"
grep -Eq "info scheduler: job broken: backup started \(pid [0-9]+\): backy -l $BROKEN -b $BASE/broken backup often$" "$BROKEN" ||
  fail "no start line with the command: $(cat "$BROKEN")"
wait_for 5 "[ -n \"\$(status_field broken last-message)\" ]" || fail "no error in the status file"
err=$(status_field broken last-message)
grep -Fq "error scheduler: backup failed after " "$BROKEN" || fail "no failure line: $(cat "$BROKEN")"
grep -Eq "error scheduler: backup failed after [0-9.]+s \(exit 1\): backup: .*source image does not exist" "$BROKEN" ||
  fail "the failure line lacks the exit code or the error: $(grep failed "$BROKEN")"
grep -Fq "$err" "$BROKEN" || fail "the job log's error differs from the status file's: $err"
! grep -q "expire started" "$BROKEN" || fail "expire ran after a failed backup"

log "a good job: two runs, the second one's expire removes the first revision, purge frees it"
wait_for 15 "[ \$(revisions good) -ge 1 ]" || fail "good never backed up: $(cat "$GOOD")"
first=$(rev_ids "$BASE/good" | head -1)
rand_bytes g2 4 > "$T/good.raw.new"; mv "$T/good.raw.new" "$T/good.raw"  # new chunks
wait_for 20 "grep -q 'expire: removed revision $first' $GOOD" ||
  fail "expire's removal of $first is not in the log: $(cat "$GOOD")"
wait_for 10 "grep -Eq 'purge: freed [1-9][0-9]* of [0-9]+ chunks, .* \([0-9]+ bytes\)' $GOOD" ||
  fail "purge's freed bytes are not in the log: $(grep purge "$GOOD")"
stop_daemon
[ -z "$(rev_ids "$BASE/good" | grep -Fx "$first")" ] || fail "$first still exists"
for id in $(rev_ids "$BASE/good"); do
  grep -Eq "info backup often: revision $id \(4\.0 MiB\): .* read, .* written" "$GOOD" ||
    fail "revision $id is not in the log: $(grep 'backup often' "$GOOD")"
done
for step in backup expire purge; do
  grep -Eq "info scheduler: job good: $step started \(pid [0-9]+\): backy -l $GOOD -b $BASE/good $step" "$GOOD" ||
    fail "no start line for $step"
  grep -Eq "info scheduler: $step done in [0-9.]+s$" "$GOOD" || fail "no outcome for $step"
done
grep -Eq "info scheduler: job good: run often ended ok after [0-9.]+s$" "$GOOD" || fail "no run end"
# One story, in order: a run's start, backup, expire, purge, end.
awk '/scheduler: job good: backup started/ { s = 1 }
     s == 1 && /scheduler: backup done/ { s = 2 }
     s == 2 && /scheduler: job good: expire started/ { s = 3 }
     s == 3 && /expire: / && !/scheduler:/ { s = 4 }
     s == 4 && /scheduler: job good: purge started/ { s = 5 }
     s == 5 && /purge: freed/ { s = 6 }
     s == 6 && /run often ended ok/ { ok = 1 }
     END { exit !ok }' "$GOOD" || fail "the steps are not in order: $(cat "$GOOD")"
[ "$(stat -c %a "$GOOD")" = 600 ] || fail "the job log is mode $(stat -c %a "$GOOD")"
log "ok"
