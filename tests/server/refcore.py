"""The reference server's building blocks: what every dialect's code uses.

JSON encoding and times, the error an API answers, reading a request (path
segments, media type, JSON body, HTTP Basic credentials, secrets), cached
JSON collections, the names and hashes estates are generated from, and the
clock-driven asynchronous task. The rest of the core: refsim.py (the
simulator, the Dialect interface and the /_sim controls), reffaults.py
(fault injection), refhttp.py (HTTP/1.1, TLS, serving). What an API serves
is a dialect: a subclass of refsim.Dialect in a dialect_*.py module, listed
in refserver.py's DIALECTS. docs/refserver.md describes it all.
"""

import base64
import hmac
import json
import random
import time
from http import HTTPStatus
from urllib.parse import parse_qsl, quote, unquote

VERSION = "1.0.0"
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
    """An error answer: the dialect's error body with the message, or `body` as it is."""

    def __init__(self, status, message, headers=None, body=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []
        self.body = body


def oauth_error(status, code, desc, extra=None):
    """The error answer of an OAuth2 token endpoint (RFC 6749 5.2), to raise."""
    return ApiError(status, desc, [("Cache-Control", "no-store")] + (extra or []),
                    dumps({"error": code, "error_description": desc}))


def oauth_token(out):
    """The answer of an OAuth2 token endpoint that issued the token `out`."""
    return 200, dumps(out), [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


def token_form(headers, body, grant):
    """The form of an OAuth2 token request of this grant type, or an oauth_error."""
    ctype = media_type(headers)
    if ctype != "application/x-www-form-urlencoded":
        raise oauth_error(400, "invalid_request", "the token request must be "
                          "application/x-www-form-urlencoded (got %r)" % ctype)
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise oauth_error(400, "invalid_request", "the form is not UTF-8")
    if form.get("grant_type") is None:
        raise oauth_error(400, "invalid_request", "grant_type is missing")
    if form["grant_type"] != grant:
        raise oauth_error(400, "unsupported_grant_type", "only grant_type=%s is supported" % grant)
    return form


def error_body(status, message):
    return dumps({"error": message, "errorCode": str(status),
                  "traceId": "%032x" % random.getrandbits(128)})


def ok_json(obj, status=200, headers=None):
    return status, dumps(obj), headers


def no_content():
    return 204, b"", None


# --------------------------------------------------------------------------
# What every dialect reads from a request

def split_path(path):
    """A request path's segments after the first '/', each percent-decoded once; a
    trailing '/' is dropped."""
    segs = path.split("/")[1:] if path else []
    if len(segs) > 1 and segs[-1] == "":
        segs.pop()
    if "%" in path:
        segs = [unquote(s) for s in segs]
    return segs


def media_type(headers):
    """The request's Content-Type without parameters, lower case ("" without one)."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


def json_object(body, malformed="malformed JSON body: %s",
                not_object="the request body must be a JSON object", empty=b"{}"):
    """The JSON object of a request body (empty: `empty`), or a 400 with these messages."""
    try:
        obj = json.loads(body or empty)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, malformed % e)
    if not isinstance(obj, dict):
        raise ApiError(400, not_object)
    return obj


def same_secret(given, want):
    """Compares a secret in constant time."""
    return hmac.compare_digest(given.encode(), want.encode())


def basic_credentials(headers, challenge):
    """(user, password) of an `Authorization: Basic` header; None without one; 401 with
    the challenge when it is malformed."""
    auth = headers.get("authorization", "")
    if auth[:6].lower() != "basic ":
        return None
    try:
        user, _, password = base64.b64decode(auth[6:].strip(), validate=True) \
            .decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(401, "malformed HTTP Basic credentials", challenge)
    return user, password


def check_user(sim, user, password, want_user, want_password, challenge):
    """A Basic login's user name and password, or a 401 (logged in the event log)."""
    if not (same_secret(user, want_user) and same_secret(password, want_password)):
        sim.event("login refused for user %r" % user)
        raise ApiError(401, "wrong user name or password", challenge)


def add_secret_option(group, name, metavar, default, what, noun):
    """Adds --NAME (what it is; its default) and --NAME-file (the noun read from a file's
    first line) to an argparse group; secret_from_file completes them."""
    dest = name.replace("-", "_")
    group.add_argument("--" + name, default=None, metavar=metavar,
                       help="%s (default %s; see also --%s-file)" % (what, default, name))
    group.add_argument("--%s-file" % name, default=None, metavar="FILE",
                       help="read %s from the first line of FILE" % noun)
    group.set_defaults(**{dest + "_default": default})


def secret_from_file(opts, dest):
    """Completes the secret option of add_secret_option: from the first line of its
    --NAME-file when given, else its default when the option was not given."""
    path = getattr(opts, dest + "_file")
    if path:
        with open(path, encoding="utf-8") as f:
            setattr(opts, dest, f.readline().rstrip("\r\n"))
    elif getattr(opts, dest) is None:
        setattr(opts, dest, getattr(opts, dest + "_default"))


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
# Names the estates of every dialect draw from

CATEGORIES = ["db", "web", "app", "log", "vm", "home", "mail", "bkp", "etl", "k8s"]
HOST_ROLES = ["esx", "sql", "web", "app", "k8s-node", "backup", "oracle", "exch"]
SIZES_GIB = [10, 20, 50, 100, 200, 250, 500, 1024, 2048]
# --hostile-names: names that break naive path handling, and ids that must
# be percent-encoded in a URL path ("%41" checks double decoding).
HOSTILE_NAMES = [None, "", ".", "..", "a/b", "100% full", "line1\nline2", "tab\there",
                 "Ünïcødé-ボリューム"]
HOSTILE_IDS = ["{p}/1", "..", "{p}?x=1", "{p}#1", "{p}%41", "{p} 2"]


def volume_traits(h, t0, unit):
    """(category, size, used, creation time) of a generated volume whose hash is h; size
    and used in `unit`s of a GiB (bytes, MiB)."""
    cat = CATEGORIES[h % len(CATEGORIES)]
    size = SIZES_GIB[(h >> 8) % len(SIZES_GIB)] * unit
    used = size * (5 + (h >> 16) % 90) // 100
    return cat, size, used, t0 + (h >> 24) % (500 * 86400)


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
