"""The dscc dialect of the reference server (--dialect dscc).

It serves the part of the HPE Data Services Cloud Console v1 API that dsfs
uses, with OAuth2 client-credentials tokens. The contract is the OpenAPI
spec itself (tests/server/spec): every route below is one of the spec's path
templates, request bodies are checked against the operation's schema with
openapi_check, and every object answered is the spec's example skeleton of
the response schema with the estate's values laid over it, so it carries
every property the schema lists. Tasks, faults, stats, the /_sim controls,
TLS and HTTP are the core's (refcore.py, refsim.py, reffaults.py,
refhttp.py). docs/refserver.md, "DSCC mode", describes it.
"""

import base64
import calendar
import collections
import functools
import json
import os
import random
import re
import secrets
import sys
import time
from urllib.parse import parse_qsl, unquote

from refcore import (
    BASE_EPOCH, HOSTILE_NAMES, HOST_ROLES, ApiError, Task, TaskFailed, add_secret_option,
    basic_credentials, dumps, error_body, iso, media_type, mix, oauth_error, oauth_token,
    ok_json, same_secret, split_path, token_form, volume_traits)
from refsim import Dialect, Req

DSCC_API = "/api/v1"
DSCC_TOKEN_PATH = "/oauth2/token"

DEVICE_TYPES = {
    1: {"family": "deviceType1", "model": "HPE Alletra 9060", "version": "9.5.3",
        "full": "9.5.3.12", "prefix": "alletra9k", "tier": "STORAGE_TIER_9000_NVME",
        "pools": ["SSD_r6", "SSD_r1", "FC_r6"], "idlen": 32},
    2: {"family": "deviceType2", "model": "HPE Alletra 6030", "version": "6.1.2.0",
        "full": "6.1.2.0-1045612-opt", "prefix": "alletra6k",
        "tier": "STORAGE_TIER_6000_NVME", "pools": ["default", "pool-ssd-01"], "idlen": 42},
}
SYS_ROLES = ["prod", "dev", "test", "dr"]
VSETS = [("vs-oracle-prod", "Oracle Database", 0, 3), ("vs-sql-prod", "SQL Server", 3, 5),
         ("vs-exchange", "Exchange", 5, 8)]
HOST_OS = {"esx": ("VMware ESXi", "VMware"), "sql": ("Windows Server", "WINDOWS_SERVER"),
           "web": ("Red Hat Enterprise Linux", "GENERIC_ALUA"),
           "app": ("Red Hat Enterprise Linux", "GENERIC_ALUA"),
           "k8s-node": ("Ubuntu Linux", "GENERIC_ALUA"),
           "backup": ("Windows Server", "WINDOWS_SERVER"),
           "oracle": ("Oracle Linux", "GENERIC_ALUA"),
           "exch": ("Windows Server", "WINDOWS_SERVER")}
MIB_PER_GIB = 1024
# kinds mixed into generated ids
K_SYS, K_POOL, K_VOL, K_SNAP, K_VSET, K_HOST, K_GROUP, K_INIT, K_ISSUE, K_CUST, K_NEW, \
    K_WWN, K_AUDIT = range(1, 14)
AUDIT_KEPT = 10000      # audit events kept (the oldest go first)
SEED_USER = "storage-admin@example.com"   # who made the seeded audit events


def hexid(n, *vals):
    """n deterministic lower-case hex digits from integers."""
    out = []
    k = 0
    while 16 * len(out) < n:
        out.append("%016x" % mix(*vals, k))
        k += 1
    return "".join(out)[:n]


def uuid_of(h):
    """A version-4-shaped UUID from 32 hex digits."""
    return "%s-%s-4%s-a%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:32])


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def iso_ms(ms):
    """ISO-8601 UTC time with milliseconds from epoch milliseconds (audit events)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def cal(t):
    """A device-type1 calendar object (epoch milliseconds and zone)."""
    return {"ms": int(t * 1000), "tz": "UTC"} if t is not None else {"ms": None, "tz": None}


class DRec:
    """One DSCC resource: its state (x) and its rendered JSON per schema."""
    __slots__ = ("id", "x", "cache")

    def __init__(self, rid, **x):
        self.id = rid
        self.x = x
        self.cache = {}


class DSystem:
    """One storage system (device-type1 or device-type2) and what it holds."""

    def __init__(self, est, idx, dt):
        info = DEVICE_TYPES[dt]
        h = mix(est.seed, K_SYS, idx)
        self.idx = idx
        self.dt = dt
        self.info = info
        if dt == 1:
            self.id = "7CE%03dP%03d" % (h % 1000, idx % 1000)
        else:
            self.id = hexid(42, est.seed, K_SYS, idx)
        self.name = "%s-%s-%d" % (info["prefix"], SYS_ROLES[idx % len(SYS_ROLES)], idx)
        self.wwn = "2FF7000%s" % hexid(9, est.seed, K_WWN, idx).upper()
        self.ct = BASE_EPOCH - 86400 * 400 + idx * 3600
        self.ip = "192.0.2.%d" % (21 + idx % 200)
        self.cache = {}
        self.x = {"gen": 1}
        self.pools = {}
        self.vols = {}
        self.vsets = {}
        self.busy = collections.Counter()
        self.next_vol = 1

    def pool_by_name(self, name):
        return next((p for p in self.pools.values() if p.x["name"] == name), None)

    def pool_used(self, pid):
        return sum(v.x["size"] for v in self.vols.values() if v.x["pool"] == pid)


class DsccEstate:
    """The fleet: storage systems, global hosts, host groups, initiators, issues, tasks."""

    def __init__(self, opts):
        self.seed = opts.seed
        self.customer = hexid(32, opts.seed, K_CUST)
        self.systems = {}
        self.hosts = {}
        self.groups = {}
        self.inits = {}
        self.issues = {}
        self.vol_index = {}    # volume id -> (system, rec)
        self.vset_index = {}   # volume set id -> (system, rec)
        self.tasks = []
        self.task_by_id = {}
        self.pending = []
        self.tokens = {}       # access token -> expiry (epoch)
        self.audit = []        # audit events, oldest first
        self.audit_seq = 0
        self.audit_ms = 0      # occurredAt of the newest event (epoch ms)
        self.gen = 0           # bumped on every change: rendered JSON is cached per gen
        self.seq = 0
        self.hostile = opts.hostile_names
        self.build(opts)

    # -- ids and changes
    def new_id(self, n):
        while True:
            self.seq += 1
            rid = hexid(n, self.seed, K_NEW, self.seq)
            if rid not in self.vol_index and rid not in self.hosts and rid not in self.groups:
                return rid

    def changed(self, *recs):
        self.gen += 1
        for r in recs:
            r.x["gen"] = r.x.get("gen", 1) + 1

    # -- the estate
    def build(self, opts):
        seed = self.seed
        dts = opts.device_types
        nsys = opts.servers
        t0 = BASE_EPOCH
        # hosts, their initiators and host groups are global in DSCC
        nhost = opts.hosts * nsys
        for k in range(1, nhost + 1):
            h = mix(seed, K_HOST, k)
            role = HOST_ROLES[(k - 1) % len(HOST_ROLES)]
            name = "%s-%02d" % (role, k)
            self.add_host(hexid(32, seed, K_HOST, k), name, t0 - 86400 * 10 + k * 3600, h,
                          role, user_created=False)
        hids = list(self.hosts)
        half = (len(hids) + 1) // 2
        for k, (gname, members) in enumerate([("hg-cluster-a", hids[:half]),
                                              ("hg-cluster-b", hids[half:]),
                                              ("hg-spare", [])], 1):
            self.add_group(hexid(32, seed, K_GROUP, k), gname, members,
                           t0 - 86400 * 5 + k, user_created=False)
        if self.hostile:
            first = self.hosts[hids[0]].x["name"] if hids else "dup"
            for k, hname in enumerate(HOSTILE_NAMES):
                self.add_host(hexid(32, seed, K_HOST, 1000 + k), first if hname is None
                              else hname, t0, mix(seed, 1000 + k), "app", user_created=True)
            for k, gname in enumerate(HOSTILE_NAMES):
                self.add_group(hexid(32, seed, K_GROUP, 1000 + k), "hg-cluster-a"
                               if gname is None else gname, [], t0, user_created=True)
        gids = list(self.groups)
        for i in range(nsys):
            s = self.build_system(i, dts[i % len(dts)], opts, gids[0] if gids else None)
            self.systems[s.id] = s
        self.build_issues()
        self.build_audit()

    def add_host(self, hid, name, ct, h, role, user_created=True, os_name=None,
                 with_initiator=True):
        fc = bool(h & 1)
        osn, persona = HOST_OS.get(role, ("Red Hat Enterprise Linux", "GENERIC_ALUA"))
        iid = hexid(32, self.seed, K_INIT, h & 0xFFFFFFFF, len(self.inits))
        if fc:
            addr = "10000090FA%06X" % (h >> 8 & 0xFFFFFF)
            iname = "%s-hba0" % name
        else:
            addr = "iqn.1998-01.com.vmware:%s-%08x" % (name[:24], h & 0xFFFFFFFF)
            iname = addr
        ip = "10.20.%d.%d" % ((h >> 16) % 250 + 1, (h >> 24) % 250 + 1)
        rec = DRec(hid, name=name, fqdn="%s.example.com" % name, ip=ip,
                   os=os_name or osn, persona=persona, protocol="FC" if fc else "iSCSI",
                   inits=[], groups=[], ct=ct, comment="", contact="", location="dc1",
                   model="ProLiant DL380 Gen10", subnet="255.255.255.0",
                   user_created=user_created, gen=1)
        self.hosts[hid] = rec
        if with_initiator:
            self.add_initiator(iid, iname, addr, rec.x["protocol"], hid, ip)
        return rec

    def add_initiator(self, iid, name, address, protocol, hid, ip=""):
        rec = DRec(iid, name=name, address=address, protocol=protocol, host=hid, ip=ip,
                   vendor="QLogic" if protocol == "FC" else "VMware",
                   hba="QLE2742" if protocol == "FC" else "iSCSI Software Adapter",
                   driver="10.02.08.01", firmware="9.08.02", speed=32000
                   if protocol == "FC" else 25000, gen=1)
        self.inits[iid] = rec
        if hid is not None:
            self.hosts[hid].x["inits"].append(iid)
        return rec

    def add_group(self, gid, name, members, ct, user_created=True, comment=""):
        rec = DRec(gid, name=name, hosts=list(members), ct=ct, comment=comment,
                   user_created=user_created, gen=1)
        self.groups[gid] = rec
        for hid in members:
            self.hosts[hid].x["groups"].append(gid)
        return rec

    def build_system(self, i, dt, opts, export_gid):
        seed = self.seed
        s = DSystem(self, i, dt)
        info = s.info
        idlen = info["idlen"]
        t0 = BASE_EPOCH
        for k, pname in enumerate(info["pools"], 1):
            s.pools[hexid(idlen, seed, K_POOL, i, k)] = DRec(
                hexid(idlen, seed, K_POOL, i, k), sys=s, k=k, name=pname, capacity=0,
                ct=s.ct + k * 60, gen=1)
        pids = list(s.pools)
        width = max(4, len(str(opts.volumes)))
        by_pool = collections.Counter()
        for v in range(1, opts.volumes + 1):
            h = mix(seed, K_VOL, i, v)
            cat, size, used, ct = volume_traits(h, t0, MIB_PER_GIB)
            pid = pids[(h >> 40) % len(pids)]
            by_pool[pid] += size
            vrec = self.add_volume(s, hexid(idlen, seed, K_VOL, i, v),
                                   "vol-%s-%0*d" % (cat, width, v), size, used, pid, ct,
                                   opts.snapshots, thin=v % 3 != 0, idx=v)
            if export_gid is not None and v % 4 == 1:
                vrec.x["exports"][export_gid] = v
        s.next_vol = opts.volumes + 1
        if self.hostile:
            first = next(iter(s.vols.values())).x["name"] if s.vols else "dup"
            for k, vname in enumerate(HOSTILE_NAMES):
                vrec = self.add_volume(s, hexid(idlen, seed, K_VOL, i, 1000 + k),
                                       first if vname is None else vname, 10 * MIB_PER_GIB,
                                       MIB_PER_GIB, pids[0], t0 + 3600, min(opts.snapshots, 2),
                                       thin=True, idx=s.next_vol)
                vrec.x["hostile"] = True
                s.next_vol += 1
                by_pool[pids[0]] += 10 * MIB_PER_GIB
        for pid, prec in s.pools.items():
            cap = max(by_pool[pid] * 3 // 2, 10 * 1024 * 1024)
            prec.x["capacity"] = cap - cap % 1024
        vids = list(s.vols)[:opts.volumes]
        for k, (vsname, app, a, b) in enumerate(VSETS, 1):
            members = vids[a:b]
            if not members:
                break
            vsid = hexid(idlen, seed, K_VSET, i, k)
            rec = DRec(vsid, sys=s, name=vsname, app=app, members=list(members),
                       ct=t0 - 86400 * 3 + k, gen=1)
            s.vsets[vsid] = rec
            self.vset_index[vsid] = (s, rec)
            for vid in members:
                s.vols[vid].x["vset"] = vsid
        return s

    def add_volume(self, s, vid, name, size, used, pid, ct, nsnaps, thin=True, idx=None,
                   parent=None, ro=False, comment=""):
        if idx is None:
            idx = s.next_vol
            s.next_vol += 1
        h = mix(self.seed, K_WWN, s.idx, idx)
        rec = DRec(vid, sys=s, idx=idx, name=name, size=size, used=used, pool=pid, ct=ct,
                   thin=thin, ro=ro, comment=comment, vset=None,
                   exports=collections.OrderedDict(), parent=parent, base_snap=None,
                   snaps=None, nsnaps=nsnaps, seq=0, hostile=False,
                   wwn="60002AC%025X" % (h & ((1 << 100) - 1)),
                   serial="%032x" % (mix(h, 1) << 64 | mix(h, 2)), gen=1,
                   # what PUT .../volumes/{id} edits (dt1: conv .. dr; dt2: online ..)
                   conv="CONVERSIONTYPE_THIN" if thin else None, warn_user=None,
                   warn_snap=None, dr=thin, dedupe=s.dt == 2, online=True, caching=True,
                   limit_iops=-1, limit_mbps=-1, limit=100, app_uuid=None, perfpolicy=None,
                   mtime=None)
        s.vols[vid] = rec
        self.vol_index[vid] = (s, rec)
        return rec

    def snaps(self, s, vrec):
        """The snapshots of a volume, generated on first use."""
        x = vrec.x
        if x["snaps"] is not None:
            return x["snaps"]
        snaps = x["snaps"] = {}
        n = x["nsnaps"]
        step = 86400 if n <= 365 else 3600
        kind = "daily" if n <= 365 else "hourly"
        idlen = s.info["idlen"]
        for j in range(1, n + 1):
            h = mix(self.seed, K_SNAP, s.idx, x["idx"], j)
            ct = x["ct"] + j * step - h % 1800
            name = kind + time.strftime("-%Y%m%d-%H%M", time.gmtime(ct))
            sid = hexid(idlen, self.seed, K_SNAP, s.idx, x["idx"], j)
            snaps[sid] = DRec(sid, vol=vrec.id, idx=j, name=name, ct=ct,
                              used=x["used"] * (50 + h % 50) // 100, ro=True, comment="",
                              expire=None, retain=None, online=False, writable=False,
                              metadata=[], gen=1)
        x["seq"] = n
        if self.hostile and (x["idx"] <= 3 or x.get("hostile")):
            first = next(iter(snaps.values())).x["name"] if snaps else "dup"
            for k, sname in enumerate(HOSTILE_NAMES):
                sid = hexid(idlen, self.seed, K_SNAP, s.idx, x["idx"], 1000 + k)
                snaps[sid] = DRec(sid, vol=vrec.id, idx=1000 + k, name=first if sname is None
                                  else sname, ct=x["ct"] + 60, used=x["used"] // 4, ro=True,
                                  comment="", expire=None, retain=None, online=False,
                                  writable=False, metadata=[], gen=1)
        return snaps

    def snap_count(self, vrec):
        x = vrec.x
        if x["snaps"] is not None:
            return len(x["snaps"])
        extra = len(HOSTILE_NAMES) if self.hostile and (x["idx"] <= 3 or x.get("hostile")) else 0
        return x["nsnaps"] + extra

    def remove_volume(self, s, vrec):
        s.vols.pop(vrec.id, None)
        self.vol_index.pop(vrec.id, None)
        vs = s.vsets.get(vrec.x["vset"])
        if vs is not None and vrec.id in vs.x["members"]:
            vs.x["members"].remove(vrec.id)
            self.changed(vs)

    def build_issues(self):
        n = 0
        t0 = BASE_EPOCH + 500 * 86400
        for s in self.systems.values():
            n += 1
            self.add_issue(n, "Firmware update available for %s" % s.name,
                           "Storage system %s runs %s; %s is available." % (
                               s.name, s.info["full"], s.info["version"] + ".1"),
                           "WARNING", "software", t0 + n * 3600,
                           (s.name, "/api/v1/storage-systems/%s" % s.id, "storage-system"))
            full = [v for v in s.vols.values() if v.x["used"] * 10 >= v.x["size"] * 9]
            for v in full[:3]:
                n += 1
                uri = "/api/v1/storage-systems/device-type%d/%s/volumes/%s" % (s.dt, s.id, v.id)
                self.add_issue(n, "Volume %s is %d%% full" % (
                    v.x["name"], v.x["used"] * 100 // v.x["size"]),
                    "Volume %s on %s has less than 10%% free space." % (v.x["name"], s.name),
                    "CRITICAL", "capacity", t0 + n * 3600, (v.x["name"], uri, "volume"),
                    (s.name, "/api/v1/storage-systems/%s" % s.id, "storage-system"))

    def build_audit(self):
        """A few audit events from before the server started (deterministic)."""
        seeded = []
        for s in self.systems.values():
            seeded.append((s.ct, "storage-system.register", "Register storage system %s" % s.name,
                           (s.id, s.name, "storage-system"), u_sys_fleet(s)))
        for g in list(self.groups.values())[:3]:
            seeded.append((g.x["ct"], "host-initiator-group.create",
                           "Create host group %s" % g.x["name"],
                           (g.id, g.x["name"], "host-initiator-group"),
                           u_top("host-initiator-groups", g.id)))
        for s in self.systems.values():
            for v in list(s.vols.values())[:1]:
                seeded.append((v.x["ct"], "volume.create", "Create volume %s" % v.x["name"],
                               (v.id, v.x["name"], "volume"), u_vol(s, v.id)))
        seeded.sort(key=lambda e: e[0])
        for k, (t, code, msg, res, scope) in enumerate(seeded):
            h = mix(self.seed, K_AUDIT, k)
            self.add_audit(t * 1000 + h % 1000, code, msg, res, scope, SEED_USER,
                           "192.0.2.%d" % (100 + h % 50))

    def add_audit(self, ms, code, message, resource, scope, user, ip, task=None, same=False):
        """Append one audit event; occurredAt grows strictly (ms after the last at least), or
        with same, is the last one's (a burst the console stamps with one time)."""
        self.audit_seq += 1
        n = self.audit_seq
        ms = self.audit_ms if same and self.audit_ms else max(int(ms), self.audit_ms + 1)
        self.audit_ms = ms
        rec = DRec(uuid_of(hexid(32, self.seed, K_AUDIT, n)), n=n, ms=ms, code=code,
                   message=message, resource=resource, scope=scope, user=user, ip=ip,
                   task=task, context=uuid_of(hexid(32, self.seed, K_AUDIT, n, 1)), gen=1)
        self.audit.append(rec)
        if len(self.audit) > AUDIT_KEPT:
            del self.audit[:len(self.audit) - AUDIT_KEPT]
        return rec

    def add_issue(self, n, title, body, severity, category, ct, resource, owner=None):
        iid = uuid_of(hexid(32, self.seed, K_ISSUE, n))
        self.issues[iid] = DRec(iid, title=title, body=body, severity=severity,
                                category=category, ct=ct, resource=resource, owner=owner,
                                count=1 + n % 4, gen=1)


