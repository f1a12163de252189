"""live.py -- the live-sync scenarios of `make bench`: S1 full sync and S3 incremental.

S1  full sync: the R1 dataset (gen.fill_r1) on a standalone source with diskless sync and no
    delay, replicated by shake into an empty local 3-master cluster. One round runs, in this
    order: (A) shake, timed from its spawn until GET /status shows every shard in phase
    `stream`, `caught_up` true and writer.keys_written equal to the source's key count (every
    RDB key acknowledged by the target); (B) `redis-cli --rdb FILE`, the transfer alone, timed
    from spawn to exit; (C) a fresh redis-server with `repl-diskless-load on-empty-db`, timed
    from REPLICAOF until master_link_status:up with loading:0. Target: A <= 1.15 x B.
S3  incremental: a pipelined mixed SET/LPUSH/HSET/ZADD load (four redis-benchmark processes,
    one command each) on the source for a fixed window, once with shake attached (after its
    full sync) and once with a real replica attached, alternating. Measured: the source's
    ops/s (INFO commandstats over the window), the end-to-end delay of a marker key written
    every 100 ms on the source and polled on the target (or the replica), and shake's
    lag_bytes sampled from /status every second (first/last/max and the least-squares slope).
    Targets: ops/s ratio >= 0.95, marker p99 <= 50 ms, lag growth over the window <= 1 MiB.

Shake's CPU time and peak RSS come from /proc/<pid>/stat and VmHWM in /proc/<pid>/status (a
live sync does not exit, so wait4()'s rusage is not available at the moment that matters).

Must not: talk to anything but 127.0.0.1, kill anything it did not start (by pid only), or
wait without a bound.
"""

import json
import os
import shutil
import signal
import sys
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request

import redis

import gen
import harness
import proc
from checks import BenchFailure, _label, check_sample, describe_keys, mb, sample_keys, say

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20
RSS_BASE = 64 * MIB
S1_TARGET = 1.15          # shake's full-sync time / redis-cli --rdb's, at most
S3_OPS_TARGET = 0.95      # source ops/s with shake / with a real replica, at least
S3_P99_TARGET_MS = 50.0   # marker key end-to-end delay p99, at most
S3_LAG_GROWTH = 1 * MIB   # lag_bytes growth over the window (slope x duration), at most
FAST_SYNC = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": 0}
POLL = 0.02               # seconds between polls of /status or INFO while timing a full sync
SAMPLE = 2000
MARKER = b"bench:marker"
MARK_EVERY = 0.1
CLK_TCK = os.sysconf("SC_CLK_TCK")
REDIS_BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
LOAD_VALUE = b"v" * 32    # SET/LPUSH/HSET value: 32 bytes


# --- small tools ---------------------------------------------------------------------------

def proc_cpu(pid):
    """User + system CPU seconds of a running process (0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_hwm(pid):
    """Peak RSS (VmHWM) of a running process in bytes (0 when it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def get_status(port, timeout=5.0):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % port, timeout=timeout) as r:
        return json.loads(r.read().decode("utf-8"))


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def slope(samples):
    """Least-squares slope of [(t, y)] in y per second (0 with fewer than 2 samples)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    my = sum(y for _, y in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    return sum((t - mt) * (y - my) for t, y in samples) / den if den else 0.0


def loadavg():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def start_shake(shake_bin, workdir, source, target, tag, extra=None):
    """A live-sync shake from `source` into `target` with a fresh state dir and its own
    status port; returns (ShakeProcess, status port)."""
    port = harness.free_port()
    sections = {"shake": {"status": "127.0.0.1:%d" % port, "progress": "no"}}
    for k, v in (extra or {}).items():
        sections.setdefault(k, {}).update(v)
    conf = harness.write_sync_config(os.path.join(workdir, "shake-%s.ini" % tag), source, target,
                                     shake_dir=os.path.join(workdir, "shake-data-%s" % tag),
                                     extra_sections=sections)
    p = harness.ShakeProcess(conf, binary=shake_bin, name="shake-%s" % tag)
    return p, port


def synced(status, keys):
    """The full sync is done: every shard streams, the target holds every write shake has
    received, and it has acknowledged `keys` keys."""
    shards = status.get("shards") or []
    return (bool(shards) and all(s.get("phase") == "stream" for s in shards) and status.get("caught_up") is True
            and status.get("writer", {}).get("keys_written", -1) >= keys)


def wait_synced(p, port, keys, timeout, poll=POLL):
    """Poll /status every `poll` s until synced(); returns (monotonic time of the answer that
    showed it, that status). Raises BenchFailure when shake exits or the bound passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not p.alive():
            raise BenchFailure("shake exited (status %s) before the full sync was done\n%s"
                               % (p.returncode, p.describe(30)))
        try:
            s = get_status(port)
            t = time.monotonic()
            if synced(s, keys):
                return t, s
            last = s
        except (OSError, ValueError) as e:  # not listening yet
            last = e
        time.sleep(poll)
    raise BenchFailure("shake not synced within %.0fs; last status %s\n%s"
                       % (timeout, json.dumps(last)[:1500] if isinstance(last, dict) else repr(last),
                          p.describe(30)))


