/* rdb_value.c -- owns walking one key's value, for every object type but
 * streams (rdb_stream.c): strings, plain collections, the packed blobs (zipmap,
 * ziplist, intset, listpack), quicklists, hashes with field TTLs (Redis 7.4
 * types 22..25, Valkey 9 HASH_2) and module values (walked, never decoded).
 *
 * One walker serves three modes: RAW keeps the value's bytes (pinned in the
 * input) for a KEY entry and only validates and counts; DECODE turns elements
 * into items and emits CHUNK entries as they fill; SKIP validates and drops
 * (expired keys). A RAW value that grows past raw_max restarts from its first
 * byte in DECODE mode.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "reader/lzf.h"
#include "reader/rdb_internal.h"

/* The logical type of an RDB type code. */
enum shake_value_type rdb_value_type(uint8_t rdb_type) {
    switch (rdb_type) {
    case RDB_TYPE_STRING: return SHAKE_TYPE_STRING;
    case RDB_TYPE_LIST:
    case RDB_TYPE_LIST_ZIPLIST:
    case RDB_TYPE_LIST_QUICKLIST:
    case RDB_TYPE_LIST_QUICKLIST_2: return SHAKE_TYPE_LIST;
    case RDB_TYPE_SET:
    case RDB_TYPE_SET_INTSET:
    case RDB_TYPE_SET_LISTPACK: return SHAKE_TYPE_SET;
    case RDB_TYPE_ZSET:
    case RDB_TYPE_ZSET_2:
    case RDB_TYPE_ZSET_ZIPLIST:
    case RDB_TYPE_ZSET_LISTPACK: return SHAKE_TYPE_ZSET;
    case RDB_TYPE_STREAM_LISTPACKS:
    case RDB_TYPE_STREAM_LISTPACKS_2:
    case RDB_TYPE_STREAM_LISTPACKS_3: return SHAKE_TYPE_STREAM;
    case RDB_TYPE_MODULE_PRE_GA:
    case RDB_TYPE_MODULE_2: return SHAKE_TYPE_MODULE;
    default: return SHAKE_TYPE_HASH; /* 4, 9, 13, 16, 22..25 */
    }
}

/* Whether `type` is an object type under this file's magic: Valkey's 22 and 23
 * are its own, and it has no 24 or 25. */
int rdb_is_object_type(const struct rdb_decoder *d, int type) {
    if (type < 0 || type == 8) return 0;
    if (d->valkey) return type <= RDB_TYPE_VALKEY_PATH_HASH;
    return type <= RDB_TYPE_HASH_LISTPACK_EX;
}

/* Whether this value is a Valkey HASH_2 (field, value, absolute ms TTL). */
static int rdb_is_valkey_hash2(const struct rdb_decoder *d) {
    return d->valkey && d->v.type == RDB_TYPE_VALKEY_HASH_2;
}

/* The item kind a collection's elements become. */
static enum shake_item_kind rdb_item_kind(const struct rdb_decoder *d) {
    switch (rdb_value_type(d->v.type)) {
    case SHAKE_TYPE_LIST: return SHAKE_ITEM_LIST_ELEMENT;
    case SHAKE_TYPE_SET: return SHAKE_ITEM_SET_MEMBER;
    case SHAKE_TYPE_ZSET: return SHAKE_ITEM_ZSET_MEMBER;
    case SHAKE_TYPE_HASH: return SHAKE_ITEM_HASH_FIELD;
    default: return SHAKE_ITEM_STRING;
    }
}

/* The fields before the blob iterator of a value not yet walked. */
static const struct rdb_value value_blank;

/* Resets the walker for a value starting at the current input offset. Stream
 * buffers are kept for reuse. */
/* Once per key: only the fields before the blob iterator are cleared (every blob
 * initializes the iterator it uses), and the stream state keeps its buffers. They
 * are copied from a blank value: GCC makes a memset of this size a `rep stos`,
 * whose start-up costs more than the copy. */
void rdb_value_begin(struct rdb_decoder *d, uint8_t type, enum rdb_value_mode mode) {
    memcpy(&d->v, &value_blank, offsetof(struct rdb_value, it));
    d->v.type = type;
    d->v.mode = mode;
    d->v.step = RDB_V_BEGIN;
    d->v.start = rdb_offset(d);
    rdb_stream_reset(&d->v.stream);
}

void rdb_value_free(struct rdb_decoder *d) {
    rdb_stream_free(&d->v.stream);
}

/* A new KEY or CHUNK entry carrying the current key's attributes. A KEY entry is
 * the key's last use here, so it takes the decoder's copy of the key; chunks copy it. */
static struct shake_entry *rdb_key_entry(struct rdb_decoder *d, enum shake_entry_kind kind) {
    struct shake_entry *e = shake_entry_new(kind);
    if (e == NULL) return NULL;
    if (kind == SHAKE_ENTRY_KEY) {
        e->key = d->key;
        d->key = NULL;
    } else {
        e->key = malloc(d->key_len + 1);
        if (e->key == NULL) {
            shake_entry_free(e);
            return NULL;
        }
        memcpy(e->key, d->key, d->key_len + 1);
    }
    e->key_len = d->key_len;
    e->source = d->opt.source;
    e->db = d->db;
    e->offset = d->key_offset;
    e->type = rdb_value_type(d->v.type);
    e->rdb_type = d->v.type;
    e->expire_ms = d->key_expire_ms;
    e->idle_s = d->key_idle_s;
    e->freq = d->key_freq;
    return e;
}

