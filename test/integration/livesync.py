"""livesync.py -- helpers for the live sync tests and the demo (on top of harness.py).

Owns: clients for either kind of endpoint (standalone server or cluster), a background
writer thread that writes sequence-numbered keys so every write can be found on the target
exactly once, a cluster filler (dataset.py fills one server), polling compare until the
target has caught up, and the source settings the sync tests use.

Must not: wait without a timeout, or talk to anything but the servers it is given.
"""

import threading
import time

import redis
import redis.cluster

import compare
import dataset
import harness
from harness import Cluster

# Source settings: full syncs start at once (Redis 7 waits 5 s by default).
FAST_SYNC = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": 0}
DISK_SYNC = {"repl-diskless-sync": "no", "repl-diskless-sync-delay": 0}


def client_for(endpoint, db=0):
    """A bytes client for a RedisServer (db `db`) or a Cluster (RedisCluster, db 0)."""
    if isinstance(endpoint, Cluster):
        n = endpoint.nodes[0]
        return redis.cluster.RedisCluster(host=harness.HOST, port=n.port, socket_timeout=30,
                                          socket_connect_timeout=5, password=endpoint.config.get("requirepass"))
    return endpoint.client(db=db)


class SeqWriter:
    """A thread with its own connection writing, for write number N = 0, 1, 2, ...:

        SET <name>:seq:N N          (idempotent)
        RPUSH <name>:log N          (unless idempotent_only)
        INCR <name>:counter         (unless idempotent_only)

    `start()` runs until `stop()` or `max_seconds`; it can be started again and continues
    the numbering. `check(target)` asserts every write is on the target exactly once."""

    def __init__(self, endpoint, name="w", db=0, idempotent_only=False, pause=0.002, batch=5):
        self.endpoint = endpoint
        self.name = name.encode() if isinstance(name, str) else name
        self.db = db
        self.idempotent_only = idempotent_only
        self.pause = pause
        self.batch = batch
        self.count = 0          # writes acknowledged by the source
        self.error = None
        self._stop = threading.Event()
        self._thread = None
        self._client = None

    def key(self, what, n=None):
        if n is None:
            return self.name + b":" + what
        return self.name + b":" + what + b":%d" % n

    def _run(self, max_seconds):
        deadline = time.monotonic() + max_seconds
        try:
            c = self._client
            while not self._stop.is_set() and time.monotonic() < deadline:
                # Each write is sent on its own and confirmed before the next: `count` is exact.
                for _ in range(self.batch):
                    n = self.count
                    c.set(self.key(b"seq", n), b"%d" % n)
                    if not self.idempotent_only:
                        c.rpush(self.key(b"log"), b"%d" % n)
                        c.incr(self.key(b"counter"))
                    self.count = n + 1
                if self.pause:
                    time.sleep(self.pause)
        except Exception as e:  # noqa: BLE001 -- reported by stop()
            self.error = e

    def start(self, max_seconds=30.0):
        assert self._thread is None, "writer already running"
        if self._client is None:
            self._client = client_for(self.endpoint, self.db)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(max_seconds,), daemon=True)
        self._thread.start()
        return self

    def retarget(self, endpoint):
        """Write to another endpoint from now on (a promoted replica); must be stopped."""
        assert self._thread is None, "stop the writer before retargeting it"
        self.endpoint = endpoint
        self._client = None

    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "writer thread did not stop"
            self._thread = None
        if self.error is not None:
            raise AssertionError("writer %s failed after %d writes: %r" % (self.name, self.count, self.error))
        return self.count

    def wait_count(self, at_least, timeout=10.0):
        harness.wait_until(lambda: self.count >= at_least or self.error, timeout,
                           what="writer %s reaching %d writes (at %d)" % (self.name, at_least, self.count))

    def wait_applied(self, target, n, shake=None, timeout=15.0, db=0):
        """Wait until write number `n` is on `target` (the stream really flows); stops early
        when `shake` exits."""
        c = client_for(target, db)

        def there():
            if shake is not None and not shake.alive():
                raise AssertionError("shake exited (status %s) before write %d of %s reached the target\n%s"
                                     % (shake.returncode, n, self.name.decode(), shake.describe(20)))
            return c.exists(self.key(b"seq", n))
        deadline = time.monotonic() + timeout
        while not there():
            if time.monotonic() > deadline:
                raise AssertionError("write %d of %s not on the target within %.0fs%s"
                                     % (n, self.name.decode(), timeout,
                                        "\n" + shake.describe(20) if shake is not None else ""))
            time.sleep(0.05)

    def check(self, target, db=0):
        """Every write on `target` (db `db`) exactly once: counter, log in order, every seq key."""
        c = client_for(target, db)
        n = self.count
        assert n > 0, "writer %s wrote nothing: the test did not exercise anything" % self.name
        if not self.idempotent_only:
            counter = c.get(self.key(b"counter"))
            assert counter == b"%d" % n, "%s on target: %r, expected %d" % (self.key(b"counter"), counter, n)
            log = c.lrange(self.key(b"log"), 0, -1)
            want = [b"%d" % i for i in range(n)]
            if log != want:
                first = next((i for i, (a, b) in enumerate(zip(log, want)) if a != b), min(len(log), len(want)))
                raise AssertionError("%s on target: %d elements, expected %d; first difference at %d: %r"
                                     % (self.key(b"log"), len(log), n, first, log[first:first + 5]))
        keys = [self.key(b"seq", i) for i in range(n)]
        values = []
        for i in range(0, n, 500):
            part = keys[i:i + 500]
            if isinstance(target, Cluster):
                values += [c.get(k) for k in part]
            else:
                values += c.mget(part)
        missing = [i for i, v in enumerate(values) if v != b"%d" % i]
        assert not missing, "%d of %d %s:seq:N keys missing or wrong on target, first %r" % (
            len(missing), n, self.name.decode(), missing[:10])


