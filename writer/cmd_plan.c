/* cmd_plan.c -- owns the routing plan of one replicated command: classify it,
 * find its keys' slots (cmd_table.c), split or refuse what spans slots on a
 * cluster target, and encode what is to be sent. Pure: no I/O, no state kept
 * between calls.
 *
 * Faithful splits, and why each is faithful:
 *  - DEL, UNLINK, EXISTS, TOUCH act on each key independently; the per-slot
 *    commands together do exactly what the one command did.
 *  - MSET sets each pair independently (its atomicity is invisible to a replica
 *    that applies the stream in order).
 *  - MSETNX reaches the replication stream only when it wrote, i.e. when none of
 *    its keys existed on the source and all were set. Its effect is therefore
 *    exactly MSET of the same pairs. Split, it becomes per-slot MSET: per-slot
 *    MSETNX could refuse on a target that already holds one of the keys (a
 *    resumed stream, a key written there meanwhile) and diverge from the source.
 */
#include "writer/cmd_plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shake/crc16.h"

/* How a command is treated before its keys are looked at. */
enum plan_class {
    PLAN_CLASS_OTHER,
    PLAN_CLASS_DROP,     /* PING, REPLCONF, SELECT */
    PLAN_CLASS_PUBLISH,  /* keyless channel */
    PLAN_CLASS_SPUBLISH, /* shard channel: routed by its slot when forwarded */
    PLAN_CLASS_MULTI,
    PLAN_CLASS_EXEC,
    PLAN_CLASS_BROADCAST,  /* FLUSHALL, FLUSHDB, FUNCTION LOAD/..., SCRIPT LOAD/FLUSH */
    PLAN_CLASS_SPLIT_KEYS, /* DEL, UNLINK, EXISTS, TOUCH */
    PLAN_CLASS_MSET,
    PLAN_CLASS_MSETNX,
    PLAN_CLASS_RENAME,
    PLAN_CLASS_RENAMENX,
};

/* Key positions looked up without allocating for most commands. */
#define PLAN_KEYS_ON_STACK 16
/* How much of a key or command name an UNSUPPORTED message shows. */
#define PLAN_MESSAGE_BYTES_SHOWN 40
#define PLAN_MESSAGE_KEYS_SHOWN 8

/* ------------------------------------------------------------------------ */
/* Classification                                                             */

/* `arg` (len bytes) is the lowercase `name` (name_len bytes) in any case: the
 * length and the first letter first, since most names differ there. */
static int name_matches(const char *arg, size_t len, const char *name, size_t name_len) {
    return len == name_len && len > 0 && (arg[0] | 0x20) == name[0] &&
           strncasecmp(arg, name, len) == 0;
}

static int name_is(const char *arg, size_t len, const char *name) {
    return name_matches(arg, len, name, strlen(name));
}

/* FUNCTION and SCRIPT subcommands that change every master's scripts. */
static int is_broadcast_subcommand(int argc, const char *const *argv, const size_t *argv_len) {
    if (argc < 2 || (argv_len[0] != 8 && argv_len[0] != 6)) return 0;
    if (name_is(argv[0], argv_len[0], "function"))
        return name_is(argv[1], argv_len[1], "load") || name_is(argv[1], argv_len[1], "delete") ||
               name_is(argv[1], argv_len[1], "flush") || name_is(argv[1], argv_len[1], "restore");
    if (name_is(argv[0], argv_len[0], "script"))
        return name_is(argv[1], argv_len[1], "load") || name_is(argv[1], argv_len[1], "flush");
    return 0;
}

/* The class of a command, by its name (and subcommand). The names are told
 * apart by length first: this runs for every command of the stream. */
