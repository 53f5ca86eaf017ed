"""Start-up, shutdown and the mount helper.

dsfs logs in before it detaches: a dead server, wrong credentials or an
unsafe credentials file end it with one line naming the problem and leave
nothing mounted. At unmount it logs out.
"""

import os
import shutil
import subprocess
import time

import pytest

from conftest import REPO, MountFailed, dsfs_binary, entries, holders, sim_stats, write_credentials


def run_dsfs(args, timeout=30):
    return subprocess.run([dsfs_binary()] + args, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def run_refused(args, mountpoint, timeout=30):
    """run_dsfs for a mount that must be refused: one that happened anyway (a daemon of a build
    that lets the mistake through) is unmounted at once, so the failed test leaves nothing behind."""
    r = run_dsfs(args, timeout)
    mounted = os.path.ismount(mountpoint)
    if mounted:
        subprocess.run(["fusermount3", "-u", str(mountpoint)], capture_output=True, timeout=30)
    r.mounted = mounted
    return r


def test_stopped_server_gives_clear_error_and_no_mount(server, tmp_path):
    url = server.url
    server.stop()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path))
    r = run_dsfs(["-o", "credentials=" + cred, "-o", "connect_timeout=2", url, str(mnt)])
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert url in lines[0] and "connect" in lines[0].lower(), lines[0]
    assert not os.path.ismount(mnt)


def test_wrong_password_is_refused_before_mounting(server, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path), password="Xq-not-it")
    r = run_dsfs(["-o", "credentials=" + cred, server.url, str(mnt)])
    assert r.returncode != 0
    assert "401" in r.stderr and server.url in r.stderr, r.stderr
    assert "Xq-not-it" not in r.stderr
    assert not os.path.ismount(mnt)


def test_credentials_file_readable_by_others_is_refused(server, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path), mode=0o644)
    r = run_dsfs(["-o", "credentials=" + cred, server.url, str(mnt)])
    assert r.returncode != 0
    assert "chmod 600" in r.stderr, r.stderr
    assert sim_stats(server).get("POST /session", 0) == 0


def test_usage_errors_name_the_problem(tmp_path):
    r = run_dsfs([])
    assert r.returncode != 0 and "usage" in r.stderr.lower()
    r = run_dsfs(["ftp://x/y", str(tmp_path)])
    assert r.returncode != 0 and "http://" in r.stderr
    r = run_dsfs(["-o", "timeout=soon", "http://x/y", str(tmp_path)])
    assert r.returncode != 0 and "timeout=soon" in r.stderr
    r = run_dsfs(["--help"])
    assert r.returncode == 0
    for opt in ("credentials=", "cache_ttl=", "timeout=", "connect_timeout=", "page_size=", "cacert=",
                "insecure", "array=", "allow_other", "fusermount3 -u"):
        assert opt in r.stdout + r.stderr, opt
    r = run_dsfs(["-V"])
    assert r.returncode == 0 and "dsfs" in r.stdout


def test_logs_in_once_and_logs_out_at_unmount(server, dsfs_mount):
    m = dsfs_mount(server)
    os.listdir(m.p("servers"))
    assert sim_stats(server).get("POST /session") == 1
    assert m.unmount() == 0
    assert sim_stats(server).get("DELETE /session") == 1


def test_expired_session_is_renewed_invisibly(server, dsfs_mount):
    m = dsfs_mount(server, ttl=0)
    os.listdir(m.p("servers"))
    server.sim("POST", "/sessions/expire")
    assert entries(m.p("servers"))
    assert open(m.p("storage.json")).read()
    assert sim_stats(server).get("POST /session") == 2


def test_array_option_selects_the_array(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--arrays", "3")
    m = dsfs_mount(server, "array=array2.example.com")
    import json
    with open(m.p("storage.json")) as f:
        assert json.load(f)["hostName"] == "array2.example.com"
    with pytest.raises(MountFailed) as e:
        dsfs_mount(server, "array=nosuch.example.com")
    assert "404" in e.value.output


def test_debug_log_never_shows_secrets(server, tmp_path, dsfs_mount):
    cred = write_credentials(str(tmp_path), password="admin")
    server.sim("POST", "/password", {"password": "Sekr1t-pw"})
    cred = write_credentials(str(tmp_path), password="Sekr1t-pw")
    m = dsfs_mount(server, "-d", credentials=cred)
    os.listdir(m.p("servers"))
    open(m.p("storage.json")).read()
    sessions = [s for s in server.stderr_text().split() if len(s) > 20]
    m.unmount()
    log = m.log_text()
    assert "GET /server" in log  # debug lines are there
    assert "Sekr1t-pw" not in log
    assert "Basic " not in log and "sessionid" not in log.lower()
    for s in sessions:
        assert s not in log


def test_mount_helper_drops_mount_only_options(server, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.join(REPO, "mount-helpers", "mount.dsfs"), bindir / "mount.dsfs")
    os.symlink(dsfs_binary(), bindir / "dsfs")
    r = subprocess.run([str(bindir / "mount.dsfs"), server.url, str(mnt), "-o",
                        "credentials=%s,_netdev,noauto,nofail,defaults,cache_ttl=5" % cred],
                       capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    try:
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt)
        assert "servers" in os.listdir(mnt)
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])


