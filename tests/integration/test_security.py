"""Security defaults (issue 5): TLS verified unless -o insecure, a CA added
with cacert, mutual TLS with a key checked at start, secrets kept out of
the environment, and allow_other without letting other users act.
"""

import os
import re
import resource
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import MountFailed, dsfs_binary, entries, sim_stats, write_credentials


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki():
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all throwaway."""
    d = tempfile.mkdtemp(prefix="dsfs-pki-")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=dsfs test CA", cwd=d)
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who, subj in (("server", "/CN=127.0.0.1"), ("client", "/CN=dsfs client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", who + ".key", "-out", who + ".csr",
                "-subj", subj, cwd=d)
        extra = ["-extfile", "san.cnf"] if who == "server" else []
        openssl("x509", "-req", "-in", who + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", who + ".pem", "-days", "2", *extra, cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.csr",
            "-subj", "/CN=other", cwd=d)
    return d


def tls_server(server_factory, pki, *extra):
    return server_factory("--test-controls", "--tls-cert", os.path.join(pki, "server.pem"),
                          "--tls-key", os.path.join(pki, "server.key"), *extra)


def test_tls_is_verified_by_default(server_factory, dsfs_mount, pki):
    server = tls_server(server_factory, pki)
    assert server.url.startswith("https://")
    with pytest.raises(MountFailed) as e:
        dsfs_mount(server)
    assert server.url in e.value.output and "certificate" in e.value.output.lower()
    m = dsfs_mount(server, "cacert=" + os.path.join(pki, "ca.pem"))
    assert entries(m.p("servers"))


def test_insecure_is_explicit_and_warns(server_factory, dsfs_mount, pki):
    server = tls_server(server_factory, pki)
    m = dsfs_mount(server, "insecure")
    assert entries(m.p("servers"))
    assert "not verified" in m.log_text()


def test_mutual_tls(server_factory, dsfs_mount, pki, tmp_path):
    server = tls_server(server_factory, pki, "--tls-client-ca", os.path.join(pki, "ca.pem"))
    ca = "cacert=" + os.path.join(pki, "ca.pem")
    with pytest.raises(MountFailed):
        dsfs_mount(server, ca)  # no client certificate: the handshake is refused
    m = dsfs_mount(server, ca, "client_cert=" + os.path.join(pki, "client.pem"),
                   "client_key=" + os.path.join(pki, "client.key"))
    assert entries(m.p("servers"))
    r = subprocess.run([dsfs_binary(), "-o", "credentials=" + write_credentials(str(tmp_path)), "-o", ca,
                        "-o", "client_cert=" + os.path.join(pki, "client.pem"),
                        "-o", "client_key=" + os.path.join(pki, "other.key"), server.url, str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "does not belong to client certificate" in r.stderr, r.stderr


def test_password_from_the_environment_is_not_kept(server, dsfs_mount, tmp_path):
    server.sim("POST", "/password", {"password": "Env-Secret-9"})
    env = dict(os.environ, DSFS_PASSWORD="Env-Secret-9")
    cred = os.path.join(str(tmp_path), "user-only")
    with open(cred, "w") as f:
        f.write("username=admin\n")
    os.chmod(cred, 0o600)
    m = dsfs_mount(server, credentials=cred, env=env)
    assert entries(m.p("servers"))
    for what in ("environ", "cmdline"):
        with open("/proc/%d/%s" % (m.proc.pid, what), "rb") as f:
            assert b"Env-Secret-9" not in f.read(), what


def as_nobody(*cmd):
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def shared_base():
    d = tempfile.mkdtemp(prefix="dsfs-shared-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d


def test_allow_other_lets_others_read_but_not_act(server, dsfs_mount, shared_base):
    m = dsfs_mount(server, "allow_other", "allow_delete", base=shared_base)
    os.chmod(m.tmp, 0o755)
    vols = m.p("servers", entries(m.p("servers"))[0], "volumes")
    vol = os.path.join(vols, entries(vols)[0])
    r = as_nobody("cat", os.path.join(vol, "volume.json"))
    assert r.returncode == 0 and '"id"' in r.stdout
    r = as_nobody("sh", "-c", "echo snap-by-nobody > '%s'" % os.path.join(vol, "snapshots", "new"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = as_nobody("mkdir", os.path.join(vol, "snapshots", "nobody-dir"))
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = as_nobody("rmdir", vol)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    assert "snap-by-nobody" not in os.listdir(os.path.join(vol, "snapshots"))


def test_allow_other_actions_opts_in(server, dsfs_mount, shared_base):
    m = dsfs_mount(server, "allow_other", "allow_other_actions", base=shared_base)
    os.chmod(m.tmp, 0o755)
    vols = m.p("servers", entries(m.p("servers"))[0], "volumes")
    vol = os.path.join(vols, entries(vols)[0])
    r = as_nobody("sh", "-c", "echo snap-by-nobody > '%s'" % os.path.join(vol, "snapshots", "new"))
    assert r.returncode == 0, r.stderr
    assert "snap-by-nobody" in os.listdir(os.path.join(vol, "snapshots"))


@pytest.mark.parametrize("option", ["credentials", "cacert", "client_key", "estate"])
def test_a_fifo_named_as_a_file_is_refused_at_once(server, tmp_path, pki, option):
    """A FIFO has no writer: opened blocking, start-up would wait for ever."""
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo, 0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path))
    url = server.url.replace("http://", "https://")
    args = {"credentials": ["-o", "credentials=" + fifo, server.url],
            "cacert": ["-o", "credentials=" + cred + ",cacert=" + fifo, url],
            "client_key": ["-o", "credentials=%s,client_cert=%s,client_key=%s"
                           % (cred, os.path.join(pki, "client.pem"), fifo), url],
            "estate": ["-o", "estate=" + fifo]}[option]
    t0 = time.monotonic()
    r = subprocess.run([dsfs_binary()] + args + [str(mnt)], capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert time.monotonic() - t0 < 5
    assert r.returncode != 0
    assert fifo in r.stderr and "not a regular file" in r.stderr, r.stderr
    assert sim_stats(server).get("POST /session", 0) == 0


def test_no_core_dump_holds_the_secrets(server, tmp_path):
    """SIGSEGV with `ulimit -c unlimited`: the kernel writes no core of dsfs, which holds the
    password and the session id; a process beside it in the same directory does dump."""
    cores = tmp_path / "cores"
    cores.mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cred = write_credentials(str(tmp_path))

    def unlimited():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    control = subprocess.Popen(["sleep", "60"], cwd=cores, preexec_fn=unlimited)
    daemon = subprocess.Popen([dsfs_binary(), "-f", "-o", "credentials=" + cred, server.url, str(mnt)],
                              cwd=cores, preexec_fn=unlimited, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not os.path.ismount(mnt):
            assert daemon.poll() is None and time.monotonic() < deadline, "dsfs did not mount"
            time.sleep(0.02)
        assert "servers" in os.listdir(mnt)  # logged in: the session id is in memory
        with open("/proc/%d/limits" % daemon.pid) as f:
            limits = f.read()
        assert re.search(r"Max core file size\s+0\s+0", limits), limits
        os.kill(control.pid, signal.SIGSEGV)
        os.kill(daemon.pid, signal.SIGSEGV)
        control.wait(10)
        daemon.wait(10)
    finally:
        for p in (control, daemon):
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["fusermount3", "-uz", str(mnt)], stderr=subprocess.DEVNULL)
    # a sanitizer build reports the signal itself and exits 1; a plain one dies of it
    assert daemon.returncode == (1 if os.environ.get("DSFS_SANITIZED") else -signal.SIGSEGV), daemon.returncode
    dumped = sorted(os.listdir(cores))
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    if pattern.startswith("core"):
        # the kernel writes cores here: the control's proves that this check could fail
        assert len(dumped) == 1, dumped
    else:
        assert not dumped, dumped
