#!/usr/bin/python3
"""bench.py -- `make bench`: shake's restore and live sync against their physical references.

Scenarios (see bench/README.md and docs/benchmarks.md):
  R1  restore rate: a ~430 MB, 400k-key mixed RDB into an empty local 3-master cluster, against
      `redis-cli --pipe` replaying pre-built RESTORE commands (one redis-cli per master, all at
      once) for the same keys into the same cluster. Runs alternate shake / reference; medians.
      Target: shake's rate >= 0.9x the reference's.
  R2  memory: an RDB with a 1M-element hash, list, set and zset and a 100 MB string, restored
      into a standalone target. Target: shake's peak RSS <= 64 MiB + the largest string value.
  S1  full sync (live.py): the R1 dataset on a standalone source into a 3-master cluster, against
      `redis-cli --rdb` (transfer only) and a real replica. Target: <= 1.15x redis-cli --rdb.
  S3  incremental (live.py): a pipelined SET/LPUSH/HSET/ZADD load with shake attached against a
      real replica attached. Targets: source ops/s >= 0.95x, marker p99 <= 50 ms, lag not growing.
  S4  big keys (bigkeys.py): the R2 dataset on a standalone source, live-synced by shake into a
      3-master cluster, against a real replica. Target: shake's peak RSS <= 64 MiB + the largest
      string; wall time, CPU per million keys and elements, the replica's peak RSS for information.
  S5  the decoder alone: `shake decode` on the R1 dataset, MB of RDB per CPU second.

    /usr/bin/python3 bench/bench.py --shake bin/shake [--quick] [--scenario R1|R2|S1|S3|S4|S5] [--runs N]

Exit status: 0 when every measurement was taken (a missed target is a result, printed as such);
1 when a run failed (shake or the reference exited non-zero or restored the wrong data);
2 on bad arguments or a missing binary.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))

import bigkeys  # noqa: E402
import gen  # noqa: E402
from checks import (BenchFailure, _label, check_sample, describe_keys, mb, sample_keys,  # noqa: E402
                    say)
import harness  # noqa: E402
import live  # noqa: E402
import proc  # noqa: E402

MIB = 1 << 20
RSS_BASE = 64 * MIB
RATE_TARGET = 0.9
SAMPLE = 2000


# --- shake ---------------------------------------------------------------------------------

def run_shake(shake, workdir, rdb, target, tag, timeout):
    conf = harness.write_config(os.path.join(workdir, "shake-%s.ini" % tag), [rdb], target,
                                on_existing="replace", shake_dir=os.path.join(workdir, "shake-data"),
                                log_level="info", extra_sections={"shake": {"progress": "no"}})
    run = proc.run_one([shake, "-conf", conf], timeout,
                       stdout=os.path.join(workdir, "shake-%s.out" % tag),
                       stderr=os.path.join(workdir, "shake-%s.err" % tag),
                       preexec_fn=harness._die_with_parent)
    m = harness.SUMMARY_RE.findall(run.stdout())
    summary = {}
    if m:
        for field in m[-1].split():
            if "=" in field:
                k, v = field.split("=", 1)
                summary[k] = v
    run.summary = summary
    return run


def describe_shake_failure(run):
    return ("shake %s after %.1fs\n--- stdout (tail) ---\n%s\n--- stderr (tail) ---\n%s"
            % ("timed out" if run.timed_out else "exited %s" % run.returncode, run.seconds or 0,
               run.stdout(3000), run.stderr(3000)))


def check_shake(run, keys):
    if run.returncode != 0 or run.summary.get("status") != "ok" or run.summary.get("errors") != "0":
        raise BenchFailure(describe_shake_failure(run))
    written = int(run.summary.get("written", -1))
    if written != keys:
        raise BenchFailure("shake wrote %d keys, the RDB holds %d\n%s" % (written, keys, describe_shake_failure(run)))


# --- the reference -------------------------------------------------------------------------

def run_reference(workdir, ports, files, tag, timeout):
    specs = []
    for port, path in zip(ports, files):
        specs.append({"argv": [gen.REDIS_CLI, "-h", gen.HOST, "-p", str(port), "--pipe"], "stdin": path,
                      "stdout": os.path.join(workdir, "ref-%s-%d.out" % (tag, port)),
                      "stderr": os.path.join(workdir, "ref-%s-%d.err" % (tag, port))})
    runs, wall = proc.run_many(specs, timeout, preexec_fn=harness._die_with_parent)
    replies = 0
    for r in runs:
        errors, n = gen.parse_pipe_output(r.stdout())
        if r.returncode != 0 or errors != 0 or n is None:
            raise BenchFailure("reference redis-cli --pipe %s: exit %s, errors %s\n%s%s"
                               % (" ".join(r.argv), "timeout" if r.timed_out else r.returncode, errors,
                                  r.stdout(2000), r.stderr(2000)))
        replies += n
    return wall, replies, sum(r.cpu or 0 for r in runs)


# --- R1 ------------------------------------------------------------------------------------

def masters_cpu(cluster):
    """CPU seconds the cluster's servers have used so far (for information)."""
    return sum(live.proc_cpu(n.proc.pid) for n in cluster.nodes)


