"""Tests of the reference server's greenlake dialect (refserver.py --dialect greenlake).

They check what docs/refserver.md ("GreenLake mode") promises dsfs, through
HTTP: the token grants (form and Basic, SSO and workspace paths) and expiry,
the {items, count, offset, total} lists with per-collection limits and
`items: null`, filter forms and their 400s, sort, select and the 422 rule of
issues, every collection, 202 + Location for every change with
async-operations that progress, fail (fail- names) and have children (a
restore), merge-patch edits, 429 on request, both error shapes and the 2024
spelling, and the request log and stats of the /_sim controls.
"""

import base64
import os
import re
import subprocess
import sys
import time
from urllib.parse import quote, urlencode

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from refserver_fixture import Client, module_server, start_refserver, wait_until  # noqa: E402

DS = "/data-services/v1beta1"
VZ = "/virtualization/v1beta1"
BR = "/backup-recovery/v1beta1"
OPS = DS + "/async-operations"
FORM = "application/x-www-form-urlencoded"
MERGE = "application/merge-patch+json"
WORKSPACE = "4f6a8e2c1b3d5e7f9a0b2c4d6e8f0a1c"
ISSUE_KEYS = "id,type,customerId,generation,resourceUri,createdAt,lastOccurredAt"


def gl(*args, **kw):
    return start_refserver("--dialect", "greenlake", "--test-controls", *args, **kw)


def grant(srv, path="/as/token.oauth2", basic=False, **form):
    f = {"grant_type": "client_credentials", "client_id": "dsfs-demo",
         "client_secret": "dsfs-demo-secret"}
    f.update(form)
    headers = None
    if basic:
        pair = "%s:%s" % (f.pop("client_id"), f.pop("client_secret"))
        headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    c = Client(srv.root)
    try:
        return c.request("POST", path, raw=urlencode({k: v for k, v in f.items()
                                                      if v is not None}).encode(),
                         content_type=FORM, headers=headers)
    finally:
        c.close()


class Api:
    """A GreenLake client: a bearer token on every call."""

    def __init__(self, srv, token=None):
        self.srv = srv
        if token is None:
            token = grant(srv).json()["access_token"]
        self.token = token
        self.c = Client(srv.root)

    def req(self, method, path, body=None, status=None, ctype="application/json", **kw):
        h = {"Authorization": "Bearer " + self.token}
        h.update(kw.pop("headers", {}))
        r = self.c.request(method, path, body, headers=h, content_type=ctype, **kw)
        if status is not None:
            assert r.status == status, (method, path, r)
        return r

    def get(self, path, status=200, **kw):
        return self.req("GET", path, status=status, **kw)

    def items(self, path, **query):
        qs = urlencode(query)
        return self.get(path + ("?" + qs if qs else "")).json()["items"] or []

    def all(self, path):
        """Every item, paging as a client must: until offset + count >= total."""
        out, offset = [], 0
        while True:
            page = self.get("%s?offset=%d" % (path, offset)).json()
            out += page["items"] or []
            offset += page["count"]
            if offset >= page["total"]:
                return out

    def patch(self, path, body, status=None, ctype=MERGE):
        return self.req("PATCH", path, body, status=status, ctype=ctype)

    def change(self, method, path, body=None):
        """A change that answers 202: the async-operation its Location names."""
        r = self.req(method, path, body, status=202)
        loc = r.headers["location"]
        assert loc.startswith(OPS + "/") and r.body == b"", r
        return loc

    def wait(self, loc, timeout=5.0):
        return wait_until(lambda: (lambda o: o if o["state"] in ("SUCCEEDED", "FAILED")
                                   else None)(self.get(loc).json()), timeout)


def q(s):
    return quote(s, safe="")


def assert_error(r, status, spelling="current"):
    assert r.status == status, r
    body = r.json()
    if spelling == "current":
        assert body["httpStatusCode"] == status and body["message"], body
        assert body["errorCode"] and len(body["debugId"]) == 32, body
    else:
        assert set(body) == {"error", "errorCode", "traceId"} and body["errorCode"] == str(
            status), body
    return body


srv = module_server(gl, "--task-seconds", "0.6", "--servers", "2", "--volumes", "6",
                    "--snapshots", "2", "--hosts", "2")


@pytest.fixture
def api(srv):
    return Api(srv)


def vm_named(api, name):
    return api.items(VZ + "/virtual-machines", filter="name eq '%s'" % name)[0]


def powered(api, state):
    return [v for v in api.all(VZ + "/virtual-machines")
            if v["powerState"] == state and not v["name"].startswith("fail-")]


# --------------------------------------------------------------------------
# start-up and tokens

