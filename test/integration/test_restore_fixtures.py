"""Restore every RDB fixture in /work/shared/fixtures/rdb (env SHAKE_FIXTURES) and check the
result, into a standalone server and into the 3-master cluster.

The oracle, best first:
  1. redis-server 7.0.15 loads the file itself: the target must equal that server.
  2. It refuses only the version header (RDB 11/12 with nothing 7.0 cannot hold): a copy
     with the header set to REDIS0010 and the CRC zeroed is what Redis reads; the target must
     equal that server ("downgraded").
  3. A fixture-specific patch makes it loadable (misc_with_stream: drop the module AUX
     sections Redis has no module for).
  4. Otherwise the expected data below, from the fixture README and the librdb *_data.json.
In every case the listed keys and values are also checked directly, and the summary counts.

Files that must fail exit 1 with one line "shake: error: <file>: offset N: ...", in under 10 s.
"""

import glob
import json
import os
import re
import shutil

import pytest

import compare
import harness
from harness import assert_ok, assert_one_error

FAIL_SECONDS = 10


class Z(dict):
    """Expected zset: member -> score (compared as doubles)."""


class Stream:
    """Expected stream: entries [(id, [f, v, ...])], and optionally groups
    {name: (last-delivered-id, entries-read, {consumer: [pending ids]})}."""

    def __init__(self, entries, groups=None, last_id=None, entries_added=None, max_deleted="0-0"):
        self.entries = entries
        self.groups = groups
        self.last_id = last_id
        self.entries_added = entries_added
        self.max_deleted = max_deleted


ANY = object()  # the key must exist (type checked when given as a tuple (type, ANY))


def F(outcome, keys=None, dbs=None, summary=None, functions=(), note="", json_data=None, json_types=None,
      patch=None, refused_key=None):
    """One fixture's expectation.

    outcome    ok | fail | refused (values the target cannot hold: exit 1, the key named) |
               ok-or-fail (policy not pinned down: either exit 0 with `keys`, or a clean
               single-line failure)
    keys       {key: expected value} in db 0, or {db: {key: value}} with dbs=True
    summary    exact summary fields beyond written (written defaults to the number of keys)
    json_data  librdb *_data.json file beside the fixture whose keys/values are expected too
    patch      function(bytes) -> bytes that redis-server 7.0 can load (oracle 3)
    """
    return dict(outcome=outcome, keys=keys or {}, multi_db=bool(dbs), summary=summary or {},
                functions=tuple(functions), note=note, json_data=json_data, json_types=json_types or {},
                patch=patch, refused_key=refused_key)


def strip_misc_module_aux(data):
    # redis-check-rdb: module AUX 'test__rdb' before SELECTDB at offset 3841 and again at
    # 5757, just before EOF; the keys between them are plain Redis types.
    return b"REDIS0009" + data[3841:5757] + b"\xff" + b"\0" * 8


HASH_TTL_NOTE = ("hash field TTLs (Redis 7.4 types 22/23) have no equivalent on a 7.0 target: "
                 "either the fields are restored (TTLs dropped, or HPEXPIREAT refused and reported) "
                 "or shake stops with a clear error")
