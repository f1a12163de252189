"""The [filter] section against real servers, in every phase: the one-shot restore of an RDB
file, the full sync of a live source (RDB phase) and its command stream.

Each case is a filter and a list of writes made on the source. The same writes are made before
SAVE (restore), before shake starts (full sync) or after the RDB was received (stream), and
the target must then hold exactly the keys that case expects: keys that must arrive, and keys
that must not (checked once every key that must arrive is there; writes reach a standalone
target in order). Command rules only judge commands, so a case may expect different keys in
the stream phase than in the two RDB phases. Also: renames into a cluster target, the
split of multi-key commands, an unsplittable command (error, or skipped with
on_unsupported = skip), the counters in the summary and in the sync's last log line, and a
bad regex reported with file:line before any server is touched.
"""

import os
import time

import pytest

import harness
from harness import assert_ok, assert_one_error
from livesync import FAST_SYNC, assert_stops_cleanly, client_for

LOG_WAIT = 20     # seconds for a log line
ARRIVE_WAIT = 20  # seconds for the kept keys to reach the target
RDB_RECEIVED = r"RDB received"
PHASES = ["restore", "full_sync", "stream"]


class Case:
    """A filter (dict of [filter] keys), the writes (db, argv...) made on the source, and the
    (db, key) pairs that must be on the target afterwards and must not be. `stream_present`
    / `stream_absent`, when given, replace them for the stream phase."""

    def __init__(self, name, rules, writes, present, absent, stream_present=None,
                 stream_absent=None, target_section=None):
        self.name = name
        self.rules = rules
        self.writes = writes
        self.present = present
        self.absent = absent
        self.stream_present = present if stream_present is None else stream_present
        self.stream_absent = absent if stream_absent is None else stream_absent
        self.target_section = target_section or {}

    def expected(self, phase):
        if phase == "stream":
            return self.stream_present, self.stream_absent
        return self.present, self.absent

    def sections(self, **target):
        out = {"filter": dict(self.rules)}
        t = dict(self.target_section)
        t.update(target)
        if t:
            out["target"] = t
        return out


def k(key, db=0):
    return (db, key.encode() if isinstance(key, str) else key)


CASES = [
    Case("key_prefix",
         {"allow_key_prefix": "keep:, also:", "block_key_prefix": "keep:no:"},
         [(0, "SET", "keep:1", "v"), (0, "SET", "keep:no:1", "v"), (0, "SET", "other:1", "v"),
          (0, "RPUSH", "also:list", "a", "b"), (0, "HSET", "other:h", "f", "v"),
          (0, "MSET", "keep:m", "1", "other:m", "2"),
          (0, "SET", "keep:d", "1"), (0, "SET", "other:d", "1"), (0, "DEL", "keep:d", "other:d"),
          (0, "SET", "keep:last", "v")],
         [k("keep:1"), k("also:list"), k("keep:m"), k("keep:last")],
         [k("keep:no:1"), k("other:1"), k("other:h"), k("other:m"), k("keep:d"), k("other:d")]),
    Case("key_suffix",
         {"block_key_suffix": ":tmp, :lock"},
         [(0, "SET", "a:tmp", "v"), (0, "SADD", "b:lock", "m"), (0, "SET", "a:perm", "v"),
          (0, "SET", "a:tmp:not-a-suffix", "v"), (0, "SET", "last", "v")],
         [k("a:perm"), k("a:tmp:not-a-suffix"), k("last")],
         [k("a:tmp"), k("b:lock")]),
    Case("exact_key",
         {"allow_key": "one, two", "block_key": "two"},
         [(0, "SET", "two", "v"), (0, "SET", "three", "v"), (0, "SET", "onex", "v"),
          (0, "SET", "one", "v")],
         [k("one")],
         [k("two"), k("three"), k("onex")]),
    Case("key_regex",
         {"allow_key_regex": r"^user:[0-9]{1,4}$", "block_key_regex": "^user:0"},
         [(0, "SET", "user:x", "v"), (0, "SET", "user:12345", "v"), (0, "SET", "user:007", "v"),
          (0, "ZADD", "user:42", "1", "m"), (0, "SET", "user:12", "v")],
         [k("user:42"), k("user:12")],
         [k("user:x"), k("user:12345"), k("user:007")]),
    Case("db",
         {"block_db": "1", "allow_db": "0, 1, 2"},
         [(1, "SET", "in1", "v"), (3, "SET", "in3", "v"), (2, "HSET", "in2", "f", "v"),
          (0, "SET", "in0", "v")],
         [k("in2", 2), k("in0", 0)],
         [k("in1", 1), k("in3", 3)]),
    Case("type",
         {"block_type": "hash, stream"},
         [(0, "HSET", "t:h", "f", "v"), (0, "XADD", "t:x", "1-1", "f", "v"),
          (0, "RPUSH", "t:l", "a"), (0, "SETBIT", "t:bits", "7", "1"), (0, "SET", "t:s", "v")],
         [k("t:l"), k("t:bits"), k("t:s")],
         [k("t:h"), k("t:x")]),
    Case("command",
         {"block_command": "hset, sadd"},
         [(0, "HSET", "c:h", "f", "v"), (0, "SADD", "c:set", "m"), (0, "SET", "c:s", "v")],
         [k("c:h"), k("c:set"), k("c:s")], [],
         stream_present=[k("c:s")], stream_absent=[k("c:h"), k("c:set")]),
    Case("command_group",
         {"allow_command_group": "string, generic"},
         [(0, "RPUSH", "g:l", "a"), (0, "ZADD", "g:z", "1", "m"), (0, "SET", "g:gone", "v"),
          (0, "EXPIRE", "g:gone", "100"), (0, "DEL", "g:gone"), (0, "INCR", "g:n")],
         [k("g:l"), k("g:z"), k("g:n")], [k("g:gone")],
         stream_present=[k("g:n")], stream_absent=[k("g:l"), k("g:z"), k("g:gone")]),
    Case("rename",
         {"rename_key_prefix": r"old\::new\:, o\::renamed-o\:"},
         [(0, "SET", "old:1", "v"), (0, "RENAME", "old:1", "old:2"), (0, "RPUSH", "old:l", "a"),
          (0, "MSET", "old:a", "1", "o:b", "2", "other", "3"), (0, "SET", "old:last", "v")],
         [k("new:2"), k("new:l"), k("new:a"), k("renamed-o:b"), k("other"), k("new:last")],
         [k("old:1"), k("old:2"), k("new:1"), k("old:l"), k("old:a"), k("o:b")]),
]


