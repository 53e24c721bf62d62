#!/usr/bin/python3
"""A hand-driven NBD client for the TLS tests (nbd_tls_*.sh): it speaks the
fixed-newstyle handshake byte by byte, so it can do what no well-behaved
client does. Run with Debian's /usr/bin/python3 (it has the ssl module).

  nbd_raw_client.py ADDR SCENARIO [options]

ADDR is HOST:PORT or unix:PATH. Scenarios (each prints what it saw, one
line per step, and exits 0 when the server behaved, 1 otherwise):

  plain      Without TLS, send LIST, INFO, GO, STRUCTURED_REPLY,
             LIST_META_CONTEXT, SET_META_CONTEXT and an unknown option:
             each must get NBD_REP_ERR_TLS_REQD and nothing else; then
             ABORT; then, on a new connection, EXPORT_NAME must close the
             connection without a byte. --forbid S: fail if S (an export
             name) appears in any reply.
  plain-ok   (server with --tls on) Without TLS, GO on --export: INFO
             replies and ACK, and a 4 KiB read.
  garbage    STARTTLS, then --junk instead of a ClientHello (random: a
             record header claiming 64 KiB then random bytes; nbd: a
             plaintext NBD_OPT_GO; zeros: 4 KiB of zeros): the server must
             close the connection (within --wait seconds).
  starttls-checks  STARTTLS with data gets ERR_INVALID (and the connection
             goes on: ABORT is answered); with --tls-off, STARTTLS gets
             ERR_UNSUP or ERR_POLICY and GO then works in plaintext.
  partial    STARTTLS, then the first 60 bytes of a real ClientHello, then
             silence for --hold seconds (or until the server hangs up);
             prints "held" or "closed after N s".
  tls        A full TLS handshake (--ca FILE, optional --cert DIR with
             client-cert.pem/client-key.pem), then over TLS: LIST must show
             --export, a second STARTTLS gets ERR_INVALID, GO on --export,
             and a 4 KiB read at offset 0 must equal --expect FILE's bytes.
  vanish     As tls up to GO, then a READ of 8 MiB whose request record is
             sent only half (--how half), or sent whole and the reply left
             unread while the socket is reset (--how reset).
"""
import argparse
import os
import socket
import ssl
import struct
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2

OPT = {"export_name": 1, "abort": 2, "list": 3, "starttls": 5, "info": 6,
       "go": 7, "structured_reply": 8, "list_meta_context": 9,
       "set_meta_context": 10, "unknown": 0x4242}
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
ERR = 1 << 31
REP_NAMES = {1: "ACK", 2: "SERVER", 3: "INFO", 4: "META_CONTEXT",
             ERR + 1: "ERR_UNSUP", ERR + 2: "ERR_POLICY",
             ERR + 3: "ERR_INVALID", ERR + 4: "ERR_PLATFORM",
             ERR + 5: "ERR_TLS_REQD", ERR + 6: "ERR_UNKNOWN",
             ERR + 7: "ERR_SHUTDOWN", ERR + 8: "ERR_BLOCK_SIZE_REQD",
             ERR + 9: "ERR_TOO_BIG"}


class Closed(Exception):
    pass


def rep_name(t):
    return REP_NAMES.get(t, hex(t))


class Raw:
    """A plain socket; Tls wraps it after STARTTLS."""

    def __init__(self, addr, timeout):
        if addr.startswith("unix:"):
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = addr[5:]
        else:
            host, port = addr.rsplit(":", 1)
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = (host, int(port))
        self.s.settimeout(timeout)
        self.s.connect(target)
        self.seen = b""

    def send(self, b):
        self.s.sendall(b)

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            b = self.s.recv(n - len(out))
            if not b:
                raise Closed()
            out += b
        self.seen += out
        return out


class Tls:
    """TLS over a Raw socket through memory BIOs, so a test can send part
    of a record and stop."""

    def __init__(self, raw, ca, cert_dir):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca)
        if cert_dir:
            ctx.load_cert_chain(os.path.join(cert_dir, "client-cert.pem"),
                                os.path.join(cert_dir, "client-key.pem"))
        self.raw = raw
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out,
                                server_hostname="localhost")
        self.seen = b""

    def _flush(self):
        data = self.out.read()
        if data:
            self.raw.s.sendall(data)

    def _fill(self):
        b = self.raw.s.recv(65536)
        if not b:
            raise Closed()
        self.inc.write(b)

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()

    def send(self, b):
        self.obj.write(b)
        self._flush()

    def encrypt(self, b):
        """The TLS record bytes of b, not sent."""
        self.obj.write(b)
        return self.out.read()

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            try:
                b = self.obj.read(n - len(out))
                if not b:
                    raise Closed()
                out += b
            except ssl.SSLWantReadError:
                self._fill()
            except ssl.SSLZeroReturnError:
                raise Closed()
        self.seen += out
        return out


def greet(c):
    magic, opt, flags = struct.unpack(">QQH", c.recv_exact(18))
    if magic != NBDMAGIC or opt != IHAVEOPT:
        raise SystemExit("bad greeting")
    if not flags & FLAG_FIXED_NEWSTYLE:
        raise SystemExit("server is not fixed-newstyle")
    c.send(struct.pack(">I", FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))


