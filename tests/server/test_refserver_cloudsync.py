"""Tests of the reference server's cloudsync dialect (refserver.py --dialect cloudsync).

They check what docs/refserver.md ("Cloud Sync mode") promises dsfs: tokens
from the refresh-token grant and their expiry, the x-account-id header and
its several accounts, the whole-array lists, syncs whose activity goes to
DONE, FAILED or ABORTED, deleting and creating relationships (bad bodies
too), the 202 list calls whose answers arrive on /messages/client after a
delay among heartbeats and other clients' answers (and how a client matches
its own), the /_sim controls, faults, latency, TLS and hostile names.
"""

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from urllib.parse import quote, urlencode

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from refserver_fixture import Client, module_server, start_refserver, wait_until  # noqa: E402

REFRESH = "dsfs-demo-refresh-token"
CLIENT_ID = "dsfs-demo"
OPS = ("list-s3-buckets", "list-nfs-export-folders")


def cs(*args, **kw):
    return start_refserver("--dialect", "cloudsync", "--test-controls", *args, **kw)


def seg(s):
    return quote(s, safe="") if s not in (".", "..") else s.replace(".", "%2E")


def grant(srv, form=None, json_body=None, ssl_context=None):
    c = Client(srv.root, ssl_context=ssl_context)
    try:
        if json_body is not None:
            return c.request("POST", "/oauth/token", json_body)
        f = {"grant_type": "refresh_token", "refresh_token": REFRESH, "client_id": CLIENT_ID}
        f.update(form or {})
        f = {k: v for k, v in f.items() if v is not None}
        return c.request("POST", "/oauth/token", raw=urlencode(f).encode(),
                         content_type="application/x-www-form-urlencoded")
    finally:
        c.close()


