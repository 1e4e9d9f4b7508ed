"""HTTP helpers of bench/server_scale.sh's Python parts (stdlib only): one keep-alive
connection with a bearer token, the admin login from SG_ADMIN_EMAIL/SG_ADMIN_PASSWORD, a
percentile, and the time inside the servers from their access logs."""
import http.client, json, os, re, urllib.parse


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
