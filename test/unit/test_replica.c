/* test_replica.c -- the replica reader against a real redis-server: full sync in
 * both RDB framings, the command stream with offsets equal to the master's own,
 * SELECT tracking, partial resync from a saved position, reconnect after CLIENT
 * KILL, and the errors for a wrong password and a user without +psync. */
#include <criterion/criterion.h>
#include <ev.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reader/replica.h"
#include "test/unit/support/server.h"

#define MAX_COMMANDS 4096

struct collected {
    struct ev_loop *loop;
    struct replica *replica;
    int keys;
    int commands;
    char last_command[256];
    int last_db;
    uint64_t last_offset;
    int full_syncs;
    int streaming;
    int continued;      /* streams started by +CONTINUE */
    int failed;
    char failure[1024];
};

static void on_readable(void *ctx) {
    struct collected *c = ctx;
    struct shake_entry *entry;
    while (replica_next(c->replica, &entry) == REPLICA_ENTRY) {
        if (entry->kind == SHAKE_ENTRY_CMD) {
            c->commands++;
            c->last_offset = entry->offset;
            c->last_db = entry->db;
            snprintf(c->last_command, sizeof(c->last_command), "%s %s", entry->argv[0],
                     entry->argc > 1 ? entry->argv[1] : "");
        } else if (entry->kind == SHAKE_ENTRY_KEY || entry->kind == SHAKE_ENTRY_CHUNK) {
            c->keys++;
        }
        shake_entry_free(entry);
    }
}

static void on_full_sync(void *ctx, const char *replid, uint64_t offset, const char *reason) {
    (void)replid, (void)offset, (void)reason;
    ((struct collected *)ctx)->full_syncs++;
}

static void on_stream_started(void *ctx, int continued) {
    struct collected *c = ctx;
    c->streaming = 1;
    c->continued += continued;
}

static void on_failed(void *ctx, const char *message) {
    struct collected *c = ctx;
    c->failed = 1;
    snprintf(c->failure, sizeof(c->failure), "%s", message);
}

static void start_replica(struct collected *c, const struct test_server *server,
                          const char *username, const char *password, const char *replid,
                          uint64_t offset, int db) {
    memset(c, 0, sizeof(*c));
    c->loop = ev_loop_new(EVFLAG_AUTO);
    struct replica_options options = {
        .host = "127.0.0.1",
        .port = server->port,
        .username = username,
        .password = password,
        .connect_timeout_ms = 2000,
        .replid = replid,
        .offset = offset,
        .db = db,
        .max_buffered = 1024 * 1024,
        .rdb = {.raw_max = 1 << 20,
                .chunk_max_bytes = 1 << 20,
                .chunk_max_items = 1024,
                .restorable_types = ~0ULL,
                .max_element = 1ULL << 30},
    };
    struct replica_callbacks callbacks = {
        .ctx = c,
        .readable = on_readable,
        .full_sync = on_full_sync,
        .stream_started = on_stream_started,
        .failed = on_failed,
    };
    c->replica = replica_new(c->loop, &options, &callbacks);
    cr_assert_not_null(c->replica);
    replica_start(c->replica);
}

static void stop_replica(struct collected *c) {
    replica_free(c->replica);
    ev_loop_destroy(c->loop);
}

/* Run the loop until `done` holds or ten seconds pass. */
static int run_until(struct collected *c, int (*done)(struct collected *, void *), void *arg) {
    for (int i = 0; i < 1000; i++) {
        if (done(c, arg)) return 1;
        ev_run(c->loop, EVRUN_NOWAIT);
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    return done(c, arg);
}

static int is_streaming(struct collected *c, void *arg) {
    (void)arg;
    return c->streaming || c->failed;
}

static int has_failed(struct collected *c, void *arg) {
    (void)arg;
    return c->failed;
}

static uint64_t master_offset(redisContext *redis) {
    redisReply *reply = redisCommand(redis, "INFO replication");
    cr_assert_not_null(reply);
    const char *field = strstr(reply->str, "master_repl_offset:");
    cr_assert_not_null(field);
    uint64_t offset = strtoull(field + strlen("master_repl_offset:"), NULL, 10);
    freeReplyObject(reply);
    return offset;
}

static uint64_t info_stat(redisContext *redis, const char *name) {
    redisReply *reply = redisCommand(redis, "INFO stats");
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "%s:", name);
    const char *field = strstr(reply->str, pattern);
    cr_assert_not_null(field, "no %s in INFO stats", name);
    uint64_t value = strtoull(field + strlen(pattern), NULL, 10);
    freeReplyObject(reply);
    return value;
}