def test_mount_t_dsfs_and_fuse_dsfs(server, tmp_path):
    """`mount -t dsfs` through /sbin/mount.dsfs, and `mount -t fuse.dsfs` through mount.fuse3."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path))
    # mount(8) runs helpers with a fixed PATH, so both must be where a package puts them.
    links = {"/sbin/mount.dsfs": os.path.join(REPO, "mount-helpers", "mount.dsfs"),
             "/usr/local/bin/dsfs": dsfs_binary()}
    made = [path for path in links if not os.path.lexists(path)]
    for path in made:
        os.symlink(links[path], path)
    env = dict(os.environ)
    try:
        r = subprocess.run(["mount", "-t", "dsfs", server.url, str(mnt), "-o", "credentials=" + cred + ",_netdev"],
                           capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode == 0, r.stderr
        assert "servers" in os.listdir(mnt)
        subprocess.run(["umount", str(mnt)], check=True)
        assert not os.path.ismount(mnt)
        r = subprocess.run(["mount", "-t", "fuse.dsfs", server.url, str(mnt), "-o", "credentials=" + cred],
                           capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode == 0, r.stderr
        assert "servers" in os.listdir(mnt)
    finally:
        subprocess.run(["umount", str(mnt)], stderr=subprocess.DEVNULL)
        for path in made:
            os.unlink(path)


@pytest.mark.slow
def test_mount_walk_unmount_under_valgrind(server, dsfs_mount):
    if shutil.which("valgrind") is None:
        pytest.fail("valgrind is required (scripts/check installs it)")
    if os.environ.get("DSFS_SANITIZED"):
        pytest.fail("valgrind cannot run an ASan build: run the slow tests against the plain build "
                    "(./scripts/check does)")
    m = dsfs_mount(server, valgrind=True, ttl=0.2)
    subprocess.run(["find", m.path, "-type", "f", "-exec", "cat", "{}", "+"], stdout=subprocess.DEVNULL, check=True)
    time.sleep(0.3)
    subprocess.run(["ls", "-lR", m.path], stdout=subprocess.DEVNULL, check=True)
    vols = m.p("servers", entries(m.p("servers"))[0], "volumes")
    vol = os.path.join(vols, entries(vols)[0])
    with open(os.path.join(vol, "snapshots", "new"), "w") as f:
        f.write("under-valgrind\n")
    with open(os.path.join(vol, "action"), "w") as f:
        f.write("clone name=vg-clone\n")
    assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
    with pytest.raises(OSError):
        with open(os.path.join(vol, "action"), "w") as f:
            f.write("bogus\n")
    assert m.unmount() == 0, m.log_text()
    m.check_clean()


def test_a_misspelt_option_is_named_with_the_nearest_key(server, tmp_path):
    """`-o credentails=FILE` names the typo and `credentials`, before any request is sent."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path))
    r = run_dsfs(["-o", "credentails=" + cred, server.url, str(mnt)])
    assert r.returncode != 0
    assert "unknown option -o credentails: did you mean -o credentials?" in r.stderr, r.stderr
    assert "no credentials" not in r.stderr
    r = run_dsfs(["-o", "credentials=" + cred + ",cache_tll=5", server.url, str(mnt)])
    assert r.returncode != 0 and "did you mean -o cache_ttl?" in r.stderr, r.stderr
    r = run_dsfs(["-o", "credentials=" + cred + ",colour=blue", server.url, str(mnt)])
    assert r.returncode != 0 and "unknown option -o colour " in r.stderr, r.stderr
    assert sim_stats(server).get("POST /session", 0) == 0
    assert not os.path.ismount(mnt)


def test_a_second_mount_on_the_same_point_is_refused(server, dsfs_mount):
    m = dsfs_mount(server)
    before = sim_stats(server).get("POST /session", 0)
    r = run_dsfs(["-o", "credentials=" + m.cred, server.url, m.path])
    assert r.returncode != 0
    assert "already mounted: %s (fuse.dsfs)" % server.url in r.stderr, r.stderr
    assert "fusermount3 -u " + m.path in r.stderr
    assert sim_stats(server).get("POST /session", 0) == before
    # one unmount leaves nothing behind: no second daemon was stacked
    assert m.unmount() == 0
    assert not os.path.ismount(m.path)


