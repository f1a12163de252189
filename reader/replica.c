/* replica.c -- one source shard read as a Redis replica reads it (see replica.h).
 *
 * Owns: the replica link (a raw-mode conn), the handshake state machine, the RDB
 * framing, the decoder while the RDB arrives, the command stream afterwards, the
 * ACK timer and reconnects. Steps and names follow src/replication.c:
 * syncWithMaster's handshake, readSyncBulkPayload's framing, replicationSendAck.
 */
#include "reader/replica.h"

#include <ev.h>
#include <hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/cmd_stream.h"
#include "reader/spool.h"
#include "shake/conn.h"

#define REPLICA_LINE_MAX (64 * 1024)
#define REPLICA_EOF_MARK_LEN 40
#define REPLICA_ACK_INTERVAL 1.0
#define REPLICA_RETRY_MIN 0.1
#define REPLICA_RETRY_MAX 5.0
#define SPOOL_READ_BLOCK (1024 * 1024)

enum replica_step {
    STEP_PING,
    STEP_AUTH,
    STEP_PORT,
    STEP_CAPA,
    STEP_PSYNC,
    STEP_BULK_HEADER, /* waiting for $<len> or $EOF:<mark>, skipping keep-alive newlines */
    STEP_RDB,
    STEP_RDB_TAIL,    /* the decoder is done; collecting the end mark */
    STEP_STREAM,
};

struct replica {
    struct ev_loop *loop;
    struct replica_options options;   /* strings below are owned copies */
    char *host, *username, *password;
    struct replica_callbacks callbacks;
    struct conn *conn;                /* owned */
    enum replica_phase phase;
    enum replica_step step;
    int stopped;

    char *line;                       /* owned: handshake input not yet parsed */
    size_t line_len;

    char replid[41];                  /* the master's replication id */
    uint64_t sync_offset;             /* offset the RDB or the continued stream starts at */
    int eof_framing;
    char eof_mark[REPLICA_EOF_MARK_LEN];
    uint64_t rdb_len;                 /* $<len> framing: announced size */
    uint64_t rdb_fed;
    struct rdb_decoder *decoder;      /* owned, during the RDB */
    char *tail;                       /* owned: bytes after the RDB, before the stream */
    size_t tail_len;

    struct cmd_stream *stream;        /* owned, during the stream */
    struct spool *spool;              /* owned, NULL when spooling is off */
    char *spool_buf;                  /* owned, SPOOL_READ_BLOCK bytes, made on first use */
    uint64_t received_offset;         /* end of the last command parsed */
    uint64_t resume_offset;           /* where a reconnect continues: the end of the last
                                         command that is not PING or REPLCONF */
    int resume_db;

    ev_timer ack_timer;
    ev_timer retry_timer;
    int failed_attempts;              /* reconnects since the stream last ran */
    struct conn_callbacks conn_callbacks;
    double backoff;
    struct replica_progress counters;
};

static void replica_on_connected(void *ctx, struct conn *conn);
static void replica_on_data(void *ctx, struct conn *conn, const char *buf, size_t len);
static void replica_on_error(void *ctx, struct conn *conn, const char *message);

const char *replica_phase_name(enum replica_phase phase) {
    switch (phase) {
    case REPLICA_CONNECTING: return "connecting";
    case REPLICA_HANDSHAKE: return "handshake";
    case REPLICA_WAITING_BGSAVE: return "waiting_bgsave";
    case REPLICA_RDB: return "rdb";
    case REPLICA_STREAM: return "stream";
    case REPLICA_RECONNECTING: return "reconnecting";
    case REPLICA_ERROR: return "error";
    }
    return "unknown";
}

/* Stop for good and tell the owner, with the shard's address. */
static void replica_fail(struct replica *replica, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void replica_fail(struct replica *replica, const char *fmt, ...) {
    char what[768], message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(message, sizeof(message), "source %s:%d: %s", replica->host, replica->options.port, what);
    replica->phase = REPLICA_ERROR;
    replica->stopped = 1;
    ev_timer_stop(replica->loop, &replica->ack_timer);
    ev_timer_stop(replica->loop, &replica->retry_timer);
    conn_close(replica->conn);
    replica->callbacks.failed(replica->callbacks.ctx, message);
}

static void replica_send_command(struct replica *replica, const char *fmt, ...) {
    char *command = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&command, fmt, ap);
    va_end(ap);
    if (len < 0 || conn_send(replica->conn, command, (size_t)len) != 0) {
        free(command);
        replica_fail(replica, "out of memory");
        return;
    }
    free(command);
}

