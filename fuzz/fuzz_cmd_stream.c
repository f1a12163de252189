/* fuzz_cmd_stream.c -- libFuzzer target: a replication command stream (or an AOF
 * tail) through reader/cmd_stream.h, fed whole and in pieces whose sizes come from
 * the input bytes. Both feedings must give the same commands, dbs, offsets and
 * final status, and the offsets must add up: strictly increasing, and after
 * NEED_MORE the last command's offset plus the buffered bytes is what was fed.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/fuzz_common.h"
#include "reader/cmd_stream.h"

#define FUZZ_START_OFFSET 1000u

struct cmd_result {
    enum cmd_stream_status status; /* NEED_MORE (input ended) or ERR */
    uint64_t digest;
    uint64_t commands;
};

static enum cmd_stream_status cmd_drain(struct cmd_stream *s, struct cmd_result *r,
                                        uint64_t fed_end) {
    for (;;) {
        struct shake_entry *e = NULL;
        uint64_t before = cmd_stream_offset(s);
        enum cmd_stream_status st = cmd_stream_next(s, &e);
        if (st == CMD_STREAM_NEED_MORE) {
            FUZZ_CHECK(cmd_stream_offset(s) + cmd_stream_buffered(s) == fed_end,
                       "offset %llu + buffered %zu != fed %llu",
                       (unsigned long long)cmd_stream_offset(s), cmd_stream_buffered(s),
                       (unsigned long long)fed_end);
            return st;
        }
        if (st == CMD_STREAM_ERR) {
            FUZZ_CHECK(cmd_stream_error(s)[0] != '\0', "CMD_STREAM_ERR without an error text");
            return st;
        }
        FUZZ_CHECK(e != NULL && e->kind == SHAKE_ENTRY_CMD && e->argc > 0, "bad CMD entry");
        FUZZ_CHECK(e->offset > before && e->offset <= fed_end, "offset %llu not in (%llu, %llu]",
                   (unsigned long long)e->offset, (unsigned long long)before,
                   (unsigned long long)fed_end);
        FUZZ_CHECK(e->db == cmd_stream_db(s), "entry db %d, stream db %d", e->db, cmd_stream_db(s));
        for (int i = 0; i < e->argc; i++)
            FUZZ_CHECK(e->argv[i][e->argv_len[i]] == '\0', "argv[%d] not NUL-terminated", i);
        r->digest = fuzz_hash_entry(r->digest, e);
        r->commands++;
        shake_entry_free(e);
    }
}

static struct cmd_result cmd_parse(const uint8_t *data, size_t size, size_t piece_max) {
    struct cmd_result r = {.status = CMD_STREAM_NEED_MORE, .digest = FUZZ_HASH_INIT};
    struct cmd_stream *s = cmd_stream_new(0, FUZZ_START_OFFSET, 0);
    FUZZ_CHECK(s != NULL, "cmd_stream_new failed");
    size_t fed = 0;
    while (fed < size && r.status == CMD_STREAM_NEED_MORE) {
        size_t n = piece_max == 0 ? size : fuzz_piece(data, size, fed, piece_max);
        FUZZ_CHECK(cmd_stream_feed(s, (const char *)data + fed, n) == CMD_STREAM_OK, "feed failed");
        fed += n;
        r.status = cmd_drain(s, &r, FUZZ_START_OFFSET + fed);
    }
    r.digest = FUZZ_HASH_VALUE(r.digest, r.status);
    cmd_stream_free(s);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct cmd_result whole = cmd_parse(data, size, 0);
    struct cmd_result pieces = cmd_parse(data, size, 23);
    FUZZ_CHECK(whole.status == pieces.status && whole.commands == pieces.commands &&
                   whole.digest == pieces.digest,
               "fed whole: status %d, %llu commands; in pieces: status %d, %llu commands",
               (int)whole.status, (unsigned long long)whole.commands, (int)pieces.status,
               (unsigned long long)pieces.commands);
    return 0;
}
