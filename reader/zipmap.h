/* zipmap.h -- reads a zipmap blob (RDB type 9, hashes of Redis before 2.6). */
#ifndef SHAKE_ZIPMAP_H
#define SHAKE_ZIPMAP_H

#include <stddef.h>

#include "reader/rdb_elem.h"

struct zipmap_iter {
    const unsigned char *blob;
    size_t len;
    size_t pos;
};

int zipmap_iter_init(struct zipmap_iter *it, const char *blob, size_t len, char *err,
                     size_t errlen);
/* 1 with a field and its value, 0 at the end, -1 with a message in err. */
int zipmap_iter_next(struct zipmap_iter *it, struct rdb_elem *field, struct rdb_elem *value,
                     char *err, size_t errlen);

#endif
