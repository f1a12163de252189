"""proc.py -- run processes with exact wall time, CPU time and peak RSS, always time-bounded.

Owns: starting a process (or several at once), reaping it with wait4() in a helper thread so
the wall time ends the moment the process exits (no polling granularity), and returning its
rusage: ru_maxrss is the same "Maximum resident set size" /usr/bin/time -v prints. A process
that outlives its time bound is killed by pid (its own process group) and reported as timed out.

This is the thin wrapper the benchmark needs on top of test/integration/harness.py, whose
run_shake() waits with communicate() and so gives neither rusage nor a precise end time.

Must not: wait without a bound, kill anything it did not start, run anything from a thread
other than the main one (the harness's PR_SET_PDEATHSIG is tied to the spawning thread).
"""

import os
import signal
import subprocess
import threading
import time


class Run:
    """One finished process: argv, returncode (None: killed after the time bound), wall
    seconds, user+system CPU seconds, peak RSS in bytes, and the paths of its output."""

    def __init__(self, argv, stdout_path, stderr_path):
        self.argv = argv
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.returncode = None
        self.seconds = None
        self.cpu = None
        self.maxrss = None
        self.timed_out = False

    def stdout(self, limit=None):
        return _read(self.stdout_path, limit)

    def stderr(self, limit=None):
        return _read(self.stderr_path, limit)


def _read(path, limit):
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    if limit is not None:
        data = data[-limit:]
    return data.decode(errors="replace")


def run_many(specs, timeout, preexec_fn=None):
    """Start every spec at once and wait for all of them, at most `timeout` seconds in total.

    A spec is a dict: argv, and optionally stdin (a path), stdout and stderr (paths), env.
    Returns (list of Run, wall seconds from the first start to the last exit)."""
    runs, procs, opened = [], [], []
    done = threading.Event()
    remaining = [len(specs)]
    lock = threading.Lock()
    t_end = [None]

    def reaper(proc, run, t0):
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        except ChildProcessError:
            status, ru = 0, None
        t = time.monotonic()
        run.seconds = t - t0
        if os.WIFEXITED(status):
            run.returncode = os.WEXITSTATUS(status)
        elif os.WIFSIGNALED(status):
            run.returncode = -os.WTERMSIG(status)
        proc.returncode = run.returncode if run.returncode is not None else -1
        if ru is not None:
            run.cpu = ru.ru_utime + ru.ru_stime
            run.maxrss = ru.ru_maxrss * 1024  # Linux reports KiB
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                t_end[0] = t
                done.set()

    t_start = time.monotonic()
    threads = []
    try:
        for spec in specs:
            fin = open(spec["stdin"], "rb") if spec.get("stdin") else subprocess.DEVNULL
            fout = open(spec["stdout"], "wb") if spec.get("stdout") else subprocess.DEVNULL
            ferr = open(spec["stderr"], "wb") if spec.get("stderr") else subprocess.DEVNULL
            opened += [f for f in (fin, fout, ferr) if f is not subprocess.DEVNULL]
            run = Run(spec["argv"], spec.get("stdout"), spec.get("stderr"))
            t0 = time.monotonic()
            proc = subprocess.Popen(spec["argv"], stdin=fin, stdout=fout, stderr=ferr,
                                    env=spec.get("env"), preexec_fn=preexec_fn,
                                    start_new_session=True)
            runs.append(run)
            procs.append(proc)
            th = threading.Thread(target=reaper, args=(proc, run, t0), daemon=True)
            th.start()
            threads.append(th)
    finally:
        for f in opened:
            f.close()
    if not done.wait(timeout):
        for proc, run in zip(procs, runs):
            if run.seconds is None:
                run.timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what we started
                except ProcessLookupError:
                    pass
        done.wait(30)
        for run in runs:
            if run.timed_out:
                run.returncode = None
    for th in threads:
        th.join(5)
    wall = (t_end[0] or time.monotonic()) - t_start
    return runs, wall


def run_one(argv, timeout, stdout=None, stderr=None, stdin=None, env=None, preexec_fn=None):
    runs, _ = run_many([{"argv": argv, "stdout": stdout, "stderr": stderr, "stdin": stdin, "env": env}],
                       timeout, preexec_fn=preexec_fn)
    return runs[0]
