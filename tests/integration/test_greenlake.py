"""The greenlake dialect through a real mount against the reference server's
--dialect greenlake mode: the tree equals the API (awkward names included),
listings cost their pages and a crawl the fewest requests, every action is
followed through its async-operation and checked through the API, failed
operations fail their wait with the server's reason, child operations show
under children/, edits are one merge-patch of the changed fields, .where and
.count are the API's filter and total, a token that ends mid-walk or
mid-action costs a renewal and never a second action, a 429's Retry-After is
honoured, the 2024 spelling reads as the current one, and an estate holds a
GreenLake member beside the four other dialects.

What this relies on in the reference server (docs/refserver.md, GreenLake
mode): --dialect greenlake with --client-id/--client-secret (dsfs-demo,
dsfs-demo-secret), the token endpoint /as/token.oauth2, --hostile-names,
--task-seconds, --token-ttl, --page-max; operations of objects named fail-
failing; a restore's three child operations; /_sim/tokens, /_sim/reads (the
GETs with their queries), /_sim/requests (the changes, with contentType and
body), /_sim/stats, /_sim/sessions/expire, /_sim/rate-limit and
/_sim/spelling.
"""

import errno
import json
import math
import os
import subprocess
import time
from urllib.parse import quote, unquote

import pytest

from conftest import entries, sim_stats
from test_actions import result, write
from tree_model import assign_entries, entry_name

from refserver_fixture import Client

DS = "/data-services/v1beta1"
VZ = "/virtualization/v1beta1"
BR = "/backup-recovery/v1beta1"
OPS = DS + "/async-operations"
MERGE_PATCH = "application/merge-patch+json"


def gl_credentials(tmp, server, secret="dsfs-demo-secret"):
    path = os.path.join(str(tmp), "greenlake-cred")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("client_id=dsfs-demo\nclient_secret=%s\ntoken_url=%s/as/token.oauth2\n" % (secret, server.root))
    return path


class Api:
    """A GreenLake client: a bearer token, offset/limit paging until total, "items": null as none."""

    def __init__(self, server):
        self.server = server
        self.c = Client(server.url)
        self.token = server.sim("POST", "/tokens", {"ttl": 3600}).json()["access_token"]

    def get(self, path):
        r = self.c.get(path, headers={"Authorization": "Bearer " + self.token})
        assert r.status == 200, (path, r.status, r.body)
        return r.json()

    def items(self, path, limit=100):
        out, offset = [], 0
        while True:
            page = self.get("%s%slimit=%d&offset=%d" % (path, "&" if "?" in path else "?", limit, offset))
            got = page["items"] or []
            out += got
            offset += len(got)
            if not got or offset >= page["total"]:
                return out

    def whole(self, path):
        return self.get(path)["items"] or []

    def children(self, op_id):
        return self.items(OPS + "?filter=" + quote("parent/id eq '%s'" % op_id))

    def op(self, op_id):
        return self.get(OPS + "/" + quote(op_id, safe=""))


def reads(server):
    return server.sim("GET", "/reads").json()["requests"]


def changes(server):
    return server.sim("GET", "/requests").json()["requests"]


def clear_logs(server):
    server.sim("DELETE", "/reads")
    server.sim("DELETE", "/requests")


def wait(m):
    with open(m.p("tasks", "latest", "wait")) as f:
        return f.read()


@pytest.fixture
def gl(server_factory):
    return server_factory("--dialect", "greenlake", "--test-controls", "--task-seconds", "0.5",
                          "--servers", "2", "--volumes", "3", "--snapshots", "2", "--hosts", "2")


@pytest.fixture
def mount_gl(dsfs_mount, tmp_path):
    def mount(server, *opts, ttl=60, **kw):
        cred = kw.pop("credentials", None) or gl_credentials(tmp_path, server)
        return dsfs_mount(server, "api=greenlake", *opts, ttl=ttl, credentials=cred, **kw)
    return mount


# the collections: (directory, API list, object file, named by id (True) or key=value, comes whole, has `new`)
COLLECTIONS = [
    ("issues", DS + "/issues", "issue.json", True, False, False),
    ("data-services/settings", DS + "/settings", "setting.json", False, False, False),
    ("data-services/secrets", DS + "/secrets", "secret.json", False, False, False),
    ("data-services/software-releases", DS + "/software-releases", "software-release.json", False, False, False),
    ("data-services/storage-locations", DS + "/storage-locations", "storage-location.json", True, True, False),
    ("data-services/tags", DS + "/tags", "tag.json", "key=value", False, False),
    ("data-services/dual-auth-operations", DS + "/dual-auth-operations", "dual-auth-operation.json", True, False,
     False),
    ("virtualization/virtual-machines", VZ + "/virtual-machines", "virtual-machine.json", False, False, False),
    ("virtualization/datastores", VZ + "/datastores", "datastore.json", False, False, True),
    ("virtualization/hypervisor-clusters", VZ + "/hypervisor-clusters", "hypervisor-cluster.json", False, False,
     False),
    ("virtualization/hypervisor-hosts", VZ + "/hypervisor-hosts", "hypervisor-host.json", False, False, False),
    ("virtualization/hypervisor-managers", VZ + "/hypervisor-managers", "hypervisor-manager.json", False, False,
     False),
    ("backup-recovery/protection-policies", BR + "/protection-policies", "protection-policy.json", False, False,
     True),
    ("backup-recovery/protection-jobs", BR + "/protection-jobs", "protection-job.json", True, False, False),
    ("backup-recovery/virtual-machine-protection-groups", BR + "/virtual-machine-protection-groups",
     "virtual-machine-protection-group.json", False, False, False),
    ("backup-recovery/protection-stores", BR + "/protection-stores", "protection-store.json", False, False, False),
    ("backup-recovery/protection-store-gateways", BR + "/protection-store-gateways", "protection-store-gateway.json",
     False, False, False),
    ("backup-recovery/data-orchestrators", BR + "/data-orchestrators", "data-orchestrator.json", False, False,
     False),
    ("backup-recovery/storeonces", BR + "/storeonces", "storeonce.json", False, False, False),
]


