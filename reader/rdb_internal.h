/* rdb_internal.h -- the decoder's private state, shared by the files that make up
 * the streaming RDB decoder and by nothing else:
 *   rdb_decode.c  public API, input buffer, header, opcodes, keys, CRC, errors
 *   rdb_read.c    element primitives: lengths, strings, doubles, times
 *   rdb_value.c   the per-type value walker (everything but streams)
 *   rdb_stream.c  the stream walker
 *   rdb_chunk.c   the CHUNK entry builder
 *
 * Parsing happens at element boundaries: a step parses one whole element (or a
 * small fixed group of them) from the buffered bytes through a cursor, and only
 * then commits the input position; if the bytes are not all there yet it returns
 * RDB_RC_MORE and nothing moved, so the same step runs again after a feed.
 */
#ifndef SHAKE_RDB_INTERNAL_H
#define SHAKE_RDB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "reader/intset.h"
#include "reader/listpack.h"
#include "reader/rdb_decode.h"
#include "reader/rdb_elem.h"
#include "reader/rdb_types.h"
#include "reader/ziplist.h"
#include "reader/zipmap.h"
#include "shake/entry.h"

/* Defaults for options left at 0. */
#define RDB_DEFAULT_RAW_MAX (16u << 20)
#define RDB_DEFAULT_CHUNK_MAX_BYTES (1u << 20)
#define RDB_DEFAULT_CHUNK_MAX_ITEMS 1024u
#define RDB_DEFAULT_MAX_ELEMENT ((size_t)1 << 30)
/* Room left after a KEY entry's raw bytes, on top of the key's length: enough for
 * a consumer to wrap the value into a command in place (RESTORE's framing and
 * arguments) instead of copying it. */
#define RDB_RAW_ROOM 192u
/* Room left before them, on top of the key's length: enough for a consumer to
 * put the command's head in front of the value (RESTORE's is at most 92 bytes
 * and the key) instead of moving it. */
#define RDB_RAW_FRONT 96u
/* Buffers (input, blob, decompressed strings) larger than this are given back
 * once the element that needed them is done. */
#define RDB_BUF_KEEP ((size_t)4 << 20)
/* No collection holds this many elements: a count above it is corruption. */
#define RDB_MAX_COUNT ((uint64_t)1 << 40)
#define RDB_ERR_LEN 512

/* Step results, inside the decoder. */
enum rdb_rc {
    RDB_RC_OK,     /* progress: run the next step */
    RDB_RC_MORE,   /* the element is not all buffered: nothing was consumed */
    RDB_RC_ERR,    /* d->err is set */
    RDB_RC_ENTRY,  /* an entry is ready in *out */
    RDB_RC_SWITCH, /* raw value grew past raw_max: decode it instead */
    RDB_RC_DONE,   /* the RDB ended */
};

/* Top-level states: one per record kind that can span more than one element. */
enum rdb_state {
    RDB_STATE_HEADER,     /* the 9-byte magic + version */
    RDB_STATE_RECORD,     /* an opcode with its operands, or a type byte + key */
    RDB_STATE_MODULE_AUX, /* the body of a MODULE_AUX record */
    RDB_STATE_VALUE,      /* a key's value */
    RDB_STATE_CHECKSUM,   /* the 8-byte CRC64 trailer */
    RDB_STATE_DONE,
    RDB_STATE_ERROR,
};

/* How a value is walked. */
enum rdb_value_mode {
    RDB_MODE_RAW,    /* keep the bytes (pinned in the input) for a KEY entry */
    RDB_MODE_DECODE, /* decode into items, emitted as CHUNK entries */
    RDB_MODE_SKIP,   /* walk and validate, emit nothing (expired key) */
};

/* Steps of the value walker: one case per element kind. */
enum rdb_value_step {
    RDB_V_BEGIN,               /* type-specific prelude */
    RDB_V_STRING,              /* a string value */
    RDB_V_STRING_PIECES,       /* decode mode: a long string, one piece per chunk */
    RDB_V_COUNT,               /* element/node count of a collection */
    RDB_V_ELEMENT,             /* list or set element */
    RDB_V_ZSET_MEMBER,         /* member + text or binary score */
    RDB_V_HASH_FIELD,          /* field + value (+ TTL) */
    RDB_V_HASH_MIN_EXPIRE,     /* HASH_METADATA / HASH_LISTPACK_EX prefix */
    RDB_V_BLOB,                /* one packed blob */
    RDB_V_BLOB_ITEMS,          /* items of the current blob (decode mode) */
    RDB_V_QUICKLIST_NODE,      /* [container] + node blob */
    RDB_V_MODULE_ID,           /* module type id of a MODULE_2 value */
    RDB_V_MODULE_BODY,         /* module opcodes up to EOF */
    RDB_V_STREAM_NODES,        /* number of listpacks */
    RDB_V_STREAM_NODE,         /* master id + listpack */
    RDB_V_STREAM_ENTRIES,      /* entries of the current listpack (decode mode) */
    RDB_V_STREAM_META,         /* length, ids, entries added */
    RDB_V_STREAM_GROUPS,       /* number of consumer groups */
    RDB_V_STREAM_GROUP,        /* group name, last id, entries read, PEL size */
    RDB_V_STREAM_GROUP_PEL,    /* one global PEL entry */
    RDB_V_STREAM_CONSUMERS,    /* number of consumers of the group */
    RDB_V_STREAM_CONSUMER,     /* consumer name, times, PEL size */
    RDB_V_STREAM_CONSUMER_PEL, /* one consumer PEL id */
    RDB_V_END,
};

