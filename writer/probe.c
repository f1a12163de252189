/* probe.c -- reading a target's INFO / CONFIG replies, and which RDB versions and
 * types each Redis release knows (see probe.h). Pure: no I/O.
 *
 * Type history (redis src/rdb.h): 0-4 and 9-13 exist since RDB 6 (2.6); 14
 * LIST_QUICKLIST since RDB 7 (3.2); 5 ZSET_2 and 7 MODULE_2 since RDB 8 (4.0; 6 was
 * a 4.0 release candidate format no release loads); 15 STREAM_LISTPACKS since RDB 9
 * (5.0); 16 HASH_LISTPACK, 17 ZSET_LISTPACK, 18 LIST_QUICKLIST_2, 19
 * STREAM_LISTPACKS_2 since RDB 10 (7.0); 20 SET_LISTPACK, 21 STREAM_LISTPACKS_3 since
 * RDB 11 (7.2); 22-25 hashes with field expiry since RDB 12 (7.4).
 */
#include "writer/probe.h"

#include <hiredis.h>
#include <stdlib.h>
#include <string.h>

int probe_info_field(const char *info, size_t info_len, const char *field, char *out,
                     size_t outlen) {
    size_t field_len = strlen(field);
    const char *end = info + info_len;
    const char *line = info;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL) eol = end;
        size_t line_len = (size_t)(eol - line);
        if (line_len > 0 && line[line_len - 1] == '\r') line_len--;
        if (line_len > field_len && memcmp(line, field, field_len) == 0 && line[field_len] == ':') {
            size_t value_len = line_len - field_len - 1;
            if (value_len >= outlen) value_len = outlen - 1;
            memcpy(out, line + field_len + 1, value_len);
            out[value_len] = '\0';
            return 0;
        }
        line = eol + 1;
    }
    return -1;
}

int probe_parse_version(const char *text, int *major, int *minor, int *patch) {
    int parts[3] = {0, 0, 0};
    int index = 0, digits = 0;
    for (const char *p = text; *p && index < 3; p++) {
        if (*p >= '0' && *p <= '9') {
            if (parts[index] > 100000) return -1;
            parts[index] = parts[index] * 10 + (*p - '0');
            digits++;
        } else if (*p == '.' && digits > 0) {
            index++;
            digits = 0;
        } else {
            break;
        }
    }
    if (parts[0] == 0 && parts[1] == 0 && parts[2] == 0) return -1;
    *major = parts[0];
    *minor = parts[1];
    *patch = parts[2];
    return 0;
}

int probe_rdb_version(int major, int minor) {
    if (major > 7 || (major == 7 && minor >= 4)) return 12;
    if (major == 7 && minor >= 2) return 11;
    if (major == 7) return 10;
    if (major >= 5) return 9;
    if (major == 4) return 8;
    if (major == 3 && minor >= 2) return 7;
    return 6;
}

uint64_t probe_restorable_types(int rdb_version) {
    uint64_t types = 0;
    static const int since_6[] = {0, 1, 2, 3, 4, 9, 10, 11, 12, 13};
    for (size_t i = 0; i < sizeof(since_6) / sizeof(since_6[0]); i++)
        types |= 1ull << since_6[i];
    if (rdb_version >= 7) types |= 1ull << 14;
    if (rdb_version >= 8) types |= (1ull << 5) | (1ull << 7);
    if (rdb_version >= 9) types |= 1ull << 15;
    if (rdb_version >= 10) types |= (1ull << 16) | (1ull << 17) | (1ull << 18) | (1ull << 19);
    if (rdb_version >= 11) types |= (1ull << 20) | (1ull << 21);
    if (rdb_version >= 12) types |= (1ull << 22) | (1ull << 23) | (1ull << 24) | (1ull << 25);
    return types;
}

uint64_t probe_keyspace_keys(const char *info, size_t info_len) {
    uint64_t keys = 0;
    const char *end = info + info_len;
    const char *line = info;
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL) eol = end;
        if (eol - line > 2 && memcmp(line, "db", 2) == 0) {
            const char *p = memchr(line, ':', (size_t)(eol - line));
            if (p != NULL && (size_t)(eol - p) > 6 && memcmp(p + 1, "keys=", 5) == 0) {
                uint64_t value = 0;
                for (p += 6; p < eol && *p >= '0' && *p <= '9'; p++) {
                    value = value * 10 + (uint64_t)(*p - '0');
                }
                keys += value;
            }
        }
        line = eol + 1;
    }
    return keys;
}

size_t probe_proto_max_bulk_len(const void *reply_ptr) {
    const redisReply *reply = reply_ptr;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return PROBE_DEFAULT_PROTO_MAX_BULK_LEN;
    const char *text = reply->element[1]->str;
    if (*text < '0' || *text > '9') return PROBE_DEFAULT_PROTO_MAX_BULK_LEN;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (value == 0) return PROBE_DEFAULT_PROTO_MAX_BULK_LEN;
    /* CONFIG GET answers in bytes on every release that has the setting. */
    return (size_t)value;
}
