/* test_writer.c -- the writer against real servers (test/unit/support/server.h):
 * a standalone redis-server and a 3-master cluster. Entries go in through
 * writer_submit on a libev loop; results are read back with hiredis sync
 * connections and compared exactly (values, list order, TTLs, db, stats).
 * Covers: probe, db switching, pipelining bounds and `drained`, cluster routing,
 * MOVED and ASK, BUSY back-off, reconnect and resend, give-up, AUTH, refused
 * connects, db != 0 on a cluster, on_existing = skip, key errors and OOM. */
#include <criterion/criterion.h>
#include <ev.h>
#include <fcntl.h>
#include <hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/conf.h"
#include "shake/crc16.h"
#include "shake/entry.h"
#include "test/unit/support/server.h"
#include "test/unit/support/writer_harness.h"
#include "writer/restore.h"
#include "writer/writer.h"

static int64_t now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A KEY entry for a string: rdb_type 0, raw = RDB length (6 or 14 bit) + bytes. */
static struct shake_entry *string_key(const char *key, const char *value, size_t value_len, int db,
                                      int64_t expire_ms) {
    cr_assert(value_len < 16384);
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_KEY);
    entry->db = db;
    entry->key = strdup(key);
    entry->key_len = strlen(key);
    entry->type = SHAKE_TYPE_STRING;
    entry->rdb_type = 0;
    entry->expire_ms = expire_ms;
    entry->raw = malloc(value_len + 2);
    size_t n = 0;
    if (value_len < 64) {
        entry->raw[n++] = (char)value_len;
    } else {
        entry->raw[n++] = (char)(0x40 | (value_len >> 8));
        entry->raw[n++] = (char)(value_len & 0xff);
    }
    memcpy(entry->raw + n, value, value_len);
    entry->raw_len = n + value_len;
    return entry;
}

/* A CHUNK entry of list elements "<prefix><first>".."<prefix><first+count-1>". */
static struct shake_entry *list_chunk(const char *key, int db, const char *prefix, int first,
                                      int count, unsigned flags, int64_t expire_ms) {
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_CHUNK);
    entry->db = db;
    entry->key = strdup(key);
    entry->key_len = strlen(key);
    entry->type = SHAKE_TYPE_LIST;
    entry->chunk_flags = flags;
    entry->expire_ms = expire_ms;
    entry->items = calloc((size_t)count, sizeof(*entry->items));
    entry->arena = malloc((size_t)count * 64);
    entry->nitems = (size_t)count;
    size_t used = 0;
    for (int i = 0; i < count; i++) {
        int len = snprintf(entry->arena + used, 64, "%s%d", prefix, first + i);
        entry->items[i].kind = SHAKE_ITEM_LIST_ELEMENT;
        entry->items[i].a.ptr = entry->arena + used;
        entry->items[i].a.len = (size_t)len;
        used += (size_t)len;
    }
    return entry;
}

