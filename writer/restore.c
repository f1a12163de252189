/* restore.c -- owns the RESTORE fast path: one KEY entry becomes one RESTORE command.
 *
 * The payload is the DUMP format (type byte, raw value bytes, 2-byte RDB version,
 * CRC64, both little endian). The command's RESP is written by hand into a single
 * buffer of exact size, so the value bytes, which can be hundreds of MB, are copied
 * at most once: not at all when the entry's raw buffer has room for the whole
 * command (restore_build_take), as the decoder's have; nor moved when it has room
 * for the command's head in front of the value, as the decoder's have too unless
 * a filter lengthened the key. Pure: no I/O, no global
 * state; it must not decide routing or interpret replies.
 */
#include "writer/restore.h"

#include <stdlib.h>
#include <string.h>

#include "shake/crc64.h"
#include "writer/resp.h"

#define RESTORE_FOOTER_LEN 10 /* 2 bytes of RDB version + 8 bytes of CRC64 */

/* A short argument of the command (keyword or number) before it is written. */
struct restore_arg {
    const char *ptr;
    size_t len;
};

/* The TTL argument: the absolute expire in ms, or 0 for none. RESTORE reads 0 as
 * "no TTL", so a key that expired at or before the epoch gets 1 ms instead, which
 * keeps it expired (the target drops it). */
static int64_t restore_ttl(const struct shake_entry *entry) {
    if (entry->expire_ms == SHAKE_NO_EXPIRE) return 0;
    return entry->expire_ms > 0 ? entry->expire_ms : 1;
}

/* An argument holding v in decimal, printed into `number`. */
static struct restore_arg restore_number_arg(char number[24], int64_t v) {
    return (struct restore_arg){number, (size_t)(resp_put_i64(number, v) - number)};
}

/* Collects the arguments that follow the payload: ABSTTL, REPLACE, IDLETIME/FREQ.
 * RESTORE refuses IDLETIME and FREQ together, so IDLETIME wins when both are known.
 * `number` receives the digits of the IDLETIME/FREQ value. Returns the count. */
static int restore_tail_args(const struct shake_entry *entry, const struct restore_options *options,
                             struct restore_arg *args, char number[24]) {
    int n = 0;
    args[n++] = (struct restore_arg){"ABSTTL", 6};
    if (options->replace) args[n++] = (struct restore_arg){"REPLACE", 7};
    if (!options->keep_lru_lfu) return n;
    if (entry->idle_s >= 0) {
        args[n++] = (struct restore_arg){"IDLETIME", 8};
        args[n++] = restore_number_arg(number, entry->idle_s);
    } else if (entry->freq >= 0) {
        args[n++] = (struct restore_arg){"FREQ", 4};
        args[n++] = restore_number_arg(number, entry->freq);
    }
    return n;
}

/* Everything about one RESTORE command but the value bytes: its short
 * arguments, and where the value goes in its RESP. */
struct restore_layout {
    char ttl[24], number[24];
    size_t ttl_len;
    struct restore_arg tail[4];
    int ntail;
    size_t payload_len; /* type byte + raw + footer */
    size_t raw_at;      /* offset of the raw bytes in the RESP */
    size_t size;        /* bytes of the whole RESP */
};

static void restore_plan(const struct shake_entry *entry, const struct restore_options *options,
                         struct restore_layout *l) {
    l->ttl_len = (size_t)(resp_put_i64(l->ttl, restore_ttl(entry)) - l->ttl);
    l->ntail = restore_tail_args(entry, options, l->tail, l->number);
    l->payload_len = 1 + entry->raw_len + RESTORE_FOOTER_LEN;
    size_t head = resp_array_header_size((size_t)(4 + l->ntail)) + resp_bulk_size(7) +
                  resp_bulk_size(entry->key_len) + resp_bulk_size(l->ttl_len) + 1 +
                  resp_digits(l->payload_len) + 2;
    l->raw_at = head + 1;
    l->size = head + l->payload_len + 2;
    for (int i = 0; i < l->ntail; i++)
        l->size += resp_bulk_size(l->tail[i].len);
}

/* Writes the command into resp (l->size bytes) around the raw value bytes, which
 * are already at resp + l->raw_at; returns the length written. */
static size_t restore_write(char *resp, const struct shake_entry *entry,
                            const struct restore_options *options, const struct restore_layout *l) {
    char *p = resp_put_array_header(resp, (size_t)(4 + l->ntail));
    p = resp_put_bulk(p, "RESTORE", 7);
    p = resp_put_bulk(p, entry->key, entry->key_len);
    p = resp_put_bulk(p, l->ttl, l->ttl_len);
    p = resp_put_bulk_header(p, l->payload_len);
    /* The DUMP payload: type byte, raw bytes (in place), RDB version, CRC64. */
    char *payload = p;
    *p++ = (char)entry->rdb_type;
    p += entry->raw_len;
    *p++ = (char)(options->rdb_version & 0xff);
    *p++ = (char)((options->rdb_version >> 8) & 0xff);
    uint64_t crc = crc64(0, payload, (size_t)(p - payload));
    for (int i = 0; i < 8; i++)
        *p++ = (char)((crc >> (8 * i)) & 0xff);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < l->ntail; i++)
        p = resp_put_bulk(p, l->tail[i].ptr, l->tail[i].len);
    return (size_t)(p - resp);
}

/* Hands the RESP to the list; `cap` is the size of the value buffer it lies in,
 * `front` bytes into it, or 0 for a plain allocation. */
static int restore_append(struct command_list *out, char *resp, size_t len, size_t cap,
                          size_t front, const struct restore_options *options) {
    if (command_list_append_resp(out, resp, len) != 0) return -1;
    out->items[out->count - 1].busykey_is_skip = !options->replace;
    out->items[out->count - 1].cap = cap;
    out->items[out->count - 1].front = front;
    return 0;
}

int restore_build(const struct shake_entry *entry, const struct restore_options *options,
                  struct command_list *out) {
    struct restore_layout l;
    restore_plan(entry, options, &l);
    char *resp = malloc(l.size);
    if (resp == NULL) return -1;
    if (entry->raw_len > 0) memcpy(resp + l.raw_at, entry->raw, entry->raw_len);
    return restore_append(out, resp, restore_write(resp, entry, options, &l), 0, 0, options);
}

int restore_build_take(struct shake_entry *entry, const struct restore_options *options,
                       struct command_list *out) {
    struct restore_layout l;
    restore_plan(entry, options, &l);
    if (entry->raw == NULL || entry->raw_cap == 0) return restore_build(entry, options, out);
    char *buffer = entry->raw - entry->raw_front;
    size_t cap = entry->raw_front + entry->raw_cap, front;
    char *resp;
    if (entry->raw_front >= l.raw_at && entry->raw_cap >= l.size - l.raw_at) {
        front = entry->raw_front - l.raw_at; /* the head goes in front of the value */
        resp = buffer + front;
    } else if (cap >= l.size) {
        front = 0; /* the value moves to leave room for the head */
        resp = buffer;
        memmove(resp + l.raw_at, entry->raw, entry->raw_len);
    } else {
        return restore_build(entry, options, out);
    }
    entry->raw = NULL;
    entry->raw_cap = 0;
    entry->raw_front = 0;
    return restore_append(out, resp, restore_write(resp, entry, options, &l), cap, front,
                          options);
}