def test_ready_line_help_and_credentials(tmp_path):
    cred = tmp_path / "cred"
    s = gl("--credentials-file", str(cred))
    try:
        assert s.url == s.root
        lines = cred.read_text().splitlines()
        assert lines == ["client_id=dsfs-demo", "client_secret=dsfs-demo-secret",
                         "token_url=%s/as/token.oauth2" % s.root]
    finally:
        s.stop()
    out = subprocess.run([sys.executable, os.path.join(HERE, "refserver.py"), "--help"],
                         capture_output=True, text=True, timeout=10).stdout
    for word in ("greenlake", "--spelling", "--workspace-id", "--workspace-token-ttl"):
        assert word in out, word


def test_token_grants_form_basic_and_workspace(srv):
    r = grant(srv)
    assert r.status == 200 and r.headers["cache-control"] == "no-store", r
    tok = r.json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 7200
    r = grant(srv, basic=True)
    assert r.status == 200 and r.json()["access_token"] != tok["access_token"]
    r = grant(srv, "/authorization/v2/oauth2/%s/token" % WORKSPACE)
    assert r.status == 200 and r.json()["expires_in"] == 900, r
    Api(srv, r.json()["access_token"]).get(DS + "/issues")
    r = grant(srv, "/authorization/v2/oauth2/%s/token" % ("0" * 32))
    assert r.status == 400 and r.json()["error"] == "invalid_request"
    r = grant(srv, client_secret="wrong")
    assert r.status == 401 and r.json()["error"] == "invalid_client"
    assert grant(srv, grant_type="password").json()["error"] == "unsupported_grant_type"
    assert grant(srv, client_id=None).status == 401
    stats = srv.sim("GET", "/stats").json()
    assert stats["POST /as/token.oauth2"] >= 5
    assert stats["POST /authorization/v2/oauth2/{workspace-id}/token"] == 2
    # token requests carry the secret: never in the request log
    assert not [e for e in srv.sim("GET", "/requests").json()["requests"]
                if "token" in e["path"]]


def test_bad_missing_and_expired_tokens():
    s = gl("--token-ttl", "1")
    try:
        c = Client(s.root)
        r = c.get(DS + "/issues")
        assert r.status == 401 and r.headers["content-type"] == "text/plain", r
        assert r.body == b"Jwt is missing"
        r = c.get(DS + "/issues", headers={"Authorization": "Bearer forged"})
        assert r.status == 401 and r.body == b"Jwt verification fails"
        api = Api(s)
        api.get(DS + "/issues")
        time.sleep(1.2)
        body = assert_error(api.get(DS + "/issues", status=401), 401)
        assert "expired" in body["message"]
        # /_sim/sessions/expire: live tokens are answered as expired ones
        api = Api(s)
        assert s.sim("GET", "/sessions").json() == {"active": 1}
        assert s.sim("POST", "/sessions/expire").status == 204
        assert_error(api.get(DS + "/issues", status=401), 401)
        assert s.sim("GET", "/sessions").json() == {"active": 0}
        minted = s.sim("POST", "/tokens", {"ttl": 3600}).json()
        Api(s, minted["access_token"]).get(DS + "/issues")
        assert s.sim("POST", "/password", {"password": "new"}).status == 204
        assert grant(s).status == 401 and grant(s, client_secret="new").status == 200
    finally:
        s.stop()


# --------------------------------------------------------------------------
# lists

def test_list_envelope_paging_and_limits(srv, api):
    page = api.get(DS + "/issues").json()
    assert set(page) == {"items", "count", "offset", "total"}
    assert page["count"] == 10 == len(page["items"]) and page["total"] == 12  # default 10
    assert api.get(DS + "/issues?limit=1000").json()["count"] == 12           # largest 100
    assert len(api.all(DS + "/issues")) == 12
    page = api.get(DS + "/issues?offset=10&limit=5").json()
    assert (page["count"], page["offset"], page["total"]) == (2, 10, 12)
    page = api.get(DS + "/issues?offset=50").json()
    assert page["items"] is None and page["count"] == 0 and page["total"] == 12
    assert api.get(DS + "/tags").json()["count"] == 6
    assert api.get(DS + "/tags?limit=1").json() ["total"] == 6                 # .count
    for bad in ("limit=0", "limit=x", "offset=-1"):
        assert_error(api.get(DS + "/issues?" + bad, status=400), 400)
    # parameters a collection does not take
    assert_error(api.get(BR + "/storeonces?filter=name%20eq%20'x'", status=400), 400)
    assert_error(api.get(DS + "/storage-locations?limit=1", status=400), 400)
    assert_error(api.get(DS + "/secrets?select=id", status=400), 400)
    locs = api.get(DS + "/storage-locations").json()
    assert locs["total"] == 4 and "azure:eastus2" in [x["id"] for x in locs["items"]]


