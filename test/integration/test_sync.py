"""Live sync (`[source] type = sync`) against real servers: topologies and source settings.

Every test: a filled source, shake in the background, writes during the RDB phase (a writer
thread started before shake, with the source's rdb-key-save-delay stretching the RDB) and
during the stream, then the target must equal the source key by key (compare.py, polled with
a timeout), every sequence-numbered write must be there exactly once, a few values are read
back directly, and SIGTERM must end shake with status 0 and a checkpoint that covers every
write. Faults and bad input are in test_sync_faults.py.
"""

import time

import pytest

import dataset
import harness
from livesync import (DISK_SYNC, EQUAL_WAIT, FAST_SYNC, FULL_SYNC, LOG_WAIT, RDB_RECEIVED, SeqWriter,
                      assert_checkpoint_covers, assert_stops_cleanly, client_for, fill_cluster,
                      read_checkpoint, redis_log, replication_position, shard_names, source_config,
                      stretch_rdb, wait_equal)

def stream_writes(c0, c1=None, c5=None):
    """Ordinary single-key writes of every type after the RDB, on a standalone source (c0 on
    db 0, c1/c5 on dbs 1/5). Returns a check(target client for db 0, for db 1, for db 5)."""
    c0.hset(b"hash:small", b"f4", b"set in the stream")
    c0.hdel(b"hash:big", b"field0")
    c0.execute_command("ZADD", b"zset:special", b"-1.5e-7", b"streamed")
    c0.zincrby(b"zset:big", 0.1, b"m1")
    c0.lpush(b"list:small", b"head")
    c0.rpop(b"list:medium")
    c0.sadd(b"set:intset16", b"99")
    c0.srem(b"set:strings", *list(c0.smembers(b"set:strings"))[:3])
    c0.execute_command("XADD", b"stream:basic", b"2000-1", b"streamed", b"yes")
    # (not XREADGROUP: Redis 7.0 propagates it as XCLAIM without the group's entries-read, so even
    # a real replica ends with a different entries-read; compare.py would flag it)
    c0.execute_command("XCLAIM", b"stream:basic", "readers", "r2", "0", b"1000-2")
    c0.execute_command("XGROUP", "CREATECONSUMER", b"stream:basic", "readers", "r3")
    c0.execute_command("XACK", b"stream:basic", "readers", b"1000-1")
    c0.delete(b"str:raw")
    c0.set(b"str:embstr", b"changed", px=3600000)
    c0.append(b"str:appended", b" and in the stream")
    c0.incrbyfloat(b"str:float", 1.25)
    c0.expire(b"list:one", 7200)
    c0.persist(b"ttl:sec")
    c0.set(b"stream:new-string \x00\xff", b"\x00\r\n")
    if c1 is not None:
        c1.set(b"d1:streamed", b"in db 1")
        c1.rpush(b"d1:list", b"pushed")
        c1.delete(b"d1:str")
    if c5 is not None:
        c5.hset(b"d5:hash", b"streamed", b"5")

    def check(t0, t1=None, t5=None):
        assert t0.hget(b"hash:small", b"f4") == b"set in the stream"
        assert t0.hget(b"hash:big", b"field0") is None
        assert t0.zscore(b"zset:special", b"streamed") == -1.5e-7
        assert t0.lindex(b"list:small", 0) == b"head"
        assert t0.exists(b"str:raw") == 0
        assert t0.get(b"str:embstr") == b"changed" and 0 < t0.pttl(b"str:embstr") <= 3600000
        assert t0.get(b"str:appended") == b"grown by append twice and in the stream"
        assert t0.get(b"str:float") == b"4.39159"
        assert t0.ttl(b"ttl:sec") == -1
        assert t0.get(b"stream:new-string \x00\xff") == b"\x00\r\n"
        assert t0.get(b"str:int64min") == dataset.INT64_MIN          # from the RDB
        assert t0.lrange(b"list:plain", -1, -1) == [b"Z" * 30000]       # from the RDB
        if t1 is not None:
            assert t1.get(b"d1:streamed") == b"in db 1"
            assert t1.lrange(b"d1:list", 0, -1) == [b"x", b"y", b"1", b"pushed"]
            assert t1.exists(b"d1:str") == 0
        if t5 is not None:
            assert t5.hgetall(b"d5:hash") == {b"db": b"5", b"streamed": b"5"}
    return check


