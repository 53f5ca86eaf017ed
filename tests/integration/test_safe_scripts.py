"""Scripts cannot do what nobody meant, through a real mount against the
reference server of each dialect (docs/control.md): the verbs that destroy
or overwrite data (restore, expire, condense, ...) send nothing without -o
allow_delete and say which option they need; on a -o dry_run mount every
control file, mkdir, rmdir and edit answers with the request it would send
(its result and the log) while the server sees no request that changes
anything; a JSON object written over several lines (as jq prints it, as
docs/cloudsync.md's example writes it) is one command; and a command
refused at close(), whose error the shell ignores, is still told by the
control file's result and the log.
"""

import errno
import json
import os
import re
import subprocess

import pytest

from conftest import REPO, entries, entry_name, list_all, reset_stats, sim_stats
from test_actions import Estate, result, write
from test_backupdr import Api as BdrApi, app_dir, bdr, mount_bdr, named  # noqa: F401
from test_cloudsync import Api as CsApi, cs, mount_cs  # noqa: F401
from test_dscc import Api as DsccApi, dscc, mount_dscc  # noqa: F401
from test_edit import dump, read_json, write_file
from test_greenlake import BR, DS, VZ, Api as GlApi, gl, mount_gl  # noqa: F401
from tree_model import assign_entries

# Requests that change nothing of the estate: reads, and logging in and out (a dry run logs in as usual).
READS = ("GET", "HEAD", "OPTIONS")
SESSION = ("/session", "/session/current", "/token", "/oauth/token", "/oauth2/token", "/token.oauth2")


def changes(server):
    """The requests the server counted since its stats were reset that could change something."""
    out = {}
    for key, n in sim_stats(server).items():
        method, _, path = key.partition(" ")
        if key == "total" or method in READS or path.endswith(SESSION):
            continue
        out[key] = n
    return out


def logged(server):
    """What /_sim/requests kept (every request but a read) apart from logging in and out."""
    return [r for r in server.sim("GET", "/requests").json()["requests"] if not r["path"].endswith(SESSION)]


def bash(script):
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)


def rel(m, path):
    """path as the daemon's log names it: from the mount's root, with its leading slash."""
    return "/" + os.path.relpath(path, m.path)


def waited(m, tasks="tasks"):
    with open(m.p(tasks, "latest", "wait")) as f:
        return f.read().strip().lower()


# ---- verbs that destroy or overwrite data ----------------------------------------------------


def test_expire_and_restore_send_nothing_without_allow_delete(bdr, mount_bdr):
    """The issue's own case: `echo expire > .../action` deleted a backup image with no option asked for."""
    m = mount_bdr(bdr)
    api = BdrApi(bdr)
    app, adir = app_dir(m, api)
    backups = api.items("/backup?filter=appid:%%3D%s" % app["id"])
    names = assign_entries(named(backups, "backupname"))
    i = [n for n, x in enumerate(backups) if not x.get("ismounted")][0]
    b, action = backups[i], os.path.join(adir, "backups", names[i], "action")
    bdr.sim("DELETE", "/requests")
    reset_stats(bdr)
    for verb in ("expire", "restore", "restore label=again"):
        assert write(action, verb + "\n") == errno.EPERM, verb
        res = result(action)
        assert res["command"] == verb
        assert "allow_delete" in res["error"] and "status" not in res and "task" not in res, res
    assert "'expire' destroys or overwrites data" in m.log_text()
    assert "-o allow_delete" in m.log_text()
    assert logged(bdr) == [] and changes(bdr) == {}
    assert api.get("/backup/" + b["id"])["id"] == b["id"]  # still there
    # a typo is still a typo: the grammar speaks first
    assert write(action, "expire force=true\n") == errno.EINVAL
    # a verb that destroys nothing is not held back
    assert write(action, "unmount\n") != errno.EPERM

    m2 = mount_bdr(bdr, "allow_delete")
    bdr.sim("DELETE", "/requests")
    action2 = m2.p(os.path.relpath(action, m.path))
    assert write(action2, "expire\n") == 0
    assert waited(m2, "jobs") == "succeeded"
    sent = [r for r in logged(bdr) if r["method"] == "POST"]
    assert [r["path"] for r in sent] == ["/actifio/backup/%s/expire" % b["id"]]
    assert b["id"] not in {x["id"] for x in api.items("/backup?filter=appid:%%3D%s" % app["id"])}