static void replica_send_ack(struct replica *replica) {
    char offset[32];
    snprintf(offset, sizeof(offset), "%llu", (unsigned long long)replica->received_offset);
    replica_send_command(replica, "REPLCONF ACK %s", offset);
}

static void replica_on_ack_timer(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop, (void)revents;
    struct replica *replica = timer->data;
    if (conn_state(replica->conn) == CONN_CONNECTED) replica_send_ack(replica);
}

/* Drop the per-link state: decoder, stream parser, buffered input. */
static void replica_reset_link(struct replica *replica) {
    conn_close(replica->conn);
    rdb_decoder_free(replica->decoder);
    replica->decoder = NULL;
    cmd_stream_free(replica->stream);
    replica->stream = NULL;
    replica->line_len = 0;
    free(replica->tail);
    replica->tail = NULL;
    replica->tail_len = 0;
    /* Spooled bytes lie past the resume offset: the next PSYNC sends them again. */
    if (replica->spool != NULL) spool_clear(replica->spool);
    /* Nothing is parsed until the next handshake: replica_next must not look at
     * the freed decoder or stream. */
    replica->step = STEP_PING;
    ev_timer_stop(replica->loop, &replica->ack_timer);
}

static void replica_connect(struct replica *replica) {
    char err[256];
    replica_reset_link(replica);
    replica->phase = replica->counters.reconnects ? REPLICA_RECONNECTING : REPLICA_CONNECTING;
    replica->step = STEP_PING;
    if (conn_connect(replica->conn, err, sizeof(err)) != 0) replica_on_error(replica, NULL, err);
}

static void replica_on_retry_timer(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop, (void)revents;
    struct replica *replica = timer->data;
    replica_connect(replica);
}

/* The link broke or the master is not ready: try again later, resuming where the
 * parsed stream ends. */
static void replica_retry_later(struct replica *replica, const char *why) {
    replica_reset_link(replica);
    replica->phase = REPLICA_RECONNECTING;
    replica->counters.reconnects++;
    replica->failed_attempts++;
    ev_timer_set(&replica->retry_timer, replica->backoff, 0.);
    ev_timer_start(replica->loop, &replica->retry_timer);
    replica->backoff = replica->backoff * 2 > REPLICA_RETRY_MAX ? REPLICA_RETRY_MAX
                                                                : replica->backoff * 2;
    if (replica->callbacks.reconnecting != NULL)
        replica->callbacks.reconnecting(replica->callbacks.ctx, why, replica->failed_attempts);
}

static void replica_on_error(void *ctx, struct conn *conn, const char *message) {
    (void)conn;
    struct replica *replica = ctx;
    if (replica->stopped) return;
    /* Nothing was ever established: an unreachable source is a clear error. */
    if (replica->counters.full_syncs == 0 && replica->counters.partial_syncs == 0 &&
        replica->counters.reconnects == 0 && replica->step <= STEP_PING) {
        replica_fail(replica, "%s", message);
        return;
    }
    replica_retry_later(replica, message);
}

static void replica_on_connected(void *ctx, struct conn *conn) {
    (void)conn;
    struct replica *replica = ctx;
    replica->phase = REPLICA_HANDSHAKE;
    replica->step = STEP_PING;
    replica_send_command(replica, "PING");
}

/* Send the handshake command of the current step (after PING's reply). */
static void replica_send_step(struct replica *replica) {
    char number[32];
    switch (replica->step) {
    case STEP_AUTH:
        if (replica->username != NULL)
            replica_send_command(replica, "AUTH %s %s", replica->username, replica->password);
        else replica_send_command(replica, "AUTH %s", replica->password);
        break;
    case STEP_PORT:
        snprintf(number, sizeof(number), "%d", replica->options.listening_port);
        replica_send_command(replica, "REPLCONF listening-port %s", number);
        break;
    case STEP_CAPA: replica_send_command(replica, "REPLCONF capa eof capa psync2"); break;
    case STEP_PSYNC:
        if (replica->replid[0] == '\0') {
            replica_send_command(replica, "PSYNC ? -1");
        } else {
            snprintf(number, sizeof(number), "%llu",
                     (unsigned long long)replica->resume_offset + 1);
            replica_send_command(replica, "PSYNC %s %s", replica->replid, number);
        }
        break;
    default: break;
    }
}

