/* test_lzf.c -- rdb_lzf_decompress: round trips through liblzf's compressor, and
 * every way the input can disagree with the length the RDB declared. */
#include <criterion/criterion.h>
#include <lzf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reader/lzf.h"

/* Compresses src with liblzf into a malloc'd buffer; returns its length. */
static size_t compress_with_liblzf(const char *src, size_t len, char **out) {
    size_t cap = len + len / 16 + 64;
    *out = malloc(cap);
    cr_assert_not_null(*out);
    unsigned int clen = lzf_compress(src, (unsigned int)len, *out, (unsigned int)cap);
    cr_assert_gt(clen, 0, "lzf_compress failed on %zu bytes", len);
    return clen;
}

/* A text that compresses: repeats with variation, like real values. */
static char *make_text(size_t len) {
    char *s = malloc(len);
    cr_assert_not_null(s);
    for (size_t i = 0; i < len; i++)
        s[i] = "user:1000:profile:"[i % 18] + (char)((i / 97) % 3);
    return s;
}

Test(lzf, round_trip_of_repetitive_text) {
    size_t sizes[] = {1, 20, 130, 4096, 1 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char *src = make_text(sizes[k]), *packed;
        size_t clen = compress_with_liblzf(src, sizes[k], &packed);
        char *out = malloc(sizes[k]);
        cr_assert_eq(rdb_lzf_decompress(packed, clen, out, sizes[k]), 0, "size %zu", sizes[k]);
        cr_assert_eq(memcmp(out, src, sizes[k]), 0, "size %zu", sizes[k]);
        free(src);
        free(packed);
        free(out);
    }
}

Test(lzf, round_trip_of_130_a_like_encodings_rdb) {
    char src[130], out[130], *packed;
    memset(src, 'a', sizeof src);
    size_t clen = compress_with_liblzf(src, sizeof src, &packed);
    cr_assert_lt(clen, 20);
    cr_assert_eq(rdb_lzf_decompress(packed, clen, out, sizeof out), 0);
    cr_assert_eq(memcmp(out, src, sizeof src), 0);
    free(packed);
}

Test(lzf, truncated_input_fails) {
    char *src = make_text(4096), *packed, out[4096];
    size_t clen = compress_with_liblzf(src, 4096, &packed);
    for (size_t cut = 1; cut < clen; cut += 1 + cut / 8) {
        char *copy = malloc(clen - cut); /* exact size, so ASan sees any over-read */
        memcpy(copy, packed, clen - cut);
        cr_assert_eq(rdb_lzf_decompress(copy, clen - cut, out, sizeof out), -1, "cut %zu", cut);
        free(copy);
    }
    free(src);
    free(packed);
}

Test(lzf, expected_length_too_long_fails) {
    char *src = make_text(1000), *packed, out[1001];
    size_t clen = compress_with_liblzf(src, 1000, &packed);
    cr_assert_eq(rdb_lzf_decompress(packed, clen, out, 1001), -1);
    free(src);
    free(packed);
}

Test(lzf, expected_length_too_short_fails) {
    char *src = make_text(1000), *packed;
    size_t clen = compress_with_liblzf(src, 1000, &packed);
    char *out = malloc(999); /* exact size, so ASan sees any over-write */
    cr_assert_eq(rdb_lzf_decompress(packed, clen, out, 999), -1);
    free(out);
    free(src);
    free(packed);
}

Test(lzf, empty_input_or_output_fails) {
    char out[8];
    cr_assert_eq(rdb_lzf_decompress("", 0, out, sizeof out), -1);
    cr_assert_eq(rdb_lzf_decompress("\x00"
                                    "a",
                                    2, out, 0),
                 -1);
    cr_assert_eq(rdb_lzf_decompress("", 0, out, 0), -1);
}

Test(lzf, literal_run_longer_than_input_fails) {
    /* 0x1f: a literal run of 32 bytes, but only 3 follow. */
    const char in[] = {0x1f, 'a', 'b', 'c'};
    char out[32];
    cr_assert_eq(rdb_lzf_decompress(in, sizeof in, out, sizeof out), -1);
}

Test(lzf, back_reference_before_start_fails) {
    /* One literal 'a', then a back reference of length 3 at distance 200. */
    const char in[] = {0x00, 'a', (char)0x20, (char)0xc7};
    char out[4];
    cr_assert_eq(rdb_lzf_decompress(in, sizeof in, out, sizeof out), -1);
}

Test(lzf, garbage_never_reads_or_writes_out_of_bounds) {
    uint32_t x = 12345;
    for (int round = 0; round < 2000; round++) {
        size_t in_len = 1 + round % 64, out_len = 1 + (round * 7) % 100;
        char *in = malloc(in_len), *out = malloc(out_len);
        for (size_t i = 0; i < in_len; i++) {
            x = x * 1103515245u + 12345u;
            in[i] = (char)(x >> 16);
        }
        int rc = rdb_lzf_decompress(in, in_len, out, out_len);
        cr_assert(rc == 0 || rc == -1);
        free(in);
        free(out);
    }
}
