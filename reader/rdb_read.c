/* rdb_read.c -- owns the RDB element primitives: length encodings, string
 * encodings (plain, int8/16/32, LZF), text and binary doubles, little-endian
 * times, and the small growable buffers the decoder uses.
 *
 * Every reader works on a cursor over the buffered input and reports RDB_RC_MORE
 * when the element is not all there; it never consumes input itself (the caller
 * commits the cursor once a whole element group parsed). It does not decompress
 * or copy unless asked (rdb_string_bytes), so the raw path stays cheap.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reader/lzf.h"
#include "reader/rdb_internal.h"

#define RDB_LZF_MAX_RATIO 100

/* Grows b to hold at least `need` bytes. */
int rdb_buf_reserve(struct rdb_buf *b, size_t need) {
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->ptr, cap);
    if (p == NULL) return -1;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

/* Releases the buffer's memory. */
void rdb_buf_free(struct rdb_buf *b) {
    free(b->ptr);
    *b = (struct rdb_buf){0};
}

void rdb_buf_trim(struct rdb_buf *b, size_t keep) {
    if (b->cap > keep) rdb_buf_free(b);
}

/* Replaces the content of b with n bytes at p. */
int rdb_buf_set(struct rdb_buf *b, const char *p, size_t n) {
    if (rdb_buf_reserve(b, n + 1) < 0) return -1;
    if (n > 0) memcpy(b->ptr, p, n);
    b->ptr[n] = '\0';
    b->len = n;
    return 0;
}

/* One byte, the workhorse of opcodes and type bytes. */
int rdb_read_byte(struct rdb_cursor *c, unsigned char *out) {
    if (c->p >= c->end) return RDB_RC_MORE;
    *out = *c->p++;
    return RDB_RC_OK;
}

/* n bytes in place. */
int rdb_read_bytes(struct rdb_cursor *c, size_t n, const unsigned char **out) {
    if ((size_t)(c->end - c->p) < n) return RDB_RC_MORE;
    *out = c->p;
    c->p += n;
    return RDB_RC_OK;
}

/* A length as rdbLoadLenByRef reads it: 6, 14, 32 or 64 bits, or (encoded = 1)
 * the six bits of a special string encoding. */
int rdb_read_len(struct rdb_decoder *d, struct rdb_cursor *c, uint64_t *len, int *encoded) {
    const unsigned char *start = c->p;
    if (c->p >= c->end) return RDB_RC_MORE;
    unsigned char b = c->p[0];
    int kind = (b & 0xC0) >> 6;
    *encoded = 0;
    if (kind == RDB_ENCVAL) {
        *encoded = 1;
        *len = b & 0x3F;
        c->p += 1;
    } else if (kind == RDB_6BITLEN) {
        *len = b & 0x3F;
        c->p += 1;
    } else if (kind == RDB_14BITLEN) {
        if (c->end - c->p < 2) return RDB_RC_MORE;
        *len = ((uint64_t)(b & 0x3F) << 8) | c->p[1];
        c->p += 2;
    } else if (b == RDB_32BITLEN) {
        if (c->end - c->p < 5) return RDB_RC_MORE;
        const unsigned char *q = c->p + 1;
        *len = ((uint64_t)q[0] << 24) | ((uint64_t)q[1] << 16) | ((uint64_t)q[2] << 8) | q[3];
        c->p += 5;
    } else if (b == RDB_64BITLEN) {
        if (c->end - c->p < 9) return RDB_RC_MORE;
        uint64_t v = 0;
        for (int i = 1; i <= 8; i++)
            v = (v << 8) | c->p[i];
        *len = v;
        c->p += 9;
    } else {
        return rdb_fail(d, rdb_offset_of(d, start), "unknown length encoding 0x%02x", b);
    }
    return RDB_RC_OK;
}

/* A length that must not be a special encoding (counts, ids, times). */
int rdb_read_plain_len(struct rdb_decoder *d, struct rdb_cursor *c, uint64_t *len) {
    const unsigned char *start = c->p;
    int encoded;
    int rc = rdb_read_len(d, c, len, &encoded);
    if (rc != RDB_RC_OK) return rc;
    if (encoded)
        return rdb_fail(d, rdb_offset_of(d, start), "expected a length, found string encoding %llu",
                        (unsigned long long)*len);
    return RDB_RC_OK;
}

