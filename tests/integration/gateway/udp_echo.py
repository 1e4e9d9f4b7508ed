#!/usr/bin/env python3
"""UDP echo (DNS-like: one answer per datagram, prefixed with the server's name).

  udp_echo.py serve NAME ADDR PORT
  udp_echo.py ask ADDR PORT N      sends N datagrams, prints how many answers came back
"""
import socket
import sys

if sys.argv[1] == "serve":
    name, addr, port = sys.argv[2].encode(), sys.argv[3], int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        d, peer = s.recvfrom(65535)
        s.sendto(name + b":" + d, peer)
else:
    addr, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    ok = 0
    for i in range(n):
        msg = b"q%d" % i
        s.sendto(msg, (addr, port))
        try:
            d, _ = s.recvfrom(65535)
            if d.endswith(b":" + msg):
                ok += 1
        except socket.timeout:
            pass
    print(ok)
