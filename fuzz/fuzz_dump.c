/* fuzz_dump.c -- libFuzzer target: one value, as DUMP returns it without its
 * footer (type byte, then the value's bytes), wrapped into the smallest RDB so the
 * per-type value walkers see fuzzed bytes from their first byte on instead of
 * after a header and a key the fuzzer would have to get right first:
 *
 *   REDIS0011 | SELECTDB 0 | type | key "k" | value bytes | EOF | CRC 0
 *
 * The first input byte picks the type: its low 7 bits modulo 26 (every REDIS type
 * code), with the high bit set the header is VALKEY080 instead (Valkey's meaning
 * of 22 and 23). The value is then decoded raw (full blob validation) and into
 * chunks, whole and in pieces, as in fuzz_rdb.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_rdb_run.h"

#define DUMP_TYPE_COUNT 26 /* RDB_TYPE_STRING .. RDB_TYPE_HASH_LISTPACK_EX */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int valkey = (data[0] & 0x80) != 0;
    uint8_t type = (uint8_t)((data[0] & 0x7f) % DUMP_TYPE_COUNT);
    static const uint8_t select_db0[] = {0xfe, 0x00};
    static const uint8_t key_k[] = {0x01, 'k'};
    static const uint8_t trailer[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t value_len = size - 1;
    size_t len = 9 + sizeof(select_db0) + 1 + sizeof(key_k) + value_len + sizeof(trailer);
    uint8_t *rdb = malloc(len);
    if (rdb == NULL) return 0;
    size_t at = 0;
    memcpy(rdb, valkey ? "VALKEY080" : "REDIS0011", 9);
    at += 9;
    memcpy(rdb + at, select_db0, sizeof(select_db0));
    at += sizeof(select_db0);
    rdb[at++] = type;
    memcpy(rdb + at, key_k, sizeof(key_k));
    at += sizeof(key_k);
    if (value_len > 0) memcpy(rdb + at, data + 1, value_len);
    at += value_len;
    memcpy(rdb + at, trailer, sizeof(trailer));

    fuzz_rdb_decode_twice(rdb, len, &fuzz_rdb_raw_options, 13);
    fuzz_rdb_decode_twice(rdb, len, &fuzz_rdb_decode_options, 5);
    free(rdb);
    return 0;
}
