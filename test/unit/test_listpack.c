/* test_listpack.c -- the listpack reader: every entry encoding with its edges, the
 * header and terminator checks, the declared count (65535 = unknown), malformed
 * blobs of every kind (each must fail with a message and never read out of
 * bounds: run under ASan), and real listpacks written by Redis 7.0.15 (DUMP) and
 * found in the shared RDB fixtures. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/listpack.h"
#include "test/unit/support/fixtures.h"

/* Wraps entry bytes (each already followed by its back-length, written by hand) in
 * a header declaring `count`, and the terminator. The result is malloc'd at exactly
 * its size so that ASan catches any read past it. */
static char *lp_make(const void *entries, size_t entries_len, unsigned count, size_t *len) {
    *len = 6 + entries_len + 1;
    unsigned char *b = malloc(*len);
    cr_assert_not_null(b);
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(*len >> (8 * i));
    b[4] = (unsigned char)count;
    b[5] = (unsigned char)(count >> 8);
    if (entries_len > 0) memcpy(b + 6, entries, entries_len);
    b[*len - 1] = 0xFF;
    return (char *)b;
}

/* Walks a whole blob: -1 on any error (err filled), else 0 with the elements. */
static int lp_walk(const char *blob, size_t len, struct rdb_elem *elems, size_t max, size_t *n,
                   char *err, size_t errlen) {
    struct listpack_iter it;
    *n = 0;
    err[0] = '\0';
    if (listpack_iter_init(&it, blob, len, err, errlen) < 0) return -1;
    struct rdb_elem e;
    int rc;
    while ((rc = listpack_iter_next(&it, &e, err, errlen)) == 1) {
        if (*n < max) elems[*n] = e;
        (*n)++;
    }
    return rc;
}

/* Walks a listpack made of one hand-written entry and hands its element to check,
 * while the blob it points into is still alive. */
static void lp_check_single(const void *entry, size_t entry_len,
                            void (*check)(struct rdb_elem, const void *), const void *want) {
    size_t len, n;
    char err[256];
    struct rdb_elem e[2];
    char *blob = lp_make(entry, entry_len, 1, &len);
    int rc = lp_walk(blob, len, e, 2, &n, err, sizeof err);
    cr_assert_eq(rc, 0, "walk failed: %s", err);
    cr_assert_eq(n, 1);
    check(e[0], want);
    free(blob);
}

static void assert_int(struct rdb_elem e, long long v) {
    cr_assert_null(e.str, "expected integer %lld, got a string", v);
    cr_assert_eq(e.ival, v, "expected %lld, got %lld", v, e.ival);
}

static void assert_str(struct rdb_elem e, const char *s, size_t len) {
    cr_assert_not_null(e.str, "expected a string of %zu bytes, got integer %lld", len, e.ival);
    cr_assert_eq(e.len, len);
    cr_assert_eq(memcmp(e.str, s, len), 0);
}

struct want_str {
    const char *s;
    size_t len;
};

static void check_int(struct rdb_elem e, const void *want) {
    assert_int(e, *(const long long *)want);
}

static void check_str(struct rdb_elem e, const void *want) {
    const struct want_str *w = want;
    assert_str(e, w->s, w->len);
}

/* The one entry decodes to the integer v. */
static void assert_single_int(const void *entry, size_t entry_len, long long v) {
    lp_check_single(entry, entry_len, check_int, &v);
}

/* The one entry decodes to the string s. */
static void assert_single_str(const void *entry, size_t entry_len, const char *s, size_t len) {
    struct want_str w = {s, len};
    lp_check_single(entry, entry_len, check_str, &w);
}

