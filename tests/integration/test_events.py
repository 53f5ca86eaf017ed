"""Following what happens (issue 15, part 3): `tail -f MOUNT/events/log`
shows each dialect's events as they arrive, one JSON object a line,
asking the server only while a reader has the file open and at most once
per cache_ttl; a dialect with nothing to show has no events/.
"""

import json
import os
import subprocess
import time

from conftest import Tail as FollowedFile, reset_stats, sim_stats
from test_cloudsync import cs, mount_cs  # noqa: F401  (fixtures)
from test_backupdr import TOKEN, Api as BdrApi, credentials as bdr_credentials
from test_dscc import Api as DsccApi, dscc_credentials


class Tail(FollowedFile):
    """`tail -f` of an events/log, its events (one JSON object a line) collected as they come."""

    def __init__(self, path):
        super().__init__(path, "-n", "+1")

    def lines(self):
        return [json.loads(line) for line in super().lines()]

    def wait_for(self, pred, timeout):
        end = time.monotonic() + timeout
        while True:
            found = [e for e in self.lines() if pred(e)]
            if found:
                return found, time.monotonic()
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no such event within %.1f s; got %r" % (timeout, self.lines()[-3:]))
            self.read(min(left, 0.05))


def event_gets(server, fragment):
    return sum(v for k, v in sim_stats(server).items() if k.startswith("GET ") and fragment in k)


def check_follow(server, m, fragment, make_event, is_it, ttl):
    """Nothing asked without a reader; a reader sees an event within 2 x ttl of the server having it."""
    reset_stats(server)
    time.sleep(ttl + 0.5)
    os.stat(m.p("events", "log"))
    os.listdir(m.p("events"))
    assert event_gets(server, fragment) == 0, "asked with no reader"
    t = Tail(m.p("events", "log"))
    try:
        time.sleep(1.0)
        before = len(t.lines())
        made = time.monotonic()
        key = make_event()
        # within 2 x ttl, and 2 s for a loaded machine (tail's own 0.2 s polling included)
        found, seen = t.wait_for(lambda e: is_it(e, key), 2 * ttl + 4.0)
        assert seen - made <= 2 * ttl + 2.0, seen - made
        assert len(found) == 1, found  # shown once
        assert len(t.lines()) > before
        # while it follows, at most one question per cache_ttl
        reset_stats(server)
        time.sleep(3 * ttl)
        assert event_gets(server, fragment) <= 3 + 1, sim_stats(server)
    finally:
        t.stop()
    time.sleep(0.5)
    reset_stats(server)
    time.sleep(ttl + 1.0)
    assert event_gets(server, fragment) == 0, "asked after the reader went"


def sim_event(server, field):
    """A maker of events through the reference server's /_sim/events: each call one new text."""
    n = [0]

    def make():
        n[0] += 1
        text = "dsfs follow test %d" % n[0]
        assert server.sim("POST", "/events", {field: text}).status == 201
        return text
    return make


def test_storage_plugin_events_are_the_tasks(server, dsfs_mount):
    m = dsfs_mount(server, ttl=2)
    assert "events" not in os.listdir(m.path)  # reachable, not listed: crawls never read it
    assert os.listdir(m.p("events")) == ["log"]
    s = sorted(os.listdir(m.p("servers")))[0]
    v = sorted(os.listdir(m.p("servers", s, "volumes")))[0]
    n = [0]

    def make():
        n[0] += 1
        name = "followed-%d" % n[0]
        with open(m.p("servers", s, "volumes", v, "action"), "w") as f:
            f.write("clone name=%s\n" % name)
        return name

    # the task's end is the event followed: it comes whatever states a poll caught before it
    check_follow(server, m, "/tasks", make, lambda e, name: name in e.get("name", "")
                 and e.get("state") == "SUCCEEDED", ttl=2)
    # the task's end is a line of its own
    with open(m.p("events", "log")) as f:
        states = [e["state"] for e in map(json.loads, f) if "followed-1" in e.get("name", "")]
    assert states and len(states) == len(set(states)), states  # a line per state it was seen in


