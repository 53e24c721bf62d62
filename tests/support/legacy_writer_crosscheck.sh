#!/bin/bash
# A manual cross-check of backy-test-legacy-writer against the genuine
# backy 2.x code, for the cases the fixtures lack: runs the chunked File
# and copy_overwrite() of tags 2.4.3 and 2.5.3 (read from a git clone of
# flyingcircusio/backy, nothing copied from it) with stand-in codecs on a
# series of images (shrinking within a chunk and to a chunk boundary,
# changing a short last chunk, growing past 20 chunks, all zeros), and the
# writer on the same series; per revision the mapping's key order, its
# size and each slot's plain chunk (md5, length) must be the same.
#   tests/support/legacy_writer_crosscheck.sh BACKY_2X_GIT_DIR [WRITER]
# Needs /usr/bin/python3. Not run by ctest (CI has no 2.x source).
set -euo pipefail
GIT=$1
WRITER=$(readlink -f "${2:-$(dirname "$0")/../../build/tests/backy-test-legacy-writer}")
T=$(mktemp -d /tmp/legacy-crosscheck.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"

cat >harness.py <<'EOF'
# harness.py SRC REPO IMG...: 2.x's `backup` of each image in turn (the
# mapping copied from the previous revision, copy_overwrite into the
# chunked File), printing "revN size=S slot:md5:len ..." per revision.
import ast, hashlib, importlib.util, json, os, shutil, sys, types
src, repo, *images = sys.argv[1:]
class Quiet:
    def __getattr__(self, n): return lambda *a, **k: None
def module(name, **attrs):
    m = types.ModuleType(name); m.__dict__.update(attrs); sys.modules[name] = m
    return m
# Stand-in codecs: the harness checks layout and content, not the codecs
# (the fixtures and legacy_writer_test check those).
module('lzo', compress=lambda b: b'\xf0' + len(b).to_bytes(4, 'big') + bytes(b),
       decompress=lambda b: b[5:], error=Exception)
module('mmh3', hash_bytes=lambda d: hashlib.md5(d).digest())
stdlib = module('structlog.stdlib', BoundLogger=object, get_logger=lambda *a, **k: Quiet())
module('structlog', get_logger=lambda *a, **k: Quiet(), stdlib=stdlib)
class BackendException(Exception): pass
backy = module('backy', __path__=[])
backy.utils = module('backy.utils', posix_fadvise=lambda *a: None)
backy.backends = module('backy.backends', __path__=[], BackendException=BackendException)
chunked = module('backy.backends.chunked', __path__=[src])
backy.backends.chunked = chunked
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec); sys.modules[name] = m
    spec.loader.exec_module(m); return m
chunked.Chunk = load('backy.backends.chunked.chunk', src + '/chunk.py').Chunk
chunked.File = load('backy.backends.chunked.file', src + '/file.py').File
fallocate = load('backy_fallocate', src + '/fallocate.py')
ns = dict(os=os, sys=sys, END=object(), PUNCH_SIZE=4 * 1024**2, GiB=1024**3,
          posix_fadvise=lambda *a: None, punch_hole=fallocate.punch_hole,
          time=__import__('time'), datetime=__import__('datetime'),
          contextlib=__import__('contextlib'), mmap=__import__('mmap'),
          logger=Quiet(), log=Quiet(),
          humanize=types.SimpleNamespace(naturaldelta=str, naturaltime=str))
for node in ast.parse(open(src + '/utils.py').read()).body:
    if (isinstance(node, ast.FunctionDef) and node.name in ('report_status', 'copy_overwrite')) \
            or isinstance(node, ast.If):  # zeroes(), per platform
        exec(compile(ast.Module([node], []), 'utils.py', 'exec'), ns)
class Store:  # what File and Chunk use of 2.x's Store
    force_writes = False
    def __init__(self, path):
        self.path, self.known, self.seen_forced = path, set(), set()
        for x in range(256): os.makedirs('%s/%02x' % (path, x), exist_ok=True)
    def chunk_path(self, h): return '%s/%s/%s.chunk.lzo' % (self.path, h[:2], h)
store = Store(repo + '/chunks')
parent = None
for i, img in enumerate(images):
    name = '%s/rev%d' % (repo, i)
    if parent: shutil.copyfile(parent, name)
    with open(img, 'rb') as s, chunked.File(name, store, 'r+b') as t:
        ns['copy_overwrite'](s, t)
    m = json.load(open(name))
    slots = ['%s:%s:%d' % (k, hashlib.md5(p).hexdigest(), len(p)) for k, p in
             ((k, open(store.chunk_path(h), 'rb').read()[5:]) for k, h in m['mapping'].items())]
    print('rev%d size=%d %s' % (i, m['size'], ' '.join(slots)))
    parent = name
EOF

M=$((1024 * 1024))
head -c $((12 * M)) /dev/urandom >a.img
head -c $((10 * M + 12345)) a.img >b.img
cp b.img c.img
printf 'XY' | dd of=c.img bs=1 seek=$((9 * M)) conv=notrunc status=none
head -c $((8 * M)) a.img >d.img
{ cat d.img; head -c $((3 * M)) /dev/zero; head -c $((30 * M + 7)) /dev/urandom; } >e.img
{ cat e.img; head -c $((60 * M)) /dev/urandom; } >f.img
head -c $((5 * M)) /dev/zero >g.img
images=(a.img b.img c.img d.img e.img f.img g.img)

rc=0
for tag in 2.4.3 2.5.3; do
  mkdir "src-$tag"
  for f in backends/chunked/file.py backends/chunked/chunk.py utils.py fallocate.py; do
    git -C "$GIT" show "$tag:src/backy/$f" >"src-$tag/$(basename "$f")"
  done
  /usr/bin/python3 harness.py "src-$tag" "py-$tag" "${images[@]}" >"py-$tag.out"
  i=0
  for img in "${images[@]}"; do
    "$WRITER" --version "${tag:0:3}" --dir "wr-$tag" --image "$img" --uuid "rev$i" \
      --timestamp "2026-01-01 00:00:0$i+00:00"
    /usr/bin/python3 - "$WRITER" "wr-$tag" "rev$i" <<'EOF'
import hashlib, json, subprocess, sys
writer, repo, rev = sys.argv[1:]
m = json.load(open('%s/%s' % (repo, rev)))
slots = []
for k, h in m['mapping'].items():
    p = subprocess.run([writer, '--decode', '%s/chunks/%s/%s.chunk.lzo' % (repo, h[:2], h)],
                       capture_output=True, check=True).stdout
    slots.append('%s:%s:%d' % (k, hashlib.md5(p).hexdigest(), len(p)))
print('%s size=%d %s' % (rev, m['size'], ' '.join(slots)))
EOF
    i=$((i + 1))
  done >"wr-$tag.out"
  if diff "py-$tag.out" "wr-$tag.out" >&2; then
    echo "$tag: the writer leaves what backy $tag left"
  else
    echo "$tag: DIFFERENT" >&2
    rc=1
  fi
done
exit $rc
