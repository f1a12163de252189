/* decode.h -- `shake decode FILE...`: runs RDB files through the decoder alone, with
 * no server, and reports what it found and how fast. A check that a backup is
 * readable before a restore, and the decoder's own benchmark (S5). */
#ifndef SHAKE_DECODE_H
#define SHAKE_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct decode_result {
    uint64_t bytes;
    uint64_t keys;            /* KEY entries and first chunks */
    uint64_t chunks;          /* CHUNK entries */
    uint64_t functions;
    uint64_t skipped_expired;
    uint64_t skipped_empty;
    double seconds;           /* wall time */
    double cpu_seconds;       /* this process, user + system */
};

/* Decode `files` in order, fully (every value walked and checked, as a restore
 * does; `chunks` nonzero decodes every value into items as well). Returns 0, or -1
 * with a one-line message naming the file and offset in err. */
int decode_files(char **files, int count, int chunks, struct decode_result *result, char *err,
                 size_t errlen);

#endif