/* LRANGE key 0 -1 equals "<prefix>0".."<prefix>count-1". */
static void expect_list(redisContext *redis, const char *key, const char *prefix, int count) {
    redisReply *reply = harness_command(redis, "LRANGE %s 0 -1", key);
    cr_assert_eq(reply->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(reply->elements, (size_t)count, "LLEN %s", key);
    for (int i = 0; i < count; i++) {
        char expected[64];
        snprintf(expected, sizeof(expected), "%s%d", prefix, i);
        cr_assert_str_eq(reply->element[i]->str, expected, "%s[%d]", key, i);
    }
    freeReplyObject(reply);
}

static void select_db(redisContext *redis, int db) {
    redisReply *reply = harness_command(redis, "SELECT %d", db);
    cr_assert_eq(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
}

/* Submit a list of `chunks` chunks of 100 elements each. */
static void submit_chunked_list(struct writer_harness *h, const char *key, int db, int chunks,
                                int64_t expire_ms) {
    for (int c = 0; c < chunks; c++) {
        unsigned flags =
            (c == 0 ? SHAKE_CHUNK_FIRST : 0) | (c == chunks - 1 ? SHAKE_CHUNK_LAST : 0);
        harness_submit(h, list_chunk(key, db, "e", c * 100, 100, flags, expire_ms));
    }
}

/* ---- standalone ---------------------------------------------------------------- */

Test(writer_standalone, restores_keys_and_chunks_into_two_dbs_with_ttls, .timeout = 120) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    redisContext *redis = test_server_connect(&server);
    freeReplyObject(harness_command(redis, "SET key:0 old")); /* replaced */
    freeReplyObject(harness_command(redis, "SET other kept"));

    struct writer_harness h;
    harness_init(&h, server.port);
    h.conf.target.pipeline_max_bytes = 16 * 1024; /* small: exercise full / drained */
    h.conf.target.batch_max_items = 40;
    harness_start_ready(&h);
    const struct writer_target_info *info = writer_target_info(h.writer);
    cr_assert_eq(info->is_cluster, 0);
    cr_assert_eq(info->master_count, 1);
    cr_assert_eq(info->version_major, 7);
    cr_assert_eq(info->version_minor, 0);
    cr_assert_eq(info->rdb_version, 10);
    cr_assert_eq(info->proto_max_bulk_len, (size_t)512 * 1024 * 1024);
    cr_assert_eq(info->keys, 2u);
    cr_assert(info->restorable_types & (1u << 19));
    cr_assert(!(info->restorable_types & (1u << 20)));

    int64_t expire = now_ms() + 100000;
    const int keys = 3000;
    int drained_calls = 0;
    for (int i = 0; i < keys; i++) {
        char key[32], value[64];
        snprintf(key, sizeof(key), "key:%d", i);
        int len = snprintf(value, sizeof(value), "value:%d", i);
        /* Alternate dbs often, to exercise SELECT. */
        int db = (i / 7) % 2 == 0 ? 0 : 2;
        harness_submit(
            &h, string_key(key, value, (size_t)len, db, i % 3 == 0 ? expire : SHAKE_NO_EXPIRE));
        drained_calls += h.drained;
        if (i % 500 == 0) {
            snprintf(key, sizeof(key), "list:%d", i);
            submit_chunked_list(&h, key, db, 3, i % 1000 == 0 ? expire : SHAKE_NO_EXPIRE);
        }
    }
    harness_wait_idle(&h);
    cr_assert_gt(drained_calls, 0, "a 16 KB pipeline must have filled and drained");
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->keys_written, (uint64_t)keys + 6);
    cr_assert_eq(stats->errors, 0u);
    cr_assert_eq(stats->keys_skipped, 0u);
    cr_assert_eq(stats->redirects, 0u);
    cr_assert_eq(h.key_errors, 0);

    int in_db0 = 0, in_db2 = 0;
    for (int i = 0; i < keys; i++) {
        char key[32], value[64];
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(value, sizeof(value), "value:%d", i);
        int db = (i / 7) % 2 == 0 ? 0 : 2;
        if (db == 0)
            in_db0++;
        else
            in_db2++;
        select_db(redis, db);
        harness_expect_string(redis, key, value);
        long long pttl = harness_integer(redis, "PTTL %s", key);
        if (i % 3 == 0)
            cr_assert(pttl > 90000 && pttl <= 100000, "PTTL %s = %lld", key, pttl);
        else
            cr_assert_eq(pttl, -1, "PTTL %s", key);
    }
    for (int i = 0; i < keys; i += 500) {
        char key[32];
        snprintf(key, sizeof(key), "list:%d", i);
        select_db(redis, (i / 7) % 2 == 0 ? 0 : 2);
        expect_list(redis, key, "e", 300);
        long long pttl = harness_integer(redis, "PTTL %s", key);
        if (i % 1000 == 0)
            cr_assert(pttl > 90000 && pttl <= 100000, "PTTL %s = %lld", key, pttl);
        else
            cr_assert_eq(pttl, -1);
    }
    int lists_db0 = 0;
    for (int i = 0; i < keys; i += 500)
        lists_db0 += (i / 7) % 2 == 0;
    select_db(redis, 0);
    cr_assert_eq(harness_integer(redis, "DBSIZE"), in_db0 + lists_db0 + 1,
                 "db0: keys + lists + 'other'");
    harness_expect_string(redis, "other", "kept");
    select_db(redis, 2);
    cr_assert_eq(harness_integer(redis, "DBSIZE"), in_db2 + 6 - lists_db0);
    /* A RESTORE per key; per list DEL + 3 chunks x 3 RPUSH (40 + 40 + 20), and
     * PEXPIREAT for the 3 lists with a TTL. SELECTs are not counted. */
    cr_assert_eq(stats->commands_sent, (uint64_t)keys + 6 * (1 + 3 * 3) + 3);
    redisFree(redis);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_standalone, skip_keeps_target_keys_and_counts_them, .timeout = 60) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    redisContext *redis = test_server_connect(&server);
    freeReplyObject(harness_command(redis, "SET a old"));
    struct writer_harness h;
    harness_init(&h, server.port);
    h.conf.target.on_existing = CONF_ON_EXISTING_SKIP;
    harness_start_ready(&h);
    harness_submit(&h, string_key("a", "new", 3, 0, SHAKE_NO_EXPIRE));
    harness_submit(&h, string_key("b", "new", 3, 0, SHAKE_NO_EXPIRE));
    harness_wait_idle(&h);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->keys_skipped, 1u);
    cr_assert_eq(stats->keys_written, 1u);
    cr_assert_eq(stats->errors, 0u);
    harness_expect_string(redis, "a", "old");
    harness_expect_string(redis, "b", "new");
    redisFree(redis);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_standalone, an_error_reply_fails_the_key_and_the_rest_goes_on, .timeout = 60) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    redisContext *redis = test_server_connect(&server);
    freeReplyObject(harness_command(redis, "SET s string"));
    struct writer_harness h;
    harness_init(&h, server.port);
    h.conf.target.on_existing = CONF_ON_EXISTING_ERROR; /* no DEL before RPUSH */
    harness_start_ready(&h);
    harness_submit(&h, list_chunk("s", 0, "e", 0, 3, SHAKE_CHUNK_FIRST, SHAKE_NO_EXPIRE));
    harness_submit(&h, list_chunk("s", 0, "e", 3, 3, SHAKE_CHUNK_LAST, SHAKE_NO_EXPIRE));
    harness_submit(&h, string_key("after", "yes", 3, 0, SHAKE_NO_EXPIRE));
    harness_wait_idle(&h);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->errors, 2u);
    cr_assert_eq(stats->keys_written, 1u, "the list must not count as written");
    cr_assert_eq(h.key_errors, 2);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "target 127.0.0.1:%d: key 's': WRONGTYPE Operation against a key holding the wrong "
             "kind of value",
             server.port);
    cr_assert_str_eq(h.last_key_error, expected);
    harness_expect_string(redis, "s", "string");
    harness_expect_string(redis, "after", "yes");
    redisFree(redis);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_standalone, oom_is_fatal_and_names_node_and_key, .timeout = 60) {
    const char *args[] = {"--maxmemory", "2mb", "--maxmemory-policy", "noeviction", NULL};
    struct test_server server;
    cr_assert_eq(test_server_start(&server, args), 0);
    struct writer_harness h;
    harness_init(&h, server.port);
    harness_start_ready(&h);
    static char value[10000];
    memset(value, 'x', sizeof(value));
    for (int i = 0; i < 1000 && !h.failed; i++) {
        char key[32];
        snprintf(key, sizeof(key), "big:%d", i);
        char err[256];
        if (writer_is_full(h.writer)) harness_run_until(&h, harness_drained_or_failed, 10);
        struct shake_entry *entry = string_key(key, value, sizeof(value), 0, SHAKE_NO_EXPIRE);
        if (writer_submit(h.writer, entry, err, sizeof(err)) < 0) {
            shake_entry_free(entry);
            break;
        }
        harness_run_for(&h, 0.0005);
    }
    cr_assert(harness_run_until(&h, harness_failed, 30), "no OOM failure");
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "target 127.0.0.1:%d: key 'big:", server.port);
    cr_assert_eq(strncmp(h.failure, prefix, strlen(prefix)), 0, "%s", h.failure);
    cr_assert_not_null(
        strstr(h.failure, "': OOM command not allowed when used memory > 'maxmemory'"), "%s",
        h.failure);
    char err[256];
    struct shake_entry *late = string_key("late", "x", 1, 0, SHAKE_NO_EXPIRE);
    cr_assert_eq(writer_submit(h.writer, late, err, sizeof(err)), -1);
    shake_entry_free(late);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_standalone, wrong_password_fails_with_the_server_message, .timeout = 60) {
    const char *args[] = {"--requirepass", "secret", NULL};
    struct test_server server;
    cr_assert_eq(test_server_start(&server, args), 0);
    struct writer_harness h;
    harness_init(&h, server.port);
    h.conf.target.password = strdup("wrong");
    harness_start(&h);
    cr_assert(harness_run_until(&h, harness_ready_or_failed, 10));
    cr_assert_eq(h.ready, 0);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "target 127.0.0.1:%d: authentication failed: WRONGPASS invalid username-password "
             "pair or user is disabled.",
             server.port);
    cr_assert_str_eq(h.failure, expected);
    harness_fini(&h);

    /* The right password, with the username form of AUTH. */
    harness_init(&h, server.port);
    h.conf.target.username = strdup("default");
    h.conf.target.password = strdup("secret");
    harness_start_ready(&h);
    harness_submit(&h, string_key("k", "v", 1, 0, SHAKE_NO_EXPIRE));
    harness_wait_idle(&h);
    cr_assert_eq(writer_stats(h.writer)->keys_written, 1u);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_standalone, unreachable_port_fails_with_connection_refused, .timeout = 30) {
    int port = test_server_unused_port();
    struct writer_harness h;
    harness_init(&h, port);
    harness_start(&h);
    cr_assert_eq(h.failed, 0, "failures are reported from the loop, not from writer_start");
    cr_assert(harness_run_until(&h, harness_ready_or_failed, 10));
    char expected[128];
    snprintf(expected, sizeof(expected), "target 127.0.0.1:%d: connect: Connection refused", port);
    cr_assert_str_eq(h.failure, expected);
    harness_fini(&h);
}

