/* fuzz_rdb_run.h -- one decoding of a whole RDB through the streaming decoder, for
 * fuzz_rdb.c and fuzz_dump.c: feed (whole, or in pieces sized by the input), pull
 * every entry, check the decoder's promises, free everything, and return a digest
 * of what came out so a target can check that feeding in pieces changes nothing.
 *
 * Promises checked (a broken one aborts, which libFuzzer reports as a crash):
 *  - RDB_ERR always comes with an error text, and stays RDB_ERR;
 *  - a key's CHUNKs run FIRST ... LAST with the same key, and nothing else
 *    (a KEY, a FUNCTION, the end of the file) comes between them;
 *  - a KEY entry's raw bytes never exceed raw_max (bigger values become chunks);
 *  - the offset never passes the bytes fed.
 */
#ifndef SHAKE_FUZZ_RDB_RUN_H
#define SHAKE_FUZZ_RDB_RUN_H

#include <string.h>

#include "fuzz/fuzz_common.h"
#include "reader/rdb_decode.h"

/* Every RDB type may pass raw, for the KEY path. */
#define FUZZ_ALL_TYPES UINT64_MAX

struct fuzz_rdb_result {
    enum rdb_status status; /* RDB_DONE or RDB_ERR */
    uint64_t digest;        /* of every entry, in order */
    uint64_t entries;
    char error[600]; /* RDB_ERR: the decoder's error text */
};

/* Tracks one key's run of CHUNK entries across pulls. */
struct fuzz_chunk_run {
    int open;
    char *key;
    size_t key_len;
};

static void fuzz_chunk_run_check(struct fuzz_chunk_run *run, const struct shake_entry *e,
                                 const struct rdb_decoder_options *opt) {
    if (e->kind != SHAKE_ENTRY_CHUNK) {
        FUZZ_CHECK(!run->open, "entry kind %d inside a key's chunks", (int)e->kind);
        if (e->kind == SHAKE_ENTRY_KEY)
            FUZZ_CHECK(e->raw_len <= opt->raw_max, "KEY raw_len %zu > raw_max %zu", e->raw_len,
                       opt->raw_max);
        return;
    }
    if (e->chunk_flags & SHAKE_CHUNK_FIRST) {
        FUZZ_CHECK(!run->open, "a FIRST chunk before the previous key's LAST");
        free(run->key);
        run->key = malloc(e->key_len + 1);
        FUZZ_CHECK(run->key != NULL, "out of memory");
        memcpy(run->key, e->key, e->key_len);
        run->key_len = e->key_len;
        run->open = 1;
    } else {
        FUZZ_CHECK(run->open, "a chunk without FIRST outside a key");
        FUZZ_CHECK(e->key_len == run->key_len && memcmp(e->key, run->key, e->key_len) == 0,
                   "a key's chunks changed key");
    }
    if (e->chunk_flags & SHAKE_CHUNK_LAST) run->open = 0;
}

/* Pulls until the decoder wants more or stops. */
static enum rdb_status fuzz_rdb_drain(struct rdb_decoder *d, const struct rdb_decoder_options *opt,
                                      struct fuzz_chunk_run *run, struct fuzz_rdb_result *r,
                                      size_t fed) {
    for (;;) {
        struct shake_entry *e = NULL;
        enum rdb_status st = rdb_decoder_next(d, &e);
        FUZZ_CHECK(rdb_decoder_offset(d) <= fed, "offset %llu past %zu bytes fed",
                   (unsigned long long)rdb_decoder_offset(d), fed);
        if (st != RDB_OK) {
            FUZZ_CHECK(e == NULL, "an entry with status %d", (int)st);
            return st;
        }
        FUZZ_CHECK(e != NULL, "RDB_OK without an entry");
        fuzz_chunk_run_check(run, e, opt);
        r->digest = fuzz_hash_entry(r->digest, e);
        r->entries++;
        shake_entry_free(e);
    }
}

