"""Mistakes named at mount time.

A URL that is not the API's root (DSCC's /api/v1 given twice), an API the
URL does not name, a credentials file written `key = value` or with quotes,
an estate file's typo: each is said in one line at mount time, naming the
URL and what answered, before anything is mounted, instead of a tree whose
every directory fails. Every dialect asks its API one cheap authenticated
question (a list's smallest page) right after logging in: the probe.
"""

import os

import pytest

from conftest import MountFailed, entries, sim_stats
from test_dialects import DIALECTS, cred_file
from test_dscc import dscc_credentials
from test_estate import write_estate
from test_mounting import run_refused

# The first GET each dialect's mount sends (the probe, or for Cloud Sync the login's own list
# of accounts, which proves the same), as the reference server counts and faults it.
FIRST_GET = {
    "storageplugin": ("/server", "GET /server"),
    "dscc": ("/api/v1/tasks", "GET /api/v1/tasks"),
    "backupdr": ("/actifio/host", "GET /actifio/host"),
    "cloudsync": ("/api/accounts", "GET /api/accounts"),
    "greenlake": ("/data-services/v1beta1/async-operations", "GET /data-services/v1beta1/async-operations"),
}


def gets(server):
    return sum(v for k, v in sim_stats(server).items() if k.startswith("GET "))


def lines(text):
    return text.strip().splitlines()


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request, server_factory, tmp_path):
    d = dict(DIALECTS[request.param], name=request.param)
    d["server"] = server_factory(*d["args"], "--test-controls", "--servers", "1", "--volumes", "2",
                                 "--snapshots", "1", "--hosts", "1")
    d["cred"] = cred_file(tmp_path, d["cred"](d["server"]))
    return d


def test_a_dscc_url_with_api_v1_fails_naming_the_url_and_what_answered(server_factory, tmp_path):
    """`http://host/api/v1` instead of the console's root mounted, and every directory was ENOENT
    (requests to /api/v1/api/v1/...). Now the probe's 404 ends the mount, in one line naming the
    URL asked, the status, the server's message and the fix; the server saw exactly one probe."""
    server = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "2")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    url = server.root + "/api/v1"
    r = run_refused(["-o", "api=dscc,credentials=" + dscc_credentials(tmp_path, server), url, str(mnt)], mnt)
    assert r.returncode != 0 and not r.mounted
    out = lines(r.stderr)
    assert len(out) == 1, r.stderr
    asked = url + "/api/v1/tasks?limit=1"
    assert out[0].startswith("dsfs: %s does not answer as the dscc API: GET %s: HTTP 404: " % (url, asked)), out[0]
    assert "dsfs adds /api/v1" in out[0] and server.root in out[0], out[0]
    st = sim_stats(server)
    assert st.get("POST /oauth2/token") == 1, st
    assert gets(server) == 1 and st.get("GET <unknown>") == 1, st  # one probe, at the wrong place
    # what the server answers there is what the line says
    answer = server.client().request("GET", "/api/v1/api/v1/tasks?limit=1", session=False)
    assert answer.status == 404 and answer.json()["error"] in out[0], (answer.body, out[0])


def test_every_dialect_asks_one_probe_at_mount(dialect, dsfs_mount):
    """Logging in and one list's smallest page: the mount costs one GET, whatever the dialect."""
    m = dsfs_mount(dialect["server"], *dialect["opts"], credentials=dialect["cred"])
    path, key = FIRST_GET[dialect["name"]]
    st = sim_stats(dialect["server"])
    assert st.get(key) == 1 and gets(dialect["server"]) == 1, st
    assert entries(m.path)


def test_a_probe_the_server_refuses_fails_the_mount_in_one_line(dialect, tmp_path):
    """Whatever answers the first question (here a 403), the mount ends with one line naming the
    URL, the status and the server's message, and nothing is mounted."""
    server = dialect["server"]
    path, key = FIRST_GET[dialect["name"]]
    fault = server.sim("POST", "/faults", {"method": "GET", "path": path, "status": 403, "count": 1}).json()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    opts = sum([["-o", o] for o in dialect["opts"]], [])
    r = run_refused(opts + ["-o", "credentials=" + dialect["cred"], server.url, str(mnt)], mnt)
    assert r.returncode != 0 and not r.mounted
    out = lines(r.stderr)
    assert len(out) == 1, r.stderr
    assert server.url in out[0] and "HTTP 403" in out[0] and "injected fault %s" % fault["id"] in out[0], out[0]
    assert sim_stats(server).get(key) == 1  # a 403 is an answer: asked once


