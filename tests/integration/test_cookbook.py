"""docs/cookbook.md, run as written against the reference server.

The cookbook marks every recipe as a fenced block whose info string is
`sh recipe=NAME`; a block that is a copy of a file under docs/ also says
`file=PATH`. These tests extract the blocks, run each one with bash
(`set -euo pipefail` first) and MOUNT pointing at a real dsfs mount of the
reference server's default estate, and check the effect through the API.
A recipe without a test here fails test_every_recipe_has_a_test; a copied
block that differs from its file fails test_copied_blocks_match_their_files.

The systemd units in docs/examples/ are checked with `systemd-analyze verify`.
"""

import math
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import REPO, list_all

DOCS = os.path.join(REPO, "docs")
COOKBOOK = os.path.join(DOCS, "cookbook.md")
EXAMPLES = os.path.join(DOCS, "examples")

TESTED = {"snapshot-all", "clone-newest", "map-lun", "over-90", "capacity", "count-and-select", "follow-events",
          "edit-volume",
          "luns-online", "estate-to-git",
          "start-task", "watch-progress", "follow-log", "follow-log-until-done"}


def fenced_blocks(path):
    """[(info words as a dict, text)] for every ``` block of a Markdown file."""
    blocks, info, lines = [], None, []
    with open(path) as f:
        for line in f:
            if info is None:
                m = re.match(r"^```(\S*)(.*)$", line.rstrip("\n"))
                if m:
                    info = {"lang": m.group(1)}
                    for word in m.group(2).split():
                        k, _, v = word.partition("=")
                        info[k] = v
                    lines = []
            elif line.rstrip("\n") == "```":
                blocks.append((info, "".join(lines)))
                info = None
            else:
                lines.append(line)
    assert info is None, "%s: a ``` block is not closed" % path
    return blocks


def recipes():
    out = {}
    for info, text in fenced_blocks(COOKBOOK):
        if "recipe" in info:
            assert info["recipe"] not in out, "recipe %s appears twice" % info["recipe"]
            out[info["recipe"]] = text
    return out


def run_recipe(name, mount, timeout=60, text=None, env=None, cwd=None):
    script = "set -euo pipefail\n" + (text if text is not None else recipes()[name])
    e = dict(os.environ, MOUNT=mount.path, **(env or {}))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=cwd)


def ok(r):
    assert r.returncode == 0 and r.stderr == "", "exit %s\nstdout:\n%s\nstderr:\n%s" % (
        r.returncode, r.stdout, r.stderr)
    return r.stdout


def volumes(client, sid):
    return list_all(client, "/server/%s/volume" % sid, "volumes")


def by_name(items, name):
    found = [i for i in items if i["name"] == name]
    assert len(found) == 1, (name, found)
    return found[0]


# -- the document itself

def test_every_recipe_has_a_test():
    assert set(recipes()) == TESTED


def test_copied_blocks_match_their_files():
    copies = [(info["file"], text) for info, text in fenced_blocks(COOKBOOK) if "file" in info]
    assert {f for f, _ in copies} >= {"examples/dsfs-estate-to-git", "examples/dsfs-estate-git.service",
                                      "examples/dsfs-estate-git.timer"}
    for rel, text in copies:
        with open(os.path.join(DOCS, rel)) as f:
            assert f.read() == text, "docs/cookbook.md's copy of docs/%s differs from the file" % rel


def test_example_files_the_cookbook_installs_exist():
    text = open(COOKBOOK).read()
    named = set(re.findall(r"/usr/share/doc/dsfs/examples/([\w.-]+)", text))
    assert named == set(os.listdir(EXAMPLES)), named
    assert os.access(os.path.join(EXAMPLES, "dsfs-estate-to-git"), os.X_OK)


# -- the recipes

