/* restore.c -- owns the RESTORE fast path: one KEY entry becomes one RESTORE command.
 *
 * The payload is the DUMP format (type byte, raw value bytes, 2-byte RDB version,
 * CRC64, both little endian). The command's RESP is written by hand into a single
 * buffer of exact size, so the value bytes, which can be hundreds of MB, are copied
 * exactly once. Pure: no I/O, no global state; it must not decide routing or
 * interpret replies.
 */
#include "writer/restore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shake/crc64.h"

#define RESTORE_FOOTER_LEN 10 /* 2 bytes of RDB version + 8 bytes of CRC64 */

/* A short argument of the command (keyword or number) before it is written. */
struct restore_arg {
    const char *ptr;
    size_t len;
};

/* Bytes taken by one bulk string of `len` bytes: "$<len>\r\n<bytes>\r\n". */
static size_t restore_bulk_size(size_t len) {
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%zu", len);
    return 1 + (size_t)n + 2 + len + 2;
}

/* Writes the header of a bulk string of `len` bytes at `p`; returns the end. */
static char *restore_put_bulk_header(char *p, size_t len) {
    int n = sprintf(p, "$%zu\r\n", len);
    return p + n;
}

/* Writes one whole bulk string at `p`; returns the end. */
static char *restore_put_bulk(char *p, const char *bytes, size_t len) {
    p = restore_put_bulk_header(p, len);
    if (len > 0) memcpy(p, bytes, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* The TTL argument: the absolute expire in ms, or 0 for none. RESTORE reads 0 as
 * "no TTL", so a key that expired at or before the epoch gets 1 ms instead, which
 * keeps it expired (the target drops it). */
static long long restore_ttl(const struct shake_entry *entry) {
    if (entry->expire_ms == SHAKE_NO_EXPIRE) return 0;
    return entry->expire_ms > 0 ? (long long)entry->expire_ms : 1;
}

/* Writes the DUMP payload (type byte, raw bytes, RDB version, CRC64) at `p`. */
static void restore_put_payload(char *p, const struct shake_entry *entry, int rdb_version) {
    char *start = p;
    *p++ = (char)entry->rdb_type;
    if (entry->raw_len > 0) memcpy(p, entry->raw, entry->raw_len);
    p += entry->raw_len;
    *p++ = (char)(rdb_version & 0xff);
    *p++ = (char)((rdb_version >> 8) & 0xff);
    uint64_t crc = crc64(0, start, (size_t)(p - start));
    for (int i = 0; i < 8; i++)
        *p++ = (char)((crc >> (8 * i)) & 0xff);
}

/* Collects the arguments that follow the payload: ABSTTL, REPLACE, IDLETIME/FREQ.
 * RESTORE refuses IDLETIME and FREQ together, so IDLETIME wins when both are known.
 * `number` receives the digits of the IDLETIME/FREQ value. Returns the count. */
static int restore_tail_args(const struct shake_entry *entry, const struct restore_options *options,
                             struct restore_arg *args, char *number, size_t number_size) {
    int n = 0;
    args[n++] = (struct restore_arg){"ABSTTL", 6};
    if (options->replace) args[n++] = (struct restore_arg){"REPLACE", 7};
    if (!options->keep_lru_lfu) return n;
    if (entry->idle_s >= 0) {
        args[n++] = (struct restore_arg){"IDLETIME", 8};
        int len = snprintf(number, number_size, "%" PRId64, entry->idle_s);
        args[n++] = (struct restore_arg){number, (size_t)len};
    } else if (entry->freq >= 0) {
        args[n++] = (struct restore_arg){"FREQ", 4};
        int len = snprintf(number, number_size, "%d", entry->freq);
        args[n++] = (struct restore_arg){number, (size_t)len};
    }
    return n;
}

int restore_build(const struct shake_entry *entry, const struct restore_options *options,
                  struct command_list *out) {
    char ttl[24], number[24];
    int ttl_len = snprintf(ttl, sizeof(ttl), "%lld", restore_ttl(entry));
    struct restore_arg tail[4];
    int ntail = restore_tail_args(entry, options, tail, number, sizeof(number));
    size_t payload_len = 1 + entry->raw_len + RESTORE_FOOTER_LEN;
    int argc = 4 + ntail;

    size_t size = 16 /* "*<argc>\r\n" */ + restore_bulk_size(7) +
                  restore_bulk_size(entry->key_len) + restore_bulk_size((size_t)ttl_len) +
                  restore_bulk_size(payload_len);
    for (int i = 0; i < ntail; i++)
        size += restore_bulk_size(tail[i].len);
    char *resp = malloc(size);
    if (resp == NULL) return -1;

    char *p = resp + sprintf(resp, "*%d\r\n", argc);
    p = restore_put_bulk(p, "RESTORE", 7);
    p = restore_put_bulk(p, entry->key, entry->key_len);
    p = restore_put_bulk(p, ttl, (size_t)ttl_len);
    p = restore_put_bulk_header(p, payload_len);
    restore_put_payload(p, entry, options->rdb_version);
    p += payload_len;
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < ntail; i++)
        p = restore_put_bulk(p, tail[i].ptr, tail[i].len);

    if (command_list_append_resp(out, resp, (size_t)(p - resp)) != 0) return -1;
    out->items[out->count - 1].busykey_is_skip = !options->replace;
    return 0;
}