/* An element count, refused when absurd (nothing is allocated from it). */
int rdb_read_count(struct rdb_decoder *d, struct rdb_cursor *c, uint64_t *count, const char *what) {
    const unsigned char *start = c->p;
    int rc = rdb_read_plain_len(d, c, count);
    if (rc != RDB_RC_OK) return rc;
    if (*count > RDB_MAX_COUNT)
        return rdb_fail(d, rdb_offset_of(d, start), "absurd %s count %llu", what,
                        (unsigned long long)*count);
    return RDB_RC_OK;
}

/* Says whether waiting for `need_end` (absolute) would grow a raw value past
 * raw_max: then the value is better decoded than buffered whole. */
static int rdb_raw_would_overflow(const struct rdb_decoder *d, uint64_t need_end) {
    return d->state == RDB_STATE_VALUE && d->v.mode == RDB_MODE_RAW &&
           need_end - d->v.start > d->opt.raw_max;
}

/* A string element as rdbGenericLoadStringObject reads it, without decoding: the
 * caller decides whether it needs the bytes. Lengths above max_element fail
 * before anything is buffered for them. */
int rdb_read_string(struct rdb_decoder *d, struct rdb_cursor *c, struct rdb_string *s) {
    const unsigned char *start = c->p;
    uint64_t len;
    int encoded;
    int rc = rdb_read_len(d, c, &len, &encoded);
    if (rc != RDB_RC_OK) return rc;
    s->offset = rdb_offset_of(d, start);
    if (!encoded) {
        if (len > d->opt.max_element)
            return rdb_fail(d, s->offset, "string length %llu exceeds max_element %zu",
                            (unsigned long long)len, d->opt.max_element);
        if ((uint64_t)(c->end - c->p) < len) {
            if (rdb_raw_would_overflow(d, rdb_offset_of(d, c->p) + len)) return RDB_RC_SWITCH;
            return RDB_RC_MORE;
        }
        s->enc = RDB_STR_PLAIN;
        s->ptr = c->p;
        s->len = s->ulen = (size_t)len;
        c->p += len;
        return RDB_RC_OK;
    }
    const unsigned char *q;
    switch (len) {
    case RDB_ENC_INT8:
        if ((rc = rdb_read_bytes(c, 1, &q)) != RDB_RC_OK) return rc;
        *s = (struct rdb_string){.enc = RDB_STR_INT, .ival = (int8_t)q[0], .offset = s->offset};
        return RDB_RC_OK;
    case RDB_ENC_INT16:
        if ((rc = rdb_read_bytes(c, 2, &q)) != RDB_RC_OK) return rc;
        *s = (struct rdb_string){.enc = RDB_STR_INT,
                                 .ival = (int16_t)(uint16_t)(q[0] | (q[1] << 8)),
                                 .offset = s->offset};
        return RDB_RC_OK;
    case RDB_ENC_INT32:
        if ((rc = rdb_read_bytes(c, 4, &q)) != RDB_RC_OK) return rc;
        *s = (struct rdb_string){.enc = RDB_STR_INT,
                                 .ival = (int32_t)((uint32_t)q[0] | ((uint32_t)q[1] << 8) |
                                                   ((uint32_t)q[2] << 16) | ((uint32_t)q[3] << 24)),
                                 .offset = s->offset};
        return RDB_RC_OK;
    case RDB_ENC_LZF: {
        uint64_t clen, ulen;
        if ((rc = rdb_read_plain_len(d, c, &clen)) != RDB_RC_OK) return rc;
        if ((rc = rdb_read_plain_len(d, c, &ulen)) != RDB_RC_OK) return rc;
        if (clen > d->opt.max_element || ulen > d->opt.max_element)
            return rdb_fail(d, s->offset,
                            "LZF string of %llu bytes (%llu compressed) exceeds max_element %zu",
                            (unsigned long long)ulen, (unsigned long long)clen, d->opt.max_element);
        if (clen == 0 || ulen == 0) return rdb_fail(d, s->offset, "LZF string with a zero length");
        /* An LZF back-reference of 3 bytes expands to at most 264: a larger ratio
         * is corruption, refused before anything is allocated for it. */
        if (ulen / clen > RDB_LZF_MAX_RATIO)
            return rdb_fail(d, s->offset, "LZF string of %llu bytes cannot expand to %llu",
                            (unsigned long long)clen, (unsigned long long)ulen);
        if ((uint64_t)(c->end - c->p) < clen) {
            if (rdb_raw_would_overflow(d, rdb_offset_of(d, c->p) + clen)) return RDB_RC_SWITCH;
            return RDB_RC_MORE;
        }
        s->enc = RDB_STR_LZF;
        s->ptr = c->p;
        s->len = (size_t)clen;
        s->ulen = (size_t)ulen;
        c->p += clen;
        return RDB_RC_OK;
    }
    default: return rdb_fail(d, s->offset, "unknown string encoding %llu", (unsigned long long)len);
    }
}

