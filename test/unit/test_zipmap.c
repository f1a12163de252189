/* test_zipmap.c -- the zipmap reader (Redis < 2.6 hashes): 1- and 5-byte lengths,
 * free space after values, the unknown count (254), malformed blobs of every kind
 * (each must fail with a message and never read out of bounds: run under ASan),
 * and the zipmaps in the shared RDB fixtures. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/zipmap.h"
#include "test/unit/support/fixtures.h"

/* bytes copied into an exact-size malloc'd buffer, so ASan sees any over-read. */
static char *exact(const void *bytes, size_t len) {
    char *b = malloc(len > 0 ? len : 1);
    cr_assert_not_null(b);
    memcpy(b, bytes, len);
    return b;
}

/* Walks a whole zipmap: -1 on error (err filled), else 0 with the pairs. */
static int zm_walk(const char *blob, size_t len, struct rdb_elem *pairs, size_t max, size_t *n,
                   char *err, size_t errlen) {
    struct zipmap_iter it;
    *n = 0;
    err[0] = '\0';
    if (zipmap_iter_init(&it, blob, len, err, errlen) < 0) return -1;
    struct rdb_elem field, value;
    int rc;
    while ((rc = zipmap_iter_next(&it, &field, &value, err, errlen)) == 1) {
        if (2 * *n + 1 < max) {
            pairs[2 * *n] = field;
            pairs[2 * *n + 1] = value;
        }
        (*n)++;
    }
    return rc;
}

static void assert_str(struct rdb_elem e, const char *s, size_t len) {
    cr_assert_not_null(e.str);
    cr_assert_eq(e.len, len, "length %zu, want %zu", e.len, len);
    cr_assert_eq(memcmp(e.str, s, len), 0);
}