def test_snapshot_every_volume(server, dsfs_mount):
    m = dsfs_mount(server)
    c = server.login()
    before = {v["id"]: {s["id"] for s in list_all(c, "/server/0/volume/%s/snapshot" % v["id"], "snapshots")}
              for v in volumes(c, 0)}
    names = {v["id"]: v["name"] for v in volumes(c, 0)}
    ok(run_recipe("snapshot-all", m))
    for vid, old in before.items():
        new = [s for s in list_all(c, "/server/0/volume/%s/snapshot" % vid, "snapshots") if s["id"] not in old]
        assert len(new) == 1 and re.fullmatch(r"nightly-\d{8}-\d{4}", new[0]["name"]), (vid, new)
        assert os.path.isdir(m.p("servers", "svm-prod-0", "volumes", names[vid], "snapshots", new[0]["name"]))
    for v in volumes(c, 1):  # the other server is untouched
        assert not any(s["name"].startswith("nightly-")
                       for s in list_all(c, "/server/1/volume/%s/snapshot" % v["id"], "snapshots"))


def test_snapshot_every_volume_names_the_volume_that_refused(server, dsfs_mount):
    m = dsfs_mount(server)
    c = server.login()
    server.sim("POST", "/faults", {"method": "POST", "path": "/server/0/volume/vol-0-3/snapshot",
                                   "status": 409})
    r = run_recipe("snapshot-all", m)
    assert r.returncode == 0, r.stderr
    failed = [line for line in r.stderr.splitlines() if line.startswith("FAILED: ")]
    name = [v["name"] for v in volumes(c, 0) if v["id"] == "vol-0-3"][0]
    assert failed == ["FAILED: %s" % m.p("servers", "svm-prod-0", "volumes", name)], r.stderr
    assert "File exists" in r.stderr  # echo says why


