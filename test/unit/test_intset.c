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
#include "test/unit/support/fixtures.h"

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
        char *blob = fixture_dump_blob(cases[i].dump, cases[i].len, 11, &len);
        assert_intset(blob, len, cases[i].want, 5);
        free(blob);
    }
}

/* The intset stored as the value of `key` (type 11) in a fixture. */
static void assert_fixture_intset(const char *file, const char *key, const long long *want,
                                  size_t nwant) {
    size_t flen, len;
    unsigned char *data = fixture_read(file, &flen);
    size_t pos = fixture_find_value(data, flen, 11, key);
    char *blob = fixture_rdb_string(data, flen, &pos, &len);
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
