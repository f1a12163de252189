"""Live sync under faults: resume after SIGTERM and kill -9 (in the stream and in the RDB),
a dropped source link, a source failover, a target reshard, and bad source credentials.

Resume is proven with the source's own counters (INFO stats: sync_partial_ok grows by one,
sync_full does not), shake's log ("continuing ..."), and the data: every sequence-numbered
write on the target exactly once (idempotent-only after kill -9, see below).
"""

import re
import time
import warnings

import pytest

import dataset
import harness
from harness import sync_counters, wait_until
from livesync import (EQUAL_WAIT, FULL_SYNC, LOG_WAIT, RDB_RECEIVED, SeqWriter, assert_stops_cleanly,
                      read_checkpoint, source_config, stretch_rdb, wait_equal)

CONTINUING = r"continuing ([0-9a-f]{40}) at offset (\d+), no full sync needed"


def start_synced(servers, shakes, target=None, conf=None, **fill):
    """A small filled standalone source, a target, and shake past its RDB phase."""
    source = servers(source_config(), name="source")
    fill.setdefault("scale", 0)
    fill.setdefault("dbs", (0, 1))
    fill.setdefault("functions", False)
    dataset.fill(source, **fill)
    # Keys arrive a little apart, so the first read is not header + 64 KB of RDB (that case
    # has its own test, test_sync.py::test_fast_rdb_arriving_with_its_header_in_one_read).
    stretch_rdb(source, 200)
    target = target or servers(name="target")
    conf = shakes.config(source, target, **(conf or {}))
    p = shakes(conf)
    p.wait_for(FULL_SYNC, LOG_WAIT)
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    assert sync_counters(source) == (1, 0)
    return source, target, conf, p


# --- resume ---------------------------------------------------------------------------------

def test_sigterm_during_the_stream_then_resume_without_full_sync(servers, shakes):
    source, target, conf, p = start_synced(servers, shakes)
    writer = SeqWriter(source, "w").start(max_seconds=60)   # flows through stop and restart
    writer.wait_count(300)
    writer.wait_applied(target, 300, shake=p)
    rc = p.stop()
    assert rc == 0, p.describe()
    cp = read_checkpoint(shakes.checkpoint)
    assert "standalone" in cp, "no checkpoint after SIGTERM: %r\n%s" % (cp, p.describe())
    stopped_at = writer.count
    writer.wait_count(stopped_at + 300)    # written while shake is down

    p2 = shakes(conf)
    m = p2.wait_for(CONTINUING, LOG_WAIT)
    assert m.group(1) == cp["standalone"][0], (m.group(0), cp)
    assert int(m.group(2)) == cp["standalone"][1], (m.group(0), cp)
    writer.wait_count(writer.count + 300)
    writer.stop()
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p2)
    writer.check(target)                   # INCR and RPUSH exactly once: nothing replayed
    assert sync_counters(source) == (1, 1), "expected (sync_full, sync_partial_ok) = (1, 1)"
    assert p2.find(FULL_SYNC) is None, p2.describe()
    assert_stops_cleanly(p2)


def test_sigterm_right_after_the_rdb_then_resume_without_full_sync(servers, shakes):
    """An idle source: the checkpoint must hold the RDB's own offset, not nothing."""
    source, target, conf, p = start_synced(servers, shakes)
    time.sleep(0.5)  # a few checkpoint intervals
    assert p.stop() == 0, p.describe()
    assert "standalone" in read_checkpoint(shakes.checkpoint), (
        "no shard in the checkpoint after a complete RDB and SIGTERM: a restart would do a full sync "
        "again\n" + p.describe())
    p2 = shakes(conf)
    p2.wait_for(CONTINUING, LOG_WAIT)
    source.client().set(b"after-restart", b"1")
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p2)
    assert target.client().get(b"after-restart") == b"1"
    assert sync_counters(source) == (1, 1)
    assert_stops_cleanly(p2)


def _duplicated_segment(source_log, target_log):
    """How target_log relates to source_log: 0 when equal, n when exactly one contiguous run
    of n source writes appears twice (a replay); raises on anything else (a lost write)."""
    if target_log == source_log:
        return 0
    n = len(target_log) - len(source_log)
    assert n > 0, "target has %d writes, source %d: writes were lost" % (len(target_log), len(source_log))
    i = next(i for i, (a, b) in enumerate(zip(source_log, target_log)) if a != b)
    # target = source[:i] + source[j:] with i - j == n: the run source[j:i] applied twice
    j = i - n
    assert j >= 0 and target_log == source_log[:i] + source_log[j:], (
        "target log is not the source log with one replayed run: first difference at %d" % i)
    return n