def stop_shake(p):
    rc = p.stop(timeout=60)
    if rc != 0:
        raise BenchFailure("shake exited %s on SIGTERM\n%s" % (rc, p.describe(30)))


def start_replica(name, config=None):
    return harness.start_server(config=config, name=name)


def wait_replica_up(rc, timeout, poll=POLL):
    """Poll INFO until the replica's link is up and it is not loading; returns the
    monotonic time of the answer that showed it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            info = rc.info("replication")
            t = time.monotonic()
            if info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"):
                if not rc.info("persistence").get("loading"):
                    return t
            last = info
        except (redis.exceptions.BusyLoadingError, redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError) as e:
            last = e
        time.sleep(poll)
    raise BenchFailure("replica not up within %.0fs: %r" % (timeout, last))


# --- S1 ------------------------------------------------------------------------------------

def scenario_s1(args, shake, workdir):
    say("== S1 full sync: %d-key mixed dataset, standalone source (diskless, no delay) into an empty "
        "local 3-master cluster; %s" % (args.r1_keys, loadavg()))
    t0 = time.monotonic()
    source = harness.start_server(config=dict(FAST_SYNC), name="bench-s1-src")
    plan = gen.fill_r1(source.port, args.r1_keys, preexec_fn=harness._die_with_parent)
    sc = source.client()
    keys = sc.dbsize()
    largest = gen.largest_string(sc)
    sample = sample_keys(sc, SAMPLE)
    expected = describe_keys(lambda k: sc, sample)
    say("   dataset: %s; %d keys; largest string %d B (generated in %.1fs)"
        % (", ".join("%d %ss" % (n, k) for k, n in plan.items()), keys, largest, time.monotonic() - t0))

    cluster = harness.Cluster().start()
    shake_runs, cli_runs, rep_runs, shake_error = [], [], [], None
    rdb_bytes = None
    try:
        client_for, _, _ = gen.cluster_router(cluster)

        for i in range(-args.warmup, args.runs):
            label = _label(i)
            # A: shake
            if shake_error is None:
                cluster.flush()
                p = None
                try:
                    p, port = start_shake(shake, workdir, source, cluster, "s1-%d" % i)
                    t_done, st = wait_synced(p, port, keys, args.timeout)
                    cpu, hwm = proc_cpu(p.proc.pid), proc_hwm(p.proc.pid)
                    wall = t_done - p.t0
                    rdb_line = next((t for t, _, text in list(p.lines) if "RDB received" in text), None)
                    rdb_received = None if rdb_line is None else rdb_line - p.t0
                    stop_shake(p)
                    p = None
                    got = cluster.dbsize()
                    if got != keys:
                        raise BenchFailure("after shake the cluster holds %d keys, the source %d" % (got, keys))
                    check_sample("shake " + label.strip(), expected, client_for, sample)
                    run = {"seconds": wall, "cpu": cpu, "maxrss": hwm,
                           "rdb_received_s": rdb_received,
                           "keys_written": st["writer"]["keys_written"]}
                    if i >= 0:
                        shake_runs.append(run)
                    say("   %s  shake          %7.2fs  (RDB received at %s)  %8.0f keys/s  cpu %.2fs  "
                        "peak RSS %.1f MiB" % (label, wall, _fmt_s(run["rdb_received_s"]), keys / wall, cpu,
                                               hwm / MIB))
                except (BenchFailure, harness.ShakeTimeout) as e:
                    shake_error = str(e)
                    say("   %s  shake          FAILED (no more shake runs): %s" % (label, shake_error))
                finally:
                    if p is not None:
                        p.kill()
            # B: redis-cli --rdb
            path = os.path.join(workdir, "s1-cli-%d.rdb" % i)
            r = proc.run_one([gen.REDIS_CLI, "-h", gen.HOST, "-p", str(source.port), "--rdb", path], args.timeout,
                             stdout=os.path.join(workdir, "s1-cli.out"), stderr=os.path.join(workdir, "s1-cli.err"),
                             preexec_fn=harness._die_with_parent)
            size = os.path.getsize(path) if os.path.exists(path) else 0
            if os.path.exists(path):
                os.unlink(path)
            if r.returncode != 0 or size == 0:
                raise BenchFailure("redis-cli --rdb: exit %s, %d bytes\n%s%s"
                                   % ("timeout" if r.timed_out else r.returncode, size, r.stdout(2000), r.stderr(2000)))
            rdb_bytes = size
            if i >= 0:
                cli_runs.append(r.seconds)
            say("   %s  redis-cli --rdb %6.2fs  %6.1f MB/s  (%.1f MB)" % (label, r.seconds, mb(size) / r.seconds,
                                                                          mb(size)))
            # C: a real replica
            replica = start_replica("bench-s1-replica", {"repl-diskless-load": "on-empty-db"})
            try:
                rc = replica.client()
                t_start = time.monotonic()
                rc.replicaof(gen.HOST, source.port)
                t_up = wait_replica_up(rc, args.timeout)
                wall = t_up - t_start
                if rc.dbsize() != keys:
                    raise BenchFailure("the replica holds %d keys, the source %d" % (rc.dbsize(), keys))
            finally:
                replica.stop()
            if i >= 0:
                rep_runs.append(wall)
            say("   %s  real replica   %7.2fs  (REPLICAOF to link up, diskless load)  %s" % (label, wall, loadavg()))
    finally:
        cluster.stop()
        source.stop()

    t_cli = statistics.median(cli_runs)
    t_rep = statistics.median(rep_runs)
    out = {
        "scenario": "S1", "keys": keys, "rdb_bytes": rdb_bytes, "runs": args.runs, "warmup": args.warmup,
        "largest_string": largest, "shake_error": shake_error, "rss_bound": RSS_BASE + largest,
        "cli_seconds": cli_runs, "cli_median_s": t_cli, "replica_seconds": rep_runs, "replica_median_s": t_rep,
        "replica_over_cli": t_rep / t_cli, "ratio_target": S1_TARGET,
    }
    if shake_runs:
        t_shake = statistics.median(r["seconds"] for r in shake_runs)
        peak = max(r["maxrss"] for r in shake_runs)
        out.update({
            "shake_runs": shake_runs, "shake_seconds": [r["seconds"] for r in shake_runs],
            "shake_median_s": t_shake, "shake_over_cli": t_shake / t_cli, "ratio_met": t_shake / t_cli <= S1_TARGET,
            "shake_over_replica": t_shake / t_rep,
            "shake_cpu_s_per_mkeys": statistics.median(r["cpu"] for r in shake_runs) / keys * 1e6,
            "shake_peak_rss": peak, "rss_met": peak <= RSS_BASE + largest,
        })
    return out


def _fmt_s(v):
    return "-" if v is None else "%.2fs" % v


# --- S3 ------------------------------------------------------------------------------------

LOAD_COMMANDS = [
    ["SET", "s3:str:__rand_int__", LOAD_VALUE.decode()],
    ["LPUSH", "s3:list:__rand_int__", LOAD_VALUE.decode()],
    ["HSET", "s3:hash:__rand_int__", "f:__rand_int__", LOAD_VALUE.decode()],
    ["ZADD", "s3:zset:__rand_int__", "__rand_int__", "m:__rand_int__"],
]
COUNTED = ("set", "lpush", "hset", "zadd")


class Load:
    """rate 0: four redis-benchmark processes (SET, LPUSH, HSET, ZADD), each with `clients`
    connections pipelining `pipeline` commands, over `keyspace` random keys per type: as fast
    as the source answers. rate > 0: one loadgen.py process with 4 connections, the same
    commands interleaved and paced at `rate` commands/s in total."""

    def __init__(self, port, workdir, clients, pipeline, rate=0, keyspace=100000):
        self.procs = []
        if rate > 0:
            argvs = [[sys.executable, os.path.join(HERE, "loadgen.py"), "--port", str(port), "--rate", str(rate),
                      "--conns", "4", "--pipeline", str(pipeline), "--keyspace", str(keyspace)]]
        else:
            argvs = [[REDIS_BENCHMARK, "-h", gen.HOST, "-p", str(port), "-c", str(clients), "-P", str(pipeline),
                      "-r", str(keyspace), "-n", "2000000000", "-q"] + cmd for cmd in LOAD_COMMANDS]
        for argv in argvs:
            err = open(os.path.join(workdir, "s3-load.err"), "ab")
            try:
                self.procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                   stderr=err, preexec_fn=harness._die_with_parent,
                                                   start_new_session=True))
            finally:
                err.close()

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL)  # by pid: only what we started
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def command_calls(client):
    stats = client.info("commandstats")
    return sum(int(stats.get("cmdstat_%s" % c, {}).get("calls", 0)) for c in COUNTED)


class LagSampler(threading.Thread):
    """Every second: INFO replication on the source, then GET /status. Per sample: (time,
    sum of lag_bytes, max lag_ms, true lag = the source's master_repl_offset minus shake's
    acked_offset). lag_bytes only counts bytes shake has read; the true lag also counts what
    waits in the kernel or in the source's output buffer (a standalone source: one shard)."""

    def __init__(self, port, source_port):
        super().__init__(daemon=True)
        self.port = port
        self.source = redis.Redis(host=gen.HOST, port=source_port, socket_timeout=5)
        self.samples = []
        self.errors = 0
        self.stop_event = threading.Event()

    def run(self):
        nxt = time.monotonic()
        while not self.stop_event.is_set():
            try:
                off = int(self.source.info("replication")["master_repl_offset"])
                s = get_status(self.port, timeout=2)
                t = time.monotonic()
                shards = s.get("shards") or []
                self.samples.append((t, sum(x.get("lag_bytes", 0) for x in shards),
                                     max([x.get("lag_ms", 0) for x in shards] or [0]),
                                     max(0, off - min(x.get("acked_offset", 0) for x in shards)) if shards else 0))
            except (OSError, ValueError, redis.exceptions.RedisError):
                self.errors += 1
            nxt += 1.0
            self.stop_event.wait(max(0.0, nxt - time.monotonic()))

    def finish(self):
        self.stop_event.set()
        self.join(10)
        self.source.close()
        return self.samples


