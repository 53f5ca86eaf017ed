"""The reason for a failure is where the user is (docs/tree.md: The mount's own log; docs/control.md:
Waiting for a task).

The shell shows only an errno. Through real mounts against the reference server, every refusal
that has a reason puts one line naming the path and the reason into MOUNT/.dsfs/log and the
-o log= file: an HTTP 409 of rmdir, a sizeMiB edit the server refuses, a .where grammar error, a
dead server's EIO (with its URL, once however often it is asked). .dsfs/log is the owner's and
root's only; the file keeps its size bound; .dsfs/status answers on a single-API mount too. A
task's wait ends in one vocabulary in every dialect (SUCCEEDED, FAILED, CANCELLED), with the
reason of a failure in tasks/<id>/error and the log, each checked against the API's own answer.
"""

import errno
import json
import os
import re
import stat
import subprocess
import tempfile

import pytest

from conftest import MountFailed, Tail, entries, entry_name, list_all, sim_stats
from test_actions import write
from test_backupdr import Api as BdrApi, TOKEN, app_dir, credentials as bdr_credentials
from test_cloudsync import Api as CsApi, credentials as cs_credentials
from test_estate import write_estate
from test_dscc import Api as DsccApi, dscc, dscc_credentials  # noqa: F401  (dscc: a fixture)

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warning|info|debug): ")


def log_lines(m):
    """The lines of MOUNT/.dsfs/log, each checked for its time stamp, without it."""
    with open(m.p(".dsfs", "log")) as f:
        text = f.read()
    assert text.endswith("\n"), text[-200:]
    lines = text.splitlines()
    for line in lines:
        assert STAMP.match(line), line
    return [STAMP.sub(r"\1: ", line) for line in lines]


def file_lines(path):
    with open(path) as f:
        return [STAMP.sub(r"\1: ", line) for line in f.read().splitlines()]


def one_line(lines, *words):
    """The one line that holds every word."""
    found = [line for line in lines if all(w in line for w in words)]
    assert len(found) == 1, (words, found, lines[-20:])
    return found[0]


def requests(server, method):
    return [r for r in server.sim("GET", "/requests").json()["requests"] if r["method"] == method]


def read_to_error(path):
    """Everything a reader gets before the end or an error: (text, errno or 0), as cat sees it."""
    fd = os.open(path, os.O_RDONLY)
    data, err = b"", 0
    try:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError as e:
                err = e.errno
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data.decode(), err


def dscc_volume(m, api):
    """(mount dir, API URL) of the first volume of a device-type1 system."""
    systems = {s["id"] for s in api.items("/api/v1/storage-systems/device-type1")}
    srv = [e for e in entries(m.p("servers")) if json.load(open(m.p("servers", e, "system.json")))["id"] in systems][0]
    vols = m.p("servers", srv, "volumes")
    vdir = os.path.join(vols, [v for v in entries(vols) if v != "new"][0])
    vol = json.load(open(os.path.join(vdir, "volume.json")))
    sid = json.load(open(m.p("servers", srv, "system.json")))["id"]
    return vdir, "/api/v1/storage-systems/device-type1/%s/volumes/%s" % (sid, vol["id"])