def test_kill9_during_the_stream_resumes_from_the_checkpoint(servers, shakes, record_property):
    """kill -9 loses at most the last checkpoint interval of acknowledgements: those commands
    are received again and applied a second time. Idempotent writes (SET seq:N) must end exactly
    equal; non-idempotent ones (INCR, RPUSH) may apply twice, and how many did is reported."""
    source, target, conf, p = start_synced(servers, shakes, conf={"checkpoint_interval_ms": 1000})
    idem = SeqWriter(source, "idem", idempotent_only=True).start(max_seconds=60)
    replay = SeqWriter(source, "replay").start(max_seconds=60)
    idem.wait_count(500)
    replay.wait_count(500)
    replay.wait_applied(target, 500, shake=p)
    time.sleep(1.2)                               # at least one checkpoint in the stream
    p.kill()                                      # SIGKILL while writes flow
    assert p.returncode == -9
    cp = read_checkpoint(shakes.checkpoint)
    assert "standalone" in cp, "no checkpoint after a second of streaming: %r" % cp
    idem.wait_count(idem.count + 300)

    p2 = shakes(conf)
    m = p2.wait_for(CONTINUING, LOG_WAIT)
    # From the durable checkpoint, or from the newer live record (checkpoint.live)
    assert int(m.group(2)) >= cp["standalone"][1], (m.group(0), cp)
    idem.wait_count(idem.count + 300)
    idem.stop()
    replay.stop()
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p2, ignore=lambda d: "replay:" in d)
    idem.check(target)
    assert sync_counters(source) == (1, 1), "expected (sync_full, sync_partial_ok) = (1, 1)"
    assert p2.find(FULL_SYNC) is None, p2.describe()

    # non-idempotent writes: at least once, possibly twice for the last checkpoint interval
    t = target.client()
    src_log = source.client().lrange(b"replay:log", 0, -1)
    tgt_log = t.lrange(b"replay:log", 0, -1)
    twice = _duplicated_segment(src_log, tgt_log)
    counter = int(t.get(b"replay:counter"))
    # RPUSH and INCR alternate: the replayed run may start or end between the two
    assert abs(counter - (replay.count + twice)) <= 1, (counter, replay.count, twice)
    record_property("replayed_twice_after_kill9", twice)
    if twice:
        warnings.warn("kill -9 during the stream: %d of %d non-idempotent writes (INCR/RPUSH) were "
                      "applied twice on restart (replayed since the checkpoint)" % (twice, replay.count))
    assert_stops_cleanly(p2)


LIVE_RESUME = r"checkpoint: 1 shard\(s\) resume from \S+checkpoint.live"


def test_kill9_between_two_checkpoint_saves_replays_nothing_acknowledged(servers, shakes):
    """The live record (dir/checkpoint.live) holds the position of the last acknowledged write.
    The durable checkpoint is put back to its copy from before the writes, as if the kill had
    come right after that save: the restart must still apply none of them a second time."""
    source, target, conf, p = start_synced(servers, shakes)
    def streaming_saved():
        replid = read_checkpoint(shakes.checkpoint).get("standalone", ("0" * 40,))[0]
        return replid != "0" * 40      # 40 zeros: "full sync in progress"
    wait_until(streaming_saved, 5, what="a durable checkpoint in the stream", shake=p)
    with open(shakes.checkpoint, "rb") as f:
        before_writes = f.read()
    saved = read_checkpoint(shakes.checkpoint)["standalone"]
    writer = SeqWriter(source, "w").start(max_seconds=30)
    writer.wait_count(400)
    writer.stop()
    writer.wait_applied(target, writer.count - 1, shake=p)
    time.sleep(0.3)                   # the last replies are read and acknowledged
    p.kill()
    with open(shakes.checkpoint, "wb") as f:
        f.write(before_writes)

    p2 = shakes(conf)
    p2.wait_for(LIVE_RESUME, LOG_WAIT)
    m = p2.wait_for(CONTINUING, LOG_WAIT)
    assert int(m.group(2)) > saved[1], (m.group(0), saved)
    writer.start(max_seconds=30)
    writer.wait_count(writer.count + 100)
    writer.stop()
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p2)
    writer.check(target)              # INCR and RPUSH exactly once
    assert sync_counters(source) == (1, 1), "expected (sync_full, sync_partial_ok) = (1, 1)"
    assert_stops_cleanly(p2)