def _apply_writes(source, writes):
    clients = {}
    for db, *argv in writes:
        if db not in clients:
            clients[db] = source.client(db=db)
        clients[db].execute_command(*argv)


def _exists(target, db, key):
    if isinstance(target, harness.Cluster):
        return client_for(target).exists(key) == 1
    return target.client(db=db).exists(key) == 1


def _check_target(target, present, absent, shake=None):
    """Every `present` key arrives (bounded wait), then no `absent` key is there."""
    def arrived():
        if shake is not None and not shake.alive():
            raise AssertionError("shake exited\n" + shake.describe())
        return all(_exists(target, db, key) for db, key in present)
    try:
        harness.wait_until(arrived, ARRIVE_WAIT, what="kept keys on the target")
    except AssertionError:
        missing = [(db, key) for db, key in present if not _exists(target, db, key)]
        raise AssertionError("missing on the target: %r%s" % (
            missing, "\n" + shake.describe() if shake is not None else ""))
    time.sleep(0.3)  # anything dropped wrongly would be right behind
    extra = [(db, key) for db, key in absent if _exists(target, db, key)]
    assert not extra, "filtered keys reached the target: %r%s" % (
        extra, "\n" + shake.describe() if shake is not None else "")


def _source(servers):
    return servers(FAST_SYNC, name="source")


def run_phase(phase, case, servers, shakes, tmp_path, target, **target_keys):
    """Make the case's writes on a new source at the point the phase needs, run shake with
    the case's filter into `target`, and check the target. Returns the ShakeResult
    (restore) or the stopped ShakeProcess (sync)."""
    present, absent = case.expected(phase)
    source = _source(servers)
    sections = case.sections(**target_keys)
    if phase == "restore":
        _apply_writes(source, case.writes)
        dump = source.dump_copy(str(tmp_path / "source.rdb"))
        result = harness.restore(tmp_path, dump, target, extra_sections=sections)
        assert_ok(result)
        _check_target(target, present, absent)
        return result
    if phase == "full_sync":
        _apply_writes(source, case.writes)
    p = shakes(shakes.config(source, target, extra_sections=sections))
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    if phase == "stream":
        _apply_writes(source, case.writes)
    _check_target(target, present, absent, shake=p)
    assert_stops_cleanly(p)
    return p


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_filter_in_every_phase(case, phase, servers, shakes, tmp_path):
    target = servers(name="target")
    run_phase(phase, case, servers, shakes, tmp_path, target)


