"""Request costs, counted by the reference server (/_sim/stats).

A listing renders every object it received, so `ls -l` of a directory of N
resources costs only its list pages, a `cat` of a file just listed costs
nothing, and a stale or never-listed resource costs one GET.
"""

import json
import os
import subprocess
import time
from urllib.parse import quote

import pytest

from conftest import entries, entry_name, reset_stats, sim_stats


def gets(stats, route):
    return stats.get("GET " + route, 0)


@pytest.mark.slow
def test_ls_l_of_5000_volumes_costs_only_list_pages(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--servers", "2", "--volumes", "5000", "--snapshots", "1",
                            "--page-max", "1000")
    m = dsfs_mount(server, ttl=120)
    servers = entries(m.p("servers"))
    reset_stats(server)
    out = subprocess.run(["ls", "-l"] + [m.p("servers", s, "volumes") for s in servers],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("\nd") >= 10000
    st = sim_stats(server)
    assert gets(st, "/server/{sid}/volume") <= 6 * len(servers), st
    assert gets(st, "/server/{sid}/volume/{vid}") == 0, st
    assert st["total"] == gets(st, "/server/{sid}/volume"), st

    # every volume.json of one server read right after: no request at all
    reset_stats(server)
    vols = m.p("servers", servers[0], "volumes")
    n = 0
    for v in os.listdir(vols):
        if v == ".by-id":
            continue
        with open(os.path.join(vols, v, "volume.json"), "rb") as f:
            f.read()
        n += 1
    assert n == 5000
    assert sim_stats(server)["total"] == 0


def test_cat_of_listed_file_is_free_and_stale_costs_one_get(server, dsfs_mount):
    m = dsfs_mount(server, ttl=1)
    srv = entries(m.p("servers"))[0]
    vols = m.p("servers", srv, "volumes")
    vol = entries(vols)[0]
    path = os.path.join(vols, vol, "volume.json")
    reset_stats(server)
    open(path).read()
    assert sim_stats(server)["total"] == 0
    time.sleep(1.2)
    reset_stats(server)
    open(path).read()
    st = sim_stats(server)
    assert st["total"] == 1 and gets(st, "/server/{sid}/volume/{vid}") == 1, st


def test_ttl_zero_reads_through_on_every_open(server, dsfs_mount):
    m = dsfs_mount(server, ttl=0)
    path = m.p("storage.json")
    open(path).read()
    for _ in range(3):
        reset_stats(server)
        with open(path) as f:
            f.read()
        st = sim_stats(server)
        assert st["total"] == 1 and gets(st, "/storage") == 1, st


def test_ls_of_resource_dir_needs_no_get(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    srv = entries(m.p("servers"))[0]
    vols = m.p("servers", srv, "volumes")
    os.listdir(vols)
    reset_stats(server)
    for v in os.listdir(vols):
        if v != ".by-id":
            os.listdir(os.path.join(vols, v))
            os.stat(os.path.join(vols, v, "volume.json"))
    assert sim_stats(server)["total"] == 0


def test_concurrent_misses_send_one_request(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    srv = entries(m.p("servers"))[0]
    reset_stats(server)
    procs = [subprocess.Popen(["ls", m.p("servers", srv, "volumes")], stdout=subprocess.DEVNULL)
             for _ in range(16)]
    assert all(p.wait() == 0 for p in procs)
    st = sim_stats(server)
    assert gets(st, "/server/{sid}/volume") <= 2, st


def test_hostgroup_without_get_of_one_refreshes_by_listing(server, dsfs_mount):
    m = dsfs_mount(server, ttl=0.5)
    srv = entries(m.p("servers"))[0]
    groups = m.p("servers", srv, "hostgroups")
    g = entries(groups)[0]
    time.sleep(0.6)
    reset_stats(server)
    with open(os.path.join(groups, g, "hostgroup.json")) as f:
        f.read()
    st = sim_stats(server)
    assert gets(st, "/server/{sid}/hostgroup") >= 1, st
    assert not any("/hostgroup/{gid}" in k for k in st), st


def test_crawling_tasks_costs_only_the_listing(server, dsfs_mount):
    client = server.login()
    vols = client.get("/server/0/volume?limit=3&start=0").json()["volumes"]
    for i, v in enumerate(vols):
        r = client.post("/server/0/volume/%s?action=clone" % v["id"], {"name": "crawl-%d" % i})
        assert r.status == 202
    m = dsfs_mount(server, ttl=60)
    reset_stats(server)
    out = subprocess.run("tar cf - -C %s tasks | wc -c" % m.path, shell=True, capture_output=True, text=True)
    assert int(out.stdout) > 0
    st = sim_stats(server)
    assert gets(st, "/tasks/{taskId}") == 0, st  # task.json, state, progress, log: all from the listing
    assert st["total"] == gets(st, "/tasks"), st
    # a read-through file still asks the server once the answer is over a second old
    time.sleep(1.1)
    reset_stats(server)
    open(m.p("tasks", entries(m.p("tasks"))[0], "progress")).read()
    assert gets(sim_stats(server), "/tasks/{taskId}") == 1


def test_prefetch_ahead_of_a_walk_sends_no_extra_request(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--servers", "1", "--volumes", "60", "--snapshots", "2",
                            "--latency-ms", "5")
    totals = {}
    for opts in (("prefetch=0",), ()):
        m = dsfs_mount(server, *opts, ttl=60)
        reset_stats(server)
        subprocess.run("tar cf - -C %s servers | wc -c" % m.path, shell=True, check=True, capture_output=True)
        totals[opts] = sim_stats(server)["total"]
        prefetched = m.stats()["cache"]["prefetched"]
        assert (prefetched > 0) == (opts == ()), prefetched
    assert totals[()] == totals[("prefetch=0",)], totals


def test_browsing_a_few_directories_prefetches_nothing(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    vols = m.p("servers", entries(m.p("servers"))[0], "volumes")
    names = entries(vols)
    reset_stats(server)
    for v in names[:5]:
        os.listdir(os.path.join(vols, v))      # not into snapshots/: not a walk
    os.listdir(os.path.join(vols, names[0], "snapshots"))
    os.listdir(os.path.join(vols, names[1], "snapshots"))
    os.listdir(os.path.join(vols, names[0], "snapshots"))  # going back is browsing
    assert sim_stats(server)["total"] == 2
    assert m.stats()["cache"]["prefetched"] == 0


def test_the_kernels_page_cache_serves_unchanged_files_and_never_changed_ones(server_factory, dsfs_mount):
    """Files the kernel read once are served from its page cache while unchanged (keep_cache); a
    change through the mount, or on the server once cache_ttl passed, shows at the next open, also
    when the new content has the same length as the old."""
    server = server_factory("--test-controls", "--volumes", "3")
    m = dsfs_mount(server, ttl=1)
    c = server.login()
    srv = c.get("/server").json()["servers"][0]
    sid = srv["id"]
    vol = c.get("/server/%s/volume" % sid).json()["volumes"][0]
    vdir = m.p("servers", entry_name(srv["name"], sid), "volumes", entry_name(vol["name"], vol["id"]))
    path = os.path.join(vdir, "volume.json")

    def mount_path():
        with open(path) as f:
            return json.load(f).get("mountPath")

    for _ in range(3):
        mount_path()
    fd = os.open(os.path.join(vdir, "action"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"mount path=/mnt/aaaa\n")
    os.close(fd)
    assert mount_path() == "/mnt/aaaa"  # read-your-writes through the mount
    assert mount_path() == "/mnt/aaaa"
    r = c.post("/server/%s/volume/%s?action=mount" % (sid, quote(vol["id"], safe="")), {"path": "/mnt/bbbb"})
    assert r.status in (200, 202), r.body
    time.sleep(1.5)  # past cache_ttl: the next open asks the server
    assert mount_path() == "/mnt/bbbb"  # same length, other bytes: the kernel's pages were dropped
    assert mount_path() == "/mnt/bbbb"
