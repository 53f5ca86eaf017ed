"""The Cloud Sync dialect (issue 14, first part) through a real mount against
the reference server's --dialect cloudsync mode: the tree equals the API
(whole-array lists, hostile names included), the account is chosen, a
relationship's sync and abort go through its action file (PUT), new
relationships are created from JSON with brokers named by their entries,
rmdir deletes with -o allow_delete only, tokens are renewed as they run out,
a sync is followed through tasks/, the brokers' lists arrive as messages,
and an estate holds a Cloud Sync member beside a storage array.
"""

import errno
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import MountFailed, entries, reset_stats, sim_stats
from test_actions import result, write
from test_estate import write_estate
from tree_model import assign_entries

from refserver_fixture import Client


def credentials(tmp, server, refresh="dsfs-demo-refresh-token", extra=""):
    path = os.path.join(str(tmp), "cs-cred")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("refresh_token=%s\nclient_id=dsfs-demo\ntoken_url=%s/oauth/token\n%s" % (refresh, server.root, extra))
    return path


class Api:
    """A Cloud Sync client as the seed says: a user token, the account in x-account-id."""

    def __init__(self, server, account=0):
        tok = Client(server.root)
        tok.base = ""
        r = tok.request("POST", "/oauth/token", None, session=False, content_type="application/x-www-form-urlencoded",
                        raw=b"grant_type=refresh_token&refresh_token=dsfs-demo-refresh-token&client_id=dsfs-demo")
        assert r.status == 200, (r.status, r.body)
        self.c = Client(server.url)
        self.headers = {"Authorization": "Bearer " + r.json()["access_token"]}
        self.accounts = self.get("/accounts")
        self.headers["x-account-id"] = self.accounts[account]["accountId"]

    def get(self, path):
        r = self.c.request("GET", path, None, session=False, headers=self.headers)
        assert r.status == 200, (path, r.status, r.body)
        return r.json()


def named(objs, name, ident):
    return [{"name": o.get(name) if isinstance(o.get(name), str) else "", "id": o[ident]} for o in objs]


@pytest.fixture
def cs(server_factory):
    return server_factory("--dialect", "cloudsync", "--test-controls", "--task-seconds", "1", "--servers", "2",
                          "--volumes", "2", "--heartbeat-seconds", "0")


@pytest.fixture
def mount_cs(dsfs_mount, tmp_path):
    def mount(server, *opts, ttl=60, cred=None, **kw):
        return dsfs_mount(server, "api=cloudsync", *opts, ttl=ttl, credentials=cred or credentials(tmp_path, server),
                          **kw)
    return mount


def check_tree(m, api):
    assert sorted(os.listdir(m.path)) == ["accounts.json", "data-brokers", "groups", "relationships", "tasks"]
    with open(m.p("accounts.json")) as f:
        assert json.load(f) == api.accounts
    for d, path, objfile, name, ident in (("data-brokers", "/data-brokers", "data-broker.json", "name", "id"),
                                          ("groups", "/groups", "group.json", "name", "id"),
                                          ("relationships", "/relationships-v2", "relationship.json",
                                           "relationshipId", "relationshipId")):
        objs = api.get(path)
        names = assign_entries(named(objs, name, ident))
        assert set(os.listdir(m.p(d))) == set(names) | ({"new"} if d == "relationships" else set()), d
        assert os.path.isdir(m.p(d, ".by-id")), d  # reachable, not listed
        for obj, entry in zip(objs, names):
            with open(m.p(d, entry, objfile)) as f:
                assert json.load(f) == obj, (d, entry)


def test_tree_equals_the_api_and_each_list_costs_one_request(cs, mount_cs):
    m = mount_cs(cs)
    reset_stats(cs)
    check_tree(m, Api(cs))
    st = sim_stats(cs)
    for path in ("/api/data-brokers", "/api/groups", "/api/relationships-v2"):
        assert st.get("GET " + path) == 2, st  # the mount's one, and the test's own client


