#!/usr/bin/env python3
"""HTTP client for the gateway tests (keep-alive, a new connection after an error).

  client.py count GW_ADDR PORT HOST N          N GETs of /; prints {"<target>": n, ..., "fail": n}
  client.py loop GW_ADDR PORT HOST SECONDS OUT GETs for SECONDS; OUT gets "t status target" lines
  client.py get GW_ADDR PORT HOST PATH [HDR:VAL...]  one GET; prints status, headers, body
  client.py burst GW_ADDR PORT HOST PATH N     N GETs at once; prints the statuses and the
                                               Retry-After of the first 429
"""
import http.client
import json
import sys
import time


def conn(addr, port):
    return http.client.HTTPConnection(addr, port, timeout=5)


def one(c, host, path, headers=None):
    h = {"Host": host}
    h.update(headers or {})
    c.request("GET", path, headers=h)
    r = c.getresponse()
    body = r.read()
    return r, body


def target_of(body):
    try:
        return json.loads(body).get("target", "-")
    except ValueError:
        return "-"


def main():
    mode, addr, port, host = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    c = conn(addr, port)
    if mode == "count":
        counts = {"fail": 0}
        for _ in range(int(sys.argv[5])):
            try:
                r, body = one(c, host, "/")
                key = target_of(body) if r.status == 200 else "status%d" % r.status
                counts[key] = counts.get(key, 0) + 1
            except (OSError, http.client.HTTPException):
                counts["fail"] += 1
                c.close()
                c = conn(addr, port)
        print(json.dumps(counts))
    elif mode == "loop":
        end = time.time() + float(sys.argv[5])
        with open(sys.argv[6], "w") as out:
            while time.time() < end:
                t = time.time()
                try:
                    r, body = one(c, host, "/")
                    out.write("%.3f %d %s\n" % (t, r.status, target_of(body)))
                except (OSError, http.client.HTTPException) as e:
                    out.write("%.3f 0 %s\n" % (t, type(e).__name__))
                    c.close()
                    c = conn(addr, port)
                out.flush()
                time.sleep(0.005)
    elif mode == "burst":
        out, retry = [], "-"
        for _ in range(int(sys.argv[6])):
            r, _ = one(c, host, sys.argv[5])
            out.append(str(r.status))
            if r.status == 429 and retry == "-":
                retry = r.getheader("Retry-After", "none")
        print(" ".join(out), "retry-after", retry)
    elif mode == "get":
        hdrs = dict(a.split(":", 1) for a in sys.argv[6:])
        r, body = one(c, host, sys.argv[5], {k: v.strip() for k, v in hdrs.items()})
        print(r.status)
        for k, v in r.getheaders():
            print("%s: %s" % (k, v))
        print()
        sys.stdout.write(body.decode(errors="replace"))


main()
