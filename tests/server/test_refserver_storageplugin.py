"""Tests of the reference server's storage-plugin dialect (the default) and of the core
it runs on (refcore.py, refsim.py, reffaults.py, refhttp.py): the command line, HTTP,
stats, faults and TLS are tested through this dialect.

Every test talks HTTP to a real server process on 127.0.0.1 (port 0),
started through refserver_fixture.start_refserver. Run with
`/usr/bin/python3 -m pytest tests/server`.
"""

import base64
import http.client
import io
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import zipfile
from urllib.parse import quote

import pytest

from refserver_fixture import Client, REFSERVER, module_server, start_refserver, wait_until

TASK_KEYS = {"id", "name", "displayName", "type", "state", "progressPercent", "healthStatus",
             "logMessages", "createdAt", "startedAt", "endedAt", "updatedAt", "error",
             "associatedResources", "suggestedPollingIntervalSeconds"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$")
SIMPLE_ID = re.compile(r"^[A-Za-z0-9-]+$")


def seg(s):
    """Percent-encode one path segment, dots included."""
    return quote(s, safe="") if s not in (".", "..") else s.replace(".", "%2E")


def assert_error(r, status, *words):
    assert r.status == status, r
    body = r.json()
    assert set(body) == {"error", "errorCode", "traceId"}, body
    assert body["errorCode"] == str(status)
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["traceId"], str) and body["traceId"]
    for w in words:
        assert w in body["error"], (w, body)
    return body


def check_obj(obj, *keys):
    assert isinstance(obj["id"], str) and isinstance(obj["name"], str), obj
    for k in keys:
        assert k in obj, (k, obj)


def check_time(obj):
    ct = obj["creationTime"]
    assert isinstance(ct, int) and not isinstance(ct, bool) and 1_500_000_000 < ct < 4_000_000_000


def task_of(c, r):
    assert r.status == 202, r
    uri = r.json()["taskUri"]
    assert uri.startswith("/storageplugin/api/tasks/")
    tid = uri.rsplit("/", 1)[1]
    assert r.headers["location"].endswith("/storageplugin/api/tasks/" + tid)
    assert r.headers["location"].startswith("http://")
    return tid


def wait_task(c, tid, timeout=10):
    def done():
        t = c.get("/tasks/" + tid).json()
        return t if t["state"] in ("SUCCEEDED", "FAILED", "TIMEDOUT") else None
    t = wait_until(done, timeout)
    assert t, "task %s did not end" % tid
    return t


def all_items(c, path, key, limit=None):
    out, start = [], 0
    while True:
        q = "?start=%d" % start + ("&limit=%d" % limit if limit else "")
        r = c.get(path + q)
        assert r.status == 200, r
        page = r.json()[key]
        if not page:
            return out
        out += page
        start += len(page)


# --------------------------------------------------------------------------
# shared servers (tests on them touch disjoint resources)

srv = module_server(start_refserver, "--test-controls", "--task-seconds", "0.3", "--volumes", "30")


@pytest.fixture
def c(srv):
    cl = srv.login()
    yield cl
    cl.close()


# --------------------------------------------------------------------------
# start-up, command line, process

def test_ready_line_then_silence_and_sigterm():
    s = start_refserver()
    try:
        assert re.match(r"^http://127\.0\.0\.1:\d+/storageplugin/api$", s.url)
        c = s.login()
        assert c.get("/server").status == 200
        assert c.get("/nope").status == 404
    finally:
        t = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(5) == 0
        assert time.monotonic() - t < 2
        assert s.proc.stdout.read() == ""  # exactly one line on stdout
        assert s.stderr_text() == ""       # quiet by default
        s.stop()


def test_sigint_stops_at_once_even_with_hung_request():
    s = start_refserver("--test-controls")
    try:
        s.sim("POST", "/faults", {"hang": True})
        c = s.client(timeout=5)
        threading.Thread(target=lambda: _swallow(c.get, "/info"), daemon=True).start()
        time.sleep(0.2)
        s.proc.send_signal(signal.SIGINT)
        assert s.proc.wait(3) == 0
    finally:
        s.stop()


def _swallow(fn, *a):
    try:
        fn(*a)
    except Exception:
        pass


def test_help_documents_every_option():
    out = subprocess.run([sys.executable, REFSERVER, "--help"], capture_output=True, text=True,
                         check=True).stdout
    for opt in ["--listen", "--user", "--password", "--password-file", "--session-ttl",
                "--arrays", "--seed", "--servers", "--volumes", "--snapshots", "--hosts",
                "--luns", "--hostile-names", "--page-max", "--task-seconds", "--sync",
                "--latency-ms", "--test-controls", "--tls-cert", "--tls-key",
                "--tls-client-ca", "--verbose"]:
        assert opt in out, opt
    assert "array1.example.com" in out and "192.0.2.11" in out


def test_bad_command_line_fails():
    r = subprocess.run([sys.executable, REFSERVER, "--listen", "nope"], capture_output=True,
                       text=True)
    assert r.returncode != 0 and r.stdout == ""
    r = subprocess.run([sys.executable, REFSERVER, "--tls-cert", "x.pem"], capture_output=True,
                       text=True)
    assert r.returncode != 0


def test_verbose_logs_requests_to_stderr(refserver_factory):
    s = refserver_factory("--verbose")
    c = s.client()
    assert c.get("/info").status == 200
    assert wait_until(lambda: "GET /storageplugin/api/info 200" in s.stderr_text())


# --------------------------------------------------------------------------
# info, session, log, storage

def test_info_without_session(srv):
    c = srv.client()
    r = c.get("/info")
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    info = r.json()
    check_obj(info, "version", "imageUrl", "iconUrl")
    for key, size in (("imageUrl", 48), ("iconUrl", 16)):
        assert info[key].startswith("data:image/png;base64,")
        png = base64.b64decode(info[key].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (size, size)


def test_login_logout(srv):
    c = srv.client()
    r = c.login()
    assert r.status == 201
    body = r.json()
    assert set(body) == {"sessionId", "storageId"} and body["storageId"] == "array1"
    assert c.get("/storage").status == 200
    assert c.delete("/session").status == 204
    assert_error(c.get("/storage"), 401)
    assert_error(c.delete("/session"), 401)


def test_login_refused(srv):
    c = srv.client()
    r = c.login("admin", "wrong")
    assert_error(r, 401)
    assert r.headers["www-authenticate"].startswith("Basic")
    assert_error(c.login("root", "admin"), 401)
    assert_error(c.post("/session", {}, session=False), 401, "Basic")
    assert_error(c.post("/session", headers={"Authorization": "Basic !!!"}, session=False), 401)


def test_login_body_forms_with_one_array(srv):
    for body in (None, {}, {"hostname": "whatever.example", "ipAddress": "10.9.9.9", "port": 1}):
        c = srv.client()
        assert c.login(body=body).status == 201
    assert_error(srv.client().login(body={"port": "x"}), 422, "port")


def test_session_required_everywhere_but_info_and_login(srv):
    c = srv.client()
    paths = ["/log", "/storage", "/server", "/server/0", "/server/0/system",
             "/server/0/volume", "/server/0/volume/vol-0-1",
             "/server/0/volume/vol-0-1/splitstatus", "/server/0/volume/vol-0-1/snapshot",
             "/server/0/volume/vol-0-1/snapshot/snap-0-1-1", "/server/0/lun",
             "/server/0/lun/lun-0-1", "/server/0/host", "/server/0/host/host-0-1",
             "/server/0/host/host-0-1/lun", "/server/0/hostgroup", "/server/0/network",
             "/server/0/network/net-0-1", "/server/0/pool", "/server/0/pool/pool-0-1",
             "/server/0/consistencygroup", "/server/0/consistencygroup/cg-0-1",
             "/server/0/consistencygroup/cg-0-1/snapshot", "/server/0/remotearray", "/tasks",
             "/tasks/x"]
    for p in paths:
        assert_error(c.get(p), 401, "x-storageplugin-sessionid")
        assert_error(c.get(p, headers={"x-storageplugin-sessionid": "bogus"}), 401)
    assert_error(c.post("/server/0/volume/vol-0-1?action=split"), 401)
    assert_error(c.delete("/server/0/volume/vol-0-1"), 401)
    # the session is checked before the action and the body
    assert_error(c.post("/server/0/volume/vol-0-1?action=nope", raw=b"{bad"), 401)
    assert_error(c.post("/server/0/volume/vol-0-1/snapshot", raw=b"x", content_type="text/plain"),
                 401)
    assert_error(c.post("/server/0/volume/vol-0-1/snapshot", {}), 401)


def test_log_is_a_zip_without_secrets(srv, c):
    r = c.get("/log")
    assert r.status == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.body))
    assert "refserver.log" in z.namelist() and "arrays.json" in z.namelist()
    log = z.read("refserver.log").decode()
    assert "login user=admin" in log
    assert c.session_id not in log and "admin:admin" not in log


