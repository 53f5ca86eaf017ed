"""The Backup and DR dialect (issue 17) through a real mount against the
reference server's --dialect backupdr mode: the tree equals the API (hostile
names included), lists page with offset and limit, back-up-now, mount and
expire go through jobs found in /jobstatus, failed jobs fail the wait,
sessions that end are renewed invisibly with no action sent twice, and the
three ways of logging in (a bearer token, a service account's key, HTTP
Basic) work; an estate mixes all three dialects.
"""

import errno
import json
import os
import subprocess
import time

import pytest

from conftest import MountFailed, entries, reset_stats, sim_stats
from test_actions import result, write
from test_estate import write_estate
from tree_model import assign_entries

from refserver_fixture import Client

TOKEN = "dsfs-demo-token"
KINDS = {  # directory: (API list, object file, name field)
    "appliances": ("/cluster", "appliance.json", "name"),
    "hosts": ("/host", "host.json", "name"),
    "applications": ("/application", "application.json", "appname"),
    "diskpools": ("/diskpool", "diskpool.json", "name"),
    "templates": ("/slt", "template.json", "name"),
    "profiles": ("/slp", "profile.json", "name"),
    "slas": ("/sla", "sla.json", "id"),
}


def credentials(tmp, text):
    path = os.path.join(str(tmp), "bdr-cred")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class Api:
    """A Backup and DR client as the management console API documents it: bearer token, session header, offset/limit paging."""

    def __init__(self, server):
        self.c = Client(server.url)
        r = self.c.request("POST", "/session", None, session=False,
                           headers={"Authorization": "Bearer " + TOKEN})
        assert r.status == 200, (r.status, r.body)
        self.headers = {"Authorization": "Bearer " + TOKEN,
                        "backupdr-management-session": "Actifio " + r.json()["session_id"]}

    def get(self, path):
        r = self.c.request("GET", path, None, session=False, headers=self.headers)
        assert r.status == 200, (path, r.status, r.body)
        return r.json()

    def job(self, jid):
        """One job, read through the list as the published API reads it (there is no GET /jobstatus/{id})."""
        found = [j for j in self.get("/jobstatus?filter=id:%%3D%s" % jid)["items"] if j["id"] == jid]
        assert len(found) == 1, (jid, found)
        return found[0]

    def items(self, path):
        out = []
        while True:
            page = self.get("%s%soffset=%d&limit=100" % (path, "&" if "?" in path else "?", len(out)))
            out += page["items"]
            if not page["items"]:
                return out


def named(objs, field):
    """Objects as the naming rule sees them: their name field as "name"."""
    return [{"name": o.get(field) if isinstance(o.get(field), str) else "", "id": o["id"]} for o in objs]


@pytest.fixture
def bdr(server_factory):
    return server_factory("--dialect", "backupdr", "--test-controls", "--task-seconds", "0.5",
                          "--servers", "1", "--volumes", "4", "--snapshots", "2", "--hosts", "3")


@pytest.fixture
def mount_bdr(dsfs_mount, tmp_path):
    def mount(server, *opts, ttl=60, cred=None, **kw):
        path = credentials(tmp_path, cred or "token=%s\n" % TOKEN)
        return dsfs_mount(server, "api=backupdr", *opts, ttl=ttl, credentials=path, **kw)
    return mount


def app_dir(m, api, pick=lambda a: not a["appname"].startswith("fail-")):
    apps = api.items("/application")
    names = assign_entries(named(apps, "appname"))
    for app, name in zip(apps, names):
        if pick(app):
            return app, m.p("applications", name)
    raise AssertionError("no such application")


def posts(server, path_part):
    reqs = server.sim("GET", "/requests").json()["requests"]
    return [r for r in reqs if r["method"] == "POST" and path_part in r["path"]]


def check_tree(m, api):
    assert sorted(os.listdir(m.path)) == sorted(list(KINDS) + ["jobs"])
    for d, (path, objfile, field) in KINDS.items():
        objs = api.items(path)
        names = assign_entries(named(objs, field))
        assert set(os.listdir(m.p(d))) == set(names), d
        assert os.path.isdir(m.p(d, ".by-id")), d  # reachable, not listed
        for obj, name in zip(objs, names):
            with open(m.p(d, name, objfile)) as f:
                assert json.load(f) == obj, (d, name)
    apps = api.items("/application")
    for app, name in zip(apps, assign_entries(named(apps, "appname"))):
        backups = api.items("/backup?filter=appid:%%3D%s" % app["id"])
        bnames = assign_entries(named(backups, "backupname"))
        assert set(os.listdir(m.p("applications", name, "backups"))) == set(bnames) | {"new"}
        for b, bname in zip(backups, bnames):
            with open(m.p("applications", name, "backups", bname, "backup.json")) as f:
                assert json.load(f) == b


