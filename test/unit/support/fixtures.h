/* fixtures.h -- the shared RDB fixtures for unit tests, and the few RDB reads
 * needed to pull a packed blob (listpack, ziplist, intset, zipmap) out of a
 * fixture file or a DUMP payload.
 *
 * The fixture directory is $SHAKE_FIXTURES, or ../shared/fixtures/rdb (relative
 * to the repo root, where the tests run). A missing fixture skips the calling test
 * and says so on stderr: criterion hides skips at its default verbosity. Every
 * other problem fails the calling test (criterion asserts); nothing returns an
 * error. Blobs come back in exact-size malloc'd buffers so that ASan sees any read
 * past them; the caller frees them.
 */
#ifndef SHAKE_TEST_SUPPORT_FIXTURES_H
#define SHAKE_TEST_SUPPORT_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

/* The fixture file `name` (relative to the fixture dir) read whole into a malloc'd
 * buffer; its size in *len. Skips the test (visibly) when the file is absent. */
unsigned char *fixture_read(const char *name, size_t *len);

/* An RDB length at data[*pos], advancing *pos; *special is set for the 11xxxxxx
 * string encodings (the value is then the encoding's low six bits). */
uint64_t fixture_rdb_length(const unsigned char *data, size_t len, size_t *pos, int *special);

/* The RDB string at data[*pos] (plain or LZF-compressed), advancing *pos, in an
 * exact-size malloc'd buffer; its size in *out_len. */
char *fixture_rdb_string(const unsigned char *data, size_t len, size_t *pos, size_t *out_len);

/* The offset just after <type><key> in an RDB file: where the key's value starts.
 * Fails the test when the key is not there. */
size_t fixture_find_value(const unsigned char *data, size_t len, unsigned char type,
                          const char *key);

/* Checks a DUMP payload's trailer (RDB version, CRC64 over all before it) and its
 * type byte, and returns the blob in its string value (see fixture_rdb_string). */
char *fixture_dump_blob(const char *payload, size_t len, unsigned char type, size_t *out);

#endif
