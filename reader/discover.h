/* discover.h -- finds the source's shards: which masters to replicate from.
 *
 * Tries the configured candidate addresses in order. On the first that answers:
 * AUTH, then CLUSTER SLOTS. A cluster gets one shard per master, named by the first
 * slot range it serves (a name that survives a failover). A standalone server is
 * one shard named "standalone"; when several candidates are configured, ROLE picks
 * the one that is a master (a user that may not run ROLE gets the first reachable).
 */
#ifndef SHAKE_DISCOVER_H
#define SHAKE_DISCOVER_H

#include "conf/conf.h"

struct ev_loop;

#define DISCOVER_NAME_MAX 64

struct discover_shard {
    char name[DISCOVER_NAME_MAX];
    char *host;   /* owned */
    int port;
};

struct discover_result {
    int is_cluster;
    struct discover_shard *shards;  /* owned */
    int shard_count;
};

/* Called once: result NULL and a message on failure. The result is the callee's
 * to free with discover_result_free. */
typedef void (*discover_done_fn)(void *ctx, struct discover_result *result, const char *error);

struct discover;

/* Start discovery on the loop. The discover object frees itself after `done`. */
int discover_start(struct ev_loop *loop, const struct conf_source *source, discover_done_fn done,
                   void *ctx);
void discover_result_free(struct discover_result *result);

#endif