def test_kill9_during_the_rdb_then_a_full_sync_ends_equal(servers, shakes):
    source = servers(source_config(), name="source")
    dataset.fill(source, scale=1, dbs=(0,), functions=False)
    stretch_rdb(source, 10000)               # ~300 keys: about 3 s of RDB
    target = servers(name="target")
    conf = shakes.config(source, target)
    p = shakes(conf)
    p.wait_for(FULL_SYNC, LOG_WAIT)
    wait_until(lambda: target.client().dbsize() >= 20, 15, shake=p, what="the first keys of the RDB on the target")
    assert p.find(RDB_RECEIVED) is None, "the RDB phase ended before the kill: the test proves nothing"
    p.kill()
    landed = target.client().dbsize()
    assert landed < source.client().dbsize()
    stretch_rdb(source, 0)
    # a key that reached the target in the interrupted RDB is deleted meanwhile
    gone = next(k for k in target.client().scan_iter(count=1000))
    source.client().delete(gone)
    source.client().set(b"between-runs", b"1")

    p2 = shakes(conf)
    p2.wait_for(FULL_SYNC, LOG_WAIT)
    assert p2.find(CONTINUING) is None
    p2.wait_for(RDB_RECEIVED, LOG_WAIT)
    source.client().set(b"after-restart", b"2")
    stale = "db0 key %s: extra on target" % repr(gone)[:80]
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p2, ignore=lambda d: d.startswith(stale))
    assert target.client().get(b"after-restart") == b"2"
    assert sync_counters(source)[0] == 2, "expected a second full sync"
    assert target.client().exists(gone) == 0, (
        "key %r, deleted on the source between the interrupted and the new full sync, is still on "
        "the target: the full resync does not remove what the interrupted one wrote" % gone)
    assert_stops_cleanly(p2)


# --- the source link ------------------------------------------------------------------------

def test_client_kill_replica_reconnects_and_continues(servers, shakes):
    source, target, conf, p = start_synced(servers, shakes)
    writer = SeqWriter(source, "w").start(max_seconds=60)
    writer.wait_count(300)
    writer.wait_applied(target, 300, shake=p)
    killed = source.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
    assert killed == 1, "CLIENT KILL TYPE replica killed %r connections" % killed
    writer.wait_count(writer.count + 300)
    try:
        wait_until(lambda: sync_counters(source) == (1, 1), 15, shake=p,
                   what="shake reconnecting with PSYNC continue (sync_full 1, sync_partial_ok 1)")
    except AssertionError as e:
        raise AssertionError("%s; (sync_full, sync_partial_ok) now %r, replicas: %r\n%s"
                             % (e, sync_counters(source), source.client().info("replication").get("connected_slaves"),
                                p.describe(15))) from None
    writer.wait_count(writer.count + 300)
    writer.stop()
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    writer.check(target)
    assert sync_counters(source) == (1, 1)
    assert_stops_cleanly(p)


def test_source_failover_to_the_promoted_replica(servers, shakes):
    # No periodic PING from the master: one sent between the last check of the
    # replica's offset and the promotion would reach shake but not the replica, and
    # then no partial resync is possible (for a real replica either).
    master = servers(source_config(**{"repl-ping-replica-period": 3600}), name="master")
    dataset.fill(master, scale=0, dbs=(0, 1), functions=False)
    stretch_rdb(master, 200)
    replica = servers(source_config(replicaof="%s %d" % (harness.HOST, master.port)), name="replica")
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", 15,
               what="the replica's link to the master")
    target = servers(name="target")
    p = shakes(shakes.config([master, replica], target))   # two candidates: shake picks the master
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    assert sync_counters(master) == (2, 0)                # the replica's and shake's
    writer = SeqWriter(master, "w").start()
    writer.wait_count(500)
    writer.stop()
    wait_equal(master, target, timeout=EQUAL_WAIT, shake=p)
    offset = master.client().info("replication")["master_repl_offset"]
    wait_until(lambda: replica.client().info("replication")["master_repl_offset"] >= offset, 15,
               what="the replica catching up")

    since = p.mark()
    replica.client().execute_command("REPLICAOF", "NO", "ONE")
    master.stop()
    writer.retarget(replica)
    writer.start()
    writer.wait_count(writer.count + 300)
    writer.stop()
    try:
        wait_until(lambda: sync_counters(replica) != (0, 0), 20, shake=p,
                   what="shake connecting to the promoted replica %s" % replica.address)
    except AssertionError as e:
        raise AssertionError("%s: its sync counters stay (0, 0)\n%s" % (e, p.describe(10))) from None
    wait_equal(replica, target, timeout=EQUAL_WAIT, shake=p)
    writer.check(target)
    assert sync_counters(replica) == (0, 1), (
        "expected PSYNC continue on the promoted replica, no full sync\n" + p.describe()
        + "\n--- promoted replica ---\n" + replica.log_tail(20))
    assert p.find(FULL_SYNC, since=since) is None, p.describe()
    assert_stops_cleanly(p)


