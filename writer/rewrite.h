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
    size_t batch_max_items;  /* elements per command (also ids per XCLAIM); 0: no bound */
    size_t batch_max_bytes;  /* bytes of element strings per command (scores and ids not
                                counted); an element bigger than this is sent alone;
                                0: no bound */
    int replace;             /* first chunk of a key starts with DEL key */
};

/* Append the commands for one entry to `out`:
 *  - CHUNK: the items as batched commands; the first chunk may start with DEL (replace),
 *    the last ends with PEXPIREAT when the entry has an expire, and hash fields with a
 *    TTL get HPEXPIREAT. Streams: XADD with explicit ids, XSETID, XGROUP CREATE,
 *    XGROUP CREATECONSUMER, XCLAIM ... FORCE JUSTID for the pending entries.
 *  - FUNCTION: FUNCTION LOAD REPLACE <code>.
 * Replace semantics: with `replace`, the first chunk starts with DEL key (strings need
 * none: SET replaces any type). Without it nothing guards the key: SET overwrites
 * and the variadic commands merge into an existing value, so the caller (the router)
 * must check existence itself when the key must be kept.
 * Strings: the first piece is SET, any further piece (item or chunk) is APPENDed.
 * Streams: each STREAM_ENTRY's fields must be in the same chunk (one XADD each). A
 * stream with no entry is created by `XADD key MAXLEN 0 0-1 x y` before XSETID;
 * XSETID carries ENTRIESADDED / MAXDELETEDID (Redis 7.0+) only when they differ from
 * what the XADDs produce. Pending entries with the same group, consumer, delivery
 * time and count share one XCLAIM. A pending id that was deleted from the stream
 * cannot be recreated: Redis' XCLAIM skips ids absent from the stream, so that PEL
 * entry is lost on the target (its XCLAIM reply lacks the id).
 * Hash field TTLs: HPEXPIREAT (Redis 7.4+), emitted whatever the target.
 * Returns 0, or -1 with a message in err (out of memory, an item kind that does not
 * belong to the entry's type, a NaN score, a stream entry without fields, a module
 * value); on error nothing is appended to `out`. */
int rewrite_build(const struct shake_entry *entry, const struct rewrite_options *options,
                  struct command_list *out, char *err, size_t errlen);

#endif