static enum plan_class plan_classify(int argc, const char *const *argv, const size_t *argv_len) {
#define PLAN_NAME(name, class) {name, sizeof(name) - 1, class}
    static const struct {
        const char *name;
        size_t len;
        enum plan_class class;
    } names[] = {
        PLAN_NAME("ping", PLAN_CLASS_DROP),         PLAN_NAME("replconf", PLAN_CLASS_DROP),
        PLAN_NAME("select", PLAN_CLASS_DROP),       PLAN_NAME("publish", PLAN_CLASS_PUBLISH),
        PLAN_NAME("spublish", PLAN_CLASS_SPUBLISH), PLAN_NAME("multi", PLAN_CLASS_MULTI),
        PLAN_NAME("exec", PLAN_CLASS_EXEC),         PLAN_NAME("flushall", PLAN_CLASS_BROADCAST),
        PLAN_NAME("flushdb", PLAN_CLASS_BROADCAST), PLAN_NAME("del", PLAN_CLASS_SPLIT_KEYS),
        PLAN_NAME("unlink", PLAN_CLASS_SPLIT_KEYS), PLAN_NAME("exists", PLAN_CLASS_SPLIT_KEYS),
        PLAN_NAME("touch", PLAN_CLASS_SPLIT_KEYS),  PLAN_NAME("mset", PLAN_CLASS_MSET),
        PLAN_NAME("msetnx", PLAN_CLASS_MSETNX),     PLAN_NAME("rename", PLAN_CLASS_RENAME),
        PLAN_NAME("renamenx", PLAN_CLASS_RENAMENX),
    };
#undef PLAN_NAME
    if (is_broadcast_subcommand(argc, argv, argv_len)) return PLAN_CLASS_BROADCAST;
    size_t len = argv_len[0];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (name_matches(argv[0], len, names[i].name, names[i].len)) return names[i].class;
    return PLAN_CLASS_OTHER;
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                   */

/* A bounded text buffer that always stays NUL-terminated. */
struct plan_text {
    char *buf;
    size_t cap;
    size_t len;
};

static void text_printf(struct plan_text *text, const char *format, ...) {
    if (text->len + 1 >= text->cap) return;
    va_list args;
    va_start(args, format);
    int n = vsnprintf(text->buf + text->len, text->cap - text->len, format, args);
    va_end(args);
    if (n < 0) return;
    text->len += (size_t)n;
    if (text->len >= text->cap) text->len = text->cap - 1;
}

/* Append bytes quoted and escaped (\", \\, \n, \r, \t, \xHH), cut after
 * PLAN_MESSAGE_BYTES_SHOWN bytes with the full length said. */
static void text_quoted(struct plan_text *text, const char *bytes, size_t len) {
    size_t shown = len < PLAN_MESSAGE_BYTES_SHOWN ? len : PLAN_MESSAGE_BYTES_SHOWN;
    text_printf(text, "\"");
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (c == '"' || c == '\\')
            text_printf(text, "\\%c", c);
        else if (c == '\n')
            text_printf(text, "\\n");
        else if (c == '\r')
            text_printf(text, "\\r");
        else if (c == '\t')
            text_printf(text, "\\t");
        else if (c < 0x20 || c > 0x7e)
            text_printf(text, "\\x%02x", c);
        else
            text_printf(text, "%c", c);
    }
    text_printf(text, shown < len ? "...\" (%zu bytes)" : "\"", len);
}

/* Make the plan UNSUPPORTED, with a message that starts with the command name. */
static int plan_unsupported(struct cmd_plan *plan, enum cmd_plan_reason reason, const char *name,
                            size_t name_len, const char *why) {
    plan->kind = CMD_PLAN_UNSUPPORTED;
    plan->reason = reason;
    struct plan_text text = {plan->message, sizeof(plan->message), 0};
    text_quoted(&text, name, name_len);
    text_printf(&text, ": %s", why);
    return 0;
}

