"""The core tree: every file equals the API's answer, and the tools work.

Covers issue 3's tree rules through a real mount against the reference
server: content, entry names (hostile ones included), .by-id, sizes, mtimes,
inodes, find / tar / cp -r / grep -r / jq, and .dsfs/stats.
"""

import errno
import json
import os
import subprocess

import pytest

from conftest import entries, entry_name, is_regular
from tree_model import expected_tree


def read_json(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n"), path
    return json.loads(data)


def mount_walk(root):
    """(files, dirs) as a walk of the mount sees them (it never meets a .by-id)."""
    files, dirs = set(), {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        dirs[rel] = set(dirnames) | set(filenames)
        for f in filenames:
            files.add(os.path.join(rel, f) if rel else f)
    return files, dirs


def check_tree_matches_api(server, m):
    client = server.login()
    want_files, want_dirs, others = expected_tree(client)
    got_files, got_dirs = mount_walk(m.path)
    assert not any("/.by-id" in d for d in got_dirs), "a walk went into .by-id"
    assert got_files == set(want_files) | set(others), "file sets differ"
    for d, entries in want_dirs.items():
        if d.endswith("/.by-id"):  # not listed in its collection, but listed when asked for
            assert set(os.listdir(m.p(d))) == entries, "entries of %r differ" % d
        else:
            assert got_dirs.get(d) == entries, "entries of %r differ" % d
    for rel, value in want_files.items():
        assert read_json(m.p(rel)) == value, rel
    return want_files, want_dirs, others


def test_root_lists_the_estate(server, dsfs_mount):
    m = dsfs_mount(server)
    assert sorted(os.listdir(m.path)) == ["info.json", "log.zip", "servers", "storage.json", "tasks"]
    assert read_json(m.p("info.json")) == server.client().get("/info").json()


def test_every_file_equals_the_api(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    check_tree_matches_api(server, m)


def test_hostile_names_are_escaped_unique_and_contained(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--hostile-names", "--volumes", "4", "--snapshots", "2")
    m = dsfs_mount(server, ttl=60)
    files, dirs, _ = check_tree_matches_api(server, m)
    for d, names in dirs.items():
        for e in names:
            assert "/" not in e and e not in (".", "..", ""), (d, e)
    # every .by-id link resolves to the entry whose object has that id
    client = server.login()
    vols_dir = m.p("servers", entries(m.p("servers"))[0], "volumes")
    links = os.listdir(os.path.join(vols_dir, ".by-id"))
    assert links
    for link in links:
        target = os.readlink(os.path.join(vols_dir, ".by-id", link))
        assert target.startswith("../") and "/" not in target[3:]
        obj = read_json(os.path.join(vols_dir, ".by-id", link, "volume.json"))
        assert entry_name(obj["id"], obj["id"]) == link
    # ids with '/', '?', '#', '%', '..' reach the right endpoint: each volume's
    # splitstatus.json came from its own URL (checked above against the API)
    assert any("%2F" in link or "%25" in link for link in links), links
    assert client.get("/info").status == 200


def test_file_sizes_equal_bytes_read(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    for dirpath, _, filenames in os.walk(m.path):
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not is_regular(p):
                continue
            size = os.stat(p).st_size
            with open(p, "rb") as fh:
                assert len(fh.read()) == size, p


def test_mtime_from_creation_time_and_stable_unique_inodes(server, dsfs_mount):
    """A volume's directory has its creationTime; its volume.json the time dsfs first served those bytes
    (the storage plugin gives no update time: docs/tree.md, File times)."""
    import time
    started = int(time.time())
    m = dsfs_mount(server, ttl=0.5)
    client = server.login()
    sid = client.get("/server?limit=1&start=0").json()["servers"][0]
    vols = client.get("/server/%s/volume" % sid["id"]).json()["volumes"]
    sdir = m.p("servers", entry_name(sid["name"], sid["id"]), "volumes")
    inodes = {}
    for v in vols:
        vdir = os.path.join(sdir, entry_name(v["name"], v["id"]))
        assert int(os.stat(vdir).st_mtime) == v["creationTime"]
        st = os.stat(os.path.join(vdir, "volume.json"))
        assert started <= int(st.st_mtime) <= time.time(), (st.st_mtime, started)
        for name in ("", "volume.json", "splitstatus.json", "snapshots"):
            p = os.path.join(vdir, name) if name else vdir
            ino = os.lstat(p).st_ino
            assert ino not in inodes, (p, inodes.get(ino))
            inodes[ino] = p
    time.sleep(0.7)  # past cache_ttl: everything is listed again
    for ino, p in inodes.items():
        assert os.lstat(p).st_ino == ino, p


def test_find_counts_what_the_api_implies(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    want_files, _, others = expected_tree(server.login())
    out = subprocess.run(["find", m.path, "-type", "f"], check=True, capture_output=True, text=True).stdout
    found = [line for line in out.splitlines() if line]
    assert len(found) == len(want_files) + len(others)


def test_tar_round_trip_reproduces_every_file(server, dsfs_mount, tmp_path):
    m = dsfs_mount(server, ttl=60)
    dest = tmp_path / "copy"
    dest.mkdir()
    tar = subprocess.Popen(["tar", "cf", "-", "-C", m.path, "."], stdout=subprocess.PIPE)
    subprocess.run(["tar", "xf", "-", "-C", str(dest)], stdin=tar.stdout, check=True)
    assert tar.wait() == 0
    n = 0
    for dirpath, _, filenames in os.walk(m.path):
        for f in filenames:
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, m.path)
            if os.path.islink(p):
                assert os.readlink(dest / rel) == os.readlink(p)
                continue
            with open(p, "rb") as a, open(dest / rel, "rb") as b:
                assert a.read() == b.read(), rel
            n += 1
    assert n > 100


def test_cp_grep_and_jq_work(server, dsfs_mount, tmp_path):
    m = dsfs_mount(server, ttl=60)
    subprocess.run(["cp", "-r", m.p("servers"), str(tmp_path / "servers")], check=True)
    vol = next(p for p in (tmp_path / "servers").rglob("volume.json"))
    rel = os.path.relpath(vol, tmp_path)
    assert vol.read_bytes() == open(m.p(rel), "rb").read()
    out = subprocess.run(["grep", "-rl", '"splitstatus"\\|"volumeType"', m.p("servers")], capture_output=True,
                         text=True, check=True).stdout.split()
    copied = subprocess.run(["grep", "-rl", '"splitstatus"\\|"volumeType"', str(tmp_path / "servers")],
                            capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == len(copied) > 0
    names = subprocess.run(["jq", "-r", ".name", m.p(rel)], capture_output=True, text=True, check=True).stdout
    assert names.strip() == json.loads(vol.read_text())["name"]


def test_errors_map_to_errnos(server, dsfs_mount):
    m = dsfs_mount(server, ttl=0)
    with pytest.raises(FileNotFoundError):
        os.stat(m.p("servers", "no-such-server"))
    with pytest.raises(FileNotFoundError):
        os.stat(m.p("nothing-here"))
    storage = m.p("storage.json")
    for status, err in ((403, errno.EACCES), (500, errno.EIO), (404, errno.ENOENT)):
        server.sim("POST", "/faults", {"method": "GET", "path": "/storage", "count": 1, "status": status})
        with pytest.raises(OSError) as e:
            open(storage).read()
        assert e.value.errno == err, status
    assert "HTTP 500" in m.log_text(), m.log_text()
    with pytest.raises(OSError) as e:
        open(m.p("info.json"), "w")
    assert e.value.errno in (errno.EPERM, errno.EACCES)  # no update of info.json: EPERM (EACCES by its mode for others)


def test_stats_file_counts_requests(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    before = m.stats()
    os.listdir(m.p("servers"))
    after = m.stats()
    assert after["requests"]["GET"] > before["requests"]["GET"]
    assert {"hits", "misses", "evictions"} <= set(after["cache"])
    assert ".dsfs" not in os.listdir(m.path)
