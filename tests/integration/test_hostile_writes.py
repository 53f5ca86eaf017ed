"""Hostile writes to control files, and mkdir names the tree cannot show.

A command reaches the server only when its writer finished it: with its
newline, or at the last close of the process that opened the file (or, once
that one has closed, of the process that wrote the pending bytes). A close
of an inherited copy by any other process sends nothing; a refused line's
rest, up to its newline, is discarded; 64 KiB is a bound on one line, not on
a write; a command that is not UTF-8 is refused before sending; mkdir
refuses a name it could not find again. Every case counts the POSTs the
reference server received (/_sim/stats) and checks the effect through the API.
"""

import errno
import json
import os
import subprocess
import threading

import pytest

from conftest import list_all, reset_stats
from test_actions import Estate, estate, posts, result, write  # noqa: F401 (estate is a fixture)


def sh(script, **env):
    """Runs a bash script with the given variables; returns (exit status, stderr)."""
    p = subprocess.run(["bash", "-c", script], env=dict(os.environ, **env), capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stderr


def snapshot_names(estate, vol):
    return {s["name"] for s in list_all(estate.c, "/server/%s/volume/%s/snapshot" % (estate.sid, vol["id"]),
                                        "snapshots")}


def volume_named(estate, name):
    return [v for v in estate.objs("volume", "volumes") if v["name"] == name]


def first_snapshot(estate, vol):
    return list_all(estate.c, "/server/%s/volume/%s/snapshot" % (estate.sid, vol["id"]), "snapshots")[0]


def wait_latest(estate):
    with open(estate.m.p("tasks", "latest", "wait")) as f:
        assert f.read().strip() == "SUCCEEDED"


# ---- 1. a close by another process never ends a line -------------------------------------------

def clone_sent_whole(server, estate, vol, snap, name, script):
    v = estate.dir_of("volumes", vol)
    reset_stats(server)
    status, err = sh(script, V=v, S=snap["name"], N=name)
    assert status == 0, err
    assert posts(server) == 1
    res = result(os.path.join(v, "action"))
    assert res["command"] == "clone name=%s snapshot.id=%s" % (name, snap["name"]) and res["status"] == 202
    wait_latest(estate)
    made = volume_named(estate, name)
    assert len(made) == 1 and made[0]["restoredFromSnapshotId"] == snap["id"]  # of the snapshot, not the live volume


CLOSES_MID_LINE = {
    # the reproduction: the $(...) subshell's exit closes its inherited copy (a FLUSH) mid-line
    "clone-subst": """{ printf 'clone name=%s' "$N"; printf ' snapshot.id=%s\\n' "$(echo $S)"; } > "$V/action" """,
    # any program run in between does the same
    "clone-true": """{ printf 'clone name=%s' "$N"; /bin/true; printf ' snapshot.id=%s\\n' "$S"; } > "$V/action" """,
    # each external printf writes its part, then exits (its own close) before the line is finished
    "clone-programs": """{ /usr/bin/printf 'clone name=%s' "$N"; /usr/bin/printf ' snapshot.id=%s\\n' "$S"; }"""
                      """ > "$V/action" """,
    # `>&2` on a builtin makes the shell close its own fd 1 (keeping a saved copy) mid-line
    "clone-redirect": """{ printf 'clone name=%s' "$N"; echo progress >&2; printf ' snapshot.id=%s\\n' "$S"; }"""
                      """ > "$V/action" """,
}


@pytest.mark.parametrize("name", sorted(CLOSES_MID_LINE))
def test_a_close_by_another_process_does_not_send_half_a_line(server, estate, name):
    vol = estate.volume()
    snap = first_snapshot(estate, vol)
    clone_sent_whole(server, estate, vol, snap, name, CLOSES_MID_LINE[name])


def test_forked_child_exit_does_not_send_what_the_parent_wrote(server, estate):
    vol = estate.volume(1)
    new = os.path.join(estate.dir_of("volumes", vol), "snapshots", "new")
    reset_stats(server)
    fd = os.open(new, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"forked-")
    pid = os.fork()
    if pid == 0:
        os._exit(0)  # closes the child's inherited copy
    os.waitpid(pid, 0)
    assert posts(server) == 0
    os.write(fd, b"whole\n")
    os.close(fd)
    assert posts(server) == 1
    assert "forked-whole" in snapshot_names(estate, vol) and "forked-" not in snapshot_names(estate, vol)


def test_partial_line_is_still_sent_at_its_writers_close(server, estate):
    """What the shell and programs do without a newline keeps working: the opener's last close sends it."""
    vol = estate.volume(1)
    v = estate.dir_of("volumes", vol)
    reset_stats(server)
    status, err = sh("""printf 'nonl-builtin' > "$V/snapshots/new" && /usr/bin/printf 'nonl-program' > "$V/snapshots/new"
                        { /usr/bin/printf 'nonl-'; /usr/bin/printf 'group'; } > "$V/snapshots/new" """, V=v)
    assert status == 0, err
    assert posts(server) == 3
    assert {"nonl-builtin", "nonl-program", "nonl-group"} <= snapshot_names(estate, vol)


def test_threads_of_one_program_are_one_writer(server, estate):
    vol = estate.volume(1)
    new = os.path.join(estate.dir_of("volumes", vol), "snapshots", "new")
    reset_stats(server)
    fd = os.open(new, os.O_WRONLY | os.O_TRUNC)
    t = threading.Thread(target=os.write, args=(fd, b"from-a-thread"))
    t.start()
    t.join()
    closer = threading.Thread(target=os.close, args=(fd,))
    closer.start()
    closer.join()
    assert posts(server) == 1
    assert "from-a-thread" in snapshot_names(estate, vol)


def test_opener_gone_the_writers_close_sends(server, estate):
    vol = estate.volume(1)
    new = os.path.join(estate.dir_of("volumes", vol), "snapshots", "new")
    reset_stats(server)
    fd = os.open(new, os.O_WRONLY | os.O_TRUNC)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(r, 1)  # until the parent has closed its copy
        os.write(fd, b"after-opener")
        os._exit(0)
    os.close(fd)
    os.write(w, b"x")
    os.waitpid(pid, 0)
    assert posts(server) == 1
    assert "after-opener" in snapshot_names(estate, vol)


# ---- 2. a refused line's rest is discarded, never a command --------------------------------------

def test_rest_of_an_over_long_line_is_not_a_command(server, estate):
    """The reproduction: 70,000 bytes without a newline, then `echo -bash-tail`."""
    vol = estate.volume(2)
    v = estate.dir_of("volumes", vol)
    reset_stats(server)
    status, err = sh("""X=$(head -c 70000 /dev/zero | tr '\\0' x); { printf '%s' "$X"; echo -bash-tail; }"""
                     """ > "$V/snapshots/new" """, V=v)
    assert status != 0 and "too large" in err.lower(), err
    assert posts(server) == 0
    assert "-bash-tail" not in snapshot_names(estate, vol)
    assert "longer than 65536" in result(os.path.join(v, "snapshots", "new"))["error"]


def test_refused_line_poisons_up_to_its_newline_only(server, estate):
    vol = estate.volume(2)
    new = os.path.join(estate.dir_of("volumes", vol), "snapshots", "new")
    reset_stats(server)
    fd = os.open(new, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"x" * 40000)
        with_errno(errno.EFBIG, os.write, fd, b"x" * 40000)     # past 64 KiB: refused now
        with_errno(errno.EFBIG, os.write, fd, b"still-the-same-line")
        with_errno(errno.EFBIG, os.write, fd, b"-its-end\n")  # only the refused line: fails too
        assert os.write(fd, b"after-efbig\n") == 12             # the next line is a command again
    finally:
        os.close(fd)
    assert posts(server) == 1
    names = snapshot_names(estate, vol)
    assert "after-efbig" in names and not any("its-end" in n or "still" in n for n in names)


def test_rest_of_a_failed_write_poisons_its_partial_line(server, estate):
    vol = estate.volume(2)
    v = estate.dir_of("volumes", vol)
    new = os.path.join(v, "snapshots", "new")
    reset_stats(server)
    fd = os.open(new, os.O_WRONLY | os.O_TRUNC)
    try:
        with_errno(errno.EINVAL, os.write, fd, b"{not json}\nhalf-")   # refused; its rest ends mid-line
        with_errno(errno.EINVAL, os.write, fd, b"tail\n")              # that line's end: discarded
        assert os.write(fd, b"poison-over\n") == 12
    finally:
        os.close(fd)
    assert posts(server) == 1
    names = snapshot_names(estate, vol)
    assert "poison-over" in names and "tail" not in names and "half-tail" not in names
    # a refused line in the middle of a write: the same, with the rest of the write mixed in
    fd = os.open(new, os.O_WRONLY | os.O_TRUNC)
    try:
        with_errno(errno.EFBIG, os.write, fd, b"y" * 70000 + b"\nskipped-whole\nskipped-")
        assert os.write(fd, b"half\nnext-line\n") == 15   # the poisoned half, then a command
    finally:
        os.close(fd)
    assert posts(server) == 2
    names = snapshot_names(estate, vol)
    assert "next-line" in names and not {"skipped-whole", "skipped-half", "half"} & names


def test_the_limit_is_65536_bytes_of_one_line(server, estate):
    vol = estate.volume(2)
    action = os.path.join(estate.dir_of("volumes", vol), "action")
    reset_stats(server)
    line = "clone name=" + "n" * (65536 - len("clone name="))
    assert write(action, line + "\n") != errno.EFBIG          # exactly 64 KiB: sent (the server may refuse it)
    assert posts(server) == 1
    assert write(action, line + "n\n") == errno.EFBIG        # one byte more: nothing sent
    assert posts(server) == 1


def with_errno(want, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        assert e.errno == want, (e, want)
        return
    raise AssertionError("%s did not fail with %s" % (fn.__name__, errno.errorcode[want]))


# ---- 10. 64 KiB is per line, not per write --------------------------------------------------------

def test_a_write_larger_than_64k_of_short_lines_is_accepted(server, estate):
    vol = estate.volume(3)
    new = os.path.join(estate.dir_of("volumes", vol), "snapshots", "new")
    reset_stats(server)
    assert write(new, "\n" * 70000 + "past-64k-a\npast-64k-b\n") == 0   # one write() of 70 KB
    assert posts(server) == 2
    assert {"past-64k-a", "past-64k-b"} <= snapshot_names(estate, vol)


@pytest.mark.slow
def test_many_short_lines_in_one_write_are_all_sent(server, estate, tmp_path):
    """The reproduction: `cat lines80k > new`, 10,000 lines, 80 KB, in writes larger than 64 KiB."""
    vol = estate.volume(3)
    v = estate.dir_of("volumes", vol)
    lines = tmp_path / "lines80k"
    lines.write_text("".join("s-%05d\n" % i for i in range(10000)))
    assert lines.stat().st_size == 80000
    reset_stats(server)
    status, err = sh("""cat "$L" > "$V/snapshots/new" """, V=v, L=str(lines))
    assert status == 0, err
    assert posts(server) == 10000
    names = snapshot_names(estate, vol)
    assert all("s-%05d" % i in names for i in range(10000))


# ---- 11. commands are valid UTF-8 -----------------------------------------------------------------

def test_invalid_utf8_is_refused_and_the_result_stays_json(server, estate):
    """The reproduction: printf 'bad-\\xff\\xfe\\n' > new."""
    vol = estate.volume(2)
    v = estate.dir_of("volumes", vol)
    reset_stats(server)
    status, err = sh("""printf 'bad-\\xff\\xfe\\n' > "$V/snapshots/new" """, V=v)
    assert status != 0 and "invalid argument" in err.lower(), err
    assert posts(server) == 0
    with open(os.path.join(v, "snapshots", "new"), "rb") as f:
        res = json.loads(f.read().decode("utf-8"))  # strict: the result file is UTF-8 JSON
    assert res["command"] == "bad-\ufffd\ufffd" and "not valid UTF-8" in res["error"]
    assert write(os.path.join(v, "snapshots", "new"), "caf\u00e9-\u20ac\n") == 0  # real UTF-8 goes through
    assert posts(server) == 1 and "caf\u00e9-\u20ac" in snapshot_names(estate, vol)


# ---- 8. mkdir reports what happened ----------------------------------------------------------------

def test_mkdir_refuses_a_name_the_tree_would_show_otherwise(server, estate):
    """The reproductions: mkdir "nl<newline>x" and mkdir pct%2Fname created a snapshot, then said ENOENT."""
    vol = estate.volume(3)
    snaps = os.path.join(estate.dir_of("volumes", vol), "snapshots")
    reset_stats(server)
    for name in ("nl\nx", "pct%2Fname", "tab\tname", "50%"):
        for _ in range(2):  # a retry gets the same answer, not EEXIST
            with_errno(errno.EINVAL, os.mkdir, os.path.join(snaps, name))
    with_errno(errno.EINVAL, os.mkdir, os.path.join(os.fsencode(snaps), b"bad-\xff"))
    assert posts(server) == 0
    assert not {"nl\nx", "pct%2Fname", "tab\tname", "50%"} & snapshot_names(estate, vol)
    assert "echo 'NAME' > new" in estate.m.log_text()
    # the way that works for such names, and mkdir of names that show as given
    assert write(os.path.join(snaps, "new"), "pct%2Fname\n") == 0
    assert "pct%252Fname" in os.listdir(snaps)
    os.mkdir(os.path.join(snaps, "caf\u00e9 snap"))
    assert os.path.isdir(os.path.join(snaps, "caf\u00e9 snap"))
    assert posts(server) == 2
    assert {"pct%2Fname", "caf\u00e9 snap"} <= snapshot_names(estate, vol)
