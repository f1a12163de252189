/* rdb_elem.c -- owns turning one decoded element of a packed encoding into bytes:
 * strings as they are, integers printed in decimal exactly as Redis prints them.
 * No allocation: the caller lends the scratch buffer. */
#include "reader/rdb_elem.h"

/* Prints v in decimal at the start of scratch and returns its length. Works on the
 * magnitude as unsigned so that LLONG_MIN needs no special case. */
static size_t rdb_elem_print_integer(long long v, char *scratch) {
    char digits[RDB_ELEM_SCRATCH];
    unsigned long long magnitude = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude != 0);
    size_t len = 0;
    if (v < 0) scratch[len++] = '-';
    while (n > 0)
        scratch[len++] = digits[--n];
    scratch[len] = '\0';
    return len;
}

/* The element's bytes: a string points into the blob, an integer is rendered into
 * scratch (NUL-terminated, not counted in *len). */
const char *rdb_elem_bytes(const struct rdb_elem *elem, char *scratch, size_t *len) {
    if (elem->str != NULL) {
        *len = elem->len;
        return elem->str;
    }
    *len = rdb_elem_print_integer(elem->ival, scratch);
    return scratch;
}
