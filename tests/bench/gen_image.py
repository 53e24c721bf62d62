#!/usr/bin/python3
"""Reproducible mixed-content VM-like image for tests/bench/bench_backup.sh.

  gen_image.py create IMAGE SIZE_MIB SEED   write a new image
  gen_image.py mutate IMAGE PERCENT SEED    overwrite PERCENT % of the image in
                                            random 4 MiB-aligned 4 MiB blocks,
                                            saving the old blocks to IMAGE.undo
  gen_image.py revert IMAGE - -             put IMAGE.undo back (all-zero
                                            blocks become holes again)
  gen_image.py segments IMAGE SIZE_MIB SEED the image of issue 14: 32 MiB
                                            segments cycling random, random,
                                            written zeros, English text
  gen_image.py text IMAGE SIZE_MIB SEED     all English text
English text: words drawn at random from the GPL-3 text
(/usr/share/common-licenses/GPL-3), in lines of 6-14 words.

Content, interleaved in runs of 1-16 MiB (MiB granularity, order shuffled):
  1/2 random bytes        (AES-128-CTR keystream from `openssl enc`, seeded)
  1/8 zeros, written      (real zero blocks on disk)
  1/8 zeros, holes        (never written: sparse)
  1/4 log-like ASCII text (lines from a seeded pool of ~1M distinct lines of
                          Zipf-distributed pseudo-words; zstd -1 gets ~3x)
Everything depends only on SEED (and the openssl/python versions).
"""
import hashlib
import itertools
import os
import random
import subprocess
import sys

MiB = 1 << 20


