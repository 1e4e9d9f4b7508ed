#!/usr/bin/env python3
"""The write load of tests/integration/test_server_ha.sh (and bench/server_scale.sh):
WRITES acknowledged writes (POST /api/networks, each audited) from CLIENTS concurrent clients
through one address (HAProxy in front of the servers).

Usage: ha_load.py URL TOKEN WRITES CLIENTS OUTDIR

A client keeps one keep-alive connection and makes it again after any error. Every attempt
creates a network of its own name and subnet, so an attempt whose answer was lost (a server
killed mid-request) never collides with a later one; a non-2xx answer or a broken connection
is counted and the client moves on (after Retry-After on a 503, 0.2 s after a broken
connection). The run ends when WRITES attempts were acknowledged with 201.

Writes OUTDIR/progress (acknowledged so far, rewritten every 0.1 s, for the test to time its
faults by), OUTDIR/acked (one acknowledged name a line) and OUTDIR/summary.json (counts by
outcome, seconds, writes/s).
"""
import http.client
import itertools
import json
import os
import sys
import threading
import time
import urllib.parse

URL, TOKEN, WRITES, CLIENTS, OUT = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
    sys.argv[5]
u = urllib.parse.urlsplit(URL)
lock = threading.Lock()
acked = []
outcomes = {}
attempts = itertools.count()
done = threading.Event()


def note(kind):
    with lock:
        outcomes[kind] = outcomes.get(kind, 0) + 1


def client(cid):
    conn = None
    while not done.is_set():
        k = next(attempts)
        if k >= 65536 * 4:
            note("out_of_subnets")
            return
        name = "ha-%d-%d" % (cid, k)
        body = json.dumps({"name": name, "subnet4": "10.%d.%d.0/24" % (k >> 8 & 255, k & 255)
                           if k < 65536 else "172.%d.%d.0/24" % (16 + (k >> 16) % 16, k >> 8 & 255),
                           "fips_required": False})
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            conn.request("POST", "/api/networks", body,
                         {"Content-Type": "application/json",
                          "Authorization": "Bearer " + TOKEN})
            r = conn.getresponse()
            r.read()
            if r.status == 201:
                with lock:
                    acked.append(name)
                    if len(acked) >= WRITES:
                        done.set()
                continue
            note("http_%d" % r.status)
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            if r.status in (502, 503, 504):
                time.sleep(min(float(r.getheader("Retry-After") or 0.2), 1.0))
        except (OSError, http.client.HTTPException) as e:
            note("conn_" + type(e).__name__)
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.2)


def progress():
    while not done.wait(0.1):
        with lock:
            n = len(acked)
        with open(os.path.join(OUT, "progress.tmp"), "w") as f:
            f.write("%d\n" % n)
        os.replace(os.path.join(OUT, "progress.tmp"), os.path.join(OUT, "progress"))


t0 = time.monotonic()
threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
p = threading.Thread(target=progress)
p.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
done.set()
p.join()
secs = time.monotonic() - t0
with open(os.path.join(OUT, "acked"), "w") as f:
    f.write("".join(n + "\n" for n in acked))
with open(os.path.join(OUT, "progress"), "w") as f:
    f.write("%d\n" % len(acked))
summary = {"acked": len(acked), "not_acked": outcomes, "seconds": round(secs, 1),
           "writes_per_s": round(len(acked) / secs, 1), "clients": CLIENTS}
with open(os.path.join(OUT, "summary.json"), "w") as f:
    json.dump(summary, f)
print("[ha_load] %s" % json.dumps(summary), flush=True)
sys.exit(0 if len(acked) >= WRITES else 1)
