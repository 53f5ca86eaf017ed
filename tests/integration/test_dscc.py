"""The DSCC dialect (issue 7) through a real mount against the reference
server's --dialect dscc mode: the tree equals the API, actions and tasks
work for both device types, tokens expire invisibly, and every request body
dsfs sends validates against the published spec (tests/server/openapi_check.py).
"""

import errno
import json
import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest

from conftest import REPO, MountFailed, entries, reset_stats, sim_stats
from test_actions import result, write
from tree_model import assign_entries, entry_name

sys.path.insert(0, os.path.join(REPO, "tests", "server"))
import openapi_check  # noqa: E402

from refserver_fixture import Client  # noqa: E402


def dscc_credentials(tmp, server, secret="dsfs-demo-secret", token=None):
    path = os.path.join(str(tmp), "dscc-cred")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        if token:
            f.write("token=%s\n" % token)
        else:
            f.write("client_id=dsfs-demo\nclient_secret=%s\ntoken_url=%s/oauth2/token\n" % (secret, server.root))
    return path


class Api:
    """A DSCC client following the spec: bearer token, limit/offset paging."""

    def __init__(self, server):
        self.server = server
        r = server.sim("POST", "/tokens", {"ttl": 3600})
        self.c = Client(server.url)
        self.token = r.json()["access_token"]

    def get(self, path):
        r = self.c.get(path, headers={"Authorization": "Bearer " + self.token})
        assert r.status == 200, (path, r.status, r.body)
        return r.json()

    def items(self, path):
        out, offset = [], 0
        while True:
            page = self.get("%s%slimit=100&offset=%d" % (path, "&" if "?" in path else "?", offset))
            out += page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return out


@pytest.fixture
def dscc(server_factory):
    return server_factory("--dialect", "dscc", "--test-controls", "--task-seconds", "0.5",
                          "--volumes", "4", "--snapshots", "2", "--hosts", "4")


@pytest.fixture
def mount_dscc(dsfs_mount, tmp_path):
    def mount(server, *opts, ttl=60, **kw):
        cred = kw.pop("credentials", None) or dscc_credentials(tmp_path, server)
        return dsfs_mount(server, "api=dscc", *opts, ttl=ttl, credentials=cred, **kw)
    return mount


def seg(ident):
    return quote(ident, safe="")


def expected(api):
    """(files, dirs) of the tree, from the API alone (docs/tree.md, DSCC section)."""
    files, dirs = {}, {}

    def collection(rel, objs, objfile, children=(), new=False):
        names = assign_entries(objs)
        dirs[rel] = set(names) | ({"new"} if new else set())
        for obj, name in zip(objs, names):
            files[rel + "/" + name + "/" + objfile] = obj
            for child in children:
                child(rel + "/" + name, obj)

    def system(dt):
        base = "/api/v1/storage-systems/device-type%d" % dt

        def children(rel, sysobj):
            sbase = base + "/" + seg(sysobj["id"])

            def snaps(vrel, vol):
                collection(vrel + "/snapshots", api.items(sbase + "/volumes/" + seg(vol["id"]) + "/snapshots"),
                           "snapshot.json", new=True)
            collection(rel + "/volumes", api.items(sbase + "/volumes"), "volume.json", [snaps], new=True)
            collection(rel + "/pools", api.items(sbase + "/storage-pools"), "pool.json")
            collection(rel + "/volumesets", api.items("/api/v1/storage-systems/%s/volume-sets" % seg(sysobj["id"])),
                       "volumeset.json")
        return api.items(base), children

    s1, c1 = system(1)
    s2, c2 = system(2)
    names = assign_entries(s1 + s2)
    dirs["servers"] = set(names)
    for obj, name, kids in zip(s1 + s2, names, [c1] * len(s1) + [c2] * len(s2)):
        files["servers/%s/system.json" % name] = obj
        kids("servers/" + name, obj)
    collection("hosts", api.items("/api/v1/host-initiators"), "host.json", new=True)
    collection("hostgroups", api.items("/api/v1/host-initiator-groups"), "hostgroup.json")
    tasks = api.items("/api/v1/tasks")
    issues = api.items("/api/v1/issues")  # named by id
    dirs["issues"] = {entry_name(o["id"], o["id"]) for o in issues}
    for o in issues:
        files["issues/%s/issue.json" % entry_name(o["id"], o["id"])] = o
    return files, dirs, tasks