def test_page_max_caps_every_list(refserver_factory):
    s = refserver_factory("--dialect", "greenlake", "--page-max", "3", "--volumes", "4")
    api = Api(s)
    page = api.get(VZ + "/virtual-machines?limit=100").json()
    assert page["count"] == 3 and page["total"] == 9       # 2 x 4, and fail-vm-01
    assert len(api.all(VZ + "/virtual-machines")) == 9


def test_every_collection_and_object(api):
    for path in (DS + "/issues", DS + "/dual-auth-operations", DS + "/settings",
                 DS + "/secrets", DS + "/software-releases", VZ + "/virtual-machines",
                 VZ + "/datastores", VZ + "/hypervisor-clusters", VZ + "/hypervisor-hosts",
                 VZ + "/hypervisor-managers", BR + "/protection-policies",
                 BR + "/protection-jobs", BR + "/virtual-machine-protection-groups",
                 BR + "/protection-stores", BR + "/protection-store-gateways",
                 BR + "/data-orchestrators", BR + "/storeonces", OPS):
        items = api.all(path)
        assert items, path
        for o in items[:3]:
            one = api.get("%s/%s" % (path, q(o["id"]))).json()
            assert one == o or path == OPS, path
            assert one["resourceUri"] == "%s/%s" % (path, o["id"]), one
            for key in ("id", "type", "generation", "createdAt", "updatedAt", "customerId"):
                assert key in one, (path, key)
        assert_error(api.get(path + "/no-such-id", status=404), 404)
    assert [t["key"] + "=" + t["value"] for t in api.items(DS + "/tags")][0] == "env=prod"
    assert all(not {"value", "secret", "password", "key"} & set(x)     # no secret material
               for x in api.items(DS + "/secrets"))
    vm = api.items(VZ + "/virtual-machines")[0]
    for kind in ("backups", "snapshots"):
        copies = api.items("%s/virtual-machines/%s/%s" % (BR, vm["id"], kind))
        assert len(copies) == 2 and copies[0]["virtualMachineInfo"]["id"] == vm["id"]
        one = api.get(copies[0]["resourceUri"]).json()
        assert one == copies[0]
    ps = api.items(BR + "/protection-stores")
    assert all(p["maxCapacityInBytes"] > p["sizeOnDiskInBytes"] for p in ps)
    ds = api.items(VZ + "/datastores")
    assert all(d["capacityInBytes"] >= d["capacityFree"] > 0 for d in ds)
    assert_error(api.get(VZ + "/nothing-here", status=404), 404)
    r = api.req("PUT", DS + "/issues", status=405)
    assert r.headers["allow"] == "GET"


def test_filter_forms(api):
    vms = api.all(VZ + "/virtual-machines")
    on = [v["id"] for v in vms if v["powerState"] == "POWERED_ON"]

    def ids(path, flt):
        return [o["id"] for o in api.items(path, filter=flt, limit=1000)]
    assert ids(VZ + "/virtual-machines", "powerState eq 'POWERED_ON'") == on
    assert len(ids(VZ + "/virtual-machines", "powerState ne 'POWERED_ON'")) == len(vms) - len(on)
    c1 = vms[0]["clusterInfo"]["id"]
    assert ids(VZ + "/virtual-machines", "clusterInfo/id eq '%s'" % c1) == [
        v["id"] for v in vms if v["clusterInfo"]["id"] == c1]
    big = ids(VZ + "/virtual-machines", "capacityInBytes gt 80000000000 and "
              "powerState eq 'POWERED_ON'")
    assert big == [v["id"] for v in vms if v["capacityInBytes"] > 80e9 and v["id"] in on]
    assert ids(VZ + "/virtual-machines", "capacityInBytes lt 0") == []
    assert ids(VZ + "/virtual-machines", "name eq 'fail-vm-01' or name eq '%s'"
               % vms[0]["name"]) == [vms[0]["id"], vm_named(api, "fail-vm-01")["id"]]
    assert ids(VZ + "/virtual-machines", "startswith(name,'fail-')") == [
        vm_named(api, "fail-vm-01")["id"]]
    assert len(ids(VZ + "/virtual-machines", "contains(name,'vm-')")) == len(vms)
    issues = api.all(DS + "/issues")
    crit = [i["id"] for i in issues if i["severity"] in ("CRITICAL", "WARNING")]
    assert ids(DS + "/issues", "severity in ('CRITICAL','WARNING')") == crit
    assert ids(DS + "/issues", "'backup-recovery' in services") == [
        i["id"] for i in issues if "backup-recovery" in i["services"]]
    t = issues[3]["createdAt"]
    assert ids(DS + "/issues", "createdAt gt '%s'" % t) == [
        i["id"] for i in issues if i["createdAt"] > t]
    # a quote inside a string is doubled
    assert ids(DS + "/issues", "name eq 'it''s not there'") == []
    for bad in ("name ge 'a'", "not name eq 'a'", "name eq", "name = 'a'", "nosuch eq 1",
                "name eq 'a' or name eq 'b'", "contains(name)", "(name eq 'a'"):
        path = DS + "/settings"
        r = api.get(path + "?filter=" + q(bad), status=400)
        assert "filter" in assert_error(r, 400)["message"], bad


