/* verify_value.c -- one key against one key, type by type, in chunks (see
 * verify_value.h). Must not write to either side, nor hold more than one chunk of
 * a value per side.
 */
#include "shake/verify_value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shake/client.h"
#include "shake/verify_util.h"

#define VERIFY_STRING_CHUNK (1024 * 1024)
#define VERIFY_CHUNK 500
#define VERIFY_SHOW 48 /* bytes of a value shown in a message */

typedef enum verify_outcome outcome;

void verify_value_init(struct verify_value *value, long long ttl_tolerance_ms) {
    memset(value, 0, sizeof(*value));
    value->ttl_tolerance_ms = ttl_tolerance_ms;
    value->chunk = VERIFY_CHUNK;
    value->hash_ttls = -1;
}

/* --- commands ------------------------------------------------------------------- */

/* Run a command in the ref's db. An error reply is a failure too: NULL, with the
 * node and the error in why. */
static redisReply *vv_vcall(const struct verify_key_ref *ref, char *why, size_t whylen,
                            const char *fmt, va_list ap) {
    if (client_select(ref->client, ref->db, why, whylen) != 0) return NULL;
    redisReply *reply = client_vcommand(ref->client, why, whylen, fmt, ap);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        char key[128];
        verify_escape(ref->key, ref->len, 60, key, sizeof(key));
        snprintf(why, whylen, "%s %s: key %s: %s", client_label(ref->client),
                 client_address(ref->client), key, reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

static redisReply *vv_call(const struct verify_key_ref *ref, char *why, size_t whylen,
                           const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = vv_vcall(ref, why, whylen, fmt, ap);
    va_end(ap);
    return reply;
}

/* A command answering an integer. */
static int vv_integer(const struct verify_key_ref *ref, long long *out, char *why, size_t whylen,
                      const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = vv_vcall(ref, why, whylen, fmt, ap);
    va_end(ap);
    if (reply == NULL) return -1;
    int ok = reply->type == REDIS_REPLY_INTEGER;
    if (ok) *out = reply->integer;
    else snprintf(why, whylen, "%s %s: unexpected reply type %d", client_label(ref->client),
                  client_address(ref->client), reply->type);
    freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* A command built from a word, the key, and `count` more arguments. */
static redisReply *vv_call_keyed(const struct verify_key_ref *ref, const char *command,
                                 char *const *args, const size_t *lens, size_t count, char *why,
                                 size_t whylen) {
    const char **argv = malloc((count + 2) * sizeof(*argv));
    size_t *argvlen = malloc((count + 2) * sizeof(*argvlen));
    redisReply *reply = NULL;
    if (argv == NULL || argvlen == NULL) {
        snprintf(why, whylen, "out of memory");
    } else if (client_select(ref->client, ref->db, why, whylen) == 0) {
        argv[0] = command;
        argvlen[0] = strlen(command);
        argv[1] = ref->key;
        argvlen[1] = ref->len;
        for (size_t i = 0; i < count; i++) {
            argv[i + 2] = args[i];
            argvlen[i + 2] = lens[i];
        }
        reply = client_command_argv(ref->client, why, whylen, (int)(count + 2), argv, argvlen);
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "%s %s: %s: %s", client_label(ref->client),
                     client_address(ref->client), command, reply->str);
            freeReplyObject(reply);
            reply = NULL;
        }
    }
    free(argv);
    free(argvlen);
    return reply;
}

static void vv_show(const redisReply *reply, char *out, size_t len) {
    verify_reply_text(reply, out, len);
}

/* Sizes (LLEN, SCARD, ...) must agree before elements are compared. */
static outcome vv_sizes(const struct verify_key_ref *s, const struct verify_key_ref *t,
                        const char *fmt, const char *what, long long *size, char *why,
                        size_t whylen) {
    long long a, b;
    if (vv_integer(s, &a, why, whylen, fmt, s->key, s->len) != 0 ||
        vv_integer(t, &b, why, whylen, fmt, t->key, t->len) != 0)
        return VERIFY_FAILED;
    *size = a;
    if (a == b) return VERIFY_EQUAL;
    snprintf(why, whylen, "%s: %lld on the source, %lld on the target", what, a, b);
    return VERIFY_DIFFERENT;
}

/* --- strings and lists ------------------------------------------------------------ */

static outcome vv_string(struct verify_value *vv, const struct verify_key_ref *s,
                         const struct verify_key_ref *t, char *why, size_t whylen) {
    (void)vv;
    long long size;
    outcome rc = vv_sizes(s, t, "STRLEN %b", "string length", &size, why, whylen);
    for (long long at = 0; rc == VERIFY_EQUAL && at < size; at += VERIFY_STRING_CHUNK) {
        long long end = at + VERIFY_STRING_CHUNK - 1;
        redisReply *a = vv_call(s, why, whylen, "GETRANGE %b %lld %lld", s->key, s->len, at, end);
        redisReply *b = a ? vv_call(t, why, whylen, "GETRANGE %b %lld %lld", t->key, t->len, at, end)
                          : NULL;
        if (b == NULL) rc = VERIFY_FAILED;
        else if (!verify_reply_equal(a, b)) {
            size_t i = 0, n = a->len < b->len ? a->len : b->len;
            while (i < n && a->str[i] == b->str[i]) i++;
            char x[160], y[160];
            verify_escape(a->str + i, a->len - i, VERIFY_SHOW, x, sizeof(x));
            verify_escape(b->str + i, b->len - i, VERIFY_SHOW, y, sizeof(y));
            snprintf(why, whylen, "string differs at byte %lld: %s on the source, %s on the target",
                     at + (long long)i, x, y);
            rc = VERIFY_DIFFERENT;
        }
        freeReplyObject(a);
        freeReplyObject(b);
    }
    return rc;
}

static outcome vv_list(struct verify_value *vv, const struct verify_key_ref *s,
                       const struct verify_key_ref *t, char *why, size_t whylen) {
    long long size;
    outcome rc = vv_sizes(s, t, "LLEN %b", "list length", &size, why, whylen);
    for (long long at = 0; rc == VERIFY_EQUAL && at < size; at += vv->chunk) {
        long long end = at + vv->chunk - 1;
        redisReply *a = vv_call(s, why, whylen, "LRANGE %b %lld %lld", s->key, s->len, at, end);
        redisReply *b = a ? vv_call(t, why, whylen, "LRANGE %b %lld %lld", t->key, t->len, at, end)
                          : NULL;
        if (b == NULL) rc = VERIFY_FAILED;
        for (size_t i = 0; rc == VERIFY_EQUAL && i < a->elements; i++) {
            const redisReply *y = i < b->elements ? b->element[i] : NULL;
            if (verify_reply_equal(a->element[i], y)) continue;
            char xs[160], ys[160];
            vv_show(a->element[i], xs, sizeof(xs));
            vv_show(y, ys, sizeof(ys));
            snprintf(why, whylen, "list index %lld: %s on the source, %s on the target",
                     at + (long long)i, xs, ys);
            rc = VERIFY_DIFFERENT;
        }
        freeReplyObject(a);
        freeReplyObject(b);
    }
    return rc;
}

/* --- sets and hashes: scan the source, look each chunk up on the target ------------- */

/* Split a SCAN-family reply into its cursor and its array. */
static int vv_scan_parts(const redisReply *reply, const char **cursor, const redisReply **items) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY)
        return -1;
    *cursor = reply->element[0]->str;
    *items = reply->element[1];
    return 0;
}

