/* cutover.h -- `shake cutover`: proves that the target holds every write the
 * source accepted before a moment, while a live sync runs with the same config.
 *
 * Optionally pauses the source's writers (CLIENT PAUSE <ms> WRITE, Redis >= 6.2),
 * writes one barrier key on every source master in a slot it owns, waits until
 * every barrier is readable on the target (replication keeps each shard's order,
 * so every earlier write of that shard has landed), unpauses, deletes the
 * barriers on both sides. The source is unpaused on every path, SIGINT and
 * SIGTERM included. The runbook is docs/cutover.md.
 */
#ifndef SHAKE_CUTOVER_H
#define SHAKE_CUTOVER_H

#include <stdio.h>

#include "conf/conf.h"

struct ev_loop;

#define CUTOVER_SAFE 0     /* every barrier arrived */
#define CUTOVER_BEHIND 1   /* a barrier did not arrive in time, or a command failed */
#define CUTOVER_USAGE 2    /* config, filter, or a node could not be reached */

struct cutover_options {
    double pause_s;   /* 0: no CLIENT PAUSE */
    double timeout_s; /* how long to wait for the barriers */
};

/* Parse `-conf FILE [--pause SECONDS] [--timeout SECONDS]` (the words after
 * "cutover"): 0 with *conf_path pointing into argv, or -1 with a message. */
int cutover_parse_args(int argc, char **argv, const char **conf_path,
                       struct cutover_options *options, char *err, size_t errlen);

/* Run the cut-over check on `loop` (the default loop: SIGINT/SIGTERM are
 * watched). Progress and the verdict go to `out`; a failure's one-line reason
 * goes to `err`. Returns CUTOVER_SAFE, CUTOVER_BEHIND or CUTOVER_USAGE. */
int cutover_run(struct ev_loop *loop, const struct shake_conf *conf,
                const struct cutover_options *options, FILE *out, char *err, size_t errlen);

#endif
