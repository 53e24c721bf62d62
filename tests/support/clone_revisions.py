#!/usr/bin/python3
"""clone_revisions.py REPO N: adds N revisions to the backy repository REPO,
each a copy of its newest revision under a new id, dated one second apart
before it (so SPEC "last" still names the original). The index is hard
linked, the metadata written to tmp/ and renamed into revisions/, index
first, as backy publishes (man/backy-store.5). For tests and benchmarks
that need many revisions fast: 10,000 take seconds, not 10,000 backups.
"""
import datetime
import os
import random
import re
import string
import sys

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase


def main():
    repo, n = sys.argv[1], int(sys.argv[2])
    revs = os.path.join(repo, 'revisions')
    tmp = os.path.join(repo, 'tmp')
    newest = None
    for name in os.listdir(revs):
        if not name.endswith('.rev'):
            continue
        text = open(os.path.join(revs, name)).read()
        ts = re.search(r'^timestamp: (\S+)$', text, re.M).group(1)
        if newest is None or ts > newest[0]:
            newest = (ts, name[:-4], text)
    if newest is None:
        sys.exit('clone_revisions: no revision in ' + repo)
    ts, old_id, text = newest
    when = datetime.datetime.strptime(ts, '%Y-%m-%dT%H:%M:%S.%fZ')
    rng = random.SystemRandom()
    for i in range(1, n + 1):
        new_id = ''.join(rng.choice(ALPHABET) for _ in range(22))
        stamp = (when - datetime.timedelta(seconds=i)).strftime(
            '%Y-%m-%dT%H:%M:%S.%fZ')
        body = re.sub(r'^id: .*$', 'id: ' + new_id, text, count=1, flags=re.M)
        body = re.sub(r'^timestamp: .*$', 'timestamp: ' + stamp, body,
                      count=1, flags=re.M)
        os.link(os.path.join(revs, old_id + '.index'),
                os.path.join(revs, new_id + '.index'))
        t = os.path.join(tmp, new_id + '.rev.tmp')
        with open(t, 'w') as f:
            f.write(body)
        os.chmod(t, 0o600)
        os.rename(t, os.path.join(revs, new_id + '.rev'))


if __name__ == '__main__':
    main()
