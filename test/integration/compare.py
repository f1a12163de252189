"""compare.py -- key-by-key comparison of a source and a target (standalone or cluster).

Owns: reading every key of every db of a server or of every master of a cluster (SCAN on each
node, values read from the node that owns them), normalising values into plain Python data,
and listing the differences in both directions: missing keys, extra keys, type, exact value,
TTL within a tolerance, function libraries.

Values compared exactly:
  string  bytes                       list  list of bytes, in order
  set     frozenset of bytes          hash  dict bytes -> bytes
  zset    dict member -> score as Redis prints it (%.17g: equal text == equal double,
          -0 and 0 differ)
  stream  entries (XRANGE), length, last-generated-id, max-deleted-entry-id, entries-added,
          groups (XINFO STREAM FULL COUNT 0): name, last-delivered-id, entries-read,
          PEL ids with consumer and delivery count, consumers with their PEL ids and counts.
          Times (delivery, seen) are not compared.
  ttl     PTTL, -1 on both sides or within ttl_tolerance_ms.

Must not write to either side.
"""

import redis

from harness import Cluster, RedisServer

SCAN_COUNT = 1000
BATCH = 200


class Value:
    __slots__ = ("type", "value", "pttl")

    def __init__(self, type_, value, pttl):
        self.type = type_
        self.value = value
        self.pttl = pttl

    def __repr__(self):
        return "Value(%s, %s, pttl=%s)" % (self.type, _short(self.value), self.pttl)


def _short(v, n=120):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


def _nodes(endpoint):
    """(list of RedisServer, is_cluster) for a RedisServer, Cluster, or a list of servers."""
    if isinstance(endpoint, Cluster):
        return endpoint.masters(), True
    if isinstance(endpoint, RedisServer):
        return [endpoint], bool(endpoint.cluster)
    return list(endpoint), True


def dbs_with_keys(server):
    info = server.client().info("keyspace")
    return sorted(int(k[2:]) for k in info if k.startswith("db") and k[2:].isdigit())


def _pairs(flat):
    return dict(zip(flat[0::2], flat[1::2]))


