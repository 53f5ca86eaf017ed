"""Tests of the reference server's dscc dialect (refserver.py --dialect dscc).

Every server test talks HTTP to a real server process on 127.0.0.1 (port 0)
started through refserver_fixture.start_refserver; every answer body is
checked against the DSCC OpenAPI spec with openapi_check. Run with
`/usr/bin/python3 -m pytest tests/server`.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from urllib.parse import quote

import pytest

import openapi_check as oc
from refserver_fixture import Client, REFSERVER, module_server, start_refserver, wait_until

DT1 = "/api/v1/storage-systems/device-type1"
DT2 = "/api/v1/storage-systems/device-type2"
FORM = "application/x-www-form-urlencoded"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX42 = re.compile(r"^[0-9a-f]{42}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")

if not os.path.isfile(oc.spec_path()):
    raise RuntimeError("the DSCC spec is not at %s: the DSCC mode cannot be tested without it" % oc.spec_path())


def q(s):
    return quote(s, safe="")


def dscc(*args, **kw):
    return start_refserver("--dialect", "dscc", *args, **kw)


def token_request(c, body, headers=None):
    return c.request("POST", "/oauth2/token", raw=body.encode(), content_type=FORM,
                     headers=headers)


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode())
            .decode()}


class Api:
    """A Client that sends a bearer token and checks every answer against the spec."""

    def __init__(self, srv, token=None):
        self.srv = srv
        self.c = srv.client()
        if token is None:
            r = token_request(self.c, "grant_type=client_credentials",
                              basic("dsfs-demo", "dsfs-demo-secret"))
            assert r.status == 200, r
            token = r.json()["access_token"]
        self.token = token

    def req(self, method, path, body=None, status=None, check=True, **kw):
        hdrs = {"Authorization": "Bearer " + self.token}
        hdrs.update(kw.pop("headers", {}))
        r = self.c.request(method, path, body, headers=hdrs, **kw)
        if status is not None:
            assert r.status == status, (method, path, r)
        if check and r.status < 300 and r.body:
            errs = oc.check_response(method, path, r.status, r.body, strict=True)
            assert not errs, (method, path, errs[:5])
        if r.status >= 400:
            assert_error(r, r.status)
        return r

    def get(self, path, status=200, **kw):
        return self.req("GET", path, status=status, **kw)

    def post(self, path, body=None, status=None, **kw):
        return self.req("POST", path, body, status=status, **kw)

    def delete(self, path, status=None, **kw):
        return self.req("DELETE", path, status=status, **kw)

    def put(self, path, body=None, status=None, **kw):
        return self.req("PUT", path, body, status=status, **kw)

    def items(self, path, **kw):
        return self.get(path, **kw).json()["items"]

    def all_items(self, path, limit=None):
        out, offset = [], 0
        sep = "&" if "?" in path else "?"
        while True:
            page = self.get(path + sep + "offset=%d" % offset +
                            ("&limit=%d" % limit if limit else "")).json()
            assert page["pageOffset"] == offset
            out += page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                assert offset == page["total"]
                return out

    def task(self, r):
        """The task of a 202 answer (checks taskResponse and Location)."""
        assert r.status == 202, r
        body = r.json()
        uri = body["taskUri"]
        assert re.match(r"^/api/v1/tasks/[0-9a-f-]{36}$", uri), body
        assert r.headers["location"] == self.srv.url + uri
        return uri

    def wait(self, r, timeout=10):
        uri = self.task(r) if not isinstance(r, str) else r

        def ended():
            t = self.get(uri).json()
            return t if t["state"] in ("SUCCEEDED", "FAILED", "TIMEDOUT") else None
        t = wait_until(ended, timeout)
        assert t, "task %s did not end" % uri
        return t

    def close(self):
        self.c.close()


def assert_error(r, status, *words):
    assert r.status == status, r
    body = r.json()
    assert set(body) == {"error", "errorCode", "traceId"}, body
    assert body["errorCode"] == str(status)
    assert not oc.validate("ErrorResponse", body)
    for w in words:
        assert w in body["error"], (w, body)
    return body


def systems_of(api, dt):
    return [s for s in api.items("/api/v1/storage-systems")
            if s["productFamily"] == "deviceType%d" % dt]


# --------------------------------------------------------------------------
# shared server (tests on it touch disjoint resources)

srv = module_server(dscc, "--test-controls", "--task-seconds", "0.3", "--volumes", "12")


@pytest.fixture
def api(srv):
    a = Api(srv)
    yield a
    a.close()


@pytest.fixture(scope="module")
def ids(srv):
    """The first system of each device type and two volumes of each."""
    a = Api(srv)
    out = {}
    for dt in (1, 2):
        s = systems_of(a, dt)[0]["id"]
        base = "%s/%s" % (DT1 if dt == 1 else DT2, s)
        vols = a.items(base + "/volumes")
        out[dt] = {"sys": s, "base": base, "vols": [v["id"] for v in vols]}
    a.close()
    return out


# --------------------------------------------------------------------------
# start-up and command line

def test_ready_line_is_the_server_root(refserver_factory):
    s = refserver_factory("--dialect", "dscc")
    assert re.match(r"^http://127\.0\.0\.1:\d+$", s.url), s.url
    assert s.url == s.root
    assert s.proc.poll() is None


def test_runs_under_both_pythons():
    """Like the storage-plugin mode: the pyenv python3 and Debian's /usr/bin/python3."""
    for py in sorted({shutil.which("python3"), "/usr/bin/python3"} - {None}):
        s = dscc("--volumes", "2", python=py)
        try:
            api = Api(s)
            assert api.get("/api/v1/volumes").json()["total"] == 4
            api.close()
        finally:
            s.stop()


def test_help_documents_the_dscc_options():
    out = subprocess.run([sys.executable, REFSERVER, "--help"], capture_output=True,
                         text=True, check=True).stdout
    for opt in ["--dialect", "--client-id", "--client-secret", "--client-secret-file",
                "--token-ttl", "--device-types", "--spec"]:
        assert opt in out, opt


def test_bad_dscc_command_lines_fail(tmp_path):
    for args in (["--device-types", "3"], ["--arrays", "2"], ["--token-ttl", "0"],
                 ["--spec", str(tmp_path / "missing.json")]):
        r = subprocess.run([sys.executable, REFSERVER, "--dialect", "dscc",
                            "--listen", "127.0.0.1:0"] + args, capture_output=True, text=True,
                           timeout=10)
        assert r.returncode != 0 and r.stdout == "", args


def test_every_route_is_a_spec_operation():
    sys.path.insert(0, oc.HERE)
    import dialect_dscc
    spec = oc.load_spec()
    for template, handlers in dialect_dscc.DSCC_ROUTES:
        if template == dialect_dscc.DSCC_TOKEN_PATH:
            continue
        assert template in spec["paths"], template
        for method in handlers:
            assert method.lower() in spec["paths"][template], (method, template)


# --------------------------------------------------------------------------
# tokens

def test_token_endpoint(srv):
    c = srv.client()
    r = token_request(c, "grant_type=client_credentials", basic("dsfs-demo", "dsfs-demo-secret"))
    assert r.status == 200, r
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 7200
    assert body["access_token"].count(".") == 2          # JWT-shaped
    assert r.headers["cache-control"] == "no-store"
    r2 = token_request(c, "grant_type=client_credentials&client_id=dsfs-demo&"
                          "client_secret=dsfs-demo-secret")
    assert r2.status == 200 and r2.json()["access_token"] != body["access_token"]
    for form, hdrs, status, code in [
            ("grant_type=client_credentials", basic("dsfs-demo", "nope"), 401, "invalid_client"),
            ("grant_type=client_credentials&client_id=x&client_secret=y", None, 401,
             "invalid_client"),
            ("grant_type=client_credentials", None, 401, "invalid_client"),
            ("client_id=dsfs-demo&client_secret=dsfs-demo-secret", None, 400,
             "invalid_request"),
            ("grant_type=password&client_id=dsfs-demo&client_secret=dsfs-demo-secret", None,
             400, "unsupported_grant_type")]:
        r = token_request(c, form, hdrs)
        assert r.status == status, (form, r)
        assert r.json()["error"] == code and r.json()["error_description"]
    r = c.request("POST", "/oauth2/token", {"grant_type": "client_credentials"},
                  headers=basic("dsfs-demo", "dsfs-demo-secret"))
    assert r.status == 400 and r.json()["error"] == "invalid_request"
    assert c.get("/oauth2/token").status == 405
    c.close()


