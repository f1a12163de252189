/* zipmap.c -- owns reading a zipmap blob (RDB type 9, hashes written by Redis before
 * 2.6): <count: 1 byte, 254 = unknown> then pairs <len><field><len><free><value>
 * <free bytes>, then 0xFF. A length is one byte below 254, or 254 + u32le.
 * Init walks the whole blob once (zipmaps are small), so next() only re-reads what
 * init proved safe. It does not allocate; strings point into the caller's blob. */
#include "reader/zipmap.h"

#include "reader/blob.h"

#define ZIPMAP_BIGLEN 254
#define ZIPMAP_END 255

/* Reads a length at *pos (which must be before the end marker) and the string it
 * prefixes; a value also has a free-space count between the two, and that many
 * unused bytes after it. Leaves *pos after them. Returns 0, or -1 with err when
 * anything runs into the end marker. */
static int zipmap_read_string(const unsigned char *blob, size_t len, size_t *pos, int is_value,
                              struct rdb_elem *out, char *err, size_t errlen) {
    size_t at = *pos;
    size_t end = len - 1; /* index of the end marker */
    size_t p = at + 1;
    size_t slen = blob[at];
    if (slen == ZIPMAP_BIGLEN) {
        if (end - p < 4) {
            blob_fail(err, errlen, "zipmap: 5-byte length at byte %zu runs past the end", at);
            return -1;
        }
        slen = (size_t)blob[p] | (size_t)blob[p + 1] << 8 | (size_t)blob[p + 2] << 16 |
               (size_t)blob[p + 3] << 24;
        p += 4;
    }
    size_t free_bytes = 0;
    if (is_value) {
        if (p >= end) {
            blob_fail(err, errlen, "zipmap: value at byte %zu has no free-space byte", at);
            return -1;
        }
        free_bytes = blob[p++];
    }
    if (slen > end - p || free_bytes > end - p - slen) {
        blob_fail(err, errlen, "zipmap: %s of %zu bytes at byte %zu runs past the end",
                  is_value ? "value" : "field", slen, at);
        return -1;
    }
    *out = (struct rdb_elem){.str = (const char *)blob + p, .len = slen};
    *pos = p + slen + free_bytes;
    return 0;
}

/* One pair at it->pos, or the end. Shared by init's full walk and by next(). */
static int zipmap_step(struct zipmap_iter *it, struct rdb_elem *field, struct rdb_elem *value,
                       char *err, size_t errlen) {
    if (it->pos >= it->len) {
        blob_fail(err, errlen, "zipmap: read past the end at byte %zu", it->pos);
        return -1;
    }
    if (it->blob[it->pos] == ZIPMAP_END) {
        if (it->pos != it->len - 1) {
            blob_fail(err, errlen, "zipmap: end marker at byte %zu, but the blob is %zu bytes",
                      it->pos, it->len);
            return -1;
        }
        return 0;
    }
    size_t at = it->pos;
    if (zipmap_read_string(it->blob, it->len, &it->pos, 0, field, err, errlen) < 0) return -1;
    if (it->pos >= it->len - 1 || it->blob[it->pos] == ZIPMAP_END) {
        blob_fail(err, errlen, "zipmap: field at byte %zu has no value", at);
        return -1;
    }
    return zipmap_read_string(it->blob, it->len, &it->pos, 1, value, err, errlen) < 0 ? -1 : 1;
}

/* Checks the terminator, then walks every pair once so that a count mismatch or a
 * bad length is reported before the caller has emitted anything. */
int zipmap_iter_init(struct zipmap_iter *it, const char *blob, size_t len, char *err,
                     size_t errlen) {
    const unsigned char *p = (const unsigned char *)blob;
    if (blob == NULL || len < 2) {
        blob_fail(err, errlen, "zipmap: %zu bytes, shorter than the 2-byte minimum", len);
        return -1;
    }
    if (p[len - 1] != ZIPMAP_END) {
        blob_fail(err, errlen, "zipmap: last byte %zu is 0x%02x, not the 0xFF end marker", len - 1,
                  p[len - 1]);
        return -1;
    }
    *it = (struct zipmap_iter){.blob = p, .len = len, .pos = 1};
    struct rdb_elem field, value;
    unsigned long pairs = 0;
    int rc;
    while ((rc = zipmap_step(it, &field, &value, err, errlen)) == 1)
        pairs++;
    if (rc < 0) return -1;
    if (p[0] < ZIPMAP_BIGLEN && p[0] != pairs) {
        blob_fail(err, errlen, "zipmap: byte 0 declares %u pairs, found %lu", p[0], pairs);
        return -1;
    }
    it->pos = 1;
    return 0;
}

/* The next field and value, both strings (zipmaps store no integers). */
int zipmap_iter_next(struct zipmap_iter *it, struct rdb_elem *field, struct rdb_elem *value,
                     char *err, size_t errlen) {
    return zipmap_step(it, field, value, err, errlen);
}