/* UNSUPPORTED for keys in different slots: the message names each key and slot. */
static int plan_crossslot(struct cmd_plan *plan, const char *const *argv, const size_t *argv_len,
                          const int *positions, int count) {
    plan_unsupported(plan, CMD_PLAN_REASON_CROSSSLOT, argv[0], argv_len[0],
                     "keys in different slots, and no faithful split on a cluster target:");
    struct plan_text text = {plan->message, sizeof(plan->message), strlen(plan->message)};
    for (int i = 0; i < count && i < PLAN_MESSAGE_KEYS_SHOWN; i++) {
        int at = positions[i];
        text_printf(&text, i ? ", " : " ");
        text_quoted(&text, argv[at], argv_len[at]);
        text_printf(&text, " (slot %u)", key_hash_slot(argv[at], argv_len[at]));
    }
    if (count > PLAN_MESSAGE_KEYS_SHOWN)
        text_printf(&text, ", and %d more keys", count - PLAN_MESSAGE_KEYS_SHOWN);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Plans                                                                      */

void cmd_plan_init(struct cmd_plan *plan) {
    memset(plan, 0, sizeof(*plan));
    plan->kind = CMD_PLAN_DROP;
    plan->slot = CMD_PLAN_NO_SLOT;
    plan->key_index = -1;
    command_list_init(&plan->commands);
}

void cmd_plan_free(struct cmd_plan *plan) {
    command_list_clear(&plan->commands);
    free(plan->parts);
    free(plan->part_argv);
    free(plan->part_argv_len);
    cmd_plan_init(plan);
}

/* What one build leaves for the next: nothing but the storage of parts and
 * commands, which cmd_plan_build reuses (it plans a command per call, at the
 * stream's rate). */
static void plan_reset(struct cmd_plan *plan) {
    command_list_reset(&plan->commands);
    free(plan->part_argv);
    free(plan->part_argv_len);
    plan->part_argv = NULL;
    plan->part_argv_len = NULL;
    plan->part_count = 0;
    plan->kind = CMD_PLAN_DROP;
    plan->reason = CMD_PLAN_REASON_NONE;
    plan->slot = CMD_PLAN_NO_SLOT;
    plan->key_index = -1;
    memset(&plan->rename, 0, sizeof(plan->rename));
    plan->message[0] = '\0';
}

/* Room for `count` parts. Returns 0 or -1 (memory). */
static int plan_reserve_parts(struct cmd_plan *plan, size_t count) {
    if (count <= plan->part_capacity) return 0;
    struct cmd_plan_part *parts = realloc(plan->parts, count * sizeof(*parts));
    if (parts == NULL) return -1;
    plan->parts = parts;
    plan->part_capacity = count;
    return 0;
}

/* Encode parts[i] into the command list. Returns 0 or -1 (memory). */
static int plan_encode_parts(struct cmd_plan *plan) {
    for (size_t i = 0; i < plan->part_count; i++) {
        const struct cmd_plan_part *part = &plan->parts[i];
        if (command_list_append_argv(&plan->commands, part->argc, part->argv, part->argv_len) != 0)
            return -1;
    }
    return 0;
}

/* A plan of `kind` whose one part is the whole command as received. */
static int plan_whole(struct cmd_plan *plan, enum cmd_plan_kind kind, int slot, int argc,
                      const char *const *argv, const size_t *argv_len) {
    if (plan_reserve_parts(plan, 1) != 0) return -1;
    plan->parts[0] = (struct cmd_plan_part){slot, argc, argv, argv_len};
    plan->part_count = 1;
    plan->kind = kind;
    plan->slot = kind == CMD_PLAN_SINGLE ? slot : CMD_PLAN_NO_SLOT;
    return plan_encode_parts(plan);
}

/* One unit of a split (a key, or a key and its value) and its slot. */
struct split_unit {
    int slot;
    int index; /* order in the command */
    int first; /* index of the first unit with the same slot */
};

static int compare_by_slot(const void *a, const void *b) {
    const struct split_unit *x = a, *y = b;
    if (x->slot != y->slot) return x->slot < y->slot ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int compare_by_first(const void *a, const void *b) {
    const struct split_unit *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Order units by slot group, groups by first appearance, units by their order in
 * the command (O(n log n): DEL may carry thousands of keys). Returns the number
 * of groups. */
static size_t split_group(struct split_unit *units, size_t count) {
    qsort(units, count, sizeof(*units), compare_by_slot);
    size_t groups = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == 0 || units[i].slot != units[i - 1].slot) groups++;
        units[i].first =
            (i == 0 || units[i].slot != units[i - 1].slot) ? units[i].index : units[i - 1].first;
    }
    qsort(units, count, sizeof(*units), compare_by_first);
    return groups;
}

/* Lay the grouped units out as one part per slot, each `name` then its units. */
static void split_fill_parts(struct cmd_plan *plan, const struct split_unit *units, size_t count,
                             int group, const char *name, size_t name_len, const char *const *argv,
                             const size_t *argv_len) {
    size_t at = 0, part = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == 0 || units[i].first != units[i - 1].first) {
            plan->parts[part++] = (struct cmd_plan_part){units[i].slot, 1, &plan->part_argv[at],
                                                         &plan->part_argv_len[at]};
            plan->part_argv[at] = name;
            plan->part_argv_len[at++] = name_len;
        }
        for (int k = 0; k < group; k++) {
            int from = 1 + units[i].index * group + k;
            plan->part_argv[at] = argv[from];
            plan->part_argv_len[at++] = argv_len[from];
        }
        plan->parts[part - 1].argc += group;
    }
}

/* SPLIT a command of `group`-argument units (1: keys, 2: key value pairs) into one
 * command per slot named `name`. The caller knows the keys span slots. */
