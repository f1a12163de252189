/* test_writer_cmd.c -- CMD entries (the replication stream) through the writer,
 * against real servers (test/unit/support/server.h): a standalone redis-server and
 * 3-master clusters. Entries go in through writer_submit on a libev loop; results
 * are read back with hiredis sync connections and compared exactly.
 * Covers: routing, per-slot splits, SELECT by entry db, dropped commands, ordered
 * acknowledgements (in order, stalled behind an unanswered entry, then caught
 * up), cross-slot RENAME/RENAMENX emulation (TTL kept, order of later commands),
 * MULTI/EXEC kept whole or split, on_unsupported = error / skip, error replies. */
#include <criterion/criterion.h>
#include <ev.h>
#include <hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "shake/crc16.h"
#include "shake/entry.h"
#include "test/unit/support/server.h"
#include "test/unit/support/writer_harness.h"
#include "writer/writer.h"

/* Idle, and with nothing left awaiting a reply: every ack has been given. */
static void wait_idle(struct writer_harness *h) {
    harness_wait_idle(h);
    cr_assert_eq(writer_in_flight(h->writer), 0u);
}

/* A CMD entry from a line of space-separated arguments. */
static struct shake_entry *cmd_entry(int source, uint64_t offset, int db, const char *line) {
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_CMD);
    entry->source = source;
    entry->offset = offset;
    entry->db = db;
    char *copy = strdup(line);
    int capacity = 8;
    entry->argv = malloc((size_t)capacity * sizeof(*entry->argv));
    entry->argv_len = malloc((size_t)capacity * sizeof(*entry->argv_len));
    char *save = NULL;
    for (char *word = strtok_r(copy, " ", &save); word != NULL; word = strtok_r(NULL, " ", &save)) {
        if (entry->argc == capacity) {
            capacity *= 2;
            entry->argv = realloc(entry->argv, (size_t)capacity * sizeof(*entry->argv));
            entry->argv_len = realloc(entry->argv_len, (size_t)capacity * sizeof(*entry->argv_len));
        }
        entry->argv[entry->argc] = strdup(word);
        entry->argv_len[entry->argc++] = strlen(word);
    }
    free(copy);
    return entry;
}

/* Submit one command that must be accepted. */
static void submit_cmd(struct writer_harness *h, int source, uint64_t offset, int db,
                       const char *line) {
    char err[512] = "";
    struct shake_entry *entry = cmd_entry(source, offset, db, line);
    int rc = writer_submit(h->writer, entry, err, sizeof(err));
    if (rc != 0) shake_entry_free(entry);
    cr_assert_eq(rc, 0, "submit %s: %s", line, err);
}

/* A KEY entry for a small string (RDB type 0). */
static struct shake_entry *string_key(int source, const char *key, const char *value) {
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_KEY);
    entry->source = source;
    entry->key = strdup(key);
    entry->key_len = strlen(key);
    entry->type = SHAKE_TYPE_STRING;
    size_t len = strlen(value);
    cr_assert(len < 64);
    entry->raw = malloc(len + 1);
    entry->raw[0] = (char)len;
    memcpy(entry->raw + 1, value, len);
    entry->raw_len = len + 1;
    return entry;
}

static void expect_list(redisContext *redis, const char *key, const char *expected) {
    redisReply *reply = harness_command(redis, "LRANGE %s 0 -1", key);
    cr_assert_eq(reply->type, REDIS_REPLY_ARRAY);
    char joined[256] = "";
    for (size_t i = 0; i < reply->elements; i++) {
        if (i) strcat(joined, " ");
        strcat(joined, reply->element[i]->str);
    }
    cr_assert_str_eq(joined, expected, "LRANGE %s", key);
    freeReplyObject(reply);
}

/* The calls of one command on a server, from INFO commandstats (0 when none). */
static long long command_calls(redisContext *redis, const char *name) {
    redisReply *reply = harness_command(redis, "INFO commandstats");
    char field[64];
    snprintf(field, sizeof(field), "cmdstat_%s:calls=", name);
    const char *at = strstr(reply->str, field);
    long long calls = at ? atoll(at + strlen(field)) : 0;
    freeReplyObject(reply);
    return calls;
}

