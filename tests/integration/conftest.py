"""Fixtures for the integration tests: a reference server and a real dsfs mount.

Every test mounts dsfs for real (this machine runs as root with /dev/fuse)
on a temporary directory against a reference server process on loopback,
and checks results through the API itself. The fixtures always unmount and
stop the server, even when a test fails, and fail the test when the daemon
printed a sanitizer or valgrind report or died.

    dsfs_mount(server, *options, ttl=2, valgrind=False, expect_fail=False) -> Mount
    server_factory(*args) -> RefServer     (refserver_fixture.start_refserver)
    server                                  a small default estate with test controls

Environment: DSFS_BIN (the dsfs binary; default build/src/dsfs or src/dsfs),
DSFS_SANITIZED=1 (the binary is an ASan/UBSan build).
"""

import codecs
import json
import os
import select
import stat
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "server"))

from refserver_fixture import start_refserver  # noqa: E402


def dsfs_binary():
    env = os.environ.get("DSFS_BIN")
    if env:
        return env
    for cand in (os.path.join(REPO, "build", "src", "dsfs"), os.path.join(REPO, "src", "dsfs")):
        if os.access(cand, os.X_OK):
            return cand
    raise RuntimeError("dsfs is not built: run ./scripts/check (or set DSFS_BIN)")


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "== Invalid", "definitely lost in")


