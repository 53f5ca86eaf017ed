#!/usr/bin/env python3
"""dsfs reference storage server: the storage-plugin REST API in one process.

It serves every endpoint of the storage-plugin API (docs/refserver.md) with
in-memory state, asynchronous tasks, pagination, several arrays, fault
injection (/_sim) and TLS, using the Python standard library only. With
--dialect dscc it serves the part of the DSCC v1 API (the OpenAPI spec in
tests/server/spec) that dsfs uses instead, with OAuth2 client-credentials
tokens. dsfs's tests, demo and benchmarks run against it;
docs/refserver.md describes it.

Run: python3 tests/server/refserver.py --listen 127.0.0.1:0 [options]
     python3 tests/server/refserver.py --dialect dscc --listen 127.0.0.1:0 [options]
"""

import argparse
import base64
import collections
import heapq
import hmac
import io
import json
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
import zipfile
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote

API_BASE = "/storageplugin/api"
PLUGIN_ID = "dsfs-refserver"
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

CATEGORIES = ["db", "web", "app", "log", "vm", "home", "mail", "bkp", "etl", "k8s"]
HOST_ROLES = ["esx", "sql", "web", "app", "k8s-node", "backup", "oracle", "exch"]
POOLS = ["pool-ssd-01", "pool-hdd-01", "pool-nvme-01"]
NETWORKS = [  # name, nfs, cifs, iscsi, fc
    ("e0a-iscsi", False, False, True, False),
    ("e0b-iscsi", False, False, True, False),
    ("0c-fc", False, False, False, True),
    ("e0d-nas", True, True, False, False),
]
CG_NAMES = ["cg-oracle-prod", "cg-sql-prod", "cg-exchange"]
REMOTE_ARRAYS = [("dr-site-array", "dr-array.example.com"), ("backup-vault", "198.51.100.20")]
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
        cat = CATEGORIES[h % len(CATEGORIES)]
        size = SIZES_GIB[(h >> 8) % len(SIZES_GIB)] * GIB
        used = size * (5 + (h >> 16) % 90) // 100
        ct = t0 + (h >> 24) % (500 * 86400)
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


def ok_json(obj, status=200, headers=None):
    return status, dumps(obj), headers


def no_content():
    return 204, b"", None


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
    auth = ctx.headers.get("authorization", "")
    challenge = [("WWW-Authenticate", 'Basic realm="storageplugin"')]
    if auth[:6].lower() != "basic ":
        raise ApiError(401, "HTTP Basic credentials are required", challenge)
    try:
        user, _, password = base64.b64decode(auth[6:].strip(), validate=True) \
            .decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(401, "malformed HTTP Basic credentials", challenge)
    if not (hmac.compare_digest(user.encode(), sim.user.encode())
            and hmac.compare_digest(password.encode(), sim.password.encode())):
        sim.event("login refused for user %r" % user)
        raise ApiError(401, "wrong user name or password", challenge)
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
    snap_id = snap.id if snap else None

    def effect():
        s = srv.vols.items.get(src_id)
        if s is None:
            raise TaskFailed("source volume '%s' was deleted" % src_id)
        rec = volume_from(srv, s, idx, vid, name, size, used, pool_id, sgk, instant)
        rec.pub["restoredFromSnapshotId"] = snap_id
        ctx.sim.event("volume %s cloned to %s" % (src_id, vid))
        return rec.pub

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

    def effect():
        s = srv.vols.items.get(src_id)
        if s is None:
            raise TaskFailed("source volume '%s' was deleted" % src_id)
        rec = volume_from(srv, s, idx, vid, name, size, used, pool_id, sgk, True)
        rec.pub["restoredFromSnapshotId"] = snid
        ctx.sim.event("snapshot %s of %s restored to new volume %s" % (snid, src_id, vid))
        return rec.pub

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
# The simulator: state, dispatch, /_sim

