"""Trying dsfs without an array: the reference server says how to mount it.

Started by hand (--how-to-mount, or stdout a terminal), tests/server/refserver.py
prints, after its one ready line on stdout (which stays alone there), the
credentials file its dialect needs and the dsfs command line that mounts it,
to stderr. For each dialect, those lines pasted into bash (dsfs being the
binary under test) mount the server: `ls mnt` shows the API's top directory,
the server counts dsfs's requests, the credentials file is mode 0600 and
holds the printed lines, and `fusermount3 -u mnt` ends the mount.
--credentials-file writes the same lines, mode 0600, before the ready line
(./scripts/demo uses it), with token_url pointing at the server where the
dialect has one; without either flag and with stdout not a terminal, nothing
is printed (as the tests start it).
"""

import os
import stat
import subprocess
import sys
import time

import pytest

from conftest import REPO, dsfs_binary

from refserver_fixture import Client

REFSERVER = os.path.join(REPO, "tests", "server", "refserver.py")
# dialect: (dsfs's name, the top directory `ls mnt` shows)
DIALECTS = {"storage-plugin": ("storageplugin", "servers"), "dscc": ("dscc", "servers"),
            "backupdr": ("backupdr", "applications"), "cloudsync": ("cloudsync", "relationships")}


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split(" ")[4] == path for line in f)


class HandStarted:
    """refserver.py started in cwd, as a person would; its ready line and what it told."""

    def __init__(self, cwd, *args):
        self.proc = subprocess.Popen([sys.executable, REFSERVER, "--listen", "127.0.0.1:0", "--test-controls"]
                                     + list(args), cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        self.ready = self.proc.stdout.readline()
        assert self.ready.startswith("listening on "), self.ready
        self.url = self.ready.split()[-1]
        self.root = "/".join(self.url.split("/")[:3])

    def told(self):
        """The stderr text up to the how-to's last line."""
        out = []
        for line in self.proc.stderr:
            out.append(line)
            if "fusermount3 -u mnt" in line:
                return "".join(out)
        pytest.fail("the server ended its how-to early:\n" + "".join(out))

    def stats(self):
        return Client(self.root).get("/_sim/stats").json()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def hand_started():
    started = []

    def start(cwd, *args):
        s = HandStarted(cwd, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_printed_lines_mount_the_server(dialect, hand_started, tmp_path):
    api, top = DIALECTS[dialect]
    srv = hand_started(tmp_path, "--dialect", dialect, "--how-to-mount")
    text = srv.told()
    shown = [line.strip() for line in text.splitlines() if line.startswith("    ")]
    commands = shown[shown.index("install -m 600 /dev/null %s/refserver-%s.cred" % (tmp_path, api)):]
    file_lines = shown[:len(shown) - len(commands)]
    cred = str(tmp_path / ("refserver-%s.cred" % api))
    assert commands[-4:] == ["mkdir -p mnt", "dsfs -o api=%s,credentials=%s %s mnt" % (api, cred, srv.url),
                             "ls mnt", "fusermount3 -u mnt"], commands
    if api in ("dscc", "cloudsync"):  # the token endpoint is this server's
        assert [line for line in file_lines if line.startswith("token_url=%s/" % srv.root)], file_lines
    before = srv.stats().get("total", 0)
    mnt = str(tmp_path / "mnt")
    script = 'set -e\ndsfs() { "$DSFS_BIN" "$@"; }\n' + "\n".join(commands[:-1])
    try:
        r = subprocess.run(["bash", "-c", script], cwd=str(tmp_path), capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, DSFS_BIN=dsfs_binary()))
        assert r.returncode == 0, r
        assert top in r.stdout.split(), r.stdout
        assert mounted(mnt)
        with open(cred) as f:
            assert f.read().splitlines() == file_lines
        assert stat.S_IMODE(os.stat(cred).st_mode) == 0o600
        os.listdir(os.path.join(mnt, top))
        stats = srv.stats()
        assert stats["total"] > before and [k for k in stats if k.startswith("GET ")], stats
        r = subprocess.run(["bash", "-c", commands[-1]], cwd=str(tmp_path), capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r
        assert not mounted(mnt)
    finally:
        if mounted(mnt):
            subprocess.run(["fusermount3", "-uz", mnt])


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_credentials_file_is_written_before_the_ready_line(dialect, hand_started, tmp_path):
    api, _ = DIALECTS[dialect]
    cred = tmp_path / "made.cred"
    srv = hand_started(tmp_path, "--dialect", dialect, "--credentials-file", str(cred), "--how-to-mount")
    # read as soon as the ready line came: the file is whole by then
    assert stat.S_IMODE(os.stat(str(cred)).st_mode) == 0o600
    lines = cred.read_text().splitlines()
    keys = [line.split("=", 1)[0] for line in lines]
    assert keys == {"storageplugin": ["username", "password"], "dscc": ["client_id", "client_secret", "token_url"],
                    "backupdr": ["token"], "cloudsync": ["refresh_token", "client_id", "token_url"]}[api], lines
    text = srv.told()
    assert "# %s holds those lines already" % cred in text and "install -m 600" not in text, text
    assert "dsfs -o api=%s,credentials=%s %s mnt" % (api, cred, srv.url) in text
    assert [f for f in os.listdir(str(tmp_path)) if f != "made.cred"] == []  # no temporary file left


def test_nothing_is_printed_when_not_started_by_hand(hand_started, tmp_path):
    srv = hand_started(tmp_path)
    time.sleep(0.5)
    srv.proc.kill()
    out, err = srv.proc.communicate()
    assert out == "" and err == "", (out, err)  # the ready line was the only output
