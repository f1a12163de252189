/* cmd_table.c -- owns the target's command table and the key extraction of one
 * argv. Key specs are read the way Redis' getKeysUsingKeySpecs (src/db.c) reads
 * them, so a table built from the target's `COMMAND` reply finds the keys the
 * target itself would find. No I/O, no global mutable state, no allocation after
 * the table is built.
 */
#include "writer/cmd_table.h"

#include <hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cmd_table {
    struct cmd_table_command *commands; /* owned, with everything they point to */
    size_t count;
    size_t capacity;
    uint32_t *slots; /* open addressing: index+1 into commands, 0 = empty */
    size_t slot_mask;
};

/* ------------------------------------------------------------------------ */
/* Names: case-insensitive hashing and comparison                            */

static unsigned char ascii_lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* FNV-1a over the lower-cased bytes, so that "SET" and "set" meet. */
static uint32_t name_hash(const char *name, size_t len) {
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        hash ^= ascii_lower((unsigned char)name[i]);
        hash *= 16777619u;
    }
    return hash;
}

/* Byte strings equal up to ASCII case. */
static int equal_nocase(const char *a, size_t a_len, const char *b, size_t b_len) {
    if (a_len != b_len) return 0;
    for (size_t i = 0; i < a_len; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i])) return 0;
    return 1;
}

/* A NUL-terminated lower-case copy of a byte string, or NULL when out of memory. */
static char *lower_copy(const char *s, size_t len) {
    char *copy = malloc(len + 1);
    if (copy == NULL) return NULL;
    for (size_t i = 0; i < len; i++)
        copy[i] = (char)ascii_lower((unsigned char)s[i]);
    copy[len] = '\0';
    return copy;
}

/* ------------------------------------------------------------------------ */
/* Storage and lookup                                                         */

static struct cmd_table *table_new(void) {
    return calloc(1, sizeof(struct cmd_table));
}

/* A zeroed command at the end of the array, or NULL when out of memory. Pointers
 * to earlier commands do not survive this call. */
static struct cmd_table_command *table_append(struct cmd_table *table) {
    if (table->count == table->capacity) {
        size_t capacity = table->capacity ? table->capacity * 2 : 256;
        struct cmd_table_command *commands = realloc(table->commands, capacity * sizeof(*commands));
        if (commands == NULL) return NULL;
        table->commands = commands;
        table->capacity = capacity;
    }
    struct cmd_table_command *command = &table->commands[table->count++];
    memset(command, 0, sizeof(*command));
    return command;
}

/* Index every command by name; the first of duplicate names wins. Called once,
 * when the array no longer moves. */
static int table_build_index(struct cmd_table *table) {
    size_t size = 16;
    while (size < table->count * 2)
        size *= 2;
    table->slots = calloc(size, sizeof(*table->slots));
    if (table->slots == NULL) return -1;
    table->slot_mask = size - 1;
    for (size_t i = 0; i < table->count; i++) {
        const struct cmd_table_command *command = &table->commands[i];
        if (cmd_table_find(table, command->name, command->name_len) != NULL) continue;
        size_t slot = name_hash(command->name, command->name_len) & table->slot_mask;
        while (table->slots[slot] != 0)
            slot = (slot + 1) & table->slot_mask;
        table->slots[slot] = (uint32_t)(i + 1);
    }
    return 0;
}

void cmd_table_free(struct cmd_table *table) {
    if (table == NULL) return;
    for (size_t i = 0; i < table->count; i++) {
        struct cmd_table_command *command = &table->commands[i];
        for (size_t j = 0; j < command->spec_count; j++)
            free(command->specs[j].keyword);
        free(command->specs);
        free(command->name);
    }
    free(table->commands);
    free(table->slots);
    free(table);
}

size_t cmd_table_count(const struct cmd_table *table) {
    return table->count;
}

const struct cmd_table_command *cmd_table_find(const struct cmd_table *table, const char *name,
                                               size_t name_len) {
    if (table == NULL || table->slots == NULL) return NULL;
    size_t slot = name_hash(name, name_len) & table->slot_mask;
    while (table->slots[slot] != 0) {
        const struct cmd_table_command *command = &table->commands[table->slots[slot] - 1];
        if (equal_nocase(command->name, command->name_len, name, name_len)) return command;
        slot = (slot + 1) & table->slot_mask;
    }
    return NULL;
}

const struct cmd_table_command *cmd_table_lookup(const struct cmd_table *table, int argc,
                                                 const char *const *argv, const size_t *argv_len) {
    if (argc < 1) return NULL;
    const struct cmd_table_command *command = cmd_table_find(table, argv[0], argv_len[0]);
    if (command == NULL || !(command->flags & CMD_TABLE_FLAG_CONTAINER) || argc < 2) return command;
    char name[CMD_TABLE_NAME_MAX];
    size_t len = argv_len[0] + 1 + argv_len[1];
    if (len > sizeof(name)) return NULL;
    memcpy(name, argv[0], argv_len[0]);
    name[argv_len[0]] = '|';
    memcpy(name + argv_len[0] + 1, argv[1], argv_len[1]);
    return cmd_table_find(table, name, len);
}

