/* test_ziplist.c -- the ziplist reader: every entry encoding (6/14/32-bit strings,
 * int8/16/24/32/64 and the 4-bit immediates) with its edges, 1- and 5-byte prevlen,
 * the header, tail and count checks (65535 = unknown), malformed blobs of every
 * kind (each must fail with a message and never read out of bounds: run under
 * ASan), and real ziplists from the shared RDB fixtures. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/ziplist.h"
#include "test/unit/support/fixtures.h"

/* Wraps hand-written entries (prevlen included) in a header declaring `count`, with
 * the tail offset at the entry that starts `last` bytes into `entries`, and the end
 * marker. Malloc'd at exactly its size so that ASan catches any read past it. */
static char *zl_make(const void *entries, size_t entries_len, unsigned count, size_t last,
                     size_t *len) {
    *len = 10 + entries_len + 1;
    unsigned char *b = malloc(*len);
    cr_assert_not_null(b);
    size_t tail = 10 + last;
    for (int i = 0; i < 4; i++) {
        b[i] = (unsigned char)(*len >> (8 * i));
        b[4 + i] = (unsigned char)(tail >> (8 * i));
    }
    b[8] = (unsigned char)count;
    b[9] = (unsigned char)(count >> 8);
    if (entries_len > 0) memcpy(b + 10, entries, entries_len);
    b[*len - 1] = 0xFF;
    return (char *)b;
}

