"""One mount for a whole estate (issue 9): several storage-plugin arrays and
a DSCC console under MOUNT/<member>/, each an independent failure domain.
"""

import errno
import json
import os
import subprocess
import time

import pytest

from conftest import REPO, MountFailed, dsfs_binary, entries, reset_stats, sim_stats
from test_actions import write
from test_dscc import dscc_credentials


def write_estate(tmp, sections, mode=0o600):
    path = os.path.join(str(tmp), "estate.conf")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# test estate\n")
        for name, kv in sections:
            f.write("[%s]\n" % name)
            for k, v in kv.items():
                f.write("%s = %s\n" % (k, v))
    os.chmod(path, mode)
    return path


@pytest.fixture
def estate(server_factory, tmp_path):
    """Two storage-plugin servers (the first with two arrays) and a DSCC console."""
    a = server_factory("--test-controls", "--arrays", "2", "--volumes", "6", "--snapshots", "2",
                       "--task-seconds", "0.3")
    b = server_factory("--test-controls", "--volumes", "5", "--snapshots", "2", "--task-seconds", "0.3")
    d = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "3", "--snapshots", "1",
                       "--task-seconds", "0.3")
    dcred = dscc_credentials(tmp_path, d)
    sp = {"username": "admin", "password": "admin"}
    path = write_estate(tmp_path, [
        ("a1", dict(sp, url=a.url, array="array1.example.com")),
        ("a2", dict(sp, url=a.url, array="array2.example.com")),
        ("b1", dict(sp, url=b.url)),
        ("console", {"url": d.url, "api": "dscc", "credentials": dcred}),
    ])
    return {"a": a, "b": b, "d": d, "file": path, "dcred": dcred}


def mount_estate(dsfs_mount, servers, *opts, ttl=60):
    return dsfs_mount(servers["a"], "estate=" + servers["file"], *opts, ttl=ttl, estate=True)


def tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "tasks"]  # tasks come and go
        for f in filenames:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or f in ("action", "new", "log.zip", "splitstatus.json"):
                continue
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def test_each_member_is_its_single_array_tree(estate, dsfs_mount):
    m = mount_estate(dsfs_mount, estate)
    assert sorted(os.listdir(m.path)) == ["a1", "a2", "b1", "console", "tasks"]
    assert json.load(open(m.p("a1", "storage.json")))["hostName"] == "array1.example.com"
    assert json.load(open(m.p("a2", "storage.json")))["hostName"] == "array2.example.com"
    singles = {
        "a1": dsfs_mount(estate["a"], "array=array1.example.com", ttl=60),
        "b1": dsfs_mount(estate["b"], ttl=60),
        "console": dsfs_mount(estate["d"], "api=dscc", ttl=60, credentials=estate["dcred"]),
    }
    for name, single in singles.items():
        got, want = tree(m.p(name)), tree(single.path)
        assert got.keys() == want.keys(), name
        assert got == want, name
    status = open(m.p(".dsfs", "status")).read().splitlines()
    assert len(status) == 4 and all(" reachable logged-in" in line for line in status), status


def test_find_over_the_estate_costs_the_sum_of_its_members(estate, dsfs_mount):
    servers = [estate["a"], estate["b"], estate["d"]]
    singles = [dsfs_mount(estate["a"], "array=array1.example.com", ttl=60),
               dsfs_mount(estate["a"], "array=array2.example.com", ttl=60),
               dsfs_mount(estate["b"], ttl=60),
               dsfs_mount(estate["d"], "api=dscc", ttl=60, credentials=estate["dcred"])]

    def gets():
        return sum(v for s in servers for k, v in sim_stats(s).items() if k.startswith("GET "))

    for s in servers:
        reset_stats(s)
    for single in singles:
        subprocess.run(["find", single.path, "-type", "f"], check=True, capture_output=True)
    alone = gets()
    m = mount_estate(dsfs_mount, estate)
    for s in servers:
        reset_stats(s)
    subprocess.run(["find", m.path, "-type", "f"], check=True, capture_output=True)
    assert gets() == alone


def walk_the_live_members(m):
    """Seconds a walk of the members that stay up takes."""
    t0 = time.monotonic()
    for name in ("a1", "a2", "console"):
        assert entries(m.p(name, "servers"))
        subprocess.run(["find", m.p(name), "-name", "*.json"], check=True, capture_output=True)
    return time.monotonic() - t0


