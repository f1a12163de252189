/* ziplist.c -- owns walking a ziplist blob (RDB types 10, 12, 13 and the nodes of
 * quicklist v1) one entry at a time, validating as it goes so that a corrupt blob is
 * an error naming the byte, never a read outside it.
 *
 * Layout: <zlbytes u32le> <zltail u32le> <zllen u16le> <entry>* 0xFF, where each
 * entry is <prevlen: 1 byte, or 0xFE + u32le> <encoding> <data>. Integers are little
 * endian, but the 14- and 32-bit string lengths are big endian, as Redis writes them.
 * It does not allocate: strings point into the caller's blob. */
#include "reader/ziplist.h"

#include "reader/blob.h"

#define ZIPLIST_HEADER_SIZE 10
#define ZIPLIST_END 0xFF
#define ZIPLIST_BIG_PREVLEN 0xFE
#define ZIPLIST_COUNT_UNKNOWN 65535

#define ZIPLIST_INT_16B 0xC0
#define ZIPLIST_INT_32B 0xD0
#define ZIPLIST_INT_64B 0xE0
#define ZIPLIST_INT_24B 0xF0
#define ZIPLIST_INT_8B 0xFE
#define ZIPLIST_INT_IMM_MIN 0xF1
#define ZIPLIST_INT_IMM_MAX 0xFD

/* What an entry's encoding says: how many bytes follow it, and how to read them. */
struct ziplist_encoding {
    size_t encoding_size; /* the encoding byte plus any string-length bytes */
    size_t data_len;      /* string bytes, or the integer's width (0: immediate) */
    int is_string;
};

/* Checks the fixed header: the declared total equals the blob's length, the last
 * byte is the end marker, the tail offset lies inside. Later checks trust `len`. */
int ziplist_iter_init(struct ziplist_iter *it, const char *blob, size_t len, char *err,
                      size_t errlen) {
    const unsigned char *p = (const unsigned char *)blob;
    if (blob == NULL || len < ZIPLIST_HEADER_SIZE + 1) {
        blob_fail(err, errlen, "ziplist: %zu bytes, shorter than the 11-byte minimum", len);
        return -1;
    }
    unsigned long long total = blob_load_le(p, 4);
    if (total != len) {
        blob_fail(err, errlen, "ziplist: header at byte 0 says %llu bytes, blob is %zu", total,
                  len);
        return -1;
    }
    if (p[len - 1] != ZIPLIST_END) {
        blob_fail(err, errlen, "ziplist: last byte %zu is 0x%02x, not the 0xFF end marker", len - 1,
                  p[len - 1]);
        return -1;
    }
    unsigned long long tail = blob_load_le(p + 4, 4);
    if (tail < ZIPLIST_HEADER_SIZE || tail > len - 1) {
        blob_fail(err, errlen, "ziplist: tail offset %llu at byte 4 is outside the %zu bytes", tail,
                  len);
        return -1;
    }
    *it = (struct ziplist_iter){
        .blob = p,
        .len = len,
        .pos = ZIPLIST_HEADER_SIZE,
        .declared_count = (uint16_t)blob_load_le(p + 8, 2),
    };
    return 0;
}

/* At the end marker: it must be the blob's last byte, the tail offset must name the
 * last entry, and the count must agree. */
static int ziplist_finish(struct ziplist_iter *it, char *err, size_t errlen) {
    if (it->pos != it->len - 1) {
        blob_fail(err, errlen, "ziplist: end marker at byte %zu, but the blob is %zu bytes",
                  it->pos, it->len);
        return -1;
    }
    unsigned long long tail = blob_load_le(it->blob + 4, 4);
    if (it->seen > 0 && tail != it->pos - it->prev_entry_len) {
        blob_fail(err, errlen, "ziplist: tail offset %llu, but the last entry is at byte %zu", tail,
                  it->pos - it->prev_entry_len);
        return -1;
    }
    if (it->declared_count != ZIPLIST_COUNT_UNKNOWN && it->seen != it->declared_count) {
        blob_fail(err, errlen, "ziplist: header declares %u entries, found %u", it->declared_count,
                  it->seen);
        return -1;
    }
    return 0;
}

/* Reads the prevlen field at p into *prevlen and its width into *size. */
static int ziplist_read_prevlen(const unsigned char *p, size_t avail, size_t at, size_t *size,
                                size_t *prevlen, char *err, size_t errlen) {
    if (p[0] != ZIPLIST_BIG_PREVLEN) {
        *size = 1;
        *prevlen = p[0];
        return 0;
    }
    if (avail < 5) {
        blob_fail(err, errlen, "ziplist: 5-byte prevlen at byte %zu runs past the end", at);
        return -1;
    }
    *size = 5;
    *prevlen = (size_t)blob_load_le(p + 1, 4);
    return 0;
}

