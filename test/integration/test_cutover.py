"""`shake cutover` against real live syncs (docs/cutover.md).

Every test: a filled source, shake syncing it into a 3-master cluster target until the target
equals the source, then `shake cutover`. With the sync running it must print "safe to switch"
and exit 0, the barriers must have reached the target and be gone from both sides afterwards.
With shake killed it must time out with exit 1 naming every shard behind, and leave the source
unpaused (a write right after succeeds at once).
"""

import re
import time

import pytest

import harness
from livesync import EQUAL_WAIT, SeqWriter, client_for, fill_cluster, shard_names, source_config, wait_equal

# The status endpoint is another test's business; a fixed port would collide between runs.
NO_STATUS = {"shake": {"status": ""}}


@pytest.fixture
def source_cluster():
    c = harness.Cluster(source_config(), masters=3).start()
    yield c
    c.stop()


def barrier_keys(endpoint):
    """Every shake barrier key left on a server or a cluster (all masters, db 0)."""
    nodes = endpoint.masters() if isinstance(endpoint, harness.Cluster) else [endpoint]
    return [k for n in nodes for k in n.client().scan_iter(match=b"shake:barrier:*", count=1000)]


def start_sync(shakes, source, target):
    conf = shakes.config(source, target, extra_sections=NO_STATUS)
    p = shakes(conf)
    return conf, p


def cutover(conf, *args, timeout=60):
    return harness.run_shake(conf, args=["cutover", "-conf", conf] + list(args), timeout=timeout)


def assert_safe(result, shards):
    assert result.returncode == 0, result.describe()
    m = re.search(r"safe to switch: (\d+) shard\(s\) caught up in ([0-9.]+) s", result.stdout)
    assert m, result.describe()
    assert int(m.group(1)) == shards, result.describe()
    assert not result.error_lines, result.describe()


def assert_unpaused(source):
    """A write on every source master is accepted at once (not held by CLIENT PAUSE)."""
    nodes = source.masters() if isinstance(source, harness.Cluster) else [source]
    for n in nodes:
        key = b"probe-after-cutover"
        if isinstance(source, harness.Cluster):  # a key in a slot this master serves
            key = next(b"{p%d}after-cutover" % i for i in range(10000)
                       if source.node_for_key(b"{p%d}" % i) is n)
        c = n.client()
        c.connection_pool.connection_kwargs["socket_timeout"] = 2
        t0 = time.monotonic()
        c.set(key, b"1")
        assert time.monotonic() - t0 < 1.0, "a write on %s waited: the source is still paused" % n


@pytest.mark.parametrize("pause", [None, "3"])
def test_cutover_standalone_source_into_cluster_is_safe_and_cleans_up(servers, cluster, shakes, pause):
    source = servers(source_config(), name="source")
    source.client().set(b"before", b"1")
    conf, p = start_sync(shakes, source, cluster)
    wait_equal(source, cluster, timeout=EQUAL_WAIT, shake=p)
    writer = SeqWriter(source, "cut").start()
    writer.wait_count(50)
    result = cutover(conf, *(["--pause", pause] if pause else []))
    writer.stop()
    assert_safe(result, 1)
    if pause:
        assert "writes paused on 1 source master(s)" in result.stdout, result.describe()
    # Every write acknowledged before the barrier is on the target: the writer stopped after,
    # so the whole sequence must arrive (and the barrier keys must be gone from both sides).
    wait_equal(source, cluster, timeout=EQUAL_WAIT, shake=p)
    writer.check(cluster)
    assert barrier_keys(source) == [] and barrier_keys(cluster) == []
    assert_unpaused(source)
    assert p.alive(), p.describe()


@pytest.mark.parametrize("pause", [None, "3"])
def test_cutover_cluster_source_into_cluster_writes_one_barrier_per_master(source_cluster, cluster, shakes,
                                                                           pause):
    fill_cluster(source_cluster, count=60)
    conf, p = start_sync(shakes, source_cluster.nodes[0], cluster)
    wait_equal(source_cluster, cluster, timeout=EQUAL_WAIT, shake=p)
    result = cutover(conf, *(["--pause", pause] if pause else []))
    assert_safe(result, 3)
    assert "3 barrier(s) written" in result.stdout, result.describe()
    # Barriers went where each source master owns the slot; all gone now on both sides.
    harness.wait_until(lambda: barrier_keys(cluster) == [] and barrier_keys(source_cluster) == [], 10,
                       what="barriers deleted on both sides")
    assert_unpaused(source_cluster)