def fill_cluster(cluster, count=300, seed=3):
    """Keys of every type spread over every slot range of `cluster`, plus a few fixed ones
    (returned as {key: expected value read back with the matching command})."""
    import random
    rng = random.Random(seed)
    c = client_for(cluster)
    pipe = c.pipeline()
    for i in range(count):
        k = b"c:%05d" % i
        kind = i % 6
        if kind == 0:
            pipe.set(k, b"v%d-" % i + bytes(rng.randint(97, 122) for _ in range(rng.randint(0, 60))))
        elif kind == 1:
            pipe.rpush(k, *[b"e%d" % j for j in range(rng.randint(1, 20))])
        elif kind == 2:
            pipe.hset(k, mapping={b"f%d" % j: b"%d" % rng.randint(0, 10 ** 9) for j in range(rng.randint(1, 20))})
        elif kind == 3:
            pipe.sadd(k, *[b"m%d" % rng.randint(0, 1000) for _ in range(rng.randint(1, 20))])
        elif kind == 4:
            pipe.zadd(k, {b"z%d" % j: rng.uniform(-1e6, 1e6) for j in range(rng.randint(1, 20))})
        else:
            pipe.xadd(k, {b"n": b"%d" % i, b"p": b"x" * rng.randint(0, 30)}, id=b"%d-1" % (i + 1))
        if i % 7 == 0:
            pipe.pexpire(k, 10 ** 8 + i)
    pipe.set(b"c:binary:\x00\xff", b"\x00\r\n\xff")
    pipe.zadd(b"c:zset:special", {b"max": 1.7976931348623157e308, b"tiny": 1e-300, b"third": 1 / 3})
    pipe.execute()
    return count + 2


def wait_equal(source, target, db_map=None, timeout=30.0, ignore=None, check_functions=True, shake=None):
    """Poll compare.compare until the target equals the source; returns [] or raises an
    AssertionError listing the differences still there at the timeout. `ignore(line)` drops
    difference lines that a test documents separately. With `shake` (a ShakeProcess), stop
    waiting as soon as it exits and show its log."""
    deadline = time.monotonic() + timeout
    diffs = ["(never compared)"]
    while True:
        if shake is not None and not shake.alive():
            diffs = compare.compare(source, target, db_map=db_map, check_functions=check_functions)
            if ignore is not None:
                diffs = [d for d in diffs if not ignore(d)]
            if diffs:
                raise AssertionError("shake exited (status %s) before the target caught up: %d differences\n  %s\n%s"
                                     % (shake.returncode, len(diffs), "\n  ".join(diffs[:10]), shake.describe(20)))
        try:
            diffs = compare.compare(source, target, db_map=db_map, check_functions=check_functions)
            if ignore is not None:
                diffs = [d for d in diffs if not ignore(d)]
        except redis.exceptions.RedisError as e:  # a slot moving under SCAN, a busy node
            diffs = ["compare failed: %r" % e]
        if not diffs:
            return []
        if time.monotonic() >= deadline:
            raise AssertionError("target still differs from the source after %.0fs: %d differences\n  %s"
                                 % (timeout, len(diffs), "\n  ".join(diffs[:25])))
        time.sleep(0.2)


def replication_position(server):
    """(master_replid, master_repl_offset) of a standalone source."""
    info = server.client().info("replication")
    return info["master_replid"], int(info["master_repl_offset"])


def read_checkpoint(path):
    """{shard name: (replid, offset, db)} from shake's checkpoint file ({} when absent)."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 5 and parts[0] == "shard":
                    out[parts[1]] = (parts[2], int(parts[3]), int(parts[4]))
    except FileNotFoundError:
        pass
    return out


def redis_log(server):
    try:
        with open(server.dir + "/redis.log", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def shard_names(cluster):
    """shake's shard names for a cluster source: slots-<first>-<last> per master's first range."""
    return sorted("slots-%d-%d" % (lo, hi) for lo, hi, _ in cluster.slot_ranges())


# --- shared by the sync tests --------------------------------------------------------------

FULL_SYNC = r"full sync from ([0-9a-f]{40}) at offset (\d+) \((.*)\)"
RDB_RECEIVED = r"RDB received"
LOG_WAIT = 20      # seconds for a log line
EQUAL_WAIT = 30    # seconds for the target to catch up


def source_config(profile="small", sync=FAST_SYNC, **extra):
    cfg = dict(dataset.PROFILES[profile])
    cfg.update(sync)
    cfg.update(extra)
    return cfg


def stretch_rdb(server, us_per_key):
    """Slow the source's fork down (microseconds per key) so writes overlap the RDB."""
    server.client().config_set("rdb-key-save-delay", us_per_key)


def assert_checkpoint_covers(path, shard, replid, offset):
    """The checkpoint has `shard` on `replid` at an offset at least `offset` (every write
    made before it)."""
    cp = read_checkpoint(path)
    assert shard in cp, "no line for shard %s in the checkpoint %s: %r" % (shard, path, cp)
    assert cp[shard][0] == replid, "checkpoint replid %s, source's %s" % (cp[shard][0], replid)
    assert cp[shard][1] >= offset, ("checkpoint offset %d is before the source's offset %d when the "
                                    "writes ended" % (cp[shard][1], offset))
    return cp[shard]


def assert_stops_cleanly(p):
    rc = p.stop()
    assert rc == 0, "shake exited %s on SIGTERM, expected 0\n%s" % (rc, p.describe())
    assert not p.result().error_lines, p.describe()
    for noise in harness.NOISE:
        assert noise not in p.text(), "crash noise %r\n%s" % (noise, p.describe())
