#!/usr/bin/python3
"""NBD_OPT_STARTTLS on the wire, by hand (tls_core_protocol.sh runs it).

  tls_core_protocol.py SOCKET MODE CERTDIR

MODE is what the server runs with: "off", "on" or "require". Each check
opens its own connection; the script exits non-zero with a message on the
first failure.
"""
import socket
import ssl
import struct
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_GO = 1, 2, 3, 5, 7
OPT_STRUCTURED_REPLY = 8
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
ERR = 1 << 31
REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID = ERR + 1, ERR + 2, ERR + 3
REP_ERR_TLS_REQD = ERR + 5

sock_path, mode, certdir = sys.argv[1], sys.argv[2], sys.argv[3]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
        out += b
    return out


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    magic, opt, flags = struct.unpack(">QQH", recv_exact(s, 18))
    if magic != NBDMAGIC or opt != IHAVEOPT:
        fail("bad greeting")
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    return s


def send_opt(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)


def reply(s):
    magic, opt, typ, length = struct.unpack(">QIII", recv_exact(s, 20))
    if magic != REPLY_MAGIC:
        fail("bad reply magic %#x" % magic)
    return opt, typ, recv_exact(s, length)


def closed(s):
    """True if the server closes the connection without sending anything
    (a reset counts: closing with unread data from us sends one)."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def list_exports(s):
    send_opt(s, OPT_LIST)
    names = []
    while True:
        _, typ, data = reply(s)
        if typ == REP_SERVER:
            (n,) = struct.unpack(">I", data[:4])
            names.append(data[4:4 + n].decode())
        elif typ == REP_ACK:
            return names
        else:
            return typ


def starttls(s):
    """STARTTLS + handshake with the test CA; returns the TLS socket."""
    send_opt(s, OPT_STARTTLS)
    _, typ, _ = reply(s)
    if typ != REP_ACK:
        fail("STARTTLS answered %#x, not ACK" % typ)
    ctx = ssl.create_default_context(cafile=certdir + "/ca-cert.pem")
    ctx.check_hostname = False
    return ctx.wrap_socket(s, server_hostname="localhost")


if mode == "off":
    s = connect()
    send_opt(s, OPT_STARTTLS)
    _, typ, _ = reply(s)
    if typ != REP_ERR_POLICY:
        fail("STARTTLS without TLS configured: %#x, want ERR_POLICY" % typ)
    if list_exports(s) != ["disk"]:  # and the connection goes on in plaintext
        fail("plain LIST after refused STARTTLS")
    sys.exit(0)

# STARTTLS with data: ERR_INVALID, and the connection goes on.
s = connect()
send_opt(s, OPT_STARTTLS, b"x")
_, typ, _ = reply(s)
if typ != REP_ERR_INVALID:
    fail("STARTTLS with data: %#x, want ERR_INVALID" % typ)

if mode == "require":
    # Every option but STARTTLS and ABORT: TLS_REQD; no export is listed.
    for opt, data in ((OPT_LIST, b""), (OPT_STRUCTURED_REPLY, b""),
                      (OPT_GO, struct.pack(">I", 4) + b"disk" + b"\0\0")):
        send_opt(s, opt, data)
        _, typ, data = reply(s)
        if typ != REP_ERR_TLS_REQD:
            fail("option %d before TLS: %#x, want ERR_TLS_REQD" % (opt, typ))
    # EXPORT_NAME cannot be refused: the server hangs up, sending nothing.
    send_opt(s, OPT_EXPORT_NAME, b"disk")
    if not closed(s):
        fail("EXPORT_NAME before TLS did not close the connection silently")
else:
    if list_exports(s) != ["disk"]:
        fail("plaintext LIST refused with --tls on")

# Under TLS: LIST works, a second STARTTLS is ERR_INVALID.
t = starttls(connect())
if list_exports(t) != ["disk"]:
    fail("LIST under TLS")
send_opt(t, OPT_STARTTLS)
_, typ, _ = reply(t)
if typ != REP_ERR_INVALID:
    fail("second STARTTLS: %#x, want ERR_INVALID" % typ)
send_opt(t, OPT_ABORT)
reply(t)
t.close()

# Plaintext sent right behind STARTTLS (before the ACK could be read) must
# not be taken for TLS data or protected options: the server hangs up.
s = connect()
s.sendall(struct.pack(">QII", IHAVEOPT, OPT_STARTTLS, 0) +
          struct.pack(">QII", IHAVEOPT, OPT_LIST, 0))
time.sleep(0.2)
try:
    _, typ, _ = reply(s)
    if typ != REP_ACK:
        fail("pipelined STARTTLS: %#x" % typ)
    if not closed(s):
        fail("plaintext after STARTTLS was accepted")
except EOFError:
    pass

# Garbage instead of a ClientHello: the handshake fails, the server lives.
s = connect()
send_opt(s, OPT_STARTTLS)
_, typ, _ = reply(s)
s.sendall(b"\x16\x03\x01\xff\xffgarbage" * 100)
if not closed(s):
    fail("garbage handshake not dropped")

# A handshake started and abandoned: dropped at the deadline (the server
# runs with --tls-handshake-timeout 1).
s = connect()
send_opt(s, OPT_STARTTLS)
_, typ, _ = reply(s)
s.sendall(b"\x16\x03\x01\x00\x80")  # a record header, then silence
start = time.monotonic()
if not closed(s):
    fail("abandoned handshake not dropped")
if time.monotonic() - start > 5:
    fail("abandoned handshake held for %.1f s" % (time.monotonic() - start))

# And the server still serves.
t = starttls(connect())
if list_exports(t) != ["disk"]:
    fail("LIST under TLS after the bad clients")
print("ok")
