/* test_restore.c -- restore_build: the exact RESP of RESTORE, the DUMP payload
 * footer (RDB version, CRC64), TTL and LRU/LFU arguments, and real round trips
 * through redis-server (DUMP, strip the footer, RESTORE, DUMP again). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "builder_server.h"
#include "shake/entry.h"
#include "writer/command.h"
#include "writer/restore.h"

/* A KEY entry over caller-owned bytes (never passed to shake_entry_free). */
static struct shake_entry key_entry(const char *key, size_t key_len, uint8_t rdb_type,
                                    const char *raw, size_t raw_len) {
    struct shake_entry entry;
    memset(&entry, 0, sizeof(entry));
    entry.kind = SHAKE_ENTRY_KEY;
    entry.key = (char *)key;
    entry.key_len = key_len;
    entry.rdb_type = rdb_type;
    entry.raw = (char *)raw;
    entry.raw_len = raw_len;
    entry.expire_ms = SHAKE_NO_EXPIRE;
    entry.idle_s = -1;
    entry.freq = -1;
    return entry;
}

static void assert_command(const struct command *command, const char *expected,
                           size_t expected_len) {
    cr_assert_eq(command->len, expected_len, "length %zu, expected %zu", command->len,
                 expected_len);
    cr_assert(memcmp(command->resp, expected, expected_len) == 0, "got %.*s", (int)command->len,
              command->resp);
}

/* "hello" as redis-server 7.0.15 DUMPs it: type 0, length 5, "hello", RDB version
 * 10, CRC64. */
static const char hello_dump[] = "\x00\x05hello\x0a\x00"
                                 "cr\xdfve4 \n";

Test(restore, writes_the_dump_payload_and_replace_exactly) {
    struct shake_entry entry = key_entry("k", 1, 0, "\x05hello", 6);
    struct restore_options options = {.rdb_version = 10, .replace = 1};
    struct command_list list;
    command_list_init(&list);
    cr_assert_eq(restore_build(&entry, &options, &list), 0);
    cr_assert_eq(list.count, 1);
    static const char expected[] = "*6\r\n$7\r\nRESTORE\r\n$1\r\nk\r\n$1\r\n0\r\n$17\r\n"
                                   "\x00\x05hello\x0a\x00"
                                   "cr\xdfve4 \n"
                                   "\r\n$6\r\nABSTTL\r\n$7\r\nREPLACE\r\n";
    assert_command(&list.items[0], expected, sizeof(expected) - 1);
    cr_assert_eq(list.items[0].busykey_is_skip, 0);
    cr_assert_eq(sizeof(hello_dump) - 1, 17);
    command_list_clear(&list);
}

Test(restore, without_replace_marks_busykey_as_skip) {
    struct shake_entry entry = key_entry("k", 1, 0, "\x05hello", 6);
    entry.expire_ms = 1700000000123LL;
    struct restore_options options = {.rdb_version = 10};
    struct command_list list;
    command_list_init(&list);
    cr_assert_eq(restore_build(&entry, &options, &list), 0);
    static const char expected[] = "*5\r\n$7\r\nRESTORE\r\n$1\r\nk\r\n$13\r\n1700000000123\r\n"
                                   "$17\r\n\x00\x05hello\x0a\x00"
                                   "cr\xdfve4 \n"
                                   "\r\n$6\r\nABSTTL\r\n";
    assert_command(&list.items[0], expected, sizeof(expected) - 1);
    cr_assert_eq(list.items[0].busykey_is_skip, 1);
    command_list_clear(&list);
}

Test(restore, an_expire_at_the_epoch_stays_expired_not_persistent) {
    struct shake_entry entry = key_entry("k", 1, 0, "\x05hello", 6);
    entry.expire_ms = 0;
    struct restore_options options = {.rdb_version = 10, .replace = 1};
    struct command_list list;
    command_list_init(&list);
    cr_assert_eq(restore_build(&entry, &options, &list), 0);
    cr_assert(memmem(list.items[0].resp, list.items[0].len, "\r\n$1\r\n1\r\n$17\r\n", 14));
    command_list_clear(&list);
}

