"""What the kernel keeps of the tree (src/fuse/ops.c, src/fuse/readdir.c), and when dsfs makes it
let go: listings (cache_readdir), file contents (keep_cache, handed over at
open), attributes of objects' files (kept as long as names, told at once
when an open fetched another size). Every change below is made through the
API behind dsfs's back and must show through the mount as docs/tree.md
says; the kernel's copies must never hide it.
"""

import json
import os
import time

import pytest

from conftest import entries, entry_name


def first_server(m, client):
    """The first server's id and its directory."""
    srv = client.get("/server").json()["servers"][0]
    return srv["id"], m.p("servers", entry_name(srv["name"], srv["id"]))


def volume_dir(m, client):
    sid, sdir = first_server(m, client)
    vol = client.get("/server/%s/volume?limit=1&start=0" % sid).json()["volumes"][0]
    vol["sid"] = sid
    return vol, os.path.join(sdir, "volumes", entry_name(vol["name"], vol["id"]))


def mount_path(client, vol, path):
    r = client.post("/server/%s/volume/%s?action=mount" % (vol["sid"], vol["id"]), {"path": path})
    assert r.status == 200, r


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("options", [(), ("ro",)], ids=["rw", "ro"])
def test_an_open_that_fetched_another_size_shows_it_in_stat(server, dsfs_mount, options):
    # (a read-only mount matters: there no read makes the kernel ask for attributes again)
    m = dsfs_mount(server, *options, ttl=0)
    c = server.login()
    vol, vdir = volume_dir(m, c)
    path = os.path.join(vdir, "volume.json")
    before = read(path)
    assert os.stat(path).st_size == len(before)

    mount_path(c, vol, "/" + "x" * 300)  # the object grows
    grown = read(path)
    assert len(grown) > len(before) and b"x" * 300 in grown
    assert os.stat(path).st_size == len(grown)  # at once, not after the attribute timeout

    mount_path(c, vol, "/y")  # and shrinks
    shrunk = read(path)
    assert len(shrunk) < len(grown) and b'"/y"' in shrunk
    assert os.stat(path).st_size == len(shrunk)
    assert read(path) == shrunk


def test_same_size_new_bytes_are_read_not_the_kernels_old_pages(server, dsfs_mount):
    m = dsfs_mount(server, ttl=0)
    c = server.login()
    vol, vdir = volume_dir(m, c)
    path = os.path.join(vdir, "volume.json")
    mount_path(c, vol, "/aaaa")
    first = read(path)
    read(path)  # the kernel now keeps these pages
    mount_path(c, vol, "/bbbb")
    second = read(path)
    assert len(second) == len(first) and b'"/bbbb"' in second and b"/aaaa" not in second
    assert second == read(path)


def hosts_dir(server, dsfs_mount, ttl):
    """A mount, a client, the first server's id and its hosts directory, listed once."""
    m = dsfs_mount(server, ttl=ttl)
    c = server.login()
    sid, sdir = first_server(m, c)
    hosts = os.path.join(sdir, "hosts")
    return m, c, sid, hosts, entries(hosts)


def test_a_listing_shows_new_entries_and_new_sizes(server, dsfs_mount):
    m, c, sid, hosts, before = hosts_dir(server, dsfs_mount, 0)
    assert entries(hosts) == before  # the kernel's copy of an unchanged listing

    r = c.post("/server/%s/host" % sid, {"name": "kernel-cache-new"})
    assert r.status in (200, 201), r
    assert "kernel-cache-new" in entries(hosts)

    # an object grows while the names stay: the listing fetched again gives the new size, which
    # stat shows once the kernel's attributes of the file expire (1 s with cache_ttl=0, docs/tree.md)
    vol, vdir = volume_dir(m, c)
    vols = os.path.dirname(vdir)
    os.listdir(vols)
    size = os.stat(os.path.join(vdir, "volume.json")).st_size
    mount_path(c, vol, "/" + "z" * 200)
    os.listdir(vols)
    time.sleep(1.05)
    new_size = os.stat(os.path.join(vdir, "volume.json")).st_size
    assert new_size > size
    assert new_size == len(read(os.path.join(vdir, "volume.json")))


