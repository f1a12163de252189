/* entry.h -- the one type that crosses every boundary of shake.
 *
 * Readers produce entries, the filter keeps, drops or rewrites them, the writer
 * consumes them. A reader never knows which target it feeds, and the writer never
 * knows which reader made an entry: this header is all they share.
 *
 * Kinds:
 *  - SHAKE_ENTRY_KEY: a whole value in RDB encoding ("raw": the bytes that follow
 *    the type byte, exactly as the RDB stored them). The writer passes it to the
 *    target with RESTORE after appending the RDB version and a CRC64.
 *  - SHAKE_ENTRY_CHUNK: part of a value, as decoded items. Used for values too big
 *    to hold whole, and for encodings the target cannot RESTORE. A key's chunks
 *    arrive in order; the first has SHAKE_CHUNK_FIRST set, the last SHAKE_CHUNK_LAST
 *    (a small value may be one chunk with both). expire_ms and the LRU/LFU hints are
 *    meaningful on the last chunk.
 *  - SHAKE_ENTRY_FUNCTION: one function library (FUNCTION LOAD REPLACE <code>); the
 *    code is in `key`.
 *  - SHAKE_ENTRY_CMD: a command from the replication stream (argv).
 *
 * Ownership: an entry owns every byte it points to. shake_entry_free() releases it.
 */
#ifndef SHAKE_ENTRY_H
#define SHAKE_ENTRY_H

#include <stddef.h>
#include <stdint.h>

enum shake_entry_kind {
    SHAKE_ENTRY_KEY,
    SHAKE_ENTRY_CHUNK,
    SHAKE_ENTRY_FUNCTION,
    SHAKE_ENTRY_CMD,
};

/* Logical value types, independent of the RDB encoding. */
enum shake_value_type {
    SHAKE_TYPE_STRING,
    SHAKE_TYPE_LIST,
    SHAKE_TYPE_SET,
    SHAKE_TYPE_ZSET,
    SHAKE_TYPE_HASH,
    SHAKE_TYPE_STREAM,
    SHAKE_TYPE_MODULE,
};

/* A byte string that points into memory owned by someone else (the entry). */
struct shake_bytes {
    const char *ptr;
    size_t len;
};

struct shake_stream_id {
    uint64_t ms;
    uint64_t seq;
};

/* One decoded element of a chunk. Which fields are meaningful depends on kind. */
enum shake_item_kind {
    SHAKE_ITEM_STRING,          /* a = the whole string value; a long one may come as
                                   several items (and chunks), its pieces in order */
    SHAKE_ITEM_LIST_ELEMENT,    /* a = element, in list order (head first) */
    SHAKE_ITEM_SET_MEMBER,      /* a = member */
    SHAKE_ITEM_ZSET_MEMBER,     /* a = member, score */
    SHAKE_ITEM_HASH_FIELD,      /* a = field, b = value, expire_ms (-1: no TTL) */
    SHAKE_ITEM_STREAM_ENTRY,    /* id, count = number of STREAM_FIELD items that follow */
    SHAKE_ITEM_STREAM_FIELD,    /* a = field, b = value (belongs to the entry before it) */
    SHAKE_ITEM_STREAM_META,     /* id = last id, id2 = max deleted id, count = entries added,
                                   length = number of entries; comes after every entry */
    SHAKE_ITEM_STREAM_GROUP,    /* a = group name, id = last delivered id, count = entries
                                   read (-1: unknown) */
    SHAKE_ITEM_STREAM_CONSUMER, /* a = group, b = consumer, seen_ms, active_ms (-1: unknown) */
    SHAKE_ITEM_STREAM_PENDING,  /* a = group, b = consumer, id, delivery_ms, count = delivery
                                   count; after the consumer it belongs to */
};

struct shake_item {
    enum shake_item_kind kind;
    struct shake_bytes a;
    struct shake_bytes b;
    double score;
    int64_t expire_ms;
    int64_t count;
    int64_t length;
    int64_t seen_ms;
    int64_t active_ms;
    int64_t delivery_ms;
    struct shake_stream_id id;
    struct shake_stream_id id2;
};

#define SHAKE_CHUNK_FIRST 1u
#define SHAKE_CHUNK_LAST 2u

#define SHAKE_NO_EXPIRE (-1)

/* CMD arguments whose arrays live inside the entry: SET key value PXAT ms is 5. */
#define SHAKE_ARGV_INLINE 6
/* Bytes of CMD arguments kept inside the entry (SET, HSET, ZADD... of short keys
 * and values fit): no malloc and free per argument. */
#define SHAKE_ARGBUF 192