/* ---- standalone ---------------------------------------------------------------- */

Test(writer_cmd_standalone, commands_apply_in_order_per_db_and_ack_the_last_offset, .timeout = 60) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    redisContext *redis = test_server_connect(&server);
    struct writer_harness h;
    harness_init(&h, server.port);
    harness_start_ready(&h);
    cr_assert_eq(writer_target_info(h.writer)->command_table_builtin, 0);
    long long pings = command_calls(redis, "ping");

    uint64_t offset = 0;
    submit_cmd(&h, 0, offset += 10, 0, "SET a 1");
    for (int i = 0; i < 100; i++)
        submit_cmd(&h, 0, offset += 10, 0, "INCR counter");
    submit_cmd(&h, 0, offset += 10, 0, "RPUSH list x y");
    submit_cmd(&h, 0, offset += 10, 0, "RPUSH list z");
    submit_cmd(&h, 0, offset += 10, 0, "MSET k1 v1 k2 v2 k3 v3");
    submit_cmd(&h, 0, offset += 10, 0, "DEL k1 k3");
    submit_cmd(&h, 0, offset += 10, 0, "EXPIRE a 1000");
    submit_cmd(&h, 0, offset += 10, 3, "SELECT 3");
    submit_cmd(&h, 0, offset += 10, 3, "SET a in-db-3");
    submit_cmd(&h, 0, offset += 10, 3, "PING");
    submit_cmd(&h, 0, offset += 10, 3, "REPLCONF ACK 0");
    submit_cmd(&h, 0, offset += 10, 3, "PUBLISH channel message");
    submit_cmd(&h, 0, offset += 10, 0, "MULTI");
    submit_cmd(&h, 0, offset += 10, 0, "INCR counter");
    submit_cmd(&h, 0, offset += 10, 3, "SET b in-transaction");
    submit_cmd(&h, 0, offset += 10, 0, "EXEC");
    submit_cmd(&h, 0, offset += 10, 0, "SET after transaction");
    wait_idle(&h);

    cr_assert_eq(h.ack_went_back, 0);
    cr_assert_eq(h.last_ack[0], (int64_t)offset);
    const struct writer_stats *stats = writer_stats(h.writer);
    /* Not counted: SELECT, PING, REPLCONF, PUBLISH (dropped), MULTI and EXEC. */
    cr_assert_eq(stats->commands_written, 100 + 10u);
    cr_assert_eq(stats->errors, 0u);
    cr_assert_eq(stats->transactions_split, 0u);
    cr_assert_eq(h.key_errors, 0);
    harness_expect_string(redis, "a", "1");
    harness_expect_string(redis, "counter", "101");
    expect_list(redis, "list", "x y z");
    cr_assert_eq(harness_integer(redis, "EXISTS k1 k3"), 0);
    harness_expect_string(redis, "k2", "v2");
    long long ttl = harness_integer(redis, "TTL a");
    cr_assert(ttl > 990 && ttl <= 1000, "TTL a = %lld", ttl);
    harness_expect_string(redis, "after", "transaction");
    cr_assert_eq(command_calls(redis, "exec"), 1, "the transaction is kept whole");
    cr_assert_eq(command_calls(redis, "publish"), 0);
    cr_assert_eq(command_calls(redis, "ping"), pings, "PING is dropped");
    freeReplyObject(harness_command(redis, "SELECT 3"));
    harness_expect_string(redis, "a", "in-db-3");
    harness_expect_string(redis, "b", "in-transaction");
    cr_assert_eq(harness_integer(redis, "DBSIZE"), 2);
    redisFree(redis);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_cmd_standalone, acks_stall_behind_an_unanswered_entry_then_catch_up, .timeout = 60) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    redisContext *redis = test_server_connect(&server);
    struct writer_harness h;
    harness_init(&h, server.port);
    harness_start_ready(&h);

    /* A dropped command acks at once, from inside writer_submit. */
    submit_cmd(&h, 1, 5, 0, "PING");
    cr_assert_eq(h.last_ack[1], 5);
    submit_cmd(&h, 1, 10, 0, "SET a 1");
    wait_idle(&h);
    cr_assert_eq(h.last_ack[1], 10);

    freeReplyObject(harness_command(redis, "CLIENT PAUSE 1000 WRITE"));
    submit_cmd(&h, 1, 20, 0, "SET b 2");
    char err[256];
    cr_assert_eq(writer_in_flight(h.writer), 1u);
    struct shake_entry *key = string_key(1, "restored", "value");
    cr_assert_eq(writer_submit(h.writer, key, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(writer_in_flight(h.writer), 2u);
    submit_cmd(&h, 1, 30, 0, "PING");
    cr_assert_eq(writer_in_flight(h.writer), 2u, "a dropped command is done at once");
    submit_cmd(&h, 2, 7, 0, "PING"); /* another source is not held back */
    harness_run_for(&h, 0.3);
    cr_assert_eq(h.last_ack[1], 10, "acks must wait for SET b");
    cr_assert_eq(h.last_ack[2], 7);
    cr_assert_eq(writer_in_flight(h.writer), 2u, "in flight: %zu", writer_in_flight(h.writer));
    cr_assert_eq(writer_is_idle(h.writer), 0);
    wait_idle(&h);
    cr_assert_eq(h.last_ack[1], 30);
    cr_assert_eq(h.ack_went_back, 0);
    harness_expect_string(redis, "b", "2");
    harness_expect_string(redis, "restored", "value");
    cr_assert_eq(writer_stats(h.writer)->keys_written, 1u);
    redisFree(redis);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_cmd_standalone, error_replies_are_reported_with_the_command_and_acked, .timeout = 60) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    redisContext *redis = test_server_connect(&server);
    struct writer_harness h;
    harness_init(&h, server.port);
    h.conf.target.forward_publish = 1;
    harness_start_ready(&h);
    submit_cmd(&h, 0, 10, 0, "SET s text");
    submit_cmd(&h, 0, 20, 0, "INCR s");
    submit_cmd(&h, 0, 30, 0, "PUBLISH channel message");
    submit_cmd(&h, 0, 40, 0, "MULTI");
    submit_cmd(&h, 0, 50, 0, "SET t 1");
    submit_cmd(&h, 0, 60, 0, "INCR s");
    submit_cmd(&h, 0, 70, 0, "EXEC");
    wait_idle(&h);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->errors, 2u);
    cr_assert_eq(h.key_errors, 2);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "target 127.0.0.1:%d: transaction of 2 commands: command 2: ERR value is not an "
             "integer or out of range",
             server.port);
    cr_assert_str_eq(h.last_key_error, expected);
    cr_assert_eq(stats->commands_written, 2u, "SET s and PUBLISH");
    cr_assert_eq(h.last_ack[0], 70);
    harness_expect_string(redis, "t", "1");
    cr_assert_eq(command_calls(redis, "publish"), 1, "forward_publish = 1");
    redisFree(redis);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_cmd_standalone, the_error_reply_names_the_command_and_key, .timeout = 60) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    struct writer_harness h;
    harness_init(&h, server.port);
    harness_start_ready(&h);
    submit_cmd(&h, 0, 10, 0, "SET s text");
    submit_cmd(&h, 0, 20, 0, "INCR s");
    wait_idle(&h);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "target 127.0.0.1:%d: command 'INCR' 's': ERR value is not an integer or out of "
             "range",
             server.port);
    cr_assert_str_eq(h.last_key_error, expected);
    cr_assert_eq(h.last_ack[0], 20);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_cmd_standalone, commands_without_reply_are_resent_after_a_reconnect, .timeout = 60) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    redisContext *redis = test_server_connect(&server);
    struct writer_harness h;
    harness_init(&h, server.port);
    harness_start_ready(&h);
    freeReplyObject(harness_command(redis, "CLIENT PAUSE 20000 WRITE"));
    uint64_t offset = 0;
    for (int i = 0; i < 30; i++)
        submit_cmd(&h, 0, offset += 10, 2, "INCR counter");
    submit_cmd(&h, 0, offset += 10, 2, "MULTI");
    submit_cmd(&h, 0, offset += 10, 2, "RPUSH list a");
    submit_cmd(&h, 0, offset += 10, 2, "RPUSH list b");
    submit_cmd(&h, 0, offset += 10, 2, "EXEC");
    submit_cmd(&h, 0, offset += 10, 2, "RPUSH list c");
    harness_run_for(&h, 0.2);
    cr_assert_eq(h.acks, 0);
    cr_assert_eq(harness_integer(redis, "CLIENT KILL TYPE normal SKIPME yes"), 1);
    freeReplyObject(harness_command(redis, "CLIENT UNPAUSE"));
    wait_idle(&h);
    cr_assert_eq(h.last_ack[0], (int64_t)offset);
    cr_assert_eq(h.ack_went_back, 0);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->retries, 32u, "30 INCR, the transaction, the last RPUSH");
    cr_assert_eq(stats->commands_written, 33u);
    cr_assert_eq(stats->errors, 0u);
    freeReplyObject(harness_command(redis, "SELECT 2"));
    harness_expect_string(redis, "counter", "30");
    expect_list(redis, "list", "a b c");
    redisFree(redis);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_cmd_standalone, a_target_that_refuses_command_gets_the_builtin_table, .timeout = 60) {
    const char *args[] = {"--rename-command", "COMMAND", "", NULL};
    struct test_server server;
    cr_assert_eq(test_server_start(&server, args), 0);
    struct writer_harness h;
    harness_init(&h, server.port);
    harness_start_ready(&h);
    cr_assert_eq(writer_target_info(h.writer)->command_table_builtin, 1);
    submit_cmd(&h, 0, 10, 0, "SET a 1");
    wait_idle(&h);
    cr_assert_eq(h.last_ack[0], 10);
    harness_fini(&h);
    test_server_stop(&server);
}