def wait_flowing(source, observer, timeout=10.0):
    """Write MARKER = 0 on the source and wait until the observer has it: the stream flows
    (after a full sync the source holds the stream until the first REPLCONF ACK, up to 1 s,
    which would otherwise land as a burst in the measured window)."""
    source.client().set(MARKER, b"0")
    obs = observer.client()
    harness.wait_until(lambda: obs.get(MARKER) == b"0", timeout, interval=0.005,
                       what="the probe key reaching the target")


def proc_wakeups(pid):
    """Voluntary context switches of a running process so far (each is a sleep, so a later
    wake-up); 0 when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def proc_run_delay(pid):
    """Seconds a running process has waited, runnable, for a CPU so far (schedstat); 0 when
    it is gone."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_of(groups):
    """{name: (CPU seconds, wake-ups, seconds waited for a CPU) so far} of each named group of
    pids."""
    return {name: (sum(proc_cpu(pid) for pid in pids), sum(proc_wakeups(pid) for pid in pids),
                   sum(proc_run_delay(pid) for pid in pids))
            for name, pids in groups.items()}


def measure_window(source, observer, seconds, load, groups):
    """Over `seconds`: write MARKER = n on the source every 100 ms and poll `observer` for it
    (one thread, 1 ms between polls). Returns (delays in s, markers never seen, ops/s,
    stream bytes/s, window seconds, {group: CPU seconds used in the window}) where `groups`
    names the pids whose CPU is split out (the source, the load, the target side, shake)."""
    src = redis.Redis(host=gen.HOST, port=source.port, socket_timeout=10)
    obs = redis.Redis(host=gen.HOST, port=observer.port, socket_timeout=10)
    ctl = source.client()
    try:
        groups = dict(groups, load=[p.pid for p in load.procs])
        cpu0 = cpu_of(groups)
        calls0, off0, t0 = command_calls(ctl), int(ctl.info("replication")["master_repl_offset"]), time.monotonic()
        sent, delays = {}, []
        seq = seen = 0
        nxt = t0
        end = t0 + seconds
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if not load.alive():
                raise BenchFailure("a load process exited during the window (see s3-load.err)")
            if now >= nxt:
                seq += 1
                sent[seq] = time.monotonic()
                src.set(MARKER, b"%d" % seq)
                nxt += MARK_EVERY
            v = obs.get(MARKER)
            if v is not None and int(v) > seen:
                t = time.monotonic()
                for s in range(seen + 1, int(v) + 1):
                    if s in sent:
                        delays.append(t - sent[s])
                seen = int(v)
            time.sleep(0.001)
        calls1, off1, t1 = command_calls(ctl), int(ctl.info("replication")["master_repl_offset"]), time.monotonic()
        cpu1 = cpu_of(groups)
        # The last markers: wait up to 5 s more for them (the load is still on).
        grace = time.monotonic() + 5
        while seen < seq and time.monotonic() < grace:
            v = obs.get(MARKER)
            if v is not None and int(v) > seen:
                t = time.monotonic()
                for s in range(seen + 1, int(v) + 1):
                    delays.append(t - sent[s])
                seen = int(v)
            time.sleep(0.001)
        window = t1 - t0
        split = {name: tuple(b - a for a, b in zip(cpu0[name], cpu1[name])) for name in groups}
        return delays, seq - seen, (calls1 - calls0) / window, (off1 - off0) / window, window, split
    finally:
        src.close()
        obs.close()


