"""harness.py -- real Redis servers and the shake binary, for the integration tests and the demo.

Owns: starting redis-server processes on 127.0.0.1 (free ports, one temp dir each), building a
3-master cluster with redis-cli, stopping every process it started by pid, writing shake
configs and running shake with a time bound, or in the background (`ShakeProcess`, for live
sync: wait for a log line, SIGTERM, kill -9). Everything it starts is registered and stopped at
exit, so a failing test or an interrupted run leaves no server or shake behind.

Must not: talk to any address but 127.0.0.1, kill anything it did not start, or wait without a
timeout.
"""

import atexit
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import redis

HOST = "127.0.0.1"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"

START_TIMEOUT = 20.0  # seconds for a server to answer PING (includes loading an RDB)
STOP_TIMEOUT = 10.0   # seconds after SIGTERM before SIGKILL
CLUSTER_TIMEOUT = 30.0

_live_servers = []    # every RedisServer started and not yet stopped
_live_shakes = []     # every ShakeProcess started and not yet reaped


class ServerStartError(Exception):
    """redis-server exited or did not answer in time; `log` holds its log file's tail."""

    def __init__(self, message, log=""):
        super().__init__(message + ("\n--- redis log ---\n" + log if log else ""))
        self.log = log


def _die_with_parent():
    # Children get SIGKILL if the test process dies without running atexit (kill -9, OOM).
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port(need_bus=False):
    """A port nobody listens on now (bind port 0). With need_bus, port+10000 is free too
    (the cluster bus); ports above 55535 have no bus port and are refused."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if not need_bus:
            return port
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((HOST, port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def _conf_value(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    value = str(value)
    if value == "" or re.search(r"\s", value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


class RedisServer:
    """One redis-server process on 127.0.0.1, in its own temp dir, config in redis.conf there.

    `config` is a dict of extra directives (value lists give repeated directives). The server
    is stopped by pid; its dir is removed on stop unless keep_dir is set."""

    def __init__(self, config=None, name="redis", keep_dir=False, cluster=False, tls=None):
        self.name = name
        # tls: an object with ca, server_cert, server_key and auth_clients (test_tls.Pki):
        # the server also listens with TLS on tls_port; `port` stays plain for the harness.
        self.tls = tls
        self.tls_port = None
        self.extra = dict(config or {})
        self.cluster = cluster
        self.keep_dir = keep_dir
        self.dir = tempfile.mkdtemp(prefix="shake-it-%s-" % name)
        self.port = None
        self.proc = None
        self._clients = []
        # Credentials the harness's own clients log in with (None: requirepass, if any).
        self.username = None
        self.password = None

    # --- lifecycle -------------------------------------------------------------------

    def _write_conf(self):
        base = {
            "bind": HOST,
            "port": self.port,
            "dir": self.dir,
            "daemonize": "no",
            "logfile": os.path.join(self.dir, "redis.log"),
            "save": "",
            "appendonly": "no",
            "protected-mode": "no",
            "enable-debug-command": "local",
            "dbfilename": "dump.rdb",
        }
        if self.cluster:
            base["cluster-enabled"] = "yes"
            base["cluster-config-file"] = os.path.join(self.dir, "nodes.conf")
            base["cluster-node-timeout"] = 5000
        if self.tls is not None:
            base.update({"tls-port": self.tls_port, "tls-cert-file": self.tls.server_cert,
                         "tls-key-file": self.tls.server_key, "tls-ca-cert-file": self.tls.ca,
                         "tls-auth-clients": "yes" if self.tls.auth_clients else "no"})
            if self.cluster:
                # TLS clients get TLS ports in CLUSTER SLOTS; the bus stays at port+10000.
                base.update({"tls-cluster": "yes", "tls-replication": "yes",
                             "cluster-port": self.port + 10000})
        base.update(self.extra)
        lines = []
        for key, value in base.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            for v in values:
                lines.append("%s %s" % (key, _conf_value(v)))
        path = os.path.join(self.dir, "redis.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def log_tail(self, n=30):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start(self, timeout=START_TIMEOUT):
        """Start on a free port, retrying when another process took the port first."""
        last = None
        for _ in range(5):
            self.port = free_port(need_bus=self.cluster)
            if self.tls is not None:
                self.tls_port = free_port()
            try:
                log = os.path.join(self.dir, "redis.log")
                if os.path.exists(log):
                    os.unlink(log)
                conf = self._write_conf()
                with open(os.path.join(self.dir, "stderr.log"), "wb") as err:
                    self.proc = subprocess.Popen([REDIS_SERVER, conf], stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.DEVNULL, stderr=err,
                                                 preexec_fn=_die_with_parent)
                _live_servers.append(self)
                self._wait_ready(timeout)
                return self
            except ServerStartError as e:
                last = e
                self.stop(remove_dir=False)
                if "Address already in use" not in e.log:
                    break
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)  # the log's tail is in the exception
        raise last

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError("%s exited with %s at start" % (self.name, self.proc.returncode),
                                       self.log_tail())
            c = redis.Redis(host=HOST, port=self.port, socket_timeout=2,
                            socket_connect_timeout=1, password=self.extra.get("requirepass"))
            try:
                if c.ping():
                    return
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                    redis.exceptions.BusyLoadingError, redis.exceptions.ResponseError):
                pass
            finally:
                c.close()
            time.sleep(0.05)
        raise ServerStartError("%s did not answer PING within %ss" % (self.name, timeout), self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, remove_dir=None):
        """SIGTERM, wait, SIGKILL after STOP_TIMEOUT; by pid only."""
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        self._clients = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
            except ProcessLookupError:
                pass
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        if self in _live_servers:
            _live_servers.remove(self)
        if remove_dir is None:
            remove_dir = not self.keep_dir
        if remove_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- access ------------------------------------------------------------------------

    @property
    def address(self):
        return "%s:%d" % (HOST, self.port)

    @property
    def tls_address(self):
        return "%s:%d" % (HOST, self.tls_port)

    def client(self, db=0, password=None, **kw):
        """A bytes-in, bytes-out client (decode_responses off), closed when the server stops."""
        if password is None:
            password = self.password if self.password is not None else self.extra.get("requirepass")
        c = redis.Redis(host=HOST, port=self.port, db=db, username=self.username, password=password,
                        socket_timeout=30, socket_connect_timeout=5, **kw)
        self._clients.append(c)
        return c

    def raw_client(self, db=0, password=None):
        """A client with redis-py's reply parsing switched off: replies as Redis sent them
        (flat lists, bytes), so nothing is reordered or merged (XRANGE fields, HGETALL)."""
        c = self.client(db=db, password=password)
        c.response_callbacks.clear()
        return c

    def save(self):
        """SAVE and return the path of the dump."""
        c = self.client()
        c.save()
        return os.path.join(self.dir, c.config_get("dbfilename")["dbfilename"])

    def dump_copy(self, dest):
        shutil.copyfile(self.save(), dest)
        return dest

    def __repr__(self):
        return "<RedisServer %s %s>" % (self.name, self.address if self.port else "-")


def start_server(config=None, name="redis", **kw):
    return RedisServer(config, name=name, **kw).start()


def start_with_rdb(rdb_path, config=None, name="loader", timeout=START_TIMEOUT):
    """A server that loads a copy of rdb_path at start. Raises ServerStartError when
    redis-server refuses the file (it exits on a bad or unsupported RDB)."""
    server = RedisServer(config, name=name)
    shutil.copyfile(rdb_path, os.path.join(server.dir, "dump.rdb"))
    return server.start(timeout=timeout)


class Cluster:
    """`masters` masters (3 by default), all slots assigned by `redis-cli --cluster create`
    (which splits the slots evenly: 3 and 4 masters give different layouts), and `replicas`
    replicas per master (0 by default: `nodes` are then the masters). With replicas, `nodes`
    holds every node, masters first as created; `masters()` and `replica_of()` ask the nodes
    for their roles, which change after a failover."""

    def __init__(self, config=None, masters=3, tls=None, replicas=0):
        self.config = dict(config or {})
        self.tls = tls
        self.count = masters
        self.replicas = replicas
        self.nodes = []

    def start(self):
        try:
            for i in range(self.count * (1 + self.replicas)):
                self.nodes.append(RedisServer(self.config, name="cluster%d" % i, cluster=True,
                                              tls=self.tls).start())
            cmd = [REDIS_CLI, "--cluster", "create"] + [n.address for n in self.nodes] + ["--cluster-yes"]
            if self.replicas:
                cmd += ["--cluster-replicas", str(self.replicas)]
            pw = self.config.get("requirepass")
            if pw:
                cmd[1:1] = ["-a", pw, "--no-auth-warning"]
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=CLUSTER_TIMEOUT)
            if r.returncode != 0:
                raise RuntimeError("redis-cli --cluster create failed:\n%s%s"
                                   % (r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")))
            self.wait_ok()
            return self
        except BaseException:
            self.stop()
            raise

    def wait_ok(self, timeout=CLUSTER_TIMEOUT):
        """Until every node says cluster_state:ok and all report the same slot map."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                states = [n.client().cluster("info") for n in self.nodes]
                ok = all(s.get("cluster_state") == "ok" and int(s.get("cluster_slots_assigned", 0)) == 16384
                         and int(s.get("cluster_known_nodes", 0)) == len(self.nodes) for s in states)
                if ok:
                    maps = [self._slot_map(n) for n in self.nodes]
                    if all(m == maps[0] for m in maps) and len(maps[0]) == self.count:
                        if self._replicas_linked():
                            return
                        last = "replicas not linked to their masters yet"
                    else:
                        last = "slot maps differ: %r" % maps
                else:
                    last = "states: %r" % states
            except redis.exceptions.RedisError as e:
                last = repr(e)
            time.sleep(0.1)
        raise RuntimeError("cluster not ok within %ss: %s" % (timeout, last))

    @staticmethod
    def _slot_map(node):
        rows = node.client().execute_command("CLUSTER", "SLOTS")
        return sorted((int(r[0]), int(r[1]), int(r[2][1])) for r in rows)

    def healthy(self):
        try:
            return all(n.alive() for n in self.nodes) and all(
                n.client().cluster("info").get("cluster_state") == "ok" for n in self.nodes)
        except redis.exceptions.RedisError:
            return False

    def _replicas_linked(self):
        if not self.replicas:
            return True
        infos = [n.client().info("replication") for n in self.nodes]
        if (sum(i.get("role") == "slave" and i.get("master_link_status") == "up" for i in infos)
                != self.count * self.replicas):
            return False
        # Every node must also know them (gossip): CLUSTER SLOTS lists them with their master.
        return all(len(r) - 3 == self.replicas for n in self.nodes
                   for r in n.client().execute_command("CLUSTER", "SLOTS"))

    def masters(self):
        if not self.replicas:
            return list(self.nodes)
        return [n for n in self.nodes if n.alive() and n.client().info("replication")["role"] == "master"]

    def replica_of(self, master):
        """A live replica of `master` (a RedisServer), or None."""
        for n in self.nodes:
            if n is master or not n.alive():
                continue
            info = n.client().info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == master.port:
                return n
        return None

    @property
    def address(self):
        return self.nodes[0].address

    def flush(self):
        for n in self.masters():
            c = n.client()
            c.flushall()
            c.execute_command("FUNCTION", "FLUSH")

    def node_for_key(self, key):
        """The master serving key, asked from the cluster itself (CLUSTER KEYSLOT + SLOTS)."""
        c = self.nodes[0].client()
        slot = c.execute_command("CLUSTER", "KEYSLOT", key)
        for lo, hi, port in self._slot_map(self.nodes[0]):
            if lo <= slot <= hi:
                return next(n for n in self.nodes if n.port == port)
        raise RuntimeError("slot %d unassigned" % slot)

    def dbsize(self):
        return sum(n.client().dbsize() for n in self.nodes)

    def node_id(self, node):
        return node.client().execute_command("CLUSTER", "MYID").decode()

    def slot_ranges(self):
        """[(first, last, port)] sorted, as the first node sees them."""
        return self._slot_map(self.nodes[0])

    def reshard(self, from_node, to_node, slots, timeout=CLUSTER_TIMEOUT):
        """Move `slots` slots (and their keys) from one master to another with
        `redis-cli --cluster reshard`; returns its output. Raises on failure or timeout."""
        cmd = [REDIS_CLI, "--cluster", "reshard", self.nodes[0].address,
               "--cluster-from", self.node_id(from_node), "--cluster-to", self.node_id(to_node),
               "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "20"]
        pw = self.config.get("requirepass")
        if pw:
            cmd[1:1] = ["-a", pw, "--no-auth-warning"]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        if r.returncode != 0 or "[ERR]" in out:
            raise RuntimeError("redis-cli --cluster reshard failed (exit %s):\n%s" % (r.returncode, out[-3000:]))
        return out

    def stop(self):
        for n in self.nodes:
            n.stop()
        self.nodes = []


def stop_all():
    for p in list(_live_shakes):
        try:
            p.kill()
        except Exception as e:
            print("harness: killing %r: %r" % (p, e), file=sys.stderr)
    for s in list(_live_servers):
        try:
            s.stop()
        except Exception as e:  # keep stopping the others
            print("harness: stopping %r: %r" % (s, e), file=sys.stderr)


atexit.register(stop_all)


# --- shake -------------------------------------------------------------------------------

SUMMARY_RE = re.compile(r"^summary:\s+(.*)$", re.M)


def write_config(path, files, target, on_existing=None, db_map=None, username=None,
                 password=None, shake_dir=None, log_level="info", extra_sections=None,
                 source_type="rdb"):
    """Write a shake INI config and return its path. `db_map` is a dict {src: dst};
    `extra_sections` a dict {section: {key: value}} merged in (keys may override)."""
    sections = {
        "source": {"type": source_type, "files": ", ".join(files)},
        "target": {"address": target},
        "shake": {"dir": shake_dir or os.path.join(os.path.dirname(path), "shake-data"),
                  "log_level": log_level},
    }
    if username is not None:
        sections["target"]["username"] = username
    if password is not None:
        sections["target"]["password"] = password
    if on_existing is not None:
        sections["target"]["on_existing"] = on_existing
    if db_map:
        sections["target"]["db_map"] = ", ".join("%d:%d" % (s, d) for s, d in sorted(db_map.items()))
    return _write_sections(path, sections, extra_sections)


def _write_sections(path, sections, extra_sections=None):
    for sec, kv in (extra_sections or {}).items():
        sections.setdefault(sec, {}).update(kv)
    with open(path, "w") as f:
        for sec, kv in sections.items():
            f.write("[%s]\n" % sec)
            for k, v in kv.items():
                if v is None:  # extra_sections may remove a key
                    continue
                f.write("%s = %s\n" % (k, v))
            f.write("\n")
    return path


def _address_of(endpoint):
    if isinstance(endpoint, str):
        return endpoint
    if isinstance(endpoint, (list, tuple)):
        return ", ".join(_address_of(e) for e in endpoint)
    return endpoint.address


def write_sync_config(path, source, target, db_map=None, on_existing=None, username=None,
                      password=None, target_username=None, target_password=None, shake_dir=None,
                      log_level="info", checkpoint_interval_ms=None, extra_sections=None):
    """A `[source] type = sync` config. `source`: an address, a RedisServer, a Cluster, or a
    list of them (several candidate addresses); `target` likewise. `username`/`password` are
    the source's, `target_*` the target's. `extra_sections` as for write_config."""
    sections = {
        "source": {"type": "sync", "address": _address_of(source)},
        "target": {"address": _address_of(target)},
        "shake": {"dir": shake_dir or os.path.join(os.path.dirname(path), "shake-data"),
                  "log_level": log_level},
    }
    if username is not None:
        sections["source"]["username"] = username
    if password is not None:
        sections["source"]["password"] = password
    if target_username is not None:
        sections["target"]["username"] = target_username
    if target_password is not None:
        sections["target"]["password"] = target_password
    if on_existing is not None:
        sections["target"]["on_existing"] = on_existing
    if db_map:
        sections["target"]["db_map"] = ", ".join("%d:%d" % (s, d) for s, d in sorted(db_map.items()))
    if checkpoint_interval_ms is not None:
        sections["shake"]["checkpoint_interval_ms"] = checkpoint_interval_ms
    return _write_sections(path, sections, extra_sections)


class ShakeResult:
    def __init__(self, args, returncode, stdout, stderr, seconds):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    @property
    def summary(self):
        """The `summary:` line as a dict of str -> int/float/str, or None."""
        m = SUMMARY_RE.findall(self.stdout)
        if not m:
            return None
        out = {}
        for field in m[-1].split():
            if "=" not in field:
                continue
            k, v = field.split("=", 1)
            try:
                out[k] = int(v)
            except ValueError:
                try:
                    out[k] = float(v)
                except ValueError:
                    out[k] = v
        return out

    @property
    def error_lines(self):
        return [l for l in self.stderr.splitlines() if l.startswith("shake: error:")]

    def describe(self):
        return ("shake %s -> exit %s in %.2fs\n--- stdout ---\n%s\n--- stderr ---\n%s"
                % (" ".join(self.args), self.returncode, self.seconds, self.stdout[-4000:], self.stderr[-4000:]))


def shake_bin():
    path = os.environ.get("SHAKE_BIN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "bin", "shake")
    return os.path.abspath(path)


def run_shake(conf_path, timeout=60, env=None, args=None, binary=None):
    """Run `shake -conf conf_path` (or shake with `args`), bounded by `timeout` seconds (a
    hang is killed and reported as returncode None). `env` adds variables (None: unset)."""
    binary = binary or shake_bin()
    argv = [binary, "-conf", conf_path] if args is None else [binary] + list(args)
    full_env = dict(os.environ)
    for k, v in (env or {}).items():  # None removes a variable
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=full_env, preexec_fn=_die_with_parent, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        rc = None
    return ShakeResult(argv, rc, out.decode(errors="replace"), err.decode(errors="replace"),
                       time.monotonic() - t0)


def stream_shake(conf_path, timeout=300, out=sys.stdout, binary=None, prefix="  | "):
    """Run shake with its stdout and stderr copied line by line to `out` (the demo)."""
    binary = binary or shake_bin()
    argv = [binary, "-conf", conf_path]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent)
    lines = []
    deadline = t0 + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    while True:
        chunk = None
        try:
            chunk = proc.stdout.read()
        except BlockingIOError:
            pass
        if chunk:
            buf += chunk
            while b"\n" in buf or b"\r" in buf:
                idx = min(i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0)
                line, buf = buf[:idx].decode(errors="replace"), buf[idx + 1:]
                if line:
                    lines.append(line)
                    out.write(prefix + line + "\n")
                    out.flush()
        elif proc.poll() is not None and not chunk:
            break
        else:
            time.sleep(0.02)
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=10)
            out.write(prefix + "(killed after %ss)\n" % timeout)
            break
    if buf:
        lines.append(buf.decode(errors="replace"))
        out.write(prefix + lines[-1] + "\n")
    text = "\n".join(lines)
    return ShakeResult(argv, proc.returncode, text, text, time.monotonic() - t0)


