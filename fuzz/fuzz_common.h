/* fuzz_common.h -- what the libFuzzer targets in fuzz/ share: turning a crash-worthy
 * observation into a crash, and a digest that lets a target compare two decodings of
 * the same input (fed whole against fed in pieces) without keeping the entries.
 *
 * Owns no state. Header-only so each target stays one file plus this.
 */
#ifndef SHAKE_FUZZ_COMMON_H
#define SHAKE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "shake/entry.h"

/* A broken invariant is a finding: print why, then crash so libFuzzer saves the input. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz invariant failed at %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* FNV-1a, 64 bits: enough to tell two entry sequences apart. */
static inline uint64_t fuzz_hash(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FUZZ_HASH_INIT 0xcbf29ce484222325ULL
#define FUZZ_HASH_VALUE(h, v) fuzz_hash((h), &(v), sizeof(v))

/* Folds a byte string into h; reading every byte also lets ASan see a pointer that
 * runs past its buffer. */
static inline uint64_t fuzz_hash_bytes(uint64_t h, const char *p, size_t n) {
    h = FUZZ_HASH_VALUE(h, n);
    if (n > 0) h = fuzz_hash(h, p, n);
    return h;
}

/* Everything an entry says, folded into h. */
static inline uint64_t fuzz_hash_entry(uint64_t h, const struct shake_entry *e) {
    int kind = (int)e->kind;
    h = FUZZ_HASH_VALUE(h, kind);
    h = FUZZ_HASH_VALUE(h, e->db);
    h = FUZZ_HASH_VALUE(h, e->offset);
    if (e->kind == SHAKE_ENTRY_CMD) {
        h = FUZZ_HASH_VALUE(h, e->argc);
        for (int i = 0; i < e->argc; i++)
            h = fuzz_hash_bytes(h, e->argv[i], e->argv_len[i]);
        return h;
    }
    h = fuzz_hash_bytes(h, e->key, e->key_len);
    if (e->kind == SHAKE_ENTRY_FUNCTION) return h;
    int type = (int)e->type;
    h = FUZZ_HASH_VALUE(h, type);
    h = FUZZ_HASH_VALUE(h, e->expire_ms);
    h = FUZZ_HASH_VALUE(h, e->idle_s);
    h = FUZZ_HASH_VALUE(h, e->freq);
    if (e->kind == SHAKE_ENTRY_KEY) {
        h = FUZZ_HASH_VALUE(h, e->rdb_type);
        return fuzz_hash_bytes(h, e->raw, e->raw_len);
    }
    h = FUZZ_HASH_VALUE(h, e->chunk_flags);
    h = FUZZ_HASH_VALUE(h, e->nitems);
    for (size_t i = 0; i < e->nitems; i++) {
        const struct shake_item *it = &e->items[i];
        int item_kind = (int)it->kind;
        h = FUZZ_HASH_VALUE(h, item_kind);
        h = fuzz_hash_bytes(h, it->a.ptr, it->a.len);
        h = fuzz_hash_bytes(h, it->b.ptr, it->b.len);
        /* Scores are compared by bits: NaN must equal NaN here. */
        h = FUZZ_HASH_VALUE(h, it->score);
        h = FUZZ_HASH_VALUE(h, it->expire_ms);
        h = FUZZ_HASH_VALUE(h, it->count);
        h = FUZZ_HASH_VALUE(h, it->length);
        h = FUZZ_HASH_VALUE(h, it->seen_ms);
        h = FUZZ_HASH_VALUE(h, it->active_ms);
        h = FUZZ_HASH_VALUE(h, it->delivery_ms);
        h = FUZZ_HASH_VALUE(h, it->id);
        h = FUZZ_HASH_VALUE(h, it->id2);
    }
    return h;
}

/* The size of the next piece to feed, taken from the input's own bytes: a byte at
 * the current position picks 1..max, so mutations move the split points and every
 * element boundary gets hit mid-element sooner or later. */
static inline size_t fuzz_piece(const uint8_t *data, size_t size, size_t fed, size_t max) {
    size_t left = size - fed;
    size_t n = 1 + (size_t)data[fed] % max;
    return n < left ? n : left;
}

#endif