def test_hostile_names_equal_the_api(server_factory, mount_cs):
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--hostile-names", "--servers", "2",
                            "--volumes", "1", "--heartbeat-seconds", "0")
    m = mount_cs(server)
    check_tree(m, Api(server))


def test_the_account_is_the_first_unless_one_is_named(cs, mount_cs, tmp_path):
    first, second = Api(cs), Api(cs, account=1)
    m = mount_cs(cs)
    assert {json.load(open(m.p("data-brokers", b, "data-broker.json")))["id"] for b in entries(m.p("data-brokers"))} \
        == {b["id"] for b in first.get("/data-brokers")}
    other = mount_cs(cs, cred=credentials(tmp_path, cs, extra="account=%s\n" % second.accounts[1]["accountId"]))
    assert {json.load(open(other.p("data-brokers", b, "data-broker.json")))["id"]
            for b in entries(other.p("data-brokers"))} == {b["id"] for b in second.get("/data-brokers")}


def test_sync_and_abort_through_the_action_file(cs, mount_cs):
    m = mount_cs(cs, ttl=0)
    api = Api(cs)
    rel = api.get("/relationships-v2")[0]["relationshipId"]
    rdir = m.p("relationships", rel)
    cs.sim("DELETE", "/requests")
    assert write(os.path.join(rdir, "action"), "sync\n") == 0
    assert result(os.path.join(rdir, "action"))["status"] == 202
    assert "status RUNNING\n" in open(os.path.join(rdir, "activity")).read()
    assert write(os.path.join(rdir, "action"), "sync\n") == errno.EEXIST  # one runs already: 409
    assert write(os.path.join(rdir, "action"), "abort\n") == 0
    assert "status ABORTED\n" in open(os.path.join(rdir, "activity")).read()
    assert api.get("/relationships-v2/" + rel)["activity"]["status"] == "ABORTED"
    assert write(os.path.join(rdir, "action"), "sync\n") == 0
    deadline = time.time() + 10
    while "status DONE\n" not in open(os.path.join(rdir, "activity")).read():
        assert time.time() < deadline, open(os.path.join(rdir, "activity")).read()
        time.sleep(0.2)
    sent = [(r["method"], r["path"]) for r in cs.sim("GET", "/requests").json()["requests"]]
    sync, abort = ("PUT", "/api/relationships/%s/sync" % rel), ("PUT", "/api/relationships/%s/abort" % rel)
    assert sent == [sync, sync, abort, sync], sent  # each write once; the second refused with 409
    assert write(os.path.join(rdir, "action"), "sync now=1\n") == errno.EINVAL  # sync takes no arguments


def test_new_relationship_from_json_with_a_broker_named_by_its_entry(cs, mount_cs):
    m = mount_cs(cs)
    api = Api(cs)
    broker = api.get("/data-brokers")[0]
    before = {r["relationshipId"] for r in api.get("/relationships-v2")}
    body = {"source": {"protocol": "nfs", "nfs": {"host": "nfs-9", "export": "/e", "path": "/p"}},
            "target": {"protocol": "s3", "s3": {"bucket": "b9", "prefix": "p/"}},
            "dataBroker": broker["name"]}
    cs.sim("DELETE", "/requests")
    assert write(m.p("relationships", "new"), json.dumps(body) + "\n") == 0
    sent = cs.sim("GET", "/requests").json()["requests"]
    assert len(sent) == 1 and sent[0]["body"]["dataBroker"] == broker["id"], sent
    new = {r["relationshipId"] for r in api.get("/relationships-v2")} - before
    assert len(new) == 1 and new <= set(entries(m.p("relationships")))
    # refused before sending: no target
    assert write(m.p("relationships", "new"), json.dumps({"source": body["source"], "dataBroker": broker["id"]})
                 + "\n") == errno.EINVAL
    assert len(cs.sim("GET", "/requests").json()["requests"]) == 1


