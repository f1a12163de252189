"""gen.py -- the benchmark's datasets and its reference side (pre-built RESTORE commands).

Owns:
- RESP encoding, and feeding a stream of commands to a server through `redis-cli --pipe`
  (the fast way to fill a server: Python builds the protocol while redis-cli sends it);
- the R1 dataset: a seeded mix of strings of varied sizes, lists, sets, zsets, hashes and a few
  streams with consumer groups, TTLs on some keys (all far enough in the future to survive the
  benchmark), small collections (listpack/intset) and large ones (quicklist/hashtable/skiplist);
- the R2 dataset: one hash, list, set and zset of N elements each plus one big string;
- the reference: DUMP of every key of a source, written as `RESTORE key ttl payload REPLACE
  [ABSTTL]` commands, one RESP file per target master (key slot = CRC16 with hash tags).

Must not: depend on anything but the seed (TTLs are relative to now), or talk to any host
but 127.0.0.1.
"""

import binascii
import os
import random
import subprocess

REDIS_CLI = "/usr/bin/redis-cli"
HOST = "127.0.0.1"
PIPE_TIMEOUT = 600
DAY_MS = 86400 * 1000


def resp(*args):
    """One command in RESP (arguments: bytes, str or int)."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = b"%d" % a
        elif isinstance(a, str):
            a = a.encode()
        parts.append(b"$%d\r\n" % len(a))
        parts.append(a)
        parts.append(b"\r\n")
    return b"".join(parts)


# --- slots ---------------------------------------------------------------------------------

def key_slot(key):
    """Redis Cluster slot: CRC16 (XMODEM, what binascii.crc_hqx computes with init 0) of the
    key, or of the part between the first '{' and the next '}' when that part is not empty."""
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return binascii.crc_hqx(key, 0) & 16383


assert binascii.crc_hqx(b"123456789", 0) == 0x31C3


# --- feeding a server ----------------------------------------------------------------------

class PipeError(Exception):
    pass


class Pipe:
    """`redis-cli --pipe` into host:port, fed from Python in large writes."""

    FLUSH = 4 << 20

    def __init__(self, port, preexec_fn=None):
        self.proc = subprocess.Popen([REDIS_CLI, "-h", HOST, "-p", str(port), "--pipe"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        self.buf = []
        self.size = 0
        self.commands = 0

    def send(self, cmd):
        self.buf.append(cmd)
        self.size += len(cmd)
        self.commands += 1
        if self.size >= self.FLUSH:
            self.flush()

    def flush(self):
        if self.buf:
            self.proc.stdin.write(b"".join(self.buf))
            self.buf, self.size = [], 0

    def close(self, timeout=PIPE_TIMEOUT):
        self.flush()
        self.proc.stdin.close()
        try:
            out = self.proc.stdout.read()
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise PipeError("redis-cli --pipe did not finish within %ss" % timeout)
        text = out.decode(errors="replace")
        errors, replies = parse_pipe_output(text)
        if self.proc.returncode != 0 or errors != 0:
            raise PipeError("redis-cli --pipe: exit %s, %s errors\n%s"
                            % (self.proc.returncode, errors, text[-2000:]))
        return replies


def parse_pipe_output(text):
    """(errors, replies) from redis-cli --pipe's last line "errors: E, replies: R"."""
    errors = replies = None
    for line in text.splitlines():
        if line.startswith("errors:"):
            try:
                e, r = line.split(",")
                errors = int(e.split(":")[1])
                replies = int(r.split(":")[1])
            except (ValueError, IndexError):
                pass
    return errors, replies


# --- R1: the mixed dataset -----------------------------------------------------------------

class Pool:
    """Random bytes to slice values from: fast, and incompressible like most real payloads."""

    def __init__(self, rng, size=16 << 20):
        self.data = rng.randbytes(size)
        self.rng = rng

    def take(self, n):
        off = self.rng.randrange(len(self.data) - n)
        return self.data[off:off + n]