ENCODINGS_RDB = {
    b"compressible": b"a" * 137,  # the README says 130; Redis reads 137
    b"string": b"Hello World",
    b"number": b"10",
    b"list": [b"1", b"2", b"3", b"a", b"b", b"c", b"100000", b"6000000000"] * 3,
    b"list_zipped": [b"1", b"2", b"3", b"a", b"b", b"c", b"100000", b"6000000000"],
    b"set": {b"1", b"100000", b"2", b"3", b"6000000000", b"a", b"b", b"c"},
    b"set_zipped_1": {b"1", b"2", b"3", b"4"},
    b"set_zipped_2": {b"100000", b"200000", b"300000", b"400000"},
    b"set_zipped_3": {b"%d000000000" % i for i in range(1, 7)},
    b"hash": {b"a": b"1", b"aa": b"10", b"aaa": b"100", b"b": b"2", b"bb": b"20", b"bbb": b"200", b"c": b"3",
              b"cc": b"30", b"ccc": b"300", b"ddd": b"400", b"eee": b"5000000000"},
    b"hash_zipped": {b"a": b"1", b"b": b"2", b"c": b"3"},
    b"zset": Z({b"a": 1, b"b": 2, b"c": 3, b"aa": 10, b"bb": 20, b"cc": 30, b"aaa": 100, b"bbb": 200,
                b"ccc": 300, b"aaaa": 1000, b"cccc": 123456789, b"bbbb": 5000000000}),
    b"zset_zipped": Z({b"a": 1, b"b": 2, b"c": 3}),
}
STREAM_V11 = Stream(
    entries=[(b"1695649068107-0", [b"message", b"Message1"]), (b"1695649068110-0", [b"message", b"Message2"]),
             (b"1695649069139-0", [b"message", b"Message3"]), (b"1695649446276-0", [b"message", b"Message4"]),
             (b"1695649456516-0", [b"message", b"Message5"]),
             (b"1695893015933-0", [b"field1", b"value1", b"field2", b"value2", b"field3", b"value3"])],
    groups={b"groupA": (b"1695649446276-0", 4, {b"consumerA1": [], b"consumerA2": [b"1695649446276-0"]}),
            b"groupB": (b"1695649069139-0", 3, {b"consumerB1": [b"1695649069139-0"]})},
    last_id=b"1695893015933-0", entries_added=6)

