/* cmd_stream.c -- see cmd_stream.h.
 *
 * Offsets: the bytes not yet consumed by redisReader are always (len - pos) of its
 * buffer, so the offset after a reply is the total fed to it minus what is left.
 * This holds across the reader's own buffer compaction.
 *
 * Input is held here and given to redisReader in slices of CMD_STREAM_SLICE only
 * when it has no whole command left: hiredis moves its whole unread buffer each
 * time it has consumed 1 KB, so feeding it megabytes of backlog at once would make
 * every parse cost the size of the backlog.
 *
 * redisReader builds no redisReply here: its object functions are ours, and build
 * the CMD entry itself as the command is parsed (the array makes the entry, each
 * bulk string its argument), so a command costs no allocation beyond what the
 * entry owns. Anything but a flat array of bulk strings is refused as it is met.
 */
#include "reader/cmd_stream.h"

#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A command with more arguments than this is a corrupt stream. The cap matters
 * because redisReader allocates an array's element table from its header alone:
 * "*400000000\r\n" would cost 3.2 GB before a single argument arrived. */
#define CMD_STREAM_MAX_ARGS (1 << 24)
/* Each time it has consumed 1 KB, hiredis moves what is left of the slice to the
 * front: a slice of S bytes costs about S/2 moved per KB parsed. 8 KB parsed a
 * stream of small commands 17% faster than 64 KB (CPU per command, in a loop over
 * 1.3 M SETs); a big argument still arrives whole, the reader's buffer grows. */
#define CMD_STREAM_SLICE (8 * 1024)

struct cmd_stream {
    redisReader *reader; /* owned */
    const char *rejected; /* why an object function refused what it was given, or NULL */
    int source;
    int db;
    uint64_t fed_end;     /* stream offset just after the last byte given to the reader */
    char *held;           /* owned: bytes received, not yet given to the reader */
    size_t held_start, held_end, held_cap;
    uint64_t offset;      /* stream offset just after the last command pulled */
    char error[256];
};

/* redisReader's object functions. The object of a command (the root array) is
 * its CMD entry; an argument's object is the entry too (hiredis only needs it
 * not NULL). hiredis frees a half-built root with freeObject when the reader
 * fails or is freed. Returning NULL fails the parse (hiredis says "out of
 * memory"); cmd_stream_next then reports `rejected` when it is set. */
static void *cmd_stream_reject(const redisReadTask *task, const char *why) {
    struct cmd_stream *stream = task->privdata;
    stream->rejected = why;
    return NULL;
}

/* Refuses what no command looks like before anything is allocated for it: a
 * nested array, or an argument count past CMD_STREAM_MAX_ARGS. */
static void *cmd_stream_create_array(const redisReadTask *task, int elements) {
    if (task->parent != NULL)
        return cmd_stream_reject(task, "a nested array: a command is a flat array of bulk strings");
    if (elements > CMD_STREAM_MAX_ARGS)
        return cmd_stream_reject(task, "an array header with more than 16777216 arguments");
    struct cmd_stream *stream = task->privdata;
    stream->rejected = "out of memory";
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_CMD);
    if (entry == NULL) return NULL;
    entry->source = stream->source;
    if (shake_entry_set_argc(entry, elements) != 0) {
        shake_entry_free(entry);
        return NULL;
    }
    stream->rejected = NULL;
    return entry;
}

/* One argument: its bytes, NUL-terminated, into the entry's argv. */
static void *cmd_stream_create_string(const redisReadTask *task, char *str, size_t len) {
    if (task->parent == NULL || task->type != REDIS_REPLY_STRING)
        return cmd_stream_reject(task, "expected a command (an array of bulk strings)");
    struct shake_entry *entry = task->parent->obj;
    char *arg = shake_entry_arg_alloc(entry, len);
    if (arg == NULL) return cmd_stream_reject(task, "out of memory");
    memcpy(arg, str, len);
    arg[len] = '\0';
    entry->argv[task->idx] = arg;
    entry->argv_len[task->idx] = len;
    return entry;
}

static void *cmd_stream_create_integer(const redisReadTask *task, long long value) {
    (void)value;
    return cmd_stream_reject(task, "expected a command (an array of bulk strings)");
}

static void *cmd_stream_create_nil(const redisReadTask *task) {
    return cmd_stream_reject(task, "expected a command (an array of bulk strings)");
}

static void cmd_stream_free_object(void *object) {
    shake_entry_free(object);
}

static redisReplyObjectFunctions cmd_stream_functions = {
    cmd_stream_create_string, cmd_stream_create_array, cmd_stream_create_integer,
    cmd_stream_create_nil, cmd_stream_free_object,
};

struct cmd_stream *cmd_stream_new(int source, uint64_t offset, int db) {
    struct cmd_stream *stream = calloc(1, sizeof(*stream));
    if (stream == NULL) return NULL;
    stream->reader = redisReaderCreateWithFunctions(&cmd_stream_functions);
    if (stream->reader == NULL) {
        free(stream);
        return NULL;
    }
    stream->reader->privdata = stream;
    stream->source = source;
    stream->db = db;
    stream->fed_end = offset;
    stream->offset = offset;
    return stream;
}

