/* sync.h -- the live sync job: source shards -> replicas -> filter -> writer.
 *
 * Finds the source's shards, replicates each as a replica would (full sync, then
 * the command stream), writes everything into the target, and checkpoints, per
 * shard, the offset the target has acknowledged, so that a restart resumes with
 * PSYNC instead of a new full sync. Runs until SIGINT/SIGTERM (drain, checkpoint,
 * exit 0) or a fatal error.
 */
#ifndef SHAKE_SYNC_H
#define SHAKE_SYNC_H

#include "conf/conf.h"

struct ev_loop;

struct sync_result {
    int ok;                 /* stopped on request, with everything acknowledged saved */
    char error[1024];       /* the fatal error, empty when none */
};

int sync_run(struct ev_loop *loop, const struct shake_conf *conf, struct sync_result *result);

#endif
