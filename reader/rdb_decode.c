/* rdb_decode.c -- owns the streaming RDB decoder's public API (rdb_decode.h):
 * the input buffer and its compaction, the header, the top-level records
 * (opcodes, a key's type byte and name), the CRC64 trailer, and error texts.
 * Values are walked by rdb_value.c and rdb_stream.c; elements are read by
 * rdb_read.c.
 *
 * It never prints, exits or aborts: every fault becomes RDB_ERR with
 * "offset N: key 'k': what" in the decoder.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/rdb_internal.h"
#include "shake/crc64.h"

#define RDB_KEY_PRINT_MAX 64

/* Absolute offset of the next unread byte. */
uint64_t rdb_offset(const struct rdb_decoder *d) {
    return d->base + d->pos;
}

/* Absolute offset of a pointer into the input buffer. */
uint64_t rdb_offset_of(const struct rdb_decoder *d, const unsigned char *p) {
    return d->base + (uint64_t)(p - (const unsigned char *)d->buf);
}

/* A cursor over the unread input. */
struct rdb_cursor rdb_cursor_at(const struct rdb_decoder *d) {
    const unsigned char *b = (const unsigned char *)d->buf;
    if (b == NULL) return (struct rdb_cursor){NULL, NULL};
    return (struct rdb_cursor){b + d->pos, b + d->len};
}

/* Consumes the input up to where the cursor got. */
void rdb_commit(struct rdb_decoder *d, const struct rdb_cursor *c) {
    d->pos = (size_t)(c->p - (const unsigned char *)d->buf);
}

/* Appends the key to out, printable and short: non-printable bytes as \xNN,
 * quotes and backslashes escaped, long keys cut with "...". */