def test_storage_plugin_restore_and_condense_need_allow_delete(server, dsfs_mount):
    e = Estate(server, dsfs_mount(server, ttl=60))
    vol, target = e.volume(0), e.volume(3)
    snap = list_all(e.c, "/server/%s/volume/%s/snapshot" % (e.sid, vol["id"]), "snapshots")[0]
    action = os.path.join(e.dir_of("volumes", vol), "action")
    cg = e.objs("consistencygroup", "consistencyGroups")[0]
    reset_stats(server)
    for path, line in ((action, "restore snapshotId=%s" % snap["id"]),
                       (action, "restore-to-alternate sourceSnapshotId=%s targetVolumeId=%s"
                        % (snap["id"], target["id"])),
                       (os.path.join(e.dir_of("consistencygroups", cg), "action"), "condense numberOfInstances=0")):
        assert write(path, line + "\n") == errno.EPERM, line
        assert "it needs the mount option allow_delete (-o allow_delete)" in result(path)["error"]
    assert changes(server) == {}
    assert e.vol_api(target["id"])["restoredFromSnapshotId"] != snap["id"]
    # restore-to-new makes a new volume: nothing is lost, so no option is asked for
    assert write(action, "restore-to-new sourceSnapshotId=%s targetVolumeName=fresh-safe\n" % snap["id"]) == 0
    assert list(changes(server)) == ["POST /server/{sid}/volume/{vid}?action=restore-to-new"]

    e2 = Estate(server, dsfs_mount(server, "allow_delete", ttl=60))
    assert write(os.path.join(e2.dir_of("volumes", vol), "action"), "restore snapshotId=%s\n" % snap["id"]) == 0
    assert waited(e2.m) == "succeeded"
    assert e2.vol_api(vol["id"])["restoredFromSnapshotId"] == snap["id"]


def test_dscc_restore_needs_allow_delete(dscc, mount_dscc):
    m = mount_dscc(dscc)
    vdir, snap = dt2_volume(m)
    dscc.sim("DELETE", "/requests")
    assert write(os.path.join(vdir, "action"), "restore base_snap_id=%s\n" % snap) == errno.EPERM
    assert "allow_delete" in result(os.path.join(vdir, "action"))["error"]
    assert logged(dscc) == []


def dt2_volume(m):
    """A device-type2 (Nimble) volume's directory in the mount and one of its snapshots' entries."""
    for srv in entries(m.p("servers")):
        if len(read_json(m.p("servers", srv, "system.json"))["id"]) == 42:  # device-type2 ids: 42 hex digits
            vols = m.p("servers", srv, "volumes")
            vdir = os.path.join(vols, [v for v in entries(vols) if v != "new"][0])
            return vdir, [s for s in entries(os.path.join(vdir, "snapshots")) if s != "new"][0]
    raise AssertionError("no device-type2 system")


# ---- dry runs ---------------------------------------------------------------------------------

DRY = ("dry_run", "allow_delete", "allow_edit")


def answered(m, server, path, line, method, url_part, body=None):
    """Writes line to control file path on dry-run mount m: it succeeds and its result is the request."""
    assert write(path, line + "\n") == 0, line
    res = result(path)
    req = res["dry_run"]
    assert res["command"] == line and "status" not in res and "task" not in res, res
    assert sorted(req) == ["body", "method", "url"], req  # no header: the session's are secrets
    assert req["method"] == method and req["url"].startswith(server.url + "/") and url_part in req["url"], req
    if body is not None:
        assert req["body"] == body, req
    assert "write %s: dry run: would send %s %s" % (rel(m, path), method, req["url"]) in m.log_text()
    return req


