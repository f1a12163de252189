"""`shake verify` against real live syncs (docs/cutover.md).

A filled source (every type, several dbs, streams with groups and PELs, functions) syncs into
a target; once the target has caught up, verify must exit 0 with the counts. Then target keys
are corrupted one way each (a value, a TTL, a deleted key, an extra key, a stream group's last
delivered id): verify must exit 1 and name every one. --sample and the config's filter and
db_map are honoured.
"""

import re

import pytest

import dataset
import harness
from livesync import EQUAL_WAIT, client_for, fill_cluster, source_config, wait_equal

NO_STATUS = {"shake": {"status": ""}}


def verify(conf, *args, timeout=120):
    return harness.run_shake(conf, args=["verify", "-conf", conf] + list(args), timeout=timeout)


def summary(result):
    s = result.summary
    assert s is not None, result.describe()
    return s


def synced(servers, shakes, target, db_map=None, filters=None, fill=True):
    source = servers(source_config(), name="source")
    if fill:
        dataset.fill(source)
    extra = dict(NO_STATUS)
    if filters:
        extra["filter"] = filters
    conf = shakes.config(source, target, db_map=db_map, extra_sections=extra)
    p = shakes(conf)
    return source, conf, p


def test_verify_after_a_live_sync_converges_exits_0_with_counts(servers, shakes):
    target = servers(name="target")
    source, conf, p = synced(servers, shakes, target)
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    result = verify(conf)
    assert result.returncode == 0, result.describe()
    s = summary(result)
    total = sum(source.client(db=db).dbsize() for db in (0, 1, 5))
    assert s["checked"] == total and s["equal"] == total, result.describe()
    assert s["different"] == s["missing"] == s["extra"] == 0 and s["functions"] == "equal"
    for t in ("string", "list", "set", "zset", "hash", "stream"):
        assert re.search(r"^\s+%s\s+checked [1-9]" % t, result.stdout, re.M), result.describe()


def test_verify_catches_every_corruption_and_names_the_key(servers, shakes):
    target = servers(name="target")
    source, conf, p = synced(servers, shakes, target)
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    p.kill()  # nothing may repair the target behind our back
    t = target.client()
    string_key = b"str:embstr"
    ttl_key = next(k for k in source.client().scan_iter(count=1000) if source.client().pttl(k) > 100000)
    deleted = b"hash:small"
    t.set(string_key, b"changed on the target")
    t.pexpire(ttl_key, 50000)
    t.delete(deleted)
    t.set(b"only:on:target", b"x")
    stream, group, last = next((k, g["name"], g["last-delivered-id"])
                               for k in source.client().scan_iter(_type="stream", count=1000)
                               for g in source.client().xinfo_groups(k))
    t.execute_command("XGROUP", "SETID", stream, group, "0-0" if last != b"0-0" else "0-1")
    t.rpush(b"list:small", b"one more")

    result = verify(conf, "--rounds", "2")
    assert result.returncode == 1, result.describe()
    s = summary(result)
    assert s["missing"] == 1 and s["extra"] == 1 and s["different"] == 4, result.describe()
    out = result.stdout
    assert re.search(r'^different: string db 0 "str:embstr" .*string', out, re.M), out
    assert re.search(r'^different: \w+ db 0 "%s" .*ttl:' % re.escape(ttl_key.decode()), out, re.M), out
    assert re.search(r'^missing: hash db 0 "hash:small" .*not on the target', out, re.M), out
    assert re.search(r'^extra: string db 0 "only:on:target" on the target', out, re.M), out
    assert re.search(r'^different: stream db 0 "%s" .*last-delivered-id' % re.escape(stream.decode()), out,
                     re.M), out
    assert re.search(r'^different: list db 0 "list:small" .*list length', out, re.M), out
    assert "rounds=2" in out


def test_verify_sample_checks_a_deterministic_part_both_ways(servers, shakes):
    target = servers(name="target")
    source, conf, p = synced(servers, shakes, target)
    wait_equal(source, target, timeout=EQUAL_WAIT, shake=p)
    full = summary(verify(conf))
    first, second = verify(conf, "--sample", "50"), verify(conf, "--sample", "50")
    assert first.returncode == 0, first.describe()
    a, b = summary(first), summary(second)
    assert a["checked"] == b["checked"] and a["sample"] == 50
    assert 0 < a["checked"] < full["checked"] and 0 < a["target_checked"] < full["target_checked"]
    assert verify(conf, "--sample", "0").returncode == 2
    assert verify(conf, "--rounds", "0").returncode == 2


def test_verify_respects_filters_and_db_map(servers, cluster, shakes):
    db_map = {1: 0, 5: 0}
    source, conf, p = synced(servers, shakes, cluster, db_map=db_map,
                             filters={"block_key_prefix": "bulk:"})
    source.client().set(b"{x}kept", b"1")
    harness.wait_until(lambda: client_for(cluster).get(b"{x}kept") == b"1", EQUAL_WAIT,
                       what="the sync to carry a key")
    result = verify(conf)
    assert result.returncode == 0, result.describe()
    s = summary(result)
    assert s["filtered"] > 0 and s["extra"] == 0, result.describe()
    # A key the filter drops, written on the target, is extra; a db 5 key lands in db 0.
    c = client_for(cluster)
    c.set(b"bulk:planted", b"x")
    c.set(b"d5:str", b"changed")
    result = verify(conf, "--rounds", "1")
    assert result.returncode == 1, result.describe()
    assert re.search(r'^extra: string db 0 "bulk:planted"', result.stdout, re.M), result.describe()
    assert re.search(r'^different: string db 5 "d5:str" \(target db 0 "d5:str"\)', result.stdout,
                     re.M), result.describe()


def test_verify_cluster_source_converges_over_rounds(servers, cluster, shakes):
    source = harness.Cluster(source_config(), masters=3).start()
    try:
        fill_cluster(source, count=120)
        conf = shakes.config(source.nodes[1], cluster, extra_sections=NO_STATUS)
        p = shakes(conf)
        wait_equal(source, cluster, timeout=EQUAL_WAIT, shake=p)
        c = client_for(source)
        for i in range(50):  # in flight while verify starts: the rounds let them land
            c.set(b"late:%d" % i, b"%d" % i)
        result = verify(conf, "--rounds", "5")
        assert result.returncode == 0, result.describe()
        assert summary(result)["checked"] >= 122, result.describe()
    finally:
        source.stop()


def test_verify_unreachable_target_exits_2(servers, shakes):
    source = servers(name="source")
    dead = harness.free_port()
    conf = shakes.config(source, "127.0.0.1:%d" % dead, extra_sections=NO_STATUS)
    result = verify(conf)
    assert result.returncode == 2, result.describe()
    assert any("127.0.0.1:%d" % dead in l for l in result.error_lines), result.describe()
