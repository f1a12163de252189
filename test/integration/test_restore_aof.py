"""`[source] type = aof`: AOFs that Redis 7.0 itself wrote (multi-part with a manifest, with and
without an RDB preamble; the Redis 6 single-file shape), replayed into a standalone server and a
3-master cluster and compared with the source; the rdb-preamble.aof fixture; a crash-cut AOF
(replayed up to its last complete command, with a warning); corrupt input (one error line naming
the file and the byte offset)."""

import os
import re
import shutil
import time

import pytest

import compare
import dataset
import harness
import test_restore_generated as generated
from harness import assert_ok, assert_one_error

REWRITE_TIMEOUT = 30.0
WARN_RE = re.compile(r"\bWARN\b")
SET_RE = re.compile(rb"\*3\r\n\$3\r\nset\r\n", re.I)


def aof_config(preamble, profile="default"):
    config = dict(dataset.PROFILES[profile])
    config.update({"appendonly": "yes", "appendfsync": "always", "appenddirname": "aofdir",
                   "aof-use-rdb-preamble": "yes" if preamble else "no",
                   "auto-aof-rewrite-percentage": 0})
    return config


def aof_dir(server):
    return os.path.join(server.dir, "aofdir")


def read_manifest(server):
    with open(os.path.join(aof_dir(server), "appendonly.aof.manifest")) as f:
        return f.read()


def rewrite(server):
    """BGREWRITEAOF and wait until the manifest names the new base and incr files."""
    before = read_manifest(server)
    server.client().bgrewriteaof()
    deadline = time.monotonic() + REWRITE_TIMEOUT
    while time.monotonic() < deadline:
        info = server.client().info("persistence")
        if (info["aof_rewrite_in_progress"] == 0 and info["aof_rewrite_scheduled"] == 0
                and read_manifest(server) != before):
            return
        time.sleep(0.05)
    raise AssertionError("BGREWRITEAOF did not finish within %ss" % REWRITE_TIMEOUT)


def more_writes(server, dbs=(0, 1, 5)):
    """Writes after the rewrite, so that they land in the incr file: every type, updates and
    deletes of keys the base holds, a transaction, expirations."""
    for db in dbs:
        c = server.client(db=db)
        p = b"more:d%d:" % db
        c.set(p + b"str", b"after rewrite %d" % db)
        c.incrby(p + b"counter", 41)
        c.incr(p + b"counter")
        c.append(p + b"str", b"!")
        c.rpush(p + b"list", b"a", b"b", b"c")
        c.lpop(p + b"list")
        c.sadd(p + b"set", b"m1", b"m2")
        c.zadd(p + b"zset", {b"one": 1.5, b"pi": 3.141592653589793})
        c.hset(p + b"hash", mapping={b"f": b"v", b"g": b"w"})
        c.hdel(p + b"hash", b"g")
        c.execute_command("XADD", p + b"stream", b"5-1", b"k", b"v")
        c.set(p + b"ttl", b"soon gone", ex=7200)
        c.set(p + b"deleted", b"x")
        c.delete(p + b"deleted")
        tx = c.pipeline(transaction=True)
        tx.set(p + b"{tx}a", b"1")
        tx.incr(p + b"{tx}b")
        tx.execute()
    c0 = server.client()
    c0.delete(b"str:empty")            # a key of the base, deleted in the incr
    c0.set(b"str:int64max", b"changed")  # and one overwritten


def make_aof(servers, tmp_path, preamble, rewrite_first=True, more=True, name="source"):
    """A source with appendonly yes, filled (dataset.py), then BGREWRITEAOF (base + incr) and
    more writes into the incr file; returns the source and a copy of its AOF directory."""
    source = servers(aof_config(preamble), name=name)
    dataset.fill(source, scale=1)
    if rewrite_first:
        rewrite(source)
    if more:
        more_writes(source)
    copy = str(tmp_path / ("%s-aof" % name))
    shutil.copytree(aof_dir(source), copy)
    return source, copy


@pytest.fixture
def loaded_by_redis():
    """A factory: a redis-server that loaded a copy of an AOF directory itself, the reference
    for what the AOF holds. (It can differ from the live source: a zset score -0 that the
    rewrite replays by ZADD into a listpack comes back as 0, in Redis as in shake.)"""
    started = []

    def load(directory):
        server = harness.RedisServer(aof_config(preamble=True), name="loader")
        shutil.copytree(directory, os.path.join(server.dir, "aofdir"))
        started.append(server)
        return server.start()

    yield load
    for server in started:
        server.stop()


def assert_equals_source(source, loader, target, db_map=None):
    """The target holds what Redis itself loads from the AOF, and differs from the live source
    only where Redis's own load does."""
    assert compare.compare(loader, target, db_map=db_map) == []
    assert compare.compare(source, target, db_map=db_map) == compare.compare(source, loader)