def fmt_split(r):
    """The window's CPU per group in cores (CPU seconds / window seconds), its wake-ups per
    second, and the time its processes waited for a CPU while runnable (ms per second)."""
    w = r["window_s"]
    return "  ".join("%s %.2f (%.0f/s, waited %.0f ms/s)" % (name, sec / w, wakes / w, waited * 1000 / w)
                     for name, (sec, wakes, waited) in sorted(r["cpu_split"].items()))


class StandaloneTarget:
    """One redis-server as S3's target, with the few Cluster methods S3 uses."""

    def __init__(self, name):
        self.server = harness.start_server(name=name)
        self.nodes = [self.server]
        self.address = self.server.address

    def flush(self):
        self.server.client().flushall()

    def node_for_key(self, key):
        return self.server

    def dbsize(self):
        return self.server.client().dbsize()

    def client_for(self):
        client = self.server.client()
        return lambda key: client

    def stop(self):
        self.server.stop()


def s3_start_target(kind):
    """S3's target: a local 3-master cluster, or one standalone server."""
    if kind == "standalone":
        return StandaloneTarget("bench-s3-tgt")
    return harness.Cluster().start()


def s3_shake_run(args, shake, workdir, source, cluster, tag):
    source.client().flushall()
    cluster.flush()
    p, port = start_shake(shake, workdir, source, cluster, tag, extra=args.shake_conf)
    load = None
    sampler = None
    try:
        wait_synced(p, port, 0, 60, poll=0.05)
        pid = p.proc.pid
        observer = cluster.node_for_key(MARKER)
        wait_flowing(source, observer)
        load = Load(source.port, workdir, args.s3_clients, args.s3_pipeline, args.s3_rate)
        time.sleep(1.0)  # ramp up
        sampler = LagSampler(port, source.port)
        sampler.start()
        groups = {"source": [source.proc.pid], "targets": [n.proc.pid for n in cluster.nodes], "shake": [pid]}
        delays, missed, ops, stream, window, split = measure_window(source, observer, args.s3_seconds, load, groups)
        samples = sampler.finish()
        sampler_errors = sampler.errors
        sampler = None
        load.stop()
        load = None
        t_stop = time.monotonic()
        wait_synced(p, port, 0, 120, poll=0.05)
        catchup = time.monotonic() - t_stop
        hwm = proc_hwm(pid)
        st = get_status(port)
        stop_shake(p)
        p = None
        sc = source.client()
        want, got = sc.dbsize(), cluster.dbsize()
        if want != got:
            raise BenchFailure("after the load: source %d keys, target %d" % (want, got))
        if isinstance(cluster, StandaloneTarget):
            client_for = cluster.client_for()
        else:
            client_for, _, _ = gen.cluster_router(cluster)
        sample = sample_keys(sc, SAMPLE)
        check_sample("S3 shake " + tag, describe_keys(lambda k: sc, sample), client_for, sample)
        lags = [b for _, b, _, _ in samples]
        true = [x for _, _, _, x in samples]
        sl = slope([(t, b) for t, b, _, _ in samples])
        tsl = slope([(t, x) for t, _, _, x in samples])
        dur = (samples[-1][0] - samples[0][0]) if len(samples) > 1 else 0.0
        return {"ops": ops, "stream_bytes_s": stream, "window_s": window, "delays": delays, "missed": missed,
                "lag_first": lags[0] if lags else None, "lag_last": lags[-1] if lags else None,
                "lag_max": max(lags) if lags else None, "lag_slope": sl, "lag_growth": sl * dur,
                "lag_ms_max": max((m for _, _, m, _ in samples), default=None), "lag_samples": len(samples),
                "true_first": true[0] if true else None, "true_last": true[-1] if true else None,
                "true_max": max(true) if true else None, "true_slope": tsl, "true_growth": tsl * dur,
                "status_errors": sampler_errors, "cpu": split["shake"][0], "cpu_split": split, "maxrss": hwm, "catchup_s": catchup,
                "commands_written": st["writer"]["commands_written"], "keys": want}
    finally:
        if sampler is not None:
            sampler.finish()
        if load is not None:
            load.stop()
        if p is not None:
            p.kill()


