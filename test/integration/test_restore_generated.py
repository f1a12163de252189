"""One-shot restore of dumps that Redis 7.0 itself wrote (dataset.py), into a standalone
server and into a 3-master cluster; on_existing; db_map; expired keys; several files."""

import os
import re
import time

import pytest

import compare
import dataset
import harness
from harness import assert_ok, assert_one_error


def make_dump(servers, tmp_path, profile="default", scale=1, name="source", **fill_kw):
    """A filled source server, its manifest, and a copy of its dump in tmp_path."""
    source = servers(dataset.PROFILES[profile], name=name)
    manifest = dataset.fill(source, scale=scale, **fill_kw)
    dump = source.dump_copy(str(tmp_path / ("%s-%s.rdb" % (name, profile))))
    return source, manifest, dump


def spot_check(snap, db_for):
    """A few exact values read straight from the target, so that a compare.py that
    wrongly says "equal" cannot make these tests pass. db_for maps a source db to the
    target db it landed in."""
    d0 = snap[db_for(0)]
    assert d0[b"str:int64max"].value == dataset.INT64_MAX
    assert d0[b"str:int64min"].value == dataset.INT64_MIN
    assert d0[b"str:empty"].value == b""
    assert d0[b"str:lzf"].value == b"compressible-" * 2000
    assert d0[b"bin:\x00\r\n\xff\xfe key"].value == b"\x00\x01\r\n\xff" + bytes(range(256))
    assert d0[b"list:small"].value == [b"a", b"b", b"1", b"-2", dataset.INT64_MAX, dataset.INT64_MIN, b""]
    assert d0[b"list:plain"].value[-1] == b"Z" * 30000
    assert d0[b"set:intset64"].value == {dataset.INT64_MAX, dataset.INT64_MIN, b"6000000000", b"1"}
    scores = d0[b"zset:special"].value
    assert float(scores[b"max"]) == 1.7976931348623157e308
    assert scores[b"inf"] == b"inf" and scores[b"ninf"] == b"-inf"
    assert float(scores[b"tiny"]) == 1e-300
    assert float(scores[b"tenth"]) == 0.1
    assert float(scores[b"int53"]) == 9007199254740992.0  # 2^53+1 is not a double: rounded
    assert d0[b"hash:binary"].value == {b"\x00": b"\r\n", b"\xff\xfe": b"", b"empty": b"", b"": b"emptyfield"}
    s = d0[b"stream:groups"].value
    groups = {g["name"]: g for g in s["groups"]}
    g1 = groups[b"g1"]
    assert groups[b"g2"]["entries-read"] == 100
    assert set(g1["consumers"]) == {b"alice", b"bob", b"carol", b"idle-dave"}
    assert sorted(c for _, c in g1["consumers"][b"carol"]) == [7, 7]
    assert sorted(c for _, c in g1["consumers"][b"alice"]) == [1, 1, 1, 1, 1, 1, 2]
    assert (s["max-deleted-entry-id"], s["entries-added"], s["length"]) == (s["last-generated-id"], 350, 346)
    basic = d0[b"stream:basic"].value
    assert basic["groups"][0]["entries-read"] == 3 and len(basic["groups"][0]["pel"]) == 3
    assert basic["entries"][2] == (b"1000-3", tuple(basic["entries"][2][1])) and \
        basic["entries"][2][1][-2:] == (b"\x00bin", b"\xff\r\n")
    setid = d0[b"stream:setid"].value
    assert (setid["last-generated-id"], setid["entries-added"], setid["max-deleted-entry-id"]) == (b"99-5", 42, b"50-0")
    assert d0[b"stream:empty-mkstream"].value["length"] == 0
    far = d0[b"ttl:far"].pttl
    assert abs(far - (dataset.FAR_FUTURE_MS - int(time.time() * 1000))) < 5000, far
    assert 3590 * 1000 < d0[b"ttl:sec"].pttl <= 3600 * 1000
    assert snap[db_for(1)][b"d1:str"].value == b"in db 1"
    assert snap[db_for(5)][b"d5:list"].value == [b"x", b"y", b"5"]