def test_storage(srv, c):
    st = c.get("/storage").json()
    assert st == {"name": "array1", "id": "array1", "hostName": "array1.example.com",
                  "ipAddress": "192.0.2.11", "port": srv.port, "pluginId": "dsfs-refserver",
                  "vendor": "dsfs", "version": "1.0.0", "serverIds": ["0", "1"]}


# --------------------------------------------------------------------------
# every GET

def test_every_get_endpoint(srv, c):
    servers = c.get("/server").json()["servers"]
    assert [s["id"] for s in servers] == ["0", "1"]
    for s in servers:
        check_obj(s, "supports", "config")
        assert c.get("/server/" + s["id"]).json() == s
    system = c.get("/server/0/system").json()
    for k in ("capacityInBytes", "systemSizeInBytes", "snapshotsSizeInBytes",
              "volumesSizeInBytes", "dataReduction", "totalSizeInBytes", "sharedSpaceInBytes",
              "thinProvisioning", "totalReduction", "provisionedSizeInBytes", "parity",
              "serialNumber", "model", "version"):
        assert k in system

    vols = c.get("/server/0/volume").json()["volumes"]
    assert len(vols) == 30
    assert vols[0]["id"] == "vol-0-1" and re.match(r"^vol-[a-z0-9]+-0001$", vols[0]["name"])
    for v in vols:
        check_obj(v, "serverGroupKey", "poolId", "volumeType", "stats", "supports", "config")
        check_time(v)
        assert v["stats"]["usedSize"] <= v["stats"]["size"]
    assert c.get("/server/0/volume/vol-0-2").json() == vols[1]
    assert c.get("/server/0/volume/vol-0-2/splitstatus").json() == {
        "percentageComplete": 0, "complete": False}

    snaps = c.get("/server/0/volume/vol-0-9/snapshot").json()["snapshots"]
    assert len(snaps) == 3
    for sn in snaps:
        check_obj(sn, "consistencyGroupSnapshotId", "config")
        check_time(sn)
        assert sn["creationTime"] > c.get("/server/0/volume/vol-0-9").json()["creationTime"]
        assert c.get("/server/0/volume/vol-0-9/snapshot/" + sn["id"]).json() == sn

    luns = c.get("/server/0/lun").json()["luns"]
    assert len(luns) == 10
    for lun in luns:
        check_obj(lun, "serialNumber", "naaId", "volumeId", "privateIscsiTarget", "volumeType")
        check_time(lun)
        assert c.get("/server/0/volume/" + lun["volumeId"]).status == 200
    assert c.get("/server/0/lun/" + luns[3]["id"]).json() == luns[3]

    hosts = c.get("/server/0/host").json()["hosts"]
    assert len(hosts) == 5
    for h in hosts:
        check_obj(h, "serverGroupKeys", "mappedLunIds", "iqns", "wwns", "config")
        check_time(h)
        maps = c.get("/server/0/host/%s/lun" % h["id"]).json()["luns"]
        assert [m["lunId"] for m in maps] == h["mappedLunIds"]
        for m in maps:
            assert set(m) == {"name", "volumeId", "hostId", "hostGroupId", "lunId", "lunNumber"}
            assert m["hostId"] == h["id"]
    assert c.get("/server/0/host/host-0-2").json() == hosts[1]

    groups = c.get("/server/0/hostgroup").json()["groups"]
    assert [g["name"] for g in groups] == ["hg-cluster-a", "hg-cluster-b", "hg-spare"]
    for g in groups:
        check_obj(g, "hostIds")

    nets = c.get("/server/0/network").json()["networks"]
    assert len(nets) == 4
    for n in nets:
        check_obj(n, "ipAddress", "wwpn", "iqn", "serverGroupKey", "config")
        assert c.get("/server/0/network/" + n["id"]).json() == n

    pools = c.get("/server/0/pool").json()["pools"]
    assert [p["name"] for p in pools] == ["pool-ssd-01", "pool-hdd-01", "pool-nvme-01"]
    for p in pools:
        check_obj(p, "freeSpace")
        assert c.get("/server/0/pool/" + p["id"]).json() == p

    cgs = c.get("/server/0/consistencygroup").json()["consistencyGroups"]
    assert len(cgs) == 3
    for g in cgs:
        check_obj(g, "volumeIds", "config", "targets")
        check_time(g)
        assert c.get("/server/0/consistencygroup/" + g["id"]).json() == g
        cgsnaps = c.get("/server/0/consistencygroup/%s/snapshot" % g["id"]).json()["snapshots"]
        assert len(cgsnaps) == 2
        for cs in cgsnaps:
            check_obj(cs, "volumeSnapshotIds")
            for vid, snid in zip(g["volumeIds"], cs["volumeSnapshotIds"]):
                vs = c.get("/server/0/volume/%s/snapshot/%s" % (vid, snid)).json()
                assert vs["consistencyGroupSnapshotId"] == cs["id"]

    ras = c.get("/server/0/remotearray").json()["remoteArrays"]
    assert [r["name"] for r in ras] == ["dr-site-array", "backup-vault"]
    for ra in ras:
        check_obj(ra, "hostAddress")
    assert isinstance(c.get("/tasks").json()["tasks"], list)


def test_default_estate_ids_are_simple_and_deterministic(refserver_factory):
    a = refserver_factory("--seed", "7", "--volumes", "8").login()
    b = refserver_factory("--seed", "7", "--volumes", "8").login()
    d = refserver_factory("--seed", "8", "--volumes", "8").login()
    paths = ["/server", "/server/1/volume", "/server/1/volume/vol-1-3/snapshot", "/server/1/lun",
             "/server/1/host", "/server/1/hostgroup", "/server/1/network", "/server/1/pool",
             "/server/1/consistencygroup", "/server/1/remotearray"]
    for p in paths:
        ra, rb = a.get(p), b.get(p)
        assert ra.body == rb.body, p
        for item in list(ra.json().values())[0]:
            assert SIMPLE_ID.match(item["id"]), item["id"]
    assert a.get("/server/1/volume").body != d.get("/server/1/volume").body


# --------------------------------------------------------------------------
# pagination

def test_pagination(srv, c):
    full = c.get("/server/1/volume").json()["volumes"]
    assert len(full) == 30
    assert c.get("/server/1/volume?limit=7&start=0").json()["volumes"] == full[:7]
    assert c.get("/server/1/volume?start=28&limit=7").json()["volumes"] == full[28:]
    assert c.get("/server/1/volume?start=30").json() == {"volumes": []}
    assert c.get("/server/1/volume?start=1000&limit=5").json() == {"volumes": []}
    assert all_items(c, "/server/1/volume", "volumes", limit=4) == full
    for bad in ("limit=0", "limit=-1", "limit=abc", "limit=", "start=-1", "start=x",
                "start=1.5"):
        assert_error(c.get("/server/1/volume?" + bad), 400)


def test_pagination_on_every_list(srv, c):
    lists = {"/server": "servers", "/server/0/volume": "volumes",
             "/server/0/volume/vol-0-12/snapshot": "snapshots", "/server/0/lun": "luns",
             "/server/0/host": "hosts", "/server/0/host/host-0-1/lun": "luns",
             "/server/0/hostgroup": "groups", "/server/0/network": "networks",
             "/server/0/pool": "pools", "/server/0/consistencygroup": "consistencyGroups",
             "/server/0/consistencygroup/cg-0-2/snapshot": "snapshots",
             "/server/0/remotearray": "remoteArrays"}
    for path, key in lists.items():
        full = c.get(path).json()[key]
        assert len(full) >= 2, path
        assert c.get(path + "?limit=1&start=1").json()[key] == full[1:2], path
        assert c.get(path + "?start=%d" % len(full)).json()[key] == [], path
        assert_error(c.get(path + "?limit=0"), 400)


