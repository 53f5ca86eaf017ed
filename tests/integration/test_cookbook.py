"""docs/cookbook.md, and every command block of the README and docs/*.md, run as written
against the reference server.

The cookbook marks every recipe as a fenced block whose info string is
`sh recipe=NAME`; a block that is a copy of a file under docs/ also says
`file=PATH`. These tests extract the blocks, run each one with bash
(`set -euo pipefail` first) and MOUNT pointing at a real dsfs mount of the
reference server's default estate, and check the effect through the API.
A recipe without a test here fails test_every_recipe_has_a_test; a copied
block that differs from its file fails test_copied_blocks_match_their_files.

Every other fenced block of README and docs/*.md says what it is by its
language: `sh` for commands, or `text`, `json`, `ini`, `python` for what is
not typed into a shell (test_every_block_says_what_it_is). Each `sh` block is
run by test_doc_block_runs (one test per block, named FILE:LINE) unless its
info string says otherwise:

  needs=hardware    it needs a real array, console or machine (a real URL, a
                    service account's key, systemd as init): not run; use
                    sparingly, for the one line that needs it
  needs=time        a measurement that runs for minutes: not run
  run-by=PATH       another test or script runs it (PATH must exist and name
                    the block's commands)
  recipe=NAME       a cookbook recipe, run by its own test below

A run block runs with bash (set -euo pipefail, set -x), in an empty scratch
directory, with:

  MOUNT, and the first /mnt/NAME the block names (every occurrence of it):
                    a live dsfs mount of the reference server in the
                    dialect `api=NAME` names (storageplugin by default;
                    dscc, backupdr, cloudsync, greenlake; estate: the four first, one member
                    each), with the -o options `options=A,B` names
  /etc/dsfs, /srv/  directories under the scratch directory (/etc/dsfs not
                    created: the block must create it), so that a block that
                    writes credentials runs as written; every file left under
                    /etc/dsfs must be mode 0600 and every directory 0700
  refserver         (info word) the block talks to a reference server at
                    127.0.0.1:PORT: the test starts one (api=NAME) and puts
                    its port in place of every 127.0.0.1:PORT
  dsfs              the dsfs under test (DSFS_BIN)
  watch CMD         runs CMD once; tail -f ends after 2 s (as Ctrl-C would)

and must exit 0. test_no_command_hides_in_an_indented_block keeps commands
out of indented blocks (which would escape all this), and
test_secrets_are_private_from_the_start refuses `> FILE; chmod 600 FILE`.
test_docs_use_the_projects_own_words keeps out words from outside dsfs.

The systemd units in docs/examples/ are checked with `systemd-analyze verify`.
"""

import glob
import math
import os
import re
import shutil
import stat
import subprocess
import time

import pytest

from conftest import REPO, dsfs_binary, list_all

DOCS = os.path.join(REPO, "docs")
COOKBOOK = os.path.join(DOCS, "cookbook.md")
EXAMPLES = os.path.join(DOCS, "examples")

TESTED = {"snapshot-all", "clone-newest", "map-lun", "over-90", "capacity", "count-and-select", "follow-events",
          "edit-volume",
          "luns-online", "estate-to-git",
          "start-task", "watch-progress", "follow-log", "follow-log-until-done"}


def fenced_blocks_at(path):
    """[(line number, info words as a dict, text)] for every ``` block of a Markdown file."""
    blocks, info, lines, at = [], None, [], 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if info is None:
                m = re.match(r"^```(\S*)(.*)$", line.rstrip("\n"))
                if m:
                    info = {"lang": m.group(1)}
                    for word in m.group(2).split():
                        k, _, v = word.partition("=")
                        info[k] = v
                    lines, at = [], n
            elif line.rstrip("\n") == "```":
                blocks.append((at, info, "".join(lines)))
                info = None
            else:
                lines.append(line)
    assert info is None, "%s: a ``` block is not closed" % path
    return blocks


def fenced_blocks(path):
    """[(info words as a dict, text)] for every ``` block of a Markdown file."""
    return [(info, text) for _, info, text in fenced_blocks_at(path)]


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
    """{relative path: bytes} of every .json file of the mount but its tasks (tasks/, jobs/), walking it."""
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != ".by-id" and not (d == root and x in ("tasks", "jobs"))]
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
    assert "storage.json" in tracked and not any(p.startswith("tasks/") for p in tracked)
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


