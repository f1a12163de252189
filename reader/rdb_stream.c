/* rdb_stream.c -- owns walking a stream value (RDB_TYPE_STREAM_LISTPACKS 1, 2
 * and 3): the listpack nodes with their master entries and delta-encoded ids,
 * the stream metadata, the consumer groups with their global PEL, consumers and
 * consumer PELs (t_stream.c and rdb.c in Redis describe the layout).
 *
 * Items, in order: STREAM_ENTRY + its STREAM_FIELDs per live entry (deleted
 * entries are skipped), one STREAM_META, then per group a STREAM_GROUP and per
 * consumer a STREAM_CONSUMER followed by its STREAM_PENDINGs. A group's global
 * PEL is held (bounded by its size) until its consumers name the owners.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "reader/rdb_internal.h"

/* Forgets the previous stream, keeping allocations. */
void rdb_stream_reset(struct rdb_stream_state *s) {
    s->master_fields = 0;
    s->node_entries = 0;
    s->pel_len = 0;
    s->group.len = 0;
    s->consumer.len = 0;
    s->groups_left = s->pel_left = s->consumers_left = 0;
}

void rdb_stream_free(struct rdb_stream_state *s) {
    free(s->master);
    free(s->pel);
    rdb_buf_free(&s->group);
    rdb_buf_free(&s->consumer);
    *s = (struct rdb_stream_state){0};
}

/* A 128-bit stream id stored as two big-endian 64-bit halves. */
static struct shake_stream_id rdb_stream_id_be(const unsigned char *p) {
    struct shake_stream_id id = {0, 0};
    for (int i = 0; i < 8; i++) {
        id.ms = (id.ms << 8) | p[i];
        id.seq = (id.seq << 8) | p[8 + i];
    }
    return id;
}

/* The next listpack element of the current node, which must exist. */
static int rdb_stream_elem(struct rdb_decoder *d, struct rdb_elem *e) {
    char err[192];
    err[0] = '\0';
    int r = listpack_iter_next(&d->v.it.lp, e, err, sizeof(err));
    if (r < 0) return rdb_fail(d, d->v.blob_offset, "stream %s", err);
    if (r == 0) return rdb_fail(d, d->v.blob_offset, "stream listpack ends inside an entry");
    return RDB_RC_OK;
}

/* The next element as an integer (flags, counts, id deltas). */
static int rdb_stream_int(struct rdb_decoder *d, long long *out) {
    struct rdb_elem e;
    if (rdb_stream_elem(d, &e) != RDB_RC_OK) return RDB_RC_ERR;
    if (e.str != NULL) {
        char text[32];
        char *end;
        if (e.len == 0 || e.len >= sizeof(text))
            return rdb_fail(d, d->v.blob_offset, "stream listpack: expected an integer");
        memcpy(text, e.str, e.len);
        text[e.len] = '\0';
        *out = strtoll(text, &end, 10);
        if (*end != '\0')
            return rdb_fail(d, d->v.blob_offset, "stream listpack: expected an integer, found '%s'",
                            text);
        return RDB_RC_OK;
    }
    *out = e.ival;
    return RDB_RC_OK;
}

/* The master entry that opens each node: valid count, deleted count, the
 * master fields, and the 0 terminator. */
static int rdb_stream_master(struct rdb_decoder *d) {
    struct rdb_stream_state *s = &d->v.stream;
    long long count, deleted, nfields, zero;
    if (rdb_stream_int(d, &count) != RDB_RC_OK || rdb_stream_int(d, &deleted) != RDB_RC_OK ||
        rdb_stream_int(d, &nfields) != RDB_RC_OK)
        return RDB_RC_ERR;
    if (count < 0 || deleted < 0 || nfields < 0 || (size_t)nfields > d->v.it.lp.len)
        return rdb_fail(d, d->v.blob_offset, "stream master entry with bad counts");
    if ((size_t)nfields > s->master_cap) {
        struct rdb_elem *m = realloc(s->master, (size_t)nfields * sizeof(*m));
        if (m == NULL)
            return rdb_fail(d, d->v.blob_offset, "out of memory for stream master fields");
        s->master = m;
        s->master_cap = (size_t)nfields;
    }
    for (long long i = 0; i < nfields; i++)
        if (rdb_stream_elem(d, &s->master[i]) != RDB_RC_OK) return RDB_RC_ERR;
    if (rdb_stream_int(d, &zero) != RDB_RC_OK) return RDB_RC_ERR;
    if (zero != 0) return rdb_fail(d, d->v.blob_offset, "stream master entry not terminated by 0");
    s->master_fields = nfields;
    s->node_entries = (uint64_t)count + (uint64_t)deleted;
    return RDB_RC_OK;
}

