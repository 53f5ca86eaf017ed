"""The backupdr dialect of the reference server (--dialect backupdr).

It serves the management console API of Google Cloud Backup and DR (the
Actifio Global Manager API) under /actifio, as its published reference describes it:
sessions opened with a Google bearer token or HTTP Basic and carried in the
backupdr-management-session header, {"items", "count"} lists with offset,
limit, filter and sort, HEAD counts, OPTIONS, actions answered 204 whose work
shows up as jobs in /jobstatus, {"err_code", "err_message"} errors. It also
answers a Google-style POST /token (the OAuth2 JWT-bearer grant of service
accounts), checking the JWT's RS256 signature with the standard library.
HTTP, faults, stats, the /_sim controls and the task clock are the core's
(refcore.py, refsim.py, reffaults.py, refhttp.py). docs/refserver.md,
"Backup and DR mode", describes it.
"""

import base64
import binascii
import collections
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time
from urllib.parse import parse_qsl

from refcore import (
    BASE_EPOCH, GIB, HOSTILE_NAMES, HOST_ROLES, SIZES_GIB, ApiError, Task, TaskFailed,
    add_secret_option, basic_credentials, check_user, dumps, json_object, media_type, mix,
    no_content, oauth_error, oauth_token, ok_json, same_secret, split_path, token_form)
from refsim import Dialect, Req, allowed_route

BDR_BASE = "/actifio"
TOKEN_PATH = "/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUD = "https://oauth2.googleapis.com/token"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
DEMO_PRINCIPAL = "dsfs-demo@example.iam.gserviceaccount.com"
US = 1000000    # times are epoch microseconds

# --------------------------------------------------------------------------
# RSA (RS256) with the standard library: PEM -> DER -> (n, e), PKCS#1 v1.5


def _der(data, pos=0):
    """One DER element at pos: (tag, content bytes, position after it)."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    return tag, data[pos:pos + n], pos + n


def _der_seq(data):
    """The elements of a DER SEQUENCE's content: [(tag, content)]."""
    out, pos = [], 0
    while pos < len(data):
        tag, content, pos = _der(data, pos)
        out.append((tag, content))
    return out


def _ints(items, *idx):
    return tuple(int.from_bytes(items[i][1], "big") for i in idx)


def rsa_public_key(text):
    """(n, e) from a PEM public key, RSA public key, certificate or private key,
    or from a Google service-account JSON key file (its private_key)."""
    text = text.strip()
    if text.startswith("{"):
        text = json.loads(text)["private_key"]
    m = re.search(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", text, re.S)
    if m is None:
        raise ValueError("no PEM block")
    kind, der = m.group(1), base64.b64decode("".join(m.group(2).split()))
    top = _der_seq(_der(der)[1])
    if kind == "RSA PUBLIC KEY":           # PKCS#1 RSAPublicKey
        return _ints(top, 0, 1)
    if kind == "RSA PRIVATE KEY":          # PKCS#1 RSAPrivateKey: version, n, e, d, ...
        return _ints(top, 1, 2)
    if kind == "PRIVATE KEY":              # PKCS#8: version, algorithm, RSAPrivateKey
        return _ints(_der_seq(_der(top[2][1])[1]), 1, 2)
    if kind == "CERTIFICATE":              # tbsCertificate: [0] version, serial, ..., spki
        tbs = _der_seq(top[0][1])
        if tbs[0][0] == 0xA0:
            tbs = tbs[1:]
        top = _der_seq(tbs[5][1])
        kind = "PUBLIC KEY"
    if kind == "PUBLIC KEY":               # SubjectPublicKeyInfo: algorithm, BIT STRING
        return _ints(_der_seq(_der(top[1][1][1:])[1]), 0, 1)
    raise ValueError("unsupported PEM block %r" % kind)


_SHA256_INFO = binascii.unhexlify("3031300d060960864801650304020105000420")


def rs256_verify(key, signed, sig):
    n, e = key
    k = (n.bit_length() + 7) // 8
    if len(sig) != k:
        return False
    em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(k, "big")
    t = _SHA256_INFO + hashlib.sha256(signed).digest()
    want = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, want)


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


# --------------------------------------------------------------------------
# Kinds: the lists, their filterable fields and their objects

# kind -> (what, [(field, type)]): types are those OPTIONS names
KINDS = {
    "cluster": ("appliance", [("id", "Long"), ("name", "String"), ("clusterid", "String"),
                              ("ipaddress", "String"), ("type", "String"),
                              ("version", "String"), ("syncdate", "Date")]),
    "host": ("host", [("id", "Long"), ("name", "String"), ("hostname", "String"),
                      ("hosttype", "String"), ("ostype", "String"), ("ipaddress", "String"),
                      ("clusterid", "Long"), ("isvm", "Boolean"), ("modifydate", "Date")]),
    "application": ("application", [
        ("id", "Long"), ("appname", "String"), ("apptype", "String"),
        ("friendlytype", "String"), ("hostid", "Long"), ("hostname", "String"),
        ("clusterid", "Long"), ("isprotected", "Boolean"), ("slaid", "Long"),
        ("modifydate", "Date")]),
    "backup": ("backup", [
        ("id", "Long"), ("backupname", "String"), ("appid", "Long"), ("appname", "String"),
        ("apptype", "String"), ("hostid", "Long"), ("hostname", "String"),
        ("clusterid", "Long"), ("jobclass", "String"), ("jobclasscode", "Long"),
        ("label", "String"), ("policyname", "String"), ("sltname", "String"),
        ("backupdate", "Date"), ("consistencydate", "Date"), ("expiration", "Date"),
        ("modifydate", "Date"), ("ismounted", "Boolean"), ("characteristic", "String")]),
    "jobstatus": ("job", [
        ("id", "Long"), ("jobname", "String"), ("jobclass", "String"), ("status", "String"),
        ("appid", "Long"), ("appname", "String"), ("hostname", "String"),
        ("backupid", "Long"), ("queuedate", "Date"), ("startdate", "Date"),
        ("enddate", "Date"), ("progress", "Long")]),
    "diskpool": ("disk pool", [("id", "Long"), ("name", "String"), ("pooltype", "String"),
                               ("clusterid", "Long"), ("capacity_mb", "Long"),
                               ("free_mb", "Long"), ("usage_mb", "Long")]),
    "slt": ("template", [("id", "Long"), ("name", "String"), ("description", "String"),
                         ("managedbyagm", "Boolean")]),
    "slp": ("profile", [("id", "Long"), ("name", "String"), ("clusterid", "Long"),
                        ("performancepool", "String"), ("createdate", "Date")]),
    "sla": ("SLA", [("id", "Long"), ("appid", "Long"), ("sltid", "Long"), ("slpid", "Long"),
                    ("scheduleoff", "Boolean"), ("modifydate", "Date")]),
    "consistencygroup": ("consistency group", [
        ("id", "Long"), ("groupname", "String"), ("name", "String"), ("hostid", "Long"),
        ("clusterid", "Long"), ("modifydate", "Date")]),
    "localaudit": ("audit record", [
        ("id", "Long"), ("issuedate", "Date"), ("username", "String"), ("command", "String"),
        ("status", "Long"), ("ipaddress", "String")]),
}
ID_NAMES = {"cluster": "cluster_id", "host": "host_id", "application": "application_id",
            "backup": "backup_id", "jobstatus": "job_id", "diskpool": "diskpool_id",
            "slt": "slt_id", "slp": "slp_id", "sla": "sla_id",
            "consistencygroup": "consistencygroup_id", "localaudit": "localaudit_id"}
