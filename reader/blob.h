/* blob.h -- the byte-level helpers every packed-blob reader (listpack, ziplist,
 * intset, zipmap) needs: one error line into the caller's buffer, a little-endian
 * load and a two's complement conversion. Each reader keeps its own checks and
 * messages; only these mechanics are shared. Header-only (static inline): they sit
 * on the per-entry path, and the fuzz targets link the readers one by one. */
#ifndef SHAKE_READER_BLOB_H
#define SHAKE_READER_BLOB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Fills err with one line, whatever the caller's buffer (NULL or 0 bytes: nothing). */
__attribute__((format(printf, 3, 4))) static inline void blob_fail(char *err, size_t errlen,
                                                                   const char *fmt, ...) {
    if (err == NULL || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* n bytes at p as an unsigned little-endian integer (n <= 8), byte by byte. */
static inline unsigned long long blob_load_le(const unsigned char *p, size_t n) {
    unsigned long long v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (unsigned long long)p[i] << (8 * i);
    return v;
}

/* A payload of `bits` bits (1..64) read as two's complement. Works through the
 * distance from the top so that no conversion overflows, 64-bit minimum included. */
static inline long long blob_signed(unsigned long long raw, unsigned bits) {
    unsigned long long all_ones = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
    if (raw < 1ULL << (bits - 1)) return (long long)raw;
    return -(long long)(all_ones - raw) - 1;
}

#endif