class Api:
    """A Cloud Sync client: bearer token and x-account-id on every call."""

    def __init__(self, srv, token=None, account=None, ssl_context=None):
        self.srv = srv
        if token is None:
            r = grant(srv, ssl_context=ssl_context)
            assert r.status == 200, r
            token = r.json()["access_token"]
        self.token = token
        self.c = Client(srv.url, ssl_context=ssl_context)
        self.accounts = self.get("/accounts", account=False).json()
        self.account = account or self.accounts[0]["accountId"]

    def req(self, method, path, body=None, status=None, account=True, headers=None,
            **kw):
        h = {"Authorization": "Bearer " + self.token}
        if account:
            h["x-account-id"] = self.account if account is True else account
        h.update(headers or {})
        r = self.c.request(method, path, body, headers=h, **kw)
        if status is not None:
            assert r.status == status, r
        return r

    def get(self, path, status=200, **kw):
        return self.req("GET", path, status=status, **kw)

    def put(self, path, status=None, **kw):
        return self.req("PUT", path, status=status, **kw)

    def rels(self):
        return self.get("/relationships-v2").json()

    def activity(self, rid):
        return self.get("/relationships-v2/" + seg(rid)).json()["activity"]

    def wait_activity(self, rid, timeout=5.0):
        return wait_until(lambda: (lambda a: a if a["status"] != "RUNNING" else None)(
            self.activity(rid)), timeout)

    def cursor(self):
        msgs = self.get("/messages/client").json()
        assert isinstance(msgs, list) and len(msgs) == 1, msgs
        return msgs[0]["id"]

    def answer(self, op, broker, cursor, timeout=5.0, client_id=CLIENT_ID, seen=None):
        """The result of a list call, as docs/refserver.md tells dsfs to find it: the
        first message after the cursor taken before the call whose payload has the
        operation's name as key, whose header.agentId is the broker and whose
        header.clientId is the client_id the token was granted to."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.get("/messages/client?last=" + cursor).json()
            for m in msgs:
                if seen is not None:
                    seen.append(m)
                h = m["header"]
                if op in m["payload"] and h["agentId"] == broker \
                        and h["clientId"] == client_id:
                    return m
            if msgs:
                cursor = msgs[-1]["id"]
            time.sleep(0.02)
        return None


def assert_error(r, status):
    assert r.status == status, r
    body = r.json()
    assert body["statusCode"] == status and isinstance(body["message"], str), body
    assert body["error"]


srv = module_server(cs, "--task-seconds", "0.5", "--servers", "3", "--volumes", "4", "--luns", "3",
                    "--hosts", "2", "--message-delay", "0.3", "--heartbeat-seconds", "0.05")


@pytest.fixture
def api(srv):
    return Api(srv)


# --------------------------------------------------------------------------
# start-up, tokens, accounts

def test_ready_line_and_help():
    s = cs()
    try:
        assert s.url.endswith("/api") and s.url == s.root + "/api"
    finally:
        s.stop()
    out = subprocess.run([sys.executable, os.path.join(HERE, "refserver.py"), "--help"],
                         capture_output=True, text=True, timeout=10).stdout
    for word in ("cloudsync", "--refresh-token", "--message-delay", "--accounts",
                 "--heartbeat-seconds"):
        assert word in out, word
    bad = subprocess.run([sys.executable, os.path.join(HERE, "refserver.py"), "--dialect",
                          "cloudsync", "--accounts", "0"], capture_output=True, text=True,
                         timeout=10)
    assert bad.returncode == 2 and "--accounts" in bad.stderr


def test_token_grant_and_refusals(srv):
    r = grant(srv)
    assert r.status == 200 and r.headers["cache-control"] == "no-store"
    tok = r.json()
    assert tok["access_token"] and tok["expires_in"] == 3600 and tok["token_type"] == "Bearer"
    assert grant(srv).json()["access_token"] != tok["access_token"]
    r = grant(srv, json_body={"grant_type": "refresh_token", "refresh_token": REFRESH,
                              "client_id": CLIENT_ID})
    assert r.status == 200, r
    r = grant(srv, {"refresh_token": "stolen"})
    assert r.status == 400 and r.json() == {
        "error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}
    r = grant(srv, {"client_id": "someone-else"})
    assert r.status == 401 and r.json()["error"] == "invalid_client"
    assert grant(srv, {"client_id": None}).status == 401
    assert grant(srv, {"refresh_token": None}).json()["error"] == "invalid_request"
    assert grant(srv, {"grant_type": "password"}).json()["error"] == "unsupported_grant_type"
    assert grant(srv, {"grant_type": None}).json()["error"] == "invalid_request"
    c = Client(srv.root)
    r = c.request("POST", "/oauth/token", raw=b"x", content_type="text/plain")
    assert r.status == 400 and r.json()["error"] == "invalid_request"
    assert_error(c.request("GET", "/oauth/token"), 405)


def test_bearer_required_and_expiry(srv):
    c = Client(srv.url)
    r = c.get("/accounts")
    assert_error(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(c.get("/accounts", headers={"Authorization": "Bearer nope"}), 401)
    assert_error(c.get("/accounts", headers={"Authorization": "Basic eDp5"}), 401)
    short = srv.sim("POST", "/tokens", {"ttl": 0.3}).json()
    assert short["expires_in"] == 0
    api = Api(srv, token=short["access_token"])
    api.get("/data-brokers")
    time.sleep(0.4)
    r = api.get("/data-brokers", status=None)
    assert_error(r, 401)
    assert "invalid_token" in r.headers["www-authenticate"]
    # a new grant is all it takes
    Api(srv).get("/data-brokers")


def test_token_ttl_option():
    s = cs("--token-ttl", "1", "--refresh-token", "r-1", "--client-id", "c-1")
    try:
        assert grant(s).status == 401                       # the demo client id is gone
        r = grant(s, {"refresh_token": "r-1", "client_id": "c-1"})
        assert r.status == 200 and r.json()["expires_in"] == 1
        api = Api(s, token=r.json()["access_token"])
        api.get("/groups")
        time.sleep(1.1)
        assert_error(api.get("/groups", status=None), 401)
        # /_sim/password changes the accepted refresh token
        assert s.sim("POST", "/password", {"password": "r-2"}).status == 204
        assert grant(s, {"refresh_token": "r-1", "client_id": "c-1"}).status == 400
        assert grant(s, {"refresh_token": "r-2", "client_id": "c-1"}).status == 200
    finally:
        s.stop()


def test_sessions_expire(srv):
    api = Api(srv)
    assert srv.sim("GET", "/sessions").json()["active"] >= 1
    assert srv.sim("POST", "/sessions/expire").status == 204
    assert srv.sim("GET", "/sessions").json()["active"] == 0
    assert_error(api.get("/accounts", status=None), 401)


def test_account_header(srv, api):
    accts = api.accounts
    assert len(accts) == 2 and all(set(a) == {"accountId", "name"} for a in accts)
    assert accts[0]["accountId"] != accts[1]["accountId"]
    # /accounts needs no x-account-id (the seed's step 2); every other call does
    api.get("/accounts", account=False)
    for path in ("/data-brokers", "/groups", "/relationships-v2", "/messages/client"):
        assert_error(api.get(path, status=None, account=False), 400)
        assert_error(api.get(path, status=None, account="account-NotMine1"), 403)
    # the accounts are different estates: choosing matters
    other = Api(srv, token=api.token, account=accts[1]["accountId"])
    b0 = {b["id"] for b in api.get("/data-brokers").json()}
    b1 = {b["id"] for b in other.get("/data-brokers").json()}
    assert len(b0) == len(b1) == 3 and not b0 & b1
    rid = api.rels()[0]["relationshipId"]
    assert_error(other.get("/relationships-v2/" + rid, status=None), 404)
    assert_error(other.put("/relationships/%s/sync" % rid), 404)
    assert_error(other.get("/data-brokers/%s/list-s3-buckets" % next(iter(b0)),
                           status=None), 404)


# --------------------------------------------------------------------------
# lists

def test_lists_and_estate(srv, api):
    brokers = api.get("/data-brokers").json()
    assert isinstance(brokers, list) and len(brokers) == 3
    for b in brokers:
        assert {"id", "name", "type", "status", "lastUpdate", "placement",
                "groupId"} <= set(b), b
        assert len(b["id"]) == 24 and b["status"] == "ACTIVE"
    assert [b["type"] for b in brokers] == ["AWS", "AZURE", "GCP"]
    assert [b["name"] for b in brokers] == ["aws-broker-1", "azure-broker-2", "gcp-broker-3"]
    groups = api.get("/groups").json()
    assert [len(g["dataBrokers"]) for g in groups] == [2, 1]
    assert {b["groupId"] for b in brokers} == {g["id"] for g in groups}
    for g in groups:
        for bid in g["dataBrokers"]:
            assert next(b for b in brokers if b["id"] == bid)["groupId"] == g["id"]
    rels = api.rels()
    assert len(rels) == 3 * 4 + 1                            # --volumes per broker, fail-data
    ids = {b["id"] for b in brokers}
    protos = set()
    for r in rels:
        assert {"relationshipId", "source", "target", "dataBroker", "group", "settings",
                "activity"} <= set(r), r
        assert r["dataBroker"] in ids
        for side in ("source", "target"):
            p = r[side]["protocol"]
            protos.add(p)
            assert isinstance(r[side][p], dict)
        a = r["activity"]
        assert {"type", "status", "bytesCopied", "filesCopied", "filesFailed", "startTime",
                "endTime", "progress"} <= set(a)
        one = api.get("/relationships-v2/" + r["relationshipId"]).json()
        assert one == r
    assert protos == {"nfs", "cifs", "s3"}
    fail = [r for r in rels if "fail-" in json.dumps(r["source"])]
    assert len(fail) == 1 and fail[0]["activity"]["status"] == "FAILED"
    assert {r["activity"]["status"] for r in rels} == {"DONE", "FAILED"}
    assert_error(api.get("/relationships-v2/nope", status=None), 404)
    assert_error(api.get("/nope", status=None), 404)
    assert_error(api.req("DELETE", "/relationships-v2"), 405)


def test_estate_is_deterministic():
    def snapshot(*args):
        s = cs(*args)
        try:
            api = Api(s)
            return api.accounts, api.get("/data-brokers").json(), \
                [r["relationshipId"] for r in api.rels()]
        finally:
            s.stop()
    one = snapshot("--seed", "7")
    assert snapshot("--seed", "7") == one
    assert snapshot("--seed", "8") != one
    accts, brokers, rels = snapshot("--accounts", "3", "--servers", "1", "--volumes", "0")
    assert len(accts) == 3 and len(brokers) == 1 and len(rels) == 1


# --------------------------------------------------------------------------
# syncs, abort, delete

def test_sync_runs_to_done(srv, api):
    rel = next(r for r in api.rels() if "fail-" not in json.dumps(r["source"]))
    rid = rel["relationshipId"]
    r = api.put("/relationships/%s/sync" % rid, status=202)
    assert r.body == b""
    a = api.activity(rid)
    assert a["type"] == "SYNC" and a["status"] == "RUNNING" and a["endTime"] is None
    assert 0 <= a["progress"] < 100
    assert_error(api.put("/relationships/%s/sync" % rid), 409)        # already running
    assert_error(api.req("DELETE", "/relationships/%s" % rid), 409)   # abort it first
    time.sleep(0.25)
    mid = api.activity(rid)
    assert mid["status"] == "RUNNING" and mid["progress"] >= a["progress"]
    assert mid["bytesCopied"] >= a["bytesCopied"]
    done = api.wait_activity(rid)
    assert done["status"] == "DONE" and done["progress"] == 100 and done["endTime"]
    assert done["filesFailed"] == 0 and done["filesCopied"] > 0 and done["bytesCopied"] > 0
    assert done["startTime"] == a["startTime"]
    assert_error(api.put("/relationships/%s/abort" % rid), 409)       # nothing to abort
    assert_error(api.put("/relationships/nope/sync"), 404)


def test_sync_of_fail_source_fails(srv, api):
    rid = next(r["relationshipId"] for r in api.rels()
               if "fail-" in json.dumps(r["source"]))
    api.put("/relationships/%s/sync" % rid, status=202)
    assert api.activity(rid)["status"] == "RUNNING"
    a = api.wait_activity(rid)
    assert a["status"] == "FAILED" and a["filesFailed"] > 0
    assert "fail-" in a["failureMessage"] and a["endTime"]


def test_abort_and_delete(srv, api):
    rid = api.rels()[1]["relationshipId"]
    api.put("/relationships/%s/sync" % rid, status=202)
    time.sleep(0.1)
    assert api.put("/relationships/%s/abort" % rid, status=200).body == b""
    a = api.activity(rid)
    assert a["status"] == "ABORTED" and a["endTime"] and a["progress"] < 100
    time.sleep(0.5)
    assert api.activity(rid)["status"] == "ABORTED"                  # it stays aborted
    n = len(api.rels())
    assert api.req("DELETE", "/relationships/%s" % rid, status=200).body == b""
    assert len(api.rels()) == n - 1
    assert_error(api.get("/relationships-v2/" + rid, status=None), 404)
    assert_error(api.req("DELETE", "/relationships/%s" % rid), 404)
    assert_error(api.put("/relationships/%s/sync" % rid), 404)


def test_sync_option_ends_at_once():
    s = cs("--sync", "--volumes", "1")
    try:
        api = Api(s)
        rid = api.rels()[0]["relationshipId"]
        api.put("/relationships/%s/sync" % rid, status=202)
        assert api.activity(rid)["status"] == "DONE"
    finally:
        s.stop()


# --------------------------------------------------------------------------
# create

def nfs(path="/projects", host="nfs-09.example.com"):
    return {"protocol": "nfs", "nfs": {"host": host, "export": "/export/new", "path": path}}


def s3(bucket="new-archive"):
    return {"protocol": "s3", "s3": {"bucket": bucket, "prefix": "p/"}}


def test_create_validates_the_body(srv, api):
    broker = api.get("/data-brokers").json()[0]
    ok = {"source": nfs(), "target": s3(), "dataBroker": broker["id"]}
    bad = [
        ({k: v for k, v in ok.items() if k != "source"}, '"source" is required'),
        ({k: v for k, v in ok.items() if k != "target"}, '"target" is required'),
        ({"source": nfs(), "target": s3()}, '"dataBroker" or "group" is required'),
        (dict(ok, source="nfs://x"), '"source" must be an object'),
        (dict(ok, source={"protocol": "ftp"}), "source.protocol"),
        (dict(ok, source={"protocol": "nfs"}), "source.nfs"),
        (dict(ok, source={"protocol": "nfs", "nfs": {"export": "/e"}}), "source.nfs.host"),
        (dict(ok, target={"protocol": "s3", "s3": {}}), "target.s3.bucket"),
        (dict(ok, target={"protocol": "cifs", "cifs": {"host": "h"}}), "target.cifs.share"),
        (dict(ok, dataBroker="nope"), "nope"),
        (dict(ok, dataBroker=7), "dataBroker"),
        (dict(ok, group="nope"), "nope"),
        (dict(ok, settings=[]), "settings"),
    ]
    n = len(api.rels())
    for body, words in bad:
        r = api.req("POST", "/relationships-v2", body)
        assert_error(r, 400)
        assert words in r.json()["message"], (body, r.json())
    for raw in (b"{", b"[1]", b""):
        assert_error(api.req("POST", "/relationships-v2", raw=raw), 400)
    assert_error(api.req("POST", "/relationships-v2", raw=b"{}", content_type="text/plain"),
                 415)
    assert len(api.rels()) == n                                      # nothing was made


def test_create_then_first_sync(srv, api):
    brokers = api.get("/data-brokers").json()
    groups = api.get("/groups").json()
    r = api.req("POST", "/relationships-v2",
                {"source": nfs(), "target": s3(), "dataBroker": brokers[0]["id"],
                 "settings": {"retries": 1}}, status=200)
    rel = r.json()
    rid = rel["relationshipId"]
    assert rel["group"] == brokers[0]["groupId"] and rel["settings"] == {"retries": 1}
    assert rel["activity"]["status"] == "RUNNING"                     # syncs at once
    assert api.get("/relationships-v2/" + rid).json()["source"] == nfs()
    assert api.wait_activity(rid)["status"] == "DONE"
    # a group alone names the broker: its first
    rel = api.req("POST", "/relationships-v2", {"source": s3("in"), "target": nfs(),
                                                "group": groups[1]["id"]}, status=200).json()
    assert rel["dataBroker"] == groups[1]["dataBrokers"][0]
    # a broker of another group
    r = api.req("POST", "/relationships-v2", {"source": nfs(), "target": s3(),
                                              "dataBroker": brokers[2]["id"],
                                              "group": groups[0]["id"]})
    assert_error(r, 400)
    # a fail- source fails its syncs
    rel = api.req("POST", "/relationships-v2", {"source": nfs("/fail-here"), "target": s3(),
                                                "dataBroker": brokers[1]["id"]},
                  status=200).json()
    assert api.wait_activity(rel["relationshipId"])["status"] == "FAILED"
    reqs = srv.sim("GET", "/requests?limit=50").json()["requests"]
    assert any(q["method"] == "POST" and q["template"] == "/api/relationships-v2"
               and q["status"] == 200 for q in reqs)


# --------------------------------------------------------------------------
# asynchronous lists and /messages/client

def test_list_call_answers_through_messages(srv, api):
    broker = api.get("/data-brokers").json()[0]["id"]
    cur = api.cursor()
    t0 = time.monotonic()
    r = api.get("/data-brokers/%s/list-s3-buckets" % broker, status=202)
    assert r.body == b""
    seen = []
    m = api.answer("list-s3-buckets", broker, cur, seen=seen)
    took = time.monotonic() - t0
    assert m is not None and took >= 0.25, took              # --message-delay 0.3
    buckets = m["payload"]["list-s3-buckets"]
    assert [b["name"] for b in buckets] == ["db-bucket-01", "web-bucket-02",
                                            "app-bucket-03"]                # --luns 3
    assert {"name", "region", "tags"} <= set(buckets[0])
    assert set(m) == {"id", "payload", "header"}
    assert set(m["header"]) == {"requestId", "clientId", "agentId"}
    assert len(m["header"]["requestId"]) == 36
    # interleaved: heartbeats and another client's answers came first
    before = seen[:seen.index(m)]
    assert any("heartbeat" in x["payload"] for x in before)
    decoy = [x for x in before if "list-s3-buckets" in x["payload"]]
    assert decoy and all(x["header"]["clientId"] != CLIENT_ID for x in decoy)
    assert any(x["header"]["agentId"] == broker for x in decoy)       # same broker, not ours
    assert any(x["payload"]["list-s3-buckets"] != buckets for x in decoy)
    # ids grow; the cursor moves on every call (heartbeats)
    ids = [int(x["id"]) for x in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(isinstance(x["id"], str) for x in seen)
    c1 = api.cursor()
    time.sleep(0.1)
    assert int(api.cursor()) > int(c1)
    # nfs exports the same way
    cur = api.cursor()
    api.get("/data-brokers/%s/list-nfs-export-folders" % broker, status=202)
    m = api.answer("list-nfs-export-folders", broker, cur)
    exports = m["payload"]["list-nfs-export-folders"]
    assert len(exports) == 2 and all({"path", "folders"} <= set(e) for e in exports)


def test_messages_cursor_rules(srv, api):
    cur = api.cursor()
    assert api.get("/messages/client?last=999999999").json() == []
    for bad in ("abc", "-1", "", "1.5"):
        assert_error(api.get("/messages/client?last=" + bad, status=None), 400)
    time.sleep(0.15)
    after = api.get("/messages/client?last=" + cur).json()
    assert after and all(int(m["id"]) > int(cur) for m in after)
    assert api.get("/messages/client?last=" + after[-1]["id"]).json()[:1] != after[-1:]
    assert_error(api.get("/data-brokers/nope/list-s3-buckets", status=None), 404)
    assert_error(api.req("POST", "/data-brokers/x/list-s3-buckets"), 405)


def test_no_heartbeats_and_message_delay():
    s = cs("--heartbeat-seconds", "0", "--message-delay", "1", "--servers", "1")
    try:
        api = Api(s)
        cur = api.cursor()
        time.sleep(0.2)
        assert api.cursor() == cur                               # nothing moves by itself
        broker = api.get("/data-brokers").json()[0]["id"]
        api.get("/data-brokers/%s/list-s3-buckets" % broker, status=202)
        time.sleep(0.6)
        got = api.get("/messages/client?last=" + cur).json()
        assert got and all(m["header"]["clientId"] != CLIENT_ID for m in got)  # decoy only
        m = api.answer("list-s3-buckets", broker, cur, timeout=3)
        assert m is not None
        # the answer goes to the client_id of the token
        t = s.sim("POST", "/tokens", {"client_id": "other-app"}).json()["access_token"]
        other = Api(s, token=t)
        cur = other.cursor()
        other.get("/data-brokers/%s/list-s3-buckets" % broker, status=202)
        assert other.answer("list-s3-buckets", broker, cur, client_id="other-app",
                            timeout=3) is not None
    finally:
        s.stop()


def test_sim_messages_drop_duplicate_inject(srv, api):
    broker = api.get("/data-brokers").json()[1]["id"]
    assert srv.sim("POST", "/messages/drop", {"count": 1}).status == 204
    assert srv.sim("GET", "/messages").json()["dropNext"] == 1
    cur = api.cursor()
    api.get("/data-brokers/%s/list-s3-buckets" % broker, status=202)
    assert api.answer("list-s3-buckets", broker, cur, timeout=1.0) is None
    # the next one arrives again
    cur = api.cursor()
    api.get("/data-brokers/%s/list-s3-buckets" % broker, status=202)
    first = api.answer("list-s3-buckets", broker, cur)
    assert first is not None
    # twice
    srv.sim("POST", "/messages/duplicate", {"count": 1})
    cur = api.cursor()
    api.get("/data-brokers/%s/list-nfs-export-folders" % broker, status=202)
    m1 = api.answer("list-nfs-export-folders", broker, cur)
    m2 = api.answer("list-nfs-export-folders", broker, m1["id"])
    assert m2 is not None and m2["id"] != m1["id"]
    assert m2["header"]["requestId"] == m1["header"]["requestId"]
    assert m2["payload"] == m1["payload"]
    # any message, e.g. a malformed answer
    cur = api.cursor()
    r = srv.sim("POST", "/messages/inject", {"payload": {"list-s3-buckets": "oops"},
                                             "header": {"requestId": "r", "clientId": CLIENT_ID,
                                                        "agentId": broker}})
    assert r.status == 201 and r.json()["account"] == api.account
    m = api.answer("list-s3-buckets", broker, cur)
    assert m["payload"]["list-s3-buckets"] == "oops"
    cur = api.cursor()
    srv.sim("POST", "/messages/inject", {"raw": {"no": "header"}})
    # the raw message, whatever heartbeats arrived beside it
    assert any({"no": "header"}.items() <= m.items() for m in api.get("/messages/client?last=" + cur).json())
    for bad in ({"count": -1}, {"count": "2"}):
        assert srv.sim("POST", "/messages/drop", bad).status == 422
    assert srv.sim("POST", "/messages/inject", {"account": "nope"}).status == 404


# --------------------------------------------------------------------------
# faults, stats, latency, TLS, hostile names

def test_faults_stats_and_requests(srv, api):
    srv.sim("POST", "/stats/reset")
    srv.sim("DELETE", "/requests")
    srv.sim("POST", "/faults", {"path": "/api/data-brokers", "status": 503, "count": 1})
    r = api.get("/data-brokers", status=None)
    assert_error(r, 503)
    assert r.headers["retry-after"] == "1"
    api.get("/data-brokers")
    srv.sim("POST", "/faults", {"path": "/oauth/token", "status": 500, "count": 1})
    assert grant(srv).status == 500
    assert grant(srv).status == 200
    srv.sim("POST", "/faults", {"path": "/api/messages/client", "body": "[{", "count": 1})
    assert api.get("/messages/client").body == b"[{"
    rid = api.rels()[2]["relationshipId"]
    api.put("/relationships/%s/sync" % rid, status=202)
    stats = srv.sim("GET", "/stats").json()
    assert stats["GET /api/data-brokers"] == 2 and stats["POST /oauth/token"] == 2
    assert stats["PUT /api/relationships/{id}/sync"] == 1
    assert stats["GET /api/relationships-v2"] == 1
    reqs = srv.sim("GET", "/requests").json()["requests"]
    assert [(q["method"], q["template"], q["status"]) for q in reqs] == [
        ("PUT", "/api/relationships/{id}/sync", 202)]
    srv.sim("DELETE", "/faults")
    api.wait_activity(rid)


def test_latency():
    s = cs("--latency-ms", "150", "--volumes", "1")
    try:
        api = Api(s)
        t = time.monotonic()
        api.get("/groups")
        assert time.monotonic() - t >= 0.14
    finally:
        s.stop()


def test_tls(tmp_path):
    assert shutil.which("openssl"), "the openssl command is needed for the TLS test"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", "k.pem", "-out", "c.pem", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], cwd=tmp_path, check=True,
                   capture_output=True)
    s = cs("--tls-cert", tmp_path / "c.pem", "--tls-key", tmp_path / "k.pem",
           "--volumes", "1")
    try:
        assert s.url.startswith("https://") and s.url.endswith("/api")
        ctx = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
        api = Api(s, ssl_context=ctx)
        assert len(api.rels()) == 2 * 1 + 1
    finally:
        s.stop()


def test_hostile_names():
    s = cs("--hostile-names", "--volumes", "1", "--message-delay", "0.05",
           "--heartbeat-seconds", "0")
    try:
        api = Api(s)
        brokers = api.get("/data-brokers").json()
        names = [b["name"] for b in brokers]
        ids = [b["id"] for b in brokers]
        for n in ("", ".", "..", "a/b", "100% full", "line1\nline2", "tab\there",
                  "Ünïcødé-ボリューム"):
            assert n in names, n
        assert names.count(names[0]) == 2
        for ch in ("/", "?", "#", "%", " "):
            assert any(ch in i for i in ids), ch
        assert ".." in ids
        # every broker id works in a list call; the answer names it as agentId
        for bid in ids[-6:]:
            cur = api.cursor()
            api.get("/data-brokers/%s/list-s3-buckets" % seg(bid), status=202)
            m = api.answer("list-s3-buckets", bid, cur)
            assert m is not None, bid
            bnames = [b["name"] for b in m["payload"]["list-s3-buckets"]]
            assert "a/b" in bnames and "" in bnames and "line1\nline2" in bnames
        rels = api.rels()
        odd = [r["relationshipId"] for r in rels if "/" in r["relationshipId"]
               or r["relationshipId"] == ".."]
        assert len(odd) == 2
        for r in rels:
            assert api.get("/relationships-v2/" + seg(r["relationshipId"])).json() == r
        paths = [r["source"].get("nfs", {}).get("path") for r in rels]
        assert "line1\nline2" in paths and "a/b" in paths
        rid = next(r["relationshipId"] for r in rels if r["relationshipId"].endswith("?x=1"))
        api.put("/relationships/%s/sync" % seg(rid), status=202)
        api.put("/relationships/%s/abort" % seg(rid), status=200)
        api.req("DELETE", "/relationships/%s" % seg(rid), status=200)
        assert_error(api.get("/relationships-v2/" + seg(rid), status=None), 404)
        gnames = [g["name"] for g in api.get("/groups").json()]
        assert "a/b" in gnames and "" in gnames
    finally:
        s.stop()