def test_a_member_down_costs_only_its_subtree(estate, dsfs_mount, server_factory):
    m = mount_estate(dsfs_mount, estate, "timeout=3", "connect_timeout=1", ttl=1)
    assert entries(m.p("b1", "servers"))
    time.sleep(1.1)  # past cache_ttl, as the walk below will be
    alive = walk_the_live_members(m)  # the same walk while b is up: this machine's pace now
    port = estate["b"].port
    estate["b"].stop()
    time.sleep(1.1)
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        os.listdir(m.p("b1", "servers"))
    assert e.value.errno in (errno.EIO, errno.ETIMEDOUT)
    # A refused connection costs less than one -o timeout; a retry waited out would cost two.
    assert time.monotonic() - t0 < 2 * 3
    # The others are not slowed down by the dead member: the walk takes what it took while b was
    # up, with room for a machine whose load changes (twice that, plus one -o timeout).
    dead = walk_the_live_members(m)
    assert dead < 2 * alive + 3, (dead, alive)
    status = {line.split()[0]: line for line in open(m.p(".dsfs", "status")).read().splitlines()}
    assert " unreachable " in status["b1"] and "last-error" in status["b1"], status["b1"]
    assert " reachable " in status["a1"]
    server_factory("--test-controls", "--listen", "127.0.0.1:%d" % port, "--volumes", "5")
    assert entries(m.p("b1", "servers"))  # back, without a remount
    status = {line.split()[0]: line for line in open(m.p(".dsfs", "status")).read().splitlines()}
    assert " reachable logged-in" in status["b1"]


def test_a_member_down_at_mount_time_is_mounted_anyway(estate, dsfs_mount):
    estate["b"].stop()
    m = mount_estate(dsfs_mount, estate, "connect_timeout=1", "timeout=2")
    assert "b1" in os.listdir(m.path)
    assert entries(m.p("a1", "servers"))
    assert "warning: estate member b1" in m.log_text()


def test_actions_and_tasks_in_every_member(estate, dsfs_mount):
    m = mount_estate(dsfs_mount, estate)
    for name in ("a1", "a2", "b1", "console"):
        srv = entries(m.p(name, "servers"))[0]
        vols = m.p(name, "servers", srv, "volumes")
        vol = [v for v in entries(vols) if v != "new"][0]
        assert write(os.path.join(vols, vol, "snapshots", "new"), "estate-snap\n") == 0
        if name == "console":  # DSCC makes snapshots in a task
            assert os.readlink(m.p("tasks", "latest")).startswith("console/")
            assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
        assert "estate-snap" in os.listdir(os.path.join(vols, vol, "snapshots"))
        action = os.path.join(vols, vol, "action")
        clone = "clone name=estate-clone" if name != "console" else None
        if clone:
            assert write(action, clone + "\n") == 0
            target = os.readlink(m.p("tasks", "latest"))
            assert target.startswith(name + "/"), target
            assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
            assert "estate-clone" in os.listdir(vols)
    assert os.readlink(m.p("tasks", "a1")) == "../a1/tasks"
    assert sorted(os.listdir(m.p("tasks"))) == ["a1", "a2", "b1", "console", "latest"]
    assert entries(m.p("tasks", "console"))  # the console's snapshot task


def test_estate_file_is_checked(estate, dsfs_mount, tmp_path):
    bad = write_estate(tmp_path, [("a1", {"url": estate["a"].url, "username": "admin", "password": "admin"})],
                       mode=0o644)
    with pytest.raises(MountFailed) as e:
        dsfs_mount(estate["a"], "estate=" + bad, estate=True)
    assert "chmod 600" in e.value.output
    for sections, why in (([("a1", {"username": "admin"})], "has no url"),
                          ([("tasks", {"url": "http://x/y"})], "cannot name a member"),
                          ([("a1", {"url": "http://x/y", "colour": "red"})], "unknown key 'colour'")):
        path = write_estate(tmp_path, sections)
        with pytest.raises(MountFailed) as e:
            dsfs_mount(estate["a"], "estate=" + path, estate=True)
        assert why in e.value.output, e.value.output


def test_mount_helper_takes_an_estate_source(estate, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.join(REPO, "mount-helpers", "mount.dsfs"), bindir / "mount.dsfs")
    os.symlink(dsfs_binary(), bindir / "dsfs")
    r = subprocess.run([str(bindir / "mount.dsfs"), "estate:" + estate["file"], str(mnt), "-o", "_netdev,ro"],
                       capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    try:
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(mnt)) == ["a1", "a2", "b1", "console", "tasks"]
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])