def test_a_control_files_size_is_its_result_in_a_listing(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    c = server.login()
    vol, vdir = volume_dir(m, c)
    action = os.path.join(vdir, "action")
    os.listdir(vdir)
    assert os.stat(action).st_size == 0
    with open(action, "w") as f:
        f.write("mount path=/listed\n")
    result = read(action)
    assert b'"status": 200' in result
    listed = {e.name: e.stat().st_size for e in os.scandir(vdir)}
    assert listed["action"] == len(result)
    assert os.stat(action).st_size == len(result)


def test_a_stale_listing_is_fetched_again_even_when_the_kernel_keeps_it(server, dsfs_mount):
    m, c, sid, hosts, before = hosts_dir(server, dsfs_mount, 0.5)
    time.sleep(0.6)
    assert entries(hosts) == before
    assert c.post("/server/%s/host" % sid, {"name": "kernel-cache-later"}).status == 201
    time.sleep(0.6)
    assert entries(hosts) == sorted(before + ["kernel-cache-later"])


def walk(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_names_the_kernel_was_made_to_forget_resolve_again(server_factory, dsfs_mount):
    # cache_size=2: the kernel's inodes may take 256 KiB, about 2,000 names; the tree has ~6,000
    server = server_factory("--test-controls", "--servers", "1", "--volumes", "300", "--snapshots", "3")
    m = dsfs_mount(server, "cache_size=2", ttl=60)
    first = walk(m.path)
    assert len(first) > 3000
    time.sleep(0.5)  # rounds of the pruner: the first names walked are forgotten
    assert walk(m.path) == first
    c = server.login()
    sid, sdir = first_server(m, c)
    for vol in c.get("/server/%s/volume?limit=5&start=0" % sid).json()["volumes"]:
        got = read(os.path.join(sdir, "volumes", entry_name(vol["name"], vol["id"]), "volume.json"))
        assert json.loads(got)["id"] == vol["id"]
    assert "error" not in m.log_text().lower(), m.log_text()[-2000:]


def test_a_name_a_listing_lost_is_dropped_at_once(server, dsfs_mount):
    # cache_ttl=60: the kernel would go on finding a lost name for a minute
    m = dsfs_mount(server, ttl=60)
    c = server.login()
    vol, vdir = volume_dir(m, c)
    snaps = os.path.join(vdir, "snapshots")
    api = "/server/%s/volume/%s/snapshot" % (vol["sid"], vol["id"])
    snap = c.get(api + "?limit=1&start=0").json()["snapshots"][0]
    gone = os.path.join(snaps, entry_name(snap["name"], snap["id"]))
    assert os.path.isdir(gone) and os.path.isfile(os.path.join(gone, "snapshot.json"))
    assert c.delete("%s/%s" % (api, snap["id"])).status == 204

    os.mkdir(os.path.join(snaps, "after-the-delete"))  # read-your-writes: the listing is fetched again
    names = entries(snaps)
    assert "after-the-delete" in names and os.path.basename(gone) not in names
    deadline = time.monotonic() + 2
    while os.path.exists(gone) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(gone), "the kernel still finds a name its listing lost"


def evict_pages(path, how):
    """Makes the kernel drop the file's pages, as any reader (or memory pressure) may."""
    if how == "fadvise":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    else:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")


@pytest.mark.parametrize("how", ["fadvise", "drop_caches"])
def test_an_old_descriptor_never_brings_old_bytes_back(server, dsfs_mount, how):
    # Two same-size versions, a descriptor opened on the first and kept open: once an open has
    # shown the second, no later open shows the first, whatever that descriptor reads after the
    # kernel dropped the pages (issue: its READ used to refill the shared pages with old bytes).
    m = dsfs_mount(server, ttl=1)
    c = server.login()
    vol, vdir = volume_dir(m, c)
    path = os.path.join(vdir, "volume.json")
    mount_path(c, vol, "/d1d1")
    time.sleep(1.2)
    assert b'"/d1d1"' in read(path)
    old = os.open(path, os.O_RDONLY)
    try:
        mount_path(c, vol, "/d2d2")
        time.sleep(1.2)
        assert b'"/d2d2"' in read(path)
        for _ in range(3):
            evict_pages(path, how)
            got = os.pread(old, 1 << 16, 0)
            for _ in range(2):
                now = read(path)
                assert b'"/d2d2"' in now and b"/d1d1" not in now
            assert b'"/d2d2"' in got  # the pages every descriptor shares hold only the newest
    finally:
        os.close(old)
    assert b'"/d2d2"' in read(path)
