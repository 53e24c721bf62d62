#!/usr/bin/python3
"""Prints the system calls in an strace -f log that a unit's
SystemCallFilter= would refuse.

usage: syscall_filter.py TRACE ALLOW_GROUP [DENY_GROUP...]
The groups (@system-service, @privileged, ...) are expanded from
`systemd-analyze syscall-filter`, so the check follows the installed
systemd's definition of them."""
import re
import subprocess
import sys


def groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter"], check=True,
                         capture_output=True, text=True).stdout
    g, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = g.setdefault(line.split()[0], [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())
    return g


def expand(name, g, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for item in g[name]:
        if item.startswith("@"):
            if item not in seen:
                seen.add(item)
                out |= expand(item, g, seen)
        else:
            out.add(item)
    return out


def main():
    trace, allow, deny = sys.argv[1], sys.argv[2], sys.argv[3:]
    g = groups()
    allowed = expand(allow, g)
    for d in deny:
        allowed -= expand(d, g)
    used = set()
    call = re.compile(r"^\d+\s+([a-z0-9_]+)\(")
    with open(trace, errors="replace") as f:
        for line in f:
            m = call.match(line)
            if m:
                used.add(m.group(1))
    if not used:
        sys.exit("no system calls in " + trace)
    for name in sorted(used - allowed):
        print(name)


main()
