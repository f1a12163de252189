/* checkpoint.h -- where each source shard's replication stands, on disk.
 *
 * Per shard: the replication id and the offset up to which the target has
 * acknowledged every write, and the db selected at that offset (a partial resync
 * does not repeat an earlier SELECT). Saved atomically: temp file, fsync, rename,
 * fsync of the directory. A file a person can read:
 *
 *   # shake checkpoint v1
 *   target_was_empty <0|1>
 *   shard <name> <replid> <offset> <db>
 *
 * target_was_empty records that the target held no key when the first sync began:
 * everything on it is then shake's, and a new full sync may clear it first.
 */
#ifndef SHAKE_CHECKPOINT_H
#define SHAKE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#define CHECKPOINT_NAME_MAX 256
#define CHECKPOINT_REPLID_LEN 40

struct checkpoint_shard {
    char name[CHECKPOINT_NAME_MAX];           /* the shard's identity, e.g. its address */
    char replid[CHECKPOINT_REPLID_LEN + 1];
    uint64_t offset;                          /* last acknowledged byte's offset + 1 */
    int db;
};

struct checkpoint {
    struct checkpoint_shard *shards;          /* owned */
    int count;
    int target_was_empty;
};

void checkpoint_init(struct checkpoint *checkpoint);
void checkpoint_free(struct checkpoint *checkpoint);
/* A missing file is an empty checkpoint. Returns 0, or -1 with a message naming the
 * file and line. */
int checkpoint_load(struct checkpoint *checkpoint, const char *path, char *err, size_t errlen);
int checkpoint_save(const struct checkpoint *checkpoint, const char *path, char *err,
                    size_t errlen);
const struct checkpoint_shard *checkpoint_find(const struct checkpoint *checkpoint,
                                               const char *name);
/* Add or update a shard. Returns 0, or -1 when out of memory or a field is too long. */
int checkpoint_set(struct checkpoint *checkpoint, const char *name, const char *replid,
                   uint64_t offset, int db);

#endif
