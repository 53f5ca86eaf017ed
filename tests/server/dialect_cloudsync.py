"""The cloudsync dialect of the reference server (--dialect cloudsync).

It serves the NetApp Cloud Sync API under /api as NetApp's "Cloud Sync
APIs" (its api_sync page) describes it: bearer tokens from an OAuth2
refresh-token grant (POST /oauth/token, in the shape of NetApp's identity
service), the x-account-id header with several accounts to choose from,
whole-array lists of data brokers, groups and relationships, syncs whose
progress shows in a relationship's activity, and the asynchronous list calls
that answer 202 and deliver their result later as a message on
GET /messages/client, interleaved with heartbeats and other clients' answers.
HTTP, faults, stats, the /_sim controls and TLS are the core's (refcore.py,
refsim.py, reffaults.py, refhttp.py). docs/refserver.md, "Cloud Sync mode",
describes it.
"""

import collections
import heapq
import json
import secrets
import time
import uuid
from urllib.parse import parse_qsl

from refcore import (
    BASE_EPOCH, CATEGORIES, HOSTILE_NAMES, REASONS, ApiError, add_secret_option, dumps,
    hostile_entries, iso, json_object, media_type, mix, no_content, oauth_error, oauth_token,
    ok_json, same_secret, split_path)
from refsim import Dialect, Req, allowed_route

CS_BASE = "/api"
TOKEN_PATH = "/oauth/token"
DEMO_REFRESH = "dsfs-demo-refresh-token"
MESSAGES_KEPT = 1000          # per account; a cursor older than that sees what is kept
FIRST_MESSAGE_ID = 5800       # the seed's example cursor is "5802"
HEARTBEAT_CATCH_UP = 20       # after a long quiet spell, at most this many heartbeats
# The clientId of "another client" whose answers a client also sees: the seed's example
OTHER_CLIENT = "5beb032f548e6e35f4ed1ba9"
LIST_OPS = ("list-s3-buckets", "list-nfs-export-folders")
BROKER_TYPES = ("AWS", "AZURE", "GCP", "ONPREM")
ACCOUNT_NAMES = ("dsfs demo", "dsfs lab", "dsfs archive", "dsfs finance")
PROTOCOLS = {"nfs": ("host", "export"), "cifs": ("host", "share"), "s3": ("bucket",)}
REGIONS = (("us-east-1", "US East (N. Virginia)"), ("us-west-2", "US West (Oregon)"),
           ("eu-west-1", "EU (Ireland)"))
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def object_id(t, h):
    """A 24-hex id shaped like the seed's (a MongoDB ObjectId: time, then random)."""
    return "%08x%016x" % (int(t) & 0xFFFFFFFF, h & 0xFFFFFFFFFFFFFFFF)


def b62(h, n):
    out = []
    for _ in range(n):
        out.append(B62[h % 62])
        h //= 62
    return "".join(out)


def error_body(status, message):
    """The shape of a hapi (Boom) error, as Node.js services like Cloud Sync answer."""
    return dumps({"statusCode": status, "error": REASONS.get(status, "Error"),
                  "message": message})


# --------------------------------------------------------------------------
# Relationships and their activity

