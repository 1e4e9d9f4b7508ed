#!/usr/bin/env python3
"""A target behind a tunnel for the gateway tests: HTTP/1.1 with keep-alive on ADDR:PORT.

Usage: target.py NAME ADDR PORT LOGFILE [NAME ADDR PORT LOGFILE ...]   (one process, several
targets: fewer interpreters to start on a loaded machine)

Every request line is appended to LOGFILE first (so a test can prove a request never reached
a target). GET answers JSON: the target's name, path and the forwarding headers it received;
POST/PUT answer the body length (Content-Length or chunked); /health answers 200. A GET of
/hold?ms=N answers after N ms (a request in flight, for least-connections balancing).
"""
import http.server
import json
import socketserver
import sys
import threading
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body leave in one write (flushed after each request): two small writes would
    # meet Nagle and the gateway's delayed ACK and cost 40 ms per request.
    wbufsize = -1

    def _log(self):
        with open(self.server.log, "a") as f:
            f.write("%s %s\n" % (self.command, self.path))

    def _reply(self, obj, status=200):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._log()
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/hold":
            ms = int(dict(urllib.parse.parse_qsl(u.query)).get("ms", "1000"))
            time.sleep(min(ms, 10000) / 1000)
        h = self.headers
        self._reply({"target": self.server.name, "path": self.path, "host": h.get("Host"),
                     "xff": h.get("X-Forwarded-For"), "proto": h.get("X-Forwarded-Proto"),
                     "forwarded": h.get("Forwarded"), "auth": h.get("Authorization"),
                     "te": h.get("Transfer-Encoding"), "cl": h.get("Content-Length"),
                     "user": h.get("X-Forwarded-User"), "cookie": h.get("Cookie")})

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_POST(self):
        self._log()
        data = self._body()
        self._reply({"target": self.server.name, "path": self.path, "len": len(data),
                     "te": self.headers.get("Transfer-Encoding")})

    do_PUT = do_POST

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


servers = []
for i in range(1, len(sys.argv) - 3, 4):
    srv = Server((sys.argv[i + 1], int(sys.argv[i + 2])), Handler)
    srv.name, srv.log = sys.argv[i], sys.argv[i + 3]
    servers.append(srv)
for srv in servers[1:]:
    threading.Thread(target=srv.serve_forever, daemon=True).start()
servers[0].serve_forever()