/* Decodes data with opt; piece_max 0 feeds it whole. */
static struct fuzz_rdb_result fuzz_rdb_decode(const uint8_t *data, size_t size,
                                              const struct rdb_decoder_options *opt,
                                              size_t piece_max) {
    struct fuzz_rdb_result r = {.status = RDB_NEED_MORE, .digest = FUZZ_HASH_INIT};
    struct fuzz_chunk_run run = {0};
    struct rdb_decoder *d = rdb_decoder_new(opt);
    FUZZ_CHECK(d != NULL, "rdb_decoder_new failed");
    size_t fed = 0;
    enum rdb_status st = RDB_NEED_MORE;
    while (fed < size && st == RDB_NEED_MORE) {
        size_t n = piece_max == 0 ? size : fuzz_piece(data, size, fed, piece_max);
        FUZZ_CHECK(rdb_decoder_feed(d, (const char *)data + fed, n) == RDB_OK, "feed failed");
        fed += n;
        st = fuzz_rdb_drain(d, opt, &run, &r, fed);
    }
    if (st == RDB_NEED_MORE) {
        rdb_decoder_finish(d);
        st = fuzz_rdb_drain(d, opt, &run, &r, fed);
        FUZZ_CHECK(st != RDB_NEED_MORE, "RDB_NEED_MORE after rdb_decoder_finish");
    }
    if (st == RDB_ERR) {
        FUZZ_CHECK(rdb_decoder_error(d)[0] != '\0', "RDB_ERR without an error text");
        snprintf(r.error, sizeof(r.error), "%s", rdb_decoder_error(d));
        struct shake_entry *e = NULL;
        FUZZ_CHECK(rdb_decoder_next(d, &e) == RDB_ERR && e == NULL,
                   "the decoder went on after RDB_ERR");
    } else {
        FUZZ_CHECK(!run.open, "the RDB ended inside a key's chunks");
        const char *tail;
        size_t tail_len;
        rdb_decoder_unconsumed(d, &tail, &tail_len);
        /* Pieces stop being fed at RDB_DONE, so the tail itself differs between
         * feedings; where the RDB ended must not. */
        uint64_t end = rdb_decoder_offset(d);
        FUZZ_CHECK(end + tail_len == fed &&
                       (tail_len == 0 || memcmp(tail, data + end, tail_len) == 0),
                   "unconsumed tail of %zu bytes is not the input after offset %llu", tail_len,
                   (unsigned long long)end);
        r.digest = FUZZ_HASH_VALUE(r.digest, end);
    }
    (void)rdb_decoder_stats(d);
    r.status = st;
    free(run.key);
    rdb_decoder_free(d);
    return r;
}

/* Decodes the input whole and in pieces under the same options; both must agree:
 * on a good RDB the same entries, on a bad one an error. When values are decoded
 * it must be the same error. When they may pass raw it need not, nor need the
 * entries before it: a raw value switches to chunks once it outgrows raw_max, and
 * with pieces that can happen before the walk reaches a corruption that the raw
 * walk alone would find first (the decode walk checks more, LZF contents say). */
static void fuzz_rdb_decode_twice(const uint8_t *data, size_t size,
                                  const struct rdb_decoder_options *opt, size_t piece_max) {
    struct fuzz_rdb_result whole = fuzz_rdb_decode(data, size, opt, 0);
    struct fuzz_rdb_result pieces = fuzz_rdb_decode(data, size, opt, piece_max);
    FUZZ_CHECK(whole.status == pieces.status,
               "fed whole: status %d (%s); in pieces: status %d (%s)", (int)whole.status,
               whole.error, (int)pieces.status, pieces.error);
    if (whole.status == RDB_ERR && opt->restorable_types == 0)
        FUZZ_CHECK(strcmp(whole.error, pieces.error) == 0, "fed whole: '%s'; in pieces: '%s'",
                   whole.error, pieces.error);
    else if (whole.status == RDB_DONE)
        FUZZ_CHECK(whole.entries == pieces.entries && whole.digest == pieces.digest,
                   "fed whole: %llu entries; in pieces: %llu entries%s",
                   (unsigned long long)whole.entries, (unsigned long long)pieces.entries,
                   whole.entries == pieces.entries ? " (their contents differ)" : "");
}

/* The two ways shake decodes: values passed raw as KEY entries where the target can
 * RESTORE them (small raw_max, so bigger ones switch to chunks), and everything
 * decoded into small CHUNKs with expired keys skipped. Elements are capped as in
 * production (shake/restore.c, shake/sync.c: 4 GB): the decoder must never allocate
 * for a length that the input only declares, and libFuzzer's malloc limit (the
 * -rss_limit_mb) catches it if it does. */
static const struct rdb_decoder_options fuzz_rdb_raw_options = {
    .raw_max = 48,
    .chunk_max_bytes = 64,
    .chunk_max_items = 3,
    .restorable_types = FUZZ_ALL_TYPES,
    .max_element = 4ULL << 30,
};
static const struct rdb_decoder_options fuzz_rdb_decode_options = {
    .raw_max = 48,
    .chunk_max_bytes = 32,
    .chunk_max_items = 2,
    .restorable_types = 0,
    .now_ms = 1700000000000LL,
    .max_element = 4ULL << 30,
};

#endif
