"""Asking a collection without listing it by hand (issue 15, part 2), and
`df` (part 4), through a real mount against the reference server:
`.count` equals the listing's length and costs a HEAD or a one-item page
where the API has them; `.where/<condition>` equals a filter of the full
listing (hostile names included), with the collection's own entries and
inodes; statfs equals the pools' JSON, summed up the tree, in the API's
own units.
"""

import errno
import json
import os
import re
import subprocess
import time

import pytest

from conftest import reset_stats, sim_stats
from test_backupdr import TOKEN, Api as BdrApi, credentials as bdr_credentials, named
from test_dscc import Api as DsccApi, dscc, dscc_credentials, mount_dscc  # noqa: F401  (fixtures)
from test_estate import write_estate
from tree_model import assign_entries, entry_name

MIB = 1024 * 1024


def read(path):
    with open(path) as f:
        return f.read()


def listing(path):
    return sorted(e for e in os.listdir(path) if e != "new")


def field(obj, dotted):
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def where_entries(coll, *conds):
    path = coll
    for c in conds:
        path = os.path.join(path, ".where", c)
    return sorted(os.listdir(path))


def server_entry(m, sid):
    return [e for e in os.listdir(m.p("servers"))
            if json.loads(read(m.p("servers", e, "server.json")))["id"] == sid][0]


def volumes_of(client, sid):
    out, start = [], 0
    while True:
        got = client.get("/server/%s/volume?limit=1000&start=%d" % (sid, start)).json()["volumes"]
        if not got:
            return out
        out += got
        start += len(got)


# ---- .count --------------------------------------------------------------------


def test_count_equals_every_listing_and_is_never_listed(server, dsfs_mount):
    m = dsfs_mount(server)
    colls = ["servers", "tasks"]
    for s in os.listdir(m.p("servers")):
        colls += [os.path.join("servers", s, d) for d in ("volumes", "pools", "hosts", "luns", "networks")]
        v = sorted(os.listdir(m.p("servers", s, "volumes")))[0]
        colls.append(os.path.join("servers", s, "volumes", v, "snapshots"))
    for c in colls:
        text = read(m.p(c, ".count"))
        assert text == "%d\n" % len(listing(m.p(c))), c
        assert os.stat(m.p(c, ".count")).st_size == len(text), c
        assert ".count" not in os.listdir(m.p(c)) and ".where" not in os.listdir(m.p(c)), c
    walked = subprocess.run(["find", m.path], check=True, capture_output=True, text=True).stdout
    assert "/.count" not in walked and "/.where" not in walked
    with pytest.raises(OSError) as e:
        open(m.p("servers", ".count"), "w")
    assert e.value.errno in (errno.EACCES, errno.EROFS, errno.EPERM)


def test_count_follows_a_change_on_the_next_read(server, dsfs_mount):
    m = dsfs_mount(server, ttl=0)
    s = sorted(os.listdir(m.p("servers")))[0]
    coll = m.p("servers", s, "volumes")
    before = int(read(os.path.join(coll, ".count")))
    v = sorted(os.listdir(coll))[0]
    with open(m.p("servers", s, "volumes", v, "action"), "w") as f:
        f.write("clone name=counted-clone\n")
    with open(m.p("tasks", "latest", "wait")) as f:
        assert f.read().startswith("SUCCEEDED")
    assert int(read(os.path.join(coll, ".count"))) == before + 1


