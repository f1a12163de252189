/* fuzz_rdb.c -- libFuzzer target: a whole RDB file through the streaming decoder
 * (reader/rdb_decode.h), once with values passed raw (KEY entries, switching to
 * CHUNKs past a small raw_max) and once fully decoded into small CHUNKs; each is
 * fed whole and in pieces whose sizes come from the input bytes, and the two must
 * produce the same entries. See fuzz_rdb_run.h for the promises checked.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/fuzz_rdb_run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_rdb_decode_twice(data, size, &fuzz_rdb_raw_options, 61);
    fuzz_rdb_decode_twice(data, size, &fuzz_rdb_decode_options, 7);
    return 0;
}
