"""Editing an object by editing its file (issue 15, part 1), through a real
mount with -o allow_edit against the reference server: in place (`>`,
Python), by rename (`sed -i`) and with vim, each edit is exactly one PUT
carrying only the fields that changed, and the file reads back the
server's new object; a field the API does not let one edit, invalid JSON
or a wrong type is refused before anything is sent, and so is an edit over
someone else's; objects without an update, mounts without allow_edit and
read-only mounts refuse writes.
"""

import errno
import json
import os
import stat
import subprocess
import time

import pytest

from conftest import MountFailed  # noqa: F401
from test_backupdr import Api as BdrApi, TOKEN, bdr, credentials as bdr_credentials, named  # noqa: F401
from test_dscc import Api as DsccApi, dscc, dscc_credentials  # noqa: F401
from tree_model import assign_entries


def puts(server):
    return [r for r in server.sim("GET", "/requests").json()["requests"] if r["method"] == "PUT"]


def forget_requests(server):
    server.sim("DELETE", "/requests")


def write_file(path, text):
    """Writes text in place (open with O_TRUNC, write, close): the close's errno, or 0."""
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        return e.errno
    return 0


def read_json(path):
    with open(path) as f:
        return json.load(f)


def dump(obj):
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def wait_latest(m):
    with open(m.p("tasks", "latest", "wait")) as f:
        return f.read().strip()


