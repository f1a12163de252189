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


@pytest.fixture
def shakes(tmp_path, shake_bin):
    """Live sync runs in the background: `shakes.config(source, target, **kw)` writes a
    `type = sync` config in tmp_path (checkpoint dir tmp_path/shake-data, the same for every
    config of the test, so a restart resumes), `shakes(conf_path)` starts a ShakeProcess.
    Every one still running at the end of the test is killed (SIGKILL, by pid)."""
    started = []
    dir_ = os.path.join(str(tmp_path), "shake-data")

    def start(conf_path, name=None, env=None, echo=None):
        p = harness.ShakeProcess(str(conf_path), binary=shake_bin, env=env, echo=echo,
                                 name=name or "shake#%d" % (len(started) + 1))
        started.append(p)
        return p

    def config(source, target, conf_name="sync.ini", **kw):
        kw.setdefault("shake_dir", dir_)
        kw.setdefault("checkpoint_interval_ms", 200)
        # no status endpoint: tests running side by side must not fight over 127.0.0.1:9121
        extra = {sec: dict(kv) for sec, kv in (kw.pop("extra_sections", None) or {}).items()}
        extra.setdefault("shake", {}).setdefault("status", "")
        kw["extra_sections"] = extra
        return harness.write_sync_config(os.path.join(str(tmp_path), conf_name), source, target, **kw)

    start.config = config
    start.dir = dir_
    start.checkpoint = os.path.join(dir_, "checkpoint")
    yield start
    for p in started:
        p.kill()
