"""Asking across an estate, through a real mount against the reference server: `.where`
refuses a field no object of the collection has (EINVAL, and the log names the nearest
field) and takes shell patterns, asked of the server as the text every match contains
where its filter can say that and matched here; a file's mtime follows its content, so
`rsync -a` copies a same-size change.
"""

import errno
import fnmatch
import json
import os
import re
import subprocess
import time
from urllib.parse import unquote

import pytest

from conftest import reset_stats, sim_stats
from test_backupdr import TOKEN, Api as BdrApi, credentials as bdr_credentials, named
from test_dscc import Api as DsccApi, dscc_credentials
from test_query import gets_of, listing, server_entry, volumes_of, where_entries
from tree_model import assign_entries


def read(path):
    with open(path) as f:
        return f.read()


# ---- .where: unknown fields --------------------------------------------------------


def test_where_on_a_field_no_object_has_is_einval_naming_the_nearest(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    client = server.login()
    sid = client.get("/server?limit=1000&start=0").json()["servers"][0]["id"]
    s = server_entry(m, sid)
    coll = m.p("servers", s, "volumes")
    vols = volumes_of(client, sid)
    assert vols and all("name" in v for v in vols) and not any("nmae" in v for v in vols)
    for path in (os.path.join(coll, ".where", "nmae=x"),
                 os.path.join(coll, ".where", "volumeType=rw", ".where", "nmae=x"),
                 os.path.join(coll, ".where", "nmae=x", ".where", "volumeType=rw")):
        with pytest.raises(OSError) as e:
            os.listdir(path)
        assert e.value.errno == errno.EINVAL, path
    with pytest.raises(OSError) as e:
        read(os.path.join(coll, ".where", "nmae=x", ".count"))
    assert e.value.errno == errno.EINVAL
    log = m.log_text()
    assert "servers/%s/volumes/.where: no volume has the field nmae; did you mean name?" % s in log, log[-2000:]
    # a nested field: the dotted path is what is known, and what is suggested
    with pytest.raises(OSError) as e:
        os.listdir(os.path.join(coll, ".where", "stats.sise>1"))
    assert e.value.errno == errno.EINVAL
    assert "no volume has the field stats.sise; did you mean stats.size?" in m.log_text()
    # a field far from every field: named, with no suggestion
    with pytest.raises(OSError):
        os.listdir(os.path.join(coll, ".where", "zzzzzzzzzzzz=1"))
    assert re.search(r"no volume has the field zzzzzzzzzzzz$", m.log_text(), re.M)
    # known fields keep working: a value no object has lists nothing; a null field is a field
    assert where_entries(coll, "name=no-such-volume") == []
    assert read(os.path.join(coll, ".where", "name=no-such-volume", ".count")) == "0\n"
    assert where_entries(coll, "mountPath=null") == sorted(
        e for v, e in zip(vols, assign_entries(vols)) if v.get("mountPath") is None)


def test_where_unknown_field_asked_of_dscc_is_refused_after_its_400(server_factory, dsfs_mount, tmp_path):
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--verbose", "--volumes", "4",
                          "--snapshots", "1", "--hosts", "4")
    m = dsfs_mount(dscc, "api=dscc", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    hosts = DsccApi(dscc).items("/api/v1/host-initiators")
    before = len(gets_of(dscc, "host-initiators"))
    with pytest.raises(OSError) as e:
        os.listdir(m.p("hosts", ".where", "nmae=x"))
    assert e.value.errno == errno.EINVAL
    assert "hosts/.where: no host initiator has the field nmae; did you mean name?" in m.log_text()
    deadline = time.monotonic() + 5  # the server logs a request after answering it
    while len(gets_of(dscc, "host-initiators")) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    asked = [unquote(a) for a in gets_of(dscc, "host-initiators")[before:]]
    # the filter was asked (and refused: 400), then the listing told which fields there are
    assert any("filter=nmae eq 'x'" in a for a in asked) and any("filter" not in a for a in asked), asked
    # a value the server finds nothing for is no error, and costs no listing: the filter took the field
    assert hosts and not any(h["name"] == "no-such-host" for h in hosts)
    m2 = dsfs_mount(dscc, "api=dscc", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    before = len(gets_of(dscc, "host-initiators"))
    assert where_entries(m2.p("hosts"), "name=no-such-host") == []
    time.sleep(1)  # the server logs a request after answering it
    asked = [unquote(a) for a in gets_of(dscc, "host-initiators")[before:]]
    assert asked == [a for a in asked if "filter=name eq 'no-such-host'" in a] and asked, asked


# ---- .where: patterns ---------------------------------------------------------------


def test_where_patterns_over_the_listing(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    client = server.login()
    sid = client.get("/server?limit=1000&start=0").json()["servers"][0]["id"]
    coll = m.p("servers", server_entry(m, sid), "volumes")
    vols = volumes_of(client, sid)
    entries = dict(zip((v["id"] for v in vols), assign_entries(vols)))
    name = sorted(v["name"] for v in vols)[0]
    prefix = name[:len(name) - 2]

    def want(pred):
        return sorted(entries[v["id"]] for v in vols if pred(v))

    for pat in (prefix + "*", "*" + name[-3:], prefix + "??", "*[0-4]", "[!v]*"):
        assert where_entries(coll, "name=" + pat) == want(lambda v: fnmatch.fnmatchcase(v["name"], pat)), pat
        assert where_entries(coll, "name!=" + pat) == want(
            lambda v: not fnmatch.fnmatchcase(v["name"], pat)), pat
        assert read(os.path.join(coll, ".where", "name=" + pat, ".count")) == "%d\n" % len(
            want(lambda v: fnmatch.fnmatchcase(v["name"], pat)))
    assert where_entries(coll, "name=" + prefix + "*")  # the pattern matched some
    # a backslash quotes: "\*" is a star, which no name has
    assert where_entries(coll, "name=" + prefix + "\\*") == []
    # a pattern never matches a number; the other operators compare the text as it is
    assert where_entries(coll, "stats.size=1*") == []
    assert where_entries(coll, "name>=" + prefix + "*") == want(lambda v: v["name"] >= prefix + "*")


def test_where_pattern_is_asked_of_dscc_as_contains_and_matched_here(server_factory, dsfs_mount, tmp_path):
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--verbose", "--volumes", "4",
                          "--snapshots", "1", "--hosts", "6")
    m = dsfs_mount(dscc, "api=dscc", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    hosts = DsccApi(dscc).items("/api/v1/host-initiators")
    names = dict(zip((h["id"] for h in hosts), assign_entries(hosts)))
    name = hosts[0]["name"]
    run = name[:max(3, len(name) // 2)]
    pat = run + "*"
    want = sorted(names[h["id"]] for h in hosts if fnmatch.fnmatchcase(h["name"], pat))
    # a middle pattern: what the server has containing the run, but not matching, is left out
    mid = "*" + name[1:4] + "*" + name[-1]
    want_mid = sorted(names[h["id"]] for h in hosts if fnmatch.fnmatchcase(h["name"], mid))
    before = len(gets_of(dscc, "host-initiators"))
    assert where_entries(m.p("hosts"), "name=" + pat) == want and want
    assert where_entries(m.p("hosts"), "name=" + mid) == want_mid and want_mid
    deadline = time.monotonic() + 5
    while len(gets_of(dscc, "host-initiators")) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    asked = [unquote(a) for a in gets_of(dscc, "host-initiators")[before:]]
    assert any("filter='%s' in name" % run in a for a in asked), asked
    assert any("filter='%s' in name" % name[1:4] in a for a in asked), asked
    assert all("filter=" in a for a in asked), asked  # never the whole list


def test_where_pattern_is_asked_of_backupdr_as_contains(server_factory, dsfs_mount, tmp_path):
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--verbose", "--servers", "1",
                         "--volumes", "3", "--snapshots", "1", "--hosts", "4")
    m = dsfs_mount(bdr, "api=backupdr", ttl=60, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    hosts = BdrApi(bdr).items("/host")
    entries = dict(zip((h["id"] for h in hosts), assign_entries(named(hosts, "name"))))
    name = hosts[0]["name"]
    pat = name[:4] + "*"
    want = sorted(entries[h["id"]] for h in hosts if fnmatch.fnmatchcase(h["name"], pat))
    before = len(gets_of(bdr, "/host"))
    assert where_entries(m.p("hosts"), "name=" + pat) == want and want
    deadline = time.monotonic() + 5
    while len(gets_of(bdr, "/host")) <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    asked = [unquote(a) for a in gets_of(bdr, "/host")[before:]]
    assert any("filter=name:=|%s" % name[:4] in a for a in asked), asked


# ---- mtime ---------------------------------------------------------------------------


def mount_volume(client, sid, vid, path):
    r = client.post("/server/%s/volume/%s?action=mount" % (sid, vid), {"path": path})
    assert r.status == 200, (r.status, r.body)


def rsync(src, dst, *extra):
    r = subprocess.run(["rsync", "-a", "--itemize-changes"] + list(extra) + [src, dst], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r
    return r.stdout


def test_a_same_size_change_moves_mtime_and_rsync_a_copies_it(server_factory, dsfs_mount, tmp_path):
    srv = server_factory("--test-controls", "--servers", "1", "--volumes", "3", "--snapshots", "1")
    client = srv.login()
    sid = client.get("/server?limit=1000&start=0").json()["servers"][0]["id"]
    vol = volumes_of(client, sid)[0]
    mount_volume(client, sid, vol["id"], "/mnt/aaaa")
    m = dsfs_mount(srv, ttl=0)
    s = server_entry(m, sid)
    entry = assign_entries(volumes_of(client, sid))[0]
    vjson = m.p("servers", s, "volumes", entry, "volume.json")
    backup = str(tmp_path / "backup") + "/"
    src = m.p("servers", s, "volumes") + "/"
    rsync(src, backup, "--exclude=splitstatus.json")
    before = os.stat(vjson)
    assert "/mnt/aaaa" in read(os.path.join(backup, entry, "volume.json"))
    # a listing again, with the same bytes: the same mtime
    time.sleep(1.1)
    assert listing(m.p("servers", s, "volumes"))
    assert os.stat(vjson).st_mtime == before.st_mtime
    # the server changes the volume, keeping its size
    mount_volume(client, sid, vol["id"], "/mnt/bbbb")
    got = client.get("/server/%s/volume/%s" % (sid, vol["id"])).json()
    assert got["mountPath"] == "/mnt/bbbb"
    time.sleep(1.1)  # the kernel's attributes of the file expire (cache_ttl=0: 1 s)
    changed = rsync(src, backup, "--exclude=splitstatus.json")
    after = os.stat(vjson)
    assert after.st_size == before.st_size and after.st_mtime > before.st_mtime, (before, after)
    assert "%s/volume.json" % entry in changed, changed
    assert read(os.path.join(backup, entry, "volume.json")) == read(vjson)
    assert "/mnt/bbbb" in read(os.path.join(backup, entry, "volume.json"))
    # nothing else changed, so nothing else is copied
    assert [x for x in changed.splitlines() if x.startswith(">f")] == [">f.st...... %s/volume.json" % entry] or \
        [x.split()[-1] for x in changed.splitlines() if x.startswith(">f")] == ["%s/volume.json" % entry], changed


def test_mtime_is_the_object_s_update_time_where_the_api_gives_one(server_factory, dsfs_mount, tmp_path):
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "1", "--volumes", "2",
                         "--snapshots", "1", "--hosts", "3")
    api = BdrApi(bdr)
    host = api.items("/host")[0]
    r = api.c.request("PUT", "/host/%s" % host["id"], {"description": "aaaa"}, session=False, headers=api.headers)
    assert r.status == 200, r.body
    m = dsfs_mount(bdr, "api=backupdr", ttl=0, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    entry = dict(zip((h["id"] for h in api.items("/host")), assign_entries(named(api.items("/host"), "name"))))[
        host["id"]]
    hjson = m.p("hosts", entry, "host.json")
    backup = str(tmp_path / "backup") + "/"
    rsync(m.p("hosts") + "/", backup)
    first = api.get("/host/%s" % host["id"])
    assert os.stat(hjson).st_mtime == first["modifydate"] // 1000000
    time.sleep(1.1)
    r = api.c.request("PUT", "/host/%s" % host["id"], {"description": "bbbb"}, session=False, headers=api.headers)
    assert r.status == 200, r.body
    second = api.get("/host/%s" % host["id"])
    assert second["modifydate"] > first["modifydate"]
    time.sleep(1.1)
    changed = rsync(m.p("hosts") + "/", backup)
    st = os.stat(hjson)
    assert st.st_mtime == second["modifydate"] // 1000000, (st.st_mtime, second["modifydate"])
    assert "%s/host.json" % entry in changed, changed
    assert json.loads(read(os.path.join(backup, entry, "host.json")))["description"] == "bbbb"


def test_ls_l_and_stat_ask_nothing_for_the_times(server, dsfs_mount):
    """mtimes come from what dsfs holds: listing a fresh collection and stating its objects' files
    sends nothing."""
    m = dsfs_mount(server, ttl=60)
    s = sorted(listing(m.p("servers")))[0]
    vols = m.p("servers", s, "volumes")
    subprocess.run(["ls", "-l", vols], check=True, capture_output=True)
    files = [os.path.join(vols, v, "volume.json") for v in listing(vols)]
    reset_stats(server)
    out = subprocess.run(["ls", "-l", "--time-style=+%s", vols], check=True, capture_output=True,
                         text=True).stdout
    assert len(out.splitlines()) > len(files)
    times = [os.stat(f).st_mtime for f in files]
    assert sim_stats(server).get("total", 0) == 0, sim_stats(server)
    assert all(t > 0 for t in times)
