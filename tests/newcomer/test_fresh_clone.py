"""The newcomer's path, as the README gives it, from a fresh clone.

`git clone` of this checkout into a temporary directory with nothing beside
it (so no file outside the project can be read), then `./scripts/demo`
there: it builds, starts the reference server and mounts; the mount is read
(`ls`, `cat`) and acted on (a snapshot through `snapshots/new`, checked
through the API). The demo is run again over a live mount and over a
crashed one, and recovers by itself; `./scripts/demo stop` leaves nothing
mounted or running; and the clone's own unit and reference-server tests
pass. The Debian packages are installed by then (scripts/check did it);
test_packages.py checks that the list they come from is complete.

The clone takes what is committed: run it after committing.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "server"))

from refserver_fixture import Client  # noqa: E402


def run(cmd, cwd, timeout=900, check=True):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, "%s failed (%d):\n%s\n%s" % (cmd, r.returncode, r.stdout[-4000:], r.stderr[-4000:])
    return r


def mounts_at(path):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if line.split(" ")[4].replace("\\040", " ") == path]


def visible(path):
    return sorted(n for n in os.listdir(path) if not n.startswith("."))


def daemon_pids(path):
    r = subprocess.run(["pgrep", "-f", "dsfs .*" + path], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


@pytest.fixture(scope="module")
def clone():
    top = os.path.realpath(tempfile.mkdtemp(prefix="dsfs-newcomer-"))
    dest = os.path.join(top, "dsfs")
    run(["git", "clone", "-q", "--no-hardlinks", REPO, dest], cwd=top)
    assert not os.path.exists(os.path.join(top, "shared"))
    yield dest
    subprocess.run(["./scripts/demo", "stop"], cwd=dest, capture_output=True, timeout=120)
    if mounts_at(os.path.join(dest, "mnt")):
        subprocess.run(["fusermount3", "-uz", os.path.join(dest, "mnt")])
    shutil.rmtree(top, ignore_errors=True)


def demo_server(dest):
    with open(os.path.join(dest, ".demo", "server.out")) as f:
        url = f.read().split("listening on ", 1)[1].split()[0]
    c = Client(url)
    assert c.login("admin", "admin").status == 201
    return c


def test_demo_then_stop_from_a_fresh_clone(clone):
    mnt = os.path.join(clone, "mnt")
    r = run(["./scripts/demo"], cwd=clone)
    assert "dsfs has mounted the reference server" in r.stdout, r.stdout
    assert len(mounts_at(mnt)) == 1
    servers = visible(os.path.join(mnt, "servers"))
    assert servers
    vols = os.path.join(mnt, "servers", servers[0], "volumes")
    vol = visible(vols)[0]
    with open(os.path.join(vols, vol, "volume.json")) as f:
        shown = json.load(f)
    api = demo_server(clone)
    # the snapshot goes through the control file and is found through the API
    with open(os.path.join(vols, vol, "snapshots", "new"), "w") as f:
        f.write("newcomer-first\n")
    found = []
    for s in api.get("/server").json()["servers"]:
        for v in api.get("/server/%s/volume" % s["id"]).json()["volumes"]:
            if v["id"] == shown["id"]:
                path = "/server/%s/volume/%s/snapshot" % (s["id"], v["id"])
                found = [x["name"] for x in api.get(path).json()["snapshots"]]
    assert "newcomer-first" in found, found
    assert "newcomer-first" in os.listdir(os.path.join(vols, vol, "snapshots"))

    # run again over the live mount: it replaces it, one mount and one daemon
    run(["./scripts/demo"], cwd=clone)
    assert len(mounts_at(mnt)) == 1
    assert len(daemon_pids(mnt)) == 1
    # a crashed daemon leaves a dead mount: the demo clears it
    for pid in daemon_pids(mnt):
        os.kill(pid, 9)
    run(["./scripts/demo"], cwd=clone)
    assert len(mounts_at(mnt)) == 1 and visible(os.path.join(mnt, "servers")) == servers

    r = run(["./scripts/demo", "stop"], cwd=clone)
    assert not mounts_at(mnt) and not daemon_pids(mnt)
    assert not os.path.exists(os.path.join(clone, ".demo", "server.pid"))


def test_the_clones_own_unit_and_server_tests_pass(clone):
    if not os.path.exists(os.path.join(clone, "build", "Makefile")):
        run(["./scripts/demo"], cwd=clone)  # builds, when run alone
        run(["./scripts/demo", "stop"], cwd=clone)
    run(["make", "-C", "build", "check", "-j%d" % (os.cpu_count() or 1)], cwd=clone)
    r = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/server"], cwd=clone)
    assert " passed" in r.stdout and "failed" not in r.stdout, r.stdout[-2000:]
