/* fixtures.c -- the shared RDB fixtures for unit tests (see fixtures.h).
 * Owns nothing beyond the buffers it hands back, which the caller frees. */
#include "test/unit/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/lzf.h"
#include "shake/crc64.h"

/* The fixture directory: $SHAKE_FIXTURES, or the shared tree next to the repo. */
static const char *fixture_dir(void) {
    const char *dir = getenv("SHAKE_FIXTURES");
    return dir != NULL && *dir != '\0' ? dir : "../shared/fixtures/rdb";
}

unsigned char *fixture_read(const char *name, size_t *len) {
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

uint64_t fixture_rdb_length(const unsigned char *data, size_t len, size_t *pos, int *special) {
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

char *fixture_rdb_string(const unsigned char *data, size_t len, size_t *pos, size_t *out_len) {
    int special;
    uint64_t n = fixture_rdb_length(data, len, pos, &special);
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
    uint64_t clen = fixture_rdb_length(data, len, pos, &special);
    uint64_t ulen = fixture_rdb_length(data, len, pos, &special);
    cr_assert_leq(*pos + clen, len);
    char *s = malloc(ulen);
    cr_assert_eq(rdb_lzf_decompress((const char *)data + *pos, clen, s, ulen), 0);
    *pos += clen;
    *out_len = ulen;
    return s;
}

size_t fixture_find_value(const unsigned char *data, size_t len, unsigned char type,
                          const char *key) {
    size_t klen = strlen(key);
    for (size_t i = 0; i + 2 + klen <= len; i++)
        if (data[i] == type && data[i + 1] == klen && memcmp(data + i + 2, key, klen) == 0)
            return i + 2 + klen;
    cr_assert_fail("key %s of type %u not found in fixture", key, type);
    return 0;
}

char *fixture_dump_blob(const char *payload, size_t len, unsigned char type, size_t *out) {
    const unsigned char *p = (const unsigned char *)payload;
    cr_assert_gt(len, 10);
    uint64_t trailer = 0;
    for (int i = 7; i >= 0; i--)
        trailer = trailer << 8 | p[len - 8 + i];
    cr_assert_eq(crc64(0, p, len - 8), trailer, "DUMP payload CRC64");
    cr_assert_eq(p[0], type);
    size_t pos = 1;
    char *blob = fixture_rdb_string(p, len - 10, &pos, out);
    cr_assert_eq(pos, len - 10, "the value fills the payload up to the trailer");
    return blob;
}