def test_sort_and_select(api):
    vms = api.items(VZ + "/virtual-machines", sort="name desc", limit=100)
    assert [v["name"] for v in vms] == sorted((v["name"] for v in vms), reverse=True)
    vms = api.items(VZ + "/virtual-machines", sort="powerState asc,capacityInBytes desc")
    keys = [(v["powerState"], -v["capacityInBytes"]) for v in vms]
    assert keys == sorted(keys)
    assert_error(api.get(VZ + "/virtual-machines?sort=nosuch", status=400), 400)
    assert_error(api.get(VZ + "/virtual-machines?sort=name%20up", status=400), 400)
    sel = api.items(VZ + "/virtual-machines", select="id,name,clusterInfo/name")
    assert set(sel[0]) == {"id", "name", "clusterInfo"} and set(sel[0]["clusterInfo"]) == {"name"}
    one = api.get(VZ + "/virtual-machines/%s?select=name" % sel[0]["id"]).json()
    assert one == {"name": sel[0]["name"]}
    # issues: a select must keep what HPE lists, else 422
    r = api.get(DS + "/issues?select=body", status=422)
    body = assert_error(r, 422)
    assert body["message"] == ('Missing required field(s) - "lastOccurredAt,customerId,'
                               'createdAt,id,resourceUri,generation,type"')
    items = api.items(DS + "/issues", select="body," + ISSUE_KEYS)
    assert set(items[0]) == set(("body," + ISSUE_KEYS).split(","))


# --------------------------------------------------------------------------
# async-operations

def test_vm_power_actions_progress_and_end(srv, api):
    vm = powered(api, "POWERED_ON")[0]
    loc = api.change("POST", "%s/virtual-machines/%s/power-off" % (VZ, vm["id"]))
    op = api.get(loc).json()
    assert op["state"] in ("INITIALIZED", "RUNNING") and op["endedAt"] is None
    assert op["sourceResourceUri"] == vm["resourceUri"] and op["services"] == ["virtualization"]
    assert op["userId"] == "dsfs-demo" and op["type"] == "task"
    assert api.items(OPS, limit=1)[0]["id"] == op["id"]           # newest first
    seen = {op["state"]}
    while op["state"] not in ("SUCCEEDED", "FAILED"):
        time.sleep(0.05)
        op = api.get(loc).json()
        seen.add(op["state"])
    assert op["state"] == "SUCCEEDED" and op["progressPercent"] == 100, op
    assert "RUNNING" in seen and op["error"] is None and op["endedAt"]
    assert all("timestamp" in m for m in op["logMessages"])
    assert api.get(vm["resourceUri"]).json()["powerState"] == "POWERED_OFF"
    # a powered-off machine cannot be reset: the operation fails and says why
    loc = api.change("POST", "%s/virtual-machines/%s/reset" % (VZ, vm["id"]))
    op = api.wait(loc)
    assert op["state"] == "FAILED" and "current state" in op["error"]["error"], op
    assert op["healthStatus"] == "ERROR"
    for action in ("power-on", "restart-guest-os", "refresh", "shutdown-guest-os"):
        op = api.wait(api.change("POST", "%s/virtual-machines/%s/%s" % (VZ, vm["id"],
                                                                           action)))
        assert op["state"] == "SUCCEEDED", (action, op)
    assert api.get(vm["resourceUri"]).json()["powerState"] == "POWERED_OFF"
    assert_error(api.req("POST", VZ + "/virtual-machines/nope/power-on", status=404), 404)
    stats = srv.sim("GET", "/stats").json()
    assert stats["POST /virtualization/v1beta1/virtual-machines/{vm-id}/power-on"] >= 1


def test_fail_names_fail_with_an_error(api):
    vm = vm_named(api, "fail-vm-01")
    op = api.wait(api.change("POST", "%s/virtual-machines/%s/refresh" % (VZ, vm["id"])))
    assert op["state"] == "FAILED" and "fail-vm-01" in op["error"]["error"], op
    assert set(op["error"]) == {"error", "errorCode", "traceId"}
    failed = api.items(OPS, filter="state eq 'FAILED'")
    assert op["id"] in [o["id"] for o in failed]