/* Reads the encoding at p (avail bytes before the end marker). Redis masks the low
 * six bits of a string encoding byte before comparing, so any 10xxxxxx is a 32-bit
 * string length; the integer encodings must match exactly. */
static int ziplist_read_encoding(const unsigned char *p, size_t avail, size_t at,
                                 struct ziplist_encoding *enc, char *err, size_t errlen) {
    unsigned char b = p[0];
    *enc = (struct ziplist_encoding){.encoding_size = 1, .is_string = b < 0xC0};
    if ((b & 0xC0) == 0x40)
        enc->encoding_size = 2;
    else if ((b & 0xC0) == 0x80)
        enc->encoding_size = 5;
    if (enc->encoding_size > avail) {
        blob_fail(err, errlen, "ziplist: string length at byte %zu runs past the end", at);
        return -1;
    }
    if ((b & 0xC0) == 0x00)
        enc->data_len = b & 0x3F;
    else if ((b & 0xC0) == 0x40)
        enc->data_len = ((size_t)(b & 0x3F) << 8) | p[1];
    else if ((b & 0xC0) == 0x80)
        enc->data_len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    else if (b == ZIPLIST_INT_8B)
        enc->data_len = 1;
    else if (b == ZIPLIST_INT_16B)
        enc->data_len = 2;
    else if (b == ZIPLIST_INT_24B)
        enc->data_len = 3;
    else if (b == ZIPLIST_INT_32B)
        enc->data_len = 4;
    else if (b == ZIPLIST_INT_64B)
        enc->data_len = 8;
    else if (b < ZIPLIST_INT_IMM_MIN || b > ZIPLIST_INT_IMM_MAX) {
        blob_fail(err, errlen, "ziplist: bad entry encoding 0x%02x at byte %zu", b, at);
        return -1;
    }
    return 0;
}

/* An integer entry's value: the 4-bit immediate is 0..12 stored as 1..13; the
 * others are two's complement little endian of width data_len. */
static long long ziplist_integer(unsigned char encoding, const unsigned char *data, size_t width) {
    if (width == 0) return (long long)(encoding & 0x0F) - 1;
    return blob_signed(blob_load_le(data, width), (unsigned)(8 * width));
}

/* Decodes the entry at it->pos, checks that its prevlen names the previous entry's
 * size and that it ends before the end marker, then steps past it. */
int ziplist_iter_next(struct ziplist_iter *it, struct rdb_elem *out, char *err, size_t errlen) {
    if (it->pos >= it->len) {
        blob_fail(err, errlen, "ziplist: read past the end at byte %zu", it->pos);
        return -1;
    }
    const unsigned char *p = it->blob + it->pos;
    if (p[0] == ZIPLIST_END) return ziplist_finish(it, err, errlen);
    size_t avail = it->len - 1 - it->pos; /* bytes before the end marker */
    size_t prevlen_size, prevlen;
    if (ziplist_read_prevlen(p, avail, it->pos, &prevlen_size, &prevlen, err, errlen) < 0)
        return -1;
    if (prevlen != it->prev_entry_len) {
        blob_fail(err, errlen,
                  "ziplist: entry at byte %zu says the previous is %zu bytes, it is %zu", it->pos,
                  prevlen, it->prev_entry_len);
        return -1;
    }
    if (prevlen_size + 1 > avail) {
        blob_fail(err, errlen, "ziplist: entry at byte %zu has no encoding byte", it->pos);
        return -1;
    }
    struct ziplist_encoding enc;
    const unsigned char *e = p + prevlen_size;
    if (ziplist_read_encoding(e, avail - prevlen_size, it->pos + prevlen_size, &enc, err, errlen) <
        0)
        return -1;
    size_t header = prevlen_size + enc.encoding_size;
    if (enc.data_len > avail - header) {
        blob_fail(err, errlen, "ziplist: entry at byte %zu needs %zu data bytes, %zu left", it->pos,
                  enc.data_len, avail - header);
        return -1;
    }
    if (it->declared_count != ZIPLIST_COUNT_UNKNOWN && it->seen >= it->declared_count) {
        blob_fail(err, errlen, "ziplist: entry at byte %zu is beyond the %u declared", it->pos,
                  it->declared_count);
        return -1;
    }
    if (enc.is_string)
        *out = (struct rdb_elem){.str = (const char *)p + header, .len = enc.data_len};
    else
        *out = (struct rdb_elem){.ival = ziplist_integer(e[0], p + header, enc.data_len)};
    it->prev_entry_len = header + enc.data_len;
    it->pos += it->prev_entry_len;
    it->seen++;
    return 1;
}
