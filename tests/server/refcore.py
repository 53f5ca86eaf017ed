"""The reference server's core: HTTP, faults, /_sim, stats, tasks and TLS.

Everything here is the same for every API the reference server speaks: the
lean HTTP/1.1 handler, TLS, fault injection and the other /_sim controls,
request statistics, the event log, clock-driven asynchronous tasks and the
cached JSON collections. What an API serves (its paths, login, estate, list
and error shapes) is a dialect: a subclass of Dialect in a dialect_*.py
module, listed in refserver.py's DIALECTS. docs/refserver.md describes it all.
"""

import abc
import argparse
import collections
import heapq
import json
import os
import random
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote

VERSION = "1.0.0"
MAX_BODY = 16 * 1024 * 1024
BASE_EPOCH = 1672531200  # 2023-01-01T00:00:00Z: the default estate is older than this + ~500 days
GIB = 1024 ** 3
TIB = 1024 ** 4

REASONS = {int(st): st.phrase for st in HTTPStatus}

_ENC = json.JSONEncoder(separators=(",", ":"))


def dumps(obj):
    return _ENC.encode(obj).encode("ascii")


def iso(t):
    """ISO-8601 UTC timestamp with microseconds, as in the task model."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def mix(*vals):
    """A small deterministic 64-bit hash of integers (estate generation)."""
    h = 0x9E3779B97F4A7C15
    for v in vals:
        h ^= v & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    h = (h * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return h ^ (h >> 29)


def qseg(s):
    """Percent-encode one path segment; '.' and '..' are encoded too."""
    if s in (".", ".."):
        return s.replace(".", "%2E")
    return quote(s, safe="")


class ApiError(Exception):
    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


def error_body(status, message):
    return dumps({"error": message, "errorCode": str(status),
                  "traceId": "%032x" % random.getrandbits(128)})


# --------------------------------------------------------------------------
# Collections of resources with cached JSON

class Rec:
    """One resource: its public JSON object, cached encoding, private state."""
    __slots__ = ("id", "pub", "x", "_json")

    def __init__(self, pub, x=None):
        self.id = pub["id"]
        self.pub = pub
        self.x = x if x is not None else {}
        self._json = None

    def json(self):
        j = self._json
        if j is None:
            j = self._json = dumps(self.pub)
        return j


class Coll:
    """An ordered collection (insertion order is the stable list order).

    Pages and objects are rendered once and cached until the collection or
    the object changes: call touch(rec) after changing rec.pub.
    """
    __slots__ = ("key", "items", "_order", "_pages")

    def __init__(self, key):
        self.key = key
        self.items = {}
        self._order = None
        self._pages = {}

    def add(self, rec):
        self.items[rec.id] = rec
        self._order = None
        self._pages.clear()
        return rec

    def remove(self, rid):
        rec = self.items.pop(rid, None)
        self._order = None
        self._pages.clear()
        return rec

    def touch(self, rec):
        rec._json = None
        self._pages.clear()

    def order(self):
        if self._order is None:
            self._order = list(self.items.values())
        return self._order

    def page(self, start, limit):
        key = (start, limit)
        body = self._pages.get(key)
        if body is None:
            parts = [r.json() for r in self.order()[start:start + limit]]
            body = b'{"' + self.key.encode() + b'":[' + b",".join(parts) + b"]}"
            if len(self._pages) > 256:
                self._pages.clear()
            self._pages[key] = body
        return body


def page_of(key, objs, start, limit):
    return dumps({key: objs[start:start + limit]})


# --------------------------------------------------------------------------
# The estate


# --------------------------------------------------------------------------
# Names the estates of every dialect draw from

CATEGORIES = ["db", "web", "app", "log", "vm", "home", "mail", "bkp", "etl", "k8s"]
HOST_ROLES = ["esx", "sql", "web", "app", "k8s-node", "backup", "oracle", "exch"]
SIZES_GIB = [10, 20, 50, 100, 200, 250, 500, 1024, 2048]
# --hostile-names: names that break naive path handling, and ids that must
# be percent-encoded in a URL path ("%41" checks double decoding).
HOSTILE_NAMES = [None, "", ".", "..", "a/b", "100% full", "line1\nline2", "tab\there",
                 "Ünïcødé-ボリューム"]
HOSTILE_IDS = ["{p}/1", "..", "{p}?x=1", "{p}#1", "{p}%41", "{p} 2"]


def hostile_entries(prefix, first_name):
    """(id, name) pairs added to one collection by --hostile-names."""
    out = []
    for k, name in enumerate(HOSTILE_NAMES):
        out.append(("%s-h%d" % (prefix, k), first_name if name is None else name))
    for k, pattern in enumerate(HOSTILE_IDS):
        out.append((pattern.format(p=prefix), "%s-odd-id-%d" % (prefix, k)))
    return out


# --------------------------------------------------------------------------
# Tasks

TASK_STEPS = (0.3, 0.55, 0.8)  # fractions of the run at which a step is logged


class TaskFailed(Exception):
    pass


class Task:
    """An asynchronous operation whose state is derived from the clock.

    INITIALIZED for the first 10% of --task-seconds, then RUNNING with
    rising progress; at the end the array applies the effect (settle) and
    the task becomes SUCCEEDED, or FAILED with `error` set.
    """

    def __init__(self, tid, display, created, duration, steps, resources, effect, fail, busy):
        self.id = tid
        self.display = display
        self.created = created
        self.duration = duration
        self.end = created + duration
        self.steps = steps
        self.resources = resources
        self.effect = effect
        self.fail = fail
        self.busy = busy      # [(server, vid)] volumes protected while running
        self.state = None     # None while running, else SUCCEEDED / FAILED
        self.error = None
        self.final = None     # cached JSON once ended

    def render(self, now):
        if self.final is not None:
            return self.final
        d = self.duration
        el = now - self.created
        started = self.created + 0.1 * d
        log = [{"message": "Task created", "timestampAt": iso(self.created)}]
        done = self.state is not None
        if el >= 0.1 * d or done:
            log.append({"message": "Task is running", "timestampAt": iso(started)})
            for frac, msg in zip(TASK_STEPS, self.steps):
                if el >= frac * d or done:
                    log.append({"message": msg, "timestampAt": iso(self.created + frac * d)})
        if done:
            state, progress = self.state, 100
            log.append({"message": "Task succeeded" if state == "SUCCEEDED"
                        else "Task failed: %s" % self.error, "timestampAt": iso(self.end)})
            updated = self.end
        elif el < 0.1 * d:
            state, progress, updated = "INITIALIZED", 0, self.created
        else:
            state = "RUNNING"
            progress = max(1, min(99, int(100 * (el - 0.1 * d) / (0.9 * d)))) if d else 99
            updated = min(now, self.end)
        obj = {"id": self.id, "name": self.display, "displayName": self.display,
               "type": "task", "state": state, "progressPercent": progress,
               "healthStatus": "ERROR" if state == "FAILED" else "OK",
               "logMessages": log, "createdAt": iso(self.created),
               "startedAt": iso(started) if state != "INITIALIZED" else None,
               "endedAt": iso(self.end) if done else None, "updatedAt": iso(updated),
               "error": self.error, "associatedResources": self.resources,
               "suggestedPollingIntervalSeconds": 1}
        if done:
            self.final = obj
        return obj

    def progress(self, now):
        if self.state is not None:
            return 100
        return self.render(now)["progressPercent"]


# --------------------------------------------------------------------------
# Request context and validation helpers


def ok_json(obj, status=200, headers=None):
    return status, dumps(obj), headers


def no_content():
    return 204, b"", None


# --------------------------------------------------------------------------
# Faults (/_sim/faults)

class Fault:
    def __init__(self, fid, spec):
        self.id = fid
        self.method = spec["method"]
        self.path = spec["path"]
        self.count = spec.get("count")
        self.rate = spec.get("rate")
        self.spec = spec
        self.hits = 0
        self.release = threading.Event()
        self.terminal = "latency_ms" not in spec

    def active(self):
        return self.count is None or self.count > 0

    def describe(self):
        d = dict(self.spec)
        d["id"] = self.id
        d["remaining"] = self.count
        d["hits"] = self.hits
        d["active"] = self.active()
        return d


# A fault has exactly one of these. ignore_start and total are hostile paging:
# lists answer as if start/offset were 0, or claim `total` items.
EFFECTS = ("latency_ms", "status", "drop", "hang", "body", "ignore_start", "total")


def parse_fault(spec):
    if not isinstance(spec, dict):
        raise ApiError(400, "a fault must be a JSON object")
    known = {"method", "path", "count", "rate", "latency_ms", "status", "retry_after",
             "drop", "hang", "body", "ignore_start", "total"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ApiError(422, "unknown fault field(s): %s" % ", ".join(unknown))
    out = {}
    method = spec.get("method", "*")
    if not isinstance(method, str) or not method:
        raise ApiError(422, "field 'method' must be an HTTP method or '*'")
    out["method"] = method.upper()
    path = spec.get("path", "")
    if not isinstance(path, str):
        raise ApiError(422, "field 'path' must be a string")
    out["path"] = path

    def isnum(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if "count" in spec:
        c = spec["count"]
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise ApiError(422, "field 'count' must be a positive integer")
        out["count"] = c
    if "rate" in spec:
        r = spec["rate"]
        if not isnum(r) or not 0.0 <= r <= 1.0:
            raise ApiError(422, "field 'rate' must be a number from 0.0 to 1.0")
        out["rate"] = float(r)
    effects = [k for k in EFFECTS if k in spec]
    if len(effects) != 1:
        raise ApiError(422, "a fault needs exactly one of " + ", ".join(EFFECTS))
    eff = effects[0]
    v = spec[eff]
    if eff == "latency_ms":
        if not isnum(v) or v < 0:
            raise ApiError(422, "field 'latency_ms' must be a non-negative number")
    elif eff == "status":
        if not isinstance(v, int) or isinstance(v, bool) or not 400 <= v <= 599:
            raise ApiError(422, "field 'status' must be an HTTP status from 400 to 599")
    elif eff == "drop":
        if v is not True and v != "mid-body":
            raise ApiError(422, "field 'drop' must be true or \"mid-body\"")
    elif eff == "body":
        if not isinstance(v, str):
            raise ApiError(422, "field 'body' must be a string (answered as is, with 200)")
    elif eff == "total":
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ApiError(422, "field 'total' must be a non-negative integer")
    elif v is not True:
        raise ApiError(422, "field '%s' must be true" % eff)
    out[eff] = v
    if "retry_after" in spec:
        ra = spec["retry_after"]
        if eff != "status":
            raise ApiError(422, "field 'retry_after' goes with 'status' only")
        if not isinstance(ra, int) or isinstance(ra, bool) or ra < 0:
            raise ApiError(422, "field 'retry_after' must be a non-negative integer")
        out["retry_after"] = ra
    return out


def with_total(body, total):
    """A list answer claiming `total` items (added where the dialect has no total)."""
    try:
        obj = json.loads(body)
    except ValueError:
        return body
    if not isinstance(obj, dict):
        return body
    obj["total"] = total
    return dumps(obj)


# --------------------------------------------------------------------------

# The simulator: what every dialect shares, and the dialect interface

class Req:
    """One API request as a dialect routed it (Dialect.route)."""
    __slots__ = ("method", "path", "rel", "route", "segs", "query", "action", "entry",
                 "answer", "peer")

    def __init__(self, method, path, rel=None, route=None, segs=(), query=None,
                 action=None, entry=None, answer=None):
        self.method = method
        self.path = path
        self.rel = path if rel is None else rel  # what a fault's "path" is a prefix of
        self.route = route
        self.segs = segs
        self.query = query if query is not None else {}
        self.action = action
        self.entry = entry     # a dialect's record of the request, given the status
        self.answer = answer   # (status, body, headers): answer at once, no faults
        self.peer = None       # the client's address (set by the handler)


REQUESTS_KEPT = 500


def requests_control(sim, log, method, parts, qs):
    """/_sim/requests over log (a deque of entries, appended under sim.lock):
    GET [?limit=N] lists the last N, DELETE forgets them; None for other calls."""
    if parts != ["requests"]:
        return None
    if method == "GET":
        q = dict(parse_qsl(qs)) if qs else {}
        try:
            n = int(q.get("limit", REQUESTS_KEPT))
        except ValueError:
            raise ApiError(400, "'limit' must be an integer")
        with sim.lock:
            reqs = list(log)
        return ok_json({"requests": reqs[-n:] if n > 0 else []})
    if method == "DELETE":
        with sim.lock:
            log.clear()
        return no_content()
    return None


class Dialect(abc.ABC):
    """One API: its paths, login, estate, list and error shapes.

    A dialect module defines a subclass and the registry in refserver.py
    names it. The core calls route() for every request that is not /_sim
    (it must count the request in sim.stats), applies faults and latency,
    then calls handle(). sim_control() may serve /_sim calls of its own
    (None: not one of mine); error_body() shapes every error answer.
    """
    name = None
    base = ""          # the API base path, printed after the address when ready
    session_ttl = 1800.0   # --session-ttl when not given
    token_ttl = 7200       # --token-ttl when not given

    def __init__(self, sim, opts):
        self.sim = sim
        self.opts = opts

    @staticmethod
    def add_options(parser):
        """Add the dialect's own option group to the argument parser."""

    @staticmethod
    def check_options(parser, opts):
        """Check and complete opts when this dialect is chosen (parser.error)."""

    def count(self, key):
        sim = self.sim
        with sim.stats_lock:
            sim.stats[key] += 1
            sim.total += 1

    @abc.abstractmethod
    def route(self, method, path, qs, headers, body):
        """The route of a request (counted in sim.stats), or an error; every dialect has its own."""

    @abc.abstractmethod
    def handle(self, req, headers, body, host):
        """Answers a routed request: (status, body, headers); every dialect has its own."""

    def sim_control(self, method, parts, body, qs):
        return None

    def error_body(self, status, message):
        return error_body(status, message)