class Sim:
    def __init__(self, opts):
        self.opts = opts
        self.user = opts.user
        self.password = opts.password
        self.ttl = opts.session_ttl
        self.page_max = opts.page_max
        self.lock = threading.Lock()
        self.stats_lock = threading.Lock()
        self.fault_lock = threading.Lock()
        self.sessions = {}   # sessionId -> [array, expiry]
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
        self.dscc = None
        if opts.dialect == "dscc":
            self.arrays = []
            self.dscc = Dscc(self, opts)
        else:
            self.arrays = [build_array(i, opts) for i in range(opts.arrays)]
        self.info_json = dumps({
            "name": "dsfs reference storage", "id": PLUGIN_ID, "version": VERSION,
            "imageUrl": "data:image/png;base64," + base64.b64encode(
                png(48, 48, (0x1F, 0x6F, 0xB5))).decode(),
            "iconUrl": "data:image/png;base64," + base64.b64encode(
                png(16, 16, (0x1F, 0x6F, 0xB5))).decode()})
        if self.dscc is not None:
            self.event("server started (dscc) with %d storage system(s)"
                       % len(self.dscc.est.systems))
        else:
            self.event("server started with %d array(s)" % len(self.arrays))

    def event(self, msg):
        self.events.append("%s %s" % (iso(time.time()), msg))

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

    # -- tasks
    def run_task(self, ctx, display, resources, steps, effect, fail, busy):
        """Start an asynchronous task (202), or run it at once with --sync (200)."""
        if self.opts.sync:
            if fail:
                raise ApiError(500, fail)
            try:
                return ok_json(effect())
            except TaskFailed as e:
                raise ApiError(409, str(e))
        arr = ctx.array
        tid = "%08x-%04x-4%03x-a%03x-%012x" % (
            random.getrandbits(32), random.getrandbits(16), random.getrandbits(12),
            random.getrandbits(12), random.getrandbits(48))
        task = Task(tid, display, ctx.now, self.opts.task_seconds, steps, resources,
                    effect, fail, busy)
        for srv, vid in busy:
            srv.busy[vid] += 1
        arr.tasks.append(task)
        arr.task_by_id[tid] = task
        self.task_seq += 1
        heapq.heappush(arr.pending, (task.end, self.task_seq, task))
        self.last_task = task
        self.event("task %s started: %s" % (tid, display))
        turi = API_BASE + "/tasks/" + tid
        return 202, dumps({"taskUri": turi}), [("Location", ctx.base + "/tasks/" + tid)]

    def settle(self, arr, now):
        """Finish the tasks of an array whose time has come (lock held)."""
        pending = arr.pending
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

    # -- the API
    def classify(self, method, rel, query_string):
        """Route an API request and count it in the stats."""
        segs = rel.split("/")[1:] if rel else []
        if len(segs) > 1 and segs[-1] == "":
            segs.pop()
        if "%" in rel:
            segs = [unquote(s) for s in segs]
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
        with self.stats_lock:
            self.stats[key] += 1
            self.total += 1
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
        ctx.base = "%s://%s%s" % (self.scheme, host or self.default_host, API_BASE)
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
                ctype = headers.get("content-type", "")
                if ctype.split(";")[0].strip().lower() != "application/json":
                    raise ApiError(415, "request bodies must be application/json (got %r)"
                                   % ctype)
                ctx.body = self.parse_json(body)
            return fn(ctx)

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
        if self.dscc is not None:
            out = self.dscc.sim_control(method, parts, body, qs)
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
        if parts == ["sessions"] and method == "GET":
            with self.lock:
                now = time.time()
                live = [s for s in self.sessions.values() if s[1] >= now]
                return ok_json({"active": len(live), "byArray": {
                    a.id: sum(1 for s in live if s[0] is a) for a in self.arrays}})
        if parts == ["sessions", "expire"] and method == "POST":
            with self.lock:
                self.sessions.clear()
            return no_content()
        if parts == ["password"] and method == "POST":
            pw = self.parse_json(body).get("password")
            if not isinstance(pw, str):
                raise ApiError(422, "field 'password' must be a string")
            with self.lock:
                self.password = pw
            self.event("password changed")
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
# The dscc dialect (--dialect dscc): Data Services Cloud Console API v1
#
# The contract is the OpenAPI spec itself (tests/server/spec): every route
# below is one of the spec's path templates, request bodies are checked
# against the operation's schema with openapi_check, and every object
# answered is the spec's example skeleton of the response schema with the
# estate's values laid over it, so it carries every property the schema
# lists. Sessions become OAuth2 bearer tokens; tasks, faults, stats, TLS and
# HTTP are the storage-plugin mode's own.

