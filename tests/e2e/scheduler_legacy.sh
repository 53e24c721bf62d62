#!/bin/bash
# issue 11: the scheduler with a backy 2.5 /etc/backy.conf as it is (telnet
# keys, a backup-completed-callback, a flyingcircus job, no api section):
# it starts with one warning per 2.x-only key, upgrades the job's 2.x
# repository (a copy of tests/data/legacy-backy/v253) before its first
# backup, backs it up incrementally, and runs the callback with `backy
# status --yaml` (one YAML list: every 2.x revision and the new one) on its
# stdin. The flyingcircus job's repository gets a ceph-rbd config without
# the Consul token, which appears nowhere; its backup (no cluster) just
# fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
requires /usr/bin/python3
/usr/bin/python3 -c 'import yaml' 2>/dev/null || { echo "SKIP: python3-yaml" >&2; exit 77; }
FIXTURES=$(cd "$(dirname "$0")/../data/legacy-backy" && pwd)
TOKEN_FC=a211c244-846b-11e5-999b-081196cf15b4

mkdir -p "$BASE"
cp -a "$FIXTURES/v253" "$BASE/old"
chmod -R u+w "$BASE/old"
# The image at the newest 2.x backup, then a 4 KiB change.
"$BACKY" -b "$BASE/old" restore -r 0 "$T/old.raw"
rand_bytes change 1 > "$T/change"
dd if="$T/change" of="$T/old.raw" bs=4096 count=1 seek=700 conv=notrunc status=none
# What a 2.x callback would have read, from the 2.x repository in place.
"$BACKY" -b "$BASE/old" status --yaml | /usr/bin/python3 -c '
import sys, yaml
revs = yaml.safe_load(sys.stdin)
assert [r["trust"] for r in revs] == ["trusted", "distrusted", "trusted"], revs
assert revs[2]["tags"] == ["manual:before-upgrade"] and revs[2]["parent"] == revs[1]["uuid"], revs[2]
' || fail "status --yaml of the 2.x repository"
sed -i "s|/srv/images/vm253.raw|$T/old.raw|" "$BASE/old/config"

cat > "$T/callback.sh" <<CB
#!/bin/bash
cat > "$T/callback.\$1.yaml"
echo "callback for \$1 read \$(wc -c < "$T/callback.\$1.yaml") bytes"
CB
chmod +x "$T/callback.sh"

# A 2.5 config, block style as 2.x's docs write it.
cat > "$CONF" <<CONF_EOF
global:
    base-dir: $BASE
    worker-limit: 2
    status-interval: 1
    backup-completed-callback: $T/callback.sh
    telnet-addrs: 127.0.0.1, ::1
    telnet-port: 6023
schedules:
    default:
        often:
            interval: 1h
            keep: 5
        daily:
            interval: 1d
            keep: 9
        weekly:
            interval: 7d
            keep: 5
jobs:
    old:
        schedule: default
        source:
            type: file
            filename: $T/old.raw
    fc:
        schedule: default
        source:
            type: flyingcircus
            consul_acl_token: $TOKEN_FC
            vm: fc
            pool: nowhere
            image: fc.root
CONF_EOF

log "a 2.x config starts: one warning per telnet key and for the flyingcircus job"
"$BACKY" scheduler -c "$CONF" >>"$T/daemon.out" 2>&1 &
DPID=$!
CLEANUPS+=("kill -KILL $DPID 2>/dev/null")
wait_for 10 "[ -f $BASE/status ]" || fail "daemon did not start: $(cat "$T/daemon.out")"
# The daemon's log is BASE/scheduler.log (backy(1) LOGS); what it says
# before that file is open goes to stderr. Either way, once.
dlog() { cat "$T/daemon.out" "$BASE/scheduler.log" 2>/dev/null; }
for key in telnet-addrs telnet-port; do
  [ "$(dlog | grep -c "global.$key is ignored: backy 2.x's telnet console is replaced by the HTTP API")" = 1 ] ||
    fail "not one warning for $key: $(dlog)"
done
[ "$(dlog | grep -c "jobs.fc: source type 'flyingcircus' is backed up as ceph-rbd nowhere/fc.root without the Consul-driven filesystem freeze")" = 1 ] ||
  fail "not one flyingcircus warning: $(dlog)"
dlog | grep -q "$CONF:[0-9]*: global.telnet-port" || fail "the warning names no file:line"
wait_for 10 "[ -f $BASE/fc/config ]" || fail "no repository for the flyingcircus job"
grep -q "type: ceph-rbd" "$BASE/fc/config" || fail "fc's repository is not ceph-rbd: $(cat "$BASE/fc/config")"

log "the 2.x repository is upgraded before its backup, then backed up"
wait_for 60 "[ -s $T/callback.old.yaml ]" || fail "no callback for old: $(tail -20 "$BASE/scheduler.log")"
grep -q "^format:" "$BASE/old/config" || fail "old/config is not upgraded: $(cat "$BASE/old/config")"
grep -q "filename: $T/old.raw" "$BASE/old/config" || fail "old/config lost the job's source"
[ ! -e "$BASE/old/chunks/store" ] && ! ls "$BASE/old"/*.rev >/dev/null 2>&1 ||
  fail "2.x files left after the upgrade: $(ls -A "$BASE/old")"
grep -q "scheduler: a backy 2.x repository: running backy upgrade" "$BASE/old/backy.log" &&
  grep -q "scheduler: backy upgrade done" "$BASE/old/backy.log" ||
  fail "the upgrade is not in the job's log: $(cat "$BASE/old/backy.log")"
/usr/bin/python3 - "$T/callback.old.yaml" "$FIXTURES/expected.txt" <<'PY' || fail "the callback's stdin: $(cat "$T/callback.old.yaml")"
import datetime, sys, yaml
revs = yaml.safe_load(open(sys.argv[1]))
old = [l.split()[1] for l in open(sys.argv[2]) if l.startswith("v253 ")]
assert isinstance(revs, list), "not one YAML list"
ids = [r["uuid"] for r in revs]
assert ids[:3] == old and len(ids) == 4, ids
new = revs[3]
assert new["parent"] == old[2], "the first backup is not based on the newest 2.x revision"
assert "often" in new["tags"], new["tags"]
assert revs[1]["trust"] == "distrusted", revs[1]["trust"]
for r in revs:
  assert isinstance(r["timestamp"], datetime.datetime)
  assert isinstance(r["stats"]["duration"], float)
  assert isinstance(r["stats"]["bytes_written"], int)
# A 4 KiB change: one chunk written.
assert new["stats"]["chunks_new"] <= 1, new["stats"]
PY
grep -q "scheduler: callback $T/callback.sh old exited with 0; its output:" "$BASE/old/backy.log" ||
  fail "the callback's exit is not in the job's log: $(tail "$BASE/old/backy.log")"
grep -q "callback for old read [0-9]* bytes" "$BASE/old/backy.log" || fail "the callback's output is not in the job's log"
[ "$(status_field old last-result)" = ok ] || fail "old: $(status_field old last-result): $(status_field old last-message)"

log "the flyingcircus job fails (no cluster); no callback; the token is nowhere"
wait_for 60 "[ \"\$(status_field fc last-result)\" = failed ]" || fail "fc did not fail: $(status_field fc last-result)"
[ ! -e "$T/callback.fc.yaml" ] || fail "a callback ran after a failed backup"
! grep -rqs "$TOKEN_FC" "$BASE" "$T/daemon.out" || fail "the consul_acl_token was written: $(grep -rls "$TOKEN_FC" "$BASE" "$T/daemon.out")"
stop_daemon