def send_opt(c, opt, data=b""):
    c.send(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)


def read_reply(c):
    magic, opt, typ, length = struct.unpack(">QIII", c.recv_exact(20))
    if magic != REPLY_MAGIC:
        raise SystemExit("bad option reply magic %x" % magic)
    if length > 1 << 20:
        raise SystemExit("option reply of %d bytes" % length)
    return opt, typ, c.recv_exact(length)


def name_data(name, with_infos):
    b = name.encode()
    d = struct.pack(">I", len(b)) + b
    if with_infos:
        d += struct.pack(">H", 0)
    return d


def opt_data(opt, export):
    if opt in ("info", "go"):
        return name_data(export, True)
    if opt in ("list_meta_context", "set_meta_context"):
        q = b"base:allocation"
        return name_data(export, False) + struct.pack(">I", 1) + \
            struct.pack(">I", len(q)) + q
    return b""


def replies_until_final(c, opt):
    """All replies to one option; the last is ACK or an error."""
    out = []
    while True:
        o, t, d = read_reply(c)
        if o != OPT[opt]:
            raise SystemExit("%s: reply for option %d" % (opt, o))
        out.append((t, d))
        if t == REP_ACK or t & ERR:
            return out


def starttls(c):
    send_opt(c, OPT["starttls"])
    rep = replies_until_final(c, "starttls")
    names = [rep_name(t) for t, _ in rep]
    print("starttls:", " ".join(names))
    if names != ["ACK"]:
        raise SystemExit(1)


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def wait_closed(c, seconds):
    """Seconds until the server closed the connection, or None."""
    t0 = time.monotonic()
    c.s.settimeout(0.2)
    while time.monotonic() - t0 < seconds:
        try:
            b = c.s.recv(4096)
            if not b:
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
    return None


def go(c, export):
    send_opt(c, OPT["go"], name_data(export, True))
    rep = replies_until_final(c, "go")
    size = None
    for t, d in rep:
        if t == REP_INFO and struct.unpack(">H", d[:2])[0] == 0:
            size = struct.unpack(">Q", d[2:10])[0]
    print("go:", " ".join(rep_name(t) for t, _ in rep))
    if rep[-1][0] != REP_ACK or size is None:
        raise SystemExit(1)
    return size


def read_cmd(handle, offset, length):
    return struct.pack(">IHHQQI", REQUEST_MAGIC, 0, 0, handle, offset, length)


def simple_read(c, offset, length):
    c.send(read_cmd(1, offset, length))
    magic, error, handle = struct.unpack(">IIQ", c.recv_exact(16))
    if magic != SIMPLE_REPLY_MAGIC or error:
        raise SystemExit("read: magic %x error %d" % (magic, error))
    return c.recv_exact(length)


def check_expect(args, data, offset):
    with open(args.expect, "rb") as f:
        f.seek(offset)
        want = f.read(len(data))
    print("read: %d bytes %s" % (len(data),
                                 "equal" if data == want else "DIFFER"))
    if data != want:
        raise SystemExit(1)


def tls_up(args):
    raw = Raw(args.addr, args.wait)
    greet(raw)
    starttls(raw)
    t = Tls(raw, args.ca, args.cert)
    t.handshake()
    print("tls: handshake done,", t.obj.version())
    return t


def scenario_plain(args):
    ok = True
    for opt in ("list", "info", "go", "structured_reply",
                "list_meta_context", "set_meta_context", "unknown"):
        c = Raw(args.addr, args.wait)
        greet(c)
        send_opt(c, OPT[opt], opt_data(opt, args.export))
        try:
            rep = replies_until_final(c, opt)
        except Closed:
            print("%s: closed" % opt)
            ok = False
            continue
        names = [rep_name(t) for t, _ in rep]
        print("%s: %s" % (opt, " ".join(names)))
        ok &= names == ["ERR_TLS_REQD"]
        # The connection stays usable: ABORT is answered (or just closed).
        send_opt(c, OPT["abort"])
        try:
            _, t, _ = read_reply(c)
            print("  abort: %s" % rep_name(t))
            ok &= t == REP_ACK
        except Closed:
            print("  abort: closed")
        if args.forbid and args.forbid.encode() in c.seen:
            print("  reply names the export %s" % args.forbid)
            ok = False
    # All options in one connection too: the server must keep answering.
    c = Raw(args.addr, args.wait)
    greet(c)
    for opt in ("list", "go", "info", "list"):
        send_opt(c, OPT[opt], opt_data(opt, args.export))
        names = [rep_name(t) for t, _ in replies_until_final(c, opt)]
        ok &= names == ["ERR_TLS_REQD"]
    print("one connection, 4 options: %s" % ("ERR_TLS_REQD each" if ok
                                             else "not all TLS_REQD"))
    # EXPORT_NAME cannot be answered with an error: the server hangs up.
    c = Raw(args.addr, args.wait)
    greet(c)
    c.seen = b""
    send_opt(c, OPT["export_name"], args.export.encode())
    try:
        while True:
            b = c.s.recv(4096)
            if not b:
                break
            c.seen += b
    except (ConnectionResetError, socket.timeout) as e:
        if isinstance(e, socket.timeout):
            print("export_name: no reply and not closed in %d s" % args.wait)
            ok = False
    print("export_name: closed after %d bytes" % len(c.seen))
    ok &= len(c.seen) == 0
    return ok