/* The printed length of an integer-encoded string (for emptiness and sizes). */
size_t rdb_string_len(const struct rdb_string *s) {
    if (s->enc != RDB_STR_INT) return s->ulen;
    char scratch[RDB_ELEM_SCRATCH];
    size_t n;
    struct rdb_elem e = {.ival = s->ival};
    rdb_elem_bytes(&e, scratch, &n);
    return n;
}

/* Decoded bytes of a string element. */
int rdb_string_bytes(struct rdb_decoder *d, const struct rdb_string *s, struct rdb_buf *buf,
                     char *scratch, const char **out, size_t *out_len) {
    switch (s->enc) {
    case RDB_STR_PLAIN:
        *out = (const char *)s->ptr;
        *out_len = s->len;
        return RDB_RC_OK;
    case RDB_STR_INT: {
        struct rdb_elem e = {.ival = s->ival};
        *out = rdb_elem_bytes(&e, scratch, out_len);
        return RDB_RC_OK;
    }
    case RDB_STR_LZF:
        if (rdb_buf_reserve(buf, s->ulen + 1) < 0)
            return rdb_fail(d, s->offset, "out of memory for a %zu-byte string", s->ulen);
        if (rdb_lzf_decompress((const char *)s->ptr, s->len, buf->ptr, s->ulen) != 0)
            return rdb_fail(d, s->offset,
                            "LZF string does not decompress to its declared %zu bytes", s->ulen);
        buf->len = s->ulen;
        buf->ptr[s->ulen] = '\0';
        *out = buf->ptr;
        *out_len = s->ulen;
        return RDB_RC_OK;
    }
    return rdb_fail(d, s->offset, "impossible string encoding");
}

/* 8 bytes, little endian, as a signed integer (millisecond times). */
int rdb_read_i64le(struct rdb_cursor *c, int64_t *out) {
    const unsigned char *q;
    int rc = rdb_read_bytes(c, 8, &q);
    if (rc != RDB_RC_OK) return rc;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | q[i];
    *out = (int64_t)v;
    return RDB_RC_OK;
}

/* A double as rdbLoadDoubleValue reads it: a length byte then ASCII, or one
 * of the NaN / +inf / -inf markers. Parsed with strtod, full precision. */
int rdb_read_text_double(struct rdb_decoder *d, struct rdb_cursor *c, double *out) {
    const unsigned char *start = c->p;
    unsigned char n;
    int rc = rdb_read_byte(c, &n);
    if (rc != RDB_RC_OK) return rc;
    switch (n) {
    case RDB_DOUBLE_NAN: *out = NAN; return RDB_RC_OK;
    case RDB_DOUBLE_POS_INF: *out = INFINITY; return RDB_RC_OK;
    case RDB_DOUBLE_NEG_INF: *out = -INFINITY; return RDB_RC_OK;
    }
    const unsigned char *q;
    if ((rc = rdb_read_bytes(c, n, &q)) != RDB_RC_OK) return rc;
    char text[256];
    memcpy(text, q, n);
    text[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (n == 0 || end != text + n)
        return rdb_fail(d, rdb_offset_of(d, start), "bad score '%s'", text);
    *out = v;
    return RDB_RC_OK;
}

/* An IEEE 754 binary64 stored little endian (RDB_TYPE_ZSET_2, module doubles). */
int rdb_read_binary_double(struct rdb_cursor *c, double *out) {
    int64_t bits;
    int rc = rdb_read_i64le(c, &bits);
    if (rc != RDB_RC_OK) return rc;
    uint64_t u = (uint64_t)bits;
    memcpy(out, &u, sizeof(*out));
    return RDB_RC_OK;
}