class ShakeTimeout(AssertionError):
    """A bounded wait on a ShakeProcess ran out; the message holds the log's tail."""


class ShakeProcess:
    """`shake -conf FILE` running in the background (live sync).

    Both pipes are read by threads into `lines` (stdout and stderr merged, in arrival order
    per pipe); `echo` (a file) gets a copy of each line as it arrives. Bounded waits:
    `wait_for` a log line, `wait_exit`; ways to end it: `stop` (SIGTERM, returns the exit
    status), `kill` (SIGKILL). Registered for cleanup at exit; tests should still end it."""

    def __init__(self, conf_path, binary=None, env=None, echo=None, prefix="  | ", name="shake"):
        import threading
        self.binary = binary or shake_bin()
        self.argv = [self.binary, "-conf", conf_path]
        self.conf_path = conf_path
        self.name = name
        self.echo = echo
        self.prefix = prefix
        self.lines = []            # [(monotonic time, "out"|"err", text)]
        self._cond = threading.Condition()
        self._eof = 0
        full_env = dict(os.environ)
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = v
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env,
                                     preexec_fn=_die_with_parent, start_new_session=True)
        _live_shakes.append(self)
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, "out"), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, "err"), daemon=True)]
        for t in self._threads:
            t.start()

    def _pump(self, pipe, which):
        for raw in iter(pipe.readline, b""):
            text = raw.decode(errors="replace").rstrip("\r\n")
            with self._cond:
                self.lines.append((time.monotonic(), which, text))
                self._cond.notify_all()
            if self.echo is not None:
                try:
                    self.echo.write(self.prefix + text + "\n")
                    self.echo.flush()
                except (OSError, ValueError):
                    pass
        pipe.close()
        with self._cond:
            self._eof += 1
            self._cond.notify_all()

    # --- reading the log ---------------------------------------------------------------

    def mark(self):
        """The current number of lines: pass it as `since` to wait for a later line."""
        with self._cond:
            return len(self.lines)

    def text(self, since=0):
        with self._cond:
            return "\n".join(l[2] for l in self.lines[since:])

    @property
    def stderr(self):
        with self._cond:
            return "\n".join(l[2] for l in self.lines if l[1] == "err")

    @property
    def stdout(self):
        with self._cond:
            return "\n".join(l[2] for l in self.lines if l[1] == "out")

    def find(self, pattern, since=0):
        """The first match of `pattern` (a regex string or compiled) in a line from `since`, or None."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        with self._cond:
            for _, _, text in self.lines[since:]:
                m = rx.search(text)
                if m:
                    return m
        return None

    def find_all(self, pattern, since=0):
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        with self._cond:
            return [m for m in (rx.search(t) for _, _, t in self.lines[since:]) if m]

    def tail(self, n=40):
        with self._cond:
            return "\n".join(l[2] for l in self.lines[-n:])

    def describe(self, n=60):
        rc = self.proc.poll()
        return ("%s (%s) %s after %.1fs\n--- last %d lines ---\n%s"
                % (self.name, " ".join(self.argv), "running" if rc is None else "exited %s" % rc,
                   time.monotonic() - self.t0, n, self.tail(n)))

    def wait_for(self, pattern, timeout=20.0, since=0, what=None):
        """Wait until a line from `since` matches `pattern`; return the match. Raises
        ShakeTimeout (with the log) on timeout, or at once when shake exits without it."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        pos = since
        with self._cond:
            while True:
                while pos < len(self.lines):
                    m = rx.search(self.lines[pos][2])
                    if m:
                        return m
                    pos += 1
                if self._eof >= 2 and self.proc.poll() is not None:
                    raise ShakeTimeout("%s exited before logging %s\n%s"
                                       % (self.name, what or repr(rx.pattern), self.describe()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ShakeTimeout("no line matching %s within %.0fs\n%s"
                                       % (what or repr(rx.pattern), timeout, self.describe()))
                self._cond.wait(min(left, 0.2))

    # --- process -----------------------------------------------------------------------

    def alive(self):
        return self.proc.poll() is None

    @property
    def returncode(self):
        return self.proc.poll()

    def _reap(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(timeout=5)
        if self in _live_shakes:
            _live_shakes.remove(self)
        return self.proc.returncode

    def wait_exit(self, timeout=20.0):
        """The exit status, or None when shake is still running after `timeout`."""
        return self._reap(timeout)

    def stop(self, timeout=20.0):
        """SIGTERM (by pid), then wait up to `timeout`. Returns the exit status; a shake
        that does not exit in time is killed with SIGKILL and ShakeTimeout is raised."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        rc = self._reap(timeout)
        if rc is None:
            self.kill()
            raise ShakeTimeout("%s did not exit within %.0fs of SIGTERM\n%s" % (self.name, timeout, self.describe()))
        return rc

    def kill(self):
        """SIGKILL (by pid) and reap."""
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        self._reap(STOP_TIMEOUT)
        return self.proc.returncode

    def result(self):
        """A ShakeResult of the run so far (for assert_one_error / check_ok)."""
        return ShakeResult(self.argv, self.proc.poll(), self.stdout, self.stderr, time.monotonic() - self.t0)

    def __repr__(self):
        return "<ShakeProcess %s pid %s>" % (self.name, self.proc.pid)


def wait_until(predicate, timeout, interval=0.1, what="condition", shake=None):
    """Poll predicate() until it returns a true value (returned); AssertionError on timeout.
    Exceptions from predicate count as "not yet" (the last one is reported). With `shake` (a
    ShakeProcess), give up as soon as it exits, showing its log."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if shake is not None and not shake.alive():
            raise AssertionError("%s: shake exited (status %s) first\n%s" % (what, shake.returncode, shake.describe(20)))
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 -- reported below
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not reached within %.0fs%s"
                                 % (what, timeout, " (last error: %r)" % (last,) if last else ""))
        time.sleep(interval)


def info_section(server, section):
    """INFO <section> of a RedisServer as a dict (redis-py's parsing)."""
    return server.client().info(section)


def sync_counters(server):
    """(sync_full, sync_partial_ok) from the server's INFO stats."""
    s = server.client().info("stats")
    return int(s["sync_full"]), int(s["sync_partial_ok"])


def restore(workdir, files, target, timeout=120, env=None, conf_name="shake.ini", **conf):
    """Write a config for restoring `files` into `target` (an address, a RedisServer or a
    Cluster) in `workdir`, run shake on it and return the ShakeResult."""
    if not isinstance(target, str):
        target = target.address
    if isinstance(files, str):
        files = [files]
    path = write_config(os.path.join(str(workdir), conf_name), [str(f) for f in files], target,
                        shake_dir=os.path.join(str(workdir), "shake-data"), **conf)
    return run_shake(path, timeout=timeout, env=env)


# --- checks shared by the tests ------------------------------------------------------------

NOISE = ("Traceback", "Segmentation fault", "AddressSanitizer", "LeakSanitizer", "runtime error:",
         "Aborted", "core dumped", "Assertion", "double free", "stack smashing")


def check_ok(result):
    """Problems with a run that should have succeeded (empty list: fine)."""
    problems = []
    if result.returncode != 0:
        problems.append("exit status %s, expected 0" % result.returncode)
    if result.error_lines:
        problems.append("error lines: %r" % result.error_lines)
    s = result.summary
    if s is None:
        problems.append("no summary: line on stdout")
    else:
        if s.get("status") != "ok":
            problems.append("summary status %r" % s.get("status"))
        if s.get("errors") != 0:
            problems.append("summary errors=%r" % s.get("errors"))
    return problems


def assert_ok(result):
    problems = check_ok(result)
    assert not problems, "; ".join(problems) + "\n" + result.describe()


def assert_one_error(result, returncode, *needles, max_seconds=None):
    """Exit `returncode` (an int or a tuple of accepted ints), exactly one line on stderr
    starting "shake: error:", containing every needle (str, or a compiled regex), no
    crash noise; returns the error line."""
    accepted = returncode if isinstance(returncode, tuple) else (returncode,)
    assert result.returncode is not None, "shake hung (killed after the time bound)\n" + result.describe()
    assert result.returncode in accepted, "exit %s, expected %s\n%s" % (result.returncode, accepted, result.describe())
    lines = result.error_lines
    assert len(lines) == 1, "expected exactly one 'shake: error:' line, got %d\n%s" % (len(lines), result.describe())
    line = lines[0]
    for needle in needles:
        if hasattr(needle, "search"):
            assert needle.search(line), "error line does not match %r: %s" % (needle.pattern, line)
        else:
            assert needle in line, "error line does not mention %r: %s" % (needle, line)
    for noise in NOISE:
        assert noise not in result.stderr, "crash noise %r on stderr\n%s" % (noise, result.describe())
    if max_seconds is not None:
        assert result.seconds < max_seconds, "took %.1fs (bound %ss)" % (result.seconds, max_seconds)
    return line