def test_bearer_token_required_everywhere(srv, api):
    c = srv.client()
    for path in ["/api/v1/storage-systems", "/api/v1/tasks", "/api/v1/host-initiators",
                 "/api/v1/volumes/abc"]:
        r = c.get(path)
        assert_error(r, 401, "bearer")
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = c.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert_error(r, 401, "expired")
        r = c.get(path, headers=basic("dsfs-demo", "dsfs-demo-secret"))
        assert_error(r, 401)
    r = c.post("/api/v1/host-initiators", {"name": "x"})
    assert_error(r, 401)
    assert api.get("/api/v1/storage-systems").status == 200
    c.close()


def test_token_expiry_sim_tokens_and_expire_all(refserver_factory):
    s = refserver_factory("--dialect", "dscc", "--test-controls", "--token-ttl", "1",
                          "--client-id", "cid", "--client-secret", "s3cret")
    c = s.client()
    r = token_request(c, "grant_type=client_credentials", basic("cid", "s3cret"))
    assert r.status == 200 and r.json()["expires_in"] == 1
    short = Api(s, r.json()["access_token"])
    r = s.sim("POST", "/tokens", {"ttl": 3600})
    assert r.status == 200 and r.json()["expires_in"] == 3600
    long = Api(s, r.json()["access_token"])
    assert s.sim("POST", "/tokens", {}).json()["expires_in"] >= 86400 * 365
    assert s.sim("POST", "/tokens", {"ttl": -1}).status == 422
    assert s.sim("GET", "/sessions").json() == {"active": 3}
    short.get("/api/v1/storage-systems")
    time.sleep(1.2)
    assert_error(short.get("/api/v1/storage-systems", status=None), 401, "expired")
    long.get("/api/v1/storage-systems")
    assert s.sim("POST", "/sessions/expire").status == 204
    assert s.sim("GET", "/sessions").json() == {"active": 0}
    assert_error(long.get("/api/v1/storage-systems", status=None), 401)
    # a client secret change: the old one is refused, the new one works
    assert s.sim("POST", "/password", {"password": "n3w"}).status == 204
    assert token_request(c, "grant_type=client_credentials", basic("cid", "s3cret")).status == 401
    assert token_request(c, "grant_type=client_credentials", basic("cid", "n3w")).status == 200
    c.close()


def test_client_secret_file(refserver_factory, tmp_path):
    f = tmp_path / "secret"
    f.write_text("from-file\n")
    s = refserver_factory("--dialect", "dscc", "--client-secret-file", str(f))
    c = s.client()
    assert token_request(c, "grant_type=client_credentials",
                         basic("dsfs-demo", "from-file")).status == 200
    c.close()


# --------------------------------------------------------------------------
# every endpoint answers the spec's shape

def test_every_get_endpoint_matches_the_spec(srv, api):
    """Walk every GET route; Api.get validates each answer strictly against the spec."""
    srv.sim("POST", "/stats/reset")
    systems = api.items("/api/v1/storage-systems")
    assert {s["productFamily"] for s in systems} == {"deviceType1", "deviceType2"}
    for s in systems:
        sid = s["id"]
        one = api.get("/api/v1/storage-systems/" + sid).json()
        assert one["id"] == sid and one["name"] == s["name"]
        fleet = "/api/v1/storage-systems/" + sid
        assert {v["systemId"] for v in api.items(fleet + "/volumes")} == {sid}
        pools = api.items(fleet + "/storage-pools")
        assert api.get("%s/storage-pools/%s" % (fleet, pools[0]["id"])).json()["id"] == \
            pools[0]["id"]
        api.get("%s/storage-pools/%s/volumes" % (fleet, pools[0]["id"]))
        vsets = api.items(fleet + "/volume-sets")
        assert api.get("%s/volume-sets/%s" % (fleet, vsets[0]["id"])).json()["volumesCount"] \
            == len(vsets[0]["members"])
        dt = 1 if s["productFamily"] == "deviceType1" else 2
        base = "%s/%s" % (DT1 if dt == 1 else DT2, sid)
        assert sid in [x["id"] for x in api.items(DT1 if dt == 1 else DT2)]
        assert api.get(base).json()["id"] == sid
        dpools = api.items(base + "/storage-pools")
        assert [p["id"] for p in dpools] == [p["id"] for p in pools]
        api.get("%s/storage-pools/%s" % (base, dpools[0]["id"]))
        if dt == 1:
            api.get("%s/storage-pools/%s/volumes" % (base, dpools[0]["id"]))
        vols = api.items(base + "/volumes")
        v = vols[0]
        assert (HEX32 if dt == 1 else HEX42).match(v["id"]), v["id"]
        got = api.get("%s/volumes/%s" % (base, v["id"])).json()
        assert got["id"] == v["id"] and got["name"] == v["name"]
        if dt == 1:
            assert v["sizeMiB"] >= v["usedSizeMiB"] > 0 and v["systemId"] == sid
            assert set(v["creationTime"]) == {"ms", "tz"}
            assert api.items("%s/volumes/%s/vluns" % (base, v["id"]))   # volume 1 is exported
        else:
            assert v["size"] > 0 and isinstance(v["creation_time"], int)
            assert v["access_control_records"]
        snaps = api.items("%s/volumes/%s/snapshots" % (base, v["id"]))
        assert len(snaps) == 3
        sn = api.get("%s/volumes/%s/snapshots/%s" % (base, v["id"], snaps[0]["id"])).json()
        assert sn["id"] == snaps[0]["id"]
    vols = api.all_items("/api/v1/volumes")
    assert len(vols) == 24
    assert api.get("/api/v1/volumes/" + vols[-1]["id"]).json()["name"] == vols[-1]["name"]
    vsets = api.items("/api/v1/volume-sets")
    assert len(vsets) == 6
    assert api.get("/api/v1/volume-sets/" + vsets[0]["id"]).json()["id"] == vsets[0]["id"]
    assert api.get("/api/v1/volume-sets/%s/volumes" % vsets[0]["id"]).json()["members"] == \
        vsets[0]["members"]
    hosts = api.items("/api/v1/host-initiators")
    assert len(hosts) == 10 and all(h["initiators"] for h in hosts)
    h = api.get("/api/v1/host-initiators/" + hosts[0]["id"]).json()
    assert h["hostGroups"][0]["name"] == "hg-cluster-a"
    assert api.items("/api/v1/host-initiators/%s/volumes" % hosts[0]["id"])
    groups = api.items("/api/v1/host-initiator-groups")
    assert [g["name"] for g in groups][:3] == ["hg-cluster-a", "hg-cluster-b", "hg-spare"]
    assert api.get("/api/v1/host-initiator-groups/" + groups[0]["id"]).json()["hosts"]
    inits = api.items("/api/v1/initiators")
    assert api.get("/api/v1/initiators/" + inits[0]["id"]).json()["address"] == \
        inits[0]["address"]
    issues = api.items("/api/v1/issues")
    assert issues and all(UUID.match(i["id"]) for i in issues)
    assert api.get("/api/v1/issues/" + issues[0]["id"]).json()["title"] == issues[0]["title"]
    api.get("/api/v1/tasks")
    api.get("/api/v1/tasks/00000000-0000-4000-8000-000000000000", status=404)
    events = api.items("/api/v1/audit-events")
    assert events and all(UUID.match(e["id"]) for e in events)
    # every GET route was used
    import dialect_dscc
    gets = {t for t, hs in dialect_dscc.DSCC_ROUTES if "GET" in hs}
    used = {k.split(" ", 1)[1] for k in srv.sim("GET", "/stats").json() if k.startswith("GET ")}
    assert gets - used == set()


