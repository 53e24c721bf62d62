#!/usr/bin/python3
"""Checks an `strace -f` log of what a systemd unit runs against the unit's
sandbox, and prints one line per thing the sandbox would refuse:

  syscall NAME        outside SystemCallFilter= (its @groups expanded from
                      `systemd-analyze syscall-filter`, so the installed
                      systemd's definition counts)
  family AF_X         a socket() outside RestrictAddressFamilies=
  proc PATH           a /proc file opened that ProcSubset=pid hides

usage: unit_trace_check.py TRACE UNIT_FILE
Exits 1 when the trace has no system calls at all (a broken test)."""
import re
import subprocess
import sys


def settings(unit):
    out = {}
    with open(unit) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def groups():
    text = subprocess.run(["systemd-analyze", "syscall-filter"], check=True,
                          capture_output=True, text=True).stdout
    g, cur = {}, None
    for line in text.splitlines():
        if line.startswith("@"):
            cur = g.setdefault(line.split()[0], [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())
    return g


def expand(items, g, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for item in items:
        if item.startswith("@"):
            if item not in seen:
                seen.add(item)
                out |= expand(g[item], g, seen)
        else:
            out.add(item)
    return out


def allowed_syscalls(filters, g):
    # systemd applies the lines in order: an allow list, then ~ removals.
    allowed = None
    for value in filters:
        deny = value.startswith("~")
        names = expand(value.lstrip("~").split(), g)
        if deny:
            allowed = (allowed if allowed is not None else set()) - names
        else:
            allowed = names if allowed is None else allowed | names
    return allowed


def main():
    trace, unit = sys.argv[1], sys.argv[2]
    s = settings(unit)
    g = groups()
    allowed = allowed_syscalls(s.get("SystemCallFilter", []), g)
    families = set(" ".join(s.get("RestrictAddressFamilies", [])).split())
    proc_pid = s.get("ProcSubset", [""])[-1] == "pid"

    call = re.compile(r"^\d+\s+([a-z0-9_]+)\((.*)")
    opened = re.compile(r'^(?:AT_FDCWD|-?\d+), "([^"]*)"')
    used, bad = set(), []
    with open(trace, errors="replace") as f:
        for line in f:
            m = call.match(line)
            if not m:
                continue
            name, args = m.groups()
            used.add(name)
            if name == "socket" and families:
                fam = args.split(",")[0]
                if fam not in families:
                    bad.append("family " + fam)
            if name in ("open", "openat") and proc_pid:
                o = opened.match(args) if name == "openat" else re.match(r'"([^"]*)"', args)
                path = o.group(1) if o else ""
                if (path.startswith("/proc/") and
                        not re.match(r"^/proc/(self|thread-self|\d+)(/|$)", path)):
                    bad.append("proc " + path)
    if not used:
        sys.exit("no system calls in " + trace)
    if allowed is not None:
        bad += ["syscall " + n for n in sorted(used - allowed)]
    for b in sorted(set(bad)):
        print(b)


main()
