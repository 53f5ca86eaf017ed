"""cache_size bounds the daemon however large one collection is, and a repeated walk
costs no more than the listings it needs.

One collection of 30,000 volumes (each with an empty snapshot directory) under
cache_size=64: the volumes' objects, their nodes and the 30,000 snapshot
listings a walk makes take more than the bound. The daemon's RSS (from
/proc/<pid>/status) stays within 1.1 x cache_size, .dsfs/stats' cache bytes
within cache_size, and the server's request log shows no listing asked for twice
by a walk within cache_ttl: the volume list's pages are not fetched again by a
second walk, and no snapshot directory is listed more often than once a walk.
"""

import json
import os
import random
import subprocess

import pytest

from conftest import entry_name, list_all, reset_stats, sim_stats

VOLUMES = 30000
CACHE_MIB = 64
VOLUME_LIST = "GET /server/{sid}/volume"
SNAPSHOT_LIST = "GET /server/{sid}/volume/{vid}/snapshot"
VOLUME_GET = "GET /server/{sid}/volume/{vid}"


def rss_kib(m):
    with open("/proc/%d/status" % m.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for dsfs")


def find_volume_files(m):
    out = subprocess.run(["find", m.path, "-name", "volume.json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return len(out.stdout.split())


@pytest.mark.slow
def test_one_collection_larger_than_the_bound_keeps_rss_within_it(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--servers", "1", "--volumes", str(VOLUMES), "--snapshots", "0")
    m = dsfs_mount(server, "cache_size=%d" % CACHE_MIB, ttl=600)
    bound = CACHE_MIB * 1024 * 1024
    for walk in (1, 2):
        reset_stats(server)
        assert find_volume_files(m) == VOLUMES
        st = sim_stats(server)
        cached = m.stats()["cache"]["bytes"]
        rss = rss_kib(m) * 1024
        assert cached <= bound, "walk %d: the cache holds %d bytes, over cache_size" % (walk, cached)
        assert rss <= 1.1 * bound, "walk %d: RSS %.1f MiB, over 1.1 x cache_size (%d MiB)" % (
            walk, rss / 2**20, CACHE_MIB)
        # find reads no file: no object is fetched alone
        assert st.get(VOLUME_GET, 0) == 0, st
        # each snapshot directory is listed exactly once a walk: find walks this directory in inode
        # order, and nothing the prefetcher fetches is dropped before the walker gets to it
        lists = st.get(SNAPSHOT_LIST, 0)
        assert lists == VOLUMES, (walk, lists, m.stats()["cache"])
        if walk == 2:
            # within cache_ttl the listing the walk goes through is not paged again
            assert st.get(VOLUME_LIST, 0) == 0, st
        else:
            assert st.get(VOLUME_LIST, 0) == VOLUMES // 1000 + 1, st
    assert "error" not in m.log_text().lower(), m.log_text()[-2000:]


def test_a_query_over_a_listing_whose_objects_were_dropped_sees_them(server_factory, dsfs_mount):
    # cache_size=16: the listing of 3,000 volumes keeps the objects of the first pages only
    server = server_factory("--test-controls", "--servers", "1", "--volumes", "3000", "--snapshots", "0")
    m = dsfs_mount(server, "cache_size=16", ttl=600)
    c = server.login()
    vols = m.p("servers", os.listdir(m.p("servers"))[0], "volumes")
    assert len(os.listdir(vols)) == 3000
    last = list_all(c, "/server/0/volume", "volumes")[-1]
    entry = entry_name(last["name"], last["id"])
    reset_stats(server)
    cond = os.path.join(vols, ".where", "id=%s" % last["id"])
    assert os.listdir(cond) == [entry]
    with open(os.path.join(cond, ".count")) as f:
        assert f.read() == "1\n"
    with open(os.path.join(vols, entry, "volume.json")) as f:
        assert json.load(f)["id"] == last["id"]
    st = sim_stats(server)
    # its object was dropped while listing: asked for alone, never by listing the volumes again
    assert st.get(VOLUME_GET, 0) >= 1 and st.get(VOLUME_LIST, 0) == 0, st
    assert "error" not in m.log_text().lower(), m.log_text()[-2000:]


def test_a_walk_out_of_listing_order_lists_each_directory_once(server_factory, dsfs_mount):
    # GNU find walks a directory of more than 10,000 entries in inode order, not the listing's: the
    # prefetcher's "ahead" is then anywhere in the walker's future, and with the volume listing's
    # nodes taking nearly all of cache_size=16 (6,800 volumes) the bound dropped what it fetched
    # before the walker got there, so the walker listed it again
    vols_n = 6800
    server = server_factory("--test-controls", "--servers", "1", "--volumes", str(vols_n), "--snapshots", "0")
    m = dsfs_mount(server, "cache_size=16", ttl=600)
    vols = m.p("servers", os.listdir(m.p("servers"))[0], "volumes")
    names = sorted(os.listdir(vols))
    assert len(names) == vols_n
    reset_stats(server)
    random.Random(23).shuffle(names)
    for name in names:
        os.listdir(os.path.join(vols, name, "snapshots"))
    st = sim_stats(server)
    lists = st.get(SNAPSHOT_LIST, 0)
    # one list per snapshot directory, no volume page again, no object alone
    assert lists == vols_n, (lists, m.stats()["cache"])
    assert st.get(VOLUME_LIST, 0) == 0 and st.get(VOLUME_GET, 0) == 0, st
