"""Live sync into a target cluster whose master dies and whose replica is promoted.

A target master can acknowledge a write and die before its replica has it: the promoted
replica then lacks the write although shake was told it was done. shake must not lose it:
on a master with replicas it holds acknowledged writes until `WAIT` says a replica has them,
and resends what was not confirmed (and what had no reply) to the slot's new owner.

The writes come from SeqWriter (SET seq:N, RPUSH log N, INCR counter) with its log and
counter keys on the master that dies. Loss must be 0: every SET, every RPUSH element, a
counter not below the source's. A resent RPUSH or INCR applies twice on the target: such
duplicates are allowed, counted and reported (record_property and the test's output).
"""

import collections
import os
import signal
import time

import pytest

import harness
from harness import wait_until
from livesync import (LOG_WAIT, RDB_RECEIVED, SeqWriter, assert_stops_cleanly, client_for,
                      source_config)

NODE_TIMEOUT_MS = 2000
CONVERGE_WAIT = 60


@pytest.fixture
def replicated_cluster():
    c = harness.Cluster({"cluster-node-timeout": NODE_TIMEOUT_MS}, masters=3, replicas=1).start()
    yield c
    for n in c.nodes:  # a test may leave a node stopped with SIGSTOP
        if n.alive():
            try:
                os.kill(n.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    c.stop()


def name_on(cluster, node):
    """A SeqWriter name whose log and counter keys are both served by `node`."""
    c = node.client()
    slots = [(lo, hi) for lo, hi, port in cluster._slot_map(node) if port == node.port]
    for i in range(10000):
        name = "w%d" % i
        if all(any(lo <= c.execute_command("CLUSTER", "KEYSLOT", "%s:%s" % (name, what)) <= hi
                   for lo, hi in slots) for what in ("log", "counter")):
            return name
    raise RuntimeError("no name found for %s" % node)


def losses_and_duplicates(writer, target):
    """([problems], rpush duplicates, incr duplicates): every write of `writer` must be on
    `target` at least once, the log in source order once duplicates are removed."""
    c = client_for(target)
    n = writer.count
    problems = []
    values = [c.get(writer.key(b"seq", i)) for i in range(n)]
    missing = [i for i, v in enumerate(values) if v != b"%d" % i]
    if missing:
        problems.append("%d of %d seq keys missing or wrong, first %r" % (len(missing), n, missing[:10]))
    log = c.lrange(writer.key(b"log"), 0, -1)
    counts = collections.Counter(log)
    lost = [i for i in range(n) if counts[b"%d" % i] == 0]
    if lost:
        problems.append("%d of %d RPUSH elements lost, first %r" % (len(lost), n, lost[:10]))
    strange = [v for v in counts if not v.isdigit() or int(v) >= n]
    if strange:
        problems.append("log elements never written: %r" % strange[:10])
    first_seen = list(dict.fromkeys(log))
    if not lost and first_seen != [b"%d" % i for i in range(n)]:
        problems.append("log out of order (first occurrences): %r" % first_seen[:20])
    counter = int(c.get(writer.key(b"counter")) or 0)
    if counter < n:
        problems.append("counter %d below the source's %d: INCRs lost" % (counter, n))
    return problems, len(log) - n, counter - n


def wait_no_loss(writer, target, shake):
    deadline = time.monotonic() + CONVERGE_WAIT
    while True:
        try:
            problems, rpush_dups, incr_dups = losses_and_duplicates(writer, target)
        except Exception as e:  # noqa: BLE001 -- a node still settling: try again
            problems, rpush_dups, incr_dups = ["reading the target failed: %r" % e], 0, 0
        if not problems:
            return rpush_dups, incr_dups
        if not shake.alive() or time.monotonic() > deadline:
            raise AssertionError("writes lost on the target after its failover:\n  %s\n%s"
                                 % ("\n  ".join(problems), shake.describe(40)))
        time.sleep(0.3)


def wait_promoted(cluster, replica, dead):
    wait_until(lambda: replica.client().info("replication")["role"] == "master", 30,
               what="the replica %s promoted" % replica.address)
    live = [n for n in cluster.nodes if n is not dead and n.alive()]
    wait_until(lambda: all(n.client().cluster("info").get("cluster_state") == "ok" for n in live)
               and all(any(port == replica.port for _, _, port in cluster._slot_map(n)) for n in live),
               30, what="every live node serving the cluster with %s as a master" % replica.address)
    cluster.nodes = [n for n in cluster.nodes if n is not dead] + [dead]  # nodes[0] stays alive


def start_cut_off_sync(servers, shakes, target, conf=None):
    """shake syncing a standalone source into `target`, a SeqWriter whose log and counter
    live on the victim (a master that is not nodes[0]: the address shake is given stays up)
    and another writing keys over every slot."""
    victim = target.masters()[1]
    replica = target.replica_of(victim)
    assert replica is not None, "no replica of %s" % victim
    source = servers(source_config(), name="source")
    p = shakes(shakes.config(source, target, **(conf or {})))
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    writer = SeqWriter(source, name_on(target, victim)).start(max_seconds=120)
    spread = SeqWriter(source, "spread", idempotent_only=True).start(max_seconds=120)
    writer.wait_count(300)
    writer.wait_applied(target, 300, shake=p)
    return victim, replica, writer, spread, p


def cut_off_then_kill(target, victim, replica, writer, p):
    """Stop the victim's replica and drop its link, let the victim acknowledge more writes,
    kill -9 the victim and make the replica take over. Returns how many RPUSHes the victim
    acknowledged after the cut: they exist nowhere else."""
    on_victim = victim.client()
    os.kill(replica.proc.pid, signal.SIGSTOP)
    on_victim.execute_command("CLIENT", "KILL", "TYPE", "replica")
    cut_at = on_victim.llen(writer.key(b"log"))
    wait_until(lambda: on_victim.llen(writer.key(b"log")) >= cut_at + 150, 10, shake=p,
               what="writes acknowledged by %s after its replica was cut off" % victim.address)
    killed_at = on_victim.llen(writer.key(b"log"))
    victim.proc.kill()
    victim.proc.wait(timeout=10)
    os.kill(replica.proc.pid, signal.SIGCONT)
    replica.client().execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
    wait_promoted(target, replica, victim)
    return killed_at - cut_at


def test_target_master_killed_before_its_replica_has_the_writes_loses_nothing(
        servers, shakes, replicated_cluster, record_property):
    """The replica is cut off (stopped, its link dropped), so writes the master acknowledges
    cannot reach it; then the master is killed and the replica takes over. Those writes must
    still end up on the target: shake held them (no WAIT confirmed them) and resends them."""
    target = replicated_cluster
    victim, replica, writer, spread, p = start_cut_off_sync(servers, shakes, target)
    since = p.mark()
    unreplicated = cut_off_then_kill(target, victim, replica, writer, p)
    writer.wait_count(writer.count + 300)
    writer.stop()
    spread.stop()
    rpush_dups, incr_dups = wait_no_loss(writer, target, p)
    spread.check(target)
    record_property("rpush_duplicates", rpush_dups)
    record_property("incr_duplicates", incr_dups)
    print("\ntarget failover: %d writes, %d acknowledged by the dead master and never replicated; "
          "duplicates after resend: RPUSH %d, INCR %d" % (writer.count, unreplicated, rpush_dups, incr_dups))
    print("shake's log during the failover:\n  " + p.text(since).replace("\n", "\n  "))
    m = p.find(r"target 127\.0\.0\.1:%d: resending (\d+) commands to the new master of their slots "
               r"\(127\.0\.0\.1:%d\), (\d+) of them answered by" % (victim.port, replica.port), since)
    assert m, "no resend to the promoted replica logged\n" + p.describe()
    assert int(m.group(2)) > 0, "nothing held for the replica to confirm: %s" % m.group(0)
    assert_stops_cleanly(p)


def test_with_wait_replicas_0_writes_a_dead_master_never_replicated_are_lost(
        servers, shakes, replicated_cluster):
    """The same failover with `wait_replicas = 0`: shake counts a write as done as soon as
    the master answers, so what the dead master never replicated is gone. This pins down
    what the setting means, and that the scenario above really loses writes unless held."""
    target = replicated_cluster
    conf = {"extra_sections": {"target": {"wait_replicas": 0}}}
    victim, replica, writer, spread, p = start_cut_off_sync(servers, shakes, target, conf)
    unreplicated = cut_off_then_kill(target, victim, replica, writer, p)
    writer.wait_count(writer.count + 300)
    writer.stop()
    spread.stop()
    wait_until(lambda: client_for(target).exists(writer.key(b"seq", writer.count - 1)), 30, shake=p,
               what="the last write on the target")
    problems, _, _ = losses_and_duplicates(writer, target)
    assert any("RPUSH elements lost" in x for x in problems), (
        "expected the %d writes acknowledged after the cut to be lost, got %r" % (unreplicated, problems))
    assert_stops_cleanly(p)


def test_target_master_killed_and_replica_promoted_automatically_loses_nothing(
        servers, shakes, replicated_cluster, record_property):
    """kill -9 of a healthy master while writes flow; the cluster promotes its replica on its
    own. shake follows the new slot map and the sync goes on with no write lost."""
    target = replicated_cluster
    victim = target.masters()[2]
    replica = target.replica_of(victim)
    source = servers(source_config(), name="source")
    p = shakes(shakes.config(source, target))
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    writer = SeqWriter(source, name_on(target, victim)).start(max_seconds=120)
    writer.wait_count(300)
    writer.wait_applied(target, 300, shake=p)
    victim.proc.kill()
    victim.proc.wait(timeout=10)
    wait_promoted(target, replica, victim)
    writer.wait_count(writer.count + 300)
    writer.stop()
    rpush_dups, incr_dups = wait_no_loss(writer, target, p)
    record_property("rpush_duplicates", rpush_dups)
    record_property("incr_duplicates", incr_dups)
    print("\nautomatic failover: %d writes; duplicates after resend: RPUSH %d, INCR %d"
          % (writer.count, rpush_dups, incr_dups))
    assert_stops_cleanly(p)


def test_standalone_target_checkpoint_waits_for_its_replica(servers, shakes):
    """`wait_replicas = 1` on a standalone target: while its replica is cut off, writes land
    on the target but the checkpoint stays before them (a restart would resend them) and a
    warning says why; once the replica is back, the checkpoint catches up."""
    from livesync import read_checkpoint, replication_position
    target = servers(name="target")
    replica = servers({"replicaof": "%s %d" % (harness.HOST, target.port)}, name="target-replica")
    wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", 15,
               what="the target's replica linked")
    source = servers(source_config(), name="source")
    p = shakes(shakes.config(source, target, extra_sections={"target": {"wait_replicas": 1}}))
    p.wait_for(RDB_RECEIVED, LOG_WAIT)
    writer = SeqWriter(source, "w")
    writer.start()
    writer.wait_count(200)
    writer.stop()
    writer.wait_applied(target, writer.count - 1, shake=p)

    def checkpoint_offset():
        return read_checkpoint(shakes.checkpoint).get("standalone", (None, -1, 0))[1]
    offset = replication_position(source)[1]
    wait_until(lambda: checkpoint_offset() >= offset, 10, shake=p, what="the checkpoint at the source's offset")

    try:
        os.kill(replica.proc.pid, signal.SIGSTOP)
        target.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
        since = p.mark()
        writer.start()
        writer.wait_count(writer.count + 100)
        writer.stop()
        writer.wait_applied(target, writer.count - 1, shake=p)
        p.wait_for(r"target 127\.0\.0\.1:%d: no replica has confirmed its writes for \d+ s" % target.port,
                   15, since=since)
        held_at = checkpoint_offset()
        assert held_at < replication_position(source)[1], (
            "the checkpoint moved past writes no replica has (%d)\n%s" % (held_at, p.describe()))
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    offset = replication_position(source)[1]
    wait_until(lambda: checkpoint_offset() >= offset, 20, shake=p,
               what="the checkpoint catching up once the replica is back")
    writer.check(target)
    assert_stops_cleanly(p)