def test_page_max_caps_pages(refserver_factory):
    c = refserver_factory("--page-max", "7", "--volumes", "23").login()
    assert len(c.get("/server/0/volume").json()["volumes"]) == 7
    assert len(c.get("/server/0/volume?limit=100").json()["volumes"]) == 7
    assert len(c.get("/server/0/volume?limit=3").json()["volumes"]) == 3
    items = all_items(c, "/server/0/volume", "volumes", limit=100)
    assert [v["id"] for v in items] == ["vol-0-%d" % i for i in range(1, 24)]


# --------------------------------------------------------------------------
# errors

def test_error_statuses(srv, c):
    vol = "/server/0/volume/vol-0-10"
    assert_error(c.post(vol + "/snapshot", raw=b"{nope"), 400, "JSON")
    assert_error(c.post(vol + "/snapshot", raw=b"[1]"), 400)
    assert_error(c.post(vol + "/snapshot", {}), 422, "'name'")
    assert_error(c.post(vol + "/snapshot", {"name": 5}), 422, "'name'")
    assert_error(c.post(vol + "/snapshot", {"name": "s", "replicate": "yes"}), 422, "'replicate'")
    assert_error(c.post(vol + "/snapshot", raw=b'{"name": "x"}', content_type="text/plain"),
                 415)
    assert_error(c.post(vol + "/snapshot", raw=b'{"name": "x"}', content_type=None), 415)
    assert_error(c.get("/server/0/volume/nope"), 404, "nope")
    assert_error(c.get("/server/9/volume"), 404)
    assert_error(c.get(vol + "/snapshot/nope"), 404)
    assert_error(c.get("/tasks/nope"), 404)
    assert_error(c.post(vol + "?action=explode", {}), 400, "explode")
    assert_error(c.post(vol, {}), 400, "action")
    for method, path in (("PUT", vol), ("PATCH", "/server"), ("DELETE", "/server/0"),
                         ("GET", "/server/0/hostgroup/hg-0-1"), ("POST", "/server/0/pool"),
                         ("DELETE", "/info")):
        r = c.request(method, path)
        assert_error(r, 405)
        assert r.headers["allow"]
    assert c.request("GET", "/server/0/hostgroup/hg-0-1").headers["allow"] == "POST"
    for path in ("/nope", "/server/0/nope", "/server/0/volume/vol-0-1/nope", "",
                 "/server/0/volume/vol-0-1/snapshot/s/x/y"):
        assert_error(c.get(path), 404)
    r = Client(srv.root).get("/elsewhere")
    assert_error(r, 404)


def test_post_with_empty_body_and_no_content_type_is_accepted(srv, c):
    r = c.post("/server/0/volume/vol-0-11?action=split", raw=b"", content_type=None)
    assert r.status == 202
    r = c.post("/server/0/lun/lun-0-2?action=online", content_type=None)
    assert r.status == 200
    # an action that needs fields says which one is missing
    assert_error(c.post("/server/0/volume/vol-0-11?action=mount", content_type=None), 422,
                 "'path'")