# PUT /<kind>/{id}: the attributes each kind lets a PUT change (the reference's update rule:
# an absent or null attribute keeps its value), with their types; every other
# attribute of the body is refused
EDITABLE = {
    "host": [("name", "String"), ("hostname", "String"), ("friendlypath", "String"),
             ("description", "String"), ("ipaddress", "String")],
    "application": [("description", "String"), ("friendlytype", "String"),
                    ("pathname", "String")],
    "slt": [("name", "String"), ("description", "String")],
    "slp": [("name", "String"), ("description", "String"), ("performancepool", "String")],
}
# the objects that refer to an edited one: (kind, reference attribute, its fields)
DEPENDANTS = {"host": [("application", "host", ("hostname", "name")),
                       ("consistencygroup", "host", ("hostname",))],
              "slt": [("sla", "slt", ("name",))],
              "slp": [("sla", "slp", ("name",))]}
AUDIT_KEPT = 10000      # localaudit records kept (the oldest go first)
SIM_USER = "dsfs-refserver"   # the username of records made by POST /_sim/events
ACTIONS = {("application", "backup"): "snapshot", ("backup", "mount"): "mount",
           ("backup", "unmount"): "unmount", ("backup", "restore"): "restore",
           ("backup", "expire"): "expiration", ("backup", "clone"): "clone"}
JOB_STEPS = {"snapshot": ("Quiescing the application", "Capturing the snapshot",
                          "Cataloguing the image"),
             "mount": ("Presenting the image", "Mapping to the host", "Bringing disks online"),
             "unmount": ("Taking disks offline", "Unmapping from the host", "Releasing"),
             "restore": ("Preparing the target", "Copying blocks", "Finishing the restore"),
             "expiration": ("Checking dependants", "Releasing storage", "Removing the image"),
             "clone": ("Creating the clone", "Copying blocks", "Registering the clone")}
JOBCLASS_CODE = {"snapshot": 1, "mount": 5, "unmount": 6, "restore": 3, "expiration": 8,
                 "clone": 4}

APPTYPES = [  # apptype, friendlytype, appclass
    ("SqlServerWriter", "SQL Server database", "SQLServer"),
    ("FileSystem", "File system", "FileSystem"),
    ("VMBackup", "VMware VM", "VMware"),
    ("Oracle", "Oracle database", "Oracle"),
]
APP_NAMES = ["orders", "payroll", "crm", "wiki", "mail", "erp", "logs", "home", "etl", "web"]
TEMPLATES = [("gold-daily", "Snapshots every 4 hours, kept 7 days", ("snap-4h", 7)),
             ("silver-daily", "One snapshot a day, kept 14 days", ("snap-daily", 14)),
             ("bronze-weekly", "One snapshot a week, kept 8 weeks", ("snap-weekly", 56))]
SITE_ROLES = ["prod", "dr", "dev", "test"]


class BRec:
    """One object: its public JSON (pub), private state (x), cached JSON."""
    __slots__ = ("id", "pub", "x", "_json")

    def __init__(self, pub, x=None):
        self.id = pub["id"]
        self.pub = pub
        self.x = x or {}
        self._json = None

    def json(self):
        if self._json is None:
            self._json = dumps(self.pub)
        return self._json

    def touch(self):
        self._json = None


class Job(Task):
    """A job (JobRest): refcore's clock-driven Task in the API's vocabulary."""

    def __init__(self, *args, number, jobclass, app, backup, host_name, label, policy):
        super().__init__(*args)
        self.number = number
        self.jobclass = jobclass
        self.app = app
        self.backup = backup
        self.host_name = host_name
        self.label = label
        self.policy = policy
        self.bfinal = None

    def jrender(self, now):
        if self.bfinal is not None:
            return self.bfinal
        d = self.duration
        el = now - self.created
        done = self.state is not None
        started = self.created + 0.1 * d
        if done:
            status, progress = "succeeded" if self.state == "SUCCEEDED" else "failed", 100
        elif el < 0.1 * d:
            status, progress = "queued", 0
        else:
            status = "running"
            progress = max(1, min(99, int(100 * (el - 0.1 * d) / (0.9 * d)))) if d else 99
        msg = {"queued": "Job queued", "running": "Job is running",
               "succeeded": "Job succeeded"}.get(status)
        if status == "running":
            for frac, step in zip((0.3, 0.55, 0.8), self.steps):
                if el >= frac * d:
                    msg = step
        if status == "failed":
            msg = "Job failed: %s" % self.error
        a = self.app.pub
        obj = {"id": self.id, "href": href("jobstatus", self.id),
               "jobname": "Job_%07d" % self.number, "jobclass": self.jobclass,
               "jobclasscode": JOBCLASS_CODE[self.jobclass], "status": status,
               "progress": progress, "appid": a["id"], "appname": a["appname"],
               "apptype": a["apptype"], "hostname": self.host_name,
               "backupid": self.backup.id if self.backup is not None else None,
               "sourceimage": self.backup.pub["backupname"] if self.backup else None,
               "label": self.label, "policyname": self.policy,
               "queuedate": us(self.created),
               "startdate": us(started) if status != "queued" else None,
               "enddate": us(self.end) if done else None,
               "duration": int(round((min(now, self.end) - self.created) * US))
               if status != "queued" else 0,
               "errorcode": 0 if status != "failed" else 10052,
               "message": msg, "displayname": self.display}
        if done:
            self.bfinal = obj
        return obj