def test_dscc_events_are_the_audit_log(server_factory, dsfs_mount, tmp_path):
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "2", "--snapshots", "1",
                          "--hosts", "2")
    m = dsfs_mount(dscc, "api=dscc", ttl=2, credentials=dscc_credentials(tmp_path, dscc))
    api = DsccApi(dscc)
    with open(m.p("events", "log")) as f:
        first = [json.loads(line) for line in f]
    audit = api.get("/api/v1/audit-events?limit=1000")["items"]
    assert first and all(e in audit for e in first)
    assert [e["occurredAt"] for e in first] == sorted(e["occurredAt"] for e in first)
    check_follow(dscc, m, "audit-events", sim_event(dscc, "description"),
                 lambda e, text: e.get("message") == text, ttl=2)


def test_backupdr_events_are_the_local_audit(server_factory, dsfs_mount, tmp_path):
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "1", "--volumes", "2",
                         "--snapshots", "1", "--hosts", "2")
    m = dsfs_mount(bdr, "api=backupdr", ttl=2, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    api = BdrApi(bdr)
    with open(m.p("events", "log")) as f:
        first = [json.loads(line) for line in f]
    audit = api.items("/localaudit")
    assert first and all(e in audit for e in first)
    check_follow(bdr, m, "localaudit", sim_event(bdr, "command"), lambda e, cmd: e.get("command") == cmd, ttl=2)


def test_cloudsync_has_no_events_and_no_capacity(cs, mount_cs):
    m = mount_cs(cs)
    assert "events" not in os.listdir(m.path)
    assert not os.path.exists(m.p("events", "log"))
    st = os.statvfs(m.path)
    assert (st.f_blocks, st.f_bfree) == (0, 0)


def test_an_estates_events_are_every_members(server_factory, dsfs_mount, tmp_path):
    from test_estate import write_estate

    sp = server_factory("--test-controls", "--task-seconds", "0.3")
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "2", "--snapshots", "1")
    path = write_estate(tmp_path, [
        ("array", {"url": sp.url, "username": "admin", "password": "admin"}),
        ("console", {"url": dscc.url, "api": "dscc", "client_id": "dsfs-demo",
                     "client_secret": "dsfs-demo-secret", "token_url": dscc.root + "/oauth2/token"})])
    m = dsfs_mount(sp, "estate=" + path, ttl=1, estate=True)
    assert "events" not in os.listdir(m.path) and os.listdir(m.p("events")) == ["log"]
    t = Tail(m.p("events", "log"))
    try:
        found, _ = t.wait_for(lambda e: e.get("member") == "console", 5)  # the console's audit log so far
        assert list(found[0])[0] == "member" and "occurredAt" in found[0]
        text = sim_event(dscc, "description")()
        s = sorted(os.listdir(m.p("array", "servers")))[0]
        v = sorted(os.listdir(m.p("array", "servers", s, "volumes")))[0]
        with open(m.p("array", "servers", s, "volumes", v, "action"), "w") as f:
            f.write("clone name=estate-followed\n")
        t.wait_for(lambda e: e.get("member") == "console" and e.get("message") == text, 4)
        t.wait_for(lambda e: e.get("member") == "array" and "estate-followed" in e.get("name", ""), 4)
        # each member's own feed still has its lines as the API gives them
        with open(m.p("console", "events", "log")) as f:
            assert any(json.loads(line).get("message") == text and "member" not in json.loads(line) for line in f)
    finally:
        t.stop()


def test_odd_events_from_the_server_neither_vanish_nor_blind_the_feed(server_factory, dsfs_mount, tmp_path):
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "2", "--snapshots", "1",
                          "--hosts", "2")
    m = dsfs_mount(dscc, "api=dscc", ttl=1, credentials=dscc_credentials(tmp_path, dscc))
    t = Tail(m.p("events", "log"))
    try:
        t.wait_for(lambda e: "occurredAt" in e, 5)
        # one answer with events without ids, and one from a clock in the far future
        odd = {"items": [{"message": "no id C"}, {"message": "no id D"},
                         {"id": "future", "message": "future", "occurredAt": "9999-12-31T23:59:59.000Z"}],
               "total": 3, "pageLimit": 1000, "pageOffset": 0}
        r = dscc.sim("POST", "/faults", {"method": "GET", "path": "/api/v1/audit-events", "count": 1,
                                         "body": json.dumps(odd)})
        assert r.status == 201, r.body
        t.wait_for(lambda e: e.get("message") == "no id D", 4)
        assert [e.get("message") for e in t.lines()].count("no id C") == 1
        # what comes after is still shown
        text = sim_event(dscc, "description")()
        t.wait_for(lambda e: e.get("message") == text, 4)
    finally:
        t.stop()


