"""HTTP helpers of bench/server_scale.sh's and bench/server_reads.sh's Python parts (stdlib
only): one keep-alive connection with a bearer token, the admin login from
SG_ADMIN_EMAIL/SG_ADMIN_PASSWORD, concurrent callers, a percentile, and the time inside the
servers from their access logs."""
import http.client, json, os, re, threading, time, urllib.parse


class Conn:
    def __init__(self, base, token=None):
        u = urllib.parse.urlparse(base)
        self.h = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.token = token

    def call(self, method, path, body=None):
        hdr = {"Content-Type": "application/json"}
        if self.token:
            hdr["Authorization"] = "Bearer " + self.token
        self.h.request(method, path, json.dumps(body) if body is not None else None, hdr)
        r = self.h.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None

def login(base):
    st, doc = Conn(base).call("POST", "/api/auth/login",
                              {"email": os.environ["SG_ADMIN_EMAIL"],
                               "password": os.environ["SG_ADMIN_PASSWORD"]})
    assert st == 200, st
    return doc["access_token"]


def callers(conns, n, request):
    """Requests 0..n-1 by one thread per connection, thread k on conns[k] taking k, k + len,
    ...; request(conn, i) returns whether request i succeeded. Returns the latencies in ms, the
    failed requests and the seconds the whole took."""
    lat, lock, errs = [], threading.Lock(), []

    def run(k):
        mine = []
        for i in range(k, n, len(conns)):
            t0 = time.monotonic()
            ok = request(conns[k], i)
            mine.append((time.monotonic() - t0) * 1000)
            if not ok:
                errs.append(i)
        with lock:
            lat.extend(mine)

    t0 = time.monotonic()
    ths = [threading.Thread(target=run, args=(k,)) for k in range(len(conns))]
    for x in ths:
        x.start()
    for x in ths:
        x.join()
    return lat, errs, time.monotonic() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def server_ms(logs):
    """duration_ms of the http_request lines written to each log after its offset: logs maps a
    server's log file to the size it had when the requests began."""
    out = []
    for path, start in logs.items():
        with open(path, "rb") as f:
            f.seek(start)
            for line in f:
                if b"http_request" in line:
                    m = re.search(rb"duration_ms[=\":]+([0-9.]+)", line)
                    if m:
                        out.append(float(m.group(1)))
    return out
