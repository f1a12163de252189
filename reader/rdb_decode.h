/* rdb_decode.h -- the streaming RDB decoder.
 *
 * Feel of hiredis' redisReader: feed bytes as they arrive (from a file or a socket),
 * then pull entries until it asks for more. Memory is bounded by the largest single
 * element (one string, one listpack blob) plus one chunk, never by a whole key:
 * values bigger than `raw_max` are emitted as a sequence of CHUNK entries.
 *
 * It validates as it goes (lengths, encodings, CRC64 trailer) and every error names
 * the byte offset and, where known, the key. It never exits, never prints.
 */
#ifndef SHAKE_RDB_DECODE_H
#define SHAKE_RDB_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "shake/entry.h"

enum rdb_status {
    RDB_OK,        /* *out holds an entry, owned by the caller now */
    RDB_NEED_MORE, /* feed more bytes (or call rdb_decoder_finish at end of input) */
    RDB_DONE,      /* the EOF opcode and checksum were read and verified */
    RDB_ERR,       /* see rdb_decoder_error(); the decoder cannot continue */
};

/* Options; a 0 in raw_max, chunk_max_bytes, chunk_max_items or max_element means
 * the default (16 MiB, 1 MiB, 1024 items, 1 GiB). Sizes of raw values count the
 * bytes as stored (LZF-compressed strings count compressed). */
struct rdb_decoder_options {
    int source;               /* copied into every entry */
    size_t raw_max;           /* a value whose RDB encoding is larger becomes chunks */
    size_t chunk_max_bytes;   /* bytes of items per CHUNK entry */
    size_t chunk_max_items;   /* items per CHUNK entry */
    uint64_t restorable_types;/* bit t set: RDB type t may pass as a raw KEY entry;
                                 other types are always decoded into chunks */
    int64_t now_ms;           /* keys that expired before this are skipped; 0: keep all */
    size_t max_element;       /* an element (string, blob) longer than this is an error */
    int raw_shallow_check;    /* 1: for KEY entries check packed blobs' headers and
                                 emptiness only; 0: walk every blob fully (default) */
};

struct rdb_decoder_stats {
    int rdb_version;          /* from the header */
    int is_valkey;            /* header magic was VALKEY */
    uint64_t keys;            /* keys emitted (KEY entries + first CHUNKs) */
    uint64_t expired_skipped; /* keys already expired at load time */
    uint64_t empty_skipped;   /* empty collections, skipped as Redis does */
    uint64_t functions;       /* function libraries emitted */
    uint64_t chunked_keys;    /* keys emitted as chunks */
    int checksum_verified;    /* 1 when the CRC64 trailer matched, 0 when it was 0 or absent */
};

struct rdb_decoder;

struct rdb_decoder *rdb_decoder_new(const struct rdb_decoder_options *options);
void rdb_decoder_free(struct rdb_decoder *decoder);

/* Append bytes to the input. Returns RDB_OK or RDB_ERR (out of memory). */
enum rdb_status rdb_decoder_feed(struct rdb_decoder *decoder, const char *buf, size_t len);
/* Feeding without a copy: room for up to `want` more bytes at the end of the
 * input (NULL, with the error set, when out of memory); write into it, then
 * rdb_decoder_commit() the bytes actually written. Nothing else may be called in
 * between. */
char *rdb_decoder_reserve(struct rdb_decoder *decoder, size_t want);
void rdb_decoder_commit(struct rdb_decoder *decoder, size_t n);
/* Say that no more input will come: a later rdb_decoder_next() that would need
 * more bytes reports a truncated file instead of RDB_NEED_MORE. */
void rdb_decoder_finish(struct rdb_decoder *decoder);
/* Pull the next entry. */
enum rdb_status rdb_decoder_next(struct rdb_decoder *decoder, struct shake_entry **out);

/* "offset N: key 'k': what went wrong" */
const char *rdb_decoder_error(const struct rdb_decoder *decoder);
/* Bytes of input consumed so far (the offset of the next unread byte). It can move
 * back once per key: a value walked for a KEY entry that turns out bigger than
 * raw_max is re-read from its first byte as CHUNKs. KEY/CHUNK entries carry in
 * `offset` where their record began (the first EXPIRETIME/IDLE/FREQ opcode before
 * the key, else its type byte). */
uint64_t rdb_decoder_offset(const struct rdb_decoder *decoder);
/* The furthest rdb_decoder_offset() has been: it never moves back. For progress. */
uint64_t rdb_decoder_progress(const struct rdb_decoder *decoder);
/* After RDB_DONE: the input bytes fed beyond the end of the RDB (an AOF tail, a
 * replication stream). Valid until the next call on the decoder. */
void rdb_decoder_unconsumed(const struct rdb_decoder *decoder, const char **buf, size_t *len);
const struct rdb_decoder_stats *rdb_decoder_stats(const struct rdb_decoder *decoder);

#endif