def names_of(objs, by_id):
    if by_id == "key=value":
        return assign_entries([dict(o, name="%s=%s" % (o["key"], o["value"])) for o in objs])
    return [entry_name(o["id"], o["id"]) for o in objs] if by_id else assign_entries(objs)


def expected(api, with_children=True):
    """(files, dirs) of the tree from the API alone (docs/greenlake.md); dirs maps every
    collection directory to its entries."""
    files, dirs = {}, {}
    for rel, path, objfile, by_id, whole, new in COLLECTIONS:
        objs = api.whole(path) if whole else api.items(path)
        names = names_of(objs, by_id)
        dirs[rel] = set(names) | ({"new"} if new else set())
        for obj, name in zip(objs, names):
            files["%s/%s/%s" % (rel, name, objfile)] = obj
            if rel == "virtualization/virtual-machines":
                for kind in ("backups", "snapshots"):
                    copies = api.items("%s/virtual-machines/%s/%s" % (BR, quote(obj["id"], safe=""), kind))
                    cnames = assign_entries(copies)
                    dirs["%s/%s/%s" % (rel, name, kind)] = set(cnames)
                    for c, cn in zip(copies, cnames):
                        files["%s/%s/%s/%s/%s.json" % (rel, name, kind, cn, kind[:-1])] = c
    ops = api.items(OPS)
    dirs["tasks"] = {entry_name(o["id"], o["id"]) for o in ops}

    def children(rel, op):
        if not op["hasChildOperations"]:  # children/ only where the operation says it has some
            return
        kids = api.children(op["id"])
        dirs[rel + "/children"] = {entry_name(k["id"], k["id"]) for k in kids}
        for k in kids:
            children(rel + "/children/" + entry_name(k["id"], k["id"]), k)
    if with_children:
        for o in ops:
            children("tasks/" + entry_name(o["id"], o["id"]), o)
    return files, dirs, ops


