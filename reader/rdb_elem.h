/* rdb_elem.h -- one element read out of a packed encoding (listpack, ziplist,
 * intset, zipmap): either bytes pointing into the blob, or an integer. */
#ifndef SHAKE_RDB_ELEM_H
#define SHAKE_RDB_ELEM_H

#include <stddef.h>

struct rdb_elem {
    const char *str;  /* NULL when the element is an integer */
    size_t len;
    long long ival;   /* meaningful when str == NULL */
};

#define RDB_ELEM_SCRATCH 24

/* The element as bytes: its own bytes, or the integer printed in decimal into
 * `scratch` (at least RDB_ELEM_SCRATCH bytes). */
const char *rdb_elem_bytes(const struct rdb_elem *elem, char *scratch, size_t *len);

#endif
