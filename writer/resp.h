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

/* Decimal digits of v: compared with powers of ten, not divided (a RESTORE sizes
 * half a dozen numbers, per key). */
static inline size_t resp_digits(uint64_t v) {
    static const uint64_t powers[19] = {
        UINT64_C(10),
        UINT64_C(100),
        UINT64_C(1000),
        UINT64_C(10000),
        UINT64_C(100000),
        UINT64_C(1000000),
        UINT64_C(10000000),
        UINT64_C(100000000),
        UINT64_C(1000000000),
        UINT64_C(10000000000),
        UINT64_C(100000000000),
        UINT64_C(1000000000000),
        UINT64_C(10000000000000),
        UINT64_C(100000000000000),
        UINT64_C(1000000000000000),
        UINT64_C(10000000000000000),
        UINT64_C(100000000000000000),
        UINT64_C(1000000000000000000),
        UINT64_C(10000000000000000000),
    };
    size_t n = 1;
    while (n < 20 && v >= powers[n - 1])
        n++;
    return n;
}

/* v in decimal, two digits per division (a TTL in ms has 13). */
static inline char *resp_put_u64(char *p, uint64_t v) {
    static const char pairs[201] = "00010203040506070809"
                                   "10111213141516171819"
                                   "20212223242526272829"
                                   "30313233343536373839"
                                   "40414243444546474849"
                                   "50515253545556575859"
                                   "60616263646566676869"
                                   "70717273747576777879"
                                   "80818283848586878889"
                                   "90919293949596979899";
    char *end = p + resp_digits(v);
    char *q = end;
    while (v >= 100) {
        size_t i = (size_t)(v % 100) * 2;
        v /= 100;
        q -= 2;
        q[0] = pairs[i];
        q[1] = pairs[i + 1];
    }
    if (v >= 10) {
        q[-2] = pairs[v * 2];
        q[-1] = pairs[v * 2 + 1];
    } else {
        q[-1] = (char)('0' + v);
    }
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