Test(restore, idletime_wins_over_freq_and_needs_keep_lru_lfu) {
    struct shake_entry entry = key_entry("key\0\r\n", 6, 0, "\x05hello", 6);
    entry.idle_s = 42;
    entry.freq = 7;
    struct restore_options options = {.rdb_version = 10, .keep_lru_lfu = 1};
    struct command_list list;
    command_list_init(&list);
    cr_assert_eq(restore_build(&entry, &options, &list), 0);
    static const char expected[] = "*7\r\n$7\r\nRESTORE\r\n$6\r\nkey\0\r\n\r\n$1\r\n0\r\n"
                                   "$17\r\n\x00\x05hello\x0a\x00"
                                   "cr\xdfve4 \n"
                                   "\r\n$6\r\nABSTTL\r\n$8\r\nIDLETIME\r\n$2\r\n42\r\n";
    assert_command(&list.items[0], expected, sizeof(expected) - 1);

    entry.idle_s = -1;
    cr_assert_eq(restore_build(&entry, &options, &list), 0);
    cr_assert(memmem(list.items[1].resp, list.items[1].len, "$4\r\nFREQ\r\n$1\r\n7\r\n", 17));

    options.keep_lru_lfu = 0;
    cr_assert_eq(restore_build(&entry, &options, &list), 0);
    cr_assert_null(memmem(list.items[2].resp, list.items[2].len, "FREQ", 4));
    cr_assert_eq(list.count, 3);
    command_list_clear(&list);
}

/* The numbers are printed by hand: check every length of every number against
 * snprintf, and that the RESP's size is exact (no slack, no overrun). */
Test(restore, prints_lengths_ttls_and_idle_times_of_every_width_like_snprintf) {
    static char raw[100001];
    memset(raw, 'x', sizeof(raw));
    int64_t values[] = {
        0, 1, 9, 10, 99, 100, 12345, 999999999, 1000000000, 1700000000123LL, 9223372036854775807LL};
    size_t lens[] = {0, 1, 8, 9, 10, 88, 89, 99, 990, 9989, 99989, 100000};
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
        for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
            struct shake_entry entry = key_entry("key", 3, 0, raw, lens[l]);
            entry.expire_ms = values[v];
            entry.idle_s = values[v];
            struct restore_options options = {.rdb_version = 10, .keep_lru_lfu = 1};
            struct command_list list;
            command_list_init(&list);
            cr_assert_eq(restore_build(&entry, &options, &list), 0);
            char head[160], tail[160];
            int head_len = snprintf(
                head, sizeof(head), "*7\r\n$7\r\nRESTORE\r\n$3\r\nkey\r\n$%d\r\n%lld\r\n$%zu\r\n",
                snprintf(NULL, 0, "%lld", (long long)(values[v] ? values[v] : 1)),
                (long long)(values[v] ? values[v] : 1), lens[l] + 11);
            int tail_len = snprintf(
                tail, sizeof(tail), "\r\n$6\r\nABSTTL\r\n$8\r\nIDLETIME\r\n$%d\r\n%lld\r\n",
                snprintf(NULL, 0, "%lld", (long long)values[v]), (long long)values[v]);
            const struct command *command = &list.items[0];
            cr_assert_eq(command->len, (size_t)head_len + lens[l] + 11 + (size_t)tail_len,
                         "value %lld, raw %zu", (long long)values[v], lens[l]);
            cr_assert(memcmp(command->resp, head, (size_t)head_len) == 0, "got %.60s",
                      command->resp);
            cr_assert(memcmp(command->resp + command->len - tail_len, tail, (size_t)tail_len) == 0);
            command_list_clear(&list);
        }
    }
}

/* --- against a real redis-server --- */

static struct builder_server server;

static void server_setup(void) {
    builder_server_start(&server);
}
static void server_teardown(void) {
    builder_server_stop(&server);
}