def test_tree_equals_the_api(dscc, mount_dscc):
    m = mount_dscc(dscc)
    assert sorted(os.listdir(m.path)) == ["hostgroups", "hosts", "issues", "servers", "tasks"]
    api = Api(dscc)
    files, dirs, _ = expected(api)
    for rel, names in dirs.items():
        assert set(os.listdir(m.p(rel))) == names, rel
    for rel, obj in files.items():
        with open(m.p(rel)) as f:
            got = json.load(f)
        assert got == obj, rel
    types = {json.load(open(m.p("servers", s, "system.json"))).get("id") for s in entries(m.p("servers"))}
    assert len(types) == len(entries(m.p("servers"))) >= 2


def test_lists_page_with_limit_and_offset(server_factory, mount_dscc):
    server = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "25", "--page-max", "10")
    m = mount_dscc(server, "page_size=10")
    reset_stats(server)
    srv = entries(m.p("servers"))[0]
    assert len(entries(m.p("servers", srv, "volumes"))) >= 25
    st = sim_stats(server)
    assert sum(v for k, v in st.items() if k.endswith("/volumes")) == 3, st  # 10 + 10 + 5, total says done


def test_snapshot_clone_export_and_tasks_for_both_device_types(dscc, mount_dscc):
    m = mount_dscc(dscc, "allow_delete", ttl=60)  # restore writes a snapshot over its volume
    api = Api(dscc)
    dscc.sim("DELETE", "/requests")
    done = set()
    for srv in entries(m.p("servers")):
        vols = m.p("servers", srv, "volumes")
        # device-type2 (Nimble) ids are 42 hex digits (the spec's examples; the reference server's too)
        dt = 2 if len(json.load(open(m.p("servers", srv, "system.json")))["id"]) == 42 else 1
        if dt in done:
            continue
        done.add(dt)
        vol = [v for v in entries(vols) if v != "new"][0]
        vdir = os.path.join(vols, vol)
        assert write(os.path.join(vdir, "snapshots", "new"), "snap-dt%d\n" % dt) == 0
        res = result(os.path.join(vdir, "snapshots", "new"))
        assert res["status"] == 202 and res["task"]
        assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
        assert "snap-dt%d" % dt in os.listdir(os.path.join(vdir, "snapshots"))
        clone = "clone destinationVolume=clone-dt1" if dt == 1 else "clone clone_volume_name=clone-dt2"
        assert write(os.path.join(vdir, "action"), clone + "\n") == 0
        assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
        assert "clone-dt%d" % dt in os.listdir(vols)
        group = entries(m.p("hostgroups"))[-1]  # one no volume is exported to yet
        field = "hostGroupIds" if dt == 1 else "hostGroups"
        assert write(os.path.join(vdir, "action"), 'export %s=["%s"]\n' % (field, group)) == 0
        assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
        if dt == 2:
            snap = [s for s in entries(os.path.join(vdir, "snapshots")) if s != "new"][0]
            assert write(os.path.join(vdir, "action"), "restore base_snap_id=%s\n" % snap) == 0
            assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
            assert write(os.path.join(vols, "new"), "made-here-2\n") == errno.EINVAL  # no size: not sent
            assert write(os.path.join(vols, "new"), "name=made-here-2 size=1024\n") == 0
            assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
            assert "made-here-2" in os.listdir(vols)
        else:
            assert write(os.path.join(vols, "new"), "name=made-here userCpg=SSD_r6 sizeMib=2048\n") == 0
            assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
            assert "made-here" in os.listdir(vols)
    assert done == {1, 2}
    task_id = os.readlink(m.p("tasks", "latest"))
    assert write(m.p("hosts", "new"), "name=host-made-here operatingSystem=Linux\n") == 0
    assert "host-made-here" in os.listdir(m.p("hosts"))
    assert not os.path.lexists(m.p("tasks", "latest"))  # answered 200: no task, and no older one named
    assert json.load(open(m.p("tasks", task_id, "task.json")))["state"] == "SUCCEEDED"
    assert open(m.p("tasks", task_id, "progress")).read().strip() == "100"
    assert open(m.p("tasks", task_id, "log")).read()
    # every body dsfs sent validates against the published specification
    sent = dscc.sim("GET", "/requests").json()["requests"]
    assert len(sent) >= 9
    for r in sent:
        assert openapi_check.check_request(r["method"], r["path"], r["body"]) == [], r
        assert r["status"] in (200, 201, 202), r


