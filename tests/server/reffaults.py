"""Fault injection: the faults /_sim/faults sets, and which of them a request meets.

A fault matches requests by method and path prefix and has one effect
(latency, a status, a dropped or hung connection, a body, hostile paging);
refhttp.py's handler applies what take() returns. docs/refserver.md
("Faults") describes the fields.
"""

import json
import threading

from refcore import ApiError, dumps, json_object, no_content, ok_json


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


class Faults:
    """The faults in force, in creation order, and their /_sim/faults control."""

    def __init__(self, rng):
        self.lock = threading.Lock()
        self.rng = rng        # decides `rate` (seeded by --seed)
        self.faults = []
        self.seq = 0

    def __bool__(self):
        return bool(self.faults)

    def take(self, method, rel):
        """(seconds of latency, the terminal fault or None) for a request, using them up."""
        latency = 0.0
        terminal = None
        with self.lock:
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

    def control(self, method, parts, body):
        """/_sim/faults[/{id}] (parts: the path after /_sim/); None for other calls."""
        if parts == ["faults"]:
            if method == "GET":
                with self.lock:
                    return ok_json({"faults": [f.describe() for f in self.faults]})
            if method == "POST":
                spec = parse_fault(json_object(body))
                with self.lock:
                    self.seq += 1
                    f = Fault("f%d" % self.seq, spec)
                    self.faults.append(f)
                    return ok_json(f.describe(), 201)
            if method == "DELETE":
                with self.lock:
                    for f in self.faults:
                        f.release.set()
                    self.faults = []
                return no_content()
        if len(parts) == 2 and parts[0] == "faults" and method == "DELETE":
            with self.lock:
                f = next((f for f in self.faults if f.id == parts[1]), None)
                if f is None:
                    raise ApiError(404, "fault %r not found" % parts[1])
                f.release.set()
                self.faults.remove(f)
            return no_content()
        return None