def test_not_found_and_method_not_allowed(srv, api, ids):
    s1, s2 = ids[1]["sys"], ids[2]["sys"]
    for path in ["/api/v1/storage-systems/nope", DT1 + "/" + s2, DT2 + "/" + s1,
                 "%s/volumes/%s" % (ids[1]["base"], "0" * 32), "/api/v1/tasks/" + "0" * 8,
                 "/api/v1/nothing-here", "/api/v2/volumes", "/storageplugin/api/server"]:
        assert_error(api.get(path, status=None), 404)
    r = api.req("PATCH", "/api/v1/host-initiators", status=405)
    assert r.headers["allow"] == "GET, POST"
    api.req("POST", "/api/v1/issues", {}, status=405)
    api.req("DELETE", "/api/v1/volumes/" + ids[1]["vols"][0], status=405)


# --------------------------------------------------------------------------
# lists

def test_list_shape_paging_and_page_max(refserver_factory):
    s = refserver_factory("--dialect", "dscc", "--page-max", "3", "--volumes", "7",
                          "--device-types", "1")
    api = Api(s)
    sid = api.items("/api/v1/storage-systems")[0]["id"]
    path = "%s/%s/volumes" % (DT1, sid)
    page = api.get(path).json()
    assert set(page) == {"items", "total", "pageLimit", "pageOffset", "requestUri"}
    assert (page["total"], page["pageLimit"], page["pageOffset"]) == (7, 3, 0)
    assert page["requestUri"] == path and len(page["items"]) == 3
    assert api.get(path + "?limit=100").json()["pageLimit"] == 3
    assert len(api.items(path + "?limit=2")) == 2
    every = api.all_items(path)
    assert [v["name"] for v in every] == ["vol-%s" % v["name"][4:] for v in every]
    assert len(every) == 7 and len({v["id"] for v in every}) == 7
    assert every == api.all_items(path, limit=2)              # stable order
    assert api.get(path + "?offset=6").json()["items"] == every[6:]
    assert api.get(path + "?offset=70").json() == {"items": [], "total": 7, "pageLimit": 3,
                                                   "pageOffset": 70, "requestUri": path}
    assert api.get(path + "?limit=0").json()["items"] == []
    for bad in ["limit=x", "limit=-1", "offset=-2", "offset=1.5"]:
        assert_error(api.get(path + "?" + bad, status=None), 400)
    tasks = api.get("/api/v1/tasks").json()
    # TaskList has no requestUri
    assert set(tasks) == {"items", "total", "pageLimit", "pageOffset"}
    api.close()


def test_filter_sort_select(srv, api, ids):
    path = ids[1]["base"] + "/volumes"
    vols = api.items(path)
    name = vols[2]["name"]
    got = api.items(path + "?filter=" + q("name eq '%s'" % name))
    assert [v["id"] for v in got] == [vols[2]["id"]]
    page = api.get(path + "?filter=" + q("sizeMiB ge 512000 and thinProvisioned eq true")).json()
    want = [v for v in vols if v["sizeMiB"] >= 512000 and v["thinProvisioned"]]
    assert page["total"] == len(want) and [v["id"] for v in page["items"]] == \
        [v["id"] for v in want]
    got = api.items(path + "?filter=" + q("name eq '%s' or name eq '%s'" % (
        vols[0]["name"], vols[1]["name"])))
    assert len(got) == 2
    got = api.items(path + "?filter=" + q("'%s' in name" % name[4:8]))
    assert all(name[4:8] in v["name"] for v in got) and got
    got = api.items(path + "?filter=" + q("not (state.overall eq 'STATE_NORMAL')"))
    assert got == []
    desc = api.items(path + "?sort=" + q("name desc"))
    assert [v["name"] for v in desc] == sorted((v["name"] for v in vols), reverse=True)
    two = api.items(path + "?sort=" + q("sizeMiB,name desc"))
    assert [(v["sizeMiB"], v["name"]) for v in two] == sorted(
        ((v["sizeMiB"], v["name"]) for v in vols), key=lambda e: (e[0], [-ord(ch) for ch in e[1]]))
    sel = api.get(path + "?select=id,name,userSpace.usedMiB&limit=2", check=False).json()
    assert sel["items"] == [{"id": v["id"], "name": v["name"],
                             "userSpace": {"usedMiB": v["userSpace"]["usedMiB"]}}
                            for v in vols[:2]]
    one = api.get("%s/%s?select=name" % (path, vols[0]["id"]), check=False).json()
    assert one == {"name": vols[0]["name"]}
    for bad, word in [("filter=" + q("nosuch eq 1"), "nosuch"),
                      ("filter=" + q("name eq"), "filter"),
                      ("filter=" + q("name like 'x'"), "like"),
                      ("sort=" + q("nosuch"), "nosuch"), ("sort=" + q("name sideways"), "sort"),
                      ("select=nosuch", "nosuch")]:
        assert_error(api.get(path + "?" + bad, status=None), 400, word)
    # tasks filter on their state
    assert api.get("/api/v1/tasks?filter=" + q("state eq 'NOPE'")).json()["total"] == 0


# --------------------------------------------------------------------------
# tasks and their effects

def test_snapshot_create_task_lifecycle(srv, api, ids):
    base, vid = ids[1]["base"], ids[1]["vols"][1]
    snaps = base + "/volumes/%s/snapshots" % vid
    before = api.items(snaps)
    r = api.post(snaps, {"namePattern": "CUSTOM", "customName": "before-upgrade",
                         "expireSecs": 86400, "comment": "dsfs test"}, status=202)
    assert set(r.json()) == {"taskUri", "status", "message"}
    uri = api.task(r)
    t = api.get(uri).json()
    assert t["state"] in ("INITIALIZED", "RUNNING") and t["progressPercent"] < 100
    assert t["type"] == "task" and t["resourceUri"] == uri and t["error"] is None
    assert t["suggestedPollingIntervalSeconds"] >= 1
    assert [x["type"] for x in t["associatedResources"]] == ["volume", "snapshot"]
    assert [s["name"] for s in api.items(snaps)] == [s["name"] for s in before]  # not yet
    seen, logs = [], 0
    while True:
        t = api.get(uri).json()
        seen.append(t["progressPercent"])
        assert len(t["logMessages"]) >= logs
        logs = len(t["logMessages"])
        if t["state"] == "SUCCEEDED":
            break
        time.sleep(0.03)
    assert seen == sorted(seen) and seen[-1] == 100
    assert t["logMessages"][0]["message"] == "Task created"
    assert t["logMessages"][-1]["message"] == "Task succeeded" and t["endedAt"]
    after = api.items(snaps)
    assert len(after) == len(before) + 1
    new = after[-1]
    assert new["name"] == "before-upgrade" and new["comment"] == "dsfs test"
    assert new["expirationTime"]["ms"] > new["creationTime"]["ms"]
    assert api.get("%s/%s" % (snaps.replace("/volumes/%s/" % vid, "/volumes/%s/" % vid),
                              new["id"])).json()["name"] == "before-upgrade"
    # a duplicate name is refused at once
    api.post(snaps, {"namePattern": "CUSTOM", "customName": "before-upgrade"}, status=409)
    # the generated name patterns
    t = api.wait(api.post(snaps, {"namePattern": "PARENT_SEC_SINCE_EPOCH"}, status=202))
    assert t["state"] == "SUCCEEDED"
    vname = api.get("%s/volumes/%s" % (base, vid)).json()["name"]
    assert re.match(r"^%s\.\d{10}$" % re.escape(vname), api.items(snaps)[-1]["name"])
    # delete through a task
    t = api.wait(api.delete("%s/%s" % (snaps, new["id"]), status=202))
    assert t["state"] == "SUCCEEDED"
    assert new["id"] not in [s["id"] for s in api.items(snaps)]
    api.get("%s/%s" % (snaps, new["id"]), status=404)