def test_tree_equals_the_api_awkward_names_included(server_factory, mount_gl):
    server = server_factory("--dialect", "greenlake", "--test-controls", "--servers", "2", "--volumes", "3",
                            "--snapshots", "2", "--hosts", "2", "--hostile-names")
    m = mount_gl(server)
    assert sorted(os.listdir(m.path)) == ["backup-recovery", "data-services", "issues", "tasks", "virtualization"]
    assert sorted(os.listdir(m.p("data-services"))) == ["dual-auth-operations", "secrets", "settings",
                                                         "software-releases", "storage-locations", "tags"]
    api = Api(server)
    files, dirs, ops = expected(api)
    vms = api.items(VZ + "/virtual-machines")
    assert any(v["name"] in ("", ".", "..", "a/b", "line1\nline2") for v in vms)  # the awkward ones are there
    for rel, names in dirs.items():
        assert set(os.listdir(m.p(rel))) - {"latest"} == names, rel
    for rel, obj in files.items():
        with open(m.p(rel)) as f:
            assert json.load(f) == obj, rel
    assert any(o["hasChildOperations"] for o in ops) and not all(o["hasChildOperations"] for o in ops)
    for o in ops:
        t = m.p("tasks", entry_name(o["id"], o["id"]))
        assert ("children" in os.listdir(t)) == o["hasChildOperations"], o
        assert json.load(open(os.path.join(t, "task.json")))["id"] == o["id"]
        assert open(os.path.join(t, "state")).read() == o["state"] + "\n"
        assert open(os.path.join(t, "progress")).read() == "%d\n" % o["progressPercent"]
        assert open(os.path.join(t, "log")).read() == "".join(
            "%s %s\n" % (lm["timestamp"], lm["message"]) for lm in o["logMessages"])
    newest = max(ops, key=lambda o: o["updatedAt"])
    out = subprocess.run(["ls", "-t", m.p("tasks")], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == entry_name(newest["id"], newest["id"])  # ls -t: the most recently changed first


def test_ls_l_costs_its_pages_and_a_crawl_the_fewest_requests(server_factory, mount_gl):
    server = server_factory("--dialect", "greenlake", "--test-controls", "--servers", "3", "--volumes", "8",
                            "--snapshots", "1", "--hosts", "2")
    m = mount_gl(server, "page_size=5")
    api = Api(server)
    n = len(api.items(VZ + "/virtual-machines"))
    clear_logs(server)
    subprocess.run(["ls", "-l", m.p("virtualization", "virtual-machines")], check=True, capture_output=True)
    got = reads(server)
    assert [r["template"] for r in got] == [VZ + "/virtual-machines"] * math.ceil(n / 5), got
    assert [r["query"] for r in got] == ["limit=5&offset=%d" % (5 * i) for i in range(math.ceil(n / 5))]
    clear_logs(server)
    for v in entries(m.p("virtualization", "virtual-machines")):
        open(m.p("virtualization", "virtual-machines", v, "virtual-machine.json"), "rb").read()
    assert reads(server) == []  # the listing brought every object
    m.unmount()
    m = mount_gl(server, "page_size=1000")
    clear_logs(server)
    subprocess.run(["find", m.path], check=True, capture_output=True)
    got = reads(server)
    _, dirs, _ = expected(api)
    asked = [(r["path"], r["query"]) for r in got]
    # one request per collection directory, none for an operation without children
    assert len(asked) == len(set(asked)) == len(dirs), (len(asked), len(dirs))
    assert len([a for a in asked if a[1].startswith("filter=parent")]) == \
        len([d for d in dirs if d.endswith("/children")])
    assert all(r["query"] or r["path"] == DS + "/storage-locations" for r in got)  # lists only, no object GET
    assert [r for r in got if r["path"] == DS + "/storage-locations"] == [
        dict(r, query="") for r in got if r["path"] == DS + "/storage-locations"]  # asked whole: no paging
    assert all(r["status"] == 200 for r in got)


def vm_dir(m, api, pred):
    """The directory and object of a virtual machine the API says pred of (not a fail- one)."""
    vms = api.items(VZ + "/virtual-machines")
    names = assign_entries(vms)
    for v, name in zip(vms, names):
        if pred(v) and not v["name"].startswith("fail-"):
            return m.p("virtualization", "virtual-machines", name), v
    raise AssertionError("no such virtual machine")


def one_change(server, method, path):
    sent = [r for r in changes(server) if r["method"] == method and r["path"] == path]
    assert len(sent) == 1, changes(server)
    return sent[0]


def test_each_action_runs_through_its_operation(gl, mount_gl):
    m = mount_gl(gl, "allow_delete", ttl=0.5)
    api = Api(gl)
    for verb, need, after in (("power-off", "POWERED_ON", "POWERED_OFF"), ("power-on", "POWERED_OFF", "POWERED_ON"),
                              ("reset", "POWERED_ON", "POWERED_ON"),
                              ("restart-guest-os", "POWERED_ON", "POWERED_ON"),
                              ("shutdown-guest-os", "POWERED_ON", "POWERED_OFF"), ("refresh", None, None)):
        d, vm = vm_dir(m, api, lambda v: need is None or v["powerState"] == need)
        clear_logs(gl)
        assert write(os.path.join(d, "action"), verb + "\n") == 0, verb
        res = result(os.path.join(d, "action"))
        assert res["status"] == 202 and os.readlink(m.p("tasks", "latest")) == res["task"], res
        sent = one_change(gl, "POST", "%s/virtual-machines/%s/%s" % (VZ, vm["id"], verb))
        assert sent["body"] is None
        assert wait(m) == "SUCCEEDED\n", verb
        op = api.op(res["task"])
        assert op["state"] == "SUCCEEDED" and op["sourceResourceUri"] == vm["resourceUri"]
        if after:
            assert api.get("%s/virtual-machines/%s" % (VZ, vm["id"]))["powerState"] == after, verb
    # a hypervisor manager's refresh
    man = api.items(VZ + "/hypervisor-managers")[0]
    clear_logs(gl)
    assert write(m.p("virtualization", "hypervisor-managers", man["name"], "action"), "refresh\n") == 0
    one_change(gl, "POST", "%s/hypervisor-managers/%s/refresh" % (VZ, man["id"]))
    assert wait(m) == "SUCCEEDED\n"
    assert api.get("%s/hypervisor-managers/%s" % (VZ, man["id"]))["generation"] == man["generation"] + 1
    # a protection job: suspend, resume, run (the schedules by their ids)
    jobs = api.items(BR + "/protection-jobs")
    job = next(j for j in jobs if j["state"] == "ACTIVE" and not j["assetInfo"]["name"].startswith("fail-"))
    jdir = m.p("backup-recovery", "protection-jobs", entry_name(job["id"], job["id"]))
    for verb, state in (("suspend", "SUSPENDED"), ("resume", "ACTIVE")):
        clear_logs(gl)
        assert write(os.path.join(jdir, "action"), verb + "\n") == 0
        one_change(gl, "POST", "%s/protection-jobs/%s/%s" % (BR, job["id"], verb))
        assert wait(m) == "SUCCEEDED\n"
        assert api.get("%s/protection-jobs/%s" % (BR, job["id"]))["state"] == state
    sched = job["protections"][0]["schedules"][0]["scheduleId"]
    vmid = job["assetInfo"]["id"]
    before = len(api.items("%s/virtual-machines/%s/backups" % (BR, vmid))) + \
        len(api.items("%s/virtual-machines/%s/snapshots" % (BR, vmid)))
    clear_logs(gl)
    assert write(os.path.join(jdir, "action"), "run scheduleIds=[%d] fullBackup=true\n" % sched) == 0
    sent = one_change(gl, "POST", "%s/protection-jobs/%s/run" % (BR, job["id"]))
    assert sent["body"] == {"scheduleIds": [sched], "fullBackup": True}
    assert wait(m) == "SUCCEEDED\n"
    assert len(api.items("%s/virtual-machines/%s/backups" % (BR, vmid))) + \
        len(api.items("%s/virtual-machines/%s/snapshots" % (BR, vmid))) == before + 1
    # datastores/new: the cluster named by its entry, sent as its id
    cl = api.items(VZ + "/hypervisor-clusters")[0]
    clear_logs(gl)
    assert write(m.p("virtualization", "datastores", "new"),
                 "name=ds-made-here sizeInBytes=1099511627776 storageSystemId=7CE816P001 "
                 "targetHypervisorClusterId=%s\n" % cl["name"]) == 0
    sent = one_change(gl, "POST", VZ + "/datastores")
    assert sent["body"] == {"name": "ds-made-here", "sizeInBytes": 1099511627776, "storageSystemId": "7CE816P001",
                            "targetHypervisorClusterId": cl["id"], "datastoreType": "VMFS"}
    assert wait(m) == "SUCCEEDED\n"
    assert "ds-made-here" in os.listdir(m.p("virtualization", "datastores"))
    assert "ds-made-here" in [d["name"] for d in api.items(VZ + "/datastores")]
    # protection-policies/new answers 200 with the policy: no operation, and no older one named latest
    task = os.readlink(m.p("tasks", "latest"))
    assert write(m.p("backup-recovery", "protection-policies", "new"),
                 'name=pol-made-here protections=[{"type":"BACKUP","schedules":[]}]\n') == 0
    res = result(m.p("backup-recovery", "protection-policies", "new"))
    assert res["status"] == 200 and "task" not in res, res
    assert not os.path.lexists(m.p("tasks", "latest"))
    assert "pol-made-here" in [p["name"] for p in api.items(BR + "/protection-policies")]
    assert json.load(open(m.p("tasks", task, "task.json")))["state"] == "SUCCEEDED"
    # dual-auth operations: approve and cancel are merge-patches of the state
    pending = [o for o in api.items(DS + "/dual-auth-operations")
               if o["state"] == "PENDING" and not o["name"].startswith("fail-")]
    for verb, state, op in (("approve", "APPROVED", pending[0]), ("cancel", "CANCELLED", pending[1])):
        clear_logs(gl)
        assert write(m.p("data-services", "dual-auth-operations", entry_name(op["id"], op["id"]), "action"),
                     verb + "\n") == 0
        sent = one_change(gl, "PATCH", "%s/dual-auth-operations/%s" % (DS, op["id"]))
        assert sent["contentType"] == MERGE_PATCH and sent["body"] == {"state": state}
        assert wait(m) == "SUCCEEDED\n"
        assert api.get("%s/dual-auth-operations/%s" % (DS, op["id"]))["state"] == state


def test_restore_has_child_operations_and_rmdir_deletes_a_backup(gl, mount_gl):
    m = mount_gl(gl, "allow_delete", ttl=0.5)
    api = Api(gl)
    d, vm = vm_dir(m, api, lambda v: True)
    backups = api.items("%s/virtual-machines/%s/backups" % (BR, vm["id"]))
    name = assign_entries(backups)[0]
    clear_logs(gl)
    assert write(os.path.join(d, "action"), "restore backupId=%s\n" % name) == 0
    sent = one_change(gl, "POST", "%s/virtual-machines/%s/restore" % (BR, vm["id"]))
    assert sent["body"] == {"backupId": backups[0]["id"], "restoreType": "PARENT"}
    op_id = os.readlink(m.p("tasks", "latest"))
    kids = api.children(op_id)
    assert len(kids) == 3
    assert sorted(os.listdir(m.p("tasks", "latest", "children"))) == sorted(k["id"] for k in kids)
    assert wait(m) == "SUCCEEDED\n"
    for k in kids:
        kdir = m.p("tasks", op_id, "children", k["id"])
        assert open(os.path.join(kdir, "wait")).read() == "SUCCEEDED\n"
        assert json.load(open(os.path.join(kdir, "task.json")))["parent"]["id"] == op_id
        assert "children" not in os.listdir(kdir) and not os.path.exists(os.path.join(kdir, "children"))
    # from a snapshot, as a new machine (ALTERNATE)
    snaps = api.items("%s/virtual-machines/%s/snapshots" % (BR, vm["id"]))
    sname = assign_entries(snaps)[0]
    clear_logs(gl)
    assert write(os.path.join(d, "action"), 'restore snapshotId=%s restoreType=ALTERNATE '
                 'targetVmInfo={"name":"vm-restored-here"}\n' % sname) == 0
    sent = one_change(gl, "POST", "%s/virtual-machines/%s/restore" % (BR, vm["id"]))
    assert sent["body"] == {"snapshotId": snaps[0]["id"], "restoreType": "ALTERNATE",
                            "targetVmInfo": {"name": "vm-restored-here"}}
    assert wait(m) == "SUCCEEDED\n"
    assert "vm-restored-here" in [v["name"] for v in api.items(VZ + "/virtual-machines")]
    assert "vm-restored-here" in os.listdir(m.p("virtualization", "virtual-machines"))
    # rmdir of a snapshot: a DELETE whose operation becomes tasks/latest
    clear_logs(gl)
    os.rmdir(os.path.join(d, "snapshots", sname))
    one_change(gl, "DELETE", "%s/virtual-machines/%s/snapshots/%s" % (BR, vm["id"], snaps[0]["id"]))
    assert wait(m) == "SUCCEEDED\n"
    assert snaps[0]["id"] not in [s["id"] for s in api.items("%s/virtual-machines/%s/snapshots" % (BR, vm["id"]))]
    assert sname not in os.listdir(os.path.join(d, "snapshots"))


def test_restore_and_rmdir_need_allow_delete(gl, mount_gl):
    m = mount_gl(gl)
    api = Api(gl)
    d, vm = vm_dir(m, api, lambda v: True)
    clear_logs(gl)
    b = [e for e in entries(os.path.join(d, "backups"))][0]
    assert write(os.path.join(d, "action"), "restore backupId=%s\n" % b) == errno.EPERM
    with pytest.raises(PermissionError):
        os.rmdir(os.path.join(d, "backups", b))
    assert changes(gl) == []


def assert_refusal_reads(m, api):
    """A refusal (409: suspending a suspended job) is the control file's error, with the server's message."""
    job = next(j for j in api.items(BR + "/protection-jobs") if j["state"] == "SUSPENDED")
    jdir = m.p("backup-recovery", "protection-jobs", job["id"])
    assert write(os.path.join(jdir, "action"), "suspend\n") != 0
    res = result(os.path.join(jdir, "action"))
    assert res["status"] == 409 and "already SUSPENDED" in res["error"], res


def test_a_failed_operation_fails_its_wait_with_the_servers_reason(gl, mount_gl):
    m = mount_gl(gl, ttl=0.5)
    api = Api(gl)
    vms = api.items(VZ + "/virtual-machines")
    fail = next(v for v in vms if v["name"].startswith("fail-"))
    d = m.p("virtualization", "virtual-machines", assign_entries(vms)[vms.index(fail)])
    assert write(os.path.join(d, "action"), "refresh\n") == 0
    op_id = os.readlink(m.p("tasks", "latest"))
    fd = os.open(m.p("tasks", "latest", "wait"), os.O_RDONLY)
    try:
        line = os.read(fd, 4096).decode()
        with pytest.raises(OSError) as e:
            os.read(fd, 4096)
    finally:
        os.close(fd)
    assert e.value.errno == errno.EIO
    op = api.op(op_id)
    assert op["state"] == "FAILED"
    assert line == "FAILED: %s\n" % op["error"]["error"]
    assert open(m.p("tasks", op_id, "error")).read() == op["error"]["error"] + "\n"
    assert open(m.p("tasks", op_id, "state")).read() == "FAILED\n"
    # an operation that failed before the mount: its error is readable too
    old = [o for o in api.items(OPS) if o["state"] == "FAILED" and o["id"] != op_id][0]
    assert open(m.p("tasks", old["id"], "error")).read() == old["error"]["error"] + "\n"
    assert_refusal_reads(m, api)


def edit(path, change):
    with open(path) as f:
        obj = json.load(f)
    change(obj)
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2) + "\n")