DSCC_API = "/api/v1"
DSCC_TOKEN_PATH = "/oauth2/token"
DSCC_LONG_TTL = 10 * 365 * 86400
DSCC_REQUESTS_KEPT = 500

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
    K_WWN = range(1, 13)


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
        self.requests = collections.deque(maxlen=DSCC_REQUESTS_KEPT)
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
            cat = CATEGORIES[h % len(CATEGORIES)]
            size = SIZES_GIB[(h >> 8) % len(SIZES_GIB)] * MIB_PER_GIB
            used = size * (5 + (h >> 16) % 90) // 100
            ct = t0 + (h >> 24) % (500 * 86400)
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
                   serial="%032x" % (mix(h, 1) << 64 | mix(h, 2)), gen=1)
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
                "fullyProvisioned": not x["thin"], "provType": "TPVV" if x["thin"] else "FULL",
                "creationTime": cal(x["ct"]), "wwn": x["wwn"], "volumeType": "VVTYPE_BASE",
                "readOnly": x["ro"], "comment": x["comment"], "domain": "",
                "state": {"overall": "STATE_NORMAL", "detailed": []}, "healthState": 1,
                "started": True, "hidden": False, "copyOfID": pidx, "physParentID": pidx,
                "parentID": 0, "dataReduction": "ON" if x["thin"] else "OFF",
                "dedup": "OFF", "userSpace": {"totalMiB": size, "usedMiB": used,
                                              "reservedMiB": used, "freeMiB": size - used},
                "hostWrittenToVirtualPercent": round(100.0 * used / size, 2) if size else 0.0,
                "userUsedToVirtualPercent": round(100.0 * used / size, 2) if size else 0.0,
                "initiators": host_refs(est, vrec),
                "associatedLinks": [link("snapshots", uri + "/snapshots"),
                                    link("vluns", uri + "/vluns"),
                                    link("storage-pools", u_pool(s, x["pool"])),
                                    link("systems", u_sys(s))]})
    return out


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
                "creation_time": x["ct"], "last_modified": x["ct"], "online": True,
                "vol_state": "online", "read_only": x["ro"], "num_snaps": est.snap_count(vrec),
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
                "subType": "PROVTYPE_TPVV" if x["thin"] else "PROVTYPE_FULL",
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


def _cmp(a, b):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return -2 if a != b else 0
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) or \
            isinstance(a, str) and isinstance(b, str):
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

    def term():
        f = factor()
        while peek() == "and":
            take()
            g = factor()
            f = (lambda f1, f2: lambda o: f1(o) and f2(o))(f, g)
        return f

    def expr():
        f = term()
        while peek() == "or":
            take()
            g = term()
            f = (lambda f1, f2: lambda o: f1(o) or f2(o))(f, g)
        return f

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


# -- request context and the dialect itself

class DCtx:
    __slots__ = ("d", "est", "method", "p", "query", "headers", "body", "now", "base",
                 "route", "path")


class DRoute:
    __slots__ = ("template", "segs", "handlers", "allow", "body_required", "schemas")

    def __init__(self, template, handlers):
        self.template = template
        self.segs = tuple(None if s.startswith("{") else s for s in template.split("/")[1:])
        self.handlers = handlers
        self.allow = ", ".join(sorted(handlers))
        self.body_required = {}
        self.schemas = {}