def test_failed_task_fails_the_wait(dscc, mount_dscc):
    m = mount_dscc(dscc)
    srv = entries(m.p("servers"))[0]
    vols = m.p("servers", srv, "volumes")
    vdir = os.path.join(vols, [v for v in entries(vols) if v != "new"][0])
    assert write(os.path.join(vdir, "snapshots", "new"), "fail-on-purpose\n") == 0
    r = subprocess.run(["cat", m.p("tasks", "latest", "wait")], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert open(m.p("tasks", "latest", "state")).read().strip() == "FAILED"


def test_list_fields_are_written_a_comma_b(dscc, mount_dscc):
    """`export hostGroupIds=hg-1,hg-2` was sent as one string and
    refused by the server; a list field takes a,b (entry names replaced by ids)."""
    m = mount_dscc(dscc, ttl=60)
    srv = [s for s in entries(m.p("servers"))
           if len(json.load(open(m.p("servers", s, "system.json")))["id"]) != 42][0]
    vols = m.p("servers", srv, "volumes")
    vdir = os.path.join(vols, [v for v in entries(vols) if v != "new"][0])
    groups = entries(m.p("hostgroups"))[-2:]
    ids = [json.load(open(m.p("hostgroups", g, "hostgroup.json")))["id"] for g in groups]
    dscc.sim("DELETE", "/requests")
    assert write(os.path.join(vdir, "action"), "export hostGroupIds=%s,%s\n" % tuple(groups)) == 0
    sent = [r for r in dscc.sim("GET", "/requests").json()["requests"] if r["path"].endswith("/export")]
    assert len(sent) == 1 and sent[0]["body"] == {"hostGroupIds": ids}, sent
    assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"


def test_invalid_body_is_einval_with_the_servers_reason(dscc, mount_dscc):
    m = mount_dscc(dscc)
    # a device-type1 system (its ids are not the 42 hex digits of device-type2's)
    srv = [s for s in entries(m.p("servers"))
           if len(json.load(open(m.p("servers", s, "system.json")))["id"]) != 42][0]
    vols = m.p("servers", srv, "volumes")
    vdir = os.path.join(vols, [v for v in entries(vols) if v != "new"][0])
    dscc.sim("DELETE", "/requests")
    assert write(os.path.join(vdir, "action"), "clone\n") == errno.EINVAL  # refused before sending
    # a field the spec's createCloneVolumeInput does not have: refused before sending, naming the nearest
    assert write(os.path.join(vdir, "action"), "clone destinationVolume=x clone_volume_name=x\n") == errno.EINVAL
    assert "unknown field clone_volume_name" in result(os.path.join(vdir, "action"))["error"]
    assert not dscc.sim("GET", "/requests").json()["requests"]
    # fields and types right, a value the server refuses (priority is an enum): the server's reason
    assert write(os.path.join(vdir, "action"), "clone destinationVolume=x priority=NOW\n") == errno.EINVAL
    assert "invalid request body" in result(os.path.join(vdir, "action"))["error"]


def test_token_expiry_mid_walk_and_mid_action_is_invisible(server_factory, mount_dscc):
    server = server_factory("--dialect", "dscc", "--test-controls", "--token-ttl", "2", "--task-seconds", "0.3",
                            "--volumes", "3")
    m = mount_dscc(server, ttl=0.5)
    t_end = time.time() + 5
    walked = 0
    while time.time() < t_end:
        subprocess.run(["find", m.path, "-name", "*.json", "-exec", "cat", "{}", "+"], check=True,
                       stdout=subprocess.DEVNULL)
        walked += 1
    assert walked >= 2
    tokens = sim_stats(server).get("POST /oauth2/token", 0)
    assert tokens >= 3  # renewed as it ran out, never in the user's way
    server.sim("POST", "/sessions/expire")  # every token revoked: one 401, one renewal
    srv = entries(m.p("servers"))[0]
    vols = m.p("servers", srv, "volumes")
    vdir = os.path.join(vols, [v for v in entries(vols) if v != "new"][0])
    assert write(os.path.join(vdir, "snapshots", "new"), "after-expiry\n") == 0
    assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"


def test_pasted_token_works_and_an_expired_one_is_refused_clearly(dscc, mount_dscc, tmp_path):
    token = dscc.sim("POST", "/tokens", {"ttl": 60}).json()["access_token"]
    m = mount_dscc(dscc, credentials=dscc_credentials(tmp_path, dscc, token=token))
    assert entries(m.p("servers"))
    old = dscc.sim("POST", "/tokens", {"ttl": 1}).json()["access_token"]
    time.sleep(1.5)
    with pytest.raises(MountFailed) as e:
        mount_dscc(dscc, credentials=dscc_credentials(tmp_path, dscc, token=old))
    assert "expired" in e.value.output and old not in e.value.output


def test_wrong_client_secret_is_refused_before_mounting(dscc, mount_dscc, tmp_path):
    with pytest.raises(MountFailed) as e:
        mount_dscc(dscc, credentials=dscc_credentials(tmp_path, dscc, secret="not-the-secret"))
    assert "401" in e.value.output and "not-the-secret" not in e.value.output


def test_rmdir_deletes_a_snapshot_with_allow_delete(dscc, mount_dscc):
    m = mount_dscc(dscc, "allow_delete")
    srv = entries(m.p("servers"))[0]
    vols = m.p("servers", srv, "volumes")
    vdir = os.path.join(vols, [v for v in entries(vols) if v != "new"][0])
    snap = [s for s in entries(os.path.join(vdir, "snapshots")) if s != "new"][0]
    os.rmdir(os.path.join(vdir, "snapshots", snap))
    assert snap not in os.listdir(os.path.join(vdir, "snapshots"))


# ---- the faults of test_faults.py that make sense for DSCC too -------------------------------

def test_hanging_console_is_bounded_by_timeout(dscc, mount_dscc):
    m = mount_dscc(dscc, "timeout=4", ttl=0)
    assert entries(m.p("hosts"))
    dscc.sim("POST", "/faults", {"method": "GET", "path": "/api/v1/host-initiators", "hang": True})
    t0 = time.time()
    with pytest.raises(OSError) as e:
        os.listdir(m.p("hosts"))
    assert e.value.errno == errno.ETIMEDOUT
    # One -o timeout, not two (a hung GET retried): the 3 s between leave a loaded machine room.
    assert time.time() - t0 < 4 + 3
    dscc.sim("DELETE", "/faults")
    assert entries(m.p("hosts"))


def test_503_is_retried_and_a_dropped_post_is_sent_once(dscc, mount_dscc):
    m = mount_dscc(dscc, ttl=0)
    assert entries(m.p("hosts"))
    reset_stats(dscc)
    r = dscc.sim("POST", "/faults", {"method": "GET", "path": "/api/v1/host-initiators", "count": 2,
                                     "status": 503, "retry_after": 0})
    assert r.status == 201, r.body
    assert entries(m.p("hosts"))
    assert sim_stats(dscc)["GET /api/v1/host-initiators"] == 3
    reset_stats(dscc)
    dscc.sim("POST", "/faults", {"method": "POST", "path": "/api/v1/host-initiators", "count": 1, "drop": True})
    assert write(m.p("hosts", "new"), "name=dropped operatingSystem=Linux\n") == errno.EIO
    assert sim_stats(dscc)["POST /api/v1/host-initiators"] == 1


def test_malformed_console_answer_is_eio(dscc, mount_dscc):
    m = mount_dscc(dscc, ttl=0)
    assert entries(m.p("hosts"))
    dscc.sim("POST", "/faults", {"method": "GET", "path": "/api/v1/host-initiators", "count": 1,
                                 "body": '{"itemz": []}'})
    with pytest.raises(OSError) as e:
        os.listdir(m.p("hosts"))
    assert e.value.errno == errno.EIO
    assert 'no "items" list' in m.log_text()
    assert entries(m.p("hosts"))


# ---- request costs and the memory checker, as for the storage-plugin API ----------------------

def test_ls_l_costs_list_pages_and_cat_of_listed_files_nothing(server_factory, mount_dscc):
    server = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "40", "--snapshots", "1",
                            "--page-max", "15")
    m = mount_dscc(server, "page_size=15", ttl=60)
    servers = entries(m.p("servers"))
    reset_stats(server)
    subprocess.run(["ls", "-l"] + [m.p("servers", s, "volumes") for s in servers], check=True,
                   capture_output=True)
    st = sim_stats(server)
    lists = sum(v for k, v in st.items() if k.endswith("/volumes"))
    assert lists == 3 * len(servers), st  # 15 + 15 + 10, and the total says when to stop
    assert st["total"] == lists, st
    reset_stats(server)
    for s in servers:
        vols = m.p("servers", s, "volumes")
        for v in entries(vols):
            if v != "new":
                open(os.path.join(vols, v, "volume.json"), "rb").read()
    assert sim_stats(server)["total"] == 0