class Rel:
    """One relationship: its JSON without the activity, the last activity
    (final), and the running sync, if any, whose activity comes from the clock."""
    __slots__ = ("id", "pub", "act", "run")

    def __init__(self, pub, act):
        self.id = pub["relationshipId"]
        self.pub = pub
        self.act = act
        self.run = None    # {"start", "dur", "bytes", "files", "fail"} while a sync runs

    def running(self, now):
        self.settle(now)
        return self.run is not None

    def counters(self, frac):
        run = self.run
        files = int(run["files"] * frac)
        return {"bytesCopied": int(run["bytes"] * frac), "filesCopied": files,
                "filesScanned": max(files, int(run["files"] * min(1.0, 2 * frac))),
                "filesFailed": 0}

    def settle(self, now):
        run = self.run
        if run is None or now < run["start"] + run["dur"]:
            return
        end = run["start"] + run["dur"]
        if run["fail"]:
            act = self.counters(0.6)
            act.update(status="FAILED", progress=60, filesFailed=max(1, run["files"] // 50),
                       failureMessage=run["fail"])
        else:
            act = self.counters(1.0)
            act.update(status="DONE", progress=100, failureMessage=None)
        act.update(type="SYNC", startTime=iso(run["start"]), endTime=iso(end))
        self.act = act
        self.run = None

    def abort(self, now):
        run = self.run
        frac = min(1.0, (now - run["start"]) / run["dur"]) if run["dur"] else 1.0
        act = self.counters(frac)
        act.update(type="SYNC", status="ABORTED", progress=int(100 * frac),
                   startTime=iso(run["start"]), endTime=iso(now),
                   failureMessage="aborted by the user")
        self.act = act
        self.run = None

    def activity(self, now):
        self.settle(now)
        run = self.run
        if run is None:
            return self.act
        frac = (now - run["start"]) / run["dur"] if run["dur"] else 1.0
        act = self.counters(frac)
        act.update(type="SYNC", status="RUNNING", progress=max(0, min(99, int(100 * frac))),
                   startTime=iso(run["start"]), endTime=None, failureMessage=None)
        return act

    def render(self, now):
        out = dict(self.pub)
        act = self.activity(now)
        out["activity"] = {k: act.get(k) for k in (
            "type", "status", "progress", "bytesCopied", "filesCopied", "filesFailed",
            "filesScanned", "startTime", "endTime", "failureMessage")}
        return out


def fail_reason(source):
    """Why a sync of this source fails: one of its details contains 'fail-'."""
    details = source.get(source.get("protocol"), {})
    for key in ("path", "export", "share", "bucket", "prefix", "host"):
        v = details.get(key)
        if isinstance(v, str) and "fail-" in v:
            return "sync failed on request: source %s %r contains fail-" % (key, v)
    return None


# --------------------------------------------------------------------------
# Accounts: each has its own estate and its own message stream

class Account:
    def __init__(self, opts, k):
        seed = opts.seed
        self.k = k
        self.id = "account-" + b62(mix(seed, 90, k), 8)
        self.name = ACCOUNT_NAMES[k - 1] if k <= len(ACCOUNT_NAMES) else "dsfs account %d" % k
        self.brokers = collections.OrderedDict()
        self.groups = collections.OrderedDict()
        self.rels = collections.OrderedDict()
        self.buckets = {}      # broker id -> list-s3-buckets result
        self.exports = {}      # broker id -> list-nfs-export-folders result
        self.messages = collections.deque(maxlen=MESSAGES_KEPT)   # (id, JSON bytes)
        self.pending = []      # heap of (due, seq, message without id)
        self.next_beat = 0.0
        self.beat_seq = 0
        self.build(opts)

    def build(self, opts):
        seed, k = opts.seed, self.k
        t0 = BASE_EPOCH
        prefix = "" if k == 1 else "a%d-" % k
        hostile = opts.hostile_names and k == 1
        nb = opts.servers
        groups = []
        for g in range((nb + 1) // 2):
            gid = object_id(t0 + 100 * 86400 + g, mix(seed, 91, k, g))
            groups.append(gid)
            self.groups[gid] = {"id": gid, "name": "%sgroup-%d" % (prefix, g + 1),
                                "dataBrokers": []}
        brokers = []
        for b in range(nb):
            btype = BROKER_TYPES[b % len(BROKER_TYPES)]
            bid = object_id(t0 + 101 * 86400 + b, mix(seed, 92, k, b))
            brokers.append(self.add_broker(bid, "%s%s-broker-%d" % (prefix, btype.lower(), b + 1),
                                           btype, groups[b // 2], b, opts))
        if hostile:
            first = brokers[0]["name"] if brokers else "dup"
            for j, (bid, name) in enumerate(hostile_entries("broker", first)):
                brokers.append(self.add_broker(bid, name, "ONPREM", groups[0], 100 + j, opts))
            for j, name in enumerate(HOSTILE_NAMES):
                gid = "group-h%d" % j
                self.groups[gid] = {"id": gid, "name": "group-1" if name is None else name,
                                    "dataBrokers": []}
        for b, broker in enumerate(brokers[:nb]):
            for i in range(opts.volumes):
                h = mix(seed, 93, k, b, i)
                rid = object_id(t0 + 200 * 86400 + b * 1000 + i, h)
                cat = CATEGORIES[(b * opts.volumes + i) % len(CATEGORIES)]
                self.add_rel(rid, broker, i, "/%s-%02d" % (cat, i + 1), cat, h)
        if k == 1 and brokers:
            # every sync of this relationship fails: dsfs's error paths
            rid = object_id(t0 + 299 * 86400, mix(seed, 94))
            self.add_rel(rid, brokers[0], 0, "/fail-data", "db", mix(seed, 95))
            self.rels[rid].act.update(
                status="FAILED", progress=60, filesFailed=12,
                failureMessage="sync failed on request: source path '/fail-data' "
                               "contains fail-")
        if hostile and brokers:
            first_path = "/%s-01" % CATEGORIES[0]
            for j, (rid, name) in enumerate(hostile_entries("rel", first_path)):
                self.add_rel(rid, brokers[0], j, name, "web", mix(seed, 96, j))

    def add_broker(self, bid, name, btype, gid, b, opts):
        seed, k = opts.seed, self.k
        h = mix(seed, 97, k, b)
        placement = {
            "AWS": {"region": REGIONS[h % 3][0], "vpc": "vpc-%08x" % (h & 0xFFFFFFFF),
                    "subnet": "subnet-%08x" % ((h >> 32) & 0xFFFFFFFF)},
            "AZURE": {"location": "westeurope", "resourceGroup": "rg-cloudsync-%d" % (b + 1)},
            "GCP": {"zone": "europe-west1-b", "project": "dsfs-demo-%d" % (h % 1000)},
            "ONPREM": {"hostname": "broker-%02d.example.com" % (b + 1)},
        }[btype]
        broker = {"id": bid, "name": name, "type": btype, "status": "ACTIVE",
                  "lastUpdate": iso(BASE_EPOCH + 500 * 86400 + b * 60),
                  "placement": placement, "groupId": gid,
                  "version": "1.%d.%d" % (40 + h % 5, h % 10)}
        self.brokers[bid] = broker
        self.groups[gid]["dataBrokers"].append(bid)
        buckets = []
        for i in range(opts.luns):
            region, display = REGIONS[(h + i) % 3]
            buckets.append({"name": "%s-bucket-%02d" % (CATEGORIES[(b + i) % len(CATEGORIES)],
                                                        i + 1),
                            "region": {"name": region, "displayName": display},
                            "tags": [{"Key": "price", "Value": "%d$" % (10 * (1 + i))}]})
        exports = []
        for i in range(opts.hosts):
            cat = CATEGORIES[(b + 2 * i) % len(CATEGORIES)]
            exports.append({"path": "/export/%s-%02d" % (cat, i + 1),
                            "folders": ["%s-%02d" % (cat, j + 1) for j in range(1 + i % 3)]})
        if opts.hostile_names and self.k == 1:
            for name in HOSTILE_NAMES:
                nm = (buckets[0]["name"] if buckets else "dup") if name is None else name
                buckets.append({"name": nm, "region": {"name": "us-east-1",
                                                       "displayName": REGIONS[0][1]},
                                "tags": []})
                exports.append({"path": (exports[0]["path"] if exports else "/dup")
                                if name is None else name, "folders": [name or ""]})
        self.buckets[bid] = buckets
        self.exports[bid] = exports
        return broker

    def add_rel(self, rid, broker, i, path, cat, h):
        nfs_host = "nfs-%02d.example.com" % (1 + h % 8)
        kind = i % 4
        if kind == 0:
            source = {"protocol": "nfs", "nfs": {"host": nfs_host, "export": "/export/" + cat,
                                                 "path": path, "version": "3"}}
        elif kind == 1:
            source = {"protocol": "cifs", "cifs": {"host": "smb-%02d.example.com" % (1 + h % 4),
                                                   "share": cat, "path": path}}
        elif kind == 2:
            source = {"protocol": "nfs", "nfs": {"host": nfs_host, "export": "/export/" + cat,
                                                 "path": path, "version": "4.1"}}
        else:
            source = {"protocol": "s3", "s3": {"bucket": "%s-landing" % cat,
                                               "prefix": path.lstrip("/"),
                                               "region": REGIONS[h % 3][0]}}
        if kind == 2:
            target = {"protocol": "nfs", "nfs": {"host": "nfs-dr.example.com",
                                                 "export": "/export/dr-" + cat,
                                                 "path": path, "version": "4.1"}}
        elif kind == 3:
            target = {"protocol": "nfs", "nfs": {"host": nfs_host, "export": "/export/restore",
                                                 "path": path, "version": "3"}}
        else:
            target = {"protocol": "s3", "s3": {"bucket": "%s-archive" % cat,
                                               "prefix": path.lstrip("/") + "/",
                                               "region": REGIONS[h % 3][0]}}
        return self.add_rel_obj(rid, source, target, broker["id"], broker["groupId"],
                                default_settings(i), h,
                                BASE_EPOCH + 490 * 86400 + (h % 86400))

    def add_rel_obj(self, rid, source, target, bid, gid, settings, h, t_end):
        files = 1000 + h % 200000
        nbytes = files * (4096 + (h >> 20) % 1048576)
        pub = {"relationshipId": rid, "source": source, "target": target,
               "dataBroker": bid, "group": gid, "settings": settings,
               "createdAt": iso(t_end - 30 * 86400)}
        dur = 60 + h % 7200
        act = {"type": "SYNC", "status": "DONE", "progress": 100, "bytesCopied": nbytes,
               "filesCopied": files, "filesScanned": files, "filesFailed": 0,
               "startTime": iso(t_end - dur), "endTime": iso(t_end), "failureMessage": None}
        rel = Rel(pub, act)
        self.rels[rid] = rel
        return rel

    # -- messages
    def deliver(self, now, sim_seq):
        """Move the messages whose time has come from pending to the stream, giving
        each the next id (so ids grow in the order messages arrive)."""
        pend = self.pending
        while pend and pend[0][0] <= now:
            _, _, msg = heapq.heappop(pend)
            mid = sim_seq()
            out = {"id": str(mid)}
            out.update(msg)
            self.messages.append((mid, dumps(out)))

    def schedule(self, due, seq, payload, header):
        heapq.heappush(self.pending, (due, seq, {"payload": payload, "header": header}))


def default_settings(i):
    return {"schedule": {"isEnabled": i % 3 != 2, "syncInDays": 1 if i % 2 else 0,
                         "syncInHours": 0 if i % 2 else 6, "syncInMinutes": 0},
            "retries": 3, "deleteOnTarget": False, "copyAcl": i % 4 == 1,
            "objectTagging": True,
            "compareBy": {"uid": True, "gid": True, "mode": True, "mtime": True}}


def check_endpoint(body, side):
    """Validate a source or target of a create body (400 with Joi-like messages)."""
    ep = body.get(side)
    if ep is None:
        raise ApiError(400, '"%s" is required' % side)
    if not isinstance(ep, dict):
        raise ApiError(400, '"%s" must be an object' % side)
    proto = ep.get("protocol")
    if proto not in PROTOCOLS:
        raise ApiError(400, '"%s.protocol" must be one of [%s]' % (side, ", ".join(PROTOCOLS)))
    details = ep.get(proto)
    if not isinstance(details, dict):
        raise ApiError(400, '"%s.%s" is required (an object)' % (side, proto))
    for key in PROTOCOLS[proto]:
        v = details.get(key)
        if not isinstance(v, str) or not v:
            raise ApiError(400, '"%s.%s.%s" is required (a non-empty string)'
                           % (side, proto, key))
    for key, v in details.items():
        if not isinstance(v, (str, int, bool)) or isinstance(v, float):
            raise ApiError(400, '"%s.%s.%s" must be a string' % (side, proto, key))
    return ep


# --------------------------------------------------------------------------
# The dialect

class CRoute:
    __slots__ = ("template", "action", "allow")

    def __init__(self, template, action, allow):
        self.template = template
        self.action = action
        self.allow = allow


def classify(segs):
    """(CRoute or None, the id in the path or None) for the segments after /api."""
    n = len(segs)
    if n == 1 and segs[0] in ("accounts", "data-brokers", "groups"):
        return CRoute("/api/" + segs[0], segs[0], "GET"), None
    if n == 1 and segs[0] == "relationships-v2":
        return CRoute("/api/relationships-v2", "relationships", "GET, POST"), None
    if n == 2 and segs[0] == "relationships-v2":
        return CRoute("/api/relationships-v2/{id}", "relationship", "GET"), segs[1]
    if n == 3 and segs[0] == "data-brokers" and segs[2] in LIST_OPS:
        return CRoute("/api/data-brokers/{id}/" + segs[2], segs[2], "GET"), segs[1]
    if n == 3 and segs[0] == "relationships" and segs[2] in ("sync", "abort"):
        return CRoute("/api/relationships/{id}/" + segs[2], segs[2], "PUT"), segs[1]
    if n == 2 and segs[0] == "relationships":
        return CRoute("/api/relationships/{id}", "delete", "DELETE"), segs[1]
    if segs == ["messages", "client"]:
        return CRoute("/api/messages/client", "messages", "GET"), None
    return None, None


class CloudSync(Dialect):
    name = "cloudsync"
    base = CS_BASE
    api = "cloudsync"

    def credentials(self, root):
        return ["refresh_token=" + self.refresh_token, "client_id=" + self.client_id,
                "token_url=" + root + TOKEN_PATH]
    token_ttl = 3600      # the seed gives no figure; an hour makes renewal common

    def __init__(self, sim, opts):
        super().__init__(sim, opts)
        self.refresh_token = opts.refresh_token
        self.client_id = opts.client_id
        self.accounts = collections.OrderedDict()
        for k in range(1, opts.accounts + 1):
            acct = Account(opts, k)
            self.accounts[acct.id] = acct
        self.tokens = {}          # access token -> [client_id, expiry]
        self.msg_seq = FIRST_MESSAGE_ID
        self.sched_seq = 0
        self.rel_seq = 0
        self.drop_next = 0        # /_sim/messages: answers that never arrive
        self.dup_next = 0         # answers that arrive twice
        self.answers = 0          # list answers scheduled, for /_sim/messages
        self.queries = collections.deque(maxlen=100)  # of GET /messages/client, as sent
        now = time.time()
        for acct in self.accounts.values():
            # a first heartbeat, so GET /messages/client has a last message at once
            self.heartbeat(acct, now)
            acct.deliver(now, self.next_msg_id)
            acct.next_beat = now + opts.heartbeat_seconds
        sim.event("server started (cloudsync) with %d account(s)" % len(self.accounts))

    @staticmethod
    def add_options(p):
        g = p.add_argument_group(
            "cloudsync dialect", "Also used: --client-id (the client_id POST /oauth/token "
            "accepts, default dsfs-demo), --token-ttl (expires_in, default 3600 here), "
            "--servers (data brokers per account), --volumes (relationships per data "
            "broker), --luns (buckets a list-s3-buckets answer names), --hosts (exports a "
            "list-nfs-export-folders answer names), --task-seconds (how long a sync runs).")
        add_secret_option(g, "refresh-token", "TOKEN", DEMO_REFRESH,
                          "the refresh token POST /oauth/token accepts", "the refresh token")
        g.add_argument("--accounts", type=int, default=2, metavar="N",
                       help="Cloud Central accounts the user has, each with its own "
                       "estate (default 2)")
        g.add_argument("--message-delay", type=float, default=0.5, metavar="S",
                       help="seconds until a list call's answer arrives on "
                       "/messages/client (default 0.5)")
        g.add_argument("--heartbeat-seconds", type=float, default=1.0, metavar="S",
                       help="seconds between the data-broker heartbeats on "
                       "/messages/client (default 1; 0: none)")

    @staticmethod
    def check_options(p, opts):
        if not 1 <= opts.accounts <= 50:
            p.error("--accounts must be between 1 and 50")
        if opts.message_delay < 0 or opts.heartbeat_seconds < 0:
            p.error("--message-delay and --heartbeat-seconds must not be negative")

    def error_body(self, status, message):
        return error_body(status, message)

    # -- routing
    def route(self, method, path, qs, headers, body):
        segs = split_path(path)
        route, rid = None, None
        if path == TOKEN_PATH:
            route = CRoute(TOKEN_PATH, "token", "POST")
        elif segs and segs[0] == CS_BASE[1:]:
            route, rid = classify(segs[1:])
        self.count((method, route.template if route else "<unknown>"))
        query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
        if route is not None and route.template.endswith("/messages/client"):
            with self.sim.lock:
                self.queries.append(qs or "")
        entry = self.record(method, path, qs, headers, body, route.template if route else None)
        return Req(method, path, path, route, (rid,), query, None, entry)

    def keeps(self, method, path):
        """/_sim/requests keeps no read, nor a token request (it carries the refresh token)."""
        return method not in ("GET", "HEAD") and path != TOKEN_PATH

    # -- one request
    def handle(self, req, headers, body, host):
        route = allowed_route(req, "Not Found: {path}", "{method} is not allowed on {template}")
        method = req.method
        if route.action == "token":
            return self.token_endpoint(headers, body)
        rid = req.segs[0]
        with self.sim.lock:
            now = time.time()
            client = self.check_token(headers, now)
            if route.action == "accounts":
                return ok_json([{"accountId": a.id, "name": a.name}
                                for a in self.accounts.values()])
            acct = self.check_account(headers)
            self.tick(acct, now)
            act = route.action
            if act == "data-brokers":
                return ok_json(list(acct.brokers.values()))
            if act == "groups":
                return ok_json(list(acct.groups.values()))
            if act == "relationships":
                if method == "POST":
                    return self.create(acct, body, headers, now)
                return ok_json([r.render(now) for r in acct.rels.values()])
            if act == "relationship":
                return ok_json(self.rel(acct, rid).render(now))
            if act in LIST_OPS:
                return self.list_call(acct, act, rid, client, now)
            if act == "messages":
                return self.messages(acct, req.query)
            return self.rel_action(acct, act, rid, now)

    # -- tokens and accounts
    def token_endpoint(self, headers, body):
        ctype = media_type(headers)
        try:
            if ctype == "application/x-www-form-urlencoded":
                form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            elif ctype == "application/json":
                form = json.loads(body or b"{}")
                if not isinstance(form, dict):
                    raise ValueError
            else:
                raise oauth_error(400, "invalid_request", "the token request must be "
                                  "application/x-www-form-urlencoded or application/json "
                                  "(got %r)" % ctype)
        except (ValueError, UnicodeDecodeError):
            raise oauth_error(400, "invalid_request", "the body is not a form or JSON object")
        grant = form.get("grant_type")
        if not grant:
            raise oauth_error(400, "invalid_request", "Missing required parameter: grant_type")
        if grant != "refresh_token":
            raise oauth_error(400, "unsupported_grant_type",
                              "Unsupported grant type: %s" % grant)
        cid, rtok = form.get("client_id"), form.get("refresh_token")
        if not isinstance(cid, str) or not cid:
            raise oauth_error(401, "invalid_client", "Missing required parameter: client_id")
        if not same_secret(cid, self.client_id):
            self.sim.event("token refused: unknown client %r" % cid)
            raise oauth_error(401, "invalid_client", "Unknown client.")
        if not isinstance(rtok, str) or not rtok:
            raise oauth_error(400, "invalid_request",
                              "Missing required parameter: refresh_token")
        with self.sim.lock:
            if not same_secret(rtok, self.refresh_token):
                self.sim.event("token refused: bad refresh token")
                raise oauth_error(400, "invalid_grant", "Unknown or invalid refresh token.")
            out = self.issue_token(cid, self.opts.token_ttl)
        self.sim.event("token issued to client %s" % cid)
        return oauth_token(out)

    def issue_token(self, client, ttl):
        now = time.time()
        for t in [t for t, v in self.tokens.items() if v[1] < now]:
            del self.tokens[t]
        tok = "eyJ.refserver-cloudsync." + secrets.token_urlsafe(40)
        self.tokens[tok] = [client, now + ttl]
        return {"access_token": tok, "expires_in": int(ttl), "token_type": "Bearer",
                "scope": "openid profile"}

    def check_token(self, headers, now):
        """The client_id of the request's valid bearer token (401 otherwise)."""
        auth = headers.get("authorization", "")
        if auth[:7].lower() != "bearer " or not auth[7:].strip():
            raise ApiError(401, "Missing authentication: send 'Authorization: Bearer <token>'",
                           [("WWW-Authenticate", 'Bearer realm="cloudsync"')])
        t = self.tokens.get(auth[7:].strip())
        if t is None or t[1] < now:
            self.tokens.pop(auth[7:].strip(), None)
            raise ApiError(401, "Invalid or expired token",
                           [("WWW-Authenticate",
                             'Bearer realm="cloudsync", error="invalid_token"')])
        return t[0]

    def check_account(self, headers):
        aid = headers.get("x-account-id", "").strip()
        if not aid:
            raise ApiError(400, "Missing header: x-account-id (the accountId from GET "
                           "/accounts)")
        acct = self.accounts.get(aid)
        if acct is None:
            raise ApiError(403, "The user has no access to account %s" % aid)
        return acct

    # -- relationships
    def rel(self, acct, rid):
        rel = acct.rels.get(rid)
        if rel is None:
            raise ApiError(404, "Relationship %s not found" % rid)
        return rel

    def create(self, acct, body, headers, now):
        ctype = media_type(headers)
        if ctype != "application/json":
            raise ApiError(415, "the body must be application/json (got %r)" % ctype)
        b = json_object(body, "Invalid request payload JSON format: %s",
                        '"value" must be an object', empty=b"")
        source = check_endpoint(b, "source")
        target = check_endpoint(b, "target")
        bid, gid = b.get("dataBroker"), b.get("group")
        if bid is None and gid is None:
            raise ApiError(400, '"dataBroker" or "group" is required')
        for name, v in (("dataBroker", bid), ("group", gid)):
            if v is not None and (not isinstance(v, str) or not v):
                raise ApiError(400, '"%s" must be a string' % name)
        if bid is not None and bid not in acct.brokers:
            raise ApiError(400, "Data broker %s not found" % bid)
        if gid is not None and gid not in acct.groups:
            raise ApiError(400, "Group %s not found" % gid)
        if bid is not None and gid is not None and acct.brokers[bid]["groupId"] != gid:
            raise ApiError(400, "Data broker %s is not in group %s" % (bid, gid))
        if gid is None:
            gid = acct.brokers[bid]["groupId"]
        if bid is None:
            members = acct.groups[gid]["dataBrokers"]
            if not members:
                raise ApiError(400, "Group %s has no data broker" % gid)
            bid = members[0]
        settings = b.get("settings", default_settings(0))
        if not isinstance(settings, dict):
            raise ApiError(400, '"settings" must be an object')
        self.rel_seq += 1
        h = mix(self.opts.seed, 98, self.rel_seq)
        rid = object_id(now, h)
        rel = acct.add_rel_obj(rid, source, target, bid, gid, settings, h, now)
        self.start_sync(rel, now)       # a new relationship syncs at once
        self.sim.event("relationship %s created" % rid)
        return ok_json(rel.render(now))

    def start_sync(self, rel, now):
        h = mix(self.opts.seed, 99, int(rel.id[-8:], 16) if _hex(rel.id[-8:]) else 0)
        files = 500 + h % 50000
        rel.run = {"start": now, "dur": 0.0 if self.opts.sync else self.opts.task_seconds,
                   "files": files, "bytes": files * (4096 + h % 65536),
                   "fail": fail_reason(rel.pub["source"])}
        rel.settle(now)

    def rel_action(self, acct, act, rid, now):
        rel = self.rel(acct, rid)
        if act == "sync":
            if rel.running(now):
                raise ApiError(409, "Relationship %s is already syncing" % rid)
            self.start_sync(rel, now)
            self.sim.event("sync of %s started" % rid)
            return 202, b"", None
        if act == "abort":
            if not rel.running(now):
                raise ApiError(409, "Relationship %s has no running sync" % rid)
            rel.abort(now)
            self.sim.event("sync of %s aborted" % rid)
            return 200, b"", None
        if rel.running(now):
            raise ApiError(409, "Relationship %s is syncing: abort it first" % rid)
        del acct.rels[rid]
        self.sim.event("relationship %s deleted" % rid)
        return 200, b"", None

    # -- asynchronous lists and messages
    def next_msg_id(self):
        self.msg_seq += 1
        return self.msg_seq

    def sched(self, acct, due, payload, header):
        self.sched_seq += 1
        acct.schedule(due, self.sched_seq, payload, header)

    def heartbeat(self, acct, t):
        if not acct.brokers:
            return
        bids = list(acct.brokers)
        bid = bids[acct.beat_seq % len(bids)]
        acct.beat_seq += 1
        self.sched(acct, t, {"heartbeat": {"status": "ACTIVE", "time": iso(t)}},
                   {"requestId": None, "clientId": None, "agentId": bid})

    def tick(self, acct, now):
        """Heartbeats due by now, then deliver every message due by now."""
        period = self.opts.heartbeat_seconds
        if period > 0:
            if now - acct.next_beat > HEARTBEAT_CATCH_UP * period:
                acct.next_beat = now - HEARTBEAT_CATCH_UP * period
            while acct.next_beat <= now:
                self.heartbeat(acct, acct.next_beat)
                acct.next_beat += period
        acct.deliver(now, self.next_msg_id)

    def result(self, acct, op, bid):
        return (acct.buckets if op == "list-s3-buckets" else acct.exports)[bid]

    def list_call(self, acct, op, bid, client, now):
        if bid not in acct.brokers:
            raise ApiError(404, "Data broker %s not found" % bid)
        delay = self.opts.message_delay
        # another client's answers first: the same operation on this broker (with a
        # result of its own) and on another broker
        other = [{"name": "not-yours"}] if op == "list-s3-buckets" else \
            [{"path": "/export/not-yours", "folders": []}]
        self.sched(acct, now + 0.4 * delay, {op: other},
                   {"requestId": str(uuid.uuid4()), "clientId": OTHER_CLIENT, "agentId": bid})
        others = [b for b in acct.brokers if b != bid]
        if others:
            self.sched(acct, now + 0.7 * delay, {op: self.result(acct, op, others[0])},
                       {"requestId": str(uuid.uuid4()), "clientId": OTHER_CLIENT,
                        "agentId": others[0]})
        header = {"requestId": str(uuid.uuid4()), "clientId": client, "agentId": bid}
        self.answers += 1
        if self.drop_next > 0:
            self.drop_next -= 1
            self.sim.event("%s of %s: the answer is dropped" % (op, bid))
        else:
            copies = 1
            if self.dup_next > 0:
                self.dup_next -= 1
                copies = 2
            for c in range(copies):
                self.sched(acct, now + delay + 0.1 * delay * c,
                           {op: self.result(acct, op, bid)}, dict(header))
        self.tick(acct, now)
        return 202, b"", None

    def messages(self, acct, query):
        msgs = acct.messages
        if "last" not in query:
            return 200, b"[" + msgs[-1][1] + b"]", None
        last = query["last"]
        if not last.isdigit() or not last.isascii():
            raise ApiError(400, '"last" must be a message id (a decimal number)')
        last = int(last)
        out = [m for mid, m in msgs if mid > last]
        return 200, b"[" + b",".join(out) + b"]", None

    # -- /_sim: the shared controls' hooks, and /_sim/messages
    login_what = "token"
    secret = ("refresh_token", "refresh token")
    token_owner = ("client_id", "client_id")

    def logins(self):
        return self.tokens

    @staticmethod
    def login_expiry(value):
        return value[1]

    def sim_extra(self, method, parts, body, qs):
        if parts and parts[0] == "messages":
            return self.sim_messages(method, parts[1:], body)
        return None

    def sim_messages(self, method, rest, body):
        sim = self.sim
        if rest == [] and method == "GET":
            with sim.lock:
                return ok_json({"dropNext": self.drop_next, "duplicateNext": self.dup_next,
                                "answers": self.answers, "lastId": str(self.msg_seq),
                                "queries": list(self.queries),
                                "pending": sum(len(a.pending)
                                               for a in self.accounts.values())})
        if rest in (["drop"], ["duplicate"]) and method == "POST":
            n = json_object(body).get("count", 1)
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise ApiError(422, "field 'count' must be a non-negative integer")
            with sim.lock:
                if rest == ["drop"]:
                    self.drop_next = n
                else:
                    self.dup_next = n
            return no_content()
        if rest == ["inject"] and method == "POST":
            spec = json_object(body)
            with sim.lock:
                aid = spec.get("account", next(iter(self.accounts)))
                acct = self.accounts.get(aid)
                if acct is None:
                    raise ApiError(404, "no account %r" % aid)
                if "raw" in spec:
                    if not isinstance(spec["raw"], dict):
                        raise ApiError(422, "field 'raw' must be an object")
                    msg = spec["raw"]
                else:
                    msg = {"payload": spec.get("payload", {}), "header": spec.get(
                        "header", {"requestId": None, "clientId": None, "agentId": None})}
                delay = spec.get("delay", 0)
                if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
                    raise ApiError(422, "field 'delay' must be a non-negative number")
                self.sched_seq += 1
                heapq.heappush(acct.pending, (time.time() + delay, self.sched_seq, msg))
                if not delay:
                    self.tick(acct, time.time())
                return ok_json({"account": acct.id, "lastId": str(self.msg_seq)}, 201)
        raise ApiError(404, "no such test control: %s /_sim/messages/%s"
                       % (method, "/".join(rest)))


def _hex(s):
    try:
        int(s, 16)
        return True
    except ValueError:
        return False
