/* rewrite.h -- turns CHUNK and FUNCTION entries into ordinary commands.
 *
 * Used when RESTORE cannot carry a value: an older target, a value larger than the
 * target's proto-max-bulk-len, or a collection streamed in chunks. Elements are
 * batched into variadic commands (RPUSH, SADD, ZADD, HSET, XADD...) bounded in items
 * and bytes. Pure: no I/O.
 */
#ifndef SHAKE_WRITER_REWRITE_H
#define SHAKE_WRITER_REWRITE_H

#include <stddef.h>

#include "shake/entry.h"
#include "writer/command.h"

struct rewrite_options {
    size_t batch_max_items;  /* elements per command */
    size_t batch_max_bytes;  /* argument bytes per command */
    int replace;             /* first chunk of a key starts with DEL key */
};

/* Append the commands for one entry to `out`:
 *  - CHUNK: the items as batched commands; the first chunk may start with DEL (replace),
 *    the last ends with PEXPIREAT when the entry has an expire, and hash fields with a
 *    TTL get HPEXPIREAT. Streams: XADD with explicit ids, XSETID, XGROUP CREATE,
 *    XGROUP CREATECONSUMER, XCLAIM ... FORCE JUSTID for the pending entries.
 *  - FUNCTION: FUNCTION LOAD REPLACE <code>.
 * Returns 0, or -1 with a message in err (out of memory, an item kind that does not
 * belong to the entry's type). */
int rewrite_build(const struct shake_entry *entry, const struct rewrite_options *options,
                  struct command_list *out, char *err, size_t errlen);

#endif