# --- the target -----------------------------------------------------------------------------

@pytest.fixture
def fresh_cluster():
    c = harness.Cluster().start()
    yield c
    c.stop()


def test_target_reshard_while_writes_flow_loses_nothing(servers, shakes, fresh_cluster):
    target = fresh_cluster
    source, _, conf, p = start_synced(servers, shakes, target=target, dbs=(0,))
    before = target.slot_ranges()
    writer = SeqWriter(source, "w").start(max_seconds=90)
    writer.wait_count(300)
    writer.wait_applied(target, 300, shake=p)
    a, b, c = target.masters()
    target.reshard(a, b, 1500)
    writer.wait_count(writer.count + 100)
    target.reshard(c, a, 700)
    writer.wait_count(writer.count + 300)
    writer.stop()
    assert target.slot_ranges() != before
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    writer.check(target)
    assert_stops_cleanly(p)


# --- bad input ------------------------------------------------------------------------------

QUICK = 15


def test_acl_user_with_only_psync_replconf_ping_is_enough(servers, shakes):
    source = servers(source_config(), name="source")
    dataset.fill(source, scale=0, dbs=(0, 1), functions=False)
    stretch_rdb(source, 200)
    source.client().execute_command("ACL", "SETUSER", "repl", "on", ">replpw", "+psync", "+replconf", "+ping")
    target = servers(name="target")
    p = shakes(shakes.config(source, target, username="repl", password="replpw"))
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    source.client(db=1).set(b"d1:after", b"1")   # SELECT in the stream
    source.client().set(b"after", b"0")
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    assert target.client(db=1).get(b"d1:after") == b"1"
    assert_stops_cleanly(p)


def test_acl_user_without_psync_is_a_clear_error(servers, shakes):
    source = servers(source_config(), name="source")
    source.client().set(b"k", b"v")
    source.client().execute_command("ACL", "SETUSER", "limited", "on", ">pw", "+ping", "+replconf",
                                    "+info", "+role", "+cluster", "~*")
    target = servers(name="target")
    p = shakes(shakes.config(source, target, username="limited", password="pw"))
    rc = p.wait_exit(QUICK)
    assert rc == 1, "expected exit 1 within %ss\n%s" % (QUICK, p.describe())
    line = harness.assert_one_error(p.result(), 1, source.address)
    assert re.search(r"(?i)psync", line) and re.search(r"(?i)NOPERM|permission", line), line
    assert target.client().dbsize() == 0


def test_wrong_source_password_is_a_clear_error(servers, shakes):
    source = servers(source_config(requirepass="right"), name="source")
    source.client().set(b"k", b"v")
    target = servers(name="target")
    p = shakes(shakes.config(source, target, password="wrong"))
    rc = p.wait_exit(QUICK)
    assert rc == 1, "expected exit 1 within %ss\n%s" % (QUICK, p.describe())
    line = harness.assert_one_error(p.result(), 1, source.address)
    assert re.search(r"(?i)auth|password|WRONGPASS", line), line
    assert target.client().dbsize() == 0


def test_unreachable_source_is_a_clear_error(servers, shakes):
    address = "%s:%d" % (harness.HOST, harness.free_port())   # nobody listens there
    target = servers(name="target")
    p = shakes(shakes.config(address, target))
    rc = p.wait_exit(QUICK)
    assert rc == 1, "expected exit 1 within %ss\n%s" % (QUICK, p.describe())
    harness.assert_one_error(p.result(), 1, address)


# --- a slow target --------------------------------------------------------------------------

def spool_files(shakes):
    import os
    return [f for f in os.listdir(shakes.dir) if f.startswith("spool-")]