# -- URIs of resources

def u_sys(s):
    return "%s/storage-systems/device-type%d/%s" % (DSCC_API, s.dt, s.id)


def u_sys_fleet(s):
    return "%s/storage-systems/%s" % (DSCC_API, s.id)


def u_vol(s, vid):
    return "%s/volumes/%s" % (u_sys(s), vid)


def u_pool(s, pid):
    return "%s/storage-pools/%s" % (u_sys(s), pid)


def u_top(kind, rid):
    return "%s/%s/%s" % (DSCC_API, kind, rid)


def console(uri):
    return "data-ops-manager" + uri[len(DSCC_API):]


def link(kind, uri):
    return {"type": kind, "resourceUri": uri}


def ref(name, uri, kind):
    return {"name": name, "resourceUri": uri, "type": kind}


# -- what each kind of resource looks like: values laid over the spec's skeleton
# (a renderer returns a superset for the kind's representations; keys the
# answering schema lacks are dropped, nested objects merge into the skeleton)

DSCC_NOW = BASE_EPOCH + 530 * 86400   # "now" for the estate's fixed clocks
MIB = 1024 * 1024


def common(est, rec, kind, uri, console_uri=None):
    return {"id": rec.id, "customerId": est.customer, "generation": rec.x.get("gen", 1),
            "type": kind, "resourceUri": uri, "requestUri": uri,
            "consoleUri": console(console_uri or uri)}


def r_sys_fleet(est, s):
    info = s.info
    uri = u_sys_fleet(s)
    out = common(est, s, "storage-system", uri, u_sys(s))
    out.update({"name": s.name, "productFamily": info["family"], "model": info["model"],
                "softwareVersion": info["full"], "state": "NORMAL",
                "connectionStatus": "CONNECTED", "callhomeStatus": "ENABLED_NORMAL",
                "description": "%s storage system %s" % (info["model"], s.name),
                "fqdn": "%s.example.com" % s.name, "mgmtIp": s.ip,
                "lastConnectedTime": DSCC_NOW * 1000, "upSince": s.ct * 1000,
                "systemWWN": s.wwn if s.dt == 1 else None, "tierType": info["tier"],
                "associatedLinks": [link("volumes", uri + "/volumes"),
                                    link("storage-pools", uri + "/storage-pools"),
                                    link("volume-sets", uri + "/volume-sets"),
                                    link("systems", u_sys(s))]})
    return out


def r_sys1(est, s):
    info = s.info
    uri = u_sys(s)
    out = common(est, s, "storage-system", uri)
    ver, full = info["version"], info["full"]
    out.update({"name": s.name, "displayname": "System %s" % s.name, "systemWWN": s.wwn,
                "fqdn": "%s.example.com" % s.name, "deviceId": 100000 + s.idx,
                "deviceType": {"default": info["model"], "key": "sys_type-90"},
                "overallState": "NORMAL", "state": {"overall": "STATE_NORMAL", "detailed": []},
                "version": {"base": ver, "display": ver, "full": full,
                            "fullWithoutPatches": full},
                "softwareVersions": {"baseVersion": ver, "fullVersion": full, "patches": "",
                                     "release": ver},
                "manufacturing": {"hpeModelName": info["model"], "model": info["model"],
                                  "saleableSerialNumber": s.id,
                                  "serialNumber": s.id, "manufacturer": "HPE"},
                "descriptors": {"comment": "", "contact": "storage-admins@example.com",
                                "location": "dc1", "owner": "it-ops"},
                "timezone": "UTC", "systemDate": DSCC_NOW, "uptime": cal(s.ct),
                "domain": "", "locateEnabled": False, "isFIPSEnabled": False,
                "masterNode": 0, "nodesCount": 2, "networkMasterNode": 0,
                "associatedLinks": [link("volumes", uri + "/volumes"),
                                    link("storage-pools", uri + "/storage-pools")]})
    return out


def r_sys2(est, s):
    info = s.info
    uri = u_sys(s)
    out = common(est, s, "storage-system", uri)
    cap = sum(p.x["capacity"] for p in s.pools.values())
    size = sum(v.x["size"] for v in s.vols.values())
    used = sum(v.x["used"] for v in s.vols.values())
    out.update({"name": s.name, "associated_links": [link("volumes", uri + "/volumes"),
                                                     link("storage-pools",
                                                          uri + "/storage-pools")],
                "leader_array_name": s.name + "-a", "leader_array_serial": "AF-%06d" % (
                    mix(est.seed, s.idx) % 1000000),
                "version_current": info["full"], "version_target": info["full"],
                "usable_capacity_bytes": cap * MIB, "free_space": (cap - size) * MIB,
                "usage": used * MIB, "raw_capacity": cap * MIB * 3 // 2,
                "num_snaps": sum(est.snap_count(v) for v in s.vols.values()),
                "date": DSCC_NOW, "domain_name": "example.com", "timezone": "UTC",
                "group_target_name": "iqn.2007-11.com.nimblestorage:%s-g%s" % (
                    s.name, s.id[:12]),
                "iscsi_enabled": True, "fc_enabled": False, "scsi_vendor_id": "Nimble"})
    return out


def pool_stats(s, prec):
    vols = [v for v in s.vols.values() if v.x["pool"] == prec.id]
    return (prec.x["capacity"], sum(v.x["size"] for v in vols),
            sum(v.x["used"] for v in vols), vols)


