"""What the mount should show, computed from the API alone.

An independent model of docs/tree.md: it walks the storage-plugin API as a
client following its documented paging would and returns, for every file of the tree,
the JSON value it must hold, and for every directory its entry names.
"""

import re
from urllib.parse import quote

from conftest import entry_name, list_all

RESERVED = {".by-id", ".where", ".count", "new"}
NAME_MAX = 255


def seg(ident):
    if ident in (".", ".."):
        return "%2E" * len(ident)
    return quote(ident, safe="")


def esc_id(ident):
    return entry_name(ident, ident).replace("@", "%40")


def nbytes(s):
    return len(s.encode("utf-8", "surrogateescape"))


def id_tag(ident):
    """What follows the '@' of a suffixed entry: the escaped id, or a hash of a long one."""
    tag = esc_id(ident)
    if nbytes(tag) <= 128:
        return tag
    h = 0xcbf29ce484222325
    for b in ident.encode("utf-8", "surrogateescape"):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%%~%016x" % h


def suffixed_entry(entry, tag):
    """'<entry>@<tag>', the entry cut at a character (never in a %XX) to fit NAME_MAX."""
    if nbytes(entry) + 1 + nbytes(tag) > NAME_MAX:
        room, out = NAME_MAX - 1 - nbytes(tag), ""
        for unit in re.findall(r"%..|.", entry, re.S):
            if nbytes(out + unit) > room:
                break
            out += unit
        entry = out
    return entry + "@" + tag


def by_id_entry(ident):
    """The .by-id entry of an id (None: an empty id has none)."""
    if ident == "":
        return None
    e = entry_name(ident, ident)
    return e if nbytes(e) <= NAME_MAX else suffixed_entry(e, id_tag(ident))


def assign_entries(objs):
    """Entry name for each object: escaped name, '<name>@<id>' on collisions or when too long."""
    entries = [entry_name(o.get("name") if isinstance(o.get("name"), str) else "", o["id"]) for o in objs]
    entries = [e if e or o["id"] else "%25" for e, o in zip(entries, objs)]
    suffixed = [False] * len(objs)
    for i, e in enumerate(entries):
        if e in RESERVED or nbytes(e) > NAME_MAX:
            entries[i] = suffixed_entry(e, id_tag(objs[i]["id"]))
            suffixed[i] = True
    for _ in range(4):
        groups = {}
        for i, e in enumerate(entries):
            groups.setdefault(e, []).append(i)
        changed = False
        for e, idx in groups.items():
            if len(idx) < 2:
                continue
            plain = [i for i in idx if not suffixed[i]]
            for i in plain:
                entries[i] = suffixed_entry(e, id_tag(objs[i]["id"]))
                suffixed[i] = True
                changed = True
        if not changed:
            break
    return entries


# kind dir -> (API segment, list key, object file, extra files, child kinds)
# extra files: name -> (sub path, list key or None)
# Control files: `action` in each resource of ACTION_KINDS, `new` in each collection of NEW_KINDS.
ACTION_KINDS = {"volumes", "snapshots", "luns", "hosts", "hostgroups", "consistencygroups"}
NEW_KINDS = {"snapshots", "hosts"}
TASK_FILES = ("state", "progress", "log", "error")

KINDS = {
    "servers": ("server", "servers", "server.json",
                {"system.json": ("/system", None), "remotearrays.json": ("/remotearray", "remoteArrays")},
                ["volumes", "luns", "hosts", "hostgroups", "networks", "pools", "consistencygroups"]),
    "volumes": ("volume", "volumes", "volume.json", {"splitstatus.json": ("/splitstatus", None)}, ["snapshots"]),
    "snapshots": ("snapshot", "snapshots", "snapshot.json", {}, []),
    "luns": ("lun", "luns", "lun.json", {}, []),
    "hosts": ("host", "hosts", "host.json", {"luns.json": ("/lun", "luns")}, []),
    "hostgroups": ("hostgroup", "groups", "hostgroup.json", {}, []),
    "networks": ("network", "networks", "network.json", {}, []),
    "pools": ("pool", "pools", "pool.json", {}, []),
    "consistencygroups": ("consistencygroup", "consistencyGroups", "consistencygroup.json", {}, ["cgsnapshots"]),
    "cgsnapshots": ("snapshot", "snapshots", "snapshot.json", {}, []),
    "tasks": ("tasks", "tasks", "task.json", {}, []),
}


def expected_tree(client, with_extra=True):
    """Returns (files, dirs, others): files maps a relative path to its JSON
    value; dirs maps a relative directory to its entry set; others lists the
    remaining regular files (log.zip, control files, task state files)."""
    files, dirs, others = {}, {}, ["log.zip"]

    def get(path):
        r = client.get(path)
        assert r.status == 200, (path, r.status, r.body)
        return r.json()

    files["info.json"] = get("/info")
    files["storage.json"] = get("/storage")
    dirs[""] = {"info.json", "storage.json", "log.zip", "servers", "tasks"}

    def walk_collection(rel, url, kind_dir):
        segment, key, objfile, extra, children = KINDS[kind_dir]
        objs = list_all(client, url, key)
        entries = assign_entries(objs)
        dirs[rel] = set(entries)  # .by-id is reachable, not listed
        if kind_dir in NEW_KINDS:
            dirs[rel].add("new")
            others.append(rel + "/new")
        dirs[rel + "/.by-id"] = {by_id_entry(o["id"]) for o in objs} - {None}
        for obj, entry in zip(objs, entries):
            rrel = rel + "/" + entry
            rurl = url + "/" + seg(obj["id"])
            files[rrel + "/" + objfile] = obj
            names = {objfile}
            if kind_dir in ACTION_KINDS:
                names.add("action")
                others.append(rrel + "/action")
            if kind_dir == "tasks":
                names.update(TASK_FILES)
                others.extend(rrel + "/" + f for f in TASK_FILES)
            for fname, (sub, lkey) in extra.items():
                names.add(fname)
                if with_extra:
                    files[rrel + "/" + fname] = {lkey: list_all(client, rurl + sub, lkey)} if lkey else get(rurl + sub)
            for child in children:
                cdir = "snapshots" if child == "cgsnapshots" else child
                names.add(cdir)
                walk_collection(rrel + "/" + cdir, rurl + "/" + KINDS[child][0], child)
            dirs[rrel] = names

    walk_collection("servers", "/server", "servers")
    walk_collection("tasks", "/tasks", "tasks")
    return files, dirs, others