def storageplugin_dry(server, m):
    e = Estate(server, m)
    vol = e.volume(0)
    vdir = e.dir_of("volumes", vol)
    snaps = list_all(e.c, "/server/%s/volume/%s/snapshot" % (e.sid, vol["id"]), "snapshots")
    snap = snaps[0]
    sdir = os.path.join(vdir, "snapshots", entry_name(snap["name"], snap["id"]))
    lun, host = e.objs("lun", "luns")[0], e.objs("host", "hosts")[0]
    group = e.objs("hostgroup", "groups")[0]
    cg = e.objs("consistencygroup", "consistencyGroups")[0]
    lun_entry = entry_name(lun["name"], lun["id"])
    reset_stats(server)
    answered(m, server, os.path.join(vdir, "snapshots", "new"), "snap-dry", "POST",
             "/server/%s/volume/%s/snapshot" % (e.sid, vol["id"]), {"name": "snap-dry"})
    req = answered(m, server, os.path.join(vdir, "action"), "clone name=c-dry snapshot.id=%s"
                   % entry_name(snap["name"], snap["id"]), "POST", "?action=clone",
                   {"name": "c-dry", "snapshot": {"id": snap["id"]}})  # the entry name resolved to the id
    assert req["url"] == "%s/server/%s/volume/%s?action=clone" % (server.url, e.sid, vol["id"])
    answered(m, server, os.path.join(vdir, "action"), "restore snapshotId=%s" % snap["id"], "POST",
             "?action=restore", {"snapshotId": snap["id"]})
    answered(m, server, os.path.join(sdir, "action"), "get-Progress", "POST", "?action=get-Progress")
    answered(m, server, os.path.join(e.dir_of("luns", lun), "action"), "online", "POST", "?action=online")
    answered(m, server, os.path.join(e.sdir, "hosts", "new"), "name=h-dry iqns=iqn.1998-01.com.x:dry", "POST",
             "/host", {"name": "h-dry", "iqns": ["iqn.1998-01.com.x:dry"]})
    answered(m, server, os.path.join(e.dir_of("hosts", host), "action"), "map lunId=%s" % lun_entry, "POST",
             "?action=map", {"lunId": lun["id"]})
    answered(m, server, os.path.join(e.dir_of("hostgroups", group), "action"), "map lunId=%s" % lun["id"],
             "POST", "?action=map")
    answered(m, server, os.path.join(e.dir_of("consistencygroups", cg), "action"), "take-snapshot prefix=dry",
             "POST", "?action=take-snapshot", {"prefix": "dry"})
    return [(os.path.join(vdir, "snapshots"), sdir)], []