def test_a_hundred_members_and_one_that_hangs(server_factory, dsfs_mount, tmp_path):
    """100 arrays behind one endpoint plus a member whose server never answers: the logins run side
    by side, so the mount waits one timeout for the hung member, not a sum; the top lists all 101;
    a crawl of the 100 costs the sum of their trees and the hung member slows none of them."""
    sp = {"username": "admin", "password": "admin"}
    many = server_factory("--test-controls", "--arrays", "100", "--servers", "1", "--volumes", "3",
                          "--snapshots", "1", "--hosts", "1", "--luns", "1")
    hung = server_factory("--test-controls")
    hung.sim("POST", "/faults", {"method": "*", "path": "/", "hang": True})
    sections = [("m%03d" % k, dict(sp, url=many.url, array="array%d.example.com" % k)) for k in range(1, 101)]
    sections.append(("stuck", dict(sp, url=hung.url)))
    path = write_estate(tmp_path, sections)
    t0 = time.monotonic()
    m = dsfs_mount(many, "estate=" + path, "timeout=4", "connect_timeout=1", ttl=60, estate=True)
    mount_time = time.monotonic() - t0
    assert mount_time < 4 + 4, mount_time  # one timeout for the hung member's login, not 100 logins in turn
    assert "warning: estate member stuck" in m.log_text()
    top = set(os.listdir(m.p()))
    assert {"m%03d" % k for k in range(1, 101)} | {"stuck", "tasks"} <= top, sorted(top)[:5]
    t0 = time.monotonic()
    found = subprocess.run(["find"] + [m.p("m%03d" % k) for k in range(1, 101)] + ["-name", "*.json"],
                           capture_output=True, text=True, timeout=120)
    crawl = time.monotonic() - t0
    assert found.returncode == 0, found.stderr[:500]
    per_member = {}
    for line in found.stdout.splitlines():
        member = os.path.relpath(line, m.path).split("/")[0]
        per_member[member] = per_member.get(member, 0) + 1
    assert len(per_member) == 100 and len(set(per_member.values())) == 1, per_member
    assert crawl < 60, crawl
    hung.sim("DELETE", "/faults")


def estate_beside_hung_members(server_factory, tmp_path, hung_members=4):
    """One live array and hung_members arrays of a server that then stops answering (it accepts and
    never answers: `hang`). The caller mounts with the returned estate file and calls hang() when the
    mount is up; the hung server's requests are released at the end with release()."""
    sp = {"username": "admin", "password": "admin"}
    live = server_factory("--test-controls", "--volumes", "3", "--snapshots", "1", "--task-seconds", "0.3")
    hung = server_factory("--test-controls", "--arrays", str(hung_members), "--volumes", "2")
    sections = [("live", dict(sp, url=live.url))]
    sections += [("h%d" % k, dict(sp, url=hung.url, array="array%d.example.com" % k))
                 for k in range(1, hung_members + 1)]
    path = write_estate(tmp_path, sections)

    def hang():
        assert hung.sim("POST", "/faults", {"method": "*", "path": "/", "hang": True}).status == 201

    def release():
        hung.sim("DELETE", "/faults")
    return live, path, hang, release


def test_df_of_an_estate_waits_one_timeout_for_hung_members(server_factory, dsfs_mount, tmp_path):
    """Four members hang (timeout=3): a df of the estate asks every member at once and waits one
    timeout, not four in turn (12 s on 0b549a2); the members that did not answer are left out of
    the sum and logged, the live one is counted."""
    live, path, hang, release = estate_beside_hung_members(server_factory, tmp_path)
    m = dsfs_mount(live, "estate=" + path, "timeout=3", "connect_timeout=1", ttl=1, estate=True)
    try:
        whole = os.statvfs(m.path)
        alone = os.statvfs(m.p("live"))
        assert whole.f_blocks * whole.f_frsize > alone.f_blocks * alone.f_frsize > 0  # the hung ones count while up
        hang()
        time.sleep(1.3)  # past cache_ttl: every member must be asked again
        t0 = time.monotonic()
        st = os.statvfs(m.path)
        took = time.monotonic() - t0
        assert took < 3 + 4, took  # one timeout and slack; the members in turn take 4 x 3 s
        assert st.f_blocks * st.f_frsize == alone.f_blocks * alone.f_frsize  # the live member alone
        assert "df: member h1 did not answer within 3 s" in m.log_text() or \
            "df: member h1 left out" in m.log_text(), m.log_text()[-2000:]
    finally:
        release()