@pytest.mark.slow
def test_mount_walk_action_unmount_under_valgrind(dscc, mount_dscc):
    if os.environ.get("DSFS_SANITIZED"):
        pytest.fail("valgrind cannot run an ASan build: run the slow tests against the plain build "
                    "(./scripts/check does)")
    m = mount_dscc(dscc, valgrind=True, ttl=0.5)
    subprocess.run(["find", m.path, "-name", "*.json", "-exec", "cat", "{}", "+"], check=True,
                   stdout=subprocess.DEVNULL)
    srv = entries(m.p("servers"))[0]
    vols = m.p("servers", srv, "volumes")
    vdir = os.path.join(vols, [v for v in entries(vols) if v != "new"][0])
    assert write(os.path.join(vdir, "snapshots", "new"), "under-valgrind\n") == 0
    assert open(m.p("tasks", "latest", "wait")).read().strip() == "SUCCEEDED"
    assert m.unmount() == 0, m.log_text()
    m.check_clean()


def test_hostile_names_and_ids_in_the_console(server_factory, mount_dscc):
    server = server_factory("--dialect", "dscc", "--test-controls", "--hostile-names", "--volumes", "3",
                            "--snapshots", "1", "--hosts", "3")
    m = mount_dscc(server)
    api = Api(server)
    files, dirs, _ = expected(api)
    for rel, names in dirs.items():
        assert set(os.listdir(m.p(rel))) == names, rel
        for e in names:
            assert "/" not in e and e not in (".", "..", ""), (rel, e)
    for rel, obj in files.items():
        with open(m.p(rel)) as f:
            assert json.load(f) == obj, rel
