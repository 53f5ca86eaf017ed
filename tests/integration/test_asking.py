"""Asking and waiting across an estate, through a real mount against the reference server:
`.where` refuses a field no object of the collection has (EINVAL, and the log names the
nearest field) and takes shell patterns, asked of the server as the text every match
contains where its filter can say that and matched here; `dsfs wait` waits for many tasks
at once (plain lines, a progress bar on a terminal, exit codes, each failure's reason); a
file's mtime follows its content, so `rsync -a` copies a same-size change.
"""

import errno
import fnmatch
import json
import os
import pty
import re
import select
import subprocess
import time
from urllib.parse import unquote

import pytest

from conftest import dsfs_binary, reset_stats, sim_stats
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


# ---- dsfs wait ------------------------------------------------------------------------


def start_clones(m, vol, names):
    """Clones vol once per name through the mount; the ids of the tasks they started."""
    ids = []
    for n in names:
        with open(os.path.join(vol, "action"), "w") as f:
            f.write("clone name=%s\n" % n)
        ids.append(os.readlink(m.p("tasks", "latest")))
    return ids


def dsfs_wait(*args, timeout=120):
    return subprocess.run([dsfs_binary(), "wait"] + list(args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def tasks_server(server_factory):
    return server_factory("--test-controls", "--task-seconds", "3", "--servers", "1", "--volumes", "3",
                          "--snapshots", "1")


def first_volume(m):
    s = sorted(listing(m.p("servers")))[0]
    return m.p("servers", s, "volumes", sorted(listing(m.p("servers", s, "volumes")))[0])


def test_dsfs_wait_for_many_tasks_prints_a_line_each_and_each_failure_s_reason(tasks_server, dsfs_mount):
    m = dsfs_mount(tasks_server)
    c = tasks_server.login()
    ok1, bad, ok2 = start_clones(m, first_volume(m), ["w-one", "fail-w", "w-two"])
    assert c.get("/tasks/%s" % bad).json()["state"] in ("INITIALIZED", "RUNNING")
    t0 = time.monotonic()
    r = dsfs_wait(m.p("tasks", ok1), m.p("tasks", bad, "wait"), m.p("tasks", ok2), m.p("tasks", "latest"))
    took = time.monotonic() - t0
    assert r.returncode == 1, r
    lines = r.stdout.splitlines()
    assert len(lines) == 3, r.stdout  # tasks/latest is ok2: waited for once
    assert "%s SUCCEEDED" % ok1 in lines and "%s SUCCEEDED" % ok2 in lines, lines
    failed = [x for x in lines if x.startswith(bad + " ")]
    task = c.get("/tasks/%s" % bad).json()
    assert task["state"] == "FAILED" and task["error"]
    assert failed and failed[0].startswith("%s FAILED: " % bad) and task["error"] in failed[0], (failed, task)
    assert "\x1b[" not in r.stdout  # not a terminal: plain lines
    assert took < 3 * 3, took  # all at once, not one after the other
    for t in (ok1, ok2):
        assert c.get("/tasks/%s" % t).json()["state"] == "SUCCEEDED"
    # every task succeeded: 0, and the ended tasks answer at once
    r = dsfs_wait(m.p("tasks", ok1), m.p("tasks", ok2))
    assert r.returncode == 0 and sorted(r.stdout.splitlines()) == sorted(
        ["%s SUCCEEDED" % ok1, "%s SUCCEEDED" % ok2]), r


def test_dsfs_wait_usage_errors_name_the_path_and_exit_2(tasks_server, dsfs_mount):
    m = dsfs_mount(tasks_server)
    (ok,) = start_clones(m, first_volume(m), ["w-usage"])
    for args, word in (([m.p("servers")], m.p("servers")), ([m.p("tasks", ok), m.p("nothing")], m.p("nothing")),
                       ([], "no task given"), (["--timeout=soon", m.p("tasks", ok)], "soon"),
                       (["--bogus", m.p("tasks", ok)], "--bogus")):
        r = dsfs_wait(*args)
        assert r.returncode == 2 and word in r.stderr and r.stdout == "", (args, r)
    assert "is not a task" in dsfs_wait(m.p("servers")).stderr
    r = dsfs_wait("--help")
    assert r.returncode == 0 and "usage: dsfs wait" in r.stdout and "--timeout=SECONDS" in r.stdout
    r = subprocess.run([dsfs_binary(), "--help"], capture_output=True, text=True, timeout=30)
    assert "dsfs wait" in r.stdout, r.stdout
    assert dsfs_wait(m.p("tasks", ok)).returncode == 0


def test_dsfs_wait_timeout_ends_what_still_runs(server_factory, dsfs_mount):
    srv = server_factory("--test-controls", "--task-seconds", "30", "--servers", "1", "--volumes", "2",
                         "--snapshots", "1")
    m = dsfs_mount(srv)
    (t,) = start_clones(m, first_volume(m), ["w-slow"])
    t0 = time.monotonic()
    r = dsfs_wait("--timeout=1", m.p("tasks", t))
    took = time.monotonic() - t0
    assert r.returncode == 1 and 0.9 < took < 10, (r, took)
    assert r.stdout == "%s TIMEDOUT: still running after 1 s (--timeout)\n" % t, r
    assert srv.login().get("/tasks/%s" % t).json()["state"] in ("INITIALIZED", "RUNNING")


def test_dsfs_wait_draws_a_progress_bar_on_a_terminal(tasks_server, dsfs_mount):
    m = dsfs_mount(tasks_server)
    ids = start_clones(m, first_volume(m), ["w-bar-1", "w-bar-2"])
    master, slave = pty.openpty()
    p = subprocess.Popen([dsfs_binary(), "wait"] + [m.p("tasks", t) for t in ids],
                         stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out, deadline = b"", time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if not r:
            if p.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(timeout=30) == 0
    text = out.decode(errors="replace")
    assert "\x1b[2A" in text, text  # the two bars are drawn over again
    for t in ids:
        assert re.search(r"%s +\[#{30}\] 100%% SUCCEEDED" % re.escape(t), text), text
        assert re.search(r"%s +\[#{0,29} *\] +\d+%% (RUNNING|INITIALIZED)" % re.escape(t), text), text


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