def test_clone_from_newest_snapshot_and_wait(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--task-seconds", "1.5")
    m = dsfs_mount(server)
    c = server.login()
    src = by_name(volumes(c, 0), "vol-db-0005")
    snaps = list_all(c, "/server/0/volume/%s/snapshot" % src["id"], "snapshots")
    newest = max(snaps, key=lambda s: s["creationTime"])
    t0 = time.monotonic()
    out = ok(run_recipe("clone-newest", m))
    assert time.monotonic() - t0 >= 1.2  # it waited for the task
    assert out == "SUCCEEDED\nclone ready\n"
    clone = by_name(volumes(c, 0), "vol-db-0005-test")
    assert clone["restoredFromSnapshotId"] == newest["id"]
    assert os.path.isfile(m.p("servers", "svm-prod-0", "volumes", "vol-db-0005-test", "volume.json"))


def test_clone_recipe_stops_when_the_task_fails(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--task-seconds", "0.5")
    m = dsfs_mount(server)
    text = recipes()["clone-newest"].replace("name=vol-db-0005-test", "name=fail-clone")
    assert "fail-clone" in text
    r = run_recipe("clone-newest", m, text=text)
    assert r.returncode != 0 and "clone ready" not in r.stdout
    assert r.stdout.startswith("FAILED: ") and r.stdout.count("\n") == 1, r.stdout  # the reason, then
    assert "Input/output error" in r.stderr, r.stderr  # cat: .../wait: EIO


def test_map_a_volumes_lun_to_a_host(server, dsfs_mount):
    m = dsfs_mount(server)
    c = server.login()
    vol = by_name(volumes(c, 0), "vol-db-0005")
    lun = [l for l in list_all(c, "/server/0/lun", "luns") if l["volumeId"] == vol["id"]][0]
    host = by_name(list_all(c, "/server/0/host", "hosts"), "esx-01")
    assert lun["id"] not in host["mappedLunIds"]
    out = ok(run_recipe("map-lun", m))
    mapped = list_all(c, "/server/0/host/%s/lun" % host["id"], "luns")
    mine = [x for x in mapped if x["lunId"] == lun["id"]]
    assert len(mine) == 1
    # the recipe's last line lists what the host sees, the new LUN included
    assert out.splitlines() == ["%s\t%s\t%s" % (x["lunNumber"], x["name"], x["lunId"]) for x in mapped]


def test_volumes_over_90_percent(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--volumes", "60")
    m = dsfs_mount(server)
    c = server.login()
    want = set()
    for srv in list_all(c, "/server", "servers"):
        for v in volumes(c, srv["id"]):
            used, size = v["stats"]["usedSize"], v["stats"]["size"]
            if used > 0.9 * size:
                want.add("%s\t%s\t%d%%" % (srv["name"], v["name"], math.floor(100 * used / size)))
    assert want, "the estate should have volumes over 90%"
    server.sim("POST", "/stats/reset")
    out = ok(run_recipe("over-90", m))
    assert sorted(out.splitlines()) == sorted(want)
    stats = server.sim("GET", "/stats").json()
    # the volume listings only: nothing per volume, no snapshot listing
    assert not [k for k in stats if "snapshot" in k or k.startswith("GET /server/{sid}/volume/")], stats


def test_capacity_of_each_server(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    c = server.login()
    want = {}
    for srv in list_all(c, "/server", "servers"):
        cap = c.get("/server/%s/system" % srv["id"]).json()["capacityInBytes"]
        free = sum(p["freeSpace"] for p in list_all(c, "/server/%s/pool" % srv["id"], "pools"))
        want[srv["name"]] = math.ceil(100 * (cap - free) / cap)  # df rounds the percentage up
    out = ok(run_recipe("capacity", m))
    got = {}
    for line in out.splitlines():
        name, figures = line.split("\t")
        got[name] = int(figures.split()[-1].rstrip("%"))
    assert got == want
    server.sim("POST", "/stats/reset")
    ok(run_recipe("capacity", m))
    assert server.sim("GET", "/stats").json().get("total", 0) == 0


def test_count_and_select(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--volumes", "60")
    m = dsfs_mount(server)
    c = server.login()
    srv = [s for s in list_all(c, "/server", "servers") if s["name"] == "svm-prod-0"][0]
    vols = volumes(c, srv["id"])
    big = [v for v in vols if v["config"]["thinProvisioned"] and v["stats"]["size"] >= 1 << 40]
    dp = sorted(v["name"] for v in vols if v["volumeType"] == "dp")
    assert big and dp, "the estate should have such volumes"
    out = ok(run_recipe("count-and-select", m)).splitlines()
    assert out[:2] == ["volumes: %d" % len(vols), "thin, 1 TiB or more: %d" % len(big)]
    assert out[2:] == dp


def test_follow_events(server, dsfs_mount):
    m = dsfs_mount(server, ttl=1)
    out = ok(run_recipe("follow-events", m, timeout=30))
    lines = [line.split("\t") for line in out.splitlines()]
    mine = [state for state, name in lines if "followed-clone" in name]
    assert mine and mine[-1] == "SUCCEEDED" and len(mine) == len(set(mine)), out
    c = server.login()
    assert [v for v in list_all(c, "/server/%s/volume" % [s["id"] for s in list_all(c, "/server", "servers")
                                                           if s["name"] == "svm-prod-0"][0], "volumes")
            if v["name"] == "followed-clone"]


def test_edit_a_volume(server_factory, dsfs_mount, tmp_path):
    from test_dscc import Api, dscc_credentials

    dscc = server_factory("--dialect", "dscc", "--test-controls", "--task-seconds", "0.5")
    m = dsfs_mount(dscc, "api=dscc", "allow_edit", credentials=dscc_credentials(tmp_path, dscc))
    api = Api(dscc)
    sysobj = [s for s in api.items("/api/v1/storage-systems/device-type1") if s["name"] == "alletra9k-prod-0"][0]
    url = "/api/v1/storage-systems/device-type1/%s/volumes" % sysobj["id"]
    vol = [v for v in api.items(url) if v["name"] == "vol-app-0004"][0]
    out = ok(run_recipe("edit-volume", m)).split()
    assert out == ["SUCCEEDED", str(vol["sizeMiB"] + 10240)]
    sent = [r["body"] for r in dscc.sim("GET", "/requests").json()["requests"] if r["method"] == "PUT"]
    assert sent == [{"sizeMib": vol["sizeMiB"] + 10240}, {"userAllocWarning": 85}]


def test_bring_offline_luns_online(server, dsfs_mount):
    m = dsfs_mount(server)
    c = server.login()
    offline = {}
    for srv in list_all(c, "/server", "servers"):
        for lun in list_all(c, "/server/%s/lun" % srv["id"], "luns"):
            if not lun["online"]:
                offline[(srv["id"], lun["id"])] = m.p("servers", srv["name"], "luns", lun["name"]) + "/"
    assert offline
    out = ok(run_recipe("luns-online", m))
    assert sorted(out.splitlines()) == sorted("online: " + p for p in offline.values())
    for srv in list_all(c, "/server", "servers"):
        assert all(lun["online"] for lun in list_all(c, "/server/%s/lun" % srv["id"], "luns"))
    assert ok(run_recipe("luns-online", m)) == ""  # nothing left to do


def git(repo, *args):
    return subprocess.run(["git", "-C", repo] + list(args), capture_output=True, text=True,
                          check=True).stdout


def mount_json_files(root):
    """{relative path: bytes} of every .json file under root/servers, walking the mount."""
    out = {}
    top = os.path.join(root, "servers")
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if x != ".by-id"]
        for f in files:
            if f.endswith(".json") and f != "splitstatus.json":
                p = os.path.join(d, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, root)] = fh.read()
    return out


def test_estate_to_git(server, dsfs_mount, tmp_path):
    m = dsfs_mount(server)
    script = os.path.join(EXAMPLES, "dsfs-estate-to-git")
    assert open(script).read() == recipes()["estate-to-git"]
    repo = str(tmp_path / "estate")
    env = dict(os.environ, MOUNT=m.path, ESTATE_REPO=repo, HOME=str(tmp_path))  # no ~/.gitconfig

    def run():
        r = subprocess.run([script], capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0 and r.stderr == "", r
        return r.stdout

    out = run()
    assert "files changed" in out or "file changed" in out, out
    tracked = git(repo, "ls-files").splitlines()
    want = mount_json_files(m.path)
    assert sorted(tracked) == sorted(want)
    assert any(p.endswith("/snapshots/daily-20230822-0109/snapshot.json") for p in tracked)
    for rel, data in want.items():
        with open(os.path.join(repo, rel), "rb") as f:
            assert f.read() == data, rel
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"

    assert run() == "estate unchanged\n"
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"

    vol = m.p("servers", "svm-prod-0", "volumes", "vol-db-0005")
    with open(os.path.join(vol, "snapshots", "new"), "w") as f:
        f.write("before-upgrade\n")
    run()
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "2"
    changed = git(repo, "show", "--name-status", "--format=", "HEAD").splitlines()
    added = [x for x in changed if not x.startswith("M\t")]  # system.json's snapshot space changes too
    assert added == ["A\tservers/svm-prod-0/volumes/vol-db-0005/snapshots/before-upgrade/snapshot.json"], changed

    # not mounted: says so and fails
    env["MOUNT"] = str(tmp_path)
    r = subprocess.run([script], capture_output=True, text=True, timeout=30, env=env)
    assert r.returncode == 1 and "is not mounted" in r.stderr


# -- watching a task

def test_watch_a_long_task(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--task-seconds", "8")
    m = dsfs_mount(server)
    c = server.login()
    t0 = time.monotonic()
    ok(run_recipe("start-task", m))
    task = os.readlink(m.p("tasks", "latest"))
    assert c.get("/tasks/%s" % task).json()["state"] in ("INITIALIZED", "RUNNING")

    # tail -f: lines the task logs after tail started show up
    with open(m.p("tasks", "latest", "log")) as f:
        at_start = len(f.read().splitlines())
    r = run_recipe("follow-log", m, text="timeout -s INT 4 " + recipes()["follow-log"])
    assert r.returncode == 124, r  # stopped by timeout, as Ctrl-C would
    lines = r.stdout.splitlines()
    assert lines[0].endswith(" Task created") and len(lines) > at_start, (at_start, lines)

    # watch: needs a terminal; run it in one for a while
    watch = recipes()["watch-progress"].strip()
    assert "\n" not in watch
    r = subprocess.run(["timeout", "-s", "INT", "2.5", "script", "-qec", watch, "/dev/null"],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, MOUNT=m.path, TERM="xterm", COLUMNS="100", LINES="10"))
    assert "Every 1.0s: cat %s" % m.p("tasks", "latest", "progress")[:20] in r.stdout, r.stdout
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]", "\n", r.stdout)
    assert any(re.fullmatch(r"\d{1,3}", s.strip()) for s in screen.split("\n")), repr(r.stdout)

    # in a script: follows the log and ends when the task does
    out = ok(run_recipe("follow-log-until-done", m, timeout=30))
    assert out.splitlines()[0].endswith(" Task created")
    assert out.splitlines()[-1].endswith(" Task succeeded"), out
    assert c.get("/tasks/%s" % task).json()["state"] == "SUCCEEDED"
    assert time.monotonic() - t0 < 8 + 3 + 3


def test_follow_a_task_that_fails(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--task-seconds", "1")
    m = dsfs_mount(server)
    vol = m.p("servers", "svm-prod-0", "volumes", "vol-db-0005")
    with open(os.path.join(vol, "action"), "w") as f:
        f.write("clone name=fail-clone\n")
    r = run_recipe("follow-log-until-done", m, timeout=30)
    assert r.returncode == 1, r
    assert "wait: Input/output error" in r.stderr, r.stderr
    assert "Task failed: " in r.stdout.splitlines()[-1], r.stdout


# -- systemd units

def test_systemd_units_verify(tmp_path):
    """systemd-analyze verify, in a scratch root that has the units installed as the cookbook says."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is not installed (Debian package systemd; ./scripts/check installs it)")
    root = tmp_path / "root"
    (root / "usr" / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system", symlinks=True)
    etc = root / "etc" / "systemd" / "system"
    etc.mkdir(parents=True)
    units = ["mnt-dsfs.mount", "dsfs-estate-git.service", "dsfs-estate-git.timer"]
    for u in units:
        shutil.copy(os.path.join(EXAMPLES, u), etc / u)
    sbin = root / "usr" / "local" / "sbin"
    sbin.mkdir(parents=True)
    shutil.copy(os.path.join(EXAMPLES, "dsfs-estate-to-git"), sbin)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root=%s" % root] + units,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r

    # and it does catch a broken unit
    with open(etc / "dsfs-estate-git.service", "a") as f:
        f.write("ExecStartPost=/usr/local/sbin/not-there\n")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", "--root=%s" % root, units[1]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "not-there" in r.stderr, r


def unit_values(name):
    out = {}
    with open(os.path.join(EXAMPLES, name)) as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep and not line.startswith("#"):
                out.setdefault(k, []).append(v)
    return out


def test_units_agree_with_each_other():
    mnt = unit_values("mnt-dsfs.mount")
    where = mnt["Where"][0]
    r = subprocess.run(["systemd-escape", "--path", "--suffix=mount", where], capture_output=True, text=True)
    assert r.stdout.strip() == "mnt-dsfs.mount"
    assert mnt["Type"] == ["dsfs"] and mnt["What"][0].startswith("https://")
    opts = mnt["Options"][0].split(",")
    assert "_netdev" in opts and any(o.startswith("credentials=/etc/dsfs/") for o in opts)
    assert mnt["After"] == ["network-online.target"] and mnt["Wants"] == ["network-online.target"]
    svc = unit_values("dsfs-estate-git.service")
    assert svc["RequiresMountsFor"] == [where]
    assert "MOUNT=%s" % where in svc["Environment"][0].split()
    assert svc["ExecStart"] == ["/usr/local/sbin/dsfs-estate-to-git"]
    assert unit_values("dsfs-estate-git.timer")["Persistent"] == ["true"]
