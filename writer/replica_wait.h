/* replica_wait.h -- when a target master's writes count as safe on its replicas.
 *
 * A master answers a write before its replicas have it. If it dies then, the
 * replica the cluster promotes lacks a write shake already counted as done (and
 * checkpointed). So on a master with replicas the writer holds each answered
 * command until a `WAIT <replicas> <timeout>` sent after it reports enough
 * replicas, and resends what is still held to the slot's new master after a
 * failover (writer.c). WAIT blocks the connection until the replicas answer
 * (about a millisecond on a healthy link), so it is not sent after every command:
 * this module decides when the next one goes out (one at a time, a few ms apart,
 * or at once after a megabyte of writes) and reads its reply.
 *
 * Pure: no I/O, no clock of its own (times are the caller's loop time, in s).
 */
#ifndef SHAKE_WRITER_REPLICA_WAIT_H
#define SHAKE_WRITER_REPLICA_WAIT_H

#include <stddef.h>

/* A WAIT goes out at most this often while writes flow... */
#define REPLICA_WAIT_INTERVAL_S 0.005
/* ... or at once when this many bytes were written since the last one. */
#define REPLICA_WAIT_EVERY_BYTES (1024 * 1024)
/* How long one WAIT may block the connection when no replica answers. */
#define REPLICA_WAIT_TIMEOUT_MS 100
/* A streak of unconfirmed WAITs is reported after this long, and again as often. */
#define REPLICA_WAIT_WARN_S 5.0

struct replica_wait {
    int replicas;       /* N of `WAIT N`; 0: writes are not held */
    int in_flight;      /* a WAIT awaits its reply */
    int needed;         /* written since the last WAIT, or held writes to confirm again */
    size_t bytes_since; /* bytes written since the last WAIT */
    double last_sent;   /* when the last WAIT went out */
    double short_since; /* when the current streak of short WAIT replies began, 0: none */
    double warned_at;   /* when that streak was last reported */
};

void replica_wait_init(struct replica_wait *wait, int replicas);
/* A command of `bytes` was written to the connection. */
void replica_wait_wrote(struct replica_wait *wait, size_t bytes);
/* Seconds until the next WAIT is due: 0 now, more: later, -1: none needed (or one
 * is in flight). */
double replica_wait_due(const struct replica_wait *wait, double now);
void replica_wait_sent(struct replica_wait *wait, double now);
/* The WAIT's reply: `acked` replicas (-1 for an unexpected reply). Returns 1 when
 * every command answered before it is confirmed, 0 when they stay held (another
 * WAIT is then needed). */
int replica_wait_answered(struct replica_wait *wait, long long acked, double now);
/* The streak of short replies has lasted long enough to be reported now: returns
 * its length in seconds (and remembers that it was reported), else 0. */
double replica_wait_should_warn(struct replica_wait *wait, double now);
/* The connection is gone, and its WAIT with it; `held`: commands are still held,
 * so a WAIT is needed on the next connection. */
void replica_wait_reset(struct replica_wait *wait, int held);

#endif
