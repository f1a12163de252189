/* restore.h -- the one-shot restore job: RDB or AOF files -> decoder (RDB part)
 * and command reader (AOF commands) -> filter -> writer.
 *
 * Runs on the caller's libev loop until every file is decoded and every write is
 * acknowledged, or until a fatal error. Keys already written stay written; the
 * result says how far it got.
 */
#ifndef SHAKE_RESTORE_H
#define SHAKE_RESTORE_H

#include <stdint.h>

#include "conf/conf.h"

struct ev_loop;

struct restore_result {
    int ok;                    /* every key landed */
    char error[1024];          /* the fatal error, empty when none */
    uint64_t keys_written;
    uint64_t skipped_expired;
    uint64_t skipped_empty;
    uint64_t skipped_existing;
    uint64_t filtered;
    uint64_t key_errors;       /* keys the target refused (each logged) */
    uint64_t functions;
    uint64_t commands;         /* AOF commands the target applied (SELECT not counted) */
    uint64_t bytes_read;
    uint64_t bytes_total;
    double seconds;
};

/* Run the restore described by `conf` to the end. SIGINT or SIGTERM stop it: no
 * new entry is submitted, writes in flight are drained. Returns 0 when every key
 * landed, -1 otherwise; `result` says what happened either way. */
int restore_run(struct ev_loop *loop, const struct shake_conf *conf,
                struct restore_result *result);

#endif
