"""The reference server's HTTP/1.1 side: the handler, TLS and serving.

A lean keep-alive handler (no email.parser) reads each request, sends
/_sim calls to the simulator and API calls to the dialect, after the
faults and latency they meet; TLS (and mutual TLS) wraps the connection in
its own thread. serve() builds the simulator and listens until killed.
"""

import argparse
import os
import signal
import socket
import socketserver
import ssl
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from refcore import REASONS, VERSION, ApiError, dumps
from reffaults import with_total
from refsim import Sim

MAX_BODY = 16 * 1024 * 1024

_date_cache = [0, ""]


def http_date():
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
    return _date_cache[1]


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler with a lean parser (no email.parser)."""
    protocol_version = "HTTP/1.1"
    server_version = "dsfs-refserver/" + VERSION
    sys_version = ""

    def setup(self):
        srv = self.server
        sock = self.request
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if srv.tls is not None:
            sock.settimeout(10)
            self.request = srv.tls.wrap_socket(sock, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def log_message(self, fmt, *args):
        if self.server.sim.opts.verbose:
            sys.stderr.write("%s - %s\n" % (self.client_address[0], fmt % args))

    def error(self, status, message):
        return self.server.sim.error_body(status, message)

    def error_answer(self, e):
        """The answer of an ApiError."""
        body = e.body if e.body is not None else self.error(e.status, e.message)
        return e.status, body, e.headers

    def address_string(self):
        return self.client_address[0]

    def handle_one_request(self):
        rfile = self.rfile
        self.command, self.request_version = None, "HTTP/1.1"
        try:
            line = rfile.readline(65537)
            if not line:
                self.close_connection = True
                return
            if line in (b"\r\n", b"\n"):
                self.close_connection = False
                return
            if len(line) > 65536:
                self.close_connection = True
                self.send(414, self.error(414, "request line too long"))
                return
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                self.close_connection = True
                self.send(400, self.error(400, "malformed request line"))
                return
            method, target, version = parts
            headers = {}
            for _ in range(200):
                h = rfile.readline(65537)
                if not h:
                    self.close_connection = True
                    return
                if h in (b"\r\n", b"\n"):
                    break
                name, sep, value = h.decode("latin-1").partition(":")
                if not sep:
                    self.close_connection = True
                    self.send(400, self.error(400, "malformed header line"))
                    return
                headers[name.strip().lower()] = value.strip()
            else:
                self.close_connection = True
                self.send(431, self.error(431, "too many header lines"))
                return
            self.command, self.path, self.request_version = method, target, version
            self.requestline = line.decode("latin-1").rstrip("\r\n")
            conn = headers.get("connection", "").lower()
            if version == "HTTP/1.1":
                self.close_connection = "close" in conn
            elif version == "HTTP/1.0":
                self.close_connection = "keep-alive" not in conn
            else:
                self.close_connection = True
                self.send(505, self.error(505, "HTTP version not supported"))
                return
            body = self.read_body(headers)
            if body is None:
                return
            self.respond(method, target, headers, body)
        except (OSError, ValueError):
            self.close_connection = True

    def read_body(self, headers):
        te = headers.get("transfer-encoding", "").lower()
        cl = headers.get("content-length")
        chunked = "chunked" in te
        if not chunked and cl is None:
            return b""
        length = 0
        if not chunked:
            try:
                length = int(cl)
                if length < 0:
                    raise ValueError
            except ValueError:
                self.close_connection = True
                self.send(400, self.error(400, "bad Content-Length"))
                return None
            if length > MAX_BODY:
                self.close_connection = True
                self.send(413, self.error(413, "request body too large"))
                return None
        if headers.get("expect", "").lower() == "100-continue" and (chunked or length):
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not chunked:
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                self.close_connection = True
                return None
            return body
        chunks = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            if not size_line:
                self.close_connection = True
                return None
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                self.send(413, self.error(413, "request body too large"))
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(3)

    def send(self, status, body, headers=None, partial=None):
        out = ["HTTP/1.1 %d %s\r\nDate: %s\r\n" % (status, REASONS.get(status, "Status"),
                                                    http_date())]
        ctype = "application/json"
        if headers:
            for k, v in headers:
                if k == "Content-Type":
                    ctype = v
                else:
                    out.append("%s: %s\r\n" % (k, v))
        if status != 204:
            out.append("Content-Type: %s\r\nContent-Length: %d\r\n" % (ctype, len(body)))
        if self.close_connection:
            out.append("Connection: close\r\n")
        elif self.request_version == "HTTP/1.0":
            out.append("Connection: keep-alive\r\n")
        out.append("\r\n")
        head = "".join(out).encode("latin-1")
        if partial is not None:
            self.wfile.write(head + body[:partial])
            self.close_connection = True
            return
        if status == 204 or self.command == "HEAD":
            self.wfile.write(head)
        else:
            self.wfile.write(head + body)

    def respond(self, method, target, headers, body):
        sim = self.server.sim
        t0 = time.monotonic() if sim.opts.verbose else 0
        path, _, qs = target.partition("?")
        status = 0
        if path.startswith("/_sim/") and sim.opts.test_controls:
            try:
                status, rbody, rhead = sim.sim_control(method, path, body, qs)
            except ApiError as e:
                status, rbody, rhead = self.error_answer(e)
            self.send(status, rbody, rhead)
        else:
            req = sim.dialect.route(method, path, qs, headers, body)
            req.peer = self.client_address[0]
            if req.answer is not None:
                status = req.answer[0]
                self.send(*req.answer)
            else:
                status = self.api_request(sim, req, headers, body)
        if sim.opts.verbose:
            sys.stderr.write("%s %s %s %s %.1fms\n" % (
                self.client_address[0], method, target, status or "-",
                (time.monotonic() - t0) * 1000))

    def api_request(self, sim, req, headers, body):
        """Faults, latency, then the dialect's answer; req.entry (a dialect's record of
        the request) gets the status before the answer is sent."""
        terminal = None
        entry = req.entry
        if sim.faults:
            latency, terminal = sim.faults.take(req.method, req.rel)
            if latency:
                time.sleep(latency)
            if terminal is not None:
                spec = terminal.spec
                if "status" in spec:
                    st = spec["status"]
                    retry = spec.get("retry_after", 1 if st in (429, 503) else None)
                    extra = [("Retry-After", str(retry))] if retry is not None else None
                    if entry is not None:
                        entry["status"] = st
                    self.send(st, self.error(st, "injected fault %s" % terminal.id), extra)
                    return st
                if spec.get("drop") is True:
                    self.close_connection = True
                    return None
                if "body" in spec:
                    # a malformed or unexpected answer, sent as it is
                    if entry is not None:
                        entry["status"] = 200
                    self.send(200, spec["body"].encode())
                    return 200
                if spec.get("hang"):
                    terminal.release.wait()
                if spec.get("ignore_start"):
                    req.query = {k: v for k, v in req.query.items()
                                 if k not in ("start", "offset")}
        if sim.opts.latency_ms:
            time.sleep(sim.opts.latency_ms / 1000.0)
        try:
            status, rbody, rhead = sim.dialect.handle(req, headers, body, headers.get("host"))
        except ApiError as e:
            status, rbody, rhead = self.error_answer(e)
        except Exception as e:  # a bug must answer 500, never kill the connection silently
            traceback.print_exc()
            status, rbody, rhead = 500, self.error(500, "internal error: %r" % e), None
        if entry is not None:
            entry["status"] = status
        if terminal is not None and "total" in terminal.spec and status == 200:
            rbody = with_total(rbody, terminal.spec["total"])
        if terminal is not None and terminal.spec.get("drop") == "mid-body":
            if status == 204 or len(rbody) < 2:
                status, rbody = 200, dumps({"padding": "x" * 64})
            self.send(status, rbody, rhead, partial=len(rbody) // 2)
            return status
        self.send(status, rbody, rhead)
        return status


class RefHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def server_bind(self):
        # not HTTPServer.server_bind: it looks the host name up (getfqdn), slowly
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if self.sim.opts.verbose:
            super().handle_error(request, client_address)


def parse_listen(s):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % s)
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def positive_float(s):
    v = float(s)
    if v < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return v


def serve(opts, dialect_cls, announce):
    """Build the simulator, listen, announce(dialect, root URL) and serve until killed.
    announce prints the one ready line."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os._exit(0))
    sim = Sim(opts, dialect_cls)
    host, port = opts.listen
    cls = type("RefHTTPServer", (RefHTTPServer,), {})
    if ":" in host:
        cls.address_family = socket.AF_INET6
    httpd = cls((host, port), Handler)
    httpd.sim = sim
    httpd.tls = None
    if opts.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
        if opts.tls_client_ca:
            ctx.load_verify_locations(opts.tls_client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        httpd.tls = ctx
    sim.port = httpd.server_address[1]
    shown = "[%s]" % host if ":" in host else host
    sim.default_host = "%s:%d" % (shown, sim.port)
    announce(sim.dialect, "%s://%s" % (sim.scheme, sim.default_host))
    httpd.serve_forever(poll_interval=0.5)