Test(writer_standalone, a_dropped_connection_is_reopened_and_unanswered_commands_resent,
     .timeout = 60) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    redisContext *redis = test_server_connect(&server);
    struct writer_harness h;
    harness_init(&h, server.port);
    harness_start_ready(&h);
    /* Hold every write, let the writer send, then kill its connection. */
    freeReplyObject(harness_command(redis, "CLIENT PAUSE 20000 WRITE"));
    for (int i = 0; i < 100; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        harness_submit(&h, string_key(key, key, strlen(key), 2, SHAKE_NO_EXPIRE));
    }
    harness_run_for(&h, 0.2);
    cr_assert_eq(writer_stats(h.writer)->keys_written, 0u);
    cr_assert_eq(harness_integer(redis, "CLIENT KILL TYPE normal SKIPME yes"), 1);
    freeReplyObject(harness_command(redis, "CLIENT UNPAUSE"));
    harness_wait_idle(&h);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->retries, 100u);
    cr_assert_eq(stats->keys_written, 100u);
    cr_assert_eq(stats->errors, 0u);
    select_db(redis, 2);
    cr_assert_eq(harness_integer(redis, "DBSIZE"), 100);
    harness_expect_string(redis, "k99", "k99");
    select_db(redis, 0);
    cr_assert_eq(harness_integer(redis, "DBSIZE"), 0, "the resend must SELECT again");
    redisFree(redis);
    harness_fini(&h);
    test_server_stop(&server);
}

