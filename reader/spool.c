/* spool.c -- see spool.h.
 *
 * Segments are numbered; the writer appends to segment `write_seq` and the reader
 * reads segment `read_seq` from `read_pos`. When the reader reaches the end of a
 * segment the writer has moved past, that segment is closed and unlinked.
 */
#include "reader/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct spool {
    char *dir;
    char *name;
    uint64_t segment_bytes;
    uint64_t write_seq, read_seq;
    uint64_t write_pos, read_pos;   /* within their segments */
    int write_fd, read_fd;          /* -1 when closed */
    uint64_t size;
};

static void spool_path(const struct spool *spool, uint64_t seq, char *path, size_t len) {
    snprintf(path, len, "%s/spool-%s-%llu", spool->dir, spool->name, (unsigned long long)seq);
}

struct spool *spool_new(const char *dir, const char *name, uint64_t segment_bytes) {
    struct spool *spool = calloc(1, sizeof(*spool));
    if (spool == NULL) return NULL;
    spool->dir = strdup(dir);
    spool->name = strdup(name);
    if (spool->dir == NULL || spool->name == NULL) {
        free(spool->dir);
        free(spool->name);
        free(spool);
        return NULL;
    }
    spool->segment_bytes = segment_bytes ? segment_bytes : 64 * 1024 * 1024;
    spool->write_fd = spool->read_fd = -1;
    return spool;
}

/* Close both ends and remove every segment from read_seq to write_seq. */
void spool_clear(struct spool *spool) {
    char path[4096];
    if (spool->write_fd >= 0) close(spool->write_fd);
    if (spool->read_fd >= 0 && spool->read_fd != spool->write_fd) close(spool->read_fd);
    spool->write_fd = spool->read_fd = -1;
    for (uint64_t seq = spool->read_seq; seq <= spool->write_seq; seq++) {
        spool_path(spool, seq, path, sizeof(path));
        unlink(path);
    }
    spool->write_seq = spool->read_seq = spool->write_seq + 1;
    spool->write_pos = spool->read_pos = 0;
    spool->size = 0;
}

void spool_free(struct spool *spool) {
    if (spool == NULL) return;
    spool_clear(spool);
    free(spool->dir);
    free(spool->name);
    free(spool);
}

uint64_t spool_size(const struct spool *spool) {
    return spool->size;
}

static int spool_open_write(struct spool *spool, char *err, size_t errlen) {
    char path[4096];
    spool_path(spool, spool->write_seq, path, sizeof(path));
    spool->write_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (spool->write_fd >= 0) return 0;
    snprintf(err, errlen, "spool %s: %s", path, strerror(errno));
    return -1;
}

int spool_append(struct spool *spool, const char *buf, size_t len, char *err, size_t errlen) {
    while (len > 0) {
        if (spool->write_pos >= spool->segment_bytes) {
            if (spool->write_fd != spool->read_fd) close(spool->write_fd);
            spool->write_fd = -1;
            spool->write_seq++;
            spool->write_pos = 0;
        }
        if (spool->write_fd < 0 && spool_open_write(spool, err, errlen) != 0) return -1;
        size_t room = (size_t)(spool->segment_bytes - spool->write_pos);
        size_t n = len < room ? len : room;
        ssize_t written = pwrite(spool->write_fd, buf, n, (off_t)spool->write_pos);
        if (written < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "spool write: %s", strerror(errno));
            return -1;
        }
        spool->write_pos += (uint64_t)written;
        spool->size += (uint64_t)written;
        buf += written;
        len -= (size_t)written;
    }
    return 0;
}

/* The reader finished a segment the writer has left: delete it, go to the next. */
static void spool_next_read_segment(struct spool *spool) {
    char path[4096];
    if (spool->read_fd >= 0 && spool->read_fd != spool->write_fd) close(spool->read_fd);
    spool->read_fd = -1;
    spool_path(spool, spool->read_seq, path, sizeof(path));
    unlink(path);
    spool->read_seq++;
    spool->read_pos = 0;
}

ssize_t spool_read(struct spool *spool, char *buf, size_t cap, char *err, size_t errlen) {
    while (spool->size > 0) {
        uint64_t end = spool->read_seq == spool->write_seq ? spool->write_pos
                                                           : spool->segment_bytes;
        if (spool->read_pos >= end) {
            spool_next_read_segment(spool);
            continue;
        }
        if (spool->read_fd < 0) {
            char path[4096];
            spool_path(spool, spool->read_seq, path, sizeof(path));
            spool->read_fd = open(path, O_RDONLY | O_CLOEXEC);
            if (spool->read_fd < 0) {
                snprintf(err, errlen, "spool %s: %s", path, strerror(errno));
                return -1;
            }
        }
        size_t n = (size_t)(end - spool->read_pos) < cap ? (size_t)(end - spool->read_pos) : cap;
        ssize_t got = pread(spool->read_fd, buf, n, (off_t)spool->read_pos);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            snprintf(err, errlen, "spool read: %s", got < 0 ? strerror(errno) : "file truncated");
            return -1;
        }
        spool->read_pos += (uint64_t)got;
        spool->size -= (uint64_t)got;
        if (spool->size == 0) spool_clear(spool); /* drained: nothing stays on disk */
        return got;
    }
    return 0;
}