/* Members of a chunk as argument arrays (pointing into the reply). */
static int vv_gather(const redisReply *items, size_t step, char ***args, size_t **lens,
                     size_t *count) {
    *count = items->elements / step;
    *args = malloc((*count + 1) * sizeof(**args));
    *lens = malloc((*count + 1) * sizeof(**lens));
    if (*args == NULL || *lens == NULL) return -1;
    for (size_t i = 0; i < *count; i++) {
        (*args)[i] = items->element[i * step]->str;
        (*lens)[i] = items->element[i * step]->len;
    }
    return 0;
}

static outcome vv_set_chunk(const struct verify_key_ref *t, const redisReply *items, char *why,
                            size_t whylen) {
    char **args = NULL;
    size_t *lens = NULL, count = 0;
    outcome rc = VERIFY_EQUAL;
    if (items->elements == 0) return rc;
    if (vv_gather(items, 1, &args, &lens, &count) != 0) rc = VERIFY_FAILED;
    redisReply *found = rc == VERIFY_EQUAL
                            ? vv_call_keyed(t, "SMISMEMBER", args, lens, count, why, whylen)
                            : NULL;
    if (found == NULL) rc = VERIFY_FAILED;
    for (size_t i = 0; rc == VERIFY_EQUAL && i < found->elements && i < count; i++) {
        if (found->element[i]->integer == 1) continue;
        char member[160];
        verify_escape(args[i], lens[i], VERIFY_SHOW, member, sizeof(member));
        snprintf(why, whylen, "set member %s is not on the target", member);
        rc = VERIFY_DIFFERENT;
    }
    freeReplyObject(found);
    free(args);
    free(lens);
    return rc;
}