def test_rmdir_deletes_a_relationship_only_with_allow_delete(cs, mount_cs):
    api = Api(cs)
    rel = api.get("/relationships-v2")[-1]["relationshipId"]
    m = mount_cs(cs)
    with pytest.raises(OSError) as e:
        os.rmdir(m.p("relationships", rel))
    assert e.value.errno == errno.EPERM
    m2 = mount_cs(cs, "allow_delete")
    cs.sim("DELETE", "/requests")
    os.rmdir(m2.p("relationships", rel))
    sent = [(r["method"], r["path"]) for r in cs.sim("GET", "/requests").json()["requests"]]
    assert sent == [("DELETE", "/api/relationships/%s" % rel)], sent
    assert rel not in {r["relationshipId"] for r in api.get("/relationships-v2")}
    assert rel not in entries(m2.p("relationships"))


def test_tokens_are_renewed_as_they_run_out_and_bad_credentials_refused(server_factory, mount_cs, tmp_path):
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--token-ttl", "2", "--servers", "1",
                            "--volumes", "2", "--heartbeat-seconds", "0")
    m = mount_cs(server, ttl=0.2)
    t_end = time.time() + 5
    while time.time() < t_end:
        subprocess.run(["find", m.path, "-name", "*.json", "-exec", "cat", "{}", "+"], check=True,
                       stdout=subprocess.DEVNULL)
    assert sim_stats(server).get("POST /oauth/token", 0) >= 3
    with pytest.raises(MountFailed) as e:
        mount_cs(server, cred=credentials(tmp_path, server, refresh="not-it-Xq"))
    assert "400" in e.value.output and "not-it-Xq" not in e.value.output
    with pytest.raises(MountFailed) as e:
        mount_cs(server, cred=credentials(tmp_path, server, extra="token=x\n"))
    assert "the cloudsync dialect's keys" in e.value.output


def test_an_estate_with_a_cloud_sync_member(cs, server_factory, dsfs_mount, tmp_path):
    sp = server_factory("--test-controls", "--volumes", "2", "--snapshots", "1")
    path = write_estate(tmp_path, [
        ("array", {"url": sp.url, "username": "admin", "password": "admin"}),
        ("sync", {"url": cs.url, "api": "cloudsync", "refresh_token": "dsfs-demo-refresh-token",
                  "client_id": "dsfs-demo", "token_url": cs.root + "/oauth/token"}),
    ])
    m = dsfs_mount(sp, "estate=" + path, estate=True)
    assert sorted(entries(m.path)) == ["array", "sync", "tasks"]
    assert entries(m.p("sync", "relationships"))
    assert sorted(entries(m.p("tasks"))) == ["array", "sync"]
    assert os.readlink(m.p("tasks", "sync")) == "../sync/tasks"


# ---- answers that arrive as messages ----------------------------------------------------------