def _stream_value(c, key):
    entries = c.execute_command("XRANGE", key, "-", "+")
    full = _pairs(c.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", "0"))
    groups = []
    for g in full.get(b"groups") or []:
        g = _pairs(g)
        consumers = {}
        for cons in g.get(b"consumers") or []:
            cons = _pairs(cons)
            consumers[cons[b"name"]] = tuple((p[0], int(p[2])) for p in cons.get(b"pending") or [])
        groups.append({
            "name": g[b"name"],
            "last-delivered-id": g[b"last-delivered-id"],
            "entries-read": g.get(b"entries-read"),
            "pel": tuple((p[0], p[1], int(p[3])) for p in g.get(b"pending") or []),
            "consumers": consumers,
        })
    groups.sort(key=lambda g: g["name"])
    return {
        "entries": [(e[0], tuple(e[1])) for e in entries],  # field order kept
        "length": int(full[b"length"]),
        "last-generated-id": full[b"last-generated-id"],
        "max-deleted-entry-id": full.get(b"max-deleted-entry-id"),
        "entries-added": full.get(b"entries-added"),
        "groups": groups,
    }


def scan_keys(c):
    """Every key of the client's db, each once (SCAN may repeat keys)."""
    seen, cursor = {}, b"0"
    while True:
        cursor, keys = c.execute_command("SCAN", cursor, "COUNT", SCAN_COUNT)
        for k in keys:
            seen[k] = None
        if cursor in (b"0", 0, "0"):
            return list(seen)


def read_keys(c, keys):
    """{key: Value} for `keys` on client c (which must own them)."""
    out = {}
    for i in range(0, len(keys), BATCH):
        batch = keys[i:i + BATCH]
        pipe = c.pipeline(transaction=False)
        for k in batch:
            pipe.execute_command("TYPE", k)
            pipe.execute_command("PTTL", k)
        res = pipe.execute()
        types = [res[2 * j].decode() for j in range(len(batch))]
        pttls = [res[2 * j + 1] for j in range(len(batch))]
        pipe = c.pipeline(transaction=False)
        plain = []
        for k, t in zip(batch, types):
            if t == "string":
                pipe.execute_command("GET", k)
            elif t == "list":
                pipe.execute_command("LRANGE", k, 0, -1)
            elif t == "set":
                pipe.execute_command("SMEMBERS", k)
            elif t == "zset":
                pipe.execute_command("ZRANGE", k, 0, -1, "WITHSCORES")
            elif t == "hash":
                pipe.execute_command("HGETALL", k)
            else:
                continue
            plain.append((k, t))
        vals = pipe.execute() if plain else []
        got = {}
        for (k, t), v in zip(plain, vals):
            if t == "list":
                v = list(v)
            elif t == "set":
                v = frozenset(v)
            elif t in ("zset", "hash"):
                v = _pairs(v)
            got[k] = v
        for k, t, ttl in zip(batch, types, pttls):
            if t == "none":  # expired or deleted between SCAN and TYPE
                continue
            if t == "stream":
                v = _stream_value(c, k)
            elif k in got:
                v = got[k]
            else:
                raise ValueError("key %r has type %s, which compare.py cannot read" % (k, t))
            out[k] = Value(t, v, int(ttl))
    return out


def snapshot(endpoint, dbs=None):
    """{db: {key: Value}} of every key of `endpoint`. A cluster has db 0 only."""
    nodes, is_cluster = _nodes(endpoint)
    if is_cluster:
        dbs = [0]
    elif dbs is None:
        dbs = dbs_with_keys(nodes[0])
    out = {}
    for db in dbs:
        keys = {}
        for node in nodes:
            c = node.raw_client(db=db)
            node_keys = scan_keys(c)
            keys.update(read_keys(c, node_keys))
        out[db] = keys
    return out


def functions(endpoint):
    """{library name: (engine, code, sorted function names)} per node, as a list."""
    nodes, _ = _nodes(endpoint)
    out = []
    for node in nodes:
        libs = {}
        try:
            for lib in node.raw_client().execute_command("FUNCTION", "LIST", "WITHCODE"):
                d = _pairs(lib)
                names = sorted(_pairs(f)[b"name"] for f in d[b"functions"])
                libs[d[b"library_name"]] = (d[b"engine"], d[b"library_code"], tuple(names))
        except redis.exceptions.ResponseError:
            pass
        out.append((node.address, libs))
    return out


def _value_diff(where, a, b):
    """Readable lines for two Values of the same key; a = source (expected), b = target."""
    if a.type != b.type:
        return ["%s: type %s on source, %s on target" % (where, a.type, b.type)]
    if a.value == b.value:
        return []
    if a.type == "list":
        if len(a.value) != len(b.value):
            return ["%s: list length %d on source, %d on target" % (where, len(a.value), len(b.value))]
        i = next(i for i, (x, y) in enumerate(zip(a.value, b.value)) if x != y)
        return ["%s: list element %d is %s on source, %s on target" % (where, i, _short(a.value[i]), _short(b.value[i]))]
    if a.type == "set":
        return ["%s: set members only on source %s, only on target %s"
                % (where, _short(sorted(a.value - b.value)), _short(sorted(b.value - a.value)))]
    if a.type in ("zset", "hash"):
        lines = []
        for f in sorted(set(a.value) | set(b.value)):
            if a.value.get(f) != b.value.get(f):
                lines.append("%s: %s %s is %s on source, %s on target"
                             % (where, "member" if a.type == "zset" else "field", _short(f),
                                _short(a.value.get(f)), _short(b.value.get(f))))
                if len(lines) >= 5:
                    lines.append("%s: ... and more" % where)
                    break
        return lines
    if a.type == "stream":
        lines = []
        for part in sorted(set(a.value) | set(b.value)):
            if a.value.get(part) != b.value.get(part):
                lines.append("%s: stream %s is %s on source, %s on target"
                             % (where, part, _short(a.value.get(part), 300), _short(b.value.get(part), 300)))
        return lines
    return ["%s: value %s on source, %s on target" % (where, _short(a.value), _short(b.value))]


def _ttl_diff(where, a, b, tolerance):
    if (a.pttl < 0) != (b.pttl < 0):
        return ["%s: pttl %d on source, %d on target" % (where, a.pttl, b.pttl)]
    if a.pttl >= 0 and abs(a.pttl - b.pttl) > tolerance:
        return ["%s: pttl %d on source, %d on target (tolerance %d ms)" % (where, a.pttl, b.pttl, tolerance)]
    return []


def diff_snapshots(expected, actual, ttl_tolerance_ms=2000, target_is_cluster=False):
    """Differences between {db: {key: Value}} dicts (expected = what the target should hold)."""
    lines = []
    for db in sorted(set(expected) | set(actual)):
        e = expected.get(db, {})
        a = actual.get(db, {})
        for k in sorted(set(e) | set(a)):
            where = "db%d key %s" % (db, _short(k, 80))
            if k not in a:
                lines.append("%s: missing on target (%s on source)" % (where, e[k].type))
            elif k not in e:
                lines.append("%s: extra on target (%s, not on source)" % (where, a[k].type))
            else:
                lines += _value_diff(where, e[k], a[k])
                lines += _ttl_diff(where, e[k], a[k], ttl_tolerance_ms)
    return lines


def expected_target(source_snapshot, db_map=None):
    """Source {db: keys} moved through db_map into target dbs; collisions are differences."""
    db_map = db_map or {}
    out, lines = {}, []
    for db in sorted(source_snapshot):
        tdb = db_map.get(db, db)
        dest = out.setdefault(tdb, {})
        for k, v in source_snapshot[db].items():
            if k in dest:
                lines.append("db%d key %s: two source dbs map to the same target key" % (tdb, _short(k, 80)))
            dest[k] = v
    return out, lines


def compare(source, target, db_map=None, ttl_tolerance_ms=2000, check_functions=True):
    """Every difference between `source` and `target` (RedisServer or Cluster) as readable
    lines; [] means equal. `db_map` {source db: target db}."""
    src = snapshot(source)
    expected, lines = expected_target(src, db_map)
    _, target_is_cluster = _nodes(target)
    tnodes, _ = _nodes(target)
    if target_is_cluster:
        for db in expected:
            if db != 0 and expected[db]:
                lines.append("db%d: %d keys expected on a cluster target, which has db 0 only"
                             % (db, len(expected[db])))
        tdbs = [0]
    else:
        tdbs = sorted(set(dbs_with_keys(tnodes[0])) | set(expected))
    actual = snapshot(target, dbs=tdbs)
    expected = {db: v for db, v in expected.items() if db in tdbs or not target_is_cluster}
    lines += diff_snapshots(expected, actual, ttl_tolerance_ms)
    if check_functions:
        src_funcs = functions(source)
        want = src_funcs[0][1] if src_funcs else {}
        for address, libs in functions(target):
            for name in sorted(set(want) | set(libs)):
                if want.get(name) != libs.get(name):
                    lines.append("function library %s on %s: %s on source, %s on target"
                                 % (name, address, _short(want.get(name)), _short(libs.get(name))))
    return lines


def type_counts(snap):
    """{type: number of keys} over every db of a snapshot."""
    out = {}
    for keys in snap.values():
        for v in keys.values():
            out[v.type] = out.get(v.type, 0) + 1
    return out