/* ------------------------------------------------------------------------ */
/* Key extraction                                                             */

/* Collects positions up to a capacity while counting them all. */
struct key_sink {
    int *positions;
    int capacity;
    int count;
};

static void sink_push(struct key_sink *sink, int position) {
    if (sink->count < sink->capacity) sink->positions[sink->count] = position;
    sink->count++;
}

/* A non-negative decimal count (a numkeys argument), or -1. */
static long long parse_count(const char *s, size_t len) {
    if (len == 0 || len > 18) return -1;
    long long value = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        value = value * 10 + (s[i] - '0');
    }
    return value;
}

/* Whether argv[i] is the keyword, ignoring case. */
static int arg_is(const char *const *argv, const size_t *argv_len, int i, const char *keyword) {
    return equal_nocase(argv[i], argv_len[i], keyword, strlen(keyword));
}

/* Where a spec's keys begin: an argv index, 0 when its keyword is absent (the spec
 * then has no keys, as for an optional STORE), -1 when the spec cannot tell. */
static int spec_begin(const struct cmd_table_key_spec *spec, int argc, const char *const *argv,
                      const size_t *argv_len) {
    if (spec->begin_type == CMD_TABLE_BEGIN_INDEX) return spec->index >= 1 ? spec->index : -1;
    if (spec->begin_type != CMD_TABLE_BEGIN_KEYWORD) return -1;
    if (spec->startfrom > 0) {
        /* The keyword cannot be the last argument: a key must follow it. */
        for (int i = spec->startfrom; i < argc - 1; i++)
            if (equal_nocase(argv[i], argv_len[i], spec->keyword, spec->keyword_len)) return i + 1;
    } else {
        for (int i = argc + spec->startfrom; i > 1; i--)
            if (i < argc && equal_nocase(argv[i], argv_len[i], spec->keyword, spec->keyword_len))
                return i + 1;
    }
    return 0;
}

/* The keys a spec finds from `begin`: 1 with [*first, *last] every *step, 0 when it
 * names no key (numkeys 0), -1 when the argv does not fit the spec. */
static int spec_range(const struct cmd_table_key_spec *spec, int argc, const char *const *argv,
                      const size_t *argv_len, int begin, int *first, int *last, int *step) {
    if (spec->find_type == CMD_TABLE_FIND_RANGE) {
        *first = begin;
        if (spec->lastkey >= 0)
            *last = begin + spec->lastkey;
        else if (spec->limit <= 0)
            *last = argc + spec->lastkey;
        else
            *last = begin + ((argc - begin) / spec->limit + spec->lastkey);
    } else if (spec->find_type == CMD_TABLE_FIND_KEYNUM) {
        int count_index = begin + spec->keynumidx;
        if (count_index < 1 || count_index >= argc) return -1;
        long long numkeys = parse_count(argv[count_index], argv_len[count_index]);
        if (numkeys < 0 || numkeys > argc) return -1;
        if (numkeys == 0) return 0;
        *first = begin + spec->firstkey;
        *last = *first + (int)numkeys - 1;
    } else {
        return -1;
    }
    *step = spec->keystep;
    if (*step <= 0 || *first < 1 || *last >= argc || *last < *first) return -1;
    return 1;
}

/* Keys by key specs, as the server reads them; CMD_TABLE_KEYS_UNKNOWN when one
 * spec cannot tell or is incomplete. */
static int keys_from_specs(const struct cmd_table_command *command, int argc,
                           const char *const *argv, const size_t *argv_len, unsigned options,
                           struct key_sink *sink) {
    for (size_t j = 0; j < command->spec_count; j++) {
        const struct cmd_table_key_spec *spec = &command->specs[j];
        if ((spec->flags & CMD_TABLE_SPEC_NOT_KEY) && !(options & CMD_TABLE_KEYS_INCLUDE_NOT_KEYS))
            continue;
        int begin = spec_begin(spec, argc, argv, argv_len);
        if (begin < 0) return CMD_TABLE_KEYS_UNKNOWN;
        if (begin == 0) continue;
        int first = 0, last = -1, step = 1;
        int found = spec_range(spec, argc, argv, argv_len, begin, &first, &last, &step);
        if (found < 0) return CMD_TABLE_KEYS_UNKNOWN;
        for (int i = first; found > 0 && i <= last; i += step)
            sink_push(sink, i);
        if (spec->flags & CMD_TABLE_SPEC_INCOMPLETE) return CMD_TABLE_KEYS_UNKNOWN;
    }
    return sink->count;
}

/* Keys by first/last/step, for servers without key specs and fixed-key commands. */
static int keys_from_legacy(const struct cmd_table_command *command, int argc,
                            struct key_sink *sink) {
    if (command->first_key <= 0) return 0;
    if (command->first_key >= argc) return CMD_TABLE_KEYS_UNKNOWN;
    int last = command->last_key >= 0 ? command->last_key : argc + command->last_key;
    int step = command->key_step > 0 ? command->key_step : 1;
    for (int i = command->first_key; i <= last && i < argc; i += step)
        sink_push(sink, i);
    return sink->count;
}

