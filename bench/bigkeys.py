"""bigkeys.py -- S4 of `make bench`: a live full sync of big keys against a real replica.

S4  big keys: the R2 dataset (gen.fill_r2: one hash, list, set and zset of 1M elements each in
    hashtable/quicklist/hashtable/skiplist encodings, and a 100 MiB random string) on a
    standalone source with diskless sync and no delay. One round runs, in this order: (A)
    shake (`type = sync`) into an empty local 3-master cluster, as S1 does, timed from its
    spawn until GET /status shows every shard in phase `stream`, `caught_up` true and
    writer.keys_written = 5; (B) a fresh redis-server with `repl-diskless-load on-empty-db`,
    timed from REPLICAOF until master_link_status:up with loading:0. Rounds alternate A B A B
    after a warm-up. Measured for shake: wall time, CPU seconds (per million keys and per
    million elements) and peak RSS (VmHWM), against 64 MiB + the largest string value. While
    shake runs, /proc/<pid>/status and GET /status are sampled every 20 ms, so the peak can be
    placed in the sync (phase, bytes decoded, entries in flight) and split into anonymous and
    file-backed memory. The replica's peak RSS (VmHWM) is printed for information.

After every run of either side the target's data is compared with the source: each key's type
and size, the string's length and SHA-256 (read in 4 MiB GETRANGE slices), and for the
collections windows of elements by position (list, zset by rank with scores) and 1000 sampled
fields (hash values) and members (set), so a broken sync cannot pass.

Must not: talk to anything but 127.0.0.1, kill anything it did not start (by pid only), or
wait without a bound.
"""

import hashlib
import os
import statistics
import threading
import time

import gen
import harness
import live
from checks import BenchFailure, _label, describe_keys, mb, say

MIB = 1 << 20
RSS_BASE = 64 * MIB
POLL = 0.02               # seconds between samples of /proc/<pid>/status and GET /status
SLICE = 4 * MIB           # GETRANGE slice for the string's digest
WINDOW = 200              # elements per LRANGE / ZRANGE window
PROBES = 1000             # hash fields and set members compared


# --- the data check ------------------------------------------------------------------------

def _string_digest(c, key, length):
    h = hashlib.sha256()
    for lo in range(0, length, SLICE):
        h.update(c.getrange(key, lo, min(length, lo + SLICE) - 1))
    return h.hexdigest()


