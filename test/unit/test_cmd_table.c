/* test_cmd_table.c -- the command table: lookups, key positions from key specs,
 * first/last/step and native rules, the parsing of `COMMAND` replies (Redis 7,
 * Redis 6 style and malformed), and the key positions of a table built from a real
 * redis-server's `COMMAND` compared with that server's `COMMAND GETKEYS`. */
#include <criterion/criterion.h>
#include <hiredis.h>
#include <stdio.h>
#include <string.h>

#include "test/unit/support/server.h"
#include "writer/cmd_table.h"

#define MAX_ARGS 32

/* An argv split on single spaces; the token "" is the empty string. The bytes
 * point into the line: they are not NUL-terminated, as the code must not need. */
struct args {
    int argc;
    const char *argv[MAX_ARGS];
    size_t len[MAX_ARGS];
};

static struct args words(const char *line) {
    struct args a = {0};
    const char *p = line;
    while (*p && a.argc < MAX_ARGS) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int empty = len == 2 && p[0] == '"' && p[1] == '"';
        a.argv[a.argc] = p;
        a.len[a.argc++] = empty ? 0 : len;
        p += len + (end != NULL);
    }
    return a;
}

/* The key positions of a command line, as "1 3 5", "none", "unknown command" or
 * "unknown". */
static void positions_of(const struct cmd_table *table, const char *line, unsigned options,
                         char *out, size_t outlen) {
    struct args a = words(line);
    const struct cmd_table_command *command = cmd_table_lookup(table, a.argc, a.argv, a.len);
    if (command == NULL) {
        snprintf(out, outlen, "unknown command");
        return;
    }
    int positions[MAX_ARGS * 4];
    int count =
        cmd_table_get_keys(command, a.argc, a.argv, a.len, options, positions, MAX_ARGS * 4);
    if (count == CMD_TABLE_KEYS_UNKNOWN) {
        snprintf(out, outlen, "unknown");
        return;
    }
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < count && used < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, i ? " %d" : "%d", positions[i]);
    if (count == 0) snprintf(out, outlen, "none");
}

static void expect_positions(const struct cmd_table *table, const char *line,
                             const char *expected) {
    char got[256];
    positions_of(table, line, CMD_TABLE_KEYS_INCLUDE_NOT_KEYS, got, sizeof(got));
    cr_expect_str_eq(got, expected, "%s: keys at %s, expected %s", line, got, expected);
}

/* Positions asked by the brief, for any table that knows Redis 7's commands. */
static void expect_common_positions(const struct cmd_table *table) {
    expect_positions(table, "SET k v", "1");
    expect_positions(table, "set k v EX 10", "1");
    expect_positions(table, "MSET a 1 b 2 c 3", "1 3 5");
    expect_positions(table, "DEL a b c", "1 2 3");
    expect_positions(table, "ZUNIONSTORE dst 2 k1 k2 WEIGHTS 1 2", "1 3 4");
    expect_positions(table, "EVAL return 2 k1 k2 arg", "3 4");
    expect_positions(table, "EVAL return 0 arg", "none");
    expect_positions(table, "XREADGROUP GROUP g c COUNT 1 STREAMS s1 s2 > >", "7 8");
    expect_positions(table, "XADD s * f v", "1");
    expect_positions(table, "LMOVE src dst LEFT RIGHT", "1 2");
    expect_positions(table, "RENAME a b", "1 2");
    expect_positions(table, "SORT k BY w* LIMIT 0 10 GET # STORE dst", "1 10");
    expect_positions(table, "SORT k", "1");
    expect_positions(table, "BITOP AND dst a b", "2 3 4");
    expect_positions(table, "OBJECT FREQ k", "2");
    expect_positions(table, "object freq k", "2");
    expect_positions(table, "FLUSHALL", "none");
    expect_positions(table, "FLUSHALL ASYNC", "none");
    expect_positions(table, "PUBLISH ch msg", "none");
    expect_positions(table, "XGROUP CREATE s g $ MKSTREAM", "2");
    expect_positions(table, "GEORADIUS g 0 0 1 km STORE d", "1 7");
    expect_positions(table, "GEORADIUS g 0 0 1 km", "1");
    expect_positions(table, "MIGRATE h 1 k 0 10", "3");
    expect_positions(table, "MIGRATE h 1 \"\" 0 10 AUTH keys KEYS a b", "9 10");
    expect_positions(table, "SPUBLISH ch msg", "1");
    expect_positions(table, "NOSUCHCOMMAND a b", "unknown command");
    expect_positions(table, "XGROUP NOSUCHSUB s g", "unknown command");
}

