/* cmd_table.h -- the target's command table: where the keys of a command are.
 *
 * Owns: a case-insensitive hash table of commands (subcommands included, named
 * "container|sub" as Redis 7 names them), built from the target's `COMMAND` reply
 * or from a small built-in table, and the key extraction for one argv (key specs
 * when the server gave them, else first/last/step, plus native rules for the few
 * commands whose specs are incomplete: SORT, SORT_RO, MIGRATE).
 *
 * Must not: do I/O (the caller fetches `COMMAND`), allocate per lookup, keep
 * global state. The table is read-only once built, so one table can serve every
 * connection of the process.
 */
#ifndef SHAKE_WRITER_CMD_TABLE_H
#define SHAKE_WRITER_CMD_TABLE_H

#include <stddef.h>

struct redisReply;
struct cmd_table;

/* Where a key spec starts looking (Redis' begin_search). */
enum cmd_table_begin_type {
    CMD_TABLE_BEGIN_UNKNOWN, /* keys cannot be found from the spec */
    CMD_TABLE_BEGIN_INDEX,   /* at a fixed argv index */
    CMD_TABLE_BEGIN_KEYWORD, /* just after a keyword, searched from `startfrom` */
};

/* How a key spec finds its keys from where it starts (Redis' find_keys). */
enum cmd_table_find_type {
    CMD_TABLE_FIND_UNKNOWN,
    CMD_TABLE_FIND_RANGE,  /* up to `lastkey` (negative: from the end), every `keystep` */
    CMD_TABLE_FIND_KEYNUM, /* an argument gives the number of keys that follow */
};

/* Key spec flags that matter for routing (others are ignored). */
#define CMD_TABLE_SPEC_INCOMPLETE 1u /* the spec may miss keys: not to be trusted alone */
#define CMD_TABLE_SPEC_NOT_KEY 2u    /* names a shard channel, not a key (SPUBLISH) */

struct cmd_table_key_spec {
    unsigned flags; /* CMD_TABLE_SPEC_* */
    enum cmd_table_begin_type begin_type;
    int index;     /* BEGIN_INDEX */
    char *keyword; /* BEGIN_KEYWORD, owned by the table */
    size_t keyword_len;
    int startfrom; /* BEGIN_KEYWORD: > 0 search forward from it, < 0 backward from the end */
    enum cmd_table_find_type find_type;
    int lastkey;   /* FIND_RANGE */
    int keystep;   /* FIND_RANGE and FIND_KEYNUM */
    int limit;     /* FIND_RANGE: with lastkey -1, 1/limit of the remaining arguments */
    int keynumidx; /* FIND_KEYNUM: the count's index, relative to the begin index */
    int firstkey;  /* FIND_KEYNUM: the first key's index, relative to the begin index */
};

/* Commands whose keys no complete spec describes; the table knows their syntax. */
enum cmd_table_native {
    CMD_TABLE_NATIVE_NONE,
    CMD_TABLE_NATIVE_SORT,    /* SORT key ... [STORE dest] */
    CMD_TABLE_NATIVE_MIGRATE, /* MIGRATE host port key|"" db timeout ... [KEYS k...] */
};

/* Command flags that matter for routing. */
#define CMD_TABLE_FLAG_WRITE 1u
#define CMD_TABLE_FLAG_MOVABLEKEYS 2u /* first/last/step alone do not tell the keys */
#define CMD_TABLE_FLAG_CONTAINER 4u   /* has subcommands: resolve with argv[1] */

/* One command. Every pointer is owned by the table. */
struct cmd_table_command {
    char *name; /* lower case; "container|sub" for a subcommand */
    size_t name_len;
    int arity;                         /* as Redis: negative = at least -arity arguments */
    unsigned flags;                    /* CMD_TABLE_FLAG_* */
    int first_key, last_key, key_step; /* legacy positions; last < 0 counts from the end */
    struct cmd_table_key_spec *specs;
    size_t spec_count;
    enum cmd_table_native native;
};

/* The longest command name the lookup accepts ("container|sub" included). */
#define CMD_TABLE_NAME_MAX 128

/* cmd_table_get_keys(): the key positions cannot be known for this argv (unknown or
 * incomplete spec without a native rule, movable keys without specs, or an argv
 * that does not fit the command's syntax). */
#define CMD_TABLE_KEYS_UNKNOWN (-1)

/* cmd_table_get_keys() options. */
#define CMD_TABLE_KEYS_INCLUDE_NOT_KEYS 1u /* also report NOT_KEY positions (routing) */

/* Build a table from the reply to `COMMAND` (RESP2 arrays as hiredis 0.14 gives
 * them: name, arity, flags, first, last, step, then in Redis 6+ ACL categories,
 * in Redis 7+ tips, key specs and subcommands). Entries with movable keys but no
 * key specs (Redis < 7) borrow the built-in table's specs when it knows the
 * command. Returns 0 and *out, or -1 with a message in err (malformed reply or out
 * of memory). */
int cmd_table_from_reply(struct cmd_table **out, const struct redisReply *reply, char *err,
                         size_t errlen);
/* Build the built-in table: the commands a replication stream commonly carries
 * (writes, scripts, functions, transactions, flushes), with Redis 7's key specs.
 * For tests and for targets that refuse `COMMAND`. Returns 0, or -1 when out of
 * memory. */
int cmd_table_builtin(struct cmd_table **out);
void cmd_table_free(struct cmd_table *table);

/* Number of commands held, subcommands included. */
size_t cmd_table_count(const struct cmd_table *table);
/* The command called exactly `name` (case-insensitive; "container|sub" for a
 * subcommand), or NULL. */
const struct cmd_table_command *cmd_table_find(const struct cmd_table *table, const char *name,
                                               size_t name_len);
/* The command an argv runs: argv[0], or for a container the subcommand argv[1]
 * names. NULL when unknown (an unknown subcommand of a known container too). */
const struct cmd_table_command *cmd_table_lookup(const struct cmd_table *table, int argc,
                                                 const char *const *argv, const size_t *argv_len);

/* The argv indexes of the keys of `argv` for `command`, in the order the server
 * reports them. Writes at most `capacity` positions and returns how many there
 * are (call again with a larger buffer when that exceeds capacity), or
 * CMD_TABLE_KEYS_UNKNOWN. `options` is a mask of CMD_TABLE_KEYS_*. */
int cmd_table_get_keys(const struct cmd_table_command *command, int argc, const char *const *argv,
                       const size_t *argv_len, unsigned options, int *positions, int capacity);

#endif