/* Compares a chunk of a source collection (one SCAN page) with the target. */
typedef outcome (*vv_chunk_fn)(struct verify_value *vv, const struct verify_key_ref *s,
                               const struct verify_key_ref *t, const redisReply *items, char *why,
                               size_t whylen);

/* Sizes first, then the source collection page by page (`scan_fmt`: SSCAN, HSCAN),
 * each page checked against the target: memory stays at one page. */
static outcome vv_scan_compare(struct verify_value *vv, const struct verify_key_ref *s,
                               const struct verify_key_ref *t, const char *size_fmt,
                               const char *size_what, const char *scan_fmt, vv_chunk_fn chunk,
                               char *why, size_t whylen) {
    long long size;
    outcome rc = vv_sizes(s, t, size_fmt, size_what, &size, why, whylen);
    char cursor[32] = "0";
    do {
        if (rc != VERIFY_EQUAL) break;
        redisReply *page = vv_call(s, why, whylen, scan_fmt, s->key, s->len, cursor, vv->chunk);
        const char *next;
        const redisReply *items;
        if (page == NULL || vv_scan_parts(page, &next, &items) != 0) rc = VERIFY_FAILED;
        else {
            snprintf(cursor, sizeof(cursor), "%s", next);
            rc = chunk(vv, s, t, items, why, whylen);
        }
        freeReplyObject(page);
    } while (strcmp(cursor, "0") != 0);
    return rc;
}

static outcome vv_set_page(struct verify_value *vv, const struct verify_key_ref *s,
                           const struct verify_key_ref *t, const redisReply *items, char *why,
                           size_t whylen) {
    (void)vv, (void)s;
    return vv_set_chunk(t, items, why, whylen);
}

static outcome vv_set(struct verify_value *vv, const struct verify_key_ref *s,
                      const struct verify_key_ref *t, char *why, size_t whylen) {
    return vv_scan_compare(vv, s, t, "SCARD %b", "set size", "SSCAN %b %s COUNT %ld", vv_set_page,
                           why, whylen);
}

/* Field TTLs of one HSCAN chunk (Redis 7.4+); a source without HPEXPIRETIME turns
 * the check off for the run. */
static outcome vv_hash_ttls(struct verify_value *vv, const struct verify_key_ref *s,
                            const struct verify_key_ref *t, char **fields, size_t *lens,
                            size_t count, char *why, size_t whylen) {
    if (vv->hash_ttls == 0 || count == 0) {
        vv->hash_ttl_keys_skipped += vv->hash_ttls == 0;
        return VERIFY_EQUAL;
    }
    char **args = malloc((count + 2) * sizeof(*args));
    size_t *arglens = malloc((count + 2) * sizeof(*arglens));
    char number[32];
    outcome rc = VERIFY_FAILED;
    redisReply *a = NULL, *b = NULL;
    if (args != NULL && arglens != NULL) {
        snprintf(number, sizeof(number), "%zu", count);
        args[0] = "FIELDS";
        arglens[0] = 6;
        args[1] = number;
        arglens[1] = strlen(number);
        memcpy(args + 2, fields, count * sizeof(*args));
        memcpy(arglens + 2, lens, count * sizeof(*arglens));
        a = vv_call_keyed(s, "HPEXPIRETIME", args, arglens, count + 2, why, whylen);
        if (a == NULL && (strstr(why, "unknown command") || strstr(why, "nknown"))) {
            vv->hash_ttls = 0;
            vv->hash_ttl_keys_skipped++;
            rc = VERIFY_EQUAL;
        } else if (a != NULL) {
            vv->hash_ttls = 1;
            b = vv_call_keyed(t, "HPEXPIRETIME", args, arglens, count + 2, why, whylen);
            rc = b == NULL ? VERIFY_FAILED : VERIFY_EQUAL;
        }
    }
    for (size_t i = 0; rc == VERIFY_EQUAL && a != NULL && b != NULL && i < a->elements &&
                       i < b->elements;
         i++) {
        long long x = a->element[i]->integer, y = b->element[i]->integer;
        if (verify_ttl_equal(x, y, vv->ttl_tolerance_ms)) continue;
        char field[160];
        verify_escape(fields[i], lens[i], VERIFY_SHOW, field, sizeof(field));
        snprintf(why, whylen, "hash field %s expires at %lld on the source, %lld on the target "
                 "(ms, -1 none)", field, x, y);
        rc = VERIFY_DIFFERENT;
    }
    freeReplyObject(a);
    freeReplyObject(b);
    free(args);
    free(arglens);
    return rc;
}

