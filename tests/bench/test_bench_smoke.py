"""Smoke run of the benchmark (tests/bench/run --smoke): a tiny estate, every row.

It checks that the benchmark still works, not dsfs's speed: the table prints
with every row present, no row failed, and the figures are sane (request-cost
ratios are finite numbers; times, rates and sizes are positive). Runs in
about 20 s. Needs /dev/fuse, fusermount3, curl, jq and a built dsfs
(DSFS_BIN or build/src/dsfs).
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUN = os.path.join(HERE, "run")


def dsfs_binary():
    env = os.environ.get("DSFS_BIN")
    if env:
        return env
    return os.path.join(REPO, "build", "src", "dsfs")


# Rows every smoke run prints, by group: (count, a workload text each row of it contains)
EXPECTED = {
    "mount": (1, "mount time"),
    "cost": (15, "requests: "),
    "latency": (5, ""),
    "concurrency": (3, "parallel reader"),
    "crawl": (6, "crawl "),
    "linear": (2, "ls -l of"),
    "memory": (8, "RSS "),  # after walking the estates, and the peak over one collection
}
COST_WORKLOADS = ["ls", "ls -l", "stat", "cat", "cat every file", "find -type f", "tar | wc -c"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        pytest.fail("needs /dev/fuse and fusermount3")
    if not os.access(dsfs_binary(), os.X_OK):
        pytest.fail("dsfs is not built (%s): run ./scripts/check" % dsfs_binary())
    for tool in ("curl", "jq", "tar", "find"):
        assert shutil.which(tool), "the benchmark needs %s" % tool
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    r = subprocess.run([sys.executable, RUN, "--smoke", "-q", "--json", str(out)],
                       capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, "tests/bench/run --smoke failed:\n%s\n%s" % (r.stdout[-3000:], r.stderr[-3000:])
    with open(out) as f:
        data = json.load(f)
    return r.stdout, data


def test_table_has_every_row(smoke):
    stdout, data = smoke
    lines = stdout.splitlines()
    assert lines[0].startswith("dsfs benchmark: checkout at commit ")
    header = [l for l in lines if l.startswith("workload")]
    assert header and all(c in header[0] for c in ("dsfs", "baseline", "ratio", "target", "met", "comment"))
    rows = data["rows"]
    for group, (count, text) in EXPECTED.items():
        got = [r for r in rows if r["group"] == group]
        assert len(got) == count, (group, [r["workload"] for r in got])
        assert all(text in r["workload"] for r in got), got
        for r in got:  # each row printed in the table
            assert any(l.startswith("%s: %s" % (group, r["workload"])) for l in lines), r["workload"]
    for w in COST_WORKLOADS:
        for phase in ("cold", "warm"):
            assert any(r["workload"] == "requests: %s (%s)" % (w, phase) for r in rows), (w, phase)


def test_no_row_failed(smoke):
    _, data = smoke
    bad = [r for r in data["rows"] if r["dsfs"] in ("error", "timeout")]
    assert not bad, bad


def test_request_costs_are_numbers(smoke):
    _, data = smoke
    for r in data["rows"]:
        if r["group"] != "cost":
            continue
        raw = r["raw"]
        assert isinstance(r["ratio"], float) and math.isfinite(r["ratio"]), r
        assert raw["fewest"] >= 0 and raw["requests"] >= 0, r
        # a cold run needs at least the servers' and the volumes' list pages
        if "cold" in r["workload"]:
            assert raw["fewest"] >= 2, r
        # dsfs can not beat the fewest a correct client needs
        assert raw["requests"] >= raw["fewest"], r
        assert r["ratio"] < 3, r


def test_figures_are_sane(smoke):
    _, data = smoke
    raw = data["raw"]
    assert 0 < min(raw["mount"]["seconds"]) < 30
    lat = raw["latency"]
    for k in ("get_us", "cat_ttl0_us", "cat_cached_us", "fuse_roundtrip_us"):
        assert 0 < lat[k]["median"] <= lat[k]["p99"] < 1e6, (k, lat[k])
    assert 0.5 <= lat["requests_per_cat_ttl0"] <= 2, lat
    for k, c in raw["concurrency"].items():
        assert c["dsfs_files_per_s"] > 0 and c["server_req_per_s"] > 0, (k, c)
    for label, c in raw["crawl"].items():
        assert c["dsfs_s"] > 0 and c["python_s"] > 0 and c["curl_scaled_s"] > 0, (label, c)
        assert c["tar_bytes"] > 0 and c["dsfs_requests"] >= c["fewest"], (label, c)
        assert c["python_requests"] >= c["fewest"], (label, c)
    for m in raw["memory"]:
        assert m["rss_kib"] > 0 and m["files"] > 0, m
    for n, l in raw["linear"].items():
        assert l["lines"] >= int(n) and l["cold_s"] > 0, (n, l)