/* Start the RDB phase after +FULLRESYNC <replid> <offset>. */
static void replica_begin_full_sync(struct replica *replica, const char *line) {
    char replid[64];
    unsigned long long offset;
    char reason[160];
    if (sscanf(line, "+FULLRESYNC %63s %llu", replid, &offset) != 2 || strlen(replid) != 40) {
        replica_fail(replica, "PSYNC: malformed reply '%.80s'", line);
        return;
    }
    if (replica->replid[0] == '\0') snprintf(reason, sizeof(reason), "no checkpoint");
    else
        snprintf(reason, sizeof(reason),
                 "the master could not continue %s at offset %llu (backlog or history gone)",
                 replica->replid, (unsigned long long)replica->resume_offset);
    memcpy(replica->replid, replid, sizeof(replica->replid)); /* 40 chars + NUL, checked */
    replica->sync_offset = offset;
    replica->resume_offset = offset;
    replica->received_offset = offset;
    replica->resume_db = 0;
    replica->counters.full_syncs++;
    replica->counters.rdb_bytes_done = 0;
    replica->counters.rdb_bytes_total = 0;
    replica->phase = REPLICA_WAITING_BGSAVE;
    replica->step = STEP_BULK_HEADER;
    replica->callbacks.full_sync(replica->callbacks.ctx, replid, offset, reason);
}

static void replica_begin_stream(struct replica *replica, const char *tail, size_t tail_len,
                                 int continued);

/* +CONTINUE [new replid]: the stream resumes where we asked. */
static void replica_continue(struct replica *replica, const char *line) {
    char replid[64];
    if (sscanf(line, "+CONTINUE %63s", replid) == 1 && strlen(replid) == 40)
        memcpy(replica->replid, replid, sizeof(replica->replid)); /* 40 chars + NUL, checked */
    replica->counters.partial_syncs++;
    replica_begin_stream(replica, NULL, 0, 1);
}

/* Handle one handshake reply line. */
static void replica_handle_line(struct replica *replica, const char *line) {
    int is_error = line[0] == '-';
    switch (replica->step) {
    case STEP_PING:
        /* Like Redis: an authentication error is fine here, AUTH comes next. */
        if (is_error && strncmp(line, "-NOAUTH", 7) != 0 && strncmp(line, "-NOPERM", 7) != 0 &&
            strncmp(line, "-ERR operation not permitted", 28) != 0) {
            replica_fail(replica, "PING: %s", line + 1);
            return;
        }
        replica->step = replica->password != NULL ? STEP_AUTH : STEP_PORT;
        break;
    case STEP_AUTH:
        if (is_error) {
            replica_fail(replica, "authentication failed: %s", line + 1);
            return;
        }
        replica->step = STEP_PORT;
        break;
    case STEP_PORT: replica->step = STEP_CAPA; break;  /* errors are not fatal, as in Redis */
    case STEP_CAPA: replica->step = STEP_PSYNC; break;
    case STEP_PSYNC:
        /* The master may send empty lines to keep the link alive before it answers. */
        if (line[0] == '\0') return;
        if (strncmp(line, "+FULLRESYNC", 11) == 0) replica_begin_full_sync(replica, line);
        else if (strncmp(line, "+CONTINUE", 9) == 0) replica_continue(replica, line);
        else if (strncmp(line, "-NOMASTERLINK", 13) == 0 || strncmp(line, "-LOADING", 8) == 0)
            replica_retry_later(replica, line);
        else if (strncmp(line, "-NOPERM", 7) == 0)
            replica_fail(replica, "PSYNC refused: %s (the source user needs +psync +replconf "
                         "+ping)", line + 1);
        else replica_fail(replica, "PSYNC: unexpected reply '%.120s'", line);
        return;
    default: return;
    }
    replica_send_step(replica);
}

