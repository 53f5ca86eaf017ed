"""A model-based test of what the tree shows (docs/tree.md, "Coherence").

Random, seeded sequences of server-side changes made behind dsfs's back
(renames, name swaps, same-size and other-size edits, deletions) are
interleaved with what users do through the mount (opens, reads through old
descriptors kept open, page evictions with POSIX_FADV_DONTNEED, listings,
.where, edits in place and through editors' files, snapshot creation by
control file), against the DSCC reference server (PUT renames and edits) and
the storage-plugin one (names changed by /_sim/rename, objects by its mount
action; it has no edits). Every read is checked against the server's history:

  (a) no read of a file shows a version of its object older than one a read
      of that file already showed (monotonic reads);
  (b) what a fresh open shows was the server's truth at most cache_ttl (and
      some slack for a loaded machine) before the open, under that name;
  (c) an edit or action lands only on the object whose file or control file
      the user wrote, and an editor's file shows only beside its object;
  (d) the server's request log (the storage plugin's request counts) holds
      nothing dsfs sent that a user did not ask.

Against 0b549a2 (seeds 1-6) it finds: a name showing another object (item 2 of
the trust issue: most seeds, both servers), an older version read back after
a newer one (item 1: DSCC seed 5), a GET's shape (item 3), and in the
"editors" mix an editor's file beside another object (item 4: seeds 1, 2).

DSFS_MODEL_STEPS (default 120) and DSFS_MODEL_SEEDS (default "1,2") make a run
longer; a failure names its seed, step and the steps before it.
"""

import errno
import json
import os
import random
import time

import pytest

from conftest import entry_name
from test_coherence import Volumes
from test_dscc import dscc_credentials

TTL = 1.0
SLACK = 2.0  # seconds a loaded machine may add between a server change and its record here
STEPS = int(os.environ.get("DSFS_MODEL_STEPS", "120"))
SEEDS = [int(s) for s in os.environ.get("DSFS_MODEL_SEEDS", "1,2").split(",")]
# Fields a GET of one volume carries and its listing does not: which of the two shapes a file
# shows is test_coherence.py's to check; here only versions, names and targets are compared.
GET_ONLY = ("consoleUri", "requestUri", "volumePerformance")


class Dscc:
    """The DSCC reference server: PUT renames and edits volumes (a task each), DELETE deletes."""

    name_changes_by_task = True
    can_edit = True
    file = "volume.json"

    def __init__(self, server, m):
        self.server = server
        self.v = Volumes(server, m)
        self.dir = self.v.dir
        self.test_puts = self.test_deletes = 0
        server.sim("DELETE", "/requests")
        self.seen = 0

    def all(self):
        return self.v.all()

    def put(self, vid, body, check):
        r = self.v.api.c.request("PUT", self.v.url(vid), body,
                                 headers={"Authorization": "Bearer " + self.v.api.token})
        self.test_puts += 1
        deadline = time.time() + 20
        while r.status in (200, 202) and not check(self.v.api.get(self.v.url(vid))):
            assert time.time() < deadline, "the server did not apply %r" % body
            time.sleep(0.02)

    def rename(self, vid, name):
        self.put(vid, {"name": name}, lambda x: x["name"] == name)

    def edit(self, vid, rng):
        value = rng.choice([10, 20, 30, 5, 7, 99])  # same size and other sizes
        self.put(vid, {"userAllocWarning": value}, lambda x: x.get("userAllocWarning") == value)

    def delete(self, vid):
        r = self.v.api.c.request("DELETE", self.v.url(vid), headers={"Authorization": "Bearer " + self.v.api.token})
        self.test_deletes += 1
        return r.status in (200, 202, 204)

    def log(self):
        return self.server.sim("GET", "/requests").json()["requests"]

    def ours(self, r):
        return r["method"] == "PUT" and isinstance(r["body"], dict) and (
            "name" in r["body"] or r["body"].get("userAllocWarning") in (10, 20, 30, 5, 7, 99))

    def new_edits(self):
        """The ids dsfs sent PUTs for since the last call: (c), checked as it happens."""
        log = self.log()
        fresh, self.seen = log[self.seen:], len(log)
        return [r["path"].rsplit("/", 1)[1] for r in fresh if r["method"] == "PUT" and not self.ours(r)]

    def snapshots_of(self, vid):
        return [sn["name"] for sn in self.v.api.items(self.v.url(vid) + "/snapshots")]

    def check_requests(self, model):
        log = self.log()
        assert len([r for r in log if self.ours(r)]) == self.test_puts
        dsfs_puts = [r["path"].rsplit("/", 1)[1] for r in log if r["method"] == "PUT" and not self.ours(r)]
        assert sorted(dsfs_puts) == sorted(model.expected_puts), (dsfs_puts, model.expected_puts)
        snap_posts = [r["path"].split("/volumes/")[1].split("/")[0] for r in log
                      if r["method"] == "POST" and r["path"].endswith("/snapshots")]
        assert sorted(snap_posts) == sorted(model.expected_posts), (snap_posts, model.expected_posts)
        assert [r for r in log if r["method"] == "POST" and not r["path"].endswith("/snapshots")] == []
        assert len([r for r in log if r["method"] == "DELETE"]) == self.test_deletes
        assert [r for r in log if r["method"] not in ("PUT", "POST", "DELETE")] == []


