#!/usr/bin/env python3
"""TCP and UDP forwards' connection limits and idle timeouts, for test_gateway_rules.sh.

  fwd.py echo ADDR TCP_PORT UDP_PORT
                                a TCP echo server (a thread per connection), and a UDP one
                                that answers each datagram with "<the sender's port>:<datagram>",
                                so a client sees whether its flow still uses the same socket
  fwd.py tcp GW PORT MAX IDLE_MS
  fwd.py udp GW PORT MAX IDLE_MS
  fwd.py conns GW PORT SRC:N [SRC:N ...]
                                opens N idle connections from each SRC in turn, all held
                                together; prints how many of each the gateway kept open
  fwd.py uflows GW PORT SRC:N [SRC:N ...]
                                N new UDP flows (a socket, so a port, each) from each SRC in
                                turn, one datagram each, all sent before any answer is awaited;
                                prints how many of each were answered within 2 s

tcp: MAX connections echo; the MAX+1th is closed by the gateway without an echo. Then
connection 0 sends every IDLE_MS/4 while connection 1 stays silent: connection 1 must be closed
after about IDLE_MS, connection 0 must still echo after 1.5 x IDLE_MS, and a new connection
(the slot connection 1 freed) must echo.

udp: MAX flows (one socket each) are answered; the MAX+1th gets no answer. Flow 0 sends every
IDLE_MS/4, flow 1 stays silent, the MAX+1th asks every 100 ms: it is answered once flow 1 has
timed out, flow 0's target-side port never changes (the same flow throughout), and flow 1's
is new when it speaks again (its old flow was closed).

Both print one JSON object with what they saw, timings in ms; exit 1 when an expectation
fails (the JSON says which).
"""
import json
import select
import socket
import socketserver
import sys
import threading
import time