/* Not a unit test: SHAKE_WRITER_BENCH=1 times a stream of small SETs. */
Test(writer_cmd_speed, small_commands_per_second, .timeout = 300) {
    if (getenv("SHAKE_WRITER_BENCH") == NULL) cr_skip_test("set SHAKE_WRITER_BENCH=1");
    const int count = 500000;
    struct test_cluster cluster;
    cr_assert_eq(test_cluster_start(&cluster, 3), 0);
    struct writer_harness h;
    harness_init(&h, cluster.nodes[0].port);
    harness_start_ready(&h);
    struct shake_entry **entries = malloc((size_t)count * sizeof(*entries));
    for (int i = 0; i < count; i++) {
        char line[64];
        snprintf(line, sizeof(line), "SET key:%d value:%d", i % 10000, i);
        entries[i] = cmd_entry(0, (uint64_t)i + 1, 0, line);
    }
    double start = ev_time();
    for (int i = 0; i < count; i++) {
        while (writer_is_full(h.writer))
            ev_run(h.loop, EVRUN_ONCE);
        char err[256];
        cr_assert_eq(writer_submit(h.writer, entries[i], err, sizeof(err)), 0, "%s", err);
    }
    wait_idle(&h);
    double seconds = ev_time() - start;
    fprintf(stderr, "%d commands in %.3f s: %.0f commands/s\n", count, seconds, count / seconds);
    cr_assert_eq(h.last_ack[0], count);
    free(entries);
    harness_fini(&h);
    test_cluster_stop(&cluster);
}