class Plugin:
    """The storage-plugin reference server: names change by /_sim/rename (its API has none),
    objects by the mount action, and DELETE deletes. It keeps no request log: its counts
    by method and template say what was sent."""

    can_edit = False
    file = "volume.json"

    def __init__(self, server, m):
        self.server = server
        self.c = server.login()
        srv = self.c.get("/server").json()["servers"][0]
        self.sid = srv["id"]
        self.dir = m.p("servers", entry_name(srv["name"], srv["id"]), "volumes")
        self.test_posts = self.test_deletes = 0
        server.sim("POST", "/stats/reset")

    def all(self):
        return self.c.get("/server/%s/volume?limit=1000&start=0" % self.sid).json()["volumes"]

    def rename(self, vid, name):
        r = self.server.sim("POST", "/rename", {"server": self.sid, "volume": vid, "name": name})
        assert r.status == 204, r.body

    def edit(self, vid, rng):
        path = rng.choice(["/aaaa", "/bbbb", "/c", "/dddddddd"])  # same size and other sizes
        r = self.c.post("/server/%s/volume/%s?action=mount" % (self.sid, vid), {"path": path})
        self.test_posts += 1
        assert r.status in (200, 404), r.body

    def delete(self, vid):
        r = self.c.delete("/server/%s/volume/%s" % (self.sid, vid))
        self.test_deletes += 1
        return r.status in (200, 202, 204)

    def new_edits(self):
        return []

    def snapshots_of(self, vid):
        r = self.c.get("/server/%s/volume/%s/snapshot?limit=1000&start=0" % (self.sid, vid))
        return [sn["name"] for sn in r.json()["snapshots"]] if r.status == 200 else []

    def check_requests(self, model):
        stats = self.server.sim("GET", "/stats").json()
        sent = {k: n for k, n in stats.items() if k != "total" and not k.startswith(("GET ", "HEAD "))}
        want = {k: n for k, n in sent.items() if k == "POST /session"}  # a login, re-login: asked for
        if self.test_posts:
            want["POST /server/{sid}/volume/{vid}?action=mount"] = self.test_posts
        if self.test_deletes:
            want["DELETE /server/{sid}/volume/{vid}"] = self.test_deletes
        if model.expected_posts:
            want["POST /server/{sid}/volume/{vid}/snapshot"] = len(model.expected_posts)
        assert sent == want, (sent, want)


@pytest.fixture
def dscc_model(server_factory, dsfs_mount, tmp_path):
    server = server_factory("--dialect", "dscc", "--test-controls", "--task-seconds", "0.05",
                            "--volumes", "4", "--snapshots", "0", "--hosts", "1")
    m = dsfs_mount(server, "api=dscc", "allow_edit", ttl=TTL, credentials=dscc_credentials(tmp_path, server))
    return Dscc(server, m)


@pytest.fixture
def plugin_model(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--servers", "1", "--volumes", "5", "--snapshots", "0",
                            "--task-seconds", "0.05")
    m = dsfs_mount(server, ttl=TTL)
    return Plugin(server, m)