enum rdb_blob_kind { RDB_BLOB_LISTPACK, RDB_BLOB_ZIPLIST, RDB_BLOB_INTSET, RDB_BLOB_ZIPMAP };

/* Where the bytes of one parse attempt come from. */
struct rdb_cursor {
    const unsigned char *p;
    const unsigned char *end;
};

/* A growable byte buffer; owner: the struct that embeds it. */
struct rdb_buf {
    char *ptr;
    size_t len;
    size_t cap;
};

/* A string element as stored: not yet decompressed nor printed. */
enum rdb_string_enc { RDB_STR_PLAIN, RDB_STR_INT, RDB_STR_LZF };
struct rdb_string {
    enum rdb_string_enc enc;
    const unsigned char *ptr; /* PLAIN: the bytes; LZF: the compressed bytes */
    size_t len;               /* PLAIN: length; LZF: compressed length */
    size_t ulen;              /* the decoded length (INT: unknown, 0) */
    long long ival;           /* INT */
    uint64_t offset;          /* absolute offset of the string's first byte */
};

/* Items of the chunk being built; strings are stored as offsets into the arena
 * until the chunk is handed over, since the arena moves when it grows. */
struct rdb_chunk {
    struct shake_item *items;
    size_t nitems;
    size_t cap;
    size_t *offsets; /* 2 per item: a and b */
    struct rdb_buf arena;
};

/* A stream group's global PEL entry, held until its consumers are read. */
struct rdb_pel_entry {
    unsigned char id[RDB_STREAM_ID_LEN];
    int64_t delivery_ms;
    int64_t delivery_count;
};

/* Walker state for streams (rdb_stream.c). */
struct rdb_stream_state {
    struct shake_stream_id master_id;
    int64_t master_fields;   /* fields of the master entry */
    struct rdb_elem *master; /* master field names (into d->elem) */
    size_t master_cap;
    uint64_t node_entries;     /* entries (valid + deleted) left in the node */
    struct rdb_buf group;      /* current group name */
    struct rdb_buf consumer;   /* current consumer name */
    struct rdb_pel_entry *pel; /* the group's global PEL */
    size_t pel_len;
    size_t pel_cap;
    uint64_t groups_left;
    uint64_t pel_left;
    uint64_t consumers_left;
};

/* State of the value being walked. */
struct rdb_value {
    uint8_t type;
    enum rdb_value_mode mode;
    enum rdb_value_step step;
    uint64_t start;      /* absolute offset of the first value byte */
    uint64_t remaining;  /* elements, nodes, listpacks left */
    uint64_t elements;   /* elements seen: 0 at the end means empty */
    int chunks_sent;     /* CHUNK entries emitted for this key */
    uint64_t min_expire; /* HASH_METADATA base for relative TTLs */
    /* RDB_V_STRING_PIECES: `remaining` counts the bytes left; they come from the
     * input, or (LZF) from d->tmp at piece_offset */
    int pieces_in_tmp;
    size_t piece_offset;
    /* the current blob */
    enum rdb_blob_kind blob_kind;
    int tuple;            /* elements per item: 1, 2, or 3 */
    uint64_t blob_offset; /* absolute offset of the blob string */
    union {
        struct listpack_iter lp;
        struct ziplist_iter zl;
        struct intset_iter is;
        struct zipmap_iter zm;
    } it;
    struct rdb_stream_state stream;
};

/* Attributes that opcodes set before a key's type byte. */
struct rdb_pending {
    int64_t expire_ms;
    int64_t idle_s;
    int freq;
    uint64_t record_offset; /* where the key's record began */
    int has_record_offset;
};

struct rdb_decoder {
    struct rdb_decoder_options opt;
    struct rdb_decoder_stats stats;
    enum rdb_state state;
    int finished; /* rdb_decoder_finish was called */
    char err[RDB_ERR_LEN];

    /* Input: buf[pos..len) is unread; buf[0] is at absolute offset base. */
    char *buf;
    size_t len;
    size_t pos;
    size_t cap;
    uint64_t base;
    uint64_t pin; /* absolute offset that must stay buffered, or UINT64_MAX */
    uint64_t reached; /* the furthest offset before a value was re-read */

    /* CRC64 over bytes [0, crc_done) of the file. */
    uint64_t crc;
    uint64_t crc_done;
    int crc_frozen; /* the EOF opcode was read: no more bytes count */

    int version;
    int valkey;
    int db;
    struct rdb_pending pending;

