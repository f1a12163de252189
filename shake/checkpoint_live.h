/* checkpoint_live.h -- the acknowledged position of every shard, updated after
 * each round of acknowledgements (sync.c records once per event-loop round), in a
 * file that survives kill -9.
 *
 * The checkpoint file (checkpoint.h) is saved durably once per
 * checkpoint_interval_ms; a process killed between two saves would resume from
 * the older one and apply again every command acknowledged since. This file
 * closes most of that gap: it is a shared memory mapping of `dir/checkpoint.live`,
 * so each store lands in the kernel's page cache at once and outlives the
 * process (not a power loss: that is what the durable file is for). A restart
 * takes a shard's position from here when it is newer than the durable one.
 *
 * Each shard has two copies of its record, written alternately, each with a
 * sequence number and a CRC-64: a process killed in the middle of a store leaves
 * the other copy intact. After kill -9, only the writes that were on their way
 * (sent, not yet answered, or answered in the round the kill interrupted) can be
 * applied twice.
 */
#ifndef SHAKE_CHECKPOINT_LIVE_H
#define SHAKE_CHECKPOINT_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "shake/checkpoint.h"

struct checkpoint_live;

/* Move the shards of `checkpoint` forward to the positions recorded in the live
 * file at `path`, where the file holds a valid, newer position for a shard the
 * checkpoint knows (a shard marked as in a full sync with `no_replid` takes any
 * valid live position: it is recorded only once the stream has begun). A missing
 * file changes nothing. Returns the number of shards moved, or -1 with a message
 * in err (a file that cannot be read; a damaged one is not an error: it is
 * ignored, and only its damaged records). */
int checkpoint_live_apply(struct checkpoint *checkpoint, const char *path, const char *no_replid,
                          char *err, size_t errlen);

/* Create (or truncate) the live file at `path` with room for `count` shards.
 * Returns NULL with a message in err. */
struct checkpoint_live *checkpoint_live_create(const char *path, int count, char *err,
                                               size_t errlen);

/* Record shard `index` at `offset` of `replid`, with `db` selected there. */
void checkpoint_live_record(struct checkpoint_live *live, int index, const char *name,
                            const char *replid, uint64_t offset, int db);

/* Forget shard `index`'s position (a full sync starts over). */
void checkpoint_live_forget(struct checkpoint_live *live, int index);

/* Unmap and close; the file stays. NULL is allowed. */
void checkpoint_live_free(struct checkpoint_live *live);

#endif