class Dscc:
    """The dscc dialect: routing, tokens, validation, lists and the estate."""

    def __init__(self, sim, opts):
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

    # -- routing and stats
    def classify(self, method, path):
        segs = path.split("/")[1:] if path else []
        if len(segs) > 1 and segs[-1] == "":
            segs.pop()
        if "%" in path:
            segs = [unquote(s) for s in segs]
        route = None
        for r in self.index.get(len(segs), ()):
            if all(p is None or p == s for p, s in zip(r.segs, segs)):
                route = r
                break
        key = (method, route.template if route else "<unknown>")
        sim = self.sim
        with sim.stats_lock:
            sim.stats[key] += 1
            sim.total += 1
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
    def issue_token(self, ttl, client):
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
        def oauth_error(status, code, desc, extra=None):
            return status, dumps({"error": code, "error_description": desc}), \
                [("Cache-Control", "no-store")] + (extra or [])

        if method != "POST":
            return 405, error_body(405, "%s is not allowed here" % method), [("Allow", "POST")]
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return oauth_error(400, "invalid_request", "the token request must be "
                               "application/x-www-form-urlencoded (got %r)" % ctype)
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            return oauth_error(400, "invalid_request", "the form is not UTF-8")
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("authorization", "")
        challenge = None
        if auth[:6].lower() == "basic ":
            challenge = [("WWW-Authenticate", 'Basic realm="dscc"')]
            try:
                user, _, pw = base64.b64decode(auth[6:].strip(), validate=True) \
                    .decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return oauth_error(401, "invalid_client", "malformed HTTP Basic credentials",
                                   challenge)
            cid, secret = unquote(user.replace("+", " ")), unquote(pw.replace("+", " "))
        grant = form.get("grant_type")
        if grant is None:
            return oauth_error(400, "invalid_request", "grant_type is missing")
        if grant != "client_credentials":
            return oauth_error(400, "unsupported_grant_type",
                               "only grant_type=client_credentials is supported")
        if cid is None or secret is None:
            return oauth_error(401, "invalid_client", "client credentials are missing "
                               "(HTTP Basic or client_id and client_secret)", challenge)
        with self.sim.lock:
            ok = hmac.compare_digest(cid.encode(), self.client_id.encode()) and \
                hmac.compare_digest(secret.encode(), self.client_secret.encode())
            if not ok:
                self.sim.event("token refused for client %r" % cid)
                return oauth_error(401, "invalid_client", "unknown client or wrong secret",
                                   challenge)
            out = self.issue_token(self.opts.token_ttl, cid)
        self.sim.event("token issued to client %s" % cid)
        return 200, dumps(out), [("Cache-Control", "no-store"), ("Pragma", "no-cache")]

    # -- requests
    def record(self, method, path, qs, headers, body):
        """Keep a non-GET request for GET /_sim/requests; returns the entry."""
        if method in ("GET", "HEAD") or not path.startswith(DSCC_API + "/"):
            return None
        parsed = None
        if body:
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                parsed = body.decode("utf-8", "replace")
        entry = {"method": method, "path": path, "query": qs, "template": None,
                 "contentType": headers.get("content-type"), "body": parsed, "status": None,
                 "time": iso(time.time())}
        with self.sim.lock:
            self.est.requests.append(entry)
        return entry

    # -- one API request
    def handle(self, method, path, route, segs, query, headers, body, host):
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
                ctype = headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    raise ApiError(415, "request bodies must be application/json (got %r)"
                                   % ctype)
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
            return fn(ctx)

    # -- tasks
    def settle(self, now):
        est = self.est
        if est.pending and est.pending[0][0] <= now:
            self.sim.settle(est, now)
            est.gen += 1

    def run_task(self, ctx, display, resources, steps, effect, fail=None, busy=()):
        sim = self.sim
        est = self.est
        tid = uuid_of("%032x" % random.getrandbits(128))
        dur = 0.0 if self.opts.sync else self.opts.task_seconds
        task = DTask(tid, display, ctx.now, dur, steps, resources, effect, fail, list(busy),
                     customer=est.customer, user=self.client_id, poll=self.poll)
        for s, vid in busy:
            s.busy[vid] += 1
        est.tasks.append(task)
        est.task_by_id[tid] = task
        sim.task_seq += 1
        heapq.heappush(est.pending, (task.end, sim.task_seq, task))
        sim.last_task = task
        sim.event("task %s started: %s" % (tid, display))
        if dur == 0:
            self.settle(ctx.now)
        uri = u_top("tasks", tid)
        return 202, dumps({"taskUri": uri, "status": "SUBMITTED",
                           "message": "Successfully submitted"}), [("Location", ctx.base + uri)]

    # -- /_sim additions
    def sim_control(self, method, parts, body, qs):
        est = self.est
        sim = self.sim
        if parts == ["tokens"] and method == "POST":
            spec = sim.parse_json(body)
            ttl = spec.get("ttl", DSCC_LONG_TTL)
            if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
                raise ApiError(422, "field 'ttl' must be a positive number of seconds")
            with sim.lock:
                out = self.issue_token(ttl, spec.get("client_id", self.client_id))
            return ok_json(out)
        if parts == ["sessions"] and method == "GET":
            with sim.lock:
                now = time.time()
                return ok_json({"active": sum(1 for e in est.tokens.values() if e >= now)})
        if parts == ["sessions", "expire"] and method == "POST":
            with sim.lock:
                est.tokens.clear()
            sim.event("every token expired")
            return no_content()
        if parts == ["password"] and method == "POST":
            pw = sim.parse_json(body).get("password")
            if not isinstance(pw, str):
                raise ApiError(422, "field 'password' must be a string")
            with sim.lock:
                self.client_secret = pw
            sim.event("client secret changed")
            return no_content()
        if parts == ["requests"]:
            if method == "GET":
                q = dict(parse_qsl(qs)) if qs else {}
                try:
                    n = int(q.get("limit", DSCC_REQUESTS_KEPT))
                except ValueError:
                    raise ApiError(400, "'limit' must be an integer")
                with sim.lock:
                    reqs = list(est.requests)
                return ok_json({"requests": reqs[-n:] if n > 0 else []})
            if method == "DELETE":
                with sim.lock:
                    est.requests.clear()
                return no_content()
        return None


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
    found = ctx.est.vset_index.get(ctx.p["id"])
    if found is None:
        raise ApiError(404, "volume set '%s' not found" % ctx.p["id"])
    return ctx.d.one(ctx, found[1], r_vset)


