/* intset.h -- reads an intset blob (RDB type 11): 16, 32 or 64-bit sorted ints. */
#ifndef SHAKE_INTSET_H
#define SHAKE_INTSET_H

#include <stddef.h>
#include <stdint.h>

#include "reader/rdb_elem.h"

struct intset_iter {
    const unsigned char *blob;
    uint32_t encoding;  /* 2, 4 or 8 bytes per integer */
    uint32_t count;
    uint32_t index;
};

/* Checks the encoding and that len matches 8 + count * encoding. */
int intset_iter_init(struct intset_iter *it, const char *blob, size_t len, char *err,
                     size_t errlen);
/* 1 with *out set (an integer), 0 at the end. */
int intset_iter_next(struct intset_iter *it, struct rdb_elem *out);

#endif
