/* intset.c -- owns reading an intset blob (RDB type 11): <encoding u32le: 2, 4 or 8>
 * <count u32le> then count sorted, distinct little-endian integers of that width.
 * Everything is checked up front in init, so iterating cannot fail. It does not
 * allocate; the caller owns the blob. */
#include "reader/intset.h"

#include "reader/blob.h"

#define INTSET_HEADER_SIZE 8

/* Redis stores int16, int32 or int64 members, nothing else. */
static int intset_width_ok(uint32_t encoding) {
    return encoding == 2 || encoding == 4 || encoding == 8;
}

/* The integer at index i, sign-extended from the set's width. */
static long long intset_get(const struct intset_iter *it, uint32_t i) {
    size_t width = it->encoding;
    unsigned long long raw = blob_load_le(it->blob + INTSET_HEADER_SIZE + i * width, width);
    return blob_signed(raw, (unsigned)(8 * width));
}

/* Checks the width, that the blob holds exactly count integers, and, as Redis's
 * deep check does, that they strictly increase: a RESTORE of a set that is not
 * sorted would corrupt the target silently. */
int intset_iter_init(struct intset_iter *it, const char *blob, size_t len, char *err,
                     size_t errlen) {
    const unsigned char *p = (const unsigned char *)blob;
    if (blob == NULL || len < INTSET_HEADER_SIZE) {
        blob_fail(err, errlen, "intset: %zu bytes, shorter than the 8-byte header", len);
        return -1;
    }
    uint32_t encoding = (uint32_t)blob_load_le(p, 4);
    if (!intset_width_ok(encoding)) {
        blob_fail(err, errlen, "intset: bad encoding %u at byte 0 (want 2, 4 or 8)", encoding);
        return -1;
    }
    uint32_t count = (uint32_t)blob_load_le(p + 4, 4);
    unsigned long long want = INTSET_HEADER_SIZE + (unsigned long long)count * encoding;
    if (want != len) {
        blob_fail(err, errlen, "intset: %u integers of %u bytes need %llu bytes, blob is %zu",
                  count, encoding, want, len);
        return -1;
    }
    *it = (struct intset_iter){.blob = p, .encoding = encoding, .count = count};
    for (uint32_t i = 1; i < count; i++) {
        if (intset_get(it, i) <= intset_get(it, i - 1)) {
            blob_fail(err, errlen, "intset: integer %u at byte %zu is not above the one before", i,
                      INTSET_HEADER_SIZE + (size_t)i * encoding);
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
