"""Fixtures for the integration tests: real redis-server processes from harness.py.

  standalone      a fresh empty server (function scope)
  servers         a factory: servers(config, name=...) starts more, all stopped after the test
  cluster         a 3-master cluster, empty (FLUSHALL + FUNCTION FLUSH) at the start of each
                  test; built once per session and rebuilt if a test left it unhealthy
  shake_bin       absolute path of the binary under test (env SHAKE_BIN); fails the test
                  clearly when it is missing
  fixtures_dir    the RDB fixtures (env SHAKE_FIXTURES, default <repo>/../shared/fixtures/rdb)
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


@pytest.fixture
def servers():
    started = []

    def start(config=None, name="redis", **kw):
        s = harness.start_server(config, name=name, **kw)
        started.append(s)
        return s

    def load(rdb_path, config=None, name="loader"):
        s = harness.start_with_rdb(rdb_path, config, name=name)
        started.append(s)
        return s

    start.load = load
    yield start
    for s in started:
        s.stop()


@pytest.fixture
def standalone(servers):
    return servers(name="standalone")


@pytest.fixture(scope="session")
def _cluster_session():
    holder = {"cluster": harness.Cluster().start()}
    yield holder
    holder["cluster"].stop()


@pytest.fixture
def cluster(_cluster_session):
    c = _cluster_session["cluster"]
    if not c.healthy():
        c.stop()
        c = _cluster_session["cluster"] = harness.Cluster().start()
    c.flush()
    return c


@pytest.fixture(scope="session")
def shake_bin():
    path = harness.shake_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("shake binary not found at %s (build it with `make bin/shake`, or set SHAKE_BIN)" % path,
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def fixtures_dir():
    path = os.environ.get("SHAKE_FIXTURES") or os.path.join(REPO_ROOT, "..", "shared", "fixtures", "rdb")
    return os.path.abspath(path)