def manifest_files(directory):
    """[(name, type)] of the manifest, in its order."""
    out = []
    with open(os.path.join(directory, "appendonly.aof.manifest")) as f:
        for line in f:
            fields = line.split()
            out.append((fields[1], fields[5]))
    return out


def restore_aof(tmp_path, files, target, **kw):
    return harness.restore(tmp_path, files, target, source_type="aof",
                           extra_sections={"shake": {"status": ""}}, **kw)


def spot_check_more(snap, db_for):
    for db in (0, 1, 5):
        keys = snap[db_for(db)]
        p = b"more:d%d:" % db
        assert keys[p + b"str"].value == b"after rewrite %d!" % db
        assert keys[p + b"counter"].value == b"42"
        assert keys[p + b"list"].value == [b"b", b"c"]
        assert keys[p + b"hash"].value == {b"f": b"v"}
        assert float(keys[p + b"zset"].value[b"pi"]) == 3.141592653589793
        assert keys[p + b"{tx}a"].value == b"1" and keys[p + b"{tx}b"].value == b"1"
        assert 7000 * 1000 < keys[p + b"ttl"].pttl <= 7200 * 1000
        assert p + b"deleted" not in keys
    assert b"str:empty" not in snap[db_for(0)]
    assert snap[db_for(0)][b"str:int64max"].value == b"changed"


@pytest.mark.parametrize("preamble", [True, False], ids=["rdb-preamble", "no-preamble"])
def test_manifest_base_and_incr_into_standalone_equal_the_source(servers, loaded_by_redis, tmp_path,
                                                                 shake_bin, preamble):
    source, directory = make_aof(servers, tmp_path, preamble)
    kinds = manifest_files(directory)
    base = [n for n, t in kinds if t == "b"]
    assert base and base[0].endswith(".rdb" if preamble else ".aof"), kinds
    assert [t for _, t in kinds].count("i") >= 1, kinds
    target = servers(name="target")
    result = restore_aof(tmp_path, os.path.join(directory, "appendonly.aof.manifest"), target)
    assert_ok(result)
    assert_equals_source(source, loaded_by_redis(directory), target)
    s = result.summary
    assert s["commands"] >= 45, s  # the incr file's commands (and the base's without preamble)
    assert s["written"] > 0 if preamble else s["written"] == 0, s
    assert not WARN_RE.search(result.stderr), result.describe()
    snap = compare.snapshot(target)
    spot_check_more(snap, lambda db: db)
    assert snap[0][b"list:plain"].value[-1] == b"Z" * 30000
    assert snap[0][b"bin:\x00\r\n\xff\xfe key"].value == b"\x00\x01\r\n\xff" + bytes(range(256))
    assert snap[1][b"d1:str"].value == b"in db 1"
    generated.assert_functions(target)


@pytest.mark.parametrize("preamble", [True, False], ids=["rdb-preamble", "no-preamble"])
def test_manifest_into_cluster_with_db_map_equals_the_source(servers, loaded_by_redis, cluster, tmp_path,
                                                             shake_bin, preamble):
    source, directory = make_aof(servers, tmp_path, preamble)
    db_map = {1: 0, 5: 0}
    result = restore_aof(tmp_path, os.path.join(directory, "appendonly.aof.manifest"), cluster,
                         db_map=db_map)
    assert_ok(result)
    assert_equals_source(source, loaded_by_redis(directory), cluster, db_map=db_map)
    assert all(n.client().dbsize() > 0 for n in cluster.masters()), "keys not spread over the masters"
    spot_check_more(compare.snapshot(cluster), lambda db: 0)
    generated.assert_functions(cluster)


@pytest.mark.parametrize("preamble", [True, False], ids=["rdb-preamble", "no-preamble"])
def test_single_file_aof_as_redis_6_wrote_it(servers, loaded_by_redis, tmp_path, shake_bin, preamble):
    """Redis 6 kept one appendonly.aof: the base (an RDB preamble, or commands) followed by
    the commands since. The same bytes as one file replay the same."""
    source, directory = make_aof(servers, tmp_path, preamble)
    single = str(tmp_path / "appendonly.aof")
    with open(single, "wb") as out:
        for name, kind in manifest_files(directory):
            if kind in "bi":
                with open(os.path.join(directory, name), "rb") as f:
                    out.write(f.read())
    with open(single, "rb") as f:
        assert f.read(5) == b"REDIS" if preamble else True
    target = servers(name="target")
    result = restore_aof(tmp_path, single, target)
    assert_ok(result)
    assert_equals_source(source, loaded_by_redis(directory), target)
    assert result.summary["bytes"] == os.path.getsize(single)
    spot_check_more(compare.snapshot(target), lambda db: db)


