"""Bad input, bad targets and bad configs: each must end in exactly one line
"shake: error: ..." naming the culprit (file and byte offset, node address, file:line and
key), the documented exit status (1 runtime, 2 config/usage), and within a time bound."""

import re
import select
import socket
import struct

import pytest

import compare
import dataset
import harness
from harness import assert_one_error

QUICK = 10  # seconds: bad input must be refused at once, not after a hang
OFFSET = re.compile(r"offset \d+")


@pytest.fixture
def small_dump(servers, tmp_path):
    source = servers(name="source")
    dataset.fill(source, scale=0, dbs=(0, 1), functions=False)
    return source, source.dump_copy(str(tmp_path / "good.rdb"))


def _offset(line):
    return int(re.search(r"offset (\d+)", line).group(1))


# --- bad RDB input ------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["magic", "version", "after-header", "aux", "middle", "late",
                                   "before-eof", "in-crc"])
def test_truncated_dump(servers, small_dump, tmp_path, shake_bin, where):
    source, good = small_dump
    data = open(good, "rb").read()
    cut = {"magic": 3, "version": 7, "after-header": 9, "aux": 20, "middle": len(data) // 2,
           "late": len(data) * 9 // 10, "before-eof": len(data) - 9, "in-crc": len(data) - 3}[where]
    bad = tmp_path / ("cut-%d.rdb" % cut)
    bad.write_bytes(data[:cut])
    target = servers(name="target")
    result = harness.restore(tmp_path, str(bad), target, timeout=30)
    line = assert_one_error(result, 1, bad.name, OFFSET, max_seconds=QUICK)
    assert _offset(line) <= cut, line
    # whatever landed before the cut is exactly what the source holds
    for db, keys in compare.snapshot(target).items():
        src = compare.snapshot(source, dbs=[db])[db]
        assert compare.diff_snapshots({db: {k: src[k] for k in keys if k in src}}, {db: keys}) == []


def test_flipped_byte_fails_the_checksum(servers, tmp_path, shake_bin):
    source = servers(name="source")
    source.client().set(b"victim", b"a value whose bytes get flipped on disk")
    source.client().set(b"other", b"1")
    data = bytearray(open(source.save(), "rb").read())
    at = data.index(b"whose bytes")
    data[at] ^= 0x20
    bad = tmp_path / "flipped.rdb"
    bad.write_bytes(bytes(data))
    target = servers(name="target")
    result = harness.restore(tmp_path, str(bad), target, timeout=30)
    line = assert_one_error(result, 1, "flipped.rdb", OFFSET, max_seconds=QUICK)
    assert re.search(r"(?i)crc|checksum", line), line


def test_not_an_rdb_file(servers, tmp_path, shake_bin):
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"this is a text file, not a dump\n" * 10)
    result = harness.restore(tmp_path, str(bad), servers(name="target"), timeout=30)
    line = assert_one_error(result, 1, "notes.txt", OFFSET, max_seconds=QUICK)
    assert _offset(line) <= 9, line


def test_empty_file(servers, tmp_path, shake_bin):
    bad = tmp_path / "empty.rdb"
    bad.write_bytes(b"")
    result = harness.restore(tmp_path, str(bad), servers(name="target"), timeout=30)
    line = assert_one_error(result, 1, "empty.rdb", OFFSET, max_seconds=QUICK)
    assert _offset(line) == 0, line


def test_missing_file(servers, tmp_path, shake_bin):
    missing = tmp_path / "no-such-dump.rdb"
    target = servers(name="target")
    # Either refused while checking the config (2) or when opening the file (1).
    assert_one_error(harness.restore(tmp_path, str(missing), target, timeout=30), (1, 2),
                     "no-such-dump.rdb", max_seconds=QUICK)
    assert target.client().dbsize() == 0


def test_second_file_missing_after_a_good_one(servers, small_dump, tmp_path, shake_bin):
    source, good = small_dump
    result = harness.restore(tmp_path, [good, str(tmp_path / "gone.rdb")], servers(name="target"), timeout=30)
    assert_one_error(result, (1, 2), "gone.rdb", max_seconds=QUICK)


RDB9 = b"REDIS0009"


def _len64(n):
    return b"\x81" + struct.pack(">Q", n)