/* Parse "$<len>" or "$EOF:<40-byte mark>" and start the RDB. */
static int replica_parse_bulk_header(struct replica *replica, const char *line) {
    if (strncmp(line, "$EOF:", 5) == 0 && strlen(line + 5) == REPLICA_EOF_MARK_LEN) {
        replica->eof_framing = 1;
        memcpy(replica->eof_mark, line + 5, REPLICA_EOF_MARK_LEN);
    } else {
        char *end;
        unsigned long long len = strtoull(line + 1, &end, 10);
        if (line[0] != '$' || end == line + 1 || *end != '\0') {
            replica_fail(replica, "bad RDB header from the master: '%.80s'", line);
            return -1;
        }
        replica->eof_framing = 0;
        replica->rdb_len = len;
        replica->counters.rdb_bytes_total = len;
    }
    replica->decoder = rdb_decoder_new(&replica->options.rdb);
    if (replica->decoder == NULL) {
        replica_fail(replica, "out of memory");
        return -1;
    }
    replica->rdb_fed = 0;
    replica->phase = REPLICA_RDB;
    replica->step = STEP_RDB;
    /* ACKs from the start: after a diskless transfer the master waits for one. */
    ev_timer_again(replica->loop, &replica->ack_timer);
    return 0;
}

static void replica_feed(struct replica *replica, const char *buf, size_t len);
static void replica_resume_reading(struct replica *replica);

/* Consume handshake lines from the line buffer; what follows the last one is fed
 * to the next phase. */
static void replica_process_lines(struct replica *replica) {
    size_t pos = 0;
    while (pos < replica->line_len && replica->step < STEP_RDB && !replica->stopped) {
        if (replica->step == STEP_BULK_HEADER && replica->line[pos] == '\n') {
            pos++; /* keep-alive newline while the master prepares the RDB */
            continue;
        }
        char *eol = memchr(replica->line + pos, '\n', replica->line_len - pos);
        if (eol == NULL) break;
        size_t end = (size_t)(eol - replica->line);
        if (end > pos && replica->line[end - 1] == '\r') replica->line[end - 1] = '\0';
        replica->line[end] = '\0';
        const char *line = replica->line + pos;
        pos = end + 1;
        if (replica->step == STEP_BULK_HEADER) {
            if (replica_parse_bulk_header(replica, line) != 0) return;
        } else {
            replica_handle_line(replica, line);
        }
        if (replica->phase == REPLICA_RECONNECTING) return;
    }
    size_t rest = replica->line_len - pos;
    replica->line_len = 0;
    if (replica->stopped) return;
    if (replica->step >= STEP_RDB) {
        if (rest > 0) replica_feed(replica, replica->line + pos, rest);
    } else {
        memmove(replica->line, replica->line + pos, rest);
        replica->line_len = rest;
    }
}

/* Bytes received and held in memory by the current consumer, not yet turned into
 * entries. */
static size_t replica_in_memory(const struct replica *replica) {
    if (replica->step == STEP_RDB && replica->decoder != NULL)
        return (size_t)(replica->rdb_fed - rdb_decoder_offset(replica->decoder));
    if (replica->step == STEP_STREAM && replica->stream != NULL)
        return cmd_stream_buffered(replica->stream);
    return replica->tail_len;
}

static size_t replica_buffered(const struct replica *replica) {
    return replica_in_memory(replica) +
           (replica->spool != NULL ? (size_t)spool_size(replica->spool) : 0);
}

/* Once the RDB has begun, bytes the writer cannot take yet go to disk rather than
 * memory, and keep going there until the spool is drained, so order holds across
 * the end of the RDB and the start of the stream. */
static int replica_should_spool(const struct replica *replica) {
    if (replica->spool == NULL || replica->step < STEP_RDB) return 0;
    return spool_size(replica->spool) > 0 ||
           replica_in_memory(replica) > replica->options.max_buffered;
}

/* Stop reading the socket? With a spool, only when the spool is full: the source
 * must not see a replica that stopped reading. */
static int replica_input_full(const struct replica *replica) {
    if (replica->spool != NULL && replica->step >= STEP_RDB)
        return spool_size(replica->spool) >= replica->options.spool_max;
    return replica_buffered(replica) > replica->options.max_buffered;
}

