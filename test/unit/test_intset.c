/* test_intset.c -- the intset reader (16, 32 and 64-bit widths, their edges, length
 * and order checks, real intsets from Redis 7.0.15 DUMP and the shared fixtures),
 * and rdb_elem_bytes, which prints the integers these readers return. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/intset.h"
#include "reader/lzf.h"
#include "shake/crc64.h"

/* An intset blob of width `encoding` holding vals, little endian, in an exact-size
 * malloc'd buffer so that ASan catches any read past it. */
static char *is_make(uint32_t encoding, const long long *vals, uint32_t count, size_t *len) {
    *len = 8 + (size_t)count * encoding;
    unsigned char *b = malloc(*len);
    cr_assert_not_null(b);
    for (int i = 0; i < 4; i++) {
        b[i] = (unsigned char)(encoding >> (8 * i));
        b[4 + i] = (unsigned char)(count >> (8 * i));
    }
    for (uint32_t k = 0; k < count; k++)
        for (uint32_t i = 0; i < encoding; i++)
            b[8 + k * encoding + i] = (unsigned char)((unsigned long long)vals[k] >> (8 * i));
    return (char *)b;
}

/* Walks the blob and compares with want; init must succeed. */
static void assert_intset(const char *blob, size_t len, const long long *want, size_t nwant) {
    struct intset_iter it;
    char err[256] = "";
    cr_assert_eq(intset_iter_init(&it, blob, len, err, sizeof err), 0, "%s", err);
    struct rdb_elem e;
    size_t n = 0;
    while (intset_iter_next(&it, &e) == 1) {
        cr_assert_lt(n, nwant);
        cr_assert_null(e.str);
        cr_assert_eq(e.ival, want[n], "element %zu: %lld, want %lld", n, e.ival, want[n]);
        n++;
    }
    cr_assert_eq(n, nwant);
    cr_assert_eq(intset_iter_next(&it, &e), 0, "stays at the end");
}