/* The blob must be refused, with a one-line message containing needle. */
static void assert_zm_error(const void *bytes, size_t len, const char *needle) {
    char *blob = bytes != NULL ? exact(bytes, len) : NULL;
    char err[256];
    struct rdb_elem pairs[8];
    size_t n;
    cr_assert_eq(zm_walk(blob, len, pairs, 8, &n, err, sizeof err), -1, "accepted a bad zipmap");
    cr_assert_neq(err[0], '\0');
    cr_assert_null(strchr(err, '\n'));
    cr_assert_not_null(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
    free(blob);
}

Test(zipmap, two_pairs_from_the_redis_comment) {
    static const char zm[] = "\x02\x03"
                             "foo\x03\x00"
                             "bar\x05"
                             "hello\x05\x00"
                             "world\xff";
    char *blob = exact(zm, sizeof zm - 1), err[256];
    struct rdb_elem p[4];
    size_t n;
    cr_assert_eq(zm_walk(blob, sizeof zm - 1, p, 4, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 2);
    assert_str(p[0], "foo", 3);
    assert_str(p[1], "bar", 3);
    assert_str(p[2], "hello", 5);
    assert_str(p[3], "world", 5);
    free(blob);
}

Test(zipmap, free_bytes_after_a_value_are_skipped) {
    static const char zm[] = "\x02\x01"
                             "a\x01\x02"
                             "bXX\x01"
                             "c\x00\x00\xff";
    char *blob = exact(zm, sizeof zm - 1), err[256];
    struct rdb_elem p[4];
    size_t n;
    cr_assert_eq(zm_walk(blob, sizeof zm - 1, p, 4, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 2);
    assert_str(p[1], "b", 1);
    assert_str(p[2], "c", 1);
    assert_str(p[3], "", 0);
    free(blob);
}

/* A zipmap of one pair: a field of flen 'f's, a value of vlen 'v's, with lengths
 * written as one byte below 254 and as 0xFE + u32le from 254. */
static char *one_pair(size_t flen, size_t vlen, size_t *len) {
    unsigned char *b = malloc(1 + 5 + flen + 5 + 1 + vlen + 1);
    size_t p = 0;
    b[p++] = 1;
    size_t lens[2] = {flen, vlen};
    for (int k = 0; k < 2; k++) {
        if (lens[k] < 254) {
            b[p++] = (unsigned char)lens[k];
        } else {
            b[p++] = 0xFE;
            for (int i = 0; i < 4; i++)
                b[p++] = (unsigned char)(lens[k] >> (8 * i));
        }
        if (k == 1) b[p++] = 0; /* free */
        memset(b + p, k == 0 ? 'f' : 'v', lens[k]);
        p += lens[k];
    }
    b[p++] = 0xFF;
    *len = p;
    return (char *)b;
}

Test(zipmap, one_and_five_byte_lengths) {
    size_t sizes[][2] = {{253, 253}, {254, 254}, {300, 70000}, {0, 0}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len, n;
        char *blob = one_pair(sizes[i][0], sizes[i][1], &len), err[256];
        struct rdb_elem p[2];
        cr_assert_eq(zm_walk(blob, len, p, 2, &n, err, sizeof err), 0, "%s", err);
        cr_assert_eq(n, 1);
        cr_assert_eq(p[0].len, sizes[i][0]);
        cr_assert_eq(p[1].len, sizes[i][1]);
        if (sizes[i][1] > 0) cr_assert_eq(p[1].str[sizes[i][1] - 1], 'v');
        free(blob);
    }
}

Test(zipmap, count_254_means_unknown) {
    static const char zm[] = "\xfe\x01"
                             "a\x01\x00"
                             "b\xff";
    char *blob = exact(zm, sizeof zm - 1), err[256];
    struct rdb_elem p[2];
    size_t n;
    cr_assert_eq(zm_walk(blob, sizeof zm - 1, p, 2, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    free(blob);
}

Test(zipmap, empty_zipmap_ends_at_once) {
    char *blob = exact("\x00\xff", 2), err[256];
    struct rdb_elem p[2];
    size_t n;
    cr_assert_eq(zm_walk(blob, 2, p, 2, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 0);
    free(blob);
}

Test(zipmap_malformed, zero_length_and_one_byte) {
    assert_zm_error(NULL, 0, "minimum");
    assert_zm_error("\xff", 1, "minimum");
}

Test(zipmap_malformed, missing_end_marker) {
    assert_zm_error("\x01\x01"
                    "a\x01\x00"
                    "b",
                    6, "end marker");
}

Test(zipmap_malformed, count_mismatch) {
    assert_zm_error("\x03\x01"
                    "a\x01\x00"
                    "b\xff",
                    7, "declares 3 pairs, found 1");
    assert_zm_error("\x00\x01"
                    "a\x01\x00"
                    "b\xff",
                    7, "declares 0 pairs, found 1");
}

Test(zipmap_malformed, end_marker_before_the_end) {
    assert_zm_error("\x00\xff\x01\xff", 4, "end marker at byte 1");
}

Test(zipmap_malformed, field_runs_past_the_end) {
    assert_zm_error("\x01\x05"
                    "ab\xff",
                    5, "field of 5 bytes at byte 1");
    assert_zm_error("\x01\xfe\xff\xff\xff\xff"
                    "ab\xff",
                    9, "field of");
}

Test(zipmap_malformed, value_runs_past_the_end) {
    assert_zm_error("\x01\x01"
                    "a\x05\x00"
                    "bc\xff",
                    8, "value of 5 bytes at byte 3");
}

Test(zipmap_malformed, free_bytes_run_past_the_end) {
    assert_zm_error("\x01\x01"
                    "a\x01\x09"
                    "b\xff",
                    7, "value of 1 bytes at byte 3");
}

Test(zipmap_malformed, field_without_value) {
    assert_zm_error("\x01\x01"
                    "a\xff",
                    4, "has no value");
}

Test(zipmap_malformed, value_without_free_byte) {
    assert_zm_error("\x01\x01"
                    "a\x01\xff",
                    5, "no free-space byte");
}

Test(zipmap_malformed, five_byte_length_cut) {
    assert_zm_error("\x01\xfe\x01\x00\xff", 5, "5-byte length at byte 1");
}

Test(zipmap_malformed, every_truncation_fails_cleanly) {
    static const char zm[] = "\x02\x03"
                             "foo\x03\x01"
                             "barX\x05"
                             "hello\x05\x00"
                             "world\xff";
    for (size_t cut = 0; cut < sizeof zm - 1; cut++) {
        assert_zm_error(cut > 0 ? zm : NULL, cut, "");
        if (cut >= 2) { /* disguised: end marker patched in */
            char *t = exact(zm, cut);
            t[cut - 1] = (char)0xFF;
            assert_zm_error(t, cut, "");
            free(t);
        }
    }
}

/* ---- real zipmaps ------------------------------------------------------------ */

/* The zipmap stored as the value of `key` (type 9) in a fixture, walked and
 * compared with want (field, value, field, value, ...). */
static void assert_fixture_zipmap(const char *file, const char *key, const char *const *want,
                                  size_t nwant) {
    size_t flen, len, n;
    unsigned char *data = fixture_read(file, &flen);
    size_t pos = fixture_find_value(data, flen, 9, key);
    char *zm = fixture_rdb_string(data, flen, &pos, &len);
    struct rdb_elem p[32];
    char err[256];
    cr_assert_eq(zm_walk(zm, len, p, 32, &n, err, sizeof err), 0, "%s: %s", file, err);
    cr_assert_eq(2 * n, nwant, "%s: %zu pairs", file, n);
    for (size_t i = 0; i < nwant; i++)
        assert_str(p[i], want[i], strlen(want[i]));
    free(zm);
    free(data);
}

Test(zipmap_fixtures, hash_zipmap_rdb) {
    static const char *const want[] = {"f1", "v1", "f2", "v2"};
    assert_fixture_zipmap("hash-zipmap.rdb", "hash", want, 4);
}

Test(zipmap_fixtures, librdb_hash_zm_v2_compressed) {
    static const char *const want[] = {"1",    "1",    "2",    "2",    "3",    "3",
                                       "1.1",  "1.1",  "1.2",  "1.2",  "1.3",  "1.3",
                                       "aaa1", "aaa1", "aaa2", "aaa2", "aaa3", "aaa3"};
    assert_fixture_zipmap("librdb/hash_zm_v2.rdb", "myhash", want, 18);
}

/* librdb's zipmap with one byte changed, at every position and to values that mean
 * something to the format: 0 or -1, never a crash (ASan watches). */
Test(zipmap_fixtures, every_single_byte_corruption_is_contained) {
    size_t flen, len, n;
    unsigned char *data = fixture_read("librdb/hash_zm_v2.rdb", &flen);
    size_t pos = fixture_find_value(data, flen, 9, "myhash");
    char *zm = fixture_rdb_string(data, flen, &pos, &len);
    static const unsigned char values[] = {0x00, 0x01, 0x05, 0x7F, 0xFD, 0xFE, 0xFF};
    struct rdb_elem p[32];
    char err[256];
    for (size_t at = 0; at < len; at++) {
        for (size_t v = 0; v < sizeof values; v++) {
            char saved = zm[at];
            zm[at] = (char)values[v];
            int rc = zm_walk(zm, len, p, 32, &n, err, sizeof err);
            cr_assert(rc == 0 || (rc == -1 && err[0] != '\0'), "at %zu value %02x", at, values[v]);
            zm[at] = saved;
        }
    }
    free(zm);
    free(data);
}