/* SORT key [BY p] [LIMIT o c] [GET p ...] [ASC|DESC] [ALPHA] [STORE dest]: the
 * sorted key, then the last STORE destination. BY and GET patterns are not keys
 * of the command (they name keys only through the sorted key's content). */
static int keys_from_sort(int argc, const char *const *argv, const size_t *argv_len,
                          struct key_sink *sink) {
    if (argc < 2) return CMD_TABLE_KEYS_UNKNOWN;
    int store = 0;
    for (int i = 2; i < argc; i++) {
        if (arg_is(argv, argv_len, i, "limit"))
            i += 2;
        else if (arg_is(argv, argv_len, i, "get") || arg_is(argv, argv_len, i, "by"))
            i += 1;
        else if (arg_is(argv, argv_len, i, "store") && i + 1 < argc)
            store = i + 1;
    }
    sink_push(sink, 1);
    if (store) sink_push(sink, store);
    return sink->count;
}

/* MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw]
 * [KEYS k ...]: the key, or with an empty key every key after KEYS. */
static int keys_from_migrate(int argc, const char *const *argv, const size_t *argv_len,
                             struct key_sink *sink) {
    if (argc < 6) return CMD_TABLE_KEYS_UNKNOWN;
    for (int i = 6; i < argc; i++) {
        if (arg_is(argv, argv_len, i, "keys")) {
            if (argv_len[3] != 0) return 0; /* a syntax error the server reports */
            for (int k = i + 1; k < argc; k++)
                sink_push(sink, k);
            return sink->count;
        }
        if (arg_is(argv, argv_len, i, "auth"))
            i += 1;
        else if (arg_is(argv, argv_len, i, "auth2"))
            i += 2;
    }
    sink_push(sink, 3);
    return sink->count;
}

int cmd_table_get_keys(const struct cmd_table_command *command, int argc, const char *const *argv,
                       const size_t *argv_len, unsigned options, int *positions, int capacity) {
    struct key_sink sink = {positions, capacity, 0};
    if (command->spec_count > 0) {
        int count = keys_from_specs(command, argc, argv, argv_len, options, &sink);
        if (count != CMD_TABLE_KEYS_UNKNOWN) return count;
        sink.count = 0;
    } else if (!(command->flags & CMD_TABLE_FLAG_MOVABLEKEYS)) {
        return keys_from_legacy(command, argc, &sink);
    }
    switch (command->native) {
    case CMD_TABLE_NATIVE_SORT: return keys_from_sort(argc, argv, argv_len, &sink);
    case CMD_TABLE_NATIVE_MIGRATE: return keys_from_migrate(argc, argv, argv_len, &sink);
    case CMD_TABLE_NATIVE_NONE: break;
    }
    return CMD_TABLE_KEYS_UNKNOWN;
}

/* ------------------------------------------------------------------------ */
/* The built-in table                                                         */

/* A key spec as written in the built-in table (keyword is a literal). */
struct builtin_spec {
    unsigned flags;
    enum cmd_table_begin_type begin_type;
    int index;
    const char *keyword;
    int startfrom;
    enum cmd_table_find_type find_type;
    int lastkey, keystep, limit, keynumidx, firstkey;
};

#define SPEC_RANGE_AT(flags, index, lastkey, keystep, limit)                                       \
    {                                                                                              \
        (flags), CMD_TABLE_BEGIN_INDEX, (index), NULL, 0, CMD_TABLE_FIND_RANGE, (lastkey),         \
            (keystep), (limit), 0, 0                                                               \
    }
#define SPEC_KEYNUM_AT(index, keynumidx, firstkey, keystep)                                        \
    {                                                                                              \
        0, CMD_TABLE_BEGIN_INDEX, (index), NULL, 0, CMD_TABLE_FIND_KEYNUM, 0, (keystep), 0,        \
            (keynumidx), (firstkey)                                                                \
    }
#define SPEC_RANGE_AFTER(flags, keyword, startfrom, lastkey, keystep, limit)                       \
    {                                                                                              \
        (flags), CMD_TABLE_BEGIN_KEYWORD, 0, (keyword), (startfrom), CMD_TABLE_FIND_RANGE,         \
            (lastkey), (keystep), (limit), 0, 0                                                    \
    }
#define SPEC_UNKNOWN                                                                               \
    { 0, CMD_TABLE_BEGIN_UNKNOWN, 0, NULL, 0, CMD_TABLE_FIND_UNKNOWN, 0, 0, 0, 0, 0 }

#define BUILTIN_SPECS_MAX 3

struct builtin_command {
    const char *name;
    int arity;
    unsigned flags;
    int first_key, last_key, key_step;
    size_t spec_count;
    struct builtin_spec specs[BUILTIN_SPECS_MAX];
};

#define W CMD_TABLE_FLAG_WRITE
#define M CMD_TABLE_FLAG_MOVABLEKEYS
#define C CMD_TABLE_FLAG_CONTAINER
#define NUMKEYS_AT(i)                                                                              \
    1, {                                                                                           \
        SPEC_KEYNUM_AT((i), 0, 1, 1)                                                               \
    }