def dscc_dry(server, m):
    api = DsccApi(server)
    dt1 = [s for s in entries(m.p("servers")) if len(read_json(m.p("servers", s, "system.json"))["id"]) != 42][0]
    vols = m.p("servers", dt1, "volumes")
    vdir = os.path.join(vols, [v for v in entries(vols) if v != "new"][0])
    vol = read_json(os.path.join(vdir, "volume.json"))
    group = entries(m.p("hostgroups"))[0]
    gid = read_json(m.p("hostgroups", group, "hostgroup.json"))["id"]
    dt2dir, dt2snap = dt2_volume(m)
    snap = [s for s in entries(os.path.join(vdir, "snapshots")) if s != "new"][0]
    reset_stats(server)
    server.sim("DELETE", "/requests")
    answered(m, server, os.path.join(vdir, "snapshots", "new"), "s-dry", "POST", "/volumes/%s/snapshots" % vol["id"],
             {"customName": "s-dry", "namePattern": "CUSTOM"})
    answered(m, server, os.path.join(vdir, "action"), "clone destinationVolume=cl-dry", "POST", "/clone",
             {"destinationVolume": "cl-dry"})
    answered(m, server, os.path.join(vdir, "action"), "export hostGroupIds=%s" % group, "POST", "/export",
             {"hostGroupIds": [gid]})
    answered(m, server, os.path.join(vols, "new"), "name=v-dry userCpg=SSD_r6 sizeMib=2048", "POST",
             "/device-type1/", {"name": "v-dry", "userCpg": "SSD_r6", "sizeMib": 2048})
    answered(m, server, os.path.join(dt2dir, "action"), "restore base_snap_id=%s" % dt2snap, "POST",
             "/actions/restore")
    answered(m, server, m.p("hosts", "new"), "name=h-dry operatingSystem=Linux", "POST", "/api/v1/host-initiators")
    # edits: in place and by an editor's rename; the file goes on showing the server's object
    path = os.path.join(vdir, "volume.json")
    url = "/api/v1/storage-systems/device-type1/%s/volumes/%s" % (read_json(m.p("servers", dt1, "system.json"))["id"],
                                                                   vol["id"])
    assert write_file(path, dump(dict(vol, sizeMiB=vol["sizeMiB"] + 1024))) == 0
    assert "edit %s: dry run: would send PUT %s%s {\"sizeMib\":%d}" % (
        rel(m, path), server.url, url, vol["sizeMiB"] + 1024) in m.log_text()
    assert read_json(path)["sizeMiB"] == vol["sizeMiB"] == api.get(url)["sizeMiB"]
    was = vol["dataReduction"]
    r = subprocess.run(["sed", "-i", 's/"dataReduction": "%s"/"dataReduction": "%s"/'
                        % (was, "OFF" if was == "ON" else "ON"), path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert m.log_text().count("edit %s: dry run: would send PUT" % rel(m, path)) == 2
    assert read_json(path)["dataReduction"] == was == api.get(url)["dataReduction"]
    # rewritten over its start and truncated to the new length, as an editor saving in place does
    shorter = json.dumps(dict(read_json(path), sizeMiB=vol["sizeMiB"] + 2048)).encode()
    fd = os.open(path, os.O_WRONLY)
    assert os.write(fd, shorter) == len(shorter)
    os.ftruncate(fd, len(shorter))
    os.close(fd)
    assert "would send PUT %s%s {\"sizeMib\":%d}" % (server.url, url, vol["sizeMiB"] + 2048) in m.log_text()
    assert read_json(path)["sizeMiB"] == vol["sizeMiB"] == api.get(url)["sizeMiB"]
    return [(os.path.join(vdir, "snapshots"), os.path.join(vdir, "snapshots", snap))], [path]


def backupdr_dry(server, m):
    api = BdrApi(server)
    app, adir = app_dir(m, api)
    policy = api.items("/slt")[0]["policies"][0]["id"]
    backups = api.items("/backup?filter=appid:%%3D%s" % app["id"])
    bdir = os.path.join(adir, "backups", assign_entries(named(backups, "backupname"))[0])
    hosts = api.items("/host")
    hname = assign_entries(named(hosts, "name"))[0]
    reset_stats(server)
    server.sim("DELETE", "/requests")
    answered(m, server, os.path.join(adir, "backups", "new"), "label=dry policy.id=%s" % policy, "POST",
             "/application/%s/backup" % app["id"], {"label": "dry", "policy": {"id": str(policy)}})
    answered(m, server, os.path.join(bdir, "action"), "mount host.id=%s" % hname, "POST",
             "/backup/%s/mount" % backups[0]["id"], {"host": {"id": hosts[0]["id"]}})
    for verb in ("expire", "restore", "unmount"):
        answered(m, server, os.path.join(bdir, "action"), verb, "POST", "/backup/%s/%s" % (backups[0]["id"], verb))
    path = m.p("hosts", hname, "host.json")
    host = read_json(path)
    assert write_file(path, dump(dict(host, description="dry rack"))) == 0
    assert "edit /hosts/%s/host.json: dry run: would send PUT %s/host/%s {\"description\":\"dry rack\"}" % (
        hname, server.url, host["id"]) in m.log_text()
    assert read_json(path)["description"] == host["description"] == api.get("/host/" + host["id"])["description"]
    return [], [path]


def cloudsync_dry(server, m):
    api = CsApi(server)
    rid = api.get("/relationships-v2")[0]["relationshipId"]
    rdir = m.p("relationships", rid)
    reset_stats(server)
    server.sim("DELETE", "/requests")
    for verb in ("sync", "abort"):
        answered(m, server, os.path.join(rdir, "action"), verb, "PUT", "/relationships/%s/%s" % (rid, verb))
    broker = api.get("/data-brokers")[0]
    answered(m, server, m.p("relationships", "new"),
             '{"source": {"protocol": "nfs", "nfs": {"host": "h", "export": "/e"}}, '
             '"target": {"protocol": "s3", "s3": {"bucket": "b"}}, "dataBroker": "%s"}' % broker["name"],
             "POST", "/relationships-v2")
    assert result(m.p("relationships", "new"))["dry_run"]["body"]["dataBroker"] == broker["id"]
    # relationships/new takes more than a name: mkdir cannot create one, so only rmdir is tried
    os.rmdir(rdir)
    assert os.path.isdir(rdir)
    assert "rmdir %s: dry run: would send DELETE %s/relationships/%s" % (rel(m, rdir), server.url, rid) \
        in m.log_text()
    return [], []


def greenlake_dry(server, m):
    api = GlApi(server)
    vms = api.items(VZ + "/virtual-machines")
    vm = next(v for v in vms if not v["name"].startswith("fail-"))
    vdir = m.p("virtualization", "virtual-machines", assign_entries(vms)[vms.index(vm)])
    backups = api.items("%s/virtual-machines/%s/backups" % (BR, vm["id"]))
    bname = assign_entries(backups)[0]
    da = next(o for o in api.items(DS + "/dual-auth-operations") if o["state"] == "PENDING")
    issue = api.items(DS + "/issues")[0]
    reset_stats(server)
    server.sim("DELETE", "/requests")
    answered(m, server, os.path.join(vdir, "action"), "power-off", "POST",
             "%s/virtual-machines/%s/power-off" % (VZ, vm["id"]))
    answered(m, server, os.path.join(vdir, "action"), "restore backupId=%s" % bname, "POST",
             "%s/virtual-machines/%s/restore" % (BR, vm["id"]), {"backupId": backups[0]["id"], "restoreType": "PARENT"})
    answered(m, server, m.p("data-services", "dual-auth-operations", da["id"], "action"), "approve", "PATCH",
             "%s/dual-auth-operations/%s" % (DS, da["id"]), {"state": "APPROVED"})
    bdir = os.path.join(vdir, "backups", bname)
    os.rmdir(bdir)
    assert os.path.isdir(bdir)
    assert "rmdir %s: dry run: would send DELETE %s%s/virtual-machines/%s/backups/%s" % (
        rel(m, bdir), server.url, BR, vm["id"], backups[0]["id"]) in m.log_text()
    path = m.p("issues", issue["id"], "issue.json")
    assert write_file(path, dump(dict(read_json(path), snoozedFor="DAY"))) == 0
    assert "edit %s: dry run: would send PATCH %s%s/issues/%s {\"snoozedFor\":\"DAY\",\"generation\":%d}" % (
        rel(m, path), server.url, DS, issue["id"], issue["generation"]) in m.log_text()
    assert read_json(path)["snoozedFor"] == issue["snoozedFor"] == api.get("%s/issues/%s" % (DS, issue["id"]))[
        "snoozedFor"]
    return [], [path]


# Per dialect: its reference server's fixture, the fixture that mounts it, and what to try on it.
DIALECTS = {"storageplugin": ("server", "dsfs_mount", storageplugin_dry, "tasks"),
            "dscc": ("dscc", "mount_dscc", dscc_dry, "tasks"),
            "backupdr": ("bdr", "mount_bdr", backupdr_dry, "jobs"),
            "cloudsync": ("cs", "mount_cs", cloudsync_dry, "tasks"),
            "greenlake": ("gl", "mount_gl", greenlake_dry, "tasks")}


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_a_dry_run_answers_every_change_and_sends_none(dialect, request):
    server_fixture, mount_fixture, run, tasks = DIALECTS[dialect]
    srv = request.getfixturevalue(server_fixture)
    m = request.getfixturevalue(mount_fixture)(srv, *DRY, ttl=60)
    dirs, edited = run(srv, m)
    for coll, victim in dirs:
        # mkdir makes nothing, and shows its request in the collection's `new`
        os.mkdir(os.path.join(coll, "mk-dry"))
        assert "mk-dry" not in os.listdir(coll) and not os.path.exists(os.path.join(coll, "mk-dry"))
        made = result(os.path.join(coll, "new"))
        assert made["command"] == "mk-dry" and made["dry_run"]["method"] == "POST", made
        assert "mkdir %s: dry run: would send POST %s/" % (rel(m, os.path.join(coll, "mk-dry")), srv.url) \
            in m.log_text()
        # rmdir (allow_delete) deletes nothing: the directory stays
        os.rmdir(victim)
        assert os.path.isdir(victim) and os.path.basename(victim) in os.listdir(coll)
        assert "rmdir %s: dry run: would send DELETE %s/" % (rel(m, victim), srv.url) in m.log_text()
    assert changes(srv) == {}, changes(srv)
    if dialect != "storageplugin":  # its server keeps no request log: the stats above say it
        assert logged(srv) == [], logged(srv)
    assert not os.path.lexists(m.p(tasks, "latest"))  # no task was started
    # a dry run's checks are the real ones: a refusal is still a refusal
    for path in edited:
        with pytest.raises(OSError) as e:
            with open(path, "w") as f:
                f.write("{not json\n")
        assert e.value.errno == errno.EINVAL


def test_a_secret_in_a_dry_run_body_is_hidden(cs, mount_cs):
    """A relationship body may carry a share's password: the dry run shows the request, never the secret."""
    m = mount_cs(cs, *DRY)
    broker = CsApi(cs).get("/data-brokers")[0]
    line = ('{"source": {"protocol": "cifs", "cifs": {"host": "h", "share": "s", "password": "Sw0rdf1sh"}}, '
            '"target": {"protocol": "s3", "s3": {"bucket": "b"}}, "dataBroker": "%s"}' % broker["id"])
    assert write(m.p("relationships", "new"), line + "\n") == 0
    assert result(m.p("relationships", "new"))["dry_run"]["body"]["source"]["cifs"]["password"] == "(hidden)"
    with open(m.p("relationships", "new")) as f:
        assert "Sw0rdf1sh" not in f.read()  # nor in the command as the result shows it
    assert "Sw0rdf1sh" not in m.log_text()
    assert logged(cs) == []


def test_a_secret_in_a_command_is_sent_but_never_shown(cs, mount_cs):
    """The result of a control file is readable by others than its writer: the command it shows
    hides what a field named as a secret holds, as written in JSON or as key=value, while the
    request carries the value itself."""
    m = mount_cs(cs)
    broker = CsApi(cs).get("/data-brokers")[0]
    line = ('{"source": {"protocol": "cifs", "cifs": {"host": "h", "share": "s", "password": "Sw0rdf1sh"}}, '
            '"target": {"protocol": "s3", "s3": {"bucket": "b", "secretKey": "K3y"}}, "dataBroker": "%s"}'
            % broker["id"])
    assert write(m.p("relationships", "new"), line + "\n") == 0
    with open(m.p("relationships", "new")) as f:
        text = f.read()
    shown = json.loads(text)
    assert "Sw0rdf1sh" not in text and "K3y" not in text, text
    command = json.loads(shown["command"])
    assert command["source"]["cifs"] == {"host": "h", "share": "s", "password": "(hidden)"}, command
    assert command["target"]["s3"] == {"bucket": "b", "secretKey": "(hidden)"}, command
    sent = [r for r in logged(cs) if r["method"] == "POST"]
    assert len(sent) == 1 and sent[0]["body"]["source"]["cifs"]["password"] == "Sw0rdf1sh", sent
    # key=value: the pair's value is hidden, the JSON object a pair holds is searched too
    line = ('source={"protocol":"cifs","cifs":{"host":"h","share":"s","password":"Sw0rdf1sh"}} '
            'target={"protocol":"s3","s3":{"bucket":"b"}} dataBroker=%s' % broker["id"])
    assert write(m.p("relationships", "new"), line + "\n") == 0
    with open(m.p("relationships", "new")) as f:
        text = f.read()
    assert "Sw0rdf1sh" not in text and '\\"password\\":\\"(hidden)\\"' in text, text
    assert "Sw0rdf1sh" not in m.log_text()


# ---- JSON over several lines -------------------------------------------------------------------


def test_json_over_several_lines_is_one_command(server, dsfs_mount):
    e = Estate(server, dsfs_mount(server, ttl=60))
    vol = e.volume(1)
    vdir = e.dir_of("volumes", vol)
    new = os.path.join(vdir, "snapshots", "new")
    reset_stats(server)
    # as jq prints it, and as split writes
    r = bash("jq -n '{name: \"ml-snap\", replicate: false, isAutoDelete: true}' > '%s'" % new)
    assert r.returncode == 0, r.stderr
    fd = os.open(new, os.O_WRONLY | os.O_TRUNC)
    for piece in ('{\n  "name": "ml-', 'split",\n', '  "replicate": ', 'false\n', '}\n'):
        os.write(fd, piece.encode())
    os.close(fd)
    assert changes(server) == {"POST /server/{sid}/volume/{vid}/snapshot": 2}
    names = [s["name"] for s in list_all(e.c, "/server/%s/volume/%s/snapshot" % (e.sid, vol["id"]), "snapshots")]
    assert "ml-snap" in names and "ml-split" in names
    # an action's JSON too, with braces and quotes inside its strings
    action = os.path.join(vdir, "action")
    assert write(action, 'clone {\n  "name": "ml-{clone}\\"",\n  "instantSplit": false\n}\n') == 0
    assert result(action)["status"] == 202
    # a line-per-command stream keeps working, a bad line refused alone
    reset_stats(server)
    assert write(new, "ml-a\nml-b\n") == 0
    assert changes(server) == {"POST /server/{sid}/volume/{vid}/snapshot": 2}
    # an object still open at close: EINVAL, named, nothing sent
    reset_stats(server)
    fd = os.open(new, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b'{\n  "name": "never",\n')
    with pytest.raises(OSError) as err:
        os.close(fd)
    assert err.value.errno == errno.EINVAL
    assert "the JSON object is not closed" in result(new)["error"]
    assert "not closed" in e.m.log_text()
    assert changes(server) == {}


def test_docs_cloudsync_relationship_example_works_as_written(cs, mount_cs):
    """docs/cloudsync.md's `relationships/new` example, a JSON object over three lines in one echo."""
    with open(os.path.join(REPO, "docs", "cloudsync.md")) as f:
        doc = f.read()
    block = re.search(r"^(echo '\{\"source\".*?relationships/new)$", doc, re.M | re.S)
    assert block, "the example is in docs/cloudsync.md"
    command = block.group(1)
    m = mount_cs(cs)
    api = CsApi(cs)
    before = {r["relationshipId"] for r in api.get("/relationships-v2")}
    cs.sim("DELETE", "/requests")
    r = bash(command.replace("/mnt/sync", m.path) + " && echo made")
    assert r.returncode == 0 and r.stdout == "made\n", r.stderr
    sent = logged(cs)
    assert [(x["method"], x["path"]) for x in sent] == [("POST", "/api/relationships-v2")], sent
    broker = [b for b in api.get("/data-brokers") if b["name"] == "aws-broker-1"][0]
    assert sent[0]["body"]["dataBroker"] == broker["id"]  # named by its entry, sent as its id
    made = [x for x in api.get("/relationships-v2") if x["relationshipId"] not in before]
    assert len(made) == 1 and made[0]["source"]["nfs"]["path"] == "/db"
    assert made[0]["relationshipId"] in os.listdir(m.p("relationships"))


# ---- a refused command is never silent -------------------------------------------------------------


def test_a_command_refused_at_close_is_told_by_its_result_and_the_log(server, dsfs_mount):
    e = Estate(server, dsfs_mount(server, ttl=60))
    vdir = e.dir_of("volumes", e.volume(2))
    action, new = os.path.join(vdir, "action"), os.path.join(vdir, "snapshots", "new")
    reset_stats(server)
    # bash ignores close()'s error: the status is 0, but the result and the log say it
    r = bash("echo -n 'clon name=x' > '%s'; echo $?" % action)
    assert r.stdout == "0\n", r
    res = result(action)
    assert res["command"] == "clon name=x" and "unknown verb 'clon'" in res["error"], res
    assert "ran at close()" in res["note"] and "newline" in res["note"]
    assert "close %s: the command had no newline" % rel(e.m, action) in e.m.log_text()
    assert changes(server) == {}
    # the server's refusal of a name taken: sent once, refused, told
    assert write(new, "dup-name\n") == 0
    reset_stats(server)
    r = bash("printf 'dup-name' > '%s'; echo $?" % new)
    assert r.stdout == "0\n", r
    res = result(new)
    assert res["status"] == 409 and res["error"] and "ran at close()" in res["note"], res
    assert changes(server) == {"POST /server/{sid}/volume/{vid}/snapshot": 1}
    assert "File exists" in e.m.log_text()
    # the idioms docs/control.md shows: a newline, and || or a read of the result
    r = bash("echo 'clon name=x' > '%s' || echo refused" % action)
    assert r.stdout == "refused\n" and "Invalid argument" in r.stderr, r
    r = bash("printf 'dup-name\\n' > '%s' || exit 7" % new)
    assert r.returncode == 7 and "File exists" in r.stderr, r
    r = bash("jq -e '.error == null' '%s' >/dev/null || echo 'the last command failed'" % new)
    assert r.stdout == "the last command failed\n", r
    assert "note" not in result(new)  # it had its newline