# -- volumes

def h_d_volumes(ctx):
    recs = [v for s in ctx.est.systems.values() for v in s.vols.values()]
    return ctx.d.listing(ctx, recs, r_vol_fleet)


def h_d_volume(ctx):
    found = ctx.est.vol_index.get(ctx.p["id"])
    if found is None:
        raise ApiError(404, "volume '%s' not found" % ctx.p["id"])
    return ctx.d.one(ctx, found[1], r_vol_fleet)


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
        s = d_system(ctx, "systemId", dt)
        vrec = d_volume(ctx, s, "id" if dt == 1 else "volumeId")
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
        s = d_system(ctx, "systemId", dt)
        vrec = d_volume(ctx, s, "id" if dt == 1 else "volumeId")
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
    s = d_system(ctx, "systemId", 1)
    vrec = d_volume(ctx, s, "id")
    recs = [DRec(vlid, vid=vrec.id, lun=lun, host=hid, sys=s, vol=vrec, gen=vrec.x["gen"])
            for vlid, lun, hid in vlun_list(ctx.est, vrec)]
    return ctx.d.listing(ctx, recs, r_vlun, live=True)


# -- snapshots

def h_d_snapshots(dt):
    def handler(ctx):
        s = d_system(ctx, "systemId", dt)
        vrec = d_volume(ctx, s, "id" if dt == 1 else "volumeId")
        return ctx.d.listing(ctx, list(ctx.est.snaps(s, vrec).values()),
                             r_snap1 if dt == 1 else r_snap2, s, vrec)
    return handler


def h_d_snapshot(dt):
    def handler(ctx):
        s = d_system(ctx, "systemId", dt)
        vrec = d_volume(ctx, s, "volumeId")
        return ctx.d.one(ctx, d_snapshot(ctx, s, vrec), r_snap1 if dt == 1 else r_snap2,
                         s, vrec)
    return handler


def h_d_snapshot_create(dt):
    def handler(ctx):
        s = d_system(ctx, "systemId", dt)
        vrec = d_volume(ctx, s, "id" if dt == 1 else "volumeId")
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
        s = d_system(ctx, "systemId", dt)
        vrec = d_volume(ctx, s, "volumeId")
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
    s = d_system(ctx, "systemId", 1)
    vrec = d_volume(ctx, s, "volumeId")
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
    s = d_system(ctx, "systemId", 2)
    vrec = d_volume(ctx, s, "volumeId")
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
    ctx.d.sim.event("host %s created" % h.id)
    return 200, ctx.d.render(h, ctx.d.response_schema(ctx), r_host), None


def h_d_host_delete(ctx):
    est = ctx.est
    h = d_lookup(est.hosts, ctx.p["hostId"], "host")
    hid = h.id

    def effect():
        x = est.hosts.pop(hid, None)
        if x is None:
            raise TaskFailed("host '%s' was already deleted" % hid)
        for g in est.groups.values():
            if hid in g.x["hosts"]:
                g.x["hosts"].remove(hid)
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
        x = est.groups.pop(gid, None)
        if x is None:
            raise TaskFailed("host group '%s' was already deleted" % gid)
        for h in est.hosts.values():
            if gid in h.x["groups"]:
                h.x["groups"].remove(gid)
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


def h_d_issues(ctx):
    return ctx.d.listing(ctx, list(ctx.est.issues.values()), r_issue)


def h_d_issue(ctx):
    return ctx.d.one(ctx, d_lookup(ctx.est.issues, ctx.p["id"], "issue"), r_issue)


