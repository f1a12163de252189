/* verify_util.c -- the pure rules of `shake verify` (see verify_util.h). Must not
 * talk to a server or print. */
#include "shake/verify_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bits: stable across runs and machines, unlike a seeded hash. */
static uint64_t verify_hash(const char *bytes, size_t len) {
    uint64_t hash = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)bytes[i];
        hash *= 1099511628211ULL;
    }
    return hash;
}

int verify_sampled(const char *key, size_t len, double percent) {
    if (percent >= 100) return 1;
    if (percent <= 0) return 0;
    uint64_t bucket = verify_hash(key, len) % 1000000;
    return (double)bucket < percent * 10000.0;
}

int verify_ttl_equal(long long a, long long b, long long tolerance_ms) {
    if (a < 0 || b < 0) return a == b;
    long long delta = a > b ? a - b : b - a;
    return delta <= tolerance_ms;
}

void verify_escape(const char *bytes, size_t len, size_t max, char *out, size_t outlen) {
    if (outlen < 8) {
        if (outlen > 0) out[0] = '\0';
        return;
    }
    size_t used = 0, shown = len < max ? len : max, i = 0;
    out[used++] = '"';
    /* Room is kept for the widest form (\xHH) and the closing quote. */
    for (; i < shown && used + 6 < outlen; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (c == '"' || c == '\\')
            used += (size_t)snprintf(out + used, outlen - used, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            out[used++] = (char)c;
        else
            used += (size_t)snprintf(out + used, outlen - used, "\\x%02x", c);
    }
    out[used++] = '"';
    out[used] = '\0';
    if (i < len) snprintf(out + used, outlen - used, "...(%zu bytes)", len);
}

static int verify_int_ascending(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int verify_parse_keyspace(const char *info, int *dbs, int max) {
    int count = 0;
    for (const char *line = info; line != NULL && *line != '\0' && count < max;) {
        int db;
        char colon;
        if (sscanf(line, "db%d%c", &db, &colon) == 2 && colon == ':' && db >= 0) dbs[count++] = db;
        line = strchr(line, '\n');
        if (line != NULL) line++;
    }
    qsort(dbs, (size_t)count, sizeof(*dbs), verify_int_ascending);
    return count;
}

int verify_rename_candidates(const struct conf_filter *filter, const char *key, size_t len,
                             struct verify_candidate *out, int max) {
    int count = 0;
    if (max <= 0) return 0;
    out[count].key = malloc(len + 1);
    if (out[count].key == NULL) return -1;
    memcpy(out[count].key, key, len);
    out[count].key[len] = '\0';
    out[count++].len = len;
    for (int i = 0; i < filter->rename_count && count < max; i++) {
        const struct conf_rename *rename = &filter->renames[i];
        size_t to_len = strlen(rename->to), from_len = strlen(rename->from);
        if (to_len > len || memcmp(key, rename->to, to_len) != 0) continue;
        size_t new_len = from_len + len - to_len;
        char *name = malloc(new_len + 1);
        if (name == NULL) {
            for (int j = 0; j < count; j++) free(out[j].key);
            return -1;
        }
        memcpy(name, rename->from, from_len);
        memcpy(name + from_len, key + to_len, len - to_len);
        name[new_len] = '\0';
        out[count].key = name;
        out[count++].len = new_len;
    }
    return count;
}

int verify_reply_equal(const redisReply *a, const redisReply *b) {
    if (a == NULL || b == NULL) return a == b;
    if (a->type != b->type) return 0;
    switch (a->type) {
    case REDIS_REPLY_INTEGER: return a->integer == b->integer;
    case REDIS_REPLY_NIL: return 1;
    case REDIS_REPLY_ARRAY:
        if (a->elements != b->elements) return 0;
        for (size_t i = 0; i < a->elements; i++)
            if (!verify_reply_equal(a->element[i], b->element[i])) return 0;
        return 1;
    default: return a->len == b->len && (a->len == 0 || memcmp(a->str, b->str, a->len) == 0);
    }
}

const redisReply *verify_reply_field(const redisReply *map, const char *field) {
    if (map == NULL || (map->type != REDIS_REPLY_ARRAY)) return NULL;
    size_t field_len = strlen(field);
    for (size_t i = 0; i + 1 < map->elements; i += 2) {
        const redisReply *name = map->element[i];
        if ((name->type == REDIS_REPLY_STRING || name->type == REDIS_REPLY_STATUS) &&
            name->len == field_len && memcmp(name->str, field, field_len) == 0)
            return map->element[i + 1];
    }
    return NULL;
}

void verify_reply_text(const redisReply *reply, char *out, size_t outlen) {
    if (reply == NULL) {
        snprintf(out, outlen, "(absent)");
        return;
    }
    switch (reply->type) {
    case REDIS_REPLY_INTEGER: snprintf(out, outlen, "%lld", reply->integer); return;
    case REDIS_REPLY_NIL: snprintf(out, outlen, "(nil)"); return;
    case REDIS_REPLY_ARRAY:
        snprintf(out, outlen, "[%zu items]", reply->elements);
        return;
    default: verify_escape(reply->str, reply->len, 64, out, outlen); return;
    }
}
