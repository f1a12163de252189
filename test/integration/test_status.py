"""The status endpoint (`[shake] status`), its Prometheus text and `shake status`, against a
real live sync: every field checked here is checked against a fact the test knows
independently (the master's dump size, a target kept asleep, a marker key read on the target).

Every shake here gets its own free port for the endpoint (the default 127.0.0.1:9121 may be in
use by another run). Sources use disk-based sync unless a test says otherwise, so the master
announces the RDB's size (`$<len>` framing).
"""

import json
import math
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request

import dataset
import harness
from livesync import (DISK_SYNC, LOG_WAIT, RDB_RECEIVED, SeqWriter, assert_stops_cleanly,
                      source_config)

POLL_WAIT = 20.0   # seconds for a status condition


# --- helpers --------------------------------------------------------------------------------

def status_config(shakes, source, target, port, **kw):
    extra = kw.pop("extra_sections", {})
    extra.setdefault("shake", {})["status"] = "127.0.0.1:%d" % port
    return shakes.config(source, target, extra_sections=extra, **kw)


def http_get(port, path, timeout=5.0):
    """(status code, content type, body text) of GET http://127.0.0.1:port/path."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode("utf-8")


def get_status(port):
    code, ctype, body = http_get(port, "/status")
    assert code == 200 and ctype == "application/json", (code, ctype, body)
    return json.loads(body)


def wait_status(port, predicate, what, shake=None, timeout=POLL_WAIT):
    """Poll /status until predicate(status) holds; returns that status."""
    def check():
        if shake is not None and not shake.alive():
            raise AssertionError("shake exited\n" + shake.describe(30))
        s = get_status(port)
        return s if predicate(s) else None
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            s = check()
        except (OSError, ValueError) as e:  # not listening yet
            last = e
            s = None
        if s is not None:
            return s
        time.sleep(0.05)
    raise AssertionError("status never reached: %s (last error %r)\n%s"
                         % (what, last, shake.describe(30) if shake else ""))


def start_sync(servers, shakes, source_cfg=None, writes=None):
    source = servers(source_cfg or source_config(sync=DISK_SYNC), name="source")
    if writes:
        writes(source)
    target = servers(name="target")
    port = harness.free_port()
    p = shakes(status_config(shakes, source, target, port))
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    wait_status(port, lambda s: s["caught_up"], "caught up after the RDB", shake=p)
    return source, target, port, p


def run_status_cli(shake_bin, conf, *args, timeout=20):
    r = subprocess.run([shake_bin, "status", "-conf", str(conf)] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


class TargetSleep:
    """DEBUG SLEEP on the target from a thread (it blocks the caller): the target answers
    nothing for `seconds`."""

    def __init__(self, target, seconds):
        self.client = target.client()
        self.seconds = seconds
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error = None

    def _run(self):
        try:
            self.client.execute_command("DEBUG", "SLEEP", self.seconds)
        except Exception as e:  # noqa: BLE001 -- reported by join()
            self.error = e

    def start(self):
        self.thread.start()
        time.sleep(0.1)  # the server is now asleep
        return self

    def join(self):
        self.thread.join(timeout=self.seconds + 30)
        assert not self.thread.is_alive() and self.error is None, self.error


# --- a strict Prometheus text format 0.0.4 parser ---------------------------------------------

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)(?: (-?\d+))?$" % (NAME, LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
HELP_RE = re.compile(r"^# HELP (%s) (.*)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME)


def parse_value(text):
    if text in ("NaN", "+Inf", "-Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", text):
        raise AssertionError("bad sample value %r" % text)
    return float(text)


def unescape(value):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def parse_prometheus(text):
    """{family: {"type", "help", "samples": [(labels dict, value)]}}; AssertionError on any
    deviation: a line that is neither a comment nor a sample, a sample before its family's
    TYPE, a family split in two, a repeated TYPE or HELP, a repeated label set, a counter
    that is negative, or text not ending in a line feed."""
    assert text.endswith("\n"), "exposition must end with a line feed"
    families = {}
    current = None
    closed = set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d: %r" % (n, line)
        assert line != "", "empty line at " + where
        m = HELP_RE.match(line)
        if m:
            fam = families.setdefault(m.group(1), {"type": None, "help": None, "samples": []})
            assert fam["help"] is None, "second HELP at " + where
            assert m.group(1) not in closed, "family split at " + where
            fam["help"] = m.group(2)
            current = m.group(1)
            continue
        m = TYPE_RE.match(line)
        if m:
            fam = families.setdefault(m.group(1), {"type": None, "help": None, "samples": []})
            assert fam["type"] is None, "second TYPE at " + where
            assert not fam["samples"], "TYPE after samples at " + where
            fam["type"] = m.group(2)
            current = m.group(1)
            continue
        assert not line.startswith("#"), "stray comment at " + where
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: " + where
        name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
        assert name in families and families[name]["type"] is not None, "sample before TYPE at " + where
        if current != name:
            assert name not in closed, "family split at " + where
            if current is not None:
                closed.add(current)
            current = name
        labels = {k: unescape(v) for k, v in LABEL_RE.findall(labels_text)}
        assert len(labels) == len(LABEL_RE.findall(labels_text)), "repeated label at " + where
        v = parse_value(value)
        fam = families[name]
        assert all(l != labels for l, _ in fam["samples"]), "repeated label set at " + where
        if fam["type"] == "counter":
            assert not math.isnan(v) and v >= 0, "negative counter at " + where
        fam["samples"].append((labels, v))
    for name, fam in families.items():
        assert fam["type"] is not None, "family %s has no TYPE" % name
        assert fam["help"] is not None, "family %s has no HELP" % name
    return families


def metric(families, name, **labels):
    for l, v in families[name]["samples"]:
        if all(l.get(k) == val for k, val in labels.items()):
            return v
    raise KeyError("%s%r" % (name, labels))


# --- tests ------------------------------------------------------------------------------------

def test_rdb_bytes_total_equals_the_dump_the_master_sent(servers, shakes):
    source = servers(source_config(sync=DISK_SYNC), name="source")
    dataset.fill(source, scale=1)
    target = servers(name="target")
    port = harness.free_port()
    p = shakes(status_config(shakes, source, target, port))
    s = wait_status(port, lambda s: s["shards"] and s["caught_up"], "caught up", shake=p)
    dump = os.path.join(source.dir, "dump.rdb")  # the master's BGSAVE for the sync
    size = os.path.getsize(dump)
    shard = s["shards"][0]
    assert shard["name"] == "standalone" and shard["address"] == source.address, shard
    assert shard["phase"] == "stream"
    assert shard["rdb_bytes_total"] == size, (shard, size)
    assert shard["rdb_bytes_done"] == size, (shard, size)
    assert shard["keys_written"] == target.client().dbsize() + sum(
        target.client(db=d).dbsize() for d in (1, 5)), shard
    assert shard["full_syncs"] == 1 and shard["partial_syncs"] == 0
    assert s["job"] == "sync" and s["version"] and s["uptime_seconds"] > 0
    assert s["writer"]["in_flight"] == 0 and s["writer"]["idle"] is True
    assert s["errors"]["key_errors"] == 0
    assert_stops_cleanly(p)


def test_lag_grows_while_the_target_sleeps_and_returns_to_zero(servers, shakes):
    source, target, port, p = start_sync(servers, shakes)
    writer = SeqWriter(source, "lag", pause=0.001).start()
    writer.wait_count(50)
    sleep = TargetSleep(target, 3).start()
    seen = []
    t_end = time.monotonic() + 2.5
    while time.monotonic() < t_end:
        s = get_status(port)
        seen.append((s["shards"][0]["lag_bytes"], s["shards"][0]["lag_ms"], s["caught_up"]))
        time.sleep(0.1)
    sleep.join()
    writer.stop()
    lags = [b for b, _, _ in seen]
    assert max(lags) > 0, seen
    assert not any(c for _, _, c in seen[3:]), "caught_up while the target sleeps: %r" % seen
    # it grows while writes flow and nothing is acknowledged
    assert lags[-1] > lags[2] > 0, seen
    # lag_ms is the age of the oldest unacknowledged write: about the time asleep so far
    assert max(ms for _, ms, _ in seen) >= 1500, seen
    s = wait_status(port, lambda s: s["caught_up"], "caught up after the sleep", shake=p)
    assert s["shards"][0]["lag_bytes"] == 0 and s["shards"][0]["lag_ms"] == 0, s
    assert s["shards"][0]["acked_offset"] == s["shards"][0]["received_offset"] == \
        s["shards"][0]["source_offset"], s
    writer.check(target)
    assert_stops_cleanly(p)


def test_caught_up_only_after_the_last_write_is_on_the_target(servers, shakes):
    source, target, port, p = start_sync(servers, shakes)
    src, dst = source.client(), target.client()
    for round_ in range(3):
        writer = SeqWriter(source, "cu%d" % round_, pause=0.001).start()
        writer.wait_count(100)
        sleep = TargetSleep(target, 1).start()
        writer.stop()
        marker = b"marker:%d" % round_
        src.set(marker, b"last")
        # WAIT returns once shake has parsed the marker (it ACKs the parsed offset): from
        # then on, caught_up may only be true when the marker is on the target.
        assert src.execute_command("WAIT", 1, 5000) == 1
        saw_false = saw_true = False
        deadline = time.monotonic() + POLL_WAIT
        while not saw_true:
            assert time.monotonic() < deadline, "never caught up\n" + p.describe(30)
            s = get_status(port)
            if s["caught_up"]:
                assert dst.get(marker) == b"last", "caught_up before the marker landed: %r" % s
                saw_true = True
            else:
                saw_false = True
                time.sleep(0.01)
        assert saw_false, "the target slept: caught_up must have been false for a while"
        sleep.join()
        writer.check(target)
    assert_stops_cleanly(p)


def test_metrics_parse_as_valid_prometheus_exposition(servers, shakes):
    source, target, port, p = start_sync(servers, shakes)
    writer = SeqWriter(source, "m").start()
    writer.wait_count(100)
    code, ctype, text = http_get(port, "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4"), (code, ctype)
    families = parse_prometheus(text)
    for name in ("shake_caught_up", "shake_shard_lag_bytes", "shake_shard_lag_seconds",
                 "shake_shard_acked_offset_bytes", "shake_shard_rdb_bytes_total",
                 "shake_writer_in_flight_entries", "shake_key_errors_total"):
        assert name in families, name
    assert metric(families, "shake_shard_phase", shard="standalone", phase="stream") == 1
    assert metric(families, "shake_shard_phase", shard="standalone", phase="rdb") == 0
    assert metric(families, "shake_shard_info", shard="standalone")
    assert [l for l, _ in families["shake_shard_info"]["samples"]][0]["address"] == source.address
    writer.stop()
    s = wait_status(port, lambda s: s["caught_up"], "caught up", shake=p)
    families = parse_prometheus(http_get(port, "/metrics")[2])
    assert metric(families, "shake_caught_up") == 1
    assert metric(families, "shake_shard_lag_bytes", shard="standalone") == 0
    assert metric(families, "shake_shard_acked_offset_bytes", shard="standalone") == \
        s["shards"][0]["acked_offset"]
    # anything else: 404; HEAD: the head only
    assert http_get(port, "/")[0] == 404
    assert http_get(port, "/status/x")[0] == 404
    req = urllib.request.Request("http://127.0.0.1:%d/status" % port, method="HEAD")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200 and r.read() == b""
    req = urllib.request.Request("http://127.0.0.1:%d/status" % port, data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        raise AssertionError("POST accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 405
    assert_stops_cleanly(p)


def test_shake_status_exits_0_caught_up_1_behind_2_unreachable(servers, shakes, shake_bin):
    source, target, port, p = start_sync(servers, shakes)
    conf = p.conf_path
    rc, out, err = run_status_cli(shake_bin, conf)
    assert rc == 0, (rc, out, err)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["shard", "phase", "rdb"], out
    row = lines[1].split()
    assert row[0] == "standalone" and row[1] == "stream" and row[2] == "100.0%", out
    assert "caught up: yes" in out
    rc, out, err = run_status_cli(shake_bin, conf, "--json")
    assert rc == 0 and json.loads(out)["caught_up"] is True, (rc, out, err)

    # behind: writes flow while the target sleeps
    writer = SeqWriter(source, "cli", pause=0.001).start()
    writer.wait_count(50)
    sleep = TargetSleep(target, 2).start()
    rc, out, err = run_status_cli(shake_bin, conf)
    rc_json, out_json, _ = run_status_cli(shake_bin, conf, "--json")
    sleep.join()
    writer.stop()
    assert rc == 1 and "caught up: no" in out, (rc, out, err)
    assert rc_json == 1 and json.loads(out_json)["caught_up"] is False, out_json
    wait_status(port, lambda s: s["caught_up"], "caught up", shake=p)

    # unreachable: shake stopped
    assert_stops_cleanly(p)
    rc, out, err = run_status_cli(shake_bin, conf)
    assert rc == 2 and "not reachable" in err and "127.0.0.1:%d" % port in err, (rc, out, err)
    rc, out, err = run_status_cli(shake_bin, conf, "--json")
    assert rc == 2 and out == "", (rc, out, err)


def test_status_off_and_usage(servers, shakes, shake_bin, tmp_path):
    source = servers(name="source")
    target = servers(name="target")
    conf = shakes.config(source, target, extra_sections={"shake": {"status": ""}})
    rc, out, err = run_status_cli(shake_bin, conf)
    assert rc == 2 and "endpoint is off" in err, (rc, out, err)
    r = subprocess.run([shake_bin, "status"], capture_output=True, timeout=10)
    assert r.returncode == 2 and b"-conf" in r.stderr


def test_restore_serves_one_pseudo_shard_per_file(servers, tmp_path, shake_bin):
    source = servers(name="source")
    dataset.fill(source, scale=1)
    dump = source.dump_copy(str(tmp_path / "a.rdb"))
    target = servers(name="target")
    port = harness.free_port()
    conf = harness.write_config(str(tmp_path / "restore.ini"), [dump], target.address,
                                extra_sections={"shake": {"status": "127.0.0.1:%d" % port}})
    sleep = TargetSleep(target, 2).start()  # the restore waits for the target meanwhile
    p = harness.ShakeProcess(conf, binary=shake_bin, name="restore")
    try:
        s = wait_status(port, lambda s: s["shards"], "the restore's status", shake=p)
        assert s["job"] == "restore" and len(s["shards"]) == 1 and not s["caught_up"], s
        f = s["shards"][0]
        assert f["name"] == "file0" and f["phase"] == "rdb" and f["address"] == dump, f
        assert f["rdb_bytes_total"] == os.path.getsize(dump), f
        assert f["rdb_bytes_done"] == 0 and f["keys_written"] == 0, f
        families = parse_prometheus(http_get(port, "/metrics")[2])
        assert metric(families, "shake_shard_rdb_bytes_total", shard="file0") == os.path.getsize(dump)
        sleep.join()
        assert p.wait_exit(60) == 0, p.describe()
        for noise in harness.NOISE:
            assert noise not in p.text(), p.describe()
    finally:
        p.kill()