def test_empty_incr_file_is_fine(servers, loaded_by_redis, tmp_path, shake_bin):
    source, directory = make_aof(servers, tmp_path, preamble=True, more=False)
    incr = [n for n, t in manifest_files(directory) if t == "i"]
    assert incr and os.path.getsize(os.path.join(directory, incr[-1])) == 0
    target = servers(name="target")
    result = restore_aof(tmp_path, os.path.join(directory, "appendonly.aof.manifest"), target)
    assert_ok(result)
    assert_equals_source(source, loaded_by_redis(directory), target)
    assert result.summary["commands"] == 0


def test_fixture_rdb_preamble_aof_replays_its_tail(servers, tmp_path, shake_bin, fixtures_dir):
    path = os.path.join(fixtures_dir, "rdb-preamble.aof")
    if not os.path.exists(path):
        pytest.skip("rdb-preamble.aof not in the fixtures")
    target = servers(name="target")
    result = restore_aof(tmp_path, path, target)
    assert_ok(result)
    c = target.client()
    assert (c.get(b"k1"), c.get(b"k2"), c.get(b"k3")) == (b"v1", b"v2", b"v3")
    assert c.dbsize() == 3
    s = result.summary
    assert (s["written"], s["commands"], s["bytes"]) == (2, 1, 169)
    assert "ignoring bytes" not in result.stderr


def plain_source_with_sets(servers, count):
    """A commands-only AOF whose incr file ends with SET t:1 .. t:count."""
    source = servers(aof_config(preamble=False), name="source")
    c = source.client()
    for i in range(1, count + 1):
        c.set(b"t:%d" % i, b"value %d" % i)
    directory = aof_dir(source)
    incr = [n for n, t in manifest_files(directory) if t == "i"][-1]
    return source, directory, incr


def test_aof_cut_in_the_last_command_replays_up_to_the_one_before(servers, tmp_path, shake_bin):
    source, directory, incr = plain_source_with_sets(servers, 50)
    copy = str(tmp_path / "cut")
    shutil.copytree(directory, copy)
    path = os.path.join(copy, incr)
    with open(path, "rb") as f:
        data = f.read()
    last = [m.start() for m in SET_RE.finditer(data)][-1]
    with open(path, "wb") as f:
        f.write(data[:len(data) - 5])  # a crash while appending the last SET
    target = servers(name="target")
    result = restore_aof(tmp_path, os.path.join(copy, "appendonly.aof.manifest"), target)
    assert_ok(result)
    c = target.client()
    assert c.get(b"t:49") == b"value 49" and c.get(b"t:50") is None
    assert c.dbsize() == 49
    warnings = [l for l in result.stderr.splitlines() if WARN_RE.search(l)]
    assert len(warnings) == 1, result.describe()
    assert path in warnings[0] and ("offset %d:" % last) in warnings[0], warnings[0]
    assert "middle of a command" in warnings[0]


def test_aof_cut_short_before_its_last_file_is_an_error(servers, tmp_path, shake_bin):
    """Redis refuses a truncated file that is not the last of the manifest: so does shake."""
    source, directory = make_aof(servers, tmp_path, preamble=False)
    base = [n for n, t in manifest_files(directory) if t == "b"][0]
    path = os.path.join(directory, base)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 3)
    target = servers(name="target")
    result = restore_aof(tmp_path, os.path.join(directory, "appendonly.aof.manifest"), target)
    assert_one_error(result, 1, path, "offset ", "only the last file of an AOF may be cut short")


def test_corrupt_aof_fails_naming_file_and_offset(servers, tmp_path, shake_bin):
    source, directory, incr = plain_source_with_sets(servers, 20)
    copy = str(tmp_path / "corrupt")
    shutil.copytree(directory, copy)
    path = os.path.join(copy, incr)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    at = [m.start() for m in SET_RE.finditer(data) if data[m.end():].startswith(b"$4\r\nt:10\r\n")][0]
    data[at] = ord("X")
    with open(path, "wb") as f:
        f.write(bytes(data))
    target = servers(name="target")
    result = restore_aof(tmp_path, os.path.join(copy, "appendonly.aof.manifest"), target)
    line = assert_one_error(result, 1, path, "offset %d:" % at, "0x58")
    assert result.summary["status"] == "failed", line
    assert target.client().get(b"t:9") == b"value 9" and target.client().get(b"t:10") is None


def test_bad_manifest_fails_naming_file_and_line(servers, tmp_path, shake_bin):
    manifest = tmp_path / "appendonly.aof.manifest"
    manifest.write_text("file appendonly.aof.1.base.rdb seq 1 type b\n"
                        "file appendonly.aof.2.incr.aof seq 2 type i\n"
                        "file appendonly.aof.1.incr.aof seq 1 type i\n")
    target = servers(name="target")
    result = restore_aof(tmp_path, str(manifest), target)
    assert_one_error(result, 1, "%s:3:" % manifest, "not increasing")
    assert target.client().dbsize() == 0