DT1 = "/api/v1/storage-systems/device-type1"
DT2 = "/api/v1/storage-systems/device-type2"
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
    (DT1, {"GET": h_d_systems_dt(1)}),
    (DT1 + "/{id}", {"GET": h_d_system_dt(1, "id")}),
    (DT1 + "/{systemId}/storage-pools", {"GET": h_d_pools(1)}),
    (DT1 + "/{systemId}/storage-pools/{id}", {"GET": h_d_pool(1, "id")}),
    (DT1 + "/{systemId}/storage-pools/{id}/volumes", {"GET": h_d_pool_volumes(1)}),
    (DT1 + "/{systemId}/volumes", {"GET": h_d_volumes_dt(1), "POST": h_d_vol1_create}),
    (DT1 + "/{systemId}/volumes/{id}", {"GET": h_d_volume_dt(1, "id"),
                                        "DELETE": h_d_vol_delete(1)}),
    (DT1 + "/{systemId}/volumes/{id}/clone", {"POST": h_d_vol_clone(1)}),
    (DT1 + "/{systemId}/volumes/{id}/export", {"POST": h_d_vol_export(1, False)}),
    (DT1 + "/{systemId}/volumes/{id}/un-export", {"POST": h_d_vol_export(1, True)}),
    (DT1 + "/{systemId}/volumes/{id}/vluns", {"GET": h_d_vluns}),
    (DT1 + "/{systemId}/volumes/{id}/snapshots", {"GET": h_d_snapshots(1),
                                                  "POST": h_d_snapshot_create(1)}),
    (DT1 + "/{systemId}/volumes/{volumeId}/snapshots/{snapshotId}",
     {"GET": h_d_snapshot(1), "POST": h_d_snapshot_promote,
      "DELETE": h_d_snapshot_delete(1)}),
    (DT2, {"GET": h_d_systems_dt(2)}),
    (DT2 + "/{systemId}", {"GET": h_d_system_dt(2, "systemId")}),
    (DT2 + "/{systemId}/storage-pools", {"GET": h_d_pools(2)}),
    (DT2 + "/{systemId}/storage-pools/{storagePoolId}", {"GET": h_d_pool(2, "storagePoolId")}),
    (DT2 + "/{systemId}/volumes", {"GET": h_d_volumes_dt(2), "POST": h_d_vol2_create}),
    (DT2 + "/{systemId}/volumes/{volumeId}", {"GET": h_d_volume_dt(2, "volumeId"),
                                              "DELETE": h_d_vol_delete(2)}),
    (DT2 + "/{systemId}/volumes/{volumeId}/clone", {"POST": h_d_vol_clone(2)}),
    (DT2 + "/{systemId}/volumes/{volumeId}/export", {"POST": h_d_vol_export(2, False)}),
    (DT2 + "/{systemId}/volumes/{volumeId}/un-export", {"POST": h_d_vol_export(2, True)}),
    (DT2 + "/{systemId}/volumes/{volumeId}/actions/restore", {"POST": h_d_vol2_restore}),
    (DT2 + "/{systemId}/volumes/{volumeId}/snapshots", {"GET": h_d_snapshots(2),
                                                        "POST": h_d_snapshot_create(2)}),
    (DT2 + "/{systemId}/volumes/{volumeId}/snapshots/{snapshotId}",
     {"GET": h_d_snapshot(2), "DELETE": h_d_snapshot_delete(2)}),
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
    ("/api/v1/issues", {"GET": h_d_issues}),
    ("/api/v1/issues/{id}", {"GET": h_d_issue}),
]