def _windows(n):
    """Start positions of three windows: the head, the middle and the tail."""
    return sorted({0, max(0, n // 2 - WINDOW // 2), max(0, n - WINDOW)})


def fingerprint(client_for, keys, elements):
    """What the check compares, read from one server (client_for(key) gives the node):
    [(type, size, TTL presence)] for every key, then per key a digest or samples."""
    out = {"describe": describe_keys(client_for, keys)}
    probe_idx = [(i * 7919) % elements for i in range(min(PROBES, elements))]
    for k in keys:
        c = client_for(k)
        t = c.type(k)
        if t == b"string":
            n = c.strlen(k)
            out[k] = (n, _string_digest(c, k, n))
        elif t == b"list":
            n = c.llen(k)
            out[k] = [c.lrange(k, lo, lo + WINDOW - 1) for lo in _windows(n)]
        elif t == b"zset":
            n = c.zcard(k)
            out[k] = [c.zrange(k, lo, lo + WINDOW - 1, withscores=True) for lo in _windows(n)]
        elif t == b"hash":
            fields = [b"field:%08d" % i for i in probe_idx]
            out[k] = c.hmget(k, fields)
        elif t == b"set":
            members = [b"member:%08d" % i for i in probe_idx]
            out[k] = c.execute_command("SMISMEMBER", k, *members)
        else:
            out[k] = None
    return out


def check_data(label, expected, client_for, keys, elements):
    got = fingerprint(client_for, keys, elements)
    bad = []
    for k, e, g in zip(keys, expected["describe"], got["describe"]):
        if e != g:
            bad.append("%s: (type, size, TTL) %r on the source, %r here" % (k.decode(), e, g))
        elif got[k] != expected[k]:
            bad.append("%s: contents differ from the source" % k.decode())
    if bad:
        raise BenchFailure("%s: the target's data differs from the source: %s" % (label, "; ".join(bad)))


# --- sampling shake's memory ---------------------------------------------------------------

def proc_mem(pid):
    """{VmRSS, RssAnon, RssFile, RssShmem, VmHWM} in bytes from /proc/<pid>/status ({} when gone)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                    out[name] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        return {}
    return out


class MemSampler(threading.Thread):
    """Every POLL s: shake's /proc status. On a new peak of VmRSS, and every TIMELINE s, also
    GET /status. Keeps the sample with the largest VmRSS (what the process held, and where the
    sync was, at its peak) and the timeline (for the JSON output and the key times)."""

    TIMELINE = 0.25

    def __init__(self, pid, port, t0):
        super().__init__(daemon=True)
        self.pid, self.port, self.t0 = pid, port, t0
        self.peak = None
        self.timeline = []
        self.samples = 0
        self.stop_event = threading.Event()

    def _with_status(self, m):
        s = {}
        try:
            s = live.get_status(self.port, timeout=2)
        except (OSError, ValueError):
            pass
        shards = s.get("shards") or [{}]
        m.update({"t": round(time.monotonic() - self.t0, 3), "phase": ",".join(x.get("phase", "?") for x in shards),
                  "rdb_bytes_done": sum(x.get("rdb_bytes_done", 0) for x in shards),
                  "buffered_bytes": sum(x.get("buffered_bytes", 0) for x in shards),
                  "in_flight": s.get("writer", {}).get("in_flight"),
                  "keys_written": s.get("writer", {}).get("keys_written"),
                  "bytes_sent": s.get("writer", {}).get("bytes_sent")})
        return m

    def run(self):
        last = -1.0
        while not self.stop_event.is_set():
            m = proc_mem(self.pid)
            if not m:
                break
            now = time.monotonic()
            peak = self.peak is None or m.get("VmRSS", 0) > self.peak["VmRSS"]
            if peak or now - last >= self.TIMELINE:
                m = self._with_status(m)
                if peak:
                    self.peak = m
                if now - last >= self.TIMELINE:
                    self.timeline.append(m)
                    last = now
            self.samples += 1
            self.stop_event.wait(POLL)

    def finish(self):
        self.stop_event.set()
        self.join(10)
        return self.peak


def _peak_text(p):
    if not p:
        return "no sample"
    return ("VmRSS %.1f MiB (anon %.1f, file %.1f) at %.2fs, phase %s, RDB decoded %.1f MB, buffered %.1f MB, "
            "in flight %s, keys written %s, sent %.1f MB"
            % (p["VmRSS"] / MIB, p.get("RssAnon", 0) / MIB, p.get("RssFile", 0) / MIB, p["t"], p["phase"],
               mb(p["rdb_bytes_done"]), mb(p["buffered_bytes"]), p["in_flight"], p["keys_written"],
               mb(p["bytes_sent"] or 0)))


# --- the two sides -------------------------------------------------------------------------

def _key_times(timeline):
    """The first sampled time at which keys_written reached 1, 2, ... (to TIMELINE s; keys
    acknowledged after the last sample get the time the sync was seen done)."""
    out, seen = [], 0
    for m in timeline:
        while (m.get("keys_written") or 0) > seen:
            seen += 1
            out.append(m["t"])
    return out


def shake_run(args, shake, workdir, source, cluster, nkeys, tag):
    """One live full sync into the emptied cluster; returns the run's numbers, with the CPU
    seconds the cluster's masters spent meanwhile."""
    cluster.flush()
    masters = [n.proc.pid for n in cluster.nodes]
    target_cpu0 = sum(live.proc_cpu(pid) for pid in masters)
    p, port = live.start_shake(shake, workdir, source, cluster, tag, extra=args.shake_conf)
    t0 = p.t0
    sampler = MemSampler(p.proc.pid, port, t0)
    sampler.start()
    try:
        t_done, st = live.wait_synced(p, port, nkeys, args.timeout)
        cpu, hwm = live.proc_cpu(p.proc.pid), live.proc_hwm(p.proc.pid)
        target_cpu = sum(live.proc_cpu(pid) for pid in masters) - target_cpu0
        peak = sampler.finish()
        rdb_line = next((t for t, _, text in list(p.lines) if "RDB received" in text), None)
        live.stop_shake(p)
    finally:
        sampler.finish()
        if p.alive():
            p.kill()
        with open(os.path.join(workdir, "shake-%s.log" % tag), "w") as f:
            f.writelines(text + "\n" for _, _, text in list(p.lines))
    return {"seconds": t_done - t0, "cpu": cpu, "maxrss": hwm, "peak": peak, "target_cpu": target_cpu,
            "rdb_received_s": None if rdb_line is None else rdb_line - t0,
            "keys_written": st["writer"]["keys_written"], "samples": sampler.samples,
            "key_times": (_key_times(sampler.timeline) + [t_done - t0] * nkeys)[:nkeys], "timeline": sampler.timeline,
            "bytes_sent": st["writer"].get("bytes_sent"), "commands_sent": st["writer"].get("commands_sent")}


def replica_run(args, source):
    """A fresh replica from REPLICAOF to link up and loaded; returns (seconds, VmHWM, CPU
    seconds since its start, server)
    with the server still running, for the data check (the caller stops it)."""
    replica = live.start_replica("bench-s4-replica", {"repl-diskless-load": "on-empty-db"})
    try:
        rc = replica.client()
        t_start = time.monotonic()
        rc.replicaof(gen.HOST, source.port)
        t_up = live.wait_replica_up(rc, args.timeout)
        return t_up - t_start, live.proc_hwm(replica.proc.pid), live.proc_cpu(replica.proc.pid), replica
    except BaseException:
        replica.stop()
        raise


# --- S4 ------------------------------------------------------------------------------------

def scenario_s4(args, shake, workdir):
    elements, string_bytes = args.r2_elements, args.r2_string_mib * MIB
    say("== S4 big keys: %d-element hash, list, set, zset and a %d MiB string, live sync from a standalone "
        "source (diskless, no delay) into an empty local 3-master cluster vs a real replica; %s%s"
        % (elements, args.r2_string_mib, live.loadavg(),
           "".join("; shake config %s.%s = %s" % (sec, k, v) for sec, kv in sorted(args.shake_conf.items())
                   for k, v in sorted(kv.items()))))
    t0 = time.monotonic()
    source = harness.start_server(config=dict(live.FAST_SYNC), name="bench-s4-src")
    cluster = None
    shake_runs, rep_runs, shake_error = [], [], None
    try:
        keys = sorted(gen.fill_r2(source.port, elements, string_bytes, preexec_fn=harness._die_with_parent))
        sc = source.client()
        if sc.dbsize() != len(keys):
            raise BenchFailure("the source holds %d keys, expected %d" % (sc.dbsize(), len(keys)))
        largest = gen.largest_string(sc)
        encodings = {k.decode(): sc.object("encoding", k).decode() for k in keys}
        t1 = time.monotonic()
        expected = fingerprint(lambda k: sc, keys, elements)
        say("   dataset: %s; largest string %d B (generated in %.1fs, fingerprinted in %.1fs)"
            % (", ".join("%s %s" % kv for kv in encodings.items()), largest, t1 - t0, time.monotonic() - t1))

        cluster = harness.Cluster().start()
        client_for, _, _ = gen.cluster_router(cluster)

        for i in range(-args.warmup, args.runs):
            label = _label(i)
            # A: shake
            if shake_error is None:
                try:
                    r = shake_run(args, shake, workdir, source, cluster, len(keys), "s4-%d" % i)
                    if cluster.dbsize() != len(keys):
                        raise BenchFailure("after shake the cluster holds %d keys, the source %d"
                                           % (cluster.dbsize(), len(keys)))
                    check_data("shake " + label.strip(), expected, client_for, keys, elements)
                    if i >= 0:
                        shake_runs.append(r)
                    say("   %s  shake         %7.2fs  (RDB received at %s)  cpu %.2fs  peak RSS %.1f MiB  data ok\n"
                        "            keys acknowledged at %s; sent %.1f MB in %s commands; cluster masters' "
                        "cpu %.2fs\n            peak sample (of %d): %s"
                        % (label, r["seconds"], live._fmt_s(r["rdb_received_s"]), r["cpu"], r["maxrss"] / MIB,
                           " ".join("%.2fs" % t for t in r["key_times"]), mb(r["bytes_sent"] or 0),
                           r["commands_sent"], r["target_cpu"], r["samples"], _peak_text(r["peak"])))
                except (BenchFailure, harness.ShakeTimeout) as e:
                    shake_error = str(e)
                    say("   %s  shake         FAILED (no more shake runs): %s" % (label, shake_error))
            cluster.flush()
            # B: a real replica
            wall, hwm, rcpu, replica = replica_run(args, source)
            try:
                rc = replica.client()
                if rc.dbsize() != len(keys):
                    raise BenchFailure("the replica holds %d keys, the source %d" % (rc.dbsize(), len(keys)))
                check_data("replica " + label.strip(), expected, lambda k: rc, keys, elements)
            finally:
                replica.stop()
            if i >= 0:
                rep_runs.append((wall, hwm, rcpu))
            say("   %s  real replica  %7.2fs  (REPLICAOF to link up, diskless load)  cpu %.2fs  peak RSS %.1f MiB  "
                "data ok  %s" % (label, wall, rcpu, hwm / MIB, live.loadavg()))
    finally:
        if cluster is not None:
            cluster.stop()
        source.stop()

    n_elements = 4 * elements
    bound = RSS_BASE + largest
    t_rep = statistics.median(w for w, _, _ in rep_runs)
    out = {
        "scenario": "S4", "keys": len(keys), "elements": elements, "string_bytes": string_bytes,
        "encodings": encodings, "runs": args.runs, "warmup": args.warmup, "largest_string": largest,
        "rss_bound": bound, "shake_error": shake_error, "shake_conf": args.shake_conf,
        "replica_seconds": [w for w, _, _ in rep_runs], "replica_median_s": t_rep,
        "replica_peak_rss": max(h for _, h, _ in rep_runs),
        "replica_cpu_s": statistics.median(c for _, _, c in rep_runs),
    }
    if shake_runs:
        t_shake = statistics.median(r["seconds"] for r in shake_runs)
        cpu = statistics.median(r["cpu"] for r in shake_runs)
        worst = max(shake_runs, key=lambda r: r["maxrss"])
        out.update({
            "shake_runs": shake_runs, "shake_seconds": [r["seconds"] for r in shake_runs],
            "shake_median_s": t_shake, "shake_over_replica": t_shake / t_rep, "shake_cpu_s": cpu,
            "target_cpu_s": statistics.median(r["target_cpu"] for r in shake_runs),
            "shake_cpu_s_per_mkeys": cpu / len(keys) * 1e6, "shake_cpu_s_per_melements": cpu / n_elements * 1e6,
            "shake_peak_rss": worst["maxrss"], "shake_peak_sample": worst["peak"],
            "rss_met": worst["maxrss"] <= bound,
        })
    return out


# --- report rows ---------------------------------------------------------------------------

def rows(r):
    """Rows for bench.report(): (scenario, measure, shake, reference, shake/ref, target, met)."""
    g = r.get
    f = live._f
    return [
        ("S4", "seconds vs real replica", f(g("shake_median_s"), "%.2f"), "%.2f" % r["replica_median_s"],
         f(g("shake_over_replica"), "%.3f"), "(info)", ""),
        ("S4", "CPU s: shake / replica", f(g("shake_cpu_s"), "%.2f"), "%.2f" % r["replica_cpu_s"], "", "(info)", ""),
        ("S4", "CPU s: cluster masters", f(g("target_cpu_s"), "%.2f"), "", "", "(info)", ""),
        ("S4", "CPU s / M keys (5 keys)", f(g("shake_cpu_s_per_mkeys"), "%.0f"), "", "", "", ""),
        ("S4", "CPU s / M elements", f(g("shake_cpu_s_per_melements"), "%.2f"), "", "", "", ""),
        ("S4", "peak RSS MiB", f(g("shake_peak_rss") / MIB if g("shake_peak_rss") else None, "%.1f"),
         "%.1f (replica)" % (r["replica_peak_rss"] / MIB), "", "<= %.1f" % (r["rss_bound"] / MIB),
         live._met(g("rss_met"))),
    ]


def checks(r):
    return [("peak RSS <= 64 MiB + largest string", r.get("rss_met"))]
