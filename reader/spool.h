/* spool.h -- a first-in first-out queue of bytes on disk.
 *
 * While the target is slower than the source, a replica keeps reading its socket
 * (so the master never drops it for a full output buffer) and parks the command
 * stream here, to be parsed in order once the writer catches up. Bytes live in
 * segment files under a directory; a segment is deleted once it has been read.
 * Memory stays at one file descriptor per open segment, whatever is queued.
 */
#ifndef SHAKE_SPOOL_H
#define SHAKE_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct spool;

/* Files are named <dir>/spool-<name>-<n>. Returns NULL when out of memory. */
struct spool *spool_new(const char *dir, const char *name, uint64_t segment_bytes);
/* Removes every file of the spool. */
void spool_free(struct spool *spool);

/* Append bytes at the end. Returns 0, or -1 with a message (a write error). */
int spool_append(struct spool *spool, const char *buf, size_t len, char *err, size_t errlen);
/* Take up to `cap` bytes from the front: bytes read, 0 when empty, -1 with a
 * message on a read error. */
ssize_t spool_read(struct spool *spool, char *buf, size_t cap, char *err, size_t errlen);
/* Bytes queued. */
uint64_t spool_size(const struct spool *spool);
/* Drop everything queued (the stream restarts elsewhere). */
void spool_clear(struct spool *spool);

#endif