/* Adds one element's bytes as (part of) an item. */
static int rdb_stream_field_item(struct rdb_decoder *d, const struct rdb_elem *field,
                                 const struct rdb_elem *value) {
    char sa[RDB_ELEM_SCRATCH], sb[RDB_ELEM_SCRATCH];
    size_t alen = 0, blen = 0;
    const char *a = "", *b = "";
    if (d->v.mode == RDB_MODE_DECODE) {
        a = rdb_elem_bytes(field, sa, &alen);
        b = rdb_elem_bytes(value, sb, &blen);
    }
    struct shake_item item = {.kind = SHAKE_ITEM_STREAM_FIELD, .expire_ms = SHAKE_NO_EXPIRE};
    return rdb_value_item(d, &item, a, alen, b, blen, 1);
}

/* One entry of the node: 1 when read, 0 at the node's end. Its id is the
 * master id plus the stored deltas; its fields are the master's when flagged
 * SAMEFIELDS. Deleted entries are walked and dropped. */
static int rdb_stream_entry(struct rdb_decoder *d) {
    struct rdb_stream_state *s = &d->v.stream;
    if (s->node_entries == 0) {
        struct rdb_elem e;
        char err[192];
        err[0] = '\0';
        int r = listpack_iter_next(&d->v.it.lp, &e, err, sizeof(err));
        if (r < 0) return rdb_fail(d, d->v.blob_offset, "stream %s", err), -1;
        if (r > 0)
            return rdb_fail(d, d->v.blob_offset,
                            "stream listpack has more entries than its master entry says"),
                   -1;
        return 0;
    }
    long long flags, ms_diff, seq_diff, nfields, lp_count;
    if (rdb_stream_int(d, &flags) != RDB_RC_OK || rdb_stream_int(d, &ms_diff) != RDB_RC_OK ||
        rdb_stream_int(d, &seq_diff) != RDB_RC_OK)
        return -1;
    int same = (flags & STREAM_ITEM_FLAG_SAMEFIELDS) != 0;
    int live = (flags & STREAM_ITEM_FLAG_DELETED) == 0;
    if (same) {
        nfields = s->master_fields;
    } else {
        if (rdb_stream_int(d, &nfields) != RDB_RC_OK) return -1;
        if (nfields < 0 || (size_t)nfields > d->v.it.lp.len)
            return rdb_fail(d, d->v.blob_offset, "stream entry with %lld fields", nfields), -1;
    }
    if (live) {
        struct shake_item item = {
            .kind = SHAKE_ITEM_STREAM_ENTRY,
            .expire_ms = SHAKE_NO_EXPIRE,
            .count = nfields,
            .id = {s->master_id.ms + (uint64_t)ms_diff, s->master_id.seq + (uint64_t)seq_diff},
        };
        if (rdb_value_item(d, &item, "", 0, "", 0, 0) != RDB_RC_OK) return -1;
    }
    for (long long i = 0; i < nfields; i++) {
        struct rdb_elem field, value;
        if (same)
            field = s->master[i];
        else if (rdb_stream_elem(d, &field) != RDB_RC_OK)
            return -1;
        if (rdb_stream_elem(d, &value) != RDB_RC_OK) return -1;
        if (live && rdb_stream_field_item(d, &field, &value) != RDB_RC_OK) return -1;
    }
    if (rdb_stream_int(d, &lp_count) != RDB_RC_OK) return -1;
    long long expected = nfields + 3 + (same ? 0 : nfields + 1);
    if (lp_count != expected)
        return rdb_fail(d, d->v.blob_offset, "stream entry lp-count %lld, expected %lld", lp_count,
                        expected),
               -1;
    s->node_entries--;
    return 1;
}