def test_edits_are_one_merge_patch_of_the_changed_fields(gl, mount_gl):
    m = mount_gl(gl, "allow_edit", ttl=0.5)
    api = Api(gl)
    issue = api.items(DS + "/issues")[0]
    clear_logs(gl)
    edit(m.p("issues", issue["id"], "issue.json"), lambda o: o.update(snoozedFor="WEEK"))
    sent = one_change(gl, "PATCH", "%s/issues/%s" % (DS, issue["id"]))
    assert sent["contentType"] == MERGE_PATCH
    assert sent["body"] == {"snoozedFor": "WEEK", "generation": issue["generation"]}
    assert wait(m) == "SUCCEEDED\n"
    assert api.get("%s/issues/%s" % (DS, issue["id"]))["snoozedFor"] == "WEEK"
    assert len(changes(gl)) == 1
    # the generation is the issue's version: editing it is refused, nothing sent
    clear_logs(gl)
    with pytest.raises(OSError) as e:
        edit(m.p("issues", issue["id"], "issue.json"), lambda o: o.update(generation=o["generation"] + 7))
    assert e.value.errno == errno.EINVAL
    assert changes(gl) == []
    # a setting's value
    settings = api.items(DS + "/settings")
    s = next(x for x in settings if x["name"] == "email-notifications")
    clear_logs(gl)
    edit(m.p("data-services", "settings", s["name"], "setting.json"), lambda o: o.update(currentValue="all"))
    sent = one_change(gl, "PATCH", "%s/settings/%s" % (DS, s["id"]))
    assert sent["contentType"] == MERGE_PATCH and sent["body"] == {"currentValue": "all"}
    assert wait(m) == "SUCCEEDED\n"
    assert api.get("%s/settings/%s" % (DS, s["id"]))["currentValue"] == "all"
    # a policy's description (answered 200: no operation)
    pol = api.items(BR + "/protection-policies")[0]
    clear_logs(gl)
    edit(m.p("backup-recovery", "protection-policies", pol["name"], "protection-policy.json"),
         lambda o: o.update(description="edited here"))
    sent = one_change(gl, "PATCH", "%s/protection-policies/%s" % (BR, pol["id"]))
    assert sent["contentType"] == MERGE_PATCH and sent["body"] == {"description": "edited here"}
    assert api.get("%s/protection-policies/%s" % (BR, pol["id"]))["description"] == "edited here"
    # a backup's name and expiry
    d, vm = vm_dir(m, api, lambda v: True)
    b = api.items("%s/virtual-machines/%s/backups" % (BR, vm["id"]))[0]
    clear_logs(gl)
    edit(os.path.join(d, "backups", assign_entries([b])[0], "backup.json"),
         lambda o: o.update(name="kept-backup", expiresAt="2031-01-01T00:00:00Z"))
    sent = one_change(gl, "PATCH", "%s/virtual-machines/%s/backups/%s" % (BR, vm["id"], b["id"]))
    assert sent["contentType"] == MERGE_PATCH
    assert sent["body"] == {"name": "kept-backup", "expiresAt": "2031-01-01T00:00:00Z"}
    assert wait(m) == "SUCCEEDED\n"
    assert api.get("%s/virtual-machines/%s/backups/%s" % (BR, vm["id"], b["id"]))["name"] == "kept-backup"
    assert "kept-backup" in os.listdir(os.path.join(d, "backups"))