def test_cutover_with_the_sync_stopped_times_out_naming_every_shard_and_unpauses(source_cluster, cluster,
                                                                                  shakes):
    fill_cluster(source_cluster, count=30)
    conf, p = start_sync(shakes, source_cluster.nodes[0], cluster)
    wait_equal(source_cluster, cluster, timeout=EQUAL_WAIT, shake=p)
    p.kill()
    t0 = time.monotonic()
    result = cutover(conf, "--pause", "30", "--timeout", "1.5")
    assert result.returncode == 1, result.describe()
    assert time.monotonic() - t0 < 15, result.describe()
    behind = re.findall(r"^behind: shard (\S+) \(127\.0\.0\.1:\d+\): barrier (\S+)", result.stdout, re.M)
    assert sorted(name for name, _ in behind) == shard_names(source_cluster), result.describe()
    assert any("3 of 3 shard(s) behind" in l for l in result.error_lines), result.describe()
    # The pause asked for 30 s: only CLIENT UNPAUSE lets this write through now.
    assert_unpaused(source_cluster)
    assert barrier_keys(source_cluster) == [] and barrier_keys(cluster) == []


def test_cutover_standalone_timeout_names_the_shard(servers, cluster, shakes):
    source = servers(source_config(), name="source")
    conf, p = start_sync(shakes, source, cluster)
    wait_equal(source, cluster, timeout=EQUAL_WAIT, shake=p)
    p.kill()
    result = cutover(conf, "--timeout", "1")
    assert result.returncode == 1, result.describe()
    assert re.search(r"^behind: shard standalone \(127\.0\.0\.1:%d\)" % source.port, result.stdout, re.M), \
        result.describe()
    assert barrier_keys(source) == []
    assert_unpaused(source)
    # The sync is gone, so how far behind cannot be told: said, not guessed.
    assert "lag, from the running sync (shake status):" in result.stdout, result.describe()
    assert re.search(r"^  not available: ", result.stdout, re.M), result.describe()


def test_cutover_timeout_shows_how_far_each_shard_is_behind(servers, cluster, shakes):
    source = servers(source_config(), name="source")
    port = harness.free_port()
    conf = shakes.config(source, cluster, extra_sections={"shake": {"status": "127.0.0.1:%d" % port}})
    p = shakes(conf)
    wait_equal(source, cluster, timeout=EQUAL_WAIT, shake=p)
    for node in cluster.nodes:                   # the target takes no writes: they queue up
        node.client().execute_command("CLIENT", "PAUSE", 4000, "WRITE")
    result = cutover(conf, "--timeout", "1.5")
    assert result.returncode == 1, result.describe()
    assert re.search(r"^behind: shard standalone ", result.stdout, re.M), result.describe()
    assert "lag, from the running sync (shake status):" in result.stdout, result.describe()
    assert re.search(r"^\s*standalone\s", result.stdout, re.M), "no lag row for the shard\n" + result.describe()


def test_cutover_usage_errors_exit_2(servers, cluster, shakes, tmp_path):
    source = servers(name="source")
    conf = shakes.config(source, cluster, extra_sections=NO_STATUS)
    assert cutover(conf, "--pause", "-1").returncode == 2
    assert cutover(conf, "--bogus", "1").returncode == 2
    # Nothing listens on the source address: a connection error, exit 2, one line naming it.
    dead = harness.free_port()
    bad = shakes.config("127.0.0.1:%d" % dead, cluster, conf_name="dead.ini", extra_sections=NO_STATUS)
    result = cutover(bad)
    assert result.returncode == 2, result.describe()
    assert any("127.0.0.1:%d" % dead in l for l in result.error_lines), result.describe()