def test_tree_equals_the_api(bdr, mount_bdr):
    check_tree(mount_bdr(bdr), Api(bdr))


def test_hostile_names_equal_the_api(server_factory, mount_bdr):
    server = server_factory("--dialect", "backupdr", "--test-controls", "--hostile-names", "--servers", "1",
                            "--volumes", "3", "--snapshots", "1", "--hosts", "2")
    m = mount_bdr(server)
    check_tree(m, Api(server))
    subprocess.run(["find", m.path, "-name", "*.json", "-exec", "cat", "{}", "+"], check=True,
                   stdout=subprocess.DEVNULL)


def test_lists_page_with_offset_and_limit(server_factory, mount_bdr):
    server = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "2", "--volumes", "6",
                            "--page-max", "5")
    m = mount_bdr(server, "page_size=5")
    want = len(Api(server).items("/application"))
    reset_stats(server)
    apps = entries(m.p("applications"))
    assert len(apps) == want >= 12
    st = sim_stats(server)
    # 13 applications in pages of 5: 5, 5, 3 (the short page ends the list)
    assert st.get("GET /actifio/application") == 3, st
    reset_stats(server)
    subprocess.run(["ls", "-l", m.p("applications")], check=True, stdout=subprocess.DEVNULL)
    assert sim_stats(server).get("total", 0) == 0  # listed once, every attribute with it


def test_jobs_are_read_through_the_list_and_ids_sent_as_strings(bdr, mount_bdr):
    """The published API (V11.0.4) has no GET /jobstatus/{id} (the
    server answers 404 there, as the console does): a job's files and its wait read
    it through the list. Its ids are strings: policy.id=4006 is sent as "4006"."""
    m = mount_bdr(bdr)
    api = Api(bdr)
    app, adir = app_dir(m, api)
    policy = api.items("/slt")[0]["policies"][0]["id"]
    assert policy.isdigit()  # an id spelled as a number: the case that was sent as one
    bdr.sim("DELETE", "/requests")
    reset_stats(bdr)
    assert write(os.path.join(adir, "backups", "new"), "policy.id=%s\n" % policy) == 0
    sent = posts(bdr, "/application/%s/backup" % app["id"])
    assert len(sent) == 1 and sent[0]["body"] == {"policy": {"id": policy}}, sent
    job = os.readlink(m.p("jobs", "latest"))
    assert open(m.p("jobs", "latest", "wait")).read().strip() == "SUCCEEDED"
    assert open(m.p("jobs", job, "state")).read() == "succeeded\n"
    with open(m.p("jobs", job, "job.json")) as f:
        assert json.load(f) == api.job(job)
    st = sim_stats(bdr)
    assert not any(k.endswith("<unknown>") for k in st), st  # nothing the API does not have
    assert st.get("GET /actifio/jobstatus", 0) >= 2, st