class TcpEcho(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            try:
                d = self.request.recv(65536)
            except OSError:
                return
            if not d:
                return
            self.request.sendall(d)


class TcpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def now_ms():
    return time.monotonic() * 1000


def echo_ok(s, msg):
    """msg comes back whole within 2 s."""
    try:
        s.sendall(msg)
        got = b""
        s.settimeout(2)
        while len(got) < len(msg):
            d = s.recv(65536)
            if not d:
                return False
            got += d
        return got == msg
    except OSError:
        return False


def closed_within(s, secs):
    """The gateway closed s (EOF or reset) within secs; no data came."""
    s.settimeout(secs)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except (socket.timeout, OSError):
        return False


def tcp(gw, port, n, idle):
    res, ok = {}, True
    conns = [socket.create_connection((gw, port), timeout=3) for _ in range(n)]
    res["echo"] = sum(echo_ok(c, b"hello %d" % i) for i, c in enumerate(conns))
    t_last1 = now_ms()  # connection 1's last traffic: silent from here
    ok &= res["echo"] == n
    # The N+1th: accepted by the kernel, closed by the gateway.
    extra = socket.create_connection((gw, port), timeout=3)
    try:
        extra.sendall(b"one too many")
    except OSError:
        pass
    res["extra_closed"] = closed_within(extra, 3)
    ok &= res["extra_closed"]
    extra.close()
    # Connection 0 talks every idle/4.
    conns[1].setblocking(False)
    closed1 = None
    k = 0
    while now_ms() - t_last1 < 1.5 * idle + 3000:
        k += 1
        if not echo_ok(conns[0], b"keep %d" % k):
            res["keepalive_failed_at_ms"] = round(now_ms() - t_last1)
            ok = False
            break
        if closed1 is None:
            try:
                if conns[1].recv(1) == b"":
                    closed1 = now_ms() - t_last1
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed1 = now_ms() - t_last1
        if closed1 is not None and now_ms() - t_last1 >= 1.5 * idle:
            break
        time.sleep(idle / 4000)
    res["idle_closed_after_ms"] = None if closed1 is None else round(closed1)
    res["active_alive_after_ms"] = round(now_ms() - t_last1)
    ok &= closed1 is not None and res["active_alive_after_ms"] >= 1.5 * idle
    fresh = socket.create_connection((gw, port), timeout=3)
    res["fresh_echo"] = echo_ok(fresh, b"a freed slot")
    ok &= res["fresh_echo"]
    for c in conns + [fresh]:
        c.close()
    return res, ok


def udp_ask(s, msg, timeout):
    """The answer's target-side port, or None."""
    s.settimeout(timeout)
    s.send(msg)
    try:
        while True:
            d = s.recv(65535)
            port, _, body = d.partition(b":")
            if body == msg:
                return int(port)
    except (socket.timeout, ConnectionRefusedError):
        return None


def udp(gw, port, n, idle):
    res, ok = {}, True
    socks = []
    for _ in range(n + 1):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((gw, port))
        socks.append(s)
    ports = [udp_ask(s, b"hello %d" % i, 2) for i, s in enumerate(socks[:n])]
    t_last1 = now_ms()  # flow 1's last traffic: silent from here
    res["answered"] = sum(p is not None for p in ports)
    ok &= res["answered"] == n
    res["extra_answered"] = udp_ask(socks[n], b"one too many", 0.5) is not None
    ok &= not res["extra_answered"]
    extra_after, k, flow0_ports = None, 0, set()
    while now_ms() - t_last1 < idle + 3000:
        k += 1
        p0 = udp_ask(socks[0], b"keep %d" % k, 1)
        flow0_ports.add(p0)
        if udp_ask(socks[n], b"extra %d" % k, 0.1) is not None:
            extra_after = now_ms() - t_last1
            break
        time.sleep(0.1)
    res["extra_answered_after_ms"] = None if extra_after is None else round(extra_after)
    ok &= extra_after is not None
    res["flow0_same_port"] = flow0_ports == {ports[0]}
    ok &= res["flow0_same_port"]
    # Flow 1 speaks again once the others have gone quiet and ended too: a new flow, so the
    # target sees a new port.
    time.sleep(idle / 1000 + 0.5)
    p1 = udp_ask(socks[1], b"back", 2)
    res["flow1_new_port"] = p1 is not None and p1 != ports[1]
    ok &= res["flow1_new_port"]
    for s in socks:
        s.close()
    return res, ok


def conns(gw, port, specs):
    """A refused connection is accepted by the kernel and closed by the gateway at once."""
    held = []
    for spec in specs:
        src, n = spec.rsplit(":", 1)
        for _ in range(int(n)):
            held.append((src, socket.create_connection((gw, port), timeout=3,
                                                       source_address=(src, 0))))
    time.sleep(0.5)
    kept = {}
    for src, s in held:
        s.setblocking(False)
        try:
            is_open = s.recv(1) != b""
        except BlockingIOError:
            is_open = True
        except OSError:
            is_open = False
        kept[src] = kept.get(src, 0) + is_open
    for _, s in held:
        s.close()
    return " ".join(str(kept.get(spec.rsplit(":", 1)[0], 0)) for spec in specs)


def uflows(gw, port, specs):
    """A refused flow's datagram is dropped: no answer."""
    socks = []
    for spec in specs:
        src, n = spec.rsplit(":", 1)
        for _ in range(int(n)):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((src, 0))
            s.connect((gw, port))
            socks.append((src, s))
    for i, (_, s) in enumerate(socks):
        s.send(b"flow %d" % i)
    answered, waiting = {}, {s.fileno(): (src, s) for src, s in socks}
    deadline = time.monotonic() + 2
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select([s for _, s in waiting.values()], [], [],
                                    max(0, deadline - time.monotonic()))
        for s in ready:
            src, _ = waiting.pop(s.fileno())
            try:
                s.recv(65535)
                answered[src] = answered.get(src, 0) + 1
            except OSError:  # ICMP unreachable: not an answer
                pass
    for _, s in socks:
        s.close()
    return " ".join(str(answered.get(spec.rsplit(":", 1)[0], 0)) for spec in specs)


def main():
    mode = sys.argv[1]
    if mode == "echo":
        srv = TcpServer((sys.argv[2], int(sys.argv[3])), TcpEcho)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((sys.argv[2], int(sys.argv[4])))
        while True:
            d, peer = s.recvfrom(65535)
            s.sendto(b"%d:" % peer[1] + d, peer)
    elif mode == "conns":
        print(conns(sys.argv[2], int(sys.argv[3]), sys.argv[4:]))
    elif mode == "uflows":
        print(uflows(sys.argv[2], int(sys.argv[3]), sys.argv[4:]))
    else:
        gw, port, n, idle = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        res, ok = (tcp if mode == "tcp" else udp)(gw, port, n, idle)
        print(json.dumps(res))
        sys.exit(0 if ok else 1)


main()
