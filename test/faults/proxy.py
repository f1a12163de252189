"""proxy.py -- a TCP proxy on 127.0.0.1 that the fault suite uses to break the network between
shake and a target.

Owns: a listening socket on a free loopback port, one pair of pump threads per accepted
connection forwarding bytes to `upstream` (host, port), and the two network faults:

  cut(down_s)    every connection is reset (SO_LINGER 0: RST, like a link that died) and, for
                 `down_s` seconds, new connections are accepted and reset at once;
  stall(s)       nothing is forwarded in either direction for `s` seconds (bytes stay in the
                 kernel's buffers, the connections stay open: a link that drops packets
                 without telling anyone), then forwarding resumes.

Why a proxy and not network namespaces: loopback only, no root, no change to the machine's
interfaces or routes, and it works in any CI container (see docs/faults.md).

Must not: listen on anything but 127.0.0.1, or leave a thread or socket behind after close().
"""

import select
import socket
import struct
import threading
import time

HOST = "127.0.0.1"


class Proxy:
    def __init__(self, upstream_port, upstream_host=HOST):
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs = []             # [(client socket, upstream socket)]
        self._threads = []
        self._closed = threading.Event()
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._down_until = 0.0
        self.accepted = 0
        self.resets = 0
        t = threading.Thread(target=self._accept_loop, daemon=True, name="proxy-accept")
        t.start()
        self._threads.append(t)

    @property
    def address(self):
        return "%s:%d" % (HOST, self.port)

    # --- faults ---------------------------------------------------------------------

    def cut(self, down_s=0.0):
        """Reset every connection; refuse (reset) new ones for `down_s` seconds."""
        with self._lock:
            self._down_until = time.monotonic() + down_s
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _reset(a)
            _reset(b)
        self.resets += len(pairs)
        return len(pairs)

    def stall(self, seconds):
        """Forward nothing for `seconds` (blocks the caller that long), then resume."""
        self._forwarding.clear()
        try:
            time.sleep(seconds)
        finally:
            self._forwarding.set()

    def connections(self):
        with self._lock:
            return len(self._pairs)

    # --- plumbing -------------------------------------------------------------------

    def _accept_loop(self):
        while not self._closed.is_set():
            r, _, _ = select.select([self.listener], [], [], 0.1)
            if not r:
                continue
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            if time.monotonic() < self._down_until:
                _reset(client)
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            up.settimeout(None)
            with self._lock:
                self._pairs.append((client, up))
                self.accepted += 1
            for src, dst in ((client, up), (up, client)):
                t = threading.Thread(target=self._pump, args=(src, dst), daemon=True, name="proxy-pump")
                t.start()
                self._threads.append(t)

    def _pump(self, src, dst):
        try:
            while not self._closed.is_set():
                if not self._forwarding.wait(0.1):
                    continue
                r, _, _ = select.select([src], [], [], 0.1)
                if not r or not self._forwarding.is_set():
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._pairs = [p for p in self._pairs if src not in p]
            for s in (src, dst):
                _close(s)

    def close(self):
        self._closed.set()
        self.cut()
        _close(self.listener)
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []


def _reset(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(s)


def _close(s):
    try:
        s.close()
    except OSError:
        pass