static void rdb_print_key(const char *key, size_t len, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < len && i < RDB_KEY_PRINT_MAX && o + 5 < outlen; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch == '\'' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7F) {
            out[o++] = (char)ch;
        } else {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
        }
    }
    if (len > RDB_KEY_PRINT_MAX && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

/* Records the decoder's one error: the offset, the key if one is being read,
 * then the message. Returns RDB_RC_ERR so callers can `return rdb_fail(...)`. */
int rdb_fail(struct rdb_decoder *d, uint64_t offset, const char *fmt, ...) {
    if (d->state == RDB_STATE_ERROR) return RDB_RC_ERR; /* keep the first error */
    int n = snprintf(d->err, sizeof(d->err), "offset %" PRIu64 ": ", offset);
    if (d->key != NULL && n >= 0 && (size_t)n < sizeof(d->err)) {
        char printed[RDB_KEY_PRINT_MAX * 4 + 8];
        rdb_print_key(d->key, d->key_len, printed, sizeof(printed));
        n += snprintf(d->err + n, sizeof(d->err) - (size_t)n, "key '%s': ", printed);
    }
    if (n >= 0 && (size_t)n < sizeof(d->err)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err + n, sizeof(d->err) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    d->state = RDB_STATE_ERROR;
    return RDB_RC_ERR;
}

/* Checksums the consumed bytes not yet counted. Only bytes up to the EOF opcode
 * count; bytes re-read after a raw-to-decode switch were counted once already. */
static void rdb_crc_update(struct rdb_decoder *d) {
    uint64_t upto = rdb_offset(d);
    if (d->crc_frozen || upto <= d->crc_done) return;
    d->crc = crc64(d->crc, d->buf + (d->crc_done - d->base), (size_t)(upto - d->crc_done));
    d->crc_done = upto;
}

struct rdb_decoder *rdb_decoder_new(const struct rdb_decoder_options *options) {
    struct rdb_decoder *d = calloc(1, sizeof(*d));
    if (d == NULL) return NULL;
    if (options != NULL) d->opt = *options;
    if (d->opt.raw_max == 0) d->opt.raw_max = RDB_DEFAULT_RAW_MAX;
    if (d->opt.chunk_max_bytes == 0) d->opt.chunk_max_bytes = RDB_DEFAULT_CHUNK_MAX_BYTES;
    if (d->opt.chunk_max_items == 0) d->opt.chunk_max_items = RDB_DEFAULT_CHUNK_MAX_ITEMS;
    if (d->opt.max_element == 0) d->opt.max_element = RDB_DEFAULT_MAX_ELEMENT;
    d->state = RDB_STATE_HEADER;
    d->pin = UINT64_MAX;
    d->pending = (struct rdb_pending){.expire_ms = SHAKE_NO_EXPIRE, .idle_s = -1, .freq = -1};
    rdb_chunk_init(&d->chunk);
    return d;
}

void rdb_decoder_free(struct rdb_decoder *d) {
    if (d == NULL) return;
    rdb_value_free(d);
    rdb_chunk_free(&d->chunk);
    shake_entry_free(d->ready);
    rdb_buf_free(&d->elem);
    rdb_buf_free(&d->tmp);
    rdb_buf_free(&d->tmp2);
    free(d->key);
    free(d->buf);
    free(d);
}

/* Drops consumed bytes from the front when that is worth a memmove: when at
 * least as many bytes are dropped as kept, so each byte moves O(1) times. Bytes
 * from the pin on stay (a raw value may be re-read). */
static void rdb_compact(struct rdb_decoder *d, size_t incoming) {
    rdb_crc_update(d);
    uint64_t keep_from = rdb_offset(d);
    if (d->pin < keep_from) keep_from = d->pin;
    if (d->state == RDB_STATE_DONE || d->state == RDB_STATE_ERROR)
        keep_from = rdb_offset(d); /* only the unconsumed tail matters now */
    size_t drop = (size_t)(keep_from - d->base);
    size_t keep = d->len - drop;
    if (drop == 0) return;
    if (keep == 0 || drop >= keep || d->len + incoming > d->cap) {
        if (keep > 0) memmove(d->buf, d->buf + drop, keep);
        d->base += drop;
        d->len = keep;
        d->pos -= drop;
    }
}

/* Gives memory back after a big element (a raw value of up to raw_max, a long
 * string) left the buffer much larger than what it now holds. */
static void rdb_shrink(struct rdb_decoder *d, size_t need) {
    if (d->cap <= RDB_BUF_KEEP || need > d->cap / 4) return;
    size_t cap = RDB_BUF_KEEP;
    while (cap < need)
        cap *= 2;
    char *p = realloc(d->buf, cap);
    if (p == NULL) return; /* keep the bigger buffer */
    d->buf = p;
    d->cap = cap;
}

/* A value was handed over: when a big one left the buffer large, give its bytes
 * back now rather than at the next feed, so that they are not alive alongside the
 * entry's copy of them and the commands made from it. */
void rdb_input_trim(struct rdb_decoder *d) {
    if (d->cap <= RDB_BUF_KEEP) return;
    rdb_compact(d, 0);
    rdb_shrink(d, d->len);
}

char *rdb_decoder_reserve(struct rdb_decoder *d, size_t want) {
    rdb_compact(d, want);
    rdb_shrink(d, d->len + want);
    if (d->len + want > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + want)
            cap *= 2;
        char *p = realloc(d->buf, cap);
        if (p == NULL) {
            rdb_fail(d, rdb_offset(d), "out of memory buffering %zu bytes", d->len + want);
            return NULL;
        }
        d->buf = p;
        d->cap = cap;
    }
    return d->buf + d->len;
}

void rdb_decoder_commit(struct rdb_decoder *d, size_t n) {
    d->len += n;
}

enum rdb_status rdb_decoder_feed(struct rdb_decoder *d, const char *buf, size_t len) {
    if (len == 0) return RDB_OK;
    char *room = rdb_decoder_reserve(d, len);
    if (room == NULL) return RDB_ERR;
    memcpy(room, buf, len);
    rdb_decoder_commit(d, len);
    return RDB_OK;
}

void rdb_decoder_finish(struct rdb_decoder *d) {
    d->finished = 1;
}

const char *rdb_decoder_error(const struct rdb_decoder *d) {
    return d->err;
}

uint64_t rdb_decoder_offset(const struct rdb_decoder *d) {
    return rdb_offset(d);
}

uint64_t rdb_decoder_progress(const struct rdb_decoder *d) {
    uint64_t offset = rdb_offset(d);
    return offset > d->reached ? offset : d->reached;
}

void rdb_decoder_unconsumed(const struct rdb_decoder *d, const char **buf, size_t *len) {
    if (d->state != RDB_STATE_DONE || d->buf == NULL) {
        *buf = NULL;
        *len = 0;
        return;
    }
    *buf = d->buf + d->pos;
    *len = d->len - d->pos;
}

const struct rdb_decoder_stats *rdb_decoder_stats(const struct rdb_decoder *d) {
    return &d->stats;
}

/* Parses "REDIS" + 4 digits or "VALKEY" + 3 digits and decides which versions
 * (and so which meaning of type codes 22/23) we read. A wrong prefix fails as
 * soon as the bytes show it, without waiting for all nine. */
static int rdb_step_header(struct rdb_decoder *d) {
    size_t avail = d->len - d->pos;
    const char *p = d->buf ? d->buf + d->pos : "";
    size_t cmp = avail < 6 ? avail : 6;
    int maybe_redis = memcmp(p, RDB_MAGIC_REDIS, cmp < 5 ? cmp : 5) == 0;
    int maybe_valkey = memcmp(p, RDB_MAGIC_VALKEY, cmp) == 0;
    if (!maybe_redis && !maybe_valkey)
        return rdb_fail(d, 0, "not an RDB file: bad magic (expected REDIS or VALKEY)");
    if (avail < RDB_HEADER_LEN) return RDB_RC_MORE;
    int valkey = memcmp(p, RDB_MAGIC_VALKEY, 6) == 0;
    size_t digits_at = valkey ? 6 : 5;
    int version = 0;
    for (size_t i = digits_at; i < RDB_HEADER_LEN; i++) {
        if (p[i] < '0' || p[i] > '9')
            return rdb_fail(d, i, "not an RDB file: bad version digits '%.*s'",
                            (int)(RDB_HEADER_LEN - digits_at), p + digits_at);
        version = version * 10 + (p[i] - '0');
    }
    if (valkey) {
        if (version < RDB_VERSION_VALKEY_MIN || version > RDB_VERSION_VALKEY_MAX)
            return rdb_fail(d, digits_at,
                            "unsupported RDB version %d with VALKEY magic (this decoder reads "
                            "VALKEY %d to %d)",
                            version, RDB_VERSION_VALKEY_MIN, RDB_VERSION_VALKEY_MAX);
    } else if (version < 1 || version > RDB_VERSION_REDIS_MAX) {
        return rdb_fail(d, digits_at,
                        "unsupported RDB version %d (this decoder reads REDIS versions 1 to %d)",
                        version, RDB_VERSION_REDIS_MAX);
    }
    d->version = version;
    d->valkey = valkey;
    d->stats.rdb_version = version;
    d->stats.is_valkey = valkey;
    d->pos += RDB_HEADER_LEN;
    d->state = RDB_STATE_RECORD;
    return RDB_RC_OK;
}

/* Marks where the key's record starts: its first key-specific opcode. */
static void rdb_note_record_start(struct rdb_decoder *d, uint64_t offset) {
    if (!d->pending.has_record_offset) {
        d->pending.record_offset = offset;
        d->pending.has_record_offset = 1;
    }
}

/* Copies a string element into a fresh NUL-terminated allocation. */
static int rdb_string_dup(struct rdb_decoder *d, const struct rdb_string *s, char **out,
                          size_t *out_len) {
    char scratch[RDB_ELEM_SCRATCH];
    const char *bytes;
    size_t n;
    if (rdb_string_bytes(d, s, &d->tmp, scratch, &bytes, &n) != RDB_RC_OK) return RDB_RC_ERR;
    char *copy = malloc(n + 1);
    if (copy == NULL) return rdb_fail(d, s->offset, "out of memory for a %zu-byte string", n);
    if (n > 0) memcpy(copy, bytes, n);
    copy[n] = '\0';
    *out = copy;
    *out_len = n;
    return RDB_RC_OK;
}

/* FUNCTION2: one library's code, passed on as a FUNCTION entry. */
static int rdb_record_function(struct rdb_decoder *d, struct rdb_cursor *c, uint64_t at,
                               struct shake_entry **out) {
    struct rdb_string s;
    int rc = rdb_read_string(d, c, &s);
    if (rc != RDB_RC_OK) return rc;
    struct shake_entry *e = shake_entry_new(SHAKE_ENTRY_FUNCTION);
    if (e == NULL) return rdb_fail(d, at, "out of memory");
    if (rdb_string_dup(d, &s, &e->key, &e->key_len) != RDB_RC_OK) {
        shake_entry_free(e);
        return RDB_RC_ERR;
    }
    e->source = d->opt.source;
    e->db = d->db;
    e->offset = at;
    rdb_commit(d, c);
    d->stats.functions++;
    *out = e;
    return RDB_RC_ENTRY;
}

/* A key's type byte was read: read the key, then choose how to walk the value
 * (raw for a KEY entry, decoded into chunks, or skipped when expired). */
static int rdb_record_key(struct rdb_decoder *d, struct rdb_cursor *c, uint8_t type, uint64_t at) {
    struct rdb_string s;
    int rc = rdb_read_string(d, c, &s);
    if (rc != RDB_RC_OK) return rc;
    if (rdb_string_dup(d, &s, &d->key, &d->key_len) != RDB_RC_OK) return RDB_RC_ERR;
    rdb_commit(d, c);
    rdb_note_record_start(d, at);
    d->key_offset = d->pending.record_offset;
    d->key_expire_ms = d->pending.expire_ms;
    d->key_idle_s = d->pending.idle_s;
    d->key_freq = d->pending.freq;
    d->pending = (struct rdb_pending){.expire_ms = SHAKE_NO_EXPIRE, .idle_s = -1, .freq = -1};

    if (type == RDB_TYPE_MODULE_PRE_GA)
        return rdb_fail(d, at, "module value of the pre-GA format (type 6) is not supported");
    if (d->valkey && type == RDB_TYPE_VALKEY_PATH_HASH)
        return rdb_fail(d, at, "Valkey path hash (type 23) is not supported");

    enum rdb_value_mode mode;
    int restorable = type < 64 && (d->opt.restorable_types >> type) & 1;
    if (d->opt.now_ms != 0 && d->key_expire_ms != SHAKE_NO_EXPIRE &&
        d->key_expire_ms < d->opt.now_ms) {
        mode = RDB_MODE_SKIP;
    } else if (restorable) {
        mode = RDB_MODE_RAW;
    } else if (type == RDB_TYPE_MODULE_2) {
        return rdb_fail(d, at, "module value (type 7) is not restorable and cannot be decoded");
    } else {
        mode = RDB_MODE_DECODE;
    }
    rdb_value_begin(d, type, mode);
    if (mode == RDB_MODE_RAW) d->pin = d->v.start;
    d->state = RDB_STATE_VALUE;
    return RDB_RC_OK;
}

/* One top-level record: an opcode with all its operands, or a type byte and
 * its key. Operands are small, so each record parses in one go or not at all. */
static int rdb_step_record(struct rdb_decoder *d, struct shake_entry **out) {
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t at = rdb_offset(d);
    unsigned char type;
    int rc = rdb_read_byte(&c, &type);
    if (rc != RDB_RC_OK) return rc;
    uint64_t a, b, e;
    int64_t t64;
    const unsigned char *q;
    struct rdb_string s1, s2;

    switch (type) {
    case RDB_OPCODE_EOF:
        rdb_commit(d, &c);
        rdb_crc_update(d);
        d->crc_frozen = 1;
        d->state = d->version >= RDB_VERSION_CHECKSUM ? RDB_STATE_CHECKSUM : RDB_STATE_DONE;
        return d->state == RDB_STATE_DONE ? RDB_RC_DONE : RDB_RC_OK;
    case RDB_OPCODE_SELECTDB:
        if ((rc = rdb_read_plain_len(d, &c, &a)) != RDB_RC_OK) return rc;
        if (a > INT32_MAX) return rdb_fail(d, at, "SELECTDB with absurd db number %" PRIu64, a);
        d->db = (int)a;
        break;
    case RDB_OPCODE_RESIZEDB:
        if ((rc = rdb_read_plain_len(d, &c, &a)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &b)) != RDB_RC_OK)
            return rc;
        break;
    case RDB_OPCODE_SLOT_INFO:
        if ((rc = rdb_read_plain_len(d, &c, &a)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &b)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &e)) != RDB_RC_OK)
            return rc;
        break;
    case RDB_OPCODE_EXPIRETIME_MS:
        if ((rc = rdb_read_i64le(&c, &t64)) != RDB_RC_OK) return rc;
        rdb_note_record_start(d, at);
        d->pending.expire_ms = t64;
        break;
    case RDB_OPCODE_EXPIRETIME:
        if ((rc = rdb_read_bytes(&c, 4, &q)) != RDB_RC_OK) return rc;
        rdb_note_record_start(d, at);
        d->pending.expire_ms = (int64_t)(int32_t)((uint32_t)q[0] | ((uint32_t)q[1] << 8) |
                                                  ((uint32_t)q[2] << 16) | ((uint32_t)q[3] << 24)) *
                               1000;
        break;
    case RDB_OPCODE_IDLE:
        if ((rc = rdb_read_plain_len(d, &c, &a)) != RDB_RC_OK) return rc;
        rdb_note_record_start(d, at);
        d->pending.idle_s = a > INT64_MAX ? INT64_MAX : (int64_t)a;
        break;
    case RDB_OPCODE_FREQ:
        if ((rc = rdb_read_bytes(&c, 1, &q)) != RDB_RC_OK) return rc;
        rdb_note_record_start(d, at);
        d->pending.freq = q[0];
        break;
    case RDB_OPCODE_AUX:
        /* Parsed and ignored, `lua` included: scripts are not migrated from aux. */
        if ((rc = rdb_read_string(d, &c, &s1)) != RDB_RC_OK ||
            (rc = rdb_read_string(d, &c, &s2)) != RDB_RC_OK)
            return rc;
        break;
    case RDB_OPCODE_FUNCTION2: return rdb_record_function(d, &c, at, out);
    case RDB_OPCODE_FUNCTION_PRE_GA:
        return rdb_fail(d, at,
                        "function library of the pre-GA format (opcode 246, Redis 7.0 RC) is "
                        "not supported");
    case RDB_OPCODE_MODULE_AUX:
        if ((rc = rdb_read_plain_len(d, &c, &a)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &b)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &e)) != RDB_RC_OK)
            return rc;
        if (b != RDB_MODULE_OPCODE_UINT)
            return rdb_fail(d, at, "MODULE_AUX with bad when_opcode %" PRIu64, b);
        rdb_commit(d, &c);
        d->state = RDB_STATE_MODULE_AUX;
        return RDB_RC_OK;
    default:
        if (d->valkey &&
            (type == RDB_OPCODE_VALKEY_SLOT_IMPORT || type == RDB_OPCODE_VALKEY_UPDATE))
            return rdb_fail(d, at, "Valkey opcode %u (%s) is not supported", type,
                            type == RDB_OPCODE_VALKEY_UPDATE ? "forkless save update"
                                                             : "slot import");
        if (!rdb_is_object_type(d, type))
            return rdb_fail(d, at, "unknown type or opcode %u in RDB version %d%s", type,
                            d->version, d->valkey ? " (VALKEY)" : "");
        return rdb_record_key(d, &c, type, at);
    }
    rdb_commit(d, &c);
    return RDB_RC_OK;
}