/* The number of listpack nodes. */
static int rdb_stream_nodes(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t n;
    int rc = rdb_read_count(d, &c, &n, "stream listpack");
    if (rc != RDB_RC_OK) return rc;
    rdb_commit(d, &c);
    d->v.remaining = n;
    d->v.step = n ? RDB_V_STREAM_NODE : RDB_V_STREAM_META;
    return RDB_RC_OK;
}

/* After a node's entries: the next node, or the metadata. */
static void rdb_stream_node_done(struct rdb_decoder *d) {
    d->v.step = --d->v.remaining ? RDB_V_STREAM_NODE : RDB_V_STREAM_META;
}

/* A node: its master id (16 bytes) and its listpack. Raw and skip modes walk
 * it now (or check its header only, with raw_shallow_check); decode mode keeps
 * a copy and emits its entries in RDB_V_STREAM_ENTRIES. */
static int rdb_stream_node(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    struct rdb_string key, lp;
    int rc;
    if ((rc = rdb_read_string(d, &c, &key)) != RDB_RC_OK ||
        (rc = rdb_read_string(d, &c, &lp)) != RDB_RC_OK)
        return rc;
    if (key.enc != RDB_STR_PLAIN || key.len != RDB_STREAM_ID_LEN)
        return rdb_fail(d, key.offset, "stream node key is not a %d-byte stream id",
                        RDB_STREAM_ID_LEN);
    if (lp.enc == RDB_STR_INT)
        return rdb_fail(d, lp.offset, "stream listpack stored as an integer");
    d->v.stream.master_id = rdb_stream_id_be(key.ptr);
    d->v.blob_offset = lp.offset;
    const char *p = (const char *)lp.ptr;
    size_t n = lp.len;
    int shallow = d->v.mode != RDB_MODE_DECODE && d->opt.raw_shallow_check;
    if (shallow && lp.enc == RDB_STR_LZF) {
        rdb_commit(d, &c);
        rdb_stream_node_done(d);
        return RDB_RC_OK;
    }
    if (lp.enc == RDB_STR_LZF || d->v.mode == RDB_MODE_DECODE) {
        char scratch[RDB_ELEM_SCRATCH];
        if (lp.enc == RDB_STR_LZF) {
            if (rdb_string_bytes(d, &lp, &d->elem, scratch, &p, &n) != RDB_RC_OK) return RDB_RC_ERR;
        } else {
            if (rdb_buf_set(&d->elem, p, n) < 0)
                return rdb_fail(d, lp.offset, "out of memory for a %zu-byte listpack", n);
            p = d->elem.ptr;
        }
    }
    char err[192];
    err[0] = '\0';
    if (listpack_iter_init(&d->v.it.lp, p, n, err, sizeof(err)) < 0)
        return rdb_fail(d, lp.offset, "stream %s", err);
    if (n <= RDB_LISTPACK_EMPTY_LEN)
        return rdb_fail(d, lp.offset, "empty listpack inside a stream");
    rdb_commit(d, &c);
    if (shallow) {
        rdb_stream_node_done(d);
        return RDB_RC_OK;
    }
    if (rdb_stream_master(d) != RDB_RC_OK) return RDB_RC_ERR;
    if (d->v.mode == RDB_MODE_DECODE) {
        d->v.step = RDB_V_STREAM_ENTRIES;
        return RDB_RC_OK;
    }
    int r;
    while ((r = rdb_stream_entry(d)) == 1)
        ;
    if (r < 0) return RDB_RC_ERR;
    rdb_stream_node_done(d);
    return RDB_RC_OK;
}

