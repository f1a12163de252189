#!/usr/bin/python3
"""loadgen.py -- a paced, pipelined, mixed SET/LPUSH/HSET/ZADD write load (S3's --s3-rate mode).

redis-benchmark (S3's default load) cannot hold a rate: it always saturates the source. This
process sends pre-built RESP batches (the four commands interleaved, random keys) over
`--conns` connections, `--pipeline` commands per batch and at most two batches in flight per
connection, at `--rate` commands per second in total (0: as fast as replies come back). It
runs until killed or `--seconds` pass, and prints "sent N replies M errors E" on exit.

Every reply of these commands is one line (+OK, :n, or -ERR), so replies are counted by lines.

    /usr/bin/python3 bench/loadgen.py --port 6379 --rate 50000 --seconds 20

Must not: connect anywhere but 127.0.0.1.
"""

import argparse
import random
import selectors
import signal
import socket
import sys
import time


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def build_batches(pipeline, keyspace, count=4096, seed=7):
    rng = random.Random(seed)
    value = b"v" * 32
    batches = []
    for _ in range(count):
        cmds = []
        for j in range(pipeline):
            k = rng.randrange(keyspace)
            kind = rng.randrange(4)
            if kind == 0:
                cmds.append(resp(b"SET", b"s3:str:%d" % k, value))
            elif kind == 1:
                cmds.append(resp(b"LPUSH", b"s3:list:%d" % k, value))
            elif kind == 2:
                cmds.append(resp(b"HSET", b"s3:hash:%d" % k, b"f:%d" % rng.randrange(keyspace), value))
            else:
                cmds.append(resp(b"ZADD", b"s3:zset:%d" % k, b"%d" % rng.randrange(10 ** 9),
                                 b"m:%d" % rng.randrange(keyspace)))
        batches.append(b"".join(cmds))
    return batches


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, default=0, help="commands/s in total (0: unlimited)")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--keyspace", type=int, default=100000)
    ap.add_argument("--seconds", type=float, default=3600)
    a = ap.parse_args()

    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    batches = build_batches(a.pipeline, a.keyspace)
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(a.conns):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = {"sock": s, "out": b"", "inflight": 0, "tail": b"\n"}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    sent = replies = errors = 0
    nb = 0
    t0 = time.monotonic()
    end = t0 + a.seconds
    while not stop[0]:
        now = time.monotonic()
        if now >= end:
            break
        allowed = float("inf") if a.rate <= 0 else a.rate * (now - t0) - sent
        for c in conns:
            if c["inflight"] < 2 * a.pipeline and allowed >= a.pipeline and not c["out"]:
                c["out"] = batches[nb % len(batches)]
                nb += 1
                c["inflight"] += a.pipeline
                sent += a.pipeline
                allowed -= a.pipeline
            if c["out"]:
                try:
                    n = c["sock"].send(c["out"])
                    c["out"] = c["out"][n:]
                except BlockingIOError:
                    pass
        timeout = 0.0005 if a.rate > 0 else 0.01
        for key, _ in sel.select(timeout):
            c = key.data
            try:
                data = c["sock"].recv(1 << 16)
            except BlockingIOError:
                continue
            if not data:
                print("loadgen: connection closed by the server", file=sys.stderr)
                return 1
            n = data.count(b"\r\n")
            errors += (c["tail"] + data).count(b"\n-")  # a reply starting with '-'
            c["tail"] = data[-1:]
            c["inflight"] -= n
            replies += n
    print("sent %d replies %d errors %d seconds %.2f" % (sent, replies, errors, time.monotonic() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