def assert_functions(target, names=("shakelib",)):
    for address, libs in compare.functions(target):
        assert sorted(n.decode() for n in libs) == sorted(names), "functions on %s: %r" % (address, list(libs))


@pytest.mark.parametrize("profile", sorted(dataset.PROFILES))
def test_restore_into_standalone_equals_source(servers, tmp_path, shake_bin, profile):
    source, manifest, dump = make_dump(servers, tmp_path, profile)
    target = servers(name="target")
    result = harness.restore(tmp_path, dump, target)
    assert_ok(result)
    assert compare.compare(source, target) == []
    s = result.summary
    assert s["written"] == manifest.count()
    assert (s["skipped_expired"], s["skipped_empty"], s["skipped_existing"]) == (0, 0, 0)
    assert s["bytes"] == os.path.getsize(dump)
    spot_check(compare.snapshot(target), lambda db: db)
    assert_functions(target)
    assert sorted(compare.dbs_with_keys(target)) == [0, 1, 5]


def test_clean_restore_logs_no_warning(servers, tmp_path, shake_bin):
    """A dump Redis wrote, restored into an empty server: nothing to warn about (no
    "ignoring bytes after the end of the RDB" when there are none)."""
    source, manifest, dump = make_dump(servers, tmp_path, scale=0)
    target = servers(name="target")
    result = harness.restore(tmp_path, dump, target)
    assert_ok(result)
    assert compare.compare(source, target) == []
    noisy = [l for l in result.stderr.splitlines() if re.search(r"\b(WARN|ERROR)\b", l)]
    assert noisy == [], noisy


@pytest.mark.parametrize("profile", ["default", "small"])
def test_restore_into_cluster_with_db_map_equals_source(servers, cluster, tmp_path, shake_bin, profile):
    source, manifest, dump = make_dump(servers, tmp_path, profile)
    db_map = {1: 0, 5: 0}
    result = harness.restore(tmp_path, dump, cluster, db_map=db_map)
    assert_ok(result)
    assert compare.compare(source, cluster, db_map=db_map) == []
    assert result.summary["written"] == manifest.count()
    assert cluster.dbsize() == manifest.count()
    assert all(n.client().dbsize() > 0 for n in cluster.masters()), "keys not spread over the masters"
    spot_check(compare.snapshot(cluster), lambda db: 0)
    assert_functions(cluster)  # every master gets the libraries


def test_restore_from_any_cluster_node(servers, cluster, tmp_path, shake_bin):
    source, manifest, dump = make_dump(servers, tmp_path, scale=1, dbs=(0,))
    result = harness.restore(tmp_path, dump, cluster.masters()[2].address)
    assert_ok(result)
    assert compare.compare(source, cluster) == []


@pytest.mark.parametrize("where", ["standalone", "cluster"])
def test_values_over_restore_max_bytes_are_rewritten_as_commands(servers, cluster, tmp_path, shake_bin, where):
    """restore_max_bytes = 1kb sends every bigger value as batches of RPUSH/HSET/ZADD/
    SADD/XADD...: the result must be the same as RESTORE's."""
    source, manifest, dump = make_dump(servers, tmp_path, "small" if where == "standalone" else "large")
    target = servers(name="target") if where == "standalone" else cluster
    db_map = {1: 0, 5: 0} if where == "cluster" else None
    result = harness.restore(tmp_path, dump, target, db_map=db_map,
                             extra_sections={"shake": {"restore_max_bytes": "1kb"},
                                             "target": {"batch_max_items": "7"}})
    assert_ok(result)
    assert compare.compare(source, target, db_map=db_map) == []
    assert result.summary["written"] == manifest.count()
    spot_check(compare.snapshot(target), (lambda db: 0) if where == "cluster" else (lambda db: db))


def test_bigger_dataset_into_cluster(servers, cluster, tmp_path, shake_bin):
    source, manifest, dump = make_dump(servers, tmp_path, scale=25, dbs=(0,))  # ~5000 keys
    result = harness.restore(tmp_path, dump, cluster, timeout=120)
    assert_ok(result)
    assert compare.compare(source, cluster) == []
    assert result.summary["written"] == manifest.count() > 5000


