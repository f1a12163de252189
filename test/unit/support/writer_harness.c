/* writer_harness.c -- a writer on its own libev loop for unit tests (see
 * writer_harness.h). Owns the loop, config and writer of each harness it inits. */
#include "test/unit/support/writer_harness.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void on_ready(void *ctx) {
    ((struct writer_harness *)ctx)->ready = 1;
}
static void on_drained(void *ctx) {
    ((struct writer_harness *)ctx)->drained++;
}
static void on_failed(void *ctx, const char *message) {
    struct writer_harness *h = ctx;
    h->failed = 1;
    snprintf(h->failure, sizeof(h->failure), "%s", message);
}
static void on_key_error(void *ctx, const char *message) {
    struct writer_harness *h = ctx;
    h->key_errors++;
    snprintf(h->last_key_error, sizeof(h->last_key_error), "%s", message);
}
static void on_acked(void *ctx, int source, uint64_t offset) {
    struct writer_harness *h = ctx;
    cr_assert(source >= 0 && source < HARNESS_MAX_SOURCES);
    if ((int64_t)offset < h->last_ack[source]) h->ack_went_back = 1;
    h->last_ack[source] = (int64_t)offset;
    h->acks++;
}
static void on_tick(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop, (void)timer, (void)revents;
}

void harness_init(struct writer_harness *h, int port) {
    memset(h, 0, sizeof(*h));
    h->loop = ev_loop_new(EVFLAG_AUTO);
    cr_assert_not_null(h->loop);
    conf_init(&h->conf);
    h->conf.target.host = strdup("127.0.0.1");
    h->conf.target.port = port;
    h->conf.target.on_existing = CONF_ON_EXISTING_REPLACE;
    for (int i = 0; i < HARNESS_MAX_SOURCES; i++)
        h->last_ack[i] = -1;
    /* A tick so that ev_run(EV_RUN_ONCE) returns regularly. */
    ev_timer_init(&h->tick, on_tick, 0.01, 0.01);
    ev_timer_start(h->loop, &h->tick);
}

void harness_start(struct writer_harness *h) {
    struct writer_callbacks callbacks = {.ctx = h,
                                         .ready = on_ready,
                                         .drained = on_drained,
                                         .failed = on_failed,
                                         .key_error = on_key_error,
                                         .acked = on_acked};
    h->writer = writer_new(h->loop, &h->conf.target, &callbacks);
    cr_assert_not_null(h->writer);
    writer_start(h->writer);
}

void harness_start_ready(struct writer_harness *h) {
    harness_start(h);
    cr_assert(harness_run_until(h, harness_ready_or_failed, 30), "writer never became ready");
    cr_assert(!h->failed, "%s", h->failure);
}

void harness_fini(struct writer_harness *h) {
    if (h->writer != NULL) writer_free(h->writer);
    ev_timer_stop(h->loop, &h->tick);
    ev_loop_destroy(h->loop);
    conf_free(&h->conf);
}

int harness_run_until(struct writer_harness *h, int (*cond)(struct writer_harness *),
                      double timeout_s) {
    ev_tstamp deadline = ev_time() + timeout_s;
    while (!cond(h) && ev_time() < deadline)
        ev_run(h->loop, EVRUN_ONCE);
    return cond(h);
}

void harness_run_for(struct writer_harness *h, double seconds) {
    ev_tstamp deadline = ev_time() + seconds;
    while (ev_time() < deadline)
        ev_run(h->loop, EVRUN_ONCE);
}

int harness_ready_or_failed(struct writer_harness *h) {
    return h->ready || h->failed;
}
int harness_drained_or_failed(struct writer_harness *h) {
    return h->drained > 0 || h->failed;
}
int harness_idle_or_failed(struct writer_harness *h) {
    return h->failed || writer_is_idle(h->writer);
}
int harness_failed(struct writer_harness *h) {
    return h->failed;
}

void harness_submit(struct writer_harness *h, struct shake_entry *entry) {
    if (writer_is_full(h->writer)) {
        h->drained = 0;
        h->waits++;
        double t0 = ev_time();
        cr_assert(harness_run_until(h, harness_drained_or_failed, 30), "no drained after full");
        h->waited_s += ev_time() - t0;
        cr_assert(!h->failed, "%s", h->failure);
        cr_assert(!writer_is_full(h->writer), "drained but still full");
    }
    char err[512] = "";
    int rc = writer_submit(h->writer, entry, err, sizeof(err));
    cr_assert_eq(rc, 0, "submit: %s", err);
}

void harness_wait_idle(struct writer_harness *h) {
    cr_assert(harness_run_until(h, harness_idle_or_failed, 60), "writer never became idle");
    cr_assert(!h->failed, "%s", h->failure);
}

redisReply *harness_command(redisContext *redis, const char *format, ...) {
    va_list args;
    va_start(args, format);
    redisReply *reply = redisvCommand(redis, format, args);
    va_end(args);
    cr_assert_not_null(reply, "%s", redis->errstr);
    return reply;
}

long long harness_integer(redisContext *redis, const char *format, ...) {
    va_list args;
    va_start(args, format);
    redisReply *reply = redisvCommand(redis, format, args);
    va_end(args);
    cr_assert_not_null(reply);
    cr_assert_eq(reply->type, REDIS_REPLY_INTEGER, "%s", reply->str ? reply->str : "");
    long long value = reply->integer;
    freeReplyObject(reply);
    return value;
}

void harness_expect_string(redisContext *redis, const char *key, const char *value) {
    redisReply *reply = harness_command(redis, "GET %s", key);
    cr_assert_eq(reply->type, REDIS_REPLY_STRING, "GET %s: type %d", key, reply->type);
    cr_assert_str_eq(reply->str, value, "GET %s", key);
    freeReplyObject(reply);
}