/* Hands the items built so far to a CHUNK entry in *out. */
static int rdb_emit_chunk(struct rdb_decoder *d, unsigned flags, struct shake_entry **out) {
    struct shake_entry *e = rdb_key_entry(d, SHAKE_ENTRY_CHUNK);
    if (e == NULL || rdb_chunk_take(&d->chunk, e) < 0) {
        shake_entry_free(e);
        return rdb_fail(d, rdb_offset(d), "out of memory building a chunk");
    }
    if (d->v.chunks_sent == 0) {
        flags |= SHAKE_CHUNK_FIRST;
        d->stats.keys++;
        d->stats.chunked_keys++;
    }
    e->chunk_flags = flags;
    d->v.chunks_sent++;
    *out = e;
    return RDB_RC_ENTRY;
}

/* Adds an item in decode mode; in the other modes only counts it. An item that
 * starts a group (all but stream fields) finds a full chunk set aside in
 * d->ready first: so a chunk goes out only once another item exists, and the
 * value's last chunk always has items and the LAST flag. */
int rdb_value_item(struct rdb_decoder *d, const struct shake_item *item, const char *a, size_t alen,
                   const char *b, size_t blen, int continues_group) {
    d->v.elements++;
    if (d->v.mode != RDB_MODE_DECODE) return RDB_RC_OK;
    if (!continues_group && d->ready == NULL &&
        rdb_chunk_full(&d->chunk, d->opt.chunk_max_items, d->opt.chunk_max_bytes) &&
        rdb_emit_chunk(d, 0, &d->ready) != RDB_RC_ENTRY)
        return RDB_RC_ERR;
    if (rdb_chunk_add(&d->chunk, item, a, alen, b, blen) < 0)
        return rdb_fail(d, rdb_offset(d), "out of memory adding an item");
    return RDB_RC_OK;
}

/* An item of `kind` from one or two string elements (and a score or TTL),
 * decoding the strings only in decode mode: the raw path never decompresses, and
 * builds no struct shake_item (clearing one per element cost more than the walk). */
static int rdb_string_item(struct rdb_decoder *d, enum shake_item_kind kind, double score,
                           int64_t expire_ms, const struct rdb_string *sa,
                           const struct rdb_string *sb) {
    if (d->v.mode != RDB_MODE_DECODE) {
        d->v.elements++;
        return RDB_RC_OK;
    }
    char scratch_a[RDB_ELEM_SCRATCH], scratch_b[RDB_ELEM_SCRATCH];
    const char *a, *b = NULL;
    size_t alen, blen = 0;
    if (rdb_string_bytes(d, sa, &d->tmp, scratch_a, &a, &alen) != RDB_RC_OK) return RDB_RC_ERR;
    if (sb != NULL && rdb_string_bytes(d, sb, &d->tmp2, scratch_b, &b, &blen) != RDB_RC_OK)
        return RDB_RC_ERR;
    struct shake_item item = {.kind = kind, .score = score, .expire_ms = expire_ms};
    return rdb_value_item(d, &item, a, alen, b, blen, 0);
}

/* Sets the step that follows the prelude of each type. */
static int rdb_step_begin(struct rdb_decoder *d) {
    struct rdb_value *v = &d->v;
    v->tuple = 1;
    switch (v->type) {
    case RDB_TYPE_STRING: v->step = RDB_V_STRING; return RDB_RC_OK;
    case RDB_TYPE_LIST:
    case RDB_TYPE_SET:
    case RDB_TYPE_ZSET:
    case RDB_TYPE_ZSET_2:
    case RDB_TYPE_HASH:
    case RDB_TYPE_LIST_QUICKLIST:
    case RDB_TYPE_LIST_QUICKLIST_2: v->step = RDB_V_COUNT; return RDB_RC_OK;
    case RDB_TYPE_MODULE_2:
        v->elements = 1; /* opaque, never empty */
        v->step = RDB_V_MODULE_ID;
        return RDB_RC_OK;
    case RDB_TYPE_HASH_ZIPMAP:
        v->blob_kind = RDB_BLOB_ZIPMAP;
        v->tuple = 2;
        v->step = RDB_V_BLOB;
        return RDB_RC_OK;
    case RDB_TYPE_LIST_ZIPLIST:
        v->blob_kind = RDB_BLOB_ZIPLIST;
        v->step = RDB_V_BLOB;
        return RDB_RC_OK;
    case RDB_TYPE_ZSET_ZIPLIST:
    case RDB_TYPE_HASH_ZIPLIST:
        v->blob_kind = RDB_BLOB_ZIPLIST;
        v->tuple = 2;
        v->step = RDB_V_BLOB;
        return RDB_RC_OK;
    case RDB_TYPE_SET_INTSET:
        v->blob_kind = RDB_BLOB_INTSET;
        v->step = RDB_V_BLOB;
        return RDB_RC_OK;
    case RDB_TYPE_SET_LISTPACK:
        v->blob_kind = RDB_BLOB_LISTPACK;
        v->step = RDB_V_BLOB;
        return RDB_RC_OK;
    case RDB_TYPE_ZSET_LISTPACK:
    case RDB_TYPE_HASH_LISTPACK:
        v->blob_kind = RDB_BLOB_LISTPACK;
        v->tuple = 2;
        v->step = RDB_V_BLOB;
        return RDB_RC_OK;
    case RDB_TYPE_STREAM_LISTPACKS:
    case RDB_TYPE_STREAM_LISTPACKS_2:
    case RDB_TYPE_STREAM_LISTPACKS_3: v->step = RDB_V_STREAM_NODES; return RDB_RC_OK;
    }
    if (d->valkey) {
        if (v->type == RDB_TYPE_VALKEY_HASH_2) {
            v->step = RDB_V_COUNT;
            return RDB_RC_OK;
        }
    } else {
        switch (v->type) {
        case RDB_TYPE_HASH_METADATA_PRE_GA: v->step = RDB_V_COUNT; return RDB_RC_OK;
        case RDB_TYPE_HASH_METADATA:
        case RDB_TYPE_HASH_LISTPACK_EX: v->step = RDB_V_HASH_MIN_EXPIRE; return RDB_RC_OK;
        case RDB_TYPE_HASH_LISTPACK_EX_PRE_GA:
            v->blob_kind = RDB_BLOB_LISTPACK;
            v->tuple = 3;
            v->step = RDB_V_BLOB;
            return RDB_RC_OK;
        }
    }
    return rdb_fail(d, v->start, "type %u cannot be read", v->type);
}

