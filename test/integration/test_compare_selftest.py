"""Self-tests of the harness, dataset.py and compare.py, against real servers and without shake.

A compare that cannot fail would let every restore test pass: these tests prove it sees each
kind of damage, in standalone and cluster targets, and that an honest copy compares equal.
"""

import pytest

import compare
import dataset
import harness


def reference_copy(source, target, db_map=None):
    """Copy every key with DUMP/RESTORE (and functions with FUNCTION DUMP/RESTORE): what a
    correct shake run must produce. Target is a RedisServer or a Cluster."""
    db_map = db_map or {}
    for db in compare.dbs_with_keys(source):
        src = source.raw_client(db=db)
        tdb = db_map.get(db, db)
        for key in compare.scan_keys(src):
            payload = src.execute_command("DUMP", key)
            ttl = src.execute_command("PTTL", key)
            node = target.node_for_key(key) if isinstance(target, harness.Cluster) else target
            node.client(db=tdb).execute_command("RESTORE", key, max(ttl, 0), payload)
    funcs = source.client().execute_command("FUNCTION", "DUMP")
    nodes = target.masters() if isinstance(target, harness.Cluster) else [target]
    for node in nodes:
        node.client().execute_command("FUNCTION", "RESTORE", funcs)


@pytest.mark.parametrize("profile", sorted(dataset.PROFILES))
def test_dump_reloaded_by_redis_compares_equal(servers, profile):
    source = servers(dataset.PROFILES[profile], name="source")
    m = dataset.fill(source)
    copy = servers.load(source.save(), name="copy")
    assert compare.compare(source, copy) == []
    assert m.dbs() == [0, 1, 5]
    assert m.functions == ["shakelib"]
    assert compare.snapshot(copy)[0][b"str:int64min"].value == dataset.INT64_MIN


def test_profiles_cover_every_encoding(servers):
    seen = set()
    for profile in sorted(dataset.PROFILES):
        source = servers(dataset.PROFILES[profile], name=profile)
        seen |= dataset.fill(source, functions=False).encodings_seen()
    want = {("string", "int"), ("string", "embstr"), ("string", "raw"), ("list", "quicklist"),
            ("set", "intset"), ("set", "hashtable"), ("zset", "listpack"), ("zset", "skiplist"),
            ("hash", "listpack"), ("hash", "hashtable"), ("stream", "stream")}
    assert want <= seen, want - seen


def test_dataset_is_deterministic(servers):
    a = servers(name="a")
    b = servers(name="b")
    dataset.fill(a, seed=3)
    dataset.fill(b, seed=3)
    assert compare.compare(a, b) == []


