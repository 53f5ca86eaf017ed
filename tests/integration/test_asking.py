"""Asking across an estate, through a real mount against the reference server: `.where`
refuses a field no object of the collection has (EINVAL, and the log names the nearest
field) and takes shell patterns, asked of the server as the text every match contains
where its filter can say that and matched here.
"""

import errno
import fnmatch
import os
import re
import time
from urllib.parse import unquote

import pytest

from test_backupdr import TOKEN, Api as BdrApi, credentials as bdr_credentials, named
from test_dscc import Api as DsccApi, dscc_credentials
from test_query import gets_of, server_entry, volumes_of, where_entries
from tree_model import assign_entries


def read(path):
    with open(path) as f:
        return f.read()


# ---- .where: unknown fields --------------------------------------------------------


def test_where_on_a_field_no_object_has_is_einval_naming_the_nearest(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    client = server.login()
    sid = client.get("/server?limit=1000&start=0").json()["servers"][0]["id"]
    s = server_entry(m, sid)
    coll = m.p("servers", s, "volumes")
    vols = volumes_of(client, sid)
    assert vols and all("name" in v for v in vols) and not any("nmae" in v for v in vols)
    for path in (os.path.join(coll, ".where", "nmae=x"),
                 os.path.join(coll, ".where", "volumeType=rw", ".where", "nmae=x"),
                 os.path.join(coll, ".where", "nmae=x", ".where", "volumeType=rw")):
        with pytest.raises(OSError) as e:
            os.listdir(path)
        assert e.value.errno == errno.EINVAL, path
    with pytest.raises(OSError) as e:
        read(os.path.join(coll, ".where", "nmae=x", ".count"))
    assert e.value.errno == errno.EINVAL
    log = m.log_text()
    assert "servers/%s/volumes/.where: no volume has the field nmae; did you mean name?" % s in log, log[-2000:]
    # a nested field: the dotted path is what is known, and what is suggested
    with pytest.raises(OSError) as e:
        os.listdir(os.path.join(coll, ".where", "stats.sise>1"))
    assert e.value.errno == errno.EINVAL
    assert "no volume has the field stats.sise; did you mean stats.size?" in m.log_text()
    # a field far from every field: named, with no suggestion
    with pytest.raises(OSError):
        os.listdir(os.path.join(coll, ".where", "zzzzzzzzzzzz=1"))
    assert re.search(r"no volume has the field zzzzzzzzzzzz$", m.log_text(), re.M)
    # known fields keep working: a value no object has lists nothing; a null field is a field
    assert where_entries(coll, "name=no-such-volume") == []
    assert read(os.path.join(coll, ".where", "name=no-such-volume", ".count")) == "0\n"
    assert where_entries(coll, "mountPath=null") == sorted(
        e for v, e in zip(vols, assign_entries(vols)) if v.get("mountPath") is None)


def test_where_unknown_field_asked_of_dscc_is_refused_after_its_400(server_factory, dsfs_mount, tmp_path):
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--verbose", "--volumes", "4",
                          "--snapshots", "1", "--hosts", "4")
    m = dsfs_mount(dscc, "api=dscc", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    hosts = DsccApi(dscc).items("/api/v1/host-initiators")
    before = len(gets_of(dscc, "host-initiators"))
    with pytest.raises(OSError) as e:
        os.listdir(m.p("hosts", ".where", "nmae=x"))
    assert e.value.errno == errno.EINVAL
    assert "hosts/.where: no host initiator has the field nmae; did you mean name?" in m.log_text()
    deadline = time.monotonic() + 5  # the server logs a request after answering it
    while len(gets_of(dscc, "host-initiators")) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    asked = [unquote(a) for a in gets_of(dscc, "host-initiators")[before:]]
    # the filter was asked (and refused: 400), then the listing told which fields there are
    assert any("filter=nmae eq 'x'" in a for a in asked) and any("filter" not in a for a in asked), asked
    # a value the server finds nothing for is no error, and costs no listing: the filter took the field
    assert hosts and not any(h["name"] == "no-such-host" for h in hosts)
    m2 = dsfs_mount(dscc, "api=dscc", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    before = len(gets_of(dscc, "host-initiators"))
    assert where_entries(m2.p("hosts"), "name=no-such-host") == []
    time.sleep(1)  # the server logs a request after answering it
    asked = [unquote(a) for a in gets_of(dscc, "host-initiators")[before:]]
    assert asked == [a for a in asked if "filter=name eq 'no-such-host'" in a] and asked, asked


# ---- .where: patterns ---------------------------------------------------------------


def test_where_patterns_over_the_listing(server, dsfs_mount):
    m = dsfs_mount(server, ttl=60)
    client = server.login()
    sid = client.get("/server?limit=1000&start=0").json()["servers"][0]["id"]
    coll = m.p("servers", server_entry(m, sid), "volumes")
    vols = volumes_of(client, sid)
    entries = dict(zip((v["id"] for v in vols), assign_entries(vols)))
    name = sorted(v["name"] for v in vols)[0]
    prefix = name[:len(name) - 2]

    def want(pred):
        return sorted(entries[v["id"]] for v in vols if pred(v))

    for pat in (prefix + "*", "*" + name[-3:], prefix + "??", "*[0-4]", "[!v]*"):
        assert where_entries(coll, "name=" + pat) == want(lambda v: fnmatch.fnmatchcase(v["name"], pat)), pat
        assert where_entries(coll, "name!=" + pat) == want(
            lambda v: not fnmatch.fnmatchcase(v["name"], pat)), pat
        assert read(os.path.join(coll, ".where", "name=" + pat, ".count")) == "%d\n" % len(
            want(lambda v: fnmatch.fnmatchcase(v["name"], pat)))
    assert where_entries(coll, "name=" + prefix + "*")  # the pattern matched some
    # a backslash quotes: "\*" is a star, which no name has
    assert where_entries(coll, "name=" + prefix + "\\*") == []
    # a pattern never matches a number; the other operators compare the text as it is
    assert where_entries(coll, "stats.size=1*") == []
    assert where_entries(coll, "name>=" + prefix + "*") == want(lambda v: v["name"] >= prefix + "*")


def test_where_pattern_is_asked_of_dscc_as_contains_and_matched_here(server_factory, dsfs_mount, tmp_path):
    dscc = server_factory("--dialect", "dscc", "--test-controls", "--verbose", "--volumes", "4",
                          "--snapshots", "1", "--hosts", "6")
    m = dsfs_mount(dscc, "api=dscc", ttl=60, credentials=dscc_credentials(tmp_path, dscc))
    hosts = DsccApi(dscc).items("/api/v1/host-initiators")
    names = dict(zip((h["id"] for h in hosts), assign_entries(hosts)))
    name = hosts[0]["name"]
    run = name[:max(3, len(name) // 2)]
    pat = run + "*"
    want = sorted(names[h["id"]] for h in hosts if fnmatch.fnmatchcase(h["name"], pat))
    # a middle pattern: what the server has containing the run, but not matching, is left out
    mid = "*" + name[1:4] + "*" + name[-1]
    want_mid = sorted(names[h["id"]] for h in hosts if fnmatch.fnmatchcase(h["name"], mid))
    before = len(gets_of(dscc, "host-initiators"))
    assert where_entries(m.p("hosts"), "name=" + pat) == want and want
    assert where_entries(m.p("hosts"), "name=" + mid) == want_mid and want_mid
    deadline = time.monotonic() + 5
    while len(gets_of(dscc, "host-initiators")) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    asked = [unquote(a) for a in gets_of(dscc, "host-initiators")[before:]]
    assert any("filter='%s' in name" % run in a for a in asked), asked
    assert any("filter='%s' in name" % name[1:4] in a for a in asked), asked
    assert all("filter=" in a for a in asked), asked  # never the whole list


def test_where_pattern_is_asked_of_backupdr_as_contains(server_factory, dsfs_mount, tmp_path):
    bdr = server_factory("--dialect", "backupdr", "--test-controls", "--verbose", "--servers", "1",
                         "--volumes", "3", "--snapshots", "1", "--hosts", "4")
    m = dsfs_mount(bdr, "api=backupdr", ttl=60, credentials=bdr_credentials(tmp_path, "token=%s\n" % TOKEN))
    hosts = BdrApi(bdr).items("/host")
    entries = dict(zip((h["id"] for h in hosts), assign_entries(named(hosts, "name"))))
    name = hosts[0]["name"]
    pat = name[:4] + "*"
    want = sorted(entries[h["id"]] for h in hosts if fnmatch.fnmatchcase(h["name"], pat))
    before = len(gets_of(bdr, "/host"))
    assert where_entries(m.p("hosts"), "name=" + pat) == want and want
    deadline = time.monotonic() + 5
    while len(gets_of(bdr, "/host")) <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    asked = [unquote(a) for a in gets_of(bdr, "/host")[before:]]
    assert any("filter=name:=|%s" % name[:4] in a for a in asked), asked
