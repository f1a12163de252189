"""TLS and ACL against real servers: redis-server --tls-port with a CA and certificates made
here by `openssl`. A TLS source into a TLS cluster target (restore and live sync), mutual TLS,
a wrong CA (one `shake: error:` line naming the node, exit 1), least-privilege ACL users on the
source (standalone and cluster) and the target, and passwords that never reach shake's output
even at log_level = debug."""

import os
import stat
import subprocess

import pytest

import harness
from harness import assert_ok, assert_one_error

FAST_SYNC = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": 0}
PASSWORD = "S3cret-pw-4f9d1c"  # must never appear in shake's output
QUICK = 15  # seconds: a refused handshake must end the run at once


class Pki:
    """A CA, a server certificate for IP:127.0.0.1 / DNS:localhost and a client certificate
    signed by it, and an unrelated CA; `auth_clients` is what servers started with it demand."""

    def __init__(self, directory, auth_clients=False):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.auth_clients = auth_clients
        p = lambda name: os.path.join(self.dir, name)  # noqa: E731
        self.ca, self.other_ca = p("ca.crt"), p("other-ca.crt")
        self.server_cert, self.server_key = p("server.crt"), p("server.key")
        self.client_cert, self.client_key = p("client.crt"), p("client.key")
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        with open(p("server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        steps = [
            ["req", "-x509", "-new"] + key + ["-keyout", p("ca.key"), "-out", self.ca, "-days", "2",
                                              "-subj", "/CN=shake-test-ca"],
            ["req", "-x509", "-new"] + key + ["-keyout", p("other-ca.key"), "-out", self.other_ca,
                                              "-days", "2", "-subj", "/CN=other-ca"],
            ["req", "-new"] + key + ["-keyout", self.server_key, "-out", p("server.csr"),
                                     "-subj", "/CN=shake-test-server"],
            ["x509", "-req", "-in", p("server.csr"), "-CA", self.ca, "-CAkey", p("ca.key"),
             "-CAcreateserial", "-out", self.server_cert, "-days", "2", "-extfile", p("server.ext")],
            ["req", "-new"] + key + ["-keyout", self.client_key, "-out", p("client.csr"),
                                     "-subj", "/CN=shake-test-client"],
            ["x509", "-req", "-in", p("client.csr"), "-CA", self.ca, "-CAkey", p("ca.key"),
             "-CAcreateserial", "-out", self.client_cert, "-days", "2"],
        ]
        for step in steps:
            subprocess.run(["openssl"] + step, check=True, capture_output=True, timeout=30)

    def keys(self, ca=None, client=False, **more):
        """The [source]/[target] tls_* keys for a shake config."""
        kv = {"tls": "yes", "tls_ca_file": ca or self.ca}
        if client:
            kv.update({"tls_cert_file": self.client_cert, "tls_key_file": self.client_key})
        kv.update(more)
        return kv


@pytest.fixture
def pki(tmp_path):
    return Pki(tmp_path / "pki")


@pytest.fixture
def tls_servers():
    """Start TLS servers and clusters (plain `port` for the harness, TLS on `tls_port`)."""
    started = []

    def start(pki, config=None, name="tls", cluster_masters=0):
        if cluster_masters:
            c = harness.Cluster(config, masters=cluster_masters, tls=pki).start()
        else:
            c = harness.RedisServer(config, name=name, tls=pki).start()
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def _fill(server, prefix, n, db=0):
    c = server.client(db=db)
    pipe = c.pipeline(transaction=False)
    for i in range(n):
        pipe.set("%s:%d" % (prefix, i), "v%d" % i)
    pipe.hset("%s:hash" % prefix, mapping={"a": "1", "b": "2"})
    pipe.execute()


def _cluster_has(cluster, keys):
    for key in keys:
        if cluster.node_for_key(key).client().exists(key) != 1:
            return False
    return True


def _sync(tmp_path, source_address, target_address, source_tls=None, target_tls=None, **conf):
    extra = {}
    if source_tls:
        extra["source"] = source_tls
    if target_tls:
        extra["target"] = target_tls
    for section, kv in conf.pop("extra_sections", {}).items():
        extra.setdefault(section, {}).update(kv)
    path = harness.write_sync_config(str(tmp_path / "sync.ini"), source_address, target_address,
                                     on_existing="replace", extra_sections=extra, **conf)
    return path


def _live_sync_checks(tmp_path, source, target_check, conf_path, prefix="live"):
    """Start shake, wait for the stream, write on the source, see it on the target."""
    shake = harness.ShakeProcess(conf_path)
    try:
        shake.wait_for(r"streaming commands", timeout=60)
        c = source.client()
        for i in range(50):
            c.set("%s:%d" % (prefix, i), "x%d" % i)
        harness.wait_until(lambda: target_check(["%s:%d" % (prefix, i) for i in range(50)]),
                           timeout=30, what="streamed keys on the target")
        rc = shake.stop()
        assert rc == 0, shake.describe()
    finally:
        if shake.alive():
            shake.kill()
    return shake


# --- TLS ----------------------------------------------------------------------------------

def test_restore_into_a_tls_cluster_target(pki, tls_servers, servers, tmp_path, shake_bin):
    source = servers(name="source")
    _fill(source, "k", 300)
    dump = source.dump_copy(str(tmp_path / "dump.rdb"))
    target = tls_servers(pki, cluster_masters=3)
    result = harness.restore(tmp_path, [dump], target.nodes[0].tls_address,
                             extra_sections={"target": pki.keys()})
    assert_ok(result)
    assert target.dbsize() == 301
    assert _cluster_has(target, ["k:0", "k:299", "k:hash"])


def test_live_sync_from_a_tls_source_into_a_tls_cluster_target(pki, tls_servers, tmp_path,
                                                               shake_bin):
    source = tls_servers(pki, FAST_SYNC, name="source")
    _fill(source, "k", 500)
    target = tls_servers(pki, cluster_masters=3)
    path = _sync(tmp_path, source.tls_address, target.nodes[0].tls_address,
                 source_tls=pki.keys(), target_tls=pki.keys())
    _live_sync_checks(tmp_path, source, lambda keys: _cluster_has(target, keys), path)
    assert _cluster_has(target, ["k:0", "k:499", "k:hash"])
    assert target.dbsize() == 551


def test_mutual_tls_on_both_sides(tmp_path, tls_servers, shake_bin):
    mutual = Pki(tmp_path / "pki", auth_clients=True)
    source = tls_servers(mutual, FAST_SYNC, name="source")
    _fill(source, "m", 100)
    target = tls_servers(mutual, name="target")
    path = _sync(tmp_path, source.tls_address, target.tls_address,
                 source_tls=mutual.keys(client=True), target_tls=mutual.keys(client=True))
    _live_sync_checks(tmp_path, source, lambda keys: target.client().exists(*keys) == len(keys),
                      path)
    assert target.client().dbsize() == 151


def test_mutual_tls_without_a_client_certificate_is_one_error(tmp_path, tls_servers, servers,
                                                              shake_bin):
    mutual = Pki(tmp_path / "pki", auth_clients=True)
    target = tls_servers(mutual, name="target")
    source = servers(name="source")
    _fill(source, "m", 10)
    dump = source.dump_copy(str(tmp_path / "dump.rdb"))
    result = harness.restore(tmp_path, [dump], target.tls_address,
                             extra_sections={"target": mutual.keys()}, timeout=60)
    assert_one_error(result, 1, "target %s" % target.tls_address, "TLS",
                     "certificate required", max_seconds=QUICK)


def test_a_wrong_ca_on_the_source_is_one_clear_error(pki, tls_servers, servers, tmp_path,
                                                     shake_bin):
    source = tls_servers(pki, FAST_SYNC, name="source")
    target = servers(name="target")
    path = _sync(tmp_path, source.tls_address, target, source_tls=pki.keys(ca=pki.other_ca))
    result = harness.run_shake(path, timeout=60)
    line = assert_one_error(result, 1, "source %s: TLS: certificate verify failed" % source.tls_address,
                            max_seconds=QUICK)
    # Redis sends its CA along with its certificate: OpenSSL's verdict names that.
    assert "self-signed certificate in certificate chain" in line, line


def test_a_wrong_ca_on_the_target_is_one_clear_error(pki, tls_servers, servers, tmp_path,
                                                     shake_bin):
    target = tls_servers(pki, name="target")
    source = servers(name="source")
    _fill(source, "k", 10)
    dump = source.dump_copy(str(tmp_path / "dump.rdb"))
    result = harness.restore(tmp_path, [dump], target.tls_address,
                             extra_sections={"target": pki.keys(ca=pki.other_ca)}, timeout=60)
    assert_one_error(result, 1, "target %s: TLS: certificate verify failed" % target.tls_address,
                     max_seconds=QUICK)


def test_a_host_name_the_certificate_lacks_is_refused(pki, tls_servers, servers, tmp_path,
                                                      shake_bin):
    target = tls_servers(pki, name="target")
    source = servers(name="source")
    dump = source.dump_copy(str(tmp_path / "dump.rdb"))
    result = harness.restore(tmp_path, [dump], target.tls_address, timeout=60,
                             extra_sections={"target": pki.keys(tls_server_name="db.example.com")})
    assert_one_error(result, 1, "certificate verify failed: hostname mismatch", max_seconds=QUICK)


def test_insecure_mode_connects_and_warns_once(pki, tls_servers, servers, tmp_path, shake_bin):
    target = tls_servers(pki, name="target")
    source = servers(name="source")
    _fill(source, "k", 20)
    dump = source.dump_copy(str(tmp_path / "dump.rdb"))
    result = harness.restore(tmp_path, [dump], target.tls_address, extra_sections={
        "target": pki.keys(ca=pki.other_ca, tls_insecure="yes")})
    assert_ok(result)
    assert target.client().dbsize() == 21
    warnings = [l for l in result.stderr.splitlines() if "tls_insecure" in l]
    assert len(warnings) == 1, result.describe()
    assert "NOT verified" in warnings[0]


def test_a_missing_ca_file_is_a_config_error(pki, servers, tmp_path, shake_bin):
    target = servers(name="target")
    result = harness.restore(tmp_path, [str(tmp_path / "none.rdb")], target, extra_sections={
        "target": pki.keys(ca=str(tmp_path / "missing-ca.crt"))})
    assert_one_error(result, 2, "[target] tls_ca_file", "missing-ca.crt",
                     "No such file or directory", max_seconds=QUICK)


# --- ACL and secrets ----------------------------------------------------------------------

def _acl_user(server, name, *rules):
    server.client().execute_command("ACL", "SETUSER", name, "reset", "on", ">" + PASSWORD, *rules)


def _assert_no_password(shake_or_result):
    text = shake_or_result.stdout + "\n" + shake_or_result.stderr
    assert PASSWORD not in text, "the password leaked into shake's output"


def test_a_least_privilege_source_user_replicates_and_the_password_stays_secret(
        servers, tmp_path, shake_bin):
    source = servers(FAST_SYNC, name="source")
    _fill(source, "a", 200)
    _acl_user(source, "replicator", "+psync", "+replconf", "+ping")
    target = servers(name="target")
    path = _sync(tmp_path, source, target, username="replicator", password=PASSWORD,
                 log_level="debug")
    os.chmod(path, 0o644)
    shake = _live_sync_checks(tmp_path, source,
                              lambda keys: target.client().exists(*keys) == len(keys), path)
    assert target.client().dbsize() == 251
    _assert_no_password(shake)
    # The file holds the password in clear and others may read it: one warning.
    warnings = [l for l in shake.stderr.splitlines() if "readable by" in l]
    assert len(warnings) == 1 and "chmod 600" in warnings[0], shake.describe()


def test_a_private_config_or_a_password_from_the_environment_gets_no_warning(
        servers, tmp_path, shake_bin):
    source = servers(name="source")
    target = servers(name="target")
    dump = source.dump_copy(str(tmp_path / "dump.rdb"))
    path = harness.write_config(str(tmp_path / "env.ini"), [dump], target.address,
                                password="${SHAKE_TEST_PW}", log_level="debug")
    os.chmod(path, 0o644)
    result = harness.run_shake(path, env={"SHAKE_TEST_PW": "unused"})
    assert "readable by" not in result.stderr, result.describe()
    path = harness.write_config(str(tmp_path / "private.ini"), [dump], target.address,
                                log_level="debug", extra_sections={"target": {"password": "x"}})
    os.chmod(path, 0o600)
    result = harness.run_shake(path)
    assert "readable by" not in result.stderr, result.describe()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_least_privilege_user_on_a_tls_cluster_source(pki, tls_servers, servers, tmp_path,
                                                        shake_bin):
    source = tls_servers(pki, FAST_SYNC, cluster_masters=3)
    for i in range(90):
        source.node_for_key("c:%d" % i).client().set("c:%d" % i, "v")
    for node in source.nodes:
        _acl_user(node, "replicator", "+psync", "+replconf", "+ping", "+cluster|slots")
    target = servers(name="target")
    path = _sync(tmp_path, source.nodes[0].tls_address, target, username="replicator",
                 password=PASSWORD, log_level="debug", source_tls=pki.keys())
    shake = harness.ShakeProcess(path)
    try:
        shake.wait_for(r"source: cluster, 3 shards", timeout=30)
        harness.wait_until(lambda: len(shake.find_all(r"streaming commands")) == 3, timeout=60,
                           what="three shards streaming")
        harness.wait_until(lambda: target.client().dbsize() == 90, timeout=30,
                           what="every shard's keys on the target")
        assert shake.stop() == 0, shake.describe()
    finally:
        if shake.alive():
            shake.kill()
    _assert_no_password(shake)


def test_a_cluster_source_user_without_cluster_slots_is_refused_by_name(servers, tmp_path,
                                                                         shake_bin, cluster):
    for node in cluster.nodes:
        _acl_user(node, "replicator", "+psync", "+replconf", "+ping")
    target = servers(name="target")
    try:
        path = _sync(tmp_path, cluster, target, username="replicator", password=PASSWORD)
        result = harness.run_shake(path, timeout=60)
    finally:
        for node in cluster.nodes:
            node.client().execute_command("ACL", "DELUSER", "replicator")
    assert_one_error(result, 1, "source %s" % cluster.nodes[0].address, "CLUSTER SLOTS refused",
                     "NOPERM", "cluster|slots", max_seconds=QUICK)
    _assert_no_password(result)


def test_a_target_user_without_restore_gets_errors_naming_it(servers, tmp_path, shake_bin):
    source = servers(name="source")
    _fill(source, "r", 5)
    dump = source.dump_copy(str(tmp_path / "dump.rdb"))
    target = servers(name="target")
    _acl_user(target, "loader", "~*", "+@all", "-restore")
    result = harness.restore(tmp_path, [dump], target, username="loader", password=PASSWORD,
                             log_level="debug")
    assert result.returncode == 1, result.describe()
    refused = [l for l in result.stderr.splitlines() if "NOPERM" in l]
    assert refused and all("'restore'" in l for l in refused), result.describe()
    _assert_no_password(result)


# The least-privilege target rules docs/security.md gives, checked as written.
RESTORE_RULES = "+restore +@write +info +cluster|slots +asking +config|get +command +select +function|load ~*"
SYNC_RULES = ("+@write +@keyspace +@read +info +cluster|slots +config|get +command +select +asking "
              "+function|load +multi +exec ~*")


def test_the_documented_target_rules_are_enough_for_a_restore(servers, tmp_path, shake_bin):
    source = servers(name="source")
    _fill(source, "d", 50)
    source.client(db=1).set("other-db", "1")
    dump = source.dump_copy(str(tmp_path / "dump.rdb"))
    target = servers(name="target")
    _acl_user(target, "loader", *RESTORE_RULES.split())
    result = harness.restore(tmp_path, [dump], target, username="loader", password=PASSWORD)
    assert_ok(result)
    assert target.client().dbsize() == 51 and target.client(db=1).dbsize() == 1
    _assert_no_password(result)


def test_the_documented_target_rules_are_enough_for_a_sync(servers, tmp_path, shake_bin):
    source = servers(FAST_SYNC, name="source")
    _fill(source, "d", 50)
    target = servers(name="target")
    _acl_user(target, "loader", *SYNC_RULES.split())
    path = _sync(tmp_path, source, target, target_username="loader", target_password=PASSWORD)
    shake = _live_sync_checks(tmp_path, source,
                              lambda keys: target.client().exists(*keys) == len(keys), path)
    assert target.client().dbsize() == 101
    _assert_no_password(shake)