def scenario_r1(args, shake, workdir):
    say("== R1 restore rate: %d-key mixed RDB into an empty local 3-master cluster" % args.r1_keys)
    t0 = time.monotonic()
    source = harness.start_server(name="bench-r1-src")
    plan = gen.fill_r1(source.port, args.r1_keys, preexec_fn=harness._die_with_parent)
    sc = source.client()
    t1 = time.monotonic()
    rdb = os.path.join(workdir, "r1.rdb")
    os.replace(source.save(), rdb)
    rdb_bytes = os.path.getsize(rdb)
    keys = sc.dbsize()
    largest = gen.largest_string(sc)
    say("   dataset: %s; %d keys; RDB %.1f MB; largest string %d B (generated in %.1fs, SAVE %.1fs)"
        % (", ".join("%d %ss" % (n, k) for k, n in plan.items()), keys, mb(rdb_bytes), largest,
           t1 - t0, time.monotonic() - t1))

    cluster = harness.Cluster().start()
    try:
        ports = [n.port for n in cluster.nodes]
        client_for, owner, clients = gen.cluster_router(cluster)
        # Check the slot function against the cluster itself on a few keys.
        for k in sample_keys(sc, 50):
            want = clients[0].execute_command("CLUSTER", "KEYSLOT", k)
            if want != gen.key_slot(k):
                raise BenchFailure("slot of %r: bench says %d, cluster says %d" % (k, gen.key_slot(k), want))
        t2 = time.monotonic()
        files = [os.path.join(workdir, "r1-ref-%d.resp" % p) for p in ports]
        nkeys, payload_bytes, file_bytes = gen.build_restore_files(sc, owner, files)
        if nkeys != keys:
            raise BenchFailure("DUMP saw %d keys, DBSIZE says %d" % (nkeys, keys))
        sample = sample_keys(sc, SAMPLE)
        expected = describe_keys(lambda k: sc, sample)
        say("   reference: %d RESTORE commands, %.1f MB of DUMP payloads, %.1f MB of RESP in %d files (built in %.1fs)"
            % (nkeys, mb(payload_bytes), mb(file_bytes), len(files), time.monotonic() - t2))
        source.stop()
        sc = None

        shake_runs, ref_runs, shake_error = [], [], None
        for i in range(-args.warmup, args.runs):
            if shake_error is None:
                cluster.flush()
                try:
                    masters0 = masters_cpu(cluster)
                    run = run_shake(shake, workdir, rdb, cluster.address, "r1-%d" % i, args.timeout)
                    masters = masters_cpu(cluster) - masters0
                    check_shake(run, keys)
                    if cluster.dbsize() != keys:
                        raise BenchFailure("after shake the cluster holds %d keys, expected %d"
                                           % (cluster.dbsize(), keys))
                    check_sample("shake " + _label(i).strip(), expected, client_for, sample)
                    if i >= 0:
                        shake_runs.append(run)
                    say("   %s  shake      %7.2fs  %8.0f keys/s  %6.1f MB/s  cpu %.2fs  peak RSS %.1f MiB  "
                        "masters' cpu %.2fs"
                        % (_label(i), run.seconds, keys / run.seconds, mb(rdb_bytes) / run.seconds, run.cpu,
                           run.maxrss / MIB, masters))
                except BenchFailure as e:
                    shake_error = str(e)
                    say("   %s  shake      FAILED (no more shake runs): %s" % (_label(i), shake_error))

            cluster.flush()
            masters0 = masters_cpu(cluster)
            wall, replies, cpu = run_reference(workdir, ports, files, "r1-%d" % i, args.timeout)
            masters = masters_cpu(cluster) - masters0
            if replies != keys or cluster.dbsize() != keys:
                raise BenchFailure("reference: %d replies, cluster holds %d keys, expected %d"
                                   % (replies, cluster.dbsize(), keys))
            check_sample("reference " + _label(i).strip(), expected, client_for, sample)
            if i >= 0:
                ref_runs.append((wall, cpu))
            say("   %s  reference  %7.2fs  %8.0f keys/s  %6.1f MB/s  cpu %.2fs (redis-cli)  masters' cpu %.2fs"
                % (_label(i), wall, keys / wall, mb(rdb_bytes) / wall, cpu, masters))
        cluster.flush()
    finally:
        cluster.stop()

    t_ref = statistics.median(w for w, _ in ref_runs)
    out = {
        "scenario": "R1", "keys": keys, "rdb_bytes": rdb_bytes, "payload_bytes": payload_bytes,
        "runs": args.runs, "warmup": args.warmup, "largest_string": largest, "shake_error": shake_error,
        "ref_seconds": [w for w, _ in ref_runs], "ref_median_s": t_ref,
        "ref_keys_s": keys / t_ref, "ref_mb_s": mb(rdb_bytes) / t_ref,
        "ref_cpu_s_per_mkeys": statistics.median(c for _, c in ref_runs) / keys * 1e6,
        "ratio_target": RATE_TARGET, "rss_bound": RSS_BASE + largest,
    }
    if shake_runs:
        t_shake = statistics.median(r.seconds for r in shake_runs)
        peak = max(r.maxrss for r in shake_runs)
        out.update({
            "shake_runs": len(shake_runs), "shake_seconds": [r.seconds for r in shake_runs],
            "shake_median_s": t_shake, "shake_keys_s": keys / t_shake, "shake_mb_s": mb(rdb_bytes) / t_shake,
            "ratio": t_ref / t_shake, "ratio_met": t_ref / t_shake >= RATE_TARGET,
            "shake_cpu_s_per_mkeys": statistics.median(r.cpu for r in shake_runs) / keys * 1e6,
            "shake_peak_rss": peak, "rss_met": peak <= RSS_BASE + largest,
            "shake_summary": shake_runs[-1].summary,
        })
    return out


