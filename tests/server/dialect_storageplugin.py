"""The storage-plugin dialect of the reference server (the default).

It serves every endpoint of the storage-plugin API (docs/refserver.md, the
storage-plugin sections) under /storageplugin/api: HTTP Basic logins that
choose one of --arrays arrays, sessions in the x-storageplugin-sessionid
header, the deterministic estate of servers, volumes, snapshots, LUNs, hosts,
groups and consistency groups, actions and their asynchronous tasks. HTTP,
faults, stats, the /_sim controls and the task clock are the core's
(refcore.py, refsim.py, reffaults.py, refhttp.py).
"""

import base64
import collections
import io
import json
import random
import secrets
import struct
import time
import zipfile
import zlib
from urllib.parse import parse_qsl

from refcore import (
    BASE_EPOCH, GIB, HOST_ROLES, TIB, VERSION, ApiError, Coll, Rec, Task, TaskFailed,
    basic_credentials, check_user, dumps, error_body, hostile_entries, json_object, media_type,
    mix, no_content, ok_json, page_of, qseg, split_path, volume_traits)
from refsim import Dialect, Req

API_BASE = "/storageplugin/api"
PLUGIN_ID = "dsfs-refserver"

# --------------------------------------------------------------------------
# The estate

POOLS = ["pool-ssd-01", "pool-hdd-01", "pool-nvme-01"]
NETWORKS = [  # name, nfs, cifs, iscsi, fc
    ("e0a-iscsi", False, False, True, False),
    ("e0b-iscsi", False, False, True, False),
    ("0c-fc", False, False, False, True),
    ("e0d-nas", True, True, False, False),
]
CG_NAMES = ["cg-oracle-prod", "cg-sql-prod", "cg-exchange"]
REMOTE_ARRAYS = [("dr-site-array", "dr-array.example.com"), ("backup-vault", "198.51.100.20")]