/* ---- cluster ------------------------------------------------------------------- */

/* A connection to the node serving `key`. */
static redisContext *node_for(const struct test_cluster *cluster, const char *key) {
    int owner = test_cluster_slot_owner(cluster, key_hash_slot(key, strlen(key)));
    cr_assert(owner >= 0);
    return test_server_connect(&cluster->nodes[owner]);
}

static void cluster_expect_string(const struct test_cluster *cluster, const char *key,
                                  const char *value) {
    redisContext *redis = node_for(cluster, key);
    harness_expect_string(redis, key, value);
    redisFree(redis);
}

static long long cluster_integer(const struct test_cluster *cluster, const char *key,
                                 const char *format) {
    redisContext *redis = node_for(cluster, key);
    long long value = harness_integer(redis, format, key);
    redisFree(redis);
    return value;
}

/* A key "<prefix><n>" served by node `node` (or not by it when `not` is set). */
static void key_on_node(const struct test_cluster *cluster, int node, int not, const char *prefix,
                        char *out, size_t outlen) {
    for (int n = 0; n < 10000; n++) {
        snprintf(out, outlen, "%s%d", prefix, n);
        int owner = test_cluster_slot_owner(cluster, key_hash_slot(out, strlen(out)));
        if ((owner == node) != not ) return;
    }
    cr_assert_fail("no key found");
}

