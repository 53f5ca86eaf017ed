"""Readers that wait for the server cannot hold the mount (src/waiters.c).

Each reader of tasks/<id>/wait holds one of libfuse's worker threads while
it waits. The mount keeps threads free for everyone else: one user may have
DSFS_FUSE_MAX_WAITERS_PER_USER (32) waiters and all users together
DSFS_FUSE_MAX_WAITERS (192); a reader past either bound gets EAGAIN at once.
A killed reader stops waiting at once, and so does every reader when the
daemon is told to stop.
"""

import errno
import os
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import entries

PER_USER = 32
TOTAL = 192


@pytest.fixture
def shared_base():
    d = tempfile.mkdtemp(prefix="dsfs-wait-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d


def start_task(m):
    """Starts a clone (a task that runs as long as the server was told) and returns its id."""
    vols = m.p("servers", entries(m.p("servers"))[0], "volumes")
    vol = os.path.join(vols, entries(vols)[0])
    fd = os.open(os.path.join(vol, "action"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"clone name=waited-on-%d\n" % time.monotonic_ns())
    os.close(fd)
    return os.readlink(m.p("tasks", "latest")).rstrip("/").split("/")[-1]


def waiter(path, uid=None):
    cmd = ["cat", path]
    if uid is not None:
        cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + cmd
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def settle(procs, seconds):
    """Waits until only the waiting readers are left; returns (waiting, finished)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
    return [p for p in procs if p.poll() is None], [p for p in procs if p.poll() is not None]


def timed_cat(path):
    t0 = time.monotonic()
    with open(path, "rb") as f:
        f.read()
    return time.monotonic() - t0


def reap(procs, seconds):
    """Kills procs with SIGKILL and returns how many still live after seconds (stuck in D state)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.05)
    left = [p for p in procs if p.poll() is None]
    for p in procs:
        p.communicate()
    return len(left)


def test_one_users_waiters_cannot_stall_anothers_cat(server_factory, dsfs_mount, shared_base):
    """70 `cat tasks/T/wait &` as nobody (the reproduction): root's cat stays fast, nobody's
    waiters past 32 get EAGAIN, root can still wait, and killed readers end at once."""
    server = server_factory("--test-controls", "--task-seconds", "120")
    m = dsfs_mount(server, "allow_other", ttl=0, base=shared_base)
    os.chmod(m.tmp, 0o755)
    task = start_task(m)
    wait = m.p("tasks", task, "wait")
    procs = [waiter(wait, 65534) for _ in range(70)]
    waiting, finished = settle(procs, 3)
    assert len(waiting) == PER_USER, (len(waiting), [p.communicate()[1] for p in finished[:3]])
    for p in finished:
        out, err = p.communicate()
        assert p.returncode != 0 and b"Resource temporarily unavailable" in err, err
    worst = max(timed_cat(m.p("info.json")) for _ in range(5))
    assert worst < 1.0, worst
    mine = waiter(wait)  # another user still has waiting places
    time.sleep(1)
    assert mine.poll() is None
    assert reap(procs + [mine], 3) == 0, "killed readers stayed in the kernel"
    assert timed_cat(m.p("info.json")) < 1.0
    assert "the most one user may have" in m.log_text()
    # the places were given back: nobody can wait again
    again = waiter(wait, 65534)
    time.sleep(1)
    assert again.poll() is None
    assert reap([again], 3) == 0


@pytest.mark.slow
def test_many_users_cannot_take_every_thread(server_factory, dsfs_mount, shared_base):
    """Seven users with 33 waiters each: 192 wait, the rest get EAGAIN, and root's cat stays fast."""
    server = server_factory("--test-controls", "--task-seconds", "120")
    m = dsfs_mount(server, "allow_other", ttl=0, base=shared_base)
    os.chmod(m.tmp, 0o755)
    wait = m.p("tasks", start_task(m), "wait")
    procs = [waiter(wait, 60000 + u) for u in range(7) for _ in range(PER_USER + 1)]
    waiting, finished = settle(procs, 8)
    assert len(waiting) == TOTAL, len(waiting)
    assert all(p.poll() is not None and p.returncode != 0 for p in finished)
    worst = max(timed_cat(m.p("info.json")) for _ in range(5))
    assert worst < 1.0, worst
    assert reap(procs, 5) == 0
    assert "the most this mount allows at once" in m.log_text()


def test_sigterm_during_a_wait_ends_the_daemon_at_once(server_factory, dsfs_mount):
    server = server_factory("--test-controls", "--task-seconds", "120")
    m = dsfs_mount(server, ttl=0.2)
    reader = waiter(m.p("tasks", start_task(m), "wait"))
    time.sleep(1)
    assert reader.poll() is None
    t0 = time.monotonic()
    m.proc.send_signal(signal.SIGTERM)
    m.proc.wait(timeout=10)
    assert time.monotonic() - t0 < 2, "the daemon waited for the task"
    reader.wait(timeout=5)
    assert time.monotonic() - t0 < 3, "the reader was held"
    assert reader.returncode != 0
    assert m.proc.returncode == 0


def test_a_killed_reader_frees_its_place_at_once(server_factory, dsfs_mount):
    """kill -9 of a waiting reader: it is gone at once (no D state), its place is free again."""
    server = server_factory("--test-controls", "--task-seconds", "120")
    m = dsfs_mount(server, ttl=0.2)
    wait = m.p("tasks", start_task(m), "wait")
    procs = [waiter(wait) for _ in range(PER_USER)]
    waiting, _ = settle(procs, 2)
    assert len(waiting) == PER_USER
    extra = subprocess.run(["cat", wait], capture_output=True, timeout=10)
    assert extra.returncode != 0 and os.strerror(errno.EAGAIN).encode() in extra.stderr
    t0 = time.monotonic()
    assert reap(procs, 2) == 0
    assert time.monotonic() - t0 < 2
    time.sleep(0.3)
    again = waiter(wait)
    time.sleep(1)
    assert again.poll() is None, again.communicate()
    assert reap([again], 2) == 0


def test_a_failed_poll_does_not_end_the_wait(server_factory, dsfs_mount):
    """One 500 (or garbage) while a task runs is polled through: the wait still ends with the task."""
    server = server_factory("--test-controls", "--task-seconds", "3")
    m = dsfs_mount(server, ttl=0.2)
    task = start_task(m)
    reader = waiter(m.p("tasks", task, "wait"))
    time.sleep(0.5)
    server.sim("POST", "/faults", {"method": "GET", "path": "/tasks/", "count": 1, "status": 500})
    server.sim("POST", "/faults", {"method": "GET", "path": "/tasks/", "count": 1,
                                   "body": "garbage"})
    out, err = reader.communicate(timeout=20)
    assert reader.returncode == 0 and out.strip() == b"SUCCEEDED", err
    assert "a poll failed" in m.log_text()


def test_a_poll_in_flight_is_abandoned_for_a_killed_reader_and_at_sigterm(server_factory, dsfs_mount):
    """The server hangs on the task's GET: kill -9 of the reader and SIGTERM of the daemon still end
    at once (the poll is cancelled, not waited out to -o timeout)."""
    server = server_factory("--test-controls", "--task-seconds", "120")
    m = dsfs_mount(server, "timeout=30", ttl=0.2)
    wait = m.p("tasks", start_task(m), "wait")
    server.sim("POST", "/faults", {"method": "GET", "path": "/tasks/", "hang": True})
    readers = [waiter(wait) for _ in range(4)]
    time.sleep(1.5)  # each is inside its poll now
    t0 = time.monotonic()
    assert reap(readers, 5) == 0
    assert time.monotonic() - t0 < 3, "killed readers were held by their polls"
    more = waiter(wait)
    time.sleep(1.5)
    t0 = time.monotonic()
    m.proc.send_signal(signal.SIGTERM)
    m.proc.wait(timeout=30)
    assert time.monotonic() - t0 < 3, "the daemon waited for a hung poll"
    more.wait(timeout=10)
    server.sim("DELETE", "/faults")


def test_many_waiters_on_a_slow_server_share_their_polls(server_factory, dsfs_mount, shared_base):
    """100 waiters on 5 tasks while every task GET takes 1.5 s: they share their polls and at most 4
    are in flight, so the polls take 4 of the 16 connections and another user's cat stays fast."""
    server = server_factory("--test-controls", "--task-seconds", "120", "--volumes", "6")
    m = dsfs_mount(server, "allow_other", ttl=0, base=shared_base)
    os.chmod(m.tmp, 0o755)
    vols = m.p("servers", entries(m.p("servers"))[0], "volumes")
    tasks = []
    for v in entries(vols)[:5]:
        fd = os.open(os.path.join(vols, v, "action"), os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"clone name=shared-poll-%s\n" % v.encode())
        os.close(fd)
        tasks.append(os.readlink(m.p("tasks", "latest")).rstrip("/").split("/")[-1])
    server.sim("POST", "/faults", {"method": "GET", "path": "/tasks/", "latency_ms": 1500})
    reset = server.sim("POST", "/stats/reset")
    assert reset.status in (200, 204)
    procs = [waiter(m.p("tasks", tasks[i % 5], "wait"), 65534 + (i % 3)) for i in range(100)]
    time.sleep(3)
    worst = max(timed_cat(m.p("servers", entries(m.p("servers"))[0], "system.json")) for _ in range(5))
    assert worst < 1.0, worst
    polls = sum(v for k, v in server.sim("GET", "/stats").json().items() if k.startswith("GET /tasks/"))
    assert polls < 40, polls  # about 4 in flight per 1.5 s, not one per waiter per second
    assert reap(procs, 5) == 0
    server.sim("DELETE", "/faults")
