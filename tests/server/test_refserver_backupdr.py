"""Tests of the reference server's backupdr dialect (refserver.py --dialect backupdr).

They check what docs/refserver.md ("Backup and DR mode") promises dsfs: logins
with a bearer token (the demo token, or one from POST /token for a signed
service-account JWT) or HTTP Basic, the session header, paging with a cap,
the seed's filter operators, sort, HEAD counts, OPTIONS, actions and their
jobs, err_code bodies, faults and hostile names.
"""

import base64
import json
import os
import subprocess
import sys
import time
from urllib.parse import quote, urlencode

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from refserver_fixture import Client, module_server, start_refserver, wait_until  # noqa: E402

DEMO = "dsfs-demo-token"


def bdr(*args, **kw):
    return start_refserver("--dialect", "backupdr", "--test-controls", *args, **kw)


class Api:
    """A Backup and DR session: the session header (and bearer) on every call."""

    def __init__(self, srv, token=DEMO, basic=None):
        self.c = Client(srv.url)
        self.token = token
        if basic:
            auth = "Basic " + base64.b64encode(("%s:%s" % basic).encode()).decode()
            self.token = None
        else:
            auth = "Bearer " + token
        r = self.c.request("POST", "/session", headers={"Authorization": auth})
        assert r.status == 200, r
        self.sid = r.json()["session_id"]

    def headers(self, extra=None):
        h = {"backupdr-management-session": "Actifio " + self.sid}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        h.update(extra or {})
        return h

    def req(self, method, path, body=None, status=None, headers=None):
        r = self.c.request(method, path, body, headers=self.headers(headers))
        if status is not None:
            assert r.status == status, r
        return r

    def get(self, path, status=200, **kw):
        return self.req("GET", path, status=status, **kw)

    def items(self, path, status=200):
        return self.get(path, status).json()["items"]

    def post(self, path, body=None, status=204):
        return self.req("POST", path, body, status=status)

    def all(self, path):
        sep = "&" if "?" in path else "?"
        out, off = [], 0
        while True:
            page = self.get("%s%soffset=%d" % (path, sep, off)).json()
            assert page["count"] == len(page["items"])
            out += page["items"]
            if not page["items"]:
                return out
            off += page["count"]


def flt(attr, op_value):
    return "filter=%s:%s" % (attr, quote(op_value, safe=""))


srv = module_server(bdr, "--task-seconds", "0.3", "--page-max", "4", "--snapshots", "3")


@pytest.fixture
def api(srv):
    return Api(srv)


# --------------------------------------------------------------------------
# start-up and login

def test_ready_line_and_help():
    s = bdr()
    try:
        assert s.url.endswith("/actifio")
    finally:
        s.stop()
    out = subprocess.run([sys.executable, os.path.join(HERE, "refserver.py"), "--help"],
                         capture_output=True, text=True, timeout=10).stdout
    assert "backupdr" in out and "--sa-public-key" in out and "--bearer-token" in out