/* Decode mode: the current node's entries, stopping when a chunk is ready. */
static int rdb_stream_entries(struct rdb_decoder *d) {
    while (d->ready == NULL) {
        int r = rdb_stream_entry(d);
        if (r < 0) return RDB_RC_ERR;
        if (r == 0) {
            rdb_stream_node_done(d);
            return RDB_RC_OK;
        }
    }
    return RDB_RC_OK;
}

/* Length, last id, and for types 2 and 3 the first id, the maximal deleted id
 * and the entries-added counter: one STREAM_META item. */
static int rdb_stream_meta(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t length, last_ms, last_seq, first_ms = 0, first_seq = 0, del_ms = 0, del_seq = 0;
    uint64_t added;
    int rc;
    if ((rc = rdb_read_plain_len(d, &c, &length)) != RDB_RC_OK ||
        (rc = rdb_read_plain_len(d, &c, &last_ms)) != RDB_RC_OK ||
        (rc = rdb_read_plain_len(d, &c, &last_seq)) != RDB_RC_OK)
        return rc;
    added = length;
    if (d->v.type >= RDB_TYPE_STREAM_LISTPACKS_2) {
        if ((rc = rdb_read_plain_len(d, &c, &first_ms)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &first_seq)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &del_ms)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &del_seq)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &added)) != RDB_RC_OK)
            return rc;
    }
    struct shake_item item = {
        .kind = SHAKE_ITEM_STREAM_META,
        .expire_ms = SHAKE_NO_EXPIRE,
        .id = {last_ms, last_seq},
        .id2 = {del_ms, del_seq},
        .count = (int64_t)added,
        .length = (int64_t)length,
    };
    if (rdb_value_item(d, &item, "", 0, "", 0, 0) != RDB_RC_OK) return RDB_RC_ERR;
    rdb_commit(d, &c);
    d->v.step = RDB_V_STREAM_GROUPS;
    return RDB_RC_OK;
}

/* The number of consumer groups. */
static int rdb_stream_groups(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t n;
    int rc = rdb_read_count(d, &c, &n, "stream group");
    if (rc != RDB_RC_OK) return rc;
    rdb_commit(d, &c);
    d->v.stream.groups_left = n;
    d->v.step = n ? RDB_V_STREAM_GROUP : RDB_V_END;
    return RDB_RC_OK;
}

/* Copies a string element into one of the stream's name buffers. */
static int rdb_stream_name(struct rdb_decoder *d, const struct rdb_string *s, struct rdb_buf *dst) {
    char scratch[RDB_ELEM_SCRATCH];
    const char *p;
    size_t n;
    if (rdb_string_bytes(d, s, &d->tmp, scratch, &p, &n) != RDB_RC_OK) return RDB_RC_ERR;
    if (rdb_buf_set(dst, p, n) < 0)
        return rdb_fail(d, s->offset, "out of memory for a %zu-byte name", n);
    return RDB_RC_OK;
}

/* A group: name, last delivered id, entries read (types 2, 3), PEL size. */
static int rdb_stream_group(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    struct rdb_string name;
    uint64_t ms, seq, read = UINT64_MAX, pel;
    int rc;
    if ((rc = rdb_read_string(d, &c, &name)) != RDB_RC_OK ||
        (rc = rdb_read_plain_len(d, &c, &ms)) != RDB_RC_OK ||
        (rc = rdb_read_plain_len(d, &c, &seq)) != RDB_RC_OK)
        return rc;
    if (d->v.type >= RDB_TYPE_STREAM_LISTPACKS_2 &&
        (rc = rdb_read_plain_len(d, &c, &read)) != RDB_RC_OK)
        return rc;
    if ((rc = rdb_read_count(d, &c, &pel, "stream PEL")) != RDB_RC_OK) return rc;
    struct rdb_stream_state *s = &d->v.stream;
    if (rdb_stream_name(d, &name, &s->group) != RDB_RC_OK) return RDB_RC_ERR;
    struct shake_item item = {
        .kind = SHAKE_ITEM_STREAM_GROUP,
        .expire_ms = SHAKE_NO_EXPIRE,
        .id = {ms, seq},
        .count = (int64_t)read, /* UINT64_MAX (unknown) becomes -1 */
    };
    if (rdb_value_item(d, &item, s->group.ptr, s->group.len, "", 0, 0) != RDB_RC_OK)
        return RDB_RC_ERR;
    rdb_commit(d, &c);
    s->pel_len = 0;
    s->pel_left = pel;
    d->v.step = pel ? RDB_V_STREAM_GROUP_PEL : RDB_V_STREAM_CONSUMERS;
    return RDB_RC_OK;
}

