"""The man pages and the Debian package.

Man pages: `dsfs --help` and dsfs(1) list the same -o options and flags, in
both directions and with the same defaults; every -o option the page
mentions anywhere exists; mount.dsfs(8) lists the options the helper drops
and shows the example mount unit as it is in docs/examples; both pages
render without groff warnings and carry the version `dsfs -V` prints. The
pages checked are the ones the build made next to DSFS_BIN (build/docs/).

The package (test_debian_package): builds dsfs with
`dpkg-buildpackage -us -uc -b` from a copy of the working tree (the files
git tracks or would add), installs the .deb with `dpkg -i`, mounts the
reference server through `mount -t dsfs`, through the example systemd
unit's options and through an /etc/fstab line, reads the tree, unmounts,
and purges the package. Before the mounts, the installed dsfs-refserver is
started by hand as the README says and the lines it prints (the credentials
file and the dsfs command line) are run: they mount it. The package's
description names the four APIs. /etc/fstab is restored and the package removed
whatever happens. It does not use DSFS_BIN, so it is marked slow: the
sanitizer pass would only repeat it.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import REPO, dsfs_binary, write_credentials

DOCS = os.path.join(REPO, "docs")
HELPER = os.path.join(REPO, "mount-helpers", "mount.dsfs")


# -- parsing `dsfs --help` and the roff scdoc makes

def option_names(spec):
    """Names in an -o argument: 'client_cert=FILE,client_key=FILE' -> client_cert, client_key."""
    names = []
    for part in spec.split(","):
        m = re.match(r"(\[no\])?([a-z_][a-z0-9_]*)", part.strip())
        if m:
            names.append(m.group(2))
            if m.group(1):
                names.append("no" + m.group(2))
    return names


def spec_tokens(text):
    """The options at the start of a help line or a man page term: ({-o names}, {flags})."""
    opts, flags = set(), set()
    tokens = text.replace(",", ", ").split()
    i = 0
    while i < len(tokens) and tokens[i].startswith("-"):
        tok = tokens[i].rstrip(",")
        if tok == "-o" and i + 1 < len(tokens):
            spec = tokens[i + 1]
            i += 2
            while i < len(tokens) and tokens[i - 1].endswith(",") and not tokens[i].startswith("-"):
                spec += tokens[i]  # 'client_cert=FILE,client_key=FILE' was split at the comma
                i += 1
            opts.update(option_names(spec))
        else:
            flags.add(tok)
            i += 1
    return opts, flags


def help_sections():
    """{'dsfs': [(opts, flags, description)], 'fuse': [...]} from `dsfs --help`."""
    r = subprocess.run([dsfs_binary(), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    ours, sep, fuse = r.stdout.partition("\nFUSE options:\n")
    assert sep and "dsfs options:\n" in ours, r.stdout
    out = {}
    for key, part in (("dsfs", ours.partition("dsfs options:\n")[2]), ("fuse", fuse)):
        entries = []
        for line in part.splitlines():
            if re.match(r"^    -", line):
                opts, flags = spec_tokens(line.strip())
                entries.append([opts, flags, line.strip()])
            elif re.match(r"^\s{5,}\S", line) and entries:
                entries[-1][2] += " " + line.strip()
        out[key] = entries
    return out


def built_page(name):
    """The roff page the build made: next to DSFS_BIN's build tree, else in docs/."""
    builddir = os.path.dirname(os.path.dirname(os.path.abspath(dsfs_binary())))
    for cand in (os.path.join(builddir, "docs", name), os.path.join(DOCS, name)):
        if os.path.exists(cand):
            src = os.path.join(DOCS, name + ".scd")
            assert os.path.getmtime(cand) >= os.path.getmtime(src), \
                "%s is older than %s: run make" % (cand, src)
            return cand
    pytest.fail("%s is not built (make builds it from docs/%s.scd; it needs scdoc)" % (name, name))