/* ------------------------------------------------------------------------ */

Test(cmd_table, builtin_finds_names_in_any_case) {
    struct cmd_table *table = NULL;
    cr_assert_eq(cmd_table_builtin(&table), 0);
    cr_assert_gt(cmd_table_count(table), 100);
    const struct cmd_table_command *set = cmd_table_find(table, "SeT", 3);
    cr_assert_not_null(set);
    cr_expect_str_eq(set->name, "set");
    cr_expect(set->flags & CMD_TABLE_FLAG_WRITE);
    cr_expect_null(cmd_table_find(table, "se", 2));
    cr_expect_null(cmd_table_find(table, "sett", 4));
    cr_expect_not_null(cmd_table_find(table, "XGROUP|create", 13));
    cmd_table_free(table);
}

Test(cmd_table, builtin_key_positions) {
    struct cmd_table *table = NULL;
    cr_assert_eq(cmd_table_builtin(&table), 0);
    expect_common_positions(table);
    cmd_table_free(table);
}

Test(cmd_table, argv_that_does_not_fit_has_unknown_keys) {
    struct cmd_table *table = NULL;
    cr_assert_eq(cmd_table_builtin(&table), 0);
    expect_positions(table, "SET", "unknown");
    expect_positions(table, "ZUNIONSTORE dst 3 k1 k2", "unknown");
    expect_positions(table, "ZUNIONSTORE dst x k1", "unknown");
    expect_positions(table, "EVAL return -1", "unknown");
    expect_positions(table, "MIGRATE h 1", "unknown");
    cmd_table_free(table);
}

Test(cmd_table, not_key_positions_only_when_asked) {
    struct cmd_table *table = NULL;
    cr_assert_eq(cmd_table_builtin(&table), 0);
    char got[64];
    positions_of(table, "SPUBLISH ch msg", 0, got, sizeof(got));
    cr_expect_str_eq(got, "none");
    cmd_table_free(table);
}

Test(cmd_table, small_buffer_reports_the_full_count) {
    struct cmd_table *table = NULL;
    cr_assert_eq(cmd_table_builtin(&table), 0);
    struct args a = words("DEL a b c d e");
    const struct cmd_table_command *del = cmd_table_lookup(table, a.argc, a.argv, a.len);
    int positions[2] = {0, 0};
    cr_expect_eq(cmd_table_get_keys(del, a.argc, a.argv, a.len, 0, positions, 2), 5);
    cr_expect_eq(positions[0], 1);
    cr_expect_eq(positions[1], 2);
    cmd_table_free(table);
}

/* ------------------------------------------------------------------------ */
/* Hand-written replies                                                       */

/* Parse RESP written with bare "\n" line ends. */
static redisReply *reply_from(const char *text) {
    char resp[4096];
    size_t len = 0;
    for (const char *p = text; *p && len + 2 < sizeof(resp); p++) {
        if (*p == '\n') resp[len++] = '\r';
        resp[len++] = *p;
    }
    redisReader *reader = redisReaderCreate();
    cr_assert_not_null(reader);
    cr_assert_eq(redisReaderFeed(reader, resp, len), REDIS_OK);
    void *reply = NULL;
    cr_assert_eq(redisReaderGetReply(reader, &reply), REDIS_OK);
    cr_assert_not_null(reply, "incomplete RESP in the test");
    redisReaderFree(reader);
    return reply;
}