# --- standalone -> standalone ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["diskless", "disk"])
def test_standalone_to_standalone_with_writes_during_rdb_and_stream(servers, shakes, mode):
    source = servers(source_config(sync=FAST_SYNC if mode == "diskless" else DISK_SYNC), name="source")
    manifest = dataset.fill(source, scale=1)
    stretch_rdb(source, 3000)  # ~350 keys: about a second of RDB
    target = servers(name="target")
    writer = SeqWriter(source, "w").start()
    writer.wait_count(20)

    p = shakes(shakes.config(source, target))
    m = p.wait_for(FULL_SYNC, LOG_WAIT)
    assert m.group(3) == "no checkpoint", m.group(0)
    assert m.group(1) == replication_position(source)[0]
    at_full_sync = writer.count
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    during_rdb = writer.count - at_full_sync
    assert during_rdb > 0, "no write happened during the RDB phase: the test proves nothing"
    stretch_rdb(source, 0)

    check = stream_writes(source.client(), source.client(db=1), source.client(db=5))
    writer.wait_count(writer.count + 300)
    writer.stop()
    writes_done_at = replication_position(source)[1]

    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    writer.check(target)
    check(target.client(), target.client(db=1), target.client(db=5))
    # + the writer's seq keys, log and counter; + stream:new-string, - str:raw
    assert target.client().dbsize() == len(manifest.keys[0]) + writer.count + 2
    # the framing the source chose is the one this test is about
    want = "replicas sockets" if mode == "diskless" else "disk"
    assert "Starting BGSAVE for SYNC with target: %s" % want in redis_log(source)
    assert harness.sync_counters(source) == (1, 0)

    assert_stops_cleanly(p)
    assert_checkpoint_covers(shakes.checkpoint, "standalone", replication_position(source)[0], writes_done_at)


def test_fast_rdb_arriving_with_its_header_in_one_read(servers, shakes):
    """No delay anywhere: the `$EOF:` line and the first hundreds of KB of RDB come in one
    read. Nothing written after the RDB: this is the RDB phase alone."""
    source = servers(source_config(profile="default"), name="source")
    dataset.fill(source, scale=3, dbs=(0,), functions=False)
    dataset.fill_big(source, count=40, value_size=16 * 1024)   # ~650 KB of incompressible values
    target = servers(name="target")
    p = shakes(shakes.config(source, target))
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    assert target.client().get(b"str:lzf") == b"compressible-" * 2000
    assert_stops_cleanly(p)


def test_default_diskless_delay_is_waited_out(servers, shakes):
    """Redis 7's defaults: diskless, 5 s delay before the fork. shake sees only keep-alive
    newlines meanwhile; writes made during the wait arrive in the stream."""
    source = servers(dataset.PROFILES["small"], name="source")
    assert source.client().config_get("repl-diskless-sync-delay")["repl-diskless-sync-delay"] == "5"
    dataset.fill(source, scale=0, dbs=(0,), functions=False)
    target = servers(name="target")
    t0 = time.monotonic()
    p = shakes(shakes.config(source, target))
    writer = SeqWriter(source, "w", pause=0.01).start()
    p.wait_for(FULL_SYNC, 15)
    p.wait_for(RDB_RECEIVED, 15)
    waited = time.monotonic() - t0
    assert waited >= 4.0, "RDB received after %.1fs: the 5 s diskless delay was not in effect" % waited
    writer.wait_count(writer.count + 50)
    writer.stop()
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    writer.check(target)
    assert "Starting BGSAVE for SYNC with target: replicas sockets" in redis_log(source)
    assert_stops_cleanly(p)


