/* cmd_stream.c -- see cmd_stream.h.
 *
 * Offsets: the bytes not yet consumed by redisReader are always (len - pos) of its
 * buffer, so the offset after a reply is the total fed minus what is left. This
 * holds across the reader's own buffer compaction.
 */
#include "reader/cmd_stream.h"

#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A command with more arguments than this is a corrupt stream. The cap matters
 * because redisReader allocates an array's element table from its header alone:
 * "*400000000\r\n" would cost 3.2 GB before a single argument arrived. */
#define CMD_STREAM_MAX_ARGS (1 << 24)

struct cmd_stream {
    redisReader *reader;  /* owned */
    redisReplyObjectFunctions functions; /* hiredis' defaults, with createArray checked */
    void *(*create_array)(const redisReadTask *task, int elements); /* hiredis' own */
    const char *rejected; /* why cmd_stream_create_array refused an array, or NULL */
    int source;
    int db;
    uint64_t fed_end;     /* stream offset just after the last byte fed */
    uint64_t offset;      /* stream offset just after the last command pulled */
    char error[256];
};

/* Refuses what no command looks like before redisReader allocates for it: a
 * nested array, or an argument count past CMD_STREAM_MAX_ARGS. hiredis then fails
 * the parse (as out of memory); cmd_stream_next reports the real reason. */
static void *cmd_stream_create_array(const redisReadTask *task, int elements) {
    struct cmd_stream *stream = task->privdata;
    if (task->parent != NULL) {
        stream->rejected = "a nested array: a command is a flat array of bulk strings";
        return NULL;
    }
    if (elements > CMD_STREAM_MAX_ARGS) {
        stream->rejected = "an array header with more than 16777216 arguments";
        return NULL;
    }
    return stream->create_array(task, elements);
}

struct cmd_stream *cmd_stream_new(int source, uint64_t offset, int db) {
    struct cmd_stream *stream = calloc(1, sizeof(*stream));
    if (stream == NULL) return NULL;
    stream->reader = redisReaderCreate();
    if (stream->reader == NULL) {
        free(stream);
        return NULL;
    }
    stream->functions = *stream->reader->fn;
    stream->create_array = stream->functions.createArray;
    stream->functions.createArray = cmd_stream_create_array;
    stream->reader->fn = &stream->functions;
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
    free(stream);
}

static enum cmd_stream_status cmd_stream_fail(struct cmd_stream *stream, const char *what) {
    snprintf(stream->error, sizeof(stream->error), "offset %llu: %s",
             (unsigned long long)stream->offset, what);
    return CMD_STREAM_ERR;
}

enum cmd_stream_status cmd_stream_feed(struct cmd_stream *stream, const char *buf, size_t len) {
    if (redisReaderFeed(stream->reader, buf, len) != REDIS_OK)
        return cmd_stream_fail(stream, "out of memory");
    stream->fed_end += len;
    return CMD_STREAM_OK;
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
    return (size_t)(stream->fed_end - stream->offset);
}

/* Move a command reply's bulk strings into a new CMD entry. */
static struct shake_entry *cmd_stream_entry_from_reply(struct cmd_stream *stream,
                                                       redisReply *reply) {
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_CMD);
    if (entry == NULL) return NULL;
    entry->source = stream->source;
    entry->argc = (int)reply->elements;
    entry->argv = calloc(reply->elements, sizeof(char *));
    entry->argv_len = calloc(reply->elements, sizeof(size_t));
    if (entry->argv == NULL || entry->argv_len == NULL) goto oom;
    for (size_t i = 0; i < reply->elements; i++) {
        redisReply *arg = reply->element[i];
        entry->argv[i] = malloc(arg->len + 1);
        if (entry->argv[i] == NULL) goto oom;
        memcpy(entry->argv[i], arg->str, arg->len);
        entry->argv[i][arg->len] = '\0';
        entry->argv_len[i] = arg->len;
    }
    return entry;
oom:
    shake_entry_free(entry);
    return NULL;
}

static int cmd_stream_is_command(const redisReply *reply) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return 0;
    for (size_t i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) return 0;
    }
    return 1;
}

/* SELECT changes the db of every later command. */
static int cmd_stream_track_select(struct cmd_stream *stream, const struct shake_entry *entry) {
    if (entry->argc != 2 || strcasecmp(entry->argv[0], "select") != 0) return 0;
    char *end;
    long db = strtol(entry->argv[1], &end, 10);
    if (*end != '\0' || db < 0 || db > 1000000) return -1;
    stream->db = (int)db;
    return 0;
}

enum cmd_stream_status cmd_stream_next(struct cmd_stream *stream, struct shake_entry **out) {
    void *parsed = NULL;
    if (redisReaderGetReply(stream->reader, &parsed) != REDIS_OK)
        return cmd_stream_fail(stream,
                               stream->rejected ? stream->rejected : stream->reader->errstr);
    if (parsed == NULL) return CMD_STREAM_NEED_MORE;
    redisReply *reply = parsed;
    if (!cmd_stream_is_command(reply)) {
        freeReplyObject(reply);
        return cmd_stream_fail(stream, "expected a command (an array of bulk strings)");
    }
    struct shake_entry *entry = cmd_stream_entry_from_reply(stream, reply);
    freeReplyObject(reply);
    if (entry == NULL) return cmd_stream_fail(stream, "out of memory");
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