/* Init must fail with a one-line message containing needle. */
static void assert_intset_error(const char *blob, size_t len, const char *needle) {
    struct intset_iter it;
    char err[256] = "";
    cr_assert_eq(intset_iter_init(&it, blob, len, err, sizeof err), -1, "accepted a bad intset");
    cr_assert_null(strchr(err, '\n'));
    cr_assert_not_null(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
}

Test(intset, int16_edges) {
    static const long long v[] = {INT16_MIN, -1, 0, 1, INT16_MAX};
    size_t len;
    char *b = is_make(2, v, 5, &len);
    assert_intset(b, len, v, 5);
    free(b);
}

Test(intset, int32_edges) {
    static const long long v[] = {INT32_MIN, INT16_MIN - 1, 0, INT16_MAX + 1, INT32_MAX};
    size_t len;
    char *b = is_make(4, v, 5, &len);
    assert_intset(b, len, v, 5);
    free(b);
}

Test(intset, int64_edges) {
    static const long long v[] = {LLONG_MIN, (long long)INT32_MIN - 1, 0, (long long)INT32_MAX + 1,
                                  LLONG_MAX};
    size_t len;
    char *b = is_make(8, v, 5, &len);
    assert_intset(b, len, v, 5);
    free(b);
}

Test(intset, hand_written_bytes_little_endian) {
    static const char blob[] = "\x02\x00\x00\x00\x02\x00\x00\x00\x34\x12\xff\x7f";
    static const long long v[] = {0x1234, 0x7fff};
    char *copy = malloc(12);
    memcpy(copy, blob, 12);
    assert_intset(copy, 12, v, 2);
    free(copy);
}

Test(intset, empty_set_iterates_nothing) {
    size_t len;
    char *b = is_make(4, NULL, 0, &len);
    assert_intset(b, len, NULL, 0);
    free(b);
}

Test(intset_malformed, zero_length_and_short_header) {
    assert_intset_error(NULL, 0, "header");
    char *b = malloc(7);
    memcpy(b, "\x02\x00\x00\x00\x00\x00\x00", 7);
    assert_intset_error(b, 7, "header");
    free(b);
}

Test(intset_malformed, bad_encoding) {
    static const unsigned bad[] = {0, 1, 3, 16, 0x02000000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len;
        static const long long v[] = {1};
        char *b = is_make(2, v, 1, &len);
        for (int k = 0; k < 4; k++)
            b[k] = (char)(bad[i] >> (8 * k));
        assert_intset_error(b, len, "bad encoding");
        free(b);
    }
}

Test(intset_malformed, length_disagrees_with_count) {
    static const long long v[] = {1, 2, 3};
    size_t len;
    char *b = is_make(4, v, 3, &len);
    assert_intset_error(b, len - 1, "blob is 19");
    for (size_t cut = 0; cut < len; cut++)
        assert_intset_error(b, cut, "");
    b[4] = 4; /* count 4, bytes for 3 */
    assert_intset_error(b, len, "need 24 bytes");
    b[4] = (char)0xff; /* a count whose size overflows 32 bits */
    b[5] = b[6] = b[7] = (char)0xff;
    assert_intset_error(b, len, "need");
    free(b);
}

Test(intset_malformed, unsorted_or_duplicate) {
    static const long long unsorted[] = {1, 3, 2}, dup[] = {1, 2, 2};
    size_t len;
    char *b = is_make(2, unsorted, 3, &len);
    assert_intset_error(b, len, "integer 2 at byte 12");
    free(b);
    b = is_make(8, dup, 3, &len);
    assert_intset_error(b, len, "integer 2 at byte 24");
    free(b);
}

Test(intset_malformed, null_err_buffer_is_safe) {
    struct intset_iter it;
    cr_assert_eq(intset_iter_init(&it, "\x03\x00\x00\x00\x00\x00\x00\x00", 8, NULL, 0), -1);
}

/* ---- rdb_elem_bytes ---------------------------------------------------------- */

/* The integer printed by rdb_elem_bytes equals printf's %lld. */
static void assert_prints_like_printf(long long v) {
    struct rdb_elem e = {.str = NULL, .ival = v};
    char scratch[RDB_ELEM_SCRATCH], want[32];
    size_t len;
    const char *got = rdb_elem_bytes(&e, scratch, &len);
    snprintf(want, sizeof want, "%lld", v);
    cr_assert_eq(got, scratch);
    cr_assert_eq(len, strlen(want), "%lld", v);
    cr_assert_str_eq(got, want);
}

Test(rdb_elem, integers_print_in_decimal_including_extremes) {
    static const long long v[] = {
        0,         1,         -1,           9,         10,        -10,
        12,        127,       -128,         4095,      -4096,     32767,
        -32768,    8388607,   -8388608,     INT32_MAX, INT32_MIN, 6000000000LL,
        LLONG_MAX, LLONG_MIN, LLONG_MIN + 1};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_prints_like_printf(v[i]);
}

Test(rdb_elem, strings_are_returned_as_they_are) {
    const char bytes[] = {'a', '\0', 'b'};
    struct rdb_elem e = {.str = bytes, .len = 3};
    char scratch[RDB_ELEM_SCRATCH];
    size_t len;
    cr_assert_eq(rdb_elem_bytes(&e, scratch, &len), bytes);
    cr_assert_eq(len, 3);
    struct rdb_elem empty = {.str = "", .len = 0};
    cr_assert_str_eq(rdb_elem_bytes(&empty, scratch, &len), "");
    cr_assert_eq(len, 0);
}

/* ---- Test support: pulling packed blobs out of real RDB files and DUMP payloads.
 * (Kept in this file so that the test depends on nothing but the module.) */

/* The fixture directory: $SHAKE_FIXTURES, or the shared tree next to the repo. */
static const char *fixture_dir(void) {
    const char *dir = getenv("SHAKE_FIXTURES");
    return dir != NULL && *dir != '\0' ? dir : "../shared/fixtures/rdb";
}

/* Reads a fixture file whole, or skips the test (visibly) when it is absent. */
static unsigned char *fixture_read(const char *name, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fixture_dir(), name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        /* criterion hides skips at its default verbosity: say it on stderr too. */
        fprintf(stderr, "SKIP: fixture %s not found (set SHAKE_FIXTURES)\n", path);
        cr_skip_test("fixture %s not found (set SHAKE_FIXTURES to the fixtures/rdb dir)", path);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(size > 0 ? (size_t)size : 1);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return data;
}

/* An RDB length at data[*pos]; *special is set for the 11xxxxxx string encodings
 * (the value is then the encoding's low six bits). */
static uint64_t rdb_read_length(const unsigned char *data, size_t len, size_t *pos, int *special) {
    cr_assert_lt(*pos, len);
    unsigned char b = data[(*pos)++];
    *special = 0;
    switch (b >> 6) {
    case 0: return b & 0x3F;
    case 1: cr_assert_lt(*pos, len); return ((uint64_t)(b & 0x3F) << 8) | data[(*pos)++];
    case 3: *special = 1; return b & 0x3F;
    }
    size_t n = b == 0x80 ? 4 : 8;
    cr_assert_leq(*pos + n, len);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | data[(*pos)++];
    return v;
}

/* The RDB string at data[*pos] (plain or LZF-compressed) in an exact-size malloc'd
 * buffer, so that ASan sees any read past the blob. */
static char *rdb_read_string(const unsigned char *data, size_t len, size_t *pos, size_t *out_len) {
    int special;
    uint64_t n = rdb_read_length(data, len, pos, &special);
    if (!special) {
        cr_assert_leq(*pos + n, len);
        char *s = malloc(n > 0 ? n : 1);
        memcpy(s, data + *pos, n);
        *pos += n;
        *out_len = n;
        return s;
    }
    cr_assert_eq(n, 3, "only LZF strings hold packed blobs, got special encoding %llu",
                 (unsigned long long)n);
    uint64_t clen = rdb_read_length(data, len, pos, &special);
    uint64_t ulen = rdb_read_length(data, len, pos, &special);
    cr_assert_leq(*pos + clen, len);
    char *s = malloc(ulen);
    cr_assert_eq(rdb_lzf_decompress((const char *)data + *pos, clen, s, ulen), 0);
    *pos += clen;
    *out_len = ulen;
    return s;
}

/* The offset just after <type><key> in an RDB file: where the key's value starts. */
static size_t rdb_find_value(const unsigned char *data, size_t len, unsigned char type,
                             const char *key) {
    size_t klen = strlen(key);
    for (size_t i = 0; i + 2 + klen <= len; i++)
        if (data[i] == type && data[i + 1] == klen && memcmp(data + i + 2, key, klen) == 0)
            return i + 2 + klen;
    cr_assert_fail("key %s of type %u not found in fixture", key, type);
    return 0;
}

/* Checks a DUMP payload's trailer (RDB version, CRC64 over all before it) and
 * returns the blob in its string value, after the type byte. */
static char *dump_payload_blob(const char *payload, size_t len, unsigned char type, size_t *out) {
    const unsigned char *p = (const unsigned char *)payload;
    cr_assert_gt(len, 10);
    uint64_t trailer = 0;
    for (int i = 7; i >= 0; i--)
        trailer = trailer << 8 | p[len - 8 + i];
    cr_assert_eq(crc64(0, p, len - 8), trailer, "DUMP payload CRC64");
    cr_assert_eq(p[0], type);
    size_t pos = 1;
    char *blob = rdb_read_string(p, len - 10, &pos, out);
    cr_assert_eq(pos, len - 10, "the value fills the payload up to the trailer");
    return blob;
}

/* ---- real intsets ------------------------------------------------------------ */

/* SADD is16 -32768 -1 0 1 32767 (and is32, is64 likewise) on redis-server 7.0.15,
 * then DUMP each. */
static const char redis7_is16_dump[] =
    "\x0b\x12\x02\x00\x00\x00\x05\x00\x00\x00\x00\x80\xff\xff\x00\x00\x01\x00"
    "\xff\x7f\x0a\x00\x82\x43\x47\x92\xab\x05\x2a\xbf";
static const char redis7_is32_dump[] =
    "\x0b\x1c\x04\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x80\xff\x7f\xff\xff"
    "\x00\x00\x00\x00\x00\x80\x00\x00\xff\xff\xff\x7f\x0a\x00\xe3\xe6\xb1\x4a"
    "\x2e\x78\x2f\xdb";
static const char redis7_is64_dump[] =
    "\x0b\xc3\x23\x30\x04\x08\x00\x00\x00\x05\x20\x03\xa0\x00\x04\x80\xff\xff"
    "\xff\x7f\x20\x03\x00\xff\xa0\x0f\x40\x00\x00\x80\x40\x04\x20\x12\x20\x00"
    "\x01\xff\x7f\x0a\x00\x53\x22\xd4\x70\x2c\x19\xe3\x7d";

Test(intset_real, redis7_dumps_of_each_width) {
    static const long long v16[] = {-32768, -1, 0, 1, 32767};
    static const long long v32[] = {INT32_MIN, -32769, 0, 32768, INT32_MAX};
    static const long long v64[] = {LLONG_MIN, -2147483649LL, 0, 2147483648LL, LLONG_MAX};
    struct {
        const char *dump;
        size_t len;
        const long long *want;
    } cases[] = {
        {redis7_is16_dump, sizeof redis7_is16_dump - 1, v16},
        {redis7_is32_dump, sizeof redis7_is32_dump - 1, v32},
        {redis7_is64_dump, sizeof redis7_is64_dump - 1, v64},
    };
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        char *blob = dump_payload_blob(cases[i].dump, cases[i].len, 11, &len);
        assert_intset(blob, len, cases[i].want, 5);
        free(blob);
    }
}