#define STORE_NUMKEYS                                                                              \
    2, {                                                                                           \
        SPEC_RANGE_AT(0, 1, 0, 1, 0), SPEC_KEYNUM_AT(2, 0, 1, 1)                                   \
    }

/* What Redis 7.0 reports for the commands a replication stream commonly carries.
 * Fixed-key commands rely on first/last/step; movable ones carry their specs. */
static const struct builtin_command builtin_commands[] = {
    /* strings and keys */
    {"get", 2, 0, 1, 1, 1, 0, {{0}}},
    {"set", -3, W, 1, 1, 1, 0, {{0}}},
    {"setnx", 3, W, 1, 1, 1, 0, {{0}}},
    {"setex", 4, W, 1, 1, 1, 0, {{0}}},
    {"psetex", 4, W, 1, 1, 1, 0, {{0}}},
    {"getset", 3, W, 1, 1, 1, 0, {{0}}},
    {"getdel", 2, W, 1, 1, 1, 0, {{0}}},
    {"getex", -2, W, 1, 1, 1, 0, {{0}}},
    {"append", 3, W, 1, 1, 1, 0, {{0}}},
    {"incr", 2, W, 1, 1, 1, 0, {{0}}},
    {"decr", 2, W, 1, 1, 1, 0, {{0}}},
    {"incrby", 3, W, 1, 1, 1, 0, {{0}}},
    {"decrby", 3, W, 1, 1, 1, 0, {{0}}},
    {"incrbyfloat", 3, W, 1, 1, 1, 0, {{0}}},
    {"setrange", 4, W, 1, 1, 1, 0, {{0}}},
    {"setbit", 4, W, 1, 1, 1, 0, {{0}}},
    {"bitfield", -2, W, 1, 1, 1, 0, {{0}}},
    {"bitop", -4, W, 2, -1, 1, 0, {{0}}},
    {"mset", -3, W, 1, -1, 2, 0, {{0}}},
    {"msetnx", -3, W, 1, -1, 2, 0, {{0}}},
    {"del", -2, W, 1, -1, 1, 0, {{0}}},
    {"unlink", -2, W, 1, -1, 1, 0, {{0}}},
    {"exists", -2, 0, 1, -1, 1, 0, {{0}}},
    {"touch", -2, 0, 1, -1, 1, 0, {{0}}},
    {"expire", -3, W, 1, 1, 1, 0, {{0}}},
    {"pexpire", -3, W, 1, 1, 1, 0, {{0}}},
    {"expireat", -3, W, 1, 1, 1, 0, {{0}}},
    {"pexpireat", -3, W, 1, 1, 1, 0, {{0}}},
    {"persist", 2, W, 1, 1, 1, 0, {{0}}},
    {"rename", 3, W, 1, 2, 1, 0, {{0}}},
    {"renamenx", 3, W, 1, 2, 1, 0, {{0}}},
    {"copy", -3, W, 1, 2, 1, 0, {{0}}},
    {"move", 3, W, 1, 1, 1, 0, {{0}}},
    {"restore", -4, W, 1, 1, 1, 0, {{0}}},
    {"restore-asking", -4, W, 1, 1, 1, 0, {{0}}},
    /* lists */
    {"lpush", -3, W, 1, 1, 1, 0, {{0}}},
    {"rpush", -3, W, 1, 1, 1, 0, {{0}}},
    {"lpushx", -3, W, 1, 1, 1, 0, {{0}}},
    {"rpushx", -3, W, 1, 1, 1, 0, {{0}}},
    {"lpop", -2, W, 1, 1, 1, 0, {{0}}},
    {"rpop", -2, W, 1, 1, 1, 0, {{0}}},
    {"linsert", 5, W, 1, 1, 1, 0, {{0}}},
    {"lset", 4, W, 1, 1, 1, 0, {{0}}},
    {"lrem", 4, W, 1, 1, 1, 0, {{0}}},
    {"ltrim", 4, W, 1, 1, 1, 0, {{0}}},
    {"rpoplpush", 3, W, 1, 2, 1, 0, {{0}}},
    {"brpoplpush", 4, W, 1, 2, 1, 0, {{0}}},
    {"lmove", 5, W, 1, 2, 1, 0, {{0}}},
    {"blmove", 6, W, 1, 2, 1, 0, {{0}}},
    {"lmpop", -4, W | M, 0, 0, 0, NUMKEYS_AT(1)},
    {"blmpop", -5, W | M, 0, 0, 0, NUMKEYS_AT(2)},
    /* sets */
    {"sadd", -3, W, 1, 1, 1, 0, {{0}}},
    {"srem", -3, W, 1, 1, 1, 0, {{0}}},
    {"spop", -2, W, 1, 1, 1, 0, {{0}}},
    {"smove", 4, W, 1, 2, 1, 0, {{0}}},
    {"sinterstore", -3, W, 1, -1, 1, 0, {{0}}},
    {"sunionstore", -3, W, 1, -1, 1, 0, {{0}}},
    {"sdiffstore", -3, W, 1, -1, 1, 0, {{0}}},
    {"sintercard", -3, M, 0, 0, 0, NUMKEYS_AT(1)},
    /* sorted sets */
    {"zadd", -4, W, 1, 1, 1, 0, {{0}}},
    {"zincrby", 4, W, 1, 1, 1, 0, {{0}}},
    {"zrem", -3, W, 1, 1, 1, 0, {{0}}},
    {"zremrangebyscore", 4, W, 1, 1, 1, 0, {{0}}},
    {"zremrangebyrank", 4, W, 1, 1, 1, 0, {{0}}},
    {"zremrangebylex", 4, W, 1, 1, 1, 0, {{0}}},
    {"zpopmin", -2, W, 1, 1, 1, 0, {{0}}},
    {"zpopmax", -2, W, 1, 1, 1, 0, {{0}}},
    {"zrangestore", -5, W, 1, 2, 1, 0, {{0}}},
    {"zunionstore", -4, W | M, 1, 1, 1, STORE_NUMKEYS},
    {"zinterstore", -4, W | M, 1, 1, 1, STORE_NUMKEYS},
    {"zdiffstore", -4, W | M, 1, 1, 1, STORE_NUMKEYS},
    {"zunion", -3, M, 0, 0, 0, NUMKEYS_AT(1)},
    {"zinter", -3, M, 0, 0, 0, NUMKEYS_AT(1)},
    {"zdiff", -3, M, 0, 0, 0, NUMKEYS_AT(1)},
    {"zintercard", -3, M, 0, 0, 0, NUMKEYS_AT(1)},
    {"zmpop", -4, W | M, 0, 0, 0, NUMKEYS_AT(1)},
    {"bzmpop", -5, W | M, 0, 0, 0, NUMKEYS_AT(2)},
    /* hashes */
    {"hset", -4, W, 1, 1, 1, 0, {{0}}},
    {"hsetnx", 4, W, 1, 1, 1, 0, {{0}}},
    {"hmset", -4, W, 1, 1, 1, 0, {{0}}},
    {"hdel", -3, W, 1, 1, 1, 0, {{0}}},
    {"hincrby", 4, W, 1, 1, 1, 0, {{0}}},
    {"hincrbyfloat", 4, W, 1, 1, 1, 0, {{0}}},
    /* streams */
    {"xadd", -5, W, 1, 1, 1, 0, {{0}}},
    {"xdel", -3, W, 1, 1, 1, 0, {{0}}},
    {"xtrim", -4, W, 1, 1, 1, 0, {{0}}},
    {"xack", -4, W, 1, 1, 1, 0, {{0}}},
    {"xclaim", -6, W, 1, 1, 1, 0, {{0}}},
    {"xautoclaim", -6, W, 1, 1, 1, 0, {{0}}},
    {"xsetid", -3, W, 1, 1, 1, 0, {{0}}},
    {"xread", -4, M, 0, 0, 0, 1, {SPEC_RANGE_AFTER(0, "STREAMS", 1, -1, 1, 2)}},
    {"xreadgroup", -7, W | M, 0, 0, 0, 1, {SPEC_RANGE_AFTER(0, "STREAMS", 4, -1, 1, 2)}},
    {"xgroup", -2, C, 0, 0, 0, 0, {{0}}},
    {"xgroup|create", -5, W, 2, 2, 1, 0, {{0}}},
    {"xgroup|setid", -5, W, 2, 2, 1, 0, {{0}}},
    {"xgroup|destroy", 4, W, 2, 2, 1, 0, {{0}}},
    {"xgroup|createconsumer", 5, W, 2, 2, 1, 0, {{0}}},
    {"xgroup|delconsumer", 5, W, 2, 2, 1, 0, {{0}}},
    /* hyperloglog and geo */
    {"pfadd", -2, W, 1, 1, 1, 0, {{0}}},
    {"pfmerge", -2, W, 1, -1, 1, 0, {{0}}},
    {"pfcount", -2, 0, 1, -1, 1, 0, {{0}}},
    {"geoadd", -5, W, 1, 1, 1, 0, {{0}}},
    {"geosearchstore", -8, W, 1, 2, 1, 0, {{0}}},
    {"georadius",
     -6,
     W | M,
     1,
     1,
     1,
     3,
     {SPEC_RANGE_AT(0, 1, 0, 1, 0), SPEC_RANGE_AFTER(0, "STORE", 6, 0, 1, 0),
      SPEC_RANGE_AFTER(0, "STOREDIST", 6, 0, 1, 0)}},
    {"georadiusbymember",
     -5,
     W | M,
     1,
     1,
     1,
     3,
     {SPEC_RANGE_AT(0, 1, 0, 1, 0), SPEC_RANGE_AFTER(0, "STORE", 5, 0, 1, 0),
      SPEC_RANGE_AFTER(0, "STOREDIST", 5, 0, 1, 0)}},
    /* generic movable-key commands */
    {"sort", -2, W | M, 1, 1, 1, 3, {SPEC_RANGE_AT(0, 1, 0, 1, 0), SPEC_UNKNOWN, SPEC_UNKNOWN}},
    {"migrate",
     -6,
     W | M,
     3,
     3,
     1,
     2,
     {SPEC_RANGE_AT(0, 3, 0, 1, 0),
      SPEC_RANGE_AFTER(CMD_TABLE_SPEC_INCOMPLETE, "KEYS", -2, -1, 1, 0)}},
    /* scripts and functions */
    {"eval", -3, M, 0, 0, 0, NUMKEYS_AT(2)},
    {"evalsha", -3, M, 0, 0, 0, NUMKEYS_AT(2)},
    {"eval_ro", -3, M, 0, 0, 0, NUMKEYS_AT(2)},
    {"evalsha_ro", -3, M, 0, 0, 0, NUMKEYS_AT(2)},
    {"fcall", -3, M, 0, 0, 0, NUMKEYS_AT(2)},
    {"fcall_ro", -3, M, 0, 0, 0, NUMKEYS_AT(2)},
    {"script", -2, C, 0, 0, 0, 0, {{0}}},
    {"script|load", 3, 0, 0, 0, 0, 0, {{0}}},
    {"script|flush", -2, 0, 0, 0, 0, 0, {{0}}},
    {"function", -2, C, 0, 0, 0, 0, {{0}}},
    {"function|load", -3, W, 0, 0, 0, 0, {{0}}},
    {"function|delete", 3, W, 0, 0, 0, 0, {{0}}},
    {"function|flush", -2, W, 0, 0, 0, 0, {{0}}},
    {"function|restore", -3, W, 0, 0, 0, 0, {{0}}},
    /* keyspace, server, pub/sub, transactions */
    {"object", -2, C, 0, 0, 0, 0, {{0}}},
    {"object|encoding", 3, 0, 2, 2, 1, 0, {{0}}},
    {"object|freq", 3, 0, 2, 2, 1, 0, {{0}}},
    {"object|idletime", 3, 0, 2, 2, 1, 0, {{0}}},
    {"object|refcount", 3, 0, 2, 2, 1, 0, {{0}}},
    {"flushall", -1, W, 0, 0, 0, 0, {{0}}},
    {"flushdb", -1, W, 0, 0, 0, 0, {{0}}},
    {"swapdb", 3, W, 0, 0, 0, 0, {{0}}},
    {"select", 2, 0, 0, 0, 0, 0, {{0}}},
    {"ping", -1, 0, 0, 0, 0, 0, {{0}}},
    {"replconf", -1, 0, 0, 0, 0, 0, {{0}}},
    {"publish", 3, 0, 0, 0, 0, 0, {{0}}},
    {"spublish", 3, 0, 1, 1, 1, 1, {SPEC_RANGE_AT(CMD_TABLE_SPEC_NOT_KEY, 1, 0, 1, 0)}},
    {"multi", 1, 0, 0, 0, 0, 0, {{0}}},
    {"exec", 1, 0, 0, 0, 0, 0, {{0}}},
    {"discard", 1, 0, 0, 0, 0, 0, {{0}}},
};