def s3_replica_run(args, workdir, source):
    source.client().flushall()
    replica = start_replica("bench-s3-replica")
    load = None
    try:
        rc = replica.client()
        rc.replicaof(gen.HOST, source.port)
        wait_replica_up(rc, 60, poll=0.05)
        wait_flowing(source, replica)
        load = Load(source.port, workdir, args.s3_clients, args.s3_pipeline, args.s3_rate)
        time.sleep(1.0)
        groups = {"source": [source.proc.pid], "targets": [replica.proc.pid]}
        delays, missed, ops, stream, window, split = measure_window(source, replica, args.s3_seconds, load, groups)
        load.stop()
        load = None
        sc = source.client()
        harness.wait_until(lambda: rc.dbsize() == sc.dbsize(), 60, what="replica catching up")
        return {"ops": ops, "stream_bytes_s": stream, "window_s": window, "delays": delays, "missed": missed,
                "cpu_split": split}
    finally:
        if load is not None:
            load.stop()
        replica.stop()


def _ms(values, p):
    return percentile(values, p) * 1000 if values else None


def scenario_s3(args, shake, workdir):
    """S3 into each target asked for: a list of results."""
    targets = ["standalone", "cluster"] if args.s3_target == "both" else [args.s3_target]
    return [scenario_s3_into(args, shake, workdir, target) for target in targets]


