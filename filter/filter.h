/* filter.h -- decides, for each entry, keep or drop, and rewrites what crosses:
 * the database number ([target] db_map) and key names ([filter] rename_key_prefix).
 *
 * Sees entries only: it never knows which reader made them or which writer takes
 * them. The rules are the [filter] section (docs/filters.md); they are compiled
 * once by filter_new() and judge every phase alike: RDB file restore, full sync,
 * command stream.
 *
 * Verdicts, per entry:
 *  - KEY and CHUNK: the source db, the value type, the key. Kept keys are renamed.
 *  - FUNCTION: judged as the command FUNCTION (group scripting).
 *  - CMD: SELECT, PING, REPLCONF, MULTI and EXEC always pass. Others: the source
 *    db, the command name and group, the value type of the command's group, then
 *    each key (positions from the command table). When some keys are kept and
 *    some dropped, DEL/UNLINK/EXISTS/TOUCH/MSET/MSETNX keep only the kept keys;
 *    any other command is FILTER_ERROR (the job stops, or skips it with
 *    [target] on_unsupported = skip).
 *
 * Ownership: the filter borrows `conf` (it must outlive the filter) and the
 * command table handed to filter_new(), and owns the compiled regexes and, when it
 * built it, the built-in command table. Not thread-safe: one filter per loop.
 * With no [filter] rule, filter_apply() only maps the db and allocates nothing.
 */
#ifndef SHAKE_FILTER_H
#define SHAKE_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "shake/entry.h"

struct cmd_table;
struct filter;

enum filter_verdict {
    FILTER_KEEP,  /* pass the (possibly rewritten) entry on */
    FILTER_DROP,  /* free it: the rules exclude it */
    FILTER_ERROR, /* the rules cannot be applied faithfully: filter_error() says why */
};

/* What the filter removed, for the summary and the status. */
struct filter_stats {
    uint64_t keys_filtered;      /* KEY entries dropped (a chunked key counts once) */
    uint64_t functions_filtered; /* FUNCTION entries dropped */
    uint64_t commands_filtered;  /* CMD entries dropped whole */
    uint64_t commands_split;     /* CMD entries that kept only some of their keys */
    uint64_t commands_refused;   /* CMD entries answered with FILTER_ERROR */
    uint64_t keys_renamed;       /* keys renamed, in KEY entries and in commands */
};

/* Build the filter from conf->filter and conf->target (db_map). `table` gives
 * key positions of commands; NULL: the built-in table (cmd_table_builtin()),
 * which knows the commands a replication stream commonly carries. Returns NULL
 * with a one-line message in `err` (out of memory, or a regex that does not
 * compile, which conf_load() has already ruled out). */
struct filter *filter_new(const struct shake_conf *conf, const struct cmd_table *table, char *err,
                          size_t errlen);
void filter_free(struct filter *filter);

/* Judge `entry` and rewrite it in place (db, key names, split argv). On
 * FILTER_DROP and FILTER_ERROR the entry is left to the caller to free. */
enum filter_verdict filter_apply(struct filter *filter, struct shake_entry *entry);
/* The reason for the last FILTER_ERROR: names the command and its keys. */
const char *filter_error(const struct filter *filter);
const struct filter_stats *filter_stats(const struct filter *filter);
/* 1 when some [filter] rule is configured (db_map alone does not count). */
int filter_is_active(const struct filter *filter);

#endif
