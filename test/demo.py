#!/usr/bin/python3
"""demo.py -- shake's main job on a laptop: `make demo`.

Live sync (the default): starts a source Redis and a 3-master target Redis Cluster on
127.0.0.1 (free ports, temp dirs), fills the source with sample data of every type, starts
`shake -conf sync.ini` ([source] type = sync) in the background with its log streamed here,
keeps writing to the source for a few seconds while shake streams, waits until the target
matches the source (key by key, and shake's own log shows lag 0 bytes), says what it did, then
stops shake with SIGTERM (it drains, saves its checkpoint and exits 0) and every server.

`--restore` runs the older one-shot demo instead: SAVE on the source, shake restores the dump.

    /usr/bin/python3 test/demo.py --shake bin/shake [--scale N] [--write-seconds S] [--keep]
    /usr/bin/python3 test/demo.py --shake bin/shake --restore
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "integration"))

import compare  # noqa: E402
import dataset  # noqa: E402
import harness  # noqa: E402
import livesync  # noqa: E402


def say(text=""):
    print(text, flush=True)


def step(n, text):
    say()
    say("== %d. %s" % (n, text))


def type_table(snap):
    counts = compare.type_counts(snap)
    return ", ".join("%s %d" % (t, counts[t]) for t in sorted(counts)) or "no keys"


def start_source(config, kind):
    """Step 1, first half: the source Redis, described as `kind`."""
    step(1, "start a source Redis and a 3-master target cluster on 127.0.0.1")
    source = harness.start_server(config, name="demo-source")
    say("source   %s (%s, dir %s)" % (source.address, kind, source.dir))
    return source


def start_cluster():
    """Step 1, second half: the 3-master target cluster."""
    t0 = time.monotonic()
    cluster = harness.Cluster().start()
    say("target   %s (cluster ready in %.1fs)" % (", ".join(n.address for n in cluster.masters()),
                                                  time.monotonic() - t0))
    return cluster


def fill_source(source, scale):
    """Step 2: sample data of every type; returns the manifest and the source's snapshot."""
    step(2, "fill the source with sample data of every type, in dbs 0, 1 and 5")
    manifest = dataset.fill(source, scale=scale)
    src_snap = compare.snapshot(source)
    for db in sorted(src_snap):
        say("db%-2d %5d keys: %s" % (db, len(src_snap[db]), type_table({db: src_snap[db]})))
    say("encodings: %s" % ", ".join("%s/%s" % te for te in sorted(manifest.encodings_seen())))
    say("function libraries: %s" % ", ".join(manifest.functions))
    return manifest, src_snap


def show_file(path, prefix="  "):
    with open(path) as f:
        for line in f.read().rstrip().splitlines():
            say(prefix + line)


def show_target(cluster):
    """The target's keys by type, and how they spread over the masters."""
    tgt_snap = compare.snapshot(cluster)
    say("target: %d keys (%s)" % (sum(len(k) for k in tgt_snap.values()), type_table(tgt_snap)))
    for node in cluster.masters():
        say("  %s holds %d keys" % (node.address, node.client().dbsize()))


def keep_servers(args, source, cluster):
    """With --keep, leave the servers up until Enter is pressed."""
    if not args.keep:
        return
    say()
    say("servers left running: source %s, cluster %s. Press Enter to stop them."
        % (source.address, cluster.address))
    try:
        input()
    except EOFError:
        pass


def stop_everything(n, workdir, cluster, source, proc=None):
    step(n, "stop everything")
    if proc is not None and proc.alive():
        proc.kill()
    if cluster is not None:
        cluster.stop()
    if source is not None:
        source.stop()
    harness.stop_all()
    shutil.rmtree(workdir, ignore_errors=True)
    say("stopped; temp files removed")


def verdict(ok, success):
    say()
    say("demo %s" % (success if ok else "FAILED"))
    return 0 if ok else 1


def run_restore(args, shake):
    """The one-shot restore demo: SAVE on the source, shake restores the dump."""
    workdir = tempfile.mkdtemp(prefix="shake-demo-")
    source = cluster = None
    ok = False
    try:
        source = start_source(dataset.PROFILES["default"], "standalone")
        cluster = start_cluster()

        manifest, src_snap = fill_source(source, args.scale)
        dump = source.dump_copy(os.path.join(workdir, "source.rdb"))
        say("SAVE -> %s (%d bytes)" % (dump, os.path.getsize(dump)))

        step(3, "write the shake config")
        db_map = {1: 0, 5: 0}  # a cluster has db 0 only
        conf = harness.write_config(os.path.join(workdir, "shake.ini"), [dump], cluster.address,
                                    on_existing="error", db_map=db_map,
                                    shake_dir=os.path.join(workdir, "shake-data"))
        show_file(conf)

        step(4, "run shake: restore the dump into the cluster (live sync comes later)")
        say("$ %s -conf %s" % (shake, conf))
        result = harness.stream_shake(conf, binary=shake, timeout=600)
        say("shake exited with status %s after %.2fs" % (result.returncode, result.seconds))

        step(5, "compare source and target, key by key")
        diffs = compare.compare(source, cluster, db_map=db_map)
        say("source: %d keys (%s)" % (manifest.count(), type_table(src_snap)))
        show_target(cluster)
        summary = result.summary or {}
        if summary:
            say("shake's summary: written=%s skipped_expired=%s errors=%s status=%s"
                % (summary.get("written"), summary.get("skipped_expired"), summary.get("errors"),
                   summary.get("status")))
        if diffs:
            say("differences: %d" % len(diffs))
            for d in diffs[:20]:
                say("  " + d)
            if len(diffs) > 20:
                say("  ... and %d more" % (len(diffs) - 20))
        else:
            say("differences: none (types, values, TTLs, stream groups, functions on every master)")
        ok = result.returncode == 0 and not diffs

        keep_servers(args, source, cluster)
    finally:
        stop_everything(6, workdir, cluster, source)
    return verdict(ok, "OK: the target holds exactly the source's data")


