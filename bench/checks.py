"""checks.py -- what every bench scenario shares: output, the failure type, and the check of
sampled keys (type, size, TTL presence) on a target against the source.

Must not: write to any server (reads only).
"""

def say(text=""):
    print(text, flush=True)


def mb(n):
    return n / 1e6


class BenchFailure(Exception):
    pass



# --- checks on the target ------------------------------------------------------------------

SIZE_CMD = {b"string": "STRLEN", b"list": "LLEN", b"set": "SCARD", b"zset": "ZCARD", b"hash": "HLEN",
            b"stream": "XLEN"}


def describe_keys(client_for, keys):
    """[(type, size, has_ttl)] for keys; client_for(key) gives the client of the owning node."""
    out = {}
    by_client = {}
    for k in keys:
        by_client.setdefault(client_for(k), []).append(k)
    for c, ks in by_client.items():
        p = c.pipeline(transaction=False)
        for k in ks:
            p.execute_command("TYPE", k)
            p.execute_command("PTTL", k)
        res = p.execute()
        types = {}
        p = c.pipeline(transaction=False)
        for i, k in enumerate(ks):
            t = res[2 * i]
            t = t if isinstance(t, bytes) else str(t).encode()
            types[k] = (t, res[2 * i + 1] > 0)
            p.execute_command(SIZE_CMD.get(t, "EXISTS"), k)
        for k, n in zip(ks, p.execute()):
            out[k] = (types[k][0], n, types[k][1])
    return [out[k] for k in keys]


def sample_keys(client, n):
    keys = []
    for i, k in enumerate(client.scan_iter(count=5000)):
        if i % 97 == 0:
            keys.append(k)
            if len(keys) >= n:
                break
    return keys


def check_sample(label, expected, client_for, keys):
    got = describe_keys(client_for, keys)
    bad = [(k, e, g) for k, e, g in zip(keys, expected, got) if e != g]
    if bad:
        raise BenchFailure("%s: %d of %d sampled keys differ from the source, e.g. %r"
                           % (label, len(bad), len(keys), bad[:3]))


def _label(i):
    return "warm-up" if i < 0 else "run %-3d" % (i + 1)
