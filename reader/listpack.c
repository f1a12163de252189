/* listpack.c -- owns walking a listpack blob (Redis 7 hashes, sets, zsets, list
 * nodes, stream nodes) one entry at a time, validating as it goes so that a corrupt
 * blob is an error naming the byte, never a read outside it.
 *
 * Layout: <total-bytes u32le> <count u16le> <entry>* 0xFF, where each entry is
 * <encoding+data> <backlen>, backlen being the size of <encoding+data> in 1-5 bytes.
 * It does not allocate: strings point into the caller's blob. */
#include "reader/listpack.h"

#include "reader/blob.h"

#define LISTPACK_HEADER_SIZE 6
#define LISTPACK_END 0xFF
#define LISTPACK_COUNT_UNKNOWN 65535

/* The one-byte encodings; 0xF1..0xF4 are 16, 24, 32 and 64-bit integers. */
#define LISTPACK_ENC_32BIT_STR 0xF0
#define LISTPACK_ENC_16BIT_INT 0xF1
#define LISTPACK_ENC_64BIT_INT 0xF4

/* What an entry's first bytes say: its encoded size, and its value. */
struct listpack_entry_head {
    size_t header_size; /* encoding byte(s), before any string bytes */
    size_t string_len;  /* 0 for integers */
    int is_string;
    unsigned bits; /* width of an integer's two's complement payload */
    unsigned long long raw;
};

/* The width of the backlen Redis writes after an entry of content_len bytes. The
 * uneven bounds (16383 takes three bytes) are Redis's own, and must match. */
static size_t listpack_backlen_size(size_t content_len) {
    if (content_len <= 127) return 1;
    if (content_len < 16383) return 2;
    if (content_len < 2097151) return 3;
    if (content_len < 268435455) return 4;
    return 5;
}

/* Whether the backlen bytes at p are exactly those Redis writes for content_len:
 * the most significant 7-bit group first, every later byte flagged with 0x80.
 * The one-byte form (entries up to 127 bytes) is nearly every entry's. */
static inline int listpack_backlen_matches(const unsigned char *p, size_t size,
                                           size_t content_len) {
    if (size == 1) return p[0] == content_len;
    for (size_t i = 0; i < size; i++) {
        unsigned shift = (unsigned)(7 * (size - 1 - i));
        unsigned expected = (unsigned)((content_len >> shift) & 127);
        if (i > 0) expected |= 128;
        if (p[i] != expected) return 0;
    }
    return 1;
}

/* Reads the encoding byte at p (and the length bytes that follow it, when avail
 * allows) into *head. Returns 0, or -1 with err set for an unknown encoding or a
 * header cut short. */
static inline int listpack_read_head(const unsigned char *p, size_t avail, size_t at,
                                     struct listpack_entry_head *head, char *err,
                                     size_t errlen) {
    unsigned char b = p[0];
    *head = (struct listpack_entry_head){.header_size = 1};
    if ((b & 0x80) == 0) {
        head->bits = 7;
        head->raw = b & 0x7F;
    } else if ((b & 0xC0) == 0x80) {
        head->is_string = 1;
        head->string_len = b & 0x3F;
    } else if ((b & 0xE0) == 0xC0) {
        head->header_size = 2;
        head->bits = 13;
    } else if ((b & 0xF0) == 0xE0) {
        head->header_size = 2;
        head->is_string = 1;
    } else if (b == LISTPACK_ENC_32BIT_STR) {
        head->header_size = 5;
        head->is_string = 1;
    } else if (b >= LISTPACK_ENC_16BIT_INT && b <= LISTPACK_ENC_64BIT_INT) {
        static const unsigned widths[] = {16, 24, 32, 64};
        head->bits = widths[b - LISTPACK_ENC_16BIT_INT];
        head->header_size = 1 + head->bits / 8;
    } else {
        blob_fail(err, errlen, "listpack: bad entry encoding 0x%02x at byte %zu", b, at);
        return -1;
    }
    if (head->header_size > avail) {
        blob_fail(err, errlen,
                  "listpack: entry header at byte %zu needs %zu bytes, only %zu before the end", at,
                  head->header_size, avail);
        return -1;
    }
    if ((b & 0xE0) == 0xC0)
        head->raw = ((unsigned long long)(b & 0x1F) << 8) | p[1];
    else if ((b & 0xF0) == 0xE0)
        head->string_len = ((size_t)(b & 0x0F) << 8) | p[1];
    else if (b == LISTPACK_ENC_32BIT_STR)
        head->string_len = (size_t)blob_load_le(p + 1, 4);
    else if (b >= LISTPACK_ENC_16BIT_INT && b <= LISTPACK_ENC_64BIT_INT)
        head->raw = blob_load_le(p + 1, head->bits / 8);
    return 0;
}