def run_sync(args, shake):
    """Live sync: shake follows a running source while it is written to."""
    workdir = tempfile.mkdtemp(prefix="shake-demo-")
    source = cluster = proc = None
    writers = []
    ok = False
    try:
        # repl-diskless-sync-delay 0: the full sync starts at once (Redis 7 waits 5 s by default)
        source = start_source(livesync.source_config(profile="default"),
                              "standalone, diskless replication")
        cluster = start_cluster()

        fill_source(source, args.scale)

        step(3, "write the shake config: [source] type = sync")
        db_map = {1: 0, 5: 0}  # a cluster has db 0 only
        conf = harness.write_sync_config(os.path.join(workdir, "sync.ini"), source, cluster,
                                         on_existing="error", db_map=db_map,
                                         shake_dir=os.path.join(workdir, "shake-data"))
        show_file(conf)

        step(4, "start shake in the background: full sync first, then every write as it happens")
        say("$ %s -conf %s &" % (shake, conf))
        t_start = time.monotonic()
        proc = harness.ShakeProcess(conf, binary=shake, echo=sys.stdout, name="shake")
        proc.wait_for(r"RDB received", timeout=300, what="the end of the full sync")
        t_rdb = time.monotonic()
        say("(full sync done in %.2fs; now streaming)" % (t_rdb - t_start))

        step(5, "keep writing to the source for %ds while shake streams" % args.write_seconds)
        # db 0 and db 1 at once: the stream switches databases all the time (SELECT, db_map)
        writers = [livesync.SeqWriter(source, "demo", pause=0.001),
                   livesync.SeqWriter(source, "demo-db1", db=1, pause=0.005)]
        for w in writers:
            w.start(max_seconds=args.write_seconds)
        c = source.client()
        extra = 0
        deadline = time.monotonic() + args.write_seconds
        while time.monotonic() < deadline and proc.alive():
            # a few writes of every type besides the writers' SET / RPUSH / INCR
            i = extra
            c.hset(b"demo:hash", b"f%d" % (i % 50), b"%d" % i)
            c.zadd(b"demo:zset", {b"m%d" % (i % 50): i / 7})
            c.sadd(b"demo:set", b"%d" % (i % 100))
            c.xadd(b"demo:stream", {b"i": b"%d" % i}, maxlen=100, approximate=False)
            c.set(b"demo:ttl:%d" % (i % 20), b"%d" % i, ex=3600)
            extra += 5
            time.sleep(0.01)
        for w in writers:
            w.stop()
        writes = sum(w.count * 3 for w in writers) + extra
        t_writes = time.monotonic()
        say("(wrote %d commands: %s, plus %d HSET/ZADD/SADD/XADD/SET EX)"
            % (writes, ", ".join("%d x SET+RPUSH+INCR as %s" % (w.count, w.name.decode()) for w in writers), extra))

        step(6, "wait until the target matches the source (lag to zero)")
        livesync.wait_equal(source, cluster, db_map=db_map, timeout=60, shake=proc)
        t_equal = time.monotonic()
        say("target equals the source %.2fs after the last write" % (t_equal - t_writes))
        mark = proc.mark()
        proc.wait_for(r"lag 0 bytes", timeout=15, since=mark, what="a status line with lag 0")
        for w in writers:
            w.check(cluster)
        say("every write is on the target exactly once (counters, lists in order, every key)")

        say()
        src_snap = compare.snapshot(source)
        say("source: %d keys (%s)" % (sum(len(k) for k in src_snap.values()), type_table(src_snap)))
        show_target(cluster)
        say("full sync %.2fs, streamed %d writes in %.1fs, caught up %.2fs after the last one"
            % (t_rdb - t_start, writes, t_writes - t_rdb, t_equal - t_writes))

        step(7, "stop shake with SIGTERM: it drains, saves its checkpoint and exits 0")
        rc = proc.stop()
        say("shake exited with status %s" % rc)
        cp = os.path.join(workdir, "shake-data", "checkpoint")
        if os.path.exists(cp):
            show_file(cp, prefix="  checkpoint: ")
        ok = rc == 0

        keep_servers(args, source, cluster)
    except (AssertionError, harness.ShakeTimeout) as e:
        say()
        say("demo stopped: %s" % str(e).splitlines()[0])
        if proc is not None:
            for line in proc.result().error_lines:
                say("  " + line)
    finally:
        for w in writers:
            try:
                w.stop()
            except AssertionError:
                pass
        stop_everything(8, workdir, cluster, source, proc)
    return verdict(ok, "OK: shake kept the target equal to the live source")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shake", default=harness.shake_bin(), help="path of the shake binary")
    ap.add_argument("--scale", type=int, default=5, help="size of the sample data (200 keys per unit)")
    ap.add_argument("--write-seconds", type=int, default=5, help="how long to write while shake streams")
    ap.add_argument("--restore", action="store_true", help="the one-shot restore demo instead of live sync")
    ap.add_argument("--keep", action="store_true", help="leave the servers running until Enter is pressed")
    args = ap.parse_args()
    shake = os.path.abspath(args.shake)
    if not os.access(shake, os.X_OK):
        say("demo: no shake binary at %s (run `make bin/shake`)" % shake)
        return 2
    return run_restore(args, shake) if args.restore else run_sync(args, shake)


if __name__ == "__main__":
    sys.exit(main())