static outcome vv_hash_chunk(struct verify_value *vv, const struct verify_key_ref *s,
                             const struct verify_key_ref *t, const redisReply *items, char *why,
                             size_t whylen) {
    char **fields = NULL;
    size_t *lens = NULL, count = 0;
    outcome rc = VERIFY_EQUAL;
    if (items->elements < 2) return rc;
    if (vv_gather(items, 2, &fields, &lens, &count) != 0) rc = VERIFY_FAILED;
    redisReply *values =
        rc == VERIFY_EQUAL ? vv_call_keyed(t, "HMGET", fields, lens, count, why, whylen) : NULL;
    if (values == NULL) rc = VERIFY_FAILED;
    for (size_t i = 0; rc == VERIFY_EQUAL && i < count && i < values->elements; i++) {
        if (verify_reply_equal(items->element[2 * i + 1], values->element[i])) continue;
        char field[160], x[160], y[160];
        verify_escape(fields[i], lens[i], VERIFY_SHOW, field, sizeof(field));
        vv_show(items->element[2 * i + 1], x, sizeof(x));
        vv_show(values->element[i], y, sizeof(y));
        snprintf(why, whylen, "hash field %s: %s on the source, %s on the target", field, x, y);
        rc = VERIFY_DIFFERENT;
    }
    if (rc == VERIFY_EQUAL) rc = vv_hash_ttls(vv, s, t, fields, lens, count, why, whylen);
    freeReplyObject(values);
    free(fields);
    free(lens);
    return rc;
}

static outcome vv_hash(struct verify_value *vv, const struct verify_key_ref *s,
                       const struct verify_key_ref *t, char *why, size_t whylen) {
    return vv_scan_compare(vv, s, t, "HLEN %b", "hash size", "HSCAN %b %s COUNT %ld", vv_hash_chunk,
                           why, whylen);
}

/* --- sorted sets -------------------------------------------------------------------- */

static outcome vv_zset_pairs(const redisReply *a, const redisReply *b, long long at, char *why,
                             size_t whylen) {
    for (size_t i = 0; i + 1 < a->elements; i += 2) {
        const redisReply *member = a->element[i], *score = a->element[i + 1];
        const redisReply *other = i < b->elements ? b->element[i] : NULL;
        const redisReply *other_score = i + 1 < b->elements ? b->element[i + 1] : NULL;
        char x[160], y[160], m[160];
        if (!verify_reply_equal(member, other)) {
            vv_show(member, x, sizeof(x));
            vv_show(other, y, sizeof(y));
            snprintf(why, whylen, "zset rank %lld: member %s on the source, %s on the target",
                     at + (long long)i / 2, x, y);
            return VERIFY_DIFFERENT;
        }
        if (!verify_reply_equal(score, other_score)) {
            vv_show(member, m, sizeof(m));
            vv_show(score, x, sizeof(x));
            vv_show(other_score, y, sizeof(y));
            snprintf(why, whylen, "zset member %s: score %s on the source, %s on the target", m, x,
                     y);
            return VERIFY_DIFFERENT;
        }
    }
    return VERIFY_EQUAL;
}

