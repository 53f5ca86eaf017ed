"""Start and stop the reference server (tests/server/refserver.py) for tests.

Public API (import with `sys.path.insert(0, "<repo>/tests/server")`):

    start_refserver(*args: str, ready_timeout: float = 15.0,
                    python: str = sys.executable, stderr=None) -> RefServer
        Starts `python refserver.py --listen 127.0.0.1:0 *args`, waits for its
        "listening on URL" line and returns a RefServer. Pass options as
        separate strings: start_refserver("--test-controls", "--volumes", "5").
        A "--listen" in args replaces the default. stderr defaults to a
        temporary file whose text RefServer.stderr_text() returns.

    class RefServer:
        url    API base, e.g. "http://127.0.0.1:41234/storageplugin/api"
        root   server root (where /_sim lives), e.g. "http://127.0.0.1:41234"
        host, port, scheme, proc (the subprocess.Popen)
        stop()             SIGTERM, wait, SIGKILL if needed; idempotent
        client(**kw)       a Client on this server (kw passed to Client)
        login(user="admin", password="admin", body=None, **kw) -> Client
                           a Client with a fresh session
        sim(method, path, body=None) -> Response   a /_sim call, path after "/_sim"
        stderr_text() -> str
        usable as a context manager (stops on exit)

    class Client:   one keep-alive HTTP(S) connection (http.client)
        Client(url, ssl_context=None, timeout=10.0)
        request(method, path, body=None, *, headers=None, raw=None,
                content_type="application/json", session=True) -> Response
            path is relative to the API base ("/server/0/volume"); body is
            JSON-encoded; raw sends bytes as is. The session header is sent
            when the client has one and session is true.
        get/post/delete(path, ...) shorthands; login(user, password, body=None)
        session_id (str or None); close()

    class Response: status, headers (lower-case names), body (bytes), json()

    refserver_factory   pytest fixture: a function with start_refserver's
                        signature; every server it starts is stopped after
                        the test.
    module_server(start, *args)   a module-scoped pytest fixture: one server,
                        start(*args), shared by a module's tests (which touch
                        disjoint resources), stopped after them.

Stdlib only (pytest only for the fixture).
"""

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
REFSERVER = os.path.join(HERE, "refserver.py")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class Client:
    """One keep-alive connection to the API; reconnects after a close."""

    def __init__(self, url, ssl_context=None, timeout=10.0):
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.base = parts.path.rstrip("/")
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.session_id = None
        self.conn = None

    def _connect(self):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, *, headers=None, raw=None,
                content_type="application/json", session=True):
        hdrs = {"Accept": "application/json"}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type:
            hdrs["Content-Type"] = content_type
        if session and self.session_id:
            hdrs["x-storageplugin-sessionid"] = self.session_id
        if headers:
            hdrs.update(headers)
        if self.conn is None:
            self.conn = self._connect()
        try:
            self.conn.request(method, self.base + path, body=data, headers=hdrs)
            resp = self.conn.getresponse()
            rbody = resp.read()
        except Exception:
            self.close()
            raise
        rheaders = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self.close()
        return Response(resp.status, rheaders, rbody)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, user="admin", password="admin", body=None):
        token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        r = self.request("POST", "/session", body, session=False,
                         headers={"Authorization": "Basic " + token})
        if r.status == 201:
            self.session_id = r.json()["sessionId"]
        return r


class RefServer:
    def __init__(self, proc, url, stderr_file):
        self.proc = proc
        self.url = url
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.root = "%s://%s" % (parts.scheme, parts.netloc)
        self._stderr = stderr_file

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        if self._stderr is not None and not isinstance(self._stderr, str):
            # keep what it said, and leave no file behind in /tmp
            text = self.stderr_text()
            self._stderr.close()
            try:
                os.unlink(self._stderr.name)
            except OSError:
                pass
            self._stderr = text

    def stderr_text(self):
        if self._stderr is None:
            return ""
        if isinstance(self._stderr, str):
            return self._stderr
        self._stderr.flush()
        with open(self._stderr.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def client(self, **kw):
        return Client(self.url, **kw)

    def login(self, user="admin", password="admin", body=None, **kw):
        c = Client(self.url, **kw)
        r = c.login(user, password, body)
        if r.status != 201:
            raise AssertionError("login failed: %r" % r)
        return c

    def sim(self, method, path, body=None, ssl_context=None):
        c = Client(self.root, ssl_context=ssl_context)
        c.base = "/_sim"
        try:
            return c.request(method, path, body)
        finally:
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_refserver(*args, ready_timeout=15.0, python=sys.executable, stderr=None):
    args = [str(a) for a in args]
    cmd = [python, REFSERVER]
    if "--listen" not in args:
        cmd += ["--listen", "127.0.0.1:0"]
    cmd += args
    err = stderr
    if err is None:
        err = tempfile.NamedTemporaryFile(prefix="refserver-", suffix=".err", delete=False)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    line = [None]

    def read():
        line[0] = proc.stdout.readline()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(ready_timeout)
    ok = line[0] and line[0].startswith("listening on ")
    if not ok:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        text = ""
        if stderr is None:
            err.flush()
            with open(err.name, encoding="utf-8", errors="replace") as f:
                text = f.read()
        raise RuntimeError("refserver did not start (%r): %s" % (line[0], text[-2000:]))
    return RefServer(proc, line[0].split()[-1], err if stderr is None else None)


try:
    import pytest
except ImportError:  # the server's own Python may lack pytest; the fixture is optional
    pytest = None

if pytest is not None:
    @pytest.fixture
    def refserver_factory():
        started = []

        def factory(*args, **kw):
            srv = start_refserver(*args, **kw)
            started.append(srv)
            return srv

        yield factory
        for srv in started:
            srv.stop()  # removes its stderr file

    def module_server(start, *args):
        @pytest.fixture(scope="module")
        def srv():
            s = start(*args)
            yield s
            s.stop()
        return srv


def wait_until(predicate, timeout=5.0, interval=0.02):
    """Poll predicate() until it returns a true value; return it (or the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