/* DUMP of a key: the caller frees the reply. */
static redisReply *dump(const char *key) {
    redisReply *reply = redisCommand(server.redis, "DUMP %s", key);
    cr_assert(reply != NULL && reply->type == REDIS_REPLY_STRING, "DUMP %s", key);
    return reply;
}

/* Builds the RESTORE of `key` into `new_key` from its DUMP minus the 10-byte footer,
 * as a reader hands it over (type byte apart, raw bytes). */
static void restore_from_dump(const char *key, const char *new_key,
                              const struct restore_options *options, int64_t idle_s, int freq) {
    redisReply *payload = dump(key);
    cr_assert(payload->len > 11);
    int rdb_version = (unsigned char)payload->str[payload->len - 10] |
                      (unsigned char)payload->str[payload->len - 9] << 8;
    cr_assert_eq(rdb_version, options->rdb_version);
    struct shake_entry entry = key_entry(new_key, strlen(new_key), (uint8_t)payload->str[0],
                                         payload->str + 1, payload->len - 11);
    entry.idle_s = idle_s;
    entry.freq = freq;
    struct command_list list;
    command_list_init(&list);
    cr_assert_eq(restore_build(&entry, options, &list), 0);
    builder_server_send_ok(&server, &list);
    command_list_clear(&list);
    freeReplyObject(payload);
}

static void run(const char *format, ...) {
    va_list args;
    va_start(args, format);
    redisReply *reply = redisvCommand(server.redis, format, args);
    va_end(args);
    cr_assert(reply != NULL && reply->type != REDIS_REPLY_ERROR, "%s: %s", format,
              reply ? reply->str : "no reply");
    freeReplyObject(reply);
}

static void assert_same_dump(const char *a, const char *b) {
    redisReply *x = dump(a), *y = dump(b);
    cr_assert_eq(x->len, y->len, "%s vs %s", a, b);
    cr_assert(memcmp(x->str, y->str, x->len) == 0, "%s vs %s", a, b);
    freeReplyObject(x);
    freeReplyObject(y);
}

/* A hashtable set may DUMP its members in another order once reloaded. */
static void assert_same_sorted_members(const char *a, const char *b) {
    redisReply *x = redisCommand(server.redis, "SORT %s ALPHA", a);
    redisReply *y = redisCommand(server.redis, "SORT %s ALPHA", b);
    cr_assert_eq(x->elements, 3);
    cr_assert_eq(x->elements, y->elements);
    for (size_t i = 0; i < x->elements; i++) {
        cr_assert_str_eq(x->element[i]->str, y->element[i]->str);
    }
    freeReplyObject(x);
    freeReplyObject(y);
}

Test(restore_server, recreates_every_type_from_the_raw_bytes_of_a_dump, .init = server_setup,
     .fini = server_teardown) {
    run("SET str %b", "bin\0\r\nary", (size_t)9);
    run("SET int 12345");
    run("RPUSH list a b c 1 2 3");
    for (int i = 0; i < 300; i++)
        run("RPUSH biglist element-%d-%0200d", i, i);
    run("SADD set x y z");
    run("SADD intset 1 2 3");
    run("ZADD zset 0.1 a 1e-300 b 1.7976931348623157e308 c inf d -inf e");
    run("HSET hash f1 v1 f2 v2");
    run("XADD stream 1-1 a 1");
    run("XADD stream 2-1 b 2");
    run("XDEL stream 1-1");
    run("XGROUP CREATE stream g 0");
    run("XREADGROUP GROUP g c COUNT 1 STREAMS stream >");
    const char *keys[] = {"str",    "int",  "list", "biglist", "set",
                          "intset", "zset", "hash", "stream"};
    struct restore_options options = {.rdb_version = 10, .replace = 1};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char copy[64];
        snprintf(copy, sizeof(copy), "copy:%s", keys[i]);
        restore_from_dump(keys[i], copy, &options, -1, -1);
        if (strcmp(keys[i], "set") == 0) {
            assert_same_sorted_members(keys[i], copy);
        } else {
            assert_same_dump(keys[i], copy);
        }
    }
}