def scenario_plain_ok(args):
    c = Raw(args.addr, args.wait)
    greet(c)
    go(c, args.export)
    data = simple_read(c, 0, 4096)
    if args.expect:
        check_expect(args, data, 0)
    return True


def scenario_garbage(args):
    c = Raw(args.addr, args.wait)
    greet(c)
    starttls(c)
    if args.junk == "random":
        junk = b"\x16\x03\x01\xff\xff" + os.urandom(4091)
    elif args.junk == "nbd":
        d = name_data(args.export, True)
        junk = struct.pack(">QII", IHAVEOPT, OPT["go"], len(d)) + d
    else:
        junk = bytes(4096)
    try:
        c.send(junk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    t = wait_closed(c, args.wait)
    print("garbage: " + ("closed after %.1f s" % t if t is not None else
                         "still open after %d s" % args.wait))
    return t is not None


def scenario_starttls_checks(args):
    c = Raw(args.addr, args.wait)
    greet(c)
    ok = True
    if args.tls_off:
        send_opt(c, OPT["starttls"])
        names = [rep_name(t) for t, _ in replies_until_final(c, "starttls")]
        print("starttls with TLS off:", " ".join(names))
        ok &= names in (["ERR_UNSUP"], ["ERR_POLICY"])
        go(c, args.export)
        return ok
    send_opt(c, OPT["starttls"], b"junk")
    names = [rep_name(t) for t, _ in replies_until_final(c, "starttls")]
    print("starttls with data:", " ".join(names))
    ok &= names == ["ERR_INVALID"]
    send_opt(c, OPT["abort"])
    try:
        _, t, _ = read_reply(c)
        print("abort:", rep_name(t))
        ok &= t == REP_ACK
    except Closed:
        print("abort: closed")
    return ok


def scenario_partial(args):
    c = Raw(args.addr, args.wait)
    greet(c)
    starttls(c)
    hello = client_hello()
    c.send(hello[:60])
    print("partial: sent 60 of %d ClientHello bytes" % len(hello),
          flush=True)
    t = wait_closed(c, args.hold)
    print("partial: " + ("closed after %.1f s" % t if t is not None
                         else "held"), flush=True)
    return True


def scenario_tls(args):
    t = tls_up(args)
    send_opt(t, OPT["list"])
    rep = replies_until_final(t, "list")
    names = [d[4:4 + struct.unpack(">I", d[:4])[0]].decode()
             for typ, d in rep if typ == REP_SERVER]
    print("list: %d exports" % len(names))
    ok = args.export in names
    send_opt(t, OPT["starttls"])
    again = [rep_name(x) for x, _ in replies_until_final(t, "starttls")]
    print("starttls again:", " ".join(again))
    ok &= again == ["ERR_INVALID"]
    go(t, args.export)
    data = simple_read(t, 0, 4096)
    if args.expect:
        check_expect(args, data, 0)
    return ok


def scenario_vanish(args):
    t = tls_up(args)
    go(t, args.export)
    rec = t.encrypt(read_cmd(7, 0, 8 << 20))
    if args.how == "half":
        t.raw.s.sendall(rec[:len(rec) // 2])
        print("vanish: sent %d of %d record bytes, gone" %
              (len(rec) // 2, len(rec)))
    else:
        t.raw.s.sendall(rec)
        t.raw.s.recv(100)  # the reply has started
        print("vanish: reply started, socket reset")
    # SO_LINGER 0: close with RST, as a killed client on another host.
    t.raw.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                       struct.pack("ii", 1, 0))
    t.raw.s.close()
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("scenario", choices=["plain", "plain-ok", "garbage",
                                        "starttls-checks", "partial", "tls",
                                        "vanish"])
    p.add_argument("--export", default="")
    p.add_argument("--forbid")
    p.add_argument("--ca")
    p.add_argument("--cert")
    p.add_argument("--expect")
    p.add_argument("--how", choices=["half", "reset"], default="half")
    p.add_argument("--junk", choices=["random", "nbd", "zeros"],
                   default="random")
    p.add_argument("--tls-off", action="store_true")
    p.add_argument("--wait", type=int, default=20)
    p.add_argument("--hold", type=int, default=10)
    args = p.parse_args()
    fn = {"plain": scenario_plain, "plain-ok": scenario_plain_ok,
          "garbage": scenario_garbage,
          "starttls-checks": scenario_starttls_checks,
          "partial": scenario_partial,
          "tls": scenario_tls, "vanish": scenario_vanish}[args.scenario]
    try:
        ok = fn(args)
    except Closed:
        print("the server closed the connection")
        ok = False
    except ssl.SSLError as e:
        print("tls error:", e)
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