#undef W
#undef M
#undef C
#undef NUMKEYS_AT
#undef STORE_NUMKEYS

/* The built-in row for a name, or NULL. Linear: only used while building. */
static const struct builtin_command *builtin_row(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof(builtin_commands) / sizeof(builtin_commands[0]); i++) {
        const char *row = builtin_commands[i].name;
        if (equal_nocase(row, strlen(row), name, len)) return &builtin_commands[i];
    }
    return NULL;
}

/* Give `command` copies of a built-in row's key specs. Returns 0 or -1 (memory). */
static int copy_builtin_specs(struct cmd_table_command *command,
                              const struct builtin_command *row) {
    if (row->spec_count == 0) return 0;
    command->specs = calloc(row->spec_count, sizeof(*command->specs));
    if (command->specs == NULL) return -1;
    for (size_t j = 0; j < row->spec_count; j++) {
        const struct builtin_spec *from = &row->specs[j];
        struct cmd_table_key_spec *to = &command->specs[command->spec_count++];
        *to = (struct cmd_table_key_spec){.flags = from->flags,
                                          .begin_type = from->begin_type,
                                          .index = from->index,
                                          .startfrom = from->startfrom,
                                          .find_type = from->find_type,
                                          .lastkey = from->lastkey,
                                          .keystep = from->keystep,
                                          .limit = from->limit,
                                          .keynumidx = from->keynumidx,
                                          .firstkey = from->firstkey};
        if (from->keyword != NULL) {
            to->keyword_len = strlen(from->keyword);
            to->keyword = lower_copy(from->keyword, to->keyword_len);
            if (to->keyword == NULL) return -1;
        }
    }
    return 0;
}