def read_all(paths):
    """Reads every path at once from its own thread; {path: (text or None, errno or 0)}."""
    import threading

    out = {}

    def one(p):
        try:
            with open(p) as f:
                out[p] = (f.read(), 0)
        except OSError as e:
            out[p] = (None, e.errno)
    threads = [threading.Thread(target=one, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_broker_lists_arrive_as_messages_once_for_all_readers(server_factory, mount_cs):
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "2", "--volumes", "1",
                            "--message-delay", "0.8", "--heartbeat-seconds", "0.2")
    m = mount_cs(server)
    brokers = entries(m.p("data-brokers"))
    assert len(brokers) == 2
    reset_stats(server)
    files = [m.p("data-brokers", b, f) for b in brokers for f in ("s3-buckets.json", "nfs-exports.json")]
    got = read_all(files * 3)  # three readers of each of the four files, at once
    st = sim_stats(server)
    assert st.get("GET /api/data-brokers/{id}/list-s3-buckets") == 2, st  # one call per broker
    assert st.get("GET /api/data-brokers/{id}/list-nfs-export-folders") == 2, st
    for path in files:
        text, err = got[path]
        assert err == 0, (path, os.strerror(err))
        data = json.loads(text)
        assert data and "not-yours" not in text, text  # another client's answer is never taken
    buckets = json.loads(got[files[0]][0])
    assert all(set(b) >= {"name", "region"} for b in buckets)
    # then cached like any other file
    reset_stats(server)
    assert open(files[0]).read() == got[files[0]][0]
    assert sim_stats(server).get("total", 0) == 0


def test_an_answer_that_never_comes_is_etimedout_with_the_reason(server_factory, mount_cs):
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "1", "--volumes", "1",
                            "--message-delay", "0.3")
    m = mount_cs(server, "timeout=2")
    broker = entries(m.p("data-brokers"))[0]
    server.sim("POST", "/messages/drop", {"count": 1})
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        open(m.p("data-brokers", broker, "s3-buckets.json")).read()
    assert e.value.errno == errno.ETIMEDOUT
    assert time.monotonic() - t0 < 6
    assert "no answer to list-s3-buckets arrived on /messages/client within 2 s" in m.log_text()
    assert json.loads(open(m.p("data-brokers", broker, "s3-buckets.json")).read())  # the next read works