/* Hand bytes to the consumer of the current step, in memory. */
static void replica_consume(struct replica *replica, const char *buf, size_t len) {
    switch (replica->step) {
    case STEP_RDB:
        if (rdb_decoder_feed(replica->decoder, buf, len) != RDB_OK) {
            replica_fail(replica, "RDB: %s", rdb_decoder_error(replica->decoder));
            return;
        }
        replica->rdb_fed += len;
        break;
    case STEP_RDB_TAIL: {
        char *grown = realloc(replica->tail, replica->tail_len + len);
        if (grown == NULL) {
            replica_fail(replica, "out of memory");
            return;
        }
        memcpy(grown + replica->tail_len, buf, len);
        replica->tail = grown;
        replica->tail_len += len;
        break;
    }
    case STEP_STREAM:
        if (cmd_stream_feed(replica->stream, buf, len) != CMD_STREAM_OK)
            replica_fail(replica, "stream: %s", cmd_stream_error(replica->stream));
        break;
    default: {
        /* One read may hold the last handshake lines and the start of the RDB: take
         * what the line buffer can hold, and hand the rest on once the RDB began. */
        size_t take = REPLICA_LINE_MAX - replica->line_len;
        if (take > len) take = len;
        if (take == 0) {
            replica_fail(replica, "handshake reply too long");
            return;
        }
        memcpy(replica->line + replica->line_len, buf, take);
        replica->line_len += take;
        replica_process_lines(replica);
        if (take < len && !replica->stopped && replica->phase != REPLICA_RECONNECTING)
            replica_feed(replica, buf + take, len - take);
        return;
    }
    }
}

/* Route bytes read from the link: to the spool while the consumer is behind, else
 * to the consumer. */
static void replica_feed(struct replica *replica, const char *buf, size_t len) {
    if (replica_should_spool(replica)) {
        char err[512];
        if (spool_append(replica->spool, buf, len, err, sizeof(err)) != 0)
            replica_fail(replica, "%s", err);
        return;
    }
    replica_consume(replica, buf, len);
}

/* The consumer wants more: move the next block of spooled bytes into it. Returns
 * 1 when bytes moved, 0 when the spool is empty (the socket is read again), -1 on
 * failure. */
static int replica_unspool(struct replica *replica) {
    char err[512];
    if (replica->spool == NULL || spool_size(replica->spool) == 0) {
        replica_resume_reading(replica);
        return 0;
    }
    if (replica->spool_buf == NULL && (replica->spool_buf = malloc(SPOOL_READ_BLOCK)) == NULL) {
        replica_fail(replica, "out of memory");
        return -1;
    }
    ssize_t n = spool_read(replica->spool, replica->spool_buf, SPOOL_READ_BLOCK, err, sizeof(err));
    if (n < 0) {
        replica_fail(replica, "%s", err);
        return -1;
    }
    replica_consume(replica, replica->spool_buf, (size_t)n);
    if (replica->stopped) return -1;
    if (!replica_input_full(replica)) replica_resume_reading(replica);
    return 1;
}

static void replica_on_data(void *ctx, struct conn *conn, const char *buf, size_t len) {
    struct replica *replica = ctx;
    replica_feed(replica, buf, len);
    if (replica->stopped || replica->phase == REPLICA_RECONNECTING) return;
    if (replica_input_full(replica)) conn_set_reading(conn, 0);
    replica->backoff = REPLICA_RETRY_MIN;
    replica->callbacks.readable(replica->callbacks.ctx);
}

/* Switch to the command stream, feeding it what came after the RDB (or nothing,
 * when `continued` by a partial resync). */
static void replica_begin_stream(struct replica *replica, const char *tail, size_t tail_len,
                                 int continued) {
    replica->stream = cmd_stream_new(replica->options.source, replica->resume_offset,
                                     replica->resume_db);
    if (replica->stream == NULL) {
        replica_fail(replica, "out of memory");
        return;
    }
    replica->phase = REPLICA_STREAM;
    replica->step = STEP_STREAM;
    replica->failed_attempts = 0;
    replica->received_offset = replica->resume_offset;
    replica_send_ack(replica);
    ev_timer_again(replica->loop, &replica->ack_timer);
    replica->callbacks.stream_started(replica->callbacks.ctx, continued);
    /* These bytes come before anything spooled: straight to the parser. */
    if (tail_len > 0) replica_consume(replica, tail, tail_len);
}