Test(writer_standalone, a_node_that_stays_down_fails_after_the_give_up_time, .timeout = 60) {
    struct test_server server;
    cr_assert_eq(test_server_start(&server, NULL), 0);
    struct writer_harness h;
    harness_init(&h, server.port);
    harness_start_ready(&h);
    writer_set_give_up_ms(h.writer, 300);
    int port = server.port;
    test_server_stop(&server);
    harness_submit(&h, string_key("k", "v", 1, 0, SHAKE_NO_EXPIRE));
    cr_assert(harness_run_until(&h, harness_failed, 10));
    char expected[256];
    snprintf(expected, sizeof(expected),
             "target 127.0.0.1:%d: connection lost (connect: Connection refused); gave up "
             "reconnecting after 0.3 s",
             port);
    cr_assert_str_eq(h.failure, expected);
    harness_fini(&h);
}

/* Stop the busy script from a timer while the writer backs off. */
static void kill_script(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop;
    (void)revents;
    struct test_server *server = timer->data;
    redisContext *redis = test_server_connect(server);
    redisReply *reply = redisCommand(redis, "SCRIPT KILL");
    if (reply != NULL) freeReplyObject(reply);
    redisFree(redis);
}

Test(writer_standalone, busy_replies_back_off_and_resend_in_order, .timeout = 60) {
    const char *args[] = {"--busy-reply-threshold", "50", NULL};
    struct test_server server;
    cr_assert_eq(test_server_start(&server, args), 0);
    struct writer_harness h;
    harness_init(&h, server.port);
    harness_start_ready(&h);
    redisContext *script = test_server_connect(&server);
    cr_assert_eq(redisAppendCommand(script, "EVAL %s 0", "while true do end"), REDIS_OK);
    int done = 0;
    while (!done)
        cr_assert_eq(redisBufferWrite(script, &done), REDIS_OK);
    usleep(200 * 1000);
    submit_chunked_list(&h, "busy:list", 0, 5, SHAKE_NO_EXPIRE);
    for (int i = 0; i < 20; i++) {
        char key[32];
        snprintf(key, sizeof(key), "busy:%d", i);
        harness_submit(&h, string_key(key, key, strlen(key), 0, SHAKE_NO_EXPIRE));
    }
    ev_timer killer;
    ev_timer_init(&killer, kill_script, 0.5, 0.);
    killer.data = &server;
    ev_timer_start(h.loop, &killer);
    harness_wait_idle(&h);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_geq(stats->retries, 21u);
    cr_assert_eq(stats->keys_written, 21u);
    cr_assert_eq(stats->errors, 0u);
    redisFree(script);
    redisContext *redis = test_server_connect(&server);
    expect_list(redis, "busy:list", "e", 500);
    harness_expect_string(redis, "busy:19", "busy:19");
    redisFree(redis);
    harness_fini(&h);
    test_server_stop(&server);
}