def test_restore_has_child_operations(srv, api):
    vm = api.items(VZ + "/virtual-machines", limit=1)[0]
    backup = api.items("%s/virtual-machines/%s/backups" % (BR, vm["id"]))[0]
    loc = api.change("POST", "%s/virtual-machines/%s/restore" % (BR, vm["id"]),
                     {"backupId": backup["id"], "restoreType": "ALTERNATE",
                      "targetVmInfo": {"name": "restored-vm"}})
    op = api.get(loc).json()
    assert op["hasChildOperations"] is True and op["subtreeOperationCount"] == 3
    kids = api.items(OPS, filter="parent/id eq '%s'" % op["id"])
    assert len(kids) == 3 and all(k["parent"]["id"] == op["id"] for k in kids)
    assert all(k["rootOperation"]["id"] == op["id"] for k in kids)
    op = api.wait(loc)
    assert op["state"] == "SUCCEEDED", op
    assert all(api.get(k["resourceUri"]).json()["state"] == "SUCCEEDED" for k in kids)
    assert vm_named(api, "restored-vm")["clusterInfo"] == vm["clusterInfo"]
    # a restore told to fail: its last child fails, and so does the restore
    loc = api.change("POST", "%s/virtual-machines/%s/restore" % (BR, vm["id"]),
                     {"snapshotId": api.items("%s/virtual-machines/%s/snapshots"
                                              % (BR, vm["id"]))[0]["id"],
                      "restoreType": "ALTERNATE", "targetVmInfo": {"name": "fail-restore"}})
    op = api.wait(loc)
    kids = api.items(OPS, filter="parent/id eq '%s'" % op["id"], sort="endedAt asc")
    assert op["state"] == "FAILED" and [k["state"] for k in kids] == [
        "SUCCEEDED", "SUCCEEDED", "FAILED"], (op, kids)
    assert kids[-1]["error"]["error"] == op["error"]["error"]
    for body in ({"restoreType": "PARENT"},
                 {"backupId": backup["id"], "snapshotId": "x", "restoreType": "PARENT"},
                 {"backupId": backup["id"], "restoreType": "SIDEWAYS"},
                 {"backupId": backup["id"], "restoreType": "ALTERNATE"}):
        assert_error(api.req("POST", "%s/virtual-machines/%s/restore" % (BR, vm["id"]),
                             body, status=400), 400)
    # the seeded history has a finished restore with its children too
    old = [o for o in api.all(OPS) if o["hasChildOperations"] and o["createdAt"] < "2025"]
    assert old and old[0]["subtreeOperationCount"] == 3


def test_protection_jobs_run_suspend_resume_and_create(srv, api):
    jobs = [j for j in api.all(BR + "/protection-jobs") if j["state"] == "ACTIVE"
            and not j["assetInfo"]["name"].startswith("fail-")]
    job = jobs[0]
    vm_id = job["assetInfo"]["id"]
    before = len(api.items("%s/virtual-machines/%s/snapshots" % (BR, vm_id)))
    snap_sched = [s["scheduleId"] for p in job["protections"] if p["type"] == "SNAPSHOT"
                  for s in p["schedules"]]
    op = api.wait(api.change("POST", "%s/protection-jobs/%s/run" % (BR, job["id"]),
                             {"scheduleIds": snap_sched, "fullBackup": False}))
    assert op["state"] == "SUCCEEDED" and op["services"] == ["backup-recovery"]
    assert len(api.items("%s/virtual-machines/%s/snapshots" % (BR, vm_id))) == before + 1
    assert_error(api.req("POST", "%s/protection-jobs/%s/run" % (BR, job["id"]),
                         {"scheduleIds": [99]}, status=400), 400)
    assert_error(api.req("POST", "%s/protection-jobs/%s/resume" % (BR, job["id"]),
                         status=409), 409)
    api.wait(api.change("POST", "%s/protection-jobs/%s/suspend" % (BR, job["id"])))
    assert api.get(job["resourceUri"]).json()["state"] == "SUSPENDED"
    api.wait(api.change("POST", "%s/protection-jobs/%s/resume" % (BR, job["id"])))
    assert api.get(job["resourceUri"]).json()["state"] == "ACTIVE"
    fail_job = [j for j in api.all(BR + "/protection-jobs")
                if j["assetInfo"]["name"] == "fail-vm-01"][0]
    op = api.wait(api.change("POST", "%s/protection-jobs/%s/suspend" % (BR, fail_job["id"])))
    assert op["state"] == "FAILED"
    free = [v for v in api.all(VZ + "/virtual-machines") if v["protectionJobInfo"] is None]
    pol = api.items(BR + "/protection-policies")[0]
    op = api.wait(api.change("POST", BR + "/protection-jobs", {
        "assetInfo": {"id": free[0]["id"], "type": "virtualization/virtual-machine"},
        "protectionPolicyId": pol["id"]}))
    assert op["state"] == "SUCCEEDED"
    assert api.get(free[0]["resourceUri"]).json()["protectionJobInfo"] is not None