def check_burst(server, m, field, text_of):
    """1,500 events with one time (more than the feed's page of 1,000), then one more later: every
    one is shown, each once. (On 0b549a2 the feed asked `ge T ... offset=0` forever and never
    showed the events past the first page of that time, nor any later one.)"""
    t = Tail(m.p("events", "log"))
    try:
        t.wait_for(lambda e: True, 5)
        r = server.sim("POST", "/events", {field: "burst", "count": 1500})
        assert r.status == 201, r.body
        t.wait_for(lambda e: text_of(e) == "burst 1500", 20)
        after = sim_event(server, field)()
        t.wait_for(lambda e: text_of(e) == after, 10)
        shown = [text_of(e) for e in t.lines()]
    finally:
        t.stop()
    burst = [s for s in shown if s and s.startswith("burst ")]
    assert len(burst) == 1500 and set(burst) == {"burst %d" % k for k in range(1, 1501)}, len(burst)
    assert shown.count(after) == 1


def test_dscc_events_page_through_a_time_that_fills_pages(server_factory, dsfs_mount, tmp_path):
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "2", "--snapshots", "1")
    m = dsfs_mount(dscc, "api=dscc", ttl=1, credentials=dscc_credentials(tmp_path, dscc))
    check_burst(dscc, m, "description", lambda e: e.get("message"))
    audit = DsccApi(dscc).get("/api/v1/audit-events?filter=message%20eq%20%27burst%201%27")["items"]
    assert audit and audit[0]["occurredAt"] == DsccApi(dscc).get(
        "/api/v1/audit-events?filter=message%20eq%20%27burst%201500%27")["items"][0]["occurredAt"]


def test_backupdr_events_page_through_a_time_that_fills_pages(server_factory, dsfs_mount, tmp_path):
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "1", "--volumes", "2",
                         "--snapshots", "1", "--hosts", "2")
    m = dsfs_mount(bdr, "api=backupdr", ttl=1, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    check_burst(bdr, m, "command", lambda e: e.get("command"))
    audit = BdrApi(bdr).items("/localaudit")
    assert len({a["issuedate"] for a in audit if a["command"].startswith("burst ")}) == 1


def test_an_estates_feed_waits_one_timeout_for_hung_members(server_factory, dsfs_mount, tmp_path):
    """Four members hang (timeout=3): `cat MOUNT/events/log` asks every member at once and waits one
    timeout for them, not one per member per question (36 s on 0b549a2); two readers at once do not
    wait for each other (no lock is held across a request); the live member's events are shown."""
    from test_estate import estate_beside_hung_members

    live, path, hang, release = estate_beside_hung_members(server_factory, tmp_path)
    m = dsfs_mount(live, "estate=" + path, "timeout=3", "connect_timeout=1", ttl=1, estate=True)
    s = sorted(os.listdir(m.p("live", "servers")))[0]
    v = sorted(os.listdir(m.p("live", "servers", s, "volumes")))[0]
    action = m.p("live", "servers", s, "volumes", v, "action")
    try:
        with open(action, "w") as f:  # a task: an event of the live member
            f.write("clone name=before-the-hang\n")
        hang()
        t0 = time.monotonic()
        cats = [subprocess.Popen(["cat", m.p("events", "log")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)]
        outs = [c.communicate(timeout=120) for c in cats]
        took = time.monotonic() - t0
        assert all(c.returncode == 0 for c in cats), [o[1] for o in outs]
        assert took < 3 + 5, took  # one timeout and slack
        for out, _ in outs:
            lines = [json.loads(line) for line in out.decode().splitlines()]
            assert any("before-the-hang" in e.get("name", "") for e in lines), lines[:3]
            assert all(e["member"] == "live" for e in lines), lines[:3]
        # a later read still shows what the live member does
        with open(action, "w") as f:
            f.write("clone name=beside-the-hung\n")
        t = Tail(m.p("events", "log"))
        try:
            t.wait_for(lambda e: e.get("member") == "live" and "beside-the-hung" in e.get("name", ""), 3 + 5)
        finally:
            t.stop()
    finally:
        release()