/* ---- cluster ------------------------------------------------------------------- */

/* owner[slot] = index of the node serving it, from node 0's CLUSTER SLOTS. */
static void cluster_owners(const struct test_cluster *cluster, int *owner) {
    redisContext *redis = test_server_connect(&cluster->nodes[0]);
    redisReply *reply = harness_command(redis, "CLUSTER SLOTS");
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++)
        owner[s] = -1;
    for (size_t i = 0; i < reply->elements; i++) {
        redisReply *range = reply->element[i];
        long long port = range->element[2]->element[1]->integer;
        int node = -1;
        for (int n = 0; n < cluster->count; n++) {
            if (cluster->nodes[n].port == port) node = n;
        }
        for (long long s = range->element[0]->integer; s <= range->element[1]->integer; s++) {
            owner[s] = node;
        }
    }
    freeReplyObject(reply);
    redisFree(redis);
}

Test(writer_cluster, restores_keys_over_all_slots_and_refuses_other_dbs, .timeout = 120) {
    struct test_cluster cluster;
    cr_assert_eq(test_cluster_start(&cluster, 3), 0);
    struct writer_harness h;
    harness_init(&h, cluster.nodes[1].port);
    h.conf.target.pipeline_max_bytes = 64 * 1024;
    harness_start_ready(&h);
    const struct writer_target_info *info = writer_target_info(h.writer);
    cr_assert_eq(info->is_cluster, 1);
    cr_assert_eq(info->master_count, 3);
    cr_assert_eq(info->keys, 0u);
    cr_assert_eq(info->rdb_version, 10);

    char err[512];
    struct shake_entry *wrong_db = string_key("k", "v", 1, 3, SHAKE_NO_EXPIRE);
    cr_assert_eq(writer_submit(h.writer, wrong_db, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "key 'k' is in db 3, but a cluster target has only db 0; map it with "
                          "[target] db_map = 3:0");
    shake_entry_free(wrong_db);

    int64_t expire = now_ms() + 100000;
    const int keys = 6000;
    for (int i = 0; i < keys; i++) {
        char key[32], value[64];
        snprintf(key, sizeof(key), "key:%d", i);
        int len = snprintf(value, sizeof(value), "value:%d", i);
        harness_submit(
            &h, string_key(key, value, (size_t)len, 0, i % 4 == 0 ? expire : SHAKE_NO_EXPIRE));
        if (i % 1000 == 0) {
            snprintf(key, sizeof(key), "list:%d", i);
            submit_chunked_list(&h, key, 0, 4, SHAKE_NO_EXPIRE);
        }
    }
    /* A function library goes to every master. */
    struct shake_entry *function = shake_entry_new(SHAKE_ENTRY_FUNCTION);
    function->key = strdup("#!lua name=shakelib\n"
                           "redis.register_function('shake_echo', function(keys, args) return "
                           "args[1] end)");
    function->key_len = strlen(function->key);
    harness_submit(&h, function);
    harness_wait_idle(&h);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->keys_written, (uint64_t)keys + 6, "a function is not a key");
    cr_assert_eq(stats->errors, 0u);
    cr_assert_eq(stats->redirects, 0u);

    static int owner[CLUSTER_SLOTS];
    cluster_owners(&cluster, owner);
    redisContext *nodes[3];
    for (int n = 0; n < 3; n++)
        nodes[n] = test_server_connect(&cluster.nodes[n]);
    long long total = 0;
    for (int n = 0; n < 3; n++) {
        long long size = harness_integer(nodes[n], "DBSIZE");
        cr_assert_gt(size, 1000, "node %d holds %lld keys", n, size);
        total += size;
    }
    cr_assert_eq(total, keys + 6);
    for (int i = 0; i < keys; i++) {
        char key[32], value[64];
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(value, sizeof(value), "value:%d", i);
        redisContext *redis = nodes[owner[key_hash_slot(key, strlen(key))]];
        harness_expect_string(redis, key, value);
        long long pttl = harness_integer(redis, "PTTL %s", key);
        if (i % 4 == 0)
            cr_assert(pttl > 90000 && pttl <= 100000, "PTTL %s = %lld", key, pttl);
        else
            cr_assert_eq(pttl, -1);
    }
    for (int i = 0; i < keys; i += 1000) {
        char key[32];
        snprintf(key, sizeof(key), "list:%d", i);
        expect_list(nodes[owner[key_hash_slot(key, strlen(key))]], key, "e", 400);
    }
    for (int n = 0; n < 3; n++) {
        redisReply *reply = harness_command(nodes[n], "FCALL shake_echo 0 hello");
        cr_assert_eq(reply->type, REDIS_REPLY_STRING, "node %d: %s", n, reply->str);
        cr_assert_str_eq(reply->str, "hello");
        freeReplyObject(reply);
        redisFree(nodes[n]);
    }
    harness_fini(&h);
    test_cluster_stop(&cluster);
}