Test(restore_server, keeps_the_absolute_ttl_and_drops_expired_keys, .init = server_setup,
     .fini = server_teardown) {
    run("SET src value");
    redisReply *payload = dump("src");
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
    struct restore_options options = {.rdb_version = 10, .replace = 1};
    struct command_list list;
    command_list_init(&list);
    struct shake_entry live = key_entry("live", 4, 0, payload->str + 1, payload->len - 11);
    live.expire_ms = now_ms + 100000;
    struct shake_entry dead = key_entry("dead", 4, 0, payload->str + 1, payload->len - 11);
    dead.expire_ms = now_ms - 1000;
    struct shake_entry epoch = key_entry("epoch", 5, 0, payload->str + 1, payload->len - 11);
    epoch.expire_ms = 0;
    cr_assert_eq(restore_build(&live, &options, &list), 0);
    cr_assert_eq(restore_build(&dead, &options, &list), 0);
    cr_assert_eq(restore_build(&epoch, &options, &list), 0);
    builder_server_send_ok(&server, &list);
    command_list_clear(&list);
    freeReplyObject(payload);

    redisReply *reply = redisCommand(server.redis, "PEXPIRETIME live");
    cr_assert_eq(reply->integer, now_ms + 100000);
    freeReplyObject(reply);
    reply = redisCommand(server.redis, "EXISTS dead epoch");
    cr_assert_eq(reply->integer, 0);
    freeReplyObject(reply);
}

Test(restore_server, without_replace_an_existing_key_is_busykey, .init = server_setup,
     .fini = server_teardown) {
    run("SET src value");
    run("SET dst kept");
    redisReply *payload = dump("src");
    struct shake_entry entry = key_entry("dst", 3, 0, payload->str + 1, payload->len - 11);
    struct restore_options options = {.rdb_version = 10};
    struct command_list list;
    command_list_init(&list);
    cr_assert_eq(restore_build(&entry, &options, &list), 0);
    cr_assert_eq(list.items[0].busykey_is_skip, 1);
    redisReply **replies = builder_server_send(&server, &list);
    cr_assert_eq(replies[0]->type, REDIS_REPLY_ERROR);
    cr_assert(strncmp(replies[0]->str, "BUSYKEY", 7) == 0, "%s", replies[0]->str);
    freeReplyObject(replies[0]);
    free(replies);
    command_list_clear(&list);
    freeReplyObject(payload);
}

Test(restore_server, sets_idletime_and_freq, .init = server_setup, .fini = server_teardown) {
    run("SET src value");
    struct restore_options options = {.rdb_version = 10, .replace = 1, .keep_lru_lfu = 1};
    restore_from_dump("src", "idle", &options, 1000, -1);
    redisReply *reply = redisCommand(server.redis, "OBJECT IDLETIME idle");
    cr_assert(reply->integer >= 1000 && reply->integer < 1010, "%lld", reply->integer);
    freeReplyObject(reply);

    run("CONFIG SET maxmemory-policy allkeys-lfu");
    restore_from_dump("src", "freq", &options, -1, 100);
    reply = redisCommand(server.redis, "OBJECT FREQ freq");
    cr_assert_eq(reply->integer, 100);
    freeReplyObject(reply);
}

/* The entry's command built both ways, restore_build (a copy) then
 * restore_build_take (the entry's buffer taken), with REPLACE, IDLETIME and RDB 10. */
static void build_copied_and_taken(struct shake_entry *entry, struct command_list *copied,
                                   struct command_list *taken) {
    struct restore_options options = {.rdb_version = 10, .replace = 1, .keep_lru_lfu = 1};
    command_list_init(copied);
    command_list_init(taken);
    cr_assert_eq(restore_build(entry, &options, copied), 0);
    cr_assert_eq(restore_build_take(entry, &options, taken), 0);
}

/* With room before the value too, as the decoder leaves (the key's length and
 * 96 bytes), the command's head is written in front of the value, which does not
 * move: the command starts inside the buffer, and freeing it frees the buffer.
 * With too little room in front (a longer key) the value moves as before. */