/* Decode mode, a string longer than a chunk: its bytes go out as pieces, one per
 * chunk (SET, then APPENDs), so that a huge string is never copied whole nor, when
 * stored plain, buffered whole. Plain: only the length is read here, the bytes are
 * taken from the input as they arrive. LZF: decompressed once into d->tmp. Sets
 * *started when the value continues in RDB_V_STRING_PIECES. */
static int rdb_string_pieces_begin(struct rdb_decoder *d, int *started) {
    *started = 0;
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t at = rdb_offset(d), len;
    int encoded;
    int rc = rdb_read_len(d, &c, &len, &encoded);
    if (rc != RDB_RC_OK) return rc;
    if (!encoded) {
        if (len <= d->opt.chunk_max_bytes) return RDB_RC_OK;
        if (len > d->opt.max_element)
            return rdb_fail(d, at, "string length %llu exceeds max_element %zu",
                            (unsigned long long)len, d->opt.max_element);
        rdb_commit(d, &c);
        d->v.pieces_in_tmp = 0;
    } else {
        struct rdb_string s;
        c = rdb_cursor_at(d);
        if ((rc = rdb_read_string(d, &c, &s)) != RDB_RC_OK) return rc;
        if (s.enc != RDB_STR_LZF || s.ulen <= d->opt.chunk_max_bytes) return RDB_RC_OK;
        char scratch[RDB_ELEM_SCRATCH];
        const char *p;
        size_t n;
        if (rdb_string_bytes(d, &s, &d->tmp, scratch, &p, &n) != RDB_RC_OK) return RDB_RC_ERR;
        rdb_commit(d, &c);
        len = n;
        d->v.pieces_in_tmp = 1;
        d->v.piece_offset = 0;
    }
    d->v.remaining = len;
    d->v.step = RDB_V_STRING_PIECES;
    *started = 1;
    return RDB_RC_OK;
}

/* The pieces of a long string, stopping when a chunk is ready. */
static int rdb_step_string_pieces(struct rdb_decoder *d) {
    while (d->ready == NULL) {
        if (d->v.remaining == 0) {
            rdb_buf_trim(&d->tmp, RDB_BUF_KEEP);
            d->v.step = RDB_V_END;
            return RDB_RC_OK;
        }
        size_t n = d->v.remaining < d->opt.chunk_max_bytes ? (size_t)d->v.remaining
                                                           : d->opt.chunk_max_bytes;
        struct rdb_cursor c = rdb_cursor_at(d);
        const char *p;
        if (d->v.pieces_in_tmp) {
            p = d->tmp.ptr + d->v.piece_offset;
        } else {
            const unsigned char *q;
            int rc = rdb_read_bytes(&c, n, &q);
            if (rc != RDB_RC_OK) return rc;
            p = (const char *)q;
        }
        struct shake_item item = {.kind = SHAKE_ITEM_STRING, .expire_ms = SHAKE_NO_EXPIRE};
        if (rdb_value_item(d, &item, p, n, NULL, 0, 0) != RDB_RC_OK) return RDB_RC_ERR;
        if (d->v.pieces_in_tmp)
            d->v.piece_offset += n;
        else
            rdb_commit(d, &c);
        d->v.remaining -= n;
    }
    return RDB_RC_OK;
}

/* A string value: one item (or pieces, see rdb_string_pieces_begin). */
static int rdb_step_string(struct rdb_decoder *d) {
    if (d->v.mode == RDB_MODE_DECODE) {
        int started;
        int rc = rdb_string_pieces_begin(d, &started);
        if (rc != RDB_RC_OK || started) return rc;
    }
    struct rdb_cursor c = rdb_cursor_at(d);
    struct rdb_string s;
    int rc = rdb_read_string(d, &c, &s);
    if (rc != RDB_RC_OK) return rc;
    if (rdb_string_item(d, SHAKE_ITEM_STRING, 0, SHAKE_NO_EXPIRE, &s, NULL) != RDB_RC_OK)
        return RDB_RC_ERR;
    rdb_commit(d, &c);
    d->v.step = RDB_V_END;
    return RDB_RC_OK;
}