def test_several_files_are_restored_in_order(servers, tmp_path, shake_bin):
    a = servers(name="a")
    a.client().set(b"shared", b"from a")
    a.client().set(b"only-a", b"1")
    a.client(db=2).rpush(b"list-a", b"x")
    b = servers(name="b")
    b.client().set(b"only-b", b"2")
    b.client().hset(b"hash-b", mapping={b"f": b"v"})
    dump_a = a.dump_copy(str(tmp_path / "a.rdb"))
    dump_b = b.dump_copy(str(tmp_path / "b.rdb"))
    target = servers(name="target")
    result = harness.restore(tmp_path, [dump_a, dump_b], target)
    assert_ok(result)
    expected = compare.snapshot(a)
    for db, keys in compare.snapshot(b).items():
        expected.setdefault(db, {}).update(keys)
    assert compare.diff_snapshots(expected, compare.snapshot(target)) == []
    assert result.summary["written"] == 5
    assert target.client().get(b"only-b") == b"2"


def test_db_map_on_a_standalone_target(servers, tmp_path, shake_bin):
    source, manifest, dump = make_dump(servers, tmp_path, scale=0, functions=False)
    target = servers(name="target")
    db_map = {5: 3, 1: 0}
    result = harness.restore(tmp_path, dump, target, db_map=db_map)
    assert_ok(result)
    assert compare.compare(source, target, db_map=db_map) == []
    assert target.client(db=3).get(b"d5:str") == b"in db 5"
    assert target.client(db=0).get(b"d1:str") == b"in db 1"
    assert target.client(db=5).dbsize() == 0 and target.client(db=1).dbsize() == 0


def test_cluster_target_refuses_unmapped_dbs(servers, cluster, tmp_path, shake_bin):
    source, manifest, dump = make_dump(servers, tmp_path, scale=0, functions=False)
    result = harness.restore(tmp_path, dump, cluster, timeout=60)
    line = assert_one_error(result, 1, "db_map")
    assert re.search(r"\bdb ?[15]\b|\bdb[15]\b", line), line


def test_expired_keys_are_skipped_and_counted(servers, tmp_path, shake_bin):
    source = servers(name="source")
    c = source.client()
    c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # expired keys stay until touched...
    c.set(b"lives", b"1")
    c.set(b"lives-with-ttl", b"2", ex=1000)
    c.set(b"dies", b"3", px=50)
    c.rpush(b"dies-list", b"a")
    c.pexpire(b"dies-list", 50)
    time.sleep(0.2)
    dump = source.dump_copy(str(tmp_path / "dump.rdb"))  # ...so SAVE writes them, already expired
    with open(dump, "rb") as f:
        data = f.read()
    assert b"dies" in data and b"dies-list" in data, "test setup: the dump lacks the expired keys"
    target = servers(name="target")
    result = harness.restore(tmp_path, dump, target)
    assert_ok(result)
    assert result.summary["skipped_expired"] == 2
    assert result.summary["written"] == 2
    assert sorted(target.client().keys()) == [b"lives", b"lives-with-ttl"]
    assert compare.compare(source, target) == []


# --- on_existing ---------------------------------------------------------------------------

def _prepare_existing(servers, tmp_path):
    source, manifest, dump = make_dump(servers, tmp_path, scale=0, functions=False)
    target = servers(name="target")
    t = target.client()
    t.set(b"str:int", b"target's own value")
    t.set(b"hash:small", b"a string where the source has a hash")
    t.set(b"only-on-target", b"keep me")
    return source, manifest, dump, target


def test_on_existing_error_refuses_a_non_empty_target(servers, tmp_path, shake_bin):
    source, manifest, dump, target = _prepare_existing(servers, tmp_path)
    before = compare.snapshot(target)
    result = harness.restore(tmp_path, dump, target, on_existing="error")
    assert_one_error(result, 1, "on_existing = replace", "skip")
    assert compare.diff_snapshots(before, compare.snapshot(target)) == [], "the target was written to"


def test_on_existing_defaults_to_error(servers, tmp_path, shake_bin):
    source, manifest, dump, target = _prepare_existing(servers, tmp_path)
    result = harness.restore(tmp_path, dump, target)
    assert_one_error(result, 1, "on_existing = replace", "skip")
    assert target.client().dbsize() == 3


