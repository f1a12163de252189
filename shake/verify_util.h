/* verify_util.h -- the pure rules of `shake verify`: which keys the sample takes,
 * when two TTLs are equal, how a key is printed, which source keys could have
 * become a given target key, and how replies compare.
 *
 * No I/O: everything here is a function of its arguments, and unit-tested in
 * test/unit/test_verify.c.
 */
#ifndef SHAKE_VERIFY_UTIL_H
#define SHAKE_VERIFY_UTIL_H

#include <hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

#define VERIFY_MAX_DBS 64

/* 1 when `key` is in a deterministic sample of `percent` (0 < percent <= 100)
 * of all keys: the same key is always in or out, whatever the server. */
int verify_sampled(const char *key, size_t len, double percent);

/* TTLs as PTTL / HPEXPIRETIME give them (-1: none). 1 when equal: both without,
 * or both with, within tolerance_ms. */
int verify_ttl_equal(long long a, long long b, long long tolerance_ms);

/* `bytes` as a quoted C-like string ("a\x00b\"c"), cut after `max` input bytes
 * with "...(N bytes)"; always NUL-terminated in `out`. */
void verify_escape(const char *bytes, size_t len, size_t max, char *out, size_t outlen);

/* The dbs listed by an INFO keyspace text ("db0:keys=1,..."), ascending, at most
 * `max`; returns how many. */
int verify_parse_keyspace(const char *info, int *dbs, int max);

/* A candidate source key for a target key: the key bytes are the caller's to
 * free. */
struct verify_candidate {
    char *key;
    size_t len;
};

/* The source key names that the config's rename_key_prefix rules could have
 * turned into `key` (the key itself included). Returns how many (at most
 * `max`), -1 when out of memory. Whether a candidate really maps there is the
 * filter's to say. */
int verify_rename_candidates(const struct conf_filter *filter, const char *key, size_t len,
                             struct verify_candidate *out, int max);

/* 1 when two replies are equal: same type and the same content, recursively. */
int verify_reply_equal(const redisReply *a, const redisReply *b);
/* The value of `field` in a flat [name, value, name, value...] reply, or NULL. */
const redisReply *verify_reply_field(const redisReply *map, const char *field);
/* A reply as short text for messages ("1-0", "(nil)", "[3 items]"). */
void verify_reply_text(const redisReply *reply, char *out, size_t outlen);

#endif