def roff_plain(path):
    """The page's text with fonts removed; italic spans (placeholders) become <...>."""
    with open(path) as f:
        s = f.read()
    s = re.sub(r"\\fI(.*?)\\f[RP]", r"<\1>", s)
    s = re.sub(r"\\f[BRP]", "", s)
    return s.replace("\\&", "").replace("\\-", "-").replace("\\*(Aq", "'").replace("\\(aq", "'")


def man_sections(path):
    """{section name: [lines]} of a roff page."""
    sections, cur = {}, None
    for line in roff_plain(path).splitlines():
        if line.startswith(".SH "):
            cur = line[4:].strip().strip('"')
            sections[cur] = []
        elif cur:
            sections[cur].append(line)
    return sections


def man_items(lines):
    """[(opts, flags, description)] of the definition items (a term line, then .RS 4 ... .RE)."""
    items, prev, desc = [], None, None
    for line in lines:
        if line == ".RS 4" and prev is not None:
            desc = []
            items.append(spec_tokens(prev) + (desc,))
        elif line == ".RE":
            desc = None
        elif desc is not None and not line.startswith("."):
            desc.append(line)
        if not line.startswith("."):
            prev = line
    return [(o, f, " ".join(d)) for o, f, d in items]


def union(entries, i):
    out = set()
    for e in entries:
        out |= e[i]
    return out


# -- man pages

def test_man_page_options_match_help():
    helped = help_sections()
    man = man_sections(built_page("dsfs.1"))
    ours = man_items(man["OPTIONS"])
    fuse = man_items(man["FUSE OPTIONS"])

    assert union(ours, 0) == union(helped["dsfs"], 0), \
        "dsfs options: only in --help %s, only in dsfs(1) %s" % (
            sorted(union(helped["dsfs"], 0) - union(ours, 0)), sorted(union(ours, 0) - union(helped["dsfs"], 0)))
    assert union(ours, 1) == union(helped["dsfs"], 1)
    assert union(fuse, 0) == union(helped["fuse"], 0), \
        "FUSE options: only in --help %s, only in dsfs(1) %s" % (
            sorted(union(helped["fuse"], 0) - union(fuse, 0)), sorted(union(fuse, 0) - union(helped["fuse"], 0)))
    assert not union(fuse, 1)

    # the same defaults
    described = {}
    for opts, _, desc in ours:
        for o in opts:
            described[o] = desc
    for opts, _, text in helped["dsfs"]:
        for default in re.findall(r"default:? (-?[0-9][0-9.]*)", text):
            for o in opts:
                assert re.search(r"default:? %s\b" % re.escape(default), described[o]), \
                    "-o %s: --help says default %s; dsfs(1) says: %s" % (o, default, described[o])


def test_fuse_thread_bound_has_one_default():
    """-o max_threads: --help and dsfs(1) give the bound dsfs sets (src/fuse/loop.h), not libfuse's."""
    with open(os.path.join(REPO, "src", "fuse", "loop.h")) as f:
        defs = dict(re.findall(r"^#define (DSFS_FUSE_\w+) (.*)$", f.read(), re.M))
    expr = defs["DSFS_FUSE_MAX_THREADS"]
    for name, value in defs.items():
        expr = expr.replace(name, value)
    bound = eval(expr, {"__builtins__": {}})  # a sum of integer literals
    idle = int(defs["DSFS_FUSE_IDLE_THREADS"])
    helped = [d for o, _, d in help_sections()["fuse"] if "max_threads" in o]
    man = [d for o, _, d in man_items(man_sections(built_page("dsfs.1"))["FUSE OPTIONS"]) if "max_threads" in o]
    assert len(helped) == 1 and len(man) == 1, (helped, man)
    for text in (helped[0], man[0]):
        assert re.findall(r"default:? (\d+)", text) == [str(bound)], text
        assert "%d kept idle" % idle in text and "no effect" in text, text
    r = subprocess.run([dsfs_binary(), "--help"], capture_output=True, text=True, timeout=30)
    assert "(default: 10)" not in r.stdout and "(default: -1)" not in r.stdout, r.stdout


