# Helpers for the scheduler's end-to-end tests; source after lib.sh.
#   BASE      repositories (BASE/JOB), status file, API socket
#   CONF      the config file
#   start_daemon / stop_daemon / wait_for
BASE=$T/base
CONF=$T/backy.conf
TOKEN=test-token-$$
DPID=

# write_config WORKER_LIMIT SCHEDULES_YAML JOBS_YAML [GLOBAL_EXTRA]
write_config() {
  cat > "$CONF.tmp" <<CONF_EOF
global: {base-dir: $BASE, worker-limit: $1, status-interval: 1s, backoff-base: 2s${4:+, $4}}
api: {token: $TOKEN}
schedules:
$2
jobs:
$3
CONF_EOF
  mv "$CONF.tmp" "$CONF"
}

start_daemon() {
  "$BACKY" scheduler -c "$CONF" >>"$T/daemon.out" 2>&1 &
  DPID=$!
  CLEANUPS+=("kill -KILL $DPID 2>/dev/null")
  wait_for 10 "[ -S $BASE/api.sock ]" || fail "daemon did not start: $(cat "$T/daemon.out")"
}

# stop_daemon: SIGTERM, and the daemon must exit 0 within 30 s.
stop_daemon() {
  kill -TERM "$DPID"
  local rc=0
  timeout 30 tail --pid="$DPID" -f /dev/null || fail "daemon did not stop"
  wait "$DPID" || rc=$?
  [ "$rc" -eq 0 ] || fail "daemon exited $rc: $(tail -5 "$T/daemon.out")"
}

# wait_for SECONDS CONDITION: poll the shell condition every 0.2 s.
wait_for() {
  local deadline=$(( $(date +%s) + $1 ))
  while ! eval "$2"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# revisions JOB: how many revisions the job's repository has.
revisions() {
  { rev_ids "$BASE/$1" 2>/dev/null || true; } | wc -l
}

# api METHOD PATH [curl args]: prints the body; the HTTP code goes to $T/code.
api() {
  local m=$1 p=$2; shift 2
  curl -s -o "$T/body" -w '%{http_code}' --unix-socket "$BASE/api.sock" \
    -X "$m" "$@" "http://backy$p" > "$T/code"
  cat "$T/body"
}

# status_field JOB FIELD: a field of the job in the status file.
status_field() {
  awk -v job="  $1:" -v f="    $2:" '
    $0 == job { in_job = 1; next }
    /^  [^ ]/ { in_job = 0 }
    in_job && index($0, f) == 1 { sub(f " *", ""); gsub(/"/, ""); print; exit }' "$BASE/status"
}

# rev_times JOB: epoch seconds of each revision, oldest first.
rev_times() {
  "$BACKY" -b "$BASE/$1" status --yaml | awk '$1 == "timestamp:" { print $2 }' |
    while read -r ts; do date -d "$ts" +%s; done
}