# --- R2 ------------------------------------------------------------------------------------

def scenario_r2(args, shake, workdir):
    say("== R2 memory: %d-element hash, list, set, zset and a %d MiB string into a standalone target"
        % (args.r2_elements, args.r2_string_mib))
    t0 = time.monotonic()
    source = harness.start_server(name="bench-r2-src")
    string_bytes = args.r2_string_mib * MIB
    keys = gen.fill_r2(source.port, args.r2_elements, string_bytes, preexec_fn=harness._die_with_parent)
    sc = source.client()
    rdb = os.path.join(workdir, "r2.rdb")
    t1 = time.monotonic()
    os.replace(source.save(), rdb)
    rdb_bytes = os.path.getsize(rdb)
    largest = gen.largest_string(sc)
    encodings = {k.decode(): sc.object("encoding", k).decode() for k in keys}
    say("   dataset: %s; RDB %.1f MB; largest string %d B (generated in %.1fs, SAVE %.1fs)"
        % (", ".join("%s %s" % kv for kv in encodings.items()), mb(rdb_bytes), largest, t1 - t0,
           time.monotonic() - t1))
    ref_file = os.path.join(workdir, "r2-ref.resp")
    nkeys, payload_bytes, _ = gen.build_restore_files(sc, [0] * 16384, [ref_file])
    key_list = sorted(keys)
    expected = describe_keys(lambda k: sc, key_list)
    source.stop()

    target = harness.start_server(name="bench-r2-dst")
    try:
        tc = target.client()
        shake_runs, ref_runs, shake_error = [], [], None
        for i in range(-args.warmup, args.runs):
            if shake_error is None:
                tc.flushall()
                try:
                    run = run_shake(shake, workdir, rdb, target.address, "r2-%d" % i, args.timeout)
                    check_shake(run, nkeys)
                    check_sample("shake " + _label(i).strip(), expected, lambda k: tc, key_list)
                    if i >= 0:
                        shake_runs.append(run)
                    say("   %s  shake      %7.2fs  cpu %.2fs  peak RSS %.1f MiB"
                        % (_label(i), run.seconds, run.cpu, run.maxrss / MIB))
                except BenchFailure as e:
                    shake_error = str(e)
                    say("   %s  shake      FAILED (no more shake runs): %s" % (_label(i), shake_error))
            tc.flushall()
            wall, replies, cpu = run_reference(workdir, [target.port], [ref_file], "r2-%d" % i, args.timeout)
            check_sample("reference " + _label(i).strip(), expected, lambda k: tc, key_list)
            if i >= 0:
                ref_runs.append(wall)
            say("   %s  reference  %7.2fs  (redis-cli --pipe RESTORE of the same %d keys)" % (_label(i), wall, nkeys))
        tc.flushall()
    finally:
        target.stop()

    bound = RSS_BASE + largest
    t_ref = statistics.median(ref_runs)
    out = {
        "scenario": "R2", "elements": args.r2_elements, "string_bytes": string_bytes, "rdb_bytes": rdb_bytes,
        "encodings": encodings, "runs": args.runs, "warmup": args.warmup, "largest_string": largest, "rss_bound": bound,
        "shake_error": shake_error, "ref_seconds": ref_runs, "ref_median_s": t_ref,
    }
    if shake_runs:
        peak = max(r.maxrss for r in shake_runs)
        t_shake = statistics.median(r.seconds for r in shake_runs)
        out.update({
            "shake_runs": len(shake_runs), "shake_peak_rss_runs": [r.maxrss for r in shake_runs],
            "shake_peak_rss": peak, "rss_met": peak <= bound,
            "shake_seconds": [r.seconds for r in shake_runs], "shake_median_s": t_shake,
            "time_ratio": t_ref / t_shake, "shake_cpu_s": statistics.median(r.cpu for r in shake_runs),
            "shake_summary": shake_runs[-1].summary,
        })
    return out