Test(writer_cluster, follows_moved_after_a_slot_moved_and_keeps_key_order, .timeout = 120) {
    struct test_cluster cluster;
    cr_assert_eq(test_cluster_start(&cluster, 3), 0);
    struct writer_harness h;
    harness_init(&h, cluster.nodes[0].port);
    harness_start_ready(&h);

    unsigned slot = key_hash_slot("{moved}", 7);
    int from = test_cluster_slot_owner(&cluster, slot);
    int to = (from + 1) % 3;
    cr_assert_eq(test_cluster_move_slot(&cluster, slot, to), 0);
    cr_assert_eq(test_cluster_slot_owner(&cluster, slot), to);

    submit_chunked_list(&h, "{moved}:list", 0, 5, SHAKE_NO_EXPIRE);
    for (int i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof(key), "{moved}:%d", i);
        harness_submit(&h, string_key(key, key, strlen(key), 0, SHAKE_NO_EXPIRE));
    }
    harness_wait_idle(&h);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_geq(stats->redirects, 1u);
    cr_assert_eq(stats->keys_written, 51u);
    cr_assert_eq(stats->errors, 0u);
    uint64_t redirects = stats->redirects;

    /* With the map refreshed, the next key goes straight to the new owner. */
    harness_submit(&h, string_key("{moved}:late", "late", 4, 0, SHAKE_NO_EXPIRE));
    harness_wait_idle(&h);
    cr_assert_eq(stats->redirects, redirects);

    redisContext *redis = test_server_connect(&cluster.nodes[to]);
    expect_list(redis, "{moved}:list", "e", 500);
    harness_expect_string(redis, "{moved}:49", "{moved}:49");
    harness_expect_string(redis, "{moved}:late", "late");
    cr_assert_eq(harness_integer(redis, "CLUSTER COUNTKEYSINSLOT %u", slot), 52);
    redisFree(redis);
    harness_fini(&h);
    test_cluster_stop(&cluster);
}