static outcome vv_zset(struct verify_value *vv, const struct verify_key_ref *s,
                       const struct verify_key_ref *t, char *why, size_t whylen) {
    long long size;
    outcome rc = vv_sizes(s, t, "ZCARD %b", "zset size", &size, why, whylen);
    for (long long at = 0; rc == VERIFY_EQUAL && at < size; at += vv->chunk) {
        long long end = at + vv->chunk - 1;
        redisReply *a =
            vv_call(s, why, whylen, "ZRANGE %b %lld %lld WITHSCORES", s->key, s->len, at, end);
        redisReply *b = a ? vv_call(t, why, whylen, "ZRANGE %b %lld %lld WITHSCORES", t->key,
                                    t->len, at, end)
                          : NULL;
        rc = b == NULL ? VERIFY_FAILED : vv_zset_pairs(a, b, at, why, whylen);
        freeReplyObject(a);
        freeReplyObject(b);
    }
    return rc;
}

/* --- streams ------------------------------------------------------------------------ */

/* Named fields of two flat [name, value...] replies must be equal. */
static outcome vv_fields(const redisReply *a, const redisReply *b, const char *const *names,
                         const char *what, char *why, size_t whylen) {
    for (size_t i = 0; names[i] != NULL; i++) {
        const redisReply *x = verify_reply_field(a, names[i]), *y = verify_reply_field(b, names[i]);
        if (verify_reply_equal(x, y)) continue;
        char xs[160], ys[160];
        vv_show(x, xs, sizeof(xs));
        vv_show(y, ys, sizeof(ys));
        snprintf(why, whylen, "%s %s: %s on the source, %s on the target", what, names[i], xs, ys);
        return VERIFY_DIFFERENT;
    }
    return VERIFY_EQUAL;
}

/* Both sides of a command with the same arguments; NULL pair on failure. */
static int vv_both(const struct verify_key_ref *s, const struct verify_key_ref *t,
                   redisReply **a, redisReply **b, char *why, size_t whylen, const char *fmt,
                   const char *arg, size_t arglen) {
    *a = vv_call(s, why, whylen, fmt, s->key, s->len, arg, arglen);
    *b = *a ? vv_call(t, why, whylen, fmt, t->key, t->len, arg, arglen) : NULL;
    if (*b != NULL) return 0;
    freeReplyObject(*a);
    *a = NULL;
    return -1;
}

static outcome vv_stream_entries(struct verify_value *vv, const struct verify_key_ref *s,
                                 const struct verify_key_ref *t, char *why, size_t whylen) {
    char start[64] = "-";
    for (;;) {
        redisReply *a = NULL, *b = NULL;
        char fmt[64];
        snprintf(fmt, sizeof(fmt), "XRANGE %%b %%b + COUNT %ld", vv->chunk);
        if (vv_both(s, t, &a, &b, why, whylen, fmt, start, strlen(start)) != 0)
            return VERIFY_FAILED;
        outcome rc = VERIFY_EQUAL;
        for (size_t i = 0; rc == VERIFY_EQUAL && i < a->elements; i++) {
            const redisReply *y = i < b->elements ? b->element[i] : NULL;
            if (verify_reply_equal(a->element[i], y)) continue;
            char id[96], other[96];
            vv_show(a->element[i]->element[0], id, sizeof(id));
            vv_show(y != NULL ? y->element[0] : NULL, other, sizeof(other));
            snprintf(why, whylen, "stream entry %s differs (the target has %s there)", id, other);
            rc = VERIFY_DIFFERENT;
        }
        int more = a->elements == (size_t)vv->chunk && a->elements > 0;
        if (more) snprintf(start, sizeof(start), "(%s", a->element[a->elements - 1]->element[0]->str);
        freeReplyObject(a);
        freeReplyObject(b);
        if (rc != VERIFY_EQUAL || !more) return rc;
    }
}