def test_fail_prefix_makes_the_task_fail(srv, api, ids):
    base, vid = ids[2]["base"], ids[2]["vols"][1]
    snaps = base + "/volumes/%s/snapshots" % vid
    n = len(api.items(snaps))
    t = api.wait(api.post(snaps, {"name": "fail-nightly"}, status=202))
    assert t["state"] == "FAILED" and t["healthStatus"] == "ERROR"
    assert set(t["error"]) == {"error", "errorCode", "traceId"}
    assert "fail-nightly" in t["error"]["error"]
    assert t["logMessages"][-1]["message"].startswith("Task failed")
    assert len(api.items(snaps)) == n
    t = api.wait(api.post("%s/volumes/%s/clone" % (base, vid),
                          {"clone_volume_name": "fail-clone"}, status=202))
    assert t["state"] == "FAILED"
    assert "fail-clone" not in [v["name"] for v in api.items(base + "/volumes")]
    failed = api.get("/api/v1/tasks?filter=" + q("state eq 'FAILED'")).json()["items"]
    assert {x["displayName"] for x in failed} >= {t["displayName"]}


def test_request_body_validation(srv, api, ids):
    snaps = "%s/volumes/%s/snapshots" % (ids[1]["base"], ids[1]["vols"][0])
    for body, words in [({}, ["namePattern", "required"]),
                        ({"namePattern": "NOW"}, ["namePattern", "PARENT_TIMESTAMP"]),
                        ({"namePattern": "CUSTOM"}, ["customName"]),
                        ({"namePattern": "CUSTOM", "customName": 7}, ["customName", "string"]),
                        ({"namePattern": "PARENT_TIMESTAMP", "expireSecs": "1d"},
                         ["expireSecs", "integer"]),
                        ({"namePattern": "PARENT_TIMESTAMP", "name": "x"},
                         ["name", "unknown property"]),
                        ([], ["expected object"])]:
        assert_error(api.post(snaps, body, status=None), 400, *words)
    assert_error(api.post(snaps, raw=b"{nope", status=None), 400, "JSON")
    assert_error(api.post(snaps, raw=b"", status=None), 400, "body")
    assert_error(api.post(snaps, raw=b'{"namePattern": "CUSTOM"}', content_type="text/plain",
                          status=None), 415)
    assert_error(api.post("/api/v1/host-initiators", {
        "name": "h", "operatingSystem": "Linux", "userCreated": True,
        "initiatorsToCreate": [{"address": "iqn.x"}]}, status=None), 400,
        "initiatorsToCreate[0].protocol")
    assert_error(api.post(ids[1]["base"] + "/volumes", {"name": "v", "userCpg": "SSD_r6"},
                          status=None), 400, "sizeMib")
    assert_error(api.req("DELETE", "%s/%s" % (snaps, "0" * 32), {"x": 1}, status=None), 400)
    # nothing happened
    assert "h" not in [h["name"] for h in api.items("/api/v1/host-initiators")]


def test_sim_requests_records_what_was_sent(srv, api, ids):
    assert srv.sim("DELETE", "/requests").status == 204
    snaps = "%s/volumes/%s/snapshots" % (ids[1]["base"], ids[1]["vols"][2])
    api.post(snaps, {"namePattern": "PARENT_TIMESTAMP", "readOnly": True}, status=202)
    api.post(snaps, {"namePattern": "BAD"}, status=400)
    api.get(snaps)
    api.delete(snaps + "/" + "0" * 32 + "?force=true", status=404)
    reqs = srv.sim("GET", "/requests").json()["requests"]
    assert [(x["method"], x["status"]) for x in reqs] == [("POST", 202), ("POST", 400),
                                                         ("DELETE", 404)]
    first = reqs[0]
    assert first["path"] == snaps and first["query"] == ""
    assert first["template"] == DT1 + "/{systemId}/volumes/{id}/snapshots"
    assert first["body"] == {"namePattern": "PARENT_TIMESTAMP", "readOnly": True}
    assert first["contentType"] == "application/json"
    assert reqs[2]["query"] == "force=true" and reqs[2]["body"] is None
    # what a test of dsfs does with them
    assert oc.check_request(first["method"], first["path"], first["body"]) == []
    assert oc.check_request(reqs[1]["method"], reqs[1]["path"], reqs[1]["body"])
    assert len(srv.sim("GET", "/requests?limit=1").json()["requests"]) == 1
    srv.sim("DELETE", "/requests")
    assert srv.sim("GET", "/requests").json() == {"requests": []}


def test_dt1_volume_actions(srv, api, ids):
    base = ids[1]["base"]
    vols = base + "/volumes"
    groups = api.items("/api/v1/host-initiator-groups")
    spare = next(g for g in groups if g["name"] == "hg-spare")
    cluster_b = next(g for g in groups if g["name"] == "hg-cluster-b")
    # create
    api.post(vols, {"name": "new-db", "userCpg": "NO_SUCH", "sizeMib": 1024}, status=422)
    t = api.wait(api.post(vols, {"name": "new-db", "userCpg": "SSD_r1", "sizeMib": 20480,
                                 "comments": "made by a test"}, status=202))
    assert t["state"] == "SUCCEEDED"
    new = next(v for v in api.items(vols) if v["name"] == "new-db")
    assert new["sizeMiB"] == 20480 and new["userCpgName"] == "SSD_r1"
    assert new["comment"] == "made by a test" and HEX32.match(new["id"])
    api.post(vols, {"name": "new-db", "userCpg": "SSD_r1", "sizeMib": 1}, status=409)
    t = api.wait(api.post(vols, {"name": "multi", "userCpg": "SSD_r6", "sizeMib": 1024,
                                 "count": 2}, status=202))
    assert {"multi.0", "multi.1"} <= {v["name"] for v in api.items(vols)}
    # clone
    t = api.wait(api.post("%s/%s/clone" % (vols, new["id"]), {"destinationVolume": "new-db-copy"},
                          status=202))
    clone = next(v for v in api.items(vols) if v["name"] == "new-db-copy")
    assert clone["copyOfID"] == new["volumeId"] and clone["sizeMiB"] == 20480
    # export, vluns, host volumes, un-export
    api.post("%s/%s/export" % (vols, new["id"]), {}, status=422)
    api.post("%s/%s/export" % (vols, new["id"]), {"hostGroupIds": ["0" * 32]}, status=404)
    r = api.post("%s/%s/export" % (vols, new["id"]), {"hostGroupIds": [cluster_b["id"]],
                                                       "autoLun": True, "proximity": "PRIMARY"})
    assert api.get("%s/%s/vluns" % (vols, new["id"])).json()["items"] == []
    assert api.wait(r)["state"] == "SUCCEEDED"
    vluns = api.items("%s/%s/vluns" % (vols, new["id"]))
    assert {v["remoteName"] for v in vluns} == {h["name"] for h in cluster_b["hosts"]}
    got = api.get("%s/%s" % (vols, new["id"])).json()
    assert {i["id"] for i in got["initiators"]} == {h["id"] for h in cluster_b["hosts"]}
    hv = api.items("/api/v1/host-initiators/%s/volumes" % cluster_b["hosts"][0]["id"])
    assert "new-db" in [x["volumeName"] for x in hv]
    api.post("%s/%s/export" % (vols, new["id"]), {"hostGroupIds": [cluster_b["id"]]},
             status=409)
    api.post("%s/%s/un-export" % (vols, new["id"]), {"hostGroupIds": [spare["id"]]}, status=422)
    api.delete("%s/%s" % (vols, new["id"]), status=409)        # exported
    assert api.wait(api.post("%s/%s/un-export" % (vols, new["id"]),
                             {"hostGroupIds": [cluster_b["id"]]}))["state"] == "SUCCEEDED"
    assert api.items("%s/%s/vluns" % (vols, new["id"])) == []
    # promote a snapshot (the device-type1 restore)
    snaps = "%s/%s/snapshots" % (vols, ids[1]["vols"][3])
    sn = api.items(snaps)[0]
    api.post("%s/%s" % (snaps, sn["id"]), {"target": "no-such-volume"}, status=422)
    t = api.wait(api.post("%s/%s" % (snaps, sn["id"]), {"pri": "PRIORITYTYPE_HIGH"},
                          status=202))
    assert t["state"] == "SUCCEEDED"
    assert api.get("%s/%s" % (vols, ids[1]["vols"][3])).json()["usedSizeMiB"] == \
        sn["usedSizeMiB"]
    # delete: clones and snapshots block it, cascade / unExport lift that
    api.delete("%s/%s" % (vols, new["id"]), status=409)        # has a clone
    assert api.wait(api.delete("%s/%s" % (vols, clone["id"]), status=202))["state"] == \
        "SUCCEEDED"
    assert api.wait(api.delete("%s/%s" % (vols, new["id"]), status=202))["state"] == \
        "SUCCEEDED"
    api.get("%s/%s" % (vols, new["id"]), status=404)
    api.get("/api/v1/volumes/" + new["id"], status=404)
    old = ids[1]["vols"][4]                                    # exported, with snapshots
    assert_error(api.delete("%s/%s?unExport=true" % (vols, old), status=None), 409,
                 "snapshot")
    assert_error(api.delete("%s/%s?cascade=true" % (vols, old), status=None), 409, "export")
    assert api.wait(api.delete("%s/%s?cascade=true&unExport=true" % (vols, old),
                               status=202))["state"] == "SUCCEEDED"