def r_pool1(est, prec):
    s = prec.x["sys"]
    uri = u_pool(s, prec.id)
    cap, size, used, vols = pool_stats(s, prec)
    out = common(est, prec, "storage-pool", uri)
    out.update({"name": prec.x["name"], "displayname": "CPG %s" % prec.x["name"],
                "systemId": s.id, "storagePoolId": prec.x["k"], "domain": "",
                "totalSizeMiB": cap, "freeSizeMiB": cap - size, "freeForAllocationMiB": cap - size,
                "baseSizeMiB": used, "totalReservedMiB": size, "sharedSizeMiB": 0,
                "numberOfTPVV": sum(1 for v in vols if v.x["thin"]),
                "numberOfTDVV": 0, "state": {"overall": "STATE_NORMAL", "detailed": []},
                "userSpace": {"totalMiB": cap, "usedMiB": size, "ldCount": 4,
                              "totalRawMiB": cap * 3 // 2, "usedRawMiB": size * 3 // 2},
                "associatedLinks": [link("volumes", uri + "/volumes")]})
    return out


def r_pool2(est, prec):
    s = prec.x["sys"]
    uri = u_pool(s, prec.id)
    cap, size, used, vols = pool_stats(s, prec)
    name = prec.x["name"]
    out = common(est, prec, "storage-pool", uri)
    out.update({"name": name, "full_name": name, "search_name": name,
                "description": "%s pool of %s" % (name, s.name),
                "capacity": cap * MIB, "free_space": (cap - size) * MIB, "usage": used * MIB,
                "vol_count": len(vols), "snap_count": sum(est.snap_count(v) for v in vols),
                "creation_time": prec.x["ct"], "last_modified": prec.x["ct"],
                "is_default": prec.x["k"] == 1, "array_count": 1, "all_flash": True,
                "dedupe_capable": True, "usage_valid": True,
                "vol_list": [{"id": v.id, "name": v.x["name"], "vol_id": v.id,
                              "vol_name": v.x["name"]} for v in vols],
                "associated_links": [link("volumes", u_sys(s) + "/volumes")]})
    return out


def r_pool_fleet(est, prec):
    s = prec.x["sys"]
    uri = "%s/storage-pools/%s" % (u_sys_fleet(s), prec.id)
    cap, size, used, vols = pool_stats(s, prec)
    out = common(est, prec, "storage-pool", uri, u_pool(s, prec.id))
    out.update({"name": prec.x["name"], "systemId": s.id, "capacityUsed": used,
                "associatedLinks": [link("volumes", uri + "/volumes"),
                                    link("storage-pools", u_pool(s, prec.id))]})
    return out


def vol_hosts(est, vrec):
    out = []
    for gid in vrec.x["exports"]:
        g = est.groups.get(gid)
        for hid in g.x["hosts"] if g else ():
            if hid not in out:
                out.append(hid)
    return out


def host_refs(est, vrec):
    return [{"id": hid, "deviceDiscoveredName": est.hosts[hid].x["name"],
             "resourceUri": u_top("host-initiators", hid), "type": "host-initiator"}
            for hid in vol_hosts(est, vrec) if hid in est.hosts]


def r_vol1(est, vrec):
    x = vrec.x
    s = x["sys"]
    uri = u_vol(s, vrec.id)
    pool = s.pools.get(x["pool"])
    pname, pk = (pool.x["name"], pool.x["k"]) if pool else ("", 0)
    parent = est.vol_index.get(x["parent"], (None, None))[1]
    pidx = parent.x["idx"] if parent else 0
    size, used = x["size"], x["used"]
    out = common(est, vrec, "volume", uri)
    out.update({"name": x["name"], "displayname": "Virtual Volume %s" % x["name"],
                "systemId": s.id, "volumeId": x["idx"], "baseId": x["idx"],
                "sizeMiB": size, "usedSizeMiB": used, "usedCapacity": used,
                "hostWrittenMiB": used, "totalSpaceMiB": size, "totalReservedMiB": used,
                "totalRawReservedMiB": used * 3 // 2,
                "userCpgName": pname, "userCpgID": pk, "snapshotCpgName": pname,
                "snapshotCpgID": pk, "thinProvisioned": x["thin"],
                "fullyProvisioned": not x["thin"], "provType": prov_type(x),
                "conversionType": x["conv"], "userAllocWarning": x["warn_user"],
                "snapshotAllocWarning": x["warn_snap"],
                "creationTime": cal(x["ct"]), "wwn": x["wwn"], "volumeType": "VVTYPE_BASE",
                "readOnly": x["ro"], "comment": x["comment"], "domain": "",
                "state": {"overall": "STATE_NORMAL", "detailed": []}, "healthState": 1,
                "started": True, "hidden": False, "copyOfID": pidx, "physParentID": pidx,
                "parentID": 0, "dataReduction": "ON" if x["dr"] else "OFF",
                "dedup": "ON" if x["dedupe"] else "OFF",
                "userSpace": {"totalMiB": size, "usedMiB": used, "reservedMiB": used,
                              "freeMiB": size - used},
                "hostWrittenToVirtualPercent": round(100.0 * used / size, 2) if size else 0.0,
                "userUsedToVirtualPercent": round(100.0 * used / size, 2) if size else 0.0,
                "initiators": host_refs(est, vrec),
                "associatedLinks": [link("snapshots", uri + "/snapshots"),
                                    link("vluns", uri + "/vluns"),
                                    link("storage-pools", u_pool(s, x["pool"])),
                                    link("systems", u_sys(s))]})
    return out


def prov_type(x):
    """A device-type1 volume's provisioning: FULL, TPVV (thin) or TDVV (thin, deduplicated)."""
    if not x["thin"]:
        return "FULL"
    return "TDVV" if x["conv"] == "CONVERSIONTYPE_DDS" else "TPVV"


def acl_records(est, vrec):
    out = []
    for gid, lun in vrec.x["exports"].items():
        g = est.groups.get(gid)
        out.append({"id": hexid(42, est.seed, K_NEW, mix(int(vrec.id[:12], 16),
                                                         int(gid[:12], 16))),
                    "initiator_group_id": gid, "initiator_group_name": g.x["name"] if g else "",
                    "lun": lun, "vol_id": vrec.id, "vol_name": vrec.x["name"],
                    "apply_to": "both", "access_protocol": "iscsi", "chap_user_id": None,
                    "chap_user_name": None})
    return out


def r_vol2(est, vrec):
    x = vrec.x
    s = x["sys"]
    uri = u_vol(s, vrec.id)
    pool = s.pools.get(x["pool"])
    pname = pool.x["name"] if pool else ""
    parent = est.vol_index.get(x["parent"], (None, None))[1]
    snaps = est.snaps(s, vrec) if x["snaps"] is not None else None
    last = None
    if snaps:
        ls = max(snaps.values(), key=lambda r: (r.x["ct"], r.x["idx"]))
        last = {"snap_id": ls.id, "snap_name": ls.x["name"], "snap_creation_time": ls.x["ct"]}
    vset = s.vsets.get(x["vset"])
    out = common(est, vrec, "volume", uri)
    out.update({"name": x["name"], "full_name": "%s:/%s" % (pname, x["name"]),
                "search_name": x["name"], "description": x["comment"],
                "size": x["size"], "total_usage_bytes": x["used"] * MIB,
                "vol_usage_uncompressed_bytes": x["used"] * MIB,
                "vol_usage_compressed_bytes": x["used"] * MIB * 2 // 3,
                "pool_id": x["pool"], "pool_name": pname, "dest_pool_id": x["pool"],
                "dest_pool_name": pname, "folder_id": None, "folder_name": None,
                "creation_time": x["ct"], "last_modified": x["mtime"] or x["ct"],
                "online": x["online"], "vol_state": "online" if x["online"] else "offline",
                "offline_reason": None if x["online"] else "user",
                "caching_enabled": x["caching"], "dedupe_enabled": x["dedupe"],
                "limit_iops": x["limit_iops"], "limit_mbps": x["limit_mbps"],
                "limit": x["limit"], "read_only": x["ro"], "num_snaps": est.snap_count(vrec),
                "serial_number": x["serial"],
                "target_name": "iqn.2007-11.com.nimblestorage:%s-v%s" % (x["name"][:32],
                                                                          x["serial"][:16]),
                "thinly_provisioned": x["thin"], "block_size": 4096, "clone": parent is not None,
                "parent_vol_id": parent.id if parent else None,
                "parent_vol_name": parent.x["name"] if parent else None,
                "base_snap_id": x["base_snap"], "base_snap_name": None,
                "volcoll_id": vset.id if vset else None,
                "volcoll_name": vset.x["name"] if vset else None,
                "owned_by_group": s.name, "owned_by_group_id": s.id,
                "access_control_records": acl_records(est, vrec), "last_snap": last,
                "multi_initiator": False, "usage_valid": True,
                "associated_links": [link("snapshots", uri + "/snapshots"),
                                     link("storage-pools", u_pool(s, x["pool"])),
                                     link("storage-systems", u_sys(s))]})
    # unset, these keep the spec's example values
    if x["app_uuid"] is not None:
        out["app_uuid"] = x["app_uuid"]
    if x["perfpolicy"] is not None:
        out["perfpolicy_id"] = x["perfpolicy"]
    return out


def r_vol_fleet(est, vrec):
    x = vrec.x
    s = x["sys"]
    uri = u_top("volumes", vrec.id)
    out = common(est, vrec, "volume", uri, u_vol(s, vrec.id))
    links = [link("systems", u_sys_fleet(s)),
             link("storage-pools", "%s/storage-pools/%s" % (u_sys_fleet(s), x["pool"]))]
    if x["vset"]:
        links.append(link("volume-sets", u_top("volume-sets", x["vset"])))
    out.update({"name": x["name"], "systemId": s.id, "productFamily": s.info["family"],
                "sizeMiB": x["size"], "usedSizeMiB": x["used"],
                "hostWrittenCapacityMiB": x["used"],
                "usedCapacityPercent": round(100.0 * x["used"] / x["size"], 4)
                if x["size"] else 0.0,
                "healthState": "NORMAL", "isInternal": False, "isSystemVolume": False,
                "subType": "PROVTYPE_" + ("DDS" if prov_type(x) == "TDVV" else
                                          "TPVV" if x["thin"] else "FULL"),
                "thinSavings": "1.5:1" if x["thin"] else "1:1", "spaceWarning": None,
                "volumeSetId": x["vset"], "volumeType": "VVTYPE_BASE",
                "wwn": x["wwn"] if s.dt == 1 else x["serial"],
                "initiators": host_refs(est, vrec), "associatedLinks": links})
    return out


def r_snap1(est, snap, s, vrec):
    x = snap.x
    uri = "%s/snapshots/%s" % (u_vol(s, vrec.id), snap.id)
    out = common(est, snap, "snapshot", uri)
    vx = vrec.x
    out.update({"name": x["name"], "displayname": "Snapshot %s" % x["name"],
                "systemId": s.id, "sizeMiB": vx["size"], "usedSizeMiB": x["used"],
                "usedCapacity": x["used"], "totalSpaceMiB": vx["size"],
                "creationTime": cal(x["ct"]), "expirationTime": cal(x["expire"]),
                "retentionTime": cal(x["retain"]), "readOnly": x["ro"],
                "comment": x["comment"], "parentID": vx["idx"], "baseId": vx["idx"],
                "copyOfID": vx["idx"], "snapshotId": x["idx"], "provType": "SNP",
                "snapshotType": "SNAPSHOT_TYPE_READONLY" if x["ro"] else
                "SNAPSHOT_TYPE_READWRITE", "started": True, "hidden": False, "domain": "",
                "state": {"overall": "STATE_NORMAL", "detailed": []}, "healthState": 1,
                "wwn": "60002AC%025X" % (mix(int(snap.id[:15], 16)) & ((1 << 100) - 1)),
                "thinProvisioned": vx["thin"], "userCpgName": "", "snapshotCpgName": ""})
    pool = s.pools.get(vx["pool"])
    if pool:
        out["userCpgName"] = out["snapshotCpgName"] = pool.x["name"]
    return out


def r_snap2(est, snap, s, vrec):
    x = snap.x
    uri = "%s/snapshots/%s" % (u_vol(s, vrec.id), snap.id)
    pool = s.pools.get(vrec.x["pool"])
    out = common(est, snap, "snapshot", uri)
    out.update({"name": x["name"], "vol_id": vrec.id, "vol_name": vrec.x["name"],
                "size": vrec.x["size"], "description": x["comment"],
                "creation_time": x["ct"], "last_modified": x["ct"], "online": x["online"],
                "writable": x["writable"], "expiry_time": x["expire"] or 0,
                "expiry_after": max(0, int(x["expire"] - x["ct"])) if x["expire"] else 0,
                "pool_name": pool.x["name"] if pool else "",
                "serial_number": "%032x" % mix(int(snap.id[:15], 16), 3),
                "target_name": "iqn.2007-11.com.nimblestorage:%s-v%s.%d" % (
                    vrec.x["name"][:32], vrec.x["serial"][:16], x["idx"]),
                "metadata": x["metadata"], "is_manually_managed": True,
                "is_unmanaged": False, "is_replica": False, "origin_name": s.name,
                "new_data_valid": True, "new_data_compressed_bytes": x["used"] * MIB * 2 // 3,
                "new_data_uncompressed_bytes": x["used"] * MIB,
                "access_control_records": [],
                "associated_links": [link("volumes", u_vol(s, vrec.id))]})
    return out


def r_vset(est, vs):
    x = vs.x
    s = x["sys"]
    uri = u_top("volume-sets", vs.id)
    out = common(est, vs, "volume-set", uri, "%s/applicationsets/%s" % (u_sys(s), vs.id))
    out.update({"name": x["name"], "appType": x["app"], "application": x["app"],
                "systemId": s.id, "productFamily": s.info["family"],
                "members": list(x["members"]), "volumesCount": len(x["members"]),
                "associatedLinks": [link("volumes", uri + "/volumes"),
                                    link("systems", u_sys_fleet(s))]})
    return out


def r_vset_sys(est, vs):
    out = r_vset(est, vs)
    s = vs.x["sys"]
    out["resourceUri"] = out["requestUri"] = "%s/volume-sets/%s" % (u_sys_fleet(s), vs.id)
    return out


def vlun_list(est, vrec):
    out = []
    for gid, lun in vrec.x["exports"].items():
        g = est.groups.get(gid)
        for hid in g.x["hosts"] if g else ():
            out.append((hexid(32, est.seed, K_NEW, mix(int(vrec.id[:12], 16),
                                                        int(hid[:12], 16))), lun, hid))
    return out


def r_vlun(est, vl):
    vid, lun, hid, s, vrec = vl.x["vid"], vl.x["lun"], vl.x["host"], vl.x["sys"], vl.x["vol"]
    host = est.hosts.get(hid)
    out = common(est, vl, "vlun", "%s/vluns/%s" % (u_vol(s, vid), vl.id))
    out.update({"lun": lun, "volumeName": vrec.x["name"], "volumeWWN": vrec.x["wwn"],
                "remoteName": host.x["name"] if host else "", "systemId": s.id,
                "active": True, "status": "active", "vlunType": "VLUN_TYPE_MATCHED_SET",
                "vvSize": vrec.x["size"], "usedSpace": vrec.x["used"], "displayname":
                "VLUN %s" % vrec.x["name"], "domain": "",
                "state": {"overall": "STATE_NORMAL", "detailed": []},
                "initiators": {"id": hid, "deviceDiscoveredName": host.x["name"]
                               if host else "", "resourceUri": u_top("host-initiators", hid),
                               "type": "host-initiator"}})
    return out


def init_ref(est, iid):
    i = est.inits[iid]
    return {"id": iid, "name": i.x["name"], "address": i.x["address"],
            "protocol": i.x["protocol"], "ipAddress": i.x["ip"],
            "systems": list(est.systems)}


def group_ref(est, gid):
    g = est.groups[gid]
    return {"id": gid, "name": g.x["name"], "markedForDelete": False,
            "userCreated": g.x["user_created"], "systems": list(est.systems)}


def r_host(est, h):
    x = h.x
    uri = u_top("host-initiators", h.id)
    out = common(est, h, "host-initiator", uri)
    out["consoleUri"] = "/data-ops-manager/host-initiators/%s" % h.id
    out.update({"name": x["name"], "fqdn": x["fqdn"], "ipAddress": x["ip"],
                "operatingSystem": x["os"], "persona": x["persona"], "protocol": x["protocol"],
                "model": x["model"], "subnet": x["subnet"], "location": x["location"],
                "contact": x["contact"], "comment": x["comment"],
                "userCreated": x["user_created"], "markedForDelete": False,
                "editStatus": "Update_Success", "generation": x["ct"] + x.get("gen", 1),
                "initiators": [init_ref(est, i) for i in x["inits"] if i in est.inits],
                "hostGroups": [group_ref(est, g) for g in x["groups"] if g in est.groups],
                "systems": list(est.systems), "associatedSystems": list(est.systems),
                "associatedLinks": [link("volumes", uri + "/volumes")]})
    return out


def r_group(est, g):
    x = g.x
    uri = u_top("host-initiator-groups", g.id)
    out = common(est, g, "host-initiator-group", uri)
    out["consoleUri"] = "/data-ops-manager/host-initiator-groups/%s" % g.id
    hosts = []
    for hid in x["hosts"]:
        h = est.hosts.get(hid)
        if h is not None:
            hosts.append({"id": hid, "name": h.x["name"], "ipAddress": h.x["ip"],
                          "markedForDelete": False, "userCreated": h.x["user_created"],
                          "systems": list(est.systems),
                          "initiators": [init_ref(est, i) for i in h.x["inits"]
                                         if i in est.inits]})
    out.update({"name": x["name"], "comment": x["comment"], "hosts": hosts,
                "userCreated": x["user_created"], "markedForDelete": False,
                "editStatus": "Update_Success", "generation": x["ct"] + x.get("gen", 1),
                "systems": list(est.systems), "associatedSystems": list(est.systems),
                "associatedLinks": [link("host-initiators", u_top("host-initiators", h["id"]))
                                    for h in hosts]})
    return out


def r_init(est, i):
    x = i.x
    uri = u_top("initiators", i.id)
    out = common(est, i, "initiator", uri)
    hosts = []
    h = est.hosts.get(x["host"])
    if h is not None:
        hosts.append({"id": h.id, "name": h.x["name"], "ipAddress": h.x["ip"],
                      "markedForDelete": False, "userCreated": h.x["user_created"],
                      "systems": list(est.systems),
                      "hostGroups": [group_ref(est, g) for g in h.x["groups"]
                                     if g in est.groups]})
    out.update({"name": x["name"], "address": x["address"], "protocol": x["protocol"],
                "ipAddress": x["ip"], "vendor": x["vendor"], "hbaModel": x["hba"],
                "driverVersion": x["driver"], "firmwareVersion": x["firmware"],
                "hostSpeed": x["speed"], "hosts": hosts, "systems": list(est.systems),
                "generation": BASE_EPOCH + x.get("gen", 1),
                "associatedLinks": [link("host-initiators", u_top("host-initiators", h.id))]
                if h is not None else []})
    return out


def r_host_volume(est, hv):
    s, vrec = hv.x["sys"], hv.x["vol"]
    paths = 2 if est.hosts[hv.x["host"]].x["protocol"] == "FC" else 1
    h = mix(int(vrec.id[:12], 16), 5)
    return {"volumeName": vrec.x["name"], "systemId": s.id,
            "resourceUri": u_vol(s, vrec.id), "pathCount": paths,
            "iops": float(h % 5000), "latencyMs": round(0.2 + (h >> 16) % 30 / 10.0, 2),
            "throughputKbps": float(h % 400000)}


def r_issue(est, i):
    x = i.x
    uri = u_top("issues", i.id)
    out = common(est, i, "issue", uri)
    name, ruri, kind = x["resource"]
    out.update({"name": x["title"], "title": x["title"], "body": x["body"],
                "severity": x["severity"], "category": x["category"], "state": "ACTIVE",
                "issueType": "%s-alert" % x["category"], "createdAt": iso(x["ct"]),
                "lastOccurredAt": iso(x["ct"] + 3600 * (x["count"] - 1)), "clearedAt": DROP,
                "occurrenceCount": x["count"], "generation": str(x.get("gen", 1)),
                "ruleId": "rule-%s" % x["category"],
                "additionalDetails": {"consoleUri": "/issues/%s" % i.id},
                "relatedResource": ref(name, ruri, kind),
                "relatedResourceOwner": ref(*x["owner"]) if x["owner"] else ref(name, ruri,
                                                                                 kind)})
    return out


def r_audit(est, a):
    x = a.x
    out = {"id": a.id, "customerId": est.customer, "occurredAt": iso_ms(x["ms"]),
           "code": x["code"], "permission": x["code"], "message": x["message"],
           "scope": x["scope"], "source": "audit", "state": "Success",
           "uniqueId": "audit.event+%d+%d" % (x["n"], x["ms"]), "userEmail": x["user"],
           "version": 1, "contextId": x["context"],
           "sourceIpAddress": x["ip"] if x["ip"] else DROP,
           "taskId": x["task"] if x["task"] else DROP,
           "associatedResource": DROP}
    if x["resource"] is not None:
        rid, name, kind = x["resource"]
        out["associatedResource"] = {"id": rid, "name": name, "type": kind}
    return out


# -- tasks

class DTask(Task):
    """A storage-plugin Task answered in the shape of the spec's Task schema."""

    def __init__(self, *args, customer="", user="", poll=1):
        super().__init__(*args)
        self.customer = customer
        self.user = user
        self.poll = poll
        self.trace = "%032x" % random.getrandbits(128)
        self.dfinal = None

    def drender(self, now):
        if self.dfinal is not None:
            return self.dfinal
        b = self.render(now)
        uri = u_top("tasks", self.id)
        res = b["associatedResources"]
        err = None
        if b["state"] == "FAILED":
            err = {"error": self.error, "errorCode": "422", "traceId": self.trace}
        obj = {"customerId": self.customer, "generation": len(b["logMessages"]),
               "id": self.id, "name": self.display, "resourceUri": uri, "type": "task",
               "additionalDetails": {"consoleUri": "/tasks/%s" % self.id},
               "associatedResources": res, "childTasks": [], "createdAt": b["createdAt"],
               "displayName": self.display, "endedAt": b["endedAt"], "error": err,
               "estimatedRunningDurationMinutes": max(1, int(-(-self.duration // 60))),
               "healthStatus": b["healthStatus"], "logMessages": b["logMessages"],
               "parentTask": None, "progressPercent": b["progressPercent"],
               "recommendations": [], "sourceResource": res[0] if res else None,
               "startedAt": b["startedAt"], "state": b["state"],
               "suggestedPollingIntervalSeconds": self.poll, "updatedAt": b["updatedAt"],
               "userId": self.user}
        if self.state is not None:
            self.dfinal = obj
        return obj


# -- filter, sort, select (the OData-like query parameters of list calls)

_FTOKEN = re.compile(r"\s*(?:(\()|(\))|(,)|'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)(?![\w.])"
                     r"|([A-Za-z_][\w.]*))")
_FOPS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
         "gt": lambda a, b: _cmp(a, b) > 0, "ge": lambda a, b: _cmp(a, b) >= 0,
         "lt": lambda a, b: _cmp(a, b) < 0, "le": lambda a, b: _cmp(a, b) <= 0}
_FLIT = {"true": True, "false": False, "null": None}


_ISO_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                       r"(?:([Zz])|([+-])(\d\d):?(\d\d))$")


@functools.lru_cache(maxsize=4096)
def _iso_time(s):
    """Epoch microseconds of an ISO-8601 date-time string, or None if it is not one."""
    m = _ISO_TIME.match(s)
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, _, sign, oh, om = m.groups()
    try:
        t = calendar.timegm((int(y), int(mo), int(d), int(hh), int(mi), int(ss), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    usec = int(((frac or "") + "000000")[:6])
    if sign:
        t -= (1 if sign == "+" else -1) * (int(oh) * 3600 + int(om) * 60)
    return t * 1000000 + usec


def _cmp(a, b):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return -2 if a != b else 0
    if isinstance(a, str) and isinstance(b, str):
        # two date-times compare as instants, whatever their precision or zone
        ta, tb = _iso_time(a), _iso_time(b)
        if ta is not None and tb is not None:
            return (ta > tb) - (ta < tb)
        return (a > b) - (a < b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return (a > b) - (a < b)
    return -2


def dotted(obj, path):
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def parse_filter(text, known):
    """Compile a filter into a predicate over rendered items, or raise ApiError(400)."""
    toks = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _FTOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ApiError(400, "filter: cannot parse %r at offset %d" % (text, pos))
        pos = m.end()
        lp, rp, comma, s, num, word = m.groups()
        if lp:
            toks.append(("(", None))
        elif rp:
            toks.append((")", None))
        elif comma:
            toks.append((",", None))
        elif s is not None:
            toks.append(("lit", s.replace("''", "'")))
        elif num is not None:
            toks.append(("lit", float(num) if "." in num else int(num)))
        elif word.lower() in _FLIT:
            toks.append(("lit", _FLIT[word.lower()]))
        elif word.lower() in ("and", "or", "not", "in") or word.lower() in _FOPS:
            toks.append((word.lower(), None))
        else:
            if known is not None and word.split(".")[0] not in known:
                raise ApiError(400, "filter: unknown property %r" % word)
            toks.append(("field", word))
    toks.append(("end", None))
    i = [0]

    def peek():
        return toks[i[0]][0]

    def take(kind=None):
        t = toks[i[0]]
        if t[0] == "end" and kind != "end":
            raise ApiError(400, "filter: unexpected end of %r" % text)
        if kind is not None and t[0] != kind:
            raise ApiError(400, "filter: expected %s, found %s in %r" % (
                kind, t[1] if t[1] is not None else t[0], text))
        i[0] += 1
        return t

    def operand():
        t = take()
        if t[0] == "field":
            return lambda o, f=t[1]: dotted(o, f)
        if t[0] == "lit":
            return lambda o, v=t[1]: v
        if t[0] == "(":
            vals = [take("lit")[1]]
            while peek() == ",":
                take(",")
                vals.append(take("lit")[1])
            take(")")
            return lambda o, v=vals: v
        raise ApiError(400, "filter: expected a property or a value in %r" % text)

    def is_list(k):
        """Whether the "(" at k opens a list of values: ( lit [, lit]... )."""
        k += 1
        while toks[k][0] == "lit":
            if toks[k + 1][0] == ")":
                return True
            if toks[k + 1][0] != ",":
                return False
            k += 2
        return False

    def factor():
        if peek() == "not":
            take()
            f = factor()
            return lambda o: not f(o)
        if peek() == "(" and not is_list(i[0]):
            take("(")
            e = expr()
            take(")")
            return e
        a = operand()
        t = take()
        op = t[0]
        if op != "in" and op not in _FOPS:
            raise ApiError(400, "filter: unknown operator %r (eq, ne, gt, ge, lt, le, in)"
                           % (t[1] if t[1] is not None else op))
        b = operand()
        if op == "in":
            def f_in(o):
                hay = b(o)
                needle = a(o)
                if isinstance(hay, str) and isinstance(needle, str):
                    return needle in hay
                return isinstance(hay, list) and needle in hay
            return f_in
        fn = _FOPS[op]
        return lambda o: fn(a(o), b(o))

    def chain(word, operand, both):
        """operand (word operand)*, joined left to right by both(f1, f2)."""
        def parse():
            f = operand()
            while peek() == word:
                take()
                f = both(f, operand())
            return f
        return parse

    term = chain("and", factor, lambda f1, f2: lambda o: f1(o) and f2(o))
    expr = chain("or", term, lambda f1, f2: lambda o: f1(o) or f2(o))

    pred = expr()
    take("end")
    return pred


def _sort_key(v):
    if v is None:
        return (0, 0)
    if isinstance(v, (bool, int, float)):
        return (1, v)
    if isinstance(v, str):
        return (2, v)
    return (3, json.dumps(v, sort_keys=True))


def parse_sort(text, known):
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ApiError(400, "sort: expected 'property [asc|desc]', got %r" % part.strip())
        if known is not None and words[0].split(".")[0] not in known:
            raise ApiError(400, "sort: unknown property %r" % words[0])
        keys.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    if not keys:
        raise ApiError(400, "sort: empty")
    return keys


def parse_select(text, known):
    fields = [f.strip() for f in text.split(",") if f.strip()]
    if not fields:
        raise ApiError(400, "select: empty")
    for f in fields:
        if known is not None and f.split(".")[0] not in known:
            raise ApiError(400, "select: unknown property %r" % f)
    return fields


def project(obj, fields):
    out = {}
    for f in fields:
        parts = f.split(".")
        src, dst = obj, out
        for k, p in enumerate(parts):
            if not isinstance(src, dict) or p not in src:
                break
            if k == len(parts) - 1:
                dst[p] = src[p]
            else:
                src = src[p]
                dst = dst.setdefault(p, {})
    return out


DROP = object()   # a renderer value that removes the key from the answer


def overlay(base, over):
    """Lay over's values on the skeleton base, keeping only keys base has."""
    for k, v in over.items():
        if k not in base:
            continue
        if v is DROP:
            del base[k]
        elif isinstance(v, dict) and isinstance(base[k], dict):
            overlay(base[k], v)
        else:
            base[k] = v
    return base


# -- audit events of requests

def audit_kind(template, method):
    """(kind, verb) of a change, from its path template: POST .../volumes is
    ("volume", "create"), PUT .../volumes/{id} ("volume", "update"), POST
    .../volumes/{id}/clone ("volume", "clone"), DELETE .../snapshots/{snapshotId}
    ("snapshot", "delete"), POST .../snapshots/{snapshotId} ("snapshot", "promote")."""
    segs = [x for x in template.split("/") if x and x != "actions"]
    last = segs[-1]
    if last.startswith("{"):
        kind = segs[-2][:-1]
        verb = {"PUT": "update", "DELETE": "delete"}.get(
            method, "promote" if kind == "snapshot" else "action")
    elif last in ("volumes", "snapshots", "host-initiators", "host-initiator-groups"):
        kind, verb = last[:-1], "create"
    else:
        kind, verb = segs[-3][:-1], last
    return kind, verb


def audit_user(client_id):
    """The userEmail of the audit events of an API client."""
    return client_id if "@" in client_id else "%s@clients.example.com" % client_id


# -- request context and the dialect itself

class DCtx:
    __slots__ = ("d", "est", "method", "p", "query", "headers", "body", "now", "base",
                 "route", "path", "peer", "task", "audit")


class DRoute:
    __slots__ = ("template", "segs", "handlers", "allow", "body_required", "schemas")

    def __init__(self, template, handlers):
        self.template = template
        self.segs = tuple(None if s.startswith("{") else s for s in template.split("/")[1:])
        self.handlers = handlers
        self.allow = ", ".join(sorted(handlers))
        self.body_required = {}
        self.schemas = {}


class Dscc(Dialect):
    """The dscc dialect: routing, tokens, validation, lists and the estate."""
    name = "dscc"
    base = ""   # the server root: API paths start with /api/v1, tokens at /oauth2/token
    api = "dscc"

    def credentials(self, root):
        return ["client_id=" + self.opts.client_id, "client_secret=" + self.opts.client_secret,
                "token_url=" + root + DSCC_TOKEN_PATH]

    def __init__(self, sim, opts):
        super().__init__(sim, opts)
        try:
            import openapi_check
        except ImportError:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import openapi_check
        self.oc = openapi_check
        self.spec = openapi_check.load_spec(opts.spec)
        self.sim = sim
        self.opts = opts
        self.client_id = opts.client_id
        self.client_secret = opts.client_secret
        self.est = DsccEstate(opts)
        self.skeletons = {}
        self.routes = []
        self.index = {}
        for template, handlers in DSCC_ROUTES:
            route = DRoute(template, handlers)
            if template != DSCC_TOKEN_PATH:
                ops = self.spec["paths"].get(template)
                if ops is None:
                    raise SystemExit("refserver: %s is not a path of the spec" % template)
                for m in handlers:
                    op = ops.get(m.lower())
                    if op is None:
                        raise SystemExit("refserver: %s %s is not in the spec" % (m, template))
                    rb = openapi_check.resolve(op.get("requestBody", {}), self.spec)
                    route.body_required[m] = bool(rb.get("required"))
                    route.schemas[m] = openapi_check.request_schema(m, template, self.spec)
            self.routes.append(route)
            self.index.setdefault(len(route.segs), []).append(route)
        for entries in self.index.values():
            entries.sort(key=lambda r: tuple(0 if s is not None else 1 for s in r.segs))
        self.poll = max(1, int(round(opts.task_seconds / 3.0)))
        sim.event("server started (dscc) with %d storage system(s)" % len(self.est.systems))

    @staticmethod
    def add_options(p):
        g = p.add_argument_group("dscc dialect")
        g.add_argument("--client-id", default="dsfs-demo", metavar="ID",
                       help="OAuth2 client id accepted by POST /oauth2/token (default "
                       "dsfs-demo)")
        add_secret_option(g, "client-secret", "SECRET", "dsfs-demo-secret", "its client secret",
                          "the client secret")
        g.add_argument("--device-types", default="1,2", metavar="LIST",
                       help="device types of the storage systems, cycled: '1' (Alletra 9000 "
                       "/ Primera), '2' (Alletra 6000 / Nimble) or '1,2' (default)")
        g.add_argument("--spec", default=None, metavar="FILE",
                       help="the DSCC OpenAPI spec (default $DSFS_DSCC_SPEC, else "
                       "tests/server/spec/dscc-storage-api-v1.2.0.json)")

    @staticmethod
    def check_options(p, opts):
        try:
            opts.device_types = [int(t) for t in opts.device_types.split(",")]
            if not opts.device_types or any(t not in DEVICE_TYPES for t in opts.device_types):
                raise ValueError
        except ValueError:
            p.error("--device-types must be a comma-separated list of 1 and 2")
        spec = opts.spec or os.environ.get("DSFS_DSCC_SPEC") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "spec", "dscc-storage-api-v1.2.0.json")
        if not os.path.isfile(spec):
            p.error("the DSCC spec %s is missing (use --spec FILE)" % spec)
        opts.spec = spec

    def route(self, method, path, qs, headers, body):
        route, segs = self.classify(method, path)
        entry = self.record(method, path, qs, headers, body, route.template if route else None)
        query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
        return Req(method, path, path, route, segs, query, None, entry)

    def handle(self, req, headers, body, host):
        return self.handle_request(req.method, req.path, req.route, req.segs, req.query,
                                   headers, body, host, req.peer)

    # -- routing and stats
    def classify(self, method, path):
        segs = split_path(path)
        route = None
        for r in self.index.get(len(segs), ()):
            if all(p is None or p == s for p, s in zip(r.segs, segs)):
                route = r
                break
        self.count((method, route.template if route else "<unknown>"))
        return route, segs

    # -- rendering
    def skeleton(self, schema):
        key = schema.get("$ref") if isinstance(schema, dict) and "$ref" in schema else \
            json.dumps(schema, sort_keys=True)
        text = self.skeletons.get(key)
        if text is None:
            text = self.skeletons[key] = json.dumps(self.oc.example(schema, self.spec))
        return json.loads(text)

    def render(self, rec, schema, fn, *extra):
        """(JSON bytes) of rec in schema's shape, cached until the estate changes."""
        key = schema.get("$ref") if isinstance(schema, dict) and "$ref" in schema else id(schema)
        c = rec.cache.get(key)
        if c is not None and c[0] == self.est.gen:
            return c[1]
        obj = overlay(self.skeleton(schema), fn(self.est, rec, *extra))
        j = dumps(obj)
        rec.cache[key] = (self.est.gen, j)
        return j

    def response_schema(self, ctx, status=200):
        return self.oc.response_schema(ctx.method, ctx.route.template, status, self.spec)

    def item_schema(self, list_schema):
        props = self.oc.resolve(list_schema, self.spec).get("properties", {})
        return self.oc.resolve(props["items"], self.spec)["items"]

    def known(self, schema):
        return self.oc.known_properties(schema, self.spec)

    def one(self, ctx, rec, fn, *extra):
        schema = self.response_schema(ctx)
        body = self.render(rec, schema, fn, *extra)
        sel = ctx.query.get("select")
        if sel is not None:
            fields = parse_select(sel, self.known(schema))
            body = dumps(project(json.loads(body), fields))
        return 200, body, None

    def paging(self, query):
        vals = {}
        for name in ("limit", "offset"):
            v = query.get(name)
            if v is None:
                continue
            try:
                vals[name] = int(v)
            except ValueError:
                raise ApiError(400, "%s: must be an integer, got %r" % (name, v))
            if vals[name] < 0:
                raise ApiError(400, "%s: must be 0 or more" % name)
        limit = min(vals.get("limit", self.sim.page_max), self.sim.page_max)
        return vals.get("offset", 0), limit

    def listing(self, ctx, recs, fn, *extra, live=False):
        """A list answer: {"items", "total", "pageLimit", "pageOffset"[, "requestUri"]}."""
        schema = self.response_schema(ctx)
        item = self.item_schema(schema)
        offset, limit = self.paging(ctx.query)
        q = ctx.query
        flt, srt, sel = q.get("filter"), q.get("sort"), q.get("select")
        known = self.known(item)
        if live:
            objs = [overlay(self.skeleton(item), fn(self.est, r, *extra)) for r in recs]
        if flt is not None or srt is not None or sel is not None:
            pred = parse_filter(flt, known) if flt else None
            keys = parse_sort(srt, known) if srt else None
            fields = parse_select(sel, known) if sel else None
            if not live:
                objs = [json.loads(self.render(r, item, fn, *extra)) for r in recs]
            if pred is not None:
                objs = [o for o in objs if pred(o)]
            for field, desc in reversed(keys or ()):
                objs.sort(key=lambda o, f=field: _sort_key(dotted(o, f)), reverse=desc)
            total = len(objs)
            page = objs[offset:offset + limit]
            if fields is not None:
                page = [project(o, fields) for o in page]
            parts = [dumps(o) for o in page]
        elif live:
            total = len(objs)
            parts = [dumps(o) for o in objs[offset:offset + limit]]
        else:
            total = len(recs)
            parts = [self.render(r, item, fn, *extra) for r in recs[offset:offset + limit]]
        out = [b'{"items":[', b",".join(parts), b'],"total":%d,"pageLimit":%d,"pageOffset":%d'
               % (total, limit, offset)]
        if "requestUri" in (self.known(schema) or ()):
            out.append(b',"requestUri":' + dumps(ctx.path))
        out.append(b"}")
        return 200, b"".join(out), None

    # -- tokens
    def issue_token(self, client, ttl):
        now = time.time()
        est = self.est
        for tok in [t for t, exp in est.tokens.items() if exp < now]:
            del est.tokens[tok]
        head = b64url(b'{"alg":"RS256","typ":"JWT","kid":"dsfs-refserver"}')
        claims = b64url(dumps({"iss": "https://sso.example.com/dsfs-refserver", "sub": client,
                               "client_id": client, "iat": int(now), "exp": int(now + ttl),
                               "jti": secrets.token_hex(12)}))
        tok = "%s.%s.%s" % (head, claims, b64url(secrets.token_bytes(32)))
        est.tokens[tok] = now + ttl
        return {"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl)}

    def token_endpoint(self, method, headers, body):
        if method != "POST":
            return 405, error_body(405, "%s is not allowed here" % method), [("Allow", "POST")]
        form = token_form(headers, body, "client_credentials")
        cid, secret = form.get("client_id"), form.get("client_secret")
        challenge = [("WWW-Authenticate", 'Basic realm="dscc"')]
        try:
            basic = basic_credentials(headers, challenge)
        except ApiError as e:
            raise oauth_error(401, "invalid_client", e.message, challenge)
        if basic is None:
            challenge = None
        else:
            cid, secret = (unquote(v.replace("+", " ")) for v in basic)
        if cid is None or secret is None:
            raise oauth_error(401, "invalid_client", "client credentials are missing "
                              "(HTTP Basic or client_id and client_secret)", challenge)
        with self.sim.lock:
            if not (same_secret(cid, self.client_id) and same_secret(secret, self.client_secret)):
                self.sim.event("token refused for client %r" % cid)
                raise oauth_error(401, "invalid_client", "unknown client or wrong secret",
                                  challenge)
            out = self.issue_token(cid, self.opts.token_ttl)
        self.sim.event("token issued to client %s" % cid)
        return oauth_token(out)

    # -- requests kept for /_sim/requests: not the token endpoint's (it carries the secret)
    def keeps(self, method, path):
        return method not in ("GET", "HEAD") and path.startswith(DSCC_API + "/")

    # -- one API request
    def handle_request(self, method, path, route, segs, query, headers, body, host,
                       peer=None):
        if route is None:
            raise ApiError(404, "no such resource: %s" % path)
        if route.template == DSCC_TOKEN_PATH:
            return self.token_endpoint(method, headers, body)
        fn = route.handlers.get(method)
        if fn is None:
            raise ApiError(405, "%s is not allowed here" % method, [("Allow", route.allow)])
        ctx = DCtx()
        ctx.d = self
        ctx.est = self.est
        ctx.method = method
        ctx.route = route
        ctx.path = path
        ctx.query = query
        ctx.headers = headers
        ctx.base = "%s://%s" % (self.sim.scheme, host or self.sim.default_host)
        ctx.p = {t[1:-1]: v for t, v in zip(route.template.split("/")[1:], segs)
                 if t.startswith("{")}
        ctx.body = None
        ctx.peer = peer
        ctx.task = None
        ctx.audit = None
        with self.sim.lock:
            now = ctx.now = time.time()
            auth = headers.get("authorization", "")
            challenge = [("WWW-Authenticate", 'Bearer realm="dscc"')]
            if auth[:7].lower() != "bearer " or not auth[7:].strip():
                raise ApiError(401, "missing bearer token: send 'Authorization: Bearer "
                               "<access token>'", challenge)
            tok = auth[7:].strip()
            exp = self.est.tokens.get(tok)
            if exp is None or exp < now:
                self.est.tokens.pop(tok, None)
                raise ApiError(401, "the access token is unknown or has expired", [(
                    "WWW-Authenticate", 'Bearer realm="dscc", error="invalid_token"')])
            self.settle(now)
            schema = route.schemas.get(method)
            if body:
                if media_type(headers) != "application/json":
                    raise ApiError(415, "request bodies must be application/json (got %r)"
                                   % media_type(headers))
                try:
                    ctx.body = json.loads(body)
                except (ValueError, UnicodeDecodeError) as e:
                    raise ApiError(400, "malformed JSON body: %s" % e)
            if ctx.body is None and route.body_required.get(method):
                raise ApiError(400, "%s %s needs a JSON request body" % (method,
                                                                        route.template))
            if ctx.body is not None:
                if schema is None:
                    raise ApiError(400, "%s %s takes no request body" % (method,
                                                                        route.template))
                errs = self.oc.validate(schema, ctx.body, self.spec, strict=True)
                if errs:
                    raise ApiError(400, "invalid request body: %s" % "; ".join(errs[:5]))
            out = fn(ctx)
            if method != "GET" and 200 <= out[0] < 300:
                self.audit_request(ctx)
            return out

    # -- audit events
    def audit_request(self, ctx):
        """Append the audit event of an accepted change (lock held)."""
        kind, verb = audit_kind(ctx.route.template, ctx.method)
        task = ctx.task
        message, res = ctx.audit if ctx.audit is not None else (None, None)
        if message is None:
            message = task.display if task is not None else "%s %s" % (ctx.method, ctx.path)
        if res is None and task is not None and task.resources:
            typed = [r for r in task.resources if r["type"] == kind] or task.resources[:1]
            pick = typed[-1] if verb == "create" else typed[0]
            res = (unquote(pick["resourceUri"].rsplit("/", 1)[1]), pick["name"], pick["type"])
        if res is None and ctx.route.template.endswith("}"):
            rid = list(ctx.p.values())[-1]
            res = (rid, rid, kind)
        self.est.add_audit(ctx.now * 1000, "%s.%s" % (kind, verb), message, res, ctx.path,
                           audit_user(self.client_id), ctx.peer,
                           task.id if task is not None else None)

    # -- tasks
    def settle(self, now):
        est = self.est
        if est.pending and est.pending[0][0] <= now:
            self.sim.settle(est, now)
            est.gen += 1

    def run_task(self, ctx, display, resources, steps, effect, fail=None, busy=()):
        est = self.est
        tid = uuid_of("%032x" % random.getrandbits(128))
        dur = 0.0 if self.opts.sync else self.opts.task_seconds
        task = ctx.task = DTask(tid, display, ctx.now, dur, steps, resources, effect, fail,
                                list(busy), customer=est.customer, user=self.client_id,
                                poll=self.poll)
        est.tasks.append(task)
        est.task_by_id[tid] = task
        self.sim.start_task(est, task)
        if dur == 0:
            self.settle(ctx.now)
        uri = u_top("tasks", tid)
        return 202, dumps({"taskUri": uri, "status": "SUBMITTED",
                           "message": "Successfully submitted"}), [("Location", ctx.base + uri)]

    # -- /_sim: the shared controls' hooks
    login_what = "token"
    secret = ("client_secret", "client secret")
    token_owner = ("client_id", "client_id")
    event_field = "description"
    event_what = "audit event"

    def logins(self):
        return self.est.tokens

    def add_sim_event(self, text, same):
        est = self.est
        rec = est.add_audit(time.time() * 1000, "sim.event", text, None, "/_sim/events",
                            SEED_USER, None, same=same)
        return dumps(overlay(self.skeleton({"$ref": "#/components/schemas/AuditData"}),
                             r_audit(est, rec)))


# -- dscc handlers: lookups

def d_system(ctx, key="systemId", dt=None):
    s = ctx.est.systems.get(ctx.p[key])
    if s is None or (dt is not None and s.dt != dt):
        raise ApiError(404, "storage system '%s' not found%s" % (
            ctx.p[key], "" if dt is None else " among the device-type%d systems" % dt))
    return s


def d_volume(ctx, s, key):
    v = s.vols.get(ctx.p[key])
    if v is None:
        raise ApiError(404, "volume '%s' not found on storage system '%s'" % (ctx.p[key], s.id))
    return v


def d_dt_volume(ctx, dt, key=None):
    """(system, volume) of a device type's volume path; key: what the path calls the volume
    (default: the type's own name, id or volumeId)."""
    s = d_system(ctx, "systemId", dt)
    return s, d_volume(ctx, s, key or ("id" if dt == 1 else "volumeId"))


def d_snapshot(ctx, s, vrec, key="snapshotId"):
    snap = ctx.est.snaps(s, vrec).get(ctx.p[key])
    if snap is None:
        raise ApiError(404, "snapshot '%s' not found on volume '%s'" % (ctx.p[key], vrec.id))
    return snap


def d_lookup(table, rid, what):
    rec = table.get(rid)
    if rec is None:
        raise ApiError(404, "%s '%s' not found" % (what, rid))
    return rec


def fail_if(name, what):
    if isinstance(name, str) and name.startswith("fail-"):
        return "%s of '%s' failed: the storage system rejected the request (simulated " \
               "failure)" % (what, name)
    return None


def check_busy(s, vrec):
    if s.busy[vrec.id]:
        raise ApiError(409, "volume '%s' is in use by a running task" % vrec.id)


def vol_ref(s, vrec):
    return ref(vrec.x["name"], u_vol(s, vrec.id), "volume")


# -- systems, pools, volume sets

def h_d_systems(ctx):
    return ctx.d.listing(ctx, list(ctx.est.systems.values()), r_sys_fleet)


def h_d_system(ctx):
    return ctx.d.one(ctx, d_system(ctx, "id"), r_sys_fleet)


def h_d_systems_dt(dt):
    def handler(ctx):
        systems = [s for s in ctx.est.systems.values() if s.dt == dt]
        return ctx.d.listing(ctx, systems, r_sys1 if dt == 1 else r_sys2)
    return handler


def h_d_system_dt(dt, key):
    def handler(ctx):
        return ctx.d.one(ctx, d_system(ctx, key, dt), r_sys1 if dt == 1 else r_sys2)
    return handler


def h_d_pools(dt, key="systemId"):
    fn = {None: r_pool_fleet, 1: r_pool1, 2: r_pool2}[dt]

    def handler(ctx):
        s = d_system(ctx, key, dt)
        return ctx.d.listing(ctx, list(s.pools.values()), fn)
    return handler


def h_d_pool(dt, key):
    fn = {None: r_pool_fleet, 1: r_pool1, 2: r_pool2}[dt]

    def handler(ctx):
        s = d_system(ctx, "systemId", dt)
        return ctx.d.one(ctx, d_lookup(s.pools, ctx.p[key], "storage pool"), fn)
    return handler


def h_d_pool_volumes(dt):
    fn = {None: r_vol_fleet, 1: r_vol1}[dt]

    def handler(ctx):
        s = d_system(ctx, "systemId", dt)
        pool = d_lookup(s.pools, ctx.p["id"], "storage pool")
        return ctx.d.listing(ctx, [v for v in s.vols.values() if v.x["pool"] == pool.id], fn)
    return handler


def h_d_vsets(ctx):
    recs = [vs for s in ctx.est.systems.values() for vs in s.vsets.values()]
    return ctx.d.listing(ctx, recs, r_vset)


def h_d_sys_vsets(ctx):
    s = d_system(ctx)
    return ctx.d.listing(ctx, list(s.vsets.values()), r_vset_sys)


def h_d_sys_vset(ctx):
    s = d_system(ctx)
    return ctx.d.one(ctx, d_lookup(s.vsets, ctx.p["id"], "volume set"), r_vset_sys)


def h_d_vset(ctx):
    return ctx.d.one(ctx, d_lookup(ctx.est.vset_index, ctx.p["id"], "volume set")[1], r_vset)


# -- volumes

def h_d_volumes(ctx):
    recs = [v for s in ctx.est.systems.values() for v in s.vols.values()]
    return ctx.d.listing(ctx, recs, r_vol_fleet)


def h_d_volume(ctx):
    return ctx.d.one(ctx, d_lookup(ctx.est.vol_index, ctx.p["id"], "volume")[1], r_vol_fleet)


def h_d_sys_volumes(ctx):
    s = d_system(ctx)
    return ctx.d.listing(ctx, list(s.vols.values()), r_vol_fleet)


def h_d_volumes_dt(dt):
    def handler(ctx):
        s = d_system(ctx, "systemId", dt)
        return ctx.d.listing(ctx, list(s.vols.values()), r_vol1 if dt == 1 else r_vol2)
    return handler


def h_d_volume_dt(dt, key):
    def handler(ctx):
        s = d_system(ctx, "systemId", dt)
        return ctx.d.one(ctx, d_volume(ctx, s, key), r_vol1 if dt == 1 else r_vol2)
    return handler


def free_pool(s, pool, size):
    cap = pool.x["capacity"]
    free = cap - s.pool_used(pool.id)
    if free < size:
        raise ApiError(422, "storage pool '%s' has not enough free space (%d MiB free, "
                       "%d MiB needed)" % (pool.x["name"], free, size))


def unique_volume_name(s, name):
    if any(v.x["name"] == name for v in s.vols.values()):
        raise ApiError(409, "storage system '%s' already has a volume named %r" % (s.id, name))


def create_volumes(ctx, s, names, size, pool, thin=True, comment="", parent=None,
                   used=None, base_snap=None, export=None, what="create volume"):
    """Reserve ids for new volumes and run the task that makes them."""
    est = ctx.est
    for n in names:
        unique_volume_name(s, n)
    free_pool(s, pool, size * len(names))
    planned = [(est.new_id(s.info["idlen"]), n) for n in names]
    pid = pool.id
    src_id = parent.id if parent is not None else None

    def effect():
        if src_id is not None and src_id not in s.vols:
            raise TaskFailed("source volume '%s' was deleted" % src_id)
        if s.pool_used(pid) + size * len(planned) > s.pools[pid].x["capacity"]:
            raise TaskFailed("storage pool '%s' has not enough free space" % pool.x["name"])
        made = []
        for vid, n in planned:
            if any(v.x["name"] == n for v in s.vols.values()):
                raise TaskFailed("a volume named %r appeared meanwhile" % n)
        for vid, n in planned:
            v = est.add_volume(s, vid, n, size, size // 20 if used is None else used, pid,
                               int(time.time()), 0, thin=thin, parent=src_id, comment=comment)
            v.x["snaps"] = {}
            v.x["base_snap"] = base_snap
            if export is not None and export in est.groups:
                v.x["exports"][export] = next_lun(est, v)
            made.append(v)
        est.changed()
        ctx.d.sim.event("%s on %s: %s" % (what, s.id, ", ".join(v.id for v in made)))

    fail = next((fail_if(n, what) for n in names if fail_if(n, what)), None)
    resources = [ref(n, u_vol(s, vid), "volume") for vid, n in planned]
    if parent is not None:
        resources.insert(0, vol_ref(s, parent))
    display = "%s %s" % ("Clone volume %s to" % parent.x["name"] if parent is not None
                         else "Create volume", ", ".join(names))
    return ctx.d.run_task(ctx, display, resources,
                          ["Validating parameters", "Allocating space in %s" % pool.x["name"],
                           "Creating volume %s" % names[0]],
                          effect, fail, [(s, src_id)] if src_id else ())


def h_d_vol1_create(ctx):
    s = d_system(ctx, "systemId", 1)
    b = ctx.body
    pool = s.pool_by_name(b["userCpg"])
    if pool is None:
        raise ApiError(422, "userCpg: storage system '%s' has no CPG named %r (known: %s)" % (
            s.id, b["userCpg"], ", ".join(p.x["name"] for p in s.pools.values())))
    if b["sizeMib"] < 1:
        raise ApiError(422, "sizeMib: must be 1 or more")
    count = b.get("count") or 1
    if not 1 <= count <= 100:
        raise ApiError(422, "count: must be from 1 to 100")
    names = [b["name"]] if count == 1 else ["%s.%d" % (b["name"], k) for k in range(count)]
    return create_volumes(ctx, s, names, b["sizeMib"], pool, comment=b.get("comments") or "")


def h_d_vol2_create(ctx):
    s = d_system(ctx, "systemId", 2)
    b = ctx.body
    pid = b.get("pool_id")
    pool = s.pools.get(pid) if pid else next(iter(s.pools.values()))
    if pool is None:
        raise ApiError(422, "pool_id: storage system '%s' has no pool '%s'" % (s.id, pid))
    if b.get("clone"):
        snid = b.get("base_snap_id")
        if not snid:
            raise ApiError(422, "base_snap_id: required with clone=true")
        src = next((v for v in s.vols.values() if snid in ctx.est.snaps(s, v)), None)
        if src is None:
            raise ApiError(422, "base_snap_id: no snapshot '%s' on storage system '%s'"
                           % (snid, s.id))
        snap = ctx.est.snaps(s, src)[snid]
        return create_volumes(ctx, s, [b["name"]], src.x["size"], s.pools[src.x["pool"]],
                              comment=b.get("description", ""), parent=src,
                              used=snap.x["used"], base_snap=snid, what="clone volume")
    size = b.get("size")
    if size is None:
        raise ApiError(422, "size: required to create a volume (MiB) unless clone=true")
    if size < 1:
        raise ApiError(422, "size: must be 1 or more")
    return create_volumes(ctx, s, [b["name"]], size, pool)


def h_d_vol_clone(dt):
    def handler(ctx):
        s = d_system(ctx, "systemId", dt)
        src = d_volume(ctx, s, "id" if dt == 1 else "volumeId")
        b = ctx.body
        export = None
        if dt == 1:
            name = b["destinationVolume"]
            pool = s.pools[src.x["pool"]]
            for oc_ in b.get("offlineClone") or ():
                for cv in (oc_ or {}).get("createVolume") or ():
                    cpg = (cv or {}).get("destinationCpg")
                    if cpg:
                        pool = s.pool_by_name(cpg)
                        if pool is None:
                            raise ApiError(422, "offlineClone.createVolume.destinationCpg: "
                                           "no CPG named %r" % cpg)
            for on in b.get("onlineClone") or ():
                on = on or {}
                if on.get("destinationCpg"):
                    pool = s.pool_by_name(on["destinationCpg"])
                    if pool is None:
                        raise ApiError(422, "onlineClone.destinationCpg: no CPG named %r"
                                       % on["destinationCpg"])
                if on.get("hostGroupId"):
                    export = d_lookup(ctx.est.groups, on["hostGroupId"], "host group").id
        else:
            name = b["clone_volume_name"]
            pool = s.pools[src.x["pool"]]
            if b.get("host_group_id"):
                export = d_lookup(ctx.est.groups, b["host_group_id"], "host group").id
        return create_volumes(ctx, s, [name], src.x["size"], pool, thin=src.x["thin"],
                              parent=src, used=src.x["used"], export=export,
                              what="clone volume")
    return handler


def h_d_vol_delete(dt):
    def handler(ctx):
        s, vrec = d_dt_volume(ctx, dt)
        q = ctx.query
        truthy = ("true", "1", "yes")
        if dt == 1:
            unexport = q.get("unExport", "").lower() in truthy
            cascade = q.get("cascade", "").lower() in truthy
        else:
            unexport = cascade = (q.get("force", "").lower() in truthy or
                                  q.get("offline", "").lower() in truthy)
        check_busy(s, vrec)
        if vrec.x["exports"] and not unexport:
            raise ApiError(409, "volume '%s' is exported to %d host group(s); un-export it "
                           "first or use %s=true" % (vrec.id, len(vrec.x["exports"]),
                                                     "unExport" if dt == 1 else "force"))
        nsnaps = ctx.est.snap_count(vrec)
        if nsnaps and not cascade:
            raise ApiError(409, "volume '%s' has %d snapshot(s); delete them first or use "
                           "%s=true" % (vrec.id, nsnaps, "cascade" if dt == 1 else "force"))
        if any(v.x["parent"] == vrec.id for v in s.vols.values()):
            raise ApiError(409, "volume '%s' has clones" % vrec.id)
        vid = vrec.id

        def effect():
            v = s.vols.get(vid)
            if v is None:
                raise TaskFailed("volume '%s' was already deleted" % vid)
            ctx.est.remove_volume(s, v)
            ctx.est.changed()
            ctx.d.sim.event("volume %s deleted on %s" % (vid, s.id))

        return ctx.d.run_task(ctx, "Delete volume %s" % vrec.x["name"], [vol_ref(s, vrec)],
                              ["Validating volume %s" % vrec.x["name"], "Removing exports",
                               "Deleting volume %s" % vrec.x["name"]],
                              effect, fail_if(vrec.x["name"], "delete volume"), [(s, vid)])
    return handler


def edit_volume(ctx, s, vrec, changes, pool, fail_name):
    """Run the task of a volume edit: changes (record fields) and a move to pool
    (or staying in it) are applied when the task succeeds. A new size and a move
    are charged to the pool as creation is. Other tasks on the volume do not
    block an edit; the edit's task blocks a deletion as they do."""
    est = ctx.est
    new_name = changes.get("name")
    if new_name is not None and new_name != vrec.x["name"]:
        unique_volume_name(s, new_name)
    cur = vrec.x["size"]
    grow = changes.get("size", cur) - (cur if pool.id == vrec.x["pool"] else 0)
    if grow > 0:
        free_pool(s, pool, grow)
    vid, pid = vrec.id, pool.id

    def effect():
        v = s.vols.get(vid)
        if v is None:
            raise TaskFailed("volume '%s' was deleted" % vid)
        if new_name is not None and any(o.x["name"] == new_name and o.id != vid
                                        for o in s.vols.values()):
            raise TaskFailed("a volume named %r appeared meanwhile" % new_name)
        if pid not in s.pools:
            raise TaskFailed("storage pool '%s' is gone" % pid)
        need = changes.get("size", v.x["size"]) - (v.x["size"] if v.x["pool"] == pid else 0)
        if need > 0 and s.pool_used(pid) + need > s.pools[pid].x["capacity"]:
            raise TaskFailed("storage pool '%s' has not enough free space"
                             % s.pools[pid].x["name"])
        diff = {k: val for k, val in changes.items() if v.x[k] != val}
        if v.x["pool"] != pid:
            diff["pool"] = pid
        if not diff:
            return
        v.x.update(diff)
        v.x["mtime"] = int(time.time())
        est.changed(v)
        ctx.d.sim.event("volume %s updated on %s: %s" % (vid, s.id, ", ".join(sorted(diff))))

    name = vrec.x["name"]
    return ctx.d.run_task(ctx, "Update volume %s" % name, [vol_ref(s, vrec)],
                          ["Validating parameters", "Updating volume %s" % name,
                           "Refreshing volume %s" % name],
                          effect, fail_if(fail_name, "update volume"), [(s, vid)])


def edit_size(vrec, field, size, changes):
    """A new size (MiB) into changes; 400 on shrinking."""
    cur = vrec.x["size"]
    if size is not None and size < cur:
        raise ApiError(400, "invalid request body: %s: volumes only grow: %d MiB is less than "
                       "the current %d MiB" % (field, size, cur))
    if size is not None and size != cur:
        changes["size"] = size


def edit_name(b, field="name"):
    name = b.get(field)
    if name is not None and not name:
        raise ApiError(400, "invalid request body: %s: must not be empty" % field)
    return name


def edit_range(b, field, low, high, also=()):
    v = b.get(field)
    if v is not None and v not in also and not low <= v <= high:
        raise ApiError(400, "invalid request body: %s: must be %s%d to %d" % (
            field, "".join("%d or " % a for a in also), low, high))
    return v


def edit_start(ctx, dt, key):
    """(system, volume, body without its null fields, changes, new name or None) of a
    volume's PUT; the changes hold the name so far."""
    s, vrec = d_dt_volume(ctx, dt, key)
    b = {k: v for k, v in ctx.body.items() if v is not None}
    name = edit_name(b)
    return s, vrec, b, {} if name is None else {"name": name}, name


def h_d_vol1_edit(ctx):
    """PUT .../device-type1/{systemId}/volumes/{id}: volumePut; null fields are absent."""
    s, vrec, b, changes, name = edit_start(ctx, 1, "id")
    size = b.get("sizeMib")
    if size is not None:
        if size != int(size):
            raise ApiError(400, "invalid request body: sizeMib: must be a whole number of MiB, "
                           "got %r" % size)
        size = int(size)
    edit_size(vrec, "sizeMib", size, changes)
    for field, key in (("userAllocWarning", "warn_user"), ("snapshotAllocWarning", "warn_snap")):
        v = edit_range(b, field, 0, 100)
        if v is not None:
            changes[key] = v
    pool = s.pools[vrec.x["pool"]]
    if "userCpgName" in b:
        pool = s.pool_by_name(b["userCpgName"])
        if pool is None:
            raise ApiError(422, "userCpgName: storage system '%s' has no CPG named %r (known: "
                           "%s)" % (s.id, b["userCpgName"],
                                    ", ".join(p.x["name"] for p in s.pools.values())))
    conv = b.get("conversionType")
    if conv is not None:
        changes["conv"] = conv
        if conv in ("CONVERSIONTYPE_THIN", "CONVERSIONTYPE_DDS"):
            changes["thin"] = True
        if conv == "CONVERSIONTYPE_DDS":
            changes["dedupe"] = True
    if "dataReduction" in b:
        changes["dr"] = b["dataReduction"]
    return edit_volume(ctx, s, vrec, changes, pool, name or vrec.x["name"])


def h_d_vol2_edit(ctx):
    """PUT .../device-type2/{systemId}/volumes/{volumeId}: NimbleEditVolumeInput."""
    s, vrec, b, changes, name = edit_start(ctx, 2, "volumeId")
    edit_range(b, "limit_iops", 256, 4294967294, also=(-1,))
    edit_range(b, "limit_mbps", 1, 4294967294, also=(-1,))
    edit_range(b, "limit", 0, 100)
    edit_size(vrec, "size", b.get("size"), changes)
    for field, key in (("description", "comment"), ("online", "online"),
                       ("caching_enabled", "caching"), ("dedupe_enabled", "dedupe"),
                       ("limit_iops", "limit_iops"), ("limit_mbps", "limit_mbps"),
                       ("limit", "limit"), ("app_uuid", "app_uuid"),
                       ("perfpolicy_id", "perfpolicy")):
        if field in b:
            changes[key] = b[field]
    # folder_id, owned_by_group_id: accepted and ignored (no folders, one group per system)
    if b.get("online") is False and vrec.x["online"] and vrec.x["exports"] and \
            not b.get("force"):
        raise ApiError(409, "volume '%s' is exported to %d host group(s): taking it offline "
                       "needs force=true" % (vrec.id, len(vrec.x["exports"])))
    return edit_volume(ctx, s, vrec, changes, s.pools[vrec.x["pool"]], name or vrec.x["name"])


def next_lun(est, vrec, hosts=None):
    hosts = hosts if hosts is not None else vol_hosts(est, vrec)
    used = set()
    for s in est.systems.values():
        for v in s.vols.values():
            for gid, lun in v.x["exports"].items():
                g = est.groups.get(gid)
                if g and any(h in g.x["hosts"] for h in hosts):
                    used.add(lun)
    n = 1
    while n in used:
        n += 1
    return n


def h_d_vol_export(dt, unexport):
    def handler(ctx):
        s, vrec = d_dt_volume(ctx, dt)
        est = ctx.est
        b = ctx.body or {}
        field = "hostGroupIds" if dt == 1 else "hostGroups"
        gids = b.get(field) or []
        if not gids:
            raise ApiError(422, "%s: name at least one host group" % field)
        groups = []
        for gid in gids:
            g = est.groups.get(gid)
            if g is None:
                raise ApiError(404, "%s: host group '%s' not found" % (field, gid))
            if unexport and gid not in vrec.x["exports"]:
                raise ApiError(422, "%s: volume '%s' is not exported to host group '%s'"
                               % (field, vrec.id, gid))
            if not unexport and gid in vrec.x["exports"]:
                raise ApiError(409, "%s: volume '%s' is already exported to host group '%s'"
                               % (field, vrec.id, gid))
            groups.append(g)
        vid = vrec.id

        def effect():
            v = s.vols.get(vid)
            if v is None:
                raise TaskFailed("volume '%s' was deleted" % vid)
            for g in groups:
                if unexport:
                    v.x["exports"].pop(g.id, None)
                elif g.id in est.groups:
                    v.x["exports"][g.id] = next_lun(est, v, g.x["hosts"])
            est.changed(v)
            ctx.d.sim.event("volume %s %s %s" % (vid, "un-exported from" if unexport
                                                  else "exported to",
                                                  ", ".join(g.id for g in groups)))

        names = ", ".join(g.x["name"] for g in groups)
        what = "un-export volume" if unexport else "export volume"
        fail = fail_if(vrec.x["name"], what) or next(
            (fail_if(g.x["name"], what) for g in groups if fail_if(g.x["name"], what)), None)
        return ctx.d.run_task(
            ctx, "%s %s %s %s" % ("Un-export" if unexport else "Export", vrec.x["name"],
                                  "from" if unexport else "to", names),
            [vol_ref(s, vrec)] + [ref(g.x["name"], u_top("host-initiator-groups", g.id),
                                      "host-initiator-group") for g in groups],
            ["Validating host groups %s" % names,
             "%s VLUNs" % ("Removing" if unexport else "Creating"), "Updating host paths"],
            effect, fail, [(s, vid)])
    return handler


def h_d_vluns(ctx):
    s, vrec = d_dt_volume(ctx, 1, "id")
    recs = [DRec(vlid, vid=vrec.id, lun=lun, host=hid, sys=s, vol=vrec, gen=vrec.x["gen"])
            for vlid, lun, hid in vlun_list(ctx.est, vrec)]
    return ctx.d.listing(ctx, recs, r_vlun, live=True)


# -- snapshots

def h_d_snapshots(dt):
    def handler(ctx):
        s, vrec = d_dt_volume(ctx, dt)
        return ctx.d.listing(ctx, list(ctx.est.snaps(s, vrec).values()),
                             r_snap1 if dt == 1 else r_snap2, s, vrec)
    return handler


def h_d_snapshot(dt):
    def handler(ctx):
        s, vrec = d_dt_volume(ctx, dt, "volumeId")
        return ctx.d.one(ctx, d_snapshot(ctx, s, vrec), r_snap1 if dt == 1 else r_snap2,
                         s, vrec)
    return handler


def h_d_snapshot_create(dt):
    def handler(ctx):
        s, vrec = d_dt_volume(ctx, dt)
        est = ctx.est
        b = ctx.body
        now = ctx.now
        if dt == 1:
            pattern = b["namePattern"]
            if pattern == "CUSTOM":
                name = b.get("customName")
                if not name:
                    raise ApiError(400, "invalid request body: customName: required when "
                                   "namePattern is CUSTOM")
            elif pattern == "PARENT_SEC_SINCE_EPOCH":
                name = "%s.%d" % (vrec.x["name"], int(now))
            else:
                name = "%s.%s" % (vrec.x["name"], time.strftime("%Y%m%d%H%M%S",
                                                                 time.gmtime(now)))
            expire = b.get("expireSecs")
            retain = b.get("retainSecs")
            fields = {"ro": b.get("readOnly") is not False, "comment": b.get("comment") or "",
                      "online": False, "writable": b.get("readOnly") is False,
                      "metadata": []}
        else:
            name = b["name"]
            expire = retain = None
            fields = {"ro": not b.get("writable", False), "comment": "",
                      "online": bool(b.get("online", False)),
                      "writable": bool(b.get("writable", False)),
                      "metadata": list(b.get("metadata") or [])}
        snaps = est.snaps(s, vrec)
        if any(sn.x["name"] == name for sn in snaps.values()):
            raise ApiError(409, "volume '%s' already has a snapshot named %r" % (vrec.id, name))
        snid = est.new_id(s.info["idlen"])
        vid = vrec.id

        def effect():
            v = s.vols.get(vid)
            if v is None:
                raise TaskFailed("volume '%s' was deleted" % vid)
            coll = est.snaps(s, v)
            if any(sn.x["name"] == name for sn in coll.values()):
                raise TaskFailed("a snapshot named %r appeared meanwhile" % name)
            t = time.time()
            v.x["seq"] += 1
            coll[snid] = DRec(snid, vol=vid, idx=v.x["seq"], name=name, ct=int(t),
                              used=v.x["used"], expire=int(t + expire) if expire else None,
                              retain=int(t + retain) if retain else None, gen=1, **fields)
            est.changed(v)
            ctx.d.sim.event("snapshot %s created on volume %s" % (snid, vid))

        uri = "%s/snapshots/%s" % (u_vol(s, vid), snid)
        return ctx.d.run_task(ctx, "Create snapshot %s of volume %s" % (name, vrec.x["name"]),
                              [vol_ref(s, vrec), ref(name, uri, "snapshot")],
                              ["Quiescing volume %s" % vrec.x["name"],
                               "Taking snapshot %s" % name, "Resuming I/O"],
                              effect, fail_if(name, "create snapshot"), [(s, vid)])
    return handler


def h_d_snapshot_delete(dt):
    def handler(ctx):
        s, vrec = d_dt_volume(ctx, dt, "volumeId")
        snap = d_snapshot(ctx, s, vrec)
        if any(v.x["base_snap"] == snap.id for v in s.vols.values()):
            raise ApiError(409, "snapshot '%s' is the base of a clone" % snap.id)
        vid, snid = vrec.id, snap.id
        est = ctx.est

        def effect():
            v = s.vols.get(vid)
            if v is None or snid not in est.snaps(s, v):
                raise TaskFailed("snapshot '%s' was already deleted" % snid)
            del est.snaps(s, v)[snid]
            est.changed(v)
            ctx.d.sim.event("snapshot %s deleted from volume %s" % (snid, vid))

        return ctx.d.run_task(ctx, "Delete snapshot %s" % snap.x["name"],
                              [vol_ref(s, vrec), ref(snap.x["name"], "%s/snapshots/%s" % (
                                  u_vol(s, vid), snid), "snapshot")],
                              ["Validating snapshot %s" % snap.x["name"], "Removing exports",
                               "Deleting snapshot %s" % snap.x["name"]],
                              effect, fail_if(snap.x["name"], "delete snapshot"), [(s, vid)])
    return handler


def restore_task(ctx, s, vrec, snap, target):
    est = ctx.est
    tid, used, snid = target.id, snap.x["used"], snap.id

    def effect():
        t = s.vols.get(tid)
        if t is None:
            raise TaskFailed("volume '%s' was deleted" % tid)
        t.x["used"] = min(used, t.x["size"])
        est.changed(t)
        ctx.d.sim.event("volume %s restored from snapshot %s" % (tid, snid))

    return ctx.d.run_task(ctx, "Restore volume %s from snapshot %s" % (
        target.x["name"], snap.x["name"]), [vol_ref(s, target), ref(
            snap.x["name"], "%s/snapshots/%s" % (u_vol(s, vrec.id), snid), "snapshot")],
        ["Quiescing volume %s" % target.x["name"],
         "Copying blocks from snapshot %s" % snap.x["name"], "Resuming I/O"],
        effect, fail_if(snap.x["name"], "restore"), [(s, vrec.id), (s, tid)])


def h_d_snapshot_promote(ctx):
    s, vrec = d_dt_volume(ctx, 1, "volumeId")
    snap = d_snapshot(ctx, s, vrec)
    target = vrec
    tname = (ctx.body or {}).get("target")
    if tname:
        target = next((v for v in s.vols.values() if v.x["name"] == tname), None)
        if target is None:
            raise ApiError(422, "target: no volume named %r on storage system '%s'"
                           % (tname, s.id))
    check_busy(s, target)
    return restore_task(ctx, s, vrec, snap, target)


def h_d_vol2_restore(ctx):
    s, vrec = d_dt_volume(ctx, 2, "volumeId")
    snid = ctx.body["base_snap_id"]
    snap = ctx.est.snaps(s, vrec).get(snid)
    if snap is None:
        raise ApiError(422, "base_snap_id: no snapshot '%s' on volume '%s'" % (snid, vrec.id))
    check_busy(s, vrec)
    return restore_task(ctx, s, vrec, snap, vrec)


# -- hosts, host groups, initiators

def h_d_hosts(ctx):
    return ctx.d.listing(ctx, list(ctx.est.hosts.values()), r_host)


def h_d_host(ctx):
    return ctx.d.one(ctx, d_lookup(ctx.est.hosts, ctx.p["hostId"], "host"), r_host)


def check_host_input(est, b, where=""):
    if any(h.x["name"] == b["name"] for h in est.hosts.values()):
        raise ApiError(409, "%sname: a host named %r already exists" % (where, b["name"]))
    for gid in b.get("hostGroupIds") or ():
        d_lookup(est.groups, gid, where + "hostGroupIds: host group")
    for iid in b.get("initiatorIds") or ():
        i = d_lookup(est.inits, iid, where + "initiatorIds: initiator")
        if i.x["host"] is not None:
            raise ApiError(409, "%sinitiatorIds: initiator '%s' belongs to another host"
                           % (where, iid))
    for k, spec in enumerate(b.get("initiatorsToCreate") or ()):
        if any(i.x["address"] == spec["address"] for i in est.inits.values()):
            raise ApiError(409, "%sinitiatorsToCreate[%d].address: an initiator with "
                           "address %r exists" % (where, k, spec["address"]))


def make_host(est, b, now):
    hid = est.new_id(32)
    h = est.add_host(hid, b["name"], int(now), mix(est.seed, int(hid[:12], 16)), "app",
                     user_created=b["userCreated"], os_name=b["operatingSystem"],
                     with_initiator=False)
    x = h.x
    for key, field in (("fqdn", "fqdn"), ("ip", "ipAddress"), ("persona", "persona"),
                       ("comment", "comment"), ("contact", "contact"),
                       ("location", "location"), ("model", "model"), ("subnet", "subnet"),
                       ("protocol", "protocol")):
        if b.get(field) is not None:
            x[key] = b[field]
    for iid in b.get("initiatorIds") or ():
        est.inits[iid].x["host"] = hid
        x["inits"].append(iid)
        est.changed(est.inits[iid])
    for spec in b.get("initiatorsToCreate") or ():
        i = est.add_initiator(est.new_id(32), spec.get("name") or spec["address"],
                              spec["address"], spec["protocol"], hid, spec.get("ipAddress", ""))
        for key, field in (("vendor", "vendor"), ("hba", "hbaModel"),
                           ("driver", "driverVersion"), ("firmware", "firmwareVersion"),
                           ("speed", "hostSpeed")):
            if spec.get(field) is not None:
                i.x[key] = spec[field]
    if x["inits"] and b.get("protocol") is None:
        x["protocol"] = est.inits[x["inits"][0]].x["protocol"]
    for gid in b.get("hostGroupIds") or ():
        g = est.groups[gid]
        if hid not in g.x["hosts"]:
            g.x["hosts"].append(hid)
            x["groups"].append(gid)
            est.changed(g)
    est.changed()
    return h


def h_d_host_create(ctx):
    est = ctx.est
    check_host_input(est, ctx.body)
    h = make_host(est, ctx.body, ctx.now)
    ctx.audit = ("Create host %s" % h.x["name"], (h.id, h.x["name"], "host-initiator"))
    ctx.d.sim.event("host %s created" % h.id)
    return 200, ctx.d.render(h, ctx.d.response_schema(ctx), r_host), None


def unlink_deleted(table, rid, what, others, field):
    """Takes rid out of table (TaskFailed if it is gone already) and out of the `field` list
    of each of others; returns its record."""
    x = table.pop(rid, None)
    if x is None:
        raise TaskFailed("%s '%s' was already deleted" % (what, rid))
    for o in others:
        if rid in o.x[field]:
            o.x[field].remove(rid)
    return x


def h_d_host_delete(ctx):
    est = ctx.est
    h = d_lookup(est.hosts, ctx.p["hostId"], "host")
    hid = h.id

    def effect():
        x = unlink_deleted(est.hosts, hid, "host", est.groups.values(), "hosts")
        for iid in x.x["inits"]:
            est.inits.pop(iid, None)
        est.changed()
        ctx.d.sim.event("host %s deleted" % hid)

    return ctx.d.run_task(ctx, "Delete host %s" % h.x["name"],
                          [ref(h.x["name"], u_top("host-initiators", hid), "host-initiator")],
                          ["Validating host %s" % h.x["name"], "Removing host paths",
                           "Deleting host %s" % h.x["name"]],
                          effect, fail_if(h.x["name"], "delete host"))


def h_d_host_volumes(ctx):
    est = ctx.est
    h = d_lookup(est.hosts, ctx.p["hostId"], "host")
    recs = [DRec(v.id, host=h.id, sys=s, vol=v)
            for s in est.systems.values() for v in s.vols.values()
            if any(h.id in est.groups[g].x["hosts"] for g in v.x["exports"]
                   if g in est.groups)]
    return ctx.d.listing(ctx, recs, r_host_volume, live=True)


def h_d_groups(ctx):
    return ctx.d.listing(ctx, list(ctx.est.groups.values()), r_group)


def h_d_group(ctx):
    return ctx.d.one(ctx, d_lookup(ctx.est.groups, ctx.p["hostGroupId"], "host group"),
                     r_group)


def h_d_group_create(ctx):
    est = ctx.est
    b = ctx.body
    if any(g.x["name"] == b["name"] for g in est.groups.values()):
        raise ApiError(409, "name: a host group named %r already exists" % b["name"])
    for hid in b.get("hostIds") or ():
        d_lookup(est.hosts, hid, "hostIds: host")
    for k, hb in enumerate(b.get("hostsToCreate") or ()):
        check_host_input(est, hb, "hostsToCreate[%d]." % k)
    gid = est.new_id(32)
    members = list(dict.fromkeys(b.get("hostIds") or ()))
    g = est.add_group(gid, b["name"], members, int(ctx.now), user_created=b["userCreated"],
                      comment=b.get("comment") or "")
    for hb in b.get("hostsToCreate") or ():
        h = make_host(est, dict(hb, hostGroupIds=list(hb.get("hostGroupIds") or ()) + [gid]),
                      ctx.now)
        if h.id not in g.x["hosts"]:
            g.x["hosts"].append(h.id)
    est.changed(*(est.hosts[h] for h in members))
    ctx.audit = ("Create host group %s" % g.x["name"], (gid, g.x["name"], "host-initiator-group"))
    ctx.d.sim.event("host group %s created" % gid)
    return 200, ctx.d.render(g, ctx.d.response_schema(ctx), r_group), None


def h_d_group_delete(ctx):
    est = ctx.est
    g = d_lookup(est.groups, ctx.p["hostGroupId"], "host group")
    force = ctx.query.get("force", "").lower() in ("true", "1", "yes")
    exported = [v for s in est.systems.values() for v in s.vols.values()
                if g.id in v.x["exports"]]
    if exported and not force:
        raise ApiError(409, "host group '%s' has %d exported volume(s); un-export them first "
                       "or use force=true" % (g.id, len(exported)))
    gid = g.id

    def effect():
        unlink_deleted(est.groups, gid, "host group", est.hosts.values(), "groups")
        for s in est.systems.values():
            for v in s.vols.values():
                v.x["exports"].pop(gid, None)
        est.changed()
        ctx.d.sim.event("host group %s deleted" % gid)

    return ctx.d.run_task(ctx, "Delete host group %s" % g.x["name"],
                          [ref(g.x["name"], u_top("host-initiator-groups", gid),
                               "host-initiator-group")],
                          ["Validating host group %s" % g.x["name"], "Removing exports",
                           "Deleting host group %s" % g.x["name"]],
                          effect, fail_if(g.x["name"], "delete host group"))


def h_d_initiators(ctx):
    return ctx.d.listing(ctx, list(ctx.est.inits.values()), r_init)


def h_d_initiator(ctx):
    return ctx.d.one(ctx, d_lookup(ctx.est.inits, ctx.p["initiatorId"], "initiator"), r_init)


# -- tasks and issues

def h_d_tasks(ctx):
    tasks = ctx.est.tasks[::-1]
    now = ctx.now
    return ctx.d.listing(ctx, tasks, lambda est, t: t.drender(now), live=True)


def h_d_task(ctx):
    t = ctx.est.task_by_id.get(ctx.p["id"])
    if t is None:
        raise ApiError(404, "task '%s' not found" % ctx.p["id"])
    return ok_json(t.drender(ctx.now))


def h_d_audit_events(ctx):
    return ctx.d.listing(ctx, list(ctx.est.audit), r_audit)


def h_d_issues(ctx):
    return ctx.d.listing(ctx, list(ctx.est.issues.values()), r_issue)


def h_d_issue(ctx):
    return ctx.d.one(ctx, d_lookup(ctx.est.issues, ctx.p["id"], "issue"), r_issue)


def device_type_routes(dt, ids, create, edit, own, snapshot_post=None):
    """The routes of one device type's systems, pools, volumes and snapshots. ids: what the
    spec calls the system, pool and volume id in their own paths; own: the type's routes
    beside them (by path under the system); snapshot_post: POST of a snapshot, if any."""
    sys_id, pool_id, vol_id = ids
    top = "/api/v1/storage-systems/device-type%d" % dt
    system = top + "/{systemId}"
    vol = system + "/volumes/{%s}" % vol_id
    snapshot = {"GET": h_d_snapshot(dt), "DELETE": h_d_snapshot_delete(dt)}
    if snapshot_post is not None:
        snapshot["POST"] = snapshot_post
    return [
        (top, {"GET": h_d_systems_dt(dt)}),
        (top + "/{%s}" % sys_id, {"GET": h_d_system_dt(dt, sys_id)}),
        (system + "/storage-pools", {"GET": h_d_pools(dt)}),
        (system + "/storage-pools/{%s}" % pool_id, {"GET": h_d_pool(dt, pool_id)}),
        (system + "/volumes", {"GET": h_d_volumes_dt(dt), "POST": create}),
        (vol, {"GET": h_d_volume_dt(dt, vol_id), "PUT": edit, "DELETE": h_d_vol_delete(dt)}),
        (vol + "/clone", {"POST": h_d_vol_clone(dt)}),
        (vol + "/export", {"POST": h_d_vol_export(dt, False)}),
        (vol + "/un-export", {"POST": h_d_vol_export(dt, True)}),
        (vol + "/snapshots", {"GET": h_d_snapshots(dt), "POST": h_d_snapshot_create(dt)}),
        (system + "/volumes/{volumeId}/snapshots/{snapshotId}", snapshot),
    ] + [(system + path, handlers) for path, handlers in own]


DSCC_ROUTES = [
    (DSCC_TOKEN_PATH, {"POST": None}),
    ("/api/v1/storage-systems", {"GET": h_d_systems}),
    ("/api/v1/storage-systems/{id}", {"GET": h_d_system}),
    ("/api/v1/storage-systems/{systemId}/volumes", {"GET": h_d_sys_volumes}),
    ("/api/v1/storage-systems/{systemId}/storage-pools", {"GET": h_d_pools(None)}),
    ("/api/v1/storage-systems/{systemId}/storage-pools/{id}", {"GET": h_d_pool(None, "id")}),
    ("/api/v1/storage-systems/{systemId}/storage-pools/{id}/volumes",
     {"GET": h_d_pool_volumes(None)}),
    ("/api/v1/storage-systems/{systemId}/volume-sets", {"GET": h_d_sys_vsets}),
    ("/api/v1/storage-systems/{systemId}/volume-sets/{id}", {"GET": h_d_sys_vset}),
] + device_type_routes(1, ("id", "id", "id"), h_d_vol1_create, h_d_vol1_edit, [
    ("/storage-pools/{id}/volumes", {"GET": h_d_pool_volumes(1)}),
    ("/volumes/{id}/vluns", {"GET": h_d_vluns}),
], snapshot_post=h_d_snapshot_promote) + device_type_routes(
    2, ("systemId", "storagePoolId", "volumeId"), h_d_vol2_create, h_d_vol2_edit, [
        ("/volumes/{volumeId}/actions/restore", {"POST": h_d_vol2_restore}),
    ]) + [
    ("/api/v1/volumes", {"GET": h_d_volumes}),
    ("/api/v1/volumes/{id}", {"GET": h_d_volume}),
    ("/api/v1/volume-sets", {"GET": h_d_vsets}),
    ("/api/v1/volume-sets/{id}", {"GET": h_d_vset}),
    ("/api/v1/volume-sets/{id}/volumes", {"GET": h_d_vset}),
    ("/api/v1/host-initiators", {"GET": h_d_hosts, "POST": h_d_host_create}),
    ("/api/v1/host-initiators/{hostId}", {"GET": h_d_host, "DELETE": h_d_host_delete}),
    ("/api/v1/host-initiators/{hostId}/volumes", {"GET": h_d_host_volumes}),
    ("/api/v1/host-initiator-groups", {"GET": h_d_groups, "POST": h_d_group_create}),
    ("/api/v1/host-initiator-groups/{hostGroupId}", {"GET": h_d_group,
                                                     "DELETE": h_d_group_delete}),
    ("/api/v1/initiators", {"GET": h_d_initiators}),
    ("/api/v1/initiators/{initiatorId}", {"GET": h_d_initiator}),
    ("/api/v1/tasks", {"GET": h_d_tasks}),
    ("/api/v1/tasks/{id}", {"GET": h_d_task}),
    ("/api/v1/audit-events", {"GET": h_d_audit_events}),
    ("/api/v1/issues", {"GET": h_d_issues}),
    ("/api/v1/issues/{id}", {"GET": h_d_issue}),
]
