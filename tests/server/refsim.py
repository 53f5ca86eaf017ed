"""The simulator: the Dialect interface, the /_sim controls and what every dialect shares.

Sim holds the request statistics, the faults, the event log and the
clock-driven tasks of one server; its dialect (a subclass of Dialect in a
dialect_*.py module) serves the API. Every /_sim control lives here, once:
the core ones (stats, faults) in Sim.sim_control, the ones about logins and
requests (sessions, password, tokens, the request log, events) in
Dialect.sim_control, driven by a few hooks each dialect sets; a dialect adds
controls only an API of its kind has through sim_extra. docs/refserver.md
("Test controls") describes them.
"""

import abc
import collections
import heapq
import json
import random
import threading
import time
from urllib.parse import parse_qsl

from refcore import ApiError, TaskFailed, error_body, iso, json_object, no_content, ok_json
from reffaults import Faults

REQUESTS_KEPT = 500     # entries of /_sim/requests
SIM_TOKEN_TTL = 10 * 365 * 86400   # /_sim/tokens: ten years unless asked


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
        self.entry = entry     # the request's /_sim/requests entry, given the status
        self.answer = answer   # (status, body, headers): answer at once, no faults
        self.peer = None       # the client's address (set by the handler)


def allowed_route(req, not_found, not_allowed):
    """The route of a request, if it allows the method (route.allow: "GET, PUT"); else 404 or
    405 with Allow, in the dialect's words (formats with {path}, {method}, {template})."""
    route = req.route
    if route is None:
        raise ApiError(404, not_found.format(path=req.path))
    if req.method not in route.allow.split(", "):
        raise ApiError(405, not_allowed.format(method=req.method, template=route.template),
                       [("Allow", route.allow)])
    return route


