/* verify.h -- `shake verify`: compares the source and the target key by key, in
 * both directions, through the config's [filter] and db_map, while (or after) a
 * live sync runs with the same config.
 *
 * Round 1 scans every source master (every db) and every target master; keys
 * that differ are checked again in later rounds, a second apart, so that writes
 * still in flight converge. What remains is reported, one line per key. Function
 * libraries (FUNCTION LIST WITHCODE) are compared too. docs/cutover.md explains
 * the options, the output and the exit codes.
 */
#ifndef SHAKE_VERIFY_H
#define SHAKE_VERIFY_H

#include <stdio.h>

#include "conf/conf.h"

struct ev_loop;

#define VERIFY_OK 0        /* no difference left */
#define VERIFY_DIFFERS 1   /* some difference remains after the last round */
#define VERIFY_USAGE 2     /* arguments, config, or a node failed */

struct verify_options {
    double sample_percent;       /* 0 < p <= 100: a deterministic sample, by key hash */
    int rounds;                  /* 1 + re-checks of what differs */
    long long ttl_tolerance_ms;
    int round_interval_ms;
};

/* Parse `-conf FILE [--sample PCT] [--rounds N] [--ttl-tolerance MS]` (the words
 * after "verify"): 0, or -1 with a message. */
int verify_parse_args(int argc, char **argv, const char **conf_path,
                      struct verify_options *options, char *err, size_t errlen);

/* Run the comparison; the report goes to `out`, a failure's one-line reason to
 * `err`. Returns VERIFY_OK, VERIFY_DIFFERS or VERIFY_USAGE. */
int verify_run(struct ev_loop *loop, const struct shake_conf *conf,
               const struct verify_options *options, FILE *out, char *err, size_t errlen);

#endif