static int reached_offset(struct collected *c, void *arg) {
    struct replica_progress progress;
    replica_get_progress(c->replica, &progress);
    return c->failed || progress.received_offset >= *(uint64_t *)arg;
}

static void command(redisContext *redis, const char *text) {
    redisReply *reply = redisCommand(redis, text);
    cr_assert_not_null(reply);
    cr_assert_neq(reply->type, REDIS_REPLY_ERROR, "%s: %s", text, reply->str);
    freeReplyObject(reply);
}

/* Full sync, then writes: every command arrives with the master's offset. */
static void check_full_sync_and_stream(const char *diskless) {
    struct test_server server;
    const char *args[] = {"--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0",
                          NULL};
    cr_assert_eq(test_server_start(&server, args), 0);
    redisContext *redis = test_server_connect(&server);
    for (int i = 0; i < 100; i++) {
        redisReply *reply = redisCommand(redis, "SET key:%d %d", i, i);
        freeReplyObject(reply);
    }
    struct collected c;
    start_replica(&c, &server, NULL, NULL, NULL, 0, 0);
    cr_assert(run_until(&c, is_streaming, NULL));
    cr_assert_not(c.failed, "%s", c.failure);
    cr_assert_eq(c.full_syncs, 1);
    cr_assert_eq(c.keys, 100);

    command(redis, "SET after 1");
    command(redis, "SELECT 3");
    command(redis, "INCR counter");
    uint64_t expected = master_offset(redis);
    cr_assert(run_until(&c, reached_offset, &expected));
    cr_assert_not(c.failed, "%s", c.failure);
    cr_assert_eq(c.last_offset, expected, "offset %llu, master says %llu",
                 (unsigned long long)c.last_offset, (unsigned long long)expected);
    cr_assert_str_eq(c.last_command, "INCR counter");
    cr_assert_eq(c.last_db, 3);
    stop_replica(&c);
    redisFree(redis);
    test_server_stop(&server);
}

Test(replica, diskless_full_sync_then_stream_with_exact_offsets, .timeout = 60) {
    check_full_sync_and_stream("yes");
}

Test(replica, disk_based_full_sync_then_stream_with_exact_offsets, .timeout = 60) {
    check_full_sync_and_stream("no");
}

Test(replica, resumes_with_psync_from_a_saved_position, .timeout = 60) {
    struct test_server server;
    const char *args[] = {"--repl-diskless-sync-delay", "0", NULL};
    cr_assert_eq(test_server_start(&server, args), 0);
    redisContext *redis = test_server_connect(&server);
    command(redis, "SET a 1");
    struct collected c;
    start_replica(&c, &server, NULL, NULL, NULL, 0, 0);
    cr_assert(run_until(&c, is_streaming, NULL));
    command(redis, "SELECT 2");
    command(redis, "SET b 2");
    uint64_t saved = master_offset(redis);
    cr_assert(run_until(&c, reached_offset, &saved));
    struct replica_progress progress;
    replica_get_progress(c.replica, &progress);
    char replid[41];
    snprintf(replid, sizeof(replid), "%s", progress.replid);
    int saved_db = progress.db;
    cr_assert_eq(saved_db, 2);
    stop_replica(&c);

    command(redis, "SET c 3"); /* while no replica is attached: in the backlog */
    uint64_t full_before = info_stat(redis, "sync_full");
    struct collected resumed;
    memset(&resumed, 0, sizeof(resumed));
    start_replica(&resumed, &server, NULL, NULL, replid, saved, saved_db);
    uint64_t expected = master_offset(redis);
    cr_assert(run_until(&resumed, reached_offset, &expected));
    cr_assert_not(resumed.failed, "%s", resumed.failure);
    cr_assert_eq(resumed.full_syncs, 0);
    cr_assert_eq(resumed.continued, 1);
    cr_assert_eq(resumed.keys, 0);
    cr_assert_str_eq(resumed.last_command, "SET c");
    cr_assert_eq(resumed.last_db, 2, "the db at the saved offset must carry over");
    cr_assert_eq(info_stat(redis, "sync_full"), full_before);
    cr_assert_eq(info_stat(redis, "sync_partial_ok"), 1);
    stop_replica(&resumed);
    redisFree(redis);
    test_server_stop(&server);
}

