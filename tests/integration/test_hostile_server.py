"""A hostile server (issue 12): it cannot make dsfs loop or grow, every
entry name fits NAME_MAX, and .by-id lists only what it resolves.

The reference server's /_sim faults make list pages ignore start/offset
(`ignore_start`) or claim a wrong `total`; snapshots with any name are
created through the API. Each test checks the result through the mount and
the requests that reached the server.
"""

import errno
import os
import subprocess
import time

from conftest import entries, list_all, reset_stats, sim_stats
from test_dscc import mount_dscc  # noqa: F401 (fixture)
from tree_model import NAME_MAX, assign_entries, by_id_entry, nbytes

VOLUME_LIST = "GET /server/{sid}/volume"


def fault(server, **kw):
    r = server.sim("POST", "/faults", kw)
    assert r.status == 201, r.body


def listdir_errno(path):
    try:
        os.listdir(path)
        return 0
    except OSError as e:
        return e.errno


def resources(path):
    """The resource entries of a collection: no .by-id, no `new`."""
    return [e for e in entries(path) if e != "new"]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def server_dir(m, sid="0"):
    """The entry of server sid (the default estate names servers uniquely)."""
    for e in entries(m.p("servers")):
        with open(m.p("servers", e, "server.json")) as f:
            if '"id": "%s"' % sid in f.read():
                return e
    raise AssertionError("no server %s" % sid)


# ---- the server that ignores start -----------------------------------------

