#!/usr/bin/env python3
"""Measure the reference server: simple GETs per second over one keep-alive
connection (an http.client loop), and the server's CPU time per request.

    python3 tests/server/bench_refserver.py [--seconds S] [--python PY] [-- server options]

The figure is recorded in docs/refserver.md. On a small machine the client
loop costs more CPU than the server, so the req/s figure is a lower bound of
what the server can answer; "server us/req" is its own cost.
"""

import argparse
import http.client
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refserver_fixture import start_refserver  # noqa: E402

PATHS = ["/info", "/server/0/volume/vol-0-1", "/server/0/volume?limit=20",
         "/server/0/volume?limit=1000&start=0"]


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0, help="time per path (default 3)")
    p.add_argument("--python", default=sys.executable, help="interpreter for the server")
    p.add_argument("server_args", nargs="*", help="extra refserver options (after --)")
    a = p.parse_args()
    srv = start_refserver(*a.server_args, python=a.python)
    try:
        client = srv.login()
        conn = http.client.HTTPConnection(srv.host, srv.port)
        hdrs = {"x-storageplugin-sessionid": client.session_id}
        print("server: %s %s" % (a.python, " ".join(a.server_args)))
        for path in PATHS:
            n = 0
            c0 = cpu_seconds(srv.proc.pid)
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < a.seconds:
                conn.request("GET", "/storageplugin/api" + path, headers=hdrs)
                r = conn.getresponse()
                r.read()
                assert r.status == 200, (path, r.status)
                n += 1
            el = time.perf_counter() - t0
            print("GET %-36s %7.0f req/s   server %4.0f us/req" % (
                path, n / el, (cpu_seconds(srv.proc.pid) - c0) / n * 1e6))
        conn.close()
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