class Mount:
    """A dsfs process mounted in the foreground on a temporary directory."""

    def __init__(self, server, options, ttl, valgrind, tmp, credentials=None, env=None, estate=False):
        self.server = server
        self.path = os.path.join(tmp, "mnt")
        os.makedirs(self.path, exist_ok=True)
        self.tmp = tmp
        self.cred = credentials or write_credentials(tmp)
        self.log_path = os.path.join(tmp, "dsfs.log")
        args = [dsfs_binary(), "-f", "-o", "cache_ttl=%s" % ttl]
        if not estate:
            args += ["-o", "credentials=" + self.cred]
        for opt in options:
            args += ["-o", opt] if not opt.startswith("-") else [opt]
        args += ([] if estate else [server.url]) + [self.path]
        if valgrind:
            args = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                    "--error-exitcode=99", "--show-leak-kinds=definite"] + args
        self.args = args
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.time() + (60 if valgrind else 15)
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None:
                raise MountFailed(self.proc.returncode, self.log_text())
            if time.time() > deadline:
                self.proc.kill()
                raise MountFailed(None, "not mounted in time\n" + self.log_text())
            time.sleep(0.02)

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def log_text(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stats(self):
        with open(self.p(".dsfs", "stats")) as f:
            return json.load(f)

    def unmount(self, timeout=60):
        """Unmounts, waits for the daemon and returns its exit status.
        A daemon that died leaves a dead mount behind: that is unmounted too.
        A mount a process still holds a file open on is busy, and fusermount3 -u
        refuses it at once: a reader this test started and left behind (a `tail -f`
        whose test failed) is ended first; a holder that is not ours (this process
        itself) is left, and the daemon is asked to go with SIGTERM, its own clean
        way out (it unmounts lazily). The daemon is killed only if it hangs."""
        if self.proc.poll() is None or os.path.ismount(self.path):
            r = self._fusermount("-u")
            if r.returncode != 0 and os.path.ismount(self.path):
                leftovers = [pid for pid in holders(self.path) if is_descendant(pid)]
                for pid in leftovers:
                    stop_process(pid)
                if leftovers:
                    r = self._fusermount("-u")
                if r.returncode != 0 and self.proc.poll() is None:
                    self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if os.path.ismount(self.path):
                self._fusermount("-uz")
        return self.proc.returncode

    def _fusermount(self, flag):
        try:
            return subprocess.run(["fusermount3", flag, self.path], capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(e.cmd, 1, "", "fusermount3 %s timed out" % flag)

    def check_clean(self):
        text = self.log_text()
        bad = [m for m in SANITIZER_MARKERS if m in text]
        assert not bad, "dsfs reported %s:\n%s" % (bad, text[-8000:])
        assert self.proc.returncode == 0, "dsfs exited with %s:\n%s" % (self.proc.returncode, text[-8000:])


def holders(path):
    """Pids of the processes with a file, cwd or root under path (from /proc)."""
    path = os.path.realpath(path)
    out = []
    for pid in (int(d) for d in os.listdir("/proc") if d.isdigit()):
        try:
            links = [os.readlink("/proc/%d/%s" % (pid, n)) for n in ("cwd", "root")]
            links += [os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)]
        except OSError:
            continue
        if any(link == path or link.startswith(path + "/") for link in links):
            out.append(pid)
    return out


def is_descendant(pid):
    """Is pid a process this test process started (a child, or a child's child), not itself?"""
    me = os.getpid()
    while pid > 1 and pid != me:
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == me:
            return True
    return False


def stop_process(pid):
    """Ends a process this test started (by its id), and reaps it when it is a child."""
    try:
        os.kill(pid, 9)
    except OSError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        deadline = time.monotonic() + 5
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
            time.sleep(0.02)


class Tail:
    """`tail -f` of a file (tail polling every 0.2 s, so what is measured is dsfs's lag), its output
    collected as it comes. The pipe is read as bytes with select and decoded incrementally: a
    non-blocking text pipe's read() can return None in the middle of a character (TypeError).
    Use it as a context manager, so tail is stopped even when the test fails: a reader left
    holding a file open keeps the mount busy."""

    def __init__(self, path, *args):
        self.p = subprocess.Popen(["tail", *args, "-s", "0.2", "-f", path], stdout=subprocess.PIPE)
        self.fd = self.p.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.text = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def read(self, wait=0.0):
        """What tail has written so far, waiting up to wait seconds for more."""
        if wait > 0:
            select.select([self.fd], [], [], wait)
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.text += self.decoder.decode(chunk)
        return self.text

    def lines(self):
        """The complete lines so far (a line tail is still writing is not one yet)."""
        text = self.read()
        return text[:text.rfind("\n") + 1].splitlines()

    def wait_until(self, pred, timeout):
        """The monotonic time at which pred(tail's text) first held, or None after timeout seconds."""
        end = time.monotonic() + timeout
        while True:
            if pred(self.read()):
                return time.monotonic()
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.read(min(left, 0.05))

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.p.stdout.close()


class MountFailed(Exception):
    def __init__(self, status, output):
        super().__init__("dsfs did not mount (status %s): %s" % (status, output))
        self.status = status
        self.output = output


def write_credentials(tmp, username="admin", password="admin", mode=0o600):
    path = os.path.join(tmp, "cred-%s" % username)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("username=%s\npassword=%s\n" % (username, password))
    os.chmod(path, mode)
    return path


@pytest.fixture
def server_factory():
    servers = []

    def start(*args, **kw):
        s = start_refserver(*args, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def server(server_factory):
    return server_factory("--test-controls", "--task-seconds", "0.5")


@pytest.fixture
def dsfs_mount(tmp_path):
    mounts = []

    def mount(server, *options, ttl=2, valgrind=False, credentials=None, env=None, base=None, estate=False):
        d = tempfile.mkdtemp(dir=base or str(tmp_path))
        m = Mount(server, options, ttl, valgrind, d, credentials=credentials, env=env, estate=estate)
        mounts.append(m)
        return m

    yield mount
    failures = []
    for m in mounts:
        m.unmount()
        try:
            m.check_clean()
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)


def sim_stats(server):
    return server.sim("GET", "/stats").json()


def reset_stats(server):
    server.sim("POST", "/stats/reset")


def list_all(client, path, key, page=1000):
    """Every item of an API list, as a client following the API's paging rules gets it."""
    items, start = [], 0
    while True:
        r = client.get("%s?limit=%d&start=%d" % (path, page, start))
        assert r.status == 200, (path, r.status, r.body)
        got = r.json()[key]
        items += got
        if not got:
            return items
        start += len(got)


def entry_name(name, ident):
    """The entry-name rule of docs/tree.md, written independently of src/format/names.c."""
    if name is None or name == "":
        name = ident
    if name in (".", ".."):
        return "%2E" * len(name)
    out = []
    for ch in name:
        if ch in "/%" or ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("%%%02X" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def entries(path):
    """Directory entries without the .by-id index, sorted."""
    return sorted(e for e in os.listdir(path) if e != ".by-id")


def is_regular(path):
    return stat.S_ISREG(os.lstat(path).st_mode)