def us(t):
    return int(round(t * US))


def href(kind, rid):
    return "%s/%s/%s" % (BDR_BASE, kind, rid)


def ref(rec, *fields):
    out = {"id": rec.id, "href": rec.pub["href"]}
    for f in fields:
        out[f] = rec.pub[f]
    return out


class Estate:
    """Appliances, hosts, applications, backups, pools, templates, profiles,
    SLAs, consistency groups and jobs; ids are numbers (as strings), unique
    across kinds, given in build order from 4000."""

    def __init__(self, opts):
        self.opts = opts
        self.seed = opts.seed
        self.kinds = {k: collections.OrderedDict() for k in KINDS}
        self.seq = 4000
        self.job_seq = 0
        self.jobs = []
        self.pending = []
        self.policies = {}      # policy id -> (slt rec, policy dict)
        self.audit_us = 0       # issuedate of the newest localaudit record
        self.seeded = []        # (time, command) of the localaudit records build() makes
        self.build(opts)
        self.build_audit(opts)

    def new_id(self):
        self.seq += 1
        return str(self.seq)

    def add(self, kind, pub, **x):
        pub = dict(pub)
        rid = pub.get("id") or self.new_id()
        pub["id"] = rid
        pub["href"] = href(kind, rid)
        rec = BRec(dict([("id", rid), ("href", pub["href"])] + list(pub.items())), x)
        self.kinds[kind][rid] = rec
        return rec

    def build(self, opts):
        seed = self.seed
        t0 = BASE_EPOCH
        hostile = opts.hostile_names
        for k, (name, desc, (pname, days)) in enumerate(TEMPLATES):
            slt = self.add("slt", {"name": name, "description": desc, "managedbyagm": True,
                                   "override": "true", "sourcename": name, "policies": []})
            pol = {"id": self.new_id(), "name": pname, "op": "snap", "priority": "medium",
                   "retention": str(days), "retentionm": "days", "starttime": "79200",
                   "endtime": "21600", "iscontinuous": False}
            pol["href"] = "%s/policy/%s" % (slt.pub["href"], pol["id"])
            slt.pub["policies"].append(pol)
            self.policies[pol["id"]] = (slt, pol)
        if hostile:
            for k, name in enumerate(HOSTILE_NAMES):
                self.add("slt", {"name": TEMPLATES[0][0] if name is None else name,
                                 "description": "", "managedbyagm": True, "override": "true",
                                 "sourcename": "", "policies": []})
        slts = list(self.kinds["slt"].values())
        nhost = opts.hosts
        for ci in range(opts.servers):
            h = mix(seed, 77, ci)
            cname = "bdr-%s-%d" % (SITE_ROLES[ci % len(SITE_ROLES)], ci)
            cl = self.add("cluster", {
                "name": cname, "clusterid": "14%08d" % (h % 100000000),
                "ipaddress": "192.0.2.%d" % (31 + ci % 200), "type": "Sky",
                "version": "11.0.4.%d" % (100 + h % 50), "timezone": "UTC",
                "syncdate": us(t0 + 500 * 86400 + ci), "supportstatus": "true",
                "protocol": 2})
            pools = []
            for pi, (pname, ptype) in enumerate([("perf-pool-%d" % ci, "perf"),
                                                 ("onvault-%d" % ci, "vault")]):
                cap = (20 + mix(seed, 78, ci, pi) % 80) * 1024 * 1024
                usage = cap * (20 + mix(seed, 79, ci, pi) % 60) // 100
                pools.append(self.add("diskpool", {
                    "name": pname, "pooltype": ptype, "clusterid": cl.id,
                    "cluster": ref(cl, "name"), "capacity_mb": cap, "free_mb": cap - usage,
                    "usage_mb": usage, "warnpct": 80, "safepct": 90,
                    "modifydate": us(t0 + 400 * 86400 + pi)}))
            slp = self.add("slp", {
                "name": "profile-%s" % cname, "description": "Local snapshots on %s" % cname,
                "clusterid": cl.id, "cluster": ref(cl, "name"),
                "performancepool": pools[0].pub["name"], "localnode": cname,
                "createdate": us(t0 + 300 * 86400 + ci), "modifydate": us(t0 + 300 * 86400)})
            self.seeded.append((t0 + 300 * 86400 + ci, "POST /slp"))
            if hostile and ci == 0:
                for name in HOSTILE_NAMES:
                    self.add("diskpool", {"name": pools[0].pub["name"] if name is None else name,
                                          "pooltype": "perf", "clusterid": cl.id,
                                          "cluster": ref(cl, "name"), "capacity_mb": 1024,
                                          "free_mb": 1024, "usage_mb": 0, "warnpct": 80,
                                          "safepct": 90, "modifydate": us(t0)})
                    self.add("slp", {"name": slp.pub["name"] if name is None else name,
                                     "description": "", "clusterid": cl.id,
                                     "cluster": ref(cl, "name"),
                                     "performancepool": pools[0].pub["name"],
                                     "localnode": cname, "createdate": us(t0),
                                     "modifydate": us(t0)})
            hosts = []
            for k in range(1, nhost + 1):
                n = ci * nhost + k
                role = HOST_ROLES[(n - 1) % len(HOST_ROLES)]
                hosts.append(self.add_host(cl, "%s-%02d" % (role, n), role,
                                           mix(seed, 80, n), t0 + n * 3600))
            if hostile and ci == 0:
                first = hosts[0].pub["hostname"] if hosts else "dup"
                for k, name in enumerate(HOSTILE_NAMES):
                    self.add_host(cl, first if name is None else name, "app",
                                  mix(seed, 81, k), t0)
            apps = []
            for i in range(1, opts.volumes + 1):
                if not hosts:
                    break
                host = hosts[(i - 1) % len(hosts)]
                apps.append(self.build_app(cl, host, slts, slp, i, "%s-%s-%02d" % (
                    APP_NAMES[(i - 1) % len(APP_NAMES)], SITE_ROLES[ci % len(SITE_ROLES)], i),
                    opts.snapshots, hostile and ci == 0 and i == 1))
            if ci == 0 and hosts:
                # every job of this application fails: dsfs's error paths
                self.build_app(cl, hosts[-1], slts, slp, 899, "fail-app", opts.snapshots,
                               False)
            if hostile and ci == 0 and hosts:
                first = apps[0].pub["appname"] if apps else "dup"
                for k, name in enumerate(HOSTILE_NAMES):
                    self.build_app(cl, hosts[0], slts, slp, 900 + k,
                                   first if name is None else name, 1, False)
            if len(apps) >= 2 and apps[0].pub["hostid"] == hosts[0].id:
                members = [a for a in apps if a.pub["hostid"] == hosts[0].id][:2]
                self.add("consistencygroup", {
                    "groupname": "cg-%s" % hosts[0].pub["hostname"],
                    "name": "cg-%s" % hosts[0].pub["hostname"],
                    "description": "Consistency group of %s" % ", ".join(
                        a.pub["appname"] for a in members),
                    "hostid": hosts[0].id, "host": ref(hosts[0], "hostname"),
                    "clusterid": cl.id, "cluster": ref(cl, "name"),
                    "membercount": len(members),
                    "members": [ref(a, "appname") for a in members],
                    "modifydate": us(t0 + 450 * 86400)})

    def build_audit(self, opts):
        """A few localaudit records from before the server started (deterministic)."""
        t0 = BASE_EPOCH
        seeded = [(t0 + 100 * 86400 + k * 600, "POST /slt") for k in range(len(TEMPLATES))]
        seeded += self.seeded
        sla = next(iter(self.kinds["sla"].values()), None)
        if sla is not None:
            seeded.append((sla.pub["modifydate"] // US, "POST /sla"))
        host = next(iter(self.kinds["host"].values()), None)
        if host is not None:
            seeded.append((t0 + 450 * 86400, "PUT /host/%s" % host.id))
        seeded.sort()
        for k, (t, command) in enumerate(seeded):
            self.add_audit(us(t) + mix(self.seed, 83, k) % US, opts.user, command,
                           "192.0.2.%d" % (100 + mix(self.seed, 84, k) % 50), None)

    def add_audit(self, t_us, username, command, ip, session, same=False):
        """Append a localaudit record; issuedate grows strictly (1 µs after the last at least),
        or with same, is the last one's (a burst stamped with one time)."""
        t_us = self.audit_us if same and self.audit_us else max(int(t_us), self.audit_us + 1)
        self.audit_us = t_us
        recs = self.kinds["localaudit"]
        rec = self.add("localaudit", {"issuedate": t_us, "username": username,
                                      "command": command, "status": 0, "ipaddress": ip,
                                      "sessionid": session})
        while len(recs) > AUDIT_KEPT:
            recs.popitem(last=False)
        return rec

    def add_host(self, cl, name, role, h, ct):
        isvm = role in ("esx", "web", "app", "k8s-node")
        return self.add("host", {
            "name": name, "hostname": name, "uniquename": "%s.example.com" % name,
            "hosttype": "vmware" if isvm else "generic",
            "ostype": "Linux" if role in ("web", "app", "k8s-node", "oracle") else "Win32",
            "ipaddress": "10.%d.%d.%d" % (1 + h % 200, (h >> 8) % 256, 1 + (h >> 16) % 250),
            "clusterid": cl.id, "cluster": ref(cl, "name"), "isvm": isvm,
            "friendlypath": "/%s/%s" % (cl.pub["name"], name), "description": "",
            "modifydate": us(ct), "syncdate": us(ct + 86400)})

    def build_app(self, cl, host, slts, slp, i, name, nbackups, hostile_backups):
        seed = self.seed
        h = mix(seed, 82, int(host.id), i)
        apptype, friendly, appclass = APPTYPES[h % len(APPTYPES)]
        protected = i % 5 != 0
        t0 = BASE_EPOCH
        app = self.add("application", {
            "appname": name, "apptype": apptype, "friendlytype": friendly,
            "appclass": appclass, "description": "", "pathname": "/data/%s" % name,
            "hostid": host.id, "hostname": host.pub["hostname"],
            "host": ref(host, "hostname", "name"), "clusterid": cl.id,
            "cluster": ref(cl, "name"), "isprotected": protected, "protectable": "FULLY",
            "slaid": None, "sla": None, "lastrestoredate": None,
            "modifydate": us(t0 + 200 * 86400 + i * 60)}, size=SIZES_GIB[h % len(SIZES_GIB)])
        slt = slts[h % min(3, len(slts))]
        if protected:
            sla = self.add("sla", {
                "appid": app.id, "application": ref(app, "appname"), "sltid": slt.id,
                "slt": ref(slt, "name"), "slpid": slp.id, "slp": ref(slp, "name"),
                "scheduleoff": False, "expirationoff": False, "dedupasyncoff": False,
                "modifydate": us(t0 + 250 * 86400 + i)})
            app.pub["slaid"] = sla.id
            app.pub["sla"] = {"id": sla.id, "href": sla.pub["href"]}
        app.x["slt"] = slt
        app.x["slp"] = slp
        for j in range(1, nbackups + 1):
            bt = t0 + 480 * 86400 + j * 86400 + (h % 3600)
            self.add_backup(app, "Image_%07d" % (1000 * (int(app.id) % 10000) + j), "", bt,
                            slt.pub["policies"][0]["name"] if slt.pub["policies"] else "")
        if hostile_backups:
            first = "Image_%07d" % (1000 * (int(app.id) % 10000) + 1)
            for k, bname in enumerate(HOSTILE_NAMES):
                self.add_backup(app, first if bname is None else bname,
                                "" if bname is None else bname, t0 + 490 * 86400 + k, "")
        return app

    def add_backup(self, app, name, label, t, policy):
        a = app.pub
        slt, slp = app.x["slt"], app.x["slp"]
        return self.add("backup", {
            "backupname": name, "appid": app.id, "appname": a["appname"],
            "apptype": a["apptype"], "hostid": a["hostid"], "hostname": a["hostname"],
            "clusterid": a["clusterid"], "jobclass": "snapshot", "jobclasscode": 1,
            "label": label, "policyname": policy, "sltname": slt.pub["name"],
            "slpname": slp.pub["name"], "status": "succeeded", "characteristic": "PRIMARY",
            "backupdate": us(t), "consistencydate": us(t - 30), "modifydate": us(t),
            "expiration": us(t + 14 * 86400), "ismounted": False, "mountedhost": None,
            "virtualsize": str(app.x["size"] * GIB), "restorecount": 0})


# --------------------------------------------------------------------------
# filter and sort (seed section 5)

def parse_filters(texts, fields):
    """A predicate from the filter= values: AND across attributes, OR across
    exact matches on one attribute."""
    exact = collections.defaultdict(list)
    other = []
    for text in texts:
        attr, sep, rest = text.partition(":")
        if not sep:
            raise ApiError(400, "filter %r: expected <attribute>:<operator><value>" % text)
        ftype = fields.get(attr)
        if ftype is None:
            raise ApiError(400, "filter %r: %r is not a filterable field (filterable: %s)"
                           % (text, attr, ", ".join(sorted(fields))))
        if rest.startswith("=="):
            op, val = "=", rest[2:]
        elif rest.startswith(">=") or rest.startswith("<="):
            op, val = rest[:2], rest[2:]
        elif rest.startswith("=|") and ftype == "String":
            op, val = "=|", rest[2:]
        elif rest.startswith("=b") and ftype == "Boolean":
            op, val = "=b", rest[2:]
        elif rest.startswith("="):
            op, val = "=", rest[1:]
        else:
            raise ApiError(400, "filter %r: unknown operator (=, =|, >=, <=, =b)" % text)
        if op in (">=", "<=") and ftype not in ("Long", "Date"):
            raise ApiError(400, "filter %r: %s applies to numbers and times only" % (text, op))
        if op == "=" and ftype == "Boolean":
            op = "=b"
        if ftype in ("Long", "Date") and op != "=|":
            try:
                val = int(val)
            except ValueError:
                raise ApiError(400, "filter %r: %r is not a number" % (text, val))
        if op == "=b":
            low = val.lower()
            if low not in ("true", "false", "1", "0"):
                raise ApiError(400, "filter %r: =b takes true or false" % text)
            val = low in ("true", "1")
        if op == "=":
            exact[attr].append(val)
        else:
            other.append((attr, op, val))

    def num(v):
        try:
            return int(v)
        except (TypeError, ValueError):
            return None

    def match(obj):
        for attr, vals in exact.items():
            v = obj.get(attr)
            if fields[attr] in ("Long", "Date"):
                v = num(v)
            if v not in vals:
                return False
        for attr, op, val in other:
            v = obj.get(attr)
            if op == "=|":
                if not isinstance(v, str) or val not in v:
                    return False
            elif op == "=b":
                if bool(v) != val:
                    return False
            else:
                v = num(v)
                if v is None or (v < val if op == ">=" else v > val):
                    return False
        return True
    return match


def parse_sort(text, fields):
    keys = []
    for part in text.split(","):
        attr, _, order = part.strip().partition(":")
        order = order.strip().lower() or "asc"
        if attr not in fields:
            raise ApiError(400, "sort %r: %r is not a sortable field" % (text, attr))
        if order not in ("asc", "desc"):
            raise ApiError(400, "sort %r: order must be asc or desc" % text)
        keys.append((attr, order == "desc", fields[attr] in ("Long", "Date")))
    return keys


def sort_key(v, numeric):
    if v is None:
        return (0, 0)
    if numeric:
        try:
            return (1, int(v))
        except (TypeError, ValueError):
            return (1, 0)
    return (1, str(v))


# --------------------------------------------------------------------------
# The dialect

class BRoute:
    __slots__ = ("template", "kind", "action", "allow")

    def __init__(self, template, kind, action, allow):
        self.template = template
        self.kind = kind
        self.action = action
        self.allow = allow


class BackupDR(Dialect):
    name = "backupdr"
    base = BDR_BASE
    api = "backupdr"

    def credentials(self, root):
        # the token this server always accepts: a key_file needs a key pair (--sa-public-key)
        return ["token=" + self.demo_token]
    session_ttl = 3600.0   # the seed: sessions end after one hour without calls
    token_ttl = 3600       # Google access tokens live an hour

    def __init__(self, sim, opts):
        super().__init__(sim, opts)
        self.user = opts.user
        self.password = opts.password
        self.demo_token = opts.bearer_token
        self.sa_key = None
        if opts.sa_public_key:
            with open(opts.sa_public_key, encoding="utf-8") as f:
                self.sa_key = rsa_public_key(f.read())
        self.est = Estate(opts)
        self.tokens = {}      # access token -> [principal, expiry]
        self.sessions = {}    # session id -> {"expiry", "principal", "bearer", "user", ...}
        self.demo_principal = DEMO_PRINCIPAL   # the owner of a /_sim/tokens token
        sim.event("server started (backupdr) with %d appliance(s)"
                  % len(self.est.kinds["cluster"]))

    @staticmethod
    def add_options(p):
        g = p.add_argument_group(
            "backupdr dialect", "Also used: --user/--password(-file) for Basic logins, "
            "--session-ttl (default 3600 here), --token-ttl (lifetime of /token's tokens, "
            "default 3600 here), --servers (appliances), --hosts (hosts per appliance), "
            "--volumes (applications per appliance), --snapshots (backups per "
            "application).")
        add_secret_option(g, "bearer-token", "TOKEN", "dsfs-demo-token",
                          "a bearer token POST /actifio/session always accepts", "that token")
        g.add_argument("--sa-public-key", default=None, metavar="FILE",
                       help="check the RS256 signature of the JWTs POST /token receives "
                       "with this key: PEM public key, certificate or private key, or a "
                       "service-account JSON key file (without it, signatures are not "
                       "checked)")
        g.add_argument("--sa-email", default=None, metavar="EMAIL",
                       help="the service account whose JWTs POST /token accepts (iss); "
                       "default: any, or client_email of a JSON key file")

    @staticmethod
    def check_options(p, opts):
        if opts.sa_public_key:
            try:
                with open(opts.sa_public_key, encoding="utf-8") as f:
                    text = f.read()
                rsa_public_key(text)
            except (OSError, ValueError, KeyError, IndexError) as e:
                p.error("--sa-public-key %s: not an RSA key (%s)" % (opts.sa_public_key, e))
            if opts.sa_email is None and text.strip().startswith("{"):
                opts.sa_email = json.loads(text).get("client_email")

    def error_body(self, status, message):
        return dumps({"err_code": status, "err_message": message})

    # -- routing
    def route(self, method, path, qs, headers, body):
        segs = split_path(path)
        route = None
        if path == TOKEN_PATH:
            route = BRoute(TOKEN_PATH, None, "token", "POST")
        elif segs and segs[0] == BDR_BASE[1:]:
            rest = segs[1:]
            if rest == ["session"]:
                route = BRoute(BDR_BASE + "/session", None, "login", "POST")
            elif rest == ["session", "current"]:
                route = BRoute(BDR_BASE + "/session/current", None, "session", "DELETE, GET")
            elif len(rest) == 1 and rest[0] in KINDS:
                route = BRoute(BDR_BASE + "/" + rest[0], rest[0], "list",
                               "GET, HEAD, OPTIONS")
            elif len(rest) == 2 and rest[0] in KINDS and rest[0] != "jobstatus":
                # the published API (V11.0.4) reads jobs only through the list
                # (GET /jobstatus?filter=id:=N): /jobstatus/{id} is 404, as on the console
                route = BRoute("%s/%s/{%s}" % (BDR_BASE, rest[0], ID_NAMES[rest[0]]),
                               rest[0], "one", "GET, PUT" if rest[0] in EDITABLE else "GET")
            elif len(rest) == 3 and (rest[0], rest[2]) in ACTIONS:
                route = BRoute("%s/%s/{%s}/%s" % (BDR_BASE, rest[0], ID_NAMES[rest[0]],
                                                  rest[2]), rest[0], rest[2], "POST")
        self.count((method, route.template if route else "<unknown>"))
        query = {}
        for k, v in parse_qsl(qs, keep_blank_values=True) if qs else ():
            if k == "filter":
                query.setdefault("filter", []).append(v)
            else:
                query[k] = v
        entry = self.record(method, path, qs, headers, body, route.template if route else None)
        return Req(method, path, path, route, segs, query, None, entry)

    def keeps(self, method, path):
        """/_sim/requests keeps no read, nor a /token request (it carries the assertion)."""
        return method not in ("GET", "HEAD", "OPTIONS") and path != TOKEN_PATH

    # -- one request
    def handle(self, req, headers, body, host):
        route = allowed_route(req, "no such resource: {path}", "{method} is not allowed here")
        method = req.method
        if route.action == "token":
            return self.token_endpoint(headers, body, host)
        with self.sim.lock:
            now = time.time()
            if route.action == "login":
                return self.login(headers, now)
            sid, sess = self.check_session(headers, now)
            est = self.est
            if est.pending and est.pending[0][0] <= now:
                self.sim.settle(est, now)
            if route.action == "session":
                if method == "DELETE":
                    del self.sessions[sid]
                    self.sim.event("logout user=%s" % sess["user"])
                    self.audit(req, sess, now)
                    return no_content()
                return ok_json(self.session_rest(sid, sess))
            if route.action == "list":
                return self.listing(method, route.kind, req.query, now)
            if route.action == "one" and method == "GET":
                return self.one(route.kind, req.segs[2], now)
            if body and media_type(headers) != "application/json":
                raise ApiError(415, "request bodies must be application/json (got %r)"
                               % media_type(headers))
            b = json_object(body)
            if route.action == "one":
                out = self.update(route.kind, req.segs[2], b, now)
            else:
                out = self.action(route.kind, route.action, req.segs[2], b, sess, now)
            self.audit(req, sess, now)
            return out

    def audit(self, req, sess, now):
        """The localaudit record of an accepted change (lock held)."""
        self.est.add_audit(us(now), sess["user"], "%s %s" % (
            req.method, req.path[len(BDR_BASE):]), req.peer, sess["id"])

    # -- sessions and tokens
    def bearer(self, headers, now):
        """The principal of a valid Authorization: Bearer token, None without one."""
        auth = headers.get("authorization", "")
        if auth[:7].lower() != "bearer ":
            return None
        tok = auth[7:].strip()
        if self.demo_token and same_secret(tok, self.demo_token):
            return DEMO_PRINCIPAL
        t = self.tokens.get(tok)
        if t is None or t[1] < now:
            self.tokens.pop(tok, None)
            raise ApiError(401, "the bearer token is unknown or has expired",
                           [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        return t[0]

    def login(self, headers, now):
        basic = [("WWW-Authenticate", 'Basic realm="actifio"')]
        creds = basic_credentials(headers, basic)
        if creds is not None:
            check_user(self.sim, *creds, self.user, self.password, basic)
            principal, bearer = creds[0], False
        elif headers.get("authorization", "")[:7].lower() == "bearer ":
            principal, bearer = self.bearer(headers, now), True
        else:
            raise ApiError(401, "log in with Authorization: Bearer <token> or Basic", basic)
        for old in [k for k, s in self.sessions.items() if s["expiry"] < now]:
            del self.sessions[old]
        sid = secrets.token_hex(16)
        sess = {"expiry": now + self.opts.session_ttl, "principal": principal,
                "bearer": bearer, "user": principal, "created": now,
                "id": str(4000000 + len(self.sessions) + int(now) % 100000)}
        self.sessions[sid] = sess
        self.sim.event("login user=%s (%s)" % (principal, "bearer" if bearer else "basic"))
        return ok_json(self.session_rest(sid, sess))

    def session_rest(self, sid, sess):
        return {"id": sess["id"], "href": BDR_BASE + "/session/" + sess["id"],
                "session_id": sid, "user": {"name": sess["user"], "id": "1"},
                "rights": [{"id": "System Manage"}, {"id": "Application Manage"},
                           {"id": "Backup Manage"}, {"id": "Mount Manage"},
                           {"id": "Restore Manage"}],
                "timezone": "UTC", "hasproxy": False,
                "expiry": us(sess["expiry"]), "createdate": us(sess["created"])}

    def check_session(self, headers, now):
        challenge = [("WWW-Authenticate", 'Actifio realm="actifio"')]
        h = headers.get("backupdr-management-session", "")
        if h[:8].lower() != "actifio " or not h[8:].strip():
            raise ApiError(401, "missing session: send 'backupdr-management-session: "
                           "Actifio <session_id>'", challenge)
        sid = h[8:].strip()
        sess = self.sessions.get(sid)
        if sess is None or sess["expiry"] < now:
            self.sessions.pop(sid, None)
            raise ApiError(401, "the session is unknown or has expired", challenge)
        if sess["bearer"]:
            principal = self.bearer(headers, now)
            if principal is None:
                raise ApiError(401, "this session needs 'Authorization: Bearer <token>' on "
                               "every call", challenge)
            if principal != sess["principal"]:
                raise ApiError(401, "the bearer token is not the session's user's", challenge)
        if headers.get("actifio-no-session-refresh", "").strip().lower() != "true":
            sess["expiry"] = now + self.opts.session_ttl
        return sid, sess

    def issue_token(self, principal, ttl):
        now = time.time()
        for t in [t for t, v in self.tokens.items() if v[1] < now]:
            del self.tokens[t]
        tok = "ya29.refserver-" + secrets.token_urlsafe(40)
        self.tokens[tok] = [principal, now + ttl]
        return {"access_token": tok, "expires_in": int(ttl), "token_type": "Bearer"}

    def token_endpoint(self, headers, body, host):
        form = token_form(headers, body, JWT_BEARER)
        parts = form.get("assertion", "").split(".")
        try:
            if len(parts) != 3:
                raise ValueError
            head = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
            if not isinstance(head, dict) or not isinstance(claims, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise oauth_error(400, "invalid_grant", "the assertion is not a JWT")
        if head.get("alg") != "RS256":
            raise oauth_error(400, "invalid_grant", "the JWT must be signed with RS256")
        if self.sa_key is not None and not rs256_verify(
                self.sa_key, (parts[0] + "." + parts[1]).encode("ascii"), sig):
            self.sim.event("token refused: bad JWT signature")
            raise oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        iss, aud, scope = claims.get("iss"), claims.get("aud"), claims.get("scope")
        iat, exp = claims.get("iat"), claims.get("exp")
        own = "%s://%s%s" % (self.sim.scheme, host or self.sim.default_host, TOKEN_PATH)
        if not isinstance(iss, str) or not iss:
            raise oauth_error(400, "invalid_grant", "the JWT has no iss (the service "
                              "account's email)")
        if self.opts.sa_email and iss != self.opts.sa_email:
            raise oauth_error(400, "invalid_grant", "unknown service account %r" % iss)
        if aud not in (GOOGLE_TOKEN_AUD, own):
            raise oauth_error(400, "invalid_grant", "aud must be %s (or %s)"
                              % (GOOGLE_TOKEN_AUD, own))
        if not isinstance(scope, str) or CLOUD_PLATFORM not in scope.split():
            raise oauth_error(400, "invalid_scope", "scope must include %s" % CLOUD_PLATFORM)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
            raise oauth_error(400, "invalid_grant", "iat and exp must be integers")
        if iat > now + 300 or exp <= now or exp - iat > 3600:
            raise oauth_error(400, "invalid_grant", "Invalid JWT: Token must be a "
                              "short-lived token (60 minutes) and in a reasonable timeframe. "
                              "Check your iat and exp values in the JWT claim.")
        with self.sim.lock:
            out = self.issue_token(iss, self.opts.token_ttl)
        self.sim.event("token issued to %s" % iss)
        return oauth_token(out)

    # -- lists and objects
    def objects(self, kind, now):
        if kind == "jobstatus":
            return [j.jrender(now) for j in reversed(self.est.jobs)]
        return [r.pub for r in self.est.kinds[kind].values()]

    def listing(self, method, kind, query, now):
        fields = dict(KINDS[kind][1])
        if method == "OPTIONS":
            return ok_json({"GET(list)": {
                "filterable": True, "sortable": True, "pageable": True,
                "sortablefields": [f for f, _ in KINDS[kind][1]],
                "filterablefields": [{"field": f, "type": t} for f, t in KINDS[kind][1]]}})
        flt = query.get("filter") or []
        objs = self.objects(kind, now)
        if flt:
            pred = parse_filters(flt, fields)
            objs = [o for o in objs if pred(o)]
        if method == "HEAD":
            return 204, b"", [("Actifio-Count", str(len(objs)))]
        srt = query.get("sort")
        if srt:
            for attr, desc, numeric in reversed(parse_sort(srt, fields)):
                objs.sort(key=lambda o, a=attr, n=numeric: sort_key(o.get(a), n), reverse=desc)
        vals = {}
        for name, low in (("offset", 0), ("limit", 1)):
            v = query.get(name)
            if v is None:
                continue
            try:
                vals[name] = int(v)
            except ValueError:
                raise ApiError(400, "%s must be an integer, got %r" % (name, v))
            if vals[name] < low:
                raise ApiError(400, "%s must be %d or more" % (name, low))
        offset = vals.get("offset", 0)
        limit = min(vals.get("limit", 1000), self.sim.page_max)
        page = objs[offset:offset + limit]
        if kind == "jobstatus":
            parts = [dumps(o) for o in page]
        else:
            recs = self.est.kinds[kind]
            parts = [recs[o["id"]].json() for o in page]
        return 200, b'{"items":[' + b",".join(parts) + b'],"count":%d}' % len(parts), None

    def one(self, kind, rid, now):
        rec = self.est.kinds[kind].get(rid)
        if rec is None:
            raise ApiError(404, "%s '%s' not found" % (KINDS[kind][0], rid))
        return 200, rec.json(), None

    # -- PUT: incremental updates
    def update(self, kind, rid, body, now):
        """PUT /<kind>/{id}: the EDITABLE attributes the body names (null: absent) take
        the body's values; answers the object as GET does."""
        est = self.est
        rec = est.kinds[kind].get(rid)
        if rec is None:
            raise ApiError(404, "%s '%s' not found" % (KINDS[kind][0], rid))
        types = dict(EDITABLE[kind])
        vals = {k: v for k, v in body.items() if v is not None}   # null is absent
        for attr in vals:
            if attr not in types:
                raise ApiError(400, "%r is not an attribute a PUT can change on a %s (%s; "
                               "editable: %s)" % (attr, KINDS[kind][0], "read-only"
                                                  if attr in rec.pub else "unknown",
                                                  ", ".join(types)))
        for attr, v in vals.items():
            if types[attr] == "String" and not isinstance(v, str):
                raise ApiError(400, "%s must be a string" % attr)
        for attr in ("name", "hostname"):
            if attr in vals and not vals[attr].strip():
                raise ApiError(400, "%s must not be empty" % attr)
        if "ipaddress" in vals:
            try:
                ipaddress.ip_address(vals["ipaddress"])
            except ValueError:
                raise ApiError(400, "ipaddress must be an IPv4 or IPv6 address, got %r"
                               % vals["ipaddress"])
        if "performancepool" in vals:
            pool = next((p for p in est.kinds["diskpool"].values()
                         if p.pub["name"] == vals["performancepool"]
                         and p.pub["clusterid"] == rec.pub["clusterid"]
                         and p.pub["pooltype"] == "perf"), None)
            if pool is None:
                raise ApiError(404, "performancepool: no perf disk pool named %r on appliance "
                               "'%s'" % (vals["performancepool"], rec.pub["clusterid"]))
        name = vals.get("name")
        if name is not None and name != rec.pub["name"]:
            # names are unique among templates, among profiles, among an appliance's hosts
            same = [o for o in est.kinds[kind].values() if o.pub["name"] == name and
                    o.id != rid and (kind != "host" or
                                     o.pub["clusterid"] == rec.pub["clusterid"])]
            if same:
                raise ApiError(409, "name: %s '%s' is already named %r" % (
                    KINDS[kind][0], same[0].id, name))
        changed = {k: v for k, v in vals.items() if rec.pub.get(k) != v}
        if changed:
            t = us(now)
            rec.pub.update(changed)
            if "modifydate" in rec.pub:
                rec.pub["modifydate"] = t
            rec.touch()
            self.propagate(kind, rec, t)
            self.sim.event("%s %s updated: %s" % (kind, rid, ", ".join(sorted(changed))))
        return 200, rec.json(), None

    def propagate(self, kind, rec, t):
        """Refresh the references to rec in the objects that name it now (not in
        backups and jobs, which record what was)."""
        est = self.est
        for other, attr, fields in DEPENDANTS.get(kind, ()):
            for o in est.kinds[other].values():
                if o.pub.get(attr + "id") != rec.id:
                    continue
                o.pub[attr] = ref(rec, *fields)
                if kind == "host" and other == "application":
                    o.pub["hostname"] = rec.pub["hostname"]
                if "modifydate" in o.pub:
                    o.pub["modifydate"] = t
                o.touch()

    # -- actions
    def action(self, kind, name, rid, body, sess, now):
        est = self.est
        rec = est.kinds[kind].get(rid)
        if rec is None:
            raise ApiError(404, "%s '%s' not found" % (KINDS[kind][0], rid))
        jobclass = ACTIONS[(kind, name)]
        label = body.get("label")
        if label is not None and not isinstance(label, str):
            raise ApiError(400, "label must be a string")
        if kind == "application":
            app, backup = rec, None
        else:
            backup = rec
            app = est.kinds["application"].get(backup.pub["appid"])
            if app is None:
                raise ApiError(409, "the application of backup '%s' is gone" % rid)
        policy = None
        host = est.kinds["host"].get(app.pub["hostid"])
        names = [app.pub["appname"], label or ""]
        if backup is not None:
            names += [backup.pub["backupname"], backup.pub["label"]]
        if name == "backup":
            pol = body.get("policy")
            if not isinstance(pol, dict) or pol.get("id") in (None, ""):
                raise ApiError(400, "policy is required: {\"policy\": {\"id\": ...}}")
            found = est.policies.get(str(pol["id"]))
            if found is None:
                raise ApiError(404, "policy '%s' not found" % pol["id"])
            policy = found[1]["name"]
            bt = body.get("backuptype")
            if bt is not None and not isinstance(bt, str):
                raise ApiError(400, "backuptype must be a string")
        elif name in ("mount", "clone"):
            hb = body.get("host")
            if name == "mount" or hb is not None:
                if not isinstance(hb, dict) or hb.get("id") in (None, ""):
                    raise ApiError(400, "host is required: {\"host\": {\"id\": ...}}")
                host = est.kinds["host"].get(str(hb["id"]))
                if host is None:
                    raise ApiError(404, "host '%s' not found" % hb["id"])
            if name == "clone":
                an = body.get("appname")
                if an is not None and not isinstance(an, str):
                    raise ApiError(400, "appname must be a string")
                names.append(an or "")
        elif name == "unmount":
            if not backup.pub["ismounted"]:
                raise ApiError(409, "backup '%s' is not mounted" % rid)
        elif name == "expire":
            if backup.pub["ismounted"]:
                raise ApiError(409, "backup '%s' is mounted: unmount it first" % rid)
        fail = None
        bad = next((n for n in names if n.startswith("fail-")), None)
        if bad is not None:
            fail = "%s failed on request: %r starts with fail-" % (jobclass, bad)
        effect = self.effect(name, app, backup, body, host, label, policy)
        est.job_seq += 1
        jid = est.new_id()
        display = "%s of %s" % (jobclass, app.pub["appname"])
        dur = 0.0 if self.opts.sync else self.opts.task_seconds
        job = Job(jid, display, now, dur, JOB_STEPS[jobclass], [],
                  effect, fail, [], number=est.job_seq, jobclass=jobclass, app=app,
                  backup=backup, host_name=host.pub["hostname"] if host else "",
                  label=label or "", policy=policy or "")
        est.jobs.append(job)
        self.sim.start_task(est, job)
        if dur == 0:
            self.sim.settle(est, now)
        return no_content()

    def effect(self, name, app, backup, body, host, label, policy):
        est = self.est

        def changed(rec, **kv):
            rec.pub.update(kv)
            rec.touch()

        def run():
            now = time.time()
            if name == "backup":
                n = sum(1 for b in est.kinds["backup"].values() if b.pub["appid"] == app.id)
                est.add_backup(app, "Image_%07d" % (1000 * (int(app.id) % 10000) + 500 + n),
                               label or "", now, policy)
            elif name == "mount":
                if backup.id not in est.kinds["backup"]:
                    raise TaskFailed("backup '%s' was expired" % backup.id)
                changed(backup, ismounted=True, mountedhost={
                    "id": host.id, "href": host.pub["href"], "hostname": host.pub["hostname"]},
                    modifydate=us(now))
            elif name == "unmount":
                changed(backup, ismounted=False, mountedhost=None, modifydate=us(now))
            elif name == "restore":
                changed(backup, restorecount=backup.pub["restorecount"] + 1,
                        modifydate=us(now))
                changed(app, lastrestoredate=us(now), modifydate=us(now))
            elif name == "expire":
                est.kinds["backup"].pop(backup.id, None)
            elif name == "clone":
                cl = est.kinds["cluster"][app.pub["clusterid"]]
                an = body.get("appname") or "%s-clone" % app.pub["appname"]
                est.build_app(cl, host, list(est.kinds["slt"].values()), app.x["slp"],
                              int(est.seq) % 1000, an, 0, False)
            self.sim.event("%s of %s done" % (name, app.pub["appname"]))
        return run

    # -- /_sim: the shared controls' hooks
    token_owner = ("principal", "demo_principal")
    event_field = "command"
    event_what = "localaudit record"

    def logins(self):
        return self.sessions

    @staticmethod
    def login_expiry(value):
        return value["expiry"]

    def add_sim_event(self, text, same):
        return self.est.add_audit(us(time.time()), SIM_USER, text, None, None, same=same).json()