def test_on_existing_skip_keeps_the_targets_values(servers, tmp_path, shake_bin):
    source, manifest, dump, target = _prepare_existing(servers, tmp_path)
    result = harness.restore(tmp_path, dump, target, on_existing="skip")
    assert_ok(result)
    assert result.summary["skipped_existing"] == 2
    assert result.summary["written"] == manifest.count() - 2
    t = target.client()
    assert t.get(b"str:int") == b"target's own value"
    assert t.get(b"hash:small") == b"a string where the source has a hash"
    assert t.get(b"only-on-target") == b"keep me"
    diffs = compare.compare(source, target)
    assert len(diffs) == 3, diffs
    assert all(any(k in d for d in diffs) for k in ("str:int", "hash:small", "only-on-target")), diffs


def test_on_existing_replace_overwrites(servers, tmp_path, shake_bin):
    source, manifest, dump, target = _prepare_existing(servers, tmp_path)
    result = harness.restore(tmp_path, dump, target, on_existing="replace")
    assert_ok(result)
    assert result.summary["written"] == manifest.count()
    assert result.summary["skipped_existing"] == 0
    t = target.client()
    assert t.get(b"str:int") == b"12345"
    assert t.hgetall(b"hash:small") == {b"f1": b"v1", b"f2": b"2", b"f3": dataset.INT64_MIN}
    diffs = compare.compare(source, target)
    assert len(diffs) == 1 and "only-on-target" in diffs[0], diffs


def test_on_existing_replace_with_rewritten_values(servers, tmp_path, shake_bin):
    """replace must also hold for values sent as commands (DEL first, not merged)."""
    source, manifest, dump, target = _prepare_existing(servers, tmp_path)
    t = target.client()
    t.rpush(b"list:medium", b"stale element")       # would be appended to by a bare RPUSH
    t.hset(b"hash:big", mapping={b"stale": b"1"})   # would survive a bare HSET
    result = harness.restore(tmp_path, dump, target, on_existing="replace",
                             extra_sections={"shake": {"restore_max_bytes": "1kb"}})
    assert_ok(result)
    diffs = compare.compare(source, target)
    assert len(diffs) == 1 and "only-on-target" in diffs[0], diffs


def test_on_existing_skip_on_a_cluster(servers, cluster, tmp_path, shake_bin):
    source, manifest, dump = make_dump(servers, tmp_path, scale=0, dbs=(0,), functions=False)
    cluster.node_for_key(b"list:small").client().set(b"list:small", b"cluster's")
    result = harness.restore(tmp_path, dump, cluster, on_existing="skip")
    assert_ok(result)
    assert result.summary["skipped_existing"] == 1
    assert result.summary["written"] == manifest.count() - 1
    assert cluster.node_for_key(b"list:small").client().get(b"list:small") == b"cluster's"
    diffs = compare.compare(source, cluster)
    assert len(diffs) == 1 and "list:small" in diffs[0], diffs


def test_password_from_the_environment(servers, tmp_path, shake_bin):
    source, manifest, dump = make_dump(servers, tmp_path, scale=0, dbs=(0,), functions=False)
    target = servers({"requirepass": "s3cret pass"}, name="target")
    result = harness.restore(tmp_path, dump, target, password="${TARGET_PASSWORD}",
                             env={"TARGET_PASSWORD": "s3cret pass"})
    assert_ok(result)
    assert compare.compare(source, target) == []
    with open(tmp_path / "shake.ini") as f:
        assert "s3cret" not in f.read()


def test_acl_user(servers, tmp_path, shake_bin):
    source, manifest, dump = make_dump(servers, tmp_path, scale=0, dbs=(0,), functions=False)
    target = servers(name="target")
    target.client().execute_command("ACL", "SETUSER", "shake", "on", ">pw", "~*", "&*", "+@all")
    target.client().execute_command("ACL", "SETUSER", "default", "off")
    target.username, target.password = "shake", "pw"
    result = harness.restore(tmp_path, dump, target, username="shake", password="pw")
    assert_ok(result)
    assert compare.compare(source, target) == []