def test_dt2_volume_actions(srv, api, ids):
    base = ids[2]["base"]
    vols = base + "/volumes"
    vid = ids[2]["vols"][3]
    snaps = "%s/%s/snapshots" % (vols, vid)
    t = api.wait(api.post(snaps, {"name": "pre-patch", "writable": False,
                                  "metadata": [{"key": "by", "value": "test"}]}, status=202))
    sn = next(s for s in api.items(snaps) if s["name"] == "pre-patch")
    assert sn["metadata"] == [{"key": "by", "value": "test"}] and HEX42.match(sn["id"])
    assert api.get("%s/%s" % (vols, vid)).json()["last_snap"]["snap_id"] == sn["id"]
    api.post("%s/%s/actions/restore" % (vols, vid), {"base_snap_id": "0" * 42}, status=422)
    api.post("%s/%s/actions/restore" % (vols, vid), {}, status=400)
    oldest = api.items(snaps)[0]
    t = api.wait(api.post("%s/%s/actions/restore" % (vols, vid),
                          {"base_snap_id": oldest["id"]}, status=202))
    assert t["state"] == "SUCCEEDED"
    assert api.get("%s/%s" % (vols, vid)).json()["total_usage_bytes"] == \
        oldest["new_data_uncompressed_bytes"]
    t = api.wait(api.post("%s/%s/clone" % (vols, vid), {"clone_volume_name": "dev-copy"},
                          status=202))
    c = next(v for v in api.items(vols) if v["name"] == "dev-copy")
    assert c["clone"] is True and c["parent_vol_id"] == vid
    api.post(vols, {"name": "no-size"}, status=422)
    t = api.wait(api.post(vols, {"name": "scratch", "size": 4096}, status=202))
    new = next(v for v in api.items(vols) if v["name"] == "scratch")
    assert new["size"] == 4096
    g = api.items("/api/v1/host-initiator-groups")[1]
    t = api.wait(api.post("%s/%s/export" % (vols, new["id"]), {"hostGroups": [g["id"]]},
                          status=202))
    acr = api.get("%s/%s" % (vols, new["id"])).json()["access_control_records"]
    assert [a["initiator_group_id"] for a in acr] == [g["id"]]
    api.delete("%s/%s" % (vols, new["id"]), status=409)
    assert api.wait(api.delete("%s/%s?force=true" % (vols, new["id"]),
                               status=202))["state"] == "SUCCEEDED"
    assert "scratch" not in [v["name"] for v in api.items(vols)]
    t = api.wait(api.delete("%s/%s" % (snaps, sn["id"]), status=202))
    assert sn["id"] not in [s["id"] for s in api.items(snaps)]


def test_hosts_and_host_groups(srv, api):
    groups = api.items("/api/v1/host-initiator-groups")
    spare = next(g for g in groups if g["name"] == "hg-spare")
    body = {"name": "db-07", "operatingSystem": "Red Hat Enterprise Linux",
            "userCreated": True, "fqdn": "db-07.example.com", "hostGroupIds": [spare["id"]],
            "initiatorsToCreate": [{"address": "iqn.1994-05.com.redhat:db-07",
                                    "protocol": "iSCSI", "name": "db-07-iscsi"}]}
    r = api.post("/api/v1/host-initiators", body, status=200)
    h = r.json()
    assert h["name"] == "db-07" and HEX32.match(h["id"]) and h["fqdn"] == "db-07.example.com"
    assert [i["address"] for i in h["initiators"]] == ["iqn.1994-05.com.redhat:db-07"]
    assert [g["id"] for g in h["hostGroups"]] == [spare["id"]]
    assert h["id"] in [x["id"] for x in api.items("/api/v1/host-initiators")]
    assert "iqn.1994-05.com.redhat:db-07" in [i["address"] for i in
                                              api.items("/api/v1/initiators")]
    assert h["id"] in [x["id"] for x in api.get("/api/v1/host-initiator-groups/" +
                                                spare["id"]).json()["hosts"]]
    api.post("/api/v1/host-initiators", body, status=409)
    api.post("/api/v1/host-initiators", dict(body, name="other", hostGroupIds=["0" * 32],
                                             initiatorsToCreate=[]), status=404)
    g = api.post("/api/v1/host-initiator-groups", {
        "name": "hg-db", "userCreated": True, "comment": "databases", "hostIds": [h["id"]],
        "hostsToCreate": [{"name": "db-08", "operatingSystem": "Windows Server",
                           "userCreated": True}]}, status=200).json()
    assert sorted(x["name"] for x in g["hosts"]) == ["db-07", "db-08"]
    assert g["comment"] == "databases"
    api.post("/api/v1/host-initiator-groups", {"name": "hg-db", "userCreated": True},
             status=409)
    t = api.wait(api.delete("/api/v1/host-initiator-groups/" + g["id"], status=202))
    assert t["state"] == "SUCCEEDED"
    api.get("/api/v1/host-initiator-groups/" + g["id"], status=404)
    assert "hg-db" not in [x["name"] for x in api.get("/api/v1/host-initiators/" +
                                                      h["id"]).json()["hostGroups"]]
    t = api.wait(api.delete("/api/v1/host-initiators/" + h["id"], status=202))
    api.get("/api/v1/host-initiators/" + h["id"], status=404)
    cluster_a = next(g for g in groups if g["name"] == "hg-cluster-a")
    api.delete("/api/v1/host-initiator-groups/" + cluster_a["id"], status=409)  # exports


# --------------------------------------------------------------------------
# volume edits (PUT)

def pool_free(api, base, name):
    """freeSizeMiB of the device-type1 CPG named name."""
    return next(p["freeSizeMiB"] for p in api.items(base + "/storage-pools")
                if p["name"] == name)