# --- report --------------------------------------------------------------------------------

def _fmt(value, spec):
    return "-" if value is None else spec % value


def _met(flag):
    return "-" if flag is None else ("yes" if flag else "NO")


# --- S5 ------------------------------------------------------------------------------------

def scenario_s5(args, shake, workdir):
    """The decoder alone: `shake decode` over the R1 dataset, in MB of RDB per CPU second,
    once passing values raw (the RESTORE path) and once decoding every value into items
    (`--chunks`, the command-rewrite path). No server is involved while measuring."""
    say("== S5 decoder alone: `shake decode` on the %d-key R1 dataset" % args.r1_keys)
    source = harness.start_server(name="bench-s5-src")
    gen.fill_r1(source.port, args.r1_keys, preexec_fn=harness._die_with_parent)
    rdb = os.path.join(workdir, "s5.rdb")
    os.replace(source.save(), rdb)
    source.stop()
    size = os.path.getsize(rdb)
    result = {"scenario": "S5", "runs": args.runs, "warmup": args.warmup, "rdb_bytes": size}
    for mode, extra in (("raw", []), ("chunks", ["--chunks"])):
        speeds = []
        for n in range(args.warmup + args.runs):
            r = proc.run_one([shake, "decode"] + extra + [rdb], args.timeout,
                             stdout=os.path.join(workdir, "s5.out"), stderr=os.path.join(workdir, "s5.err"))
            if r.returncode != 0:
                raise BenchFailure("shake decode %s failed: %s" % (mode, r.stderr(500)))
            cpu = r.cpu or 0
            speed = size / 1e6 / cpu if cpu > 0 else 0
            say("   %s %-7s %.2fs cpu %.2fs  %.0f MB/s per CPU second" % (
                "warm-up" if n < args.warmup else "run %d  " % (n - args.warmup + 1), mode,
                r.seconds, cpu, speed))
            if n >= args.warmup:
                speeds.append(speed)
        result["mb_per_cpu_s_" + mode] = statistics.median(speeds)
    return result