# Each corruption: (description, function(client db0, client db1), text expected in a difference)
CORRUPTIONS = [
    ("string value", lambda c, c1: c.set(b"str:int", b"12346"), "str:int"),
    ("empty string gets a byte", lambda c, c1: c.set(b"str:empty", b" "), "str:empty"),
    ("binary value", lambda c, c1: c.setrange(b"bin:\x00\r\n\xff\xfe key", 3, b"\x00"), "bin:"),
    ("list order", lambda c, c1: (c.lpush(b"list:small", c.rpop(b"list:small"))), "list:small"),
    ("list element", lambda c, c1: c.lset(b"list:plain", 0, b"changed"), "list:plain"),
    ("set member", lambda c, c1: c.sadd(b"set:intset64", b"2"), "set:intset64"),
    ("zset score", lambda c, c1: c.execute_command("ZADD", b"zset:special", b"0.10000000000000002", b"tenth"),
     "zset:special"),
    ("zset inf", lambda c, c1: c.execute_command("ZADD", b"zset:big", b"1.7976931348623157e308", b"special-inf"),
     "zset:big"),
    ("hash value", lambda c, c1: c.hset(b"hash:binary", b"", b"other"), "hash:binary"),
    ("hash extra field", lambda c, c1: c.hset(b"hash:big", b"new", b"1"), "hash:big"),
    ("stream entry deleted", lambda c, c1: c.execute_command("XDEL", b"stream:basic", b"1000-3"), "stream:basic"),
    ("stream delivery count",
     lambda c, c1: c.execute_command("XCLAIM", b"stream:groups", "g1", "carol", "0",
                                     _pel_first(c, b"stream:groups", b"g1")),
     "stream:groups"),
    ("stream group cursor", lambda c, c1: c.execute_command("XGROUP", "SETID", b"stream:groups", "g3", "0"),
     "stream:groups"),
    ("stream entries-added", lambda c, c1: c.execute_command("XSETID", b"stream:setid", b"99-5", "ENTRIESADDED", "43"),
     "stream:setid"),
    ("stream consumer deleted",
     lambda c, c1: c.execute_command("XGROUP", "DELCONSUMER", b"stream:groups", "g1", "idle-dave"),
     "stream:groups"),
    ("ttl removed", lambda c, c1: c.persist(b"ttl:far"), "ttl:far"),
    ("ttl changed", lambda c, c1: c.expire(b"ttl:sec", 1000), "ttl:sec"),
    ("ttl added", lambda c, c1: c.expire(b"str:raw", 100000), "str:raw"),
    ("type changed", lambda c, c1: (c.delete(b"set:one"), c.sadd(b"set:one", b"42"), c.delete(b"set:one"),
                                    c.rpush(b"set:one", b"42")), "set:one"),
    ("key missing", lambda c, c1: c.delete(b"{tag}:a"), "{tag}:a"),
    ("extra key", lambda c, c1: c.set(b"not-in-source", b"x"), "not-in-source"),
    ("key in other db", lambda c, c1: c.move(b"str:embstr", 1), "str:embstr"),
    ("db1 value", lambda c, c1: c1.rpush(b"d1:list", b"more"), "d1:list"),
    ("function gone", lambda c, c1: c.execute_command("FUNCTION", "DELETE", "shakelib"), "shakelib"),
]


def _pel_first(c, key, group):
    return c.execute_command("XPENDING", key, group, "-", "+", 1)[0][0]


@pytest.mark.parametrize("what,corrupt,needle", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_compare_finds_a_corrupted_key(servers, what, corrupt, needle):
    source = servers(dataset.PROFILES["small"], name="source")
    dataset.fill(source, scale=0)
    copy = servers.load(source.save(), name="copy")
    assert compare.compare(source, copy) == []
    corrupt(copy.raw_client(), copy.raw_client(db=1))
    diffs = compare.compare(source, copy)
    assert diffs, "compare missed: " + what
    assert any(needle in d for d in diffs), diffs


def test_compare_cluster_with_db_map(servers, cluster):
    source = servers(name="source")
    dataset.fill(source, scale=1)
    db_map = {1: 0, 5: 0}
    reference_copy(source, cluster, db_map)
    assert compare.compare(source, cluster, db_map=db_map) == []
    # keys really are spread over the three masters
    assert all(n.client().dbsize() > 20 for n in cluster.masters())

    # without the db_map, db1/db5 keys are "expected in db1" which a cluster cannot have
    assert any("db 0 only" in d for d in compare.compare(source, cluster))

    node = cluster.node_for_key(b"d5:hash")
    node.client().hset(b"d5:hash", b"db", b"0")
    other = cluster.node_for_key(b"zset:special")
    other.client().execute_command("FUNCTION", "DELETE", "shakelib")
    diffs = compare.compare(source, cluster, db_map=db_map)
    assert any("d5:hash" in d for d in diffs), diffs
    assert any("shakelib" in d and other.address in d for d in diffs), diffs


def test_compare_sees_source_dbs_colliding_in_db_map(servers):
    source = servers(name="source")
    source.client(db=0).set(b"k", b"0")
    source.client(db=2).set(b"k", b"2")
    target = servers(name="target")
    assert any("same target key" in d for d in compare.compare(source, target, db_map={2: 0}))
