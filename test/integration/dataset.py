"""dataset.py -- fill a Redis 7.0 server with every type in every encoding it writes to an RDB.

Owns: a deterministic (seeded) set of keys covering strings (embstr, raw, int, int64 edges,
LZF-compressible, incompressible, empty), lists (single and multi-node quicklists, PLAIN nodes,
compressed nodes), sets (intset 16/32/64-bit, hashtable), zsets (listpack, skiplist, the awkward
scores), hashes (listpack, hashtable), streams (several listpack nodes, deleted entries, consumer
groups with ENTRIESREAD, consumers, PEL, XCLAIM delivery counts, XSETID metadata, empty streams),
TTLs (seconds, ms, far future), binary keys and values, dbs 0, 1 and 5, and a function library.

Which encoding a key gets depends on the server's `*-max-*` settings: pair `fill` with one of
the PROFILES. Keys in db N other than 0 start with "d<N>:" so every db can be merged into db 0
(a cluster target with db_map) without collisions. Must not depend on time or on randomness
other than the seed, except that TTLs are relative to now.
"""

import random

import redis

# Server settings that decide encodings. "small" forces every collection out of listpack/intset
# (hashtable, skiplist, many quicklist nodes, compressed nodes, many stream nodes); "large" keeps
# even the big collections in listpack/intset; "default" is Redis's own mix.
PROFILES = {
    "default": {},
    "small": {
        "list-max-listpack-size": 4,
        "list-compress-depth": 1,
        "hash-max-listpack-entries": 2,
        "hash-max-listpack-value": 8,
        "zset-max-listpack-entries": 2,
        "zset-max-listpack-value": 8,
        "set-max-intset-entries": 4,
        "stream-node-max-entries": 4,
    },
    "large": {
        "list-max-listpack-size": -5,
        "hash-max-listpack-entries": 4096,
        "hash-max-listpack-value": 1024,
        "zset-max-listpack-entries": 4096,
        "zset-max-listpack-value": 1024,
        "set-max-intset-entries": 4096,
        "stream-node-max-entries": 1000,
    },
}

INT64_MAX = b"9223372036854775807"
INT64_MIN = b"-9223372036854775808"
FAR_FUTURE_MS = 7258118400123  # 2200-01-01T00:00:00.123Z
PACKED_THRESHOLD = 100         # list elements above this many bytes go to PLAIN quicklist nodes

# Zset scores as Redis must keep them, bit for bit (sent as strings).
SPECIAL_SCORES = [
    (b"zero", b"0"),
    (b"negzero", b"-0.0"),
    (b"tiny", b"1e-300"),
    (b"max", b"1.7976931348623157e308"),
    (b"inf", b"inf"),
    (b"ninf", b"-inf"),
    (b"tenth", b"0.1"),
    (b"third", repr(1 / 3).encode()),
    (b"negbig", b"-4.329000123123131e+28"),
    (b"int53", b"9007199254740993"),
]

FUNCTION_CODE = (
    "#!lua name=shakelib\n"
    "redis.register_function('shake_echo', function(keys, args) return args[1] end)\n"
    "redis.register_function{function_name='shake_get', callback=function(keys, args) "
    "return redis.call('GET', keys[1]) end, flags={'no-writes'}}\n"
)

BINARY_JUNK = [b"\x00", b"\r\n", b"\xff\xfe\xfd", b"\x80abc", b"a\x00b", b"\n", b" ", b"\t\x01"]


def _rand_bytes(rng, n, alphabet=None):
    if alphabet is None:
        return rng.randbytes(n)
    return bytes(rng.choice(alphabet) for _ in range(n))


def _word(rng, lo=1, hi=24):
    return _rand_bytes(rng, rng.randint(lo, hi), b"abcdefghijklmnopqrstuvwxyz0123456789:_-")


class Manifest:
    """What `fill` wrote: keys per db with their types and encodings, function libraries."""

    def __init__(self):
        self.keys = {}        # db -> {key(bytes): type(str)}
        self.encodings = {}   # db -> {key: encoding(str)}
        self.functions = []   # library names

    def count(self):
        return sum(len(k) for k in self.keys.values())

    def dbs(self):
        return sorted(db for db, k in self.keys.items() if k)

    def encodings_seen(self):
        """{(type, encoding)} over every db."""
        out = set()
        for db, keys in self.keys.items():
            for key, t in keys.items():
                out.add((t, self.encodings[db][key]))
        return out


