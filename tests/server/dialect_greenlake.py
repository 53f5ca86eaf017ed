"""The greenlake dialect of the reference server (--dialect greenlake).

It serves the HPE GreenLake APIs for data services, revision v1beta1 (HPE
GreenLake API for Data Services, Virtualization and Backup and Recovery, as
HPE's developer portal and its "Getting started with HPE GreenLake API for
Data Services" blog post of April 2024 describe them): the
/data-services/v1beta1, /virtualization/v1beta1 and /backup-recovery/v1beta1
families; OAuth2 client-credentials tokens from HPE's SSO path and from the
workspace-scoped path; {"items", "count", "offset", "total"} lists with
per-collection limits and OData-like filter, sort and select; changes that
answer 202 with a Location naming an async-operation (the one place where
every data service reports its background work), which progresses over
--task-seconds and may have child operations; merge-patch edits; the current
error shape {httpStatusCode, message, errorCode, debugId} and, with
--spelling 2024, the names answers recorded in March 2024 used (childTasks,
parentTask, rootTask, subtreeTaskCount, sourceResource, logMessages[].
timestampAt, errors {error, errorCode, traceId}). HTTP, faults, stats, the
/_sim controls and the task clock are the core's (refcore.py, refsim.py,
reffaults.py, refhttp.py). docs/refserver.md, "GreenLake mode", describes it.
"""

import calendar
import collections
import random
import re
import secrets
import time
from types import SimpleNamespace
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote

from refcore import (
    BASE_EPOCH, CATEGORIES, GIB, HOSTILE_NAMES, TIB, ApiError, Task, TaskFailed, dumps,
    error_body, iso, json_object, media_type, mix, no_content, oauth_error, oauth_token,
    ok_json, same_secret, split_path, token_form, basic_credentials)
from refsim import Dialect, Req, allowed_route
# the OData-like helpers the DSCC v1 dialect already has: sort parsing, sort keys,
# comparisons of ISO-8601 instants, select parsing and projection, ids
from dialect_dscc import (
    _cmp, _sort_key, dotted, hexid, parse_select, parse_sort, project, uuid_of)

DS = "/data-services/v1beta1"
VZ = "/virtualization/v1beta1"
BR = "/backup-recovery/v1beta1"
OPS = DS + "/async-operations"
TOKEN_PATH = "/as/token.oauth2"          # HPE's SSO: sso.common.cloud.hpe.com/as/token.oauth2
WS_TOKEN = ("authorization", "v2", "oauth2", None, "token")   # global.api.greenlake.hpe.com
DEMO_WORKSPACE = "4f6a8e2c1b3d5e7f9a0b2c4d6e8f0a1c"
MERGE_PATCH = "application/merge-patch+json"
STATES_DONE = ("SUCCEEDED", "FAILED")
OP_STEPS = ("Preparing parameters", "Running", "Finishing")

ALL = ("offset", "limit", "filter", "sort", "select")
# collection -> (default limit, largest limit, the query parameters it takes, `or` in
# its filter). The limits of the first six are HPE's; the others take the common 100/1000.
LISTS = {
    "async-operations": (100, 1000, ALL, True),
    "issues": (10, 100, ALL, True),
    "dual-auth-operations": (10, 100, ALL, False),
    "settings": (10, 100, ALL, False),
    "software-releases": (100, 100, ALL, False),
    "tags": (20, 1000, ALL, False),
    "secrets": (100, 1000, ("offset", "limit", "filter", "sort"), False),
    "storage-locations": (None, None, ("filter",), False),
    "virtual-machines": (100, 1000, ALL, True),
    "datastores": (100, 1000, ALL, False),
    "hypervisor-clusters": (100, 1000, ALL, False),
    "hypervisor-hosts": (100, 1000, ALL, False),
    "hypervisor-managers": (100, 1000, ALL, False),
    "protection-policies": (100, 1000, ALL, False),
    "protection-jobs": (100, 1000, ALL, False),
    "virtual-machine-protection-groups": (100, 1000, ALL, False),
    "protection-stores": (100, 1000, ALL, False),
    "protection-store-gateways": (100, 1000, ALL, False),
    "data-orchestrators": (100, 1000, ALL, False),
    "storeonces": (100, 1000, ("offset", "limit"), False),
    "backups": (100, 1000, ALL, False),
    "snapshots": (100, 1000, ALL, False),
}
# issues: a `select` must keep these (the order of HPE's 422 message)
ISSUE_SELECT = ("lastOccurredAt", "customerId", "createdAt", "id", "resourceUri",
                "generation", "type")
SNOOZE = {"NONE": 0, "DAY": 86400, "WEEK": 7 * 86400, "MONTH": 30 * 86400, "INFINITE": None}
POWER = {  # action -> (the state it needs, the state it leaves, what the operation is called)
    "power-on": ("POWERED_OFF", "POWERED_ON", "Power on"),
    "power-off": ("POWERED_ON", "POWERED_OFF", "Power off"),
    "reset": ("POWERED_ON", "POWERED_ON", "Reset"),
    "restart-guest-os": ("POWERED_ON", "POWERED_ON", "Restart guest OS of"),
    "shutdown-guest-os": ("POWERED_ON", "POWERED_OFF", "Shut down guest OS of"),
    "refresh": (None, None, "Refresh"),
}
PROTECTION_TYPES = ("SNAPSHOT", "BACKUP", "CLOUD_BACKUP")
STATUS_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 415: "UNSUPPORTED_MEDIA_TYPE",
                422: "UNPROCESSABLE_ENTITY", 429: "TOO_MANY_REQUESTS",
                500: "INTERNAL_SERVER_ERROR", 503: "SERVICE_UNAVAILABLE"}
K_CUST, K_HM, K_CL, K_HOST, K_DS, K_VM, K_BK, K_SN, K_PP, K_PJ, K_PG, K_STORE, K_ISSUE, \
    K_DA, K_MISC, K_OP = range(201, 217)
EST_NOW = BASE_EPOCH + 530 * 86400      # "now" of the estate's fixed clocks (2024-06)
SIM_USER = "dsfs-refserver"


def now_iso():
    return iso(time.time())