/* The element (or node) count of a collection. */
static int rdb_step_count(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t n;
    int rc = rdb_read_count(d, &c, &n, "element");
    if (rc != RDB_RC_OK) return rc;
    rdb_commit(d, &c);
    d->v.remaining = n;
    if (n == 0) {
        d->v.step = RDB_V_END;
        return RDB_RC_OK;
    }
    switch (d->v.type) {
    case RDB_TYPE_LIST:
    case RDB_TYPE_SET: d->v.step = RDB_V_ELEMENT; break;
    case RDB_TYPE_ZSET:
    case RDB_TYPE_ZSET_2: d->v.step = RDB_V_ZSET_MEMBER; break;
    case RDB_TYPE_LIST_QUICKLIST:
    case RDB_TYPE_LIST_QUICKLIST_2: d->v.step = RDB_V_QUICKLIST_NODE; break;
    default: d->v.step = RDB_V_HASH_FIELD; break;
    }
    return RDB_RC_OK;
}

/* One element has been consumed: move on, or end the value. */
static void rdb_count_down(struct rdb_decoder *d) {
    if (--d->v.remaining == 0) d->v.step = RDB_V_END;
}

/* A list or set element (RDB_TYPE_LIST, RDB_TYPE_SET). */
static int rdb_step_element(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    struct rdb_string s;
    int rc = rdb_read_string(d, &c, &s);
    if (rc != RDB_RC_OK) return rc;
    if (rdb_string_item(d, rdb_item_kind(d), 0, SHAKE_NO_EXPIRE, &s, NULL) != RDB_RC_OK)
        return RDB_RC_ERR;
    rdb_commit(d, &c);
    rdb_count_down(d);
    return RDB_RC_OK;
}

/* A sorted set member and its score: text (RDB_TYPE_ZSET) or binary (ZSET_2). */
static int rdb_step_zset_member(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    struct rdb_string s;
    double score;
    int rc;
    if ((rc = rdb_read_string(d, &c, &s)) != RDB_RC_OK) return rc;
    if (d->v.type == RDB_TYPE_ZSET)
        rc = rdb_read_text_double(d, &c, &score);
    else
        rc = rdb_read_binary_double(&c, &score);
    if (rc != RDB_RC_OK) return rc;
    if (rdb_string_item(d, SHAKE_ITEM_ZSET_MEMBER, score, SHAKE_NO_EXPIRE, &s, NULL) != RDB_RC_OK)
        return RDB_RC_ERR;
    rdb_commit(d, &c);
    rdb_count_down(d);
    return RDB_RC_OK;
}

/* The minimum field expiry that prefixes HASH_METADATA and HASH_LISTPACK_EX. */
static int rdb_step_hash_min_expire(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t at = rdb_offset(d);
    int64_t t;
    int rc = rdb_read_i64le(&c, &t);
    if (rc != RDB_RC_OK) return rc;
    if (d->v.type == RDB_TYPE_HASH_METADATA && (uint64_t)t > EB_EXPIRE_TIME_MAX + 1)
        return rdb_fail(d, at, "hash minimum field expiry %" PRIu64 " is invalid", (uint64_t)t);
    rdb_commit(d, &c);
    d->v.min_expire = (uint64_t)t;
    if (d->v.type == RDB_TYPE_HASH_METADATA) {
        d->v.step = RDB_V_COUNT;
    } else {
        d->v.blob_kind = RDB_BLOB_LISTPACK;
        d->v.tuple = 3;
        d->v.step = RDB_V_BLOB;
    }
    return RDB_RC_OK;
}

/* A hash field and value, with the per-field TTL of the TTL-carrying types:
 * HASH_METADATA (relative to the minimum, 0 = none), its pre-GA form (absolute,
 * 0 = none), Valkey's HASH_2 (absolute ms after the value, -1 = none). */
static int rdb_step_hash_field(struct rdb_decoder *d) {
    int rc;
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t at = rdb_offset(d);
    struct rdb_string field, value;
    int64_t expire = SHAKE_NO_EXPIRE;
    int redis_ttl = !d->valkey && (d->v.type == RDB_TYPE_HASH_METADATA ||
                                   d->v.type == RDB_TYPE_HASH_METADATA_PRE_GA);
    if (redis_ttl) {
        uint64_t ttl;
        if ((rc = rdb_read_plain_len(d, &c, &ttl)) != RDB_RC_OK) return rc;
        if (ttl != 0) {
            uint64_t when = d->v.type == RDB_TYPE_HASH_METADATA ? ttl + d->v.min_expire - 1 : ttl;
            if (when > EB_EXPIRE_TIME_MAX || when < ttl - 1)
                return rdb_fail(d, at, "hash field expiry %" PRIu64 " is invalid", when);
            expire = (int64_t)when;
        }
    }
    if ((rc = rdb_read_string(d, &c, &field)) != RDB_RC_OK ||
        (rc = rdb_read_string(d, &c, &value)) != RDB_RC_OK)
        return rc;
    if (rdb_is_valkey_hash2(d)) {
        if ((rc = rdb_read_i64le(&c, &expire)) != RDB_RC_OK) return rc;
        if (expire < SHAKE_NO_EXPIRE)
            return rdb_fail(d, at, "hash field expiry %" PRId64 " is invalid", expire);
    }
    if (rdb_string_item(d, SHAKE_ITEM_HASH_FIELD, 0, expire, &field, &value) != RDB_RC_OK)
        return RDB_RC_ERR;
    rdb_commit(d, &c);
    rdb_count_down(d);
    return RDB_RC_OK;
}

/* Size of a blob of this kind with no entries. */
static size_t rdb_blob_empty_len(enum rdb_blob_kind kind) {
    switch (kind) {
    case RDB_BLOB_LISTPACK: return RDB_LISTPACK_EMPTY_LEN;
    case RDB_BLOB_ZIPLIST: return RDB_ZIPLIST_EMPTY_LEN;
    case RDB_BLOB_INTSET: return RDB_INTSET_EMPTY_LEN;
    case RDB_BLOB_ZIPMAP: return RDB_ZIPMAP_EMPTY_LEN;
    }
    return 0;
}