def test_where_is_the_filter_and_count_the_total(gl, mount_gl):
    m = mount_gl(gl)
    api = Api(gl)
    vms = api.items(VZ + "/virtual-machines")
    off = [v for v in vms if v["powerState"] == "POWERED_OFF"]
    coll = m.p("virtualization", "virtual-machines")
    clear_logs(gl)
    got = set(os.listdir(os.path.join(coll, ".where", "powerState=POWERED_OFF")))
    assert got == set(assign_entries(off)) or got == {n for v, n in zip(vms, assign_entries(vms))
                                                      if v["powerState"] == "POWERED_OFF"}
    r = reads(gl)
    assert len(r) == 1 and r[0]["path"] == VZ + "/virtual-machines"
    assert "filter=" + quote("powerState eq 'POWERED_OFF'", safe="") in r[0]["query"].replace("+", "%20")
    # a nested field is written with /, a quote inside a value doubled
    cl = api.items(VZ + "/hypervisor-clusters")[0]
    clear_logs(gl)
    inside = set(os.listdir(os.path.join(coll, ".where", "clusterInfo.id=%s" % cl["id"])))
    assert inside == {n for v, n in zip(vms, assign_entries(vms)) if v["clusterInfo"]["id"] == cl["id"]}
    assert unquote(reads(gl)[0]["query"]).startswith("filter=clusterInfo/id eq '%s'" % cl["id"])
    clear_logs(gl)
    assert os.listdir(os.path.join(coll, ".where", "name=it's")) == []
    assert "name eq 'it''s'" in unquote(reads(gl)[0]["query"])
    assert reads(gl)[0]["status"] == 200  # answered "items": null
    # .count: the total of a one-item page
    clear_logs(gl)
    assert open(os.path.join(coll, ".count")).read() == "%d\n" % len(vms)
    r = reads(gl)
    assert len(r) == 1 and r[0]["query"] == "limit=1&offset=0", r
    issues = api.items(DS + "/issues")
    assert open(m.p("issues", ".count")).read() == "%d\n" % len(issues)


