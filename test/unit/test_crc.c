/* test_crc.c -- CRC-16/XMODEM, the cluster key slot with hash tags, and CRC-64/Jones
 * (check values, incremental use, every alignment and tail length against a
 * bit-by-bit reference, and the trailers of real RDB files from the shared fixtures). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shake/crc16.h"
#include "shake/crc64.h"
#include "test/unit/support/fixtures.h"

/* The definition, one bit at a time: reflected Jones polynomial, init 0. */
static uint64_t reference_crc64(uint64_t crc, const unsigned char *p, size_t len) {
    const uint64_t reflected_poly = 0x95ac9329ac4bc9b5ULL;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (crc >> 1) ^ reflected_poly : crc >> 1;
    }
    return crc;
}

/* CRC-16/XMODEM one bit at a time. */
static uint16_t reference_crc16(const unsigned char *p, size_t len) {
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* A deterministic, non-trivial byte pattern. */
static void fill_pattern(unsigned char *buf, size_t len) {
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

Test(crc16, check_value_of_123456789_is_0x31c3) {
    cr_assert_eq(crc16("123456789", 9), 0x31C3);
}

Test(crc16, empty_input_is_zero) {
    cr_assert_eq(crc16("", 0), 0);
}

Test(crc16, matches_bitwise_definition_at_every_length_and_alignment) {
    unsigned char buf[600 + 8];
    fill_pattern(buf, sizeof buf);
    for (size_t at = 0; at < 8; at++)
        for (size_t len = 0; len + at <= sizeof buf; len += len < 80 ? 1 : 13)
            cr_assert_eq(crc16((const char *)buf + at, len), reference_crc16(buf + at, len),
                         "len %zu at %zu", len, at);
}

Test(crc16, every_byte_value_at_every_place_of_an_eight_byte_block) {
    unsigned char buf[19];
    for (size_t place = 0; place < sizeof buf; place++)
        for (int value = 0; value < 256; value++) {
            memset(buf, 0x5a, sizeof buf);
            buf[place] = (unsigned char)value;
            cr_assert_eq(crc16((const char *)buf, sizeof buf), reference_crc16(buf, sizeof buf),
                         "byte %d at %zu", value, place);
        }
}

Test(key_hash_slot, known_slots_of_foo_and_bar) {
    cr_assert_eq(key_hash_slot("foo", 3), 12182);
    cr_assert_eq(key_hash_slot("bar", 3), 5061);
}

Test(key_hash_slot, same_tag_gives_same_slot) {
    const char *a = "{user1000}.following", *b = "{user1000}.followers";
    cr_assert_eq(key_hash_slot(a, strlen(a)), key_hash_slot(b, strlen(b)));
    cr_assert_eq(key_hash_slot(a, strlen(a)), key_hash_slot("user1000", 8));
}

Test(key_hash_slot, empty_tag_hashes_whole_key) {
    const char *k = "foo{}{bar}";
    cr_assert_eq(key_hash_slot(k, strlen(k)), crc16(k, strlen(k)) % 16384);
}

Test(key_hash_slot, nested_open_brace_is_part_of_tag) {
    const char *k = "foo{{bar}}zap";
    cr_assert_eq(key_hash_slot(k, strlen(k)), crc16("{bar", 4) % 16384);
}

Test(key_hash_slot, first_tag_wins) {
    const char *k = "foo{bar}{zap}";
    cr_assert_eq(key_hash_slot(k, strlen(k)), key_hash_slot("bar", 3));
}

Test(key_hash_slot, unclosed_brace_hashes_whole_key) {
    const char *k = "foo{bar";
    cr_assert_eq(key_hash_slot(k, strlen(k)), crc16(k, strlen(k)) % 16384);
    cr_assert_eq(key_hash_slot("}foo{", 5), crc16("}foo{", 5) % 16384);
}

Test(key_hash_slot, empty_key_is_slot_zero) {
    cr_assert_eq(key_hash_slot("", 0), 0);
}

Test(key_hash_slot, key_with_nul_bytes_uses_its_length) {
    const char k[] = {'a', '\0', '{', 'x', '}'};
    cr_assert_eq(key_hash_slot(k, sizeof k), crc16("x", 1) % 16384);
}

Test(crc64, check_value_of_123456789) {
    cr_assert_eq(crc64(0, "123456789", 9), 0xe9c6d914c4b8d9caULL);
}

Test(crc64, empty_input_returns_crc_unchanged) {
    cr_assert_eq(crc64(0, "", 0), 0);
    cr_assert_eq(crc64(0x1234, "", 0), 0x1234);
}

Test(crc64, incremental_equals_one_shot_at_every_split) {
    unsigned char buf[100];
    fill_pattern(buf, sizeof buf);
    uint64_t whole = crc64(0, buf, sizeof buf);
    for (size_t split = 0; split <= sizeof buf; split++) {
        uint64_t c = crc64(0, buf, split);
        c = crc64(c, buf + split, sizeof buf - split);
        cr_assert_eq(c, whole, "split at %zu", split);
    }
}

Test(crc64, slicing_matches_bitwise_at_every_alignment_and_length) {
    static unsigned char buf[4096 + 16];
    fill_pattern(buf, sizeof buf);
    for (size_t offset = 0; offset < 8; offset++)
        for (size_t len = 0; len <= 70; len++)
            cr_assert_eq(crc64(0, buf + offset, len), reference_crc64(0, buf + offset, len),
                         "offset %zu len %zu", offset, len);
    cr_assert_eq(crc64(0, buf + 3, 4096), reference_crc64(0, buf + 3, 4096));
}

Test(crc64, every_single_byte_value_matches_bitwise) {
    for (unsigned b = 0; b < 256; b++) {
        unsigned char one = (unsigned char)b;
        for (size_t pos = 0; pos < 8; pos++) {
            unsigned char block[9] = {0};
            block[pos] = one;
            cr_assert_eq(crc64(7, block, 9), reference_crc64(7, block, 9), "byte %u at %zu", b,
                         pos);
        }
    }
}

/* The little-endian CRC64 in an RDB file's last 8 bytes against crc64 of the rest. */
static int rdb_trailer_matches(const char *name) {
    size_t len;
    unsigned char *data = fixture_read(name, &len);
    cr_assert_gt(len, 8);
    uint64_t trailer = 0;
    for (int i = 7; i >= 0; i--)
        trailer = trailer << 8 | data[len - 8 + i];
    cr_assert_neq(trailer, 0, "%s has its checksum disabled", name);
    int match = crc64(0, data, len - 8) == trailer;
    free(data);
    return match;
}

Test(crc64_fixtures, real_rdb_trailers_match) {
    static const char *const files[] = {
        "hash-ziplist.rdb",       "zset-ziplist.rdb",       "list-quicklist.rdb",
        "corrupt_empty_keys.rdb", "librdb/100_lists.rdb",   "librdb/hash_lp_v11.rdb",
        "librdb/stream_v11.rdb",  "librdb/zset_lp_v11.rdb", "librdb/function2.rdb",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        cr_assert(rdb_trailer_matches(files[i]), "%s: CRC64 trailer mismatch", files[i]);
}

Test(crc64_fixtures, deliberately_bad_trailer_mismatches) {
    cr_assert_not(rdb_trailer_matches("librdb/invalid_chksum_v8.rdb"));
}

/* A seeded xorshift for the random-buffer comparisons. */
static uint64_t next_random(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

Test(crc64, clmul_vpclmul_and_slice8_agree_on_random_buffers_lengths_alignments_and_seeds) {
    cr_log_info("PCLMULQDQ %s, VPCLMULQDQ %s on this CPU",
                crc64_clmul_available() ? "available" : "absent",
                crc64_vpclmul_available() ? "available" : "absent");
    enum { MAX = 4096 + 64 };
    unsigned char *buf = malloc(MAX + 16);
    cr_assert_not_null(buf);
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < MAX + 16; i++)
        buf[i] = (unsigned char)next_random(&state);
    for (int round = 0; round < 3000; round++) {
        size_t offset = next_random(&state) % 16;
        size_t len = round < 600 ? (size_t)round : next_random(&state) % MAX;
        uint64_t seed = round % 3 == 0 ? 0 : next_random(&state);
        uint64_t a = crc64_slice8(seed, buf + offset, len);
        uint64_t b = crc64_clmul(seed, buf + offset, len);
        cr_assert_eq(a, b, "len %zu offset %zu seed %016llx", len, offset,
                     (unsigned long long)seed);
        uint64_t c = crc64_vpclmul(seed, buf + offset, len);
        cr_assert_eq(a, c, "vpclmul: len %zu offset %zu seed %016llx", len, offset,
                     (unsigned long long)seed);
        cr_assert_eq(crc64(seed, buf + offset, len), a);
    }
    free(buf);
}

Test(crc64, clmul_matches_bitwise_definition_on_long_buffers) {
    size_t len = 100000;
    unsigned char *buf = malloc(len);
    cr_assert_not_null(buf);
    fill_pattern(buf, len);
    for (size_t n = 64; n <= len; n = n * 3 + 1) {
        cr_assert_eq(crc64_clmul(0, buf, n), reference_crc64(0, buf, n), "len %zu", n);
        cr_assert_eq(crc64_vpclmul(0, buf, n), reference_crc64(0, buf, n), "len %zu", n);
    }
    cr_assert_eq(crc64_clmul(0, buf, len), reference_crc64(0, buf, len));
    cr_assert_eq(crc64_vpclmul(0, buf, len), reference_crc64(0, buf, len));
    free(buf);
}

Test(crc64, clmul_incremental_equals_one_shot_across_fold_boundaries) {
    enum { LEN = 1000 };
    unsigned char buf[LEN];
    fill_pattern(buf, LEN);
    uint64_t whole = crc64_slice8(0, buf, LEN);
    for (size_t split = 0; split <= LEN; split += 13) {
        uint64_t c = crc64_clmul(0, buf, split);
        cr_assert_eq(crc64_clmul(c, buf + split, LEN - split), whole, "split at %zu", split);
        c = crc64_vpclmul(0, buf, split);
        cr_assert_eq(crc64_vpclmul(c, buf + split, LEN - split), whole, "split at %zu", split);
    }
}

/* The folding paths start at 16 bytes: the first block, then whole blocks, then a
 * partial last block of 1..15 bytes folded in with byte shuffles, then the
 * reduction of the 128 folded bits to the CRC. Every length up to 300 (all of
 * those cases, with and without the four-lane loop), at every alignment, from a
 * zero and a non-zero start, in each implementation, against the bit-by-bit
 * definition. */
Test(crc64, every_short_length_and_alignment_matches_bitwise_in_each_implementation) {
    static unsigned char buf[300 + 16];
    fill_pattern(buf, sizeof buf);
    for (size_t offset = 0; offset < 16; offset++) {
        for (size_t len = 0; len <= 300; len++) {
            const unsigned char *p = buf + offset;
            for (int s = 0; s < 2; s++) {
                uint64_t seed = s ? 0xdeadbeefcafef00dULL ^ len : 0;
                uint64_t want = reference_crc64(seed, p, len);
                cr_assert_eq(crc64_slice8(seed, p, len), want, "slice8 len %zu", len);
                cr_assert_eq(crc64_clmul(seed, p, len), want, "clmul offset %zu len %zu seed %d",
                             offset, len, s);
                cr_assert_eq(crc64_vpclmul(seed, p, len), want,
                             "vpclmul offset %zu len %zu seed %d", offset, len, s);
            }
        }
    }
}