/* Points the blob iterator at (p, n), checking the blob's header. */
static int rdb_blob_open(struct rdb_decoder *d, const char *p, size_t n) {
    char err[192];
    err[0] = '\0';
    int r = -1;
    switch (d->v.blob_kind) {
    case RDB_BLOB_LISTPACK: r = listpack_iter_init(&d->v.it.lp, p, n, err, sizeof(err)); break;
    case RDB_BLOB_ZIPLIST: r = ziplist_iter_init(&d->v.it.zl, p, n, err, sizeof(err)); break;
    case RDB_BLOB_INTSET: r = intset_iter_init(&d->v.it.is, p, n, err, sizeof(err)); break;
    case RDB_BLOB_ZIPMAP: r = zipmap_iter_init(&d->v.it.zm, p, n, err, sizeof(err)); break;
    }
    if (r < 0) return rdb_fail(d, d->v.blob_offset, "%s", err[0] ? err : "malformed blob");
    return RDB_RC_OK;
}

/* The next item's elements from the blob: 1 with t[] filled, 0 at its end,
 * or RDB_RC_ERR (as -1) when the blob is malformed or ends inside an item. */
static int rdb_blob_next(struct rdb_decoder *d, struct rdb_elem t[3]) {
    char err[192];
    err[0] = '\0';
    int r = -1;
    if (d->v.blob_kind == RDB_BLOB_ZIPMAP) {
        r = zipmap_iter_next(&d->v.it.zm, &t[0], &t[1], err, sizeof(err));
        if (r < 0) {
            rdb_fail(d, d->v.blob_offset, "%s", err[0] ? err : "malformed zipmap");
            return -1;
        }
        return r;
    }
    for (int i = 0; i < d->v.tuple; i++) {
        switch (d->v.blob_kind) {
        case RDB_BLOB_LISTPACK: r = listpack_iter_next(&d->v.it.lp, &t[i], err, sizeof(err)); break;
        case RDB_BLOB_ZIPLIST: r = ziplist_iter_next(&d->v.it.zl, &t[i], err, sizeof(err)); break;
        case RDB_BLOB_INTSET: r = intset_iter_next(&d->v.it.is, &t[i]); break;
        case RDB_BLOB_ZIPMAP: break;
        }
        if (r < 0) {
            rdb_fail(d, d->v.blob_offset, "%s", err[0] ? err : "malformed blob");
            return -1;
        }
        if (r == 0) {
            if (i == 0) return 0;
            rdb_fail(d, d->v.blob_offset, "packed value ends inside an item: %d of %d elements", i,
                     d->v.tuple);
            return -1;
        }
    }
    return 1;
}