/* The native key rule a command name calls for. */
static enum cmd_table_native native_for(const char *name, size_t len) {
    if (equal_nocase(name, len, "sort", 4) || equal_nocase(name, len, "sort_ro", 7))
        return CMD_TABLE_NATIVE_SORT;
    if (equal_nocase(name, len, "migrate", 7)) return CMD_TABLE_NATIVE_MIGRATE;
    return CMD_TABLE_NATIVE_NONE;
}

int cmd_table_builtin(struct cmd_table **out) {
    *out = NULL;
    struct cmd_table *table = table_new();
    if (table == NULL) return -1;
    for (size_t i = 0; i < sizeof(builtin_commands) / sizeof(builtin_commands[0]); i++) {
        const struct builtin_command *row = &builtin_commands[i];
        struct cmd_table_command *command = table_append(table);
        if (command == NULL) goto fail;
        command->name_len = strlen(row->name);
        command->name = lower_copy(row->name, command->name_len);
        if (command->name == NULL || copy_builtin_specs(command, row) != 0) goto fail;
        command->arity = row->arity;
        command->flags = row->flags;
        command->first_key = row->first_key;
        command->last_key = row->last_key;
        command->key_step = row->key_step;
        command->native = native_for(command->name, command->name_len);
    }
    if (table_build_index(table) != 0) goto fail;
    *out = table;
    return 0;
fail:
    cmd_table_free(table);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* The `COMMAND` reply                                                        */

static int reply_is_text(const redisReply *reply) {
    return reply != NULL &&
           (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS);
}

static int reply_is_array(const redisReply *reply) {
    return reply != NULL && reply->type == REDIS_REPLY_ARRAY;
}

static int reply_text_is(const redisReply *reply, const char *text) {
    return reply_is_text(reply) && equal_nocase(reply->str, reply->len, text, strlen(text));
}

/* The value of `key` in a RESP2 flat map (k1 v1 k2 v2 ...), or NULL. */
static const redisReply *map_get(const redisReply *map, const char *key) {
    if (!reply_is_array(map)) return NULL;
    for (size_t i = 0; i + 1 < map->elements; i += 2)
        if (reply_text_is(map->element[i], key)) return map->element[i + 1];
    return NULL;
}

/* An integer field of a flat map; 0 and *ok cleared when absent or not an integer. */
static int map_int(const redisReply *map, const char *key, int *ok) {
    const redisReply *value = map_get(map, key);
    if (value == NULL || value->type != REDIS_REPLY_INTEGER || value->integer < -1000000 ||
        value->integer > 1000000) {
        *ok = 0;
        return 0;
    }
    return (int)value->integer;
}

/* Read a key spec's begin_search. A shape this code does not know leaves the
 * spec UNKNOWN, so the command's keys are reported unknown rather than guessed. */
static int parse_begin_search(struct cmd_table_key_spec *spec, const redisReply *begin) {
    const redisReply *type = map_get(begin, "type");
    const redisReply *fields = map_get(begin, "spec");
    int ok = 1;
    if (reply_text_is(type, "index")) {
        spec->index = map_int(fields, "index", &ok);
        if (ok) spec->begin_type = CMD_TABLE_BEGIN_INDEX;
    } else if (reply_text_is(type, "keyword")) {
        const redisReply *keyword = map_get(fields, "keyword");
        spec->startfrom = map_int(fields, "startfrom", &ok);
        if (!ok || !reply_is_text(keyword)) return 0;
        spec->keyword = lower_copy(keyword->str, keyword->len);
        if (spec->keyword == NULL) return -1;
        spec->keyword_len = keyword->len;
        spec->begin_type = CMD_TABLE_BEGIN_KEYWORD;
    }
    return 0;
}

/* Read a key spec's find_keys, leaving it UNKNOWN when its shape is unknown. */
static void parse_find_keys(struct cmd_table_key_spec *spec, const redisReply *find) {
    const redisReply *type = map_get(find, "type");
    const redisReply *fields = map_get(find, "spec");
    int ok = 1;
    if (reply_text_is(type, "range")) {
        spec->lastkey = map_int(fields, "lastkey", &ok);
        spec->keystep = map_int(fields, "keystep", &ok);
        spec->limit = map_int(fields, "limit", &ok);
        if (ok) spec->find_type = CMD_TABLE_FIND_RANGE;
    } else if (reply_text_is(type, "keynum")) {
        spec->keynumidx = map_int(fields, "keynumidx", &ok);
        spec->firstkey = map_int(fields, "firstkey", &ok);
        spec->keystep = map_int(fields, "keystep", &ok);
        if (ok) spec->find_type = CMD_TABLE_FIND_KEYNUM;
    }
}

/* Read one key spec (a flat map: notes, flags, begin_search, find_keys). */
static int parse_key_spec(struct cmd_table_key_spec *spec, const redisReply *reply) {
    const redisReply *flags = map_get(reply, "flags");
    for (size_t i = 0; reply_is_array(flags) && i < flags->elements; i++) {
        if (reply_text_is(flags->element[i], "incomplete"))
            spec->flags |= CMD_TABLE_SPEC_INCOMPLETE;
        if (reply_text_is(flags->element[i], "not_key")) spec->flags |= CMD_TABLE_SPEC_NOT_KEY;
    }
    if (parse_begin_search(spec, map_get(reply, "begin_search")) != 0) return -1;
    parse_find_keys(spec, map_get(reply, "find_keys"));
    return 0;
}

/* Read the key specs array of one entry. Returns 0 or -1 (memory). */
static int parse_key_specs(struct cmd_table_command *command, const redisReply *specs) {
    if (!reply_is_array(specs) || specs->elements == 0) return 0;
    command->specs = calloc(specs->elements, sizeof(*command->specs));
    if (command->specs == NULL) return -1;
    for (size_t i = 0; i < specs->elements; i++)
        if (parse_key_spec(&command->specs[command->spec_count++], specs->element[i]) != 0)
            return -1;
    return 0;
}

/* The command flags that matter here, from the entry's flags array. */
static unsigned parse_command_flags(const redisReply *flags) {
    unsigned result = 0;
    for (size_t i = 0; reply_is_array(flags) && i < flags->elements; i++) {
        if (reply_text_is(flags->element[i], "write")) result |= CMD_TABLE_FLAG_WRITE;
        if (reply_text_is(flags->element[i], "movablekeys")) result |= CMD_TABLE_FLAG_MOVABLEKEYS;
    }
    return result;
}

static int parse_entry(struct cmd_table *table, const redisReply *entry, size_t at, char *err,
                       size_t errlen);

/* Fill the fixed fields of one entry (name .. step). Returns 0, or -1 with err. */
static int parse_entry_head(struct cmd_table_command *command, const redisReply *entry, size_t at,
                            char *err, size_t errlen) {
    const redisReply *const *e = (const redisReply *const *)entry->element;
    if (!reply_is_text(e[0]) || e[0]->len == 0 || e[0]->len >= CMD_TABLE_NAME_MAX ||
        e[1]->type != REDIS_REPLY_INTEGER || e[3]->type != REDIS_REPLY_INTEGER ||
        e[4]->type != REDIS_REPLY_INTEGER || e[5]->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen,
                 "COMMAND reply: entry %zu is not name, arity, flags, first, "
                 "last, step",
                 at);
        return -1;
    }
    command->name_len = e[0]->len;
    command->name = lower_copy(e[0]->str, e[0]->len);
    if (command->name == NULL) {
        snprintf(err, errlen, "COMMAND reply: out of memory");
        return -1;
    }
    command->arity = (int)e[1]->integer;
    command->flags = parse_command_flags(e[2]);
    command->first_key = (int)e[3]->integer;
    command->last_key = (int)e[4]->integer;
    command->key_step = (int)e[5]->integer;
    command->native = native_for(command->name, command->name_len);
    return 0;
}

