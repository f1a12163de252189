/* cmd_plan.h -- what to send where for one replicated command (a CMD entry).
 *
 * Owns: the pure decision for one argv from the source's replication stream:
 * forward it to one slot, split it per slot, emulate a cross-slot RENAME, send it
 * to every master, drop it, mark a transaction boundary, or refuse it with a
 * message. It encodes the commands to send (RESP, via command.h).
 *
 * Must not: do I/O, keep state between commands, know connections or nodes. The
 * router (writer.c) maps slots to masters, does the RENAME emulation's I/O,
 * buffers transactions and applies `[target] on_unsupported`.
 *
 * Lifetime: a plan's argv arrays are owned by the plan, but the bytes they point
 * to are the caller's argv (or string literals such as "MSET"): the caller's argv
 * must outlive the plan's parts (the entry owns them, so keep the entry until the
 * plan is released). The RESP encodings in `commands` are owned by the plan and
 * independent of the argv.
 */
#ifndef SHAKE_WRITER_CMD_PLAN_H
#define SHAKE_WRITER_CMD_PLAN_H

#include <stddef.h>

#include "writer/cmd_table.h"
#include "writer/command.h"

enum cmd_plan_kind {
    CMD_PLAN_SINGLE,      /* one command: parts[0], to `slot`'s master, or any master when
                             slot is CMD_PLAN_NO_SLOT (keyless, or a standalone target) */
    CMD_PLAN_SPLIT,       /* several commands, one per slot: parts[i] to parts[i].slot */
    CMD_PLAN_RENAME,      /* a cross-slot RENAME/RENAMENX: `rename` says what to emulate */
    CMD_PLAN_BROADCAST,   /* parts[0] to every master (flushes, functions, scripts) */
    CMD_PLAN_DROP,        /* nothing to send */
    CMD_PLAN_MULTI,       /* a transaction starts: buffer until EXEC (parts[0] is MULTI) */
    CMD_PLAN_EXEC,        /* the transaction ends (parts[0] is EXEC) */
    CMD_PLAN_UNSUPPORTED, /* cannot be applied faithfully: `message` says why */
};

/* Why a command is UNSUPPORTED. */
enum cmd_plan_reason {
    CMD_PLAN_REASON_NONE,
    CMD_PLAN_REASON_CROSSSLOT,       /* keys in different slots, and no faithful split */
    CMD_PLAN_REASON_UNKNOWN_COMMAND, /* not in the target's command table */
    CMD_PLAN_REASON_UNKNOWN_KEYS,    /* the key positions cannot be known */
    CMD_PLAN_REASON_MALFORMED,       /* an argv the command's syntax does not allow */
};

#define CMD_PLAN_NO_SLOT (-1)
#define CMD_PLAN_MESSAGE_MAX 512

/* What to do with PUBLISH / SPUBLISH (`[target] publish`). */
enum cmd_plan_publish {
    CMD_PLAN_PUBLISH_DROP,    /* the default: subscribers of the target are not ours */
    CMD_PLAN_PUBLISH_FORWARD, /* PUBLISH to any master, SPUBLISH to its channel's slot */
};

struct cmd_plan_options {
    int cluster; /* the target is a Redis Cluster (else standalone: nothing to split) */
    enum cmd_plan_publish publish;
};

/* One command to send: argv borrowed as the file comment says. */
struct cmd_plan_part {
    int slot; /* CMD_PLAN_NO_SLOT when it has no key (or the target is standalone) */
    int argc;
    const char *const *argv;
    const size_t *argv_len;
};

/* A cross-slot RENAME/RENAMENX to emulate: DUMP src, then RESTORE dst ttl payload
 * REPLACE (RENAMENX: only when dst does not exist), then DEL src. The keys point
 * into the caller's argv. */
struct cmd_plan_rename {
    const char *source;
    size_t source_len;
    const char *destination;
    size_t destination_len;
    int nx; /* RENAMENX */
    int source_slot;
    int destination_slot;
};

/* The plan for one command. Owner: whoever called cmd_plan_init(); released with
 * cmd_plan_free(). Safe to copy by value (nothing points into the struct). */
struct cmd_plan {
    enum cmd_plan_kind kind;
    enum cmd_plan_reason reason; /* UNSUPPORTED only */
    int slot;                    /* SINGLE: the slot of every key, or CMD_PLAN_NO_SLOT */
    int key_index;               /* argv index of the first key, -1 when none or not looked for */
    struct cmd_plan_part *parts; /* owned; kept from build to build */
    size_t part_count;
    size_t part_capacity;
    struct command_list commands;       /* commands.items[i] encodes parts[i] */
    struct cmd_plan_rename rename;      /* RENAME only */
    char message[CMD_PLAN_MESSAGE_MAX]; /* UNSUPPORTED: names the command and its keys */
    const char **part_argv;             /* owned storage behind SPLIT parts' argv */
    size_t *part_argv_len;              /* owned storage behind SPLIT parts' argv_len */
};

void cmd_plan_init(struct cmd_plan *plan);
/* Release what the plan holds and make it empty again (an initialized plan). */
void cmd_plan_free(struct cmd_plan *plan);

/* Plan one replicated command. `plan` must be initialized; what it held before is
 * released first, so one plan can be reused command after command. `table` may be
 * NULL for a standalone target. Returns 0 (the plan says what to do, an
 * UNSUPPORTED command included), or -1 when out of memory (the plan is then
 * empty). */
int cmd_plan_build(struct cmd_plan *plan, const struct cmd_table *table, int argc,
                   const char *const *argv, const size_t *argv_len,
                   const struct cmd_plan_options *options);

/* Whether a buffered transaction (the plans of the commands between MULTI and
 * EXEC; MULTI, EXEC and DROP plans are ignored) can be sent whole to one master:
 * every other plan is SINGLE and those with keys share one slot. Returns 1 and
 * that slot in *slot (CMD_PLAN_NO_SLOT when none has a key: any master, or a
 * standalone target), else 0: apply the commands in order, one by one. */
int cmd_plan_transaction_slot(const struct cmd_plan *const *plans, size_t count, int *slot);

const char *cmd_plan_kind_name(enum cmd_plan_kind kind);

#endif