def test_back_up_now_mount_and_expire_through_jobs(bdr, mount_bdr):
    m = mount_bdr(bdr, "allow_delete")
    api = Api(bdr)
    app, adir = app_dir(m, api)
    policy = api.items("/slt")[0]["policies"][0]["id"]
    before = {b["id"] for b in api.items("/backup?filter=appid:%%3D%s" % app["id"])}
    bdr.sim("DELETE", "/requests")
    assert write(os.path.join(adir, "backups", "new"), "label=nightly policy.id=%s\n" % policy) == 0
    job = os.readlink(m.p("jobs", "latest"))
    assert api.job(job)["jobclass"] == "snapshot"
    assert api.job(job)["appid"] == app["id"]
    assert open(m.p("jobs", "latest", "wait")).read().strip() == "SUCCEEDED"
    assert open(m.p("jobs", job, "state")).read() == "succeeded\n"
    assert open(m.p("jobs", job, "progress")).read() == "100\n"
    sent = posts(bdr, "/application/%s/backup" % app["id"])
    assert len(sent) == 1 and sent[0]["body"]["label"] == "nightly", sent
    after = api.items("/backup?filter=appid:%%3D%s" % app["id"])
    new = [b for b in after if b["id"] not in before]
    assert len(new) == 1
    bnames = entries(os.path.join(adir, "backups"))
    assert new[0]["backupname"] in bnames

    # mount it on a host named by its entry in hosts/
    host = api.items("/host")[0]
    bdir = os.path.join(adir, "backups", new[0]["backupname"])
    assert write(os.path.join(bdir, "action"), "mount host.id=%s\n" % host["name"]) == 0
    assert result(os.path.join(bdir, "action"))["status"] == 204
    assert open(m.p("jobs", "latest", "wait")).read().strip() == "SUCCEEDED"
    sent = posts(bdr, "/backup/%s/mount" % new[0]["id"])
    assert len(sent) == 1 and str(sent[0]["body"]["host"]["id"]) == host["id"], sent
    assert api.get("/backup/" + new[0]["id"])["ismounted"] is True

    # unmount, restore and clone it, each through its own job
    for line, jobclass in (("unmount", "unmount"), ("restore", "restore"),
                           ("clone appname=clone-of-%s host.id=%s" % (app["appname"], host["name"]), "clone")):
        assert write(os.path.join(bdir, "action"), line + "\n") == 0, line
        job = os.readlink(m.p("jobs", "latest"))
        assert api.job(job)["jobclass"] == jobclass
        assert open(m.p("jobs", job, "wait")).read().strip() == "SUCCEEDED"
    assert api.get("/backup/" + new[0]["id"])["ismounted"] is False
    assert "clone-of-" + app["appname"] in [a["appname"] for a in api.items("/application")]
    assert "clone-of-" + app["appname"] in entries(m.p("applications"))
    for verb in ("unmount", "restore", "clone"):
        assert len(posts(bdr, "/backup/%s/%s" % (new[0]["id"], verb))) == 1, verb

    # expire another one: its job ends, and it is gone from the API and the tree
    old = sorted(before)[0]
    oname = [b for b in api.items("/backup?filter=appid:%%3D%s" % app["id"]) if b["id"] == old][0]["backupname"]
    assert write(os.path.join(adir, "backups", oname, "action"), "expire\n") == 0
    assert api.job(os.readlink(m.p("jobs", "latest")))["jobclass"] == "expiration"
    assert open(m.p("jobs", "latest", "wait")).read().strip() == "SUCCEEDED"
    assert old not in {b["id"] for b in api.items("/backup?filter=appid:%%3D%s" % app["id"])}
    assert oname not in entries(os.path.join(adir, "backups"))


