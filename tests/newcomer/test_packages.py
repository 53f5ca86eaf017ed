"""One list of what a machine needs, and the files that must agree with it.

scripts/packages names every Debian package dsfs needs and what for; the
demo installs the build, run and demo ones, scripts/check all of them
(both through scripts/install-packages). These tests keep configure.ac,
debian/control and the scripts in step with that list, so that a fresh
Debian 12 machine gets everything from the project's own files, and check
that nothing the project builds, runs or tests reads a file outside it.
"""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
USES = ("build", "run", "demo", "package", "test")

# what configure.ac's autotools macros need installed
MACRO_PACKAGES = {"AC_PROG_CC": "build-essential", "AC_INIT": "autoconf", "AM_INIT_AUTOMAKE": "automake",
                  "LT_INIT": "libtool", "PKG_PROG_PKG_CONFIG": "pkg-config", "PKG_CHECK_MODULES": "pkg-config"}


def read(*parts):
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def package_list():
    """{package: use} from scripts/packages."""
    out = {}
    for n, line in enumerate(read("scripts", "packages").splitlines(), 1):
        line = line.split("#", 1)[0].split()
        if not line:
            continue
        assert len(line) == 2 and line[1] in USES, "scripts/packages line %d: %r" % (n, line)
        assert line[0] not in out, "scripts/packages lists %s twice" % line[0]
        out[line[0]] = line[1]
    return out


def control_field(text, field):
    """The package names of a debian/control relationship field (versions and arch dropped)."""
    m = re.search(r"^%s:(.*(?:\n[ \t].*)*)" % field, text, re.M)
    assert m, field
    names = []
    for item in m.group(1).split(","):
        name = item.strip().split(" ")[0].split("(")[0].strip()
        if name and not name.startswith("${"):
            names.append(name)
    return names


def test_every_package_configure_can_ask_for_is_listed_for_building():
    pkgs = package_list()
    conf = read("configure.ac")
    named = re.findall(r"install the Debian package ([a-z0-9][a-z0-9.+-]*)", conf)
    required = re.findall(r"^DSFS_REQUIRE\(\[\w+\], \[[^]]+\], \[([a-z0-9.+-]+)\]\)", conf, re.M)
    assert required, "configure.ac names its libraries' packages with DSFS_REQUIRE"
    for pkg in named + required:
        assert pkgs.get(pkg) == "build", "configure.ac asks for %s: list it in scripts/packages as build" % pkg
    for macro, pkg in MACRO_PACKAGES.items():
        if re.search(r"\b%s\b" % macro, conf):
            assert pkgs.get(pkg) == "build", "%s needs %s: list it as build" % (macro, pkg)
    # a program or library configure looks for must say which package brings it
    for prog in re.findall(r"AC_(?:PATH|CHECK)_PROGS?\(\[\w+\], *\[([\w-]+)\]", conf):
        assert re.search(r"%s not found: [^]]*install the Debian package" % re.escape(prog), conf), \
            "configure.ac looks for %s without naming its Debian package" % prog
    for macro in ("AC_CHECK_LIB", "AC_SEARCH_LIBS", "AC_CHECK_HEADER"):
        assert macro not in conf, "%s: name the Debian package in its error, as DSFS_REQUIRE does" % macro


def test_debian_control_agrees_with_the_list():
    pkgs = package_list()
    control = read("debian", "control")
    build_depends = ["debhelper" if n == "debhelper-compat" else n
                     for n in control_field(control, "Build-Depends")]
    for name in build_depends:
        want = "package" if name == "debhelper" else "build"
        assert pkgs.get(name) == want, "debian/control Build-Depends %s: list it as %s" % (name, want)
    for name, use in pkgs.items():
        if use == "build" and name != "build-essential":  # build-essential is implied by Debian policy
            assert name in build_depends, "%s builds dsfs: add it to debian/control's Build-Depends" % name
    depends = control_field(control, "Depends")
    for name, use in pkgs.items():
        if use == "run":
            assert name in depends, "%s runs dsfs: add it to debian/control's Depends" % name
    for name in depends:
        assert pkgs.get(name) == "run", "debian/control Depends %s: list it as run" % name


def test_the_scripts_install_from_the_list_alone():
    demo, check = read("scripts", "demo"), read("scripts", "check")
    assert re.search(r"^scripts/install-packages build run demo$", demo, re.M), "demo installs build run demo"
    assert re.search(r"^scripts/install-packages build run demo package test$", check, re.M)
    for name in ("demo", "check"):
        text = read("scripts", name)
        assert "apt-get" not in text and "packages=(" not in text, \
            "scripts/%s keeps a package list of its own: use scripts/install-packages" % name


def test_every_listed_package_is_a_real_installed_debian_package():
    """scripts/check installed the list before this runs, so each name is one Debian has."""
    pkgs = package_list()
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n"] + sorted(pkgs),
                       capture_output=True, text=True)
    installed = {line.split()[0] for line in r.stdout.splitlines() if line.endswith("install ok installed")}
    assert installed == set(pkgs), "not installed: %s" % sorted(set(pkgs) - installed)


def test_install_packages_names_what_is_missing_to_a_user_who_is_not_root():
    """Run as nobody with a list naming a package that cannot be installed: it names it and the command."""
    top = tempfile.mkdtemp(prefix="dsfs-newcomer-")
    os.chmod(top, 0o755)  # nobody must reach the script
    copy = pathlib.Path(top) / "dsfs"
    (copy / "scripts").mkdir(parents=True)
    script = copy / "scripts" / "install-packages"
    script.write_text(read("scripts", "install-packages"))
    script.chmod(0o755)
    (copy / "scripts" / "packages").write_text("dsfs-no-such-package build\n")
    try:
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(script),
                            "build"], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(top)
    assert r.returncode != 0
    assert "apt-get install dsfs-no-such-package" in r.stderr, r.stderr


def test_nothing_reads_files_outside_the_project():
    files = subprocess.run(["git", "-C", REPO, "ls-files", "src", "tests", "scripts", "mount-helpers", "debian",
                            ".ci", "configure.ac", "Makefile.am", "docs/Makefile.am"],
                           capture_output=True, text=True, check=True).stdout.split()
    this = os.path.relpath(os.path.abspath(__file__), REPO)
    bad = []
    for rel in files:
        if rel == this or rel.endswith(".json"):
            continue
        with open(os.path.join(REPO, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        if re.search(r"\.\./shared|\"shared\", *\"specs\"|shared/specs", text):
            bad.append(rel)
    assert not bad, "these read outside the project: %s" % bad