@pytest.mark.parametrize("phase", PHASES)
def test_rename_into_a_cluster_routes_by_the_new_slot(phase, servers, shakes, tmp_path, cluster):
    """Renamed keys land on the master that owns their new slot (the cluster would answer
    MOVED otherwise, and the cluster client reads them back from the right node)."""
    writes = [(0, "SET", "old:%d" % i, "v%d" % i) for i in range(40)]
    writes += [(0, "MSET", "old:m1", "1", "old:m2", "2", "old:m3", "3"),
               (0, "RENAME", "old:0", "old:zero"), (0, "SET", "old:last", "v")]
    case = Case("rename_cluster", {"rename_key_prefix": r"old\::fresh\:"}, writes,
                [k("fresh:%d" % i) for i in range(1, 40)] +
                [k("fresh:m1"), k("fresh:m2"), k("fresh:m3"), k("fresh:zero"), k("fresh:last")],
                [k("old:%d" % i) for i in range(40)] + [k("fresh:0")])
    run_phase(phase, case, servers, shakes, tmp_path, cluster)
    c = client_for(cluster)
    assert c.get(b"fresh:7") == b"v7"
    assert c.get(b"fresh:zero") == b"v0"
    assert c.mget(b"fresh:m2") == [b"2"]
    assert cluster.dbsize() == 39 + 3 + 2


def test_allow_db_lets_a_multi_db_dump_into_a_cluster(servers, tmp_path, cluster):
    """Without the filter a key of db 1 stops a restore into a cluster; allow_db = 0 keeps
    only db 0, and the summary counts the rest as filtered."""
    source = _source(servers)
    _apply_writes(source, [(0, "SET", "a", "1"), (1, "SET", "b", "2"), (1, "SET", "c", "3")])
    dump = source.dump_copy(str(tmp_path / "source.rdb"))
    result = harness.restore(tmp_path, dump, cluster, extra_sections={"filter": {"allow_db": 0}})
    assert_ok(result)
    assert result.summary["filtered"] == 2, result.describe()
    assert result.summary["written"] == 1
    assert cluster.dbsize() == 1


def test_restore_summary_counts_filtered_keys(servers, tmp_path):
    case = CASES[0]
    target = servers(name="target")
    source = _source(servers)
    _apply_writes(source, case.writes)
    dump = source.dump_copy(str(tmp_path / "source.rdb"))
    result = harness.restore(tmp_path, dump, target, extra_sections=case.sections())
    assert_ok(result)
    # on the source: keep:1 keep:no:1 other:1 also:list other:h keep:m other:m keep:last
    assert result.summary["filtered"] == 4, result.describe()
    assert result.summary["written"] == 4, result.describe()


def test_sync_logs_its_filter_counters_at_stop(servers, shakes, tmp_path):
    case = CASES[0]
    target = servers(name="target")
    p = run_phase("stream", case, servers, shakes, tmp_path, target)
    m = p.find(r"filter: (\d+) keys, (\d+) commands, (\d+) functions filtered; (\d+) commands split")
    assert m, p.describe()
    # SET keep:no:1, SET other:1, HSET other:h, SET other:d dropped; MSET and DEL split
    assert (int(m.group(2)), int(m.group(4))) == (4, 2), m.group(0)


def _mixed_writes(source):
    c = source.client()
    c.sadd("keep:s", "a")
    c.execute_command("SUNIONSTORE", "keep:dst", "keep:s", "other:s")
    c.set("keep:after", "v")


def test_unsplittable_command_stops_the_sync_naming_it(servers, shakes):
    source, target = _source(servers), servers(name="target")
    p = shakes(shakes.config(source, target, extra_sections={"filter": {"allow_key_prefix": "keep:"}}))
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    _mixed_writes(source)
    rc = p.wait_exit(LOG_WAIT)
    assert rc == 1, p.describe()
    line = assert_one_error(p.result(), 1, "SUNIONSTORE", "kept: keep:dst keep:s", "dropped: other:s")
    assert "cannot be split" in line


def test_unsplittable_command_is_skipped_with_on_unsupported_skip(servers, shakes):
    source, target = _source(servers), servers(name="target")
    p = shakes(shakes.config(source, target, extra_sections={
        "filter": {"allow_key_prefix": "keep:"}, "target": {"on_unsupported": "skip"}}))
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    _mixed_writes(source)
    _check_target(target, [k("keep:s"), k("keep:after")], [k("keep:dst")], shake=p)
    p.wait_for(r"skipped: filter: the keys of SUNIONSTORE", LOG_WAIT)
    assert_stops_cleanly(p)
    assert p.find(r"commands split, 1 refused"), p.describe()


def test_bad_regex_is_a_config_error_naming_file_and_line(tmp_path):
    path = harness.write_config(str(tmp_path / "bad.ini"), ["/nonexistent.rdb"], "127.0.0.1:1",
                                extra_sections={"filter": {"allow_key_prefix": "a:",
                                                           "block_key_regex": "user:(["}})
    result = harness.run_shake(path, timeout=20)
    line = assert_one_error(result, 2, "bad.ini:", "block_key_regex", "user:([", max_seconds=10)
    lineno = open(path).read().splitlines().index("block_key_regex = user:([") + 1
    assert "bad.ini:%d:" % lineno in line, line