def test_failed_job_fails_the_wait_with_its_message(bdr, mount_bdr):
    m = mount_bdr(bdr)
    api = Api(bdr)
    _, adir = app_dir(m, api, pick=lambda a: a["appname"].startswith("fail-"))
    policy = api.items("/slt")[0]["policies"][0]["id"]
    assert write(os.path.join(adir, "backups", "new"), "label=doomed policy.id=%s\n" % policy) == 0
    r = subprocess.run(["cat", m.p("jobs", "latest", "wait")], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Input/output error" in r.stderr
    assert open(m.p("jobs", "latest", "state")).read() == "failed\n"
    assert "fail-" in open(m.p("jobs", "latest", "log")).read()
    assert "fail-" in m.log_text()


def test_refusals_carry_the_servers_message_and_errno(bdr, mount_bdr):
    m = mount_bdr(bdr)
    api = Api(bdr)
    _, adir = app_dir(m, api)
    new = os.path.join(adir, "backups", "new")
    bdr.sim("DELETE", "/requests")
    assert write(new, "label=no-policy\n") == errno.EINVAL  # refused before sending
    assert posts(bdr, "/backup") == []
    assert write(new, "label=x policy.id=999999\n") == errno.ENOENT
    res = result(new)
    assert res["status"] == 404 and "999999" in res["error"], res
    assert "999999" in m.log_text()


def test_session_end_mid_walk_and_mid_action_is_invisible(server_factory, mount_bdr):
    server = server_factory("--dialect", "backupdr", "--test-controls", "--task-seconds", "0.3",
                            "--servers", "1", "--volumes", "3", "--snapshots", "1")
    m = mount_bdr(server, ttl=0.2)
    logins = sim_stats(server).get("POST /actifio/session", 0)
    for _ in range(3):
        time.sleep(0.3)  # past cache_ttl: the walk asks the server again
        server.sim("POST", "/sessions/expire")
        subprocess.run(["find", m.path, "-name", "*.json", "-exec", "cat", "{}", "+"], check=True,
                       stdout=subprocess.DEVNULL)
    assert sim_stats(server).get("POST /actifio/session", 0) == logins + 3  # one login per expiry
    api = Api(server)
    app, adir = app_dir(m, api)
    policy = api.items("/slt")[0]["policies"][0]["id"]
    server.sim("DELETE", "/requests")
    server.sim("POST", "/sessions/expire")
    api = Api(server)
    assert write(os.path.join(adir, "backups", "new"), "label=after-expiry policy.id=%s\n" % policy) == 0
    sent = posts(server, "/application/%s/backup" % app["id"])
    assert [r["status"] for r in sent] == [401, 204], sent  # refused unseen, then sent once
    assert open(m.p("jobs", "latest", "wait")).read().strip() == "SUCCEEDED"


def test_503_is_retried_a_dropped_post_sent_once_and_a_garbled_list_is_eio(bdr, mount_bdr):
    m = mount_bdr(bdr, ttl=0)
    api = Api(bdr)
    assert entries(m.p("hosts"))
    reset_stats(bdr)
    r = bdr.sim("POST", "/faults", {"method": "GET", "path": "/actifio/host", "count": 2, "status": 503,
                                    "retry_after": 0})
    assert r.status == 201, r.body
    assert entries(m.p("hosts"))  # two 503s, then the answer
    assert sim_stats(bdr)["GET /actifio/host"] >= 3
    app, adir = app_dir(m, api)
    policy = api.items("/slt")[0]["policies"][0]["id"]
    bdr.sim("DELETE", "/requests")
    bdr.sim("POST", "/faults", {"method": "POST", "path": "/actifio/application/%s/backup" % app["id"],
                                "count": 1, "drop": True})
    assert write(os.path.join(adir, "backups", "new"), "policy.id=%s\n" % policy) == errno.EIO
    assert len(posts(bdr, "/application/%s/backup" % app["id"])) == 1
    bdr.sim("POST", "/faults", {"method": "GET", "path": "/actifio/diskpool", "count": 1,
                                "body": '{"itemz": []}'})
    with pytest.raises(OSError) as e:
        os.listdir(m.p("diskpools"))
    assert e.value.errno == errno.EIO and 'no "items" list' in m.log_text()
    assert entries(m.p("diskpools"))


def test_a_service_account_token_that_runs_out_is_renewed_unseen(server_factory, mount_bdr, tmp_path):
    key = str(tmp_path / "sa.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                   check=True, capture_output=True)
    email = "dsfs-renew@example.iam.gserviceaccount.com"
    server = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "1", "--volumes", "2",
                            "--sa-public-key", key, "--sa-email", email, "--token-ttl", "2")
    keyfile = str(tmp_path / "sa.json")
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"type": "service_account", "client_email": email, "private_key": open(key).read(),
                   "token_uri": server.root + "/token"}, f)
    m = mount_bdr(server, cred="key_file=%s\n" % keyfile, ttl=0.2)
    t_end = time.time() + 5
    while time.time() < t_end:
        subprocess.run(["find", m.path, "-name", "*.json", "-exec", "cat", "{}", "+"], check=True,
                       stdout=subprocess.DEVNULL)
    st = sim_stats(server)
    assert st.get("POST /token", 0) >= 3, st  # renewed as it ran out, never in the user's way
    assert "error" not in m.log_text().lower(), m.log_text()


def test_service_account_key_is_signed_into_a_token(server_factory, mount_bdr, tmp_path):
    key = str(tmp_path / "sa.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                   check=True, capture_output=True)
    email = "dsfs-test@example.iam.gserviceaccount.com"
    server = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "1", "--volumes", "2",
                            "--sa-public-key", key, "--sa-email", email)
    keyfile = str(tmp_path / "sa.json")
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"type": "service_account", "client_email": email, "private_key": open(key).read(),
                   "token_uri": server.root + "/token"}, f)
    m = mount_bdr(server, cred="key_file=%s\n" % keyfile)
    assert entries(m.p("applications"))
    st = sim_stats(server)
    assert st.get("POST /token") == 1 and st.get("POST /actifio/session") == 1, st

    # a key the server does not know is refused before mounting, naming the endpoint's reason
    other = str(tmp_path / "other.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", other],
                   check=True, capture_output=True)
    with open(keyfile, "w") as f:
        json.dump({"type": "service_account", "client_email": email, "private_key": open(other).read(),
                   "token_uri": server.root + "/token"}, f)
    with pytest.raises(MountFailed) as e:
        mount_bdr(server, cred="key_file=%s\n" % keyfile)
    assert "Invalid JWT Signature" in e.value.output and "PRIVATE KEY" not in e.value.output