/* The decoder reached the RDB's end: check the framing, then go to the stream. */
static int replica_finish_rdb(struct replica *replica) {
    const char *rest;
    size_t rest_len;
    rdb_decoder_unconsumed(replica->decoder, &rest, &rest_len);
    uint64_t rdb_size = rdb_decoder_offset(replica->decoder);
    if (!replica->eof_framing && rdb_size != replica->rdb_len) {
        replica_fail(replica, "RDB ended at byte %llu but the master announced %llu bytes",
                     (unsigned long long)rdb_size, (unsigned long long)replica->rdb_len);
        return -1;
    }
    replica->tail = malloc(rest_len + 1);
    if (replica->tail == NULL) {
        replica_fail(replica, "out of memory");
        return -1;
    }
    memcpy(replica->tail, rest, rest_len);
    replica->tail_len = rest_len;
    replica->counters.rdb_bytes_done = rdb_size;
    rdb_decoder_free(replica->decoder);
    replica->decoder = NULL;
    replica->step = STEP_RDB_TAIL;
    return 0;
}

/* In STEP_RDB_TAIL: once the end mark (diskless) is in, start the stream. */
static int replica_try_leave_tail(struct replica *replica) {
    size_t skip = 0;
    if (replica->eof_framing) {
        if (replica->tail_len < REPLICA_EOF_MARK_LEN) return 0;
        if (memcmp(replica->tail, replica->eof_mark, REPLICA_EOF_MARK_LEN) != 0) {
            replica_fail(replica, "RDB end mark missing after the RDB's checksum");
            return -1;
        }
        skip = REPLICA_EOF_MARK_LEN;
    }
    char *tail = replica->tail;
    size_t tail_len = replica->tail_len;
    replica->tail = NULL;
    replica->tail_len = 0;
    replica_begin_stream(replica, tail + skip, tail_len - skip, 0);
    free(tail);
    return replica->stopped ? -1 : 1;
}

static void replica_resume_reading(struct replica *replica) {
    if (conn_state(replica->conn) == CONN_CONNECTED) conn_set_reading(replica->conn, 1);
}

/* The consumer needs more bytes: from the spool when it holds some, else from the
 * socket (reading resumes and `readable` follows). */
static enum replica_status replica_refill(struct replica *replica, struct shake_entry **out) {
    switch (replica_unspool(replica)) {
    case 1: return replica_next(replica, out);
    case 0: return REPLICA_NEED_MORE;
    default: return REPLICA_FAILED;
    }
}

static enum replica_status replica_next_rdb(struct replica *replica, struct shake_entry **out) {
    switch (rdb_decoder_next(replica->decoder, out)) {
    case RDB_OK:
        replica->counters.rdb_bytes_done = rdb_decoder_progress(replica->decoder);
        return REPLICA_ENTRY;
    case RDB_NEED_MORE: return replica_refill(replica, out);
    case RDB_DONE:
        if (replica_finish_rdb(replica) != 0) return REPLICA_FAILED;
        return replica_next(replica, out);
    case RDB_ERR:
        replica_fail(replica, "RDB: %s", rdb_decoder_error(replica->decoder));
        return REPLICA_FAILED;
    }
    return REPLICA_FAILED;
}

static int replica_is_getack(const struct shake_entry *entry) {
    return shake_entry_arg_is(entry, 0, "replconf", 8) && shake_entry_arg_is(entry, 1, "getack", 6);
}

/* PING and REPLCONF change no data. A reconnect resumes before a trailing run of
 * them: a promoted replica may never have received the ones its old master sent
 * last (e.g. the GETACK of a SHUTDOWN), and PSYNC past its offset would force a
 * full sync. Asking from a little earlier only repeats them. */
static int replica_is_keepalive(const struct shake_entry *entry) {
    return shake_entry_arg_is(entry, 0, "ping", 4) || shake_entry_arg_is(entry, 0, "replconf", 8);
}

static enum replica_status replica_next_stream(struct replica *replica,
                                               struct shake_entry **out) {
    switch (cmd_stream_next(replica->stream, out)) {
    case CMD_STREAM_OK:
        replica->received_offset = (*out)->offset;
        if (!replica_is_keepalive(*out)) {
            replica->resume_offset = (*out)->offset;
            replica->resume_db = cmd_stream_db(replica->stream);
        }
        if (replica_is_getack(*out)) replica_send_ack(replica);
        return REPLICA_ENTRY;
    case CMD_STREAM_NEED_MORE: return replica_refill(replica, out);
    case CMD_STREAM_ERR:
        replica_fail(replica, "stream: %s", cmd_stream_error(replica->stream));
        return REPLICA_FAILED;
    }
    return REPLICA_FAILED;
}