Test(writer_cmd_cluster, commands_route_split_and_ack_in_order, .timeout = 180) {
    struct test_cluster cluster;
    cr_assert_eq(test_cluster_start(&cluster, 3), 0);
    struct writer_harness h;
    harness_init(&h, cluster.nodes[0].port);
    harness_start_ready(&h);
    cr_assert_eq(writer_target_info(h.writer)->command_table_builtin, 0);
    /* a, b, c hash to three different slots (15495, 3300, 7365): three masters. */
    uint64_t offset = 100;
    submit_cmd(&h, 0, offset += 10, 0, "SET a 1");
    for (int i = 0; i < 50; i++)
        submit_cmd(&h, 0, offset += 10, 0, "INCR counter");
    submit_cmd(&h, 0, offset += 10, 0, "RPUSH list x y");
    submit_cmd(&h, 0, offset += 10, 0, "RPUSH list z");
    submit_cmd(&h, 0, offset += 10, 0, "MSET a 2 b 3 c 4");
    submit_cmd(&h, 0, offset += 10, 0, "MSETNX d 5 e 6");
    submit_cmd(&h, 0, offset += 10, 0, "DEL b c list");
    submit_cmd(&h, 0, offset += 10, 0, "EXPIRE a 1000");
    submit_cmd(&h, 0, offset += 10, 0, "PING");
    submit_cmd(&h, 0, offset += 10, 0, "SELECT 0");
    submit_cmd(&h, 0, offset += 10, 0, "PUBLISH channel message");
    wait_idle(&h);
    cr_assert_eq(h.ack_went_back, 0);
    cr_assert_eq(h.last_ack[0], (int64_t)offset);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->commands_written, 50 + 7u, "written %llu sent %llu",
                 (unsigned long long)stats->commands_written,
                 (unsigned long long)stats->commands_sent);
    cr_assert_eq(stats->errors, 0u);
    cr_assert_eq(stats->redirects, 0u);
    /* SET, INCR x50, RPUSH x2, MSET in 3, MSET in 2 (MSETNX), DEL in 3 (b, c, list:
     * list shares no slot with b or c), EXPIRE. */
    cr_assert_eq(stats->commands_sent, 1 + 50 + 2 + 3 + 2 + 3 + 1u);
    cluster_expect_string(&cluster, "a", "2");
    cluster_expect_string(&cluster, "counter", "50");
    cluster_expect_string(&cluster, "d", "5");
    cluster_expect_string(&cluster, "e", "6");
    cr_assert_eq(cluster_integer(&cluster, "b", "EXISTS %s"), 0);
    cr_assert_eq(cluster_integer(&cluster, "c", "EXISTS %s"), 0);
    cr_assert_eq(cluster_integer(&cluster, "list", "EXISTS %s"), 0);
    long long ttl = cluster_integer(&cluster, "a", "TTL %s");
    cr_assert(ttl > 990 && ttl <= 1000, "TTL a = %lld", ttl);

    /* Stall one master: acks stop just before the first entry routed there. */
    char held[32], free_key[32];
    key_on_node(&cluster, 1, 0, "held:", held, sizeof(held));
    key_on_node(&cluster, 1, 1, "free:", free_key, sizeof(free_key));
    redisContext *paused = test_server_connect(&cluster.nodes[1]);
    freeReplyObject(harness_command(paused, "CLIENT PAUSE 1000 WRITE"));
    char line[128];
    snprintf(line, sizeof(line), "SET %s 1", free_key);
    submit_cmd(&h, 0, 10000, 0, line);
    snprintf(line, sizeof(line), "SET %s 2", held);
    submit_cmd(&h, 0, 10100, 0, line);
    snprintf(line, sizeof(line), "INCR %s", free_key);
    submit_cmd(&h, 0, 10200, 0, line);
    char err[256];
    struct shake_entry *key = string_key(0, "{free}restored", "v");
    cr_assert_eq(writer_submit(h.writer, key, err, sizeof(err)), 0, "%s", err);
    submit_cmd(&h, 0, 10300, 0, "PING");
    harness_run_for(&h, 0.3);
    cr_assert_eq(h.last_ack[0], 10000);
    cr_assert_eq(writer_in_flight(h.writer), 1u, "only SET held awaits its reply");
    wait_idle(&h);
    cr_assert_eq(h.last_ack[0], 10300);
    cr_assert_eq(h.ack_went_back, 0);
    cluster_expect_string(&cluster, held, "2");
    cluster_expect_string(&cluster, free_key, "2");
    redisFree(paused);
    harness_fini(&h);
    test_cluster_stop(&cluster);
}