Test(replica, reconnects_after_client_kill_and_continues, .timeout = 60) {
    struct test_server server;
    const char *args[] = {"--repl-diskless-sync-delay", "0", NULL};
    cr_assert_eq(test_server_start(&server, args), 0);
    redisContext *redis = test_server_connect(&server);
    struct collected c;
    start_replica(&c, &server, NULL, NULL, NULL, 0, 0);
    cr_assert(run_until(&c, is_streaming, NULL));
    command(redis, "SET before kill");
    uint64_t expected = master_offset(redis);
    cr_assert(run_until(&c, reached_offset, &expected));
    int commands_before = c.commands;
    command(redis, "CLIENT KILL TYPE replica");
    command(redis, "SET after kill");
    expected = master_offset(redis);
    cr_assert(run_until(&c, reached_offset, &expected));
    cr_assert_not(c.failed, "%s", c.failure);
    cr_assert_eq(c.full_syncs, 1, "a reconnect must not start a new full sync");
    cr_assert_eq(c.continued, 1, "the stream after the reconnect is a continued one");
    cr_assert_str_eq(c.last_command, "SET after");
    cr_assert_eq(c.last_offset, expected);
    cr_assert_geq(c.commands, commands_before + 1);
    cr_assert_eq(info_stat(redis, "sync_partial_ok"), 1);
    stop_replica(&c);
    redisFree(redis);
    test_server_stop(&server);
}

Test(replica, wrong_password_is_a_clear_error, .timeout = 30) {
    struct test_server server;
    const char *args[] = {"--requirepass", "right", NULL};
    cr_assert_eq(test_server_start(&server, args), 0);
    struct collected c;
    start_replica(&c, &server, NULL, "wrong", NULL, 0, 0);
    cr_assert(run_until(&c, has_failed, NULL));
    char expected[128];
    snprintf(expected, sizeof(expected), "source 127.0.0.1:%d: authentication failed: ",
             server.port);
    cr_assert(strstr(c.failure, expected) == c.failure, "%s", c.failure);
    stop_replica(&c);
    test_server_stop(&server);
}

Test(replica, a_user_without_psync_gets_an_error_naming_it, .timeout = 30) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    redisContext *redis = test_server_connect(&server);
    command(redis, "ACL SETUSER limited on >pw +ping +replconf");
    struct collected c;
    start_replica(&c, &server, "limited", "pw", NULL, 0, 0);
    cr_assert(run_until(&c, has_failed, NULL));
    cr_assert(strstr(c.failure, "PSYNC refused: NOPERM") != NULL, "%s", c.failure);
    cr_assert(strstr(c.failure, "+psync") != NULL, "%s", c.failure);
    stop_replica(&c);
    redisFree(redis);
    test_server_stop(&server);
}

Test(replica, an_unreachable_source_is_a_clear_error, .timeout = 30) {
    struct test_server server = {.port = test_server_unused_port()};
    struct collected c;
    start_replica(&c, &server, NULL, NULL, NULL, 0, 0);
    cr_assert(run_until(&c, has_failed, NULL));
    cr_assert(strstr(c.failure, "Connection refused") != NULL, "%s", c.failure);
    stop_replica(&c);
}