static int plan_split(struct cmd_plan *plan, int group, const char *name, size_t name_len, int argc,
                      const char *const *argv, const size_t *argv_len) {
    if (argc < 2 || (argc - 1) % group != 0)
        return plan_unsupported(plan, CMD_PLAN_REASON_MALFORMED, argv[0], argv_len[0],
                                "wrong number of arguments to split per slot");
    size_t count = (size_t)(argc - 1) / (size_t)group;
    struct split_unit *units = malloc(count * sizeof(*units));
    if (units == NULL) return -1;
    for (size_t i = 0; i < count; i++) {
        size_t key = 1 + i * (size_t)group;
        units[i] = (struct split_unit){(int)key_hash_slot(argv[key], argv_len[key]), (int)i, 0};
    }
    size_t groups = split_group(units, count);
    int reserved = plan_reserve_parts(plan, groups);
    plan->part_argv = malloc((groups + (size_t)argc - 1) * sizeof(*plan->part_argv));
    plan->part_argv_len = malloc((groups + (size_t)argc - 1) * sizeof(*plan->part_argv_len));
    if (reserved != 0 || plan->part_argv == NULL || plan->part_argv_len == NULL) {
        free(units);
        return -1;
    }
    split_fill_parts(plan, units, count, group, name, name_len, argv, argv_len);
    free(units);
    plan->part_count = groups;
    plan->kind = CMD_PLAN_SPLIT;
    return plan_encode_parts(plan);
}

/* RENAME for a RENAME/RENAMENX whose two keys are in different slots. */
static int plan_rename(struct cmd_plan *plan, int nx, int argc, const char *const *argv,
                       const size_t *argv_len) {
    if (argc != 3)
        return plan_unsupported(plan, CMD_PLAN_REASON_MALFORMED, argv[0], argv_len[0],
                                "wrong number of arguments");
    plan->kind = CMD_PLAN_RENAME;
    plan->rename = (struct cmd_plan_rename){argv[1],
                                            argv_len[1],
                                            argv[2],
                                            argv_len[2],
                                            nx,
                                            (int)key_hash_slot(argv[1], argv_len[1]),
                                            (int)key_hash_slot(argv[2], argv_len[2])};
    return 0;
}

/* The plan of a command whose keys are known, on a cluster target. */
static int plan_by_keys(struct cmd_plan *plan, enum plan_class class, int argc,
                        const char *const *argv, const size_t *argv_len, const int *positions,
                        int count) {
    if (count == 0)
        return plan_whole(plan, CMD_PLAN_SINGLE, CMD_PLAN_NO_SLOT, argc, argv, argv_len);
    plan->key_index = positions[0];
    int slot = (int)key_hash_slot(argv[positions[0]], argv_len[positions[0]]);
    int same = 1;
    for (int i = 1; i < count && same; i++)
        same = (int)key_hash_slot(argv[positions[i]], argv_len[positions[i]]) == slot;
    if (same) return plan_whole(plan, CMD_PLAN_SINGLE, slot, argc, argv, argv_len);
    switch (class) {
    case PLAN_CLASS_SPLIT_KEYS:
        return plan_split(plan, 1, argv[0], argv_len[0], argc, argv, argv_len);
    case PLAN_CLASS_MSET: return plan_split(plan, 2, argv[0], argv_len[0], argc, argv, argv_len);
    case PLAN_CLASS_MSETNX: return plan_split(plan, 2, "MSET", 4, argc, argv, argv_len);
    case PLAN_CLASS_RENAME: return plan_rename(plan, 0, argc, argv, argv_len);
    case PLAN_CLASS_RENAMENX: return plan_rename(plan, 1, argc, argv, argv_len);
    default: return plan_crossslot(plan, argv, argv_len, positions, count);
    }
}

/* The plan of a command routed by its keys on a cluster target. */
static int plan_keyed(struct cmd_plan *plan, const struct cmd_table *table, enum plan_class class,
                      int argc, const char *const *argv, const size_t *argv_len) {
    const struct cmd_table_command *command = cmd_table_lookup(table, argc, argv, argv_len);
    if (command == NULL)
        return plan_unsupported(plan, CMD_PLAN_REASON_UNKNOWN_COMMAND, argv[0], argv_len[0],
                                "not in the target's command table: its keys cannot be routed");
    int stack[PLAN_KEYS_ON_STACK];
    int *positions = stack;
    const unsigned options = CMD_TABLE_KEYS_INCLUDE_NOT_KEYS;
    int count =
        cmd_table_get_keys(command, argc, argv, argv_len, options, stack, PLAN_KEYS_ON_STACK);
    if (count == CMD_TABLE_KEYS_UNKNOWN)
        return plan_unsupported(plan, CMD_PLAN_REASON_UNKNOWN_KEYS, argv[0], argv_len[0],
                                "the positions of its keys cannot be determined");
    if (count > PLAN_KEYS_ON_STACK) {
        positions = malloc((size_t)count * sizeof(*positions));
        if (positions == NULL) return -1;
        count = cmd_table_get_keys(command, argc, argv, argv_len, options, positions, count);
    }
    int rc = plan_by_keys(plan, class, argc, argv, argv_len, positions, count);
    if (positions != stack) free(positions);
    return rc;
}