def _strings(c, p, rng):
    c.set(p + b"str:embstr", b"hello")
    c.set(p + b"str:raw", _rand_bytes(rng, 100, b"abcdefghij"))
    c.set(p + b"str:int", b"12345")
    c.set(p + b"str:negint", b"-7")
    c.set(p + b"str:zero", b"0")
    c.set(p + b"str:int64max", INT64_MAX)
    c.set(p + b"str:int64min", INT64_MIN)
    c.set(p + b"str:int32edge", b"2147483648")
    c.set(p + b"str:leadingzero", b"007")
    c.set(p + b"str:float", b"3.14159")
    c.set(p + b"str:empty", b"")
    c.set(p + b"str:lzf", b"compressible-" * 2000)              # 26 KB, LZF-compressed in the RDB
    c.set(p + b"str:random25k", _rand_bytes(rng, 25 * 1024))     # incompressible, stored raw
    c.set(p + b"str:utf8:\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", "значение".encode())
    c.set(p + b"bin:\x00\r\n\xff\xfe key", b"\x00\x01\r\n\xff" + bytes(range(256)))
    for i, junk in enumerate(BINARY_JUNK):
        c.set(p + b"bin:" + junk + str(i).encode(), junk * (i + 1))
    c.set(p + b"{tag}:a", b"same slot a")
    c.set(p + b"{tag}:b", b"same slot b")
    c.append(p + b"str:appended", b"grown by append ")
    c.append(p + b"str:appended", b"twice")


def _lists(c, p, rng):
    c.rpush(p + b"list:small", b"a", b"b", b"1", b"-2", INT64_MAX, INT64_MIN, b"")
    c.rpush(p + b"list:medium", *[_word(rng, 1, 40) for _ in range(600)])
    c.rpush(p + b"list:ints", *[str(rng.randint(-10 ** 12, 10 ** 12)).encode() for _ in range(300)])
    c.rpush(p + b"list:binary", *BINARY_JUNK)
    c.lpush(p + b"list:lpushed", *[str(i).encode() for i in range(50)])
    # PLAIN nodes: elements above the packed threshold, mixed with packed ones.
    plain = []
    for i in range(12):
        if i % 3 == 0:
            plain.append(_rand_bytes(rng, rng.randint(PACKED_THRESHOLD + 1, 4000), b"plainnode"))
        else:
            plain.append(_word(rng))
    plain.append(b"Z" * 30000)
    c.rpush(p + b"list:plain", *plain)
    c.rpush(p + b"list:one", b"only")


def _sets(c, p, rng):
    c.sadd(p + b"set:intset16", *[str(i).encode() for i in range(1, 11)])
    c.sadd(p + b"set:intset32", b"100000", b"-200000", b"300000")
    c.sadd(p + b"set:intset64", INT64_MAX, INT64_MIN, b"6000000000", b"1")
    c.sadd(p + b"set:strings", *[_word(rng) for _ in range(20)])
    c.sadd(p + b"set:bigints", *[str(i * 7).encode() for i in range(600)])  # > 512: hashtable
    c.sadd(p + b"set:binary", *BINARY_JUNK, b"")
    c.sadd(p + b"set:one", b"42")


def _zsets(c, p, rng):
    z = p + b"zset:special"
    for member, score in SPECIAL_SCORES:
        c.execute_command("ZADD", z, score, member)
    big = p + b"zset:big"
    args = []
    for i in range(300):
        args += [repr(rng.uniform(-1e6, 1e6)).encode(), b"m%d" % i]
    c.execute_command("ZADD", big, *args)
    for member, score in SPECIAL_SCORES:  # the awkward scores in a skiplist too
        c.execute_command("ZADD", big, score, b"special-" + member)
    c.execute_command("ZADD", p + b"zset:longmember", b"1.5", b"L" * 200, b"2", b"short")
    c.execute_command("ZADD", p + b"zset:binary", b"1", b"\x00\r\n", b"2", b"\xff", b"3", b"")
    c.execute_command("ZADD", p + b"zset:ties", b"1", b"b", b"1", b"a", b"1", b"c")