def test_refusals_name_their_path_and_reason_in_the_log_and_the_log_file(dscc, dsfs_mount, tmp_path):
    logf = str(tmp_path / "logs" / "dsfs.log")
    os.makedirs(os.path.dirname(logf))
    m = dsfs_mount(dscc, "api=dscc", "allow_delete", "allow_edit", "log=" + logf, ttl=60,
                   credentials=dscc_credentials(tmp_path, dscc))
    assert stat.S_IMODE(os.stat(logf).st_mode) == 0o600
    api = DsccApi(dscc)
    vdir, url = dscc_volume(m, api)
    rel = vdir[len(m.path):]

    # rmdir of an exported volume: the server's 409 and its message
    group = entries(m.p("hostgroups"))[0]
    assert write(os.path.join(vdir, "action"), "export hostGroupIds=%s\n" % group) == 0
    assert read_to_error(m.p("tasks", "latest", "wait")) == ("SUCCEEDED\n", 0)
    dscc.sim("DELETE", "/requests")
    with pytest.raises(OSError) as e:
        os.rmdir(vdir)
    assert e.value.errno == errno.EEXIST
    sent = requests(dscc, "DELETE")
    assert len(sent) == 1 and sent[0]["path"].startswith(url) and sent[0]["status"] == 409, sent
    assert api.get(url)["id"]  # still there
    line = one_line(log_lines(m), "rmdir %s:" % rel, "HTTP 409")
    assert "is exported to 1 host group(s); un-export it first" in line and "(File exists)" in line, line
    assert line in file_lines(logf)

    # an edit the server refuses (volumes only grow), sent once, its reason logged
    size = api.get(url)["sizeMiB"]
    dscc.sim("DELETE", "/requests")
    r = subprocess.run(["sed", "-i", r's/"sizeMiB": [0-9]*/"sizeMiB": 1/', os.path.join(vdir, "volume.json")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Invalid argument" in r.stderr, r
    sent = requests(dscc, "PUT")
    assert len(sent) == 1 and sent[0]["body"] == {"sizeMib": 1} and sent[0]["status"] == 400, sent
    assert api.get(url)["sizeMiB"] == size
    line = one_line(log_lines(m), "edit %s/volume.json:" % rel, "HTTP 400")
    assert "volumes only grow" in line and "(Invalid argument)" in line, line
    assert line in file_lines(logf)

    # a .where grammar error: EINVAL, and the grammar in the log with the whole path
    coll = os.path.dirname(vdir)
    r = subprocess.run(["ls", os.path.join(coll, ".where", "bogus")], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Invalid argument" in r.stderr, r
    line = one_line(log_lines(m), "%s/.where/bogus:" % coll[len(m.path):])
    assert "not a condition" in line and "(Invalid argument)" in line, line
    assert line in file_lines(logf)

    # a local refusal: a file that is not an editor's cannot be removed
    with pytest.raises(OSError) as e:
        os.unlink(os.path.join(vdir, "volume.json"))
    assert e.value.errno == errno.EPERM
    line = one_line(log_lines(m), "unlink %s/volume.json: refused:" % rel)
    assert line in file_lines(logf)
    # nothing secret in either
    for text in ("\n".join(log_lines(m)), open(logf).read()):
        assert "dsfs-demo-secret" not in text and "Bearer" not in text and "client_secret" not in text


def test_a_dead_servers_eio_logs_its_url_once_and_status_says_so(server_factory, dsfs_mount, tmp_path):
    server = server_factory("--test-controls")
    logf = str(tmp_path / "dsfs.log")
    m = dsfs_mount(server, "timeout=3", "log=" + logf, ttl=0)
    srv = entries(m.p("servers"))[0]
    status = open(m.p(".dsfs", "status")).read()
    assert status == "- %s reachable logged-in\n" % server.url, status
    assert sorted(os.listdir(m.p(".dsfs"))) == ["log", "stats", "status"]
    server.stop()
    vols = m.p("servers", srv, "volumes")
    for _ in range(3):  # a script that asks again and again
        with pytest.raises(OSError) as e:
            os.listdir(vols)
        assert e.value.errno == errno.EIO
        with pytest.raises(OSError) as e:
            open(m.p("info.json")).read()
        assert e.value.errno == errno.EIO
        with pytest.raises(OSError) as e:
            os.statvfs(vols)
        assert e.value.errno == errno.EIO
    lines = log_lines(m)
    dead = [line for line in lines if server.url in line]
    assert dead and all("onnect" in line and "(Input/output error)" in line for line in dead), dead
    one_line(dead, " /info.json: ")  # the path, the URL and curl's reason, once however often it was asked
    assert any(" /servers/%s" % srv in line for line in dead), dead
    assert len(dead) == len(set(dead)) and len(dead) <= 4, dead  # no line twice: 9 failures, few lines
    assert set(dead) <= set(file_lines(logf))
    status = open(m.p(".dsfs", "status")).read()
    assert status.startswith("- %s unreachable logged-in last-error=" % server.url), status
    assert status.count("\n") == 1 and "onnect" in status, status


def test_a_log_file_that_cannot_be_kept_refuses_the_mount(server, dsfs_mount, tmp_path, monkeypatch):
    server.sim("POST", "/stats/reset")
    bad = str(tmp_path / "no-such-dir" / "dsfs.log")
    with pytest.raises(MountFailed) as e:
        dsfs_mount(server, "log=" + bad)
    assert e.value.status == 1 and "-o log=%s: cannot append to it: No such file or directory" % bad in e.value.output
    assert e.value.output.count("\n") == 1, e.value.output  # one line
    assert server.sim("GET", "/stats").json()["total"] == 0  # nothing sent, not even a login
    monkeypatch.chdir(str(tmp_path))  # a relative path is taken from where dsfs was started
    m = dsfs_mount(server, "log=relative.log")
    os.listdir(m.p("servers"))
    assert stat.S_IMODE(os.stat(str(tmp_path / "relative.log")).st_mode) == 0o600


def test_an_estates_log_names_the_member(server_factory, dsfs_mount, tmp_path):
    a = server_factory("--test-controls", "--volumes", "3")
    b = server_factory("--test-controls", "--volumes", "3")
    sp = {"username": "admin", "password": "admin"}
    conf = write_estate(tmp_path, [("a1", dict(sp, url=a.url)), ("b1", dict(sp, url=b.url))])
    m = dsfs_mount(a, "estate=" + conf, "timeout=3", ttl=0, estate=True)
    assert sorted(os.listdir(m.p(".dsfs"))) == ["log", "status"]
    srv = entries(m.p("a1", "servers"))[0]
    vol = [v for v in entries(m.p("a1", "servers", srv, "volumes")) if v != "new"][0]
    with pytest.raises(OSError) as e:
        os.rmdir(m.p("a1", "servers", srv, "volumes", vol))
    assert e.value.errno == errno.EPERM
    one_line(log_lines(m), "a1: rmdir /servers/%s/volumes/%s: refused: deleting needs the mount option "
             "allow_delete" % (srv, vol))
    b.stop()
    with pytest.raises(OSError) as e:
        os.listdir(m.p("b1", "servers"))
    assert e.value.errno == errno.EIO
    line = one_line(log_lines(m), "b1: ", b.url)
    assert "onnect" in line, line
    status = open(m.p(".dsfs", "status")).read().splitlines()
    assert status[0].startswith("a1 %s reachable" % a.url) and status[1].startswith("b1 %s unreachable" % b.url)


def test_dsfs_log_is_its_owners_and_roots_only(server, dsfs_mount):
    base = tempfile.mkdtemp(prefix="dsfs-log-", dir="/tmp")
    os.chmod(base, 0o755)
    # -o uid: every file shows as nobody's, so the kernel lets nobody in: dsfs's own check refuses
    m = dsfs_mount(server, "allow_other", "uid=65534", base=base)
    os.chmod(m.tmp, 0o755)
    st = os.stat(m.p(".dsfs", "log"))
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 65534

    def as_nobody(path):
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", path],
                              capture_output=True, text=True, timeout=30)

    r = as_nobody(m.p(".dsfs", "log"))
    assert r.returncode != 0 and "Permission denied" in r.stderr and r.stdout == "", r
    assert as_nobody(m.p("info.json")).returncode == 0  # the mount lets nobody in
    assert as_nobody(m.p(".dsfs", "status")).stdout.startswith("- %s reachable" % server.url)
    lines = log_lines(m)  # root reads it, and finds the refusal
    one_line(lines, "open /.dsfs/log: refused to uid 65534")
    # a plain mount: 0600 and the mount's owner's, so the kernel refuses nobody already
    m2 = dsfs_mount(server, "allow_other", base=base)
    os.chmod(m2.tmp, 0o755)
    st = os.stat(m2.p(".dsfs", "log"))
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    r = as_nobody(m2.p(".dsfs", "log"))
    assert r.returncode != 0 and "Permission denied" in r.stderr, r


def test_the_log_file_and_dsfs_log_stay_bounded(server, dsfs_mount, tmp_path):
    logf = str(tmp_path / "dsfs.log")
    m = dsfs_mount(server, "log=" + logf, "log_size=0.05")  # 52 KiB
    bound = int(0.05 * 1024 * 1024)
    c = server.login()
    srv = c.get("/server").json()["servers"][0]
    vol = list_all(c, "/server/%s/volume" % srv["id"], "volumes")[0]
    action = m.p("servers", entry_name(srv["name"], srv["id"]), "volumes", entry_name(vol["name"], vol["id"]),
                 "action")
    server.sim("POST", "/stats/reset")
    n = 1500
    for i in range(n):  # distinct refusals, each one line, nothing sent
        assert write(action, "bogus-verb-%d\n" % i) == errno.EINVAL
    assert not [k for k in sim_stats(server) if k.startswith("POST ")], sim_stats(server)
    size, old = os.path.getsize(logf), os.path.getsize(logf + ".1")
    assert 0 < size <= bound and bound - 1000 < old <= bound, (size, old)
    assert stat.S_IMODE(os.stat(logf).st_mode) == 0o600
    last = file_lines(logf)[-1]
    assert "unknown verb 'bogus-verb-%d'" % (n - 1) in last, last
    lines = log_lines(m)
    assert lines[-1] == last
    assert len(lines) <= 1000 and len(open(m.p(".dsfs", "log")).read()) <= 256 * 1024
    assert not any("bogus-verb-0'" in line for line in lines)  # the oldest went first
    # its size counts every byte logged: a reader's offset stays put as old lines go, and tail -f follows
    assert os.stat(m.p(".dsfs", "log")).st_size > 256 * 1024
    with Tail(m.p(".dsfs", "log"), "-n", "1") as t:
        assert t.wait_until(lambda text: "'bogus-verb-%d'" % (n - 1) in text, 10), t.read()
        assert write(action, "after-the-tail\n") == errno.EINVAL
        assert t.wait_until(lambda text: "unknown verb 'after-the-tail'" in text, 10), t.read()
        assert len(t.lines()) == 2, t.lines()


# ---- one vocabulary for how tasks end, in every dialect --------------------------------------


def latest(m, tasks):
    """The id of the task tasks/latest names."""
    return os.readlink(m.p(tasks, "latest")).rstrip("/").split("/")[-1]


class Dialect:
    """A mount of one dialect, where a command starts a task that succeeds or fails (command(fail, k):
    (control file, line)), and the API's view of a task (api_task(id): (state, reason))."""

    def __init__(self, m, tasks, command, api_task):
        self.m, self.tasks, self.command, self.api_task = m, tasks, command, api_task
        self.k = 0

    def start(self, fail):
        self.k += 1
        path, line = self.command(fail, self.k)
        assert write(path, line) == 0
        return latest(self.m, self.tasks)


def storageplugin(server_factory, dsfs_mount, tmp_path):
    server = server_factory("--test-controls", "--task-seconds", "0.5")
    m = dsfs_mount(server, ttl=0.5)
    c = server.login()
    srv = c.get("/server").json()["servers"][0]
    vol = list_all(c, "/server/%s/volume" % srv["id"], "volumes")[0]
    action = m.p("servers", entry_name(srv["name"], srv["id"]), "volumes", entry_name(vol["name"], vol["id"]),
                 "action")

    def api_task(tid):
        t = c.get("/tasks/" + tid).json()
        return t["state"], t["error"]

    return Dialect(m, "tasks", lambda fail, k: (action, "clone name=%s-%d\n" % ("fail-vocab" if fail else "vocab", k)),
                   api_task)


def dscc_dialect(server_factory, dsfs_mount, tmp_path):
    server = server_factory("--dialect", "dscc", "--test-controls", "--task-seconds", "0.5", "--volumes", "2",
                            "--snapshots", "1", "--hosts", "2")
    m = dsfs_mount(server, "api=dscc", ttl=0.5, credentials=dscc_credentials(tmp_path, server))
    api = DsccApi(server)
    vdir, _ = dscc_volume(m, api)

    def api_task(tid):
        t = api.get("/api/v1/tasks/" + tid)
        return t["state"], t["error"]["error"] if t["error"] else None

    new = os.path.join(vdir, "snapshots", "new")
    return Dialect(m, "tasks", lambda fail, k: (new, "%s-%d\n" % ("fail-vocab" if fail else "vocab", k)), api_task)


def backupdr(server_factory, dsfs_mount, tmp_path):
    server = server_factory("--dialect", "backupdr", "--test-controls", "--task-seconds", "0.5", "--servers", "1",
                            "--volumes", "3", "--snapshots", "1", "--hosts", "2")
    m = dsfs_mount(server, "api=backupdr", ttl=60, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    api = BdrApi(server)
    good = app_dir(m, api)[1]
    bad = app_dir(m, api, pick=lambda a: a["appname"].startswith("fail-"))[1]
    policy = api.items("/slt")[0]["policies"][0]["id"]

    def api_task(jid):
        j = api.job(jid)
        return j["status"], j["message"] if j["status"] != "succeeded" else None

    return Dialect(m, "jobs", lambda fail, k: (os.path.join(bad if fail else good, "backups", "new"),
                                               "policy.id=%s\n" % policy), api_task)


def cloudsync(server_factory, dsfs_mount, tmp_path):
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--task-seconds", "1", "--servers", "2",
                            "--volumes", "2", "--heartbeat-seconds", "0")
    m = dsfs_mount(server, "api=cloudsync", ttl=0.2, credentials=cs_credentials(tmp_path, server))
    api = CsApi(server)
    rels = api.get("/relationships-v2")
    good = [r for r in rels if "fail-" not in json.dumps(r["source"])][0]["relationshipId"]
    bad = [r for r in rels if "fail-" in json.dumps(r["source"])][0]["relationshipId"]

    def api_task(rel):
        a = api.get("/relationships-v2/" + rel)["activity"]
        return a["status"], a["failureMessage"]

    d = Dialect(m, "tasks", lambda fail, k: (m.p("relationships", bad if fail else good, "action"), "sync\n"),
                api_task)
    d.good = good
    return d


def greenlake(server_factory, dsfs_mount, tmp_path):
    from test_greenlake import VZ, Api as GlApi, gl_credentials
    from tree_model import assign_entries

    server = server_factory("--dialect", "greenlake", "--test-controls", "--task-seconds", "0.5", "--servers", "1",
                            "--volumes", "2", "--snapshots", "1", "--hosts", "1")
    m = dsfs_mount(server, "api=greenlake", ttl=0.5, credentials=gl_credentials(tmp_path, server))
    api = GlApi(server)
    vms = api.items(VZ + "/virtual-machines")
    names = dict(zip((v["name"] for v in vms), assign_entries(vms)))
    good = next(n for n in names if not n.startswith("fail-"))
    bad = next(n for n in names if n.startswith("fail-"))

    def api_task(op_id):
        o = api.op(op_id)
        return o["state"], o["error"]["error"] if o["error"] else None

    return Dialect(m, "tasks", lambda fail, k: (m.p("virtualization", "virtual-machines", names[bad if fail else good],
                                                    "action"), "refresh\n"), api_task)


SETUPS = {"storageplugin": storageplugin, "dscc": dscc_dialect, "backupdr": backupdr, "cloudsync": cloudsync,
          "greenlake": greenlake}
SUCCEEDED = {"storageplugin": "SUCCEEDED", "dscc": "SUCCEEDED", "backupdr": "succeeded", "cloudsync": "DONE",
             "greenlake": "SUCCEEDED"}
FAILED = {"storageplugin": "FAILED", "dscc": "FAILED", "backupdr": "failed", "cloudsync": "FAILED",
          "greenlake": "FAILED"}


@pytest.mark.parametrize("dialect", sorted(SETUPS))
def test_wait_ends_in_one_vocabulary_and_error_holds_the_reason(dialect, server_factory, dsfs_mount, tmp_path):
    d = SETUPS[dialect](server_factory, dsfs_mount, tmp_path)
    m = d.m

    tid = d.start(fail=False)
    assert read_to_error(m.p(d.tasks, tid, "wait")) == ("SUCCEEDED\n", 0)
    assert d.api_task(tid)[0] == SUCCEEDED[dialect]  # what the API calls it
    assert open(m.p(d.tasks, tid, "error")).read() == ""
    assert "error" in os.listdir(m.p(d.tasks, tid))

    tid = d.start(fail=True)
    text, err = read_to_error(m.p(d.tasks, tid, "wait"))
    state, reason = d.api_task(tid)
    assert state == FAILED[dialect] and reason, (state, reason)
    assert (text, err) == ("FAILED: %s\n" % reason, errno.EIO)
    r = subprocess.run(["cat", m.p(d.tasks, tid, "wait")], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and r.stdout == text and "Input/output error" in r.stderr, r  # the line, then EIO
    assert open(m.p(d.tasks, tid, "error")).read() == reason + "\n"
    assert open(m.p(d.tasks, tid, "state")).read() == state + "\n"  # the API's own word stays there
    one_line(log_lines(m), "ended %s (FAILED): %s" % (state, reason))


def test_an_aborted_sync_is_cancelled(server_factory, dsfs_mount, tmp_path):
    d = cloudsync(server_factory, dsfs_mount, tmp_path)
    m = d.m
    assert write(m.p("relationships", d.good, "action"), "sync\n") == 0
    assert write(m.p("relationships", d.good, "action"), "abort\n") == 0
    text, err = read_to_error(m.p("tasks", d.good, "wait"))
    state, reason = d.api_task(d.good)
    assert state == "ABORTED" and reason, (state, reason)
    assert (text, err) == ("CANCELLED: %s\n" % reason, errno.EIO)
    assert open(m.p("tasks", d.good, "error")).read() == reason + "\n"
    one_line(log_lines(m), "ended ABORTED (CANCELLED): %s" % reason)


def test_a_wait_past_wait_timeout_ends_timedout(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--task-seconds", "30")
    m = dsfs_mount(server, "wait_timeout=1")
    c = server.login()
    srv = c.get("/server").json()["servers"][0]
    vol = list_all(c, "/server/%s/volume" % srv["id"], "volumes")[0]
    action = m.p("servers", entry_name(srv["name"], srv["id"]), "volumes", entry_name(vol["name"], vol["id"]),
                 "action")
    assert write(action, "clone name=slow-clone\n") == 0
    tid = latest(m, "tasks")
    text, err = read_to_error(m.p("tasks", tid, "wait"))
    assert err == errno.ETIMEDOUT and text.startswith("TIMEDOUT: wait_timeout passed"), (text, err)
    assert c.get("/tasks/" + tid).json()["state"] in ("INITIALIZED", "RUNNING")  # the task runs on
    assert open(m.p("tasks", tid, "error")).read() == ""