def test_a_url_that_names_no_api_is_said_and_storageplugin_assumed(server_factory, tmp_path, dsfs_mount):
    """The DSCC reference server listens at its root, which names no API: dsfs says so, assumes the
    storage plugin, and the login's failure comes with the storage plugin's URL shape."""
    server = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "2")
    cred = dscc_credentials(tmp_path, server)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run_refused(["-o", "credentials=" + write_sp_credentials(tmp_path), server.url, str(mnt)], mnt)
    assert r.returncode != 0 and not r.mounted
    out = lines(r.stderr)
    assert out[0] == ("dsfs: warning: cannot tell the API of %s from its URL; assumed storageplugin; give "
                      "-o api=NAME (storageplugin, dscc, backupdr, cloudsync, greenlake)" % server.url), out
    assert len(out) == 2 and "cannot log in to %s: POST /session: HTTP 404" % server.url in out[1], out
    assert "ends in /storageplugin/api" in out[1], out[1]
    assert sim_stats(server).get("POST <unknown>") == 1
    m = dsfs_mount(server, "api=dscc", credentials=cred)  # said which: no warning, mounted
    assert "cannot tell" not in m.log_text()
    assert entries(m.p("servers"))


def write_sp_credentials(tmp_path, text="username=admin\npassword=admin\n"):
    return cred_file(tmp_path, text)


def test_api_storage_plugin_is_the_reference_servers_spelling(server, dsfs_mount):
    m = dsfs_mount(server, "api=storage-plugin")
    names = {s["name"] for s in server.login().get("/server?limit=1000&start=0").json()["servers"]}
    assert names and names <= set(entries(m.p("servers")))
    assert m.log_text().strip() == ""  # neither refused nor warned about


def test_a_backup_and_dr_url_without_actifio_gets_a_hint(server_factory, tmp_path):
    server = server_factory("--dialect", "backupdr", "--test-controls")
    assert server.url == server.root + "/actifio"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run_refused(["-o", "api=backupdr,credentials=" + cred_file(tmp_path, "token=dsfs-demo-token\n"),
                     server.root, str(mnt)], mnt)
    assert r.returncode != 0 and not r.mounted
    out = lines(r.stderr)
    assert len(out) == 1, r.stderr
    assert "cannot log in to %s: POST /session: HTTP 404" % server.root in out[0], out[0]
    assert "the backupdr API's URL ends in /actifio" in out[0], out[0]
    assert sim_stats(server).get("POST /actifio/session", 0) == 0


@pytest.mark.parametrize("text", ["username = admin\npassword = admin\n",
                                  "username=\"admin\"\npassword='admin'\n",
                                  "  username =\t'admin'  \npassword=  \"admin\"\n"])
def test_credentials_with_blanks_and_quotes_log_in(server, dsfs_mount, tmp_path, text):
    """`key = value` and quoted values are the values without blanks or quotes (they were sent
    as " admin" and "\"admin\"", and the server answered 401)."""
    m = dsfs_mount(server, credentials=write_sp_credentials(tmp_path, text))
    assert entries(m.p("servers"))
    assert sim_stats(server).get("POST /session") == 1