def png(width, height, rgb):
    """A solid-colour PNG (for the RFC 2397 image and icon URLs of /info)."""
    row = b"\x00" + bytes(rgb) * width
    raw = row * height

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Server:
    """One storage virtual server and everything under it."""

    def __init__(self, arr, sid, sidx, name, ct):
        self.arr = arr
        self.sid = sid
        self.sidx = sidx
        self.rec = Rec({"id": sid, "name": name, "creationTime": ct,
                        "supports": {"replication": True, "volumeReplication": True,
                                     "consistencyGroupReplication": True,
                                     "newSnapshotReplication": True,
                                     "existingSnapshotReplication": False,
                                     "replicationToItself": False,
                                     "deleteFromSnapshotGroup": True,
                                     "persistentConsistencyGroup": True,
                                     "singleConsistencyGroup": False},
                        "config": {"isDpDestination": False, "isNfsServiceEnabled": True,
                                   "isIscsiServiceEnabled": True,
                                   "isIncrementalConsistencyGroup": False}})
        self.vols = Coll("volumes")
        self.luns = Coll("luns")
        self.hosts = Coll("hosts")
        self.groups = Coll("groups")
        self.nets = Coll("networks")
        self.pools = Coll("pools")
        self.cgs = Coll("consistencyGroups")
        self.ras = Coll("remoteArrays")
        self.next_vol = 1
        self.next_host = 1
        self.snap_count = 0
        self.cg_links = {}   # vid -> [(cgid, cgsnap id, name, ct, snapshot id)]
        self.busy = collections.Counter()  # vid -> running tasks using it
        self.hostile = False

    # -- volumes and their lazily generated snapshots
    def new_volume(self, vid, name, ct, pool_id, size, used, sgk, nsnaps,
                   split="ANY_TIME", volume_type="rw", split_done=False, idx=None):
        if idx is None:
            idx = self.next_vol
            self.next_vol += 1
        h = mix(idx, len(name))
        pub = {"id": vid, "name": name, "creationTime": ct, "serverGroupKey": sgk,
               "poolId": pool_id, "volumeType": volume_type,
               "stats": {"size": size, "usedSize": used},
               "supports": {"revert": True, "split": split,
                            "autoGrowVadpRep": bool(h & 2)},
               "config": {"thinProvisioned": idx % 3 != 0},
               "mountPath": None, "restoredFromSnapshotId": None}
        rec = Rec(pub, {"idx": idx, "snaps": None, "nsnaps": nsnaps, "seq": 0,
                        "split": "done" if split_done else None})
        self.vols.add(rec)
        self.snap_count += nsnaps
        pool = self.pools.items.get(pool_id)
        if pool is not None:
            pool.pub["freeSpace"] -= size
            self.pools.touch(pool)
        return rec

    def snaps(self, vrec):
        """The snapshot collection of a volume, generated on first use."""
        coll = vrec.x["snaps"]
        if coll is not None:
            return coll
        coll = vrec.x["snaps"] = Coll("snapshots")
        x = vrec.x
        idx, n = x["idx"], x["nsnaps"]
        vct = vrec.pub["creationTime"]
        used = vrec.pub["stats"]["usedSize"]
        step, kind = (86400, "daily") if n <= 365 else (3600, "hourly")
        seed = self.arr.seed
        for j in range(1, n + 1):
            h = mix(seed, self.arr.idx, self.sidx, idx, j)
            ct = vct + j * step - (h % 1800)
            name = kind + time.strftime("-%Y%m%d-%H%M", time.gmtime(ct))
            coll.add(Rec({"id": "snap-%s-%d-%d" % (self.sid, idx, j), "name": name,
                          "creationTime": ct, "consistencyGroupSnapshotId": None,
                          "config": {"groundCloneRequired": bool(h & 8)}},
                         {"used": used * (50 + h % 50) // 100}))
        x["seq"] = n
        for cgid, cgsnap_id, name, ct, snid in self.cg_links.pop(vrec.id, ()):
            cg = self.cgs.items.get(cgid)
            if cg is None or cgsnap_id not in cg.x["snaps"].items:
                continue
            coll.add(Rec({"id": snid, "name": name, "creationTime": ct,
                          "consistencyGroupSnapshotId": cgsnap_id,
                          "config": {"groundCloneRequired": False}}, {"used": used // 2}))
        if self.hostile and (idx <= 3 or x.get("hostile")):
            first = coll.order()[0].pub["name"] if coll.items else "dup"
            for hid, hname in hostile_entries("snap-%d" % idx, first):
                coll.add(Rec({"id": hid, "name": hname, "creationTime": vct + 60,
                              "consistencyGroupSnapshotId": None,
                              "config": {"groundCloneRequired": False}}, {"used": used // 4}))
        return coll

    def new_snapshot_id(self, vrec):
        self.snaps(vrec)
        x = vrec.x
        while True:
            x["seq"] += 1
            snid = "snap-%s-%d-%d" % (self.sid, x["idx"], x["seq"])
            if snid not in x["snaps"].items:
                return snid

    def set_host_maps(self, hrec):
        hrec.pub["mappedLunIds"] = list(hrec.x["maps"])
        self.hosts.touch(hrec)


class Array:
    """One storage array: its servers, tasks and identity."""

    def __init__(self, idx, seed):
        self.idx = idx
        self.seed = seed
        self.id = "array%d" % (idx + 1)
        self.name = self.id
        self.hostname = "array%d.example.com" % (idx + 1)
        self.ip = "192.0.2.%d" % (11 + idx)
        self.servers = Coll("servers")
        self.srv = {}
        self.tasks = []
        self.task_by_id = {}
        self.pending = []  # heap of (end, seq, task)

    def storage(self, port):
        return {"name": self.name, "id": self.id, "hostName": self.hostname,
                "ipAddress": self.ip, "port": port, "pluginId": PLUGIN_ID,
                "vendor": "dsfs", "version": VERSION,
                "serverIds": [r.id for r in self.servers.order()]}

    def matches(self, value):
        v = value.strip().lower()
        return v in (self.hostname, self.ip, self.id, self.name)


def build_server(arr, sid, sidx, opts, nvol, nsnap, nhost, nlun, hostile):
    seed = arr.seed
    ai = arr.idx
    srv_names = ["svm-prod", "svm-dev", "svm-test", "svm-dr"]
    name = "%s-%d" % (srv_names[sidx % 4], sidx) if sidx < 1000 else "svm-%s" % sid
    srv = Server(arr, sid, sidx, name, BASE_EPOCH - 86400 * 30 + sidx * 3600)
    srv.hostile = hostile
    t0 = BASE_EPOCH
    # pools first: volumes draw from them
    for k, pname in enumerate(POOLS, 1):
        srv.pools.add(Rec({"id": "pool-%s-%d" % (sid, k), "name": pname,
                           "creationTime": t0 - 86400 * (20 - k), "freeSpace": 0},
                          {"capacity": 0}))
    pool_ids = list(srv.pools.items)
    # volumes: sizes decide pool capacity, so add capacity after
    sizes_by_pool = collections.Counter()
    plan = []
    width = max(4, len(str(nvol)))
    for i in range(1, nvol + 1):
        h = mix(seed, ai, sidx, i)
        cat, size, used, ct = volume_traits(h, t0, GIB)
        pool_id = pool_ids[(h >> 40) % len(pool_ids)]
        sizes_by_pool[pool_id] += size
        plan.append(("vol-%s-%d" % (sid, i), "vol-%s-%0*d" % (cat, width, i), ct, pool_id,
                     size, used, "sg-%s-%d" % (sid, (h >> 48) % 2), (h >> 50) % 7 == 0))
    for pid, prec in srv.pools.items.items():
        cap = max(sizes_by_pool[pid] * 3 // 2, 10 * TIB)
        cap -= cap % GIB
        prec.x["capacity"] = cap
        prec.pub["freeSpace"] = cap
    for vid, vname, ct, pool_id, size, used, sgk, dp in plan:
        srv.new_volume(vid, vname, ct, pool_id, size, used, sgk, nsnap,
                       volume_type="dp" if dp else "rw")
    vol_ids = [p[0] for p in plan]
    if hostile:
        first = plan[0][1] if plan else "dup"
        for vid, vname in hostile_entries("vol-%s" % sid, first):
            srv.new_volume(vid, vname, t0 + 3600, pool_ids[0], 10 * GIB, GIB,
                           "sg-%s-0" % sid, min(nsnap, 2)).x["hostile"] = True
        # Counted now, though made on first use, so no answer depends on what was listed first.
        per_volume = len(hostile_entries("x", "x"))
        srv.snap_count += per_volume * sum(1 for r in srv.vols.order()
                                           if r.x["idx"] <= 3 or r.x.get("hostile"))
    # LUNs over the volumes
    for k in range(1, nlun + 1):
        h = mix(seed, ai, sidx, 7, k)
        vid = vol_ids[(k - 1) * len(vol_ids) // nlun] if vol_ids else None
        vrec = srv.vols.items.get(vid) if vid else None
        lname = (vrec.pub["name"] + "-lun0") if vrec else "lun-%04d" % k
        srv.luns.add(Rec(lun_pub("lun-%s-%d" % (sid, k), lname, vid,
                                 vrec.pub["creationTime"] + 600 if vrec else t0,
                                 h, bool(k % 4))))
    # hosts, each mapped to the LUNs k with k % nhost == h % nhost
    lun_ids = list(srv.luns.items)
    for k in range(1, nhost + 1):
        h = mix(seed, ai, sidx, 11, k)
        role = HOST_ROLES[(k - 1) % len(HOST_ROLES)]
        hname = "%s-%02d" % (role, k)
        maps = collections.OrderedDict()
        for n, lid in enumerate(lun_ids):
            if n % nhost == (k - 1):
                maps[lid] = [len(maps), None]
        add_host(srv, "host-%s-%d" % (sid, k), hname, t0 - 86400 * 10 + k * 3600, h, maps)
    srv.next_host = nhost + 1
    if hostile:
        for hid, hname in hostile_entries("host-%s" % sid, "%s-01" % HOST_ROLES[0]):
            add_host(srv, hid, hname, t0, 0, collections.OrderedDict())
        first_lun = lun_ids[0] if lun_ids else None
        first_vol = srv.luns.items[first_lun].pub["volumeId"] if first_lun else None
        for lid, lname in hostile_entries("lun-%s" % sid, srv.luns.order()[0].pub["name"]
                                          if lun_ids else "dup"):
            srv.luns.add(Rec(lun_pub(lid, lname, first_vol, t0, 3, True)))
    # host groups: two halves and a spare
    host_ids = [r.id for r in srv.hosts.order()][:nhost]
    half = (len(host_ids) + 1) // 2
    for k, (gname, members) in enumerate([("hg-cluster-a", host_ids[:half]),
                                          ("hg-cluster-b", host_ids[half:]),
                                          ("hg-spare", [])], 1):
        srv.groups.add(Rec({"id": "hg-%s-%d" % (sid, k), "name": gname,
                            "creationTime": t0 - 86400 * 5 + k, "hostIds": members}))
    if hostile:
        for gid, gname in hostile_entries("hg-%s" % sid, "hg-cluster-a"):
            srv.groups.add(Rec({"id": gid, "name": gname, "creationTime": t0, "hostIds": []}))
    # networks
    for k, (nname, nfs, cifs, iscsi, fc) in enumerate(NETWORKS, 1):
        h = mix(seed, ai, sidx, 13, k)
        srv.nets.add(Rec(net_pub("net-%s-%d" % (sid, k), nname, ai, sidx, k, h,
                                 nfs, cifs, iscsi, fc)))
    if hostile:
        for nid, nname in hostile_entries("net-%s" % sid, NETWORKS[0][0]):
            srv.nets.add(Rec(net_pub(nid, nname, ai, sidx, 99, 1, False, False, True, False)))
        for pid, pname in hostile_entries("pool-%s" % sid, POOLS[0]):
            srv.pools.add(Rec({"id": pid, "name": pname, "creationTime": t0,
                               "freeSpace": TIB}, {"capacity": TIB}))
    # consistency groups over the first volumes, each with two snapshots
    starts = [0, 3, 5, 8]
    for k, cgname in enumerate(CG_NAMES, 1):
        members = vol_ids[starts[k - 1]:starts[k]]
        if not members:
            break
        cg = add_cg(srv, "cg-%s-%d" % (sid, k), cgname, t0 - 86400 * 3 + k, members, k == 1)
        for m in (1, 2):
            ct = t0 + 500 * 86400 + k * 3600 + m * 86400
            csid = "cgsnap-%s-%d-%d" % (sid, k, m)
            cname = "%s.snap-%s" % (cgname, time.strftime("%Y%m%d", time.gmtime(ct)))
            snap_ids = []
            for vid in members:
                vidx = srv.vols.items[vid].x["idx"]
                snid = "snap-%s-%d-g%d-%d" % (sid, vidx, k, m)
                snap_ids.append(snid)
                srv.cg_links.setdefault(vid, []).append((cg.id, csid, cname, ct, snid))
                srv.snap_count += 1
            cg.x["snaps"].add(Rec({"id": csid, "name": cname, "creationTime": ct,
                                   "volumeSnapshotIds": snap_ids}))
        cg.x["seq"] = 2
    if hostile:
        first_cg = srv.cgs.order()[0].pub["name"] if srv.cgs.items else "dup"
        for cgid, cgname in hostile_entries("cg-%s" % sid, first_cg):
            add_cg(srv, cgid, cgname, t0, [], False)
        for cg in list(srv.cgs.order())[:1]:
            for csid, cname in hostile_entries("cgsnap-%s" % sid,
                                               cg.x["snaps"].order()[0].pub["name"]
                                               if cg.x["snaps"].items else "dup"):
                cg.x["snaps"].add(Rec({"id": csid, "name": cname, "creationTime": t0,
                                       "volumeSnapshotIds": []}))
    for k, (rname, addr) in enumerate(REMOTE_ARRAYS, 1):
        srv.ras.add(Rec({"id": "ra-%s-%d" % (sid, k), "name": rname,
                         "creationTime": t0 - 86400 * 60, "hostAddress": addr}))
    if hostile:
        for rid, rname in hostile_entries("ra-%s" % sid, REMOTE_ARRAYS[0][0]):
            srv.ras.add(Rec({"id": rid, "name": rname, "creationTime": t0,
                             "hostAddress": "203.0.113.9"}))
    return srv


def lun_pub(lid, name, vid, ct, h, online):
    return {"id": lid, "name": name, "creationTime": ct,
            "serialNumber": "%012X" % (h & 0xFFFFFFFFFFFF),
            "naaId": "naa.600a0980%024x" % (h & ((1 << 96) - 1)),
            "volumeId": vid,
            "privateIscsiTarget": "iqn.1992-08.com.example:sn.%08x" % (h & 0xFFFFFFFF),
            "volumeType": "block", "online": online}


def add_host(srv, hid, name, ct, h, maps):
    fc = bool(h & 1)
    pub = {"id": hid, "name": name, "creationTime": ct,
           "serverGroupKeys": ["sg-%s-%d" % (srv.sid, h % 2)],
           "mappedLunIds": list(maps),
           "iqns": [] if fc else ["iqn.1998-01.com.vmware:%s-%08x" % (name[:24], h & 0xFFFFFFFF)],
           "wwns": ["20:00:00:25:b5:%02x:%02x:%02x" % ((h >> 8) & 255, (h >> 16) & 255,
                                                    (h >> 24) & 255)] if fc else [],
           "config": {"fc": fc, "iscsi": not fc}}
    return srv.hosts.add(Rec(pub, {"maps": maps}))


def net_pub(nid, name, ai, sidx, k, h, nfs, cifs, iscsi, fc):
    return {"id": nid, "name": name, "creationTime": BASE_EPOCH - 86400 * 90,
            "ipAddress": "" if fc else "10.%d.%d.%d" % (ai, sidx % 256, 10 + k % 240),
            "wwpn": "50:0a:09:8%d:%02x:%02x:%02x:%02x" % (k % 10, h & 255, (h >> 8) & 255,
                                                          (h >> 16) & 255, sidx % 256)
            if fc else "",
            "iqn": "iqn.1992-08.com.example:sn.%08x:vs.%d" % (h & 0xFFFFFFFF, sidx)
            if iscsi else "",
            "serverGroupKey": "sg-0" if k % 2 else "sg-1",
            "config": {"nfs": nfs, "cifs": cifs, "iscsi": iscsi, "fc": fc}}


def add_cg(srv, cgid, name, ct, members, with_target):
    targets = []
    if with_target:
        ra = REMOTE_ARRAYS[0]
        targets.append({"id": "ra-%s-1" % srv.sid, "name": ra[0], "hostAddress": ra[1]})
    pub = {"id": cgid, "name": name, "creationTime": ct, "volumeIds": list(members),
           "config": {"incremental": False, "replicationTarget": False},
           "targets": targets}
    return srv.cgs.add(Rec(pub, {"snaps": Coll("snapshots"), "seq": 0}))


def build_array(idx, opts):
    arr = Array(idx, opts.seed * 1000003 + idx)
    for s in range(opts.servers):
        srv = build_server(arr, str(s), s, opts, opts.volumes, opts.snapshots, opts.hosts,
                           opts.luns, opts.hostile_names)
        arr.servers.add(srv.rec)
        arr.srv[srv.sid] = srv
    if opts.hostile_names:
        first = arr.servers.order()[0].pub["name"] if arr.servers.items else "dup"
        for k, (sid, name) in enumerate([("srv/x", first), ("s p?#%41", "..")]):
            srv = build_server(arr, sid, 1000 + k, opts, 3, 2, 2, 2, True)
            srv.rec.pub["name"] = name
            arr.servers.add(srv.rec)
            arr.srv[sid] = srv
    return arr


# --------------------------------------------------------------------------
# Request context and validation helpers

class Ctx:
    __slots__ = ("sim", "method", "params", "query", "headers", "raw_body", "body",
                 "array", "session", "now", "base")

    def page(self):
        return self.sim.paging(self.query)

    def field(self, name, kind, required=True, default=None, obj=None):
        """A body field of the given kind: str, int, bool, num, strlist, obj."""
        body = self.body if obj is None else obj
        val = body.get(name)
        if val is None:
            if required:
                raise ApiError(422, "missing required field '%s'" % name)
            return default
        check, what = FIELD_KINDS[kind]
        if not check(val):
            raise ApiError(422, "field '%s' must be %s" % (name, what))
        return val


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


FIELD_KINDS = {  # kind -> (check, description) for Ctx.field
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (_is_int, "an integer"),
    "num": (lambda v: isinstance(v, float) or _is_int(v), "a number"),
    "bool": (lambda v: isinstance(v, bool), "a boolean"),
    "strlist": (lambda v: isinstance(v, list) and all(isinstance(e, str) for e in v),
                "a list of strings"),
    "obj": (lambda v: isinstance(v, dict), "an object"),
    "id": (lambda v: isinstance(v, str) or _is_int(v), "a string or integer"),
}


# --------------------------------------------------------------------------
# Handlers: resource lookups

def get_server(ctx):
    srv = ctx.array.srv.get(ctx.params[0])
    if srv is None:
        raise ApiError(404, "server '%s' not found" % ctx.params[0])
    return srv


def lookup(coll, rid, what):
    rec = coll.items.get(rid)
    if rec is None:
        raise ApiError(404, "%s '%s' not found" % (what, rid))
    return rec


def get_volume(ctx, srv=None):
    srv = srv or get_server(ctx)
    return srv, lookup(srv.vols, ctx.params[1], "volume")


def uri(*segs):
    return API_BASE + "".join("/" + qseg(s) for s in segs)


def vol_uri(srv, vid):
    return uri("server", srv.sid, "volume", vid)


def res(name, resource_uri, kind):
    return {"name": name, "resourceUri": resource_uri, "type": kind}


# -- info, session, log, storage

def h_info(ctx):
    return 200, ctx.sim.info_json, None


def h_login(ctx):
    sim = ctx.sim
    challenge = [("WWW-Authenticate", 'Basic realm="storageplugin"')]
    basic = basic_credentials(ctx.headers, challenge)
    if basic is None:
        raise ApiError(401, "HTTP Basic credentials are required", challenge)
    user = basic[0]
    check_user(sim, *basic, sim.user, sim.password, challenge)
    hostname = ctx.field("hostname", "str", required=False)
    ip = ctx.field("ipAddress", "str", required=False)
    ctx.field("port", "int", required=False)
    if len(sim.arrays) == 1:
        arr = sim.arrays[0]
    else:
        arr = next((a for a in sim.arrays
                    if (hostname and a.matches(hostname)) or (ip and a.matches(ip))), None)
        if arr is None:
            raise ApiError(404, "no managed storage array named %r / %r (known: %s)" % (
                hostname, ip, ", ".join(a.hostname for a in sim.arrays)))
    for old in [k for k, s in sim.sessions.items() if s[1] < ctx.now]:
        del sim.sessions[old]
    sid = secrets.token_urlsafe(24)
    sim.sessions[sid] = [arr, ctx.now + sim.ttl]
    sim.event("login user=%s array=%s" % (user, arr.id))
    return ok_json({"sessionId": sid, "storageId": arr.id}, 201)


def h_logout(ctx):
    ctx.sim.sessions.pop(ctx.session, None)
    ctx.sim.event("logout array=%s" % ctx.array.id)
    return no_content()


def h_log(ctx):
    sim = ctx.sim
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("refserver.log", "".join(line + "\n" for line in list(sim.events)))
        z.writestr("arrays.json", json.dumps(
            [a.storage(sim.port) for a in sim.arrays], indent=2) + "\n")
    return 200, buf.getvalue(), [("Content-Type", "application/zip"),
                                 ("Content-Disposition", 'attachment; filename="logs.zip"')]


def h_storage(ctx):
    return ok_json(ctx.array.storage(ctx.sim.port))


# -- servers

def h_servers(ctx):
    start, limit = ctx.page()
    return 200, ctx.array.servers.page(start, limit), None


def h_server(ctx):
    return 200, get_server(ctx).rec.json(), None


def h_system(ctx):
    srv = get_server(ctx)
    vols = srv.vols.order()
    size = sum(r.pub["stats"]["size"] for r in vols)
    used = sum(r.pub["stats"]["usedSize"] for r in vols)
    cap = sum(p.x["capacity"] for p in srv.pools.order())
    snaps = srv.snap_count * 256 * 1024 * 1024
    return ok_json({"capacityInBytes": cap, "systemSizeInBytes": cap // 50,
                    "snapshotsSizeInBytes": snaps, "volumesSizeInBytes": used,
                    "dataReduction": 2.1, "totalSizeInBytes": cap,
                    "sharedSpaceInBytes": used // 10, "thinProvisioning": 1.8,
                    "totalReduction": 3.4, "provisionedSizeInBytes": size,
                    "parity": "RAID-DP",
                    "serialNumber": "RS%02d%04d%04d" % (ctx.array.idx + 1, srv.sidx,
                                                        mix(ctx.array.seed, srv.sidx) % 10000),
                    "model": "RS-9000", "version": "9.14.1"})


def list_handler(attr):
    def handler(ctx):
        srv = get_server(ctx)
        start, limit = ctx.page()
        return 200, getattr(srv, attr).page(start, limit), None
    return handler


def item_handler(attr, what):
    def handler(ctx):
        srv = get_server(ctx)
        return 200, lookup(getattr(srv, attr), ctx.params[1], what).json(), None
    return handler


# -- volumes

def h_volume_delete(ctx):
    srv, vrec = get_volume(ctx)
    vid = vrec.id
    if srv.busy[vid]:
        raise ApiError(409, "volume '%s' is in use by a running task" % vid)
    for lun in srv.luns.order():
        if lun.pub["volumeId"] == vid:
            raise ApiError(409, "volume '%s' is in use by LUN '%s'" % (vid, lun.id))
    delete_volume(srv, vrec)
    ctx.sim.event("volume %s deleted on server %s" % (vid, srv.sid))
    return 200, vrec.json(), None


def delete_volume(srv, vrec):
    srv.vols.remove(vrec.id)
    snaps = vrec.x["snaps"]
    links = srv.cg_links.pop(vrec.id, ())
    srv.snap_count -= len(snaps.items) if snaps is not None else vrec.x["nsnaps"] + len(links)
    pool = srv.pools.items.get(vrec.pub["poolId"])
    if pool is not None:
        pool.pub["freeSpace"] += vrec.pub["stats"]["size"]
        srv.pools.touch(pool)
    for cg in srv.cgs.order():
        if vrec.id in cg.pub["volumeIds"]:
            cg.pub["volumeIds"].remove(vrec.id)
            srv.cgs.touch(cg)


def split_status(vrec, now):
    split = vrec.x["split"]
    if split is None:
        return {"percentageComplete": 0, "complete": False}
    if split == "done":
        return {"percentageComplete": 100, "complete": True}
    return {"percentageComplete": split.progress(now), "complete": False}


def h_splitstatus(ctx):
    _, vrec = get_volume(ctx)
    return ok_json(split_status(vrec, ctx.now))


def find_snapshot(srv, vrec, snid, field):
    snap = srv.snaps(vrec).items.get(snid)
    if snap is None:
        raise ApiError(404, "%s: snapshot '%s' not found on volume '%s'" % (field, snid, vrec.id))
    return snap


def volume_from_effect(ctx, srv, src_id, snap_id, done, *args):
    """The effect of a task that makes a volume from src_id (volume_from, given the rest of
    its arguments), marked as made from snap_id; done: the event of its success."""
    def effect():
        src = srv.vols.items.get(src_id)
        if src is None:
            raise TaskFailed("source volume '%s' was deleted" % src_id)
        rec = volume_from(srv, src, *args)
        rec.pub["restoredFromSnapshotId"] = snap_id
        ctx.sim.event(done)
        return rec.pub
    return effect


def volume_from(srv, src, idx, vid, name, size, used, pool_id, sgk, split_done):
    """A new volume made from src (clone, restore-to-new); pool space is charged."""
    pool = srv.pools.items.get(pool_id)
    if pool is not None and pool.pub["freeSpace"] < size:
        raise TaskFailed("pool '%s' has not enough free space" % pool_id)
    rec = srv.new_volume(vid, name, int(time.time()), pool_id, size, used, sgk, 0,
                         split="ANY_TIME", volume_type=src.pub["volumeType"],
                         split_done=split_done, idx=idx)
    rec.x["snaps"] = Coll("snapshots")
    return rec


def check_pool_space(srv, pool_id, size):
    pool = srv.pools.items.get(pool_id)
    if pool is not None and pool.pub["freeSpace"] < size:
        raise ApiError(409, "pool '%s' has not enough free space (%d bytes free, %d needed)"
                       % (pool_id, pool.pub["freeSpace"], size))


def reserve_volume(srv):
    """The index and id of a volume a task will create (taken now, so the task can name it)."""
    while True:
        idx = srv.next_vol
        srv.next_vol += 1
        vid = "vol-%s-%d" % (srv.sid, idx)
        if vid not in srv.vols.items:
            return idx, vid


def fail_message(name, what):
    if name.startswith("fail-"):
        return "%s of '%s' failed: the array rejected the request (simulated failure)" % (
            what, name)
    return None


def h_clone(ctx):
    srv, src = get_volume(ctx)
    name = ctx.field("name", "str")
    snap_ref = ctx.field("snapshot", "obj", required=False)
    keys = ctx.field("serverGroupKeys", "strlist", required=False, default=[])
    instant = ctx.field("instantSplit", "bool", required=False, default=False)
    snap = None
    if snap_ref is not None:
        snid = ctx.field("id", "str", required=False, obj=snap_ref)
        sname = ctx.field("name", "str", required=False, obj=snap_ref)
        if snid is not None:
            snap = find_snapshot(srv, src, snid, "snapshot.id")
        elif sname is not None:
            snap = next((s for s in srv.snaps(src).order() if s.pub["name"] == sname), None)
            if snap is None:
                raise ApiError(404, "snapshot.name: no snapshot named %r on volume '%s'"
                               % (sname, src.id))
    size = src.pub["stats"]["size"]
    used = snap.x["used"] if snap else src.pub["stats"]["usedSize"]
    pool_id = src.pub["poolId"]
    check_pool_space(srv, pool_id, size)
    sgk = keys[0] if keys else src.pub["serverGroupKey"]
    idx, vid = reserve_volume(srv)
    src_id = src.id
    effect = volume_from_effect(ctx, srv, src_id, snap.id if snap else None,
                                "volume %s cloned to %s" % (src_id, vid),
                                idx, vid, name, size, used, pool_id, sgk, instant)
    display = "Clone volume %s to %s" % (src.pub["name"], name)
    return ctx.sim.run_task(ctx, display, [
        res(src.pub["name"], vol_uri(srv, src.id), "volume"),
        res(name, vol_uri(srv, vid), "volume")],
        ["Preparing clone of volume %s" % src.pub["name"],
         "Copying snapshot metadata", "Creating volume %s" % name],
        effect, fail_message(name, "clone"), [(srv, src_id)])


def h_mount(ctx):
    srv, vrec = get_volume(ctx)
    path = ctx.field("path", "str")
    vrec.pub["mountPath"] = path
    srv.vols.touch(vrec)
    ctx.sim.event("volume %s mounted at %r" % (vrec.id, path))
    return ok_json({"path": path})


def h_split(ctx):
    srv, vrec = get_volume(ctx)
    if isinstance(vrec.x["split"], Task):
        raise ApiError(409, "a split of volume '%s' is already running" % vrec.id)
    vid = vrec.id

    def effect():
        v = srv.vols.items.get(vid)
        if v is None:
            raise TaskFailed("volume '%s' was deleted" % vid)
        v.x["split"] = "done"
        ctx.sim.event("volume %s split" % vid)
        return {"percentageComplete": 100, "complete": True}

    out = ctx.sim.run_task(ctx, "Split volume %s" % vrec.pub["name"],
                           [res(vrec.pub["name"], vol_uri(srv, vid), "volume")],
                           ["Checking clone relationship", "Copying shared blocks",
                            "Detaching volume from its parent"], effect, None, [(srv, vid)])
    if out[0] == 202:
        vrec.x["split"] = ctx.sim.last_task
    return out


def restore_into(srv, target_id, snap_used, snap_id):
    t = srv.vols.items.get(target_id)
    if t is None:
        raise TaskFailed("volume '%s' was deleted" % target_id)
    t.pub["stats"]["usedSize"] = min(snap_used, t.pub["stats"]["size"])
    t.pub["restoredFromSnapshotId"] = snap_id
    srv.vols.touch(t)
    return t.pub


def h_restore(ctx):
    srv, vrec = get_volume(ctx)
    snid = ctx.field("snapshotId", "str")
    snap = find_snapshot(srv, vrec, snid, "snapshotId")
    vid, used = vrec.id, snap.x["used"]

    def effect():
        ctx.sim.event("volume %s restored from %s" % (vid, snid))
        return restore_into(srv, vid, used, snid)

    return ctx.sim.run_task(ctx, "Restore volume %s from %s" % (vrec.pub["name"],
                                                                snap.pub["name"]),
                            [res(vrec.pub["name"], vol_uri(srv, vid), "volume")],
                            ["Quiescing volume %s" % vrec.pub["name"],
                             "Reverting blocks to snapshot %s" % snap.pub["name"],
                             "Resuming I/O"], effect, None, [(srv, vid)])


def h_restore_alt(ctx):
    srv, vrec = get_volume(ctx)
    snid = ctx.field("sourceSnapshotId", "str")
    tid = ctx.field("targetVolumeId", "str")
    snap = find_snapshot(srv, vrec, snid, "sourceSnapshotId")
    target = srv.vols.items.get(tid)
    if target is None:
        raise ApiError(404, "targetVolumeId: volume '%s' not found" % tid)
    used = snap.x["used"]

    def effect():
        ctx.sim.event("snapshot %s of %s restored to %s" % (snid, vrec.id, tid))
        return restore_into(srv, tid, used, snid)

    return ctx.sim.run_task(ctx, "Restore %s to volume %s" % (snap.pub["name"],
                                                              target.pub["name"]),
                            [res(vrec.pub["name"], vol_uri(srv, vrec.id), "volume"),
                             res(target.pub["name"], vol_uri(srv, tid), "volume")],
                            ["Quiescing volume %s" % target.pub["name"],
                             "Copying blocks from snapshot %s" % snap.pub["name"],
                             "Resuming I/O"], effect, None, [(srv, vrec.id), (srv, tid)])


def h_restore_new(ctx):
    srv, vrec = get_volume(ctx)
    snid = ctx.field("sourceSnapshotId", "str")
    name = ctx.field("targetVolumeName", "str")
    pools = ctx.field("targetPoolIds", "strlist", required=False, default=[])
    snap = find_snapshot(srv, vrec, snid, "sourceSnapshotId")
    pool_id = pools[0] if pools else vrec.pub["poolId"]
    if pool_id not in srv.pools.items:
        raise ApiError(404, "targetPoolIds: pool '%s' not found" % pool_id)
    size = vrec.pub["stats"]["size"]
    check_pool_space(srv, pool_id, size)
    used, src_id, sgk = snap.x["used"], vrec.id, vrec.pub["serverGroupKey"]
    idx, vid = reserve_volume(srv)
    effect = volume_from_effect(ctx, srv, src_id, snid,
                                "snapshot %s of %s restored to new volume %s" % (snid, src_id, vid),
                                idx, vid, name, size, used, pool_id, sgk, True)
    return ctx.sim.run_task(ctx, "Restore %s to new volume %s" % (snap.pub["name"], name),
                            [res(vrec.pub["name"], vol_uri(srv, src_id), "volume"),
                             res(name, vol_uri(srv, vid), "volume")],
                            ["Creating volume %s" % name,
                             "Copying blocks from snapshot %s" % snap.pub["name"],
                             "Bringing volume %s online" % name],
                            effect, fail_message(name, "restore-to-new"), [(srv, src_id)])


# -- snapshots

def h_snapshots(ctx):
    srv, vrec = get_volume(ctx)
    start, limit = ctx.page()
    return 200, srv.snaps(vrec).page(start, limit), None


def get_snapshot(ctx):
    srv, vrec = get_volume(ctx)
    return srv, vrec, lookup(srv.snaps(vrec), ctx.params[2], "snapshot")


def h_snapshot(ctx):
    return 200, get_snapshot(ctx)[2].json(), None


def h_snapshot_create(ctx):
    srv, vrec = get_volume(ctx)
    name = ctx.field("name", "str")
    pool_id = ctx.field("poolId", "str", required=False)
    ctx.field("replicate", "bool", required=False)
    ctx.field("isAutoDelete", "bool", required=False)
    if pool_id is not None and pool_id not in srv.pools.items:
        raise ApiError(404, "poolId: pool '%s' not found" % pool_id)
    coll = srv.snaps(vrec)
    if any(s.pub["name"] == name for s in coll.order()):
        raise ApiError(409, "volume '%s' already has a snapshot named %r" % (vrec.id, name))
    snid = srv.new_snapshot_id(vrec)
    rec = coll.add(Rec({"id": snid, "name": name, "creationTime": int(ctx.now),
                        "consistencyGroupSnapshotId": None,
                        "config": {"groundCloneRequired": False}},
                       {"used": vrec.pub["stats"]["usedSize"]}))
    srv.snap_count += 1
    ctx.sim.event("snapshot %s created on volume %s" % (snid, vrec.id))
    return 201, rec.json(), [("Location", ctx.base + uri("server", srv.sid, "volume", vrec.id,
                                                          "snapshot", snid)[len(API_BASE):])]


def h_snapshot_delete(ctx):
    srv, vrec, snap = get_snapshot(ctx)
    srv.snaps(vrec).remove(snap.id)
    srv.snap_count -= 1
    ctx.sim.event("snapshot %s deleted from volume %s" % (snap.id, vrec.id))
    return no_content()


def h_snapshot_progress(ctx):
    _, _, snap = get_snapshot(ctx)
    ctx.field("destinationSnapshotId", "id", required=False)
    ctx.field("destinationServerId", "id", required=False)
    ct = snap.pub["creationTime"]
    size = snap.x["used"]
    return ok_json({"name": snap.pub["name"], "creationTime": ct,
                    "snapshotReplicationStatus": {
                        "startTime": ct + 5, "completeTime": ct + 65, "percentComplete": 100,
                        "inProgress": False, "transferRate": size // 60 if size else 0,
                        "transferred": size, "totalSizeToBeSynchronized": size,
                        "estimatedSyncTime": 0, "isCompleted": True}})


# -- LUNs and hosts

def h_lun_online(ctx):
    srv = get_server(ctx)
    lun = lookup(srv.luns, ctx.params[1], "LUN")
    lun.pub["online"] = True
    srv.luns.touch(lun)
    return 200, lun.json(), None


def h_host_create(ctx):
    srv = get_server(ctx)
    name = ctx.field("name", "str")
    iqns = ctx.field("iqns", "strlist", required=False, default=[])
    wwns = ctx.field("wwns", "strlist", required=False, default=[])
    if any(h.pub["name"] == name for h in srv.hosts.order()):
        raise ApiError(409, "a host named %r already exists" % name)
    hid = "host-%s-%d" % (srv.sid, srv.next_host)
    while hid in srv.hosts.items:
        srv.next_host += 1
        hid = "host-%s-%d" % (srv.sid, srv.next_host)
    srv.next_host += 1
    rec = add_host(srv, hid, name, int(ctx.now), 0, collections.OrderedDict())
    rec.pub.update({"iqns": list(iqns), "wwns": list(wwns),
                    "serverGroupKeys": ["sg-%s-0" % srv.sid],
                    "config": {"fc": bool(wwns), "iscsi": bool(iqns)}})
    ctx.sim.event("host %s created on server %s" % (hid, srv.sid))
    return 201, rec.json(), [("Location", ctx.base + uri("server", srv.sid, "host",
                                                          hid)[len(API_BASE):])]


def get_host(ctx):
    srv = get_server(ctx)
    return srv, lookup(srv.hosts, ctx.params[1], "host")


def h_host(ctx):
    return 200, get_host(ctx)[1].json(), None


def mapping(srv, hrec, lid, number, gid):
    lun = srv.luns.items.get(lid)
    vid = lun.pub["volumeId"] if lun else None
    vol = srv.vols.items.get(vid) if vid else None
    return {"name": vol.pub["name"] if vol else (lun.pub["name"] if lun else ""),
            "volumeId": vid, "hostId": hrec.id, "hostGroupId": gid,
            "lunId": lid, "lunNumber": number}


def h_host_luns(ctx):
    srv, hrec = get_host(ctx)
    start, limit = ctx.page()
    maps = [mapping(srv, hrec, lid, n, g) for lid, (n, g) in hrec.x["maps"].items()]
    return 200, page_of("luns", maps, start, limit), None


def map_args(ctx, srv):
    lid = ctx.field("lunId", "str")
    vid = ctx.field("volumeId", "str", required=False)
    number = ctx.field("lunNumber", "int", required=False)
    lun = lookup(srv.luns, lid, "LUN")
    if vid is not None and vid != lun.pub["volumeId"]:
        if vid not in srv.vols.items:
            raise ApiError(404, "volumeId: volume '%s' not found" % vid)
        raise ApiError(422, "field 'volumeId': LUN '%s' belongs to volume '%s', not '%s'"
                       % (lid, lun.pub["volumeId"], vid))
    if number is not None and number < 0:
        raise ApiError(422, "field 'lunNumber' must not be negative")
    return lun, number


def next_lun_number(hrec):
    used = {n for n, _ in hrec.x["maps"].values()}
    n = 0
    while n in used:
        n += 1
    return n


def h_host_map(ctx):
    srv, hrec = get_host(ctx)
    lun, number = map_args(ctx, srv)
    maps = hrec.x["maps"]
    if lun.id in maps:
        raise ApiError(409, "LUN '%s' is already mapped to host '%s'" % (lun.id, hrec.id))
    if number is None:
        number = next_lun_number(hrec)
    elif any(n == number for n, _ in maps.values()):
        raise ApiError(409, "LUN number %d is already used on host '%s'" % (number, hrec.id))
    maps[lun.id] = [number, None]
    srv.set_host_maps(hrec)
    ctx.sim.event("LUN %s mapped to host %s" % (lun.id, hrec.id))
    return ok_json(mapping(srv, hrec, lun.id, number, None))


def h_host_unmap(ctx):
    srv, hrec = get_host(ctx)
    lid = ctx.field("lunId", "str")
    if lid not in hrec.x["maps"]:
        raise ApiError(404, "LUN '%s' is not mapped to host '%s'" % (lid, hrec.id))
    del hrec.x["maps"][lid]
    srv.set_host_maps(hrec)
    ctx.sim.event("LUN %s unmapped from host %s" % (lid, hrec.id))
    return 200, hrec.json(), None


def h_group_map(ctx):
    srv = get_server(ctx)
    grp = lookup(srv.groups, ctx.params[1], "host group")
    lun, number = map_args(ctx, srv)
    hosts = [srv.hosts.items[h] for h in grp.pub["hostIds"] if h in srv.hosts.items]
    if number is None:
        number = 0
        while any(number == n for h in hosts for n, _ in h.x["maps"].values()):
            number += 1
    for h in hosts:
        if lun.id not in h.x["maps"]:
            h.x["maps"][lun.id] = [number, grp.id]
            srv.set_host_maps(h)
    ctx.sim.event("LUN %s mapped to host group %s" % (lun.id, grp.id))
    m = mapping(srv, grp, lun.id, number, grp.id)
    return ok_json({"name": m["name"], "volumeId": m["volumeId"], "lunId": lun.id,
                    "lunNumber": number})


# -- consistency groups

def get_cg(ctx):
    srv = get_server(ctx)
    return srv, lookup(srv.cgs, ctx.params[1], "consistency group")


def h_cg_snapshots(ctx):
    _, cg = get_cg(ctx)
    start, limit = ctx.page()
    return 200, cg.x["snaps"].page(start, limit), None


def h_cg_add_volume(ctx):
    srv, cg = get_cg(ctx)
    vid = ctx.field("volumeId", "str")
    ctx.field("snapshotName", "str", required=False)
    pool_id = ctx.field("poolId", "str", required=False)
    ctx.field("isIncremental", "bool", required=False)
    lookup(srv.vols, vid, "volume")
    if pool_id is not None and pool_id not in srv.pools.items:
        raise ApiError(404, "poolId: pool '%s' not found" % pool_id)
    if vid in cg.pub["volumeIds"]:
        raise ApiError(409, "volume '%s' is already in consistency group '%s'" % (vid, cg.id))
    cg.pub["volumeIds"].append(vid)
    srv.cgs.touch(cg)
    return 200, cg.json(), None


def h_cg_remove_volume(ctx):
    srv, cg = get_cg(ctx)
    vids = ctx.field("volumeIds", "strlist")
    for vid in vids:
        if vid not in cg.pub["volumeIds"]:
            raise ApiError(404, "volume '%s' is not in consistency group '%s'" % (vid, cg.id))
    cg.pub["volumeIds"] = [v for v in cg.pub["volumeIds"] if v not in vids]
    srv.cgs.touch(cg)
    return 200, cg.json(), None


def h_cg_take_snapshot(ctx):
    srv, cg = get_cg(ctx)
    prefix = ctx.field("prefix", "str", required=False, default="cgsnap")
    for f in ("replicate", "isAutoDelete", "isIncremental"):
        ctx.field(f, "bool", required=False)
    cgid = cg.id
    cg.x["seq"] += 1
    seq = cg.x["seq"]
    csid = "cgsnap-%s-%s-%d" % (srv.sid, cgid.split("-")[-1] if cgid.startswith("cg-") else
                                "x", seq)
    while csid in cg.x["snaps"].items:
        csid += "x"
    name = "%s-%04d" % (prefix, seq)

    def effect():
        g = srv.cgs.items.get(cgid)
        if g is None:
            raise TaskFailed("consistency group '%s' was deleted" % cgid)
        ct = int(time.time())
        snap_ids = []
        for vid in g.pub["volumeIds"]:
            v = srv.vols.items.get(vid)
            if v is None:
                continue
            coll = srv.snaps(v)
            sname = name
            while any(s.pub["name"] == sname for s in coll.order()):
                sname += "-1"
            snid = srv.new_snapshot_id(v)
            coll.add(Rec({"id": snid, "name": sname, "creationTime": ct,
                          "consistencyGroupSnapshotId": csid,
                          "config": {"groundCloneRequired": False}},
                         {"used": v.pub["stats"]["usedSize"]}))
            srv.snap_count += 1
            snap_ids.append(snid)
        g.x["snaps"].add(Rec({"id": csid, "name": name, "creationTime": ct,
                              "volumeSnapshotIds": snap_ids}))
        ctx.sim.event("consistency group %s snapshot %s taken" % (cgid, csid))
        return {"id": csid, "name": name}

    return ctx.sim.run_task(ctx, "Snapshot consistency group %s" % cg.pub["name"],
                            [res(cg.pub["name"], uri("server", srv.sid, "consistencygroup",
                                                     cgid), "consistencygroup"),
                             res(name, uri("server", srv.sid, "consistencygroup", cgid,
                                           "snapshot"), "snapshot")],
                            ["Quiescing %d volumes" % len(cg.pub["volumeIds"]),
                             "Taking snapshot %s" % name, "Resuming I/O"],
                            effect, None, [(srv, v) for v in cg.pub["volumeIds"]])


def h_cg_condense(ctx):
    srv, cg = get_cg(ctx)
    age = ctx.field("ageInDays", "num", required=False, default=0)
    keep = ctx.field("numberOfInstances", "int", required=False, default=1)
    prefixes = ctx.field("snapshotPrefixes", "strlist", required=False, default=[])
    if keep < 0 or age < 0:
        raise ApiError(422, "fields 'ageInDays' and 'numberOfInstances' must not be negative")
    cgid = cg.id

    def effect():
        g = srv.cgs.items.get(cgid)
        if g is None:
            raise TaskFailed("consistency group '%s' was deleted" % cgid)
        now = time.time()
        snaps = [(s.pub["creationTime"], n, s) for n, s in enumerate(g.x["snaps"].order())
                 if not prefixes or any(s.pub["name"].startswith(p) for p in prefixes)]
        snaps.sort(reverse=True, key=lambda e: e[:2])  # newest first; later in list = newer
        for _, _, s in snaps[keep:]:
            if now - s.pub["creationTime"] < age * 86400:
                continue
            g.x["snaps"].remove(s.id)
            for v in g.pub["volumeIds"]:
                vrec = srv.vols.items.get(v)
                if vrec is None or vrec.x["snaps"] is None:
                    continue
                coll = vrec.x["snaps"]
                for vs in list(coll.order()):
                    if vs.pub["consistencyGroupSnapshotId"] == s.id:
                        coll.remove(vs.id)
                        srv.snap_count -= 1
        ctx.sim.event("consistency group %s condensed" % cgid)
        return g.pub

    return ctx.sim.run_task(ctx, "Condense consistency group %s" % cg.pub["name"],
                            [res(cg.pub["name"], uri("server", srv.sid, "consistencygroup",
                                                     cgid), "consistencygroup")],
                            ["Selecting snapshots to condense", "Deleting snapshots",
                             "Updating consistency group"], effect, None, [])


def h_cg_add_target(ctx):
    srv, cg = get_cg(ctx)
    target = ctx.field("targetName", "str")
    ra = next((r for r in srv.ras.order()
               if target in (r.pub["name"], r.pub["hostAddress"], r.id)), None)
    if ra is None:
        raise ApiError(404, "targetName: no remote array named %r" % target)
    if any(t["id"] == ra.id for t in cg.pub["targets"]):
        raise ApiError(409, "remote array %r is already a target of '%s'" % (target, cg.id))
    t = {"id": ra.id, "name": ra.pub["name"], "hostAddress": ra.pub["hostAddress"]}
    cg.pub["targets"].append(t)
    cg.pub["config"]["replicationTarget"] = True
    srv.cgs.touch(cg)
    return ok_json(t)


# -- tasks

def h_tasks(ctx):
    start, limit = ctx.page()
    tasks = ctx.array.tasks
    n = len(tasks)
    sel = [tasks[n - 1 - i].render(ctx.now) for i in range(start, min(n, start + limit))]
    return ok_json({"tasks": sel})


def h_task(ctx):
    t = ctx.array.task_by_id.get(ctx.params[0])
    if t is None:
        raise ApiError(404, "task '%s' not found" % ctx.params[0])
    return ok_json(t.render(ctx.now))


# --------------------------------------------------------------------------
# Routing

class Route:
    __slots__ = ("template", "handlers", "post", "actions", "public", "allow")

    def __init__(self, template, get=None, delete=None, post=None, actions=None, public=()):
        self.template = template
        self.handlers = {}
        if get:
            self.handlers["GET"] = get
        if delete:
            self.handlers["DELETE"] = delete
        self.post = post
        self.actions = {k.lower(): (k, v) for k, v in (actions or {}).items()}
        self.public = set(public)
        methods = sorted(set(self.handlers) | ({"POST"} if post or actions else set()))
        self.allow = ", ".join(methods)


ROUTE_LIST = [
    Route("/info", get=h_info, public=("GET",)),
    Route("/session", post=h_login, delete=h_logout, public=("POST",)),
    Route("/log", get=h_log),
    Route("/storage", get=h_storage),
    Route("/server", get=h_servers),
    Route("/server/{sid}", get=h_server),
    Route("/server/{sid}/system", get=h_system),
    Route("/server/{sid}/volume", get=list_handler("vols")),
    Route("/server/{sid}/volume/{vid}", get=item_handler("vols", "volume"),
          delete=h_volume_delete,
          actions={"clone": h_clone, "mount": h_mount, "split": h_split,
                   "restore": h_restore, "restore-to-alternate": h_restore_alt,
                   "restore-to-new": h_restore_new}),
    Route("/server/{sid}/volume/{vid}/splitstatus", get=h_splitstatus),
    Route("/server/{sid}/volume/{vid}/snapshot", get=h_snapshots, post=h_snapshot_create),
    Route("/server/{sid}/volume/{vid}/snapshot/{snid}", get=h_snapshot,
          delete=h_snapshot_delete, actions={"get-Progress": h_snapshot_progress}),
    Route("/server/{sid}/lun", get=list_handler("luns")),
    Route("/server/{sid}/lun/{lid}", get=item_handler("luns", "LUN"),
          actions={"online": h_lun_online}),
    Route("/server/{sid}/host", get=list_handler("hosts"), post=h_host_create),
    Route("/server/{sid}/host/{hid}", get=h_host,
          actions={"map": h_host_map, "unmap": h_host_unmap}),
    Route("/server/{sid}/host/{hid}/lun", get=h_host_luns),
    Route("/server/{sid}/hostgroup", get=list_handler("groups")),
    Route("/server/{sid}/hostgroup/{gid}", actions={"map": h_group_map}),
    Route("/server/{sid}/network", get=list_handler("nets")),
    Route("/server/{sid}/network/{nid}", get=item_handler("nets", "network")),
    Route("/server/{sid}/pool", get=list_handler("pools")),
    Route("/server/{sid}/pool/{pid}", get=item_handler("pools", "pool")),
    Route("/server/{sid}/consistencygroup", get=list_handler("cgs")),
    Route("/server/{sid}/consistencygroup/{cgid}", get=item_handler("cgs", "consistency group"),
          actions={"add-volume": h_cg_add_volume, "remove-volume": h_cg_remove_volume,
                   "condense": h_cg_condense, "take-snapshot": h_cg_take_snapshot,
                   "add-replication-target": h_cg_add_target}),
    Route("/server/{sid}/consistencygroup/{cgid}/snapshot", get=h_cg_snapshots),
    Route("/server/{sid}/remotearray", get=list_handler("ras")),
    Route("/tasks", get=h_tasks),
    Route("/tasks/{taskId}", get=h_task),
]


def route_key(segs):
    """Literals sit at even positions, parameters at odd ones, in every template."""
    return (len(segs), tuple(segs[0::2]))


ROUTES = {route_key(r.template.split("/")[1:]): r for r in ROUTE_LIST}


# --------------------------------------------------------------------------
# The dialect: sessions, dispatch, /_sim additions

class StoragePlugin(Dialect):
    name = "storage-plugin"
    arrays = True
    base = API_BASE
    api = "storageplugin"

    def credentials(self, root):
        lines = ["username=" + self.opts.user, "password=" + self.opts.password]
        if self.opts.arrays > 1:  # with one array any login selects it
            lines.append("array=array1.example.com")
        return lines

    def __init__(self, sim, opts):
        super().__init__(sim, opts)
        self.user = opts.user
        self.password = opts.password
        self.ttl = opts.session_ttl
        self.page_max = opts.page_max
        self.lock = sim.lock
        self.sessions = {}   # sessionId -> [array, expiry]
        self.arrays = [build_array(i, opts) for i in range(opts.arrays)]
        self.info_json = dumps({
            "name": "dsfs reference storage", "id": PLUGIN_ID, "version": VERSION,
            "imageUrl": "data:image/png;base64," + base64.b64encode(
                png(48, 48, (0x1F, 0x6F, 0xB5))).decode(),
            "iconUrl": "data:image/png;base64," + base64.b64encode(
                png(16, 16, (0x1F, 0x6F, 0xB5))).decode()})
        sim.event("server started with %d array(s)" % len(self.arrays))

    # what the handlers read through ctx.sim
    def event(self, msg):
        self.sim.event(msg)

    @property
    def events(self):
        return self.sim.events

    @property
    def port(self):
        return self.sim.port

    @property
    def last_task(self):
        return self.sim.last_task

    # -- pagination
    def paging(self, query):
        start = limit = None
        try:
            if "start" in query:
                start = int(query["start"])
            if "limit" in query:
                limit = int(query["limit"])
        except ValueError:
            raise ApiError(400, "'limit' and 'start' must be integers")
        if start is None:
            start = 0
        elif start < 0:
            raise ApiError(400, "'start' must be 0 or more")
        if limit is None:
            limit = self.page_max
        elif limit < 1:
            raise ApiError(400, "'limit' must be 1 or more")
        return start, min(limit, self.page_max)

    def run_task(self, ctx, display, resources, steps, effect, fail, busy):
        """Start an asynchronous task (202), or run it at once with --sync (200)."""
        if self.opts.sync:
            if fail:
                raise ApiError(500, fail)
            try:
                return ok_json(effect())
            except TaskFailed as e:
                raise ApiError(409, str(e))
        sim = self.sim
        arr = ctx.array
        tid = "%08x-%04x-4%03x-a%03x-%012x" % (
            random.getrandbits(32), random.getrandbits(16), random.getrandbits(12),
            random.getrandbits(12), random.getrandbits(48))
        task = Task(tid, display, ctx.now, self.opts.task_seconds, steps, resources, effect,
                    fail, busy)
        arr.tasks.append(task)
        arr.task_by_id[tid] = task
        sim.start_task(arr, task)
        turi = API_BASE + "/tasks/" + tid
        return 202, dumps({"taskUri": turi}), [("Location", ctx.base + "/tasks/" + tid)]

    def settle(self, arr, now):
        self.sim.settle(arr, now)

    # -- the API
    def route(self, method, path, qs, headers, body):
        if path != API_BASE and not path.startswith(API_BASE + "/"):
            self.count((method, "<unknown>"))
            return Req(method, path, answer=(404, error_body(404, "not under %s" % API_BASE),
                                             None))
        rel = path[len(API_BASE):]
        route, segs, query, action = self.classify(method, rel, qs)
        entry = self.record(method, path, qs, headers, body, route.template if route else None)
        return Req(method, path, rel, route, segs, query, action, entry)

    def handle(self, req, headers, body, host):
        return self.handle_api(req.method, req.route, req.segs, req.query, req.action,
                               headers, body, host)

    def classify(self, method, rel, query_string):
        """Route an API request and count it in the stats."""
        segs = split_path(rel)
        route = ROUTES.get(route_key(segs))
        query = dict(parse_qsl(query_string, keep_blank_values=True)) if query_string else {}
        action = query.get("action") if method == "POST" else None
        if route is None:
            key = (method, "<unknown>")
        elif action is not None:
            canon = route.actions.get(action.lower())
            key = (method, route.template, canon[0] if canon else action)
        else:
            key = (method, route.template)
        self.count(key)
        return route, segs, query, action

    def handle_api(self, method, route, segs, query, action, headers, body, host):
        """Answer one API request: (status, body, headers) or raise ApiError.

        Checks run in this order: path (404), method (405), session (401),
        action (400), media type (415), JSON (400), then the handler's own
        404 / 422 / 409.
        """
        if route is None:
            raise ApiError(404, "no such resource")
        allowed = method in route.handlers or (
            method == "POST" and (route.post is not None or route.actions))
        if not allowed:
            raise ApiError(405, "%s is not allowed here" % method, [("Allow", route.allow)])
        ctx = Ctx()
        ctx.sim = self
        ctx.method = method
        ctx.params = segs[1::2]
        ctx.query = query
        ctx.headers = headers
        ctx.base = "%s://%s%s" % (self.sim.scheme, host or self.sim.default_host, API_BASE)
        ctx.body = {}
        with self.lock:
            now = ctx.now = time.time()
            ctx.session = ctx.array = None
            if method not in route.public:
                sid = headers.get("x-storageplugin-sessionid")
                if not sid:
                    raise ApiError(401, "missing x-storageplugin-sessionid header")
                sess = self.sessions.get(sid)
                if sess is None or sess[1] < now:
                    self.sessions.pop(sid, None)
                    raise ApiError(401, "the session is unknown or has expired")
                sess[1] = now + self.ttl
                ctx.session = sid
                ctx.array = sess[0]
                if ctx.array.pending:
                    self.settle(ctx.array, now)
            if method != "POST":
                return route.handlers[method](ctx)
            known = ", ".join(a for a, _ in route.actions.values()) or "none"
            if action is not None:
                found = route.actions.get(action.lower())
                if found is None:
                    raise ApiError(400, "unknown action %r (known: %s)" % (action, known))
                fn = found[1]
            elif route.post is not None:
                fn = route.post
            else:
                raise ApiError(400, "missing 'action' query parameter (known: %s)" % known)
            if body:
                if media_type(headers) != "application/json":
                    raise ApiError(415, "request bodies must be application/json (got %r)"
                                   % headers.get("content-type", ""))
                ctx.body = json_object(body)
            return fn(ctx)

    # -- /_sim: the shared controls' hooks, and a rename
    def logins(self):
        return self.sessions

    @staticmethod
    def login_expiry(value):
        return value[1]

    def sessions_answer(self, live):
        return {"active": len(live), "byArray": {
            a.id: sum(1 for s in live if s[0] is a) for a in self.arrays}}

    def sim_extra(self, method, parts, body, qs):
        if parts == ["rename"] and method == "POST":
            # a server renaming a volume behind its clients' back (the API has no rename)
            b = json_object(body)
            arr = next((a for a in self.arrays if a.id == b.get("array", self.arrays[0].id)), None)
            srv = arr.srv.get(b.get("server")) if arr else None
            name = b.get("name")
            if srv is None or not isinstance(name, str) or not name:
                raise ApiError(422, "want {\"server\", \"volume\", \"name\"} (and \"array\")")
            with self.lock:
                vrec = srv.vols.items.get(b.get("volume"))
                if vrec is None:
                    raise ApiError(404, "no volume %r on server %r" % (b.get("volume"), srv.sid))
                vrec.pub["name"] = name
                srv.vols.touch(vrec)
            self.event("volume %s renamed to %r" % (vrec.id, name))
            return no_content()
        return None