/* The group's global PEL: id, delivery time, delivery count, kept in file
 * (rax, ascending) order so consumers' ids can be found by binary search. */
static int rdb_stream_group_pel(struct rdb_decoder *d) {
    struct rdb_stream_state *s = &d->v.stream;
    while (s->pel_left > 0) {
        struct rdb_cursor c = rdb_cursor_at(d);
        uint64_t at = rdb_offset(d);
        const unsigned char *id;
        int64_t when;
        uint64_t count;
        int rc;
        if ((rc = rdb_read_bytes(&c, RDB_STREAM_ID_LEN, &id)) != RDB_RC_OK ||
            (rc = rdb_read_i64le(&c, &when)) != RDB_RC_OK ||
            (rc = rdb_read_plain_len(d, &c, &count)) != RDB_RC_OK)
            return rc;
        if (s->pel_len > 0 && memcmp(s->pel[s->pel_len - 1].id, id, RDB_STREAM_ID_LEN) >= 0)
            return rdb_fail(d, at, "stream group PEL is not in ascending id order");
        if (s->pel_len == s->pel_cap) {
            size_t cap = s->pel_cap ? s->pel_cap * 2 : 64;
            struct rdb_pel_entry *p = realloc(s->pel, cap * sizeof(*p));
            if (p == NULL) return rdb_fail(d, at, "out of memory for a stream PEL");
            s->pel = p;
            s->pel_cap = cap;
        }
        struct rdb_pel_entry *e = &s->pel[s->pel_len++];
        memcpy(e->id, id, RDB_STREAM_ID_LEN);
        e->delivery_ms = when;
        e->delivery_count = count > INT64_MAX ? INT64_MAX : (int64_t)count;
        rdb_commit(d, &c);
        s->pel_left--;
    }
    d->v.step = RDB_V_STREAM_CONSUMERS;
    return RDB_RC_OK;
}

/* After a group's consumers: the next group, or the end of the value. */
static void rdb_stream_group_done(struct rdb_decoder *d) {
    d->v.step = --d->v.stream.groups_left ? RDB_V_STREAM_GROUP : RDB_V_END;
}

/* The number of consumers of the group. */
static int rdb_stream_consumers(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    uint64_t n;
    int rc = rdb_read_count(d, &c, &n, "stream consumer");
    if (rc != RDB_RC_OK) return rc;
    rdb_commit(d, &c);
    d->v.stream.consumers_left = n;
    if (n)
        d->v.step = RDB_V_STREAM_CONSUMER;
    else
        rdb_stream_group_done(d);
    return RDB_RC_OK;
}

/* After a consumer's PEL: the next consumer, or the group is done. */
static void rdb_stream_consumer_done(struct rdb_decoder *d) {
    if (--d->v.stream.consumers_left)
        d->v.step = RDB_V_STREAM_CONSUMER;
    else
        rdb_stream_group_done(d);
}