struct shake_entry {
    enum shake_entry_kind kind;
    int source;      /* index of the shard or file that produced it */
    int db;          /* database number (after the filter: the target's) */
    uint64_t offset; /* replication offset at which the entry is complete, or
                        for an RDB file the byte offset where the key begins */
    char *key;       /* KEY/CHUNK: the key; FUNCTION: the library code */
    size_t key_len;

    /* KEY and CHUNK */
    enum shake_value_type type;
    int64_t expire_ms; /* absolute unix time in ms, SHAKE_NO_EXPIRE for none */
    int64_t idle_s;    /* LRU idle seconds, -1 when unknown */
    int freq;          /* LFU frequency 0..255, -1 when unknown */

    /* KEY: RDB type byte and the value bytes after it */
    uint8_t rdb_type;
    char *raw;
    size_t raw_len;
    size_t raw_cap;   /* bytes allocated at raw when more than raw_len, else 0: a
                         consumer that takes raw may use the room after the value;
                         freed with shake_value_buffer_free when not 0 */
    size_t raw_front; /* with raw_cap: bytes allocated before raw, which a consumer
                         that takes raw may use too; the buffer is raw - raw_front,
                         of raw_front + raw_cap bytes */

    /* CHUNK: items whose bytes live in `arena` */
    unsigned chunk_flags;
    struct shake_item *items;
    size_t nitems;
    char *arena;

    /* CMD: each argv[i] is NUL-terminated, and either lies in argbuf (small
       arguments, from shake_entry_arg_alloc) or is malloc'd: free or take one with
       shake_entry_arg_free / shake_entry_arg_own, never free() directly. The arrays
       are argv_inline and argv_len_inline for up to SHAKE_ARGV_INLINE arguments
       (shake_entry_set_argc), else malloc'd */
    int argc;
    char **argv;
    size_t *argv_len;
    size_t argbuf_used;
    /* From here on, a reused entry is not cleared: shake_entry_set_argc clears the
       inline arrays when it uses them, and argbuf holds nothing until allocated. */
    char *argv_inline[SHAKE_ARGV_INLINE];
    size_t argv_len_inline[SHAKE_ARGV_INLINE];
    char argbuf[SHAKE_ARGBUF];
};

/* `len` bytes plus a NUL for a CMD argument: inside the entry while argbuf has
 * room (a streamed command's arguments are mostly small), else malloc'd. NULL when
 * out of memory. */
char *shake_entry_arg_alloc(struct shake_entry *entry, size_t len);
/* Free argv[i] (when malloc'd) and set it to NULL. */
void shake_entry_arg_free(struct shake_entry *entry, int i);
/* Make argv[i] malloc'd (copying it out of argbuf if it is there), for a caller
 * that reallocs it or keeps it past the entry. Returns 0, or -1 when out of
 * memory (argv[i] unchanged). */
int shake_entry_arg_own(struct shake_entry *entry, int i);

/* Whether CMD argument i exists and is `word` (lowercase, `len` bytes) in any
 * case: the length first, since the stream asks this of every command. */
int shake_entry_arg_is(const struct shake_entry *entry, int i, const char *word, size_t len);

/* Released entries are kept per thread (a bounded number) for the next
 * shake_entry_new; shake_entry_trim frees the calling thread's. */
struct shake_entry *shake_entry_new(enum shake_entry_kind kind);
void shake_entry_free(struct shake_entry *entry);
void shake_entry_trim(void);
/* Room for `argc` CMD arguments, all NULL (inside the entry when few). Returns 0,
 * or -1 when out of memory (shake_entry_free still releases the entry). */
int shake_entry_set_argc(struct shake_entry *entry, int argc);

/* Approximate bytes held by an entry, for queue and batch bounds. */
size_t shake_entry_size(const struct shake_entry *entry);

const char *shake_value_type_name(enum shake_value_type type);

/* Value buffers: a KEY entry's raw bytes (and the RESTORE command built in them)
 * are allocated and freed at the key rate, freed in bursts as replies arrive,
 * which costs malloc more than the value's bytes cost to copy. Buffers of up to
 * SHAKE_VALUE_BUFFER_POOLED bytes are rounded up to a size class, and freed ones
 * are kept per class (per thread, up to a bound) for the next allocations.
 *
 * shake_value_buffer_alloc returns at least `size` bytes, with the usable size in
 * *cap; NULL when out of memory. shake_value_buffer_free takes any malloc'd
 * buffer with `cap` no more than its real size (0: unknown, freed at once). */
#define SHAKE_VALUE_BUFFER_POOLED ((size_t)64 << 10)
void *shake_value_buffer_alloc(size_t size, size_t *cap);
void shake_value_buffer_free(void *buffer, size_t cap);
/* Frees the calling thread's kept buffers. */
void shake_value_buffer_trim(void);

#endif