def test_a_token_ending_mid_walk_and_mid_action_is_invisible(server_factory, mount_gl):
    server = server_factory("--dialect", "greenlake", "--test-controls", "--token-ttl", "2", "--task-seconds",
                            "0.3", "--servers", "1", "--volumes", "3", "--snapshots", "1")
    m = mount_gl(server, ttl=0.5)
    t_end = time.time() + 5
    walked = 0
    while time.time() < t_end:
        subprocess.run(["find", m.p("virtualization"), m.p("data-services"), "-name", "*.json", "-exec", "cat",
                        "{}", "+"], check=True, stdout=subprocess.DEVNULL)
        walked += 1
    assert walked >= 2
    assert sim_stats(server).get("POST /as/token.oauth2", 0) >= 3  # renewed before it ran out
    assert not [r for r in reads(server) if r["status"] == 401]  # never in the user's way
    server.sim("POST", "/sessions/expire")  # every token revoked: the next call is refused once
    api = Api(server)
    d, vm = vm_dir(m, api, lambda v: True)
    clear_logs(server)
    assert write(os.path.join(d, "action"), "refresh\n") == 0
    assert wait(m) == "SUCCEEDED\n"
    acted = [r for r in changes(server) if r["path"].endswith("/refresh") and r["status"] == 202]
    assert len(acted) == 1, changes(server)  # the action took effect once
    ops = [o for o in api.items(OPS) if o["name"] == "Refresh virtual machine %s" % vm["name"]]
    assert len(ops) == 1