Test(writer_cluster, follows_ask_during_a_migration, .timeout = 120) {
    struct test_cluster cluster;
    cr_assert_eq(test_cluster_start(&cluster, 3), 0);
    struct writer_harness h;
    harness_init(&h, cluster.nodes[0].port);
    harness_start_ready(&h);

    unsigned slot = key_hash_slot("{ask}", 5);
    int from = test_cluster_slot_owner(&cluster, slot);
    int to = (from + 1) % 3;
    char from_id[41], to_id[41];
    cr_assert_eq(test_cluster_node_id(&cluster, from, from_id), 0);
    cr_assert_eq(test_cluster_node_id(&cluster, to, to_id), 0);
    redisContext *source = test_server_connect(&cluster.nodes[from]);
    redisContext *target = test_server_connect(&cluster.nodes[to]);
    freeReplyObject(harness_command(target, "CLUSTER SETSLOT %u IMPORTING %s", slot, from_id));
    freeReplyObject(harness_command(source, "CLUSTER SETSLOT %u MIGRATING %s", slot, to_id));

    harness_submit(&h, string_key("{ask}:a", "A", 1, 0, SHAKE_NO_EXPIRE));
    harness_wait_idle(&h);
    const struct writer_stats *stats = writer_stats(h.writer);
    cr_assert_eq(stats->redirects, 1u);
    cr_assert_eq(stats->keys_written, 1u);
    cr_assert_eq(harness_integer(source, "CLUSTER COUNTKEYSINSLOT %u", slot), 0);
    cr_assert_eq(harness_integer(target, "CLUSTER COUNTKEYSINSLOT %u", slot), 1);
    freeReplyObject(harness_command(target, "ASKING"));
    harness_expect_string(target, "{ask}:a", "A");
    redisFree(source);
    redisFree(target);
    harness_fini(&h);
    test_cluster_stop(&cluster);
}

/* ---- speed ----------------------------------------------------------------------- */

static double seconds_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void flush_cluster(const struct test_cluster *cluster) {
    for (int n = 0; n < cluster->count; n++) {
        redisContext *redis = test_server_connect(&cluster->nodes[n]);
        freeReplyObject(harness_command(redis, "FLUSHALL"));
        redisFree(redis);
    }
}

/* `redis-cli --pipe` per master, in parallel, each fed its masters' RESTOREs. */
static double replay_with_redis_cli(const struct test_cluster *cluster, char paths[][64]) {
    double start = seconds_now();
    pid_t pids[TEST_CLUSTER_MAX_NODES];
    for (int n = 0; n < cluster->count; n++) {
        pids[n] = fork();
        if (pids[n] == 0) {
            int fd = open(paths[n], O_RDONLY);
            int null = open("/dev/null", O_WRONLY);
            dup2(fd, 0);
            dup2(null, 1);
            char port[16];
            snprintf(port, sizeof(port), "%d", cluster->nodes[n].port);
            execlp("redis-cli", "redis-cli", "-p", port, "--pipe", (char *)NULL);
            _exit(127);
        }
    }
    for (int n = 0; n < cluster->count; n++) {
        int status = 0;
        waitpid(pids[n], &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "redis-cli --pipe failed");
    }
    return seconds_now() - start;
}

