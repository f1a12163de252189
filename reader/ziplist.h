/* ziplist.h -- reads a ziplist blob (RDB types 10, 12, 13 and quicklist v1 nodes).
 * Validates header lengths, tail offset, prevlen and encodings, the 0xFF end. */
#ifndef SHAKE_ZIPLIST_H
#define SHAKE_ZIPLIST_H

#include <stddef.h>
#include <stdint.h>

#include "reader/rdb_elem.h"

struct ziplist_iter {
    const unsigned char *blob;
    size_t len;
    size_t pos;
    size_t prev_entry_len;
    uint16_t declared_count;  /* 65535 means "unknown, count them" */
    uint32_t seen;
};

int ziplist_iter_init(struct ziplist_iter *it, const char *blob, size_t len, char *err,
                      size_t errlen);
/* 1 with *out set, 0 at the end, -1 with a message in err. */
int ziplist_iter_next(struct ziplist_iter *it, struct rdb_elem *out, char *err, size_t errlen);

#endif