/* The plan before the keys are looked at; -2 when the keys decide. */
static int plan_by_class(struct cmd_plan *plan, enum plan_class class, int argc,
                         const char *const *argv, const size_t *argv_len,
                         const struct cmd_plan_options *options) {
    int forward_publish = options->publish == CMD_PLAN_PUBLISH_FORWARD;
    switch (class) {
    case PLAN_CLASS_DROP: plan->kind = CMD_PLAN_DROP; return 0;
    case PLAN_CLASS_PUBLISH:
        if (forward_publish)
            return plan_whole(plan, CMD_PLAN_SINGLE, CMD_PLAN_NO_SLOT, argc, argv, argv_len);
        plan->kind = CMD_PLAN_DROP;
        return 0;
    case PLAN_CLASS_SPUBLISH:
        if (forward_publish) return -2;
        plan->kind = CMD_PLAN_DROP;
        return 0;
    case PLAN_CLASS_MULTI:
        return plan_whole(plan, CMD_PLAN_MULTI, CMD_PLAN_NO_SLOT, argc, argv, argv_len);
    case PLAN_CLASS_EXEC:
        return plan_whole(plan, CMD_PLAN_EXEC, CMD_PLAN_NO_SLOT, argc, argv, argv_len);
    case PLAN_CLASS_BROADCAST:
        return plan_whole(plan, options->cluster ? CMD_PLAN_BROADCAST : CMD_PLAN_SINGLE,
                          CMD_PLAN_NO_SLOT, argc, argv, argv_len);
    default: return -2;
    }
}

int cmd_plan_build(struct cmd_plan *plan, const struct cmd_table *table, int argc,
                   const char *const *argv, const size_t *argv_len,
                   const struct cmd_plan_options *options) {
    plan_reset(plan);
    if (argc < 1) return plan_unsupported(plan, CMD_PLAN_REASON_MALFORMED, "", 0, "empty command");
    enum plan_class class = plan_classify(argc, argv, argv_len);
    int rc = plan_by_class(plan, class, argc, argv, argv_len, options);
    if (rc == -2) {
        /* A standalone target holds every slot: nothing to look up or split. */
        if (!options->cluster)
            rc = plan_whole(plan, CMD_PLAN_SINGLE, CMD_PLAN_NO_SLOT, argc, argv, argv_len);
        else
            rc = plan_keyed(plan, table, class, argc, argv, argv_len);
    }
    if (rc != 0) cmd_plan_free(plan);
    return rc;
}

int cmd_plan_transaction_slot(const struct cmd_plan *const *plans, size_t count, int *slot) {
    *slot = CMD_PLAN_NO_SLOT;
    for (size_t i = 0; i < count; i++) {
        const struct cmd_plan *plan = plans[i];
        if (plan->kind == CMD_PLAN_MULTI || plan->kind == CMD_PLAN_EXEC ||
            plan->kind == CMD_PLAN_DROP)
            continue;
        if (plan->kind != CMD_PLAN_SINGLE) return 0;
        if (plan->slot == CMD_PLAN_NO_SLOT) continue;
        if (*slot != CMD_PLAN_NO_SLOT && *slot != plan->slot) return 0;
        *slot = plan->slot;
    }
    return 1;
}

const char *cmd_plan_kind_name(enum cmd_plan_kind kind) {
    switch (kind) {
    case CMD_PLAN_SINGLE: return "single";
    case CMD_PLAN_SPLIT: return "split";
    case CMD_PLAN_RENAME: return "rename";
    case CMD_PLAN_BROADCAST: return "broadcast";
    case CMD_PLAN_DROP: return "drop";
    case CMD_PLAN_MULTI: return "multi";
    case CMD_PLAN_EXEC: return "exec";
    case CMD_PLAN_UNSUPPORTED: return "unsupported";
    }
    return "?";
}