/* An element that must be an integer (a TTL in a HASH_LISTPACK_EX blob). */
static int rdb_elem_integer(struct rdb_decoder *d, const struct rdb_elem *e, long long *out) {
    if (e->str == NULL) {
        *out = e->ival;
        return RDB_RC_OK;
    }
    char text[32];
    if (e->len == 0 || e->len >= sizeof(text))
        return rdb_fail(d, d->v.blob_offset, "expected an integer in a packed value");
    memcpy(text, e->str, e->len);
    text[e->len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return rdb_fail(d, d->v.blob_offset, "expected an integer in a packed value, found '%s'",
                        text);
    *out = v;
    return RDB_RC_OK;
}

/* Whether text is a plain decimal, "-12.5" or "3": the form Redis gives most
 * scores. strtod accepts every such text whole, so a walk that only validates
 * (the score itself is not needed) may skip it. */
static int rdb_score_is_plain_decimal(const char *text, size_t len) {
    size_t i = text[0] == '-' ? 1 : 0, digits = 0;
    int dot = 0;
    for (; i < len; i++) {
        if (text[i] >= '0' && text[i] <= '9')
            digits++;
        else if (text[i] == '.' && !dot)
            dot = 1;
        else
            return 0;
    }
    return digits > 0;
}

/* A score stored in a ziplist or listpack: an integer, or text for strtod. */
static int rdb_elem_score(struct rdb_decoder *d, const struct rdb_elem *e, double *out) {
    if (e->str == NULL) {
        *out = (double)e->ival;
        return RDB_RC_OK;
    }
    char text[512];
    if (e->len == 0 || e->len >= sizeof(text))
        return rdb_fail(d, d->v.blob_offset, "bad score of %zu bytes in a packed zset", e->len);
    if (d->v.mode != RDB_MODE_DECODE && rdb_score_is_plain_decimal(e->str, e->len)) {
        *out = 0; /* valid; only decode mode uses the value */
        return RDB_RC_OK;
    }
    memcpy(text, e->str, e->len);
    text[e->len] = '\0';
    char *end;
    double v = strtod(text, &end);
    if (*end != '\0') return rdb_fail(d, d->v.blob_offset, "bad score '%s' in a packed zset", text);
    *out = v;
    return RDB_RC_OK;
}

/* The TTL that ends a HASH_LISTPACK_EX tuple: an integer of at most
 * EB_EXPIRE_TIME_MAX, HASH_LP_NO_TTL for none. */
static int rdb_elem_ttl(struct rdb_decoder *d, const struct rdb_elem *e, int64_t *expire_ms) {
    long long ttl = 0;
    if (rdb_elem_integer(d, e, &ttl) != RDB_RC_OK) return RDB_RC_ERR;
    if (ttl < 0 || (uint64_t)ttl > EB_EXPIRE_TIME_MAX)
        return rdb_fail(d, d->v.blob_offset, "hash field expiry %lld is invalid", ttl);
    *expire_ms = ttl == HASH_LP_NO_TTL ? SHAKE_NO_EXPIRE : ttl;
    return RDB_RC_OK;
}

/* The item of one blob tuple, added to the chunk (decode mode) or counted. */
static int rdb_blob_item(struct rdb_decoder *d, const struct rdb_elem t[3]) {
    enum shake_item_kind kind = rdb_item_kind(d);
    double score = 0;
    int64_t expire_ms = SHAKE_NO_EXPIRE;
    if (kind == SHAKE_ITEM_ZSET_MEMBER && rdb_elem_score(d, &t[1], &score) != RDB_RC_OK)
        return RDB_RC_ERR;
    if (d->v.tuple == 3 && rdb_elem_ttl(d, &t[2], &expire_ms) != RDB_RC_OK) return RDB_RC_ERR;
    if (d->v.mode != RDB_MODE_DECODE) {
        d->v.elements++;
        return RDB_RC_OK;
    }
    struct shake_item item = {.kind = kind, .score = score, .expire_ms = expire_ms};
    char sa[RDB_ELEM_SCRATCH], sb[RDB_ELEM_SCRATCH];
    size_t alen, blen = 0;
    const char *a = rdb_elem_bytes(&t[0], sa, &alen);
    const char *b = NULL;
    if (item.kind == SHAKE_ITEM_HASH_FIELD) b = rdb_elem_bytes(&t[1], sb, &blen);
    return rdb_value_item(d, &item, a, alen, b, blen, 0);
}

/* Raw and skip modes: the checks of rdb_blob_item on element i of a tuple (a
 * zset's score, a hash field's TTL), made as the element is read. */
static inline int rdb_tuple_elem_check(struct rdb_decoder *d, enum shake_item_kind kind, int i,
                                       const struct rdb_elem *e) {
    double score;
    int64_t expire_ms;
    if (i == 1 && kind == SHAKE_ITEM_ZSET_MEMBER) return rdb_elem_score(d, e, &score);
    if (i == 2) return rdb_elem_ttl(d, e, &expire_ms);
    return RDB_RC_OK;
}

/* Raw and skip modes: checks every entry of the blob just opened and counts its
 * items, exactly as rdb_blob_next and rdb_blob_item would one tuple at a time,
 * in one loop per kind with one error buffer: this walk runs over every element
 * of every packed value. An intset was checked whole when it was opened. */
static int rdb_blob_check(struct rdb_decoder *d) {
    struct rdb_value *v = &d->v;
    if (v->blob_kind == RDB_BLOB_INTSET) {
        v->elements += v->it.is.count;
        return RDB_RC_OK;
    }
    if (v->blob_kind == RDB_BLOB_ZIPMAP) {
        struct rdb_elem t[3];
        int r;
        while ((r = rdb_blob_next(d, t)) == 1)
            if (rdb_blob_item(d, t) != RDB_RC_OK) return RDB_RC_ERR;
        return r < 0 ? RDB_RC_ERR : RDB_RC_OK;
    }
    enum shake_item_kind kind = rdb_item_kind(d);
    char err[192];
    err[0] = '\0';
    struct rdb_elem e;
    int i = 0, r;
    uint64_t items = 0;
    for (;;) {
        if (v->blob_kind == RDB_BLOB_LISTPACK)
            r = listpack_iter_next(&v->it.lp, &e, err, sizeof(err));
        else
            r = ziplist_iter_next(&v->it.zl, &e, err, sizeof(err));
        if (r <= 0) break;
        if (i > 0 && rdb_tuple_elem_check(d, kind, i, &e) != RDB_RC_OK) return RDB_RC_ERR;
        if (++i == v->tuple) {
            i = 0;
            items++;
        }
    }
    if (r < 0) return rdb_fail(d, v->blob_offset, "%s", err[0] ? err : "malformed blob");
    if (i != 0)
        return rdb_fail(d, v->blob_offset, "packed value ends inside an item: %d of %d elements",
                        i, v->tuple);
    v->elements += items;
    return RDB_RC_OK;
}

/* What follows a blob: the next quicklist node, or the end of the value. */
static void rdb_after_blob(struct rdb_decoder *d) {
    if (d->v.type == RDB_TYPE_LIST_QUICKLIST || d->v.type == RDB_TYPE_LIST_QUICKLIST_2) {
        d->v.step = RDB_V_QUICKLIST_NODE;
        rdb_count_down(d);
    } else {
        d->v.step = RDB_V_END;
    }
}

/* A blob string was read (cursor not yet committed). Raw and skip modes check
 * it now and count its items; decode mode copies it (decompressed) out of the
 * input and iterates it in RDB_V_BLOB_ITEMS, across as many chunks as needed. */
static int rdb_blob_take(struct rdb_decoder *d, struct rdb_cursor *c, const struct rdb_string *s) {
    d->v.blob_offset = s->offset;
    if (s->enc == RDB_STR_INT) return rdb_fail(d, s->offset, "packed value stored as an integer");
    size_t empty_len = rdb_blob_empty_len(d->v.blob_kind);
    if (d->v.mode != RDB_MODE_DECODE && d->opt.raw_shallow_check) {
        if (s->ulen < empty_len)
            return rdb_fail(d, s->offset, "packed value of %zu bytes is too short", s->ulen);
        if (s->enc == RDB_STR_PLAIN && rdb_blob_open(d, (const char *)s->ptr, s->len) != RDB_RC_OK)
            return RDB_RC_ERR;
        if (s->ulen > empty_len) d->v.elements++;
        rdb_commit(d, c);
        rdb_after_blob(d);
        return RDB_RC_OK;
    }
    const char *p = (const char *)s->ptr;
    size_t n = s->len;
    if (s->enc == RDB_STR_LZF || d->v.mode == RDB_MODE_DECODE) {
        /* LZF must be expanded anyway; in decode mode the iteration outlives the
         * input buffer (chunks go out, feeds come in), so the blob moves out. */
        char scratch[RDB_ELEM_SCRATCH];
        if (s->enc == RDB_STR_LZF) {
            if (rdb_string_bytes(d, s, &d->elem, scratch, &p, &n) != RDB_RC_OK) return RDB_RC_ERR;
        } else {
            if (rdb_buf_set(&d->elem, p, n) < 0)
                return rdb_fail(d, s->offset, "out of memory for a %zu-byte blob", n);
            p = d->elem.ptr;
        }
    }
    if (rdb_blob_open(d, p, n) != RDB_RC_OK) return RDB_RC_ERR;
    rdb_commit(d, c);
    if (d->v.mode == RDB_MODE_DECODE) {
        d->v.step = RDB_V_BLOB_ITEMS;
        return RDB_RC_OK;
    }
    if (rdb_blob_check(d) != RDB_RC_OK) return RDB_RC_ERR;
    rdb_after_blob(d);
    return RDB_RC_OK;
}

/* A packed value: one blob string. */
static int rdb_step_blob(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    struct rdb_string s;
    int rc = rdb_read_string(d, &c, &s);
    if (rc != RDB_RC_OK) return rc;
    return rdb_blob_take(d, &c, &s);
}

/* Decode mode: items of the current blob, stopping when a chunk is ready. */
static int rdb_step_blob_items(struct rdb_decoder *d) {
    for (;;) {
        if (d->ready != NULL) return RDB_RC_OK;
        struct rdb_elem t[3];
        int r = rdb_blob_next(d, t);
        if (r < 0) return RDB_RC_ERR;
        if (r == 0) break;
        if (rdb_blob_item(d, t) != RDB_RC_OK) return RDB_RC_ERR;
    }
    rdb_after_blob(d);
    return RDB_RC_OK;
}

/* A quicklist node: a ziplist (QUICKLIST), or a container tag then a listpack
 * or, for PLAIN, one big element as is (QUICKLIST_2). */
static int rdb_step_quicklist_node(struct rdb_decoder *d) {
    int rc;
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t at = rdb_offset(d);
    uint64_t container = QUICKLIST_NODE_CONTAINER_PACKED;
    if (d->v.type == RDB_TYPE_LIST_QUICKLIST_2) {
        if ((rc = rdb_read_plain_len(d, &c, &container)) != RDB_RC_OK) return rc;
        if (container != QUICKLIST_NODE_CONTAINER_PACKED &&
            container != QUICKLIST_NODE_CONTAINER_PLAIN)
            return rdb_fail(d, at, "quicklist node with unknown container %" PRIu64, container);
    }
    struct rdb_string s;
    if ((rc = rdb_read_string(d, &c, &s)) != RDB_RC_OK) return rc;
    if (rdb_string_len(&s) == 0) return rdb_fail(d, s.offset, "empty quicklist node");
    if (container == QUICKLIST_NODE_CONTAINER_PLAIN) {
        if (rdb_string_item(d, SHAKE_ITEM_LIST_ELEMENT, 0, SHAKE_NO_EXPIRE, &s, NULL) !=
            RDB_RC_OK)
            return RDB_RC_ERR;
        rdb_commit(d, &c);
        rdb_count_down(d);
        return RDB_RC_OK;
    }
    d->v.blob_kind = d->v.type == RDB_TYPE_LIST_QUICKLIST ? RDB_BLOB_ZIPLIST : RDB_BLOB_LISTPACK;
    d->v.tuple = 1;
    return rdb_blob_take(d, &c, &s);
}

/* The module type id that opens a MODULE_2 value. */
static int rdb_step_module_id(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t id;
    int rc = rdb_read_plain_len(d, &c, &id);
    if (rc != RDB_RC_OK) return rc;
    rdb_commit(d, &c);
    d->v.step = RDB_V_MODULE_BODY;
    return RDB_RC_OK;
}

/* Module opcodes as rdbLoadCheckModuleValue walks them, one per element, up to
 * RDB_MODULE_OPCODE_EOF; RDB_RC_OK once that is consumed. */
int rdb_module_body_step(struct rdb_decoder *d) {
    for (;;) {
        struct rdb_cursor c = rdb_cursor_at(d);
        uint64_t at = rdb_offset(d);
        uint64_t opcode, n;
        const unsigned char *q;
        struct rdb_string s;
        int rc = rdb_read_plain_len(d, &c, &opcode);
        if (rc != RDB_RC_OK) return rc;
        switch (opcode) {
        case RDB_MODULE_OPCODE_EOF: rdb_commit(d, &c); return RDB_RC_OK;
        case RDB_MODULE_OPCODE_SINT:
        case RDB_MODULE_OPCODE_UINT: rc = rdb_read_plain_len(d, &c, &n); break;
        case RDB_MODULE_OPCODE_FLOAT: rc = rdb_read_bytes(&c, 4, &q); break;
        case RDB_MODULE_OPCODE_DOUBLE: rc = rdb_read_bytes(&c, 8, &q); break;
        case RDB_MODULE_OPCODE_STRING: rc = rdb_read_string(d, &c, &s); break;
        default: return rdb_fail(d, at, "unknown module value opcode %" PRIu64, opcode);
        }
        if (rc != RDB_RC_OK) return rc;
        rdb_commit(d, &c);
        if (d->state == RDB_STATE_VALUE && d->v.mode == RDB_MODE_RAW &&
            rdb_offset(d) - d->v.start > d->opt.raw_max)
            return RDB_RC_SWITCH;
    }
}

/* Releases the key once its value is fully handled, and the memory a big
 * element of it needed. */
static void rdb_value_done(struct rdb_decoder *d) {
    rdb_buf_trim(&d->elem, RDB_BUF_KEEP);
    rdb_buf_trim(&d->tmp, RDB_BUF_KEEP);
    rdb_buf_trim(&d->tmp2, RDB_BUF_KEEP);
    free(d->key);
    d->key = NULL;
    d->key_len = 0;
    d->pin = UINT64_MAX;
    d->state = RDB_STATE_RECORD;
    rdb_input_trim(d);
}

/* The value ended: skip it (expired, empty), or emit the KEY entry or the last
 * CHUNK. */
static int rdb_step_end(struct rdb_decoder *d, struct shake_entry **out) {
    if (d->v.mode == RDB_MODE_SKIP) {
        d->stats.expired_skipped++;
        rdb_value_done(d);
        return RDB_RC_OK;
    }
    if (d->v.elements == 0) {
        d->stats.empty_skipped++;
        rdb_chunk_free(&d->chunk);
        rdb_value_done(d);
        return RDB_RC_OK;
    }
    int rc;
    if (d->v.mode == RDB_MODE_DECODE) {
        rc = rdb_emit_chunk(d, SHAKE_CHUNK_LAST, out);
    } else {
        size_t from = (size_t)(d->v.start - d->base);
        size_t n = d->pos - from;
        size_t cap, front = d->key_len + RDB_RAW_FRONT;
        char *buffer = shake_value_buffer_alloc(front + n + d->key_len + RDB_RAW_ROOM, &cap);
        struct shake_entry *e = buffer != NULL ? rdb_key_entry(d, SHAKE_ENTRY_KEY) : NULL;
        if (e == NULL) {
            shake_value_buffer_free(buffer, cap);
            return rdb_fail(d, d->v.start, "out of memory for a %zu-byte value", n);
        }
        e->raw = buffer + front;
        e->raw_front = front;
        e->raw_cap = cap - front;
        memcpy(e->raw, d->buf + from, n);
        e->raw_len = n;
        d->stats.keys++;
        *out = e;
        rc = RDB_RC_ENTRY;
    }
    if (rc == RDB_RC_ENTRY) rdb_value_done(d);
    return rc;
}

/* The raw value outgrew raw_max: re-read it from its first byte, decoding. */
static int rdb_value_switch(struct rdb_decoder *d) {
    if (d->v.type == RDB_TYPE_MODULE_2)
        return rdb_fail(d, d->v.start,
                        "module value larger than raw_max (%zu bytes) cannot be decoded",
                        d->opt.raw_max);
    if (rdb_offset(d) > d->reached) d->reached = rdb_offset(d);
    d->pos = (size_t)(d->v.start - d->base);
    d->pin = UINT64_MAX;
    rdb_value_begin(d, d->v.type, RDB_MODE_DECODE);
    return RDB_RC_OK;
}

int rdb_value_step(struct rdb_decoder *d, struct shake_entry **out) {
    for (;;) {
        int rc;
        switch (d->v.step) {
        case RDB_V_BEGIN: rc = rdb_step_begin(d); break;
        case RDB_V_STRING: rc = rdb_step_string(d); break;
        case RDB_V_STRING_PIECES: rc = rdb_step_string_pieces(d); break;
        case RDB_V_COUNT: rc = rdb_step_count(d); break;
        case RDB_V_ELEMENT: rc = rdb_step_element(d); break;
        case RDB_V_ZSET_MEMBER: rc = rdb_step_zset_member(d); break;
        case RDB_V_HASH_FIELD: rc = rdb_step_hash_field(d); break;
        case RDB_V_HASH_MIN_EXPIRE: rc = rdb_step_hash_min_expire(d); break;
        case RDB_V_BLOB: rc = rdb_step_blob(d); break;
        case RDB_V_BLOB_ITEMS: rc = rdb_step_blob_items(d); break;
        case RDB_V_QUICKLIST_NODE: rc = rdb_step_quicklist_node(d); break;
        case RDB_V_MODULE_ID: rc = rdb_step_module_id(d); break;
        case RDB_V_MODULE_BODY:
            rc = rdb_module_body_step(d);
            if (rc == RDB_RC_OK) d->v.step = RDB_V_END;
            break;
        case RDB_V_END: return rdb_step_end(d, out);
        default: rc = rdb_stream_step(d); break;
        }
        /* Checked on MORE too: a loop step may have consumed much before it ran dry. */
        if ((rc == RDB_RC_OK || rc == RDB_RC_MORE) && d->v.mode == RDB_MODE_RAW &&
            rdb_offset(d) - d->v.start > d->opt.raw_max)
            rc = RDB_RC_SWITCH;
        if (rc == RDB_RC_SWITCH) rc = rdb_value_switch(d);
        if (rc != RDB_RC_OK) return rc;
        if (d->ready != NULL) {
            *out = d->ready;
            d->ready = NULL;
            return RDB_RC_ENTRY;
        }
    }
}