# Every fixture, what shake must do with it, and why. Paths are relative to the fixture dir.
FIXTURES = {
    # --- redis/redis tests/assets --------------------------------------------------------
    "corrupt_empty_keys.rdb": F("ok", {}, summary={"skipped_empty": 9},
                                note="9 empty collections: skipped like Redis does, counted"),
    "corrupt_ziplist.rdb": F("fail", note="corrupt HASH_ZIPLIST, CRC disabled: integrity check must catch it"),
    "encodings.rdb": F("ok", ENCODINGS_RDB, note="RDB 4, every old encoding"),
    "hash-ziplist.rdb": F("ok", {b"hash": {b"f1": b"v1", b"f2": b"v2"}}),
    "hash-zipmap.rdb": F("ok", {b"hash": {b"f1": b"v1", b"f2": b"v2"}}, note="RDB 3 zipmap"),
    "list-quicklist.rdb": F("ok", {b"list": [b"7"], b"x": b"7"}),
    "scriptbackup.rdb": F("ok", {}, note="legacy `lua` aux is ignored: no keys, no functions"),
    "zset-ziplist.rdb": F("ok", {b"zset": Z({b"one": 1, b"two": 2})}, note="RDB 10 carrying a ziplist type"),
    # --- redis/librdb test/dumps ---------------------------------------------------------
    "librdb/100_lists.rdb": F("ok", {b"mylist%d" % i: ("list", ANY) for i in range(1, 101)}),
    "librdb/cluster_slot_info.rdb": F("ok", {b"abc": b"abc"}, note="SLOT_INFO opcode 244 is skipped"),
    "librdb/empty.rdb": F("ok", {}),
    "librdb/function.rdb": F("ok", {}, functions=["mylib"]),
    "librdb/function2.rdb": F("ok", {b"key_%d" % i: b"value_%d" % i for i in range(90, 100)},
                              functions=["mylib", "mylib2"], json_data="function2.json"),
    "librdb/future_v19.rdb": F("fail", note="RDB version 99"),
    "librdb/hash_lp_v11.rdb": F("ok", json_data="hash_lp_v11_data.json"),
    "librdb/hash_lp_with_hexpire_v12.rdb": F("ok-or-fail", {b"myhash": {b"field1": b"value1", b"field2": b"value2",
                                                                       b"field3": b"value3"}}, note=HASH_TTL_NOTE),
    "librdb/hash_v3.rdb": F("ok", json_data="hash_data.json"),
    "librdb/hash_with_expire_v12.rdb": F("ok-or-fail", {b"myhash": {b"field1": b"value1", b"field2": b"value2",
                                                                   b"field3": b"value3"}}, note=HASH_TTL_NOTE),
    "librdb/hash_zl_v6.rdb": F("ok", json_data="hash_zl_v6_data.json"),
    "librdb/hash_zm_v2.rdb": F("ok", json_data="hash_zm_v2_data.json"),
    "librdb/invalid_chksum_v8.rdb": F("fail", note="CRC64 trailer does not match"),
    "librdb/mem_policy_lfu.rdb": F("ok", {b"abcdefghijk": b"012345789abcdefghik"}, note="FREQ opcode"),
    "librdb/mem_policy_lru.rdb": F("ok", {b"abcdefghijk": b"012345789abcdefghik"}, note="IDLE opcode"),
    "librdb/misc_with_stream.rdb": F("ok", {
        b"hset": {b"field": b"value", b"numeric": b"1"}, b"list": [b"element"], b"rcc": b"1",
        b"set": {b"member"}, b"zset": Z({b"member": 100}), b"hll": ("string", ANY),
        b"stream1": ("stream", ANY), b"stream2": ("stream", ANY), b"stream3": ("stream", ANY),
        b"stream5": ("stream", ANY), b"stream6": ("stream", ANY)},
        summary={"skipped_expired": 1}, patch=strip_misc_module_aux,
        note="Redis Enterprise 6.2 dump: module AUX data (skipped), streams, one expired key"),
    "librdb/module.rdb": F("refused", refused_key="key1",
                           note="a module value: a target without the module cannot hold it"),
    "librdb/module_aux.rdb": F("ok", {9: {b"x": b"1"}}, dbs=True, note="module AUX skipped; x is in db 9"),
    "librdb/module_aux_empty.rdb": F("ok", {}, note="only module AUX data"),
    "librdb/module_aux_v12.rdb": F("refused", refused_key="mykey", note="a module value plus module AUX"),
    "librdb/multiple_dbs.rdb": F("ok", {0: {b"x": b"0"}, 1: {b"y": b"1"}, 2: {b"z": b"2"}}, dbs=True),
    "librdb/multiple_lists_strings.rdb": F("ok", json_data="multiple_lists_strings_data.json"),
    "librdb/plain_list_v6.rdb": F("ok", json_data="plain_list_v6_data.json"),
    "librdb/plain_set_v6.rdb": F("ok", json_data="plain_set_v6_data.json", json_types={list: "set"}),
    "librdb/plain_zset_2_v11.rdb": F("ok", json_data="plain_zset_2_v11_data.json", json_types={dict: "zset"}),
    "librdb/plain_zset_v6.rdb": F("ok", json_data="plain_zset_v6_data.json", json_types={dict: "zset"}),
    "librdb/quicklist.rdb": F("ok", json_data="quicklist_data.json"),
    "librdb/quicklist2_v11.rdb": F("ok", json_data="single_list_data.json"),
    "librdb/redis_ent_opcode_ram_lru.rdb": F("ok-or-fail", {b"a": b"b", b"c": b"d", b"e": b"f"},
                                             note="Redis Enterprise opcode 107 before each key: skip it "
                                                  "correctly or refuse cleanly"),
    "librdb/script.rdb": F("ok", {}, note="lua aux ignored"),
    "librdb/script_legacy.rdb": F("ok", {}, note="lua aux ignored"),
    "librdb/set_expired_v11.rdb": F("ok", {}, summary={"skipped_expired": 1}),
    "librdb/set_is_v11.rdb": F("ok", json_data="set_is_v11_data.json", json_types={list: "set"}),
    "librdb/set_lp_v11.rdb": F("ok", json_data="set_lp_v11_data.json", json_types={list: "set"},
                               note="SET_LISTPACK (type 20) is 7.2+: rewritten for a 7.0 target"),
    "librdb/set_not_expired_v11.rdb": F("ok", {b"mykey": b"myval"}),
    "librdb/single_key.rdb": F("ok", {b"xxx": b"111"}),
    "librdb/stream_v11.rdb": F("ok", {b"mystream": STREAM_V11},
                               note="STREAM_LISTPACKS_3 (type 21) is 7.2+: rewritten for a 7.0 target"),
    "librdb/string_int_encoded.rdb": F("ok", json_data="string_int_encoded.json"),
    "librdb/string_lzf.rdb": F("ok", {b"x" * 26: b"A" * 64, b"y" * 50: b"B" * 116}),
    "librdb/ziplist_v3.rdb": F("ok", json_data="ziplist_data.json"),
    "librdb/zset_lp_v11.rdb": F("ok", json_data="zset_lp_v11_data.json", json_types={dict: "zset"}),
    "librdb/zset_zl_v6.rdb": F("ok", json_data="zset_zl_v6_data.json", json_types={dict: "zset"}),
    # --- Valkey (reconstructed) ----------------------------------------------------------
    "valkey-reconstructed/encodings-rdb12.rdb": F("ok", {b"foo": b"bar"}),
    "valkey-reconstructed/encodings-rdb75-unknown-types.rdb": F("fail", note="unknown type 150"),
    "valkey-reconstructed/encodings-rdb987-unknown-types.rdb": F("fail", note="VALKEY987, type 150"),
    "valkey-reconstructed/encodings-rdb987.rdb": F("fail", note="future version VALKEY987"),
}