class Dialect(abc.ABC):
    """One API: its paths, login, estate, list and error shapes.

    A dialect module defines a subclass and the registry in refserver.py
    names it. The core calls route() for every request that is not /_sim
    (it must count the request with count(), and may keep it with record()),
    applies faults and latency, then calls handle(). error_body() shapes
    every error answer.

    The /_sim controls about logins and requests are sim_control(), the same
    for every dialect; these hooks say what they act on (a None hook: the
    dialect has no such control, and the call answers 404):
      logins()         the dict of live logins (sessions or access tokens,
                       as login_what says) that /_sim/sessions counts and
                       /_sim/sessions/expire empties; login_expiry(value)
                       reads one's expiry
      secret           the attribute /_sim/password changes, and what it is
                       called in the event log
      token_owner      /_sim/tokens: the body field naming the owner of the
                       token minted with issue_token(owner, ttl), and the
                       attribute holding the default owner
      keeps(method, path)   whether /_sim/requests keeps a request (every
                       dialect keeps a log; never of a request carrying a secret)
      event_field      /_sim/events: the body field holding the text of the
                       record add_sim_event(text, same) appends
    sim_extra() serves the controls only this dialect has.
    """
    name = None
    base = ""          # the API base path, printed after the address when ready
    session_ttl = 1800.0   # --session-ttl when not given
    token_ttl = 7200       # --token-ttl when not given
    arrays = False         # --arrays may ask for more than one
    login_what = "session"
    secret = ("password", "password")
    token_owner = None
    event_field = None
    event_what = "event"   # what /_sim/events adds, for the event log

    def __init__(self, sim, opts):
        self.sim = sim
        self.opts = opts
        self.requests = collections.deque(maxlen=REQUESTS_KEPT)

    @staticmethod
    def add_options(parser):
        """Add the dialect's own option group to the argument parser."""

    @staticmethod
    def check_options(parser, opts):
        """Check and complete opts when this dialect is the one chosen (parser.error)."""

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

    def error_body(self, status, message):
        return error_body(status, message)

    # -- the request log (/_sim/requests)
    def keeps(self, method, path):
        """Whether /_sim/requests keeps this request: by default every one but GET and HEAD."""
        return method not in ("GET", "HEAD")

    def record(self, method, path, qs, headers, body, template):
        """Keeps a request for /_sim/requests when keeps() says so: its entry, whose status
        the handler sets once answered, or None."""
        if not self.keeps(method, path):
            return None
        parsed = None
        if body:
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                parsed = body.decode("utf-8", "replace")
        entry = {"method": method, "path": path, "query": qs, "template": template,
                 "contentType": headers.get("content-type"), "body": parsed,
                 "status": None, "time": iso(time.time())}
        with self.sim.lock:
            self.requests.append(entry)
        return entry

    # -- hooks of the shared controls
    def logins(self):
        return None

    @staticmethod
    def login_expiry(value):
        return value

    def sessions_answer(self, live):
        """The answer of GET /_sim/sessions, given the live logins (lock held)."""
        return {"active": len(live)}

    def issue_token(self, owner, ttl):
        """A token for owner, valid ttl seconds (lock held); only a dialect with token_owner mints one."""
        raise ApiError(404, "the %s dialect has no /_sim/tokens" % self.name)

    def add_sim_event(self, text, same):
        """Appends a record of `text` (`same`: at the time of the one before); returns the
        answer's body (lock held). Only a dialect with event_field keeps such records."""
        raise ApiError(404, "the %s dialect has no /_sim/events" % self.name)

    def sim_extra(self, method, parts, body, qs):
        """The /_sim controls only this dialect has; None: not one of them."""
        return None

    # -- the shared controls
    def sim_control(self, method, parts, body, qs):
        """/_sim/sessions, sessions/expire, password, tokens, requests, events, then the
        dialect's own (parts: the path after /_sim/); None for other calls."""
        sim = self.sim
        call = (method, "/".join(parts))
        table = self.logins()
        if call == ("GET", "sessions") and table is not None:
            with sim.lock:
                now = time.time()
                live = [v for v in table.values() if self.login_expiry(v) >= now]
                return ok_json(self.sessions_answer(live))
        if call == ("POST", "sessions/expire") and table is not None:
            with sim.lock:
                table.clear()
            sim.event("every %s expired" % self.login_what)
            return no_content()
        if call == ("POST", "password") and self.secret is not None:
            pw = json_object(body).get("password")
            if not isinstance(pw, str):
                raise ApiError(422, "field 'password' must be a string")
            with sim.lock:
                setattr(self, self.secret[0], pw)
            sim.event("%s changed" % self.secret[1])
            return no_content()
        if call == ("POST", "tokens") and self.token_owner is not None:
            return self.sim_token(body)
        if parts == ["requests"] and method in ("GET", "DELETE"):
            return self.sim_requests(method, qs)
        if call == ("POST", "events") and self.event_field is not None:
            return self.sim_events(body)
        return self.sim_extra(method, parts, body, qs)

    def sim_token(self, body):
        field, default = self.token_owner
        spec = json_object(body)
        ttl = spec.get("ttl", SIM_TOKEN_TTL)
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
            raise ApiError(422, "field 'ttl' must be a positive number of seconds")
        owner = spec.get(field, getattr(self, default))
        if not isinstance(owner, str):
            raise ApiError(422, "field '%s' must be a string" % field)
        with self.sim.lock:
            return ok_json(self.issue_token(owner, ttl))

    def sim_requests(self, method, qs):
        """GET [?limit=N] lists the last N kept requests, DELETE forgets them."""
        sim = self.sim
        if method == "DELETE":
            with sim.lock:
                self.requests.clear()
            return no_content()
        q = dict(parse_qsl(qs)) if qs else {}
        try:
            n = int(q.get("limit", REQUESTS_KEPT))
        except ValueError:
            raise ApiError(400, "'limit' must be an integer")
        with sim.lock:
            reqs = list(self.requests)
        return ok_json({"requests": reqs[-n:] if n > 0 else []})

    def sim_events(self, body):
        """count > 1: one burst, every record at the first one's time; the last is answered."""
        field = self.event_field
        spec = json_object(body)
        text = spec.get(field)
        if not isinstance(text, str) or not text:
            raise ApiError(422, "field '%s' must be a non-empty string" % field)
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 5000:
            raise ApiError(422, "field 'count' must be an integer from 1 to 5000")
        with self.sim.lock:
            for k in range(count):
                out = self.add_sim_event(text if count == 1 else "%s %d" % (text, k + 1), k > 0)
        self.sim.event("%d %s(s) added" % (count, self.event_what))
        return 201, out, None


class Sim:
    """One server's state beside its dialect: stats, faults, events, tasks."""

    def __init__(self, opts, dialect_cls):
        self.opts = opts
        self.page_max = opts.page_max
        self.lock = threading.Lock()
        self.stats_lock = threading.Lock()
        self.stats = collections.Counter()  # (method, template[, action]) -> count
        self.total = 0
        self.rng = random.Random(opts.seed)
        self.faults = Faults(self.rng)
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
    def start_task(self, owner, task):
        """Queues a new task of owner (an array, an estate) for settle(), marking the
        volumes it keeps busy (lock held); the owner lists it itself."""
        for srv, vid in task.busy:
            srv.busy[vid] += 1
        self.task_seq += 1
        heapq.heappush(owner.pending, (task.end, self.task_seq, task))
        self.last_task = task
        self.event("task %s started: %s" % (task.id, task.display))

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

    # -- /_sim
    def sim_control(self, method, path, body, qs=""):
        parts = path.split("/")[2:]
        out = self.dialect.sim_control(method, parts, body, qs)
        if out is None:
            out = self.faults.control(method, parts, body)
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
        raise ApiError(404, "no such test control: %s %s" % (method, path))
