#!/usr/bin/env python3
"""Parses a Nagios plugin's output on stdin (plugin guidelines, "Plugin
Output" and "Performance data"): the status line, then the long output
whose line with a '|' starts the second perfdata part, which goes on to the
end. Fails (exit 1, why on stderr) on anything else; prints "text: LINE"
for the status line's text, then "perf: LABEL VALUE UOM WARN CRIT MIN MAX"
per datum, spaces in labels as '_' and empty fields as '-'."""
import re
import sys

DATUM = re.compile(
    r"('(?:[^']|'')+'|[^\s'=]+)=(U|-?[0-9]+(?:\.[0-9]+)?)(s|ms|us|%|B|KB|MB|TB|c)?"
    r"(?:;([-0-9.:~@]*))?(?:;([-0-9.:~@]*))?(?:;(-?[0-9.]*))?(?:;(-?[0-9.]*))?")


def perf(text):
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = DATUM.match(text, pos)
        if not m:
            sys.exit("bad perfdata at %r" % text[pos:])
        if m.group(2) == "U" and m.group(3):
            sys.exit("U with a unit: " + m.group(0))
        out.append(m.groups())
        pos = m.end()
        if pos < len(text) and text[pos] != " ":
            sys.exit("junk after %r" % m.group(0))
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return out


def main():
    lines = sys.stdin.read().split("\n")
    if lines[-1] != "" or len(lines) < 2:
        sys.exit("the output does not end in a newline")
    lines = lines[:-1]
    first, _, p = lines[0].partition("|")
    if not first.strip():
        sys.exit("no status text")
    data = perf(p)
    rest = lines[1:]
    for i, line in enumerate(rest):
        if "|" in line:
            data += perf(line.partition("|")[2])
            for more in rest[i + 1:]:
                if "|" in more:
                    sys.exit("a third '|': " + more)
                data += perf(more)
            break
    print("text: " + first.rstrip())
    for d in data:
        label = d[0][1:-1].replace("''", "'") if d[0].startswith("'") else d[0]
        print("perf: " + label.replace(" ", "_") + " " +
              " ".join(x if x else "-" for x in d[1:]))


main()