# --- standalone -> cluster ------------------------------------------------------------------

def _slot(cluster, key):
    return cluster.nodes[0].client().execute_command("CLUSTER", "KEYSLOT", key)


def test_standalone_to_cluster_db_map_multikey_and_transactions(servers, cluster, shakes):
    source = servers(source_config(), name="source")
    dataset.fill(source, scale=0, dbs=(0, 1, 5), functions=True)
    stretch_rdb(source, 2000)
    db_map = {1: 0, 5: 0}
    w0 = SeqWriter(source, "w0").start()
    w1 = SeqWriter(source, "d1w", db=1).start()   # interleaves SELECT 0 / SELECT 1 in the stream
    w0.wait_count(20)

    p = shakes(shakes.config(source, cluster, db_map=db_map))
    p.wait_for(FULL_SYNC, LOG_WAIT)
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    stretch_rdb(source, 0)

    c0, c1 = source.client(), source.client(db=1)
    # multi-key commands whose keys live on different slots (and masters) of the target
    keys = [b"mk:a", b"mk:b", b"mk:c", b"mk:d"]
    assert len({_slot(cluster, k) for k in keys}) == 4
    c0.mset({b"mk:a": b"1", b"mk:b": b"2", b"mk:c": b"3", b"mk:d": b"4"})
    c0.delete(b"mk:a", b"mk:c", b"str:lzf", b"list:one")
    c0.msetnx({b"mk:new1": b"n1", b"mk:new2": b"n2"})
    c0.unlink(b"set:one", b"zset:ties")
    assert _slot(cluster, b"hash:big") != _slot(cluster, b"renamed:hash")
    c0.rename(b"hash:big", b"renamed:hash")
    c0.expire(b"renamed:hash", 9000)
    c0.renamenx(b"list:medium", b"renamed:list")
    # MULTI/EXEC on one slot, and one spanning slots
    tx = c0.pipeline(transaction=True)
    tx.set(b"{tx}:a", b"in a transaction").incr(b"{tx}:n").rpush(b"{tx}:l", b"1", b"2").incr(b"{tx}:n")
    tx.execute()
    tx = c0.pipeline(transaction=True)
    tx.set(b"tx2:a", b"A").set(b"tx2:b", b"B").delete(b"str:embstr")
    tx.execute()
    # db 1 (mapped to db 0): SELECT in the stream
    c1.mset({b"d1:x": b"x1", b"d1:y": b"y1"})
    c1.delete(b"d1:str", b"d1:int")
    c1.rename(b"d1:hash", b"d1:hash-renamed")
    source.client(db=5).rpush(b"d5:list", b"five")
    # a function library loaded in the stream must reach every target master
    source.client().execute_command("FUNCTION", "LOAD", "#!lua name=streamlib\n"
                                    "redis.register_function('s_one', function() return 1 end)")
    w0.wait_count(w0.count + 200)
    w0.stop()
    w1.stop()

    wait_equal(source, cluster, db_map=db_map, timeout=EQUAL_WAIT, shake=p)
    w0.check(cluster)
    w1.check(cluster)
    t = client_for(cluster)
    assert t.get(b"mk:b") == b"2" and t.get(b"mk:d") == b"4"
    assert t.exists(b"mk:a") == 0 and t.exists(b"mk:c") == 0 and t.exists(b"str:lzf") == 0
    assert t.get(b"mk:new2") == b"n2"
    assert t.exists(b"hash:big") == 0 and t.hlen(b"renamed:hash") == 300
    assert 0 < t.ttl(b"renamed:hash") <= 9000
    assert t.exists(b"list:medium") == 0 and t.llen(b"renamed:list") == 600
    assert t.get(b"{tx}:n") == b"2" and t.lrange(b"{tx}:l", 0, -1) == [b"1", b"2"]
    assert t.get(b"tx2:b") == b"B" and t.exists(b"str:embstr") == 0
    assert t.get(b"d1:x") == b"x1" and t.exists(b"d1:str") == 0 and t.hgetall(b"d1:hash-renamed") == {b"db": b"1"}
    assert t.lrange(b"d5:list", 0, -1) == [b"x", b"y", b"5", b"five"]
    for node in cluster.masters():
        libs = node.client().execute_command("FUNCTION", "LIST")
        names = sorted(dict(zip(l[0::2], l[1::2]))[b"library_name"] for l in libs)
        assert names == [b"shakelib", b"streamlib"], (node, names)
    assert_stops_cleanly(p)