/* Redis 6: seven fields, no key specs; zunionstore is 0 0 0 with movablekeys. */
static const char redis6_reply[] = "*4\n"
                                   "*7\n$11\nzunionstore\n:-4\n*2\n+write\n+movablekeys\n"
                                   ":0\n:0\n:0\n*1\n+@write\n"
                                   "*7\n$3\nset\n:-3\n*1\n+write\n:1\n:1\n:1\n*0\n"
                                   "*7\n$4\nmget\n:-2\n*1\n+readonly\n:1\n:-1\n:1\n*0\n"
                                   "*7\n$6\nmodcmd\n:-2\n*1\n+movablekeys\n:0\n:0\n:0\n*0\n";

Test(cmd_table, redis6_reply_uses_legacy_positions_and_borrows_specs) {
    redisReply *reply = reply_from(redis6_reply);
    struct cmd_table *table = NULL;
    char err[256] = "";
    cr_assert_eq(cmd_table_from_reply(&table, reply, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(cmd_table_count(table), 4);
    expect_positions(table, "SET k v", "1");
    expect_positions(table, "MGET a b c", "1 2 3");
    expect_positions(table, "ZUNIONSTORE d 2 a b", "1 3 4");
    expect_positions(table, "MODCMD a b", "unknown");
    freeReplyObject(reply);
    cmd_table_free(table);
}

/* Redis 7: key specs, one incomplete without a native rule, and subcommands. */
static const char redis7_reply[] =
    "*2\n"
    "*10\n$6\nmodcmd\n:-2\n*1\n+write\n:1\n:1\n:1\n*0\n*0\n"
    "*1\n*6\n+flags\n*2\n+RW\n+incomplete\n"
    "+begin_search\n*4\n+type\n+index\n+spec\n*2\n+index\n:1\n"
    "+find_keys\n*4\n+type\n+range\n+spec\n*6\n+lastkey\n:0\n+keystep\n:1\n+limit\n:0\n"
    "*0\n"
    "*10\n$4\ncont\n:-2\n*0\n:0\n:0\n:0\n*0\n*0\n*0\n"
    "*1\n*10\n$8\ncont|sub\n:3\n*1\n+write\n:2\n:2\n:1\n*0\n*0\n"
    "*1\n*6\n+flags\n*0\n"
    "+begin_search\n*4\n+type\n+keyword\n+spec\n*4\n+keyword\n+AT\n+startfrom\n:1\n"
    "+find_keys\n*4\n+type\n+range\n+spec\n*6\n+lastkey\n:0\n+keystep\n:1\n+limit\n:0\n"
    "*0\n";

Test(cmd_table, redis7_reply_reads_specs_flags_and_subcommands) {
    redisReply *reply = reply_from(redis7_reply);
    struct cmd_table *table = NULL;
    char err[256] = "";
    cr_assert_eq(cmd_table_from_reply(&table, reply, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(cmd_table_count(table), 3);
    expect_positions(table, "MODCMD a b", "unknown");
    expect_positions(table, "CONT SUB x AT k", "4");
    expect_positions(table, "cont sub x y", "none");
    const struct cmd_table_command *cont = cmd_table_find(table, "cont", 4);
    cr_assert_not_null(cont);
    cr_expect(cont->flags & CMD_TABLE_FLAG_CONTAINER);
    freeReplyObject(reply);
    cmd_table_free(table);
}

Test(cmd_table, malformed_replies_are_refused_with_a_reason) {
    const char *cases[] = {
        "+OK\n",
        "-ERR unknown command 'COMMAND'\n",
        "*1\n:3\n",
        "*1\n*3\n$3\nset\n:-3\n*0\n",
        "*1\n*6\n:1\n:-3\n*0\n:1\n:1\n:1\n",
        "*1\n*6\n$3\nset\n$2\n-3\n*0\n:1\n:1\n:1\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply *reply = reply_from(cases[i]);
        struct cmd_table *table = (struct cmd_table *)&cases; /* must be reset */
        char err[256] = "";
        cr_expect_eq(cmd_table_from_reply(&table, reply, err, sizeof(err)), -1, "case %zu", i);
        cr_expect_null(table, "case %zu", i);
        cr_expect_neq(strstr(err, "COMMAND reply"), NULL, "case %zu: %s", i, err);
        freeReplyObject(reply);
    }
    redisReply *reply = reply_from("-ERR unknown command 'COMMAND'\n");
    struct cmd_table *table = NULL;
    char err[256] = "";
    cmd_table_from_reply(&table, reply, err, sizeof(err));
    cr_expect_neq(strstr(err, "unknown command"), NULL, "%s", err);
    freeReplyObject(reply);
}

/* ------------------------------------------------------------------------ */
/* A real server                                                              */

struct live {
    struct test_server server;
    redisContext *context;
    redisReply *command_reply;
    struct cmd_table *table;
};

static void live_start(struct live *live) {
    memset(live, 0, sizeof(*live));
    cr_assert_eq(test_server_start(&live->server, NULL), 0);
    live->context = test_server_connect(&live->server);
    cr_assert_not_null(live->context);
    live->command_reply = redisCommand(live->context, "COMMAND");
    cr_assert_not_null(live->command_reply);
    char err[256] = "";
    cr_assert_eq(cmd_table_from_reply(&live->table, live->command_reply, err, sizeof(err)), 0, "%s",
                 err);
}

static void live_stop(struct live *live) {
    cmd_table_free(live->table);
    if (live->command_reply) freeReplyObject(live->command_reply);
    if (live->context) redisFree(live->context);
    test_server_stop(&live->server);
}

/* The keys the server names for a command line, as positions in our argv (the
 * server returns key names; each is matched to the next argument equal to it). */
static void server_positions(redisContext *context, const char *line, char *out, size_t outlen) {
    struct args a = words(line);
    const char *argv[MAX_ARGS + 2] = {"COMMAND", "GETKEYS"};
    size_t len[MAX_ARGS + 2] = {7, 7};
    for (int i = 0; i < a.argc; i++) {
        argv[i + 2] = a.argv[i];
        len[i + 2] = a.len[i];
    }
    redisReply *reply = redisCommandArgv(context, a.argc + 2, argv, len);
    cr_assert_not_null(reply);
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(out, outlen, "none");
        freeReplyObject(reply);
        return;
    }
    cr_assert_eq(reply->type, REDIS_REPLY_ARRAY, "%s", line);
    snprintf(out, outlen, "none");
    size_t used = 0;
    int next = 1;
    for (size_t k = 0; k < reply->elements; k++) {
        const redisReply *key = reply->element[k];
        int at = next;
        while (at < a.argc &&
               !(a.len[at] == key->len && memcmp(a.argv[at], key->str, key->len) == 0))
            at++;
        used += (size_t)snprintf(out + used, outlen - used, k ? " %d" : "%d", at);
        next = at + 1;
    }
    freeReplyObject(reply);
}

/* The oracle list: every key is a distinct word, so names map back to positions. */
static const char *const oracle_lines[] = {
    "SET k v",
    "SET k v EX 10 NX GET",
    "GET k",
    "MSET a 1 b 2 c 3",
    "MSETNX a 1 b 2",
    "DEL a b c",
    "UNLINK a b",
    "EXISTS a b",
    "TOUCH a",
    "EXPIRE k 10",
    "RENAME a b",
    "RENAMENX a b",
    "COPY a b REPLACE",
    "LPUSH l x y",
    "LMOVE a b LEFT RIGHT",
    "BLMOVE a b LEFT RIGHT 0",
    "RPOPLPUSH a b",
    "LMPOP 2 a b LEFT COUNT 2",
    "BLMPOP 0 2 a b LEFT",
    "SMOVE a b m",
    "SUNIONSTORE d a b c",
    "SINTERCARD 2 a b LIMIT 1",
    "ZADD z 1 m",
    "ZUNIONSTORE d 2 a b WEIGHTS 1 2",
    "ZINTERSTORE d 3 a b c",
    "ZDIFFSTORE d 2 a b",
    "ZRANGESTORE d s 0 -1",
    "ZMPOP 2 a b MIN",
    "BZMPOP 0 1 a MAX",
    "ZUNION 2 a b",
    "EVAL return 2 k1 k2 arg",
    "EVAL return 0",
    "EVALSHA 0123 1 k",
    "FCALL f 2 a b x",
    "XADD s * f v",
    "XREAD COUNT 2 STREAMS s1 s2 0 0",
    "XREADGROUP GROUP g c STREAMS s1 s2 > >",
    "XGROUP CREATE s g $ MKSTREAM",
    "XCLAIM s g c 0 1-1",
    "SORT k",
    "SORT k BY w* LIMIT 0 1 GET # STORE d",
    "SORT_RO k ALPHA",
    "BITOP AND d a b",
    "BITFIELD k SET u8 0 1",
    "GEORADIUS g 0 0 1 km STORE d",
    "GEORADIUSBYMEMBER g m 1 km STOREDIST d",
    "GEOSEARCHSTORE d s FROMMEMBER m BYRADIUS 1 km",
    "PFMERGE d a b",
    "OBJECT FREQ k",
    "MIGRATE h 1 k 0 10",
    "MIGRATE h 1 \"\" 0 10 COPY AUTH pw KEYS a b",
    "RESTORE k 0 payload",
    "SPUBLISH ch m",
    "PUBLISH ch m",
    "FLUSHALL",
    "PING",
    "FUNCTION LOAD code",
};

Test(cmd_table, server_table_key_positions, .timeout = 60) {
    struct live live;
    live_start(&live);
    cr_expect_gt(cmd_table_count(live.table), live.command_reply->elements);
    expect_common_positions(live.table);
    live_stop(&live);
}

Test(cmd_table, server_table_agrees_with_command_getkeys, .timeout = 60) {
    struct live live;
    live_start(&live);
    size_t n = sizeof(oracle_lines) / sizeof(oracle_lines[0]);
    for (size_t i = 0; i < n; i++) {
        char ours[256], theirs[256];
        positions_of(live.table, oracle_lines[i], 0, ours, sizeof(ours));
        server_positions(live.context, oracle_lines[i], theirs, sizeof(theirs));
        cr_expect_str_eq(ours, theirs, "%s: ours %s, server %s", oracle_lines[i], ours, theirs);
    }
    live_stop(&live);
}

Test(cmd_table, builtin_table_agrees_with_command_getkeys, .timeout = 60) {
    struct live live;
    live_start(&live);
    struct cmd_table *builtin = NULL;
    cr_assert_eq(cmd_table_builtin(&builtin), 0);
    size_t n = sizeof(oracle_lines) / sizeof(oracle_lines[0]), compared = 0;
    for (size_t i = 0; i < n; i++) {
        char ours[256], theirs[256];
        positions_of(builtin, oracle_lines[i], 0, ours, sizeof(ours));
        if (strcmp(ours, "unknown command") == 0) continue;
        server_positions(live.context, oracle_lines[i], theirs, sizeof(theirs));
        cr_expect_str_eq(ours, theirs, "%s: builtin %s, server %s", oracle_lines[i], ours, theirs);
        compared++;
    }
    cr_expect_geq(compared, 50);
    cmd_table_free(builtin);
    live_stop(&live);
}

/* Every built-in row exists on the server with the same arity and legacy keys,
 * so the built-in table tells no story of its own. */
Test(cmd_table, builtin_rows_match_the_server, .timeout = 60) {
    struct live live;
    live_start(&live);
    struct cmd_table *builtin = NULL;
    cr_assert_eq(cmd_table_builtin(&builtin), 0);
    const char *names[] = {"set",           "mset",       "del",         "zunionstore",
                           "eval",          "xreadgroup", "lmove",       "sort",
                           "migrate",       "georadius",  "object|freq", "xgroup|create",
                           "function|load", "spublish",   "bitop"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct cmd_table_command *ours = cmd_table_find(builtin, names[i], strlen(names[i]));
        const struct cmd_table_command *theirs =
            cmd_table_find(live.table, names[i], strlen(names[i]));
        cr_assert_not_null(ours, "%s", names[i]);
        cr_assert_not_null(theirs, "%s", names[i]);
        cr_expect_eq(ours->arity, theirs->arity, "%s arity", names[i]);
        cr_expect_eq(ours->first_key, theirs->first_key, "%s first", names[i]);
        cr_expect_eq(ours->last_key, theirs->last_key, "%s last", names[i]);
        cr_expect_eq(ours->key_step, theirs->key_step, "%s step", names[i]);
    }
    cmd_table_free(builtin);
    live_stop(&live);
}