/* A consumer: name, seen time, active time (type 3), PEL size. */
static int rdb_stream_consumer(struct rdb_decoder *d) {
    struct rdb_cursor c = rdb_cursor_at(d);
    struct rdb_string name;
    int64_t seen, active = -1;
    uint64_t pel;
    int rc;
    if ((rc = rdb_read_string(d, &c, &name)) != RDB_RC_OK ||
        (rc = rdb_read_i64le(&c, &seen)) != RDB_RC_OK)
        return rc;
    if (d->v.type >= RDB_TYPE_STREAM_LISTPACKS_3 && (rc = rdb_read_i64le(&c, &active)) != RDB_RC_OK)
        return rc;
    if ((rc = rdb_read_count(d, &c, &pel, "stream consumer PEL")) != RDB_RC_OK) return rc;
    struct rdb_stream_state *s = &d->v.stream;
    if (rdb_stream_name(d, &name, &s->consumer) != RDB_RC_OK) return RDB_RC_ERR;
    struct shake_item item = {
        .kind = SHAKE_ITEM_STREAM_CONSUMER,
        .expire_ms = SHAKE_NO_EXPIRE,
        .seen_ms = seen,
        .active_ms = active,
    };
    if (rdb_value_item(d, &item, s->group.ptr, s->group.len, s->consumer.ptr, s->consumer.len, 0) !=
        RDB_RC_OK)
        return RDB_RC_ERR;
    rdb_commit(d, &c);
    s->pel_left = pel;
    if (pel)
        d->v.step = RDB_V_STREAM_CONSUMER_PEL;
    else
        rdb_stream_consumer_done(d);
    return RDB_RC_OK;
}

/* The global PEL entry with this id, or NULL. */
static const struct rdb_pel_entry *rdb_stream_pel_find(const struct rdb_stream_state *s,
                                                       const unsigned char *id) {
    size_t lo = 0, hi = s->pel_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(s->pel[mid].id, id, RDB_STREAM_ID_LEN);
        if (cmp == 0) return &s->pel[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The consumer's PEL: ids only, whose delivery data is in the group's PEL. */
static int rdb_stream_consumer_pel(struct rdb_decoder *d) {
    struct rdb_stream_state *s = &d->v.stream;
    while (s->pel_left > 0 && d->ready == NULL) {
        struct rdb_cursor c = rdb_cursor_at(d);
        uint64_t at = rdb_offset(d);
        const unsigned char *id;
        int rc = rdb_read_bytes(&c, RDB_STREAM_ID_LEN, &id);
        if (rc != RDB_RC_OK) return rc;
        const struct rdb_pel_entry *e = rdb_stream_pel_find(s, id);
        if (e == NULL)
            return rdb_fail(d, at, "stream consumer PEL entry not found in the group PEL");
        struct shake_item item = {
            .kind = SHAKE_ITEM_STREAM_PENDING,
            .expire_ms = SHAKE_NO_EXPIRE,
            .id = rdb_stream_id_be(id),
            .delivery_ms = e->delivery_ms,
            .count = e->delivery_count,
        };
        if (rdb_value_item(d, &item, s->group.ptr, s->group.len, s->consumer.ptr, s->consumer.len,
                           0) != RDB_RC_OK)
            return RDB_RC_ERR;
        rdb_commit(d, &c);
        s->pel_left--;
    }
    if (s->pel_left == 0) rdb_stream_consumer_done(d);
    return RDB_RC_OK;
}

int rdb_stream_step(struct rdb_decoder *d) {
    switch (d->v.step) {
    case RDB_V_STREAM_NODES: return rdb_stream_nodes(d);
    case RDB_V_STREAM_NODE: return rdb_stream_node(d);
    case RDB_V_STREAM_ENTRIES: return rdb_stream_entries(d);
    case RDB_V_STREAM_META: return rdb_stream_meta(d);
    case RDB_V_STREAM_GROUPS: return rdb_stream_groups(d);
    case RDB_V_STREAM_GROUP: return rdb_stream_group(d);
    case RDB_V_STREAM_GROUP_PEL: return rdb_stream_group_pel(d);
    case RDB_V_STREAM_CONSUMERS: return rdb_stream_consumers(d);
    case RDB_V_STREAM_CONSUMER: return rdb_stream_consumer(d);
    case RDB_V_STREAM_CONSUMER_PEL: return rdb_stream_consumer_pel(d);
    default: return rdb_fail(d, rdb_offset(d), "impossible stream walker step %d", d->v.step);
    }
}