class KeyStream:
    """Fast seeded random bytes: AES-128-CTR of zeros via openssl."""

    def __init__(self, seed, label):
        key = hashlib.sha256(f"{seed}/{label}".encode()).hexdigest()
        self.p = subprocess.Popen(
            ["openssl", "enc", "-aes-128-ctr", "-nosalt", "-K", key[:32],
             "-iv", key[32:64], "-in", "/dev/zero"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)

    def read(self, n):
        parts, got = [], 0
        while got < n:
            b = self.p.stdout.read(n - got)
            if not b:
                raise RuntimeError("openssl keystream ended")
            parts.append(b)
            got += len(b)
        return b"".join(parts)

    def close(self):
        self.p.kill()
        self.p.wait()


class TextStream:
    """Log-like lines: timestamp host proc[pid]: LEVEL words..."""

    def __init__(self, seed, pool_lines=1 << 20):
        r = self.r = random.Random(f"{seed}/text")
        letters = "etaoinshrdlcumwfgypbvkjxqz"
        vocab = set()
        while len(vocab) < 3000:
            n = r.choice([2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 8, 9, 10, 12])
            vocab.add("".join(r.choices(letters, weights=range(26, 0, -1), k=n)))
        vocab = sorted(vocab)
        r.shuffle(vocab)
        cw = list(itertools.accumulate(1.0 / (i + 1) ** 1.15 for i in range(len(vocab))))
        levels = ["INFO"] * 8 + ["DEBUG"] * 4 + ["WARN", "ERROR"]
        hosts = [f"web{i:02d}" for i in range(24)] + [f"db{i}" for i in range(6)]
        procs = ["nginx", "sshd", "kernel", "postgres", "cron", "systemd", "backy", "qemu"]
        ws = r.choices(vocab, cum_weights=cw, k=pool_lines * 11)
        pool, pos = [], 0
        for _ in range(pool_lines):
            k = r.randint(5, 16)
            pool.append("%s %s[%d]: %s %s\n" % (r.choice(hosts), r.choice(procs),
                                                r.randint(100, 4000), r.choice(levels),
                                                " ".join(ws[pos:pos + k])))
            pos += k
        self.pool = pool
        self.ts = 0
        self.buf = b""

    def read(self, n):
        while len(self.buf) < n:
            lines = self.r.choices(self.pool, k=20000)
            t0 = self.ts
            s = "".join("%d.%03d %s" % (1700000000 + (t0 + i * 37) // 1000,
                                        (t0 + i * 37) % 1000, line)
                        for i, line in enumerate(lines))
            self.ts += 20000 * 37
            self.buf += s.encode()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class WordStream:
    """English text: words of a license file drawn at random, in lines."""

    def __init__(self, seed, path="/usr/share/common-licenses/GPL-3"):
        self.r = random.Random(f"{seed}/words")
        self.words = open(path).read().split()
        self.buf = b""

    def read(self, n):
        while len(self.buf) < n:
            r, w = self.r, self.words
            lines = [" ".join(r.choices(w, k=r.randint(6, 14)))
                     for _ in range(20000)]
            self.buf += ("\n".join(lines) + "\n").encode()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def segments(path, size_mib, seed, kinds):
    """32 MiB segments cycling through `kinds` (random, zero, text)."""
    rnd, txt = KeyStream(seed, "segments"), WordStream(seed)
    zero = bytes(MiB)
    with open(path, "wb") as f:
        for mib in range(size_mib):
            kind = kinds[(mib // 32) % len(kinds)]
            f.write(rnd.read(MiB) if kind == "random" else
                    txt.read(MiB) if kind == "text" else zero)
    rnd.close()
    print(f"image {path}: {size_mib} MiB of 32 MiB segments: {kinds}")


def runs(total, r):
    out = []
    while total > 0:
        n = min(total, r.randint(1, 16))
        out.append(n)
        total -= n
    return out


def create(path, size_mib, seed):
    r = random.Random(f"{seed}/layout")
    quarter = size_mib // 4
    eighth = size_mib // 8
    counts = {"text": quarter, "zero": eighth, "hole": quarter - eighth}
    counts["random"] = size_mib - sum(counts.values())
    regions = [(kind, n) for kind, total in sorted(counts.items()) for n in runs(total, r)]
    r.shuffle(regions)
    rnd, txt = KeyStream(seed, "image"), TextStream(seed)
    zero = bytes(MiB)
    with open(path, "wb") as f:
        for kind, n in regions:
            if kind == "hole":
                f.seek(n * MiB, os.SEEK_CUR)
                continue
            for _ in range(n):
                if kind == "random":
                    f.write(rnd.read(MiB))
                elif kind == "text":
                    f.write(txt.read(MiB))
                else:
                    f.write(zero)
        f.truncate(size_mib * MiB)
    rnd.close()
    summary = {k: f"{v} MiB" for k, v in sorted(counts.items())}
    print(f"image {path}: {size_mib} MiB, {len(regions)} regions, {summary}")


def mutate(path, percent, seed):
    block = 4 * MiB
    size = os.path.getsize(path)
    nblocks = size // block
    n = max(1, round(nblocks * percent / 100))
    r = random.Random(f"{seed}/mutate")
    picks = sorted(r.sample(range(nblocks), n))
    rnd = KeyStream(seed, "mutate")
    with open(path, "r+b") as f, open(path + ".undo", "wb") as undo:
        for b in picks:
            f.seek(b * block)
            old = f.read(block)
            undo.write(b.to_bytes(8, "little") + old)
            f.seek(b * block)
            f.write(rnd.read(block))
    rnd.close()
    print(f"mutated {n} of {nblocks} 4 MiB blocks ({n * 4} MiB): {picks}")


def revert(path):
    block = 4 * MiB
    zero = bytes(block)
    with open(path + ".undo", "rb") as undo, open(path, "r+b") as f:
        while head := undo.read(8):
            b = int.from_bytes(head, "little")
            old = undo.read(block)
            f.seek(b * block)
            f.write(old)
            if old == zero:
                f.flush()
                subprocess.run(["fallocate", "-p", "-o", str(b * block), "-l",
                                str(len(old)), path], check=True)
    os.unlink(path + ".undo")


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("create", "mutate", "revert",
                                                  "segments", "text"):
        sys.exit(__doc__)
    cmd, path, amount, seed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    if cmd == "segments":
        segments(path, int(amount), seed, ["random", "random", "zero", "text"])
    elif cmd == "text":
        segments(path, int(amount), seed, ["text"])
    elif cmd == "create":
        create(path, int(amount), seed)
    elif cmd == "mutate":
        mutate(path, float(amount), seed)
    else:
        revert(path)