def scenario_s3_into(args, shake, workdir, target):
    if args.s3_rate > 0:
        how = "loadgen.py paced at %d commands/s, 4 connections, -P %d" % (args.s3_rate, args.s3_pipeline)
    else:
        how = "4 redis-benchmark, -c %d -P %d each, unpaced" % (args.s3_clients, args.s3_pipeline)
    into = "one standalone server" if target == "standalone" else "a 3-master cluster"
    conf = "".join("; shake config %s.%s = %s" % (sec, k, v) for sec, kv in sorted(args.shake_conf.items())
                   for k, v in sorted(kv.items()))
    say("== S3 incremental: %.0fs windows of SET/LPUSH/HSET/ZADD (%s) on a standalone source, shake into %s "
        "vs a real replica%s; %s" % (args.s3_seconds, how, into, conf, loadavg()))
    source = harness.start_server(config=dict(FAST_SYNC), name="bench-s3-src")
    cluster = s3_start_target(target)
    shake_runs, rep_runs, shake_error = [], [], None
    try:
        for i in range(-args.warmup, args.runs):
            label = _label(i)
            if shake_error is None:
                try:
                    r = s3_shake_run(args, shake, workdir, source, cluster, "s3-%d" % i)
                    if i >= 0:
                        shake_runs.append(r)
                    say("   %s  shake    %8.0f ops/s  stream %5.1f MB/s  marker p50 %5.1f ms p99 %6.1f ms "
                        "(%d, %d unseen)\n            lag_bytes first %d last %d max %d, slope %+.0f B/s; "
                        "true lag first %d last %d max %d, slope %+.0f B/s; max lag_ms %s\n            "
                        "cpu %.1fs  catch-up after the load %.2fs  peak RSS %.1f MiB\n            cores (wake-ups, run-queue wait): %s"
                        % (label, r["ops"], mb(r["stream_bytes_s"]), _ms(r["delays"], 50) or -1,
                           _ms(r["delays"], 99) or -1, len(r["delays"]), r["missed"], r["lag_first"] or 0,
                           r["lag_last"] or 0, r["lag_max"] or 0, r["lag_slope"], r["true_first"] or 0,
                           r["true_last"] or 0, r["true_max"] or 0, r["true_slope"], r["lag_ms_max"], r["cpu"],
                           r["catchup_s"], r["maxrss"] / MIB, fmt_split(r)))
                except (BenchFailure, harness.ShakeTimeout, AssertionError) as e:
                    shake_error = str(e)
                    say("   %s  shake    FAILED (no more shake runs): %s" % (label, shake_error))
            r = s3_replica_run(args, workdir, source)
            if i >= 0:
                rep_runs.append(r)
            say("   %s  replica  %8.0f ops/s  stream %5.1f MB/s  marker p50 %5.1f ms p99 %6.1f ms (%d, %d unseen)  %s"
                "\n            cores (wake-ups, run-queue wait): %s"
                % (label, r["ops"], mb(r["stream_bytes_s"]), _ms(r["delays"], 50) or -1, _ms(r["delays"], 99) or -1,
                   len(r["delays"]), r["missed"], loadavg(), fmt_split(r)))
    finally:
        cluster.stop()
        source.stop()

    rep_ops = statistics.median(r["ops"] for r in rep_runs)
    rep_delays = [d for r in rep_runs for d in r["delays"]]
    out = {
        "scenario": "S3", "target": target, "shake_conf": args.shake_conf, "runs": args.runs, "warmup": args.warmup, "seconds": args.s3_seconds,
        "clients": args.s3_clients, "pipeline": args.s3_pipeline, "rate": args.s3_rate, "shake_error": shake_error,
        "replica_ops": [r["ops"] for r in rep_runs], "replica_median_ops": rep_ops,
        "replica_stream_mb_s": statistics.median(mb(r["stream_bytes_s"]) for r in rep_runs),
        "replica_p50_ms": _ms(rep_delays, 50), "replica_p99_ms": _ms(rep_delays, 99),
        "replica_missed": sum(r["missed"] for r in rep_runs),
        "ops_target": S3_OPS_TARGET, "p99_target_ms": S3_P99_TARGET_MS, "lag_growth_bound": S3_LAG_GROWTH,
        "rss_bound": RSS_BASE + len(LOAD_VALUE),
    }
    if shake_runs:
        delays = [d for r in shake_runs for d in r["delays"]]
        missed = sum(r["missed"] for r in shake_runs)
        ops = statistics.median(r["ops"] for r in shake_runs)
        commands = sum(r["ops"] * r["window_s"] for r in shake_runs)
        growth = max(r["lag_growth"] for r in shake_runs)
        true_growth = max(r["true_growth"] for r in shake_runs)
        peak = max(r["maxrss"] for r in shake_runs)
        p99 = _ms(delays, 99)
        out.update({
            "shake_runs": [{k: v for k, v in r.items() if k != "delays"} for r in shake_runs],
            "shake_ops": [r["ops"] for r in shake_runs], "shake_median_ops": ops,
            "shake_stream_mb_s": statistics.median(mb(r["stream_bytes_s"]) for r in shake_runs),
            "ops_ratio": ops / rep_ops, "ops_met": ops / rep_ops >= S3_OPS_TARGET,
            "shake_p50_ms": _ms(delays, 50), "shake_p99_ms": p99, "shake_missed": missed,
            "p99_met": p99 is not None and p99 <= S3_P99_TARGET_MS and missed == 0,
            "lag_first": [r["lag_first"] for r in shake_runs], "lag_last": [r["lag_last"] for r in shake_runs],
            "lag_max": max(r["lag_max"] or 0 for r in shake_runs),
            "lag_slopes": [r["lag_slope"] for r in shake_runs], "lag_growth_max": growth,
            "true_first": [r["true_first"] for r in shake_runs], "true_last": [r["true_last"] for r in shake_runs],
            "true_max": max(r["true_max"] or 0 for r in shake_runs), "true_growth_max": true_growth,
            "lag_met": growth <= S3_LAG_GROWTH and true_growth <= S3_LAG_GROWTH,
            "shake_cpu_s_per_mcmds": sum(r["cpu"] for r in shake_runs) / commands * 1e6 if commands else None,
            "shake_peak_rss": peak, "rss_met": peak <= RSS_BASE + len(LOAD_VALUE),
            "catchup_s": [r["catchup_s"] for r in shake_runs],
        })
    return out


