/* rewrite.c -- owns the slow path: CHUNK and FUNCTION entries become ordinary
 * commands (SET, RPUSH, SADD, ZADD, HSET, HPEXPIREAT, XADD, XSETID, XGROUP, XCLAIM,
 * PEXPIREAT, FUNCTION LOAD).
 *
 * Variadic commands are batched, bounded by options->batch_max_items elements and
 * options->batch_max_bytes bytes of element strings. Each command's argv is sized
 * exactly before it is filled, then encoded once by redisFormatCommandArgv: element
 * bytes are copied once, into the RESP. Pure: no I/O, no global state; it must not
 * decide routing, check the target's contents or interpret replies. On error nothing
 * is left appended to the list.
 */
#include "writer/rewrite.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REWRITE_NUMBER_SIZE 48 /* "<u64>-<u64>" or a "%.17g" score, with the NUL */
#define REWRITE_KEY_SHOWN 128  /* bytes of a key quoted in an error message */

/* One call of rewrite_build: its inputs and where errors go. */
struct rewrite_ctx {
    const struct shake_entry *entry;
    const struct rewrite_options *options;
    struct command_list *out;
    char *err;
    size_t errlen;
};

/* The argv of one command, allocated for exactly `capacity` arguments. Numbers
 * printed for it (scores, ids, counts) live in `numbers`, which never moves, so
 * pointers to them stay valid until the command is encoded. */
struct rewrite_argv {
    const char **ptr;
    size_t *len;
    int count;
    int capacity;
    char (*numbers)[REWRITE_NUMBER_SIZE];
    int numbers_used;
    int numbers_capacity;
};

/* Fills err with "key '<key>': <message>" and returns -1. */
static int rewrite_fail(const struct rewrite_ctx *ctx, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static int rewrite_fail(const struct rewrite_ctx *ctx, const char *format, ...) {
    if (ctx->err == NULL || ctx->errlen == 0) return -1;
    const struct shake_entry *entry = ctx->entry;
    int shown = entry->key_len > REWRITE_KEY_SHOWN ? REWRITE_KEY_SHOWN : (int)entry->key_len;
    int n = snprintf(ctx->err, ctx->errlen, "key '%.*s': ", shown, entry->key ? entry->key : "");
    if (n < 0 || (size_t)n >= ctx->errlen) return -1;
    va_list args;
    va_start(args, format);
    vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, format, args);
    va_end(args);
    return -1;
}

/* Allocates room for `nargs` arguments and `nnumbers` printed numbers. */
static int rewrite_argv_open(const struct rewrite_ctx *ctx, struct rewrite_argv *argv, size_t nargs,
                             size_t nnumbers) {
    memset(argv, 0, sizeof(*argv));
    argv->ptr = malloc(nargs * sizeof(*argv->ptr));
    argv->len = malloc(nargs * sizeof(*argv->len));
    argv->numbers = malloc((nnumbers ? nnumbers : 1) * sizeof(*argv->numbers));
    argv->capacity = (int)nargs;
    argv->numbers_capacity = (int)nnumbers;
    if (argv->ptr == NULL || argv->len == NULL || argv->numbers == NULL) {
        free(argv->ptr);
        free(argv->len);
        free(argv->numbers);
        memset(argv, 0, sizeof(*argv));
        return rewrite_fail(ctx, "out of memory building a command");
    }
    return 0;
}

static void rewrite_argv_add(struct rewrite_argv *argv, const char *ptr, size_t len) {
    argv->ptr[argv->count] = ptr;
    argv->len[argv->count] = len;
    argv->count++;
}

static void rewrite_argv_add_str(struct rewrite_argv *argv, const char *text) {
    rewrite_argv_add(argv, text, strlen(text));
}

static void rewrite_argv_add_bytes(struct rewrite_argv *argv, struct shake_bytes bytes) {
    rewrite_argv_add(argv, bytes.ptr ? bytes.ptr : "", bytes.len);
}

static void rewrite_argv_add_key(struct rewrite_argv *argv, const struct shake_entry *entry) {
    rewrite_argv_add(argv, entry->key ? entry->key : "", entry->key_len);
}