def _fixture_root():
    root = os.environ.get("SHAKE_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "rdb")
    return os.path.abspath(root)


ROOT = _fixture_root()


def _require_root():
    if not os.path.isdir(ROOT):
        pytest.skip("RDB fixtures not found at %s (set SHAKE_FIXTURES)" % ROOT)


# --- expected data -------------------------------------------------------------------------

def load_librdb_json(name, types):
    """A librdb expected-output file: a JSON object body without its braces (or a list of
    them, one per db). Returns {db: {key: expected}}; dict values are hashes unless
    types[dict] says "zset", lists are lists unless types[list] says "set"."""
    with open(os.path.join(ROOT, "librdb", name)) as f:
        text = f.read().strip()
    dbs = json.loads(text) if text.startswith("[") else [json.loads("{" + text + "}")]
    out = {}
    for db, obj in enumerate(dbs):
        keys = {}
        for k, v in obj.items():
            if k.startswith("__") and k.endswith("__"):
                continue
            if isinstance(v, dict) and "entries" in v:
                continue  # streams are spelled out in the table
            if isinstance(v, dict):
                v = Z({m.encode(): float(s) for m, s in v.items()}) if types.get(dict) == "zset" \
                    else {f.encode(): x.encode() for f, x in v.items()}
            elif isinstance(v, list):
                v = {x.encode() for x in v} if types.get(list) == "set" else [x.encode() for x in v]
            else:
                v = v.encode()
            keys[k.encode()] = v
        out[db] = keys
    return out


def expected_keys(spec):
    """{db: {key: expected}} from the table entry (and its json file)."""
    out = {}
    if spec["multi_db"]:
        for db, keys in spec["keys"].items():
            out[db] = dict(keys)
    elif spec["keys"]:
        out[0] = dict(spec["keys"])
    if spec["json_data"]:
        for db, keys in load_librdb_json(spec["json_data"], spec["json_types"]).items():
            out.setdefault(db, {}).update(keys)
    return out


def check_value(key, want, got):
    """Differences between an expected value (table notation) and a compare.Value."""
    if got is None:
        return ["%r: missing" % key]
    if isinstance(want, tuple):
        wtype, wval = want
        if got.type != wtype:
            return ["%r: type %s, expected %s" % (key, got.type, wtype)]
        return []
    if isinstance(want, Z):
        if got.type != "zset":
            return ["%r: type %s, expected zset" % (key, got.type)]
        have = {m: float(s) for m, s in got.value.items()}
        return [] if have == dict(want) else ["%r: zset %r, expected %r" % (key, have, dict(want))]
    if isinstance(want, Stream):
        if got.type != "stream":
            return ["%r: type %s, expected stream" % (key, got.type)]
        v, problems = got.value, []
        entries = [(i, list(fv)) for i, fv in v["entries"]]
        if entries != want.entries:
            problems.append("%r: entries %r, expected %r" % (key, entries, want.entries))
        if want.last_id is not None and v["last-generated-id"] != want.last_id:
            problems.append("%r: last-generated-id %r" % (key, v["last-generated-id"]))
        if want.entries_added is not None and v["entries-added"] != want.entries_added:
            problems.append("%r: entries-added %r" % (key, v["entries-added"]))
        if want.groups is not None:
            have = {g["name"]: (g["last-delivered-id"], g["entries-read"],
                                {c: [i for i, _ in p] for c, p in g["consumers"].items()}) for g in v["groups"]}
            if have != want.groups:
                problems.append("%r: groups %r, expected %r" % (key, have, want.groups))
        return problems
    kind = {bytes: "string", list: "list", set: "set", dict: "hash"}[type(want)]
    if got.type != kind:
        return ["%r: type %s, expected %s" % (key, got.type, kind)]
    have = set(got.value) if kind == "set" else got.value
    return [] if have == want else ["%r: %s %s, expected %s" % (key, kind, compare._short(have, 300),
                                                                 compare._short(want, 300))]


def check_expected(snap, expected, db_map):
    """Exact key set per target db, and each expected value."""
    problems = []
    merged = {}
    for db, keys in expected.items():
        merged.setdefault(db_map.get(db, db), {}).update(keys)
    for db in sorted(set(merged) | set(k for k, v in snap.items() if v)):
        want, have = merged.get(db, {}), snap.get(db, {})
        if set(want) != set(have):
            problems.append("db%d keys: missing %r, extra %r" % (db, sorted(set(want) - set(have))[:10],
                                                                   sorted(set(have) - set(want))[:10]))
        for k in sorted(set(want) & set(have)):
            problems += check_value(k, want[k], have[k])
    return problems


# --- the oracle: what redis-server reads ---------------------------------------------------

def downgraded(data):
    return b"REDIS0010" + data[9:-8] + b"\0" * 8


def redis_oracle(servers, path, spec, tmp_path):
    """A redis-server holding what Redis reads from this fixture, or None."""
    with open(path, "rb") as f:
        data = f.read()
    candidates = [("as is", data)]
    if spec["patch"]:
        candidates.append(("patched", spec["patch"](data)))
    if data[:5] == b"REDIS" and data[5:9] in (b"0011", b"0012"):
        candidates.append(("downgraded to RDB 10", downgraded(data)))
    for how, blob in candidates:
        copy = tmp_path / ("oracle-" + os.path.basename(path))
        copy.write_bytes(blob)
        try:
            server = servers.load(str(copy), name="oracle")
        except harness.ServerStartError:
            continue
        if server.client().dbsize() == 0 and compare.dbs_with_keys(server) == [] and expected_keys(spec):
            server.stop()
            continue  # "loads 0 keys where keys are expected": Redis could not read it
        return how, server
    return None, None


# --- tests ---------------------------------------------------------------------------------

def all_fixture_files():
    if not os.path.isdir(ROOT):
        return []
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "**", "*.rdb"), recursive=True))


