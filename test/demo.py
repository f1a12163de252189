#!/usr/bin/python3
"""demo.py -- shake's main job on a laptop: `make demo`.

Starts a source Redis and a 3-master target Redis Cluster on 127.0.0.1 (free ports, temp
dirs), fills the source with sample data of every type, saves it, writes a shake config,
runs shake (one-shot restore of the dump) with its output streamed here, then compares the
source and the target key by key and says what it found. Everything it started is stopped
at the end, whatever happens.

    /usr/bin/python3 test/demo.py --shake bin/shake [--scale N] [--keep]
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


def say(text=""):
    print(text, flush=True)


def step(n, text):
    say()
    say("== %d. %s" % (n, text))


def type_table(snap):
    counts = compare.type_counts(snap)
    return ", ".join("%s %d" % (t, counts[t]) for t in sorted(counts)) or "no keys"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shake", default=harness.shake_bin(), help="path of the shake binary")
    ap.add_argument("--scale", type=int, default=5, help="size of the sample data (200 keys per unit)")
    ap.add_argument("--keep", action="store_true", help="leave the servers running until Enter is pressed")
    args = ap.parse_args()
    shake = os.path.abspath(args.shake)
    if not os.access(shake, os.X_OK):
        say("demo: no shake binary at %s (run `make bin/shake`)" % shake)
        return 2

    workdir = tempfile.mkdtemp(prefix="shake-demo-")
    source = cluster = None
    ok = False
    try:
        step(1, "start a source Redis and a 3-master target cluster on 127.0.0.1")
        source = harness.start_server(dataset.PROFILES["default"], name="demo-source")
        say("source   %s (standalone, dir %s)" % (source.address, source.dir))
        t0 = time.monotonic()
        cluster = harness.Cluster().start()
        say("target   %s (cluster ready in %.1fs)" % (", ".join(n.address for n in cluster.masters()),
                                                      time.monotonic() - t0))

        step(2, "fill the source with sample data of every type, in dbs 0, 1 and 5")
        manifest = dataset.fill(source, scale=args.scale)
        src_snap = compare.snapshot(source)
        for db in sorted(src_snap):
            say("db%-2d %5d keys: %s" % (db, len(src_snap[db]), type_table({db: src_snap[db]})))
        say("encodings: %s" % ", ".join("%s/%s" % te for te in sorted(manifest.encodings_seen())))
        say("function libraries: %s" % ", ".join(manifest.functions))
        dump = source.dump_copy(os.path.join(workdir, "source.rdb"))
        say("SAVE -> %s (%d bytes)" % (dump, os.path.getsize(dump)))

        step(3, "write the shake config")
        db_map = {1: 0, 5: 0}  # a cluster has db 0 only
        conf = harness.write_config(os.path.join(workdir, "shake.ini"), [dump], cluster.address,
                                    on_existing="error", db_map=db_map,
                                    shake_dir=os.path.join(workdir, "shake-data"))
        with open(conf) as f:
            for line in f.read().rstrip().splitlines():
                say("  " + line)

        step(4, "run shake: restore the dump into the cluster (live sync comes later)")
        say("$ %s -conf %s" % (shake, conf))
        result = harness.stream_shake(conf, binary=shake, timeout=600)
        say("shake exited with status %s after %.2fs" % (result.returncode, result.seconds))

        step(5, "compare source and target, key by key")
        diffs = compare.compare(source, cluster, db_map=db_map)
        tgt_snap = compare.snapshot(cluster)
        say("source: %d keys (%s)" % (manifest.count(), type_table(src_snap)))
        say("target: %d keys (%s)" % (sum(len(k) for k in tgt_snap.values()), type_table(tgt_snap)))
        for node in cluster.masters():
            say("  %s holds %d keys" % (node.address, node.client().dbsize()))
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

        if args.keep:
            say()
            say("servers left running: source %s, cluster %s. Press Enter to stop them."
                % (source.address, cluster.address))
            try:
                input()
            except EOFError:
                pass
    finally:
        step(6, "stop everything")
        if cluster is not None:
            cluster.stop()
        if source is not None:
            source.stop()
        harness.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
        say("stopped; temp files removed")
    say()
    say("demo %s" % ("OK: the target holds exactly the source's data" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