def test_help_names_the_man_page_not_the_sources():
    r = subprocess.run([dsfs_binary(), "--help"], capture_output=True, text=True, timeout=30)
    text = r.stdout.partition("\n\n")[2]  # after the usage lines, which name the binary as it was run
    assert "man dsfs" in text
    assert not re.search(r"\b(docs|src)/|\.md\b|\.c\b", text), text


def test_man_page_mentions_only_real_options():
    helped = help_sections()
    known = union(helped["dsfs"], 0) | union(helped["fuse"], 0)
    for page in ("dsfs.1", "mount.dsfs.8"):
        text = " ".join(roff_plain(built_page(page)).splitlines())
        mentioned = set()
        for spec in re.findall(r"(?<![\w-])-o\s+([^\s<]\S*)", text):
            mentioned.update(option_names(spec))
        assert mentioned <= known, (page, sorted(mentioned - known))
        assert mentioned or page != "dsfs.1"


def test_mount_helper_page_lists_the_dropped_options():
    with open(HELPER) as f:
        helper = f.read()
    m = re.search(r'case "\$o" in\s*(.*?)\)\s*;;', helper, re.S)
    patterns = [p.strip() for p in m.group(1).replace("\\\n", " ").split("|")]
    assert "_netdev" in patterns and "x-systemd.*" in patterns, patterns
    man = " ".join(man_sections(built_page("mount.dsfs.8"))["OPTIONS"])
    listed = man[man.index("drops are"):man.index("passed on")]
    for p in patterns:
        key = p[:-1] if p.endswith("*") else p
        assert key.strip("_") == "" or re.search(r"(?<![\w.-])%s(?!\w)" % re.escape(key), listed), (p, listed)
    assert 'starting with "_"' in listed


def scd_block(name, first_line):
    """The ``` block of docs/<name> whose first line is first_line."""
    with open(os.path.join(DOCS, name)) as f:
        text = f.read()
    for block in re.findall(r"^```\n(.*?)^```$", text, re.S | re.M):
        if block.startswith(first_line + "\n"):
            return block
    pytest.fail("no block starting %r in docs/%s" % (first_line, name))


def test_man_page_examples_match_the_files():
    with open(os.path.join(DOCS, "examples", "mnt-dsfs.mount")) as f:
        unit = f.read()
    assert scd_block("mount.dsfs.8.scd", "# /etc/systemd/system/mnt-dsfs.mount") == unit


def test_man_pages_render_cleanly_with_the_version():
    version = subprocess.run([dsfs_binary(), "-V"], capture_output=True, text=True).stdout.split()[1]
    for page in ("dsfs.1", "mount.dsfs.8"):
        path = built_page(page)
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path], capture_output=True, text=True)
        assert r.returncode == 0 and r.stderr == "", (page, r.stderr)
        th = [line for line in open(path) if line.startswith(".TH ")][0]
        assert '"dsfs %s"' % version in th, th
        r = subprocess.run(["man", "-l", path], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8"))
        assert r.returncode == 0 and "SEE ALSO" in r.stdout
        assert "\u2010" not in r.stdout  # no hyphenation: option names copy as they are


def test_debian_version_matches_configure():
    with open(os.path.join(REPO, "configure.ac")) as f:
        ac = re.search(r"AC_INIT\(\[dsfs\],\s*\[([^\]]+)\]", f.read()).group(1)
    with open(os.path.join(REPO, "debian", "changelog")) as f:
        deb = re.match(r"dsfs \(([^)]+)\)", f.readline()).group(1)
    assert deb == ac or deb.startswith(ac + "-"), (deb, ac)


# -- the Debian package

def sh(*args, timeout=120, check=True, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)
    if check:
        assert r.returncode == 0, "%s: exit %s\n%s\n%s" % (" ".join(args), r.returncode, r.stdout[-3000:],
                                                          r.stderr[-3000:])
    return r


def package_status():
    r = sh("dpkg-query", "-W", "-f=${Status}", "dsfs", check=False)
    return r.stdout if r.returncode == 0 else ""


def copy_worktree(dest):
    """The files git tracks or would add (the working tree's versions), without build trees."""
    r = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                       capture_output=True, check=True)
    names = [n for n in r.stdout.decode().split("\0")
             if n and not re.match(r"build(-[^/]*)?/", n) and os.path.lexists(os.path.join(REPO, n))]
    os.makedirs(dest)
    tar = subprocess.run(["tar", "-C", REPO, "--null", "-T", "-", "-cf", "-"], input="\0".join(names).encode(),
                         capture_output=True, check=True)
    subprocess.run(["tar", "-C", dest, "-xf", "-"], input=tar.stdout, check=True)