/* Walks a whole blob: -1 on any error (err filled), else 0 with the elements. */
static int zl_walk(const char *blob, size_t len, struct rdb_elem *elems, size_t max, size_t *n,
                   char *err, size_t errlen) {
    struct ziplist_iter it;
    *n = 0;
    err[0] = '\0';
    if (ziplist_iter_init(&it, blob, len, err, errlen) < 0) return -1;
    struct rdb_elem e;
    int rc;
    while ((rc = ziplist_iter_next(&it, &e, err, errlen)) == 1) {
        if (*n < max) elems[*n] = e;
        (*n)++;
    }
    return rc;
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

/* A ziplist of the one entry (prevlen 0 included) decodes to the integer v. */
static void assert_single_int(const void *entry, size_t entry_len, long long v) {
    size_t len, n;
    char err[256];
    struct rdb_elem e[2];
    char *blob = zl_make(entry, entry_len, 1, 0, &len);
    cr_assert_eq(zl_walk(blob, len, e, 2, &n, err, sizeof err), 0, "walk failed: %s", err);
    cr_assert_eq(n, 1);
    assert_int(e[0], v);
    free(blob);
}

/* A ziplist of the one entry (prevlen 0 included) decodes to the string s. */
static void assert_single_str(const void *entry, size_t entry_len, const char *s, size_t slen) {
    size_t len, n;
    char err[256];
    struct rdb_elem e[2];
    char *blob = zl_make(entry, entry_len, 1, 0, &len);
    cr_assert_eq(zl_walk(blob, len, e, 2, &n, err, sizeof err), 0, "walk failed: %s", err);
    cr_assert_eq(n, 1);
    assert_str(e[0], s, slen);
    free(blob);
}

/* The walk must fail with a one-line message containing `needle`. */
static void assert_zl_error(const char *blob, size_t len, const char *needle) {
    char err[256];
    struct rdb_elem e[8];
    size_t n;
    cr_assert_eq(zl_walk(blob, len, e, 8, &n, err, sizeof err), -1, "accepted a bad ziplist");
    cr_assert_neq(err[0], '\0', "no error message");
    cr_assert_null(strchr(err, '\n'), "message is not one line: %s", err);
    cr_assert_not_null(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
}

/* A ziplist of these entries must fail with a message containing `needle`. */
static void assert_entries_error(const void *entries, size_t entries_len, unsigned count,
                                 size_t last, const char *needle) {
    size_t len;
    char *blob = zl_make(entries, entries_len, count, last, &len);
    assert_zl_error(blob, len, needle);
    free(blob);
}

/* A string entry with prevlen 0: encoding bytes `enc`, then n copies of 'z'. */
static char *string_entry(const void *enc, size_t enc_len, size_t n, size_t *len) {
    *len = 1 + enc_len + n;
    unsigned char *e = malloc(*len);
    cr_assert_not_null(e);
    e[0] = 0;
    memcpy(e + 1, enc, enc_len);
    memset(e + 1 + enc_len, 'z', n);
    return (char *)e;
}

/* n copies of 'z', for comparing. */
static char *z_run(size_t n) {
    char *s = malloc(n > 0 ? n : 1);
    memset(s, 'z', n);
    return s;
}

/* ---- every encoding ------------------------------------------------------- */

Test(ziplist_encoding, str6_empty_short_and_63) {
    assert_single_str("\x00\x00", 2, "", 0);
    assert_single_str("\x00\x03"
                      "abc",
                      5, "abc", 3);
    size_t len;
    char *e = string_entry("\x3f", 1, 63, &len), *want = z_run(63);
    assert_single_str(e, len, want, 63);
    free(e);
    free(want);
}

Test(ziplist_encoding, str14_length_is_big_endian) {
    struct {
        const char *enc;
        size_t n;
    } cases[] = {
        {"\x40\x40", 64},
        {"\x41\x02", 258},
        {"\x7f\xff", 16383},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *e = string_entry(cases[i].enc, 2, cases[i].n, &len), *want = z_run(cases[i].n);
        assert_single_str(e, len, want, cases[i].n);
        free(e);
        free(want);
    }
}

Test(ziplist_encoding, str32_length_is_big_endian) {
    size_t len;
    char *e = string_entry("\x80\x00\x00\x40\x00", 5, 16384, &len), *want = z_run(16384);
    assert_single_str(e, len, want, 16384);
    free(e);
    free(want);
    assert_single_str("\x00\x80\x00\x00\x00\x05"
                      "hello",
                      11, "hello", 5);
}

Test(ziplist_encoding, str32_ignores_low_bits_of_encoding_byte_like_redis) {
    assert_single_str("\x00\xbf\x00\x00\x00\x02"
                      "hi",
                      8, "hi", 2);
}

Test(ziplist_encoding, int8_edges) {
    assert_single_int("\x00\xfe\x7f", 3, 127);
    assert_single_int("\x00\xfe\x80", 3, -128);
    assert_single_int("\x00\xfe\xff", 3, -1);
}

Test(ziplist_encoding, int16_edges) {
    assert_single_int("\x00\xc0\xff\x7f", 4, 32767);
    assert_single_int("\x00\xc0\x00\x80", 4, -32768);
    assert_single_int("\x00\xc0\x34\x12", 4, 0x1234);
}

Test(ziplist_encoding, int24_edges) {
    assert_single_int("\x00\xf0\xff\xff\x7f", 5, 8388607);
    assert_single_int("\x00\xf0\x00\x00\x80", 5, -8388608);
    assert_single_int("\x00\xf0\xff\xff\xff", 5, -1);
}

Test(ziplist_encoding, int32_edges) {
    assert_single_int("\x00\xd0\xff\xff\xff\x7f", 6, INT32_MAX);
    assert_single_int("\x00\xd0\x00\x00\x00\x80", 6, INT32_MIN);
}

Test(ziplist_encoding, int64_min_max) {
    assert_single_int("\x00\xe0\xff\xff\xff\xff\xff\xff\xff\x7f", 10, LLONG_MAX);
    assert_single_int("\x00\xe0\x00\x00\x00\x00\x00\x00\x00\x80", 10, LLONG_MIN);
    assert_single_int("\x00\xe0\x00\xbc\xa0\x65\x01\x00\x00\x00", 10, 6000000000LL);
}

Test(ziplist_encoding, imm4_is_0_to_12) {
    for (unsigned b = 0xF1; b <= 0xFD; b++) {
        unsigned char entry[2] = {0, (unsigned char)b};
        assert_single_int(entry, 2, (long long)b - 0xF1);
    }
}

Test(ziplist_encoding, mixed_entries_with_one_byte_prevlens) {
    static const char entries[] = "\x00\x03"
                                  "abc"                      /* 0: "abc", 5 bytes */
                                  "\x05\xc0\xff\x7f"         /* 5: 32767, 4 bytes */
                                  "\x04\xf1"                 /* 9: 0, 2 bytes */
                                  "\x02\xfd"                 /* 11: 12 */
                                  "\x02\xfe\x80"             /* 13: -128 */
                                  "\x03\xf0\x00\x00\x80"     /* 16: -8388608 */
                                  "\x05\xd0\x00\x00\x00\x80" /* 21: INT32_MIN */
                                  "\x06\xe0\xff\xff\xff\xff\xff\xff\xff\x7f"; /* 27 */
    size_t len, n;
    char err[256];
    struct rdb_elem e[8];
    char *blob = zl_make(entries, sizeof entries - 1, 8, 27, &len);
    cr_assert_eq(zl_walk(blob, len, e, 8, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 8);
    assert_str(e[0], "abc", 3);
    assert_int(e[1], 32767);
    assert_int(e[2], 0);
    assert_int(e[3], 12);
    assert_int(e[4], -128);
    assert_int(e[5], -8388608);
    assert_int(e[6], INT32_MIN);
    assert_int(e[7], LLONG_MAX);
    free(blob);
}

/* Two entries: a 14-bit string of n bytes (so 3 + n bytes long), then int8 7 whose
 * prevlen field is `prevlen` (1 or 5 bytes). */
static char *two_entries(size_t n, const void *prevlen, size_t prevlen_size, size_t *len,
                         size_t *last) {
    *last = 3 + n;
    *len = *last + prevlen_size + 2;
    unsigned char *e = malloc(*len);
    e[0] = 0;
    e[1] = (unsigned char)(0x40 | (n >> 8));
    e[2] = (unsigned char)n;
    memset(e + 3, 'z', n);
    memcpy(e + *last, prevlen, prevlen_size);
    e[*last + prevlen_size] = 0xFE;
    e[*last + prevlen_size + 1] = 7;
    return (char *)e;
}

/* Two-entry ziplist from two_entries(), walked: 0 or -1. */
static int walk_two(size_t n, const void *prevlen, size_t prevlen_size, char *err, size_t errlen) {
    size_t elen, last, len, count;
    struct rdb_elem e[2];
    char *entries = two_entries(n, prevlen, prevlen_size, &elen, &last);
    char *blob = zl_make(entries, elen, 2, last, &len);
    int rc = zl_walk(blob, len, e, 2, &count, err, errlen);
    if (rc == 0) {
        cr_assert_eq(count, 2);
        cr_assert_eq(e[0].len, n);
        assert_int(e[1], 7);
    }
    free(blob);
    free(entries);
    return rc;
}

Test(ziplist_prevlen, one_byte_up_to_253) {
    char err[256];
    cr_assert_eq(walk_two(250, "\xfd", 1, err, sizeof err), 0, "%s", err); /* 253 bytes */
}

Test(ziplist_prevlen, five_bytes_from_254) {
    char err[256];
    cr_assert_eq(walk_two(251, "\xfe\xfe\x00\x00\x00", 5, err, sizeof err), 0, "%s", err);
    cr_assert_eq(walk_two(300, "\xfe\x2f\x01\x00\x00", 5, err, sizeof err), 0, "%s", err);
    cr_assert_eq(walk_two(16383, "\xfe\x02\x40\x00\x00", 5, err, sizeof err), 0, "%s", err);
}

Test(ziplist_prevlen, five_bytes_holding_a_small_length_is_accepted) {
    /* Redis keeps a 5-byte prevlen after a shrink rather than cascade an update. */
    char err[256];
    cr_assert_eq(walk_two(10, "\xfe\x0d\x00\x00\x00", 5, err, sizeof err), 0, "%s", err);
}

Test(ziplist_prevlen, wrong_prevlen_fails) {
    char err[256];
    cr_assert_eq(walk_two(250, "\xfc", 1, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "previous"), "%s", err);
    cr_assert_eq(walk_two(300, "\xfe\x30\x01\x00\x00", 5, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "byte 313"), "%s", err);
}

Test(ziplist_prevlen, first_entry_must_have_prevlen_zero) {
    assert_entries_error("\x01\xf1", 2, 1, 0, "previous");
}

/* ---- header, count and terminator ------------------------------------------ */

Test(ziplist_header, empty_ziplist_ends_at_once) {
    size_t len, n;
    char err[128];
    struct rdb_elem e[1];
    char *blob = zl_make("", 0, 0, 0, &len);
    cr_assert_eq(len, 11);
    cr_assert_eq(zl_walk(blob, len, e, 1, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 0);
    free(blob);
}

Test(ziplist_header, count_65535_means_unknown) {
    size_t len, n;
    char err[128];
    struct rdb_elem e[3];
    char *blob = zl_make("\x00\xf2\x02\xf3\x02\xf4", 6, 65535, 4, &len);
    cr_assert_eq(zl_walk(blob, len, e, 3, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 3);
    assert_int(e[2], 3);
    free(blob);
}

Test(ziplist_malformed, zero_length_and_null_blob) {
    assert_zl_error(NULL, 0, "bytes");
    char *one = malloc(1);
    assert_zl_error(one, 0, "bytes");
    free(one);
}

Test(ziplist_malformed, shorter_than_header_and_end) {
    char *ten = malloc(10);
    memcpy(ten, "\x0a\x00\x00\x00\x0a\x00\x00\x00\x00\x00", 10);
    assert_zl_error(ten, 10, "minimum");
    free(ten);
}

Test(ziplist_malformed, total_length_disagrees_with_blob) {
    size_t len;
    char *blob = zl_make("\x00\xf1", 2, 1, 0, &len);
    blob[0] = (char)(len + 1);
    assert_zl_error(blob, len, "byte 0");
    free(blob);
}

Test(ziplist_malformed, missing_end_marker) {
    size_t len;
    char *blob = zl_make("\x00\xf1", 2, 1, 0, &len);
    blob[len - 1] = 0x00;
    assert_zl_error(blob, len, "end marker");
    free(blob);
}

Test(ziplist_malformed, tail_offset_outside_blob) {
    size_t len;
    char *blob = zl_make("\x00\xf1", 2, 1, 0, &len);
    blob[4] = (char)len;
    assert_zl_error(blob, len, "tail offset");
    blob[4] = 9;
    assert_zl_error(blob, len, "tail offset");
    free(blob);
}

Test(ziplist_malformed, tail_offset_not_at_last_entry) {
    assert_entries_error("\x00\xf1\x02\xf2", 4, 2, 0, "tail offset");
}

Test(ziplist_malformed, end_marker_before_the_end) {
    assert_entries_error("\x00\xf1\xff\x02\xf2", 5, 65535, 0, "end marker at byte 12");
}

Test(ziplist_malformed, big_prevlen_cut_by_end) {
    assert_entries_error("\x00\xf1\xfe\x02\x00", 5, 2, 2, "5-byte prevlen");
}

Test(ziplist_malformed, entry_without_encoding_byte) {
    assert_entries_error("\x00\xf1\x02", 3, 2, 2, "no encoding byte");
}

Test(ziplist_malformed, string_runs_past_the_end) {
    assert_entries_error("\x00\x0a"
                         "abc",
                         5, 1, 0, "needs 10 data bytes");
    assert_entries_error("\x00\x7f\xff"
                         "abc",
                         6, 1, 0, "needs 16383 data bytes");
    assert_entries_error("\x00\x80\xff\xff\xff\xff"
                         "abc",
                         9, 1, 0, "data bytes");
    assert_entries_error("\x00\x40", 2, 1, 0, "string length at byte 11");
    assert_entries_error("\x00\x80\x00\x00", 4, 1, 0, "string length");
}

Test(ziplist_malformed, integer_runs_past_the_end) {
    assert_entries_error("\x00\xe0\x01\x02\x03", 5, 1, 0, "needs 8 data bytes");
    assert_entries_error("\x00\xfe", 2, 1, 0, "needs 1 data bytes");
    assert_entries_error("\x00\xf0\x01", 3, 1, 0, "needs 3 data bytes");
}

Test(ziplist_malformed, bad_encoding_bytes) {
    static const unsigned char bad[] = {0xC1, 0xCF, 0xD1, 0xDF, 0xE1, 0xEF, 0xFF};
    for (size_t i = 0; i < sizeof bad; i++) {
        unsigned char entry[10] = {0, bad[i]};
        char needle[64];
        snprintf(needle, sizeof needle, "bad entry encoding 0x%02x at byte 11", bad[i]);
        assert_entries_error(entry, sizeof entry, 1, 0, needle);
    }
}

Test(ziplist_malformed, fewer_entries_than_declared) {
    assert_entries_error("\x00\xf1\x02\xf2", 4, 3, 2, "declares 3 entries, found 2");
}

Test(ziplist_malformed, more_entries_than_declared) {
    assert_entries_error("\x00\xf1\x02\xf2", 4, 1, 2, "beyond the 1 declared");
}

Test(ziplist_malformed, every_truncation_fails_cleanly) {
    static const char entries[] = "\x00\x03"
                                  "abc\x05\xe0\x01\x02\x03\x04\x05\x06\x07\x08"
                                  "\x0a\xc0\x00\x80";
    size_t full_len;
    char *full = zl_make(entries, sizeof entries - 1, 3, 15, &full_len);
    for (size_t cut = 0; cut < full_len; cut++) {
        char *t = malloc(cut > 0 ? cut : 1);
        memcpy(t, full, cut);
        assert_zl_error(t, cut, "");
        if (cut >= 11) { /* disguised: total and end marker patched to fit */
            for (int i = 0; i < 4; i++)
                t[i] = (char)(cut >> (8 * i));
            t[cut - 1] = (char)0xFF;
            assert_zl_error(t, cut, "");
        }
        free(t);
    }
    free(full);
}

Test(ziplist_malformed, null_err_buffer_is_safe) {
    size_t len;
    char *blob = zl_make("\x00\xc1", 2, 1, 0, &len);
    struct ziplist_iter it;
    struct rdb_elem e;
    cr_assert_eq(ziplist_iter_init(&it, blob, len, NULL, 0), 0);
    cr_assert_eq(ziplist_iter_next(&it, &e, NULL, 0), -1);
    free(blob);
}

/* ---- real ziplists ----------------------------------------------------------- */

/* Walks the ziplist stored as the string value of `key` and compares its elements,
 * rendered as bytes, with `want`. */
static void assert_fixture_ziplist(const char *file, unsigned char type, const char *key,
                                   const char *const *want, size_t nwant) {
    size_t flen, len, n;
    unsigned char *data = fixture_read(file, &flen);
    size_t pos = fixture_find_value(data, flen, type, key);
    if (type == 14) { /* quicklist v1: a node count, then one ziplist per node */
        int special;
        cr_assert_eq(fixture_rdb_length(data, flen, &pos, &special), 1, "one node expected");
    }
    char *zl = fixture_rdb_string(data, flen, &pos, &len);
    struct rdb_elem e[64];
    char err[256];
    cr_assert_eq(zl_walk(zl, len, e, 64, &n, err, sizeof err), 0, "%s %s: %s", file, key, err);
    cr_assert_eq(n, nwant, "%s %s: %zu elements", file, key, n);
    for (size_t i = 0; i < nwant; i++) {
        char scratch[RDB_ELEM_SCRATCH];
        size_t blen;
        const char *b = rdb_elem_bytes(&e[i], scratch, &blen);
        cr_assert(blen == strlen(want[i]) && memcmp(b, want[i], blen) == 0,
                  "%s %s element %zu: got %.*s, want %s", file, key, i, (int)blen, b, want[i]);
    }
    free(zl);
    free(data);
}

Test(ziplist_fixtures, encodings_rdb_list_hash_and_zset) {
    static const char *const list[] = {"1", "2", "3", "a", "b", "c", "100000", "6000000000"};
    static const char *const pairs[] = {"a", "1", "b", "2", "c", "3"};
    assert_fixture_ziplist("encodings.rdb", 10, "list_zipped", list, 8);
    assert_fixture_ziplist("encodings.rdb", 13, "hash_zipped", pairs, 6);
    assert_fixture_ziplist("encodings.rdb", 12, "zset_zipped", pairs, 6);
}

Test(ziplist_fixtures, hash_ziplist_and_zset_ziplist_rdb) {
    static const char *const hash[] = {"f1", "v1", "f2", "v2"};
    static const char *const zset[] = {"one", "1", "two", "2"};
    assert_fixture_ziplist("hash-ziplist.rdb", 13, "hash", hash, 4);
    assert_fixture_ziplist("zset-ziplist.rdb", 12, "zset", zset, 4);
}

Test(ziplist_fixtures, quicklist_node_with_immediate_7) {
    static const char *const list[] = {"7"};
    assert_fixture_ziplist("list-quicklist.rdb", 14, "list", list, 1);
}

Test(ziplist_fixtures, librdb_compressed_list_and_hash) {
    static const char *const list[] = {"aaaaaa",
                                       "aaaaaaaaaaaa",
                                       "aaaaaaaaaaaaaaaaaa",
                                       "aaaaaaaaaaaaaaaaaaaaaaaa",
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    static const char *const hash[] = {"1",   "2",   "3",    "4",    "5",    "6",
                                       "7.0", "8.0", "str1", "str2", "str3", "str4"};
    assert_fixture_ziplist("librdb/ziplist_v3.rdb", 10, "ziplist_compresses_easily", list, 6);
    assert_fixture_ziplist("librdb/hash_zl_v6.rdb", 13, "myhash", hash, 12);
}

Test(ziplist_fixtures, corrupt_ziplist_rdb_is_refused) {
    size_t flen, len;
    unsigned char *data = fixture_read("corrupt_ziplist.rdb", &flen);
    size_t pos = fixture_find_value(data, flen, 13, "key:000000000091");
    char *zl = fixture_rdb_string(data, flen, &pos, &len);
    char err[256];
    struct rdb_elem e[8];
    size_t n;
    cr_assert_eq(zl_walk(zl, len, e, 8, &n, err, sizeof err), -1);
    cr_assert_neq(err[0], '\0');
    free(zl);
    free(data);
}

/* encodings.rdb's list_zipped with one byte changed, at every position and to values
 * that mean something to the format: 0 or -1, never a crash (ASan watches). */
Test(ziplist_fixtures, every_single_byte_corruption_is_contained) {
    size_t flen, len, n;
    unsigned char *data = fixture_read("encodings.rdb", &flen);
    size_t pos = fixture_find_value(data, flen, 10, "list_zipped");
    char *zl = fixture_rdb_string(data, flen, &pos, &len);
    static const unsigned char values[] = {0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0,
                                           0xD0, 0xE0, 0xF0, 0xF1, 0xFD, 0xFE, 0xFF};
    struct rdb_elem e[16];
    char err[256];
    for (size_t at = 0; at < len; at++) {
        for (size_t v = 0; v < sizeof values; v++) {
            char saved = zl[at];
            zl[at] = (char)values[v];
            int rc = zl_walk(zl, len, e, 16, &n, err, sizeof err);
            cr_assert(rc == 0 || (rc == -1 && err[0] != '\0'), "at %zu value %02x", at, values[v]);
            zl[at] = saved;
        }
    }
    free(zl);
    free(data);
}
