/* probe.h -- what a target is, from its INFO and CONFIG replies.
 *
 * Pure parsing and version knowledge: the RDB version a Redis release writes and
 * the RDB value types its RESTORE accepts. The writer sends the commands; this
 * file only reads the replies.
 */
#ifndef SHAKE_WRITER_PROBE_H
#define SHAKE_WRITER_PROBE_H

#include <stddef.h>
#include <stdint.h>

#define PROBE_DEFAULT_PROTO_MAX_BULK_LEN ((size_t)512 * 1024 * 1024)

/* Copy the value of `field` ("redis_version") from an INFO text into out.
 * Returns 0, or -1 when the field is absent. */
int probe_info_field(const char *info, size_t info_len, const char *field, char *out,
                     size_t outlen);
/* Parse "7.0.15" (missing parts are 0). Returns 0, or -1 when it is no version. */
int probe_parse_version(const char *text, int *major, int *minor, int *patch);
/* The RDB version a release writes: 7.4+ 12, 7.2 11, 7.0 10, 5.0-6.2 9, 4.0 8,
 * 3.2 7, older 6. */
int probe_rdb_version(int major, int minor);
/* Bit t set: an RDB of that version may hold value type t and RESTORE takes it. */
uint64_t probe_restorable_types(int rdb_version);
/* Sum of keys=N over the dbN lines of an INFO keyspace text. */
uint64_t probe_keyspace_keys(const char *info, size_t info_len);
/* proto-max-bulk-len from a CONFIG GET reply (a redisReply); the default when the
 * reply is an error, empty, or not a number. */
size_t probe_proto_max_bulk_len(const void *reply);

#endif