Test(restore, build_take_writes_the_head_in_front_of_the_value_when_there_is_room) {
    static const char key[] = "some:key";
    for (size_t raw_len = 0; raw_len < 300; raw_len += 37) {
        for (int roomy = 0; roomy < 2; roomy++) {
            size_t front = roomy ? sizeof(key) - 1 + 96 : 10;
            size_t size = front + raw_len + sizeof(key) + 192;
            char *buffer = malloc(size);
            cr_assert_not_null(buffer);
            char *raw = buffer + front;
            for (size_t i = 0; i < raw_len; i++)
                raw[i] = (char)(i * 31 + 7);
            struct shake_entry entry = key_entry(key, sizeof(key) - 1, 0, raw, raw_len);
            entry.expire_ms = 1700000000123LL;
            entry.idle_s = 12345;
            entry.raw_front = front;
            entry.raw_cap = size - front;
            struct command_list copied, taken;
            build_copied_and_taken(&entry, &copied, &taken);
            cr_assert_null(entry.raw, "raw_len %zu", raw_len);
            const struct command *c = &taken.items[0];
            assert_command(c, copied.items[0].resp, copied.items[0].len);
            cr_assert_eq(c->cap, size);
            cr_assert_eq(c->resp - c->front, buffer);
            if (roomy) {
                /* the value bytes are where the decoder put them */
                cr_assert(c->resp > buffer && c->resp < raw, "raw_len %zu", raw_len);
                const char *value = copied.items[0].resp + (raw - c->resp);
                cr_assert(memcmp(value, raw, raw_len) == 0, "raw_len %zu", raw_len);
            } else {
                cr_assert_eq(c->resp, buffer, "raw_len %zu", raw_len);
            }
            command_list_clear(&copied);
            command_list_clear(&taken); /* frees buffer (ASan checks it) */
        }
    }
}

/* With room after the value, the entry's buffer becomes the command: the same
 * bytes as restore_build, and the entry no longer owns raw. Without enough room
 * it copies, as restore_build does, and leaves raw alone. */
Test(restore, build_take_turns_a_roomy_raw_buffer_into_the_command_in_place) {
    static const char key[] = "some:key";
    for (size_t raw_len = 0; raw_len < 300; raw_len += 37) {
        char *raw = malloc(raw_len + sizeof(key) + 192);
        cr_assert_not_null(raw);
        for (size_t i = 0; i < raw_len; i++)
            raw[i] = (char)(i * 31 + 7);
        struct shake_entry entry = key_entry(key, sizeof(key) - 1, 0, raw, raw_len);
        entry.expire_ms = 1700000000123LL;
        entry.idle_s = 12345;
        entry.raw_cap = raw_len + sizeof(key) + 192;
        struct command_list copied, taken;
        build_copied_and_taken(&entry, &copied, &taken);
        cr_assert_null(entry.raw, "raw_len %zu", raw_len);
        cr_assert_eq(taken.items[0].resp, raw);
        assert_command(&taken.items[0], copied.items[0].resp, copied.items[0].len);
        cr_assert_eq(taken.items[0].busykey_is_skip, copied.items[0].busykey_is_skip);
        command_list_clear(&copied);
        command_list_clear(&taken);
    }
    char raw[] = "\x05hello";
    struct shake_entry entry = key_entry("k", 1, 0, raw, 6);
    entry.raw_cap = 20; /* too little for the command */
    struct restore_options options = {.rdb_version = 10, .replace = 1};
    struct command_list list;
    command_list_init(&list);
    cr_assert_eq(restore_build_take(&entry, &options, &list), 0);
    cr_assert_eq(entry.raw, raw);
    static const char expected[] = "*6\r\n$7\r\nRESTORE\r\n$1\r\nk\r\n$1\r\n0\r\n$17\r\n"
                                   "\x00\x05hello\x0a\x00"
                                   "cr\xdfve4 \n"
                                   "\r\n$6\r\nABSTTL\r\n$7\r\nREPLACE\r\n";
    assert_command(&list.items[0], expected, sizeof(expected) - 1);
    command_list_clear(&list);
}