@pytest.fixture
def dscc_edit(dscc, dsfs_mount, tmp_path):
    m = dsfs_mount(dscc, "api=dscc", "allow_edit", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    api = DsccApi(dscc)
    systems = {s["id"]: s for s in api.items("/api/v1/storage-systems/device-type1")}
    entry = [e for e in os.listdir(m.p("servers"))
             if read_json(m.p("servers", e, "system.json"))["id"] in systems][0]
    sid = read_json(m.p("servers", entry, "system.json"))["id"]
    vols = api.items("/api/v1/storage-systems/device-type1/%s/volumes" % sid)
    vdir = m.p("servers", entry, "volumes", assign_entries(vols)[0])
    url = "/api/v1/storage-systems/device-type1/%s/volumes/%s" % (sid, vols[0]["id"])
    return m, api, vdir, url


def test_an_in_place_edit_is_one_put_of_the_changed_field(dscc, dscc_edit):
    m, api, vdir, url = dscc_edit
    path = os.path.join(vdir, "volume.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(vdir).st_mode) == 0o755  # its owner's editors can make files beside it
    vol = read_json(path)
    forget_requests(dscc)
    vol["sizeMiB"] += 1024
    assert write_file(path, dump(vol)) == 0
    sent = puts(dscc)
    assert len(sent) == 1 and sent[0]["path"] == url and sent[0]["body"] == {"sizeMib": vol["sizeMiB"]}
    assert wait_latest(m) == "SUCCEEDED"
    assert read_json(path)["sizeMiB"] == vol["sizeMiB"] == api.get(url)["sizeMiB"]
    # the issue's own example: the field set under the API's name, by jq
    forget_requests(dscc)
    new = subprocess.run(["jq", ".sizeMib = %d" % (vol["sizeMiB"] + 2048), path], check=True,
                         capture_output=True, text=True).stdout
    assert write_file(path, new) == 0
    assert [p["body"] for p in puts(dscc)] == [{"sizeMib": vol["sizeMiB"] + 2048}]
    assert wait_latest(m) == "SUCCEEDED"
    assert read_json(path)["sizeMiB"] == vol["sizeMiB"] + 2048
    # nothing changed, nothing sent
    forget_requests(dscc)
    with open(path) as f:
        same = f.read()
    assert write_file(path, same) == 0
    assert puts(dscc) == []


def test_truncate_is_an_in_place_edit_and_chmod_is_refused(dscc, dscc_edit):
    """truncate(2) of an object file is the same edit as an in-place
    write of the cut content (here: a cut that keeps the object sends nothing, one
    that breaks it is EINVAL, nothing sent), not EACCES; a chmod or chown that the
    file cannot keep is EPERM, not a silent success."""
    m, api, vdir, url = dscc_edit
    path = os.path.join(vdir, "volume.json")
    size = os.stat(path).st_size
    with open(path) as f:
        before = f.read()
    assert before.endswith("}\n")
    forget_requests(dscc)
    os.truncate(path, size)          # the same bytes: nothing to send
    os.truncate(path, size - 1)      # the newline cut: the same object
    subprocess.run(["truncate", "-s", str(size), path], check=True)
    assert puts(dscc) == []
    for cut in (10, 0, size + 5):    # no JSON object left (or NULs after it): refused, nothing sent
        with pytest.raises(OSError) as e:
            os.truncate(path, cut)
        assert e.value.errno == errno.EINVAL, cut
    assert puts(dscc) == []
    with open(path) as f:
        assert f.read() == before
    assert "truncate" not in m.log_text() or "EACCES" not in m.log_text()

    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.chmod(path, mode)             # what it already is: nothing to refuse
    os.utime(path)                   # times: accepted and ignored, as editors copy them
    for bad in (0o600, 0o4755):
        with pytest.raises(OSError) as e:
            os.chmod(path, bad)
        assert e.value.errno == errno.EPERM, oct(bad)
    with pytest.raises(OSError) as e:
        os.chown(path, os.stat(path).st_uid + 4242, -1)
    assert e.value.errno == errno.EPERM
    assert stat.S_IMODE(os.stat(path).st_mode) == mode
    assert "nothing changed" in m.log_text()
    assert puts(dscc) == []


def test_sed_i_and_vim_each_send_one_put(dscc, dscc_edit):
    m, api, vdir, url = dscc_edit
    path = os.path.join(vdir, "volume.json")
    was = read_json(path)["dataReduction"]
    want = "OFF" if was == "ON" else "ON"
    forget_requests(dscc)
    subprocess.run(["sed", "-i", 's/"dataReduction": "%s"/"dataReduction": "%s"/' % (was, want), path], check=True)
    sent = puts(dscc)
    assert [p["body"] for p in sent] == [{"dataReduction": want == "ON"}]
    assert wait_latest(m) == "SUCCEEDED"
    assert read_json(path)["dataReduction"] == want == api.get(url)["dataReduction"]
    # vim, with its swap file and its write in place
    forget_requests(dscc)
    subprocess.run(["vim", "-u", "DEFAULTS", "-N", "-es", "-c",
                    r'%s/"userAllocWarning": \(\d\+\|null\)/"userAllocWarning": 42/', "-c", "wq", path],
                   check=True, timeout=30, stdin=subprocess.DEVNULL)
    assert [p["body"] for p in puts(dscc)] == [{"userAllocWarning": 42}]
    assert wait_latest(m) == "SUCCEEDED"
    assert read_json(path)["userAllocWarning"] == 42 == api.get(url)["userAllocWarning"]
    # the editors' files are gone; what is left is the server's
    assert sorted(os.listdir(vdir)) == ["action", "snapshots", "volume.json"]


def test_refused_edits_send_nothing_and_leave_the_file(dscc, dscc_edit):
    m, api, vdir, url = dscc_edit
    path = os.path.join(vdir, "volume.json")
    vol = read_json(path)
    with open(path) as f:
        before = f.read()
    forget_requests(dscc)
    bad_field = dict(vol, usedSizeMiB=vol["usedSizeMiB"] + 1)
    assert write_file(path, dump(bad_field)) == errno.EINVAL
    assert "field 'usedSizeMiB' cannot be edited" in m.log_text()
    assert write_file(path, dump(vol)[:-20]) == errno.EINVAL  # not JSON
    assert write_file(path, dump(dict(vol, sizeMiB="big"))) == errno.EINVAL
    assert "field 'sizeMiB' must be a number, as it was, not a string" in m.log_text()
    assert write_file(path, dump(dict(vol, dataReduction="maybe"))) == errno.EINVAL
    assert write_file(path, dump([vol])) == errno.EINVAL
    removed = dict(vol)
    del removed["name"]
    assert write_file(path, dump(removed)) == errno.EINVAL
    # by rename: sed -i fails and the server has seen nothing
    r = subprocess.run(["sed", "-i", 's/"usedSizeMiB": [0-9]*/"usedSizeMiB": 1/', path], capture_output=True, text=True)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert puts(dscc) == []
    with open(path) as f:
        assert f.read() == before
    # sed left its file; it can be removed, and nothing else can
    left = [e for e in os.listdir(vdir) if e.startswith("sed")]
    for e in left:
        os.unlink(os.path.join(vdir, e))
    with pytest.raises(OSError) as e:
        os.unlink(path)
    assert e.value.errno == errno.EPERM


def test_an_edit_over_someone_elses_is_ebusy(dscc, dscc_edit):
    m, api, vdir, url = dscc_edit
    path = os.path.join(vdir, "volume.json")
    vol = read_json(path)
    # someone else changes the volume after this reader has read it
    other = dict(vol)
    r = api.c.request("PUT", url, {"userAllocWarning": 17}, session=False,
                      headers={"Authorization": "Bearer " + api.token})
    assert r.status == 202, (r.status, r.body)
    deadline = time.monotonic() + 10
    while api.get(url)["userAllocWarning"] != 17:  # its task has ended
        assert time.monotonic() < deadline
        time.sleep(0.1)
    forget_requests(dscc)
    other["name"] = vol["name"] + "-renamed"
    assert write_file(path, dump(other)) == errno.EBUSY
    assert "changed on the server since the file was read" in m.log_text()
    assert puts(dscc) == []


def test_backupdr_edits_are_incremental_puts(bdr, dsfs_mount, tmp_path):
    m = dsfs_mount(bdr, "api=backupdr", "allow_edit", ttl=60,
                   credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    api = BdrApi(bdr)
    hosts = api.items("/host")
    path = m.p("hosts", assign_entries(named(hosts, "name"))[0], "host.json")
    host = read_json(path)
    forget_requests(bdr)
    assert write_file(path, dump(dict(host, description="racked in row 7"))) == 0
    sent = puts(bdr)
    assert [(p["path"], p["body"]) for p in sent] == [("/actifio/host/%s" % host["id"],
                                                       {"description": "racked in row 7"})]
    assert read_json(path)["description"] == "racked in row 7" == api.get("/host/%s" % host["id"])["description"]
    assert write_file(path, dump(dict(host, hostname=5))) == errno.EINVAL
    # a kind whose API has no update: EPERM
    pools = api.items("/diskpool")
    with pytest.raises(OSError) as e:
        open(m.p("diskpools", assign_entries(named(pools, "name"))[0], "diskpool.json"), "w")
    assert e.value.errno == errno.EPERM
    assert len(puts(bdr)) == 1


def test_without_allow_edit_or_an_update_writes_are_refused(server, dscc, dsfs_mount, tmp_path):
    m = dsfs_mount(server, "allow_edit")
    s = sorted(os.listdir(m.p("servers")))[0]
    v = sorted(e for e in os.listdir(m.p("servers", s, "volumes")))[0]
    path = m.p("servers", s, "volumes", v, "volume.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444  # the storage plugin has no update
    with pytest.raises(OSError) as e:
        open(path, "w")
    assert e.value.errno == errno.EPERM
    with pytest.raises(OSError) as e:
        open(m.p("servers", s, "volumes", v, "new-file"), "w")
    assert e.value.errno == errno.EPERM
    md = dsfs_mount(dscc, "api=dscc", credentials=dscc_credentials(tmp_path, dscc))
    vdir = [os.path.join(d, x) for d in [md.p("servers", e, "volumes") for e in os.listdir(md.p("servers"))]
            for x in os.listdir(d) if x != "new"][0]
    assert stat.S_IMODE(os.stat(os.path.join(vdir, "volume.json")).st_mode) == 0o444
    with pytest.raises(OSError) as e:
        open(os.path.join(vdir, "volume.json"), "r+")
    assert e.value.errno == errno.EPERM
    ro = dsfs_mount(dscc, "api=dscc", "allow_edit", "ro", credentials=dscc_credentials(tmp_path, dscc))
    rel = os.path.relpath(os.path.join(vdir, "volume.json"), md.path)
    with pytest.raises(OSError) as e:
        open(os.path.join(ro.path, rel), "r+")
    assert e.value.errno == errno.EROFS
    assert puts(dscc) == []


def test_hostile_edits(dscc, dscc_edit):
    m, api, vdir, url = dscc_edit
    path = os.path.join(vdir, "volume.json")
    forget_requests(dscc)
    # past the bound: EFBIG, and the close too: nothing sent
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        written = 0
        with pytest.raises(OSError) as e:
            for _ in range(10):  # short writes up to the bound, then the error
                written += os.write(fd, b" " * (1 << 20))
        assert e.value.errno == errno.EFBIG and written <= 1 << 20
    finally:
        with pytest.raises(OSError) as e:
            os.close(fd)
    assert e.value.errno == errno.EFBIG
    # an editor's file is the writer's only: it cannot replace a directory or another entry
    tmp = os.path.join(vdir, "scratch")
    with open(tmp, "w") as f:
        f.write("{}")
    for target in ("snapshots", "action"):
        with pytest.raises(OSError) as e:
            os.rename(tmp, os.path.join(vdir, target))
        assert e.value.errno in (errno.EPERM, errno.EISDIR), target
    with pytest.raises(OSError) as e:
        os.rename(path, tmp + "2")
    assert e.value.errno == errno.EPERM
    os.rename(tmp, tmp + "3")
    assert os.path.exists(tmp + "3") and not os.path.exists(tmp)
    with pytest.raises(FileExistsError):
        open(os.path.join(vdir, "volume.json"), "x")
    os.unlink(tmp + "3")
    # an edit renamed over the object with a partial write: refused as invalid JSON
    with open(tmp, "w") as f:
        f.write('{"name": ')
    with pytest.raises(OSError) as e:
        os.rename(tmp, path)
    assert e.value.errno == errno.EINVAL
    os.unlink(tmp)
    # nowhere else can files be made
    for d in (m.path, m.p("servers"), os.path.dirname(vdir), os.path.join(vdir, "snapshots")):
        with pytest.raises(OSError) as e:
            open(os.path.join(d, "x"), "w")
        assert e.value.errno == errno.EPERM, d
    assert puts(dscc) == []


def test_an_editors_file_edits_only_the_object_beside_it(dscc, dscc_edit):
    m, api, vdir, url = dscc_edit
    coll = os.path.dirname(vdir)
    other = [os.path.join(coll, e) for e in sorted(os.listdir(coll)) if e not in ("new", os.path.basename(vdir))][0]
    forget_requests(dscc)
    tmp = os.path.join(vdir, "edit.tmp")
    with open(os.path.join(vdir, "volume.json")) as f:
        text = f.read()
    with open(tmp, "w") as f:
        f.write(text)
    with pytest.raises(OSError) as e:
        os.rename(tmp, os.path.join(other, "volume.json"))
    assert e.value.errno == errno.EXDEV  # mv falls back to a copy: an in-place edit of that object
    with pytest.raises(OSError) as e:
        os.rename(tmp, os.path.join(other, "edit.tmp"))
    assert e.value.errno == errno.EXDEV
    # a child that inherited the writer's descriptor and closes it sends nothing
    fd = os.open(os.path.join(vdir, "volume.json"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b'{"half": ')
    pid = os.fork()
    if pid == 0:
        os.close(fd)
        os._exit(0)
    os.waitpid(pid, 0)
    vol = json.loads(text)
    vol["userAllocWarning"] = 33
    os.ftruncate(fd, 0)
    os.pwrite(fd, dump(vol).encode(), 0)
    os.close(fd)
    assert [p["body"] for p in puts(dscc)] == [{"userAllocWarning": 33}]
    os.unlink(tmp)


def test_edits_one_after_another_never_overwrite_each_other(dscc, dscc_edit):
    m, api, vdir, url = dscc_edit
    path = os.path.join(vdir, "volume.json")
    vol = read_json(path)
    forget_requests(dscc)
    # two editors' files made from the same reading, renamed over it one after the other
    for name, value in (("A", 20), ("B", 21)):
        with open(os.path.join(vdir, name), "w") as f:
            f.write(dump(dict(vol, userAllocWarning=value)))
    os.rename(os.path.join(vdir, "A"), path)
    with pytest.raises(OSError) as e:
        os.rename(os.path.join(vdir, "B"), path)  # A's task runs, or has changed the field: B would undo it
    assert e.value.errno == errno.EBUSY
    assert [p["body"] for p in puts(dscc)] == [{"userAllocWarning": 20}]
    os.unlink(os.path.join(vdir, "B"))
    # two descriptors of one process: each close sends its own edit
    assert wait_latest(m) == "SUCCEEDED"
    vol = read_json(path)
    forget_requests(dscc)
    a = os.open(path, os.O_WRONLY | os.O_TRUNC)
    b = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.write(a, dump(dict(vol, snapshotAllocWarning=11)).encode())
    os.write(b, dump(vol).encode())
    os.close(a)
    os.close(b)
    assert [p["body"] for p in puts(dscc)] == [{"snapshotAllocWarning": 11}]
    # editors' files are made beside the object, not under a .where view of it
    view = os.path.join(os.path.dirname(vdir), ".where", "name!=zzz", os.path.basename(vdir))
    assert os.stat(view).st_ino == os.stat(vdir).st_ino
    with pytest.raises(OSError) as e:
        open(os.path.join(view, "tmp"), "w")
    assert e.value.errno == errno.EPERM


def test_array_volumes_and_backupdr_templates_edit_too(dscc, bdr, dsfs_mount, tmp_path):
    # DSCC device-type2: NimbleEditVolumeInput
    m = dsfs_mount(dscc, "api=dscc", "allow_edit", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    api = DsccApi(dscc)
    sysobj = api.items("/api/v1/storage-systems/device-type2")[0]
    entry = [e for e in os.listdir(m.p("servers")) if read_json(m.p("servers", e, "system.json"))["id"] == sysobj["id"]][0]
    vols = api.items("/api/v1/storage-systems/device-type2/%s/volumes" % sysobj["id"])
    path = m.p("servers", entry, "volumes", assign_entries(vols)[0], "volume.json")
    vol = read_json(path)
    forget_requests(dscc)
    assert write_file(path, dump(dict(vol, description="tier-1 database", size=vol["size"] + 1024))) == 0
    assert [p["body"] for p in puts(dscc)] == [{"description": "tier-1 database", "size": vol["size"] + 1024}]
    assert wait_latest(m) == "SUCCEEDED"
    got = read_json(path)
    assert (got["description"], got["size"]) == ("tier-1 database", vol["size"] + 1024)
    # Backup and DR: a template's name, by sed -i
    mb = dsfs_mount(bdr, "api=backupdr", "allow_edit", ttl=60,
                    credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    bapi = BdrApi(bdr)
    slts = bapi.items("/slt")
    tpath = mb.p("templates", assign_entries(named(slts, "name"))[0], "template.json")
    forget_requests(bdr)
    subprocess.run(["sed", "-i", 's/"name": "%s"/"name": "%s-renamed"/' % (slts[0]["name"], slts[0]["name"]), tpath],
                   check=True)
    assert [(p["path"], p["body"]) for p in puts(bdr)] == [("/actifio/slt/%s" % slts[0]["id"],
                                                            {"name": slts[0]["name"] + "-renamed"})]
    assert bapi.get("/slt/%s" % slts[0]["id"])["name"] == slts[0]["name"] + "-renamed"
    # the template's entry follows its new name
    assert slts[0]["name"] + "-renamed" in os.listdir(mb.p("templates"))


def posts(server):
    return [r for r in server.sim("GET", "/requests").json()["requests"] if r["method"] == "POST"]


def test_a_number_that_cannot_be_sent_as_written_is_refused(dscc, dsfs_mount, tmp_path):
    """json-c clamps 99999999999999999999 to 18446744073709551615, reads 01 as 1 and NaN as a number:
    an edit or a command carrying a number the server would not get as written sends nothing."""
    m = dsfs_mount(dscc, "api=dscc", "allow_edit", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    api = DsccApi(dscc)
    sysobj = api.items("/api/v1/storage-systems/device-type2")[0]
    entry = [e for e in os.listdir(m.p("servers")) if read_json(m.p("servers", e, "system.json"))["id"] == sysobj["id"]][0]
    vols = api.items("/api/v1/storage-systems/device-type2/%s/volumes" % sysobj["id"])
    vdir = m.p("servers", entry, "volumes", assign_entries(vols)[0])
    path = os.path.join(vdir, "volume.json")
    vol = read_json(path)
    with open(path) as f:
        before = f.read()
    assert '"limit_iops": ' in before
    forget_requests(dscc)
    for bad in ("99999999999999999999", "-99999999999999999999", "18446744073709551616", "1e400", "-1e400",
                "1e-400", "NaN", "Infinity", "01", "1.00000000000000000001", "9007199254740993.0"):
        text = dump(dict(vol, limit_iops=0)).replace('"limit_iops": 0', '"limit_iops": ' + bad)
        assert write_file(path, text) == errno.EINVAL, bad
        assert bad in m.log_text(), bad
    # a command's value too: key=value and JSON alike
    new = os.path.join(os.path.dirname(vdir), "new")
    for line in ("name=big size=99999999999999999999", '{"name": "big", "size": 1e400}'):
        fd = os.open(new, os.O_WRONLY | os.O_TRUNC)
        with pytest.raises(OSError) as e:
            os.write(fd, (line + "\n").encode())
        os.close(fd)
        assert e.value.errno == errno.EINVAL, line
    assert puts(dscc) == [] and posts(dscc) == []
    with open(path) as f:
        assert f.read() == before
    # a number that can be carried goes exactly as written (beyond 2^53: no double on the way)
    write_file(path, dump(dict(vol, limit_iops=0)).replace('"limit_iops": 0', '"limit_iops": 9007199254740993'))
    assert [p["body"] for p in puts(dscc)] == [{"limit_iops": 9007199254740993}]