/* CPU seconds (user + sys) the cluster's servers have used so far. */
static double cluster_cpu(const struct test_cluster *cluster) {
    double total = 0;
    for (int n = 0; n < cluster->count; n++) {
        redisContext *redis = test_server_connect(&cluster->nodes[n]);
        redisReply *reply = harness_command(redis, "INFO cpu");
        const char *user = strstr(reply->str, "used_cpu_user:");
        const char *sys = strstr(reply->str, "used_cpu_sys:");
        if (user != NULL) total += atof(user + strlen("used_cpu_user:"));
        if (sys != NULL) total += atof(sys + strlen("used_cpu_sys:"));
        freeReplyObject(reply);
        redisFree(redis);
    }
    return total;
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

/* One timed load of `keys` string keys through a fresh writer; entries are built
 * before the clock starts. */
static double writer_round(const struct test_cluster *cluster, int keys, const char *value,
                           size_t value_len, double *cpu) {
    struct shake_entry **entries = malloc((size_t)keys * sizeof(*entries));
    for (int i = 0; i < keys; i++) {
        char key[32];
        snprintf(key, sizeof(key), "bench:%d", i);
        entries[i] = string_key(key, value, value_len, 0, SHAKE_NO_EXPIRE);
    }
    struct writer_harness h;
    harness_init(&h, cluster->nodes[0].port);
    harness_start_ready(&h);
    double cpu_start = cpu_seconds();
    double start = seconds_now();
    for (int i = 0; i < keys; i++)
        harness_submit(&h, entries[i]);
    harness_wait_idle(&h);
    double seconds = seconds_now() - start;
    *cpu = cpu_seconds() - cpu_start;
    fprintf(stderr, "  round: %.3f s, %d waits for drained (%.3f s)\n", seconds, h.waits,
            h.waited_s);
    cr_assert_eq(writer_stats(h.writer)->keys_written, (uint64_t)keys);
    harness_fini(&h);
    free(entries);
    return seconds;
}

/* Not a unit test: SHAKE_WRITER_BENCH=1 compares the writer with redis-cli --pipe
 * replaying the same RESTORE commands into a local 3-master cluster. */
Test(writer_speed, restore_rate_against_redis_cli_pipe, .timeout = 600) {
    if (getenv("SHAKE_WRITER_BENCH") == NULL) cr_skip_test("set SHAKE_WRITER_BENCH=1");
    const int keys =
        getenv("SHAKE_WRITER_BENCH_KEYS") ? atoi(getenv("SHAKE_WRITER_BENCH_KEYS")) : 200000;
    const size_t value_len = getenv("SHAKE_WRITER_BENCH_VALUE")
                                 ? (size_t)atoi(getenv("SHAKE_WRITER_BENCH_VALUE"))
                                 : 1000;
    struct test_cluster cluster;
    cr_assert_eq(test_cluster_start(&cluster, 3), 0);
    static int owner[CLUSTER_SLOTS];
    cluster_owners(&cluster, owner);
    char *value = malloc(value_len);
    for (size_t i = 0; i < value_len; i++)
        value[i] = (char)('a' + i % 26);

    /* The same RESTORE commands, split per master, for redis-cli. */
    char paths[3][64];
    FILE *files[3];
    for (int n = 0; n < 3; n++) {
        snprintf(paths[n], sizeof(paths[n]), "%s/pipe.resp", cluster.nodes[n].dir);
        files[n] = fopen(paths[n], "w");
    }
    struct restore_options options = {.rdb_version = 10, .replace = 1, .keep_lru_lfu = 1};
    for (int i = 0; i < keys; i++) {
        char key[32];
        snprintf(key, sizeof(key), "bench:%d", i);
        struct shake_entry *entry = string_key(key, value, value_len, 0, SHAKE_NO_EXPIRE);
        struct command_list list;
        command_list_init(&list);
        cr_assert_eq(restore_build(entry, &options, &list), 0);
        FILE *file = files[owner[key_hash_slot(key, strlen(key))]];
        fwrite(list.items[0].resp, 1, list.items[0].len, file);
        command_list_clear(&list);
        shake_entry_free(entry);
    }
    for (int n = 0; n < 3; n++)
        fclose(files[n]);
    /* Best of a few alternating rounds: the machine is shared and noisy. */
    double cli_seconds = 1e9, writer_seconds = 1e9, writer_cpu = 0;
    for (int round = 0; round < 3; round++) {
        double server_cpu = cluster_cpu(&cluster);
        double seconds = replay_with_redis_cli(&cluster, paths);
        fprintf(stderr, "  redis-cli round: %.3f s, servers used %.3f s CPU\n", seconds,
                cluster_cpu(&cluster) - server_cpu);
        if (seconds < cli_seconds) cli_seconds = seconds;
        flush_cluster(&cluster);
        double cpu = 0;
        server_cpu = cluster_cpu(&cluster);
        seconds = writer_round(&cluster, keys, value, value_len, &cpu);
        fprintf(stderr, "  writer round: servers used %.3f s CPU, writer %.3f s\n",
                cluster_cpu(&cluster) - server_cpu, cpu);
        if (seconds < writer_seconds) {
            writer_seconds = seconds;
            writer_cpu = cpu;
        }
        flush_cluster(&cluster);
    }
    double ratio = cli_seconds / writer_seconds;
    fprintf(stderr,
            "writer: %d keys of %zu bytes in %.3f s (%.0f keys/s, %.3f s CPU); redis-cli --pipe "
            "x3: %.3f s (%.0f keys/s); ratio %.2f\n",
            keys, value_len, writer_seconds, keys / writer_seconds, writer_cpu, cli_seconds,
            keys / cli_seconds, ratio);
    cr_expect_geq(ratio, 0.9, "writer at %.2fx of redis-cli --pipe", ratio);
    free(value);
    test_cluster_stop(&cluster);
}
