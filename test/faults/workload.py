"""workload.py -- the fault suite's workload and how loss and duplication are measured.

Owns: the background writer (livesync.SeqWriter: for write N, `SET w:seq:N N`, `RPUSH w:log N`,
`INCR w:counter`, each confirmed by the source before the next, so `count` is exactly what the
source acknowledged), the end marker that tells when the target has applied everything written
before it, and `measure`: per write number, whether it is on the target, and how many times.

A write N is lost when `w:seq:N` is missing or wrong on the target, or N is missing from `w:log`,
or `w:counter` is below the number of writes. It is duplicated when N appears more than once in
`w:log` (or `w:counter` is above the count). SET is idempotent, RPUSH and INCR are not: a replayed
command shows up in the list and the counter, never in the seq keys.

Must not: write to the target, or wait without a timeout.
"""

import collections
import time

import livesync
from harness import Cluster

MARKER = b"faults:end"


class Workload:
    """A SeqWriter named `name` writing to `source` (a RedisServer or Cluster)."""

    def __init__(self, source, name="w", pause=0.002):
        self.name = name
        self.writer = livesync.SeqWriter(source, name, pause=pause)

    @property
    def count(self):
        return self.writer.count

    def start(self, max_seconds=600.0):
        self.writer.start(max_seconds=max_seconds)
        return self

    def stop(self):
        return self.writer.stop()

    def retarget(self, source):
        self.writer.retarget(source)

    def wait_count(self, at_least, timeout=20.0):
        self.writer.wait_count(at_least, timeout=timeout)

    def run_for(self, seconds, at_least=50):
        """Let the writer run `seconds` (and at least `at_least` more writes)."""
        start = self.count
        time.sleep(seconds)
        self.wait_count(start + at_least)

    def wait_applied(self, target, shake=None, timeout=30.0):
        """Until the latest acknowledged write is on the target (the stream flows)."""
        n = self.count - 1
        if n >= 0:
            self.writer.wait_applied(target, n, shake=shake, timeout=timeout)

    def noisy_key(self, line):
        """Does a compare difference line concern the non-idempotent keys (log, counter)?"""
        return any(repr(self.writer.key(k))[1:] in line for k in (b"log", b"counter"))


def put_marker(source, value):
    livesync.client_for(source).set(MARKER, value)


def wait_marker(target, value, timeout, shake=None):
    """Until the end marker written on the source after the workload stopped is on the target:
    everything written before it has been applied (one source shard: the stream is in order)."""
    c = livesync.client_for(target)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if c.get(MARKER) == value:
                return True
        except Exception:  # noqa: BLE001 -- a target node failing over: try again
            c = livesync.client_for(target)
        if shake is not None and not shake.alive():
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _values(c, keys, is_cluster):
    out = []
    for i in range(0, len(keys), 500):
        part = keys[i:i + 500]
        out += c.mget_nonatomic(part) if is_cluster else c.mget(part)
    return out


def measure(workload, target):
    """{writes, lost, duplicated, detail} of the workload on `target` (RedisServer or Cluster)."""
    w = workload.writer
    n = w.count
    is_cluster = isinstance(target, Cluster)
    c = livesync.client_for(target)
    values = _values(c, [w.key(b"seq", i) for i in range(n)], is_cluster)
    missing_seq = {i for i, v in enumerate(values) if v != b"%d" % i}
    log = c.lrange(w.key(b"log"), 0, -1)
    counts = collections.Counter(log)
    missing_log = {i for i in range(n) if counts.get(b"%d" % i, 0) == 0}
    dup_log = sum(k - 1 for v, k in counts.items() if k > 1)
    unknown = sum(k for v, k in counts.items() if not (v.isdigit() and int(v) < n))
    counter = c.get(w.key(b"counter"))
    counter = int(counter) if counter is not None else 0
    lost = len(missing_seq | missing_log)
    lost = max(lost, n - counter)
    duplicated = max(dup_log, counter - n)
    order_ok = [int(v) for v in log if v.isdigit()] == sorted(int(v) for v in log if v.isdigit())
    detail = []
    if missing_seq:
        detail.append("%d seq keys missing (first %s)" % (len(missing_seq), sorted(missing_seq)[:5]))
    if missing_log:
        detail.append("%d missing from the log (first %s)" % (len(missing_log), sorted(missing_log)[:5]))
    if dup_log:
        detail.append("%d log entries twice" % dup_log)
    if counter != n:
        detail.append("counter %d for %d writes" % (counter, n))
    if unknown:
        detail.append("%d unknown log entries" % unknown)
    if not order_ok and not dup_log:
        detail.append("log out of order")
    return {"writes": n, "lost": lost, "duplicated": duplicated, "detail": detail}