def test_429_retry_after_is_honoured(gl, mount_gl):
    m = mount_gl(gl)
    clear_logs(gl)
    gl.sim("POST", "/rate-limit", {"count": 1, "retry_after": 1, "method": "GET", "path": VZ + "/datastores"})
    t0 = time.monotonic()
    names = entries(m.p("virtualization", "datastores"))
    took = time.monotonic() - t0
    assert names and "new" in os.listdir(m.p("virtualization", "datastores"))
    assert took >= 0.9, took
    r = [x for x in reads(gl) if x["path"] == VZ + "/datastores"]
    assert [x["status"] for x in r] == [429, 200], r


def test_the_2024_spelling_reads_as_the_current_one(gl, mount_gl):
    gl.sim("POST", "/spelling", {"spelling": "2024"})
    m = mount_gl(gl, ttl=0.5)
    api = Api(gl)
    ops = api.items(OPS)
    assert "timestampAt" in ops[0]["logMessages"][0] and "childTasks" in ops[0]
    o = ops[0]
    assert open(m.p("tasks", o["id"], "log")).read() == "".join(
        "%s %s\n" % (lm["timestampAt"], lm["message"]) for lm in o["logMessages"])
    failed = next(x for x in ops if x["state"] == "FAILED")
    assert open(m.p("tasks", failed["id"], "error")).read() == failed["error"]["error"] + "\n"
    # children/: where childTasks names some, the operations those name
    parent = next(x for x in ops if x["childTasks"])
    kids = {k["resourceUri"].rsplit("/", 1)[1] for k in parent["childTasks"]}
    assert set(os.listdir(m.p("tasks", parent["id"], "children"))) == kids
    for k in kids:
        assert open(m.p("tasks", parent["id"], "children", k, "wait")).read() == "SUCCEEDED\n"
    assert [x for x in ops if not x["childTasks"] and "children" in os.listdir(m.p("tasks", x["id"]))] == []
    assert_refusal_reads(m, api)  # {error, errorCode, traceId}
    d, vm = vm_dir(m, api, lambda v: True)
    assert write(os.path.join(d, "action"), "refresh\n") == 0
    assert wait(m) == "SUCCEEDED\n"


def test_df_sums_datastores_and_protection_stores(gl, mount_gl):
    m = mount_gl(gl)
    api = Api(gl)
    total = sum(d["capacityInBytes"] for d in api.items(VZ + "/datastores")) + \
        sum(s["maxCapacityInBytes"] for s in api.items(BR + "/protection-stores"))
    free = sum(d["capacityFree"] for d in api.items(VZ + "/datastores")) + \
        sum(s["maxCapacityInBytes"] - s["sizeOnDiskInBytes"] for s in api.items(BR + "/protection-stores"))
    st = os.statvfs(m.path)
    assert st.f_blocks * st.f_frsize == pytest.approx(total, rel=1e-3)
    assert st.f_bavail * st.f_frsize == pytest.approx(free, rel=1e-3)


def test_events_log_follows_the_operations(gl, mount_gl):
    m = mount_gl(gl, ttl=0.5)
    api = Api(gl)
    with open(m.p("events", "log")) as f:
        f.read()
        d, vm = vm_dir(m, api, lambda v: True)
        assert write(os.path.join(d, "action"), "refresh\n") == 0
        op_id = os.readlink(m.p("tasks", "latest"))
        assert wait(m) == "SUCCEEDED\n"
        deadline, seen = time.time() + 20, ""
        while time.time() < deadline and not ("SUCCEEDED" in seen and op_id in seen):
            seen += f.read()
            time.sleep(0.3)
    assert op_id in seen and "SUCCEEDED" in seen, seen