    /* The current key (owner: decoder), NULL between keys. */
    char *key;
    size_t key_len;
    int64_t key_expire_ms;
    int64_t key_idle_s;
    int key_freq;
    uint64_t key_offset;

    struct rdb_value v;
    struct rdb_chunk chunk;
    struct shake_entry *ready; /* a full CHUNK waiting to be returned (owner: decoder) */
    struct rdb_buf elem;       /* the current blob, decompressed if needed */
    struct rdb_buf tmp;        /* a decompressed string element */
    struct rdb_buf tmp2;       /* a second one (hash value, stream name) */
};

/* rdb_decode.c */
uint64_t rdb_offset(const struct rdb_decoder *d);
uint64_t rdb_offset_of(const struct rdb_decoder *d, const unsigned char *p);
struct rdb_cursor rdb_cursor_at(const struct rdb_decoder *d);
void rdb_commit(struct rdb_decoder *d, const struct rdb_cursor *c);
/* Drops consumed input and shrinks the buffer when a big element left it large. */
void rdb_input_trim(struct rdb_decoder *d);
int rdb_fail(struct rdb_decoder *d, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* rdb_read.c: each returns RDB_RC_OK, RDB_RC_MORE, RDB_RC_ERR or RDB_RC_SWITCH;
 * on anything but OK the cursor is left wherever it got to, and the caller
 * does not commit it. */
int rdb_read_byte(struct rdb_cursor *c, unsigned char *out);
int rdb_read_bytes(struct rdb_cursor *c, size_t n, const unsigned char **out);
int rdb_read_len(struct rdb_decoder *d, struct rdb_cursor *c, uint64_t *len, int *encoded);
int rdb_read_plain_len(struct rdb_decoder *d, struct rdb_cursor *c, uint64_t *len);
int rdb_read_count(struct rdb_decoder *d, struct rdb_cursor *c, uint64_t *count, const char *what);
int rdb_read_string(struct rdb_decoder *d, struct rdb_cursor *c, struct rdb_string *s);
int rdb_read_i64le(struct rdb_cursor *c, int64_t *out);
int rdb_read_text_double(struct rdb_decoder *d, struct rdb_cursor *c, double *out);
int rdb_read_binary_double(struct rdb_cursor *c, double *out);
/* The string's bytes: in place, printed into `scratch` (>= RDB_ELEM_SCRATCH), or
 * decompressed into buf. Returns RDB_RC_OK or RDB_RC_ERR. */
int rdb_string_bytes(struct rdb_decoder *d, const struct rdb_string *s, struct rdb_buf *buf,
                     char *scratch, const char **out, size_t *out_len);
/* The string's decoded length without decoding (INT: its printed length). */
size_t rdb_string_len(const struct rdb_string *s);
int rdb_buf_reserve(struct rdb_buf *b, size_t need);
void rdb_buf_free(struct rdb_buf *b);
/* Frees the buffer's memory when it grew past `keep` bytes (after a big element). */
void rdb_buf_trim(struct rdb_buf *b, size_t keep);
int rdb_buf_set(struct rdb_buf *b, const char *p, size_t n);

/* rdb_chunk.c */
void rdb_chunk_init(struct rdb_chunk *c);
void rdb_chunk_free(struct rdb_chunk *c);
int rdb_chunk_full(const struct rdb_chunk *c, size_t max_items, size_t max_bytes);
/* Appends an item copying a and b into the arena. -1 on out of memory. */
int rdb_chunk_add(struct rdb_chunk *c, const struct shake_item *item, const char *a, size_t alen,
                  const char *b, size_t blen);
/* Moves the items into entry (which must have none) and empties the builder. */
int rdb_chunk_take(struct rdb_chunk *c, struct shake_entry *entry);

/* rdb_value.c */
void rdb_value_begin(struct rdb_decoder *d, uint8_t type, enum rdb_value_mode mode);
/* Walks the current value; RDB_RC_ENTRY with *out when a CHUNK or KEY entry is
 * ready, RDB_RC_DONE when the value ended with nothing (more) to emit. */
int rdb_value_step(struct rdb_decoder *d, struct shake_entry **out);
void rdb_value_free(struct rdb_decoder *d);
enum shake_value_type rdb_value_type(uint8_t rdb_type);
int rdb_is_object_type(const struct rdb_decoder *d, int type);
/* Adds an item to the chunk (decode mode) or only counts it; when the chunk is
 * full and the item starts a group, the full chunk moves to d->ready first. */
int rdb_value_item(struct rdb_decoder *d, const struct shake_item *item, const char *a, size_t alen,
                   const char *b, size_t blen, int continues_group);
/* Walks module opcodes up to RDB_MODULE_OPCODE_EOF (values and MODULE_AUX). */
int rdb_module_body_step(struct rdb_decoder *d);

/* rdb_stream.c */
int rdb_stream_step(struct rdb_decoder *d);
void rdb_stream_reset(struct rdb_stream_state *s);
void rdb_stream_free(struct rdb_stream_state *s);

#endif
