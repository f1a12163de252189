/* intset.c -- owns reading an intset blob (RDB type 11): <encoding u32le: 2, 4 or 8>
 * <count u32le> then count sorted, distinct little-endian integers of that width.
 * Everything is checked up front in init, so iterating cannot fail. It does not
 * allocate; the caller owns the blob. */
#include "reader/intset.h"

#include <stdarg.h>
#include <stdio.h>

#define INTSET_HEADER_SIZE 8

/* Fills err with one line, whatever the caller's buffer. */
__attribute__((format(printf, 3, 4))) static void intset_fail(char *err, size_t errlen,
                                                              const char *fmt, ...) {
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* n bytes at p as an unsigned little-endian integer (n <= 8), byte by byte. */
static unsigned long long intset_load_le(const unsigned char *p, size_t n) {
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (unsigned long long)p[i] << (8 * i);
    return v;
}

/* Redis stores int16, int32 or int64 members, nothing else. */
static int intset_width_ok(uint32_t encoding) {
    return encoding == 2 || encoding == 4 || encoding == 8;
}

/* The integer at index i, sign-extended from the set's width. */
static long long intset_get(const struct intset_iter *it, uint32_t i) {
    size_t width = it->encoding;
    unsigned long long raw = intset_load_le(it->blob + INTSET_HEADER_SIZE + i * width, width);
    unsigned bits = (unsigned)(8 * width);
    unsigned long long all_ones = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
    if (raw < 1ULL << (bits - 1)) return (long long)raw;
    return -(long long)(all_ones - raw) - 1; /* no conversion overflows, minimum included */
}

/* Checks the width, that the blob holds exactly count integers, and, as Redis's
 * deep check does, that they strictly increase: a RESTORE of a set that is not
 * sorted would corrupt the target silently. */
int intset_iter_init(struct intset_iter *it, const char *blob, size_t len, char *err,
                     size_t errlen) {
    const unsigned char *p = (const unsigned char *)blob;
    if (blob == NULL || len < INTSET_HEADER_SIZE) {
        intset_fail(err, errlen, "intset: %zu bytes, shorter than the 8-byte header", len);
        return -1;
    }
    uint32_t encoding = (uint32_t)intset_load_le(p, 4);
    if (!intset_width_ok(encoding)) {
        intset_fail(err, errlen, "intset: bad encoding %u at byte 0 (want 2, 4 or 8)", encoding);
        return -1;
    }
    uint32_t count = (uint32_t)intset_load_le(p + 4, 4);
    unsigned long long want = INTSET_HEADER_SIZE + (unsigned long long)count * encoding;
    if (want != len) {
        intset_fail(err, errlen, "intset: %u integers of %u bytes need %llu bytes, blob is %zu",
                    count, encoding, want, len);
        return -1;
    }
    *it = (struct intset_iter){.blob = p, .encoding = encoding, .count = count};
    for (uint32_t i = 1; i < count; i++) {
        if (intset_get(it, i) <= intset_get(it, i - 1)) {
            intset_fail(err, errlen, "intset: integer %u at byte %zu is not above the one before",
                        i, INTSET_HEADER_SIZE + (size_t)i * encoding);
            return -1;
        }
    }
    return 0;
}

/* The next integer, in the set's (ascending) order. */
int intset_iter_next(struct intset_iter *it, struct rdb_elem *out) {
    if (it->index >= it->count || !intset_width_ok(it->encoding)) return 0;
    *out = (struct rdb_elem){.ival = intset_get(it, it->index)};
    it->index++;
    return 1;
}
