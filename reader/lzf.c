/* lzf.c -- owns LZF decompression of RDB strings (the 0xC3 string encoding),
 * through Debian's liblzf, which implements the same format Redis writes. It only
 * checks that the input expands to exactly the length the RDB declared; the caller
 * owns both buffers. */
#include "reader/lzf.h"

#include <limits.h>

#include <lzf.h> /* liblzf; the angle brackets keep "reader/lzf.h" from shadowing it */

/* liblzf returns 0 both for an error and for an empty result, and takes unsigned
 * int sizes: so empty and oversized inputs are refused before the call, and a
 * result of any size other than out_len is a corrupt string. */
int rdb_lzf_decompress(const char *in, size_t in_len, char *out, size_t out_len) {
    if (in_len == 0 || out_len == 0) return -1;
    if (in_len > UINT_MAX || out_len > UINT_MAX) return -1;
    unsigned int got = lzf_decompress(in, (unsigned int)in_len, out, (unsigned int)out_len);
    return got == out_len ? 0 : -1;
}