def test_estate_to_git_copies_every_top_directory_of_every_api(server_factory, dsfs_mount, tmp_path):
    """Not only servers/: Backup and DR's hosts/, applications/ ..., every member's in an estate, never
    the tasks (tasks/, jobs/)."""
    from test_backupdr import TOKEN
    from test_estate import write_estate
    a = server_factory("--test-controls", "--servers", "1", "--volumes", "2", "--snapshots", "1")
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--servers", "1", "--volumes", "2",
                         "--snapshots", "1", "--hosts", "2")
    path = write_estate(tmp_path, [("array", {"url": a.url, "username": "admin", "password": "admin"}),
                                   ("backup", {"url": bdr.url, "token": TOKEN})])
    m = dsfs_mount(a, "estate=" + path, ttl=60, estate=True)
    script = os.path.join(EXAMPLES, "dsfs-estate-to-git")
    repo = str(tmp_path / "estate")
    env = dict(os.environ, MOUNT=m.path, ESTATE_REPO=repo, HOME=str(tmp_path))
    r = subprocess.run([script], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and r.stderr == "", r
    tracked = git(repo, "ls-files").splitlines()
    tops = {p.split("/")[1] for p in tracked if p.startswith("backup/") and p.count("/") > 1}
    assert {"hosts", "applications", "diskpools", "templates", "profiles", "slas", "appliances"} <= tops, tops
    assert any(p.startswith("array/servers/") for p in tracked)
    assert not [p for p in tracked if p.split("/")[1] in ("tasks", "jobs") or p.startswith("tasks/")], tracked
    want = {k: v for k, v in mount_json_files(m.path).items()
            if not (k.count("/") > 1 and k.split("/")[1] in ("tasks", "jobs"))}
    assert sorted(tracked) == sorted(want)


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


# -- every command block of the README and docs/*.md

DOC_FILES = [os.path.join(REPO, "README")] + sorted(glob.glob(os.path.join(DOCS, "*.md")))
NOT_COMMANDS = {"text", "json", "ini", "python"}
NEEDS = {"hardware", "time"}
# how a block's mount is made, per api=: the reference server's options and the mount's
DOC_APIS = ("storageplugin", "dscc", "backupdr", "cloudsync", "greenlake", "estate")
# first words of the lines a shell runs, for spotting commands outside ```sh blocks
COMMAND_WORDS = {"dsfs", "echo", "cat", "ls", "jq", "find", "grep", "mount", "umount", "fusermount3", "install",
                 "printf", "for", "mkdir", "rmdir", "tail", "watch", "df", "rsync", "sed", "dpkg",
                 "dpkg-buildpackage", "python3", "curl", "systemctl", "apt-get", "git", "cd", "export", "chmod",
                 "cp", "tar", "perf", "valgrind", "gdb", "readlink", "sponge", "vim", "while", "if", "timeout",
                 "sudo", "umask", "mount.dsfs", "dsfs-refserver"}
# the mount a block acts on: MOUNT (not $MOUNT, MOUNTPOINT or MOUNT=), or /mnt/NAME
MOUNT_WORD = re.compile(r"(?<![\w$])MOUNT(?![\w=])")
MNT_PATH = re.compile(r"/mnt/[\w.-]+")

PRELUDE = r"""set -euo pipefail
dsfs() { "$DSFS_BIN" "$@"; }
watch() { while [ "${1#-}" != "${1:-}" ]; do case $1 in -n) shift 2 ;; *) shift ;; esac; done; "$@"; }
tail() {
    if [ "${1:-}" = -f ]; then
        local rc=0
        timeout 2 tail "$@" || rc=$?
        [ "$rc" = 124 ] || return "$rc"
    else
        command tail "$@"
    fi
}
set -x
"""


def doc_name(path):
    return os.path.relpath(path, REPO)


def doc_blocks():
    """[(FILE:LINE, info, text)] of every fenced block of README and docs/*.md."""
    return [("%s:%d" % (doc_name(path), at), info, text)
            for path in DOC_FILES for at, info, text in fenced_blocks_at(path)]


def runnable(info):
    return info["lang"] == "sh" and not ({"needs", "run-by", "recipe"} & set(info))


RUNNABLE = [(where, info, text) for where, info, text in doc_blocks() if runnable(info)]


INTERPRETERS = {"python3", "/usr/bin/python3", "bash", "sh", "env", "exec", "sudo"}


def block_programs(text):
    """The program each command line of a block starts (the last part of its path; for
    `python3 SCRIPT`, the script's)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#") or line.startswith((" ", "\t")):
            continue
        while len(words) > 1 and words[0] in INTERPRETERS:
            words = words[1:]
        out.append(os.path.basename(words[0]))
    return out


def test_every_block_says_what_it_is():
    seen = 0
    for where, info, text in doc_blocks():
        lang = info["lang"]
        assert lang in NOT_COMMANDS | {"sh"}, \
            "%s: a ``` block must say what it is: ```sh (commands, run by a test) or one of %s" % (
                where, sorted(NOT_COMMANDS))
        if lang != "sh":
            continue
        seen += 1
        if "needs" in info:
            assert info["needs"] in NEEDS, "%s: needs=%s is not one of %s" % (where, info["needs"], sorted(NEEDS))
        if "run-by" in info:
            path = os.path.join(REPO, info["run-by"])
            assert os.path.isfile(path), "%s: run-by=%s does not exist" % (where, info["run-by"])
            with open(path) as f:
                runner = f.read()
            for prog in block_programs(text):
                assert prog in runner, "%s: %s does not run %s" % (where, info["run-by"], prog)
        if runnable(info):
            assert info.get("api", "storageplugin") in DOC_APIS, "%s: api=%s" % (where, info.get("api"))
    assert seen > 40, seen
    marked = [w for w, info, _ in doc_blocks() if info.get("needs") == "hardware"]
    assert len(marked) <= len(RUNNABLE) // 2, "needs=hardware is for the few lines that need it: %s" % marked


def indented_blocks(path):
    """[(line, first line)] of the indented (4 spaces) blocks outside ``` blocks."""
    out, fenced, prev_blank, inside = [], False, True, False
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("```"):
                fenced, inside = not fenced, False
            elif not fenced:
                if line.startswith("    ") and line.strip():
                    if prev_blank and not inside:
                        out.append((n, []))
                        inside = True
                    if inside:
                        out[-1][1].append(line.strip())
                elif line.strip():
                    inside = False
            prev_blank = not line.strip()
    return out


def looks_like_a_command(line):
    words = line.lstrip("$ ").split()
    if not words or words[0].startswith("#"):
        return False
    if len(words) > 1 and words[1].endswith(":"):
        return False  # "dsfs benchmark: ...", output
    return words[0] in COMMAND_WORDS or words[0].startswith(("./", "tests/", "scripts/")) or \
        re.match(r"^[A-Z][A-Z_]*=\S", words[0]) is not None


def test_no_command_hides_in_an_indented_block():
    """A command in an indented block would be run by no test: it goes in a ```sh block."""
    found = []
    for path in DOC_FILES:
        for n, lines in indented_blocks(path):
            first = next((line for line in lines if not line.startswith("#")), "")
            if looks_like_a_command(first):
                found.append("%s:%d: %s" % (doc_name(path), n, first))
    assert not found, "commands in indented blocks (make them ```sh blocks):\n" + "\n".join(found)


def test_secrets_are_private_from_the_start():
    """`printf ... > FILE; chmod 600 FILE` leaves the secret readable by all for a moment: the
    file is created 0600 first (install -m 600 /dev/null FILE, or umask 077)."""
    bad = []
    for path in DOC_FILES + sorted(glob.glob(os.path.join(DOCS, "*.scd"))):
        with open(path) as f:
            text = f.read()
        for m in re.finditer(r"chmod\s+(?:0?600|go-rwx|u=rw,go=)\s+(\S+)", text):
            before = text[:m.start()]
            if re.search(r">\s*%s(\s|;|$)" % re.escape(m.group(1)), before[-400:]):
                bad.append("%s: %s" % (doc_name(path), text[before.rfind("\n") + 1:text.find("\n", m.end())]))
    assert not bad, "\n".join(bad)


def test_docs_use_the_projects_own_words():
    outside = re.compile(r"CONTRACT|\bseed \d|\bthe seed\b|\bseed (says|does|gives)|\bissue \d+|\bissue's\b|"
                         r"\bhelpers?\b.*\bsession\b", re.I)
    bad = []
    for path in DOC_FILES + sorted(glob.glob(os.path.join(DOCS, "*.scd"))) + \
            [os.path.join(REPO, "debian", "control"), os.path.join(REPO, "tests", "server", "refserver.py")]:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if outside.search(line):
                    bad.append("%s:%d: %s" % (doc_name(path), n, line.strip()))
    assert not bad, "\n".join(bad)


def doc_mount(api, options, server_factory, dsfs_mount, tmp_path):
    """A live mount of the reference server in that dialect, as a block's MOUNT."""
    from test_backupdr import TOKEN
    from test_cloudsync import credentials as cs_credentials
    from test_dscc import dscc_credentials
    from test_estate import write_estate

    fast = ("--test-controls", "--task-seconds", "0.5")
    if api == "storageplugin":
        return dsfs_mount(server_factory(*fast), *options)
    if api == "dscc":
        srv = server_factory("--dialect", "dscc", *fast)
        return dsfs_mount(srv, "api=dscc", *options, credentials=dscc_credentials(tmp_path, srv))
    if api == "backupdr":
        srv = server_factory("--dialect", "backupdr", *fast)
        cred = tmp_path / "bdr-cred"
        fd = os.open(str(cred), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("token=%s\n" % TOKEN)
        return dsfs_mount(srv, "api=backupdr", *options, credentials=str(cred))
    if api == "cloudsync":
        srv = server_factory("--dialect", "cloudsync", *fast)
        return dsfs_mount(srv, "api=cloudsync", *options, credentials=cs_credentials(tmp_path, srv))
    if api == "greenlake":
        from test_greenlake import gl_credentials

        srv = server_factory("--dialect", "greenlake", *fast)
        return dsfs_mount(srv, "api=greenlake", *options, credentials=gl_credentials(tmp_path, srv))
    sp = server_factory(*fast)
    dscc = server_factory("--dialect", "dscc", *fast)
    bdr = server_factory("--dialect", "backupdr", *fast)
    cs = server_factory("--dialect", "cloudsync", *fast)
    path = write_estate(tmp_path, [
        ("prod-a", {"url": sp.url, "username": "admin", "password": "admin"}),
        ("cloud", {"url": dscc.url, "api": "dscc", "client_id": "dsfs-demo", "client_secret": "dsfs-demo-secret",
                   "token_url": dscc.root + "/oauth2/token"}),
        ("backup", {"url": bdr.url, "token": TOKEN}),
        ("sync", {"url": cs.url, "api": "cloudsync", "refresh_token": "dsfs-demo-refresh-token",
                  "client_id": "dsfs-demo", "token_url": cs.root + "/oauth/token"}),
    ])
    return dsfs_mount(sp, "estate=" + path, *options, estate=True)


@pytest.mark.parametrize("where,info,text", RUNNABLE, ids=[w for w, _, _ in RUNNABLE])
def test_doc_block_runs(where, info, text, server_factory, dsfs_mount, tmp_path):
    api = info.get("api", "storageplugin")
    options = [o for o in info.get("options", "").split(",") if o]
    scratch = tmp_path / "scratch"
    (scratch / "etc").mkdir(parents=True)
    (scratch / "srv").mkdir()
    script = text
    if "refserver" in info:
        dialect = {"storageplugin": "storage-plugin"}.get(api, api)
        srv = server_factory("--dialect", dialect, "--test-controls")
        script = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:%d" % srv.port, script)
    mnt = MNT_PATH.search(script)
    if MOUNT_WORD.search(script) or mnt:
        m = doc_mount(api, options, server_factory, dsfs_mount, tmp_path)
        script = MOUNT_WORD.sub(m.path, script)
        if mnt:
            script = re.sub(re.escape(mnt.group(0)) + r"(?![\w.-])", m.path, script)
    script = script.replace("/etc/dsfs", str(scratch / "etc" / "dsfs")).replace("/srv/", str(scratch / "srv") + "/")
    env = dict(os.environ, DSFS_BIN=dsfs_binary(), HOME=str(scratch))
    r = subprocess.run(["bash", "-c", PRELUDE + script], cwd=str(scratch), capture_output=True, text=True,
                       timeout=180, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "%s failed (exit %d):\n--- the block as run:\n%s\n--- stdout:\n%s\n--- stderr:\n%s" % (
        where, r.returncode, script, r.stdout[-4000:], r.stderr[-6000:])
    for d, dirs, files in os.walk(str(scratch / "etc" / "dsfs")):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, "%s: %s is not mode 0700" % (where, d)
        for f in files:
            mode = stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode)
            assert mode == 0o600, "%s: %s is mode %o, not 0600" % (where, f, mode)
