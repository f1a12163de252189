"""`shake decode FILE...`: the decoder alone, no server. It must count exactly the keys a
real server saved, decode every value into items with --chunks, and fail with one
`shake: error:` line naming the file and offset on a corrupt file."""

import os
import re
import subprocess

import dataset
import harness


def decode(*args, timeout=60):
    return subprocess.run([harness.shake_bin(), "decode"] + list(args), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def counts(stdout):
    m = re.search(r"(\d+) bytes, (\d+) keys, (\d+) chunks, (\d+) functions", stdout)
    assert m, stdout
    return tuple(int(x) for x in m.groups())


def test_decode_counts_every_key_a_real_server_saved(servers):
    source = servers(dataset.PROFILES["small"], name="source")
    dataset.fill(source, scale=0)
    path = source.save()
    keys = sum(source.client(db=db).dbsize() for db in (0, 1, 5))
    for mode in ([], ["--chunks"]):
        r = decode(*(mode + [path]))
        assert r.returncode == 0, r.stdout + r.stderr
        size, decoded_keys, chunks, functions = counts(r.stdout)
        assert size == os.path.getsize(path)
        assert decoded_keys == keys, r.stdout
        assert functions == 1, r.stdout
        assert (chunks >= keys) if mode else (chunks == 0), r.stdout
        assert r.stderr == ""


def test_decode_reads_several_files_in_order(servers):
    a = servers(name="a")
    a.client().set("x", "1")
    b = servers(name="b")
    b.client().mset({"y": "2", "z": "3"})
    r = decode(a.save(), b.save())
    assert r.returncode == 0, r.stdout + r.stderr
    assert counts(r.stdout)[1] == 3


def test_decode_of_a_corrupt_file_is_one_error_naming_file_and_offset(tmp_path, servers):
    source = servers(name="source")
    source.client().set("key", "v" * 1000)
    data = bytearray(open(source.save(), "rb").read())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(bytes(data))
    r = decode(str(bad))
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shake: error: %s: offset " % bad), r.stderr


def test_decode_usage_errors_exit_2():
    r = decode()
    assert r.returncode == 2
    assert r.stderr.strip() == "shake: error: decode: expected one or more RDB files"