/* The intset stored as the value of `key` (type 11) in a fixture. */
static void assert_fixture_intset(const char *file, const char *key, const long long *want,
                                  size_t nwant) {
    size_t flen, len;
    unsigned char *data = fixture_read(file, &flen);
    size_t pos = rdb_find_value(data, flen, 11, key);
    char *blob = rdb_read_string(data, flen, &pos, &len);
    assert_intset(blob, len, want, nwant);
    free(blob);
    free(data);
}

Test(intset_fixtures, encodings_rdb_three_widths) {
    static const long long v1[] = {1, 2, 3, 4};
    static const long long v2[] = {100000, 200000, 300000, 400000};
    static const long long v3[] = {1000000000LL, 2000000000LL, 3000000000LL,
                                   4000000000LL, 5000000000LL, 6000000000LL};
    assert_fixture_intset("encodings.rdb", "set_zipped_1", v1, 4);
    assert_fixture_intset("encodings.rdb", "set_zipped_2", v2, 4);
    assert_fixture_intset("encodings.rdb", "set_zipped_3", v3, 6);
}

Test(intset_fixtures, librdb_set_is_v11) {
    static const long long v[] = {1, 2, 3, 4, 5, 1234567890};
    assert_fixture_intset("librdb/set_is_v11.rdb", "myintest", v, 6);
}