Test(writer_cmd_cluster, renames_across_slots_and_transactions, .timeout = 180) {
    struct test_cluster cluster;
    cr_assert_eq(test_cluster_start(&cluster, 3), 0);
    struct writer_harness h;
    harness_init(&h, cluster.nodes[2].port);
    harness_start_ready(&h);
    uint64_t offset = 0;
    /* RENAME of a key with a TTL, then commands on both keys that must come after. */
    submit_cmd(&h, 0, offset += 10, 0, "SET {a}src value PX 100000");
    submit_cmd(&h, 0, offset += 10, 0, "RENAME {a}src {b}dst");
    submit_cmd(&h, 0, offset += 10, 0, "APPEND {b}dst -more");
    submit_cmd(&h, 0, offset += 10, 0, "SET {a}src again");
    /* RENAMENX onto an existing key: nothing changes. */
    submit_cmd(&h, 0, offset += 10, 0, "SET {a}nx kept-source");
    submit_cmd(&h, 0, offset += 10, 0, "SET {b}nx kept-destination");
    submit_cmd(&h, 0, offset += 10, 0, "RENAMENX {a}nx {b}nx");
    /* RENAMENX onto a free key renames. */
    submit_cmd(&h, 0, offset += 10, 0, "SET {a}nx2 moved");
    submit_cmd(&h, 0, offset += 10, 0, "RENAMENX {a}nx2 {b}nx2");
    /* A RENAME in one slot is forwarded as is. */
    submit_cmd(&h, 0, offset += 10, 0, "SET {a}x 1");
    submit_cmd(&h, 0, offset += 10, 0, "RENAME {a}x {a}y");
    /* A transaction in one slot stays one; across slots it is split. */
    submit_cmd(&h, 0, offset += 10, 0, "MULTI");
    submit_cmd(&h, 0, offset += 10, 0, "SET {t}a 1");
    submit_cmd(&h, 0, offset += 10, 0, "INCR {t}b");
    submit_cmd(&h, 0, offset += 10, 0, "EXEC");
    submit_cmd(&h, 0, offset += 10, 0, "MULTI");
    submit_cmd(&h, 0, offset += 10, 0, "SET {u}a 1");
    submit_cmd(&h, 0, offset += 10, 0, "RENAME {u}a {v}a");
    submit_cmd(&h, 0, offset += 10, 0, "SET {w}a 2");
    submit_cmd(&h, 0, offset += 10, 0, "EXEC");
    submit_cmd(&h, 0, offset += 10, 0, "INCR {v}a");
    wait_idle(&h);
    cr_assert_eq(h.ack_went_back, 0);
    cr_assert_eq(h.last_ack[0], (int64_t)offset);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->errors, 0u, "%s", h.last_key_error);
    cr_assert_eq(stats->renames_emulated, 4u);
    cr_assert_eq(stats->transactions_split, 1u);
    cr_assert_eq(stats->commands_written, offset / 10 - 4, "all but MULTI and EXEC x2");

    cluster_expect_string(&cluster, "{b}dst", "value-more");
    long long pttl = cluster_integer(&cluster, "{b}dst", "PTTL %s");
    cr_assert(pttl > 90000 && pttl <= 100000, "PTTL {b}dst = %lld", pttl);
    cluster_expect_string(&cluster, "{a}src", "again");
    cr_assert_eq(cluster_integer(&cluster, "{a}src", "PTTL %s"), -1);
    cluster_expect_string(&cluster, "{a}nx", "kept-source");
    cluster_expect_string(&cluster, "{b}nx", "kept-destination");
    cr_assert_eq(cluster_integer(&cluster, "{a}nx2", "EXISTS %s"), 0);
    cluster_expect_string(&cluster, "{b}nx2", "moved");
    cluster_expect_string(&cluster, "{a}y", "1");
    cluster_expect_string(&cluster, "{t}a", "1");
    cluster_expect_string(&cluster, "{t}b", "1");
    cluster_expect_string(&cluster, "{v}a", "2");
    cluster_expect_string(&cluster, "{w}a", "2");
    cr_assert_eq(cluster_integer(&cluster, "{u}a", "EXISTS %s"), 0);
    redisContext *redis = node_for(&cluster, "{t}a");
    cr_assert_eq(command_calls(redis, "exec"), 1, "the one-slot transaction is kept whole");
    redisFree(redis);
    harness_fini(&h);
    test_cluster_stop(&cluster);
}

