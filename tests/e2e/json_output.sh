#!/bin/bash
# --json (issue 13): `status --json`, `find --json` and `check --json` each
# print one JSON document that parses and carries the same fields and
# values as their --yaml (read by a YAML 1.1 reader, as backy 2.x's
# scripts do; timestamps compared as text, JSON having no time type); the
# check's document agrees with its plugin output and exit code.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/scheduler_lib.sh"
PY=/usr/bin/python3
$PY -c 'import yaml' 2>/dev/null || { echo "SKIP: no python3-yaml" >&2; exit 77; }

# agree A.json B.yaml: both parse, and are equal.
agree() {
  $PY - "$1" "$2" <<'PY' || fail "$1 and $2 differ: $(cat "$1") / $(cat "$2")"
import json, sys, yaml
class Loader(yaml.SafeLoader):
    pass
# Timestamps stay text: JSON has none.
Loader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
text = open(sys.argv[1]).read()
assert text.count("\n") == 1 and text.endswith("\n"), "not one line"
j = json.loads(text)
y = yaml.load(open(sys.argv[2]), Loader=Loader)
if j != y:
    print("json:", j, "\nyaml:", y, file=sys.stderr)
    sys.exit(1)
PY
}

log "status and find of a repository with two revisions"
rand_bytes img 4 > "$T/img"
"$BACKY" -b "$T/repo" init file "$T/img"
"$BACKY" -b "$T/repo" backup daily
"$BACKY" -b "$T/repo" backup hourly,manual:x
"$BACKY" -b "$T/repo" status --json > "$T/status.json"
"$BACKY" -b "$T/repo" status --yaml > "$T/status.yaml"
agree "$T/status.json" "$T/status.yaml"
[ "$(jq length "$T/status.json")" = 2 ] || fail "status --json: $(cat "$T/status.json")"
[ "$(jq -r '.[1].tags | sort | join(",")' "$T/status.json")" = "hourly,manual:x" ] ||
  fail "tags: $(cat "$T/status.json")"
jq -e '.[0].stats.duration | type == "number"' "$T/status.json" >/dev/null || fail "duration type"
jq -e '.[0].stats.bytes_read == 4194304' "$T/status.json" >/dev/null || fail "bytes_read: $(jq .[0].stats "$T/status.json")"
expect_fail "excludes" "$BACKY" -b "$T/repo" status --json --yaml

for spec in last 1 daily; do
  "$BACKY" -b "$T/repo" find -r "$spec" --json > "$T/find.json"
  "$BACKY" -b "$T/repo" find -r "$spec" --yaml > "$T/find.yaml"
  agree "$T/find.json" "$T/find.yaml"
  [ "$(jq -r .id "$T/find.json")" = "$("$BACKY" -b "$T/repo" find -r "$spec")" ] ||
    fail "find -r $spec --json names another revision"
done
# find's mapping is the one status lists.
"$BACKY" -b "$T/repo" find -r last --json | jq -c . > "$T/a"
jq -c '.[-1]' "$T/status.json" > "$T/b"
cmp -s "$T/a" "$T/b" || fail "find --json != status --json's last: $(cat "$T/a") / $(cat "$T/b")"

log "an empty repository: []"
"$BACKY" -b "$T/empty" init file "$T/img"
[ "$("$BACKY" -b "$T/empty" status --json)" = "[]" ] || fail "empty status --json"

log "a damaged revision is listed and the exit code stays 1"
cp -a "$T/repo" "$T/damaged"
id=$("$BACKY" -b "$T/damaged" find -r 1)
echo "id: [broken" > "$T/damaged/revisions/$id.rev"
rc=0; "$BACKY" -b "$T/damaged" status --json > "$T/d.json" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "damaged status --json exit $rc"
"$BACKY" -b "$T/damaged" status --yaml > "$T/d.yaml" 2>/dev/null || true
agree "$T/d.json" "$T/d.yaml"
jq -e --arg id "$id" '.[-1].id == $id and (.[-1].damaged | type == "string")' "$T/d.json" >/dev/null ||
  fail "damaged: $(cat "$T/d.json")"

log "check --json: the plugin's answer as a document"
rand_bytes a 4 > "$T/a.raw"
write_config 1 "  s: {often: {interval: 1h, keep: 5}}" \
"  a: {schedule: s, source: {type: file, filename: $T/a.raw}}
  broken: {schedule: s, source: {type: file, filename: $T/missing.raw}}"
rc=0; "$BACKY" check -c "$CONF" --json > "$T/check.json" || rc=$?
[ "$rc" = 3 ] || fail "check --json without a status file: exit $rc"
jq -e '.status == "UNKNOWN" and .code == 3 and (.summary | startswith("UNKNOWN: no status file"))' \
  "$T/check.json" >/dev/null || fail "UNKNOWN document: $(cat "$T/check.json")"
start_daemon
wait_for 20 "[ \$(revisions a) -ge 1 ] && [ \"\$(status_field broken last-result)\" = failed ]" ||
  fail "no runs"
stop_daemon
rc=0; "$BACKY" check -c "$CONF" > "$T/check.txt" || rc=$?
rcj=0; "$BACKY" check -c "$CONF" --json > "$T/check.json" || rcj=$?
rcy=0; "$BACKY" check -c "$CONF" --yaml > "$T/check.yaml" || rcy=$?
[ "$rc" = 1 ] && [ "$rcj" = 1 ] && [ "$rcy" = 1 ] || fail "exit codes $rc $rcj $rcy, want 1 (a failed job)"
agree "$T/check.json" "$T/check.yaml"
jq -e '.status == "WARNING" and .code == 1 and .failed == 1 and .late == 0 and .distrusted == 0' \
  "$T/check.json" >/dev/null || fail "check --json: $(cat "$T/check.json")"
[ "$(jq -r .summary "$T/check.json")" = "$(head -1 "$T/check.txt" | sed 's/ | .*//')" ] ||
  fail "summary differs from the status line: $(head -1 "$T/check.txt")"
jq -r '.problems[]' "$T/check.json" | while read -r line; do
  grep -qxF "$line" "$T/check.txt" || fail "problem not in the text output: $line"
done
jq -e '.jobs.a["last-result"] == "ok" and (.jobs.a.age | type == "number") and .jobs.a.sla == "ok"' \
  "$T/check.json" >/dev/null || fail "job a: $(jq -c .jobs.a "$T/check.json")"
jq -e '.jobs.broken["last-result"] == "failed" and .jobs.broken.age == null' \
  "$T/check.json" >/dev/null || fail "job broken: $(jq -c .jobs.broken "$T/check.json")"
[ "$(jq -r '.jobs.a["last-duration"]' "$T/check.json")" = "$(status_field a last-duration | awk '{ print $1 + 0 }')" ] ||
  fail "last-duration differs from the status file"
log "ok"