def test_chunked_and_expect_continue_bodies(srv, c):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    hdrs = {"x-storageplugin-sessionid": c.session_id, "Content-Type": "application/json",
            "Transfer-Encoding": "chunked"}
    conn.request("POST", "/storageplugin/api/server/1/volume/vol-1-5/snapshot",
                 body=iter([b'{"name": ', b'"chunked"}']), headers=hdrs, encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 201 and b"chunked" in r.read()
    conn.close()
    # Expect: 100-continue gets an interim answer before the body is sent
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    body = b'{"name": "expect"}'
    s.sendall(("POST /storageplugin/api/server/1/volume/vol-1-5/snapshot HTTP/1.1\r\n"
               "Host: x\r\nx-storageplugin-sessionid: %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
               % (c.session_id, len(body))).encode())
    assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(body)
    buf = b""
    while b"expect" not in buf:
        chunk = s.recv(4096)
        assert chunk
        buf += chunk
    assert buf.startswith(b"HTTP/1.1 201 ")
    s.close()


def test_keep_alive_and_connection_close(srv, c):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/storageplugin/api/info")
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Length") and not r.will_close
        r.read()
    sock = conn.sock
    conn.request("GET", "/storageplugin/api/info")
    r = conn.getresponse()
    r.read()
    assert conn.sock is sock  # the same connection served all four
    conn.request("HEAD", "/storageplugin/api/info")  # no body follows a HEAD answer
    r = conn.getresponse()
    assert r.status == 405 and r.read() == b"" and not r.will_close
    conn.request("GET", "/storageplugin/api/info", headers={"Connection": "close"})
    r = conn.getresponse()
    assert r.will_close and r.getheader("Connection") == "close"
    r.read()
    conn.close()


# --------------------------------------------------------------------------
# volumes, snapshots, LUNs, hosts, groups, consistency groups

def test_volume_delete_and_pool_space(srv, c):
    v = c.get("/server/1/volume/vol-1-20").json()
    pool = c.get("/server/1/pool/" + v["poolId"]).json()
    r = c.delete("/server/1/volume/vol-1-20")
    assert r.status == 200 and r.json()["id"] == "vol-1-20"
    assert_error(c.get("/server/1/volume/vol-1-20"), 404)
    assert_error(c.get("/server/1/volume/vol-1-20/snapshot"), 404)
    assert "vol-1-20" not in [x["id"] for x in all_items(c, "/server/1/volume", "volumes")]
    after = c.get("/server/1/pool/" + v["poolId"]).json()
    assert after["freeSpace"] == pool["freeSpace"] + v["stats"]["size"]
    assert_error(c.delete("/server/1/volume/vol-1-20"), 404)
    # a volume behind a LUN is in use
    lun = c.get("/server/1/lun/lun-1-1").json()
    assert_error(c.delete("/server/1/volume/" + lun["volumeId"]), 409, lun["id"])


def test_system_capacity_is_the_pools_capacity(refserver_factory):
    """capacityInBytes is the sum of the server's pools' capacities: each pool's
    freeSpace plus the sizes of the volumes in it, before and after changes."""
    s = refserver_factory("--volumes", "6", "--task-seconds", "0.2", "--hostile-names")

    def check(c, sid):
        pools = c.get("/server/%s/pool" % seg(sid)).json()["pools"]
        vols = all_items(c, "/server/%s/volume" % seg(sid), "volumes")
        assert pools and all(isinstance(p["freeSpace"], int) and p["freeSpace"] >= 0
                             for p in pools)
        assert {v["poolId"] for v in vols} <= {p["id"] for p in pools}
        system = c.get("/server/%s/system" % seg(sid)).json()
        assert system["capacityInBytes"] == sum(p["freeSpace"] for p in pools) + \
            sum(v["stats"]["size"] for v in vols)
        assert system["provisionedSizeInBytes"] == sum(v["stats"]["size"] for v in vols)

    c = s.login()
    for srv_obj in c.get("/server").json()["servers"]:
        check(c, srv_obj["id"])
    wait_task(c, task_of(c, c.post("/server/0/volume/vol-0-2?action=clone",
                                   {"name": "capacity-clone"})))
    check(c, "0")
    clone = next(v for v in all_items(c, "/server/0/volume", "volumes")
                 if v["name"] == "capacity-clone")
    assert c.delete("/server/0/volume/" + seg(clone["id"])).status == 200
    check(c, "0")
    c.close()


def test_snapshot_lifecycle(srv, c):
    base = "/server/1/volume/vol-1-14/snapshot"
    before = c.get(base).json()["snapshots"]
    r = c.post(base, {"name": "nightly", "poolId": "pool-1-1", "replicate": False,
                      "isAutoDelete": True})
    assert r.status == 201
    snap = r.json()
    check_obj(snap, "config")
    check_time(snap)
    assert snap["name"] == "nightly"
    loc = r.headers["location"]
    assert loc == srv.url + base + "/" + snap["id"]
    assert c.get(base + "/" + snap["id"]).json() == snap
    assert c.get(base).json()["snapshots"] == before + [snap]
    assert_error(c.post(base, {"name": "nightly"}), 409, "nightly")
    assert c.post("/server/1/volume/vol-1-15/snapshot", {"name": "nightly"}).status == 201
    assert_error(c.post(base, {"name": "n2", "poolId": "nope"}), 404, "poolId")
    prog = c.post(base + "/" + snap["id"] + "?action=get-Progress",
                  {"destinationSnapshotId": "x", "destinationServerId": "1"})
    assert prog.status == 200
    st = prog.json()
    assert st["name"] == "nightly" and st["creationTime"] == snap["creationTime"]
    assert st["snapshotReplicationStatus"]["isCompleted"] is True
    assert c.post(base + "/" + snap["id"] + "?action=get-progress").status == 200
    assert_error(c.post(base + "/nope?action=get-Progress"), 404)
    assert c.delete(base + "/" + snap["id"]).status == 204
    assert_error(c.get(base + "/" + snap["id"]), 404)
    assert_error(c.delete(base + "/" + snap["id"]), 404)
    assert c.get(base).json()["snapshots"] == before


def test_mount_records_path(srv, c):
    r = c.post("/server/1/volume/vol-1-16?action=mount", {"path": "/mnt/data"})
    assert r.status == 200 and r.json() == {"path": "/mnt/data"}
    assert c.get("/server/1/volume/vol-1-16").json()["mountPath"] == "/mnt/data"
    assert_error(c.post("/server/1/volume/vol-1-16?action=mount", {"path": 3}), 422, "'path'")


def test_lun_online(srv, c):
    luns = c.get("/server/1/lun").json()["luns"]
    off = next(lun for lun in luns if not lun["online"])
    r = c.post("/server/1/lun/%s?action=online" % off["id"])
    assert r.status == 200 and r.json()["online"] is True
    assert c.get("/server/1/lun/" + off["id"]).json()["online"] is True
    assert_error(c.post("/server/1/lun/nope?action=online"), 404)
    assert_error(c.post("/server/1/lun/%s?action=offline" % off["id"]), 400)


def test_hosts_create_map_unmap(srv, c):
    r = c.post("/server/1/host", {"name": "new-host", "iqns": ["iqn.2024-01.com.x:h1"]})
    assert r.status == 201
    h = r.json()
    check_obj(h, "serverGroupKeys", "mappedLunIds", "iqns", "wwns", "config")
    check_time(h)
    assert h["mappedLunIds"] == [] and h["iqns"] == ["iqn.2024-01.com.x:h1"]
    assert r.headers["location"] == srv.url + "/server/1/host/" + h["id"]
    assert c.get("/server/1/host/" + h["id"]).json() == h
    assert h in c.get("/server/1/host").json()["hosts"]
    assert_error(c.post("/server/1/host", {"name": "new-host"}), 409)
    assert_error(c.post("/server/1/host", {"name": "x", "wwns": "a"}), 422, "'wwns'")

    lun = c.get("/server/1/lun/lun-1-3").json()
    hp = "/server/1/host/" + h["id"]
    r = c.post(hp + "?action=map", {"volumeId": lun["volumeId"], "lunId": lun["id"],
                                    "lunNumber": 5})
    assert r.status == 200
    assert r.json() == {"name": c.get("/server/1/volume/" + lun["volumeId"]).json()["name"],
                        "volumeId": lun["volumeId"], "hostId": h["id"], "hostGroupId": None,
                        "lunId": lun["id"], "lunNumber": 5}
    assert c.get(hp).json()["mappedLunIds"] == [lun["id"]]
    assert c.get(hp + "/lun").json()["luns"] == [r.json()]
    assert_error(c.post(hp + "?action=map", {"lunId": lun["id"]}), 409)
    assert_error(c.post(hp + "?action=map", {"lunId": "nope"}), 404)
    assert_error(c.post(hp + "?action=map", {}), 422, "'lunId'")
    assert_error(c.post(hp + "?action=map", {"lunId": "lun-1-4", "lunNumber": "1"}), 422,
                 "'lunNumber'")
    r2 = c.post(hp + "?action=map", {"lunId": "lun-1-4"})
    assert r2.json()["lunNumber"] == 0
    assert c.get(hp).json()["mappedLunIds"] == [lun["id"], "lun-1-4"]
    r = c.post(hp + "?action=unmap", {"lunId": lun["id"]})
    assert r.status == 200 and r.json()["mappedLunIds"] == ["lun-1-4"]
    assert c.get(hp).json()["mappedLunIds"] == ["lun-1-4"]
    assert_error(c.post(hp + "?action=unmap", {"lunId": lun["id"]}), 404)
    assert_error(c.post("/server/1/host/nope?action=unmap", {"lunId": "x"}), 404)


def test_hostgroup_map(srv, c):
    groups = c.get("/server/1/hostgroup").json()["groups"]
    g = groups[1]
    assert g["hostIds"]
    mapped = {lid for hid in g["hostIds"]
              for lid in c.get("/server/1/host/" + hid).json()["mappedLunIds"]}
    lid = next(x["id"] for x in c.get("/server/1/lun").json()["luns"] if x["id"] not in mapped)
    r = c.post("/server/1/hostgroup/%s?action=map" % g["id"], {"lunId": lid})
    assert r.status == 200
    m = r.json()
    assert set(m) == {"name", "volumeId", "lunId", "lunNumber"} and m["lunId"] == lid
    for hid in g["hostIds"]:
        host = c.get("/server/1/host/" + hid).json()
        assert lid in host["mappedLunIds"]
        maps = c.get("/server/1/host/%s/lun" % hid).json()["luns"]
        mp = next(x for x in maps if x["lunId"] == lid)
        assert mp["hostGroupId"] == g["id"] and mp["lunNumber"] == m["lunNumber"]
    assert_error(c.post("/server/1/hostgroup/nope?action=map", {"lunId": lid}), 404)
    assert_error(c.post("/server/1/hostgroup/%s?action=map" % g["id"], {}), 422, "'lunId'")


def test_consistency_group_sync_actions(srv, c):
    cgp = "/server/1/consistencygroup/cg-1-2"
    cg = c.get(cgp).json()
    r = c.post(cgp + "?action=add-volume", {"volumeId": "vol-1-25", "snapshotName": "s",
                                           "poolId": "pool-1-1", "isIncremental": False})
    assert r.status == 200 and r.json()["volumeIds"] == cg["volumeIds"] + ["vol-1-25"]
    assert c.get(cgp).json()["volumeIds"] == cg["volumeIds"] + ["vol-1-25"]
    assert_error(c.post(cgp + "?action=add-volume", {"volumeId": "vol-1-25"}), 409)
    assert_error(c.post(cgp + "?action=add-volume", {"volumeId": "nope"}), 404)
    assert_error(c.post(cgp + "?action=add-volume", {}), 422, "'volumeId'")
    r = c.post(cgp + "?action=remove-volume", {"volumeIds": ["vol-1-25"]})
    assert r.status == 200 and r.json()["volumeIds"] == cg["volumeIds"]
    assert_error(c.post(cgp + "?action=remove-volume", {"volumeIds": ["vol-1-25"]}), 404)
    assert_error(c.post(cgp + "?action=remove-volume", {"volumeIds": "vol-1-25"}), 422,
                 "'volumeIds'")
    r = c.post(cgp + "?action=add-replication-target", {"targetName": "backup-vault"})
    assert r.status == 200
    assert r.json() == {"id": "ra-1-2", "name": "backup-vault", "hostAddress": "198.51.100.20"}
    assert r.json() in c.get(cgp).json()["targets"]
    assert_error(c.post(cgp + "?action=add-replication-target", {"targetName": "backup-vault"}),
                 409)
    assert_error(c.post(cgp + "?action=add-replication-target", {"targetName": "nowhere"}), 404)


# --------------------------------------------------------------------------
# tasks

def test_task_whole_life(refserver_factory):
    s = refserver_factory("--task-seconds", "1.5", "--volumes", "6")
    c = s.login()
    before = c.get("/server/0/volume").json()["volumes"]
    r = c.post("/server/0/volume/vol-0-2?action=clone",
               {"name": "vol-db-clone", "snapshot": {"id": "snap-0-2-1", "name": "x"},
                "serverGroupKeys": ["sg-9"], "instantSplit": False})
    tid = task_of(c, r)
    seen = []
    while True:
        t = c.get("/tasks/" + tid).json()
        assert set(t) == TASK_KEYS
        seen.append(t)
        if t["state"] in ("SUCCEEDED", "FAILED"):
            break
        # the effect is not visible before the task succeeds: the volumes read while the task
        # still ran (it may end between the two GETs above, so the task is asked again after)
        vols = c.get("/server/0/volume").json()["volumes"]
        if c.get("/tasks/" + tid).json()["state"] not in ("SUCCEEDED", "FAILED"):
            assert vols == before
        time.sleep(0.05)
    states = [t["state"] for t in seen]
    assert states[0] in ("INITIALIZED", "RUNNING")
    assert states[-1] == "SUCCEEDED"
    assert states == sorted(states, key=["INITIALIZED", "RUNNING", "SUCCEEDED"].index)
    running = [t for t in seen if t["state"] == "RUNNING"]
    assert len(running) >= 5
    progress = [t["progressPercent"] for t in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert len({t["progressPercent"] for t in running}) >= 3  # it rises while running
    logs = [len(t["logMessages"]) for t in seen]
    assert logs == sorted(logs) and logs[-1] > logs[0]
    for a, b in zip(seen, seen[1:]):
        assert b["logMessages"][:len(a["logMessages"])] == a["logMessages"]  # only grows
    final = seen[-1]
    assert final["type"] == "task" and final["error"] is None
    assert final["healthStatus"] == "OK" and final["suggestedPollingIntervalSeconds"] >= 1
    for k in ("createdAt", "startedAt", "endedAt", "updatedAt"):
        assert ISO.match(final[k]), final[k]
    assert seen[0]["endedAt"] is None
    for m in final["logMessages"]:
        assert ISO.match(m["timestampAt"]) and m["message"]
    assert final["logMessages"][0]["message"] == "Task created"
    assert final["logMessages"][-1]["message"] == "Task succeeded"
    assert "vol-db-clone" in final["displayName"]
    new = final["associatedResources"][-1]
    assert new["type"] == "volume" and new["name"] == "vol-db-clone"
    vols = c.get("/server/0/volume").json()["volumes"]
    assert len(vols) == len(before) + 1
    clone = vols[-1]
    assert clone["name"] == "vol-db-clone" and clone["serverGroupKey"] == "sg-9"
    assert new["resourceUri"] == "/storageplugin/api/server/0/volume/" + clone["id"]
    check_time(clone)
    assert clone["stats"]["size"] == before[1]["stats"]["size"]
    assert c.get("/server/0/volume/%s/snapshot" % clone["id"]).json() == {"snapshots": []}
    pool = c.get("/server/0/pool/" + clone["poolId"]).json()
    assert c.get("/tasks/" + tid).json() == final  # ended tasks stay as they are
    # freeSpace fell by the clone's size
    s2 = refserver_factory("--task-seconds", "1.5", "--volumes", "6").login()
    assert s2.get("/server/0/pool/" + clone["poolId"]).json()["freeSpace"] == \
        pool["freeSpace"] + clone["stats"]["size"]


def test_task_failed(srv, c):
    before = c.get("/server/0/volume?limit=1000").json()["volumes"]
    tid = task_of(c, c.post("/server/0/volume/vol-0-3?action=clone", {"name": "fail-clone"}))
    t = wait_task(c, tid)
    assert t["state"] == "FAILED" and t["healthStatus"] == "ERROR"
    assert isinstance(t["error"], str) and "fail-clone" in t["error"]
    assert t["logMessages"][-1]["message"].startswith("Task failed")
    assert t["endedAt"] is not None
    tid = task_of(c, c.post("/server/0/volume/vol-0-3?action=restore-to-new",
                            {"sourceSnapshotId": "snap-0-3-1", "targetVolumeName": "fail-new"}))
    assert wait_task(c, tid)["state"] == "FAILED"
    assert c.get("/server/0/volume?limit=1000").json()["volumes"] == before


def test_tasks_list_newest_first_and_paginated(refserver_factory):
    s = refserver_factory("--task-seconds", "0.3", "--arrays", "2")
    c = s.login(body={"hostname": "array1.example.com"})
    ids = [task_of(c, c.post("/server/0/volume/vol-0-%d?action=split" % i)) for i in (1, 2, 3)]
    tasks = c.get("/tasks").json()["tasks"]
    assert [t["id"] for t in tasks] == ids[::-1]
    assert [t["id"] for t in c.get("/tasks?limit=1&start=1").json()["tasks"]] == [ids[1]]
    assert c.get("/tasks?start=3").json() == {"tasks": []}
    # tasks belong to their array
    other = s.login(body={"ipAddress": "192.0.2.12"})
    assert other.get("/tasks").json() == {"tasks": []}
    assert_error(other.get("/tasks/" + ids[0]), 404)


def test_split(srv, c):
    vp = "/server/0/volume/vol-0-13"
    assert c.get(vp + "/splitstatus").json() == {"percentageComplete": 0, "complete": False}
    tid = task_of(c, c.post(vp + "?action=split"))
    assert_error(c.post(vp + "?action=split"), 409)
    assert_error(c.delete(vp), 409, "task")
    st = c.get(vp + "/splitstatus").json()
    assert st["complete"] is False and 0 <= st["percentageComplete"] < 100
    assert wait_task(c, tid)["state"] == "SUCCEEDED"
    assert c.get(vp + "/splitstatus").json() == {"percentageComplete": 100, "complete": True}


def test_split_status_rises(refserver_factory):
    c = refserver_factory("--task-seconds", "1").login()
    vp = "/server/0/volume/vol-0-4"
    task_of(c, c.post(vp + "?action=split"))
    seen = []
    while True:
        st = c.get(vp + "/splitstatus").json()
        seen.append(st["percentageComplete"])
        if st["complete"]:
            break
        time.sleep(0.05)
    assert seen == sorted(seen) and seen[-1] == 100 and len(set(seen)) >= 4


def test_restores(srv, c):
    vp = "/server/0/volume/vol-0-14"
    snap = c.get(vp + "/snapshot").json()["snapshots"][0]
    # restore: the volume takes the snapshot's content
    tid = task_of(c, c.post(vp + "?action=restore", {"snapshotId": snap["id"]}))
    assert c.get(vp).json()["restoredFromSnapshotId"] is None
    assert wait_task(c, tid)["state"] == "SUCCEEDED"
    assert c.get(vp).json()["restoredFromSnapshotId"] == snap["id"]
    assert_error(c.post(vp + "?action=restore", {"snapshotId": "nope"}), 404, "snapshotId")
    assert_error(c.post(vp + "?action=restore", {}), 422, "'snapshotId'")
    # restore-to-alternate changes the target
    tp = "/server/0/volume/vol-0-15"
    tid = task_of(c, c.post(vp + "?action=restore-to-alternate",
                            {"sourceSnapshotId": snap["id"], "targetVolumeId": "vol-0-15"}))
    assert c.get(tp).json()["restoredFromSnapshotId"] is None
    assert wait_task(c, tid)["state"] == "SUCCEEDED"
    assert c.get(tp).json()["restoredFromSnapshotId"] == snap["id"]
    assert_error(c.post(vp + "?action=restore-to-alternate",
                        {"sourceSnapshotId": snap["id"], "targetVolumeId": "nope"}), 404)
    assert_error(c.post(vp + "?action=restore-to-alternate", {"sourceSnapshotId": snap["id"]}),
                 422, "'targetVolumeId'")
    # restore-to-new creates a volume in the named pool
    tid = task_of(c, c.post(vp + "?action=restore-to-new",
                            {"sourceSnapshotId": snap["id"], "targetVolumeName": "restored",
                             "targetPoolIds": ["pool-0-3"]}))
    assert "restored" not in [v["name"] for v in all_items(c, "/server/0/volume", "volumes")]
    t = wait_task(c, tid)
    assert t["state"] == "SUCCEEDED"
    new = [v for v in all_items(c, "/server/0/volume", "volumes") if v["name"] == "restored"]
    assert len(new) == 1 and new[0]["poolId"] == "pool-0-3"
    assert new[0]["restoredFromSnapshotId"] == snap["id"]
    assert t["associatedResources"][-1]["resourceUri"].endswith("/" + new[0]["id"])
    assert_error(c.post(vp + "?action=restore-to-new",
                        {"sourceSnapshotId": snap["id"], "targetVolumeName": "x",
                         "targetPoolIds": ["nope"]}), 404, "targetPoolIds")
    assert_error(c.post(vp + "?action=clone", {"name": "x", "snapshot": {"id": "nope"}}), 404)
    assert_error(c.post(vp + "?action=clone", {"name": ["x"]}), 422, "'name'")


def test_consistency_group_async_actions(srv, c):
    cgp = "/server/0/consistencygroup/cg-0-3"
    cg = c.get(cgp).json()
    before = c.get(cgp + "/snapshot").json()["snapshots"]
    tid = task_of(c, c.post(cgp + "?action=take-snapshot",
                            {"prefix": "hourly", "replicate": False, "isAutoDelete": True,
                             "isIncremental": False}))
    assert c.get(cgp + "/snapshot").json()["snapshots"] == before
    t = wait_task(c, tid)
    assert t["state"] == "SUCCEEDED"
    after = c.get(cgp + "/snapshot").json()["snapshots"]
    assert after[:-1] == before and after[-1]["name"].startswith("hourly")
    new = after[-1]
    check_time(new)
    assert len(new["volumeSnapshotIds"]) == len(cg["volumeIds"])
    for vid, snid in zip(cg["volumeIds"], new["volumeSnapshotIds"]):
        vs = c.get("/server/0/volume/%s/snapshot/%s" % (vid, snid)).json()
        assert vs["consistencyGroupSnapshotId"] == new["id"] and vs["name"] == new["name"]
    # condense keeps the newest instance of the prefix, removes older ones
    task_of(c, c.post(cgp + "?action=take-snapshot", {"prefix": "hourly"}))
    tid = task_of(c, c.post(cgp + "?action=take-snapshot", {"prefix": "hourly"}))
    wait_task(c, tid)
    hourly = [x for x in c.get(cgp + "/snapshot").json()["snapshots"]
              if x["name"].startswith("hourly")]
    assert len(hourly) == 3
    tid = task_of(c, c.post(cgp + "?action=condense",
                            {"ageInDays": 0, "numberOfInstances": 1,
                             "snapshotPrefixes": ["hourly"]}))
    assert wait_task(c, tid)["state"] == "SUCCEEDED"
    snaps = c.get(cgp + "/snapshot").json()["snapshots"]
    assert snaps[:len(before)] == before
    assert [x["name"] for x in snaps[len(before):]] == [hourly[-1]["name"]]
    gone = hourly[0]
    for vid, snid in zip(cg["volumeIds"], gone["volumeSnapshotIds"]):
        assert_error(c.get("/server/0/volume/%s/snapshot/%s" % (vid, snid)), 404)
    assert_error(c.post(cgp + "?action=condense", {"numberOfInstances": "1"}), 422,
                 "'numberOfInstances'")
    assert_error(c.post("/server/0/consistencygroup/nope?action=condense"), 404)


def test_sync_mode(refserver_factory):
    c = refserver_factory("--sync", "--volumes", "5").login()
    r = c.post("/server/0/volume/vol-0-5?action=clone", {"name": "sync-clone"})
    assert r.status == 200
    clone = r.json()
    assert clone["name"] == "sync-clone"
    assert c.get("/server/0/volume/" + clone["id"]).json() == clone
    r = c.post("/server/0/volume/vol-0-5?action=split")
    assert r.status == 200 and r.json() == {"percentageComplete": 100, "complete": True}
    assert c.get("/server/0/volume/vol-0-5/splitstatus").json()["complete"] is True
    snap = c.get("/server/0/volume/vol-0-5/snapshot").json()["snapshots"][0]
    r = c.post("/server/0/volume/vol-0-5?action=restore", {"snapshotId": snap["id"]})
    assert r.status == 200 and r.json()["restoredFromSnapshotId"] == snap["id"]
    r = c.post("/server/0/volume/vol-0-5?action=restore-to-alternate",
               {"sourceSnapshotId": snap["id"], "targetVolumeId": "vol-0-4"})
    assert r.status == 200 and r.json()["id"] == "vol-0-4"
    r = c.post("/server/0/volume/vol-0-5?action=restore-to-new",
               {"sourceSnapshotId": snap["id"], "targetVolumeName": "rn"})
    assert r.status == 200 and r.json()["name"] == "rn"
    r = c.post("/server/0/consistencygroup/cg-0-1?action=take-snapshot", {"prefix": "p"})
    assert r.status == 200 and set(r.json()) == {"id", "name"}
    assert r.json() in [{"id": x["id"], "name": x["name"]} for x in
                        c.get("/server/0/consistencygroup/cg-0-1/snapshot").json()["snapshots"]]
    r = c.post("/server/0/consistencygroup/cg-0-1?action=condense", {})
    assert r.status == 200 and r.json()["id"] == "cg-0-1"
    assert_error(c.post("/server/0/volume/vol-0-5?action=clone", {"name": "fail-x"}), 500,
                 "fail-x")
    assert c.get("/tasks").json() == {"tasks": []}


# --------------------------------------------------------------------------
# sessions, password, arrays

def test_session_expiry(refserver_factory):
    s = refserver_factory("--session-ttl", "0.6", "--test-controls")
    c = s.login()
    for _ in range(5):  # each call extends the session: 1 s of use > the TTL
        assert c.get("/storage").status == 200
        time.sleep(0.2)
    time.sleep(0.9)
    assert_error(c.get("/storage"), 401, "expired")
    assert_error(c.get("/storage"), 401)
    c2 = s.login()
    assert s.sim("GET", "/sessions").json() == {"active": 1, "byArray": {"array1": 1}}
    assert s.sim("POST", "/sessions/expire").status == 204
    assert_error(c2.get("/storage"), 401)
    assert s.sim("GET", "/sessions").json()["active"] == 0
    assert s.login().get("/storage").status == 200


def test_password_change(refserver_factory):
    s = refserver_factory("--test-controls", "--user", "ops", "--password", "s3cret")
    assert s.client().login("ops", "s3cret").status == 201
    assert_error(s.client().login("admin", "admin"), 401)
    assert s.sim("POST", "/password", {"password": "n3w"}).status == 204
    assert_error(s.client().login("ops", "s3cret"), 401)
    assert s.client().login("ops", "n3w").status == 201
    assert s.sim("POST", "/password", {"password": 1}).status == 422


def test_request_log_keeps_changes_not_reads(refserver_factory):
    s = refserver_factory("--test-controls")
    c = s.login()
    assert c.get("/storage").status == 200
    vol = "/server/0/volume/vol-0-3/snapshot"
    assert c.post(vol, {"name": "logged"}).status == 201
    assert_error(c.post(vol, {"name": "logged"}), 409)
    assert s.client().request("GET", "/elsewhere").status == 404
    reqs = s.sim("GET", "/requests").json()["requests"]
    assert [(q["method"], q["path"], q["template"], q["status"]) for q in reqs] == [
        ("POST", "/storageplugin/api/session", "/session", 201),
        ("POST", "/storageplugin/api" + vol, "/server/{sid}/volume/{vid}/snapshot", 201),
        ("POST", "/storageplugin/api" + vol, "/server/{sid}/volume/{vid}/snapshot", 409)]
    assert reqs[1]["body"] == {"name": "logged"} and reqs[1]["contentType"] == "application/json"
    assert [q["status"] for q in s.sim("GET", "/requests?limit=1").json()["requests"]] == [409]
    assert s.sim("DELETE", "/requests").status == 204
    assert s.sim("GET", "/requests").json() == {"requests": []}
    # the controls of logins this API does not have
    for path in ("/tokens", "/events"):
        assert_error(s.sim("POST", path, {}), 404, "no such test control")


def test_password_file(refserver_factory, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    s = refserver_factory("--password-file", str(pw))
    assert s.client().login("admin", "from-file").status == 201
    assert_error(s.client().login("admin", "admin"), 401)


def test_multiple_arrays(refserver_factory):
    s = refserver_factory("--arrays", "3", "--volumes", "4", "--luns", "2")
    c2 = s.login(body={"hostname": "array2.example.com", "port": 443})
    c3 = s.login(body={"ipAddress": "192.0.2.13"})
    st2, st3 = c2.get("/storage").json(), c3.get("/storage").json()
    assert (st2["id"], st2["hostName"], st2["ipAddress"]) == \
        ("array2", "array2.example.com", "192.0.2.12")
    assert (st3["id"], st3["hostName"], st3["ipAddress"]) == \
        ("array3", "array3.example.com", "192.0.2.13")
    assert c2.login(body={"hostname": "ARRAY2.example.com"}).json()["storageId"] == "array2"
    # each array has its own estate
    assert c2.get("/server/0/volume").body != c3.get("/server/0/volume").body
    assert c2.delete("/server/0/volume/vol-0-4").status == 200
    assert_error(c2.get("/server/0/volume/vol-0-4"), 404)
    assert c3.get("/server/0/volume/vol-0-4").status == 200
    for body in (None, {}, {"hostname": "array9.example.com"}, {"ipAddress": "10.0.0.1"}):
        assert_error(s.client().login(body=body), 404)


# --------------------------------------------------------------------------
# /_sim: stats and faults

def test_stats(refserver_factory):
    s = refserver_factory("--test-controls", "--volumes", "3")
    c = s.login()
    c.get("/server/0/volume")
    c.get("/server/1/volume?limit=1")
    c.get("/server/0/volume/vol-0-1")
    c.post("/server/0/volume/vol-0-1?action=split")
    c.post("/server/0/volume/vol-0-1?action=bogus")
    c.get("/server/0/hostgroup/hg-0-1")
    c.get("/nope")
    c.get("/tasks")
    s.sim("GET", "/faults")
    stats = s.sim("GET", "/stats").json()
    assert stats == {"POST /session": 1, "GET /server/{sid}/volume": 2,
                     "GET /server/{sid}/volume/{vid}": 1,
                     "POST /server/{sid}/volume/{vid}?action=split": 1,
                     "POST /server/{sid}/volume/{vid}?action=bogus": 1,
                     "GET /server/{sid}/hostgroup/{gid}": 1, "GET <unknown>": 1,
                     "GET /tasks": 1, "total": 9}
    assert s.sim("POST", "/stats/reset").status == 204
    assert s.sim("GET", "/stats").json() == {"total": 0}
    s.sim("POST", "/faults", {"status": 503, "count": 1})
    c.get("/server/0/snapshot")
    c.get("/tasks/abc")
    assert s.sim("GET", "/stats").json() == {"GET <unknown>": 1, "GET /tasks/{taskId}": 1,
                                             "total": 2}


def test_test_controls_are_off_by_default(srv):
    s = start_refserver()
    try:
        r = Client(s.root).get("/_sim/stats")
        assert r.status == 404
    finally:
        s.stop()


def test_fault_latency_and_global_latency(refserver_factory):
    s = refserver_factory("--test-controls")
    c = s.login()
    r = s.sim("POST", "/faults", {"method": "GET", "path": "/server/0/volume",
                                  "latency_ms": 300, "count": 1})
    assert r.status == 201 and r.json()["id"]
    t = time.monotonic()
    assert c.get("/server/0/volume").status == 200
    assert time.monotonic() - t >= 0.3
    t = time.monotonic()
    assert c.get("/server/0/volume").status == 200
    assert time.monotonic() - t < 0.25
    slow = refserver_factory("--latency-ms", "300")
    clients = [slow.client() for _ in range(4)]
    times = []

    def one(cl):
        t0 = time.monotonic()
        assert cl.get("/info").status == 200
        times.append(time.monotonic() - t0)

    t = time.monotonic()
    threads = [threading.Thread(target=one, args=(cl,)) for cl in clients]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(times) == 4 and min(times) >= 0.3
    assert time.monotonic() - t < 1.0  # the four waited concurrently


def test_fault_status_retry_after_and_count(refserver_factory):
    s = refserver_factory("--test-controls")
    c = s.login()
    s.sim("POST", "/faults", {"method": "*", "path": "/server", "status": 503,
                              "retry_after": 2, "count": 2})
    for _ in range(2):
        r = c.get("/server/0/lun")
        assert_error(r, 503)
        assert r.headers["retry-after"] == "2"
    assert c.get("/server/0/lun").status == 200
    assert c.get("/storage").status == 200  # path prefix did not match
    faults = s.sim("GET", "/faults").json()["faults"]
    assert len(faults) == 1 and faults[0]["remaining"] == 0 and faults[0]["hits"] == 2
    assert faults[0]["active"] is False
    s.sim("POST", "/faults", {"method": "POST", "status": 429, "retry_after": 1})
    assert c.get("/storage").status == 200  # method did not match
    r = c.post("/server/0/volume/vol-0-1/snapshot", {"name": "never"})
    assert_error(r, 429)
    assert r.headers["retry-after"] == "1"
    assert s.sim("DELETE", "/faults").status == 204
    assert s.sim("GET", "/faults").json() == {"faults": []}
    # the faulted POST had no effect
    names = [x["name"] for x in c.get("/server/0/volume/vol-0-1/snapshot").json()["snapshots"]]
    assert "never" not in names
    s.sim("POST", "/faults", {"path": "/info", "status": 500, "count": 1})
    r = c.get("/info")
    assert_error(r, 500)
    assert "retry-after" not in r.headers
    s.sim("POST", "/faults", {"path": "/info", "status": 503, "count": 1})
    r = c.get("/info")
    assert_error(r, 503)
    assert r.headers["retry-after"] == "1"  # 429 and 503 always carry Retry-After


def test_fault_drop_and_mid_body(refserver_factory):
    s = refserver_factory("--test-controls")
    c = s.login()
    s.sim("POST", "/faults", {"path": "/server/0/volume", "drop": True, "count": 1})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        c.get("/server/0/volume")
    assert c.get("/server/0/volume").status == 200
    s.sim("POST", "/faults", {"path": "/server/0/volume", "drop": "mid-body", "count": 1})
    with pytest.raises(http.client.IncompleteRead):
        c.get("/server/0/volume")
    assert c.get("/server/0/volume").status == 200
    # a raw look: headers and a part of the body, then EOF
    s.sim("POST", "/faults", {"path": "/server/0/volume", "drop": "mid-body", "count": 1})
    sock = socket.create_connection((s.host, s.port), timeout=5)
    sock.sendall(("GET /storageplugin/api/server/0/volume HTTP/1.1\r\nHost: x\r\n"
                  "x-storageplugin-sessionid: %s\r\n\r\n" % c.session_id).encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    assert head.startswith(b"HTTP/1.1 200") and 0 < len(body) < length
    sock.close()
    # drop of a POST: nothing happened
    s.sim("POST", "/faults", {"method": "POST", "drop": True, "count": 1})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        c.post("/server/0/volume/vol-0-1/snapshot", {"name": "dropped"})
    names = [x["name"] for x in c.get("/server/0/volume/vol-0-1/snapshot").json()["snapshots"]]
    assert "dropped" not in names


def test_fault_hang_released_by_delete(refserver_factory):
    s = refserver_factory("--test-controls")
    c = s.login()
    fid = s.sim("POST", "/faults", {"path": "/server/0/pool", "hang": True}).json()["id"]
    s.sim("POST", "/faults", {"path": "/server/1/pool", "hang": True, "count": 1})
    results = {}

    def call(key, path):
        cl = s.client(timeout=10)
        cl.session_id = c.session_id
        results[key] = cl.get(path).status

    threads = [threading.Thread(target=call, args=(k, p)) for k, p in
               (("a", "/server/0/pool"), ("b", "/server/1/pool"))]
    for th in threads:
        th.start()
    time.sleep(0.5)
    assert results == {}  # both hang
    assert c.get("/server/0/lun").status == 200  # others are served meanwhile
    assert s.sim("DELETE", "/faults/" + fid).status == 204
    threads[0].join(5)
    assert results == {"a": 200}
    assert s.sim("DELETE", "/faults/nope").status == 404
    assert s.sim("DELETE", "/faults").status == 204
    threads[1].join(5)
    assert results == {"a": 200, "b": 200}


def test_fault_rate(refserver_factory):
    s = refserver_factory("--test-controls")
    c = s.login()
    s.sim("POST", "/faults", {"path": "/storage", "status": 503, "rate": 0.5})
    codes = [c.get("/storage").status for _ in range(200)]
    assert 60 <= codes.count(503) <= 140 and codes.count(200) == 200 - codes.count(503)
    s.sim("DELETE", "/faults")
    s.sim("POST", "/faults", {"path": "/storage", "status": 503, "rate": 0.0})
    assert all(c.get("/storage").status == 200 for _ in range(20))
    s.sim("POST", "/faults", {"path": "/storage", "status": 502, "rate": 1.0, "count": 3})
    assert [c.get("/storage").status for _ in range(5)] == [502, 502, 502, 200, 200]


def test_fault_validation(refserver_factory):
    s = refserver_factory("--test-controls")
    for bad in ({}, {"status": 200}, {"status": 503, "drop": True}, {"rate": 2, "hang": True},
                {"count": 0, "hang": True}, {"drop": "later"}, {"latency_ms": -1},
                {"latency_ms": 5, "retry_after": 1}, {"hang": True, "colour": "red"}):
        r = s.sim("POST", "/faults", bad)
        assert_error(r, 422)
    r = Client(s.root).request("POST", "/_sim/faults", raw=b"{", content_type="application/json")
    assert_error(r, 400)
    assert s.sim("GET", "/faults").json() == {"faults": []}
    f = s.sim("POST", "/faults", {"method": "get", "path": "/x", "latency_ms": 10,
                                  "rate": 0.25}).json()
    assert {"method": "GET", "path": "/x", "latency_ms": 10, "rate": 0.25,
            "remaining": None, "hits": 0, "active": True}.items() <= f.items()
    assert s.sim("GET", "/nope").status == 404


def test_fault_ignore_start_and_total(refserver_factory):
    s = refserver_factory("--test-controls", "--volumes", "5")
    c = s.login()
    first = c.get("/server/0/volume?limit=2").json()["volumes"]
    assert c.get("/server/0/volume?limit=2&start=2").json()["volumes"] != first
    s.sim("POST", "/faults", {"path": "/server/0/volume", "ignore_start": True, "count": 2})
    for start in (2, 4):
        assert c.get("/server/0/volume?limit=2&start=%d" % start).json()["volumes"] == first
    assert c.get("/server/0/volume?limit=2&start=2").json()["volumes"] != first  # used up
    s.sim("POST", "/faults", {"path": "/server/0/volume", "total": 3, "count": 1})
    body = c.get("/server/0/volume").json()
    assert body["total"] == 3 and len(body["volumes"]) == 5
    assert "total" not in c.get("/server/0/volume").json()
    for bad in ({"ignore_start": False}, {"ignore_start": 1}, {"total": -1}, {"total": "3"},
                {"total": 3, "ignore_start": True}):
        assert_error(s.sim("POST", "/faults", bad), 422)


def test_fault_ignore_offset_and_total_in_dscc_mode(refserver_factory):
    s = refserver_factory("--dialect", "dscc", "--test-controls", "--volumes", "5", "--servers", "1")
    token = s.sim("POST", "/tokens", {"ttl": 600}).json()["access_token"]
    c = Client(s.url)

    def page(query):
        r = c.get("/api/v1/volumes?" + query, headers={"Authorization": "Bearer " + token})
        assert r.status == 200, r.body
        return r.json()

    first = page("limit=2")
    s.sim("POST", "/faults", {"path": "/api/v1/volumes", "ignore_start": True, "count": 1})
    assert page("limit=2&offset=2")["items"] == first["items"]
    assert page("limit=2&offset=2")["items"] != first["items"]
    s.sim("POST", "/faults", {"path": "/api/v1/volumes", "total": 1, "count": 1})
    got = page("limit=5")
    assert got["total"] == 1 and len(got["items"]) == 5
    assert page("limit=5")["total"] == 5


# --------------------------------------------------------------------------
# hostile names and ids

def test_hostile_names_and_ids(refserver_factory):
    s = refserver_factory("--hostile-names", "--volumes", "4", "--task-seconds", "0.3")
    c = s.login()
    vols = c.get("/server/0/volume").json()["volumes"]
    names = [v["name"] for v in vols]
    ids = [v["id"] for v in vols]
    for n in ("", ".", "..", "a/b", "100% full", "line1\nline2", "tab\there",
              "Ünïcødé-ボリューム"):
        assert n in names, n
    assert names.count(names[0]) == 2  # a duplicate of a sibling
    for ch in ("/", "?", "#", "%", " "):
        assert any(ch in i for i in ids), ch
    assert ".." in ids
    # every id round-trips through a percent-encoded path
    for v in vols:
        r = c.get("/server/0/volume/" + seg(v["id"]))
        assert r.status == 200 and r.json() == v, v["id"]
        assert c.get("/server/0/volume/%s/snapshot" % seg(v["id"])).status == 200
    # decoding happens once: "%2541" is the id "vol-0%41", "%41" would be "A"
    assert c.get("/server/0/volume/vol-0%2541").json()["id"] == "vol-0%41"
    assert c.get("/server/0/volume/vol-0%41").status == 404
    # every collection has awkward members, each reachable by its id
    colls = {"lun": "luns", "network": "networks", "pool": "pools",
             "consistencygroup": "consistencyGroups", "host": "hosts"}
    for kind, key in colls.items():
        items = c.get("/server/0/" + kind).json()[key]
        assert "a/b" in [x["name"] for x in items] and "" in [x["name"] for x in items]
        odd = [x for x in items if "/" in x["id"]]
        assert odd, kind
        for x in items:
            assert c.get("/server/0/%s/%s" % (kind, seg(x["id"]))).json() == x
    for path, key in (("/server/0/hostgroup", "groups"), ("/server/0/remotearray",
                                                          "remoteArrays"),
                      ("/server/0/consistencygroup/cg-0-1/snapshot", "snapshots"),
                      ("/server/0/volume/vol-0-1/snapshot", "snapshots")):
        items = c.get(path).json()[key]
        assert "line1\nline2" in [x["name"] for x in items], path
        assert any("#" in x["id"] for x in items), path
    hostile_vol = next(v for v in vols if v["id"] == "vol-0/1")
    snaps = c.get("/server/0/volume/%s/snapshot" % seg(hostile_vol["id"])).json()["snapshots"]
    for sn in snaps:
        r = c.get("/server/0/volume/%s/snapshot/%s" % (seg(hostile_vol["id"]), seg(sn["id"])))
        assert r.json() == sn
    # servers with awkward ids have estates too
    servers = c.get("/server").json()["servers"]
    assert [x["id"] for x in servers] == ["0", "1", "srv/x", "s p?#%41"]
    for sv in servers[2:]:
        vs = c.get("/server/%s/volume" % seg(sv["id"])).json()["volumes"]
        assert vs
        v0 = vs[0]
        assert c.get("/server/%s/volume/%s" % (seg(sv["id"]), seg(v0["id"]))).json() == v0
    # actions and created resources on awkward ids
    r = c.post("/server/0/volume/%s/snapshot" % seg("vol-0 2"), {"name": "x/y"})
    assert r.status == 201
    loc = r.headers["location"]
    assert "/volume/vol-0%202/snapshot/" in loc
    assert c.get(loc[len(s.url):]).json() == r.json()
    tid = task_of(c, c.post("/server/0/volume/%s?action=clone" % seg(".."), {"name": "dots"}))
    assert wait_task(c, tid)["state"] == "SUCCEEDED"


# --------------------------------------------------------------------------
# scale

def test_large_estate_starts_fast(refserver_factory):
    t = time.monotonic()
    s = refserver_factory("--servers", "2", "--volumes", "5000", "--snapshots", "5")
    assert time.monotonic() - t < 5
    c = s.login()
    vols = all_items(c, "/server/1/volume", "volumes")
    assert len(vols) == 5000 and vols[-1]["id"] == "vol-1-5000"
    assert vols[-1]["name"].endswith("-5000")
    assert len(c.get("/server/1/volume/vol-1-4999/snapshot").json()["snapshots"]) == 5
    assert len(c.get("/server/0/volume?limit=5000").json()["volumes"]) == 1000


# --------------------------------------------------------------------------
# TLS

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    assert shutil.which("openssl"), "the openssl command is needed for the TLS tests"
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=dsfs test CA", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                 "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        (d / (name + ".ext")).write_text(ext + "\n")
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", name + ".pem",
                 "-extfile", name + ".ext", cwd=d)
    return d


def test_tls(refserver_factory, pki):
    s = refserver_factory("--tls-cert", pki / "server.pem", "--tls-key", pki / "server.key",
                          "--test-controls")
    assert s.url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    c = s.client(ssl_context=ctx)
    assert c.login().status == 201
    assert c.get("/storage").json()["port"] == s.port
    r = c.post("/server/0/volume/vol-0-1?action=split")
    assert r.headers["location"].startswith("https://")
    assert s.sim("GET", "/stats", ssl_context=ctx).status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        s.client(ssl_context=ssl.create_default_context()).get("/info")
    plain = Client(s.url.replace("https:", "http:"))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError,
                        http.client.BadStatusLine)):
        plain.get("/info")
    assert c.get("/info").status == 200  # a bad client did not disturb the server


def test_mutual_tls(refserver_factory, pki):
    s = refserver_factory("--tls-cert", pki / "server.pem", "--tls-key", pki / "server.key",
                          "--tls-client-ca", pki / "ca.pem")
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        s.client(ssl_context=ctx).get("/info")
    ctx.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    c = s.client(ssl_context=ctx)
    assert c.get("/info").status == 200
    assert c.login().status == 201


def test_runs_under_the_other_python(tmp_path):
    """The server must run under both the pyenv python3 and Debian's /usr/bin/python3."""
    others = {shutil.which("python3"), "/usr/bin/python3"} - {None}
    assert others
    for py in sorted(others):
        s = start_refserver("--volumes", "2", python=py)
        try:
            assert s.login().get("/server/0/volume").status == 200
        finally:
            s.stop()