HUGE = 1 << 60
CRAFTED = {
    # type 1 (list) whose element count is 2^60: must be refused, not allocated
    "list-count": RDB9 + b"\xfe\x00" + b"\x01" + b"\x01k" + _len64(HUGE),
    "string-length": RDB9 + b"\xfe\x00" + b"\x00" + b"\x01k" + _len64(HUGE) + b"abc",
    "key-length": RDB9 + b"\xfe\x00" + b"\x00" + _len64(HUGE) + b"k",
    "set-count": RDB9 + b"\xfe\x00" + b"\x02" + b"\x01k" + _len64(HUGE) + b"\x01a",
    "hash-count": RDB9 + b"\xfe\x00" + b"\x04" + b"\x01k" + _len64(HUGE) + b"\x01a\x01b",
    "zset-count": RDB9 + b"\xfe\x00" + b"\x05" + b"\x01k" + _len64(HUGE) + b"\x01a" + b"\x00" * 8,
    "quicklist-nodes": b"REDIS0010" + b"\xfe\x00" + b"\x12" + b"\x01k" + _len64(HUGE) + b"\x02",
    # LZF string claiming 2^60 uncompressed bytes from 3 compressed ones
    "lzf-length": RDB9 + b"\xfe\x00" + b"\x00" + b"\x01k" + b"\xc3" + b"\x03" + _len64(HUGE) + b"abc",
    "aux-length": RDB9 + b"\xfa" + _len64(HUGE) + b"x",
    "resizedb": RDB9 + b"\xfe\x00" + b"\xfb" + _len64(HUGE) + _len64(HUGE),
    "db-number": RDB9 + b"\xfe" + _len64(HUGE),
}


@pytest.mark.parametrize("what", sorted(CRAFTED))
def test_absurd_length_is_refused_quickly(servers, tmp_path, shake_bin, what):
    bad = tmp_path / ("crafted-%s.rdb" % what)
    bad.write_bytes(CRAFTED[what])
    target = servers(name="target")
    result = harness.restore(tmp_path, str(bad), target, timeout=30)
    line = assert_one_error(result, 1, bad.name, OFFSET, max_seconds=QUICK)
    assert _offset(line) <= len(CRAFTED[what]), line
    assert target.client().dbsize() == 0


# --- bad targets ---------------------------------------------------------------------------

def test_unreachable_target(small_dump, tmp_path, shake_bin):
    source, good = small_dump
    port = harness.free_port()  # nobody listens there
    result = harness.restore(tmp_path, good, "127.0.0.1:%d" % port, timeout=30)
    assert_one_error(result, 1, "127.0.0.1:%d" % port, max_seconds=QUICK)


def test_wrong_password(servers, small_dump, tmp_path, shake_bin):
    source, good = small_dump
    target = servers({"requirepass": "right"}, name="target")
    result = harness.restore(tmp_path, good, target, password="wrong", timeout=30)
    line = assert_one_error(result, 1, target.address, max_seconds=QUICK)
    assert re.search(r"(?i)auth|password|WRONGPASS", line), line
    assert target.client().dbsize() == 0


def test_password_required_but_not_given(servers, small_dump, tmp_path, shake_bin):
    source, good = small_dump
    target = servers({"requirepass": "right"}, name="target")
    result = harness.restore(tmp_path, good, target, timeout=30)
    line = assert_one_error(result, 1, target.address, max_seconds=QUICK)
    assert re.search(r"(?i)auth|password|NOAUTH", line), line


def test_full_target_names_the_key_and_keeps_what_was_written(servers, tmp_path, shake_bin):
    source = servers(name="source")
    keys = dataset.fill_big(source, count=300, value_size=16 * 1024)  # ~4.8 MB, incompressible
    dump = source.dump_copy(str(tmp_path / "big.rdb"))
    target = servers({"maxmemory-policy": "noeviction"}, name="target")
    used = target.client().info("memory")["used_memory"]
    target.client().config_set("maxmemory", used + 1024 * 1024)
    result = harness.restore(tmp_path, dump, target, timeout=60)
    assert_one_error(result, 1)
    assert "OOM" in result.stderr, result.describe()
    on_target = set(target.client().keys())
    assert 0 < len(on_target) < len(keys), "expected some keys to land before the OOM"
    refused = set(k.decode() for k in keys) - set(k.decode() for k in on_target)
    named = set(re.findall(r"big:\d{5}", result.stderr))
    assert named & refused, "no refused key named on stderr\n" + result.describe()
    s = result.summary
    assert s is not None and s["status"] == "failed", result.describe()
    assert s["errors"] >= 1, "the refused key is not counted in errors=\n" + result.describe()
    assert s["written"] == len(on_target), result.describe()
    src = compare.snapshot(source)[0]
    assert compare.diff_snapshots({0: {k: src[k] for k in on_target}}, compare.snapshot(target)) == []


