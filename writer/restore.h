/* restore.h -- builds RESTORE commands for KEY entries (the fast path).
 *
 * The payload is the entry's RDB type byte and raw value bytes, followed by the
 * 2-byte RDB version (little endian) and the CRC64 of everything before it (8 bytes,
 * little endian), exactly what DUMP produces. Pure: no I/O.
 */
#ifndef SHAKE_WRITER_RESTORE_H
#define SHAKE_WRITER_RESTORE_H

#include "shake/entry.h"
#include "writer/command.h"

struct restore_options {
    int rdb_version;  /* written into the payload footer */
    int replace;      /* add REPLACE */
    int keep_lru_lfu; /* add IDLETIME / FREQ when the entry carries them */
};

/* Append `RESTORE key ttl payload ABSTTL [REPLACE] [IDLETIME s|FREQ f]` to `out`.
 * A key already expired keeps its absolute TTL (the target drops it). Returns 0, or
 * -1 when out of memory. */
int restore_build(const struct shake_entry *entry, const struct restore_options *options,
                  struct command_list *out);
/* The same, taking the entry's raw buffer for the command when it has room for
 * the whole RESP: no allocation, no copy, and the value bytes do not even move
 * when raw_front has room for the command's head; entry->raw is NULL afterwards
 * in that case. Otherwise as restore_build. The entry's other fields are left as
 * they were. */
int restore_build_take(struct shake_entry *entry, const struct restore_options *options,
                       struct command_list *out);

#endif