def test_a_dead_mount_is_named_and_the_fix_given(server, tmp_path):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    cred = write_credentials(str(tmp_path))
    daemon = subprocess.Popen([dsfs_binary(), "-f", "-o", "credentials=" + cred, server.url, mnt],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(mnt):
            assert daemon.poll() is None and time.monotonic() < deadline, "dsfs did not mount"
            time.sleep(0.02)
        daemon.kill()
        daemon.wait()
        r = run_dsfs(["-o", "credentials=" + cred, server.url, mnt])
        assert r.returncode != 0
        assert "its daemon has gone" in r.stderr and "fusermount3 -u " + mnt in r.stderr, r.stderr
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        r = run_dsfs(["-o", "credentials=" + cred, server.url, mnt])
        assert r.returncode == 0, r.stderr
        assert "servers" in os.listdir(mnt)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)


def test_teardown_unmounts_with_a_reader_still_holding_a_file_open(server, dsfs_mount):
    """A test that fails while its `tail -f` still reads from the mount left the mount busy:
    fusermount3 -u refused it, the fixture waited a minute and killed dsfs with -9. The fixture
    now ends a reader it started, or asks the daemon to go (SIGTERM: it unmounts lazily), and the
    daemon exits 0 either way, promptly, having freed the open file and directory the kernel never
    released."""
    for keep in ("child", "self"):
        m = dsfs_mount(server)
        s = sorted(os.listdir(m.p("servers")))[0]
        path = m.p("servers", s, "server.json")
        if keep == "child":
            holder = subprocess.Popen(["tail", "-s", "0.2", "-f", path], stdout=subprocess.DEVNULL)
        else:
            holder = open(path)
            listing = os.open(m.p("servers"), os.O_RDONLY | os.O_DIRECTORY)  # a directory held open too
        deadline = time.monotonic() + 10
        while keep == "child" and not [pid for pid in holders(m.path) if pid == holder.pid]:
            assert time.monotonic() < deadline, "tail never opened the file"
            time.sleep(0.05)
        r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True, text=True)
        assert r.returncode != 0 and os.path.ismount(m.path), r  # busy, as the failed test's mount was
        t0 = time.monotonic()
        assert m.unmount(timeout=20) == 0, m.log_text()[-2000:]
        assert time.monotonic() - t0 < 15
        assert not os.path.ismount(m.path)
        if keep == "child":
            assert holder.poll() is not None  # the leftover reader is gone
        else:
            holder.close()
            os.close(listing)
            # the kernel never released them (the daemon had gone): freed all the same, and said
            log = m.log_text()
            assert "unmounted with 1 file still open" in log and "unmounted with 1 directory still open" in log, log
        m.check_clean()


def test_a_long_option_is_refused_naming_it_and_the_o_form(server, tmp_path):
    """`--credentials=FILE` went to libfuse, which mounted without credentials: now it is refused,
    naming it and its -o form, without showing its value, before any request."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path))
    r = run_refused(["--credentials=" + cred, server.url, str(mnt)], mnt)
    assert r.returncode != 0 and not r.mounted
    lines = r.stderr.strip().splitlines()
    assert lines == ["dsfs: unknown option --credentials=...: dsfs takes its options as -o NAME[=VALUE]: did "
                     "you mean -o credentials=...? (dsfs --help lists the options)"], r.stderr
    r = run_refused(["--colour=blue", "-o", "credentials=" + cred, server.url, str(mnt)], mnt)
    assert r.returncode != 0 and "unknown option --colour=... (dsfs --help" in r.stderr, r.stderr
    assert sim_stats(server).get("total", 0) == 0


def test_a_missing_mount_point_is_one_true_line(server, tmp_path):
    """Two lines were printed, libfuse's "bad mount point" and a false "no mountpoint given"."""
    cred = write_credentials(str(tmp_path))
    mnt = str(tmp_path / "nonexistent")
    r = run_dsfs(["-o", "credentials=" + cred, server.url, mnt])
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [
        "dsfs: mount point %s does not exist: create the directory first (mkdir -p %s)" % (mnt, mnt)], r.stderr
    assert not os.path.exists(mnt)
    assert sim_stats(server).get("total", 0) == 0


def test_a_regular_file_as_mount_point_is_refused(server, tmp_path):
    cred = write_credentials(str(tmp_path))
    target = tmp_path / "file"
    target.write_text("not a directory\n")
    r = run_refused(["-o", "credentials=" + cred, server.url, str(target)], target)
    assert r.returncode != 0 and not r.mounted
    assert r.stderr.strip().splitlines() == [
        "dsfs: mount point %s is a regular file, not a directory: dsfs mounts on a directory" % target], r.stderr
    assert target.read_text() == "not a directory\n"
    assert sim_stats(server).get("total", 0) == 0


def test_an_argument_past_the_mount_point_is_refused(server, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path))
    r = run_refused(["-o", "credentials=" + cred, server.url, str(mnt), "extra"], mnt)
    assert r.returncode != 0 and not r.mounted
    assert len(r.stderr.strip().splitlines()) == 1 and "unexpected argument 'extra'" in r.stderr, r.stderr
    assert sim_stats(server).get("total", 0) == 0
