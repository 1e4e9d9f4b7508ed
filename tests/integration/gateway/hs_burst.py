#!/usr/bin/env python3
"""A burst of TLS handshakes must not hold the gateway's established connections.

  hs_burst.py GW PORT N

Opens a kept-alive TLS connection E and N TCP connections; makes the N ClientHellos first (in
memory), sends them all at once, then one request on E for a host no resource has (the gateway
answers it itself, 404, so no target's speed is measured). When E's answer is in, counts how
many of the N have their server's first flight: fewer than half, or the gateway handshook the
burst before it read E's request (each of those is a P-384 signature, about a millisecond).
Then completes every handshake and asks one request on each: all N must be answered (the ones
that waited their turn are served). Prints one JSON object; exit 1 when an expectation fails.
"""
import json
import select
import socket
import ssl
import sys
import time

REQ = b"GET /%s HTTP/1.1\r\nHost: no-such-resource.test\r\n\r\n"


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname, c.verify_mode = False, ssl.CERT_NONE
    c.minimum_version = ssl.TLSVersion.TLSv1_3
    c.set_alpn_protocols(["http/1.1"])
    return c


def has_response(buf):
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


class Burst:
    """One connection of the burst: a memory-BIO TLS client over a non-blocking socket."""

    def __init__(self, c, gw, port, i):
        self.s = socket.create_connection((gw, port), timeout=10)
        self.s.setblocking(False)
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = c.wrap_bio(self.inb, self.outb, server_hostname="burst.test")
        self.i, self.done, self.answer = i, False, b""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.hello = self.outb.read()

    def flush(self):
        data = self.outb.read()
        if data:
            self.s.setblocking(True)
            self.s.sendall(data)
            self.s.setblocking(False)

    def readable(self):
        """Feeds what arrived; True once this connection's request is answered."""
        try:
            data = self.s.recv(65536)
        except BlockingIOError:
            return False
        if not data:
            raise ConnectionError("connection %d closed" % self.i)
        self.inb.write(data)
        if not self.done:
            try:
                self.tls.do_handshake()
                self.done = True
                self.tls.write(REQ % b"burst-%d" % self.i)
            except ssl.SSLWantReadError:
                pass
            self.flush()
        if self.done:
            try:
                while True:
                    self.answer += self.tls.read(65536)
            except ssl.SSLWantReadError:
                pass
            self.flush()
        return has_response(self.answer)


def main():
    gw, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    res, ok = {"n": n}, True
    c = ctx()
    e = c.wrap_socket(socket.create_connection((gw, port), timeout=60),
                      server_hostname="burst.test")
    e.sendall(REQ % b"warm")
    buf = b""
    while not has_response(buf):
        buf += e.recv(65536)
    burst = [Burst(c, gw, port, i) for i in range(n)]
    for b in burst:
        b.s.setblocking(True)
        b.s.sendall(b.hello)
        b.s.setblocking(False)
    e.sendall(REQ % b"during-the-burst")
    buf = b""
    while not has_response(buf):
        buf += e.recv(65536)
    socks = [b.s for b in burst]
    ready, _, _ = select.select(socks, [], [], 0)
    res["status_during_burst"] = buf.split(b"\r\n")[0].decode()
    res["handshaken_before_answer"] = len(ready)
    ok &= buf.startswith(b"HTTP/1.1 404") and len(ready) < n / 2
    # Every one of the burst is served in the end.
    left = {b.s.fileno(): b for b in burst}
    deadline = time.monotonic() + 120
    while left and time.monotonic() < deadline:
        ready, _, _ = select.select([b.s for b in left.values()], [], [], 1)
        for s in ready:
            if left[s.fileno()].readable():
                del left[s.fileno()]
    res["answered"] = sum(b.answer.startswith(b"HTTP/1.1 404") for b in burst)
    ok &= res["answered"] == n
    for b in burst:
        b.s.close()
    e.close()
    print(json.dumps(res))
    sys.exit(0 if ok else 1)


main()