# --- cluster -> cluster ---------------------------------------------------------------------

@pytest.fixture
def source_cluster():
    c = harness.Cluster(source_config(), masters=3).start()
    yield c
    c.stop()


@pytest.fixture
def cluster4():
    c = harness.Cluster(masters=4).start()
    yield c
    c.stop()


def test_cluster3_to_cluster4_with_writes_during_rdb_and_stream(source_cluster, cluster4, shakes):
    assert len(source_cluster.slot_ranges()) == 3 and len(cluster4.slot_ranges()) == 4
    fill_cluster(source_cluster, count=300)
    for n in source_cluster.masters():
        stretch_rdb(n, 5000)  # ~100 keys per master: half a second each
    writer = SeqWriter(source_cluster, "cw").start()
    writer.wait_count(20)

    # any node is enough to find the others: give the last one
    p = shakes(shakes.config(source_cluster.nodes[-1], cluster4))
    names = shard_names(source_cluster)
    for name in names:
        p.wait_for(r"shard %s \(127\.0\.0\.1:\d+\): full sync from" % name, LOG_WAIT)
    for name in names:
        p.wait_for(r"shard %s \(127\.0\.0\.1:\d+\): RDB received" % name, LOG_WAIT)
    for n in source_cluster.masters():
        stretch_rdb(n, 0)
    c = client_for(source_cluster)
    c.hset(b"c:00002", b"streamed", b"1")
    c.delete(b"c:00000")
    c.xadd(b"c:00005", {b"more": b"1"}, id=b"99999-1")
    c.set(b"c:ttl-in-stream", b"v", ex=5000)
    writer.wait_count(writer.count + 300)
    writer.stop()
    done_at = {n.port: replication_position(n)[1] for n in source_cluster.masters()}

    wait_equal(source_cluster, cluster4, timeout=EQUAL_WAIT, shake=p)
    writer.check(cluster4)
    t = client_for(cluster4)
    assert t.hget(b"c:00002", b"streamed") == b"1" and t.exists(b"c:00000") == 0
    assert t.get(b"c:binary:\x00\xff") == b"\x00\r\n\xff"
    assert t.zscore(b"c:zset:special", b"max") == 1.7976931348623157e308
    assert sum(n.client().dbsize() > 0 for n in cluster4.masters()) == 4
    assert all(harness.sync_counters(n) == (1, 0) for n in source_cluster.masters())
    assert_stops_cleanly(p)
    cp = read_checkpoint(shakes.checkpoint)
    assert sorted(cp) == names, cp
    for n in source_cluster.masters():
        lo = min(lo for lo, hi, port in source_cluster.slot_ranges() if port == n.port)
        name = next(x for x in names if x.startswith("slots-%d-" % lo))
        assert_checkpoint_covers(shakes.checkpoint, name, replication_position(n)[0], done_at[n.port])


# --- the config check on a non-empty target -------------------------------------------------

def test_on_existing_error_refuses_a_non_empty_target_without_a_checkpoint(servers, shakes):
    source = servers(source_config(), name="source")
    source.client().set(b"k", b"v")
    target = servers(name="target")
    target.client().set(b"mine", b"1")
    p = shakes(shakes.config(source, target, on_existing="error"))
    assert p.wait_exit(15) == 1, p.describe()
    harness.assert_one_error(p.result(), 1, target.address, "on_existing")
    assert target.client().keys() == [b"mine"]
    assert harness.sync_counters(source) == (0, 0), "shake replicated before refusing"
