#!/usr/bin/python3
"""run.py -- the fault-injection suite's entry point (`make test-faults`).

Owns: choosing the faults (all, the quick subset, or a list by name), the random seed (printed,
so a run can be repeated with --seed), running each scenario in turn on fresh servers, and the
report: one line per fault as it ends, then a table. Exit status 1 when any fault lost a write,
ended with the target different from the source, duplicated writes where that is not allowed,
or could not run; 0 otherwise.

Must not: run scenarios in parallel (the machine is shared), or leave a process behind.
"""

import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402
import scenarios  # noqa: E402


def summary(fn):
    return " ".join(fn.__doc__.split("\n\n")[0].split())


def pick(spec):
    names = [n for n, _, _ in scenarios.FAULTS]
    if spec in ("", "all"):
        return list(scenarios.FAULTS)
    if spec == "quick":
        return [f for f in scenarios.FAULTS if f[2]]
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        sys.exit("run.py: unknown fault(s) %s; known: %s, or all, quick" % (", ".join(unknown), ", ".join(names)))
    return [f for f in scenarios.FAULTS if f[0] in wanted]


COLUMNS = ("fault", "writes", "lost", "dup", "resume", "full", "partial", "equal", "secs", "result")


def row(r, strict):
    return (r.name, str(r.writes), "-" if r.lost is None else str(r.lost),
            "-" if r.duplicated is None else str(r.duplicated) + ("" if not r.duplicated or r.dups_allowed else "!"),
            r.resume, str(r.full), str(r.partial),
            "-" if r.equal is None else ("yes" if r.equal else "NO"), "%.0f" % r.seconds, r.verdict(strict))


def table(results, strict):
    rows = [COLUMNS] + [row(r, strict) for r in results]
    widths = [max(len(x[i]) for x in rows) for i in range(len(COLUMNS))]
    lines = []
    for i, x in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def details(r, strict):
    out = []
    if r.error:
        out.append("    error: " + r.error)
    for n in r.notes:
        out.append("    " + n)
    for d in r.diffs:
        out.append("    diff: " + d)
    if r.log_tail and not r.passed(strict):
        out.append("    --- shake log tail ---")
        out += ["    | " + l for l in r.log_tail.splitlines()]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", default=os.environ.get("FAULTS", "all"),
                    help="all (default), quick, or a comma-separated list of fault names")
    ap.add_argument("--seed", type=int, default=None, help="the random seed (default: from the clock)")
    ap.add_argument("--shake", default=None, help="the shake binary (default: $SHAKE_BIN or bin/shake)")
    ap.add_argument("--keep", action="store_true", help="keep each scenario's temp dir (logs, data)")
    ap.add_argument("--strict", action="store_true", default=bool(os.environ.get("FAULTS_STRICT")),
                    help="also fail on duplicates where the fault should cause none (all but kill -9)")
    ap.add_argument("--list", action="store_true", help="list the faults and exit")
    args = ap.parse_args()
    if args.list:
        for name, fn, quick in scenarios.FAULTS:
            print("%-16s %s %s" % (name, "quick" if quick else "     ", summary(fn)))
        return 0
    shake_bin = os.path.abspath(args.shake) if args.shake else harness.shake_bin()
    if not os.access(shake_bin, os.X_OK):
        sys.exit("run.py: no shake binary at %s (make all, or --shake)" % shake_bin)
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 1000000
    faults = pick(args.faults)
    print("fault suite: %d fault(s), seed %d (repeat with --seed %d), shake %s"
          % (len(faults), seed, seed, shake_bin), flush=True)
    results = []
    t0 = time.monotonic()
    for name, fn, _ in faults:
        rng = random.Random("%d-%s" % (seed, name))
        print("--- %s: %s" % (name, summary(fn)), flush=True)
        r = scenarios.run(name, fn, rng, shake_bin, keep=args.keep, strict=args.strict)
        results.append(r)
        print("    %s in %.0fs: writes %d, lost %s, duplicated %s, resume %s, equal %s"
              % (r.verdict(args.strict), r.seconds, r.writes, r.lost, r.duplicated, r.resume, r.equal), flush=True)
        for line in details(r, args.strict):
            print(line, flush=True)
    print()
    print("fault suite report (seed %d, %.0fs)" % (seed, time.monotonic() - t0))
    print(table(results, args.strict))
    print("columns: writes acknowledged by the source; lost (must be 0); dup = applied twice "
          "('!' where not allowed); resume as logged by shake; full/partial = source sync_full / "
          "sync_partial_ok after the initial sync; equal = compare.py source vs target")
    dups = ["%s (%d)" % (r.name, r.duplicated) for r in results if r.unexpected_dups]
    if dups:
        print("WARNING: writes applied twice where the fault should not replay anything: %s%s"
              % (", ".join(dups), "" if args.strict else " (--strict or FAULTS_STRICT=1 fails on these)"))
    bad = [r.name for r in results if not r.passed(args.strict)]
    if bad:
        print("FAILED: %s" % ", ".join(bad))
        return 1
    print("all %d fault(s) passed: nothing lost, target equal to the source" % len(results))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        harness.stop_all()