def test_every_fixture_is_in_the_table():
    _require_root()
    unknown = [f for f in all_fixture_files() if f not in FIXTURES]
    assert not unknown, "fixtures with no expectation in FIXTURES: %s" % unknown
    missing = [f for f in FIXTURES if not os.path.exists(os.path.join(ROOT, f))]
    assert not missing, "FIXTURES lists files that are not there: %s" % missing


RESTORABLE = [f for f, s in FIXTURES.items() if s["outcome"] in ("ok", "ok-or-fail")]
MUST_FAIL = [f for f, s in FIXTURES.items() if s["outcome"] == "fail"]
REFUSED = [f for f, s in FIXTURES.items() if s["outcome"] == "refused"]


@pytest.mark.parametrize("where", ["standalone", "cluster"])
@pytest.mark.parametrize("name", RESTORABLE)
def test_fixture_restores(servers, request, tmp_path, shake_bin, name, where):
    _require_root()
    spec = FIXTURES[name]
    path = os.path.join(ROOT, name)
    expected = expected_keys(spec)
    target = servers(name="target") if where == "standalone" else request.getfixturevalue("cluster")
    how, oracle = redis_oracle(servers, path, spec, tmp_path)
    if oracle is not None:
        # A cluster has db 0 only; map every other db the oracle (or the table) has onto it.
        dbs = set(compare.dbs_with_keys(oracle)) | set(expected)
    else:
        dbs = set(expected)
    db_map = {db: 0 for db in dbs if db != 0} if where == "cluster" else {}

    result = harness.restore(tmp_path, path, target, db_map=db_map or None, timeout=60)

    if spec["outcome"] == "ok-or-fail" and result.returncode != 0:
        # The policy allows a refusal, but a clean one: one line, naming the file or the key.
        line = assert_one_error(result, 1, max_seconds=FAIL_SECONDS)
        named = [os.path.basename(name)] + [k.decode() for keys in expected.values() for k in keys]
        assert any(n in line or n in result.stderr for n in named), result.describe()
        return
    assert_ok(result)
    snap = compare.snapshot(target)
    problems = check_expected(snap, expected, db_map)
    assert not problems, "%s (%s): %s\n%s" % (name, spec["note"], problems, result.describe())
    if oracle is not None:
        diffs = compare.compare(oracle, target, db_map=db_map)
        assert diffs == [], "%s differs from what redis-server reads (%s): %s" % (name, how, diffs)
    for address, libs in compare.functions(target):
        assert sorted(l.decode() for l in libs) == sorted(spec["functions"]), (address, list(libs))
    s = result.summary
    want = {"written": sum(len(k) for k in expected.values()), "skipped_expired": 0, "skipped_empty": 0,
            "skipped_existing": 0, "errors": 0, "bytes": os.path.getsize(path)}
    want.update(spec["summary"])
    assert {k: s.get(k) for k in want} == want, result.describe()