# --- bad configs ---------------------------------------------------------------------------

class Listener:
    """A socket on 127.0.0.1 that records whether anyone connected (nothing answers)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((harness.HOST, 0))
        self.sock.listen(16)
        self.address = "%s:%d" % self.sock.getsockname()

    def connected(self):
        r, _, _ = select.select([self.sock], [], [], 0)
        return bool(r)

    def close(self):
        self.sock.close()


@pytest.fixture
def listener():
    l = Listener()
    yield l
    l.close()


def _conf(tmp_path, text):
    path = tmp_path / "bad.ini"
    path.write_text(text)
    return str(path)


GOOD_SOURCE = "[source]\ntype = rdb\nfiles = {dump}\n"

# name: (config text, line of the culprit or None when it is missing, key to be named)
BAD_CONFIGS = {
    "unknown section": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = {addr}\n[sorce]\nx = 1\n",
                        6, "sorce"),
    "unknown key": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = {addr}\nadress = {addr}\n",
                    6, "adress"),
    "bad on_existing": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = {addr}\non_existing = maybe\n",
                        6, "on_existing"),
    "bad db_map": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = {addr}\ndb_map = 1-0\n",
                   6, "db_map"),
    "bad log_level": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = {addr}\n[shake]\nlog_level = loud\n",
                      7, "log_level"),
    "bad size": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = {addr}\n[shake]\n"
                 "restore_max_bytes = lots\n", 7, "restore_max_bytes"),
    "bad source type": ("[source]\ntype = mysql\nfiles = {dump}\n[target]\naddress = {addr}\n", 2, "type"),
    "address without port": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = 127.0.0.1\n",
                             5, "address"),
    "address port out of range": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = 127.0.0.1:99999\n",
                                  5, "address"),
    "address not a number": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = 127.0.0.1:http\n",
                             5, "address"),
    "unset environment variable": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress = {addr}\n"
                                   "password = ${{SHAKE_TEST_UNSET_VARIABLE}}\n", 6, "password"),
    "missing target address": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\non_existing = skip\n",
                               None, "address"),
    "missing target section": ("[source]\ntype = rdb\nfiles = {dump}\n", None, "address"),
    "missing source files": ("[source]\ntype = rdb\n[target]\naddress = {addr}\n", None, "files"),
    "missing source type": ("[source]\nfiles = {dump}\n[target]\naddress = {addr}\n", None, "type"),
    "line without =": ("[source]\ntype = rdb\nfiles = {dump}\n[target]\naddress {addr}\n", 5, None),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_names_file_line_and_key_and_exits_2_without_connecting(tmp_path, listener, shake_bin, name):
    text, line_no, key = BAD_CONFIGS[name]
    dump = tmp_path / "unused.rdb"
    dump.write_bytes(b"")
    path = _conf(tmp_path, text.format(dump=dump, addr=listener.address))
    result = harness.run_shake(path, timeout=30, env={"SHAKE_TEST_UNSET_VARIABLE": None})
    needles = [path + (":%d" % line_no if line_no else "")]
    if key:
        needles.append(key)
    assert_one_error(result, 2, *needles, max_seconds=QUICK)
    assert not listener.connected(), "shake connected to the target despite a config error"
    assert result.summary is None, "a config error must stop before the job starts"


@pytest.mark.parametrize("args", [[], ["-conf"], ["-conf", "a.ini", "extra"], ["--no-such-flag"]],
                         ids=["no args", "conf without file", "extra arg", "unknown flag"])
def test_usage_errors_exit_2(tmp_path, shake_bin, args):
    result = harness.run_shake(None, args=args, timeout=30)
    assert_one_error(result, 2, max_seconds=QUICK)


def test_config_file_that_does_not_exist(tmp_path, shake_bin):
    path = str(tmp_path / "nowhere.ini")
    result = harness.run_shake(path, timeout=30)
    assert_one_error(result, 2, "nowhere.ini", max_seconds=QUICK)