enum replica_status replica_next(struct replica *replica, struct shake_entry **out) {
    if (replica->stopped) return REPLICA_FAILED;
    switch (replica->step) {
    case STEP_RDB: return replica_next_rdb(replica, out);
    case STEP_RDB_TAIL: {
        int rc = replica_try_leave_tail(replica);
        if (rc < 0) return REPLICA_FAILED;
        if (rc == 0) return replica_refill(replica, out);
        return replica_next(replica, out);
    }
    case STEP_STREAM: return replica_next_stream(replica, out);
    default: return REPLICA_NEED_MORE;
    }
}

void replica_get_progress(const struct replica *replica, struct replica_progress *progress) {
    *progress = replica->counters;
    progress->phase = replica->phase;
    snprintf(progress->replid, sizeof(progress->replid), "%s", replica->replid);
    progress->received_offset = replica->received_offset;
    progress->db = replica->resume_db;
    progress->buffered_bytes = replica_buffered(replica);
    if (replica->decoder != NULL)
        progress->rdb_bytes_done = rdb_decoder_progress(replica->decoder);
}

struct replica *replica_new(struct ev_loop *loop, const struct replica_options *options,
                            const struct replica_callbacks *callbacks) {
    struct replica *replica = calloc(1, sizeof(*replica));
    if (replica == NULL) return NULL;
    replica->loop = loop;
    replica->options = *options;
    replica->callbacks = *callbacks;
    replica->host = strdup(options->host);
    replica->username = options->username ? strdup(options->username) : NULL;
    replica->password = options->password ? strdup(options->password) : NULL;
    replica->line = malloc(REPLICA_LINE_MAX + 1);
    if (options->replid != NULL && strlen(options->replid) == 40) {
        snprintf(replica->replid, sizeof(replica->replid), "%s", options->replid);
        replica->resume_offset = options->offset;
        replica->received_offset = options->offset;
        replica->resume_db = options->db;
    }
    replica->backoff = REPLICA_RETRY_MIN;
    if (options->spool_dir != NULL && options->spool_max > 0) {
        char name[32];
        snprintf(name, sizeof(name), "%d", options->source);
        replica->spool = spool_new(options->spool_dir, name, 0);
        if (replica->spool == NULL) {
            replica_free(replica);
            return NULL;
        }
    }
    replica->conn_callbacks = (struct conn_callbacks){
        .ctx = replica,
        .connected = replica_on_connected,
        .data = replica_on_data,
        .error = replica_on_error,
    };
    replica->conn = conn_new(loop, options->host, options->port, options->connect_timeout_ms,
                             &replica->conn_callbacks);
    if (replica->conn != NULL) conn_set_tls(replica->conn, options->tls);
    if (replica->host == NULL || replica->line == NULL || replica->conn == NULL) {
        replica_free(replica);
        return NULL;
    }
    ev_init(&replica->ack_timer, replica_on_ack_timer);
    replica->ack_timer.repeat = REPLICA_ACK_INTERVAL;
    replica->ack_timer.data = replica;
    ev_init(&replica->retry_timer, replica_on_retry_timer);
    replica->retry_timer.data = replica;
    return replica;
}

void replica_start(struct replica *replica) {
    replica_connect(replica);
}

void replica_stop(struct replica *replica) {
    replica->stopped = 1;
    ev_timer_stop(replica->loop, &replica->retry_timer);
    replica_reset_link(replica);
}

int replica_set_address(struct replica *replica, const char *host, int port) {
    if (strcmp(host, replica->host) == 0 && port == replica->options.port) return 0;
    struct conn *conn = conn_new(replica->loop, host, port, replica->options.connect_timeout_ms,
                                 &replica->conn_callbacks);
    char *copy = strdup(host);
    if (conn == NULL || copy == NULL) {
        conn_free(conn);
        free(copy);
        return -1;
    }
    if (replica->options.tls != NULL) conn_set_tls(conn, replica->options.tls);
    replica_reset_link(replica);
    conn_free(replica->conn);
    replica->conn = conn;
    free(replica->host);
    replica->host = copy;
    replica->options.host = copy;
    replica->options.port = port;
    return 0;
}

void replica_free(struct replica *replica) {
    if (replica == NULL) return;
    if (replica->conn != NULL) replica_stop(replica);
    conn_free(replica->conn);
    free(replica->host);
    free(replica->username);
    free(replica->password);
    free(replica->line);
    spool_free(replica->spool);
    free(replica->spool_buf);
    free(replica);
}