def test_slow_target_spools_to_disk_and_the_source_never_drops_shake(servers, shakes):
    """While the target is paused, the command stream goes to spool files under [shake]
    dir instead of memory, shake keeps reading, and the source (whose replica output
    buffer may stay above 4 MB for one second at most here) never drops it: no
    reconnect, no partial resync."""
    # Soft limit: a replica more than 4 MB behind for a whole second is dropped. A burst
    # a reader keeps up with passes; a reader that stopped while the target sleeps does not.
    source = servers(source_config(**{"client-output-buffer-limit": "replica 256mb 4mb 1"}),
                     name="source")
    dataset.fill(source, scale=0, dbs=(0,), functions=False)
    target = servers(name="target")
    conf = shakes.config(source, target,
                         extra_sections={"shake": {"max_buffered": "64kb", "spool_max": "1gb"},
                                         "target": {"pipeline_max_bytes": "64kb"}})
    p = shakes(conf)
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    target.client().execute_command("CLIENT", "PAUSE", 4000, "ALL")
    value = b"v" * 800
    client = source.client()
    # About 25 MB of stream, 6x the replica buffer limit, in batches small enough that
    # one batch never fills that buffer by itself (a real replica would be dropped too).
    for batch in range(60):
        pipe = client.pipeline(transaction=False)
        for i in range(batch * 500, batch * 500 + 500):
            pipe.set(b"slow:%06d" % i, value)
        pipe.execute()
    try:
        wait_until(lambda: spool_files(shakes), 10, shake=p, what="spool files under [shake] dir")
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, p.describe())) from None
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    assert target.client().get(b"slow:029999") == value
    wait_until(lambda: not spool_files(shakes), 10, shake=p, what="the spool drained and removed")
    assert sync_counters(source) == (1, 0), "the source dropped shake: it reconnected\n" + p.describe()
    assert p.find(r"link lost") is None, p.describe()
    assert_stops_cleanly(p)


def test_cluster_source_master_killed_shake_continues_on_the_promoted_replica(servers, shakes):
    """A source cluster master dies and the cluster promotes its replica. shake finds the
    shard's new master from the other nodes (even though the configured address is the
    dead one) and continues there with PSYNC: no new full sync, no write lost."""
    import subprocess
    cfg = source_config(**{"cluster-node-timeout": 1000})
    source = harness.Cluster(cfg, masters=3).start()
    try:
        dead = source.nodes[0]
        replica = harness.RedisServer(cfg, name="replica0", cluster=True).start()
        r = subprocess.run([harness.REDIS_CLI, "--cluster", "add-node", replica.address, dead.address,
                            "--cluster-slave", "--cluster-master-id", source.node_id(dead)],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        wait_until(lambda: replica.client().info("replication").get("master_link_status") == "up", 20,
                   what="the replica linked to its master")
        target = servers(name="target")
        conf = shakes.config(dead, target)           # the configured address is the one that dies
        p = shakes(conf)
        for _ in range(3):
            p.wait_for(RDB_RECEIVED, LOG_WAIT)
        from livesync import client_for
        c = client_for(source)
        for i in range(300):
            c.set("before:%d" % i, i)
        wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
        offset = dead.client().info("replication")["master_repl_offset"]
        wait_until(lambda: replica.client().info("replication")["master_repl_offset"] >= offset, 15,
                   what="the replica catching up")
        since = p.mark()
        dead.proc.kill()                                # no SHUTDOWN: a crash
        dead.proc.wait(timeout=10)
        wait_until(lambda: replica.client().info("replication")["role"] == "master", 30,
                   what="the cluster promoting the replica")
        source.nodes[0] = replica
        wait_until(lambda: all(b"cluster_state:ok" in n.client().execute_command("CLUSTER", "INFO")
                               for n in source.nodes), 30, what="the source cluster ok again")
        c = client_for(source)
        for i in range(300):
            c.set("after:%d" % i, i)
        p.wait_for(r"master moved from 127\.0\.0\.1:%d to 127\.0\.0\.1:%d" % (dead.port, replica.port),
                   LOG_WAIT)
        wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
        assert target.client().get(b"after:299") == b"299"
        assert sync_counters(replica)[1] >= 1, "expected PSYNC continue on the promoted replica"
        assert p.find(FULL_SYNC, since=since) is None, p.describe()
        assert_stops_cleanly(p)
    finally:
        source.stop()