def test_a_reader_awaiting_an_answer_is_interruptible_and_sigterm_ends_the_wait(server_factory, mount_cs):
    """The answer never comes (timeout=30): kill -9 of the reader ends its wait at once, and so
    does SIGTERM of the daemon for another reader; neither waits out the 30 s (the bounds, a third
    of it, leave a loaded machine room)."""
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "1", "--volumes", "1",
                            "--message-delay", "0.3")
    m = mount_cs(server, "timeout=30")
    broker = entries(m.p("data-brokers"))[0]
    path = m.p("data-brokers", broker, "s3-buckets.json")
    server.sim("POST", "/messages/drop", {"count": 2})
    reader = subprocess.Popen(["cat", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    assert reader.poll() is None
    t0 = time.monotonic()
    reader.kill()
    reader.wait(timeout=30)
    assert time.monotonic() - t0 < 10, "the killed reader was held until the answer's timeout"
    other = subprocess.Popen(["cat", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)
    assert other.poll() is None
    t0 = time.monotonic()
    m.proc.send_signal(signal.SIGTERM)
    m.proc.wait(timeout=30)
    other.wait(timeout=30)
    assert time.monotonic() - t0 < 10, "SIGTERM waited for the answer"
    assert other.returncode != 0


def test_a_token_that_expires_while_an_answer_is_awaited(server_factory, mount_cs):
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "1", "--volumes", "1",
                            "--message-delay", "2.5", "--token-ttl", "1")
    m = mount_cs(server, "timeout=10")
    broker = entries(m.p("data-brokers"))[0]
    tokens = sim_stats(server).get("POST /oauth/token", 0)
    assert json.loads(open(m.p("data-brokers", broker, "nfs-exports.json")).read())
    assert sim_stats(server).get("POST /oauth/token", 0) > tokens  # renewed during the wait, unseen


def test_a_crawl_while_message_files_are_read(server_factory, mount_cs):
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "2", "--volumes", "2",
                            "--message-delay", "0.5")
    m = mount_cs(server, ttl=1)
    files = [m.p("data-brokers", b, "s3-buckets.json") for b in entries(m.p("data-brokers"))]
    import threading

    readers = threading.Thread(target=lambda: read_all(files))
    readers.start()
    tar = subprocess.run("tar cf - -C %s . | wc -c" % m.path, shell=True, capture_output=True, text=True, timeout=120)
    readers.join(60)
    assert tar.returncode == 0 and int(tar.stdout) > 10000, tar.stderr
    for f in files:
        assert json.loads(open(f).read())


def test_a_sync_is_a_task_followed_to_its_end(cs, mount_cs):
    m = mount_cs(cs, ttl=0.2)
    api = Api(cs)
    rels = api.get("/relationships-v2")
    good = [r for r in rels if "fail-" not in json.dumps(r["source"])][0]["relationshipId"]
    bad = [r for r in rels if "fail-" in json.dumps(r["source"])][0]["relationshipId"]
    assert write(m.p("relationships", good, "action"), "sync\n") == 0
    assert os.readlink(m.p("tasks", "latest")) == good
    assert open(m.p("tasks", "latest", "state")).read() == "RUNNING\n"
    assert open(m.p("tasks", "latest", "wait")).read() == "SUCCEEDED\n"
    assert open(m.p("tasks", good, "progress")).read() == "100\n"
    assert write(m.p("relationships", bad, "action"), "sync\n") == 0
    r = subprocess.run(["cat", m.p("tasks", "latest", "wait")], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Input/output error" in r.stderr
    assert open(m.p("tasks", bad, "log")).read().strip()  # the failure message
    # abort starts no task: latest names nothing after it
    assert write(m.p("relationships", good, "action"), "sync\n") == 0
    assert write(m.p("relationships", good, "action"), "abort\n") == 0
    assert not os.path.lexists(m.p("tasks", "latest"))
    assert open(m.p("tasks", good, "state")).read() == "ABORTED\n"


def test_503_is_retried_and_a_dropped_sync_is_sent_once(cs, mount_cs):
    m = mount_cs(cs, ttl=0)
    api = Api(cs)
    assert entries(m.p("groups"))
    reset_stats(cs)
    cs.sim("POST", "/faults", {"method": "GET", "path": "/api/groups", "count": 2, "status": 503, "retry_after": 0})
    assert entries(m.p("groups"))
    assert sim_stats(cs)["GET /api/groups"] >= 3
    rel = api.get("/relationships-v2")[0]["relationshipId"]
    cs.sim("DELETE", "/requests")
    cs.sim("POST", "/faults", {"method": "PUT", "path": "/api/relationships/", "count": 1, "drop": True})
    assert write(m.p("relationships", rel, "action"), "sync\n") == errno.EIO
    assert len(cs.sim("GET", "/requests").json()["requests"]) == 1


def test_mkdir_of_a_relationship_is_refused_and_the_daemon_lives(cs, mount_cs):
    m = mount_cs(cs)
    cs.sim("DELETE", "/requests")
    with pytest.raises(OSError) as e:
        os.mkdir(m.p("relationships", "made-by-mkdir"))
    assert e.value.errno == errno.EPERM
    assert cs.sim("GET", "/requests").json()["requests"] == []
    assert entries(m.p("relationships"))  # still mounted, still answering


def test_lists_of_brokers_with_hostile_ids_and_slow_answers(server_factory, mount_cs):
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--hostile-names", "--servers", "1",
                            "--volumes", "1", "--message-delay", "0.3", "--heartbeat-seconds", "0")
    m = mount_cs(server, "timeout=10")
    api = Api(server)
    odd = [b for b in api.get("/data-brokers") if b["id"] != b["id"].strip("/?#% .")
           or any(ch in b["id"] for ch in "/?#% ")]
    assert odd
    names = dict(zip([b["id"] for b in api.get("/data-brokers")],
                     assign_entries(named(api.get("/data-brokers"), "name", "id"))))
    for b in odd:
        assert json.loads(open(m.p("data-brokers", names[b["id"]], "s3-buckets.json")).read()), b["id"]
    # an answer slower than cache_ttl costs one call, not one for the stat and one for the open
    slow = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "1", "--volumes", "1",
                          "--message-delay", "2.5", "--heartbeat-seconds", "0")
    m2 = mount_cs(slow, "timeout=10")
    broker = entries(m2.p("data-brokers"))[0]
    reset_stats(slow)
    assert json.loads(open(m2.p("data-brokers", broker, "s3-buckets.json")).read())
    assert sim_stats(slow).get("GET /api/data-brokers/{id}/list-s3-buckets") == 1


def message_queries(server):
    return server.sim("GET", "/messages").json()["queries"]