/* The walk must fail with a one-line message containing `needle`. */
static void assert_lp_error(const char *blob, size_t len, const char *needle) {
    char err[256];
    struct rdb_elem e[8];
    size_t n;
    cr_assert_eq(lp_walk(blob, len, e, 8, &n, err, sizeof err), -1, "accepted a bad listpack");
    cr_assert_neq(err[0], '\0', "no error message");
    cr_assert_null(strchr(err, '\n'), "message is not one line: %s", err);
    cr_assert_not_null(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
}

/* A listpack of entries, failing with a message containing `needle`. */
static void assert_entries_error(const void *entries, size_t entries_len, unsigned count,
                                 const char *needle) {
    size_t len;
    char *blob = lp_make(entries, entries_len, count, &len);
    assert_lp_error(blob, len, needle);
    free(blob);
}

/* ---- every encoding ------------------------------------------------------- */

Test(listpack_encoding, uint7_zero_and_127) {
    assert_single_int("\x00\x01", 2, 0);
    assert_single_int("\x7f\x01", 2, 127);
}

Test(listpack_encoding, str6_empty_and_short_and_63) {
    assert_single_str("\x80\x01", 2, "", 0);
    assert_single_str("\x83"
                      "abc\x04",
                      5, "abc", 3);
    unsigned char e[1 + 63 + 1];
    e[0] = 0x80 | 63;
    memset(e + 1, 'x', 63);
    e[64] = 64;
    char x[63];
    memset(x, 'x', 63);
    assert_single_str(e, sizeof e, x, 63);
}

Test(listpack_encoding, int13_edges) {
    assert_single_int("\xc0\x80\x02", 3, 128);
    assert_single_int("\xcf\xff\x02", 3, 4095);
    assert_single_int("\xdf\xff\x02", 3, -1);
    assert_single_int("\xd0\x00\x02", 3, -4096);
    assert_single_int("\xc0\x00\x02", 3, 0);
}

/* A 12-bit string of n bytes: header E0|n>>8, n&255, then the back-length given. */
static char *str12_entry(size_t n, const unsigned char *backlen, size_t backlen_size, size_t *len) {
    *len = 2 + n + backlen_size;
    unsigned char *e = malloc(*len);
    e[0] = (unsigned char)(0xE0 | (n >> 8));
    e[1] = (unsigned char)(n & 0xFF);
    memset(e + 2, 's', n);
    memcpy(e + 2 + n, backlen, backlen_size);
    return (char *)e;
}

Test(listpack_encoding, str12_64_and_200_and_4095) {
    static char s[4095];
    memset(s, 's', sizeof s);
    struct {
        size_t n;
        unsigned char backlen[2];
        size_t backlen_size;
    } cases[] = {
        {64, {66}, 1},           /* 66 fits one byte */
        {200, {0x01, 0xCA}, 2},  /* 202 = 1<<7 | 74 */
        {4095, {0x20, 0x81}, 2}, /* 4097 = 32<<7 | 1 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *e = str12_entry(cases[i].n, cases[i].backlen, cases[i].backlen_size, &len);
        assert_single_str(e, len, s, cases[i].n);
        free(e);
    }
}

Test(listpack_encoding, int16_edges) {
    assert_single_int("\xf1\xff\x7f\x03", 4, 32767);
    assert_single_int("\xf1\x00\x80\x03", 4, -32768);
    assert_single_int("\xf1\x00\x10\x03", 4, 4096);
}

Test(listpack_encoding, int24_edges) {
    assert_single_int("\xf2\xff\xff\x7f\x04", 5, 8388607);
    assert_single_int("\xf2\x00\x00\x80\x04", 5, -8388608);
    assert_single_int("\xf2\xff\xff\xff\x04", 5, -1);
}

Test(listpack_encoding, int32_edges) {
    assert_single_int("\xf3\xff\xff\xff\x7f\x05", 6, INT32_MAX);
    assert_single_int("\xf3\x00\x00\x00\x80\x05", 6, INT32_MIN);
    assert_single_int("\xf3\x01\x02\x03\x04\x05", 6, 0x04030201);
}

Test(listpack_encoding, int64_min_max_and_minus_one) {
    assert_single_int("\xf4\xff\xff\xff\xff\xff\xff\xff\x7f\x09", 10, LLONG_MAX);
    assert_single_int("\xf4\x00\x00\x00\x00\x00\x00\x00\x80\x09", 10, LLONG_MIN);
    assert_single_int("\xf4\xff\xff\xff\xff\xff\xff\xff\xff\x09", 10, -1);
    assert_single_int("\xf4\x08\x07\x06\x05\x04\x03\x02\x01\x09", 10, 0x0102030405060708LL);
}

Test(listpack_encoding, str32_short_is_accepted) {
    assert_single_str("\xf0\x05\x00\x00\x00hello\x0a", 11, "hello", 5);
}

/* A 32-bit string of n bytes followed by the given back-length. */
static char *str32_entry(size_t n, const unsigned char *backlen, size_t backlen_size, size_t *len) {
    *len = 5 + n + backlen_size;
    unsigned char *e = malloc(*len);
    cr_assert_not_null(e);
    e[0] = 0xF0;
    for (int i = 0; i < 4; i++)
        e[1 + i] = (unsigned char)(n >> (8 * i));
    memset(e + 5, 'L', n);
    memcpy(e + 5 + n, backlen, backlen_size);
    return (char *)e;
}

Test(listpack_encoding, str32_entry_of_16383_bytes_has_three_byte_backlen) {
    /* Redis writes two bytes only below 16383, so an entry of exactly 16383 bytes
     * (5 + 16378) carries 0x00 0xFF 0xFF. */
    size_t len;
    char *e = str32_entry(16378, (const unsigned char *)"\x00\xff\xff", 3, &len);
    char *want = malloc(16378);
    memset(want, 'L', 16378);
    assert_single_str(e, len, want, 16378);
    free(want);
    free(e);
}

Test(listpack_encoding, str32_entry_of_16383_bytes_with_two_byte_backlen_fails) {
    size_t len;
    char *e = str32_entry(16378, (const unsigned char *)"\x7f\xff", 2, &len);
    assert_entries_error(e, len, 1, "byte");
    free(e);
}

Test(listpack_encoding, str32_with_four_byte_backlen) {
    /* 5 + 2097146 = 2097151 bytes: the first size with a 4-byte back-length. */
    size_t len;
    char *e = str32_entry(2097146, (const unsigned char *)"\x00\xff\xff\xff", 4, &len);
    char *want = malloc(2097146);
    memset(want, 'L', 2097146);
    assert_single_str(e, len, want, 2097146);
    free(want);
    free(e);
}

Test(listpack_encoding, mixed_entries_in_order) {
    static const char entries[] = "\x05\x01" /* 5 */
                                  "\x82"
                                  "hi\x03"           /* "hi" */
                                  "\xdf\xff\x02"     /* -1 */
                                  "\xf1\x00\x80\x03" /* -32768 */
                                  "\x80\x01";        /* "" */
    size_t len, n;
    char err[256];
    struct rdb_elem e[5];
    char *blob = lp_make(entries, sizeof entries - 1, 5, &len);
    cr_assert_eq(lp_walk(blob, len, e, 5, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 5);
    assert_int(e[0], 5);
    assert_str(e[1], "hi", 2);
    assert_int(e[2], -1);
    assert_int(e[3], -32768);
    assert_str(e[4], "", 0);
    free(blob);
}

Test(listpack_encoding, string_points_into_the_blob) {
    size_t len;
    char *blob = lp_make("\x82"
                         "hi\x03",
                         4, 1, &len);
    struct listpack_iter it;
    struct rdb_elem e;
    char err[128];
    cr_assert_eq(listpack_iter_init(&it, blob, len, err, sizeof err), 0);
    cr_assert_eq(listpack_iter_next(&it, &e, err, sizeof err), 1);
    cr_assert_eq(e.str, blob + 7);
    free(blob);
}

/* ---- header, count and terminator ------------------------------------------ */

Test(listpack_header, empty_listpack_ends_at_once) {
    size_t len, n;
    char err[128];
    struct rdb_elem e[1];
    char *blob = lp_make("", 0, 0, &len);
    cr_assert_eq(len, 7);
    cr_assert_eq(lp_walk(blob, len, e, 1, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 0);
    free(blob);
}

Test(listpack_header, count_65535_means_unknown) {
    size_t len, n;
    char err[128];
    struct rdb_elem e[3];
    char *blob = lp_make("\x01\x01\x02\x01\x03\x01", 6, 65535, &len);
    cr_assert_eq(lp_walk(blob, len, e, 3, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    assert_int(e[2], 3);
    free(blob);
}

Test(listpack_header, next_after_end_keeps_returning_end) {
    size_t len;
    char *blob = lp_make("\x01\x01", 2, 1, &len);
    struct listpack_iter it;
    struct rdb_elem e;
    char err[128];
    cr_assert_eq(listpack_iter_init(&it, blob, len, err, sizeof err), 0);
    cr_assert_eq(listpack_iter_next(&it, &e, err, sizeof err), 1);
    cr_assert_eq(listpack_iter_next(&it, &e, err, sizeof err), 0);
    cr_assert_eq(listpack_iter_next(&it, &e, err, sizeof err), 0);
    free(blob);
}

Test(listpack_malformed, zero_length_and_null_blob) {
    assert_lp_error(NULL, 0, "bytes");
    char *one = malloc(1);
    assert_lp_error(one, 0, "bytes");
    free(one);
}

Test(listpack_malformed, shorter_than_header_and_terminator) {
    static const char six[] = "\x06\x00\x00\x00\x00\x00";
    char *copy = malloc(6);
    memcpy(copy, six, 6);
    assert_lp_error(copy, 6, "minimum");
    free(copy);
}

Test(listpack_malformed, total_length_disagrees_with_blob) {
    size_t len;
    char *blob = lp_make("\x01\x01", 2, 1, &len);
    blob[0] = (char)(len + 1);
    assert_lp_error(blob, len, "byte 0");
    blob[0] = (char)(len - 1);
    assert_lp_error(blob, len, "byte 0");
    free(blob);
}

Test(listpack_malformed, missing_terminator) {
    size_t len;
    char *blob = lp_make("\x01\x01", 2, 1, &len);
    blob[len - 1] = 0x01;
    assert_lp_error(blob, len, "terminator");
    free(blob);
}

Test(listpack_malformed, terminator_before_the_end) {
    /* 1, then an early 0xFF, then a valid-looking entry and the real terminator. */
    assert_entries_error("\x01\x01\xff\x02\x01", 5, 65535, "terminator at byte 8");
}

Test(listpack_malformed, every_truncation_fails_cleanly) {
    static const char entries[] = "\x05\x01\x82hi\x03\xf4\x01\x02\x03\x04\x05\x06\x07\x08\x09"
                                  "\xf1\x00\x80\x03";
    size_t full_len;
    char *full = lp_make(entries, sizeof entries - 1, 4, &full_len);
    for (size_t cut = 0; cut < full_len; cut++) {
        /* Raw truncation: the header no longer matches. */
        char *t = malloc(cut > 0 ? cut : 1);
        memcpy(t, full, cut);
        assert_lp_error(t, cut, "");
        /* Truncation disguised: total and terminator patched to fit. */
        if (cut >= 7) {
            for (int i = 0; i < 4; i++)
                t[i] = (char)(cut >> (8 * i));
            t[cut - 1] = (char)0xFF;
            assert_lp_error(t, cut, "");
        }
        free(t);
    }
    free(full);
}

Test(listpack_malformed, string_runs_past_the_end) {
    assert_entries_error("\x8a"
                         "abc\x0b",
                         5, 1, "runs past the end");
    assert_entries_error("\xe1\x00"
                         "abc",
                         5, 1, "runs past the end");
    assert_entries_error("\xf0\xff\xff\xff\xff"
                         "abc\x04",
                         9, 1, "runs past the end");
}

Test(listpack_malformed, header_cut_by_terminator) {
    assert_entries_error("\xf4\x01\x02", 3, 1, "needs 9 bytes");
    assert_entries_error("\xf0\x01", 2, 1, "needs 5 bytes");
    assert_entries_error("\xc1", 1, 1, "needs 2 bytes");
    assert_entries_error("\xe1", 1, 1, "needs 2 bytes");
}

Test(listpack_malformed, entry_without_room_for_backlen) {
    assert_entries_error("\x05", 1, 1, "runs past the end");
    assert_entries_error("\x82"
                         "hi",
                         3, 1, "runs past the end");
}

Test(listpack_malformed, bad_encoding_bytes) {
    for (unsigned b = 0xF5; b <= 0xFE; b++) {
        unsigned char entry[4] = {(unsigned char)b, 0, 0, 2};
        char needle[64];
        snprintf(needle, sizeof needle, "bad entry encoding 0x%02x at byte 6", b);
        assert_entries_error(entry, sizeof entry, 1, needle);
    }
}

Test(listpack_malformed, backlen_mismatch) {
    assert_entries_error("\x05\x02", 2, 1, "back-length at byte 7");
    assert_entries_error("\x83"
                         "abc\x05",
                         5, 1, "back-length");
    assert_entries_error("\xf1\x00\x80\x83", 4, 1, "back-length");
}

Test(listpack_malformed, fewer_entries_than_declared) {
    assert_entries_error("\x01\x01\x02\x01", 4, 3, "declares 3 entries, found 2");
}

Test(listpack_malformed, more_entries_than_declared) {
    assert_entries_error("\x01\x01\x02\x01", 4, 1, "beyond the 1 declared");
}

Test(listpack_malformed, null_or_empty_err_buffer_is_safe) {
    size_t len;
    char *blob = lp_make("\x05\x02", 2, 1, &len);
    struct listpack_iter it;
    struct rdb_elem e;
    cr_assert_eq(listpack_iter_init(&it, blob, len, NULL, 0), 0);
    cr_assert_eq(listpack_iter_next(&it, &e, NULL, 0), -1);
    char tiny[4];
    cr_assert_eq(listpack_iter_init(&it, blob, len, tiny, sizeof tiny), 0);
    cr_assert_eq(listpack_iter_next(&it, &e, tiny, sizeof tiny), -1);
    cr_assert_eq(strlen(tiny), 3);
    free(blob);
}

/* ---- real listpacks ---------------------------------------------------------- */

/* HSET h <field> <value> ... on redis-server 7.0.15 (hash-max-listpack-value
 * 100000), then DUMP h: a HASH_LISTPACK whose listpack holds every encoding,
 * LZF-compressed by Redis. */
static const char redis7_hash_dump[] =
    "\x10\xc3\x42\xcd\x80\x00\x00\x62\x52\x0e\x52\x62\x00\x00\x3a\x00\x84\x75"
    "\x37\x5f\x30\x05\x00\x01\x86\x20\x07\x09\x31\x32\x37\x07\x7f\x01\x87\x69"
    "\x31\x33\x20\x0a\x05\x38\x08\xc0\x80\x02\x88\x40\x0b\x08\x34\x30\x39\x35"
    "\x09\xcf\xff\x02\x86\x40\x0c\x06\x6d\x31\x07\xdf\xff\x02\x89\x60\x0a\x20"
    "\x18\x03\x36\x0a\xd0\x00\x40\x25\x00\x36\x40\x25\x05\x36\x09\xf1\x00\x10"
    "\x03\x20\x1b\x0a\x36\x5f\x33\x32\x37\x36\x37\x0a\xf1\xff\x7f\x80\x0e\x40"
    "\x2a\x40\x0e\x02\xef\x03\x8a\x40\x1d\x00\x6d\x40\x1e\x04\x38\x0b\xf1\x00"
    "\x80\x20\x1e\x01\x32\x34\x60\x2d\x07\x38\x0a\xf2\x00\x80\x00\x04\x8b\x40"
    "\x0f\x0d\x38\x33\x38\x38\x36\x30\x37\x0c\xf2\xff\xff\x7f\x04\x8c\x40\x11"
    "\x00\x6d\x80\x12\x05\x38\x0d\xf2\x00\x00\x80\x20\x24\x01\x33\x32\xa0\x24"
    "\x02\x38\x0c\xf3\x20\x11\x02\x00\x05\x8e\x40\x12\x0c\x32\x31\x34\x37\x34"
    "\x38\x33\x36\x34\x37\x0f\xf3\xff\x20\x3b\x01\x05\x8f\x40\x15\x00\x6d\xe0"
    "\x00\x16\x01\x38\x10\x20\x2c\x01\x00\x80\x20\x2c\x01\x36\x34\xe0\x01\x2c"
    "\x02\x38\x0f\xf4\x40\x15\x20\x03\x02\x00\x09\x87\x40\x19\x04\x6d\x61\x78"
    "\x08\xf4\x20\x3f\x40\x00\x00\x7f\xa0\x12\x02\x69\x6e\x08\x40\x25\x40\x00"
    "\x0e\x80\x09\x88\x73\x36\x5f\x65\x6d\x70\x74\x79\x09\x80\x01\x85\x20\x0b"
    "\x04\x36\x33\x06\xbf\x61\xe0\x35\x00\x0b\x40\x86\x73\x31\x32\x5f\x36\x34"
    "\x07\xe0\x40\x62\xe0\x36\x00\x01\x42\x88\x40\x4a\x21\x9c\x04\x35\x09\xef"
    "\xff\x63\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0"
    "\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0"
    "\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\x7d\x00\x03\x20\x81\x88"
    "\x73\x31\x2b\x30\x0c\x07\x36\x09\xf0\x00\x10\x00\x00\x64\xe0\xff\x00\xe0"
    "\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0"
    "\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0"
    "\xff\x00\xe0\xff\x00\xe0\x7e\x00\x02\x20\x85\x89\x50\x10\x0b\x31\x36\x33"
    "\x37\x38\x0a\xf0\xfa\x3f\x00\x00\x65\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00"
    "\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\xff\x00\xe0\x00\x00"
    "\x0c\x00\xff\xff\x87\x73\x74\x72\x5f\x30\x30\x37\x08\x83\x20\x04\x01\x04"
    "\x86\x40\x0d\x07\x6d\x30\x07\x82\x2d\x30\x03\x8c\x40\x0b\x1e\x69\x36\x34"
    "\x5f\x6f\x76\x65\x72\x0d\x93\x39\x32\x32\x33\x33\x37\x32\x30\x33\x36\x38"
    "\x35\x34\x37\x37\x35\x38\x30\x38\x14\x89\x40\x22\x0a\x70\x6c\x75\x73\x31"
    "\x0a\x82\x2b\x31\x03\xff\x0a\x00\x99\xc7\xaf\xbe\x4e\xdf\xbf\x87";

static const char *const redis7_hash_pairs[][2] = {
    {"u7_0", "0"},
    {"u7_127", "127"},
    {"i13_128", "128"},
    {"i13_4095", "4095"},
    {"i13_m1", "-1"},
    {"i13_m4096", "-4096"},
    {"i16_4096", "4096"},
    {"i16_32767", "32767"},
    {"i16_m4097", "-4097"},
    {"i16_m32768", "-32768"},
    {"i24_32768", "32768"},
    {"i24_8388607", "8388607"},
    {"i24_m8388608", "-8388608"},
    {"i32_8388608", "8388608"},
    {"i32_2147483647", "2147483647"},
    {"i32_m2147483648", "-2147483648"},
    {"i64_2147483648", "2147483648"},
    {"i64_max", "9223372036854775807"},
    {"i64_min", "-9223372036854775808"},
    {"s6_empty", ""},
    {"s6_63", NULL},
    {"s12_64", NULL},
    {"s12_4095", NULL},
    {"s32_4096", NULL},
    {"s32_16378", NULL},
    {"str_007", "007"},
    {"str_m0", "-0"},
    {"str_i64_over", "9223372036854775808"},
    {"str_plus1", "+1"},
};

/* Values given as NULL above: a run of one letter, as the generator wrote them. */
static void assert_long_value(const char *field, struct rdb_elem v) {
    struct {
        const char *field;
        char letter;
        size_t n;
    } runs[] = {
        {"s6_63", 'a', 63},      {"s12_64", 'b', 64},       {"s12_4095", 'c', 4095},
        {"s32_4096", 'd', 4096}, {"s32_16378", 'e', 16378},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        if (strcmp(runs[i].field, field) != 0) continue;
        cr_assert_not_null(v.str);
        cr_assert_eq(v.len, runs[i].n, "%s", field);
        for (size_t k = 0; k < v.len; k++)
            cr_assert_eq(v.str[k], runs[i].letter, "%s byte %zu", field, k);
        return;
    }
    cr_assert_fail("no expectation for %s", field);
}

Test(listpack_real, redis7_hash_with_every_encoding) {
    size_t len;
    char *lp = fixture_dump_blob(redis7_hash_dump, sizeof redis7_hash_dump - 1, 16, &len);
    size_t npairs = sizeof redis7_hash_pairs / sizeof redis7_hash_pairs[0];
    struct rdb_elem e[64];
    size_t n;
    char err[256];
    cr_assert_eq(lp_walk(lp, len, e, 64, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 2 * npairs);
    for (size_t i = 0; i < npairs; i++) {
        const char *field = redis7_hash_pairs[i][0], *value = redis7_hash_pairs[i][1];
        assert_str(e[2 * i], field, strlen(field));
        char scratch[RDB_ELEM_SCRATCH];
        size_t vlen;
        const char *v = rdb_elem_bytes(&e[2 * i + 1], scratch, &vlen);
        if (value == NULL) {
            assert_long_value(field, e[2 * i + 1]);
            continue;
        }
        cr_assert_eq(vlen, strlen(value), "%s", field);
        cr_assert_eq(memcmp(v, value, vlen), 0, "%s: %.*s", field, (int)vlen, v);
        /* Redis keeps canonical integers as integers, the rest as strings. */
        cr_assert_eq(e[2 * i + 1].str == NULL, field[0] == 'u' || field[0] == 'i', "%s", field);
    }
    free(lp);
}

/* The same blob with one byte changed, at every position and to values that mean
 * something to the format: must end in 0 or -1, never crash (ASan watches). */
Test(listpack_real, every_single_byte_corruption_is_contained) {
    size_t len;
    char *lp = fixture_dump_blob(redis7_hash_dump, sizeof redis7_hash_dump - 1, 16, &len);
    static const unsigned char values[] = {0x00, 0x01, 0x3F, 0x7F, 0x80, 0xBF, 0xC0, 0xDF,
                                           0xE0, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFE, 0xFF};
    struct rdb_elem e[64];
    size_t n;
    char err[256];
    for (size_t pos = 0; pos < len; pos += pos < 600 ? 1 : 97) {
        for (size_t v = 0; v < sizeof values; v++) {
            char saved = lp[pos];
            lp[pos] = (char)values[v];
            int rc = lp_walk(lp, len, e, 64, &n, err, sizeof err);
            cr_assert(rc == 0 || (rc == -1 && err[0] != '\0'), "pos %zu value %02x", pos,
                      values[v]);
            lp[pos] = saved;
        }
    }
    free(lp);
}

/* ZADD z 1 one 2.5 two_and_half -3 minus3 1e300 big inf plusinf; DUMP z. */
static const char redis7_zset_dump[] =
    "\x11\xc3\x40\x50\x40\x58\x1f\x58\x00\x00\x00\x0a\x00\x86\x6d\x69\x6e\x75"
    "\x73\x33\x07\xdf\xfd\x02\x83\x6f\x6e\x65\x04\x01\x01\x8c\x74\x77\x6f\x5f"
    "\x61\x6e\x64\x13\x5f\x68\x61\x6c\x66\x0d\x83\x32\x2e\x35\x04\x83\x62\x69"
    "\x67\x04\x97\x31\x2e\x30\xe0\x05\x00\x10\x31\x65\x2b\x33\x30\x30\x18\x87"
    "\x70\x6c\x75\x73\x69\x6e\x66\x08\x83\x20\x04\x01\x04\xff\x0a\x00\xfa\x7b"
    "\xfe\x3b\x4d\x23\x94\xf1";

Test(listpack_real, redis7_zset_members_and_scores) {
    size_t len;
    char *lp = fixture_dump_blob(redis7_zset_dump, sizeof redis7_zset_dump - 1, 17, &len);
    struct rdb_elem e[10];
    size_t n;
    char err[256];
    cr_assert_eq(lp_walk(lp, len, e, 10, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 10);
    /* Sorted by score; integral scores are stored as integers. */
    assert_str(e[0], "minus3", 6);
    assert_int(e[1], -3);
    assert_str(e[2], "one", 3);
    assert_int(e[3], 1);
    assert_str(e[4], "two_and_half", 12);
    assert_str(e[5], "2.5", 3);
    assert_str(e[6], "big", 3);
    assert_str(e[8], "plusinf", 7);
    assert_str(e[9], "inf", 3);
    free(lp);
}

/* Walks the HASH_LISTPACK of `key` in a fixture and checks its fields in order. */
static void assert_fixture_listpack(const char *file, unsigned char type, const char *key,
                                    const char *const *want, size_t nwant) {
    size_t flen, len, n;
    unsigned char *data = fixture_read(file, &flen);
    size_t pos = fixture_find_value(data, flen, type, key);
    char *lp = fixture_rdb_string(data, flen, &pos, &len);
    struct rdb_elem e[64];
    char err[256];
    cr_assert_eq(lp_walk(lp, len, e, 64, &n, err, sizeof err), 0, "%s: %s", file, err);
    cr_assert_eq(n, nwant, "%s %s: %zu elements", file, key, n);
    for (size_t i = 0; i < nwant; i++) {
        char scratch[RDB_ELEM_SCRATCH];
        size_t blen;
        const char *b = rdb_elem_bytes(&e[i], scratch, &blen);
        cr_assert(blen == strlen(want[i]) && memcmp(b, want[i], blen) == 0,
                  "%s %s element %zu: got %.*s, want %s", file, key, i, (int)blen, b, want[i]);
    }
    free(lp);
    free(data);
}

Test(listpack_fixtures, librdb_hash_lp_v11_two_compressed_hashes) {
    static const char *const hash2[] = {"field7",  "value7",  "field8",  "value8", "9",  "value9",
                                        "field10", "value10", "field11", "11",     "12", "12.0"};
    static const char *const hash1[] = {"field2",   "2",      "field3", "3", "field4",
                                        "value4.0", "field5", "5.0",    "6", "6"};
    assert_fixture_listpack("librdb/hash_lp_v11.rdb", 16, "hash2", hash2, 12);
    assert_fixture_listpack("librdb/hash_lp_v11.rdb", 16, "hash1", hash1, 10);
}

Test(listpack_fixtures, librdb_set_lp_v11) {
    static const char *const set[] = {"1", "2", "3", "1.1", "1.2", "1.3", "a", "b", "c"};
    assert_fixture_listpack("librdb/set_lp_v11.rdb", 20, "myset", set, 9);
}

Test(listpack_fixtures, librdb_zset_lp_v11_has_48_elements) {
    size_t flen, len, n;
    unsigned char *data = fixture_read("librdb/zset_lp_v11.rdb", &flen);
    size_t pos = fixture_find_value(data, flen, 17, "myzset");
    char *lp = fixture_rdb_string(data, flen, &pos, &len);
    struct rdb_elem e[64];
    char err[256];
    cr_assert_eq(lp_walk(lp, len, e, 64, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 48);
    assert_str(e[0], "a10", 3);
    assert_str(e[1], "-inf", 4);
    free(lp);
    free(data);
}
