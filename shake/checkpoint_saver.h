/* checkpoint_saver.h -- writes checkpoints on a thread of their own.
 *
 * Saving means write, fsync, rename, fsync of the directory: tens of milliseconds on
 * a busy disk. On the event loop that would leave the source's socket unread for
 * that long, and a master whose replica output buffer fills in the meantime drops
 * the replica. The loop hands over a copy; the thread writes the newest one (a copy
 * not yet written is replaced by a newer one). flush() waits when durability must
 * come first (before a full sync rewrites the target).
 */
#ifndef SHAKE_CHECKPOINT_SAVER_H
#define SHAKE_CHECKPOINT_SAVER_H

#include <stddef.h>

#include "shake/checkpoint.h"

struct checkpoint_saver;

/* Returns NULL when out of memory or when the thread cannot start. */
struct checkpoint_saver *checkpoint_saver_new(const char *path);
/* Queue a copy of `checkpoint` to be saved. Returns 0, or -1 when out of memory. */
int checkpoint_saver_submit(struct checkpoint_saver *saver, const struct checkpoint *checkpoint);
/* Wait until everything submitted is on disk. Returns 0, or -1 with the error of the
 * last failed save in err. */
int checkpoint_saver_flush(struct checkpoint_saver *saver, char *err, size_t errlen);
/* The error of a background save that failed since the last call, if any: returns
 * 1 and fills err, or 0. */
int checkpoint_saver_take_error(struct checkpoint_saver *saver, char *err, size_t errlen);
/* Flush, stop the thread, release. */
void checkpoint_saver_free(struct checkpoint_saver *saver);

#endif