def test_login_bearer_basic_and_refusals(srv):
    c = Client(srv.url)
    r = c.request("POST", "/session", headers={"Authorization": "Bearer " + DEMO})
    assert r.status == 200
    s = r.json()
    assert s["session_id"] and "id" in s and "user" in s and "rights" in s
    r = c.request("POST", "/session", headers={"Authorization": "Bearer nope"})
    assert r.status == 401 and r.json()["err_code"] == 401
    r = c.request("POST", "/session", headers={
        "Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()})
    assert r.status == 401 and "Basic" in r.headers["www-authenticate"]
    r = c.request("POST", "/session")
    assert r.status == 401
    basic = Api(srv, basic=("admin", "admin"))
    assert basic.items("/cluster")
    # a later call without the session header, or with an unknown session
    r = c.request("GET", "/host", headers={"Authorization": "Bearer " + DEMO})
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Actifio")
    assert set(r.json()) == {"err_code", "err_message"}
    r = c.request("GET", "/host", headers={"backupdr-management-session": "Actifio x"})
    assert r.status == 401
    # a Bearer session needs the Bearer header on every call
    bearer = Api(srv)
    r = c.request("GET", "/host", headers={"backupdr-management-session":
                                           "Actifio " + bearer.sid})
    assert r.status == 401
    bearer.get("/host")
    # logout
    bearer.req("DELETE", "/session/current", status=204)
    bearer.get("/host", status=401)


def test_session_expiry_and_no_refresh():
    s = bdr("--session-ttl", "0.6")
    try:
        a = Api(s)
        for _ in range(3):          # each call extends the session
            time.sleep(0.3)
            a.get("/cluster")
        time.sleep(0.35)            # calls that do not refresh let it run out
        a.get("/cluster", headers={"Actifio-No-Session-Refresh": "TRUE"})
        time.sleep(0.35)
        a.get("/cluster", status=401)
        b = Api(s)
        assert s.sim("GET", "/sessions").json()["active"] == 1
        assert s.sim("POST", "/sessions/expire").status == 204
        b.get("/cluster", status=401)
    finally:
        s.stop()


def _jwt(key_file, claims, tmp_path):
    def enc(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    signed = enc({"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
    (tmp_path / "in").write_bytes(signed.encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key_file),
                          str(tmp_path / "in")], capture_output=True, check=True).stdout
    return signed + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def _token(srv, assertion):
    c = Client(srv.root)
    return c.request("POST", "/token", raw=urlencode({
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": assertion}).encode(), content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("form", ["pubkey", "json"])
def test_service_account_token(tmp_path, form):
    key = tmp_path / "sa.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(key)], check=True, capture_output=True)
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", str(other)],
                   check=True, capture_output=True)
    email = "dsfs@proj.iam.gserviceaccount.com"
    if form == "pubkey":
        keyarg = tmp_path / "sa.pub"
        subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(keyarg)],
                       check=True, capture_output=True)
    else:
        keyarg = tmp_path / "sa.json"
        keyarg.write_text(json.dumps({"type": "service_account", "client_email": email,
                                      "private_key": key.read_text()}))
    s = bdr("--sa-public-key", str(keyarg))
    try:
        now = int(time.time())
        claims = {"iss": email, "scope": "https://www.googleapis.com/auth/cloud-platform",
                  "aud": "https://oauth2.googleapis.com/token", "iat": now, "exp": now + 3600}
        r = _token(s, _jwt(key, claims, tmp_path))
        assert r.status == 200, r
        tok = r.json()
        assert tok["token_type"] == "Bearer" and tok["expires_in"] == 3600
        a = Api(s, token=tok["access_token"])
        assert a.items("/cluster")
        # another token of the same principal works for the same session
        tok2 = _token(s, _jwt(key, claims, tmp_path)).json()["access_token"]
        a.token = tok2
        a.get("/cluster")
        # wrong key, wrong audience, missing scope, expired, not a JWT, wrong grant
        r = _token(s, _jwt(other, claims, tmp_path))
        assert r.status == 400 and r.json()["error"] == "invalid_grant"
        for bad in ({"aud": "https://example.com/"}, {"scope": "email"},
                    {"iat": now - 7200, "exp": now - 3600}):
            r = _token(s, _jwt(key, dict(claims, **bad), tmp_path))
            assert r.status == 400, bad
        assert _token(s, "not-a-jwt").status == 400
        c = Client(s.root)
        r = c.request("POST", "/token", raw=b"grant_type=client_credentials",
                      content_type="application/x-www-form-urlencoded")
        assert r.status == 400 and r.json()["error"] == "unsupported_grant_type"
        # /token answers are not logged in the requests kept
        assert all("/token" not in q["path"]
                   for q in s.sim("GET", "/requests").json()["requests"])
    finally:
        s.stop()


# --------------------------------------------------------------------------
# lists

def test_paging_capped_and_complete(srv, api):
    page = api.get("/backup?limit=100").json()
    assert page["count"] == 4 and len(page["items"]) == 4     # --page-max 4
    n = int(api.req("HEAD", "/backup", status=204).headers["actifio-count"])
    everything = api.all("/backup")
    assert len(everything) == n and len({b["id"] for b in everything}) == n
    assert api.get("/backup?offset=%d" % (n + 5)).json() == {"items": [], "count": 0}
    apps = api.all("/application")
    a = apps[0]
    mine = api.all("/backup?" + flt("appid", "=" + a["id"]))
    assert len(mine) == 3 and all(b["appid"] == a["id"] for b in mine)
    for o in everything + apps:
        assert o["id"] and o["href"].endswith("/" + o["id"])
    api.get("/backup?limit=x", status=400)
    api.get("/backup?offset=-1", status=400)


def test_filters(srv, api):
    apps = api.all("/application")
    a, b = apps[0], apps[1]
    # = on one attribute, OR on two values
    two = api.all("/application?%s&%s" % (flt("appname", "=" + a["appname"]),
                                          flt("appname", "=" + b["appname"])))
    assert {x["id"] for x in two} == {a["id"], b["id"]}
    # == as in the seed's examples
    assert [x["id"] for x in api.all("/application?" + flt("id", "==" + a["id"]))] == [a["id"]]
    # =| contains
    part = a["appname"][1:4]
    got = api.all("/application?" + flt("appname", "=|" + part))
    assert got and all(part in x["appname"] for x in got)
    assert len(got) == sum(1 for x in apps if part in x["appname"])
    # >= and <= make a range; AND across attributes
    backups = api.all("/backup")
    dates = sorted(x["backupdate"] for x in backups)
    lo, hi = dates[2], dates[-3]
    rng = api.all("/backup?%s&%s" % (flt("backupdate", ">=%d" % lo),
                                     flt("backupdate", "<=%d" % hi)))
    assert len(rng) == sum(1 for x in backups if lo <= x["backupdate"] <= hi)
    both = api.all("/backup?%s&%s" % (flt("backupdate", ">=%d" % lo),
                                      flt("appid", "=" + a["id"])))
    assert all(x["appid"] == a["id"] and x["backupdate"] >= lo for x in both)
    # =b on a boolean
    prot = api.all("/application?" + flt("isprotected", "=btrue"))
    unprot = api.all("/application?" + flt("isprotected", "=bfalse"))
    assert prot and unprot and len(prot) + len(unprot) == len(apps)
    assert all(x["isprotected"] for x in prot)
    # HEAD with a filter counts the matches, whatever limit says
    r = api.req("HEAD", "/backup?limit=1&" + flt("appid", "=" + a["id"]), status=204)
    assert r.headers["actifio-count"] == "3" and r.body == b""
    # refusals: unknown field, bad operator for the type, not a number
    for q in (flt("nosuch", "=1"), flt("appname", ">=3"), flt("appid", "=abc"),
              flt("isprotected", "=bmaybe"), "filter=appname"):
        r = api.get("/application?" + q, status=400)
        assert r.json()["err_code"] == 400 and r.json()["err_message"]


def test_sort_and_options(srv, api):
    names = [x["appname"] for x in api.all("/application?sort=appname:desc")]
    assert names == sorted(names, reverse=True)
    ids = [int(x["id"]) for x in api.all("/host?sort=id:ASC")]
    assert ids == sorted(ids)
    two = api.all("/backup?sort=appid:asc,backupdate:desc")
    keys = [(int(x["appid"]), -x["backupdate"]) for x in two]
    assert keys == sorted(keys)
    api.get("/host?sort=nosuch:asc", status=400)
    for kind in ("host", "application", "backup", "jobstatus", "cluster", "diskpool", "slt",
                 "slp", "sla", "consistencygroup"):
        o = api.req("OPTIONS", "/" + kind, status=200).json()["GET(list)"]
        fields = {f["field"] for f in o["filterablefields"]}
        assert "id" in fields and o["pageable"] and o["filterable"]
        items = api.items("/" + kind)
        if kind != "jobstatus":
            assert items, kind
            one = api.get("/%s/%s" % (kind, items[0]["id"])).json()
            assert one == items[0]
        api.get("/%s/99999999" % kind, status=404)


def test_a_job_is_read_through_the_list_only(srv, api):
    """V11.0.4 has GET /jobstatus (a list) and no GET /jobstatus/{id}: the console
    answers 404 there, and so does the reference server, even for a job it lists."""
    app = api.items("/application")[0]
    api.post("/application/%s/backup" % app["id"], {"policy": {"id": _policy(api)}})
    job = api.items("/jobstatus")[0]
    r = api.get("/jobstatus/" + job["id"], status=404)
    assert set(r.json()) == {"err_code", "err_message"}
    assert _read_job(api, job["id"])["jobclass"] == "snapshot"


def test_estate_names(srv, api):
    h = api.items("/host")[0]
    assert h["hostname"] and h["name"]
    assert api.items("/application")[0]["appname"]
    assert api.items("/backup")[0]["backupname"]
    b = api.items("/backup")[0]
    assert isinstance(b["backupdate"], int) and b["backupdate"] > 10 ** 15   # microseconds
    assert len(api.all("/cluster")) == 2
    assert len(api.all("/host")) == 10                    # --hosts 5 per appliance
    assert len(api.all("/application")) == 41             # --volumes 20 per appliance + fail-app


# --------------------------------------------------------------------------
# actions and jobs

def _job(api, appid, jobclass, after):
    jobs = api.all("/jobstatus?%s&%s&%s" % (flt("appid", "=" + appid),
                                            flt("jobclass", "=" + jobclass),
                                            flt("queuedate", ">=%d" % after)))
    assert jobs, (appid, jobclass)
    return jobs[0]


def _read_job(api, jid):
    """One job, read as the published API reads it: through the list."""
    items = api.items("/jobstatus?" + flt("id", "=" + jid))
    assert [j["id"] for j in items] == [jid]
    return items[0]


def _finish(api, job, want):
    done = wait_until(lambda: _read_job(api, job["id"])["status"]
                      in ("succeeded", "failed"), timeout=5)
    assert done
    j = _read_job(api, job["id"])
    assert j["status"] == want and j["progress"] == 100 and j["enddate"]
    return j


def _policy(api):
    return api.items("/slt")[0]["policies"][0]["id"]


def test_backup_now_and_its_job(srv, api):
    app = api.all("/application?" + flt("appname", "=|crm"))[0]
    before = len(api.all("/backup?" + flt("appid", "=" + app["id"])))
    t = int(time.time() * 1e6) - 1
    api.post("/application/%s/backup" % app["id"], {"policy": {"id": _policy(api)},
                                                     "label": "nightly", "backuptype": "log"})
    job = _job(api, app["id"], "snapshot", t)
    assert job["status"] in ("queued", "running") and job["appname"] == app["appname"]
    assert set(job) >= {"id", "jobname", "jobclass", "status", "progress", "appid", "appname",
                        "hostname", "queuedate", "startdate", "enddate", "errorcode",
                        "message"}
    _finish(api, job, "succeeded")
    mine = api.all("/backup?" + flt("appid", "=" + app["id"]))
    assert len(mine) == before + 1 and any(b["label"] == "nightly" for b in mine)
    # refusals
    r = api.post("/application/%s/backup" % app["id"], {}, status=400)
    assert "policy" in r.json()["err_message"]
    api.post("/application/%s/backup" % app["id"], {"policy": {"id": "1"}}, status=404)
    api.post("/application/99999999/backup", {"policy": {"id": _policy(api)}}, status=404)
    r = api.c.request("POST", "/application/%s/backup" % app["id"], raw=b"x",
                      content_type="text/plain", headers=api.headers())
    assert r.status == 415
    api.req("GET", "/application/%s/backup" % app["id"], status=405)


def test_backup_job_fails_for_fail_label(srv, api):
    app = api.items("/application")[2]
    before = len(api.all("/backup?" + flt("appid", "=" + app["id"])))
    t = int(time.time() * 1e6) - 1
    api.post("/application/%s/backup" % app["id"], {"policy": {"id": _policy(api)},
                                                     "label": "fail-now"})
    j = _finish(api, _job(api, app["id"], "snapshot", t), "failed")
    assert j["errorcode"] != 0 and "fail-" in j["message"]
    assert len(api.all("/backup?" + flt("appid", "=" + app["id"]))) == before


def test_mount_unmount_restore_clone_expire(srv, api):
    app = api.items("/application")[3]
    host = api.items("/host")[1]
    b = api.all("/backup?" + flt("appid", "=" + app["id"]))[0]
    path = "/backup/%s/" % b["id"]
    api.post(path + "mount", {}, status=400)
    api.post(path + "mount", {"host": {"id": "99999999"}}, status=404)
    api.post(path + "unmount", status=409)                      # not mounted
    for action, body, jobclass in (
            ("mount", {"host": {"id": host["id"]}, "label": "m1"}, "mount"),
            ("restore", {}, "restore"),
            ("clone", {"appname": "crm-copy"}, "clone")):
        t = int(time.time() * 1e6) - 1
        api.post(path + action, body)
        _finish(api, _job(api, app["id"], jobclass, t), "succeeded")
        if action == "mount":
            got = api.get("/backup/" + b["id"]).json()
            assert got["ismounted"] and got["mountedhost"]["id"] == host["id"]
            api.post(path + "expire", status=409)               # mounted
    assert api.all("/application?" + flt("appname", "=crm-copy"))
    assert api.get("/application/" + app["id"]).json()["lastrestoredate"]
    t = int(time.time() * 1e6) - 1
    api.post(path + "unmount")
    _finish(api, _job(api, app["id"], "unmount", t), "succeeded")
    assert not api.get("/backup/" + b["id"]).json()["ismounted"]
    t = int(time.time() * 1e6) - 1
    api.post(path + "expire")
    assert api.get("/backup/" + b["id"]).status == 200          # until the job succeeds
    _finish(api, _job(api, app["id"], "expiration", t), "succeeded")
    r = api.get("/backup/" + b["id"], status=404)
    assert r.json()["err_code"] == 404


def test_jobs_of_fail_application_fail():
    s = bdr("--task-seconds", "0.2", "--hostile-names")
    try:
        api = Api(s)
        c = api.items("/cluster")[0]
        assert c
        b = api.items("/backup")[0]
        # a clone named fail-... fails, and so does every action on a backup labelled so
        for action, body, jobclass in (("clone", {"appname": "fail-clone"}, "clone"),
                                       ("mount", {"host": {"id": b["hostid"]},
                                                  "label": "fail-m"}, "mount"),
                                       ("restore", {"label": "fail-r"}, "restore"),
                                       ("expire", {"label": "fail-e"}, "expiration")):
            t = int(time.time() * 1e6) - 1
            api.post("/backup/%s/%s" % (b["id"], action), body)
            _finish(api, _job(api, b["appid"], jobclass, t), "failed")
        assert api.get("/backup/" + b["id"]).status == 200     # the failed expire kept it
        # every job of the application fail-app fails
        victim = api.all("/application?" + flt("appname", "=fail-app"))[0]
        vb = api.all("/backup?" + flt("appid", "=" + victim["id"]))
        assert vb
        for path, body, jobclass in (
                ("/application/%s/backup" % victim["id"], {"policy": {"id": _policy(api)}},
                 "snapshot"),
                ("/backup/%s/restore" % vb[0]["id"], {}, "restore")):
            t = int(time.time() * 1e6) - 1
            api.post(path, body)
            j = _finish(api, _job(api, victim["id"], jobclass, t), "failed")
            assert "fail-app" in j["message"]
    finally:
        s.stop()


def test_sync_jobs_end_at_once():
    s = bdr("--sync")
    try:
        api = Api(s)
        app = api.items("/application")[0]
        api.post("/application/%s/backup" % app["id"], {"policy": {"id": _policy(api)}})
        j = api.items("/jobstatus")[0]
        assert j["status"] == "succeeded"
    finally:
        s.stop()


# --------------------------------------------------------------------------
# errors, faults, hostile names, stats, requests

def test_errors_and_unknown_paths(srv, api):
    for path, st in (("/nosuch", 404), ("/backup/1/nosuch", 404)):
        r = api.get(path, status=st)
        assert set(r.json()) == {"err_code", "err_message"}
    r = api.req("DELETE", "/backup", status=405)
    assert "GET" in r.headers["allow"]
    r = api.c.request("GET", "/../other")
    assert r.status == 404


def test_faults_stats_and_requests(srv, api):
    srv.sim("POST", "/stats/reset")
    srv.sim("DELETE", "/requests")
    assert srv.sim("POST", "/faults", {"path": "/actifio/backup", "status": 503,
                                       "count": 1}).status == 201
    r = api.get("/backup", status=503)
    assert r.json()["err_code"] == 503 and r.headers["retry-after"] == "1"
    api.get("/backup")
    srv.sim("POST", "/faults", {"path": "/actifio/host", "body": "{not json", "count": 1})
    assert api.get("/host").body == b"{not json"
    first = api.get("/backup").json()["items"]
    srv.sim("POST", "/faults", {"path": "/actifio/backup", "ignore_start": True, "count": 1})
    assert api.get("/backup?offset=4").json()["items"] == first
    srv.sim("DELETE", "/faults")
    app = api.items("/application")[0]
    api.post("/application/%s/backup" % app["id"], {"policy": {"id": _policy(api)}})
    stats = srv.sim("GET", "/stats").json()
    assert stats["GET /actifio/backup"] >= 3
    assert stats["POST /actifio/application/{application_id}/backup"] == 1
    reqs = srv.sim("GET", "/requests").json()["requests"]
    assert reqs[-1]["template"] == "/actifio/application/{application_id}/backup"
    assert reqs[-1]["status"] == 204 and reqs[-1]["body"]["policy"]


def test_hostile_names():
    s = bdr("--hostile-names")
    try:
        api = Api(s)
        hosts = {h["hostname"] for h in api.all("/host")}
        apps = {a["appname"] for a in api.all("/application")}
        backups = {b["backupname"] for b in api.all("/backup")}
        for names in (hosts, apps, backups):
            assert {"", ".", "..", "a/b", "line1\nline2", "Ünïcødé-ボリューム"} <= names
        pools = [p["name"] for p in api.all("/diskpool")]
        assert len(pools) != len(set(pools))                    # a duplicate name
        weird = api.all("/application?" + flt("appname", "=a/b"))
        assert len(weird) == 1
    finally:
        s.stop()


def test_minted_tokens_and_password():
    s = bdr()
    try:
        tok = s.sim("POST", "/tokens", {"ttl": 60}).json()["access_token"]
        Api(s, token=tok).get("/cluster")
        assert s.sim("POST", "/password", {"password": "new"}).status == 204
        c = Client(s.url)
        auth = "Basic " + base64.b64encode(b"admin:admin").decode()
        assert c.request("POST", "/session", headers={"Authorization": auth}).status == 401
        Api(s, basic=("admin", "new")).get("/cluster")
    finally:
        s.stop()


# --------------------------------------------------------------------------
# disk pools, PUT, localaudit

def test_diskpool_capacity_fields(srv, api):
    pools = api.all("/diskpool")
    assert pools
    for p in pools:
        for k in ("capacity_mb", "free_mb", "usage_mb"):
            assert isinstance(p[k], int) and not isinstance(p[k], bool) and p[k] >= 0, (k, p)
        assert p["usage_mb"] == p["capacity_mb"] - p["free_mb"]
        assert "capacitymb" not in p and "usedmb" not in p
    o = api.req("OPTIONS", "/diskpool", status=200).json()["GET(list)"]
    types = {f["field"]: f["type"] for f in o["filterablefields"]}
    assert {k: types[k] for k in ("capacity_mb", "free_mb", "usage_mb")} == {
        "capacity_mb": "Long", "free_mb": "Long", "usage_mb": "Long"}
    assert "capacitymb" not in types and "usedmb" not in types
    frees = sorted(p["free_mb"] for p in pools)
    mid = frees[len(frees) // 2]
    got = api.all("/diskpool?" + flt("free_mb", ">=%d" % mid))
    assert len(got) == sum(1 for f in frees if f >= mid)
    by_usage = [p["usage_mb"] for p in api.all("/diskpool?sort=usage_mb:desc")]
    assert by_usage == sorted(by_usage, reverse=True)


def test_put_host_application_slt_slp(srv, api):
    srv.sim("POST", "/stats/reset")
    srv.sim("DELETE", "/requests")
    clusters = api.all("/cluster")
    hosts = api.all("/host?" + flt("clusterid", "=" + clusters[0]["id"]))
    h, h2 = hosts[2], hosts[3]
    other = api.all("/host?" + flt("clusterid", "=" + clusters[1]["id"]))[0]
    # incremental: what is absent or null keeps its value
    r = api.req("PUT", "/host/" + h["id"], {"name": "db-host", "hostname": "db-host",
                                            "description": "the database host",
                                            "ipaddress": "10.9.8.7", "friendlypath": None},
                status=200)
    got = r.json()
    assert got == api.get("/host/" + h["id"]).json()
    assert (got["name"], got["hostname"], got["description"], got["ipaddress"]) == (
        "db-host", "db-host", "the database host", "10.9.8.7")
    assert got["friendlypath"] == h["friendlypath"] and got["ostype"] == h["ostype"]
    assert got["modifydate"] > h["modifydate"]
    # the objects that refer to the host name it anew
    for a in api.all("/application?" + flt("hostid", "=" + h["id"])):
        assert a["hostname"] == "db-host" and a["host"]["hostname"] == "db-host"
    # an empty body, or only nulls, changes nothing (not even modifydate)
    assert api.req("PUT", "/host/" + h["id"], {}, status=200).json() == got
    assert api.req("PUT", "/host/" + h["id"], {"name": None, "id": None},
                   status=200).json() == got
    # a host name may repeat on another appliance, not on its own
    api.req("PUT", "/host/" + h["id"], {"name": other["name"]}, status=200)
    r = api.req("PUT", "/host/" + h["id"], {"name": h2["name"]}, status=409)
    assert r.json()["err_code"] == 409 and h2["name"] in r.json()["err_message"]
    for body, word in (({"id": "1"}, "id"), ({"href": "/x"}, "href"),
                       ({"modifydate": 1}, "modifydate"), ({"nosuch": 1}, "nosuch"),
                       ({"name": 5}, "name"), ({"hostname": ["x"]}, "hostname"),
                       ({"name": ""}, "name"), ({"ipaddress": "not-an-ip"}, "ipaddress")):
        r = api.req("PUT", "/host/" + h["id"], body, status=400)
        assert word in r.json()["err_message"], (body, r.json())
    r = api.c.request("PUT", "/host/" + h["id"], raw=b"[1]", headers=api.headers())
    assert r.status == 400
    r = api.c.request("PUT", "/host/" + h["id"], raw=b"x", content_type="text/plain",
                      headers=api.headers())
    assert r.status == 415
    api.req("PUT", "/host/99999999", {"name": "x"}, status=404)
    # applications: description, friendlytype, pathname
    app = api.all("/application")[5]
    got = api.req("PUT", "/application/" + app["id"], {
        "description": "orders database", "pathname": "/srv/orders"}, status=200).json()
    assert got == api.get("/application/" + app["id"]).json()
    assert got["description"] == "orders database" and got["pathname"] == "/srv/orders"
    assert got["friendlytype"] == app["friendlytype"] and got["modifydate"] > app["modifydate"]
    r = api.req("PUT", "/application/" + app["id"], {"appname": "x"}, status=400)
    assert "appname" in r.json()["err_message"]
    # templates: name (unique), description; no modifydate
    slts = api.items("/slt")
    got = api.req("PUT", "/slt/" + slts[1]["id"], {"name": "silver-plus",
                                                   "description": "better"},
                  status=200).json()
    assert (got["name"], got["description"]) == ("silver-plus", "better")
    assert "modifydate" not in got and got["policies"] == slts[1]["policies"]
    for sla in api.all("/sla?" + flt("sltid", "=" + slts[1]["id"])):
        assert sla["slt"]["name"] == "silver-plus"
    api.req("PUT", "/slt/" + slts[1]["id"], {"name": slts[0]["name"]}, status=409)
    api.req("PUT", "/slt/" + slts[1]["id"], {"managedbyagm": False}, status=400)
    # profiles: name (unique), description, performancepool (a perf pool of its appliance)
    slps = api.all("/slp")
    slp = slps[0]
    pools = api.all("/diskpool?" + flt("clusterid", "=" + slp["clusterid"]))
    vault = next(p for p in pools if p["pooltype"] == "vault")
    api.req("PUT", "/slp/" + slp["id"], {"performancepool": vault["name"]}, status=404)
    got = api.req("PUT", "/slp/" + slp["id"], {"description": "edited",
                                               "performancepool": slp["performancepool"]},
                  status=200).json()
    assert got["description"] == "edited" and got["modifydate"] > slp["modifydate"]
    api.req("PUT", "/slp/" + slp["id"], {"name": slps[1]["name"]}, status=409)
    # other kinds take no PUT
    r = api.req("PUT", "/backup/" + api.items("/backup")[0]["id"], {}, status=405)
    assert r.headers["allow"] == "GET"
    api.req("PUT", "/host", {}, status=405)
    stats = srv.sim("GET", "/stats").json()
    assert stats["PUT /actifio/host/{host_id}"] == 16
    assert stats["PUT /actifio/slp/{slp_id}"] == 3
    reqs = srv.sim("GET", "/requests").json()["requests"]
    assert reqs[0]["method"] == "PUT" and reqs[0]["template"] == "/actifio/host/{host_id}"
    assert reqs[0]["status"] == 200 and reqs[0]["body"]["name"] == "db-host"


def test_localaudit_seeded_appended_and_polled():
    s = bdr("--task-seconds", "0.2")
    try:
        api = Api(s)
        seeded = api.all("/localaudit")
        assert len(seeded) == 7          # 3 templates, 2 profiles, an SLA, a host edit
        assert int(api.req("HEAD", "/localaudit", status=204).headers["actifio-count"]) == 7
        for rec in seeded:
            assert set(rec) == {"id", "href", "issuedate", "username", "command", "status",
                                "ipaddress", "sessionid"}
            assert rec["href"] == "/actifio/localaudit/" + rec["id"] and rec["status"] == 0
            assert isinstance(rec["issuedate"], int) and rec["issuedate"] > 10 ** 15
            assert api.get("/localaudit/" + rec["id"]).json() == rec
        dates = [r["issuedate"] for r in seeded]
        assert dates == sorted(dates)                       # oldest first
        last = int(seeded[-1]["id"])
        o = api.req("OPTIONS", "/localaudit", status=200).json()["GET(list)"]
        types = {f["field"]: f["type"] for f in o["filterablefields"]}
        assert types["id"] == "Long" and types["issuedate"] == "Date"
        newer = "/localaudit?" + flt("id", ">=%d" % (last + 1))
        assert api.all(newer) == []
        # accepted changes append one record each; refusals, reads and logins do not
        host = api.items("/host")[0]
        app = api.items("/application")[0]
        api.req("PUT", "/host/" + host["id"], {"description": "audited"}, status=200)
        api.req("PUT", "/host/" + host["id"], {"id": "1"}, status=400)
        api.post("/application/%s/backup" % app["id"], {"policy": {"id": _policy(api)}})
        api.post("/application/%s/backup" % app["id"], {}, status=400)
        basic = Api(s, basic=("admin", "admin"))
        basic.get("/localaudit")
        made = s.sim("POST", "/events", {"command": "udstask mkhost -hostname x"})
        assert made.status == 201
        basic.req("DELETE", "/session/current", status=204)
        new = api.all(newer)
        assert [r["command"] for r in new] == [
            "PUT /host/" + host["id"], "POST /application/%s/backup" % app["id"],
            "udstask mkhost -hostname x", "DELETE /session/current"]
        assert new[2] == made.json() and new[2]["username"] == "dsfs-refserver"
        assert [r["username"] for r in new[:2]] == [
            "dsfs-demo@example.iam.gserviceaccount.com"] * 2
        assert new[3]["username"] == "admin"
        assert all(r["status"] == 0 for r in new)
        assert new[0]["ipaddress"] == "127.0.0.1" and new[0]["sessionid"]
        ids = [int(r["id"]) for r in new]
        stamps = [r["issuedate"] for r in new]
        assert ids == sorted(ids) and stamps == sorted(stamps)
        assert len(set(stamps)) == len(stamps)              # strictly rising
        # a range of issuedate, a sort, a count
        rng = api.all("/localaudit?%s&%s" % (flt("issuedate", ">=%d" % stamps[1]),
                                             flt("issuedate", "<=%d" % stamps[2])))
        assert [r["id"] for r in rng] == [r["id"] for r in new[1:3]]
        desc = api.all("/localaudit?sort=issuedate:desc")
        assert [r["id"] for r in desc] == [r["id"] for r in seeded + new][::-1]
        r = api.req("HEAD", newer, status=204)
        assert r.headers["actifio-count"] == "4"
        api.get("/localaudit?" + flt("issuedate", "=|x"), status=400)
        assert s.sim("POST", "/events", {}).status == 422
        assert s.sim("POST", "/events", {"command": 1}).status == 422
        assert s.sim("GET", "/stats").json()["GET /actifio/localaudit"] >= 5
    finally:
        s.stop()
