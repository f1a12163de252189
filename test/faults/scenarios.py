"""scenarios.py -- the faults, one function each, every one on fresh servers.

Owns: one scenario per fault (FAULTS, in report order): start a source with a few thousand keys,
a target, shake (`[source] type = sync`) and the workload; inject the fault while writes flow;
stop the writes, wait for the end marker on the target, then measure (workload.measure) and
compare the whole source with the whole target (compare.py). Each returns a Result; `Env`
stops every server, proxy and shake it started (by pid) and removes its temp dir, even when the
scenario fails.

How a resume is classified: shake's log after the fault ("continuing <replid> at offset N, no
full sync needed" is a PSYNC answered +CONTINUE; "full sync from" a +FULLRESYNC) and the source's
INFO stats (sync_partial_ok and sync_full deltas).

Must not: talk to anything but 127.0.0.1, kill anything it did not start, or wait without a
timeout.
"""

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import compare
import dataset
import harness
import livesync
from harness import sync_counters, wait_until
from livesync import FULL_SYNC, RDB_RECEIVED, source_config, stretch_rdb
from proxy import Proxy
from workload import Workload, measure, put_marker, wait_marker

CONTINUING = r"continuing ([0-9a-f]{40}) at offset (\d+), no full sync needed"
LINK_LOST = r"link lost"
LOG_WAIT = 30          # seconds for a log line
CATCH_UP = 90          # seconds for the end marker to reach the target
KEYS = 3000            # keys in db0 of the source before shake starts (dataset.fill scale 15)
TTL_TOLERANCE_MS = 15000  # source and target are read one after the other: seconds apart on big data


class Result:
    def __init__(self, name):
        self.name = name
        self.writes = 0
        self.lost = None
        self.duplicated = None
        self.dups_allowed = False   # kill -9: the last checkpoint interval may apply twice
        self.resume = "-"
        self.full = 0               # sync_full delta on the source(s) after the initial sync
        self.partial = 0            # sync_partial_ok delta
        self.equal = None
        self.diffs = []
        self.notes = []
        self.error = None
        self.seconds = 0.0
        self.log_tail = ""

    @property
    def unexpected_dups(self):
        return bool(self.duplicated) and not self.dups_allowed

    def passed(self, strict=False):
        """Nothing lost and the target equal to the source (apart from the duplicates counted);
        with `strict`, no duplicates either where the fault should not cause any."""
        if self.error is not None or self.lost is None:
            return False
        if self.lost > 0 or not self.equal:
            return False
        return not (strict and self.unexpected_dups)

    def verdict(self, strict=False):
        if self.error is not None:
            return "ERROR"
        if not self.passed(strict):
            return "FAIL"
        if self.unexpected_dups:
            return "ok, DUPS!"
        return "ok (dups)" if self.duplicated else "ok"


class Env:
    """The processes and temp dir of one scenario; `close()` stops them all (by pid)."""

    def __init__(self, name, shake_bin, keep=False):
        self.name = name
        self.shake_bin = shake_bin
        self.keep = keep
        self.dir = tempfile.mkdtemp(prefix="shake-faults-%s-" % name)
        self.shake_dir = os.path.join(self.dir, "shake-data")
        self.servers = []
        self.clusters = []
        self.proxies = []
        self.shakes = []
        self.workloads = []
        self.log = open(os.path.join(self.dir, "shake.log"), "w")

    def server(self, config=None, name="redis", cluster=False):
        s = Server(config, name=name, cluster=cluster)
        self.servers.append(s)
        return s.start()

    def cluster(self, config=None, masters=3):
        c = harness.Cluster(config, masters=masters)
        self.clusters.append(c)
        return c.start()

    def proxy(self, upstream_port):
        p = Proxy(upstream_port)
        self.proxies.append(p)
        return p

    def config(self, source, target, checkpoint_interval_ms=None, sections=None):
        extra = {sec: dict(kv) for sec, kv in (sections or {}).items()}
        extra.setdefault("shake", {}).setdefault("status", "")
        return harness.write_sync_config(os.path.join(self.dir, "sync.ini"), source, target,
                                         shake_dir=self.shake_dir, extra_sections=extra,
                                         checkpoint_interval_ms=checkpoint_interval_ms)

    def shake(self, conf):
        p = harness.ShakeProcess(conf, binary=self.shake_bin, echo=self.log,
                                 prefix="[%d] " % (len(self.shakes) + 1),
                                 name="shake#%d" % (len(self.shakes) + 1))
        self.shakes.append(p)
        return p

    def workload(self, source, **kw):
        w = Workload(source, **kw)
        self.workloads.append(w)
        return w

    def shake_log_tail(self, n=25):
        return self.shakes[-1].tail(n) if self.shakes else ""

    def close(self):
        for w in self.workloads:
            try:
                w.writer._stop.set()
                if w.writer._thread is not None:
                    w.writer._thread.join(timeout=30)
            except Exception:  # noqa: BLE001 -- keep cleaning up
                pass
        for p in self.shakes:
            p.kill()
        for p in self.proxies:
            p.close()
        every = list(self.servers)
        for c in self.clusters:
            every += c.nodes
            c.stop()
        for s in self.servers:
            s.stop()
        self.log.close()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        # what is still there after the clean-up (must be nothing)
        return ["%s still running" % s for s in every if s.alive()] + \
               ["%s left %s" % (s, s.dir) for s in every if os.path.exists(s.dir)] + \
               ["%s still running" % p for p in self.shakes if p.alive()]


