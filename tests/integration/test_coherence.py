"""What a path shows is the object its name names (docs/tree.md, "Coherence"):
renames on the server behind dsfs's back, with no new listing in between,
never make a path show another object, and an editor's file edits only the
object it was made beside. Against the DSCC reference server, whose PUT
renames volumes (a task each).
"""

import errno
import json
import os
import time

import pytest

from test_dscc import Api as DsccApi, dscc, dscc_credentials  # noqa: F401
from tree_model import assign_entries


def read_json(path):
    with open(path) as f:
        return json.load(f)


def puts(server):
    return [r for r in server.sim("GET", "/requests").json()["requests"] if r["method"] == "PUT"]


class Volumes:
    """The first device-type1 system's volumes, through the API, and their directory in a mount."""

    def __init__(self, server, m):
        self.server = server
        self.api = DsccApi(server)
        systems = {s["id"] for s in self.api.items("/api/v1/storage-systems/device-type1")}
        entry = [e for e in sorted(os.listdir(m.p("servers")))
                 if read_json(m.p("servers", e, "system.json"))["id"] in systems][0]
        self.sid = read_json(m.p("servers", entry, "system.json"))["id"]
        self.dir = m.p("servers", entry, "volumes")

    def url(self, vid):
        return "/api/v1/storage-systems/device-type1/%s/volumes/%s" % (self.sid, vid)

    def all(self):
        return self.api.items("/api/v1/storage-systems/device-type1/%s/volumes" % self.sid)

    def rename(self, vid, name):
        """PUT a new name and wait for its task to apply it."""
        r = self.api.c.request("PUT", self.url(vid), {"name": name},
                               headers={"Authorization": "Bearer " + self.api.token})
        assert r.status in (200, 202), (r.status, r.body)
        deadline = time.time() + 20
        while self.api.get(self.url(vid))["name"] != name:
            assert time.time() < deadline, "rename of %s not applied" % vid
            time.sleep(0.1)


@pytest.fixture
def swapped(dscc, dsfs_mount, tmp_path):
    """A mount that listed the volumes; X and Y, and X's directory."""
    def make(*opts, ttl=1):
        m = dsfs_mount(dscc, "api=dscc", *opts, ttl=ttl, credentials=dscc_credentials(tmp_path, dscc))
        v = Volumes(dscc, m)
        vols = v.all()
        entries = assign_entries(vols)
        assert sorted(os.listdir(v.dir)) == sorted(entries + ["new"])
        x, y = vols[0], vols[1]
        return m, v, x, y, os.path.join(v.dir, entries[0])
    return make


def swap(v, x, y):
    v.rename(x["id"], x["name"] + "-moved")
    v.rename(y["id"], x["name"])


def test_a_stale_listing_never_shows_another_object_under_a_name(swapped):
    m, v, x, y, xdir = swapped()
    swap(v, x, y)
    time.sleep(1.2)
    # no ls in between: the kernel and dsfs still hold the old listing, now stale
    shown = read_json(os.path.join(xdir, "volume.json"))
    assert shown["name"] == x["name"], shown["name"]  # the object the name names now: Y
    assert shown["id"] == y["id"]
    assert x["name"] + "-moved" in os.listdir(v.dir)
    moved = read_json(os.path.join(v.dir, x["name"] + "-moved", "volume.json"))
    assert moved["id"] == x["id"]


def test_an_editors_file_never_edits_the_object_that_took_its_directorys_name(dscc, swapped):
    m, v, x, y, xdir = swapped("allow_edit")
    obj = read_json(os.path.join(xdir, "volume.json"))
    assert obj["id"] == x["id"]
    obj["sizeMiB"] += 1024
    tmp = os.path.join(xdir, "edit.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=2) + "\n")
    assert "edit.tmp" in os.listdir(xdir)
    swap(v, x, y)
    time.sleep(1.2)
    assert x["name"] + "-moved" in os.listdir(v.dir)  # a new listing: the name is Y's now
    assert read_json(os.path.join(xdir, "volume.json"))["id"] == y["id"]
    assert "edit.tmp" not in os.listdir(xdir)  # X's editor's file does not show in Y's directory
    dscc.sim("DELETE", "/requests")
    with pytest.raises(OSError) as e:
        os.rename(tmp, os.path.join(xdir, "volume.json"))
    assert e.value.errno in (errno.ENOENT, errno.EXDEV)
    assert puts(dscc) == []  # nothing sent, to Y or anyone
    assert v.api.get(v.url(y["id"]))["sizeMiB"] == y["sizeMiB"]


def test_a_file_has_one_shape_however_it_was_fetched(dscc, dsfs_mount, tmp_path):
    # DSCC answers a GET of one volume with fields its listing lacks (consoleUri, requestUri,
    # volumePerformance for device-type1): the file is the listing's shape either way, so
    # nothing changed on the server means nothing changes in the file.
    m = dsfs_mount(dscc, "api=dscc", ttl=1, credentials=dscc_credentials(tmp_path, dscc))
    v = Volumes(dscc, m)
    files = [os.path.join(v.dir, e, "volume.json") for e in assign_entries(v.all())]
    hosts = [m.p("hosts", e, "host.json") for e in os.listdir(m.p("hosts")) if e != "new"]
    listed = {}
    for f in files + hosts:
        with open(f, "rb") as fh:
            listed[f] = fh.read()
    time.sleep(1.2)  # stale: each open now asks for its one object
    for f in files + hosts:
        with open(f, "rb") as fh:
            got = fh.read()
        assert got == listed[f], (f, sorted(set(json.loads(got)) ^ set(json.loads(listed[f]))))
