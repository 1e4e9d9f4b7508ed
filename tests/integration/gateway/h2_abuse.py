#!/usr/bin/python3
"""HTTP/2 abuse of the gateway (prior knowledge, plain port), with Debian's python3-h2:

  h2_abuse.py GW_ADDR PORT HOST

1. rapid reset (CVE-2023-44487 style): 300 requests, each cancelled with RST_STREAM at once;
2. requests cancelled after part of their body went out;
3. a body larger than the stream's window (a flow-control error the gateway must catch);
4. garbage after the preface.
Each on its own connection; prints one line per case with what the gateway did. The caller
then checks the gateway still serves and left no sanitizer report.
"""
import socket
import sys

import h2.config
import h2.connection
import h2.errors
import h2.events

ADDR, PORT, HOST = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def conn():
    s = socket.create_connection((ADDR, PORT), timeout=5)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def drain(s, c, seconds=1.0):
    s.settimeout(seconds)
    events = []
    try:
        while True:
            d = s.recv(65536)
            if not d:
                events.append("closed")
                break
            try:
                events += c.receive_data(d)
            except Exception as e:  # the gateway may send what h2 calls a protocol error
                events.append(type(e).__name__)
                break
            out = c.data_to_send()
            if out:
                s.sendall(out)
    except (socket.timeout, OSError):
        pass
    return events


def headers(method="GET", path="/"):
    return [(":method", method), (":path", path), (":scheme", "http"), (":authority", HOST)]


# 1. rapid reset
s, c = conn()
for i in range(300):
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, headers(path="/rapid-%d" % i), end_stream=True)
    c.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    if i % 50 == 49:
        s.sendall(c.data_to_send())
s.sendall(c.data_to_send())
ev = drain(s, c, 2)
print("rapid reset: %d events, goaway=%s" % (len(ev), any(isinstance(e, h2.events.ConnectionTerminated) for e in ev)))
s.close()

# 2. cancelled uploads
s, c = conn()
for i in range(20):
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, headers("POST", "/cancel-%d" % i))
    c.send_data(sid, b"x" * 1000)
    c.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
s.sendall(c.data_to_send())
ev = drain(s, c, 1)
print("cancelled uploads: %d events" % len(ev))
s.close()

# 3. more DATA than the window: write frames by hand past h2's own flow control
s, c = conn()
sid = c.get_next_available_stream_id()
c.send_headers(sid, headers("POST", "/overflow"))
s.sendall(c.data_to_send())
drain(s, c, 0.5)
frame_payload = b"y" * 16384
for _ in range(8):  # 128 KiB against a 64 KiB window
    hdr = len(frame_payload).to_bytes(3, "big") + b"\x00\x00" + sid.to_bytes(4, "big")
    try:
        s.sendall(hdr + frame_payload)
    except OSError:
        break
ev = drain(s, c, 1)
print("window overflow: %s" % ", ".join(sorted(set(type(e).__name__ if not isinstance(e, str) else e for e in ev))))
s.close()

# 4. garbage after the preface
s = socket.create_connection((ADDR, PORT), timeout=5)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64)
s.settimeout(2)
try:
    got = s.recv(4096)
    print("garbage: %d bytes back, then %s" % (len(got), "closed" if not s.recv(4096) else "open"))
except OSError as e:
    print("garbage: %s" % type(e).__name__)
s.close()
