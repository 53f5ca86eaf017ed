#!/usr/bin/env python3
"""dsfs reference storage server: storage management REST APIs in one process.

It serves, with in-memory state, asynchronous tasks, pagination, fault
injection (/_sim) and TLS and the Python standard library only, one of these
dialects: the storage-plugin API (the default), the part of the DSCC v1 API
(the OpenAPI spec in tests/server/spec) that dsfs uses, with OAuth2
client-credentials tokens (--dialect dscc), or the Google Cloud Backup and DR
management console API under /actifio (--dialect backupdr), or the NetApp
Cloud Sync API under /api (--dialect cloudsync), or the HPE GreenLake v1beta1
APIs for data services, virtualization and backup and recovery (--dialect
greenlake). dsfs's tests, demo and
benchmarks run against it; docs/refserver.md describes it.

This file is the entry point: the registry of dialects and the options.
What every dialect shares is the core: refcore.py (building blocks),
refsim.py (the simulator and the /_sim controls), reffaults.py (fault
injection), refhttp.py (HTTP/1.1, TLS, serving); dialect_*.py holds one API
each.

Started by hand (stdout a terminal, or --how-to-mount) it also prints the
credentials file and the dsfs command line that mount it.

Run: python3 tests/server/refserver.py --listen 127.0.0.1:0 [options]
     python3 tests/server/refserver.py --dialect dscc --listen 127.0.0.1:0 [options]
     python3 tests/server/refserver.py --dialect backupdr --listen 127.0.0.1:0 [options]
     python3 tests/server/refserver.py --dialect cloudsync --listen 127.0.0.1:0 [options]
     python3 tests/server/refserver.py --dialect greenlake --listen 127.0.0.1:0 [options]
"""

import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from refcore import add_secret_option, secret_from_file  # noqa: E402
from refhttp import parse_listen, positive_float, serve  # noqa: E402
from dialect_storageplugin import StoragePlugin  # noqa: E402
from dialect_dscc import Dscc  # noqa: E402
from dialect_backupdr import BackupDR  # noqa: E402
from dialect_cloudsync import CloudSync  # noqa: E402
from dialect_greenlake import Greenlake  # noqa: E402

# The dialects, by --dialect name; the first is the default. Adding an API is
# adding its dialect_*.py module and one line here.
DIALECTS = {d.name: d for d in (StoragePlugin, Dscc, BackupDR, CloudSync, Greenlake)}

