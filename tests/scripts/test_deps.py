"""scripts/deps: the graph of which object file uses which other's symbols.

Each test compiles a few small C files into a build tree of its own (as
make lays out build/src/), runs scripts/deps over it, and checks what it
prints and its exit status: a cycle (through functions or through a table
of data), an edge up the layers once files are in folders, an include of a
higher layer's header, a graph that points one way, and a build with
nothing in it.
"""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPS = os.path.join(REPO, "scripts", "deps")


def deps(tmp_path, files):
    """Writes {path below src/: C text} to tmp_path/c/, compiles each .c to tmp_path/src/<path>.o
    and runs scripts/deps over that build tree and those sources: (exit status, what it printed)."""
    for rel, text in files.items():
        c = tmp_path / "c" / rel
        c.parent.mkdir(parents=True, exist_ok=True)
        c.write_text(text)
    for rel in files:
        if not rel.endswith(".c"):
            continue  # a header: read for its includes, compiled into the files that include it
        o = tmp_path / "src" / (rel[:-2] + ".o")
        o.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-c", "-I", str(tmp_path / "c"), "-o", str(o), str(tmp_path / "c" / rel)], check=True)
    (tmp_path / "c").mkdir(exist_ok=True)
    r = subprocess.run([sys.executable, DEPS, "--build", str(tmp_path), "--src", str(tmp_path / "c")],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def test_two_files_calling_each_other_are_a_cycle(tmp_path):
    rc, out = deps(tmp_path, {
        "a.c": "int b_fn(void);\nint a_fn(void) { return b_fn(); }\n",
        "b.c": "int a_fn(void);\nint b_fn(void) { return 0; }\nint b_other(void) { return a_fn(); }\n",
        "c.c": "int a_fn(void);\nint c_fn(void) { return a_fn(); }\n",
    })
    assert rc == 1, out
    assert "cycle 1: a.o b.o\n" in out, out
    assert "a -> b (both ways): b_fn" in out and "b -> a (both ways): a_fn" in out, out
    assert "c.o" not in out.split("cycle 1:")[1].split("\n")[0], out  # c only uses a: not in the cycle
    assert "3 object files, 3 edges, 1 cycles, 0 upward edges" in out, out


def test_a_table_of_data_ties_a_cycle_too(tmp_path):
    rc, out = deps(tmp_path, {
        "registry.c": "extern const int one_table[];\nconst int *const tables[] = { one_table, 0 };\n",
        "one.c": "int shared_helper(void);\nconst int one_table[] = { 1 };\n"
                 "int one_fn(void) { return shared_helper(); }\n",
        "shared.c": "extern const int *const tables[];\nint shared_helper(void) { return *tables[0]; }\n",
    })
    assert rc == 1, out
    assert "cycle 1: one.o registry.o shared.o" in out, out
    assert "registry -> one: one_table" in out and "shared -> registry: tables" in out, out


def test_folders_are_layers_and_an_edge_up_is_reported(tmp_path):
    rc, out = deps(tmp_path, {
        "fuse/ops.c": "void log_line(void);\nvoid ops_fn(void) { log_line(); }\n",
        "util/log.c": "void ops_fn(void);\nvoid log_line(void) {}\nvoid log_hook(void) { ops_fn(); }\n",
    })
    assert rc == 1, out
    assert "upward: util/log (util) -> fuse/ops (fuse): ops_fn" in out, out
    assert "cycle 1: fuse/ops.o util/log.o" in out, out


def test_a_graph_that_points_down_passes(tmp_path):
    rc, out = deps(tmp_path, {
        "main.c": "void run(void);\nint main(void) { run(); return 0; }\n",
        "fuse/loop.c": "void ops(void);\nvoid run(void) { ops(); }\n",
        "fuse/ops.c": "void cache_get(void);\nvoid name_of(void);\nvoid ops(void) { cache_get(); name_of(); }\n",
        "cache/store.c": "void log_line(void);\nvoid cache_get(void) { log_line(); }\n",
        "format/names.c": "void log_line(void);\nvoid name_of(void) { log_line(); }\n",
        "util/log.c": "void log_line(void) {}\n",
    })
    assert rc == 0, out
    assert "6 object files, 6 edges, 0 cycles, 0 upward edges" in out, out


def test_format_may_use_only_util(tmp_path):
    rc, out = deps(tmp_path, {
        "format/render.c": "void http_get(void);\nvoid render(void) { http_get(); }\n",
        "net/http.c": "void http_get(void) {}\n",
    })
    assert rc == 1 and "upward: format/render (format) -> net/http (net): http_get" in out, out


def test_no_build_is_an_error_not_a_pass(tmp_path):
    rc, out = deps(tmp_path, {})
    assert rc == 2 and "no object files" in out, out


def test_a_programs_own_copy_of_a_file_is_not_a_file_of_src(tmp_path):
    """A unit test that compiles a file of src/ itself (automake names that object
    PROGRAM-file.o, beside the file's own) defines the same symbols: it is left out."""
    rc, out = deps(tmp_path, {
        "util/locks.c": "void lock_it(void) {}\n",
        "util/unit_test_locks-locks.c": "void lock_it(void) {}\nvoid ops_fn(void);\nvoid t(void) { ops_fn(); }\n",
        "fuse/ops.c": "void lock_it(void);\nvoid ops_fn(void) { lock_it(); }\n",
    })
    assert rc == 0, out
    assert "2 object files, 1 edges, 0 cycles, 0 upward edges" in out, out


def test_a_header_of_a_higher_layer_is_an_upward_include(tmp_path):
    """A lower layer that reads a higher one's types calls nothing there, so no symbol shows
    it: its #include does, and fails as an edge up would."""
    (tmp_path / "c" / "dialect").mkdir(parents=True)
    (tmp_path / "c" / "dialect" / "dialect.h").write_text("struct table { int n; };\n")
    rc, out = deps(tmp_path, {
        "format/ctl.c": '#include "util/log.h"\n#include "dialect/dialect.h"\n'
                        "int ctl_n(const struct table *t) { return t->n; }\n",
        "util/log.h": "void log_line(void);\n",
    })
    assert rc == 1, out
    assert "upward include: format/ctl.c:2 (format) includes dialect/dialect.h" in out, out
    assert "util/log.h" not in out.split("upward include:")[1], out  # down: fine
    assert "0 cycles, 0 upward edges, 1 upward includes" in out, out