/* The 8-byte little-endian CRC64 trailer: 0 means the writer did not checksum. */
static int rdb_step_checksum(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t at = rdb_offset(d);
    int64_t stored;
    int rc = rdb_read_i64le(&c, &stored);
    if (rc != RDB_RC_OK) return rc;
    if (stored != 0 && (uint64_t)stored != d->crc)
        return rdb_fail(d, at,
                        "checksum mismatch: file has 0x%016" PRIx64 ", computed 0x%016" PRIx64,
                        (uint64_t)stored, d->crc);
    d->stats.checksum_verified = stored != 0;
    rdb_commit(d, &c);
    d->state = RDB_STATE_DONE;
    return RDB_RC_DONE;
}

/* Names what was being read, for the truncation message. */
static const char *rdb_state_name(const struct rdb_decoder *d) {
    switch (d->state) {
    case RDB_STATE_HEADER: return "the header";
    case RDB_STATE_RECORD: return "a record";
    case RDB_STATE_MODULE_AUX: return "module aux data";
    case RDB_STATE_VALUE: return "a value";
    case RDB_STATE_CHECKSUM: return "the checksum";
    case RDB_STATE_DONE:
    case RDB_STATE_ERROR: break;
    }
    return "the input";
}

enum rdb_status rdb_decoder_next(struct rdb_decoder *d, struct shake_entry **out) {
    *out = NULL;
    for (;;) {
        int rc;
        switch (d->state) {
        case RDB_STATE_HEADER: rc = rdb_step_header(d); break;
        case RDB_STATE_RECORD: rc = rdb_step_record(d, out); break;
        case RDB_STATE_MODULE_AUX:
            rc = rdb_module_body_step(d);
            if (rc == RDB_RC_OK) d->state = RDB_STATE_RECORD;
            break;
        case RDB_STATE_VALUE: rc = rdb_value_step(d, out); break;
        case RDB_STATE_CHECKSUM: rc = rdb_step_checksum(d); break;
        case RDB_STATE_DONE: return RDB_DONE;
        case RDB_STATE_ERROR:
        default: return RDB_ERR;
        }
        switch (rc) {
        case RDB_RC_OK: continue;
        case RDB_RC_ENTRY: return RDB_OK;
        case RDB_RC_DONE: return RDB_DONE;
        case RDB_RC_MORE:
            if (!d->finished) return RDB_NEED_MORE;
            if (d->state == RDB_STATE_HEADER && d->len == d->pos)
                rdb_fail(d, 0, "empty input: not an RDB file");
            else
                rdb_fail(d, rdb_offset(d), "truncated input: it ends at byte %" PRIu64 " inside %s",
                         d->base + d->len, rdb_state_name(d));
            return RDB_ERR;
        case RDB_RC_ERR:
        default: d->state = RDB_STATE_ERROR; return RDB_ERR;
        }
    }
}