class Server(harness.RedisServer):
    """A harness server that can be restarted on the same port with its data (its dir kept)."""

    def restart(self, timeout=harness.START_TIMEOUT):
        assert not self.alive(), "stop it first (stop(remove_dir=False))"
        conf = self._write_conf()
        with open(os.path.join(self.dir, "stderr.log"), "ab") as err:
            self.proc = subprocess.Popen([harness.REDIS_SERVER, conf], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         preexec_fn=harness._die_with_parent)
        harness._live_servers.append(self)
        self._wait_ready(timeout)
        return self


# --- shared steps ------------------------------------------------------------------------

def filled_source(env, name="source", dbs=(0, 1), **config):
    cfg = source_config(**config)
    source = env.server(cfg, name=name)
    dataset.fill(source, scale=KEYS // 200, dbs=dbs, functions=False, seed=11)
    return source


def synced(env, source, target, stretch_us=200, sections=None):
    """shake started and past its first full sync; returns (conf, shake)."""
    stretch_rdb(source, stretch_us)
    conf = env.config(source, target, sections=sections)
    p = env.shake(conf)
    p.wait_for(FULL_SYNC, LOG_WAIT)
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    stretch_rdb(source, 0)
    return conf, p


def synced_under_writes(env, source, target, **kw):
    """synced(), then the source's sync counters and the workload writing to it; returns
    (conf, shake, counters before the fault, workload)."""
    conf, p = synced(env, source, target, **kw)
    before = sync_counters(source)
    return conf, p, before, env.workload(source).start()


def resume_kind(shake, since):
    cont = len(shake.find_all(CONTINUING, since))
    full = len(shake.find_all(FULL_SYNC, since))
    if cont and not full:
        return "+CONTINUE" if cont == 1 else "%dx +CONTINUE" % cont
    if full and not cont:
        return "full sync" if full == 1 else "%dx full sync" % full
    if cont and full:
        return "%d +CONTINUE, %d full" % (cont, full)
    return "-"


def finish(env, result, workload, source, target, shake, dups_allowed=False):
    """Stop the writes, wait for everything on the target, stop shake, measure and compare."""
    workload.stop()
    token = b"%d" % time.monotonic_ns()
    put_marker(source, token)
    if not wait_marker(target, token, CATCH_UP, shake=shake):
        result.notes.append("end marker not on the target within %ds%s" % (
            CATCH_UP, "" if shake.alive() else " (shake exited %s)" % shake.returncode))
    # SIGTERM: shake drains every write it holds, then exits. With a cluster target the
    # marker is on one node only; the drain is the barrier for the others.
    if not shake.alive():
        result.notes.append("shake exited %s by itself" % shake.returncode)
    else:
        try:
            rc = shake.stop(timeout=30)
            if rc != 0:
                result.notes.append("shake exited %s on SIGTERM" % rc)
        except harness.ShakeTimeout:
            result.notes.append("shake did not exit within 30 s of SIGTERM (killed)")
    for line in shake.result().error_lines:
        result.notes.append(line)
    if os.environ.get("FAULTS_SABOTAGE") == "delete":   # self-test: the suite must catch this
        livesync.client_for(target).delete(workload.writer.key(b"seq", workload.count // 2))
        result.notes.append("FAULTS_SABOTAGE=delete: w:seq:%d deleted on the target" % (workload.count // 2))
    m = measure(workload, target)
    result.writes = m["writes"]
    result.lost = m["lost"]
    result.duplicated = m["duplicated"]
    result.dups_allowed = dups_allowed
    result.notes += m["detail"]
    ignore = None
    if result.duplicated and result.lost == 0:
        ignore = workload.noisy_key  # differences there are the duplicates counted above
    diffs = ["(not compared)"]
    for _ in range(3):   # a few tries: a slot may still be moving, a node failing over
        try:
            diffs = compare.compare(source, target, ttl_tolerance_ms=TTL_TOLERANCE_MS)
            if ignore is not None:
                diffs = [d for d in diffs if not ignore(d)]
            if not diffs:
                break
        except Exception as e:  # noqa: BLE001 -- reported as a difference
            diffs = ["compare failed: %r" % e]
        time.sleep(0.5)
    result.equal = not diffs
    result.diffs = diffs[:10]
    for noise in harness.NOISE:
        if any(noise in p.text() for p in env.shakes):
            result.notes.append("crash noise in shake's output: %r" % noise)
            result.equal = False


def counters_since(source, before):
    full, partial = sync_counters(source)
    return full - before[0], partial - before[1]


# --- shake killed -------------------------------------------------------------------------

KILLS = 5


def kill9_rdb(env, rng, result):
    """kill -9 at 5 random points of the RDB phase, restarting each time; then a last run."""
    source = filled_source(env)
    target = env.server(name="target")
    stretch_rdb(source, 1000)            # 3000 keys: about 3 s of RDB
    conf = env.config(source, target)
    w = env.workload(source, pause=0.05).start()   # slow: the RDB must not grow much between kills
    missed = 0
    for i in range(KILLS):
        p = env.shake(conf)
        p.wait_for(FULL_SYNC, LOG_WAIT)
        delay = rng.uniform(0.3, 2.0)
        time.sleep(delay)
        if p.find(RDB_RECEIVED) is not None:
            missed += 1
        p.kill()
        time.sleep(rng.uniform(0.0, 0.5))
    if missed:
        result.notes.append("%d of %d kills landed after the RDB" % (missed, KILLS))
    stretch_rdb(source, 0)
    p = env.shake(conf)
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    w.run_for(2.0)
    result.full, result.partial = counters_since(source, (1, 0))   # beyond the first full sync
    result.resume = "%d/%d full sync" % (len([s for s in env.shakes[1:] if s.find(FULL_SYNC)]), KILLS)
    finish(env, result, w, source, target, p, dups_allowed=True)


def kill9_stream(env, rng, result):
    """kill -9 at 5 random points of the command stream, restarting each time."""
    source = filled_source(env)
    target = env.server(name="target")
    conf, p, before, w = synced_under_writes(env, source, target)
    kinds = []
    for i in range(KILLS):
        time.sleep(rng.uniform(0.5, 2.5))
        p.kill()
        time.sleep(rng.uniform(0.0, 1.0))
        p = env.shake(conf)
        m = p.wait_for(CONTINUING + "|" + FULL_SYNC, LOG_WAIT)
        kinds.append("C" if "continuing" in m.group(0) else "F")
        if kinds[-1] == "F":
            p.wait_for(RDB_RECEIVED, LOG_WAIT)
    w.run_for(1.5)
    result.full, result.partial = counters_since(source, before)
    result.resume = "%d/%d +CONTINUE" % (kinds.count("C"), KILLS)
    finish(env, result, w, source, target, p, dups_allowed=True)


# --- the source ----------------------------------------------------------------------------

def source_restart(env, rng, result):
    """The source's redis-server shut down (RDB saved with its replication info) and started
    again on the same port while shake keeps trying to reconnect."""
    source = filled_source(env, save="3600 1")
    target = env.server(name="target")
    conf, p = synced(env, source, target)
    w = env.workload(source).start()
    w.run_for(2.0)
    w.stop()
    replid = livesync.replication_position(source)[0]
    since = p.mark()
    source.stop(remove_dir=False)          # SIGTERM: saves dump.rdb (save is configured)
    time.sleep(1.0)
    source.restart()
    new_replid = livesync.replication_position(source)[0]
    result.notes.append("replid %s after restart" % ("kept" if new_replid == replid else "changed"))
    w.retarget(source)
    w.start()
    p.wait_for(CONTINUING + "|" + RDB_RECEIVED, LOG_WAIT, since=since)
    w.run_for(2.0)
    full, partial = sync_counters(source)  # the restarted server's own counters
    result.full, result.partial = full, partial
    result.resume = resume_kind(p, since)
    finish(env, result, w, source, target, p)


def client_kill(env, rng, result):
    """CLIENT KILL TYPE replica on the source, three times while writes flow."""
    source = filled_source(env)
    target = env.server(name="target")
    conf, p, before, w = synced_under_writes(env, source, target)
    since = p.mark()
    for _ in range(3):
        time.sleep(rng.uniform(0.5, 1.5))
        killed = source.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
        if killed != 1:
            result.notes.append("CLIENT KILL killed %r connections" % killed)
        wait_until(lambda: source.client().info("replication").get("connected_slaves") == 1, 20,
                   what="shake reconnected", shake=p)
    w.run_for(1.0)
    result.full, result.partial = counters_since(source, before)
    result.resume = resume_kind(p, since)
    finish(env, result, w, source, target, p)


def source_failover(env, rng, result):
    """The source's replica promoted (REPLICAOF NO ONE) and the old master stopped; shake's
    [source] address lists both."""
    master = filled_source(env, name="master", **{"repl-ping-replica-period": 3600})
    replica = env.server(source_config(replicaof="%s %d" % (harness.HOST, master.port)), name="replica")
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", 30,
               what="the replica's link to the master")
    target = env.server(name="target")
    stretch_rdb(master, 200)
    p = env.shake(env.config([master, replica], target))   # two candidates: shake picks the master
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    stretch_rdb(master, 0)
    w = env.workload(master).start()
    w.run_for(2.0)
    w.stop()
    offset = master.client().info("replication")["master_repl_offset"]
    wait_until(lambda: replica.client().info("replication")["master_repl_offset"] >= offset, 20,
               what="the replica catching up")
    since = p.mark()
    replica.client().execute_command("REPLICAOF", "NO", "ONE")
    master.stop()
    w.retarget(replica)
    w.start()
    w.run_for(2.0)
    wait_until(lambda: sync_counters(replica) != (0, 0), 30, what="shake on the promoted replica", shake=p)
    result.full, result.partial = sync_counters(replica)
    result.resume = resume_kind(p, since)
    finish(env, result, w, replica, target, p)


# --- the target ----------------------------------------------------------------------------

def target_failover(env, rng, result):
    """A target cluster master killed (kill -9) while writes flow; the cluster promotes its
    replica."""
    cfg = {"cluster-node-timeout": 1000}
    target = env.cluster(cfg)
    dead = target.nodes[0]
    replica = env.server(cfg, name="target-replica", cluster=True)
    r = subprocess.run([harness.REDIS_CLI, "--cluster", "add-node", replica.address, dead.address,
                        "--cluster-slave", "--cluster-master-id", target.node_id(dead)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("add-node failed: %s" % (r.stdout + r.stderr).decode(errors="replace"))
    wait_until(lambda: replica.client().info("replication").get("master_link_status") == "up", 30,
               what="the target replica linked")
    source = filled_source(env, dbs=(0,))
    conf, p, before, w = synced_under_writes(env, source, target)
    w.run_for(rng.uniform(1.0, 2.5))
    dead.proc.kill()                                   # a crash, no SHUTDOWN
    dead.proc.wait(timeout=10)
    t0 = time.monotonic()
    wait_until(lambda: replica.client().info("replication")["role"] == "master", 30,
               what="the target cluster promoting the replica")
    result.notes.append("replica promoted after %.1fs" % (time.monotonic() - t0))
    target.nodes[0] = replica
    env.servers.append(dead)                           # still to clean up
    wait_until(lambda: all(n.client().cluster("info").get("cluster_state") == "ok" for n in target.nodes),
               30, what="the target cluster ok again")
    w.run_for(2.0)
    result.full, result.partial = counters_since(source, before)
    finish(env, result, w, source, target, p)


def target_reshard(env, rng, result):
    """Slots (with their keys) moved between target masters while writes flow."""
    target = env.cluster()
    source = filled_source(env, dbs=(0,))
    conf, p, before, w = synced_under_writes(env, source, target)
    w.run_for(1.0)
    a, b, c = target.masters()
    target.reshard(a, b, 1500)
    w.run_for(0.5)
    target.reshard(c, a, 700)
    w.run_for(1.0)
    result.full, result.partial = counters_since(source, before)
    finish(env, result, w, source, target, p)


# --- the network --------------------------------------------------------------------------

def net_cut(env, rng, result):
    """shake's connections to the target reset three times (through the proxy), each followed
    by a second when new connections are refused."""
    source = filled_source(env)
    target = env.server(name="target")
    proxy = env.proxy(target.port)
    conf, p, before, w = synced_under_writes(env, source, proxy.address)
    cuts = 0
    for _ in range(3):
        time.sleep(rng.uniform(0.5, 1.5))
        wait_until(lambda: proxy.connections() > 0, 30, what="shake reconnected to the target", shake=p)
        cuts += proxy.cut(down_s=1.0)
    w.run_for(2.0)
    result.notes.append("%d connections reset" % cuts)
    result.full, result.partial = counters_since(source, before)
    finish(env, result, w, source, target, p)


def net_stall(env, rng, result):
    """Nothing forwarded between shake and the target for 5 s, twice (a link dropping
    packets), connections kept."""
    source = filled_source(env)
    target = env.server(name="target")
    proxy = env.proxy(target.port)
    conf, p, before, w = synced_under_writes(env, source, proxy.address)
    for _ in range(2):
        time.sleep(rng.uniform(0.5, 1.5))
        proxy.stall(5.0)
    w.run_for(2.0)
    result.full, result.partial = counters_since(source, before)
    result.notes.append("%d proxy connections in all" % proxy.accepted)
    finish(env, result, w, source, target, p)


# --- a slow target -------------------------------------------------------------------------

OBL_CLOSED = re.compile(r"scheduled to be closed ASAP for overcoming of output buffer limits")


def slow_target(env, rng, result):
    """DEBUG SLEEP 3 on the target three times in a row while ~25 MB of commands arrive: shake
    must spool and the source (replica buffer soft limit 4 MB for 1 s) must never drop it."""
    source = filled_source(env, **{"client-output-buffer-limit": "replica 256mb 4mb 1"})
    target = env.server(name="target")
    conf, p, before, w = synced_under_writes(env, source, target,
                                             sections={"shake": {"max_buffered": "64kb", "spool_max": "1gb"},
                                                       "target": {"pipeline_max_bytes": "64kb"}})
    w.run_for(0.5)
    since = p.mark()
    spooled = []

    def sleeper():
        c = target.client()
        for _ in range(3):
            c.execute_command("DEBUG", "SLEEP", 3)

    def watch_spool():
        while t.is_alive():
            try:
                files = [f for f in os.listdir(env.shake_dir) if f.startswith("spool-")]
                size = sum(os.path.getsize(os.path.join(env.shake_dir, f)) for f in files)
            except OSError:  # a file replayed and removed meanwhile
                continue
            if files:
                spooled.append(size)
            time.sleep(0.01)

    t = threading.Thread(target=sleeper, daemon=True)
    t.start()
    watcher = threading.Thread(target=watch_spool, daemon=True)
    watcher.start()
    client = source.client()
    value = b"v" * 800
    for batch in range(60):
        pipe = client.pipeline(transaction=False)
        for i in range(batch * 500, batch * 500 + 500):
            pipe.set(b"slow:%06d" % i, value)
        pipe.execute()
    t.join(timeout=30)
    watcher.join(timeout=5)
    w.run_for(1.0)
    result.full, result.partial = counters_since(source, before)
    result.resume = resume_kind(p, since)
    result.notes.append("spool files seen, up to %.1f MB" % (max(spooled) / 1e6) if spooled
                        else "no spool file seen")
    if OBL_CLOSED.search(livesync.redis_log(source)):
        result.notes.append("SOURCE DROPPED SHAKE (output buffer limit)")
        result.equal = False
    if p.find(LINK_LOST, since):
        result.notes.append("source link lost")
    finish(env, result, w, source, target, p)
    if (result.full, result.partial) != (0, 0):
        result.notes.append("source link was re-established: not expected")
        result.equal = False


# name -> (function, in the quick subset)
FAULTS = [
    ("kill9-rdb", kill9_rdb, False),
    ("kill9-stream", kill9_stream, True),
    ("source-restart", source_restart, False),
    ("client-kill", client_kill, True),
    ("source-failover", source_failover, True),
    ("target-failover", target_failover, False),
    ("target-reshard", target_reshard, True),
    ("net-cut", net_cut, True),
    ("net-stall", net_stall, False),
    ("slow-target", slow_target, True),
]


def run(name, fn, rng, shake_bin, keep=False, strict=False):
    result = Result(name)
    env = Env(name, shake_bin, keep=keep)
    t0 = time.monotonic()
    try:
        fn(env, rng, result)
    except Exception as e:  # noqa: BLE001 -- one failing scenario must not stop the others
        result.error = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        result.log_tail = env.shake_log_tail()
    finally:
        if result.error is None and not result.passed(strict):
            result.log_tail = env.shake_log_tail()
        leaks = env.close()
        if leaks:
            result.error = result.error or "clean-up: " + "; ".join(leaks)
        result.seconds = time.monotonic() - t0
        if keep:
            result.notes.append("kept %s" % env.dir)
    return result
