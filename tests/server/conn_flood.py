#!/usr/bin/env python3
"""Idle and slow connections from many addresses must not starve normal requests.

    conn_flood.py --url http://127.0.0.1:PORT --token ACCESS_TOKEN [--attackers 1000]
                  [--addresses 50] [--seconds 15] [--json]

Opens --attackers connections spread over --addresses loopback source addresses (127.0.0.2 and
up): half stay idle, half send a request head one header line a second (slowloris); each one the
server closes is opened again at once, as an attacker would. Meanwhile normal requests (a fresh
connection each, from 127.0.0.1: GET /api/health and an authenticated GET /api/networks) run
back to back. Exit status 0 when every normal request got its 200. Prints the normal requests'
latency unloaded and under the flood (p50/p99, ms) and what the attackers saw. The figures are
reported, not asserted (timing belongs in bench/server_attack.sh).
"""
import argparse
import http.client
import json
import selectors
import socket
import sys
import threading
import time
import urllib.parse


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


class Flood:
    def __init__(self, host, port, n, naddr):
        self.host, self.port, self.n, self.naddr = host, port, n, naddr
        self.sel = selectors.DefaultSelector()
        self.stop = False
        self.opened = self.closed_by_server = self.refused = 0
        self.lines = 0
        self.ready = threading.Event()

    def open(self, i):
        src = "127.0.0.%d" % (2 + i % self.naddr)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((src, 0))
        try:
            s.connect((self.host, self.port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            self.refused += 1
            return
        self.opened += 1
        slow = i % 2 == 1
        self.sel.register(s, selectors.EVENT_READ, (i, slow, [False]))

    def run(self):
        for i in range(self.n):
            self.open(i)
        self.ready.set()
        last_tick = time.time()
        while not self.stop:
            for key, _ in self.sel.select(timeout=0.2):
                s = key.fileobj
                i, _, _ = key.data
                try:
                    d = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    d = b""
                if not d:
                    # Closed by the server (a deadline, or reclaimed): come back at once.
                    self.sel.unregister(s)
                    s.close()
                    self.closed_by_server += 1
                    self.open(i)
            if time.time() - last_tick >= 1.0:
                last_tick = time.time()
                for key in list(self.sel.get_map().values()):
                    i, slow, started = key.data
                    if not slow:
                        continue
                    try:
                        if not started[0]:
                            key.fileobj.send(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
                            started[0] = True
                        else:
                            key.fileobj.send(b"X-Slow-%d: 1\r\n" % i)
                        self.lines += 1
                    except OSError:
                        pass
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def normal_requests(host, port, token, seconds):
    lat, bad = [], []
    t_end = time.time() + seconds
    k = 0
    while time.time() < t_end:
        path = "/api/health" if k % 2 == 0 else "/api/networks"
        k += 1
        t0 = time.time()
        try:
            c = http.client.HTTPConnection(host, port, timeout=30, source_address=("127.0.0.1", 0))
            hdrs = {"Authorization": "Bearer " + token} if path != "/api/health" else {}
            c.request("GET", path, headers=hdrs)
            r = c.getresponse()
            r.read()
            st = r.status
            c.close()
        except OSError as e:
            st = "error: %s" % e
        lat.append((time.time() - t0) * 1000)
        if st != 200:
            bad.append((path, st))
        time.sleep(0.02)
    return lat, bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--attackers", type=int, default=1000)
    ap.add_argument("--addresses", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    host, port = u.hostname, u.port

    base, bad0 = normal_requests(host, port, a.token, 3)
    fl = Flood(host, port, a.attackers, a.addresses)
    th = threading.Thread(target=fl.run, daemon=True)
    th.start()
    fl.ready.wait(30)
    time.sleep(1.5)  # the slow half has started its heads
    lat, bad = normal_requests(host, port, a.token, a.seconds)
    fl.stop = True
    th.join(10)
    res = {
        "attackers": a.attackers, "addresses": a.addresses,
        "normal_requests": len(lat), "normal_failed": len(bad) + len(bad0),
        "unloaded_p50_ms": round(pct(base, 0.5), 2), "unloaded_p99_ms": round(pct(base, 0.99), 2),
        "flood_p50_ms": round(pct(lat, 0.5), 2), "flood_p99_ms": round(pct(lat, 0.99), 2),
        "attack_connections_opened": fl.opened, "attack_closed_by_server": fl.closed_by_server,
        "attack_connect_failures": fl.refused, "slow_header_lines_sent": fl.lines,
    }
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print("  %-28s %s" % (k, v))
    for b in (bad0 + bad)[:10]:
        print("  FAILED normal request: %s -> %s" % b)
    return 0 if not bad and not bad0 and lat else 1


if __name__ == "__main__":
    sys.exit(main())
