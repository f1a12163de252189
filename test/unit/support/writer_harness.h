/* writer_harness.h -- a writer on its own libev loop, for the unit tests that
 * drive writer/writer.h against real servers (test_writer.c, test_writer_cmd.c).
 *
 * The harness records what the writer's callbacks report (ready, drained, failed,
 * key errors, per-source acks) so that a test can run the loop until a condition
 * holds and then assert on it. It also reads results back over hiredis sync
 * connections. Every helper fails the calling test (criterion asserts) rather than
 * returning an error.
 */
#ifndef SHAKE_TEST_SUPPORT_WRITER_HARNESS_H
#define SHAKE_TEST_SUPPORT_WRITER_HARNESS_H

#include <ev.h>
#include <hiredis.h>
#include <stdint.h>

#include "conf/conf.h"
#include "shake/entry.h"
#include "writer/writer.h"

#define HARNESS_MAX_SOURCES 4

/* Owns the loop, the config (its strings too) and the writer. */
struct writer_harness {
    struct ev_loop *loop;
    struct shake_conf conf; /* conf.target is what the writer gets: set it before start */
    struct writer *writer;
    ev_timer tick;
    int ready;
    int drained; /* `drained` calls; reset it before waiting for the next one */
    int failed;
    char failure[1024];
    int key_errors;
    char last_key_error[1024];
    int waits;                             /* times harness_submit() waited for `drained` */
    double waited_s;                       /* and how long in all */
    int acks;                              /* acked calls */
    int64_t last_ack[HARNESS_MAX_SOURCES]; /* -1: none yet */
    int ack_went_back;                     /* an ack lower than the one before it */
};

/* A new loop and a default config targeting 127.0.0.1:port (on_existing =
 * replace). No writer yet: tests adjust h->conf.target first. */
void harness_init(struct writer_harness *h, int port);
/* Creates and starts the writer; readiness and failures arrive through the loop. */
void harness_start(struct writer_harness *h);
/* harness_start, then runs the loop until the writer is ready (30 s at most). */
void harness_start_ready(struct writer_harness *h);
/* Frees the writer (if any), the loop and the config. */
void harness_fini(struct writer_harness *h);

/* Runs the loop until cond(h) or the timeout; returns cond(h). */
int harness_run_until(struct writer_harness *h, int (*cond)(struct writer_harness *),
                      double timeout_s);
/* Runs the loop for that long, whatever happens. */
void harness_run_for(struct writer_harness *h, double seconds);

/* Conditions for harness_run_until. */
int harness_ready_or_failed(struct writer_harness *h);
int harness_drained_or_failed(struct writer_harness *h);
int harness_idle_or_failed(struct writer_harness *h);
int harness_failed(struct writer_harness *h);

/* Submits an entry that must be accepted, honouring writer_is_full: waits for
 * `drained` first. */
void harness_submit(struct writer_harness *h, struct shake_entry *entry);
/* Runs the loop until the writer is idle (60 s at most) without a failure. */
void harness_wait_idle(struct writer_harness *h);

/* A sync command that must get a reply (any type); the caller frees it. */
redisReply *harness_command(redisContext *redis, const char *format, ...);
/* A sync command whose reply must be an integer. */
long long harness_integer(redisContext *redis, const char *format, ...);
/* GET key must be the string `value`. */
void harness_expect_string(redisContext *redis, const char *key, const char *value);

#endif
