/* lzf.c -- owns LZF decompression of RDB strings (the 0xC3 string encoding): the
 * format of liblzf, which Redis writes. A decoder of our own rather than liblzf's
 * lzf_decompress, which copies byte by byte: this one copies whole words where the
 * buffers leave room for the overshoot, and was about twice as fast on the R1
 * benchmark's RDB (compressed listpacks and strings must be expanded to be checked).
 * It checks every length against both buffers, and that the input expands to
 * exactly the length the RDB declared; the caller owns both buffers.
 *
 * The format: a control byte c. c < 32: a literal run of c + 1 bytes follows.
 * Else a back reference: length c >> 5 (7: plus the next byte) + 2, distance
 * ((c & 0x1f) << 8) + the next byte + 1 back from the output position; it may
 * overlap the bytes it produces. */
#include "reader/lzf.h"

#include <stdint.h>
#include <string.h>

/* Bytes a word copy may write past the end of what it must copy (and read past
 * the end of a literal run). */
#define LZF_SLACK 32

/* Copies `len` bytes forward from `ref` to `op` in blocks of `step` bytes; the
 * caller guarantees ref + step <= op (each block reads only finished bytes) and
 * room for len rounded up to a block at both ends. */
static inline void lzf_copy_blocks(unsigned char *op, const unsigned char *ref, size_t len,
                                   size_t step) {
    for (size_t i = 0; i < len; i += step) {
        if (step == 16) {
            memcpy(op + i, ref + i, 16);
        } else {
            memcpy(op + i, ref + i, 8);
        }
    }
}

/* A back reference of `len` bytes at `dist` behind `op`, with `room` bytes of
 * output left (>= len). */
static inline void lzf_copy_ref(unsigned char *op, size_t dist, size_t len, size_t room) {
    const unsigned char *ref = op - dist;
    if (dist >= 16 && room >= len + 16) {
        lzf_copy_blocks(op, ref, len, 16);
    } else if (dist >= 8 && room >= len + 8) {
        lzf_copy_blocks(op, ref, len, 8);
    } else {
        for (size_t i = 0; i < len; i++)
            op[i] = ref[i];
    }
}

int rdb_lzf_decompress(const char *in, size_t in_len, char *out, size_t out_len) {
    if (in_len == 0 || out_len == 0) return -1;
    const unsigned char *ip = (const unsigned char *)in;
    const unsigned char *in_end = ip + in_len;
    unsigned char *op = (unsigned char *)out;
    unsigned char *out_end = op + out_len;
    while (ip < in_end) {
        size_t c = *ip++;
        if (c < 32) {
            size_t len = c + 1;
            if ((size_t)(in_end - ip) < len || (size_t)(out_end - op) < len) return -1;
            if ((size_t)(in_end - ip) >= LZF_SLACK && (size_t)(out_end - op) >= LZF_SLACK)
                memcpy(op, ip, LZF_SLACK); /* len <= 32: one fixed-size copy */
            else
                memcpy(op, ip, len);
            op += len;
            ip += len;
            continue;
        }
        size_t len = c >> 5;
        if (ip >= in_end) return -1;
        if (len == 7) {
            len += *ip++;
            if (ip >= in_end) return -1;
        }
        size_t dist = ((c & 0x1f) << 8) + *ip++ + 1;
        len += 2;
        if (dist > (size_t)(op - (unsigned char *)out)) return -1;
        size_t room = (size_t)(out_end - op);
        if (room < len) return -1;
        lzf_copy_ref(op, dist, len, room);
        op += len;
    }
    return op == out_end ? 0 : -1;
}