def test_datastore_create_and_hypervisor_refresh(api):
    cl = api.items(VZ + "/hypervisor-clusters")[0]
    body = {"name": "ds-new", "sizeInBytes": 2 ** 40, "storageSystemId": "7CE816P001",
            "targetHypervisorClusterId": cl["id"], "datastoreType": "VMFS"}
    loc = api.change("POST", VZ + "/datastores", body)
    op = api.get(loc).json()
    assert op["sourceResourceUri"].startswith(VZ + "/datastores/")
    assert api.wait(loc)["state"] == "SUCCEEDED"
    ds = api.get(op["sourceResourceUri"]).json()
    assert ds["name"] == "ds-new" and ds["capacityInBytes"] == 2 ** 40
    assert_error(api.req("POST", VZ + "/datastores", body, status=409), 409)
    assert api.wait(api.change("POST", VZ + "/datastores", dict(body, name="fail-ds")))[
        "state"] == "FAILED"
    for bad in ({}, dict(body, sizeInBytes="big"), dict(body, datastoreType="NFS"),
                dict(body, nosuch=1)):
        assert_error(api.req("POST", VZ + "/datastores", bad, status=400), 400)
    assert_error(api.req("POST", VZ + "/datastores", body, ctype="text/plain",
                         status=415), 415)
    man = api.items(VZ + "/hypervisor-managers")[0]
    op = api.wait(api.change("POST", "%s/hypervisor-managers/%s/refresh" % (VZ, man["id"])))
    assert op["state"] == "SUCCEEDED"


def test_protection_policies_create_patch_delete(srv, api):
    body = {"name": "pp-new", "description": "d", "protections": [
        {"type": "SNAPSHOT", "schedules": [{"schedule": {"recurrence": "HOURLY"}}]}]}
    r = api.req("POST", BR + "/protection-policies", body, status=200)   # no operation
    pol = r.json()
    assert "location" not in r.headers and pol["name"] == "pp-new"
    assert pol["protections"][0]["schedules"][0]["id"] == 1
    assert_error(api.req("POST", BR + "/protection-policies", body, status=409), 409)
    srv.sim("DELETE", "/requests")
    r = api.patch(pol["resourceUri"], {"description": "new words"}, status=200)
    assert r.json()["description"] == "new words" and r.json()["generation"] == 2
    assert r.json()["name"] == "pp-new"
    assert_error(api.patch(pol["resourceUri"], {"description": "x"}, ctype="application/json",
                           status=415), 415)
    assert_error(api.patch(pol["resourceUri"], {"protections": [{"type": "TAPE"}]},
                           status=400), 400)
    log = srv.sim("GET", "/requests").json()["requests"]
    assert [(e["method"], e["contentType"], e["body"], e["status"]) for e in log] == [
        ("PATCH", MERGE, {"description": "new words"}, 200),
        ("PATCH", "application/json", {"description": "x"}, 415),
        ("PATCH", MERGE, {"protections": [{"type": "TAPE"}]}, 400)]
    assert log[0]["template"] == BR + "/protection-policies/{id}"
    assert api.req("DELETE", pol["resourceUri"], status=204)
    used = api.items(BR + "/protection-jobs")[0]["protectionPolicyInfo"]
    assert_error(api.req("DELETE", used["resourceUri"], status=409), 409)


def test_backup_and_snapshot_patch_and_delete(api):
    vm = powered(api, "POWERED_ON")[-1]
    backups = api.items("%s/virtual-machines/%s/backups" % (BR, vm["id"]))
    b = backups[0]
    far, farther = "2099-01-01T00:00:00Z", "2099-06-01T00:00:00.000Z"
    loc = api.patch(b["resourceUri"], {"name": "renamed", "description": "kept",
                                       "expiresAt": farther, "lockedUntil": far}, status=202)
    assert loc.headers["location"].startswith(OPS)
    assert api.wait(loc.headers["location"])["state"] == "SUCCEEDED"
    now = api.get(b["resourceUri"]).json()
    assert (now["name"], now["description"], now["expiresAt"], now["lockedUntil"]) == (
        "renamed", "kept", farther, far) and now["generation"] == b["generation"] + 1
    # a lock can only be extended, and not past the expiry
    assert_error(api.patch(b["resourceUri"], {"lockedUntil": b["createdAt"]}, status=400), 400)
    assert_error(api.patch(b["resourceUri"], {"lockedUntil": "2100-01-01T00:00:00Z"},
                           status=400), 400)
    assert_error(api.patch(b["resourceUri"], {"expiresAt": "tomorrow"}, status=400), 400)
    assert_error(api.patch(b["resourceUri"], {"size": 1}, status=400), 400)
    assert_error(api.patch(b["resourceUri"], {"name": "x"}, ctype="application/json",
                           status=415), 415)
    # a locked backup cannot go; an unlocked one can
    assert_error(api.req("DELETE", b["resourceUri"], status=409), 409)
    snap = api.items("%s/virtual-machines/%s/snapshots" % (BR, vm["id"]))[0]
    assert api.wait(api.change("DELETE", snap["resourceUri"]))["state"] == "SUCCEEDED"
    assert_error(api.get(snap["resourceUri"], status=404), 404)
    op = api.wait(api.patch(backups[1]["resourceUri"], {"name": "fail-rename"},
                            status=202).headers["location"])
    assert op["state"] == "FAILED"
    assert api.get(backups[1]["resourceUri"]).json()["name"] == backups[1]["name"]


