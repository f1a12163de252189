/* cmd_stream.h -- parses a replication command stream (or an AOF) into CMD entries.
 *
 * Feed bytes as they arrive, pull one command at a time. RESP is parsed by hiredis'
 * redisReader. Each entry's offset is the stream offset just after its last byte,
 * counted exactly as the master counts its replication offset, so a checkpoint of
 * an acknowledged entry's offset is a valid PSYNC position. SELECT is tracked: every
 * entry carries the db it applies to (SELECT itself is emitted too, so that offsets
 * advance through it).
 */
#ifndef SHAKE_CMD_STREAM_H
#define SHAKE_CMD_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "shake/entry.h"

enum cmd_stream_status {
    CMD_STREAM_OK,        /* *out holds a CMD entry, owned by the caller */
    CMD_STREAM_NEED_MORE, /* feed more bytes */
    CMD_STREAM_ERR,       /* see cmd_stream_error() */
};

struct cmd_stream;

/* `offset` is the stream offset of the first byte that will be fed; `db` the
 * database selected at that point. */
struct cmd_stream *cmd_stream_new(int source, uint64_t offset, int db);
void cmd_stream_free(struct cmd_stream *stream);

enum cmd_stream_status cmd_stream_feed(struct cmd_stream *stream, const char *buf, size_t len);
enum cmd_stream_status cmd_stream_next(struct cmd_stream *stream, struct shake_entry **out);

/* Offset just after the last command pulled. */
uint64_t cmd_stream_offset(const struct cmd_stream *stream);
/* Bytes fed but not yet part of a pulled command. */
size_t cmd_stream_buffered(const struct cmd_stream *stream);
int cmd_stream_db(const struct cmd_stream *stream);
/* "offset N: what went wrong" */
const char *cmd_stream_error(const struct cmd_stream *stream);

#endif