/* An integer entry's value: the 7-bit form is unsigned (0..127), the others are
 * two's complement. */
static long long listpack_signed(unsigned long long raw, unsigned bits) {
    if (bits == 7) return (long long)raw;
    return blob_signed(raw, bits);
}

/* Checks the fixed header: the declared total equals the blob's length and the last
 * byte is the terminator, so that later bounds checks can trust `len`. */
int listpack_iter_init(struct listpack_iter *it, const char *blob, size_t len, char *err,
                       size_t errlen) {
    const unsigned char *p = (const unsigned char *)blob;
    if (blob == NULL || len < LISTPACK_HEADER_SIZE + 1) {
        blob_fail(err, errlen, "listpack: %zu bytes, shorter than the 7-byte minimum", len);
        return -1;
    }
    unsigned long long total = blob_load_le(p, 4);
    if (total != len) {
        blob_fail(err, errlen, "listpack: header at byte 0 says %llu bytes, blob is %zu", total,
                  len);
        return -1;
    }
    if (p[len - 1] != LISTPACK_END) {
        blob_fail(err, errlen, "listpack: last byte %zu is 0x%02x, not the 0xFF terminator",
                  len - 1, p[len - 1]);
        return -1;
    }
    *it = (struct listpack_iter){
        .blob = p,
        .len = len,
        .pos = LISTPACK_HEADER_SIZE,
        .declared_count = (uint32_t)blob_load_le(p + 4, 2),
    };
    return 0;
}

/* At the terminator: it must be the blob's last byte and the count must agree. */
static int listpack_finish(struct listpack_iter *it, char *err, size_t errlen) {
    if (it->pos != it->len - 1) {
        blob_fail(err, errlen, "listpack: terminator at byte %zu, but the blob is %zu bytes",
                  it->pos, it->len);
        return -1;
    }
    if (it->declared_count != LISTPACK_COUNT_UNKNOWN && it->seen != it->declared_count) {
        blob_fail(err, errlen, "listpack: header declares %u entries, found %u", it->declared_count,
                  it->seen);
        return -1;
    }
    return 0;
}

/* Decodes the entry at it->pos, checks that it and its backlen end before the
 * terminator and that the backlen agrees, then steps past it. */
int listpack_iter_next(struct listpack_iter *it, struct rdb_elem *out, char *err, size_t errlen) {
    if (it->pos >= it->len) {
        blob_fail(err, errlen, "listpack: read past the end at byte %zu", it->pos);
        return -1;
    }
    const unsigned char *p = it->blob + it->pos;
    if (p[0] == LISTPACK_END) return listpack_finish(it, err, errlen);
    size_t avail = it->len - 1 - it->pos; /* bytes before the terminator */
    struct listpack_entry_head head;
    if (listpack_read_head(p, avail, it->pos, &head, err, errlen) < 0) return -1;
    if (head.string_len > avail - head.header_size) {
        blob_fail(err, errlen,
                  "listpack: string of %zu bytes at byte %zu runs past the end (%zu left)",
                  head.string_len, it->pos, avail - head.header_size);
        return -1;
    }
    size_t content_len = head.header_size + head.string_len;
    size_t backlen_size = listpack_backlen_size(content_len);
    if (backlen_size > avail - content_len) {
        blob_fail(err, errlen, "listpack: entry at byte %zu runs past the end", it->pos);
        return -1;
    }
    if (!listpack_backlen_matches(p + content_len, backlen_size, content_len)) {
        blob_fail(err, errlen, "listpack: back-length at byte %zu does not match entry size %zu",
                  it->pos + content_len, content_len);
        return -1;
    }
    if (it->declared_count != LISTPACK_COUNT_UNKNOWN && it->seen >= it->declared_count) {
        blob_fail(err, errlen, "listpack: entry at byte %zu is beyond the %u declared", it->pos,
                  it->declared_count);
        return -1;
    }
    if (head.is_string)
        *out = (struct rdb_elem){.str = (const char *)p + head.header_size, .len = head.string_len};
    else
        *out = (struct rdb_elem){.ival = listpack_signed(head.raw, head.bits)};
    it->pos += content_len + backlen_size;
    it->seen++;
    return 1;
}