def r1_plan(keys):
    """How many keys of each kind a dataset of `keys` keys holds."""
    streams = max(2, keys // 20000)
    lists = keys * 7 // 100
    sets = keys * 5 // 100
    zsets = keys * 4 // 100
    hashes = keys * 7 // 100
    strings = keys - streams - lists - sets - zsets - hashes
    return {"string": strings, "list": lists, "set": sets, "zset": zsets, "hash": hashes,
            "stream": streams}


def _name(rng, kind, i):
    # One key in 8 carries a hash tag, so the slot function's tag rule is exercised.
    if i % 8 == 0:
        return b"{u%d}:%s:%d" % (i % 997, kind, i)
    return b"%s:%d" % (kind, i)


def _string_size(rng):
    r = rng.random()
    if r < 0.55:
        return rng.randint(16, 128)
    if r < 0.85:
        return rng.randint(129, 1024)
    if r < 0.987:
        return rng.randint(1025, 4096)
    return rng.randint(4097, 32768)


def _coll_shape(rng):
    """(elements, element size): 70% small enough for listpack/intset, 30% larger."""
    if rng.random() < 0.7:
        return rng.randint(4, 60), rng.randint(8, 40)
    return rng.randint(129, 200), rng.randint(12, 40)


def _ttl(rng, pipe, key, chance=0.2):
    if rng.random() < chance:
        pipe.send(resp(b"PEXPIRE", key, DAY_MS + rng.randrange(DAY_MS)))


def fill_r1(port, keys, seed=1, preexec_fn=None):
    """Fill the server at port with the R1 mix of `keys` keys; returns {kind: count}."""
    rng = random.Random(seed)
    pool = Pool(rng)
    plan = r1_plan(keys)
    pipe = Pipe(port, preexec_fn=preexec_fn)
    take = pool.take
    for i in range(plan["string"]):
        k = _name(rng, b"s", i)
        if i % 20 == 0:
            v = b"%d" % rng.randint(-(1 << 62), 1 << 62)  # int-encoded strings
        else:
            v = take(_string_size(rng))
        if rng.random() < 0.2:
            pipe.send(resp(b"SET", k, v, b"PX", DAY_MS + rng.randrange(DAY_MS)))
        else:
            pipe.send(resp(b"SET", k, v))
    for i in range(plan["list"]):
        k = _name(rng, b"l", i)
        n, size = _coll_shape(rng)
        pipe.send(resp(b"RPUSH", k, *[take(size) for _ in range(n)]))
        _ttl(rng, pipe, k)
    for i in range(plan["set"]):
        k = _name(rng, b"S", i)
        n, size = _coll_shape(rng)
        if i % 5 == 0:  # intsets (16/32/64-bit members)
            bits = (15, 31, 62)[i % 3]
            members = [b"%d" % rng.randint(-(1 << bits), 1 << bits) for _ in range(n)]
        else:
            members = [take(size) for _ in range(n)]
        pipe.send(resp(b"SADD", k, *members))
        _ttl(rng, pipe, k)
    for i in range(plan["zset"]):
        k = _name(rng, b"z", i)
        n, size = _coll_shape(rng)
        args = []
        for _ in range(n):
            args.append(repr(rng.uniform(-1e6, 1e6)).encode())
            args.append(take(size))
        pipe.send(resp(b"ZADD", k, *args))
        _ttl(rng, pipe, k)
    for i in range(plan["hash"]):
        k = _name(rng, b"h", i)
        n, size = _coll_shape(rng)
        args = []
        for j in range(n):
            args.append(b"field:%d" % j)
            args.append(take(size))
        pipe.send(resp(b"HSET", k, *args))
        _ttl(rng, pipe, k)
    for i in range(plan["stream"]):
        k = _name(rng, b"x", i)
        for j in range(2000):
            pipe.send(resp(b"XADD", k, b"%d-%d" % (1700000000000 + j, i), b"event", b"e%d" % (j % 50),
                           b"payload", take(rng.randint(16, 96))))
        pipe.send(resp(b"XGROUP", b"CREATE", k, b"workers", b"0"))
        pipe.send(resp(b"XREADGROUP", b"GROUP", b"workers", b"alice", b"COUNT", 100, b"STREAMS", k, b">"))
        pipe.send(resp(b"XREADGROUP", b"GROUP", b"workers", b"bob", b"COUNT", 50, b"STREAMS", k, b">"))
        pipe.send(resp(b"XACK", k, b"workers", b"%d-%d" % (1700000000000, i)))
    pipe.close()
    return plan


# --- R2: big keys --------------------------------------------------------------------------

def fill_r2(port, elements, string_bytes, seed=2, preexec_fn=None, batch=1000):
    """One hash, list, set and zset of `elements` elements each, and one string of
    `string_bytes` random bytes. Returns {key: (type, elements or bytes)}."""
    rng = random.Random(seed)
    pool = Pool(rng)
    pipe = Pipe(port, preexec_fn=preexec_fn)
    for lo in range(0, elements, batch):
        hi = min(elements, lo + batch)
        args = []
        for j in range(lo, hi):
            args += [b"field:%08d" % j, pool.take(16)]
        pipe.send(resp(b"HSET", b"big:hash", *args))
        pipe.send(resp(b"RPUSH", b"big:list", *[b"element-%08d-%s" % (j, pool.take(4).hex().encode())
                                               for j in range(lo, hi)]))
        pipe.send(resp(b"SADD", b"big:set", *[b"member:%08d" % j for j in range(lo, hi)]))
        args = []
        for j in range(lo, hi):
            args += [repr(rng.uniform(-1e9, 1e9)).encode(), b"m:%08d" % j]
        pipe.send(resp(b"ZADD", b"big:zset", *args))
    pipe.send(resp(b"SET", b"big:string", os.urandom(string_bytes)))
    pipe.close()
    return {b"big:hash": ("hash", elements), b"big:list": ("list", elements),
            b"big:set": ("set", elements), b"big:zset": ("zset", elements),
            b"big:string": ("string", string_bytes)}


# --- the reference: pre-built RESTORE commands ---------------------------------------------

def build_restore_files(client, slot_owner, paths, batch=500):
    """DUMP every key the source holds (db 0) and write `RESTORE key ttl payload REPLACE`
    (with ABSTTL and the source's absolute expire time for keys that have one, as shake
    sends them) to paths[slot_owner[slot(key)]]. Returns (keys, payload bytes, file bytes,
    largest string value)."""
    files = [open(p, "wb") for p in paths]
    keys = payload_bytes = 0
    try:
        batch_keys = []

        def flush():
            nonlocal keys, payload_bytes
            pipe = client.pipeline(transaction=False)
            for k in batch_keys:
                pipe.execute_command("DUMP", k)
                pipe.execute_command("PEXPIRETIME", k)
            replies = pipe.execute()
            for idx, k in enumerate(batch_keys):
                payload, at = replies[2 * idx], replies[2 * idx + 1]
                if payload is None:  # vanished (expired) between SCAN and DUMP
                    continue
                if at is not None and at > 0:
                    cmd = resp(b"RESTORE", k, at, payload, b"REPLACE", b"ABSTTL")
                else:
                    cmd = resp(b"RESTORE", k, 0, payload, b"REPLACE")
                files[slot_owner[key_slot(k)]].write(cmd)
                keys += 1
                payload_bytes += len(payload)
            batch_keys.clear()

        for k in client.scan_iter(count=5000):
            batch_keys.append(k)
            if len(batch_keys) >= batch:
                flush()
        if batch_keys:
            flush()
    finally:
        for f in files:
            f.close()
    file_bytes = sum(os.path.getsize(p) for p in paths)
    return keys, payload_bytes, file_bytes


def largest_string(client):
    """The largest string value on the server (STRLEN over every string key)."""
    best = 0
    batch = []

    def flush():
        nonlocal best
        pipe = client.pipeline(transaction=False)
        for k in batch:
            pipe.execute_command("STRLEN", k)
        for n in pipe.execute():
            best = max(best, n)
        batch.clear()

    for k in client.scan_iter(count=5000, _type="string"):
        batch.append(k)
        if len(batch) >= 1000:
            flush()
    if batch:
        flush()
    return best


def cluster_router(cluster):
    """(client_for, owner, clients) for a harness.Cluster: client_for(key) is a client of the
    master that owns the key's slot; owner is slot_owner_table over the masters' ports."""
    ports = [n.port for n in cluster.nodes]
    owner = slot_owner_table(cluster._slot_map(cluster.nodes[0]), ports)
    clients = [n.client() for n in cluster.nodes]
    return (lambda k: clients[owner[key_slot(k)]]), owner, clients


def slot_owner_table(slot_ranges, ports):
    """A list of 16384 indexes into `ports`, from (lo, hi, port) ranges."""
    table = [None] * 16384
    index = {p: i for i, p in enumerate(ports)}
    for lo, hi, port in slot_ranges:
        for s in range(lo, hi + 1):
            table[s] = index[port]
    if any(t is None for t in table):
        raise RuntimeError("slot map does not cover every slot")
    return table