def test_vm_delete(api):
    vm = vm_named(api, "fail-vm-01")
    assert api.wait(api.change("DELETE", vm["resourceUri"]))["state"] == "FAILED"
    vm = api.items(VZ + "/virtual-machines", sort="name desc", limit=1)[0]
    assert api.wait(api.change("DELETE", vm["resourceUri"]))["state"] == "SUCCEEDED"
    assert_error(api.get(vm["resourceUri"], status=404), 404)


def test_issue_setting_and_dual_auth_edits(srv, api):
    issue = api.items(DS + "/issues")[0]
    path = DS + "/issues/" + issue["id"]
    assert_error(api.patch(path, {"snoozedFor": "DAY"}, status=400), 400)
    assert_error(api.patch(path, {"generation": "7", "snoozedFor": "DAY"}, status=409), 409)
    assert_error(api.patch(path, {"generation": "1", "snoozedFor": "YEAR"}, status=400), 400)
    assert_error(api.patch(path, {"generation": "1", "snoozedFor": "DAY"},
                           ctype="application/json", status=415), 415)
    r = api.patch(path, {"generation": str(issue["generation"]), "snoozedFor": "WEEK"},
                  status=202)
    assert api.wait(r.headers["location"])["state"] == "SUCCEEDED"
    now = api.get(path).json()
    assert now["snoozedFor"] == "WEEK" and now["snoozedUntil"] and now["generation"] == 2
    settings = {s["name"]: s for s in api.items(DS + "/settings")}
    s = settings["session-timeout-minutes"]
    r = api.patch(s["resourceUri"], {"currentValue": "45"}, status=202)
    assert api.wait(r.headers["location"])["state"] == "SUCCEEDED"
    assert api.get(s["resourceUri"]).json()["currentValue"] == "45"
    assert_error(api.patch(s["resourceUri"], {"currentValue": 45}, status=400), 400)
    assert_error(api.patch(s["resourceUri"], {"currentValue": "soon"}, status=400), 400)
    r = api.patch(settings["fail-setting"]["resourceUri"], {"currentValue": "y"}, status=202)
    assert api.wait(r.headers["location"])["state"] == "FAILED"
    das = api.items(DS + "/dual-auth-operations", filter="state eq 'PENDING'")
    for da, state in zip(das[:2], ("APPROVED", "CANCELLED")):
        r = api.patch(da["resourceUri"], {"state": state}, status=202)
        assert api.wait(r.headers["location"])["state"] == "SUCCEEDED"
        assert api.get(da["resourceUri"]).json()["state"] == state
        assert_error(api.patch(da["resourceUri"], {"state": state}, status=409), 409)
    failing = [d for d in das if d["name"].startswith("fail-")][0]
    r = api.patch(failing["resourceUri"], {"state": "APPROVED"}, status=202)
    assert api.wait(r.headers["location"])["state"] == "FAILED"


# --------------------------------------------------------------------------
# rate limits, spellings, /_sim

def test_rate_limit_on_request(srv, api):
    r = srv.sim("POST", "/rate-limit", {"count": 2, "retry_after": 3,
                                        "path": VZ + "/virtual-machines"})
    assert r.status == 201 and r.json()["status"] == 429
    for _ in range(2):
        r = api.get(VZ + "/virtual-machines", status=429)
        assert r.headers["retry-after"] == "3"
        assert_error(r, 429)["errorCode"] == "TOO_MANY_REQUESTS"
    api.get(VZ + "/virtual-machines")
    assert api.get(DS + "/issues").status == 200
    assert srv.sim("POST", "/rate-limit", {"bogus": 1}).status == 422