class History:
    """The server's states of the volumes, each with the time span it may have held in."""

    def __init__(self, vols):
        self.states = []  # (start, end or None, {id: object})
        self.record(time.time(), time.time(), vols)

    def record(self, began, ended, vols):
        vols = [{k: v for k, v in o.items() if k not in GET_ONLY} for o in vols]
        if self.states:
            s, _, objs = self.states[-1]
            self.states[-1] = (s, ended, objs)
        self.states.append((began, None, {v["id"]: v for v in vols}))

    def versions(self, vid, obj):
        """Indices of the states in which object vid was exactly obj."""
        return [i for i, (_, _, objs) in enumerate(self.states) if objs.get(vid) == obj]

    def version(self, vid, obj):
        """The object's version number: how many distinct states of it came before obj's latest."""
        seen, n, last = [], -1, None
        for _, _, objs in self.states:
            o = objs.get(vid)
            if o != last:
                n += 1
                last = o
            seen.append((n, o))
        matches = [n for n, o in seen if o == obj]
        return max(matches) if matches else None

    def held_between(self, vid, obj, t0, t1):
        """Whether obj was vid's state at some time in [t0, t1]."""
        for i in self.versions(vid, obj):
            start, end, _ = self.states[i]
            if start <= t1 and (end is None or end >= t0):
                return True
        return False