def iso_time(s):
    """Epoch seconds of an ISO-8601 date-time string, or None if it is not one."""
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$",
                 s) if isinstance(s, str) else None
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, zone = m.groups()
    try:
        t = calendar.timegm((int(y), int(mo), int(d), int(hh), int(mi), int(ss), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if zone != "Z":
        t -= (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return t + float(frac or 0)


def status_code(status):
    """The errorCode word of an HTTP status (NOT_FOUND)."""
    try:
        return STATUS_CODES.get(status) or HTTPStatus(status).name
    except ValueError:
        return "ERROR"


def ref(pub):
    """{id, name, resourceUri, type} of an object, as objects name each other."""
    return {"id": pub["id"], "name": pub.get("name", pub.get("displayName")),
            "resourceUri": pub["resourceUri"], "type": pub["type"]}


def at(obj, path):
    """The value of a property path ('parent/id') of an object, None where absent."""
    return dotted(obj, path.replace("/", "."))


def failing(*names):
    """The error of an operation told to fail: a name that starts with fail-."""
    bad = next((n for n in names if isinstance(n, str) and n.startswith("fail-")), None)
    return None if bad is None else "the operation failed on request: %r starts with " \
        "fail-" % bad


# --------------------------------------------------------------------------
# filter: eq, ne, gt, lt, in, contains(), startswith(), and, or (where the
# collection takes it), parentheses; 'strings' with '' for a quote, numbers,
# true, false, null; nested properties with /. Any other form answers 400.

_FTOK = re.compile(r"\s*(?:(?P<s>'(?:[^']|'')*')|(?P<n>-?\d+(?:\.\d+)?)(?![\w/])"
                   r"|(?P<p>[(),])|(?P<w>[A-Za-z_]\w*(?:/[A-Za-z_]\w*)*))")
_WORDS = {"true": True, "false": False, "null": None}
_TESTS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
          "gt": lambda a, b: _cmp(a, b) == 1, "lt": lambda a, b: _cmp(a, b) == -1}


class Filter:
    """A compiled filter: Filter(text, known, or_ok).match(obj)."""

    def __init__(self, text, known, or_ok):
        self.text = text
        self.known = known
        self.or_ok = or_ok
        self.toks = self.lex(text)
        self.k = 0
        self.match = self.disjunction()
        if self.peek() is not None:
            self.fail("unexpected %r" % (self.peek()[1],))

    def fail(self, why):
        raise ApiError(400, "Invalid filter %r: %s" % (self.text, why))

    def lex(self, text):
        out, pos, end = [], 0, len(text.rstrip())
        while pos < end:
            m = _FTOK.match(text, pos)
            if m is None or m.end() == pos:
                self.fail("cannot read it at offset %d" % pos)
            pos = m.end()
            kind = m.lastgroup
            val = m.group(kind)
            if kind == "s":
                val = val[1:-1].replace("''", "'")
            elif kind == "n":
                val = float(val) if "." in val else int(val)
            out.append((kind, val))
        return out

    def peek(self, ahead=0):
        k = self.k + ahead
        return self.toks[k] if k < len(self.toks) else None

    def next(self, kind=None, val=None):
        t = self.peek()
        if t is None or (kind and t[0] != kind) or (val is not None and t[1] != val):
            want = val or {"w": "a property or an operator", "p": "( or )"}.get(kind, kind)
            self.fail("expected %s, found %s" % (want, "the end" if t is None else repr(t[1])))
        self.k += 1
        return t

    def is_word(self, word, ahead=0):
        t = self.peek(ahead)
        return t is not None and t[0] == "w" and t[1] == word

    def disjunction(self):
        parts = [self.conjunction()]
        while self.is_word("or"):
            if not self.or_ok:
                self.fail("'or' is not supported by this collection (join with 'and')")
            self.next()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda o: any(p(o) for p in parts)

    def conjunction(self):
        parts = [self.term()]
        while self.is_word("and"):
            self.next()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else lambda o: all(p(o) for p in parts)

    def prop(self, name):
        if self.known and name.split("/")[0] not in self.known:
            self.fail("unknown property %r" % name)
        return name

    def literal(self):
        t = self.next()
        if t[0] in ("s", "n"):
            return t[1]
        if t[0] == "w" and t[1] in _WORDS:
            return _WORDS[t[1]]
        self.fail("expected a value, found %r" % (t[1],))

    def term(self):
        if self.peek() == ("p", "("):
            self.next()
            inner = self.disjunction()
            self.next("p", ")")
            return inner
        t = self.peek()
        if t is None:
            self.fail("unexpected end")
        if t[0] == "w" and t[1] in ("not", "ge", "le", "has", "any", "all"):
            self.fail("%r is not supported (eq, ne, gt, lt, in, contains, startswith, and%s)"
                      % (t[1], ", or" if self.or_ok else ""))
        if t[0] == "w" and t[1] in ("contains", "startswith") and self.peek(1) == ("p", "("):
            self.k += 2
            name = self.prop(self.next("w")[1])
            self.next("p", ",")
            needle = self.literal()
            self.next("p", ")")
            if t[1] == "contains":
                return lambda o: isinstance(at(o, name), str) and str(needle) in at(o, name)
            return lambda o: isinstance(at(o, name), str) and at(o, name).startswith(str(needle))
        if t[0] == "w" and t[1] not in _WORDS:
            name = self.prop(self.next()[1])
            op = self.next("w")[1]
            if op == "in":
                self.next("p", "(")
                vals = [self.literal()]
                while self.peek() == ("p", ","):
                    self.next()
                    vals.append(self.literal())
                self.next("p", ")")
                return lambda o: at(o, name) in vals
            if op not in _TESTS:
                self.fail("operator %r is not supported (eq, ne, gt, lt, in, contains, "
                          "startswith)" % op)
            val, test = self.literal(), _TESTS[op]
            return lambda o: test(at(o, name), val)
        val = self.literal()                      # 'x' in prop: membership in an array
        self.next("w", "in")
        name = self.prop(self.next("w")[1])
        return lambda o: isinstance(at(o, name), list) and val in at(o, name)


# --------------------------------------------------------------------------
# Async-operations

class Op(Task):
    """An async-operation: the core's clock-driven Task, answered in either spelling."""

    def __init__(self, tid, display, created, duration, resources, effect, fail, *,
                 services, source, user, customer, poll, parent=None):
        super().__init__(tid, display, created, duration, OP_STEPS, resources, effect, fail, [])
        self.services = services
        self.source = source        # {name, resourceUri, type} of what it acts on, or None
        self.user = user
        self.customer = customer
        self.poll = poll
        self.parent = parent
        self.children = []
        self.trace = "%032x" % random.getrandbits(128)
        self.cached = {}

    def uri(self):
        return "%s/%s" % (OPS, self.id)

    def link(self, with_id):
        out = {"name": self.display, "resourceUri": self.uri(), "type": "task"}
        if with_id:
            out["id"] = self.id
        return out

    def answer(self, now, spelling):
        done = self.cached.get(spelling)
        if done is not None:
            return done
        b = self.render(now)
        old = spelling == "2024"
        stamp = "timestampAt" if old else "timestamp"
        root = self.parent
        out = {"id": self.id, "type": "task", "name": self.display,
               "displayName": self.display, "state": b["state"],
               "progressPercent": b["progressPercent"], "healthStatus": b["healthStatus"],
               "logMessages": [{stamp: m["timestampAt"], "message": m["message"]}
                               for m in b["logMessages"]][-5:],
               "error": None if self.error is None else {
                   "error": self.error, "errorCode": "422", "traceId": self.trace},
               "startedAt": b["startedAt"], "endedAt": b["endedAt"],
               "createdAt": b["createdAt"], "updatedAt": b["updatedAt"],
               "generation": len(b["logMessages"]), "services": list(self.services),
               "associatedResources": [{"type": r["type"], "resourceUri": r["resourceUri"],
                                        "name": r["name"]} for r in self.resources],
               "suggestedPollingIntervalSeconds": self.poll,
               "estimatedRunningDurationMinutes": max(1, int(-(-self.duration // 60))),
               "userId": self.user, "customerId": self.customer, "groups": [],
               "recommendations": [], "resourceUri": self.uri()}
        if old:
            out.update({"parentTask": root.link(False) if root else None,
                        "rootTask": root.link(False) if root else None,
                        "childTasks": [c.link(False) for c in self.children],
                        "subtreeTaskCount": len(self.children),
                        "sourceResource": {k: self.source[k] for k in
                                           ("name", "resourceUri", "type")}
                        if self.source else None})
        else:
            out.update({"parent": root.link(True) if root else None,
                        "rootOperation": root.link(True) if root else None,
                        "hasChildOperations": bool(self.children),
                        "subtreeOperationCount": len(self.children),
                        "sourceResourceUri": self.source["resourceUri"]
                        if self.source else None})
        if self.state is not None:
            self.cached[spelling] = out
        return out


class TokenTable(dict):
    """Access token -> expiry (its client: .client); clear() (/_sim/sessions/expire) makes every
    token expired rather than unknown, so that it is answered as an expired one."""

    def __init__(self):
        super().__init__()
        self.expired = set()
        self.client = {}

    def clear(self):
        self.expired.update(self)
        super().clear()


# --------------------------------------------------------------------------
# The estate

def gl_id(seed, *vals):
    return uuid_of(hexid(32, seed, *vals))


class Estate:
    """Every collection (name -> {id: object}), backups and snapshots per virtual
    machine, and the async-operations, newest last."""

    def __init__(self, opts):
        self.seed = opts.seed
        self.customer = hexid(32, opts.seed, K_CUST)
        self.colls = {name: {} for name in LISTS if name not in ("backups", "snapshots",
                                                                 "async-operations")}
        self.backups = {}      # vm id -> {id: backup}
        self.snapshots = {}    # vm id -> {id: snapshot}
        self.ops = []
        self.op_by_id = {}
        self.pending = []
        self.build(opts)

    def obj(self, coll, rid, name, kind, uri, ct, **more):
        pub = {"id": rid, "name": name, "type": kind, "resourceUri": uri, "generation": 1,
               "createdAt": iso(ct), "updatedAt": iso(ct), "customerId": self.customer}
        pub.update(more)
        if coll is not None:
            self.colls[coll][rid] = pub
        return pub

    @staticmethod
    def changed(pub):
        pub["generation"] += 1
        pub["updatedAt"] = now_iso()

    def build(self, opts):
        seed, t0 = self.seed, BASE_EPOCH
        nm = max(1, (opts.servers + 1) // 2)
        managers = [self.obj("hypervisor-managers", gl_id(seed, K_HM, m),
                             "vcenter-%02d.example.com" % (m + 1),
                             "virtualization/hypervisor-manager",
                             "%s/hypervisor-managers/%s" % (VZ, gl_id(seed, K_HM, m)),
                             t0 + m * 3600, hypervisorManagerType="VMWARE_VCENTER",
                             address="192.0.2.%d" % (50 + m), version="8.0.2",
                             state="OK", status="OK", connectionState="CONNECTED",
                             lastRefreshedAt=iso(EST_NOW - 3600))
                    for m in range(nm)]
        width = max(2, len(str(opts.volumes * opts.servers)))
        vm_k = 0
        for c in range(opts.servers):
            cid = gl_id(seed, K_CL, c)
            man = managers[c // 2]
            cl = self.obj("hypervisor-clusters", cid, "cluster-%02d" % (c + 1),
                          "virtualization/hypervisor-cluster",
                          "%s/hypervisor-clusters/%s" % (VZ, cid), t0 + c * 60 + 7200,
                          hypervisorManagerInfo=ref(man), hypervisorHosts=[], state="OK",
                          status="OK")
            hosts = []
            for k in range(opts.hosts):
                hid = gl_id(seed, K_HOST, c, k)
                hosts.append(self.obj(
                    "hypervisor-hosts", hid, "esx-%02d-%02d.example.com" % (c + 1, k + 1),
                    "virtualization/hypervisor-host", "%s/hypervisor-hosts/%s" % (VZ, hid),
                    t0 + 7200 + k, clusterInfo=ref(cl), hypervisorManagerInfo=ref(man),
                    connectionState="CONNECTED", powerState="POWERED_ON", version="8.0.2",
                    cpuInfo={"numCpuCores": 32, "cpuModel": "Intel Xeon Gold 6338"},
                    memorySizeInBytes=512 * GIB, state="OK", status="OK"))
                cl["hypervisorHosts"].append(ref(hosts[-1]))
            stores = []
            for k, tib in enumerate((4, 8, 16)):
                did = gl_id(seed, K_DS, c, k)
                h = mix(seed, K_DS, c, k)
                stores.append(self.add_datastore(
                    did, "ds-%02d-%s" % (c + 1, CATEGORIES[h % len(CATEGORIES)]), tib * TIB,
                    tib * TIB * (5 + h % 20) // 100, cl, man, "2FF70002AC0%05d" % (h % 99999),
                    t0 + 7300 + k))
            names = [None] * opts.volumes
            if c == 0:
                names.append("fail-vm-01")
                if opts.hostile_names:
                    names += HOSTILE_NAMES
            first = None
            for k, name in enumerate(names):
                vm_k += 1
                h = mix(seed, K_VM, c, k)
                if k < opts.volumes:
                    name = "vm-%s-%0*d" % (CATEGORIES[h % len(CATEGORIES)], width, vm_k)
                elif name is None:
                    name = first
                first = first or name
                vm = self.add_vm(gl_id(seed, K_VM, c, k), name, h, cl, man,
                                 hosts[k % len(hosts)] if hosts else None, stores[k % 3],
                                 t0 + 86400 + vm_k * 600)
                self.build_copies(vm, opts.snapshots, h, hostile=opts.hostile_names and
                                  c == 0 and k == 0)
        self.build_protection(opts)
        self.build_data_services(opts)
        self.build_history()

    def add_datastore(self, did, name, size, used, cl, man, wwn, ct):
        return self.obj("datastores", did, name, "virtualization/datastore",
                        "%s/datastores/%s" % (VZ, did), ct, datastoreType="VMFS",
                        capacityInBytes=size, capacityFree=size - used,
                        capacityUncommitted=size - used, clusterInfo=ref(cl),
                        hypervisorManagerInfo=ref(man), state="OK", status="OK",
                        storageSystemInfo={"id": "7CE816P00%d" % (int(cl["name"][-1]) % 10),
                                           "name": "alletra9k-prod-0"},
                        volumeInfo={"name": name, "wwn": wwn})

    def add_vm(self, vid, name, h, cl, man, host, ds, ct):
        off = h % 7 == 0
        return self.obj("virtual-machines", vid, name, "virtualization/virtual-machine",
                        "%s/virtual-machines/%s" % (VZ, vid), ct, appType="VMWARE",
                        powerState="POWERED_OFF" if off else "POWERED_ON", state="OK",
                        status="OK", cpuInfo={"numCpuCores": 2 << (h >> 8) % 3},
                        memorySizeInMib=2048 << (h >> 12) % 4,
                        capacityInBytes=(40 + (h >> 16) % 8 * 20) * GIB,
                        guestInfo={"name": "Ubuntu Linux (64-bit)" if h & 1 else
                                   "Microsoft Windows Server 2022 (64-bit)",
                                   "hostName": name, "ipAddress": None if off else
                                   "10.30.%d.%d" % ((h >> 20) % 250 + 1, (h >> 28) % 250 + 1)},
                        clusterInfo=ref(cl), hypervisorManagerInfo=ref(man),
                        hostInfo=ref(host) if host else None, datastoresInfo=[ref(ds)],
                        protectionJobInfo=None, vmClassification="VIRTUAL_MACHINE")

    def copy(self, vm, kind, cid, name, t, h, description=""):
        table = (self.backups if kind == "backups" else self.snapshots).setdefault(vm["id"], {})
        pub = self.obj(None, cid, name, "backup-recovery/virtual-machine-" + kind[:-1],
                       "%s/virtual-machines/%s/%s/%s" % (BR, vm["id"], kind, cid), t,
                       description=description, state="OK", status="OK",
                       pointInTime=iso(t), expiresAt=iso(t + (30 if kind == "backups" else 7)
                                                         * 86400),
                       lockedUntil=None, sizeInBytes=vm["capacityInBytes"] * (20 + h % 60) // 100,
                       virtualMachineInfo=ref(vm))
        if kind == "backups":
            pub["backupType"] = "CLOUD_BACKUP" if h % 5 == 0 else "BACKUP"
        else:
            pub["snapshotType"] = "HYPERVISOR"
        table[cid] = pub
        return pub

    def build_copies(self, vm, n, h, hostile):
        t = iso_time(vm["createdAt"])
        for kind, key in (("backups", K_BK), ("snapshots", K_SN)):
            made = []
            for j in range(n):
                tj = t + 86400 * (j + 1) + mix(h, key, j) % 3600
                made.append(self.copy(vm, kind, gl_id(self.seed, key, h & 0xFFFFFFFF, j),
                                      "%s-%s" % (kind[:-1], time.strftime(
                                          "%Y%m%d-%H%M", time.gmtime(tj))), tj, mix(h, j)))
            if hostile:
                for j, name in enumerate(HOSTILE_NAMES):
                    self.copy(vm, kind, gl_id(self.seed, key, h & 0xFFFFFFFF, 1000 + j),
                              made[0]["name"] if name is None and made else name or "",
                              t + 60, j)

    def add_policy(self, pid, name, description, protections, ct):
        return self.obj("protection-policies", pid, name, "backup-recovery/protection-policy",
                        "%s/protection-policies/%s" % (BR, pid), ct, description=description,
                        protections=protections, createdBy={"id": SIM_USER, "name": SIM_USER},
                        assigned=False)

    def add_job(self, jid, vm, pol, ct, state="ACTIVE"):
        job = self.obj("protection-jobs", jid, "%s protection" % vm["name"],
                       "backup-recovery/protection-job",
                       "%s/protection-jobs/%s" % (BR, jid), ct,
                       assetInfo=ref(vm), protectionPolicyInfo=ref(pol),
                       protections=[{"id": p["id"], "type": p["type"],
                                     "schedules": [{"scheduleId": s["id"], "name": s["name"]}
                                                   for s in p["schedules"]]}
                                    for p in pol["protections"]], state=state)
        vm["protectionJobInfo"] = ref(job)
        pol["assigned"] = True
        return job

    def build_protection(self, opts):
        seed, t0 = self.seed, BASE_EPOCH + 2 * 86400
        pols = []
        for k, (name, kinds) in enumerate((("Gold", PROTECTION_TYPES),
                                           ("Silver", PROTECTION_TYPES[:2]),
                                           ("Bronze", PROTECTION_TYPES[1:2]))):
            prots = []
            for j, kind in enumerate(kinds):
                prots.append({"id": gl_id(seed, K_PP, k, j), "type": kind, "schedules": [{
                    "id": j + 1, "name": "%s-%s" % (name.lower(), kind.lower()),
                    "schedule": {"recurrence": "DAILY", "repeatInterval": {"every": 1},
                                 "startTime": "%02d:00" % (20 + j)},
                    "expireAfter": {"unit": "DAYS", "value": 7 * (j + 1)}}]})
            pols.append(self.add_policy(gl_id(seed, K_PP, k), "%s-vm-protection" % name.lower(),
                                        "%s protection of virtual machines" % name, prots,
                                        t0 + k))
        if opts.hostile_names:
            for k, name in enumerate(HOSTILE_NAMES):
                self.add_policy(gl_id(seed, K_PP, 100 + k), pols[0]["name"] if name is None
                                else name, "", [], t0 + 100 + k)
        vms = list(self.colls["virtual-machines"].values())
        for k, vm in enumerate(vms):
            if k % 2 == 1 or vm["name"] == "fail-vm-01":
                self.add_job(gl_id(seed, K_PJ, k), vm, pols[k % 3], t0 + 86400 + k,
                             "SUSPENDED" if k == 5 else "ACTIVE")
        for c, cl in enumerate(self.colls["hypervisor-clusters"].values()):
            gid = gl_id(seed, K_PG, c)
            self.obj("virtual-machine-protection-groups", gid, "pg-%s" % cl["name"],
                     "backup-recovery/virtual-machine-protection-group",
                     "%s/virtual-machine-protection-groups/%s" % (BR, gid), t0 + c,
                     membershipType="STATIC", hypervisorManagerInfo=cl["hypervisorManagerInfo"],
                     assets=[ref(v) for v in vms if v["clusterInfo"]["id"] == cl["id"]][:5])
        for k, (name, kind, loc, cap) in enumerate((
                ("ps-onprem-01", "ON_PREMISES", None, 100 * TIB),
                ("ps-cloud-01", "CLOUD", "aws:us-west-2", 500 * TIB))):
            sid = gl_id(seed, K_STORE, k)
            self.obj("protection-stores", sid, name, "backup-recovery/protection-store",
                     "%s/protection-stores/%s" % (BR, sid), t0 + k, displayName=name,
                     protectionStoreType=kind, state="OK", status="OK",
                     storageLocationInfo={"id": loc} if loc else None,
                     maxCapacityInBytes=cap, sizeOnDiskInBytes=cap * (11 + k * 7) // 100,
                     userDataStoredInBytes=cap * (33 + k * 9) // 100)
        for coll, name, kind, more in (
                ("protection-store-gateways", "psg-01", "protection-store-gateway",
                 {"version": "5.1.0", "state": "OK", "network": {"hostname": "psg-01.example.com"}}),
                ("data-orchestrators", "do-01", "data-orchestrator",
                 {"version": "2.5.1", "state": "OK", "address": "do-01.example.com"}),
                ("storeonces", "storeonce-01", "storeonce",
                 {"serialNumber": "CZ3912ABCD", "softwareVersion": "4.3.6",
                  "state": "OK", "address": "storeonce-01.example.com"})):
            oid = gl_id(seed, K_MISC, len(coll))
            self.obj(coll, oid, name, "backup-recovery/" + kind,
                     "%s/%s/%s" % (BR, coll, oid), t0, **more)

    def build_data_services(self, opts):
        seed, t0 = self.seed, BASE_EPOCH + 500 * 86400
        n = 0
        for ds in self.colls["datastores"].values():
            used = 100 - ds["capacityFree"] * 100 // ds["capacityInBytes"]
            self.add_issue(n, "Datastore %s is %d%% full" % (ds["name"], used), "WARNING",
                           "capacity", ["virtualization"], ds, t0 + n * 3600)
            n += 1
        for vm in list(self.colls["virtual-machines"].values())[:opts.servers * 3]:
            self.add_issue(n, "No recent backup of virtual machine %s" % vm["name"],
                           "CRITICAL" if vm["protectionJobInfo"] is None else "INFO",
                           "data-protection", ["backup-recovery"], vm, t0 + n * 3600)
            n += 1
        for k, (action, state) in enumerate((("DELETE_BACKUP", "PENDING"),
                                             ("UPDATE_PROTECTION_POLICY", "PENDING"),
                                             ("DELETE_PROTECTION_STORE", "APPROVED"),
                                             ("DELETE_BACKUP", "PENDING"))):
            did = gl_id(seed, K_DA, k)
            name = "fail-dual-auth-%d" % (k + 1) if k == 3 else "dual-auth-%d" % (k + 1)
            self.obj("dual-auth-operations", did, name, "data-services/dual-auth-operation",
                     "%s/dual-auth-operations/%s" % (DS, did), t0 + 86400 * 20 + k,
                     state=state, operationType=action, requestedBy="alice@example.com",
                     checkedBy="bob@example.com" if state != "PENDING" else None,
                     expiresAt=iso(t0 + 86400 * 22 + k), description="%s requested by "
                     "alice@example.com" % action.replace("_", " ").lower())
        for k, (name, vtype, value, allowed) in enumerate((
                ("dual-authorization", "BOOLEAN", "false", ["true", "false"]),
                ("session-timeout-minutes", "INTEGER", "30", None),
                ("default-backup-retention-days", "INTEGER", "30", None),
                ("email-notifications", "STRING", "critical-only",
                 ["none", "critical-only", "all"]),
                ("fail-setting", "STRING", "x", None))):
            sid = gl_id(seed, K_MISC, 100 + k)
            self.obj("settings", sid, name, "data-services/setting",
                     "%s/settings/%s" % (DS, sid), t0 + k, displayName=name.replace("-", " "),
                     valueType=vtype, currentValue=value, defaultValue=value,
                     allowedValues=allowed)
        for k, (name, service) in enumerate((("vcenter-01-credentials", "virtualization"),
                                             ("cloud-store-key", "backup-recovery"))):
            sid = gl_id(seed, K_MISC, 200 + k)
            self.obj("secrets", sid, name, "data-services/secret",
                     "%s/secrets/%s" % (DS, sid), t0 + k, service=service,
                     classifier="PASSWORD" if k == 0 else "KEY", assignments=[])
        for k, (name, version, comp) in enumerate((
                ("Data Orchestrator 2.5.1", "2.5.1", "DATA_ORCHESTRATOR"),
                ("Protection Store Gateway 5.1.0", "5.1.0", "PROTECTION_STORE_GATEWAY"),
                ("Data Orchestrator 2.4.0", "2.4.0", "DATA_ORCHESTRATOR"))):
            rid = gl_id(seed, K_MISC, 300 + k)
            self.obj("software-releases", rid, name, "data-services/software-release",
                     "%s/software-releases/%s" % (DS, rid), t0 - 86400 * 30 * k,
                     version=version, softwareComponent=comp, isLatest=k < 2,
                     releaseDate=iso(t0 - 86400 * 30 * k))
        for loc, provider, region in (("aws:us-west-2", "AWS", "us-west-2"),
                                      ("aws:eu-central-1", "AWS", "eu-central-1"),
                                      ("azure:eastus2", "AZURE", "eastus2"),
                                      ("azure:westeurope", "AZURE", "westeurope")):
            self.obj("storage-locations", loc, "%s (%s)" % (region, provider),
                     "data-services/storage-location", "%s/storage-locations/%s" % (DS, loc),
                     t0, cloudProvider=provider, region=region,
                     capabilities=["BACKUP_CLOUD_STORE"])
        for k, (key, value) in enumerate((("env", "prod"), ("env", "dev"), ("owner", "dsfs"),
                                          ("tier", "gold"), ("tier", "silver"),
                                          ("site", "dc1"))):
            tid = gl_id(seed, K_MISC, 400 + k)
            pub = self.obj("tags", tid, "%s=%s" % (key, value), "data-services/tag",
                           "%s/tags/%s" % (DS, tid), t0 + k, key=key, value=value)
            del pub["name"]

    def add_issue(self, n, title, severity, category, services, res, ct):
        iid = gl_id(self.seed, K_ISSUE, n)
        self.obj("issues", iid, title, "data-services/issue", "%s/issues/%s" % (DS, iid), ct,
                 body="%s. See %s." % (title, res["resourceUri"]), severity=severity,
                 category=category, services=services, state="ACTIVE", snoozedFor="NONE",
                 snoozedUntil=None, lastOccurredAt=iso(ct + 1800), occurrenceCount=2,
                 relatedResource=ref(res))

    def build_history(self):
        """Operations that ended before the server started: two backups, a failed
        one, a refresh, and a restore with its child operations."""
        vms = list(self.colls["virtual-machines"].values())
        man = next(iter(self.colls["hypervisor-managers"].values()))
        fail_vm = next((v for v in vms if v["name"] == "fail-vm-01"), None)
        t = EST_NOW - 7 * 86400
        seed = self.seed
        plan = [("Backup of virtual machine %s" % v["name"], ["backup-recovery"], v, None)
                for v in vms[1:3]]
        plan.append(("Refresh hypervisor manager %s" % man["name"], ["virtualization"], man,
                     None))
        if fail_vm is not None:
            plan.append(("Backup of virtual machine %s" % fail_vm["name"], ["backup-recovery"],
                         fail_vm, failing(fail_vm["name"])))
        for k, (display, services, res, fail) in enumerate(plan):
            self.ended(gl_id(seed, K_OP, k), display, t + k * 3600, 120, services, res, fail)
        if vms:
            self.ended(gl_id(seed, K_OP, 50), "Restore virtual machine %s"
                                % vms[0]["name"], t + 86400, 300, ["backup-recovery"], vms[0],
                                None, children=True)

    def ended(self, oid, display, created, duration, services, res, fail, children=False):
        op = Op(oid, display, created, duration, [ref(res)], None, fail,
                services=services, source=ref(res), user=SIM_USER, customer=self.customer,
                poll=30)
        if children:
            for k, step in enumerate(RESTORE_STEPS):
                kid = Op(gl_id(self.seed, K_OP, 60 + k), "%s: %s" % (display, step), created,
                         duration * (k + 1) / 3, [ref(res)], None, None, services=services,
                         source=ref(res), user=SIM_USER, customer=self.customer, poll=30,
                         parent=op)
                op.children.append(kid)
                self.finish(kid)
        self.finish(op)
        return op

    def finish(self, op):
        op.state = "FAILED" if op.fail else "SUCCEEDED"
        op.error = op.fail
        op.effect = None
        self.ops.append(op)
        self.op_by_id[op.id] = op


RESTORE_STEPS = ("prepare the target", "copy the data", "register the virtual machine")


# --------------------------------------------------------------------------
# Routes

class GRoute:
    __slots__ = ("template", "segs", "allow", "handlers")

    def __init__(self, template, handlers):
        self.template = template
        self.segs = tuple(None if s.startswith("{") else s for s in template.split("/")[1:])
        self.handlers = handlers
        self.allow = ", ".join(sorted(handlers))


class Ctx:
    __slots__ = ("method", "path", "template", "p", "query", "headers", "body", "now",
                 "client")

    def param(self, k):
        return list(self.p.values())[k]


class Greenlake(Dialect):
    """The greenlake dialect: tokens, routing, lists, operations and the estate."""
    name = "greenlake"
    base = ""     # the server root: the families are /data-services/v1beta1/..., etc.
    api = "greenlake"

    @staticmethod
    def add_options(p):
        g = p.add_argument_group(
            "greenlake dialect", "Also used: --client-id and --client-secret(-file) (the "
            "API client the token endpoints accept), --token-ttl (tokens of "
            "/as/token.oauth2, default 7200), --servers (hypervisor clusters), --hosts "
            "(hosts per cluster), --volumes (virtual machines per cluster), --snapshots "
            "(backups and snapshots per virtual machine), --task-seconds (how long an "
            "async-operation runs), --sync, --page-max, --latency-ms.")
        g.add_argument("--workspace-id", default=DEMO_WORKSPACE, metavar="ID",
                       help="the workspace whose scoped token endpoint "
                       "/authorization/v2/oauth2/ID/token answers (default %s)"
                       % DEMO_WORKSPACE)
        g.add_argument("--workspace-token-ttl", type=int, default=900, metavar="S",
                       help="lifetime of a workspace-scoped token (default 900)")
        g.add_argument("--spelling", choices=("current", "2024"), default="current",
                       help="answer with the current field names (default) or with those "
                       "of March 2024 (childTasks, timestampAt, sourceResource, errors "
                       "{error, errorCode, traceId})")

    @staticmethod
    def check_options(p, opts):
        if opts.dialect == "greenlake" and opts.workspace_token_ttl < 1:
            p.error("--workspace-token-ttl must be at least 1")

    def credentials(self, root):
        return ["client_id=" + self.client_id, "client_secret=" + self.client_secret,
                "token_url=" + root + TOKEN_PATH]

    def __init__(self, sim, opts):
        super().__init__(sim, opts)
        self.client_id = opts.client_id
        self.client_secret = opts.client_secret
        self.spelling = opts.spelling
        self.tokens = TokenTable()
        self.reads = collections.deque(maxlen=2000)   # /_sim/reads: the GETs, with queries
        self.est = Estate(opts)
        self.poll = max(1, int(round(opts.task_seconds / 3.0)))
        self.index = {}
        for template, handlers in ROUTES:
            r = GRoute(template, handlers)
            self.index.setdefault(len(r.segs), []).append(r)
        for rs in self.index.values():
            rs.sort(key=lambda r: tuple(s is None for s in r.segs))
        sim.event("server started (greenlake) with %d virtual machine(s)"
                  % len(self.est.colls["virtual-machines"]))

    def error_body(self, status, message):
        if self.spelling == "2024":
            return error_body(status, message)
        return dumps({"httpStatusCode": status, "message": message,
                      "errorCode": status_code(status),
                      "debugId": "%032x" % random.getrandbits(128)})

    # -- routing
    def route(self, method, path, qs, headers, body):
        segs = split_path(path)
        route = None
        if path == TOKEN_PATH or (len(segs) == 5 and all(
                w is None or w == s for w, s in zip(WS_TOKEN, segs))):
            route = GRoute("/authorization/v2/oauth2/{workspace-id}/token" if segs[0] !=
                           "as" else TOKEN_PATH, {"POST": "token"})
        else:
            route = next((r for r in self.index.get(len(segs), ()) if all(
                w is None or w == s for w, s in zip(r.segs, segs))), None)
        template = route.template if route else None
        self.count((method, template or "<unknown>"))
        query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
        entry = self.record(method, path, qs, headers, body, template)
        if method in ("GET", "HEAD") and (route is None or route.handlers.get("POST") != "token"):
            entry = {"method": method, "path": path, "query": qs, "template": template,
                     "status": None, "time": now_iso()}
            with self.sim.lock:
                self.reads.append(entry)
        return Req(method, path, path, route, segs, query, None, entry)

    def keeps(self, method, path):
        """/_sim/requests: every change, never a token request (it carries the secret)."""
        return method not in ("GET", "HEAD") and path.split("/")[1] not in ("as",
                                                                            "authorization")

    # -- one request
    def handle(self, req, headers, body, host):
        route = allowed_route(req, "Resource not found: {path}",
                              "Method {method} is not allowed on {template}")
        fn = route.handlers[req.method]
        if fn == "token":
            return self.token_endpoint(req, headers, body)
        ctx = Ctx()
        ctx.method, ctx.path, ctx.template = req.method, req.path, route.template
        ctx.p = collections.OrderedDict(
            (t[1:-1], s) for t, s in zip(route.template.split("/")[1:], req.segs)
            if t.startswith("{"))
        ctx.query, ctx.headers = req.query, headers
        with self.sim.lock:
            now = ctx.now = time.time()
            ctx.client = self.check_token(headers, now)
            est = self.est
            if est.pending and est.pending[0][0] <= now:
                self.sim.settle(est, now)
            ctx.body = self.read_body(ctx, body)
            return fn(self, ctx)

    def read_body(self, ctx, body):
        if ctx.method == "PATCH":
            ctype = media_type(ctx.headers)
            if ctype != MERGE_PATCH:
                raise ApiError(415, "Unsupported Content-Type %r: a PATCH takes %s"
                               % (ctype, MERGE_PATCH))
            return json_object(body, "Invalid JSON body: %s", "The patch must be a JSON "
                               "object", empty=b"")
        if not body:
            return None
        if media_type(ctx.headers) != "application/json":
            raise ApiError(415, "Unsupported Content-Type %r: send application/json"
                           % media_type(ctx.headers))
        return json_object(body, "Invalid JSON body: %s", "The body must be a JSON object")

    # -- tokens
    def token_endpoint(self, req, headers, body):
        form = token_form(headers, body, "client_credentials")
        challenge = [("WWW-Authenticate", 'Basic realm="greenlake"')]
        try:
            pair = basic_credentials(headers, challenge)
        except ApiError as e:
            raise oauth_error(401, "invalid_client", e.message, challenge)
        if pair is not None:
            pair = tuple(unquote(v.replace("+", " ")) for v in pair)
        else:
            pair = (form.get("client_id"), form.get("client_secret"))
        ttl = self.opts.token_ttl
        if req.segs[0] == "authorization":
            if req.segs[3] != self.opts.workspace_id:
                raise oauth_error(400, "invalid_request", "unknown workspace %r" % req.segs[3])
            ttl = self.opts.workspace_token_ttl
        with self.sim.lock:
            if None in pair or not (same_secret(pair[0], self.client_id)
                                    and same_secret(pair[1], self.client_secret)):
                self.sim.event("token refused for client %r" % (pair[0],))
                raise oauth_error(401, "invalid_client", "Client authentication failed")
            out = self.issue_token(pair[0], ttl)
        self.sim.event("token issued to client %s" % pair[0])
        return oauth_token(out)

    def issue_token(self, client, ttl):
        now = time.time()
        for t in [t for t, exp in self.tokens.items() if exp < now]:
            self.tokens.expired.add(t)
            del self.tokens[t]
        tok = "eyJhbGciOiJSUzI1NiJ9.refserver-greenlake." + secrets.token_urlsafe(40)
        self.tokens[tok] = now + ttl
        self.tokens.client[tok] = client
        return {"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl)}

    def check_token(self, headers, now):
        """The client of a valid bearer token. A missing or unknown token answers 401 with
        a plain-text body (as HPE's gateway does), an expired one 401 with the error body."""
        auth = headers.get("authorization", "")
        tok = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        exp = self.tokens.get(tok)
        if exp is not None and exp >= now:
            return self.tokens.client[tok]
        if exp is not None or tok in self.tokens.expired:
            self.tokens.pop(tok, None)
            self.tokens.expired.add(tok)
            raise ApiError(401, "The access token has expired", [(
                "WWW-Authenticate", 'Bearer error="invalid_token", '
                'error_description="token expired"')])
        text = b"Jwt is missing" if not tok else b"Jwt verification fails"
        raise ApiError(401, text.decode(), [("Content-Type", "text/plain"),
                                            ("WWW-Authenticate", 'Bearer realm="greenlake"')],
                       body=text)

    # -- lists and objects
    def listing(self, ctx, name, objs):
        default, largest, params, or_ok = LISTS[name]
        q = ctx.query
        bad = sorted(k for k in q if k not in params)
        if bad:
            raise ApiError(400, "Unsupported query parameter(s) for %s: %s" % (
                name, ", ".join(bad)))
        known = set().union(*objs) if objs else None
        if q.get("filter"):
            match = Filter(q["filter"], known, or_ok).match
            objs = [o for o in objs if match(o)]
        if "sort" in q:
            keys = parse_sort(q["sort"], None)
            for field, _ in keys:
                if known and field.split("/")[0] not in known:
                    raise ApiError(400, "Invalid sort: unknown property %r" % field)
            for field, desc in reversed(keys):
                objs.sort(key=lambda o, f=field: _sort_key(at(o, f)), reverse=desc)
        fields = self.selection(name, q)
        offset, limit = 0, len(objs)
        if default is not None:
            offset = self.number(q, "offset", 0, 0)
            limit = min(self.number(q, "limit", default, 1), largest, self.sim.page_max)
        page = objs[offset:offset + limit]
        if fields is not None:
            page = [project(o, fields) for o in page]
        return ok_json({"items": page or None, "count": len(page), "offset": offset,
                        "total": len(objs)})

    @staticmethod
    def number(q, name, default, low):
        v = q.get(name)
        if v is None:
            return default
        try:
            n = int(v)
        except ValueError:
            n = low - 1
        if n < low:
            raise ApiError(400, "Invalid %s %r: an integer of at least %d" % (name, v, low))
        return n

    @staticmethod
    def selection(name, q):
        """The select's fields ('/' nested), dotted as refcore's project wants; None
        without one. issues: 422 when the select leaves out what every issue carries."""
        if "select" not in q:
            return None
        fields = [f.replace("/", ".") for f in parse_select(q["select"], None)]
        if name == "issues":
            missing = [f for f in ISSUE_SELECT if f not in fields]
            if missing:
                raise ApiError(422, 'Missing required field(s) - "%s"' % ",".join(missing))
        return fields

    def one(self, ctx, pub):
        bad = sorted(k for k in ctx.query if k != "select")
        if bad:
            raise ApiError(400, "Unsupported query parameter(s): %s" % ", ".join(bad))
        fields = self.selection(None, ctx.query)
        return ok_json(project(pub, fields) if fields is not None else pub)

    def find(self, name, rid, what=None):
        pub = self.est.colls[name].get(rid)
        if pub is None:
            raise ApiError(404, "%s %s not found" % (what or name[:-1].replace("-", " "), rid))
        return pub

    def op_objects(self, now):
        return [op.answer(now, self.spelling) for op in reversed(self.est.ops)]

    # -- async-operations
    def start_op(self, ctx, display, services, source, effect, fail=None, steps=None,
                 extra=()):
        """Starts an async-operation (children: one per step of `steps`, the last one
        failing when the operation fails) and answers 202 with its Location."""
        est = self.est
        dur = 0.0 if self.opts.sync else self.opts.task_seconds
        res = [source] + list(extra)
        op = Op(uuid_of("%032x" % random.getrandbits(128)), display, ctx.now, dur, res,
                effect, fail, services=services, source=source, user=ctx.client,
                customer=est.customer, poll=self.poll)
        for k, step in enumerate(steps or ()):
            kid = Op(uuid_of("%032x" % random.getrandbits(128)), "%s: %s" % (display, step),
                     ctx.now, dur * (k + 1) / len(steps), res, lambda: None,
                     fail if k == len(steps) - 1 else None, services=services, source=source,
                     user=ctx.client, customer=est.customer, poll=self.poll, parent=op)
            op.children.append(kid)
        for o in op.children + [op]:
            est.ops.append(o)
            est.op_by_id[o.id] = o
            self.sim.start_task(est, o)
        if dur == 0:
            self.sim.settle(est, ctx.now)
        return 202, b"", [("Location", op.uri())]

    # -- /_sim: the shared controls' hooks (tokens are the logins; the client secret is
    # what /_sim/password changes; /_sim/events adds ended async-operations), and this
    # dialect's own controls
    login_what, secret, token_owner = "token", ("client_secret", "client secret"), \
        ("client_id", "client_id")
    event_field, event_what = "name", "async-operation"

    def logins(self):
        return self.tokens

    def add_sim_event(self, text, same):
        est = self.est
        t = est.ops[-1].created if same and est.ops else time.time()
        op = Op(uuid_of("%032x" % random.getrandbits(128)), text, t, 0.0, [], None, None,
                services=["data-services"], source=None, user=SIM_USER,
                customer=est.customer, poll=self.poll)
        est.finish(op)
        return dumps(op.answer(t, self.spelling))

    def sim_extra(self, method, parts, body, qs):
        call = (method, "/".join(parts))
        if call == ("GET", "spelling"):
            return ok_json({"spelling": self.spelling})
        if call == ("POST", "spelling"):
            sp = json_object(body).get("spelling")
            if sp not in ("current", "2024"):
                raise ApiError(422, "field 'spelling' must be \"current\" or \"2024\"")
            with self.sim.lock:
                self.spelling = sp
            self.sim.event("spelling %s" % sp)
            return no_content()
        if call == ("POST", "rate-limit"):
            spec = json_object(body)
            unknown = sorted(set(spec) - {"count", "retry_after", "method", "path"})
            if unknown:
                raise ApiError(422, "unknown field(s): %s" % ", ".join(unknown))
            fault = {"count": 1, "retry_after": 1}
            fault.update(spec)
            fault["status"] = 429
            return self.sim.faults.control("POST", ["faults"], dumps(fault))
        if parts == ["reads"] and method in ("GET", "DELETE"):
            # the shared /_sim/requests code, on the log of reads
            return Dialect.sim_requests(SimpleNamespace(sim=self.sim, requests=self.reads),
                                        method, qs)
        return None


# --------------------------------------------------------------------------
# Handlers: lists and objects

def h_list(name):
    def handler(d, ctx):
        return d.listing(ctx, name, [dict(o) for o in d.est.colls[name].values()])
    return handler


def h_one(name):
    def handler(d, ctx):
        return d.one(ctx, d.find(name, ctx.param(0)))
    return handler


def h_ops(d, ctx):
    return d.listing(ctx, "async-operations", d.op_objects(ctx.now))


def h_op(d, ctx):
    op = d.est.op_by_id.get(ctx.param(0))
    if op is None:
        raise ApiError(404, "async-operation %s not found" % ctx.param(0))
    return d.one(ctx, op.answer(ctx.now, d.spelling))


def vm_copies(d, ctx, kind):
    """(vm, its backups or snapshots) of a backup-recovery path."""
    vm = d.find("virtual-machines", ctx.param(0), "virtual machine")
    table = d.est.backups if kind == "backups" else d.est.snapshots
    return vm, table.setdefault(vm["id"], {})


def h_copies(kind):
    def handler(d, ctx):
        vm, table = vm_copies(d, ctx, kind)
        return d.listing(ctx, kind, [dict(o) for o in table.values()])
    return handler


def h_copy(kind):
    def handler(d, ctx):
        vm, table = vm_copies(d, ctx, kind)
        pub = table.get(ctx.param(1))
        if pub is None:
            raise ApiError(404, "%s %s of virtual machine %s not found"
                           % (kind[:-1], ctx.param(1), vm["id"]))
        if ctx.method == "GET":
            return d.one(ctx, pub)
        return (patch_copy if ctx.method == "PATCH" else delete_copy)(d, ctx, vm, table, pub)
    return handler


# -- virtualization

def h_vm_action(action):
    need, after, verb = POWER[action]

    def handler(d, ctx):
        vm = d.find("virtual-machines", ctx.param(0), "virtual machine")
        if ctx.body:
            raise ApiError(400, "%s takes no request body" % action)
        fail = failing(vm["name"])
        if fail is None and need is not None and vm["powerState"] != need:
            fail = "The attempted operation cannot be performed in the current state " \
                   "(%s)" % vm["powerState"].replace("_", " ").title()

        def effect():
            if after is not None:
                vm["powerState"] = after
            d.est.changed(vm)
        return d.start_op(ctx, "%s virtual machine %s" % (verb, vm["name"]),
                          ["virtualization"], ref(vm), effect, fail)
    return handler


def h_vm_delete(d, ctx):
    vm = d.find("virtual-machines", ctx.param(0), "virtual machine")
    est = d.est

    def effect():
        est.colls["virtual-machines"].pop(vm["id"], None)
        est.backups.pop(vm["id"], None)
        est.snapshots.pop(vm["id"], None)
        job = vm["protectionJobInfo"]
        if job is not None:
            est.colls["protection-jobs"].pop(job["id"], None)
    return d.start_op(ctx, "Delete virtual machine %s" % vm["name"], ["virtualization"],
                      ref(vm), effect, failing(vm["name"]))


def require(b, field, kind, what=None):
    v = b.get(field)
    ok = {"string": lambda x: isinstance(x, str) and x != "",
          "integer": lambda x: isinstance(x, int) and not isinstance(x, bool) and x > 0,
          "object": lambda x: isinstance(x, dict),
          "array": lambda x: isinstance(x, list)}[kind]
    if not ok(v):
        raise ApiError(400, "Invalid request body: %s is required (%s)"
                       % (field, what or "a non-empty " + kind))
    return v


def only(b, fields):
    unknown = sorted(set(b) - set(fields))
    if unknown:
        raise ApiError(400, "Invalid request body: unknown field(s) %s (allowed: %s)"
                       % (", ".join(unknown), ", ".join(fields)))


def h_datastore_create(d, ctx):
    b = ctx.body or {}
    only(b, ("name", "sizeInBytes", "storageSystemId", "targetHypervisorClusterId",
             "datastoreType", "hostIds"))
    name = require(b, "name", "string")
    size = require(b, "sizeInBytes", "integer", "a positive integer")
    system = require(b, "storageSystemId", "string")
    cl = d.est.colls["hypervisor-clusters"].get(require(b, "targetHypervisorClusterId",
                                                        "string"))
    if b.get("datastoreType") != "VMFS":
        raise ApiError(400, "Invalid request body: datastoreType must be VMFS")
    if cl is None:
        raise ApiError(404, "hypervisor cluster %s not found" % b["targetHypervisorClusterId"])
    if any(x["name"] == name and x["clusterInfo"]["id"] == cl["id"]
           for x in d.est.colls["datastores"].values()):
        raise ApiError(409, "A datastore named %r exists in cluster %s" % (name, cl["name"]))
    did = uuid_of("%032x" % random.getrandbits(128))
    man = d.est.colls["hypervisor-managers"][cl["hypervisorManagerInfo"]["id"]]
    src = {"id": did, "name": name, "resourceUri": "%s/datastores/%s" % (VZ, did),
           "type": "virtualization/datastore"}

    def effect():
        ds = d.est.add_datastore(did, name, size, 0, cl, man, "2FF70002AC0%05d" %
                                 random.randrange(99999), time.time())
        ds["storageSystemInfo"]["id"] = system
    return d.start_op(ctx, "Create datastore %s" % name, ["virtualization"], src, effect,
                      failing(name), extra=[ref(cl)])


def h_manager_refresh(d, ctx):
    man = d.find("hypervisor-managers", ctx.param(0), "hypervisor manager")

    def effect():
        man["lastRefreshedAt"] = now_iso()
        d.est.changed(man)
    return d.start_op(ctx, "Refresh hypervisor manager %s" % man["name"], ["virtualization"],
                      ref(man), effect, failing(man["name"]))


# -- backup-recovery

def check_protections(prots):
    if not isinstance(prots, list):
        raise ApiError(400, "Invalid request body: protections must be an array")
    out, sid = [], 0
    for k, p in enumerate(prots):
        if not isinstance(p, dict) or p.get("type") not in PROTECTION_TYPES:
            raise ApiError(400, "Invalid request body: protections[%d].type must be one of %s"
                           % (k, ", ".join(PROTECTION_TYPES)))
        scheds = p.get("schedules", [])
        if not isinstance(scheds, list) or not all(isinstance(s, dict) for s in scheds):
            raise ApiError(400, "Invalid request body: protections[%d].schedules must be an "
                           "array of objects" % k)
        kept = []
        for s in scheds:
            sid += 1
            kept.append(dict(s, id=sid, name=s.get("name") or "%s-%d" % (p["type"].lower(),
                                                                          sid)))
        out.append(dict(p, id=p.get("id") or uuid_of("%032x" % random.getrandbits(128)),
                        schedules=kept))
    return out


def h_policy_create(d, ctx):
    b = ctx.body or {}
    only(b, ("name", "description", "protections"))
    name = require(b, "name", "string")
    prots = check_protections(require(b, "protections", "array"))
    desc = b.get("description", "")
    if not isinstance(desc, str):
        raise ApiError(400, "Invalid request body: description must be a string")
    if any(p["name"] == name for p in d.est.colls["protection-policies"].values()):
        raise ApiError(409, "A protection policy named %r exists" % name)
    pid = uuid_of("%032x" % random.getrandbits(128))
    pub = d.est.add_policy(pid, name, desc, prots, ctx.now)
    pub["createdBy"] = {"id": ctx.client, "name": ctx.client}
    d.sim.event("protection policy %s created" % name)
    return ok_json(pub)


def h_policy_patch(d, ctx):
    pol = d.find("protection-policies", ctx.param(0), "protection policy")
    b = ctx.body
    only(b, ("name", "description", "protections"))
    new = {}
    if "name" in b:
        new["name"] = require(b, "name", "string")
        if any(p["name"] == new["name"] and p["id"] != pol["id"]
               for p in d.est.colls["protection-policies"].values()):
            raise ApiError(409, "A protection policy named %r exists" % new["name"])
    if "description" in b:
        if b["description"] is not None and not isinstance(b["description"], str):
            raise ApiError(400, "Invalid request body: description must be a string or null")
        new["description"] = b["description"] or ""
    if "protections" in b:
        new["protections"] = check_protections(b["protections"])
    if new:
        pol.update(new)
        d.est.changed(pol)
        d.sim.event("protection policy %s updated: %s" % (pol["id"], ", ".join(sorted(new))))
    return ok_json(pol)


def h_policy_delete(d, ctx):
    pol = d.find("protection-policies", ctx.param(0), "protection policy")
    if any(j["protectionPolicyInfo"]["id"] == pol["id"]
           for j in d.est.colls["protection-jobs"].values()):
        raise ApiError(409, "Protection policy %s is used by protection jobs" % pol["name"])
    del d.est.colls["protection-policies"][pol["id"]]
    return no_content()


def h_job_create(d, ctx):
    b = ctx.body or {}
    only(b, ("assetInfo", "protectionPolicyId", "overrides"))
    asset = require(b, "assetInfo", "object")
    vm = d.find("virtual-machines", require(asset, "id", "string"), "virtual machine")
    if asset.get("type") != vm["type"]:
        raise ApiError(400, "Invalid request body: assetInfo.type must be %s" % vm["type"])
    pol = d.find("protection-policies", require(b, "protectionPolicyId", "string"),
                 "protection policy")
    if vm["protectionJobInfo"] is not None:
        raise ApiError(409, "Virtual machine %s is already protected" % vm["name"])
    jid = uuid_of("%032x" % random.getrandbits(128))

    def effect():
        d.est.add_job(jid, vm, pol, time.time())
        d.est.changed(vm)
    return d.start_op(ctx, "Protect virtual machine %s" % vm["name"], ["backup-recovery"],
                      ref(vm), effect, failing(vm["name"]), extra=[ref(pol)])


def h_job_action(action):
    def handler(d, ctx):
        job = d.find("protection-jobs", ctx.param(0), "protection job")
        vm = d.est.colls["virtual-machines"].get(job["assetInfo"]["id"])
        b = ctx.body or {}
        schedules = {s["scheduleId"]: p["type"] for p in job["protections"]
                     for s in p["schedules"]}
        if action == "run":
            only(b, ("scheduleIds", "fullBackup"))
            ids = require(b, "scheduleIds", "array", "an array of schedule ids")
            if not ids or any(i not in schedules for i in ids):
                raise ApiError(400, "Invalid request body: scheduleIds must name schedules of "
                               "the job (%s)" % ", ".join(map(str, sorted(schedules))))
            if not isinstance(b.get("fullBackup", False), bool):
                raise ApiError(400, "Invalid request body: fullBackup must be a boolean")
        elif b:
            raise ApiError(400, "%s takes no request body" % action)
        elif job["state"] == ("SUSPENDED" if action == "suspend" else "ACTIVE"):
            raise ApiError(409, "Protection job %s is already %s" % (job["id"], job["state"]))

        def effect():
            if vm is None or vm["id"] not in d.est.colls["virtual-machines"]:
                raise TaskFailed("the virtual machine of protection job %s is gone" % job["id"])
            if action == "run":
                t = time.time()
                for i in ids:
                    kind = "snapshots" if schedules[i] == "SNAPSHOT" else "backups"
                    pub = d.est.copy(vm, kind, uuid_of("%032x" % random.getrandbits(128)),
                                     "%s-%s" % (kind[:-1], time.strftime(
                                         "%Y%m%d-%H%M%S", time.gmtime(t))), t, i)
                    if schedules[i] == "CLOUD_BACKUP":
                        pub["backupType"] = "CLOUD_BACKUP"
            else:
                job["state"] = "SUSPENDED" if action == "suspend" else "ACTIVE"
                d.est.changed(job)
        verb = {"run": "Run", "suspend": "Suspend", "resume": "Resume"}[action]
        return d.start_op(ctx, "%s protection job of %s" % (verb, job["assetInfo"]["name"]),
                          ["backup-recovery"], ref(job), effect,
                          failing(job["assetInfo"]["name"]), extra=[job["assetInfo"]])
    return handler


def h_restore(d, ctx):
    vm = d.find("virtual-machines", ctx.param(0), "virtual machine")
    b = ctx.body or {}
    only(b, ("backupId", "snapshotId", "restoreType", "targetVmInfo"))
    given = [(k, b[k]) for k in ("backupId", "snapshotId") if b.get(k) not in (None, "")]
    if len(given) != 1 or not isinstance(given[0][1], str):
        raise ApiError(400, "Invalid request body: name exactly one of backupId and "
                       "snapshotId")
    kind = "backups" if given[0][0] == "backupId" else "snapshots"
    copy = (d.est.backups if kind == "backups" else d.est.snapshots).get(
        vm["id"], {}).get(given[0][1])
    if copy is None:
        raise ApiError(404, "%s %s of virtual machine %s not found" % (kind[:-1], given[0][1],
                                                                      vm["id"]))
    rtype = b.get("restoreType")
    if rtype not in ("PARENT", "ALTERNATE"):
        raise ApiError(400, "Invalid request body: restoreType must be PARENT or ALTERNATE")
    target = b.get("targetVmInfo")
    new_name = None
    if rtype == "ALTERNATE":
        if not isinstance(target, dict):
            raise ApiError(400, "Invalid request body: an ALTERNATE restore needs targetVmInfo")
        new_name = require(target, "name", "string")
    elif target is not None and not isinstance(target, dict):
        raise ApiError(400, "Invalid request body: targetVmInfo must be an object")
    est = d.est

    def effect():
        if rtype == "PARENT":
            vm["powerState"] = "POWERED_ON"
            est.changed(vm)
            return
        cl = est.colls["hypervisor-clusters"][vm["clusterInfo"]["id"]]
        man = est.colls["hypervisor-managers"][vm["hypervisorManagerInfo"]["id"]]
        host = est.colls["hypervisor-hosts"].get((vm["hostInfo"] or {}).get("id"))
        est.add_vm(uuid_of("%032x" % random.getrandbits(128)), new_name,
                   random.getrandbits(32) * 7, cl, man, host, vm["datastoresInfo"][0],
                   time.time())
    return d.start_op(ctx, "Restore virtual machine %s" % vm["name"], ["backup-recovery"],
                      ref(vm), effect, failing(vm["name"], copy["name"], new_name),
                      steps=RESTORE_STEPS, extra=[ref(copy)])


def patch_copy(d, ctx, vm, table, pub):
    b = ctx.body
    only(b, ("name", "description", "expiresAt", "lockedUntil"))
    if not b:
        raise ApiError(400, "Invalid request body: nothing to change")
    if "name" in b:
        require(b, "name", "string")
    if "description" in b and b["description"] is not None \
            and not isinstance(b["description"], str):
        raise ApiError(400, "Invalid request body: description must be a string or null")
    for f in ("expiresAt", "lockedUntil"):
        if f in b and b[f] is not None and iso_time(b[f]) is None:
            raise ApiError(400, "Invalid request body: %s must be an ISO-8601 date-time, "
                           "got %r" % (f, b[f]))
    expires = b.get("expiresAt", pub["expiresAt"])
    locked = b.get("lockedUntil", pub["lockedUntil"])
    if locked is not None and expires is not None and iso_time(locked) > iso_time(expires):
        raise ApiError(400, "lockedUntil must not be after expiresAt")
    if pub["lockedUntil"] is not None and (locked is None or iso_time(locked) <
                                           iso_time(pub["lockedUntil"])):
        raise ApiError(400, "A lock can only be extended (locked until %s)"
                       % pub["lockedUntil"])

    def effect():
        if pub["id"] not in table:
            raise TaskFailed("%s %s was deleted" % (pub["type"].rsplit("-", 1)[1], pub["id"]))
        pub.update({k: v for k, v in b.items()})
        if pub["description"] is None:
            pub["description"] = ""
        d.est.changed(pub)
    return d.start_op(ctx, "Update %s %s of %s" % (pub["type"].rsplit("-", 1)[1],
                                                  pub["name"], vm["name"]),
                      ["backup-recovery"], ref(pub), effect,
                      failing(vm["name"], pub["name"], b.get("name")), extra=[ref(vm)])


def delete_copy(d, ctx, vm, table, pub):
    what = pub["type"].rsplit("-", 1)[1]
    if pub["lockedUntil"] is not None and iso_time(pub["lockedUntil"]) > ctx.now:
        raise ApiError(409, "The %s is locked until %s" % (what, pub["lockedUntil"]))

    def effect():
        table.pop(pub["id"], None)
    return d.start_op(ctx, "Delete %s %s of %s" % (what, pub["name"], vm["name"]),
                      ["backup-recovery"], ref(pub), effect, failing(vm["name"], pub["name"]),
                      extra=[ref(vm)])


# -- data-services edits

def patch_of(d, ctx, name, fields):
    """(the object a PATCH edits, the patch), which may name only these fields."""
    only(ctx.body, fields)
    return d.find(name, ctx.param(0)), ctx.body


def h_issue(d, ctx):
    issue, b = patch_of(d, ctx, "issues", ("generation", "snoozedFor"))
    gen, snooze = b.get("generation"), b.get("snoozedFor")
    if gen is None or snooze is None:
        raise ApiError(400, "Invalid request body: generation and snoozedFor are required")
    if snooze not in SNOOZE:
        raise ApiError(400, "Invalid request body: snoozedFor must be one of %s"
                       % ", ".join(SNOOZE))
    if isinstance(gen, bool) or str(gen) != str(issue["generation"]):
        raise ApiError(409, "generation %r does not match the issue's generation %d"
                       % (gen, issue["generation"]))

    def effect():
        span = SNOOZE[snooze]
        issue["snoozedFor"] = snooze
        issue["snoozedUntil"] = iso(time.time() + span) if span else None
        d.est.changed(issue)
    return d.start_op(ctx, "Snooze issue %s" % issue["name"], ["data-services"], ref(issue),
                      effect)


def h_setting(d, ctx):
    s, b = patch_of(d, ctx, "settings", ("currentValue",))
    v = b.get("currentValue")
    if not isinstance(v, str):
        raise ApiError(400, "Invalid request body: currentValue is required (a string)")
    if (s["allowedValues"] and v not in s["allowedValues"]) or (
            s["valueType"] == "INTEGER" and not v.isdigit()):
        raise ApiError(400, "Invalid value %r for setting %s (%s%s)" % (
            v, s["name"], s["valueType"], ": " + ", ".join(s["allowedValues"])
            if s["allowedValues"] else ""))

    def effect():
        s["currentValue"] = v
        d.est.changed(s)
    return d.start_op(ctx, "Update setting %s" % s["name"], ["data-services"], ref(s),
                      effect, failing(s["name"]))


def h_dual_auth(d, ctx):
    op, b = patch_of(d, ctx, "dual-auth-operations", ("state",))
    state = b.get("state")
    if state not in ("APPROVED", "CANCELLED"):
        raise ApiError(400, "Invalid request body: state must be APPROVED or CANCELLED")
    if op["state"] != "PENDING":
        raise ApiError(409, "Dual-auth operation %s is %s, not PENDING" % (op["id"],
                                                                           op["state"]))

    def effect():
        op["state"] = state
        op["checkedBy"] = ctx.client
        d.est.changed(op)
    verb = "Approve" if state == "APPROVED" else "Cancel"
    return d.start_op(ctx, "%s dual-auth operation %s" % (verb, op["name"]),
                      ["data-services"], ref(op), effect, failing(op["name"]))


def collection(family, name, placeholder="id", one=True):
    """The list route of a collection, and its one-object route."""
    out = [(family + "/" + name, {"GET": h_list(name)})]
    if one:
        out.append(("%s/%s/{%s}" % (family, name, placeholder), {"GET": h_one(name)}))
    return out


ROUTES = (
    [(OPS, {"GET": h_ops}), (OPS + "/{id}", {"GET": h_op}),
     (DS + "/issues", {"GET": h_list("issues")}),
     (DS + "/issues/{id}", {"GET": h_one("issues"), "PATCH": h_issue}),
     (DS + "/dual-auth-operations", {"GET": h_list("dual-auth-operations")}),
     (DS + "/dual-auth-operations/{id}", {"GET": h_one("dual-auth-operations"),
                                          "PATCH": h_dual_auth}),
     (DS + "/settings", {"GET": h_list("settings")}),
     (DS + "/settings/{id}", {"GET": h_one("settings"), "PATCH": h_setting})]
    + collection(DS, "secrets") + collection(DS, "software-releases")
    + collection(DS, "storage-locations", one=False) + collection(DS, "tags", one=False)
    + [(VZ + "/virtual-machines", {"GET": h_list("virtual-machines")}),
       (VZ + "/virtual-machines/{vm-id}", {"GET": h_one("virtual-machines"),
                                           "DELETE": h_vm_delete})]
    + [(VZ + "/virtual-machines/{vm-id}/" + a, {"POST": h_vm_action(a)}) for a in POWER]
    + [(VZ + "/datastores", {"GET": h_list("datastores"), "POST": h_datastore_create}),
       (VZ + "/datastores/{datastore-id}", {"GET": h_one("datastores")})]
    + collection(VZ, "hypervisor-clusters", "cluster-id")
    + collection(VZ, "hypervisor-hosts", "host-id")
    + collection(VZ, "hypervisor-managers", "hypervisor-id")
    + [(VZ + "/hypervisor-managers/{hypervisor-id}/refresh", {"POST": h_manager_refresh}),
       (BR + "/protection-policies", {"GET": h_list("protection-policies"),
                                      "POST": h_policy_create}),
       (BR + "/protection-policies/{id}", {"GET": h_one("protection-policies"),
                                           "PATCH": h_policy_patch,
                                           "DELETE": h_policy_delete}),
       (BR + "/protection-jobs", {"GET": h_list("protection-jobs"), "POST": h_job_create}),
       (BR + "/protection-jobs/{id}", {"GET": h_one("protection-jobs")})]
    + [(BR + "/protection-jobs/{id}/" + a, {"POST": h_job_action(a)})
       for a in ("run", "suspend", "resume")]
    + collection(BR, "virtual-machine-protection-groups")
    + [(BR + "/virtual-machines/{id}/backups", {"GET": h_copies("backups")}),
       (BR + "/virtual-machines/{id}/backups/{backup-id}", dict.fromkeys(
           ("GET", "PATCH", "DELETE"), h_copy("backups"))),
       (BR + "/virtual-machines/{id}/snapshots", {"GET": h_copies("snapshots")}),
       (BR + "/virtual-machines/{id}/snapshots/{snapshot-id}", dict.fromkeys(
           ("GET", "PATCH", "DELETE"), h_copy("snapshots"))),
       (BR + "/virtual-machines/{id}/restore", {"POST": h_restore})]
    + collection(BR, "protection-stores") + collection(BR, "protection-store-gateways")
    + collection(BR, "data-orchestrators") + collection(BR, "storeonces"))