def test_2024_spelling():
    s = gl("--spelling", "2024", "--task-seconds", "0.3", "--volumes", "2")
    try:
        api = Api(s)
        body = assert_error(api.get(DS + "/issues/nope", status=404), 404, "2024")
        assert body["errorCode"] == "404"
        r = api.get(DS + "/issues?select=body", status=422)
        assert_error(r, 422, "2024")
        vm = api.items(VZ + "/virtual-machines", limit=1)[0]
        backup = api.items("%s/virtual-machines/%s/backups" % (BR, vm["id"]))[0]
        op = api.wait(api.change("POST", "%s/virtual-machines/%s/restore" % (BR, vm["id"]),
                                 {"backupId": backup["id"], "restoreType": "PARENT"}))
        assert len(op["childTasks"]) == 3 and op["subtreeTaskCount"] == 3
        assert op["sourceResource"] == {"name": vm["name"], "resourceUri": vm["resourceUri"],
                                        "type": vm["type"]}
        assert all("timestampAt" in m and "timestamp" not in m for m in op["logMessages"])
        for gone in ("hasChildOperations", "sourceResourceUri", "parent", "rootOperation"):
            assert gone not in op
        kid = api.get(op["childTasks"][0]["resourceUri"]).json()
        assert kid["parentTask"]["resourceUri"] == op["resourceUri"]
        # switched back at run time
        assert s.sim("GET", "/spelling").json() == {"spelling": "2024"}
        assert s.sim("POST", "/spelling", {"spelling": "current"}).status == 204
        op = api.get(op["resourceUri"]).json()
        assert op["hasChildOperations"] and "childTasks" not in op
        assert_error(api.get(DS + "/issues/nope", status=404), 404)
        assert s.sim("POST", "/spelling", {"spelling": "1999"}).status == 422
    finally:
        s.stop()


def test_request_log_reads_and_events(srv, api):
    srv.sim("DELETE", "/requests")
    srv.sim("DELETE", "/reads")
    api.get(DS + "/issues?limit=1&filter=" + q("severity eq 'CRITICAL'"))
    vm = powered(api, "POWERED_ON")[0]
    api.change("POST", "%s/virtual-machines/%s/refresh" % (VZ, vm["id"]))
    reads = srv.sim("GET", "/reads").json()["requests"]
    assert reads[0]["query"] == "limit=1&filter=" + q("severity eq 'CRITICAL'")
    assert reads[0]["template"] == DS + "/issues" and reads[0]["status"] == 200
    log = srv.sim("GET", "/requests").json()["requests"]
    assert [(e["method"], e["template"], e["status"]) for e in log] == [
        ("POST", VZ + "/virtual-machines/{vm-id}/refresh", 202)]
    r = srv.sim("POST", "/events", {"name": "imported operation", "count": 3})
    assert r.status == 201 and r.json()["name"] == "imported operation 3"
    newest = api.items(OPS, limit=3)
    assert [o["name"] for o in newest] == ["imported operation %d" % k for k in (3, 2, 1)]
    assert all(o["state"] == "SUCCEEDED" for o in newest)


def test_sync_mode_and_hostile_names(refserver_factory):
    s = refserver_factory("--dialect", "greenlake", "--sync", "--hostile-names",
                          "--volumes", "2", "--servers", "1")
    api = Api(s)
    names = [v["name"] for v in api.all(VZ + "/virtual-machines")]
    for odd in ("", ".", "..", "a/b", "100% full", "line1\nline2", "Ünïcødé-ボリューム"):
        assert odd in names, odd
    assert names.count(names[0]) == 2       # a duplicate name
    vm = api.items(VZ + "/virtual-machines", limit=1)[0]
    assert len(api.items("%s/virtual-machines/%s/backups" % (BR, vm["id"]))) > 3
    r = api.req("POST", "%s/virtual-machines/%s/refresh" % (VZ, vm["id"]), status=202)
    assert api.get(r.headers["location"]).json()["state"] == "SUCCEEDED"   # ended before 202


def test_the_documented_curl_session_runs(srv, tmp_path):
    """docs/refserver.md's GreenLake curl block, run with bash against this server:
    its `curl` of the token grant, `TOKEN=$(python3 ...)` and the `curl`s of two lists."""
    with open(os.path.join(HERE, "..", "..", "docs", "refserver.md"), encoding="utf-8") as f:
        doc = f.read()
    blocks = re.findall(r"```sh run-by=tests/server/test_refserver_greenlake.py\n(.*?)```", doc,
                        re.S)
    assert len(blocks) == 1
    script = blocks[0].replace("127.0.0.1:8443", "127.0.0.1:%d" % srv.port)
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert '"powerState"' in r.stdout and '"total"' in r.stdout, r.stdout
    assert '"state":"FAILED"' in r.stdout, r.stdout