def test_a_key_file_over_1_mib_is_called_too_large(bdr, mount_bdr, tmp_path):
    """A key file past the 1 MiB bound is refused as too large, not
    as "not a service account's JSON key" (it may well be one, padded)."""
    keyfile = str(tmp_path / "big.json")
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"type": "service_account", "client_email": "a@example.iam.gserviceaccount.com",
                   "private_key": "x", "padding": "p" * (2 << 20)}, f)
    with pytest.raises(MountFailed) as e:
        mount_bdr(bdr, cred="key_file=%s\n" % keyfile)
    assert "too large" in e.value.output and keyfile in e.value.output, e.value.output
    assert "not a service account's JSON key" not in e.value.output


def test_basic_login_on_premises_and_a_bad_token_refused(bdr, mount_bdr):
    m = mount_bdr(bdr, cred="username=admin\npassword=admin\n")
    assert entries(m.p("hosts"))
    with pytest.raises(MountFailed) as e:
        mount_bdr(bdr, cred="token=not-a-token-Xq\n")
    assert "401" in e.value.output and "not-a-token-Xq" not in e.value.output
    with pytest.raises(MountFailed) as e:
        mount_bdr(bdr, cred="client_id=x\nclient_secret=y\n")
    assert "backupdr dialect's keys" in e.value.output


def test_an_estate_of_all_four_dialects(server_factory, dsfs_mount, tmp_path):
    sp = server_factory("--test-controls", "--volumes", "3", "--snapshots", "1", "--task-seconds", "0.3")
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "2", "--snapshots", "1")
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "1", "--volumes", "2",
                         "--task-seconds", "0.3")
    cs = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "1", "--volumes", "1",
                        "--heartbeat-seconds", "0")
    path = write_estate(tmp_path, [
        ("array", {"url": sp.url, "username": "admin", "password": "admin"}),
        ("console", {"url": dscc.url, "api": "dscc", "client_id": "dsfs-demo",
                     "client_secret": "dsfs-demo-secret", "token_url": dscc.root + "/oauth2/token"}),
        ("backup", {"url": bdr.url, "token": TOKEN}),  # recognised from the URL's /actifio
        ("sync", {"url": cs.url, "api": "cloudsync", "refresh_token": "dsfs-demo-refresh-token",
                  "client_id": "dsfs-demo", "token_url": cs.root + "/oauth/token"}),
    ])
    m = dsfs_mount(sp, "estate=" + path, estate=True)
    assert sorted(entries(m.path)) == ["array", "backup", "console", "sync", "tasks"]
    assert entries(m.p("sync", "relationships"))
    assert "applications" in os.listdir(m.p("backup")) and "servers" in os.listdir(m.p("console"))
    assert os.readlink(m.p("tasks", "backup")) == "../backup/jobs"
    assert os.readlink(m.p("tasks", "array")) == "../array/tasks"
    api = Api(bdr)
    apps = api.items("/application")
    name = assign_entries(named(apps, "appname"))[0]
    policy = api.items("/slt")[0]["policies"][0]["id"]
    assert write(m.p("backup", "applications", name, "backups", "new"), "policy.id=%s\n" % policy) == 0
    assert os.readlink(m.p("tasks", "latest")).startswith("backup/")
    assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
    # a member's key that its dialect does not read is named
    bad = write_estate(tmp_path, [("backup", {"url": bdr.url, "token": TOKEN, "client_id": "x"})])
    with pytest.raises(MountFailed) as e:
        dsfs_mount(sp, "estate=" + bad, estate=True)
    assert "key 'client_id' is not one the backupdr dialect reads" in e.value.output


@pytest.mark.slow
def test_walk_and_act_under_valgrind(bdr, mount_bdr):
    m = mount_bdr(bdr, valgrind=True, ttl=0.2)
    subprocess.run(["find", m.path, "-type", "f", "-exec", "cat", "{}", "+"], stdout=subprocess.DEVNULL, check=True)
    api = Api(bdr)
    _, adir = app_dir(m, api)
    policy = api.items("/slt")[0]["policies"][0]["id"]
    assert write(os.path.join(adir, "backups", "new"), "policy.id=%s\n" % policy) == 0
    assert open(m.p("jobs", "latest", "wait")).read().strip() == "SUCCEEDED"
    assert m.unmount() == 0, m.log_text()
    m.check_clean()