def report(results, failures):
    say()
    say("== results (medians; %s)" % ", ".join("%s: %d run(s) each side after %d warm-up"
                                               % (r["scenario"], r["runs"], r["warmup"]) for r in results))
    rows = [("scenario", "measure", "shake", "reference", "shake/ref", "target", "met")]
    for r in results:
        g = r.get
        if r["scenario"] == "R1":
            rows.append(("R1", "wall seconds", _fmt(g("shake_median_s"), "%.2f"), "%.2f" % r["ref_median_s"],
                         "", "", ""))
            rows.append(("R1", "keys/s", _fmt(g("shake_keys_s"), "%.0f"), "%.0f" % r["ref_keys_s"],
                         _fmt(g("ratio"), "%.3f"), ">= %.2f" % r["ratio_target"], _met(g("ratio_met"))))
            rows.append(("R1", "MB/s (RDB bytes)", _fmt(g("shake_mb_s"), "%.1f"), "%.1f" % r["ref_mb_s"],
                         _fmt(g("ratio"), "%.3f"), ">= %.2f" % r["ratio_target"], _met(g("ratio_met"))))
            rows.append(("R1", "CPU s / M keys", _fmt(g("shake_cpu_s_per_mkeys"), "%.2f"),
                         "%.2f" % r["ref_cpu_s_per_mkeys"] + " (redis-cli)", "", "", ""))
            rows.append(("R1", "peak RSS MiB", _fmt(g("shake_peak_rss", 0) / MIB if g("shake_peak_rss") else None,
                                                    "%.1f"), "", "", "<= %.1f" % (r["rss_bound"] / MIB),
                         _met(g("rss_met"))))
        elif r["scenario"] == "R2":
            rows.append(("R2", "peak RSS MiB", _fmt(g("shake_peak_rss", 0) / MIB if g("shake_peak_rss") else None,
                                                    "%.1f"), "", "", "<= %.1f" % (r["rss_bound"] / MIB),
                         _met(g("rss_met"))))
            rows.append(("R2", "wall seconds", _fmt(g("shake_median_s"), "%.2f"), "%.2f" % r["ref_median_s"],
                         _fmt(g("time_ratio"), "%.3f"), "(info)", ""))
        elif r["scenario"] == "S5":
            rows.append(("S5", "MB/s per CPU s, raw", "%.0f" % r["mb_per_cpu_s_raw"], "", "", "(info)", ""))
            rows.append(("S5", "MB/s per CPU s, items", "%.0f" % r["mb_per_cpu_s_chunks"], "", "", "(info)",
                         ""))
        elif r["scenario"] == "S4":
            rows.extend(bigkeys.rows(r))
        else:
            rows.extend(live.rows(r))
        if r.get("shake_error"):
            rows.append((r["scenario"], "shake FAILED", r["shake_error"].splitlines()[0][:70], "", "", "", "NO"))
    for name, why in failures:
        rows.append((name, "FAILED", why.splitlines()[0][:70], "", "", "", "NO"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        say("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            say("  ".join("-" * w for w in widths))
    say()
    for r in results:
        if r["scenario"] == "S5":
            continue
        if r["scenario"] in ("S1", "S3"):
            checks = live.checks(r)
        elif r["scenario"] == "S4":
            checks = bigkeys.checks(r)
        else:
            checks = [("rate >= %.2fx reference" % RATE_TARGET, r.get("ratio_met"))] if r["scenario"] == "R1" else []
            checks.append(("peak RSS <= 64 MiB + largest string", r.get("rss_met")))
        for what, flag in checks:
            state = "met" if flag else ("NOT MEASURED (shake failed)" if flag is None else "MISSED")
            say("target %s %s: %s" % (r["scenario"], what, state))
    for name, _ in failures:
        say("target %s: NOT MEASURED (the scenario failed, see above)" % name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shake", default=harness.shake_bin(), help="path of the shake binary")
    ap.add_argument("--quick", action="store_true", help="small datasets, 1 run each: a smoke check")
    ap.add_argument("--scenario", choices=["R1", "R2", "S1", "S3", "S4", "S5", "ALL"], default="all", type=str.upper)
    ap.add_argument("--runs", type=int, help="measured runs of each side (default 5 for R1/R2, 3 for S1/S3/S4/S5; "
                    "1 with --quick)")
    ap.add_argument("--warmup", type=int, help="uncounted rounds of each side first (default 1; 0 with --quick)")
    ap.add_argument("--keys", type=int, help="R1 key count (default 400000; 40000 with --quick)")
    ap.add_argument("--elements", type=int, help="R2/S4 elements per collection (default 1000000; 100000 with --quick)")
    ap.add_argument("--string-mib", type=int, help="R2/S4 big string size in MiB (default 100; 10 with --quick)")
    ap.add_argument("--s3-seconds", type=float, help="S3 load window per run, seconds (default 15; 5 with --quick)")
    ap.add_argument("--s3-clients", type=int, default=4, help="S3 connections per redis-benchmark process (4 processes)")
    ap.add_argument("--s3-pipeline", type=int, default=16, help="S3 pipeline depth (redis-benchmark -P)")
    ap.add_argument("--s3-target", choices=["standalone", "cluster", "both"], default="both",
                    help="S3: shake's target, one redis-server, a local 3-master cluster, or both one after the "
                         "other (default both)")
    ap.add_argument("--s3-rate", type=int, default=0, help="S3: pace the load at this many commands/s with "
                    "bench/loadgen.py instead of saturating the source with redis-benchmark (default 0: saturate)")
    ap.add_argument("--shake-conf", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="S3 and S4: set this in shake's config file (repeatable), e.g. target.pipeline_max_bytes=256kb")
    ap.add_argument("--timeout", type=float, default=900, help="bound on one run of either side, seconds")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (RDB files, logs)")
    args = ap.parse_args()
    runs_given = args.runs
    args.runs = args.runs or (1 if args.quick else 5)
    args.s3_seconds = args.s3_seconds or (5 if args.quick else 15)
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    args.r1_keys = args.keys or (40000 if args.quick else 400000)
    args.r2_elements = args.elements or (100000 if args.quick else 1000000)
    args.r2_string_mib = args.string_mib or (10 if args.quick else 100)
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be at least 1 and --warmup at least 0")
    conf = {}
    for item in args.shake_conf:
        name, eq, value = item.partition("=")
        section, dot, key = name.partition(".")
        if not eq or not dot or not section or not key:
            ap.error("--shake-conf wants SECTION.KEY=VALUE, not %r" % item)
        conf.setdefault(section, {})[key] = value
    args.shake_conf = conf

    shake = os.path.abspath(args.shake)
    if not os.access(shake, os.X_OK):
        say("bench: no shake binary at %s (run `make bin/shake`)" % shake)
        return 2
    workdir = tempfile.mkdtemp(prefix="shake-bench-")
    # A private copy, so a rebuild of bin/shake during the run cannot change what is measured.
    shake_copy = os.path.join(workdir, "shake")
    shutil.copy2(shake, shake_copy)
    build = _build_info(shake)
    say("shake bench: %s (%s)" % (shake, build))
    say("work dir %s, %d CPUs, %s, Python %s, load average %.2f %.2f %.2f"
        % (workdir, os.cpu_count(), _redis_version(), platform.python_version(), *os.getloadavg()))

    results, failures = [], []
    scenarios = [("R1", scenario_r1), ("R2", scenario_r2), ("S1", live.scenario_s1), ("S3", live.scenario_s3),
                 ("S4", bigkeys.scenario_s4), ("S5", scenario_s5)]
    try:
        for name, fn in scenarios:
            if args.scenario not in ("ALL", name):
                continue
            # S rounds are long (a 400k-key full sync, 15 s load windows, big keys): 3 runs by default.
            args.runs = runs_given or (1 if args.quick else (3 if name.startswith("S") else 5))
            try:
                got = fn(args, shake_copy, workdir)
                results.extend(got if isinstance(got, list) else [got])
            except (BenchFailure, gen.PipeError, harness.ServerStartError, RuntimeError, AssertionError) as e:
                say("   %s FAILED: %s" % (name, e))
                failures.append((name, str(e)))
            finally:
                harness.stop_all()
                for f in os.listdir(workdir):
                    if f.endswith((".rdb", ".resp")) and f.startswith(name.lower()) and not args.keep:
                        os.unlink(os.path.join(workdir, f))
    finally:
        harness.stop_all()
        if args.keep:
            say("work directory kept: %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    report(results, failures)
    say("load average at the end: %.2f %.2f %.2f (other work on the machine skews every number)"
        % os.getloadavg())
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "failures": failures, "cpus": os.cpu_count(), "build": build,
                       "redis": _redis_version(), "quick": args.quick}, f, indent=2, default=str)
    broken = failures or any(r.get("shake_error") for r in results)
    return 1 if broken else 0


def _build_info(shake):
    """The binary's mtime and the repository's HEAD (read-only git), for the record."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(shake)))
    try:
        import subprocess
        root = os.path.join(HERE, "..")
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              timeout=10).stdout.decode().strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, timeout=10).stdout.strip()
        return "built %s, tree at %s%s" % (when, head or "?", " + local changes" if dirty else "")
    except Exception:
        return "built %s" % when


def _redis_version():
    try:
        import subprocess
        out = subprocess.run([harness.REDIS_SERVER, "--version"], capture_output=True, timeout=10).stdout.decode()
        m = re.search(r"v=(\S+)", out)
        return "redis " + (m.group(1) if m else "?")
    except Exception:
        return "redis ?"


if __name__ == "__main__":
    sys.exit(main())
