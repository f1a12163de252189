/* resp.h -- writing RESP by hand: the pieces of a multi-bulk command.
 *
 * The same bytes redisFormatCommandArgv writes, without its printf per number:
 * formatting was a tenth of a restore's CPU, and a large part of the live
 * stream's. Callers size their buffer first with resp_digits/resp_bulk_size,
 * then write into it; every writer returns the end of what it wrote. Used by
 * command.c (any argv) and restore.c (RESTORE built around the value in place).
 */
#ifndef SHAKE_WRITER_RESP_H
#define SHAKE_WRITER_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Decimal digits of v. */
static inline size_t resp_digits(uint64_t v) {
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* v in decimal. */
static inline char *resp_put_u64(char *p, uint64_t v) {
    char *end = p + resp_digits(v);
    char *q = end;
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

/* v in decimal, with a '-' when negative. */
static inline char *resp_put_i64(char *p, int64_t v) {
    if (v >= 0) return resp_put_u64(p, (uint64_t)v);
    *p++ = '-';
    return resp_put_u64(p, 0 - (uint64_t)v);
}

/* Bytes of "*<argc>\r\n". */
static inline size_t resp_array_header_size(size_t argc) {
    return 1 + resp_digits(argc) + 2;
}

/* "*<argc>\r\n" */
static inline char *resp_put_array_header(char *p, size_t argc) {
    *p++ = '*';
    p = resp_put_u64(p, argc);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Bytes of one bulk string of `len` bytes: "$<len>\r\n<bytes>\r\n". */
static inline size_t resp_bulk_size(size_t len) {
    return 1 + resp_digits(len) + 2 + len + 2;
}

/* "$<len>\r\n", the bytes to follow. */
static inline char *resp_put_bulk_header(char *p, size_t len) {
    *p++ = '$';
    p = resp_put_u64(p, len);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* One whole bulk string. */
static inline char *resp_put_bulk(char *p, const char *bytes, size_t len) {
    p = resp_put_bulk_header(p, len);
    if (len > 0) memcpy(p, bytes, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

#endif