def test_dt1_volume_put(srv, api, ids):
    base = ids[1]["base"]
    vols = base + "/volumes"
    vid, other = ids[1]["vols"][6], ids[1]["vols"][7]
    path = "%s/%s" % (vols, vid)
    v = api.get(path).json()
    cpg = v["userCpgName"]
    free = pool_free(api, base, cpg)
    srv.sim("DELETE", "/requests")
    srv.sim("POST", "/stats/reset")
    r = api.put(path, {"name": "db-renamed", "sizeMib": v["sizeMiB"] + 1024,
                       "userAllocWarning": 70, "snapshotAllocWarning": 60,
                       "conversionType": "CONVERSIONTYPE_DDS", "dataReduction": False,
                       "userCpgName": None}, status=202)
    assert set(r.json()) == {"taskUri", "status", "message"}
    t = api.wait(r)
    assert t["state"] == "SUCCEEDED" and t["displayName"] == "Update volume " + v["name"]
    assert [x["type"] for x in t["associatedResources"]] == ["volume"]
    got = api.get(path).json()
    assert got["name"] == "db-renamed" and got["sizeMiB"] == v["sizeMiB"] + 1024
    assert (got["userAllocWarning"], got["snapshotAllocWarning"]) == (70, 60)
    assert got["conversionType"] == "CONVERSIONTYPE_DDS" and got["dataReduction"] == "OFF"
    assert got["provType"] == "TDVV" and got["dedup"] == "ON" and got["thinProvisioned"]
    assert got["userCpgName"] == cpg and got["userSpace"]["totalMiB"] == got["sizeMiB"]
    assert pool_free(api, base, cpg) == free - 1024         # the growth is charged
    fleet = api.get("/api/v1/volumes/" + vid).json()
    assert fleet["name"] == "db-renamed" and fleet["sizeMiB"] == got["sizeMiB"]
    assert fleet["subType"] == "PROVTYPE_DDS"
    # null fields and an empty body change nothing
    for body in ({"name": None, "sizeMib": None, "userCpgName": None}, {}):
        assert api.wait(api.put(path, body, status=202))["state"] == "SUCCEEDED"
    assert api.get(path).json() == got
    # a move to another CPG charges the whole volume there
    target = next(p["name"] for p in api.items(base + "/storage-pools") if p["name"] != cpg)
    free_to = pool_free(api, base, target)
    free = pool_free(api, base, cpg)
    assert api.wait(api.put(path, {"userCpgName": target, "dataReduction": True},
                            status=202))["state"] == "SUCCEEDED"
    got = api.get(path).json()
    assert got["userCpgName"] == target and got["dataReduction"] == "ON"
    assert pool_free(api, base, target) == free_to - got["sizeMiB"]
    assert pool_free(api, base, cpg) == free + got["sizeMiB"]
    assert vid in [x["id"] for x in api.items("%s/storage-pools/%s/volumes" % (
        base, next(p["id"] for p in api.items(base + "/storage-pools")
                   if p["name"] == target)))]
    # refusals, answered at once and changing nothing
    oname = api.get("%s/%s" % (vols, other)).json()["name"]
    for body, status, words in [
            ({"nmae": "x"}, 400, ["nmae", "unknown property"]),
            ({"sizeMib": "big"}, 400, ["sizeMib", "number"]),
            ({"name": 7}, 400, ["name", "string"]),
            ({"dataReduction": "yes"}, 400, ["dataReduction", "boolean"]),
            ({"conversionType": "FAT"}, 400, ["conversionType"]),
            ({"sizeMib": got["sizeMiB"] - 1}, 400, ["sizeMib", "grow"]),
            ({"sizeMib": got["sizeMiB"] + 0.5}, 400, ["sizeMib", "whole"]),
            ({"userAllocWarning": 101}, 400, ["userAllocWarning"]),
            ({"name": ""}, 400, ["name", "empty"]),
            ({"name": oname}, 409, [oname]),
            ({"userCpgName": "NO_SUCH"}, 422, ["userCpgName", "NO_SUCH"]),
            ({"sizeMib": 10 ** 12}, 422, ["free space"])]:
        assert_error(api.put(path, body, status=None), status, *words)
    assert_error(api.put(path, raw=b"", status=None), 400, "body")
    assert_error(api.put("%s/%s" % (vols, "0" * 32), {"name": "x"}, status=None), 404)
    assert_error(api.put("%s/%s/volumes/%s" % (DT1, ids[2]["sys"], vid), {"name": "x"},
                         status=None), 404)
    assert api.get(path).json() == got
    # a fail- name makes the task fail, without effect
    t = api.wait(api.put(path, {"name": "fail-rename"}, status=202))
    assert t["state"] == "FAILED" and "fail-rename" in t["error"]["error"]
    assert api.get(path).json()["name"] == "db-renamed"
    # counted and recorded like every call
    stats = srv.sim("GET", "/stats").json()
    assert stats["PUT " + DT1 + "/{systemId}/volumes/{id}"] == 20
    reqs = srv.sim("GET", "/requests").json()["requests"]
    assert len(reqs) == 20 and reqs[0]["method"] == "PUT" and reqs[0]["status"] == 202
    assert reqs[0]["template"] == DT1 + "/{systemId}/volumes/{id}"
    assert oc.check_request("PUT", reqs[0]["path"], reqs[0]["body"]) == []


def test_dt2_volume_put(srv, api, ids):
    base = ids[2]["base"]
    vols = base + "/volumes"
    vid, other, exported = ids[2]["vols"][6], ids[2]["vols"][7], ids[2]["vols"][8]
    path = "%s/%s" % (vols, vid)
    v = api.get(path).json()
    t0 = int(time.time())
    body = {"name": "web-renamed", "size": v["size"] + 512, "description": "edited",
            "online": False, "caching_enabled": False, "dedupe_enabled": False,
            "limit_iops": 5000, "limit_mbps": 200, "limit": 90,
            "app_uuid": "rfc4122.00000000-0000-4000-8000-000000000001",
            "perfpolicy_id": "0" * 42, "folder_id": None, "owned_by_group_id": ids[2]["sys"],
            "force": False}
    t = api.wait(api.put(path, body, status=202))
    assert t["state"] == "SUCCEEDED" and t["displayName"] == "Update volume " + v["name"]
    got = api.get(path).json()
    for k in ("name", "size", "online", "caching_enabled", "dedupe_enabled", "limit_iops",
              "limit_mbps", "limit", "app_uuid", "perfpolicy_id"):
        assert got[k] == body[k], k
    assert got["description"] == "edited" and got["vol_state"] == "offline"
    assert got["last_modified"] >= t0 and got["creation_time"] == v["creation_time"]
    assert got["full_name"].endswith(":/web-renamed")
    assert api.get("/api/v1/volumes/" + vid).json()["sizeMiB"] == v["size"] + 512
    # incremental: only what is given changes
    assert api.wait(api.put(path, {"online": True, "description": None},
                            status=202))["state"] == "SUCCEEDED"
    got2 = api.get(path).json()
    assert got2["online"] is True and got2["vol_state"] == "online"
    assert got2["description"] == "edited" and got2["limit_iops"] == 5000
    oname = api.get("%s/%s" % (vols, other)).json()["name"]
    for body, status, words in [
            ({"size": "big"}, 400, ["size", "integer"]),
            ({"size": got2["size"] - 1}, 400, ["size", "grow"]),
            ({"limit_iops": 5}, 400, ["limit_iops"]),
            ({"limit_mbps": 0}, 400, ["limit_mbps"]),
            ({"limit": 101}, 400, ["limit"]),
            ({"bogus": 1}, 400, ["bogus"]),
            ({"online": "no"}, 400, ["online", "boolean"]),
            ({"name": oname}, 409, [oname]),
            ({"size": 10 ** 12}, 422, ["free space"])]:
        assert_error(api.put(path, body, status=None), status, *words)
    assert api.get(path).json() == got2
    # an exported volume goes offline only with force
    epath = "%s/%s" % (vols, exported)
    assert api.get(epath).json()["access_control_records"]
    assert_error(api.put(epath, {"online": False}, status=None), 409, "force")
    assert api.wait(api.put(epath, {"online": False, "force": True},
                            status=202))["state"] == "SUCCEEDED"
    assert api.get(epath).json()["online"] is False
    assert api.wait(api.put(epath, {"online": True}, status=202))["state"] == "SUCCEEDED"


