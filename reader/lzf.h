/* lzf.h -- LZF decompression of RDB strings, through Debian's liblzf (the same
 * algorithm Redis uses). */
#ifndef SHAKE_READER_LZF_H
#define SHAKE_READER_LZF_H

#include <stddef.h>

/* Decompress `in` into exactly `out_len` bytes. Returns 0, or -1 when the input is
 * malformed or does not expand to exactly out_len bytes. */
int rdb_lzf_decompress(const char *in, size_t in_len, char *out, size_t out_len);

#endif