Test(writer_cmd_cluster, unsupported_commands_fail_or_are_skipped, .timeout = 180) {
    struct test_cluster cluster;
    cr_assert_eq(test_cluster_start(&cluster, 3), 0);
    struct writer_harness h;
    harness_init(&h, cluster.nodes[0].port);
    harness_start_ready(&h);
    char err[512] = "";
    struct shake_entry *entry = cmd_entry(0, 10, 0, "SUNIONSTORE a b c");
    cr_assert_eq(writer_submit(h.writer, entry, err, sizeof(err)), -1);
    shake_entry_free(entry);
    cr_assert_str_eq(err, "\"SUNIONSTORE\": keys in different slots, and no faithful split on a "
                          "cluster target: \"a\" (slot 15495), \"b\" (slot 3300), \"c\" (slot "
                          "7365)");
    entry = cmd_entry(0, 20, 1, "SET a 1");
    cr_assert_eq(writer_submit(h.writer, entry, err, sizeof(err)), -1);
    shake_entry_free(entry);
    cr_assert_str_eq(err, "command 'SET' is in db 1, but a cluster target has only db 0; map it "
                          "with [target] db_map = 1:0");
    submit_cmd(&h, 0, 30, 0, "SET z 1");
    wait_idle(&h);
    cr_assert_eq(h.last_ack[0], 30, "refused entries take no place in the ack order");
    harness_fini(&h);

    harness_init(&h, cluster.nodes[0].port);
    h.conf.target.on_unsupported = CONF_ON_UNSUPPORTED_SKIP;
    harness_start_ready(&h);
    submit_cmd(&h, 0, 10, 0, "SADD b x");
    submit_cmd(&h, 0, 20, 0, "SUNIONSTORE a b c");
    submit_cmd(&h, 0, 30, 0, "SADD c y");
    wait_idle(&h);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->commands_skipped, 1u);
    cr_assert_eq(stats->commands_written, 2u);
    cr_assert_eq(h.key_errors, 1);
    cr_assert_str_eq(h.last_key_error,
                     "skipped (on_unsupported = skip): \"SUNIONSTORE\": keys in different slots, "
                     "and no faithful split on a cluster target: \"a\" (slot 15495), \"b\" (slot "
                     "3300), \"c\" (slot 7365)");
    cr_assert_eq(h.last_ack[0], 30);
    cr_assert_eq(cluster_integer(&cluster, "a", "EXISTS %s"), 0);
    cr_assert_eq(cluster_integer(&cluster, "c", "SCARD %s"), 1);
    harness_fini(&h);
    test_cluster_stop(&cluster);
}