def test_a_message_id_that_is_not_a_number_is_never_pasted_into_the_query(server_factory, mount_cs):
    """The newest message's id is `1&last=0`: sent as it is, the query became ?last=1&last=0 and the
    server replayed the whole stream, whose older answer to the same call was taken though the new
    answer never came. The id cannot be a cursor: the read fails (EIO, the reason logged), no such
    query is sent, and the next message with a proper id puts the stream right."""
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "1", "--volumes", "1",
                            "--message-delay", "0.3", "--heartbeat-seconds", "0")
    m = mount_cs(server, "timeout=2", ttl=1)
    broker = entries(m.p("data-brokers"))[0]
    path = m.p("data-brokers", broker, "s3-buckets.json")
    assert json.loads(open(path).read())  # an answer to this call is now in the stream
    time.sleep(1.2)
    assert server.sim("POST", "/messages/inject", {"raw": {"id": "1&last=0", "payload": {"heartbeat": {}},
                                                            "header": {"agentId": None}}}).status == 201
    server.sim("POST", "/messages/drop", {"count": 1})  # the new call's answer never comes
    with pytest.raises(OSError) as e:
        open(path).read()
    assert e.value.errno == errno.EIO, os.strerror(e.value.errno)
    assert "not a decimal number" in m.log_text()
    queries = message_queries(server)
    assert queries and all("&" not in q and q.count("last=") <= 1 for q in queries), queries
    server.sim("POST", "/messages/drop", {"count": 0})
    server.sim("POST", "/messages/inject", {"payload": {"heartbeat": {}}})
    assert json.loads(open(path).read())


def test_a_long_message_id_is_sent_whole(server_factory, mount_cs):
    """An id of 68 digits was cut to 63 (here: to 0, a replay of the whole stream)."""
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "1", "--volumes", "1",
                            "--message-delay", "0.3", "--heartbeat-seconds", "0")
    m = mount_cs(server, "timeout=2", ttl=1)
    broker = entries(m.p("data-brokers"))[0]
    path = m.p("data-brokers", broker, "s3-buckets.json")
    assert json.loads(open(path).read())
    time.sleep(1.2)
    long_id = "0" * 63 + "99999"
    server.sim("POST", "/messages/inject", {"raw": {"id": long_id, "payload": {"heartbeat": {}},
                                                    "header": {"agentId": None}}})
    server.sim("POST", "/messages/drop", {"count": 1})
    with pytest.raises(OSError) as e:  # the old answer is before the cursor: it is not taken
        open(path).read()
    assert e.value.errno == errno.ETIMEDOUT, os.strerror(e.value.errno)
    queries = message_queries(server)
    assert "last=" + long_id in queries, queries
    assert "last=" + "0" * 63 not in queries, queries


def test_an_older_answer_replayed_by_the_server_is_not_taken(server_factory, mount_cs):
    """The stream answers with a message from before the call (its id at the cursor taken before
    the call): whatever it claims, it is not this call's answer; the real one is."""
    server = server_factory("--dialect", "cloudsync", "--test-controls", "--servers", "1", "--volumes", "1",
                            "--message-delay", "0.5", "--heartbeat-seconds", "0")
    m = mount_cs(server, "timeout=5")
    broker = entries(m.p("data-brokers"))[0]
    bid = Api(server).get("/data-brokers")[0]["id"]
    stale = [{"id": "1", "payload": {"list-s3-buckets": [{"name": "replayed-stale"}]},
              "header": {"requestId": "old", "clientId": "dsfs-demo", "agentId": bid}}]
    # the cursor's question and the first look after the call both get the old message
    r = server.sim("POST", "/faults", {"method": "GET", "path": "/api/messages/client", "count": 2,
                                       "body": json.dumps(stale)})
    assert r.status == 201, r.body
    text = open(m.p("data-brokers", broker, "s3-buckets.json")).read()
    assert "replayed-stale" not in text and json.loads(text), text