def test_pages_ignoring_start_end_the_listing_and_nothing_keeps_fetching(server_factory, dsfs_mount):
    # the probe: `ls` never returned, thousands of GETs, RSS to 1.78 GB
    server = server_factory("--test-controls", "--servers", "2", "--volumes", "50", "--page-max", "20")
    m = dsfs_mount(server, "timeout=5", ttl=0)
    vols = m.p("servers", server_dir(m), "volumes")
    rss0 = rss_kb(m.proc.pid)
    fault(server, method="GET", path="/server/0/volume", ignore_start=True)
    reset_stats(server)
    t0 = time.time()
    r = subprocess.run(["ls", vols], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Input/output error" in r.stderr, r
    assert time.time() - t0 < 5
    assert sim_stats(server)[VOLUME_LIST] == 2  # the first page, and the one that repeated it
    time.sleep(1)
    assert sim_stats(server)[VOLUME_LIST] == 2  # nothing goes on fetching once the reader is gone
    assert rss_kb(m.proc.pid) < rss0 + 20 * 1024
    log = m.log_text()
    assert "/server/0/volume?limit=1000&start=20" in log and "nothing new" in log, log
    # the mount is not harmed: once the server pages again, the listing is whole
    server.sim("DELETE", "/faults")
    assert len(entries(vols)) == 50


def test_a_reader_killed_mid_listing_leaves_no_loop(server_factory, dsfs_mount):
    # a server that takes its time on every page: the reader is killed while dsfs lists
    server = server_factory("--test-controls", "--volumes", "50", "--page-max", "10")
    m = dsfs_mount(server, "timeout=5", ttl=0)
    vols = m.p("servers", server_dir(m), "volumes")
    fault(server, method="GET", path="/server/0/volume", latency_ms=200)
    fault(server, method="GET", path="/server/0/volume", ignore_start=True)
    reset_stats(server)
    p = subprocess.Popen(["ls", vols], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.1)
    p.kill()
    p.wait()
    time.sleep(1.5)
    n = sim_stats(server).get(VOLUME_LIST, 0)
    assert n <= 2
    time.sleep(1)
    assert sim_stats(server).get(VOLUME_LIST, 0) == n


def test_dscc_pages_ignoring_offset_or_beyond_total_fail(server_factory, mount_dscc):  # noqa: F811
    server = server_factory("--dialect", "dscc", "--test-controls", "--servers", "1", "--volumes", "50",
                            "--page-max", "20", "--device-types", "1")
    m = mount_dscc(server, "timeout=5", ttl=0)
    srv = entries(m.p("servers"))[0]
    vols = m.p("servers", srv, "volumes")
    assert len(entries(vols)) == 50 + 1  # and `new`
    key = "GET /api/v1/storage-systems/device-type1/{systemId}/volumes"
    path = "/api/v1/storage-systems/device-type1/"
    fault(server, method="GET", path=path, ignore_start=True, count=10)
    reset_stats(server)
    assert listdir_errno(vols) == errno.EIO
    assert sim_stats(server)[key] == 2
    assert "offset=20" in m.log_text() and "nothing new" in m.log_text()
    server.sim("DELETE", "/faults")
    # more items than the server's own total
    fault(server, method="GET", path=path, total=3, count=10)
    reset_stats(server)
    assert listdir_errno(vols) == errno.EIO
    assert sim_stats(server)[key] == 1
    assert "total is 3" in m.log_text()
    server.sim("DELETE", "/faults")
    assert len(entries(vols)) == 50 + 1


def test_a_list_longer_than_the_memory_bound_fails(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--servers", "1", "--volumes", "3000")
    m = dsfs_mount(server, "timeout=5", "cache_size=1", ttl=0)
    vols = m.p("servers", server_dir(m), "volumes")
    reset_stats(server)
    assert listdir_errno(vols) == errno.EIO
    assert sim_stats(server)[VOLUME_LIST] <= 2
    assert "cache_size" in m.log_text() and "/server/0/volume?limit=1000" in m.log_text()
    # the rest of the mount works, and a larger bound lists them all
    assert entries(m.p("servers"))
    m2 = dsfs_mount(server, "timeout=5", "cache_size=16", ttl=0)
    assert len(entries(m2.p("servers", server_dir(m2), "volumes"))) == 3000


# ---- every name fits ----------------------------------------------------------

LONG_NAMES = ["%" * 5000, "%" * 5000 + "b", "é" * 300, "x" * 255, "y" * 256, "z" * 250]


def test_long_names_fit_and_break_no_listing(server, dsfs_mount):
    c = server.login()
    snaps = "/server/0/volume/vol-0-1/snapshot"
    for name in LONG_NAMES:
        assert c.post(snaps, {"name": name}).status == 201
    objs = list_all(c, snaps, "snapshots")
    assert len(objs) >= 10
    m = dsfs_mount(server)
    d = m.p("servers", server_dir(m), "volumes", ".by-id", "vol-0-1", "snapshots")
    got = resources(d)
    want = assign_entries(objs)
    assert got == sorted(want)  # the rule of docs/tree.md, modelled independently
    assert all(nbytes(e) <= NAME_MAX for e in got)
    ident, pct = next((o["id"], e) for o, e in zip(objs, want) if o["name"] == "%" * 5000)
    assert pct == "%25" * ((NAME_MAX - 1 - len(ident)) // 3) + "@" + ident  # as many %25 as fit, and the id
    # find sees every snapshot, each with its object
    found = subprocess.run(["find", d, "-name", "snapshot.json"], capture_output=True, text=True)
    assert found.returncode == 0 and len(found.stdout.split("\n")) - 1 == len(objs), found.stderr
    for o, e in zip(objs, assign_entries(objs)):
        with open(os.path.join(d, e, "snapshot.json"), encoding="utf-8") as f:
            assert f'"id": "{o["id"]}"' in f.read()
        link = os.path.join(d, ".by-id", by_id_entry(o["id"]))
        assert os.readlink(link) == "../" + e
        assert os.path.isdir(link)
    # a name of exactly 255 bytes stays as it is
    assert "x" * 255 in got


def test_long_ids_fit_in_by_id(server, dsfs_mount):
    long_id = "q" * 300
    body = '{"snapshots": [{"id": "%s", "name": "long-id"}, {"id": "s2", "name": "%s"}]}' % (long_id, "n" * 400)
    fault(server, method="GET", path="/server/0/volume/vol-0-2/snapshot", body=body)
    m = dsfs_mount(server)
    vols = m.p("servers", server_dir(m), "volumes")
    assert len(entries(vols)) >= 20  # the largest page seen: a 2-item page is then known to be the last
    d = os.path.join(vols, ".by-id", "vol-0-2", "snapshots")
    objs = [{"id": long_id, "name": "long-id"}, {"id": "s2", "name": "n" * 400}]
    assert resources(d) == sorted(assign_entries(objs))
    by_id = sorted(os.listdir(os.path.join(d, ".by-id")))
    assert by_id == sorted(by_id_entry(o["id"]) for o in objs)
    for e in by_id:
        assert nbytes(e) <= NAME_MAX
        assert os.path.isdir(os.path.join(d, ".by-id", e))


# ---- .by-id lists only what it resolves -----------------------------------------

def test_by_id_never_lists_what_it_cannot_resolve(server, dsfs_mount):
    body = ('{"snapshots": [{"id": "", "name": ""}, {"id": "%", "name": "pct"},'
            ' {"id": "e", "name": "%"}]}')
    fault(server, method="GET", path="/server/0/volume/vol-0-2/snapshot", body=body)
    m = dsfs_mount(server)
    vols = m.p("servers", server_dir(m), "volumes")
    assert len(entries(vols)) >= 20
    d = os.path.join(vols, ".by-id", "vol-0-2", "snapshots")
    objs = [{"id": "", "name": ""}, {"id": "%", "name": "pct"}, {"id": "e", "name": "%"}]
    assert resources(d) == sorted(assign_entries(objs))
    for e in resources(d):
        assert os.path.isfile(os.path.join(d, e, "snapshot.json"))
    by_id = sorted(os.listdir(os.path.join(d, ".by-id")))
    assert by_id == ["%25", "e"]  # the empty id has no entry
    for e in by_id:  # `ls -la` of each
        st = os.lstat(os.path.join(d, ".by-id", e))
        assert st.st_size == len(os.readlink(os.path.join(d, ".by-id", e)))
        assert os.path.isdir(os.path.join(d, ".by-id", e))
    assert os.readlink(os.path.join(d, ".by-id", "%25")) == "../pct"