# The size of the estate: option, default, help (DEFAULT: where the default is said)
ESTATE_SIZES = (
    ("servers", 2, "servers per array (DEFAULT)"),
    ("volumes", 20, "volumes per server (DEFAULT)"),
    ("snapshots", 3, "snapshots of each volume of its own (DEFAULT). In the storage-plugin "
     "mode the first 8 volumes of each server are also in consistency groups whose two "
     "group snapshots add a volume snapshot each, so those volumes list N+2 snapshots "
     "(5 by default)"),
    ("hosts", 5, "hosts per server (DEFAULT)"),
    ("luns", 10, "LUNs per server (DEFAULT)"),
)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="refserver.py",
        description="dsfs reference storage server: the storage-plugin REST API "
                    "(docs/refserver.md) with in-memory state. Prints one line "
                    "'listening on http[s]://HOST:PORT/storageplugin/api' when ready "
                    "('listening on http[s]://HOST:PORT' with --dialect dscc, "
                    "'listening on http[s]://HOST:PORT/actifio' with --dialect backupdr, "
                    "'listening on http[s]://HOST:PORT/api' with --dialect cloudsync, "
                    "'listening on http[s]://HOST:PORT' with --dialect greenlake).",
        epilog="Arrays: with --arrays N the arrays are array1 .. arrayN, with host names "
               "array1.example.com .. arrayN.example.com and IP addresses 192.0.2.11 .. "
               "192.0.2.(10+N); a login body names one by 'hostname' or 'ipAddress' (the "
               "short name 'arrayK' works too). With one array any login body selects it. "
               "See docs/refserver.md for the estate and the /_sim API.")
    p.add_argument("--dialect", choices=tuple(DIALECTS), default="storage-plugin",
                   help="API to serve: storage-plugin (default); dscc, the Data Services "
                   "Cloud Console v1 API of tests/server/spec (docs/refserver.md, DSCC mode); "
                   "backupdr, the Backup and DR management console API (Backup and DR mode); "
                   "cloudsync, the NetApp Cloud Sync API (Cloud Sync mode); greenlake, "
                   "the HPE GreenLake v1beta1 APIs (GreenLake mode)")
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8080),
                   metavar="HOST:PORT", help="address to listen on; port 0 takes a free "
                   "port (default 127.0.0.1:8080)")
    p.add_argument("--user", default="admin", help="accepted user name (default admin)")
    add_secret_option(p, "password", "PASSWORD", "admin", "accepted password",
                      "the accepted password")
    p.add_argument("--session-ttl", type=positive_float, default=None, metavar="S",
                   help="idle seconds before a session expires; each call extends it "
                   "(default 1800; 3600 with --dialect backupdr)")
    p.add_argument("--token-ttl", type=int, default=None, metavar="S",
                   help="lifetime of an access token in seconds (expires_in; default 7200; "
                   "3600 with --dialect backupdr or cloudsync)")
    p.add_argument("--arrays", type=int, default=1, metavar="N",
                   help="number of storage arrays, each with its own estate (default 1)")
    p.add_argument("--seed", type=int, default=1, metavar="N",
                   help="seed of the deterministic estate (default 1)")
    for name, default, what in ESTATE_SIZES:
        p.add_argument("--" + name, type=int, default=default, metavar="N",
                       help=what.replace("DEFAULT", "default %d" % default))
    p.add_argument("--hostile-names", action="store_true",
                   help="add resources with awkward names (duplicate, empty, '.', '..', "
                   "'/', '%%', newline, tab, non-ASCII) and ids ('/', '..', '?', '#', '%%', "
                   "space) to every collection")
    p.add_argument("--page-max", type=int, default=1000, metavar="N",
                   help="largest page a list answers, whatever 'limit' asks (default 1000)")
    p.add_argument("--task-seconds", type=positive_float, default=3.0, metavar="S",
                   help="how long an asynchronous task runs; fractions allowed (default 3)")
    p.add_argument("--sync", action="store_true",
                   help="answer clone, split, restore*, take-snapshot and condense "
                   "synchronously (200 + result) instead of 202 + task")
    p.add_argument("--latency-ms", type=positive_float, default=0.0, metavar="N",
                   help="sleep N ms before every API answer (default 0)")
    p.add_argument("--test-controls", action="store_true",
                   help="enable the /_sim test-control endpoints (stats, faults, "
                   "session expiry, password change)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate "
                   "(PEM, may include the chain)")
    p.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert (PEM)")
    p.add_argument("--tls-client-ca", metavar="FILE",
                   help="require client certificates signed by this CA (mutual TLS)")
    for d in DIALECTS.values():
        d.add_options(p)
    p.add_argument("--verbose", action="store_true",
                   help="log every request to stderr (slow)")
    p.add_argument("--credentials-file", metavar="FILE",
                   help="write the dsfs credentials file that logs in to this server to FILE "
                   "(mode 0600), before the ready line")
    p.add_argument("--how-to-mount", action="store_true", default=None,
                   help="after the ready line, print to stderr the credentials file and the dsfs "
                   "command line that mount this server (the default when stdout is a terminal)")
    opts = p.parse_args(argv)
    if bool(opts.tls_cert) != bool(opts.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if opts.tls_client_ca and not opts.tls_cert:
        p.error("--tls-client-ca needs --tls-cert and --tls-key")
    for name in ("arrays", "servers", "page_max"):
        if getattr(opts, name) < 1:
            p.error("--%s must be at least 1" % name.replace("_", "-"))
    if opts.arrays > 200:
        p.error("--arrays must be at most 200")
    for name in ("volumes", "snapshots", "hosts", "luns"):
        if getattr(opts, name) < 0:
            p.error("--%s must not be negative" % name)
    chosen = DIALECTS[opts.dialect]
    if opts.arrays != 1 and not chosen.arrays:
        p.error("--arrays applies to the storage-plugin dialect only")
    if opts.session_ttl is None:
        opts.session_ttl = chosen.session_ttl
    if opts.token_ttl is None:
        opts.token_ttl = chosen.token_ttl
    if opts.token_ttl < 1:
        p.error("--token-ttl must be at least 1")
    # every secret option, whichever dialect is chosen (a missing --*-file is an error)
    for name in [k[:-len("_default")] for k in vars(opts) if k.endswith("_default")]:
        secret_from_file(opts, name)
    chosen.check_options(p, opts)
    return opts


def write_private(path, text):
    """Writes a file that holds secrets: mode 0600 from its creation on, replaced whole."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def how_to_mount(api, url, lines, cred_file):
    """What someone who started the server by hand needs: the credentials file and the
    dsfs command line that mount it, as commands to paste into another shell."""
    out = ["", "The credentials file dsfs needs for this server (mode 0600):", ""]
    out += ["    " + line for line in lines]
    out += ["", "Mount it with dsfs (man dsfs), from another shell:", ""]
    if cred_file:
        cred = os.path.abspath(cred_file)
        out.append("    # %s holds those lines already" % cred)
    else:
        cred = os.path.join(os.getcwd(), "refserver-%s.cred" % api)
        out.append("    install -m 600 /dev/null %s" % shlex.quote(cred))
        out.append("    printf '%%s\\n' %s > %s" % (" ".join(shlex.quote(line) for line in lines),
                                                  shlex.quote(cred)))
    out.append("    mkdir -p mnt")
    out.append("    dsfs -o %s %s mnt" % (shlex.quote("api=%s,credentials=%s" % (api, cred)),
                                         shlex.quote(url)))
    out += ["    ls mnt", "    fusermount3 -u mnt", ""]
    return "\n".join(out) + "\n"


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)

    def announce(dialect, root):
        """The one ready line on stdout; the credentials file before it, so that whoever
        waits for the line finds the file whole; the how-to on stderr after it."""
        url = root + dialect.base
        lines = dialect.credentials(root)
        if opts.credentials_file:
            write_private(opts.credentials_file, "".join(line + "\n" for line in lines))
        sys.stdout.write("listening on %s\n" % url)
        sys.stdout.flush()
        if opts.how_to_mount or (opts.how_to_mount is None and sys.stdout.isatty()):
            sys.stderr.write(how_to_mount(dialect.api, url, lines, opts.credentials_file))
            sys.stderr.flush()

    serve(opts, DIALECTS[opts.dialect], announce)


if __name__ == "__main__":
    main()