/* Key specs for one entry: the server's, or for movable keys without specs (a
 * server older than 7) the built-in table's when it knows the command. */
static int parse_entry_specs(struct cmd_table_command *command, const redisReply *entry) {
    if (entry->elements > 8 && parse_key_specs(command, entry->element[8]) != 0) return -1;
    if (command->spec_count == 0 && (command->flags & CMD_TABLE_FLAG_MOVABLEKEYS)) {
        const struct builtin_command *row = builtin_row(command->name, command->name_len);
        if (row != NULL && copy_builtin_specs(command, row) != 0) return -1;
    }
    return 0;
}

/* Append one entry of the reply and, recursively, its subcommands. */
static int parse_entry(struct cmd_table *table, const redisReply *entry, size_t at, char *err,
                       size_t errlen) {
    if (!reply_is_array(entry) || entry->elements < 6) {
        snprintf(err, errlen, "COMMAND reply: entry %zu is not an array of 6 or more", at);
        return -1;
    }
    struct cmd_table_command *command = table_append(table);
    if (command == NULL) {
        snprintf(err, errlen, "COMMAND reply: out of memory");
        return -1;
    }
    if (parse_entry_head(command, entry, at, err, errlen) != 0) return -1;
    if (parse_entry_specs(command, entry) != 0) {
        snprintf(err, errlen, "COMMAND reply: out of memory");
        return -1;
    }
    const redisReply *subcommands = entry->elements > 9 ? entry->element[9] : NULL;
    if (!reply_is_array(subcommands) || subcommands->elements == 0) return 0;
    command->flags |= CMD_TABLE_FLAG_CONTAINER; /* `command` moves once children append */
    for (size_t i = 0; i < subcommands->elements; i++)
        if (parse_entry(table, subcommands->element[i], at, err, errlen) != 0) return -1;
    return 0;
}

int cmd_table_from_reply(struct cmd_table **out, const redisReply *reply, char *err,
                         size_t errlen) {
    *out = NULL;
    if (!reply_is_array(reply)) {
        snprintf(err, errlen, "COMMAND reply: not an array%s%.*s",
                 reply != NULL && reply->type == REDIS_REPLY_ERROR ? ": " : "",
                 reply != NULL && reply->type == REDIS_REPLY_ERROR ? (int)reply->len : 0,
                 reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        return -1;
    }
    struct cmd_table *table = table_new();
    if (table == NULL) {
        snprintf(err, errlen, "COMMAND reply: out of memory");
        return -1;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        if (parse_entry(table, reply->element[i], i, err, errlen) != 0) {
            cmd_table_free(table);
            return -1;
        }
    }
    if (table_build_index(table) != 0) {
        snprintf(err, errlen, "COMMAND reply: out of memory");
        cmd_table_free(table);
        return -1;
    }
    *out = table;
    return 0;
}
