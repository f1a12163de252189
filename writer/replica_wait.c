/* replica_wait.c -- the cadence of WAIT on a target master with replicas (see
 * replica_wait.h). Pure: must not do I/O nor know about connections or items. */
#include "writer/replica_wait.h"

void replica_wait_init(struct replica_wait *wait, int replicas) {
    *wait = (struct replica_wait){.replicas = replicas};
}

void replica_wait_wrote(struct replica_wait *wait, size_t bytes) {
    wait->needed = 1;
    wait->bytes_since += bytes;
}

double replica_wait_due(const struct replica_wait *wait, double now) {
    if (wait->replicas <= 0 || wait->in_flight || !wait->needed) return -1;
    if (wait->bytes_since >= REPLICA_WAIT_EVERY_BYTES) return 0;
    double left = wait->last_sent + REPLICA_WAIT_INTERVAL_S - now;
    return left > 0 ? left : 0;
}

void replica_wait_sent(struct replica_wait *wait, double now) {
    wait->in_flight = 1;
    wait->needed = 0;
    wait->bytes_since = 0;
    wait->last_sent = now;
}

int replica_wait_answered(struct replica_wait *wait, long long acked, double now) {
    wait->in_flight = 0;
    if (acked >= wait->replicas) {
        wait->short_since = 0;
        return 1;
    }
    if (wait->short_since == 0) {
        wait->short_since = now;
        wait->warned_at = now;
    }
    wait->needed = 1;
    return 0;
}

double replica_wait_should_warn(struct replica_wait *wait, double now) {
    if (wait->short_since == 0 || now - wait->warned_at < REPLICA_WAIT_WARN_S) return 0;
    wait->warned_at = now;
    return now - wait->short_since;
}

void replica_wait_reset(struct replica_wait *wait, int held) {
    wait->in_flight = 0;
    wait->needed = held;
    wait->bytes_since = 0;
}
