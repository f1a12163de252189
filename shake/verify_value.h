/* verify_value.h -- compares one source key with one target key: type, value and
 * TTL, reading big values in chunks so memory is bounded by a chunk, never by the
 * key.
 *
 * Per type (docs/cutover.md says the same for operators):
 *  - string: STRLEN, then GETRANGE in chunks, bytes equal;
 *  - list:   LLEN, then LRANGE chunk by chunk, element by element;
 *  - set:    SCARD, then SSCAN the source and SMISMEMBER each chunk on the target
 *            (equal sizes and every source member present = equal sets; SSCAN's
 *            repeats do no harm);
 *  - zset:   ZCARD, then ZRANGE WITHSCORES chunks on both sides in rank order,
 *            member and score (as Redis prints it) equal;
 *  - hash:   HLEN, then HSCAN the source and HMGET each chunk on the target; field
 *            TTLs with HPEXPIRETIME when the server has it (Redis 7.4+);
 *  - stream: XINFO STREAM (length, last-generated-id, max-deleted-entry-id,
 *            entries-added, recorded-first-entry-id), XRANGE in chunks, XINFO
 *            GROUPS (name, consumers, pending, last-delivered-id, entries-read),
 *            XINFO CONSUMERS (name, pending) and the PEL by XPENDING chunks (id,
 *            consumer, delivery count); times are not compared;
 *  - TTL:    PTTL, -1 on both sides or within the tolerance.
 *
 * Ownership: a verify_value context borrows nothing past a call.
 */
#ifndef SHAKE_VERIFY_VALUE_H
#define SHAKE_VERIFY_VALUE_H

#include <stddef.h>

struct client;

enum verify_outcome {
    VERIFY_EQUAL,
    VERIFY_DIFFERENT,   /* type, value or TTL differ: `why` says which */
    VERIFY_MISSING,     /* the target has no such key */
    VERIFY_SOURCE_GONE, /* the source key vanished (deleted or expired meanwhile) */
    VERIFY_FAILED,      /* a command failed: `why` is the error */
};

struct verify_key_ref {
    struct client *client;
    int db;
    const char *key;
    size_t len;
};

struct verify_value {
    long long ttl_tolerance_ms;
    long chunk;          /* elements per read */
    int hash_ttls;       /* -1 unknown, 0 the source has no HPEXPIRETIME, 1 compared */
    long long hash_ttl_keys_skipped; /* hashes whose field TTLs could not be compared */
};

void verify_value_init(struct verify_value *value, long long ttl_tolerance_ms);

/* Compare `source` with `target`. `type` receives the source's type name
 * ("string", ..., or the target's when the source is gone). */
enum verify_outcome verify_value_compare(struct verify_value *value,
                                         const struct verify_key_ref *source,
                                         const struct verify_key_ref *target, char *type,
                                         size_t typelen, char *why, size_t whylen);

/* TYPE of a key ("none" when absent); 0, or -1 with the error in why. */
int verify_value_type(const struct verify_key_ref *ref, char *type, size_t typelen, char *why,
                      size_t whylen);

#endif
