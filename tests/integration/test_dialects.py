"""What every dialect promises alike, run once per dialect (src/dialect/registry.c):
an action is followed through the tasks view to its end, a session or token
that ends just before an action costs one login and never a second action,
a credentials file is read with the dialect's own keys, and the registry
names every dialect where a name is wrong.
"""

import json
import os
import subprocess

import pytest

from conftest import dsfs_binary, entries, sim_stats
from test_actions import write


def first(path):
    return os.path.join(path, [e for e in entries(path) if e != "new" and not e.startswith("fail-")][0])


def volume_snapshots(m):
    return os.path.join(first(m.p("servers", entries(m.p("servers"))[0], "volumes")), "snapshots", "new")


def volume_clone(m):
    """The storage plugin makes snapshots at once; a clone runs as a task."""
    return os.path.join(first(m.p("servers", entries(m.p("servers"))[0], "volumes")), "action"), "clone name={}"


def relationship_sync(m):
    return os.path.join(first(m.p("relationships")), "action"), "sync"


def backup_now(m):
    policy = None
    for t in entries(m.p("templates")):
        with open(m.p("templates", t, "template.json")) as f:
            policy = policy or json.load(f)["policies"][0]["id"]
    return os.path.join(first(m.p("applications")), "backups", "new"), "policy.id=%s label={}" % policy


def vm_refresh(m):
    return os.path.join(first(m.p("virtualization", "virtual-machines")), "action"), "refresh"


DIALECTS = {
    "storageplugin": {
        "args": [], "opts": [], "tasks": "tasks", "done": "SUCCEEDED",
        "cred": lambda s: "username=admin\npassword=admin\n", "foreign": "client_id=x\n",
        "action": volume_clone,
    },
    "dscc": {
        "args": ["--dialect", "dscc"], "opts": ["api=dscc"], "tasks": "tasks", "done": "SUCCEEDED",
        "cred": lambda s: "client_id=dsfs-demo\nclient_secret=dsfs-demo-secret\ntoken_url=%s/oauth2/token\n" % s.root,
        "foreign": "username=admin\n", "action": lambda m: (volume_snapshots(m), "{}"),
    },
    "backupdr": {
        "args": ["--dialect", "backupdr"], "opts": [], "tasks": "jobs", "done": "succeeded",
        "cred": lambda s: "token=dsfs-demo-token\n", "foreign": "client_secret=x\n", "action": backup_now,
    },
    "cloudsync": {
        "args": ["--dialect", "cloudsync", "--heartbeat-seconds", "0"], "opts": ["api=cloudsync"], "tasks": "tasks",
        "done": "DONE", "foreign": "username=x\n", "action": relationship_sync,
        "cred": lambda s: "refresh_token=dsfs-demo-refresh-token\nclient_id=dsfs-demo\ntoken_url=%s/oauth/token\n"
                          % s.root,
    },
    "greenlake": {
        "args": ["--dialect", "greenlake"], "opts": ["api=greenlake"], "tasks": "tasks", "done": "SUCCEEDED",
        "cred": lambda s: "client_id=dsfs-demo\nclient_secret=dsfs-demo-secret\ntoken_url=%s/as/token.oauth2\n" % s.root,
        "foreign": "username=x\n", "action": vm_refresh,
    },
}


def cred_file(tmp_path, text):
    path = str(tmp_path / "cred")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request, server_factory, dsfs_mount, tmp_path):
    d = dict(DIALECTS[request.param], name=request.param)
    d["server"] = server_factory(*d["args"], "--test-controls", "--task-seconds", "0.3", "--servers", "1",
                                 "--volumes", "3", "--snapshots", "1", "--hosts", "2")
    d["mount"] = lambda *opts, **kw: dsfs_mount(d["server"], *d["opts"], *opts,
                                                credentials=cred_file(tmp_path, d["cred"](d["server"])), **kw)
    return d


def posts(server):
    """Actions the server received: POSTs and PUTs other than logins and token requests."""
    return sum(v for k, v in sim_stats(server).items()
               if k.split(" ")[0] in ("POST", "PUT") and "session" not in k and "token" not in k)


def act(d, m, label):
    path, line = d["action"](m)
    assert write(path, line.format(label) + "\n") == 0
    return path


def test_an_action_is_followed_to_its_end_through_the_tasks_view(dialect):
    m = dialect["mount"](ttl=0.2)
    tasks = m.p(dialect["tasks"])
    before = set(entries(tasks))
    sent = posts(dialect["server"])
    act(dialect, m, "dialect-test")
    assert posts(dialect["server"]) == sent + 1
    latest = os.readlink(os.path.join(tasks, "latest"))
    assert open(os.path.join(tasks, "latest", "wait")).read() == "SUCCEEDED\n"  # one word in every dialect
    assert open(os.path.join(tasks, latest, "state")).read() == dialect["done"] + "\n"  # the API's own
    assert open(os.path.join(tasks, latest, "progress")).read() == "100\n"
    assert latest in entries(tasks)
    assert set(entries(tasks)) - before - {"latest"} <= {latest}  # a new task, or an object's own


def test_a_login_that_ended_costs_one_login_and_never_a_second_action(dialect):
    m = dialect["mount"](ttl=0.2)
    tasks = m.p(dialect["tasks"])
    path, line = dialect["action"](m)
    before = set(entries(tasks))
    dialect["server"].sim("POST", "/sessions/expire")
    assert write(path, line.format("after-expiry") + "\n") == 0
    assert open(os.path.join(tasks, "latest", "wait")).read() == "SUCCEEDED\n"
    assert len(set(entries(tasks)) - before - {"latest"}) <= 1  # at most one task: the action took effect once


def test_credentials_are_read_with_the_dialects_own_keys(dialect, tmp_path):
    own = dialect["cred"](dialect["server"])
    path = cred_file(tmp_path, own + dialect["foreign"])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([dsfs_binary(), "-o", "credentials=" + path] +
                       sum([["-o", o] for o in dialect["opts"]], []) + [dialect["server"].url, str(mnt)],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and not os.path.ismount(mnt)
    assert "line %d: expected " % (own.count("\n") + 1) in r.stderr, r.stderr
    assert "(the %s dialect's keys)" % dialect["name"] in r.stderr, r.stderr
    assert sim_stats(dialect["server"]).get("total", 0) == 0  # refused before any request


def test_an_unknown_dialect_is_refused_naming_every_known_one(tmp_path):
    r = subprocess.run([dsfs_binary(), "-o", "api=netapp", "http://127.0.0.1:9/x", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "-o api=netapp: unknown dialect; dsfs speaks storageplugin, dscc, backupdr" in r.stderr, r.stderr
    r = subprocess.run([dsfs_binary(), "--help"], capture_output=True, text=True, timeout=30)
    for name in DIALECTS:
        assert "\n    %s " % name in r.stdout, name
