"""The newcomer's path, as the README gives it, from a fresh clone.

`git clone` of this checkout into a temporary directory with nothing beside
it (so no file outside the project can be read), then `./scripts/demo`
there: it builds (printing none of the build's chatter), starts the
reference server and mounts; the mount is read (`ls`, `cat`) and acted on
(a snapshot through `snapshots/new`, checked through the API). The demo is
run again over a live mount and over a crashed one, and recovers by itself;
`./scripts/demo stop` leaves nothing mounted or running. Then `./scripts/demo
NAME` for each other API (dscc, backupdr, cloudsync, greenlake, estate): its tour's
output is checked, and what the tour did is found through the API with the
credentials file the demo wrote (a snapshot and its task; a backup and its
job; a sync; a virtual machine's refresh and its operation), then `demo stop`. An unknown argument gets the usage, naming
the choices. The clone's own unit and reference-server tests pass. The
Debian packages are installed by then (scripts/check did it);
test_packages.py checks that the list they come from is complete.

The clone takes what is committed: run it after committing.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import urlencode

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


def demo_file(dest, name):
    with open(os.path.join(dest, ".demo", name)) as f:
        return f.read()


def demo_url(dest, api):
    return demo_file(dest, api + ".out").split("listening on ", 1)[1].split()[0]


def demo_credentials(dest, api):
    """The credentials file the demo wrote for api: mode 0600, key=value lines."""
    path = os.path.join(dest, ".demo", api + ".cred")
    assert os.stat(path).st_mode & 0o777 == 0o600, path
    return dict(line.split("=", 1) for line in demo_file(dest, api + ".cred").splitlines())


def demo_server(dest):
    c = Client(demo_url(dest, "storageplugin"))
    cred = demo_credentials(dest, "storageplugin")
    assert c.login(cred["username"], cred["password"]).status == 201
    return c


class DemoApi:
    """A client of one of the demo's servers, logged in with the credentials file the demo
    wrote (so that file is checked too): get(path) -> JSON, path under the API base."""

    def __init__(self, dest, api):
        cred = demo_credentials(dest, api)
        self.c = Client(demo_url(dest, api))
        self.headers = {}
        if api == "storageplugin":
            assert self.c.login(cred["username"], cred["password"]).status == 201
        elif api == "backupdr":
            r = self.c.request("POST", "/session", None, session=False,
                               headers={"Authorization": "Bearer " + cred["token"]})
            assert r.status == 200, r
            self.headers = {"Authorization": "Bearer " + cred["token"],
                            "backupdr-management-session": "Actifio " + r.json()["session_id"]}
        else:  # dscc, greenlake and cloudsync trade their keys at the token_url the file names
            if api in ("dscc", "greenlake"):
                form = {"grant_type": "client_credentials", "client_id": cred["client_id"],
                        "client_secret": cred["client_secret"]}
            else:
                form = {"grant_type": "refresh_token", "refresh_token": cred["refresh_token"],
                        "client_id": cred["client_id"]}
            tok = Client(cred["token_url"])
            r = tok.request("POST", "", None, session=False, raw=urlencode(form).encode(),
                            content_type="application/x-www-form-urlencoded")
            assert r.status == 200, r
            self.headers = {"Authorization": "Bearer " + r.json()["access_token"]}
            if api == "cloudsync":  # the account dsfs acts in: the first one
                self.headers["x-account-id"] = self.get("/accounts")[0]["accountId"]

    def get(self, path):
        r = self.c.request("GET", path, None, headers=self.headers)
        assert r.status == 200, (path, r)
        return r.json()


def tour_lines(out, command):
    """The output the tour shows for a command it ran: the lines after "$ command"."""
    lines = out.splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith("$ ") and re.search(command, line)]
    assert at, "the tour ran no command like %r:\n%s" % (command, out)
    rest = lines[at[0] + 1:]
    return rest[:next((i for i, line in enumerate(rest) if line.startswith("$ ") or not line), len(rest))]


def stopped(dest):
    mnt = os.path.join(dest, "mnt")
    r = run(["./scripts/demo", "stop"], cwd=dest)
    assert not mounts_at(mnt) and not daemon_pids(mnt)
    assert not glob.glob(os.path.join(dest, ".demo", "*.pid"))
    assert not [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
                if "refserver.py" in line and dest in line]
    return r.stdout


def test_demo_then_stop_from_a_fresh_clone(clone):
    mnt = os.path.join(clone, "mnt")
    r = run(["./scripts/demo"], cwd=clone)
    assert "dsfs has mounted the reference server" in r.stdout, r.stdout
    # the build's chatter (autoreconf, libtoolize, configure, the compiler) is not shown
    assert r.stderr == "", r.stderr
    assert not re.search(r"libtoolize|autoreconf|aclocal|configure\.ac|Makefile\.am|warning", r.stdout), r.stdout
    assert os.path.getsize(os.path.join(clone, ".demo", "build.log")) > 0
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

    assert "stopped the reference server" in stopped(clone)


def test_demo_of_dscc_a_volume_a_snapshot_a_task(clone):
    r = run(["./scripts/demo", "dscc"], cwd=clone)
    out = r.stdout
    assert "dsfs has mounted the reference server" in out and r.stderr == "", r
    assert "dsfs -o api=dscc,credentials=" in out
    assert {"servers", "hosts", "hostgroups", "issues", "tasks"} <= set(tour_lines(out, r"^\$ ls mnt$")), out
    task = tour_lines(out, r"readlink mnt/tasks/latest")[0]
    assert tour_lines(out, r"cat mnt/tasks/latest/wait")[0].upper() == "SUCCEEDED", out
    assert "demo-snapshot" in tour_lines(out, r"ls mnt/servers/.*/snapshots$"), out
    api = DemoApi(clone, "dscc")
    t = api.get("/api/v1/tasks/%s" % task)
    assert t["state"] == "SUCCEEDED" and t["progressPercent"] == 100, t
    found = []
    for dt in ("device-type1", "device-type2"):
        for s in api.get("/api/v1/storage-systems/%s" % dt)["items"]:
            for v in api.get("/api/v1/storage-systems/%s/%s/volumes" % (dt, s["id"]))["items"]:
                snaps = api.get("/api/v1/storage-systems/%s/%s/volumes/%s/snapshots" % (dt, s["id"], v["id"]))
                found += [x.get("name") or x.get("customName") for x in snaps["items"]]
    assert "demo-snapshot" in found, found
    stopped(clone)


def test_demo_of_backupdr_backs_up_an_application_and_waits(clone):
    r = run(["./scripts/demo", "backupdr"], cwd=clone)
    out = r.stdout
    assert r.stderr == "" and "dsfs -o api=backupdr,credentials=" in out, r
    job = tour_lines(out, r"readlink mnt/jobs/latest")[0]
    assert tour_lines(out, r"cat mnt/jobs/latest/wait")[0].upper() == "SUCCEEDED", out
    app = re.search(r"> mnt/applications/([^/]+)/backups/new", out).group(1)
    api = DemoApi(clone, "backupdr")
    jobs = [j for j in api.get("/jobstatus?filter=id:%%3D%s" % job)["items"] if j["id"] == job]
    assert len(jobs) == 1 and jobs[0]["status"] == "succeeded" and jobs[0]["appname"] == app, jobs
    assert any(b.get("label") == "demo-backup" for b in api.get("/backup?limit=1000")["items"]), "no backup labelled"
    stopped(clone)


def test_demo_of_cloudsync_syncs_a_relationship_and_follows_it(clone):
    r = run(["./scripts/demo", "cloudsync"], cwd=clone)
    out = r.stdout
    assert r.stderr == "" and "dsfs -o api=cloudsync,credentials=" in out, r
    rid = re.search(r"echo sync > mnt/relationships/([^/]+)/action", out).group(1)
    activity = tour_lines(out, r"cat mnt/relationships/.*/activity")
    assert any(re.match(r"status\s+RUNNING", line) for line in activity), out
    assert tour_lines(out, r"cat mnt/tasks/latest/wait")[0].upper() in ("DONE", "SUCCEEDED"), out
    api = DemoApi(clone, "cloudsync")
    rel = [x for x in api.get("/relationships-v2") if x.get("id", x.get("relationshipId")) == rid]
    assert len(rel) == 1, rid
    assert "DONE" in json.dumps(rel[0]) or "DONE" in out.split("cat mnt/tasks/latest/wait")[1], rel
    stopped(clone)


def test_demo_of_greenlake_refreshes_a_virtual_machine_and_follows_its_operation(clone):
    r = run(["./scripts/demo", "greenlake"], cwd=clone)
    out = r.stdout
    assert r.stderr == "" and "dsfs -o api=greenlake,credentials=" in out, r
    vm = re.search(r"echo refresh > mnt/virtualization/virtual-machines/([^/]+)/action", out).group(1)
    op = tour_lines(out, r"readlink mnt/tasks/latest")[0]
    assert tour_lines(out, r"cat mnt/tasks/latest/wait")[0] == "SUCCEEDED", out
    api = DemoApi(clone, "greenlake")
    got = api.get("/data-services/v1beta1/async-operations/" + op)
    assert got["state"] == "SUCCEEDED" and got["name"] == "Refresh virtual machine " + vm, got
    stopped(clone)


def test_demo_of_an_estate_of_the_five_apis(clone):
    r = run(["./scripts/demo", "estate"], cwd=clone)
    out = r.stdout
    assert r.stderr == "", r
    apis = ["backupdr", "cloudsync", "dscc", "greenlake", "storageplugin"]
    assert tour_lines(out, r"^\$ ls mnt$") == apis + ["tasks"], out
    status = tour_lines(out, r"cat mnt/.dsfs/status")
    assert sorted(line.split()[0] for line in status) == apis, status
    assert all(" reachable" in line and "unreachable" not in line for line in status), status
    for api in apis:
        DemoApi(clone, api)  # each member's server runs, and its credentials file opens it
    assert "stopped the reference server" in stopped(clone)


def test_demo_names_the_choices_for_an_unknown_one(clone):
    r = run(["./scripts/demo", "nimble"], cwd=clone, check=False)
    assert r.returncode == 2 and r.stdout == "", r
    assert "unknown choice 'nimble'" in r.stderr
    for name in ("storageplugin", "dscc", "backupdr", "cloudsync", "greenlake", "estate", "stop"):
        assert name in r.stderr, (name, r.stderr)
    assert not mounts_at(os.path.join(clone, "mnt")) and not glob.glob(os.path.join(clone, ".demo", "*.pid"))


def test_the_clones_own_unit_and_server_tests_pass(clone):
    if not os.path.exists(os.path.join(clone, "build", "Makefile")):
        run(["./scripts/demo"], cwd=clone)  # builds, when run alone
        run(["./scripts/demo", "stop"], cwd=clone)
    run(["make", "-C", "build", "check", "-j%d" % (os.cpu_count() or 1)], cwd=clone)
    r = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/server"], cwd=clone)
    assert " passed" in r.stdout and "failed" not in r.stdout, r.stdout[-2000:]
