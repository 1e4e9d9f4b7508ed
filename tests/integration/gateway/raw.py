#!/usr/bin/env python3
"""Raw TCP probes of the gateway: malformed and smuggling requests, slowloris, huge heads.

  raw.py send ADDR PORT HEX       sends the bytes, prints the first response line or "closed"
  raw.py slow ADDR PORT SECONDS   sends a head one byte per 0.2 s; prints what happened
                                  ("408" / "closed" after N s, or "open" if still open)
"""
import socket
import sys
import time


def first_line(s):
    data = b""
    try:
        while b"\r\n" not in data:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except OSError:
        pass
    line = data.split(b"\r\n")[0].decode(errors="replace")
    return line or "closed"


mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.create_connection((addr, port), timeout=10)
if mode == "send":
    s.sendall(bytes.fromhex(sys.argv[4]))
    print(first_line(s))
elif mode == "slow":
    head = b"GET /slowloris HTTP/1.1\r\nHost: app.test\r\nX-Long: " + b"a" * 500
    start = time.time()
    limit = float(sys.argv[4])
    for b in head:
        if time.time() - start > limit:
            print("open after %.1f s" % (time.time() - start))
            sys.exit(0)
        try:
            s.send(bytes([b]))
        except OSError:
            break
        s.settimeout(0.2)
        try:
            d = s.recv(4096)
            print("%s after %.1f s" % ((d.split(b"\r\n")[0].decode() or "closed") if d else "closed",
                                      time.time() - start))
            sys.exit(0)
        except socket.timeout:
            pass
        except OSError:
            break
    print("closed after %.1f s" % (time.time() - start))