# --------------------------------------------------------------------------
# HTTP

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
                self.send(414, error_body(414, "request line too long"))
                return
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                self.close_connection = True
                self.send(400, error_body(400, "malformed request line"))
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
                    self.send(400, error_body(400, "malformed header line"))
                    return
                headers[name.strip().lower()] = value.strip()
            else:
                self.close_connection = True
                self.send(431, error_body(431, "too many header lines"))
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
                self.send(505, error_body(505, "HTTP version not supported"))
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
                self.send(400, error_body(400, "bad Content-Length"))
                return None
            if length > MAX_BODY:
                self.close_connection = True
                self.send(413, error_body(413, "request body too large"))
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
                self.send(413, error_body(413, "request body too large"))
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
                status, rbody, rhead = e.status, error_body(e.status, e.message), e.headers
            self.send(status, rbody, rhead)
        elif sim.dscc is not None:
            d = sim.dscc
            route, segs = d.classify(method, path)
            entry = d.record(method, path, qs, headers, body)
            if entry is not None and route is not None:
                entry["template"] = route.template
            query = dict(parse_qsl(qs, keep_blank_values=True)) if qs else {}
            status = self.api_request(sim, method, path, route, segs, query, None, headers,
                                      body, entry)
        elif path != API_BASE and not path.startswith(API_BASE + "/"):
            with sim.stats_lock:
                sim.stats[(method, "<unknown>")] += 1
                sim.total += 1
            status = 404
            self.send(404, error_body(404, "not under %s" % API_BASE))
        else:
            rel = path[len(API_BASE):]
            route, segs, query, action = sim.classify(method, rel, qs)
            status = self.api_request(sim, method, rel, route, segs, query, action,
                                      headers, body)
        if sim.opts.verbose:
            sys.stderr.write("%s %s %s %s %.1fms\n" % (
                self.client_address[0], method, target, status or "-",
                (time.monotonic() - t0) * 1000))

    def api_request(self, sim, method, rel, route, segs, query, action, headers, body,
                    entry=None):
        """Faults, latency, then the dialect's answer; entry (a /_sim/requests record)
        gets the status before the answer is sent."""
        terminal = None
        if sim.faults:
            latency, terminal = sim.take_faults(method, rel)
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
                    self.send(st, error_body(st, "injected fault %s" % terminal.id), extra)
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
                    query = {k: v for k, v in query.items() if k not in ("start", "offset")}
        if sim.opts.latency_ms:
            time.sleep(sim.opts.latency_ms / 1000.0)
        try:
            if sim.dscc is not None:
                status, rbody, rhead = sim.dscc.handle(method, rel, route, segs, query,
                                                       headers, body, headers.get("host"))
            else:
                status, rbody, rhead = sim.handle_api(method, route, segs, query, action,
                                                      headers, body, headers.get("host"))
        except ApiError as e:
            status, rbody, rhead = e.status, error_body(e.status, e.message), e.headers
        except Exception as e:  # a bug must answer 500, never kill the connection silently
            traceback.print_exc()
            status, rbody, rhead = 500, error_body(500, "internal error: %r" % e), None
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


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="refserver.py",
        description="dsfs reference storage server: the storage-plugin REST API "
                    "(CONTRACT.md) with in-memory state. Prints one line "
                    "'listening on http[s]://HOST:PORT/storageplugin/api' when ready "
                    "('listening on http[s]://HOST:PORT' with --dialect dscc).",
        epilog="Arrays: with --arrays N the arrays are array1 .. arrayN, with host names "
               "array1.example.com .. arrayN.example.com and IP addresses 192.0.2.11 .. "
               "192.0.2.(10+N); a login body names one by 'hostname' or 'ipAddress' (the "
               "short name 'arrayK' works too). With one array any login body selects it. "
               "See docs/refserver.md for the estate and the /_sim API.")
    p.add_argument("--dialect", choices=("storage-plugin", "dscc"), default="storage-plugin",
                   help="API to serve: storage-plugin (default) or dscc, the Data Services "
                   "Cloud Console v1 API of tests/server/spec (docs/refserver.md, DSCC mode)")
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8080),
                   metavar="HOST:PORT", help="address to listen on; port 0 takes a free "
                   "port (default 127.0.0.1:8080)")
    p.add_argument("--user", default="admin", help="accepted user name (default admin)")
    p.add_argument("--password", default=None,
                   help="accepted password (default admin; see also --password-file)")
    p.add_argument("--password-file", default=None, metavar="FILE",
                   help="read the accepted password from the first line of FILE")
    p.add_argument("--session-ttl", type=positive_float, default=1800.0, metavar="S",
                   help="idle seconds before a session expires; each call extends it "
                   "(default 1800)")
    p.add_argument("--arrays", type=int, default=1, metavar="N",
                   help="number of storage arrays, each with its own estate (default 1)")
    p.add_argument("--seed", type=int, default=1, metavar="N",
                   help="seed of the deterministic estate (default 1)")
    p.add_argument("--servers", type=int, default=2, metavar="N",
                   help="servers per array (default 2)")
    p.add_argument("--volumes", type=int, default=20, metavar="N",
                   help="volumes per server (default 20)")
    p.add_argument("--snapshots", type=int, default=3, metavar="N",
                   help="snapshots of each volume of its own (default 3). In the "
                   "storage-plugin mode the first 8 volumes of each server are also in "
                   "consistency groups whose two group snapshots add a volume snapshot "
                   "each, so those volumes list N+2 snapshots (5 by default)")
    p.add_argument("--hosts", type=int, default=5, metavar="N",
                   help="hosts per server (default 5)")
    p.add_argument("--luns", type=int, default=10, metavar="N",
                   help="LUNs per server (default 10)")
    p.add_argument("--hostile-names", action="store_true",
                   help="add resources with awkward names (duplicate, empty, '.', '..', "
                   "'/', '%%', newline, tab, non-ASCII) and ids ('/', '..', '?', '#', '%%', "
                   "space) to every collection")
    p.add_argument("--page-max", type=int, default=1000, metavar="N",
                   help="largest page a list answers, whatever 'limit' asks (default 1000)")
    p.add_argument("--task-seconds", type=positive_float, default=3.0, metavar="S",
                   help="how long an asynchronous task runs; fractions allowed (default 3)")
    p.add_argument("--sync", action="store_true",
                   help="answer clone, split, restore*, take-snapshot and condense "
                   "synchronously (200 + result) instead of 202 + task")
    p.add_argument("--latency-ms", type=positive_float, default=0.0, metavar="N",
                   help="sleep N ms before every API answer (default 0)")
    p.add_argument("--test-controls", action="store_true",
                   help="enable the /_sim test-control endpoints (stats, faults, "
                   "session expiry, password change)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate "
                   "(PEM, may include the chain)")
    p.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert (PEM)")
    p.add_argument("--tls-client-ca", metavar="FILE",
                   help="require client certificates signed by this CA (mutual TLS)")
    g = p.add_argument_group("dscc dialect")
    g.add_argument("--client-id", default="dsfs-demo", metavar="ID",
                   help="OAuth2 client id accepted by POST /oauth2/token (default dsfs-demo)")
    g.add_argument("--client-secret", default=None, metavar="SECRET",
                   help="its client secret (default dsfs-demo-secret; see also "
                   "--client-secret-file)")
    g.add_argument("--client-secret-file", default=None, metavar="FILE",
                   help="read the client secret from the first line of FILE")
    g.add_argument("--token-ttl", type=int, default=7200, metavar="S",
                   help="lifetime of an access token in seconds (expires_in; default 7200)")
    g.add_argument("--device-types", default="1,2", metavar="LIST",
                   help="device types of the storage systems, cycled: '1' (Alletra 9000 / "
                   "Primera), '2' (Alletra 6000 / Nimble) or '1,2' (default)")
    g.add_argument("--spec", default=None, metavar="FILE",
                   help="the DSCC OpenAPI spec (default $DSFS_DSCC_SPEC, else "
                   "tests/server/spec/dscc-storage-api-v1.2.0.json)")
    p.add_argument("--verbose", action="store_true",
                   help="log every request to stderr (slow)")
    opts = p.parse_args(argv)
    if bool(opts.tls_cert) != bool(opts.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if opts.tls_client_ca and not opts.tls_cert:
        p.error("--tls-client-ca needs --tls-cert and --tls-key")
    for name in ("arrays", "servers", "page_max"):
        if getattr(opts, name) < 1:
            p.error("--%s must be at least 1" % name.replace("_", "-"))
    if opts.arrays > 200:
        p.error("--arrays must be at most 200")
    for name in ("volumes", "snapshots", "hosts", "luns"):
        if getattr(opts, name) < 0:
            p.error("--%s must not be negative" % name)
    if opts.password_file:
        with open(opts.password_file, encoding="utf-8") as f:
            opts.password = f.readline().rstrip("\r\n")
    elif opts.password is None:
        opts.password = "admin"
    if opts.client_secret_file:
        with open(opts.client_secret_file, encoding="utf-8") as f:
            opts.client_secret = f.readline().rstrip("\r\n")
    elif opts.client_secret is None:
        opts.client_secret = "dsfs-demo-secret"
    if opts.token_ttl < 1:
        p.error("--token-ttl must be at least 1")
    try:
        opts.device_types = [int(t) for t in opts.device_types.split(",")]
        if not opts.device_types or any(t not in DEVICE_TYPES for t in opts.device_types):
            raise ValueError
    except ValueError:
        p.error("--device-types must be a comma-separated list of 1 and 2")
    if opts.dialect == "dscc":
        if opts.arrays != 1:
            p.error("--arrays applies to the storage-plugin dialect only")
        spec = opts.spec or os.environ.get("DSFS_DSCC_SPEC") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "spec", "dscc-storage-api-v1.2.0.json")
        if not os.path.isfile(spec):
            p.error("the DSCC spec %s is missing (use --spec FILE)" % spec)
        opts.spec = spec
    return opts


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os._exit(0))
    sim = Sim(opts)
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
    base = "" if opts.dialect == "dscc" else API_BASE
    sys.stdout.write("listening on %s://%s:%d%s\n" % (sim.scheme, shown, sim.port, base))
    sys.stdout.flush()
    httpd.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