def daemons(mnt):
    """pids of processes whose command line names mnt."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if mnt.encode() in args:
                out.append(int(pid))
    return out


def mounted_source_and_type(mnt):
    with open("/proc/self/mounts") as f:
        for line in f:
            src, where, fstype = line.split()[:3]
            if where == mnt:
                return src, fstype
    return None


def check_mount(server, mnt):
    """The mount works, is the installed /usr/bin/dsfs, and unmounting ends it and logs out."""
    assert os.path.ismount(mnt)
    assert mounted_source_and_type(mnt) == (server.url, "fuse.dsfs")
    pids = daemons(mnt)
    assert pids and all(os.readlink("/proc/%d/exe" % p) == "/usr/bin/dsfs" for p in pids), pids
    assert sorted(e for e in os.listdir(os.path.join(mnt, "servers")) if e != ".by-id") == ["svm-dev-1", "svm-prod-0"]
    vol = sh("jq", "-r", ".name", os.path.join(mnt, "servers", "svm-prod-0", "volumes", ".by-id", "vol-0-5",
                                               "volume.json")).stdout
    assert vol == "vol-db-0005\n"
    assert server.sim("GET", "/sessions").json()["active"] == 1
    sh("umount", mnt)
    assert not os.path.ismount(mnt)
    deadline = time.time() + 15
    while daemons(mnt) and time.time() < deadline:
        time.sleep(0.05)
    assert not daemons(mnt), "dsfs still running after umount"
    assert server.sim("GET", "/sessions").json()["active"] == 0  # logged out


@pytest.mark.slow
def test_debian_package(server_factory, tmp_path):
    assert os.geteuid() == 0, "installs a package: run as root"
    for tool, pkg in (("dpkg-buildpackage", "dpkg-dev"), ("dh", "debhelper"), ("scdoc", "scdoc")):
        assert shutil.which(tool), "%s is missing: apt-get install %s (scripts/check installs it)" % (tool, pkg)
    assert not package_status(), "the dsfs package is installed already; this test installs and removes it: " \
                                 "dpkg -r dsfs first"
    for path in ("/sbin/mount.dsfs", "/usr/bin/dsfs"):
        assert not os.path.lexists(path), "%s exists outside the package; remove it first" % path

    with open(os.path.join(REPO, "debian", "changelog")) as f:
        version = re.match(r"dsfs \(([^)]+)\)", f.readline()).group(1)
    src = str(tmp_path / "src" / ("dsfs-" + version))
    copy_worktree(src)
    t0 = time.monotonic()
    sh("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, timeout=900,
       env=dict(os.environ, LC_ALL="C.UTF-8", DEB_BUILD_OPTIONS="parallel=%d" % os.cpu_count()))
    print("dpkg-buildpackage took %.1f s" % (time.monotonic() - t0))
    arch = sh("dpkg", "--print-architecture").stdout.strip()
    deb = str(tmp_path / "src" / ("dsfs_%s_%s.deb" % (version, arch)))

    contents = sh("dpkg-deb", "-c", deb).stdout
    for path in ("./usr/bin/dsfs", "./sbin/mount.dsfs", "./usr/share/man/man1/dsfs.1.gz",
                 "./usr/share/man/man8/mount.dsfs.8.gz", "./usr/share/doc/dsfs/cookbook.md",
                 "./usr/share/doc/dsfs/tree.md", "./usr/share/doc/dsfs/control.md",
                 "./usr/share/doc/dsfs/copyright", "./usr/share/doc/dsfs/examples/mnt-dsfs.mount",
                 "./usr/share/doc/dsfs/examples/dsfs-estate-git.service",
                 "./usr/share/doc/dsfs/examples/dsfs-estate-git.timer"):
        assert re.search(r" %s$" % re.escape(path), contents, re.M), (path, contents)
    assert re.search(r"^-rwxr-xr-x .* \./usr/share/doc/dsfs/examples/dsfs-estate-to-git$", contents, re.M)
    assert re.search(r"^-rwxr-xr-x .* \./usr/bin/dsfs-refserver$", contents, re.M), contents
    for name in ("refserver.py", "refcore.py", "refsim.py", "reffaults.py", "refhttp.py", "openapi_check.py",
                 "dialect_storageplugin.py", "dialect_dscc.py", "dialect_backupdr.py", "dialect_cloudsync.py",
                 "spec/dscc-storage-api-v1.2.0.json"):
        assert re.search(r" \./usr/share/dsfs/refserver/%s$" % re.escape(name), contents, re.M), (name, contents)
    description = " ".join(sh("dpkg-deb", "-f", deb, "Description").stdout.split())
    for api in ("storage-plugin", "Data Services Cloud Console", "Backup and DR", "Cloud Sync"):
        assert api in description, (api, description)
    depends = sh("dpkg-deb", "-f", deb, "Depends").stdout
    for dep in ("fuse3", "libfuse3-3", "libcurl4", "libjson-c5", "libssl3", "libc6"):
        assert re.search(r"(^|, )%s\b" % dep, depends), (dep, depends)

    server = server_factory("--test-controls")
    cred = write_credentials(str(tmp_path))
    mnt = os.path.realpath(str(tmp_path / "mnt"))
    os.mkdir(mnt)
    with open("/etc/fstab", "rb") as f:
        fstab = f.read()
    try:
        sh("dpkg", "-i", deb, timeout=300)
        assert package_status() == "install ok installed"
        files = sh("dpkg", "-L", "dsfs").stdout.splitlines()
        assert "/sbin/mount.dsfs" in files and "/usr/bin/dsfs" in files
        assert sh("/usr/bin/dsfs", "--version").stdout.startswith("dsfs %s\n" % version.split("-")[0])
        assert sh("man", "-w", "dsfs").stdout.strip() == "/usr/share/man/man1/dsfs.1.gz"
        assert sh("man", "-w", "mount.dsfs").stdout.strip() == "/usr/share/man/man8/mount.dsfs.8.gz"
        page = sh("man", "dsfs", env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat",
                                          PAGER="cat")).stdout
        assert "-o credentials=FILE" in page and "/usr/share/doc/dsfs/cookbook.md" in page
        for doc in re.findall(r"/usr/share/doc/dsfs/[\w./-]+", page + open(os.path.join(DOCS, "cookbook.md")).read()):
            assert os.path.exists(doc.rstrip(".")), doc  # every installed file the docs name is there

        try_the_installed_refserver(tmp_path / "try")

        # mount -t dsfs, as root from a shell
        sh("mount", "-t", "dsfs", server.url, mnt, "-o", "credentials=%s,_netdev" % cred, timeout=60)
        check_mount(server, mnt)

        # the options of the example systemd mount unit, as systemd would pass them
        with open(os.path.join(DOCS, "examples", "mnt-dsfs.mount")) as f:
            opts = re.search(r"^Options=(.*)$", f.read(), re.M).group(1)
        opts = re.sub(r"credentials=[^,]*", "credentials=" + cred, opts)
        sh("mount", "-t", "dsfs", server.url, mnt, "-o", opts, timeout=60,
           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        check_mount(server, mnt)

        # an /etc/fstab line and `mount DIR`
        with open("/etc/fstab", "ab") as f:
            f.write(("\n%s %s dsfs credentials=%s,_netdev,noauto 0 0\n" % (server.url, mnt, cred)).encode())
        assert sh("findmnt", "--fstab", "-n", "-o", "FSTYPE", mnt).stdout.strip() == "dsfs"
        sh("mount", mnt, timeout=60)
        with open("/etc/fstab", "wb") as f:  # restored at once: the mount no longer needs it
            f.write(fstab)
        check_mount(server, mnt)
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", mnt])
        with open("/etc/fstab", "rb") as f:
            changed = f.read() != fstab
        if changed:
            with open("/etc/fstab", "wb") as f:
                f.write(fstab)
        if package_status():
            sh("dpkg", "--purge", "dsfs", timeout=300)
    assert not package_status()
    for path in ("/sbin/mount.dsfs", "/usr/bin/dsfs", "/usr/share/man/man1/dsfs.1.gz", "/usr/share/doc/dsfs",
                 "/usr/bin/dsfs-refserver", "/usr/share/dsfs"):
        assert not os.path.lexists(path), path


def try_the_installed_refserver(cwd):
    """dsfs-refserver, as the README says to try it: started by hand, it prints the credentials
    file and the dsfs command line; those lines, pasted into a shell, mount it."""
    cwd.mkdir()
    assert shutil.which("dsfs-refserver") == "/usr/bin/dsfs-refserver"
    proc = subprocess.Popen(["dsfs-refserver", "--dialect", "backupdr", "--listen", "127.0.0.1:0",
                             "--test-controls", "--how-to-mount"], cwd=str(cwd),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mnt = str(cwd / "mnt")
    try:
        ready = proc.stdout.readline()
        assert ready.startswith("listening on http://127.0.0.1:") and ready.rstrip().endswith("/actifio"), ready
        url = ready.split()[-1]
        told = []
        for line in proc.stderr:
            told.append(line)
            if "fusermount3 -u mnt" in line:
                break
        text = "".join(told)
        assert "token=dsfs-demo-token" in text, text
        commands = [line.strip() for line in told if line.startswith("    ") and not line.strip().startswith("#")]
        assert commands[-2:] == ["ls mnt", "fusermount3 -u mnt"], commands
        assert any(c.startswith("dsfs -o ") and c.endswith(" %s mnt" % url) for c in commands), commands
        r = sh("bash", "-c", "set -e\n" + "\n".join(commands[:-1]), cwd=str(cwd), timeout=60)
        assert "applications" in r.stdout.split(), r.stdout
        cred = str(cwd / "refserver-backupdr.cred")
        assert os.stat(cred).st_mode & 0o777 == 0o600
        assert shutil.which("dsfs") == "/usr/bin/dsfs"  # the dsfs the printed line ran
        assert mounted_source_and_type(mnt) == (url, "fuse.dsfs")
        assert [e for e in os.listdir(os.path.join(mnt, "applications")) if not e.startswith(".")]
        root = url[:-len("/actifio")]
        r = sh("curl", "-sf", root + "/_sim/requests")
        logins = [q for q in json.loads(r.stdout)["requests"] if q["method"] == "POST" and q["path"].endswith("/session")]
        assert logins and logins[0]["status"] == 200, r.stdout  # logged in with the printed token
        sh("fusermount3", "-u", mnt)
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-uz", mnt])
        proc.kill()
        proc.wait()
    assert not os.path.lexists(str(cwd / "__pycache__"))
