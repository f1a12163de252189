/* listpack.h -- reads a listpack blob (Redis 7 hashes, sets, zsets, list nodes,
 * stream nodes). Validates as it walks: header total length, every entry's
 * encoding and back-length, the terminator, the declared count. */
#ifndef SHAKE_LISTPACK_H
#define SHAKE_LISTPACK_H

#include <stddef.h>
#include <stdint.h>

#include "reader/rdb_elem.h"

struct listpack_iter {
    const unsigned char *blob;
    size_t len;
    size_t pos;
    uint32_t declared_count;  /* 65535 means "unknown, count them" */
    uint32_t seen;
};

/* Returns 0, or -1 with a message in err when the header is malformed. */
int listpack_iter_init(struct listpack_iter *it, const char *blob, size_t len, char *err,
                       size_t errlen);
/* Returns 1 with *out set, 0 at the end (after checking the terminator and count),
 * or -1 with a message in err. */
int listpack_iter_next(struct listpack_iter *it, struct rdb_elem *out, char *err, size_t errlen);

#endif