def _hashes(c, p, rng):
    c.hset(p + b"hash:small", mapping={b"f1": b"v1", b"f2": b"2", b"f3": INT64_MIN})
    c.hset(p + b"hash:big", mapping={b"field%d" % i: _word(rng, 0, 30) for i in range(300)})
    c.hset(p + b"hash:longval", mapping={b"short": b"x", b"long": b"V" * 300})
    c.hset(p + b"hash:binary", mapping={b"\x00": b"\r\n", b"\xff\xfe": b"", b"empty": b"", b"": b"emptyfield"})
    c.hset(p + b"hash:ints", mapping={b"%d" % i: b"%d" % (i * 1000003) for i in range(-5, 20)})


def _streams(c, p, rng):
    s = p + b"stream:basic"
    for i in range(1, 11):
        fields = [b"n", b"%d" % i, b"payload", _word(rng, 0, 20)]
        if i % 3 == 0:
            fields += [b"\x00bin", b"\xff\r\n"]
        c.execute_command("XADD", s, b"1000-%d" % i, *fields)
    c.execute_command("XGROUP", "CREATE", s, "readers", "0")   # no tombstones: entries-read is kept
    c.execute_command("XREADGROUP", "GROUP", "readers", "r1", "COUNT", "3", "STREAMS", s, ">")

    s = p + b"stream:groups"
    for i in range(1, 351):  # > 100 entries: several listpack nodes even by default
        c.execute_command("XADD", s, b"%d-%d" % (1700000000000 + i // 3, i % 3), b"i", b"%d" % i,
                          b"v", _word(rng, 1, 16))
    ids = [e[0] for e in c.execute_command("XRANGE", s, "-", "+")]
    c.execute_command("XDEL", s, ids[5], ids[6], ids[200], ids[-1])   # deleted entries, max-deleted-id
    c.execute_command("XGROUP", "CREATE", s, "g1", "0", "ENTRIESREAD", "0")
    c.execute_command("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "10", "STREAMS", s, ">")
    c.execute_command("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "5", "STREAMS", s, ">")
    c.execute_command("XACK", s, "g1", ids[0], ids[2])
    c.execute_command("XCLAIM", s, "g1", "carol", "0", ids[3], ids[4], "RETRYCOUNT", "7")
    c.execute_command("XCLAIM", s, "g1", "alice", "0", ids[13])        # delivery count 2
    c.execute_command("XGROUP", "CREATECONSUMER", s, "g1", "idle-dave")  # consumer, empty PEL
    c.execute_command("XGROUP", "CREATE", s, "g2", ids[100], "ENTRIESREAD", "100")
    c.execute_command("XGROUP", "CREATE", s, "g3", "$")
    c.execute_command("XGROUP", "CREATE", s, "\x00g\xff".encode("latin-1"), "0")

    c.execute_command("XGROUP", "CREATE", p + b"stream:empty-mkstream", "g", "$", "MKSTREAM")

    s = p + b"stream:alldeleted"
    for i in range(1, 4):
        c.execute_command("XADD", s, b"5-%d" % i, b"k", b"v")
    c.execute_command("XDEL", s, b"5-1", b"5-2", b"5-3")

    s = p + b"stream:setid"
    c.execute_command("XADD", s, b"10-1", b"a", b"1")
    c.execute_command("XADD", s, b"10-2", b"a", b"2")
    c.execute_command("XSETID", s, b"99-5", "ENTRIESADDED", "42", "MAXDELETEDID", "50-0")

    s = p + b"stream:trimmed"
    for i in range(1, 51):
        c.execute_command("XADD", s, b"20-%d" % i, b"x", b"%d" % i)
    c.execute_command("XTRIM", s, "MAXLEN", "5")


def _ttls(c, p, rng):
    c.set(p + b"ttl:sec", b"expires in an hour", ex=3600)
    c.set(p + b"ttl:ms", b"expires in ms", px=7200123)
    c.set(p + b"ttl:far", b"2200")
    c.execute_command("PEXPIREAT", p + b"ttl:far", FAR_FUTURE_MS)
    c.rpush(p + b"ttl:list", b"a", b"b")
    c.expire(p + b"ttl:list", 86400)
    c.hset(p + b"ttl:hash", mapping={b"a": b"1"})
    c.pexpire(p + b"ttl:hash", 123456789)
    c.execute_command("ZADD", p + b"ttl:zset", b"1", b"a")
    c.expire(p + b"ttl:zset", 5000)
    c.sadd(p + b"ttl:set", b"1", b"2")
    c.expire(p + b"ttl:set", 5000)
    c.execute_command("XADD", p + b"ttl:stream", b"1-1", b"a", b"b")
    c.expire(p + b"ttl:stream", 5000)


def _bulk(c, p, rng, count):
    """`count` ordinary keys of rotating types: the size knob."""
    pipe = c.pipeline(transaction=False)
    for i in range(count):
        k = p + b"bulk:%06d" % i
        kind = i % 6
        if kind == 0:
            pipe.set(k, _word(rng, 1, 200))
        elif kind == 1:
            pipe.set(k, b"%d" % rng.randint(-10 ** 15, 10 ** 15))
        elif kind == 2:
            pipe.rpush(k, *[_word(rng) for _ in range(rng.randint(1, 40))])
        elif kind == 3:
            pipe.hset(k, mapping={b"f%d" % j: _word(rng) for j in range(rng.randint(1, 40))})
        elif kind == 4:
            pipe.sadd(k, *[_word(rng) for _ in range(rng.randint(1, 40))])
        else:
            args = []
            for j in range(rng.randint(1, 40)):
                args += [repr(rng.uniform(-1000, 1000)).encode(), b"m%d" % j]
            pipe.execute_command("ZADD", k, *args)
        if i % 10 == 9:
            pipe.pexpire(k, 10 ** 9 + i)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()


def fill(server, seed=1, scale=1, dbs=(0, 1, 5), functions=True, plain_nodes=True):
    """Fill `server` (a harness.RedisServer) and return a Manifest.

    scale: multiplies the number of ordinary keys (200 per db at scale 1, 20 in dbs other
    than 0). plain_nodes: lower the quicklist packed threshold (DEBUG, needs
    enable-debug-command) so list:plain gets PLAIN nodes."""
    rng = random.Random(seed)
    c0 = server.client()
    if plain_nodes:
        c0.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", str(PACKED_THRESHOLD))
    for db in dbs:
        c = server.client(db=db)
        p = b"" if db == 0 else b"d%d:" % db
        if db == 0:
            _strings(c, p, rng)
            _lists(c, p, rng)
            _sets(c, p, rng)
            _zsets(c, p, rng)
            _hashes(c, p, rng)
            _streams(c, p, rng)
            _ttls(c, p, rng)
            _bulk(c, p, rng, 200 * scale)
        else:
            c.set(p + b"str", b"in db %d" % db)
            c.set(p + b"int", b"%d" % db)
            c.rpush(p + b"list", b"x", b"y", b"%d" % db)
            c.sadd(p + b"set", b"1", b"2", b"three")
            c.hset(p + b"hash", mapping={b"db": b"%d" % db})
            c.execute_command("ZADD", p + b"zset", b"-0.0", b"z", b"1e-300", b"t")
            c.execute_command("XADD", p + b"stream", b"1-1", b"db", b"%d" % db)
            c.set(p + b"ttl", b"v", ex=9000)
            _bulk(c, p, rng, 20 * scale)
    if functions:
        c0.execute_command("FUNCTION", "LOAD", "REPLACE", FUNCTION_CODE)
    return manifest(server, dbs)


def manifest(server, dbs=range(16)):
    m = Manifest()
    for db in dbs:
        c = server.client(db=db)
        keys = list(c.scan_iter(count=1000))
        pipe = c.pipeline(transaction=False)
        for k in keys:
            pipe.type(k)
            pipe.object("encoding", k)
        res = pipe.execute() if keys else []
        m.keys[db] = {k: res[2 * i].decode() for i, k in enumerate(keys)}
        m.encodings[db] = {k: res[2 * i + 1].decode() for i, k in enumerate(keys)}
    try:
        libs = server.client().execute_command("FUNCTION", "LIST")
        m.functions = sorted(_lib_name(l) for l in libs)
    except redis.exceptions.ResponseError:
        m.functions = []
    return m


def _lib_name(lib):
    d = dict(zip(lib[0::2], lib[1::2]))
    return d[b"library_name"].decode()


def fill_big(server, count, value_size, prefix=b"big:", seed=7):
    """`count` string keys of `value_size` incompressible bytes (for memory-limit tests)."""
    rng = random.Random(seed)
    c = server.client()
    pipe = c.pipeline(transaction=False)
    for i in range(count):
        pipe.set(prefix + b"%05d" % i, _rand_bytes(rng, value_size))
    pipe.execute()
    return [prefix + b"%05d" % i for i in range(count)]