/* The PEL of one group, by XPENDING chunks: id, consumer, delivery count. */
static outcome vv_stream_pel(struct verify_value *vv, const struct verify_key_ref *s,
                             const struct verify_key_ref *t, const redisReply *group, char *why,
                             size_t whylen) {
    char start[64] = "-", fmt[80];
    snprintf(fmt, sizeof(fmt), "XPENDING %%b %%b %%s + %ld", vv->chunk);
    for (;;) {
        redisReply *a = vv_call(s, why, whylen, fmt, s->key, s->len, group->str, group->len, start);
        redisReply *b =
            a ? vv_call(t, why, whylen, fmt, t->key, t->len, group->str, group->len, start) : NULL;
        outcome rc = b == NULL ? VERIFY_FAILED : VERIFY_EQUAL;
        for (size_t i = 0; rc == VERIFY_EQUAL && i < a->elements; i++) {
            const redisReply *x = a->element[i], *y = i < b->elements ? b->element[i] : NULL;
            if (y != NULL && x->elements == 4 && y->elements == 4 &&
                verify_reply_equal(x->element[0], y->element[0]) &&
                verify_reply_equal(x->element[1], y->element[1]) &&
                verify_reply_equal(x->element[3], y->element[3]))
                continue;
            char name[160], id[96];
            verify_escape(group->str, group->len, VERIFY_SHOW, name, sizeof(name));
            vv_show(x->element[0], id, sizeof(id));
            snprintf(why, whylen, "stream group %s: pending entry %s (consumer, delivery count) "
                     "differs on the target", name, id);
            rc = VERIFY_DIFFERENT;
        }
        int more = rc == VERIFY_EQUAL && a->elements == (size_t)vv->chunk;
        if (more) snprintf(start, sizeof(start), "(%s", a->element[a->elements - 1]->element[0]->str);
        freeReplyObject(a);
        freeReplyObject(b);
        if (!more) return rc;
    }
}

static outcome vv_stream_consumers(const struct verify_key_ref *s, const struct verify_key_ref *t,
                                   const redisReply *group, char *why, size_t whylen) {
    static const char *const fields[] = {"name", "pending", NULL};
    redisReply *a = NULL, *b = NULL;
    if (vv_both(s, t, &a, &b, why, whylen, "XINFO CONSUMERS %b %b", group->str, group->len) != 0)
        return VERIFY_FAILED;
    char name[160], what[200];
    verify_escape(group->str, group->len, VERIFY_SHOW, name, sizeof(name));
    outcome rc = VERIFY_EQUAL;
    if (a->elements != b->elements) {
        snprintf(why, whylen, "stream group %s: %zu consumers on the source, %zu on the target",
                 name, a->elements, b->elements);
        rc = VERIFY_DIFFERENT;
    }
    for (size_t i = 0; rc == VERIFY_EQUAL && i < a->elements; i++) {
        snprintf(what, sizeof(what), "stream group %s consumer", name);
        rc = vv_fields(a->element[i], b->element[i], fields, what, why, whylen);
    }
    freeReplyObject(a);
    freeReplyObject(b);
    return rc;
}

static outcome vv_stream_groups(struct verify_value *vv, const struct verify_key_ref *s,
                                const struct verify_key_ref *t, char *why, size_t whylen) {
    static const char *const fields[] = {"name", "consumers", "pending", "last-delivered-id",
                                         "entries-read", NULL};
    redisReply *a = vv_call(s, why, whylen, "XINFO GROUPS %b", s->key, s->len);
    redisReply *b = a ? vv_call(t, why, whylen, "XINFO GROUPS %b", t->key, t->len) : NULL;
    outcome rc = b == NULL ? VERIFY_FAILED : VERIFY_EQUAL;
    if (rc == VERIFY_EQUAL && a->elements != b->elements) {
        snprintf(why, whylen, "stream groups: %zu on the source, %zu on the target", a->elements,
                 b->elements);
        rc = VERIFY_DIFFERENT;
    }
    for (size_t i = 0; rc == VERIFY_EQUAL && i < a->elements; i++) {
        const redisReply *group = a->element[i], *name = verify_reply_field(group, "name");
        char what[200], shown[160];
        verify_reply_text(name, shown, sizeof(shown));
        snprintf(what, sizeof(what), "stream group %s", shown);
        rc = vv_fields(group, b->element[i], fields, what, why, whylen);
        if (rc == VERIFY_EQUAL && name != NULL) rc = vv_stream_consumers(s, t, name, why, whylen);
        if (rc == VERIFY_EQUAL && name != NULL) rc = vv_stream_pel(vv, s, t, name, why, whylen);
    }
    freeReplyObject(a);
    freeReplyObject(b);
    return rc;
}