class Model:
    def __init__(self, api, rng):
        self.api = api
        self.rng = rng
        self.hist = History(api.all())
        self.shown = {}      # (path, id) -> highest version a read of that file showed
        self.old = []        # (fd, path) kept open
        self.editors = []    # (tmp path, id of the object it was made beside, value)
        self.expected_puts = []   # ids an edit through dsfs was accepted for
        self.expected_posts = []  # ids whose snapshots/new a user wrote
        self.step = 0
        self.trace = []
        self.mix = "all"

    # ---- the server, behind dsfs's back -------------------------------------------------
    def current(self):
        return {v["id"]: v for v in self.api.all()}

    def changed(self, began):
        self.hist.record(began, time.time(), self.api.all())

    def server_rename(self):
        o = self.rng.choice(list(self.current().values()))
        began = time.time()
        self.api.rename(o["id"], "v%d-%d" % (self.step, self.rng.randrange(1000)))
        self.changed(began)

    def server_swap(self, first=None):
        objs = list(self.current().values())
        if len(objs) < 2:
            return
        a, b = self.rng.sample(objs, 2)
        if first in self.current():  # the object an editor's file was made beside, say
            a = self.current()[first]
            b = self.rng.choice([o for o in objs if o["id"] != first])
        began = time.time()
        self.api.rename(a["id"], "swap-%d" % self.step)
        self.changed(began)
        began = time.time()
        self.api.rename(b["id"], a["name"])
        self.changed(began)
        began = time.time()
        self.api.rename(a["id"], b["name"])
        self.changed(began)

    def server_swap_and_wait(self):
        """Swaps the name of an editor's file's object with another's; then a listing shows it."""
        self.server_swap(self.rng.choice(self.editors)[1] if self.editors else None)
        time.sleep(TTL + 0.1)
        self.user_ls()

    def server_edit(self):
        o = self.rng.choice(list(self.current().values()))
        began = time.time()
        self.api.edit(o["id"], self.rng)
        self.changed(began)

    def server_delete(self):
        objs = list(self.current().values())
        if len(objs) <= 3:
            return
        o = self.rng.choice(objs)
        began = time.time()
        deadline = began + 20
        if self.api.delete(o["id"]):
            while o["id"] in self.current():
                assert time.time() < deadline, "the server did not delete %s" % o["id"]
                time.sleep(0.02)
        self.changed(began)

    # ---- users, through the mount -----------------------------------------------------
    def entries(self):
        return [e for e in os.listdir(self.api.dir) if e != "new"]

    def some_file(self):
        names = [o["name"] for o in self.current().values()]
        names += [o["name"] for o in self.hist.states[max(0, len(self.hist.states) - 3)][2].values()]
        return os.path.join(self.api.dir, entry_name(self.rng.choice(names), ""), self.api.file)

    def check_read(self, path, data, t0, t1, fresh):
        try:
            shown = json.loads(data)
        except ValueError:
            raise AssertionError("step %d: %s: not JSON: %r" % (self.step, path, data[:200]))
        obj = {k: v for k, v in shown.items() if k not in GET_ONLY}
        vid = obj["id"]
        ver = self.hist.version(vid, obj)
        assert ver is not None, "step %d: %s shows a state the server never had: %r" % (self.step, path, obj)
        # per file: the same name showing the same object (a rename makes another file of it)
        assert ver >= self.shown.get((path, vid), -1), \
            "step %d: %s went back to version %d of %s after version %d was shown (a)" % (
                self.step, path, ver, vid, self.shown[(path, vid)])
        self.shown[(path, vid)] = ver
        if fresh:
            assert self.hist.held_between(vid, obj, t0 - TTL - SLACK, t1), \
                "step %d: %s showed %s older than cache_ttl (b)" % (self.step, path, obj)
            entry = os.path.basename(os.path.dirname(path))
            assert entry_name(obj["name"], "") == entry, \
                "step %d: %s shows %s, called %r (b)" % (self.step, path, vid, obj["name"])
        return shown

    def user_read(self):
        self.read_object()

    def user_keep_open(self):
        path = self.some_file()
        t0 = time.time()
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            assert e.errno == errno.ENOENT, (self.step, path, e)
            return
        self.check_read(path, os.pread(fd, 1 << 16, 0), t0, time.time(), True)
        self.old.append((fd, path))
        if len(self.old) > 6:
            os.close(self.old.pop(0)[0])

    def user_read_old(self):
        if self.old:
            fd, path = self.rng.choice(self.old)
            try:
                data = os.pread(fd, 1 << 16, 0)
            except OSError as e:
                # the kernel asks for the file's attributes by its name first: a name the server
                # took away is gone for its old descriptors too (docs/tree.md)
                assert e.errno == errno.ENOENT, (self.step, path, e)
                return
            self.check_read(path, data, 0, 0, False)

    def user_evict(self):
        for fd, _ in self.old:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def user_ls(self):
        self.entries()
        for tmp, vid, _ in self.editors:
            # (c): an editor's file shows only beside the object it was made for
            d = os.path.dirname(tmp)
            try:
                here = os.path.basename(tmp) in os.listdir(d)
                if here:
                    with open(os.path.join(d, self.api.file), "rb") as f:
                        owner = json.loads(f.read())["id"]
            except OSError as e:
                assert e.errno == errno.ENOENT, (self.step, d, e)
                continue
            assert not here or owner == vid, \
                "step %d: %s, made beside %s, shows beside %s (c)" % (self.step, tmp, vid, owner)

    def user_where(self):
        name = self.rng.choice(list(self.current().values()))["name"]
        try:
            listed = os.listdir(os.path.join(self.api.dir, ".where", "name=" + name))
        except OSError as e:
            assert e.errno == errno.ENOENT, (self.step, e)
            return
        for e in listed:
            assert e == entry_name(name, "") or e.startswith(entry_name(name, "") + "@"), (self.step, name, listed)

    def read_object(self):
        """A file and its object as a fresh open shows it (checked), or (path, None)."""
        path = self.some_file()
        t0 = time.time()
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            assert e.errno == errno.ENOENT, (self.step, path, e)
            return path, None
        return path, self.check_read(path, data, t0, time.time(), self.mix != "editors")

    def user_edit(self):
        path, obj = self.read_object()
        if obj is None:
            return
        same = obj.get("userAllocWarning")
        obj["userAllocWarning"] = self.rng.choice([11, 22, 33, 44])
        same = same == obj["userAllocWarning"]  # an edit that changes nothing sends nothing
        try:
            with open(path, "w") as f:
                f.write(json.dumps(obj, indent=2) + "\n")
        except OSError as e:
            assert e.errno in (errno.EBUSY, errno.EINVAL, errno.ENOENT), (self.step, path, e)
            assert self.api.new_edits() == [], (self.step, path)  # a refusal sends nothing
            return
        if same:
            assert self.api.new_edits() == [], (self.step, path)
            return
        self.expected_puts.append(obj["id"])
        assert self.api.new_edits() == [obj["id"]], (self.step, path)  # (c) as it happens
        self.applied(obj["id"], obj["userAllocWarning"])

    def applied(self, vid, value):
        """Waits for the server to carry out an edit dsfs sent, and records the state it made."""
        began = time.time()
        deadline = began + 20
        while True:
            objs = self.current()
            if vid not in objs or objs[vid].get("userAllocWarning") == value:
                break
            assert time.time() < deadline, "step %d: the edit of %s was not applied" % (self.step, vid)
            time.sleep(0.02)
        self.hist.record(began, time.time(), self.api.all())

    def user_editor_create(self):
        path, obj = self.read_object()
        if obj is None:
            return
        if obj.get("userAllocWarning") in (55, 66):
            return  # its edit might change nothing, and then sends nothing: keep (c) simple
        obj["userAllocWarning"] = self.rng.choice([55, 66])
        tmp = os.path.join(os.path.dirname(path), ".edit%d.tmp" % self.step)
        try:
            with open(tmp, "w") as f:
                f.write(json.dumps(obj, indent=2) + "\n")
        except OSError as e:
            assert e.errno in (errno.ENOENT, errno.EPERM), (self.step, tmp, e)
            return
        self.editors.append((tmp, obj["id"], obj["userAllocWarning"]))

    def user_editor_commit(self):
        if not self.editors:
            return
        tmp, vid, value = self.editors.pop(self.rng.randrange(len(self.editors)))
        try:
            os.rename(tmp, os.path.join(os.path.dirname(tmp), "volume.json"))
        except OSError as e:
            assert e.errno in (errno.ENOENT, errno.EXDEV, errno.EBUSY, errno.EINVAL), (self.step, tmp, e)
            assert self.api.new_edits() == [], (self.step, tmp)  # a refusal sends nothing
            return
        self.expected_puts.append(vid)
        sent = self.api.new_edits()
        assert sent == [vid], "step %d: %s, made beside %s, edited %s (c)" % (self.step, tmp, vid, sent)
        self.applied(vid, value)

    def user_snapshot(self):
        path = self.some_file()
        try:
            with open(path, "rb") as f:
                vid = json.loads(f.read())["id"]
            with open(os.path.join(os.path.dirname(path), "snapshots", "new"), "w") as f:
                f.write("snap%d\n" % self.step)
        except OSError as e:
            assert e.errno in (errno.ENOENT, errno.EINVAL), (self.step, path, e)
            return
        self.expected_posts.append(vid)
        # (c): on the volume whose directory the user wrote in (its snapshot may take a task)
        deadline = time.time() + 20
        while "snap%d" % self.step not in self.api.snapshots_of(vid):
            assert time.time() < deadline, "step %d: snap%d is not %s's" % (self.step, self.step, vid)
            time.sleep(0.05)
        self.changed(time.time())

    def run(self, steps, mix="all"):
        """mix "editors": only name swaps, listings and editors' files, so that (c) is what fails first."""
        server_ops = [self.server_rename, self.server_swap, self.server_edit, self.server_delete]
        user_ops = [self.user_read, self.user_read, self.user_keep_open, self.user_read_old,
                    self.user_read_old, self.user_evict, self.user_ls, self.user_where, self.user_snapshot]
        if self.api.can_edit:
            user_ops += [self.user_edit, self.user_editor_create, self.user_editor_commit]
        self.mix = mix
        if mix == "editors":
            server_ops = [self.server_swap_and_wait]
            user_ops = [self.user_ls, self.user_editor_create, self.user_editor_commit]
        try:
            for self.step in range(steps):
                op = self.rng.choice(server_ops) if self.rng.random() < 0.3 else self.rng.choice(user_ops)
                self.trace.append("%d %s" % (self.step, op.__name__))
                op()
                if self.rng.random() < 0.15:
                    time.sleep(TTL * self.rng.random() * 1.5)  # let the cache go stale now and then
        except AssertionError as e:
            raise AssertionError("%s\nsteps: %s" % (e, ", ".join(self.trace[-12:])))
        finally:
            for fd, _ in self.old:
                os.close(fd)
        self.api.check_requests(self)  # (d)


@pytest.mark.parametrize("seed", SEEDS)
def test_dscc_reads_edits_and_requests_agree_with_the_servers_history(dscc_model, seed):
    Model(dscc_model, random.Random(seed)).run(STEPS)


@pytest.mark.parametrize("seed", SEEDS)
def test_dscc_editors_files_edit_only_their_objects_across_name_swaps(dscc_model, seed):
    Model(dscc_model, random.Random(seed)).run(STEPS // 4, mix="editors")


@pytest.mark.parametrize("seed", SEEDS)
def test_storage_plugin_reads_and_requests_agree_with_the_servers_history(plugin_model, seed):
    Model(plugin_model, random.Random(seed)).run(STEPS)