@pytest.mark.parametrize("name", MUST_FAIL)
def test_bad_fixture_fails_with_one_line_naming_file_and_offset(servers, tmp_path, shake_bin, name):
    _require_root()
    path = os.path.join(ROOT, name)
    target = servers(name="target")
    result = harness.restore(tmp_path, path, target, timeout=30)
    line = assert_one_error(result, 1, os.path.basename(name), re.compile(r"offset \d+"),
                            max_seconds=FAIL_SECONDS)
    offset = int(re.search(r"offset (\d+)", line).group(1))
    assert offset <= os.path.getsize(path), line
    if result.summary is not None:
        assert result.summary["status"] == "failed"


@pytest.mark.parametrize("name", REFUSED)
def test_value_the_target_cannot_hold_fails_naming_the_key(servers, tmp_path, shake_bin, name):
    _require_root()
    spec = FIXTURES[name]
    path = os.path.join(ROOT, name)
    target = servers(name="target")
    result = harness.restore(tmp_path, path, target, timeout=30)
    assert_one_error(result, 1, max_seconds=FAIL_SECONDS)
    assert spec["refused_key"] in result.stderr, result.describe()
    if result.summary is not None:
        assert result.summary["status"] == "failed"
        assert result.summary["errors"] >= 1 or result.summary["written"] == 0


def test_aof_with_rdb_preamble_restores_the_rdb_part(servers, tmp_path, shake_bin):
    """rdb-preamble.aof: an RDB followed by an AOF tail. As an RDB source, the RDB part is
    restored (k1, k2); the tail is not an RDB and is not applied."""
    _require_root()
    path = os.path.join(ROOT, "rdb-preamble.aof")
    if not os.path.exists(path):
        pytest.skip("rdb-preamble.aof not in the fixtures")
    copy = tmp_path / "preamble.rdb"
    shutil.copyfile(path, copy)
    target = servers(name="target")
    result = harness.restore(tmp_path, str(copy), target)
    assert_ok(result)
    assert sorted(target.client().keys()) == [b"k1", b"k2"]
    assert target.client().get(b"k1") == b"v1"