# --------------------------------------------------------------------------
# audit events

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_audit_events_seeded_and_appended(refserver_factory):
    s = refserver_factory("--dialect", "dscc", "--test-controls", "--task-seconds", "0.2",
                          "--volumes", "3")
    api = Api(s)
    page = api.get("/api/v1/audit-events").json()
    assert set(page) == {"items", "total", "pageLimit", "pageOffset"}
    seeded = page["items"]
    # two systems, three host groups, the first volume of each system
    assert page["total"] == len(seeded) == 7
    assert [e["code"] for e in seeded].count("storage-system.register") == 2
    assert [e["code"] for e in seeded].count("host-initiator-group.create") == 3
    times = [e["occurredAt"] for e in seeded]
    assert all(ISO_MS.match(t) for t in times) and times == sorted(times)   # oldest first
    for e in seeded:
        assert UUID.match(e["id"]) and e["state"] == "Success" and e["version"] == 1
        assert set(e["associatedResource"]) == {"id", "name", "type"}
        assert e["message"] and e["userEmail"] and e["customerId"]
    last = times[-1]
    # what a client does: poll for events after the last it saw
    newer = "/api/v1/audit-events?filter=" + q("occurredAt gt '%s'" % last)
    assert api.get(newer).json()["total"] == 0
    s1 = systems_of(api, 1)[0]["id"]
    vid = api.items("%s/%s/volumes" % (DT1, s1))[1]["id"]
    snap_task = api.task(api.post("%s/%s/volumes/%s/snapshots" % (DT1, s1, vid),
                                  {"namePattern": "CUSTOM", "customName": "audited"},
                                  status=202))
    put_task = api.task(api.put("%s/%s/volumes/%s" % (DT1, s1, vid), {"sizeMib": None},
                                status=None))
    api.put("%s/%s/volumes/%s" % (DT1, s1, vid), {"sizeMib": 1}, status=400)   # refused
    api.get("%s/%s/volumes/%s" % (DT1, s1, vid))                               # a GET
    token_request(s.client(), "grant_type=client_credentials",
                  basic("dsfs-demo", "dsfs-demo-secret"))                      # a token
    host = api.post("/api/v1/host-initiators", {
        "name": "audited-host", "operatingSystem": "Linux", "userCreated": True},
        status=200).json()
    api.wait(snap_task)
    api.wait(put_task)
    del_task = api.task(api.delete("/api/v1/host-initiators/" + host["id"], status=202))
    made = s.sim("POST", "/events", {"description": "maintenance window starts"})
    assert made.status == 201
    ev = made.json()
    assert not oc.validate("AuditData", ev, strict=True)
    assert ev["message"] == "maintenance window starts" and ev["code"] == "sim.event"
    new = api.get(newer).json()["items"]
    assert [e["code"] for e in new] == ["snapshot.create", "volume.update",
                                        "host-initiator.create", "host-initiator.delete",
                                        "sim.event"]
    assert new[-1] == ev
    snap, put, hc, hd = new[:4]
    assert snap["taskId"] == snap_task.rsplit("/", 1)[1]
    assert snap["associatedResource"]["type"] == "snapshot"
    assert snap["associatedResource"]["name"] == "audited"
    assert snap["message"].startswith("Create snapshot audited")
    assert put["taskId"] == put_task.rsplit("/", 1)[1]
    assert put["associatedResource"]["id"] == vid
    assert put["scope"] == "%s/%s/volumes/%s" % (DT1, s1, vid)
    assert hc["associatedResource"] == {"id": host["id"], "name": "audited-host",
                                        "type": "host-initiator"}
    assert "taskId" not in hc and hc["message"] == "Create host audited-host"
    assert hd["taskId"] == del_task.rsplit("/", 1)[1]
    assert all(e["userEmail"] == "dsfs-demo@clients.example.com" for e in new[:4])
    assert all(e["sourceIpAddress"] == "127.0.0.1" for e in new[:4])
    stamps = [e["occurredAt"] for e in new]
    assert all(ISO_MS.match(t) for t in stamps)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)    # strictly rising
    # ge includes the event itself; times compare as instants, whatever their form
    ge = api.items("/api/v1/audit-events?filter=" + q("occurredAt ge '%s'" % stamps[2]))
    assert [e["id"] for e in ge] == [e["id"] for e in new[2:]]
    whole = stamps[1][:19] + "Z"                   # the same second, without milliseconds
    assert api.get("/api/v1/audit-events?filter=" + q(
        "occurredAt ge '%s'" % whole)).json()["total"] >= 4
    assert api.get("/api/v1/audit-events?filter=" + q(
        "occurredAt lt '2000-01-01T01:00:00+01:00'")).json()["total"] == 0
    assert api.get("/api/v1/audit-events?filter=" + q(
        "occurredAt gt '%s' and code eq 'volume.update'" % last)).json()["total"] == 1
    # sort, select, paging as the other lists
    desc = api.items("/api/v1/audit-events?sort=" + q("occurredAt desc"))
    assert [e["id"] for e in desc] == [e["id"] for e in seeded + new][::-1]
    sel = api.get("/api/v1/audit-events?select=id,occurredAt&limit=2&offset=1",
                  check=False).json()
    assert sel["total"] == 12 and sel["pageOffset"] == 1
    assert sel["items"] == [{"id": e["id"], "occurredAt": e["occurredAt"]}
                            for e in seeded[1:3]]
    assert_error(api.get("/api/v1/audit-events?filter=" + q("nosuch eq 1"), status=None),
                 400, "nosuch")
    assert s.sim("POST", "/events", {}).status == 422
    assert s.sim("POST", "/events", {"description": 5}).status == 422
    assert "GET /api/v1/audit-events" in s.sim("GET", "/stats").json()
    api.close()


def test_sync_mode_and_stats_and_faults(refserver_factory):
    s = refserver_factory("--dialect", "dscc", "--test-controls", "--sync", "--volumes", "2",
                          "--device-types", "2", "--servers", "1")
    api = Api(s)
    s.sim("POST", "/stats/reset")
    sid = api.items(DT2)[0]["id"]
    vid = api.items("%s/%s/volumes" % (DT2, sid))[0]["id"]
    snaps = "%s/%s/volumes/%s/snapshots" % (DT2, sid, vid)
    uri = api.task(api.post(snaps, {"name": "now"}, status=202))
    t = api.get(uri).json()
    assert t["state"] == "SUCCEEDED" and t["progressPercent"] == 100
    assert "now" in [x["name"] for x in api.items(snaps)]
    api.get("/api/v1/nope", status=404)
    stats = s.sim("GET", "/stats").json()
    assert stats == {"GET /api/v1/storage-systems/device-type2": 1,
                     "GET /api/v1/storage-systems/device-type2/{systemId}/volumes": 1,
                     "POST /api/v1/storage-systems/device-type2/{systemId}/volumes/{volumeId}"
                     "/snapshots": 1,
                     "GET /api/v1/tasks/{id}": 1,
                     "GET /api/v1/storage-systems/device-type2/{systemId}/volumes/{volumeId}"
                     "/snapshots": 1,
                     "GET <unknown>": 1, "total": 6}
    # faults match the raw path from /api/v1 (or /oauth2/token) on
    s.sim("POST", "/faults", {"path": "/api/v1/storage-systems", "status": 503, "count": 1})
    r = api.get(DT2, status=503)
    assert r.headers["retry-after"] == "1"
    api.get(DT2)
    s.sim("POST", "/faults", {"path": "/oauth2/token", "status": 429, "count": 1})
    c = s.client()
    assert token_request(c, "grant_type=client_credentials",
                         basic("dsfs-demo", "dsfs-demo-secret")).status == 429
    assert token_request(c, "grant_type=client_credentials",
                         basic("dsfs-demo", "dsfs-demo-secret")).status == 200
    s.sim("POST", "/faults", {"method": "POST", "path": "/api/v1", "status": 503,
                              "count": 1})
    s.sim("DELETE", "/requests")
    api.post(snaps, {"name": "later"}, status=503)
    reqs = s.sim("GET", "/requests").json()["requests"]
    assert [(x["body"], x["status"]) for x in reqs] == [({"name": "later"}, 503)]
    assert "later" not in [x["name"] for x in api.items(snaps)]
    c.close()
    api.close()


def test_estate_is_deterministic_and_options_apply(refserver_factory):
    args = ("--dialect", "dscc", "--servers", "3", "--volumes", "4", "--snapshots", "2",
            "--hosts", "2", "--seed", "7", "--device-types", "2,1")
    a, b = Api(refserver_factory(*args)), Api(refserver_factory(*args))
    for path in ["/api/v1/storage-systems", "/api/v1/volumes", "/api/v1/host-initiators",
                 "/api/v1/issues", "/api/v1/audit-events"]:
        assert a.get(path).body == b.get(path).body, path
    systems = a.items("/api/v1/storage-systems")
    assert [s["productFamily"] for s in systems] == ["deviceType2", "deviceType1",
                                                     "deviceType2"]
    assert HEX42.match(systems[0]["id"]) and re.match(r"^7CE\d{3}P\d{3}$", systems[1]["id"])
    assert a.get("/api/v1/volumes").json()["total"] == 12
    assert len(a.items("/api/v1/host-initiators")) == 6
    c = Api(refserver_factory("--dialect", "dscc", "--seed", "8", "--servers", "3",
                              "--volumes", "4", "--device-types", "2,1"))
    assert c.get("/api/v1/storage-systems").body != a.get("/api/v1/storage-systems").body
    for x in (a, b, c):
        x.close()


