/* checkpoint_live.c -- see checkpoint_live.h.
 *
 * File layout (native byte order: the file never leaves the machine):
 *   "SHAKELV1", uint32 count, uint32 zero, then `count` slots of two copies:
 *   uint64 seq (0 = empty), uint64 offset, int64 db, name[256], replid[48],
 *   uint64 CRC-64 of the bytes before it.
 */
#include "shake/checkpoint_live.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shake/crc64.h"

#define LIVE_MAGIC "SHAKELV1"
#define LIVE_MAGIC_LEN 8
#define LIVE_MAX_SHARDS 16384

struct live_copy {
    uint64_t seq;
    uint64_t offset;
    int64_t db;
    char name[CHECKPOINT_NAME_MAX];
    char replid[48];
    uint64_t crc;
};

struct live_header {
    char magic[LIVE_MAGIC_LEN];
    uint32_t count;
    uint32_t zero;
};

struct live_slot_state {
    uint64_t seq;     /* of the newest copy written */
    int next;         /* the copy the next record overwrites */
    uint64_t offset;  /* what the newest copy says, to skip identical records */
    int db;
    int recorded;
};

struct checkpoint_live {
    int fd;
    void *map;
    size_t size;
    int count;
    struct live_copy (*slots)[2];  /* into map */
    struct live_slot_state *state; /* owned, one per slot */
};

static size_t live_file_size(int count) {
    return sizeof(struct live_header) + (size_t)count * 2 * sizeof(struct live_copy);
}

static uint64_t live_copy_crc(const struct live_copy *copy) {
    return crc64(0, copy, offsetof(struct live_copy, crc));
}

static int live_copy_valid(const struct live_copy *copy) {
    if (copy->seq == 0 || copy->crc != live_copy_crc(copy)) return 0;
    if (memchr(copy->name, '\0', sizeof(copy->name)) == NULL) return 0;
    if (strnlen(copy->replid, sizeof(copy->replid)) != CHECKPOINT_REPLID_LEN) return 0;
    return copy->db >= 0 && copy->db <= 0x7fffffff;
}

/* The newest valid copy of a slot, or NULL. */
static const struct live_copy *live_newest(const struct live_copy copies[2]) {
    const struct live_copy *best = NULL;
    for (int i = 0; i < 2; i++) {
        if (live_copy_valid(&copies[i]) && (best == NULL || copies[i].seq > best->seq))
            best = &copies[i];
    }
    return best;
}

static int live_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(struct live_header) ||
        (size_t)st.st_size > live_file_size(LIVE_MAX_SHARDS)) {
        close(fd);
        return 0; /* not ours, or empty: nothing to apply */
    }
    *data = malloc((size_t)st.st_size);
    if (*data == NULL) {
        close(fd);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    ssize_t got = pread(fd, *data, (size_t)st.st_size, 0);
    close(fd);
    if (got != (ssize_t)st.st_size) {
        free(*data);
        *data = NULL;
        snprintf(err, errlen, "%s: cannot read: %s", path, got < 0 ? strerror(errno) : "short read");
        return -1;
    }
    *len = (size_t)st.st_size;
    return 0;
}

/* Whether a live copy moves the durable position of its shard forward. */
static int live_is_newer(const struct checkpoint_shard *saved, const struct live_copy *copy,
                         const char *no_replid) {
    if (strcmp(saved->replid, no_replid) == 0) return 1;
    return copy->offset > saved->offset;
}