def test_backupdr_count_is_one_head_and_equals_the_listing(server_factory, dsfs_mount, tmp_path):
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--hostile-names", "--servers", "1",
                         "--volumes", "3", "--snapshots", "2", "--hosts", "3")
    m = dsfs_mount(bdr, "api=backupdr", ttl=60,
                   credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    api = BdrApi(bdr)
    for coll, path in (("hosts", "/host"), ("applications", "/application"), ("diskpools", "/diskpool"),
                       ("templates", "/slt"), ("jobs", "/jobstatus")):
        reset_stats(bdr)
        n = int(read(m.p(coll, ".count")))
        stats = sim_stats(bdr)
        assert stats.get("HEAD /actifio" + path) == 1 and not stats.get("GET /actifio" + path), (coll, stats)
        assert n == len(api.items(path)) == len(listing(m.p(coll))), coll
    app = sorted(listing(m.p("applications")))[0]
    backups = m.p("applications", app, "backups")
    assert int(read(os.path.join(backups, ".count"))) == len(listing(backups))
    # a fresh listing answers without asking
    reset_stats(bdr)
    assert int(read(m.p("hosts", ".count"))) == len(listing(m.p("hosts")))
    assert sim_stats(bdr).get("total", 0) == 0


def test_dscc_count_is_one_short_page_and_equals_the_listing(dscc, mount_dscc):
    m = mount_dscc(dscc)
    api = DsccApi(dscc)
    reset_stats(dscc)
    n = int(read(m.p("hosts", ".count")))
    stats = sim_stats(dscc)
    assert n == len(api.items("/api/v1/host-initiators"))
    assert sum(v for k, v in stats.items() if k.startswith("GET ")) == 1, stats
    reqs = [k for k in stats if k.startswith("GET ")]
    assert reqs and "host-initiators" in reqs[0], stats
    assert int(read(m.p("hosts", ".count"))) == len(listing(m.p("hosts")))
    # servers list two device types: counted from the listing
    assert int(read(m.p("servers", ".count"))) == len(listing(m.p("servers")))
    for s in listing(m.p("servers")):
        for c in ("volumes", "pools"):
            assert int(read(m.p("servers", s, c, ".count"))) == len(listing(m.p("servers", s, c))), (s, c)


# ---- .where --------------------------------------------------------------------


def test_where_equals_a_filter_of_the_listing_with_the_same_entries(server, dsfs_mount):
    m = dsfs_mount(server)
    client = server.login()
    sid = client.get("/server?limit=1000&start=0").json()["servers"][0]["id"]
    s = server_entry(m, sid)
    coll = m.p("servers", s, "volumes")
    vols = volumes_of(client, sid)
    names = dict(zip((v["id"] for v in vols), assign_entries(vols)))

    def want(pred):
        return sorted(names[v["id"]] for v in vols if pred(v))

    assert where_entries(coll, "volumeType=dp") == want(lambda v: v["volumeType"] == "dp")
    assert where_entries(coll, "volumeType!=dp") == want(lambda v: v["volumeType"] != "dp")
    sizes = sorted(v["stats"]["size"] for v in vols)
    mid = sizes[len(sizes) // 2]
    assert where_entries(coll, "stats.size>=%d" % mid) == want(lambda v: v["stats"]["size"] >= mid)
    assert where_entries(coll, "stats.size<%d" % mid) == want(lambda v: v["stats"]["size"] < mid)
    assert where_entries(coll, "config.thinProvisioned=true") == want(lambda v: v["config"]["thinProvisioned"])
    assert where_entries(coll, "mountPath=null") == want(lambda v: v["mountPath"] is None)
    t = sorted(v["creationTime"] for v in vols)[len(vols) // 3]
    both = want(lambda v: v["volumeType"] == "rw" and v["creationTime"] <= t)
    assert where_entries(coll, "volumeType=rw", "creationTime<=%d" % t) == both
    assert read(os.path.join(coll, ".where", "volumeType=rw", ".where", "creationTime<=%d" % t, ".count")) \
        == "%d\n" % len(both)
    # the same objects: same inode, same content, and the tree below them
    e = want(lambda v: v["volumeType"] == "dp")[0]
    view = os.path.join(coll, ".where", "volumeType=dp", e)
    assert os.stat(view).st_ino == os.stat(os.path.join(coll, e)).st_ino
    assert read(os.path.join(view, "volume.json")) == read(os.path.join(coll, e, "volume.json"))
    assert os.stat(os.path.join(view, "volume.json")).st_ino == os.stat(os.path.join(coll, e, "volume.json")).st_ino
    assert sorted(os.listdir(os.path.join(view, "snapshots"))) == sorted(os.listdir(os.path.join(coll, e, "snapshots")))
    # an entry that does not match is not there; .where itself lists nothing
    other = want(lambda v: v["volumeType"] != "dp")[0]
    assert not os.path.exists(os.path.join(coll, ".where", "volumeType=dp", other))
    assert os.listdir(os.path.join(coll, ".where")) == []
    for bad in ("volumeType", "=dp", "a!b"):
        with pytest.raises(OSError) as exc:
            os.listdir(os.path.join(coll, ".where", bad))
        assert exc.value.errno == errno.EINVAL, bad
    assert "not a condition" in m.log_text()


def test_where_over_hostile_names(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--hostile-names", "--servers", "1", "--volumes", "3",
                            "--snapshots", "1")
    m = dsfs_mount(server)
    client = server.login()
    sid = client.get("/server?limit=1000&start=0").json()["servers"][0]["id"]
    coll = m.p("servers", server_entry(m, sid), "volumes")
    vols = volumes_of(client, sid)
    entries = assign_entries(vols)
    assert sorted(entries) == listing(coll), (set(entries) ^ set(listing(coll)))
    for v in vols:
        value = entry_name(v.get("name") or "", v["id"]) if v.get("name") else ""
        cond = "name=" + value
        if len(cond.encode()) > 255:
            continue
        want = sorted(e for o, e in zip(vols, entries) if (o.get("name") or "") == (v.get("name") or ""))
        assert where_entries(coll, cond) == want, cond
        assert read(os.path.join(coll, ".where", cond, ".count")) == "%d\n" % len(want), cond
    # the ids, escaped like entries, select exactly one object each
    for v, e in zip(vols, entries):
        cond = "id=" + entry_name(v["id"], v["id"])
        if len(cond.encode()) <= 255:
            assert where_entries(coll, cond) == [e], cond


# ---- df --------------------------------------------------------------------------


def statvfs_bytes(path):
    st = os.statvfs(path)
    return st.f_frsize, st.f_blocks * st.f_frsize, st.f_bfree * st.f_frsize, st.f_bavail * st.f_frsize


def test_df_of_a_server_its_pools_and_the_mount_equals_the_api(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    client = server.login()
    total = free = 0
    for e in os.listdir(m.p("servers")):
        sid = json.loads(read(m.p("servers", e, "server.json")))["id"]
        cap = client.get("/server/%s/system" % sid).json()["capacityInBytes"]
        pools = client.get("/server/%s/pool?limit=1000&start=0" % sid).json()["pools"]
        pfree = sum(p["freeSpace"] for p in pools)
        for d in ("", "volumes", "pools", "server.json"):
            assert statvfs_bytes(m.p("servers", e, d)) == (1, cap, pfree, pfree), (e, d)
        names = assign_entries(pools)
        for p, pe in zip(pools, names):  # a pool states only its free space
            assert statvfs_bytes(m.p("servers", e, "pools", pe)) == (1, p["freeSpace"], p["freeSpace"],
                                                                    p["freeSpace"])
        total += cap
        free += pfree
    assert statvfs_bytes(m.path) == (1, total, free, free)
    assert statvfs_bytes(m.p(".dsfs", "stats")) == (1, total, free, free)
    out = subprocess.run(["df", "-B1", "--output=size,avail", m.path], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out[-2:] == [str(total), str(free)]
    # within cache_ttl a statfs asks nothing
    reset_stats(server)
    statvfs_bytes(m.path)
    statvfs_bytes(m.p("servers", os.listdir(m.p("servers"))[0]))
    assert sim_stats(server).get("total", 0) == 0


def test_df_of_dscc_counts_mib_where_the_api_does(dscc, mount_dscc):
    md = mount_dscc(dscc)
    api = DsccApi(dscc)
    total = free = 0
    for sysobj, dt in [(s, 1) for s in api.items("/api/v1/storage-systems/device-type1")] + \
                      [(s, 2) for s in api.items("/api/v1/storage-systems/device-type2")]:
        pools = api.items("/api/v1/storage-systems/device-type%d/%s/storage-pools" % (dt, sysobj["id"]))
        e = [x for x in listing(md.p("servers"))
             if json.loads(read(md.p("servers", x, "system.json")))["id"] == sysobj["id"]][0]
        if dt == 1:
            t, f = sum(p["totalSizeMiB"] for p in pools), sum(p["freeSizeMiB"] for p in pools)
            assert statvfs_bytes(md.p("servers", e)) == (MIB, t * MIB, f * MIB, f * MIB)
            t, f = t * MIB, f * MIB
        else:
            t, f = sum(p["capacity"] for p in pools), sum(p["free_space"] for p in pools)
            assert statvfs_bytes(md.p("servers", e)) == (1, t, f, f)
        pe = assign_entries(pools)[0]
        p = pools[0]
        want = (MIB, p["totalSizeMiB"] * MIB, p["freeSizeMiB"] * MIB) if dt == 1 else \
            (1, p["capacity"], p["free_space"])
        assert statvfs_bytes(md.p("servers", e, "pools", pe))[:3] == want
        total += t
        free += f
    assert statvfs_bytes(md.path)[1:3] == (total, free)


def test_df_of_backupdr_is_its_disk_pools_in_mib(server_factory, dsfs_mount, tmp_path):
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "2", "--volumes", "2",
                         "--snapshots", "1", "--hosts", "2")
    m = dsfs_mount(bdr, "api=backupdr", ttl=60, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    pools = BdrApi(bdr).items("/diskpool")
    total, free = sum(p["capacity_mb"] for p in pools), sum(p["free_mb"] for p in pools)
    for d in ("", "diskpools", "hosts", "applications"):
        assert statvfs_bytes(m.p(d)) == (MIB, total * MIB, free * MIB, free * MIB), d
    for p, e in zip(pools, assign_entries(named(pools, "name"))):
        assert statvfs_bytes(m.p("diskpools", e)) == (MIB, p["capacity_mb"] * MIB, p["free_mb"] * MIB,
                                                      p["free_mb"] * MIB)


def test_df_of_an_estate_is_the_sum_of_its_members(server_factory, dsfs_mount, tmp_path):
    a = server_factory("--test-controls")
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "1", "--volumes", "2",
                         "--snapshots", "1", "--hosts", "2")
    path = write_estate(tmp_path, [("array", {"url": a.url, "username": "admin", "password": "admin"}),
                                   ("backup", {"url": bdr.url, "token": TOKEN})])
    m = dsfs_mount(a, "estate=" + path, ttl=60, estate=True)
    parts = [statvfs_bytes(m.p("array")), statvfs_bytes(m.p("backup"))]
    assert parts[0][0] == 1 and parts[1][0] == MIB and parts[0][1] > 0 and parts[1][1] > 0
    assert statvfs_bytes(m.path) == (1, parts[0][1] + parts[1][1], parts[0][2] + parts[1][2],
                                     parts[0][3] + parts[1][3])
    assert statvfs_bytes(m.p("array", "servers")) == parts[0]


def gets_of(server, fragment):
    """The GET targets dsfs sent that the server logged (--verbose) and contain fragment
    (the tests' own clients ask for pages of 100, dsfs for pages of 1000)."""
    out = []
    for line in server.stderr_text().splitlines():
        parts = line.split()
        if "GET" in parts and fragment in line:
            target = parts[parts.index("GET") + 1]
            if not re.search(r"[?&]limit=100(&|$)", target):
                out.append(target)
    return out


def test_where_is_asked_of_dscc_and_named_as_the_listing(server_factory, dsfs_mount, tmp_path):
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--verbose", "--hostile-names",
                          "--volumes", "4", "--snapshots", "1", "--hosts", "3")
    m = dsfs_mount(dscc, "api=dscc", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    api = DsccApi(dscc)
    hosts = api.items("/api/v1/host-initiators")
    names = assign_entries(hosts)
    before = len(gets_of(dscc, "host-initiators"))
    for h in hosts:
        value = entry_name(h["name"], h["id"]) if h.get("name") else ""
        cond = "name=" + value
        if not value or len(cond.encode()) > 255 or value.lstrip("-").replace(".", "", 1).isdigit():
            continue
        want = sorted(e for o, e in zip(hosts, names) if o.get("name") == h["name"])
        got = where_entries(m.p("hosts"), cond)
        assert got == want, cond  # the same names as the listing, hostile ones and twins included
    asked = gets_of(dscc, "host-initiators")[before:]
    assert asked and all("filter=" in a for a in asked), asked  # never the whole list
    assert read(m.p("hosts", ".where", "name=" + names[0].split("@")[0], ".count")).strip().isdigit()
    # once the listing is fresh it answers, with no request
    listing(m.p("hosts"))
    n = len(gets_of(dscc, "host-initiators"))
    cond = "name=" + entry_name(hosts[0]["name"], hosts[0]["id"])
    assert where_entries(m.p("hosts"), cond)
    assert len(gets_of(dscc, "host-initiators")) == n


def test_where_asked_of_backupdr_falls_back_where_it_cannot_filter(server_factory, dsfs_mount, tmp_path):
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--verbose", "--hostile-names",
                         "--servers", "1", "--volumes", "3", "--snapshots", "2", "--hosts", "3")
    m = dsfs_mount(bdr, "api=backupdr", ttl=60, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    api = BdrApi(bdr)
    pools = api.items("/diskpool")
    entries = assign_entries(named(pools, "name"))
    before = len(gets_of(bdr, "/diskpool"))
    assert before == 0
    for p in pools:
        cond = "name=" + entry_name(p["name"], p["id"]) if p.get("name") else None
        if not cond or len(cond.encode()) > 255 or p["name"][0] in "=|b":
            continue
        want = sorted(e for o, e in zip(pools, entries) if o.get("name") == p["name"])
        assert where_entries(m.p("diskpools"), cond) == want, cond
    asked = gets_of(bdr, "/diskpool")[before:]
    assert asked and all("filter=" in a for a in asked), asked
    # a field the server does not filter on (400): the listing answers
    big = sorted(e for o, e in zip(pools, entries) if o["capacity_mb"] >= 40 * 1024 * 1024)
    assert where_entries(m.p("diskpools"), "capacity_mb>=%d" % (40 * 1024 * 1024)) == big
    assert where_entries(m.p("diskpools"), "warnpct!=80") == sorted(
        e for o, e in zip(pools, entries) if o.get("warnpct") != 80)
    deadline = time.monotonic() + 5  # the server logs a request after answering it
    while not any("filter=" not in a for a in gets_of(bdr, "/diskpool")[before:]):
        assert time.monotonic() < deadline, gets_of(bdr, "/diskpool")
        time.sleep(0.1)


def test_nested_where_asked_of_dscc_is_still_an_and(dscc, mount_dscc):
    m = mount_dscc(dscc)
    api = DsccApi(dscc)
    hosts = api.items("/api/v1/host-initiators")
    names = assign_entries(hosts)
    h = hosts[0]
    other = [x for x in hosts if x["name"] != h["name"]][0]
    # name=A AND name=B is empty, however the server combines filters
    assert where_entries(m.p("hosts"), "name=" + h["name"], "name=" + other["name"]) == []
    assert where_entries(m.p("hosts"), "name=" + h["name"], "id=" + h["id"]) == [names[0]]


def test_df_leaves_out_figures_that_are_not_capacities(server, dsfs_mount):
    m = dsfs_mount(server, ttl=0)
    client = server.login()
    sid = client.get("/server?limit=1000&start=0").json()["servers"][0]["id"]
    e = server_entry(m, sid)
    pfree = sum(p["freeSpace"] for p in client.get("/server/%s/pool?limit=1000&start=0" % sid).json()["pools"])
    for bad in ("1e30", "-1", '"big"'):
        r = server.sim("POST", "/faults", {"method": "GET", "path": "/server/%s/system" % sid, "count": 1,
                                           "body": '{"capacityInBytes": %s}' % bad})
        assert r.status == 201, r.body
        # the server's capacity is unknown then: df shows what its pools say is free
        assert statvfs_bytes(m.p("servers", e)) == (1, pfree, pfree, pfree), bad
    assert "capacityInBytes = 1e30 is not a capacity" in m.log_text() or \
        "capacityInBytes = 1.0e+30 is not a capacity" in m.log_text(), m.log_text()


def test_where_never_widens_a_backupdr_collection_beyond_its_application(server_factory, dsfs_mount, tmp_path):
    """A condition on the collection's own scope (a backup's appid) is AND-ed here: the server ORs two
    filters on one field, so asking it would list another application's backups."""
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "1", "--volumes", "3",
                         "--snapshots", "2", "--hosts", "2")
    m = dsfs_mount(bdr, "api=backupdr", ttl=60, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    api = BdrApi(bdr)
    apps = [a for a in api.items("/application") if api.items("/backup?filter=appid:%%3D%s" % a["id"])]
    assert len(apps) >= 2
    a, b = apps[:2]
    a_entry = [e for e, o in zip(assign_entries(named(api.items("/application"), "appname")),
                                 api.items("/application")) if o["id"] == a["id"]][0]
    backups = m.p("applications", a_entry, "backups")
    a_backups = api.items("/backup?filter=appid:%%3D%s" % a["id"])
    b_backups = api.items("/backup?filter=appid:%%3D%s" % b["id"])
    assert b_backups and a_backups
    # asked before the listing is fresh, then after: the same empty answer, and .count agrees
    for when in ("cold", "listed"):
        assert where_entries(backups, "appid=%s" % b["id"]) == [], when
        assert read(os.path.join(backups, ".where", "appid=%s" % b["id"], ".count")) == "0\n", when
        b_name = b_backups[0]["backupname"]
        assert where_entries(backups, "appid=%s" % b["id"], "backupname=%s" % b_name) == [], when
        assert where_entries(backups, "backupname=%s" % b_name, "appid=%s" % b["id"]) == [], when
        assert where_entries(backups, "appid!=%s" % a["id"]) == [], when
        assert len(where_entries(backups, "appid=%s" % a["id"])) == len(a_backups), when
        assert read(os.path.join(backups, ".where", "appid=%s" % a["id"], ".count")) == "%d\n" % len(a_backups)
        listing(backups)
    # a server that answers the scoped list with another application's backup: it is not shown
    alien, mine = b_backups[0], a_backups[0]
    mb = dsfs_mount(bdr, "api=backupdr", ttl=60, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    r = bdr.sim("POST", "/faults", {"method": "GET", "path": "/actifio/backup",
                                    "body": json.dumps({"items": [mine, alien], "count": 2})})
    assert r.status == 201, r.body
    bk = mb.p("applications", a_entry, "backups")
    assert where_entries(bk, "id=%s" % alien["id"]) == []
    assert read(os.path.join(bk, ".where", "id=%s" % alien["id"], ".count")) == "0\n"
    assert listing(bk) == assign_entries(named([mine], "backupname"))
    assert "outside its collection" in mb.log_text(), mb.log_text()[-2000:]
    bdr.sim("DELETE", "/faults", None)


def test_a_nul_escape_in_a_where_value_is_refused_and_nothing_is_asked(server_factory, dsfs_mount, tmp_path):
    """`%00` would cut the value short in C: `name=X%00zzz` asked for `name eq 'X'`. It is EINVAL."""
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "4", "--snapshots", "1",
                          "--hosts", "3")
    m = dsfs_mount(dscc, "api=dscc", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    hosts = DsccApi(dscc).items("/api/v1/host-initiators")
    name = hosts[0]["name"]
    assert where_entries(m.p("hosts"), "name=" + name)  # the condition without the cut answers
    reset_stats(dscc)
    for cond in ("name=%s%%00zzz" % name, "name=%s%%00" % name, "name!=%s%%00x" % name):
        for path in (m.p("hosts", ".where", cond), m.p("hosts", ".where", cond, ".count"),
                     m.p("hosts", ".where", "name=" + name, ".where", cond)):
            with pytest.raises(OSError) as e:
                os.listdir(path) if not path.endswith(".count") else read(path)
            assert e.value.errno == errno.EINVAL, (cond, path)
    assert not [k for k in sim_stats(dscc) if "host-initiators" in k], sim_stats(dscc)
    assert "%00" in m.log_text()
    # the storage plugin filters its listing here: the same refusal
    sp = server_factory("--test-controls", "--servers", "1", "--volumes", "3", "--snapshots", "1")
    ms = dsfs_mount(sp, ttl=60)
    s = os.listdir(ms.p("servers"))[0]
    vol = sorted(listing(ms.p("servers", s, "volumes")))[0]
    with pytest.raises(OSError) as e:
        os.listdir(ms.p("servers", s, "volumes", ".where", "name=%s%%00zzz" % vol))
    assert e.value.errno == errno.EINVAL
    # .by-id: no id has a byte 0, so no entry either
    assert not os.path.exists(ms.p("servers", s, "volumes", ".by-id", "x%00y"))