def test_hostile_names(refserver_factory):
    s = refserver_factory("--dialect", "dscc", "--hostile-names", "--volumes", "3",
                          "--servers", "1", "--device-types", "1")
    api = Api(s)
    sid = api.items(DT1)[0]["id"]
    names = [v["name"] for v in api.items("%s/%s/volumes" % (DT1, sid))]
    for awkward in ["", ".", "..", "a/b", "100% full", "line1\nline2", "Ünïcødé-ボリューム"]:
        assert awkward in names, awkward
    assert len(names) == len(set(names)) + 1          # one duplicate
    assert "a/b" in [h["name"] for h in api.items("/api/v1/host-initiators")]
    assert ".." in [g["name"] for g in api.items("/api/v1/host-initiator-groups")]
    vid = api.items("%s/%s/volumes" % (DT1, sid))[0]["id"]
    assert "line1\nline2" in [x["name"] for x in
                              api.items("%s/%s/volumes/%s/snapshots" % (DT1, sid, vid))]
    api.close()


def test_tls(refserver_factory, tmp_path):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (./scripts/check installs it)")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    s = refserver_factory("--dialect", "dscc", "--tls-cert", str(cert), "--tls-key", str(key))
    assert s.url.startswith("https://127.0.0.1:")
    import ssl
    ctx = ssl.create_default_context(cafile=str(cert))
    c = Client(s.url, ssl_context=ctx)
    r = token_request(c, "grant_type=client_credentials", basic("dsfs-demo", "dsfs-demo-secret"))
    assert r.status == 200
    r = c.get("/api/v1/storage-systems", headers={"Authorization": "Bearer " +
                                                  r.json()["access_token"]})
    assert r.status == 200 and r.json()["total"] == 2
    c.close()


# --------------------------------------------------------------------------
# openapi_check itself (no server)

REQUEST_EXAMPLES = [
    ("POST", DT1 + "/S/volumes/V/snapshots", {"namePattern": "CUSTOM", "customName": "s1",
                                              "expireSecs": 3600, "retainSecs": 1800,
                                              "readOnly": True, "comment": "c"}),
    ("POST", DT1 + "/S/volumes", {"name": "v", "userCpg": "SSD_r6", "sizeMib": 1024,
                                  "count": 1, "dataReduction": True}),
    ("POST", DT1 + "/S/volumes/V/clone", {"destinationVolume": "c", "online": True,
                                          "priority": "PRIORITYTYPE_MED"}),
    ("POST", DT1 + "/S/volumes/V/export", {"hostGroupIds": ["g"], "autoLun": True,
                                           "proximity": "ALL"}),
    ("POST", DT1 + "/S/volumes/V/un-export", {"hostGroupIds": ["g"]}),
    ("POST", DT1 + "/S/volumes/V/snapshots/N", {"pri": "PRIORITYTYPE_LOW", "target": "v"}),
    ("POST", DT1 + "/S/volumes/V/snapshots/N", None),
    ("DELETE", DT1 + "/S/volumes/V?cascade=true", None),
    ("POST", DT2 + "/S/volumes/V/snapshots", {"name": "s", "online": False, "writable": False}),
    ("POST", DT2 + "/S/volumes", {"name": "v", "size": 1024, "pool_id": "p"}),
    ("POST", DT2 + "/S/volumes/V/clone", {"clone_volume_name": "c"}),
    ("POST", DT2 + "/S/volumes/V/actions/restore", {"base_snap_id": "x"}),
    ("POST", DT2 + "/S/volumes/V/export", {"hostGroups": ["g"]}),
    ("POST", DT2 + "/S/volumes/V/un-export", {"hostGroups": ["g"]}),
    ("POST", "/api/v1/host-initiators", {"name": "h", "operatingSystem": "Linux",
                                         "userCreated": True, "initiatorsToCreate": [
                                             {"address": "iqn.x", "protocol": "iSCSI"}]}),
    ("POST", "/api/v1/host-initiator-groups", {"name": "g", "userCreated": True,
                                               "hostIds": ["h"]}),
]


@pytest.mark.parametrize("method,path,body", REQUEST_EXAMPLES)
def test_valid_bodies_pass_the_validator(method, path, body):
    assert oc.check_request(method, path, body) == []
    assert oc.check_request(method, path, json.dumps(body) if body is not None else None) == []
    template, _ = oc.find_operation(method, path)
    schema = oc.request_schema(method, template)
    if schema is not None:
        ex = oc.example(schema)
        assert oc.validate(schema, ex, strict=True) == []


def test_validator_reports_each_problem_by_field():
    assert oc.validate("volumePost", {"namePattern": "X", "expireSecs": "a", "foo": 1},
                       strict=True) == [
        'namePattern: "X" is not one of "PARENT_TIMESTAMP", "PARENT_SEC_SINCE_EPOCH", "CUSTOM"',
        "expireSecs: expected integer, got string",
        "foo: unknown property (not in the schema)"]
    assert oc.validate("volumePost", {"namePattern": "CUSTOM", "foo": 1}) == []   # not strict
    assert oc.validate("volumePost", None) == []                               # nullable
    assert oc.validate("createVolumeInput", {"name": None, "userCpg": "x", "sizeMib": 1}) == \
        ["name: must not be null"]
    assert oc.validate({"type": "integer", "format": "int32"}, 2 ** 40) == \
        ["(root): 1099511627776 is out of int32 range"]
    assert oc.validate({"type": "integer"}, True) == ["(root): expected integer, got boolean"]
    assert oc.validate({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00Z") == []
    assert oc.validate({"type": "string", "format": "date-time"}, "yesterday")
    assert oc.validate("Task", {"progressPercent": 101, "error": None}) == \
        ["progressPercent: 101 is more than the maximum 100"]
    assert oc.validate("Task", {"error": {"error": "x"}}) == [
        "error.errorCode: required property is missing",
        "error.traceId: required property is missing"]
    assert oc.validate({"oneOf": [{"type": "string"}, {"type": "integer"}]}, 1.5)
    assert oc.validate({"anyOf": [{"type": "string"}, {"type": "integer"}]}, 1) == []
    errs = oc.check_request("POST", DT1 + "/S/volumes/V/snapshots", None)
    assert errs and "requires a request body" in errs[0]
    assert oc.check_request("POST", "/api/v1/nowhere", {}) == \
        ["POST /api/v1/nowhere: no such operation in the spec"]
    assert oc.check_request("GET", "/api/v1/tasks", {"x": 1})        # GET takes no body


def test_find_operation_prefers_literals():
    assert oc.find_operation("GET", DT1)[0] == DT1
    assert oc.find_operation("GET", "/api/v1/storage-systems/XYZ")[0] == \
        "/api/v1/storage-systems/{id}"
    assert oc.find_operation("GET", "/api/v1/storage-systems/XYZ/volumes?limit=1")[0] == \
        "/api/v1/storage-systems/{systemId}/volumes"
    assert oc.find_operation("DELETE", DT2 + "/S/volumes/V/snapshots/N")[0] == \
        DT2 + "/{systemId}/volumes/{volumeId}/snapshots/{snapshotId}"
    assert oc.find_operation("PATCH", "/api/v1/tasks")[1] is None
    assert oc.response_schema("GET", "/api/v1/tasks/{id}", 200) == \
        {"$ref": "#/components/schemas/Task"}
    assert oc.response_schema("POST", DT1 + "/{systemId}/volumes/{id}/snapshots", 202) == \
        {"$ref": "#/components/schemas/taskResponse"}


def test_every_schema_example_validates():
    spec = oc.load_spec()
    for name in spec["components"]["schemas"]:
        ex = oc.example(name)
        assert oc.validate(name, ex, strict=True) == [], name