def test_an_estate_holds_greenlake_beside_the_four_other_dialects(server_factory, dsfs_mount, tmp_path):
    from test_dscc import dscc_credentials
    from test_estate import write_estate

    small = ("--test-controls", "--servers", "1", "--volumes", "2", "--snapshots", "1", "--task-seconds", "0.3")
    sp = server_factory(*small)
    dscc = server_factory("--dialect", "dscc", *small)
    bdr = server_factory("--dialect", "backupdr", *small)
    cs = server_factory("--dialect", "cloudsync", "--heartbeat-seconds", "0", *small)
    g = server_factory("--dialect", "greenlake", *small)
    path = write_estate(tmp_path, [
        ("array", {"url": sp.url, "username": "admin", "password": "admin"}),
        ("console", {"url": dscc.url, "api": "dscc", "credentials": dscc_credentials(tmp_path, dscc)}),
        ("backup", {"url": bdr.url, "api": "backupdr", "token": "dsfs-demo-token"}),
        ("sync", {"url": cs.url, "api": "cloudsync", "refresh_token": "dsfs-demo-refresh-token",
                  "client_id": "dsfs-demo", "token_url": cs.root + "/oauth/token"}),
        ("workspace", {"url": g.url, "api": "greenlake", "credentials": gl_credentials(tmp_path, g)}),
    ])
    m = dsfs_mount(sp, "estate=" + path, estate=True)
    members = ["array", "backup", "console", "sync", "workspace"]
    assert sorted(entries(m.path)) == sorted(members + ["tasks"])
    assert sorted(entries(m.p("tasks"))) == members
    assert os.readlink(m.p("tasks", "workspace")) == "../workspace/tasks"
    assert os.readlink(m.p("tasks", "backup")) == "../backup/jobs"
    assert entries(m.p("array", "servers")) and entries(m.p("console", "servers"))
    assert entries(m.p("backup", "applications")) and entries(m.p("sync", "relationships"))
    api = Api(g)
    vms = api.items(VZ + "/virtual-machines")
    assert sorted(entries(m.p("workspace", "virtualization", "virtual-machines"))) == sorted(assign_entries(vms))
    vm = next(v for v in vms if not v["name"].startswith("fail-"))
    d = m.p("workspace", "virtualization", "virtual-machines", assign_entries(vms)[vms.index(vm)])
    g.sim("DELETE", "/requests")
    assert write(os.path.join(d, "action"), "refresh\n") == 0
    assert open(m.p("workspace", "tasks", "latest", "wait")).read() == "SUCCEEDED\n"
    assert [r["path"] for r in changes(g)] == ["%s/virtual-machines/%s/refresh" % (VZ, vm["id"])]


def test_a_host_of_dscc_and_greenlake_is_said_and_api_decides(tmp_path):
    """The data.cloud.hpe.com hosts answer DSCC's API and GreenLake's: without -o api= dsfs says so
    and assumes dscc; with it, or on a host only GreenLake's, it says nothing. The token endpoint
    refuses at once, so no request leaves the machine."""
    from test_mounting import run_refused

    cred = os.path.join(str(tmp_path), "cred")
    fd = os.open(cred, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("client_id=x\nclient_secret=y\ntoken_url=http://127.0.0.1:9/as/token.oauth2\n")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    base = ["-o", "credentials=" + cred, "-o", "retries=0", "-o", "connect_timeout=2"]
    shared = "https://us1.data.cloud.hpe.com"
    r = run_refused(base + [shared, str(mnt)], mnt)
    out = r.stderr.strip().splitlines()
    assert r.returncode != 0 and not r.mounted
    assert out[0] == ("dsfs: warning: %s is a host of more than one API; assumed dscc; give -o api=NAME "
                      "(storageplugin, dscc, backupdr, cloudsync, greenlake)" % shared), out
    assert len(out) == 2 and "127.0.0.1:9" in out[1], out
    for args in (["-o", "api=greenlake", shared], ["https://us-west.api.greenlake.hpe.com"]):
        r = run_refused(base + args + [str(mnt)], mnt)
        out = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(out) == 1 and "warning" not in out[0] and "127.0.0.1:9" in out[0], out


def test_events_follow_the_operations_and_page_through_a_busy_second(server_factory, dsfs_mount, tmp_path):
    from test_events import check_burst, check_follow, sim_event

    server = server_factory("--dialect", "greenlake", "--test-controls", "--servers", "1", "--volumes", "2",
                            "--snapshots", "1")
    m = dsfs_mount(server, "api=greenlake", ttl=2, credentials=gl_credentials(tmp_path, server))
    with open(m.p("events", "log")) as f:
        first = [json.loads(line) for line in f]
    ops = Api(server).items(OPS)
    assert first and all(e["id"] in {o["id"] for o in ops} for e in first)
    assert [e["updatedAt"] for e in first] == sorted(e["updatedAt"] for e in first)
    check_follow(server, m, "async-operations", sim_event(server, "name"), lambda e, text: e.get("name") == text,
                 ttl=2)
    # a server of its own: the burst's own "after" event must be one no earlier test made
    server = server_factory("--dialect", "greenlake", "--test-controls", "--servers", "1", "--volumes", "2",
                            "--snapshots", "1")
    m = dsfs_mount(server, "api=greenlake", ttl=1, credentials=gl_credentials(tmp_path, server))
    check_burst(server, m, "name", lambda e: e.get("name"))
    ops = Api(server).items(OPS + "?filter=" + quote("name eq 'burst 1'"))
    assert ops[0]["updatedAt"] == Api(server).items(OPS + "?filter=" + quote("name eq 'burst 1500'"))[0]["updatedAt"]