/* Prints a number into the next slot and adds it as an argument. */
static void rewrite_argv_add_number(struct rewrite_argv *argv, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void rewrite_argv_add_number(struct rewrite_argv *argv, const char *format, ...) {
    char *slot = argv->numbers[argv->numbers_used++];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(slot, REWRITE_NUMBER_SIZE, format, args);
    va_end(args);
    rewrite_argv_add(argv, slot, (size_t)n);
}

static void rewrite_argv_add_i64(struct rewrite_argv *argv, int64_t value) {
    rewrite_argv_add_number(argv, "%" PRId64, value);
}

static void rewrite_argv_add_id(struct rewrite_argv *argv, struct shake_stream_id id) {
    rewrite_argv_add_number(argv, "%" PRIu64 "-%" PRIu64, id.ms, id.seq);
}

/* Scores need every bit: "%.17g" round-trips any double, and Redis' parser
 * (strtod) takes "inf" and "-inf". NaN never reaches here (refused earlier). */
static void rewrite_argv_add_score(struct rewrite_argv *argv, double score) {
    if (isinf(score)) {
        rewrite_argv_add_str(argv, score > 0 ? "inf" : "-inf");
    } else {
        rewrite_argv_add_number(argv, "%.17g", score);
    }
}

static void rewrite_argv_release(struct rewrite_argv *argv) {
    free(argv->ptr);
    free(argv->len);
    free(argv->numbers);
    memset(argv, 0, sizeof(*argv));
}

/* Encodes the argv onto the output list and releases it. */
static int rewrite_argv_emit(const struct rewrite_ctx *ctx, struct rewrite_argv *argv) {
    int rc = command_list_append_argv(ctx->out, argv->count, argv->ptr, argv->len);
    rewrite_argv_release(argv);
    if (rc != 0) return rewrite_fail(ctx, "out of memory encoding a command");
    return 0;
}

/* `<command> key` and, optionally, one numeric argument (DEL, PEXPIREAT). */
static int rewrite_key_command(const struct rewrite_ctx *ctx, const char *command, int with_number,
                               int64_t number) {
    struct rewrite_argv argv;
    if (rewrite_argv_open(ctx, &argv, 3, 1) != 0) return -1;
    rewrite_argv_add_str(&argv, command);
    rewrite_argv_add_key(&argv, ctx->entry);
    if (with_number) rewrite_argv_add_i64(&argv, number);
    return rewrite_argv_emit(ctx, &argv);
}

static const char *rewrite_item_kind_name(enum shake_item_kind kind) {
    switch (kind) {
    case SHAKE_ITEM_STRING: return "string";
    case SHAKE_ITEM_LIST_ELEMENT: return "list element";
    case SHAKE_ITEM_SET_MEMBER: return "set member";
    case SHAKE_ITEM_ZSET_MEMBER: return "zset member";
    case SHAKE_ITEM_HASH_FIELD: return "hash field";
    case SHAKE_ITEM_STREAM_ENTRY: return "stream entry";
    case SHAKE_ITEM_STREAM_FIELD: return "stream field";
    case SHAKE_ITEM_STREAM_META: return "stream meta";
    case SHAKE_ITEM_STREAM_GROUP: return "stream group";
    case SHAKE_ITEM_STREAM_CONSUMER: return "stream consumer";
    case SHAKE_ITEM_STREAM_PENDING: return "stream pending entry";
    }
    return "unknown item";
}

/* Every item of the chunk must be of `kind`; zset scores must be numbers. Checked
 * before anything is emitted. */
static int rewrite_check_items(const struct rewrite_ctx *ctx, enum shake_item_kind kind) {
    const struct shake_entry *entry = ctx->entry;
    for (size_t i = 0; i < entry->nitems; i++) {
        const struct shake_item *item = &entry->items[i];
        if (item->kind != kind) {
            return rewrite_fail(ctx, "item %zu is a %s, which does not belong to a %s", i,
                                rewrite_item_kind_name(item->kind),
                                shake_value_type_name(entry->type));
        }
        if (kind == SHAKE_ITEM_ZSET_MEMBER && isnan(item->score)) {
            return rewrite_fail(ctx, "item %zu has a NaN score", i);
        }
    }
    return 0;
}

/* True when a batch of `count` elements and `bytes` bytes cannot take one more
 * element of `next_bytes`. A first element always fits, however big. */
static int rewrite_batch_full(const struct rewrite_options *options, size_t count, size_t bytes,
                              size_t next_bytes) {
    if (count == 0) return 0;
    if (options->batch_max_items > 0 && count >= options->batch_max_items) return 1;
    if (options->batch_max_bytes > 0 && bytes + next_bytes > options->batch_max_bytes) return 1;
    return 0;
}

/* Index one past the last item of the batch that starts at `start`. */
static size_t rewrite_batch_end(const struct rewrite_ctx *ctx, size_t start) {
    const struct shake_entry *entry = ctx->entry;
    size_t bytes = 0, i = start;
    for (; i < entry->nitems; i++) {
        size_t item_bytes = entry->items[i].a.len + entry->items[i].b.len;
        if (rewrite_batch_full(ctx->options, i - start, bytes, item_bytes)) break;
        bytes += item_bytes;
    }
    return i;
}

/* Adds the arguments one element contributes to its variadic command. */
static void rewrite_add_element(struct rewrite_argv *argv, const struct shake_item *item) {
    switch (item->kind) {
    case SHAKE_ITEM_ZSET_MEMBER:
        rewrite_argv_add_score(argv, item->score);
        rewrite_argv_add_bytes(argv, item->a);
        break;
    case SHAKE_ITEM_HASH_FIELD:
        rewrite_argv_add_bytes(argv, item->a);
        rewrite_argv_add_bytes(argv, item->b);
        break;
    default: rewrite_argv_add_bytes(argv, item->a); break;
    }
}

/* Emits the chunk's items as `<command> key element...` commands in batches (RPUSH,
 * SADD, ZADD, HSET). `per_element` is the number of arguments per element. */
static int rewrite_variadic(const struct rewrite_ctx *ctx, const char *command,
                            size_t per_element) {
    const struct shake_entry *entry = ctx->entry;
    for (size_t start = 0; start < entry->nitems;) {
        size_t end = rewrite_batch_end(ctx, start);
        size_t count = end - start;
        struct rewrite_argv argv;
        if (rewrite_argv_open(ctx, &argv, 2 + count * per_element, count) != 0) return -1;
        rewrite_argv_add_str(&argv, command);
        rewrite_argv_add_key(&argv, entry);
        for (size_t i = start; i < end; i++)
            rewrite_add_element(&argv, &entry->items[i]);
        if (rewrite_argv_emit(ctx, &argv) != 0) return -1;
        start = end;
    }
    return 0;
}

/* A string is SET by its first piece; further pieces (a string split over items or
 * chunks) are APPENDed in order. */
static int rewrite_string(const struct rewrite_ctx *ctx) {
    const struct shake_entry *entry = ctx->entry;
    if (rewrite_check_items(ctx, SHAKE_ITEM_STRING) != 0) return -1;
    for (size_t i = 0; i < entry->nitems; i++) {
        int first = i == 0 && (entry->chunk_flags & SHAKE_CHUNK_FIRST);
        struct rewrite_argv argv;
        if (rewrite_argv_open(ctx, &argv, 3, 0) != 0) return -1;
        rewrite_argv_add_str(&argv, first ? "SET" : "APPEND");
        rewrite_argv_add_key(&argv, entry);
        rewrite_argv_add_bytes(&argv, entry->items[i].a);
        if (rewrite_argv_emit(ctx, &argv) != 0) return -1;
    }
    return 0;
}

/* Index one past the run of TTL fields that starts at `start` (a field with a TTL):
 * fields sharing its expire time, skipping fields without TTL, bounded like any
 * batch. `*nfields` receives the number of fields in the run. */
static size_t rewrite_ttl_run_end(const struct rewrite_ctx *ctx, size_t start, size_t *nfields) {
    const struct shake_entry *entry = ctx->entry;
    int64_t expire_ms = entry->items[start].expire_ms;
    size_t bytes = 0, count = 0, i = start;
    for (; i < entry->nitems; i++) {
        const struct shake_item *item = &entry->items[i];
        if (item->expire_ms < 0) continue;
        if (item->expire_ms != expire_ms) break;
        if (rewrite_batch_full(ctx->options, count, bytes, item->a.len)) break;
        bytes += item->a.len;
        count++;
    }
    *nfields = count;
    return i;
}

/* Field TTLs (Redis 7.4+): `HPEXPIREAT key ms FIELDS n field...` for each run of
 * fields sharing an expire time. Must follow the HSET of those fields. */
static int rewrite_hash_ttls(const struct rewrite_ctx *ctx) {
    const struct shake_entry *entry = ctx->entry;
    for (size_t start = 0; start < entry->nitems;) {
        if (entry->items[start].expire_ms < 0) {
            start++;
            continue;
        }
        size_t nfields = 0;
        size_t end = rewrite_ttl_run_end(ctx, start, &nfields);
        int64_t expire_ms = entry->items[start].expire_ms;
        struct rewrite_argv argv;
        if (rewrite_argv_open(ctx, &argv, 5 + nfields, 2) != 0) return -1;
        rewrite_argv_add_str(&argv, "HPEXPIREAT");
        rewrite_argv_add_key(&argv, entry);
        rewrite_argv_add_i64(&argv, expire_ms);
        rewrite_argv_add_str(&argv, "FIELDS");
        rewrite_argv_add_i64(&argv, (int64_t)nfields);
        for (size_t i = start; i < end; i++) {
            if (entry->items[i].expire_ms == expire_ms) {
                rewrite_argv_add_bytes(&argv, entry->items[i].a);
            }
        }
        if (rewrite_argv_emit(ctx, &argv) != 0) return -1;
        start = end;
    }
    return 0;
}

static int rewrite_hash(const struct rewrite_ctx *ctx) {
    if (rewrite_check_items(ctx, SHAKE_ITEM_HASH_FIELD) != 0) return -1;
    if (rewrite_variadic(ctx, "HSET", 2) != 0) return -1;
    return rewrite_hash_ttls(ctx);
}

/* `XADD key <id> field value...` for the STREAM_ENTRY at `index` and the
 * STREAM_FIELD items after it; one entry per command (XADD takes one). Returns the
 * index after the entry's fields, or 0 on error. */
static size_t rewrite_stream_entry(const struct rewrite_ctx *ctx, size_t index) {
    const struct shake_entry *entry = ctx->entry;
    const struct shake_item *head = &entry->items[index];
    if (head->count < 1) {
        rewrite_fail(ctx, "stream entry %" PRIu64 "-%" PRIu64 " has no field (XADD needs one)",
                     head->id.ms, head->id.seq);
        return 0;
    }
    size_t nfields = (size_t)head->count;
    if (nfields > entry->nitems - index - 1) {
        rewrite_fail(ctx, "stream entry %" PRIu64 "-%" PRIu64 " is missing fields in its chunk",
                     head->id.ms, head->id.seq);
        return 0;
    }
    struct rewrite_argv argv;
    if (rewrite_argv_open(ctx, &argv, 3 + 2 * nfields, 1) != 0) return 0;
    rewrite_argv_add_str(&argv, "XADD");
    rewrite_argv_add_key(&argv, entry);
    rewrite_argv_add_id(&argv, head->id);
    for (size_t i = index + 1; i <= index + nfields; i++) {
        const struct shake_item *field = &entry->items[i];
        if (field->kind != SHAKE_ITEM_STREAM_FIELD) {
            rewrite_argv_release(&argv);
            rewrite_fail(ctx, "item %zu is a %s inside stream entry %" PRIu64 "-%" PRIu64, i,
                         rewrite_item_kind_name(field->kind), head->id.ms, head->id.seq);
            return 0;
        }
        rewrite_argv_add_bytes(&argv, field->a);
        rewrite_argv_add_bytes(&argv, field->b);
    }
    if (rewrite_argv_emit(ctx, &argv) != 0) return 0;
    return index + 1 + nfields;
}

/* A stream with no entry must still exist: XADD an entry at 0-1 and trim it away
 * at once (MAXLEN 0). That leaves length 0, last id 0-1 and entries added 1, which
 * the XSETID that follows corrects; the max deleted id stays 0-0 (trimming does not
 * set it), so XSETID may lower the last id to anything, 0-0 included. */
static int rewrite_stream_create_empty(const struct rewrite_ctx *ctx) {
    struct rewrite_argv argv;
    if (rewrite_argv_open(ctx, &argv, 8, 0) != 0) return -1;
    rewrite_argv_add_str(&argv, "XADD");
    rewrite_argv_add_key(&argv, ctx->entry);
    rewrite_argv_add_str(&argv, "MAXLEN");
    rewrite_argv_add_str(&argv, "0");
    rewrite_argv_add_str(&argv, "0-1");
    rewrite_argv_add_str(&argv, "x");
    rewrite_argv_add_str(&argv, "y");
    return rewrite_argv_emit(ctx, &argv);
}

/* After every entry: `XSETID key <last id> [ENTRIESADDED n] [MAXDELETEDID id]`.
 * XSETID refuses an id below the top entry, hence after the XADDs. The options
 * (Redis 7.0+) are sent only when they carry something the XADDs did not already
 * set, so streams without deletions also load into older targets. */
static int rewrite_stream_meta(const struct rewrite_ctx *ctx, const struct shake_item *meta) {
    if (meta->length == 0 && rewrite_stream_create_empty(ctx) != 0) return -1;
    int64_t added_by_rewrite = meta->length > 0 ? meta->length : 1;
    int with_added = meta->count >= 0 && meta->count != added_by_rewrite;
    int with_deleted = meta->id2.ms != 0 || meta->id2.seq != 0;
    struct rewrite_argv argv;
    if (rewrite_argv_open(ctx, &argv, 7, 3) != 0) return -1;
    rewrite_argv_add_str(&argv, "XSETID");
    rewrite_argv_add_key(&argv, ctx->entry);
    rewrite_argv_add_id(&argv, meta->id);
    if (with_added) {
        rewrite_argv_add_str(&argv, "ENTRIESADDED");
        rewrite_argv_add_i64(&argv, meta->count);
    }
    if (with_deleted) {
        rewrite_argv_add_str(&argv, "MAXDELETEDID");
        rewrite_argv_add_id(&argv, meta->id2);
    }
    return rewrite_argv_emit(ctx, &argv);
}

/* `XGROUP CREATE key group <last delivered id> [ENTRIESREAD n]`; ENTRIESREAD only
 * when the source knew it (count >= 0). */
static int rewrite_stream_group(const struct rewrite_ctx *ctx, const struct shake_item *group) {
    struct rewrite_argv argv;
    if (rewrite_argv_open(ctx, &argv, 7, 2) != 0) return -1;
    rewrite_argv_add_str(&argv, "XGROUP");
    rewrite_argv_add_str(&argv, "CREATE");
    rewrite_argv_add_key(&argv, ctx->entry);
    rewrite_argv_add_bytes(&argv, group->a);
    rewrite_argv_add_id(&argv, group->id);
    if (group->count >= 0) {
        rewrite_argv_add_str(&argv, "ENTRIESREAD");
        rewrite_argv_add_i64(&argv, group->count);
    }
    return rewrite_argv_emit(ctx, &argv);
}

/* `XGROUP CREATECONSUMER key group consumer`, so that consumers without pending
 * entries exist too. Their seen/active times cannot be set: they restart at now. */
static int rewrite_stream_consumer(const struct rewrite_ctx *ctx,
                                   const struct shake_item *consumer) {
    struct rewrite_argv argv;
    if (rewrite_argv_open(ctx, &argv, 5, 0) != 0) return -1;
    rewrite_argv_add_str(&argv, "XGROUP");
    rewrite_argv_add_str(&argv, "CREATECONSUMER");
    rewrite_argv_add_key(&argv, ctx->entry);
    rewrite_argv_add_bytes(&argv, consumer->a);
    rewrite_argv_add_bytes(&argv, consumer->b);
    return rewrite_argv_emit(ctx, &argv);
}

/* True when two pending entries can share one XCLAIM: same group, consumer,
 * delivery time and delivery count. */
static int rewrite_same_claim(const struct shake_item *x, const struct shake_item *y) {
    return y->kind == SHAKE_ITEM_STREAM_PENDING && x->delivery_ms == y->delivery_ms &&
           x->count == y->count && x->a.len == y->a.len && x->b.len == y->b.len &&
           (x->a.len == 0 || memcmp(x->a.ptr, y->a.ptr, x->a.len) == 0) &&
           (x->b.len == 0 || memcmp(x->b.ptr, y->b.ptr, x->b.len) == 0);
}

/* `XCLAIM key group consumer 0 <id>... [TIME ms] [RETRYCOUNT n] FORCE JUSTID` for
 * the run of alike pending entries that starts at `index` (at most batch_max_items
 * ids). FORCE creates the PEL entry, JUSTID keeps the delivery count as given.
 * Redis skips an id that is no longer in the stream (deleted after delivery): that
 * pending entry is lost on the target, whose XCLAIM reply simply lacks the id.
 * Returns the index after the run, or 0 on error. */
static size_t rewrite_stream_pending(const struct rewrite_ctx *ctx, size_t index) {
    const struct shake_entry *entry = ctx->entry;
    const struct shake_item *head = &entry->items[index];
    size_t end = index + 1;
    size_t max_ids = ctx->options->batch_max_items;
    while (end < entry->nitems && (max_ids == 0 || end - index < max_ids) &&
           rewrite_same_claim(head, &entry->items[end])) {
        end++;
    }
    size_t nids = end - index;
    struct rewrite_argv argv;
    if (rewrite_argv_open(ctx, &argv, 11 + nids, 3 + nids) != 0) return 0;
    rewrite_argv_add_str(&argv, "XCLAIM");
    rewrite_argv_add_key(&argv, entry);
    rewrite_argv_add_bytes(&argv, head->a);
    rewrite_argv_add_bytes(&argv, head->b);
    rewrite_argv_add_str(&argv, "0");
    for (size_t i = index; i < end; i++)
        rewrite_argv_add_id(&argv, entry->items[i].id);
    if (head->delivery_ms >= 0) {
        rewrite_argv_add_str(&argv, "TIME");
        rewrite_argv_add_i64(&argv, head->delivery_ms);
    }
    if (head->count >= 0) {
        rewrite_argv_add_str(&argv, "RETRYCOUNT");
        rewrite_argv_add_i64(&argv, head->count);
    }
    rewrite_argv_add_str(&argv, "FORCE");
    rewrite_argv_add_str(&argv, "JUSTID");
    if (rewrite_argv_emit(ctx, &argv) != 0) return 0;
    return end;
}

/* Streams, in the order entry.h promises: entries, meta, then each group followed
 * by its consumers and their pending entries. */
static int rewrite_stream(const struct rewrite_ctx *ctx) {
    const struct shake_entry *entry = ctx->entry;
    for (size_t i = 0; i < entry->nitems;) {
        const struct shake_item *item = &entry->items[i];
        size_t next = i + 1;
        int rc = 0;
        switch (item->kind) {
        case SHAKE_ITEM_STREAM_ENTRY: next = rewrite_stream_entry(ctx, i); break;
        case SHAKE_ITEM_STREAM_META: rc = rewrite_stream_meta(ctx, item); break;
        case SHAKE_ITEM_STREAM_GROUP: rc = rewrite_stream_group(ctx, item); break;
        case SHAKE_ITEM_STREAM_CONSUMER: rc = rewrite_stream_consumer(ctx, item); break;
        case SHAKE_ITEM_STREAM_PENDING: next = rewrite_stream_pending(ctx, i); break;
        default:
            return rewrite_fail(ctx, "item %zu is a %s, which does not belong to a stream", i,
                                rewrite_item_kind_name(item->kind));
        }
        if (rc != 0 || next == 0) return -1;
        i = next;
    }
    return 0;
}

/* The value's commands, by type. */
static int rewrite_value(const struct rewrite_ctx *ctx) {
    switch (ctx->entry->type) {
    case SHAKE_TYPE_STRING: return rewrite_string(ctx);
    case SHAKE_TYPE_LIST:
        if (rewrite_check_items(ctx, SHAKE_ITEM_LIST_ELEMENT) != 0) return -1;
        return rewrite_variadic(ctx, "RPUSH", 1);
    case SHAKE_TYPE_SET:
        if (rewrite_check_items(ctx, SHAKE_ITEM_SET_MEMBER) != 0) return -1;
        return rewrite_variadic(ctx, "SADD", 1);
    case SHAKE_TYPE_ZSET:
        if (rewrite_check_items(ctx, SHAKE_ITEM_ZSET_MEMBER) != 0) return -1;
        return rewrite_variadic(ctx, "ZADD", 2);
    case SHAKE_TYPE_HASH: return rewrite_hash(ctx);
    case SHAKE_TYPE_STREAM: return rewrite_stream(ctx);
    case SHAKE_TYPE_MODULE:
        return rewrite_fail(ctx, "module values can only be restored with RESTORE");
    }
    return rewrite_fail(ctx, "unknown value type %d", (int)ctx->entry->type);
}

/* One chunk: DEL first (replace; a string needs none, SET replaces any type), the
 * value, then PEXPIREAT after the last chunk. */
static int rewrite_chunk(const struct rewrite_ctx *ctx) {
    const struct shake_entry *entry = ctx->entry;
    if (entry->type == SHAKE_TYPE_MODULE) {
        return rewrite_fail(ctx, "module values can only be restored with RESTORE");
    }
    if ((entry->chunk_flags & SHAKE_CHUNK_FIRST) && ctx->options->replace &&
        entry->type != SHAKE_TYPE_STRING) {
        if (rewrite_key_command(ctx, "DEL", 0, 0) != 0) return -1;
    }
    if (rewrite_value(ctx) != 0) return -1;
    if ((entry->chunk_flags & SHAKE_CHUNK_LAST) && entry->expire_ms != SHAKE_NO_EXPIRE) {
        return rewrite_key_command(ctx, "PEXPIREAT", 1, entry->expire_ms);
    }
    return 0;
}

/* `FUNCTION LOAD REPLACE <code>`: the library code travels in `key`. */
static int rewrite_function(const struct rewrite_ctx *ctx) {
    struct rewrite_argv argv;
    if (rewrite_argv_open(ctx, &argv, 4, 0) != 0) return -1;
    rewrite_argv_add_str(&argv, "FUNCTION");
    rewrite_argv_add_str(&argv, "LOAD");
    rewrite_argv_add_str(&argv, "REPLACE");
    rewrite_argv_add_key(&argv, ctx->entry);
    return rewrite_argv_emit(ctx, &argv);
}

/* Drops what this call appended, so that a failed entry leaves no half of itself. */
static void rewrite_rollback(struct command_list *out, size_t count) {
    while (out->count > count)
        command_free_resp(&out->items[--out->count]);
}

int rewrite_build(const struct shake_entry *entry, const struct rewrite_options *options,
                  struct command_list *out, char *err, size_t errlen) {
    struct rewrite_ctx ctx = {entry, options, out, err, errlen};
    size_t count_before = out->count;
    int rc;
    switch (entry->kind) {
    case SHAKE_ENTRY_CHUNK: rc = rewrite_chunk(&ctx); break;
    case SHAKE_ENTRY_FUNCTION: rc = rewrite_function(&ctx); break;
    default: rc = rewrite_fail(&ctx, "only CHUNK and FUNCTION entries are rewritten"); break;
    }
    if (rc != 0) rewrite_rollback(out, count_before);
    return rc;
}
