#!/usr/bin/python3
"""A WebSocket over HTTP/2 (RFC 8441) through the gateway, with Debian's python3-h2 for HTTP/2
and RFC 6455 framing written here (a few lines; the echo server at the target is
python3-websockets, ws.py, so the two ends are independent implementations).

  ws_h2.py GW_ADDR PORT HOST N [tls]

Prior knowledge on the plain port, or TLS with ALPN h2 (tls; the certificate is not checked:
the test's self-signed fallback). Checks that the gateway's SETTINGS enable the extended
CONNECT, opens one (:protocol websocket, no Sec-WebSocket-Key: RFC 8441 has none), expects 200
without Sec-WebSocket-Accept, sends N text and N binary messages (up to 60 kB, more than the
first window, so flow control has to move) and checks each echo, closes the WebSocket and
expects the stream to end. Then an extended CONNECT to an unknown host must get 404, and a
plain CONNECT (a tunnel to anywhere) 501.
Prints "ok N" with the number of echoes that came back right, or what went wrong (status 1).
"""
import os
import socket
import ssl
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings

ADDR, PORT, HOST, N = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
TLS = len(sys.argv) > 5 and sys.argv[5] == "tls"


def frame(opcode, payload):
    """A client frame (RFC 6455 section 5.2): FIN, masked."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def unframe(buf):
    """One server frame from buf: (opcode, payload, rest) or None when incomplete."""
    if len(buf) < 2:
        return None
    op, n = buf[0] & 0x0F, buf[1] & 0x7F
    if buf[1] & 0x80:
        raise ValueError("a server frame is masked")
    off = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack("!Q", buf[2:10])[0], 10
    if len(buf) < off + n:
        return None
    return op, buf[off:off + n], buf[off + n:]


class Conn:
    def __init__(self):
        s = socket.create_connection((ADDR, PORT), timeout=10)
        if TLS:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            s = ctx.wrap_socket(s, server_hostname=HOST)
            if s.selected_alpn_protocol() != "h2":
                sys.exit("no ALPN h2")
        self.s = s
        # Outbound checks off: the plain CONNECT below is what h2 would not send itself.
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=False))
        self.c.initiate_connection()
        self.flush()
        self.connect_ok = None

    def flush(self):
        out = self.c.data_to_send()
        if out:
            self.s.sendall(out)

    def events(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("the gateway closed the connection")
        evs = self.c.receive_data(d)
        for e in evs:
            if isinstance(e, h2.events.RemoteSettingsChanged):
                cs = e.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                if cs is not None:
                    self.connect_ok = cs.new_value
            if isinstance(e, h2.events.DataReceived):
                self.c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        self.flush()
        return evs

    def open(self, host, plain=False):
        while self.connect_ok is None:
            self.events()
        if self.connect_ok != 1:
            sys.exit("the gateway's SETTINGS do not enable the extended CONNECT")
        sid = self.c.get_next_available_stream_id()
        if plain:  # a tunnel to anywhere (RFC 9113 section 8.5)
            self.c.send_headers(sid, [(":method", "CONNECT"), (":authority", host)])
        else:
            self.c.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"),
                                      (":scheme", "https" if TLS else "http"),
                                      (":path", "/chat"), (":authority", host),
                                      ("sec-websocket-version", "13")])
        self.flush()
        while True:
            for e in self.events():
                if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                    return sid, dict((k.decode(), v.decode()) for k, v in e.headers)
                if isinstance(e, h2.events.StreamReset) and e.stream_id == sid:
                    sys.exit("the extended CONNECT was reset: %s" % e.error_code)

    def send(self, sid, data):
        """DATA within the flow-control windows, waiting for WINDOW_UPDATEs."""
        while data:
            room = min(self.c.local_flow_control_window(sid), self.c.max_outbound_frame_size)
            if room <= 0:
                self.events()
                continue
            self.c.send_data(sid, data[:room])
            data = data[room:]
            self.flush()


def main():
    k = Conn()
    sid, head = k.open(HOST)
    if head.get(":status") != "200" or "sec-websocket-accept" in head:
        sys.exit("the extended CONNECT was answered %s" % head)
    buf, ok, ended = b"", 0, False
    msgs = []
    for i in range(N):
        msgs.append((1, ("text %d" % i).encode()))
        msgs.append((2, bytes([i % 256]) * (1000 + i * 997 % 60000)))
    for op, payload in msgs:
        k.send(sid, frame(op, payload))
        got = None
        while got is None:
            f = unframe(buf)
            if f:
                got, buf = (f[0], f[1]), f[2]
                break
            for e in k.events():
                if isinstance(e, h2.events.DataReceived) and e.stream_id == sid:
                    buf += e.data
                if isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)):
                    sys.exit("the stream ended after %d echoes" % ok)
        if got == (op, b"echo:" + payload):
            ok += 1
    # Close (RFC 6455 section 5.5.1): the server answers with a close, then ends; the
    # gateway ends the stream.
    k.send(sid, frame(8, struct.pack("!H", 1000)))
    k.c.end_stream(sid)
    k.flush()
    while not ended:
        for e in k.events():
            if isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset)) and \
                    e.stream_id == sid:
                ended = True
    # A refused one: an unknown host is answered as any request to it, and the stream ends.
    sid2, head2 = k.open("nothing.test")
    if head2.get(":status") != "404":
        sys.exit("an extended CONNECT to an unknown host was answered %s" % head2)
    sid3, head3 = k.open("198.51.100.3:5432", plain=True)
    if head3.get(":status") != "501":
        sys.exit("a plain CONNECT was answered %s" % head3)
    print("ok %d" % ok)


try:
    main()
except (OSError, EOFError, ValueError) as e:
    sys.exit("ws_h2: %s" % e)