def test_parallel_actions_each_find_their_own_job(bdr, mount_bdr):
    """Clones of two backups of one application at once: each action names the job of its own
    backup, so the failing one's wait fails and the other's succeeds."""
    import threading

    m = mount_bdr(bdr, ttl=0)
    api = Api(bdr)
    app, adir = app_dir(m, api)
    b1, b2 = sorted(entries(os.path.join(adir, "backups")))[:2]
    bdr.sim("POST", "/faults", {"method": "GET", "path": "/actifio/jobstatus", "count": 2, "latency_ms": 800})
    lines = {b1: "clone appname=fail-parallel", b2: "clone appname=good-parallel"}
    errs = {}
    threads = [threading.Thread(target=lambda b=b: errs.__setitem__(
        b, write(os.path.join(adir, "backups", b, "action"), lines[b] + "\n"))) for b in (b1, b2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errs == {b1: 0, b2: 0}
    jobs = {b: result(os.path.join(adir, "backups", b, "action"))["task"] for b in (b1, b2)}
    assert jobs[b1] != jobs[b2], jobs
    for b in (b1, b2):
        bid = json.load(open(os.path.join(adir, "backups", b, "backup.json")))["id"]
        assert str(api.job(jobs[b])["backupid"]) == bid
    r = subprocess.run(["cat", m.p("jobs", jobs[b1], "wait")], capture_output=True, timeout=30)
    assert r.returncode != 0
    assert open(m.p("jobs", jobs[b2], "wait")).read().strip() == "SUCCEEDED"


def test_an_action_whose_job_cannot_be_found_leaves_latest_naming_nothing(bdr, mount_bdr):
    m = mount_bdr(bdr, "allow_delete", ttl=0)  # restore writes over the application
    api = Api(bdr)
    app, adir = app_dir(m, api)
    b = sorted(entries(os.path.join(adir, "backups")))[0]
    assert write(os.path.join(adir, "backups", b, "action"), "restore\n") == 0
    assert os.path.islink(m.p("jobs", "latest"))
    bdr.sim("POST", "/faults", {"method": "GET", "path": "/actifio/jobstatus", "count": 1,
                                "body": '{"items": [], "count": 0}'})
    assert write(os.path.join(adir, "backups", b, "action"), "restore\n") == 0
    assert not os.path.lexists(m.p("jobs", "latest"))  # never the earlier restore's job
    r = subprocess.run(["cat", m.p("jobs", "latest", "wait")], capture_output=True, timeout=10)
    assert r.returncode != 0
    assert "no restore job for it is listed" in m.log_text()


def test_verbs_that_take_no_body_refuse_arguments(bdr, mount_bdr):
    m = mount_bdr(bdr)
    api = Api(bdr)
    _, adir = app_dir(m, api)
    action = os.path.join(adir, "backups", sorted(entries(os.path.join(adir, "backups")))[0], "action")
    bdr.sim("DELETE", "/requests")
    for line in ("unmount extra=1", "expire force=true"):
        assert write(action, line + "\n") == errno.EINVAL, line
    assert posts(bdr, "/backup/") == []


def test_credentials_and_estates_that_cannot_work_are_refused(bdr, mount_bdr, dsfs_mount, tmp_path):
    with pytest.raises(MountFailed) as e:
        mount_bdr(bdr, cred="key_file=sa.json\n")
    assert "key_file=sa.json: give the key file's absolute path" in e.value.output
    with pytest.raises(MountFailed) as e:
        mount_bdr(bdr, cred="token=%s\ntoken=other\n" % TOKEN)
    assert "token= is given twice" in e.value.output
    for sections, why in (([("latest", {"url": bdr.url, "token": TOKEN})], "cannot name a member"),
                          ([("b", {"url": bdr.url, "token": TOKEN, "array": "a1"})],
                           "the backupdr dialect logs in to no array")):
        path = write_estate(tmp_path, sections)
        with pytest.raises(MountFailed) as e:
            dsfs_mount(bdr, "estate=" + path, estate=True)
        assert why in e.value.output, e.value.output