static outcome vv_stream(struct verify_value *vv, const struct verify_key_ref *s,
                         const struct verify_key_ref *t, char *why, size_t whylen) {
    static const char *const fields[] = {"length", "last-generated-id", "max-deleted-entry-id",
                                         "entries-added", "recorded-first-entry-id", "groups",
                                         NULL};
    redisReply *a = vv_call(s, why, whylen, "XINFO STREAM %b", s->key, s->len);
    redisReply *b = a ? vv_call(t, why, whylen, "XINFO STREAM %b", t->key, t->len) : NULL;
    outcome rc = b == NULL ? VERIFY_FAILED : vv_fields(a, b, fields, "stream", why, whylen);
    freeReplyObject(a);
    freeReplyObject(b);
    if (rc == VERIFY_EQUAL) rc = vv_stream_entries(vv, s, t, why, whylen);
    if (rc == VERIFY_EQUAL) rc = vv_stream_groups(vv, s, t, why, whylen);
    return rc;
}

/* --- a key ---------------------------------------------------------------------------- */

int verify_value_type(const struct verify_key_ref *ref, char *type, size_t typelen, char *why,
                      size_t whylen) {
    redisReply *reply = vv_call(ref, why, whylen, "TYPE %b", ref->key, ref->len);
    if (reply == NULL) return -1;
    snprintf(type, typelen, "%s", reply->str != NULL ? reply->str : "none");
    freeReplyObject(reply);
    return 0;
}

static outcome vv_ttl(struct verify_value *vv, const struct verify_key_ref *s,
                      const struct verify_key_ref *t, char *why, size_t whylen) {
    long long a, b;
    if (vv_integer(s, &a, why, whylen, "PTTL %b", s->key, s->len) != 0 ||
        vv_integer(t, &b, why, whylen, "PTTL %b", t->key, t->len) != 0)
        return VERIFY_FAILED;
    if (verify_ttl_equal(a, b, vv->ttl_tolerance_ms)) return VERIFY_EQUAL;
    snprintf(why, whylen, "ttl: %lld ms on the source, %lld ms on the target (-1 none, tolerance "
             "%lld ms)", a, b, vv->ttl_tolerance_ms);
    return VERIFY_DIFFERENT;
}

static outcome vv_by_type(struct verify_value *vv, const char *type,
                          const struct verify_key_ref *s, const struct verify_key_ref *t,
                          char *why, size_t whylen) {
    if (strcmp(type, "string") == 0) return vv_string(vv, s, t, why, whylen);
    if (strcmp(type, "list") == 0) return vv_list(vv, s, t, why, whylen);
    if (strcmp(type, "set") == 0) return vv_set(vv, s, t, why, whylen);
    if (strcmp(type, "zset") == 0) return vv_zset(vv, s, t, why, whylen);
    if (strcmp(type, "hash") == 0) return vv_hash(vv, s, t, why, whylen);
    if (strcmp(type, "stream") == 0) return vv_stream(vv, s, t, why, whylen);
    return VERIFY_EQUAL; /* a module type: its value is the module's business */
}

enum verify_outcome verify_value_compare(struct verify_value *vv,
                                         const struct verify_key_ref *source,
                                         const struct verify_key_ref *target, char *type,
                                         size_t typelen, char *why, size_t whylen) {
    char other[32];
    why[0] = '\0';
    if (verify_value_type(source, type, typelen, why, whylen) != 0 ||
        verify_value_type(target, other, sizeof(other), why, whylen) != 0)
        return VERIFY_FAILED;
    if (strcmp(type, "none") == 0) {
        snprintf(type, typelen, "%s", other);
        return VERIFY_SOURCE_GONE;
    }
    if (strcmp(other, "none") == 0) {
        snprintf(why, whylen, "not on the target");
        return VERIFY_MISSING;
    }
    if (strcmp(type, other) != 0) {
        snprintf(why, whylen, "type: %s on the source, %s on the target", type, other);
        return VERIFY_DIFFERENT;
    }
    outcome rc = vv_by_type(vv, type, source, target, why, whylen);
    if (rc == VERIFY_EQUAL) rc = vv_ttl(vv, source, target, why, whylen);
    return rc;
}