def test_an_unclosed_quote_is_refused_naming_the_line(server, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_sp_credentials(tmp_path, "username=admin\npassword=\"admin\n")
    r = run_refused(["-o", "credentials=" + cred, server.url, str(mnt)], mnt)
    assert r.returncode != 0 and not r.mounted
    out = lines(r.stderr)
    assert len(out) == 1 and "line 2: password= opens a quote" in out[0], r.stderr
    assert sim_stats(server).get("total", 0) == 0  # no misleading 401: nothing was sent


def test_estate_keys_get_did_you_mean_and_a_colon_is_named(server, dsfs_mount, tmp_path):
    cred = write_sp_credentials(tmp_path)
    for section, line, why in (
            ({"url": server.url, "credentails": cred}, 4, "unknown key 'credentails': did you mean 'credentials'?"),
            ({"url": server.url, "usernme": "admin", "password": "admin"}, 4,
             "unknown key 'usernme': did you mean 'username'?"),
            ({"url: %s" % server.url: None}, 3, "write url = ..., with '=' (key = value lines), not 'url:'")):
        path = os.path.join(str(tmp_path), "estate.conf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# test estate\n[a1]\n")
            for k, v in section.items():
                f.write(k + ("\n" if v is None else " = %s\n" % v))
        with pytest.raises(MountFailed) as e:
            dsfs_mount(server, "estate=" + path, estate=True)
        out = lines(e.value.output)
        assert len(out) == 1, e.value.output
        assert "estate file %s, line %d: %s" % (path, line, why) in out[0], out[0]
    assert sim_stats(server).get("total", 0) == 0


def test_an_estate_member_whose_url_is_not_its_api_is_mounted_with_a_warning(server_factory, server,
                                                                             dsfs_mount, tmp_path):
    """As for a member that is down at mount time: a member whose probe fails is warned about (the
    URL and what answered), mounted anyway and shown in .dsfs/status; the others work."""
    d = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "2")
    path = write_estate(tmp_path, [
        ("a1", {"url": server.url, "username": "admin", "password": "admin", "api": "storage-plugin"}),
        ("console", {"url": d.root + "/api/v1", "api": "dscc", "credentials": dscc_credentials(tmp_path, d)}),
    ])
    m = dsfs_mount(server, "estate=" + path, estate=True)
    warn = [line for line in lines(m.log_text()) if "estate member console" in line]
    assert len(warn) == 1, m.log_text()
    assert ("%s/api/v1 does not answer as the dscc API: GET %s/api/v1/api/v1/tasks?limit=1: HTTP 404"
            % (d.root, d.root)) in warn[0], warn[0]
    assert sorted(os.listdir(m.path)) == ["a1", "console", "tasks"]
    assert entries(m.p("a1", "servers"))
    status = {line.split()[0]: line for line in open(m.p(".dsfs", "status")).read().splitlines()}
    assert "HTTP 404" in status["console"] and "/api/v1/api/v1/tasks" in status["console"], status
    assert sim_stats(d).get("GET <unknown>") == 1


def test_an_estate_member_whose_url_names_no_api_is_warned_about(server_factory, server, dsfs_mount, tmp_path):
    """Without api =, a member whose URL names no API is taken as a storage-plugin member, and the
    warning says so and where to say which; with api = storage-plugin it is quiet."""
    d = server_factory("--dialect", "dscc", "--test-controls", "--volumes", "2")
    path = write_estate(tmp_path, [
        ("a1", {"url": server.url, "username": "admin", "password": "admin"}),
        ("console", {"url": d.root, "credentials": dscc_credentials(tmp_path, d)}),
    ])
    with pytest.raises(MountFailed) as e:
        dsfs_mount(server, "estate=" + path, estate=True)
    # the console's keys are not the assumed dialect's: the warning comes first and says why
    out = lines(e.value.output)
    assert out[0] == ("dsfs: warning: estate member console: cannot tell the API of %s from its URL; assumed "
                      "storageplugin; give api = NAME in its section (storageplugin, dscc, backupdr, cloudsync, greenlake)"
                      % d.root), out
    assert len(out) == 2 and out[1].startswith("dsfs: estate member console: credentials file "), out
    assert "line 1: expected username=, password= or array= (the storageplugin dialect's keys)" in out[1], out
    assert sim_stats(d).get("total", 0) == 0
    path = write_estate(tmp_path, [
        ("a1", {"url": server.url, "username": "admin", "password": "admin"}),
        ("console", {"url": d.root, "api": "DSCC", "credentials": dscc_credentials(tmp_path, d)}),
    ])
    m = dsfs_mount(server, "estate=" + path, estate=True)
    assert "warning" not in m.log_text(), m.log_text()
    assert entries(m.p("console", "servers")) and entries(m.p("a1", "servers"))