# --- report rows ---------------------------------------------------------------------------

def _f(value, spec):
    return "-" if value is None else spec % value


def _met(flag):
    return "-" if flag is None else ("yes" if flag else "NO")


def rows(r):
    """Rows for bench.report(): (scenario, measure, shake, reference, shake/ref, target, met)."""
    g = r.get
    out = []
    if r["scenario"] == "S1":
        out.append(("S1", "seconds vs redis-cli --rdb", _f(g("shake_median_s"), "%.2f"), "%.2f" % r["cli_median_s"],
                    _f(g("shake_over_cli"), "%.3f"), "<= %.2f" % S1_TARGET, _met(g("ratio_met"))))
        out.append(("S1", "seconds vs real replica", _f(g("shake_median_s"), "%.2f"), "%.2f" % r["replica_median_s"],
                    _f(g("shake_over_replica"), "%.3f"), "(info)", ""))
        out.append(("S1", "replica / redis-cli --rdb", "", "%.3f" % r["replica_over_cli"], "", "(info)", ""))
        out.append(("S1", "CPU s / M keys", _f(g("shake_cpu_s_per_mkeys"), "%.2f"), "", "", "", ""))
        out.append(("S1", "peak RSS MiB", _f(g("shake_peak_rss") / MIB if g("shake_peak_rss") else None, "%.1f"),
                    "", "", "<= %.1f" % (r["rss_bound"] / MIB), _met(g("rss_met"))))
    else:
        label = "S3 1-srv" if r.get("target") == "standalone" else "S3 clust"
        out.append((label, "source ops/s (vs replica)", _f(g("shake_median_ops"), "%.0f"), "%.0f" % r["replica_median_ops"],
                    _f(g("ops_ratio"), "%.3f"), ">= %.2f" % S3_OPS_TARGET, _met(g("ops_met"))))
        out.append((label, "stream MB/s", _f(g("shake_stream_mb_s"), "%.1f"), "%.1f" % r["replica_stream_mb_s"],
                    "", "(info)", ""))
        out.append((label, "marker delay p50 ms", _f(g("shake_p50_ms"), "%.1f"), _f(r["replica_p50_ms"], "%.1f"),
                    "", "(info)", ""))
        out.append((label, "marker delay p99 ms", _f(g("shake_p99_ms"), "%.1f"), _f(r["replica_p99_ms"], "%.1f"),
                    "", "<= %.0f" % S3_P99_TARGET_MS, _met(g("p99_met"))))
        if g("lag_first") is not None:
            out.append((label, "lag bytes first/last/max",
                         "%s/%s/%d" % (max(r["lag_first"]), max(r["lag_last"]), r["lag_max"]), "", "", "(info)", ""))
            out.append((label, "true lag B first/last/max", "%s/%s/%d" % (max(r["true_first"]), max(r["true_last"]),
                                                                      r["true_max"]), "", "", "(info)", ""))
            out.append((label, "lag growth B, lag_bytes/true", "%.0f/%.0f" % (r["lag_growth_max"], r["true_growth_max"]),
                         "", "", "<= %d" % S3_LAG_GROWTH, _met(g("lag_met"))))
        out.append((label, "CPU s / M commands", _f(g("shake_cpu_s_per_mcmds"), "%.2f"), "", "", "", ""))
        out.append((label, "peak RSS MiB", _f(g("shake_peak_rss") / MIB if g("shake_peak_rss") else None, "%.1f"),
                    "", "", "<= %.1f" % (r["rss_bound"] / MIB), _met(g("rss_met"))))
    return out


def checks(r):
    """[(what, met flag)] for the final target lines."""
    if r["scenario"] == "S1":
        return [("full sync <= %.2fx redis-cli --rdb" % S1_TARGET, r.get("ratio_met")),
                ("peak RSS <= 64 MiB + largest string", r.get("rss_met"))]
    into = "one server: " if r.get("target") == "standalone" else "3-master cluster: "
    return [(into + "source ops/s >= %.2fx with a real replica" % S3_OPS_TARGET, r.get("ops_met")),
            (into + "marker delay p99 <= %.0f ms (and none lost)" % S3_P99_TARGET_MS, r.get("p99_met")),
            (into + "lag does not grow (<= 1 MiB over the window)", r.get("lag_met")),
            (into + "peak RSS <= 64 MiB + largest string", r.get("rss_met"))]