class Sim:
    def __init__(self, opts, dialect_cls):
        self.opts = opts
        self.page_max = opts.page_max
        self.lock = threading.Lock()
        self.stats_lock = threading.Lock()
        self.fault_lock = threading.Lock()
        self.stats = collections.Counter()  # (method, template[, action]) -> count
        self.total = 0
        self.faults = []
        self.fault_seq = 0
        self.rng = random.Random(opts.seed)
        self.events = collections.deque(maxlen=2000)
        self.port = 0
        self.scheme = "https" if opts.tls_cert else "http"
        self.default_host = ""
        self.last_task = None
        self.task_seq = 0
        self.dialect = dialect_cls(self, opts)

    def event(self, msg):
        self.events.append("%s %s" % (iso(time.time()), msg))

    def error_body(self, status, message):
        return self.dialect.error_body(status, message)

    # -- tasks
    def settle(self, owner, now):
        """Finish the tasks of owner (an array, an estate) whose time has come (lock held)."""
        pending = owner.pending
        while pending and pending[0][0] <= now:
            task = heapq.heappop(pending)[2]
            for srv, vid in task.busy:
                srv.busy[vid] -= 1
                if srv.busy[vid] <= 0:
                    del srv.busy[vid]
            if task.fail:
                task.state, task.error = "FAILED", task.fail
            else:
                try:
                    task.effect()
                    task.state = "SUCCEEDED"
                except TaskFailed as e:
                    task.state, task.error = "FAILED", str(e)
            self.event("task %s %s" % (task.id, task.state))
            task.effect = None

    # -- faults
    def take_faults(self, method, rel):
        latency = 0.0
        terminal = None
        with self.fault_lock:
            for f in self.faults:
                if not f.active() or (f.method != "*" and f.method != method):
                    continue
                if not rel.startswith(f.path):
                    continue
                if f.terminal and terminal is not None:
                    continue
                if f.rate is not None and self.rng.random() >= f.rate:
                    continue
                f.hits += 1
                if f.count is not None:
                    f.count -= 1
                if f.terminal:
                    terminal = f
                else:
                    latency += f.spec["latency_ms"] / 1000.0
        return latency, terminal

    # -- /_sim
    def sim_control(self, method, path, body, qs=""):
        parts = path.split("/")[2:]
        out = self.dialect.sim_control(method, parts, body, qs)
        if out is not None:
            return out
        if parts == ["stats"] and method == "GET":
            with self.stats_lock:
                d = {"%s %s" % k[:2] + ("?action=%s" % k[2] if len(k) > 2 else ""): n
                     for k, n in self.stats.items()}
                d["total"] = self.total
            return ok_json(d)
        if parts == ["stats", "reset"] and method == "POST":
            with self.stats_lock:
                self.stats.clear()
                self.total = 0
            return no_content()
        if parts == ["faults"]:
            if method == "GET":
                with self.fault_lock:
                    return ok_json({"faults": [f.describe() for f in self.faults]})
            if method == "POST":
                spec = parse_fault(self.parse_json(body))
                with self.fault_lock:
                    self.fault_seq += 1
                    f = Fault("f%d" % self.fault_seq, spec)
                    self.faults.append(f)
                    return ok_json(f.describe(), 201)
            if method == "DELETE":
                with self.fault_lock:
                    for f in self.faults:
                        f.release.set()
                    self.faults = []
                return no_content()
        if len(parts) == 2 and parts[0] == "faults" and method == "DELETE":
            with self.fault_lock:
                f = next((f for f in self.faults if f.id == parts[1]), None)
                if f is None:
                    raise ApiError(404, "fault %r not found" % parts[1])
                f.release.set()
                self.faults.remove(f)
            return no_content()
        raise ApiError(404, "no such test control: %s %s" % (method, path))

    @staticmethod
    def parse_json(body):
        try:
            obj = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "malformed JSON body: %s" % e)
        if not isinstance(obj, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return obj


# --------------------------------------------------------------------------
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
                status, rbody, rhead = e.status, self.error(e.status, e.message), e.headers
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
            latency, terminal = sim.take_faults(req.method, req.rel)
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
            status, rbody, rhead = e.status, self.error(e.status, e.message), e.headers
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