void cmd_stream_free(struct cmd_stream *stream) {
    if (stream == NULL) return;
    redisReaderFree(stream->reader);
    free(stream->held);
    free(stream);
}

static enum cmd_stream_status cmd_stream_fail(struct cmd_stream *stream, const char *what) {
    snprintf(stream->error, sizeof(stream->error), "offset %llu: %s",
             (unsigned long long)stream->offset, what);
    return CMD_STREAM_ERR;
}

/* Make room for `len` more held bytes: move the live part to the front when the
 * free head is at least as big as it (so each byte moves a bounded number of
 * times), else grow. */
static int cmd_stream_hold_room(struct cmd_stream *stream, size_t len) {
    size_t live = stream->held_end - stream->held_start;
    if (stream->held_end + len <= stream->held_cap) return 0;
    if (stream->held_start >= live && live + len <= stream->held_cap) {
        memmove(stream->held, stream->held + stream->held_start, live);
        stream->held_start = 0;
        stream->held_end = live;
        return 0;
    }
    size_t cap = stream->held_cap ? stream->held_cap : CMD_STREAM_SLICE;
    while (cap < live + len) cap *= 2;
    char *grown = malloc(cap);
    if (grown == NULL) return -1;
    if (live > 0) memcpy(grown, stream->held + stream->held_start, live);
    free(stream->held);
    stream->held = grown;
    stream->held_cap = cap;
    stream->held_start = 0;
    stream->held_end = live;
    return 0;
}

enum cmd_stream_status cmd_stream_feed(struct cmd_stream *stream, const char *buf, size_t len) {
    if (cmd_stream_hold_room(stream, len) != 0) return cmd_stream_fail(stream, "out of memory");
    memcpy(stream->held + stream->held_end, buf, len);
    stream->held_end += len;
    return CMD_STREAM_OK;
}

/* Give the reader its next slice of held bytes. Returns 0 when there was none. */
static int cmd_stream_give_slice(struct cmd_stream *stream, char *err_oom) {
    size_t live = stream->held_end - stream->held_start;
    if (live == 0) return 0;
    size_t n = live < CMD_STREAM_SLICE ? live : CMD_STREAM_SLICE;
    if (redisReaderFeed(stream->reader, stream->held + stream->held_start, n) != REDIS_OK) {
        *err_oom = 1;
        return 0;
    }
    stream->held_start += n;
    stream->fed_end += n;
    if (stream->held_start == stream->held_end) stream->held_start = stream->held_end = 0;
    return 1;
}

/* Bytes fed that redisReader has not parsed yet. Not the same as buffered: the
 * parts of a half-parsed command (its array header, its complete arguments) are
 * already consumed by the reader, held as reply objects. */
static size_t cmd_stream_reader_unread(const struct cmd_stream *stream) {
    return stream->reader->len - stream->reader->pos;
}

/* Counts a half-parsed command whole, so a bound on buffered bytes also bounds
 * the reply objects redisReader builds for a long command still arriving. */
size_t cmd_stream_buffered(const struct cmd_stream *stream) {
    return (size_t)(stream->fed_end - stream->offset) + (stream->held_end - stream->held_start);
}

/* SELECT changes the db of every later command. */
static int cmd_stream_track_select(struct cmd_stream *stream, const struct shake_entry *entry) {
    if (entry->argc != 2 || !shake_entry_arg_is(entry, 0, "select", 6)) return 0;
    char *end;
    long db = strtol(entry->argv[1], &end, 10);
    if (*end != '\0' || db < 0 || db > 1000000) return -1;
    stream->db = (int)db;
    return 0;
}

enum cmd_stream_status cmd_stream_next(struct cmd_stream *stream, struct shake_entry **out) {
    void *parsed = NULL;
    for (;;) {
        if (redisReaderGetReply(stream->reader, &parsed) != REDIS_OK)
            return cmd_stream_fail(stream,
                                   stream->rejected ? stream->rejected : stream->reader->errstr);
        if (parsed != NULL) break;
        char oom = 0;
        if (!cmd_stream_give_slice(stream, &oom))
            return oom ? cmd_stream_fail(stream, "out of memory") : CMD_STREAM_NEED_MORE;
    }
    struct shake_entry *entry = parsed;
    if (entry->argc == 0) {
        shake_entry_free(entry);
        return cmd_stream_fail(stream, "expected a command (an array of bulk strings)");
    }
    if (cmd_stream_track_select(stream, entry) != 0) {
        shake_entry_free(entry);
        return cmd_stream_fail(stream, "SELECT with a bad db number");
    }
    stream->offset = stream->fed_end - cmd_stream_reader_unread(stream);
    entry->offset = stream->offset;
    entry->db = stream->db;
    *out = entry;
    return CMD_STREAM_OK;
}

uint64_t cmd_stream_offset(const struct cmd_stream *stream) {
    return stream->offset;
}

int cmd_stream_db(const struct cmd_stream *stream) {
    return stream->db;
}

const char *cmd_stream_error(const struct cmd_stream *stream) {
    return stream->error;
}
