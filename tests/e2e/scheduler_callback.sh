#!/bin/bash
# issue 11: global.backup-completed-callback runs as in backy 2.5 after each
# successful backup: `CALLBACK JOB` with `backy status --yaml` (one YAML
# list) on its stdin, its exit status and output in the job's log. A
# failing callback does not fail the job and its output is cut; one that
# hangs is stopped at callback-timeout; one that leaves a process holding
# its output open ends the step anyway; the job keeps running either way.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires curl setsid /usr/bin/python3
/usr/bin/python3 -c 'import yaml' 2>/dev/null || { echo "SKIP: python3-yaml" >&2; exit 77; }

rand_bytes a 4 > "$T/a.raw"
echo ok > "$T/mode"
cat > "$T/cb.sh" <<CB
#!/bin/bash
case \$(cat "$T/mode") in
  ok) cat > "$T/stdin.\$1.yaml"; echo "got \$1" ;;
  fail) cat > /dev/null; for i in \$(seq 3000); do echo "noise line \$i"; done; exit 3 ;;
  hang) exec sleep 600 ;;
  stray) setsid sleep 60 & echo \$! > "$T/stray.pid"; exit 0 ;;
esac
CB
chmod +x "$T/cb.sh"
CLEANUPS+=('[ -f "$T/stray.pid" ] && kill "$(cat "$T/stray.pid")" 2>/dev/null')
write_config 1 "  s: {often: {interval: 2s, keep: 50}}" \
  "  a: {schedule: s, source: {type: file, filename: $T/a.raw}}" \
  "backup-completed-callback: $T/cb.sh, callback-timeout: 1s"
start_daemon
JOBLOG=$BASE/a/backy.log

log "the callback gets the job's name and the revisions as one YAML list"
wait_for 20 "[ -s $T/stdin.a.yaml ]" || fail "no callback: $(tail "$BASE/scheduler.log")"
/usr/bin/python3 - "$T/stdin.a.yaml" <<'PY' || fail "stdin: $(cat "$T/stdin.a.yaml")"
import sys, yaml
revs = yaml.safe_load(open(sys.argv[1]))
assert isinstance(revs, list) and len(revs) >= 1, revs
assert revs[-1]["tags"] == ["often"] and revs[-1]["uuid"] == revs[-1]["id"], revs[-1]
PY
wait_for 10 "grep -q 'scheduler: callback $T/cb.sh a exited with 0; its output:' $JOBLOG" || fail "no exit in the job log: $(tail "$JOBLOG")"
grep -q "got a" "$JOBLOG" || fail "the callback's output is not in the job log"

log "a failing callback: a warning with the end of its output; the job is ok"
echo fail > "$T/mode"
wait_for 20 "grep -q 'a exited with 3; the last 4096 bytes of its output ([0-9]* cut):' $JOBLOG" ||
  fail "no failed callback in the job log: $(tail -3 "$JOBLOG")"
grep -q "noise line 3000" "$JOBLOG" || fail "the end of the output is missing"
! grep -q "noise line 1$" "$JOBLOG" || fail "the output was not cut"
grep -q "job a: callback exited with 3" "$BASE/scheduler.log" || fail "no warning in the scheduler log"
[ "$(status_field a last-result)" = ok ] || fail "a failing callback failed the job: $(status_field a last-result)"

log "a hanging callback is stopped at its time limit; the job goes on"
echo hang > "$T/mode"
wait_for 20 "grep -q 'was stopped at its time limit of 1s' $JOBLOG" || fail "the hanging callback was not stopped: $(tail -3 "$JOBLOG")"
n=$(revisions a)
echo stray > "$T/mode"
wait_for 20 "grep -q 'but its output stayed open past its time limit of 1s' $JOBLOG" ||
  fail "a callback's stray process blocked the run: $(tail -3 "$JOBLOG")"
echo ok > "$T/mode"
wait_for 20 "[ \$(revisions a) -gt $n ]" || fail "no backup after the stopped callbacks"
[ "$(status_field a last-result)" = ok ] || fail "a: $(status_field a last-result)"
stop_daemon