int checkpoint_live_apply(struct checkpoint *checkpoint, const char *path, const char *no_replid,
                          char *err, size_t errlen) {
    char *data;
    size_t len;
    if (live_read_file(path, &data, &len, err, errlen) != 0) return -1;
    if (data == NULL) return 0;
    struct live_header header;
    memcpy(&header, data, sizeof(header));
    int moved = 0;
    if (memcmp(header.magic, LIVE_MAGIC, LIVE_MAGIC_LEN) == 0 && header.count <= LIVE_MAX_SHARDS &&
        live_file_size((int)header.count) <= len) {
        for (uint32_t i = 0; i < header.count; i++) {
            struct live_copy copies[2];
            memcpy(copies, data + live_file_size((int)i), sizeof(copies));
            const struct live_copy *copy = live_newest(copies);
            if (copy == NULL || strcmp(copy->replid, no_replid) == 0) continue;
            const struct checkpoint_shard *saved = checkpoint_find(checkpoint, copy->name);
            if (saved == NULL || !live_is_newer(saved, copy, no_replid)) continue;
            if (checkpoint_set(checkpoint, copy->name, copy->replid, copy->offset, (int)copy->db) ==
                0)
                moved++;
        }
    }
    free(data);
    return moved;
}

struct checkpoint_live *checkpoint_live_create(const char *path, int count, char *err,
                                               size_t errlen) {
    if (count < 0 || count > LIVE_MAX_SHARDS) {
        snprintf(err, errlen, "%s: %d shards: too many", path, count);
        return NULL;
    }
    struct checkpoint_live *live = calloc(1, sizeof(*live));
    if (live != NULL) live->state = calloc((size_t)count + 1, sizeof(*live->state));
    if (live == NULL || live->state == NULL) {
        free(live);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    live->count = count;
    live->size = live_file_size(count);
    live->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (live->fd < 0 || ftruncate(live->fd, (off_t)live->size) != 0) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        checkpoint_live_free(live);
        return NULL;
    }
    live->map = mmap(NULL, live->size, PROT_READ | PROT_WRITE, MAP_SHARED, live->fd, 0);
    if (live->map == MAP_FAILED) {
        live->map = NULL;
        snprintf(err, errlen, "%s: cannot map: %s", path, strerror(errno));
        checkpoint_live_free(live);
        return NULL;
    }
    struct live_header header = {.count = (uint32_t)count};
    memcpy(header.magic, LIVE_MAGIC, LIVE_MAGIC_LEN);
    memcpy(live->map, &header, sizeof(header));
    live->slots = (struct live_copy(*)[2])((char *)live->map + sizeof(header));
    return live;
}

void checkpoint_live_record(struct checkpoint_live *live, int index, const char *name,
                            const char *replid, uint64_t offset, int db) {
    if (live == NULL || index < 0 || index >= live->count) return;
    struct live_slot_state *state = &live->state[index];
    if (state->recorded && state->offset == offset && state->db == db &&
        strcmp(live->slots[index][1 - state->next].replid, replid) == 0)
        return;
    struct live_copy copy;
    memset(&copy, 0, sizeof(copy));
    copy.seq = ++state->seq;
    copy.offset = offset;
    copy.db = db;
    snprintf(copy.name, sizeof(copy.name), "%s", name);
    snprintf(copy.replid, sizeof(copy.replid), "%s", replid);
    copy.crc = live_copy_crc(&copy);
    /* Fields first, CRC last: a copy cut short by a kill fails its CRC. */
    struct live_copy *target = &live->slots[index][state->next];
    memcpy(target, &copy, offsetof(struct live_copy, crc));
    atomic_signal_fence(memory_order_seq_cst);
    target->crc = copy.crc;
    state->next = 1 - state->next;
    state->offset = offset;
    state->db = db;
    state->recorded = 1;
}

void checkpoint_live_forget(struct checkpoint_live *live, int index) {
    if (live == NULL || index < 0 || index >= live->count) return;
    memset(live->slots[index], 0, sizeof(live->slots[index]));
    live->state[index].recorded = 0;
}

void checkpoint_live_free(struct checkpoint_live *live) {
    if (live == NULL) return;
    if (live->map != NULL) munmap(live->map, live->size);
    if (live->fd >= 0) close(live->fd);
    free(live->state);
    free(live);
}
