"""pytest glue for tests/server: the refserver_factory fixture (see refserver_fixture.py)."""

from refserver_fixture import refserver_factory  # noqa: F401  (a pytest fixture)
