/* writer.c -- the router: loads entries into a standalone Redis or a Redis Cluster
 * (see writer.h).
 *
 * Owns: the target probe (AUTH, INFO, CONFIG GET, CLUSTER SLOTS, COMMAND), one
 * node per target master with its connection (conn.c) and its queues, the slot
 * routing, the reply checks, redirections, back-off and reconnects, replica
 * confirmation (WAIT) and the hand-over of a lost node's work after a failover; for CMD
 * entries the I/O side of their plans (cmd_plan.c): the RENAME emulation, the
 * transaction buffers and on_unsupported; and, per source, the order in which
 * entries are acknowledged. It must not know which reader made an entry, nor how
 * commands are built (restore.c, rewrite.c, cmd_plan.c).
 *
 * Every command of an entry becomes an item that lives in exactly one queue of one
 * node until its reply: `unsent` (routed, not written: the node is connecting,
 * reconnecting or backing off), `sent` (written, awaiting its reply, in order),
 * `retry` (answered TRYAGAIN/CLUSTERDOWN/LOADING, waiting for the back-off),
 * `held` (answered by a master with replicas, waiting for a WAIT to confirm it on
 * them: see replica_wait.h; resent to the slot's new master when the node is lost
 * and the slot map moved its slots, a failover). Order
 * per key holds because a key's items always follow the same path: a new command
 * for a slot goes where the slot's previous commands still are (see
 * writer_pick_node), and a redirected item is answered before anything sent after
 * it on that node.
 *
 * Acknowledgements: every entry of a source (source >= 0) gets the next sequence
 * number of that source and a record in its ring of acks; a job marks its
 * entries' records done when its last command is answered, and the done records
 * at the front are popped in order, reporting the offset of the last CMD popped.
 * An entry submitted while its source waits for a RENAME emulation is held, in
 * order, until the emulation is over; the commands between MULTI and EXEC are
 * buffered until EXEC, then sent as one MULTI ... EXEC command (one RESP blob with
 * several replies) when they share a slot, else one by one.
 *
 * Ownership: the writer owns its nodes, its sources, the command table and the
 * reusable plan; a node owns its conn and its queues' items; a job (one submitted
 * entry, or a whole transaction) is owned by its outstanding items and released
 * with the last one; a source owns its held and buffered entries.
 */
#include "writer/writer.h"

#include <ev.h>
#include <hiredis.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shake/conn.h"
#include "shake/crc16.h"
#include "shake/slots.h"
#include "writer/cmd_plan.h"
#include "writer/cmd_table.h"
#include "writer/command.h"
#include "writer/probe.h"
#include "writer/replica_wait.h"
#include "writer/restore.h"
#include "writer/rewrite.h"

#define WRITER_MESSAGE_LEN 1024
#define WRITER_BACKOFF_FIRST_S 0.1
#define WRITER_BACKOFF_MAX_S 2.0
#define WRITER_GIVE_UP_MS_DEFAULT 60000
#define WRITER_NO_SLOT 0xffffffffu
#define WRITER_KEY_SHOWN 128
#define WRITER_MAX_MASTERS 2048
#define WRITER_ITEM_NO_SLOT 0xffffu
#define WRITER_MAX_SOURCES 65536
/* Keys up to this long live inside their job rather than in an allocation of
 * their own, which would be freed in bursts as replies come. */
#define WRITER_KEY_INLINE 48
/* Finished jobs kept for reuse (a job per key is allocated and freed at the key
 * rate); beyond this many they go back to malloc. */
#define WRITER_SPARE_JOBS 4096
/* Replies handled ahead of which the next items' jobs are prefetched: a job was
 * built a whole pipeline ago and has left the caches since. */
#define WRITER_PREFETCH_AHEAD 8
/* A cluster target's slot map is read again this often, so that wait_replicas = auto
 * learns of replicas added (or failed) since the last read. */
#define WRITER_MAP_REFRESH_S 10.0

/* What a queued item is; only WRITER_OP_DATA carries an entry's command. */
enum writer_op {
    WRITER_OP_DATA,
    WRITER_OP_AUTH,
    WRITER_OP_INFO_SERVER,
    WRITER_OP_CONFIG_PROTO,
    WRITER_OP_INFO_CLUSTER,
    WRITER_OP_CLUSTER_SLOTS,
    WRITER_OP_INFO_KEYSPACE,
    WRITER_OP_SELECT,
    WRITER_OP_ASKING,
    WRITER_OP_COMMAND,
    WRITER_OP_WAIT,
};

/* A cross-slot RENAME/RENAMENX under emulation: DUMP and PTTL of the source key
 * on its master, then RESTORE of the destination on its master, then DEL of the
 * source. Owned by its job; the keys' bytes follow the struct in one allocation. */
struct writer_rename {
    char *source;
    size_t source_len;
    char *destination;
    size_t destination_len;
    int nx;
    unsigned source_slot, destination_slot;
    int missing;      /* DUMP said nil: the source's RENAME failed, nothing to do */
    long long ttl_ms; /* from PTTL; 0 when the key has no TTL */
    char *payload;    /* the DUMP reply until RESTORE is built */
    size_t payload_len;
};

/* One submitted entry, from writer_submit until the reply to its last command. */
struct writer_job {
    enum shake_entry_kind kind;
    char *key; /* the entry's key, or key_inline when short (NULL for FUNCTION) */
    size_t key_len;
    int db;           /* -1: any db (FUNCTION) */
    unsigned slot;    /* WRITER_NO_SLOT: not routed by slot */
    int counts_key;   /* KEY, or the SHAKE_CHUNK_LAST chunk */
    int shared;       /* commands go to several nodes: keep bytes until the end */
    int failed;       /* an error reply failed a command */
    int skipped;      /* BUSYKEY on a busykey_is_skip command */
    size_t remaining; /* items not yet answered */
    struct command_list commands;
    int source;                    /* the entries' source; -1: not in any ack order */
    uint64_t seq;                  /* the first entry's sequence number in its source */
    uint32_t entry_count;          /* entries the job completes (a transaction: MULTI .. EXEC) */
    uint32_t applied;              /* CMD entries it applies, for commands_written */
    uint32_t transaction;          /* commands of a MULTI ... EXEC sent whole, else 0 */
    struct writer_rename *rename;  /* RENAME emulation, else NULL */
    struct command first_command;  /* commands' slot: the first one needs no allocation */
    struct writer_job *next_spare; /* in the writer's spare list, once finished */
    char key_inline[WRITER_KEY_INLINE]; /* last: not cleared when a job is reused */
};

struct writer_item {
    struct writer_job *job; /* DATA only */
    uint32_t index;         /* DATA: command index in job->commands; SELECT: db */
    uint8_t op;             /* enum writer_op */
    uint8_t asking;         /* DATA: send ASKING first (ASK redirection) */
    uint16_t slot;          /* DATA: the slot it is routed by, or WRITER_ITEM_NO_SLOT */
};

/* A FIFO that can also take items back at its front (requeue after a drop). */
struct writer_ring {
    struct writer_item *items;
    size_t capacity; /* power of two */
    size_t head;
    size_t count;
};

enum writer_node_state {
    WRITER_NODE_DOWN,       /* no connection (maybe waiting to reconnect) */
    WRITER_NODE_CONNECTING, /* TCP connect under way */
    WRITER_NODE_UP,         /* connected; AUTH was sent first */
};

enum writer_timer_purpose {
    WRITER_TIMER_NONE,
    WRITER_TIMER_ERROR,     /* report a connect error that happened synchronously */
    WRITER_TIMER_RESUME,    /* back-off after TRYAGAIN/CLUSTERDOWN/LOADING is over */
    WRITER_TIMER_RECONNECT, /* back-off after a lost connection is over */
};

struct writer_node {
    struct writer *writer;
    int index;
    char *host;
    int port;
    char name[SLOTS_HOST_MAX + 16]; /* "host:port" for messages */
    struct conn *conn;
    enum writer_node_state state;
    int is_master;     /* serves slots in the current map (standalone: the one node) */
    int probe_pending; /* startup: INFO keyspace not answered yet */
    int current_db;    /* the db the connection has SELECTed */
    int paused;        /* backing off: no DATA is written */
    struct writer_ring unsent, sent, retry;
    size_t inflight_bytes;   /* DATA bytes in all three queues */
    int was_full;            /* reached pipeline_max_bytes; cleared under half */
    uint32_t *slot_inflight; /* cluster: DATA items per slot in this node's queues */
    ev_timer timer;
    enum writer_timer_purpose timer_purpose;
    double backoff_s;
    ev_tstamp trouble_since; /* start of the current failure streak, 0 when none */
    char last_error[WRITER_MESSAGE_LEN];
    unsigned replies_seen;  /* replies already read for sent's front (a transaction) */
    char queued_error[256]; /* the first error among them, "" when none */
    /* A master with replicas: DATA items answered OK wait in `held` (bytes and
     * accounting kept) until a WAIT sent after them confirms them on a replica
     * (replica_wait.h); they are resent to the slot's new master after a failover. */
    struct writer_ring held;
    struct replica_wait wait;
    ev_timer wait_timer; /* the next WAIT is due */
    int lost_reported;   /* the current connection loss was logged (notice) */
};

enum writer_state {
    WRITER_NEW,
    WRITER_PROBING,
    WRITER_READY,
    WRITER_FAILED,
};

/* One entry's place in its source's acknowledgement order. */
struct writer_ack {
    uint64_t offset;
    uint8_t is_cmd;
    uint8_t done;
};

/* An entry of a source whose turn to be routed has not come yet. */
struct writer_waiting {
    struct shake_entry *entry;
    uint64_t seq;
};

/* A deque of waiting entries, in submit order. */
struct writer_waiting_queue {
    struct writer_waiting *items;
    size_t capacity; /* power of two */
    size_t head;
    size_t count;
};

/* Per source: the ack order, and the entries that wait for their turn. */
struct writer_source {
    struct writer_ack *acks;                 /* ring indexed by seq & (ack_capacity - 1) */
    size_t ack_capacity;                     /* power of two */
    uint64_t ack_head;                       /* the oldest entry not popped yet */
    uint64_t ack_next;                       /* the sequence number of the next entry */
    int rename_in_flight;                    /* a RENAME emulation runs: hold later entries */
    int in_transaction;                      /* MULTI seen, EXEC not yet */
    struct writer_waiting_queue held;        /* behind the RENAME emulation */
    struct writer_waiting_queue transaction; /* MULTI and the commands after it */
    struct writer_source_stats stats;        /* for writer_source_stats */
};

/* Keys whose chunks got an error before the last chunk was answered. */
struct writer_failed_key {
    struct writer_failed_key *next;
    size_t key_len;
    char key[];
};

struct writer {
    struct ev_loop *loop;
    const struct conf_target *conf;
    struct writer_callbacks callbacks;
    enum writer_state state;
    struct writer_target_info info;
    struct writer_stats stats;
    int give_up_ms;

    struct writer_node **nodes; /* nodes[0] is the seed (the node from the config) */
    int node_count;
    struct slots_map map;
    int16_t slot_node[CLUSTER_SLOTS]; /* node index serving each slot, -1 unknown */
    int16_t slot_last[CLUSTER_SLOTS]; /* node that got the slot's latest new command */
    int cluster_known;                /* INFO cluster said enabled or disabled */
    int refresh_in_flight;            /* a CLUSTER SLOTS refresh awaits its reply */
    int probe_waiting;                /* masters whose INFO keyspace is pending */

    size_t data_outstanding; /* DATA items not answered, over all nodes */
    int was_full;            /* writer_is_full was reached: owe a `drained` */
    int idle_reported;       /* `drained` was called for the current idle period */
    struct writer_failed_key *failed_chunk_keys;

    struct writer_source **sources; /* by source index, NULL until one is seen */
    int source_count;
    size_t entries_pending;        /* submitted, not done (writer_in_flight) */
    size_t held_entries;           /* in the sources' `held` queues */
    size_t held_bytes;             /* their shake_entry_size */
    struct cmd_table *table;       /* the target's command table (or the built-in one) */
    struct cmd_plan plan;          /* reused from command to command */
    struct writer_job *spare_jobs; /* finished jobs kept for reuse (owner: writer) */
    size_t spare_job_count;

    int wait_refused;           /* wait_replicas = auto and a master refused WAIT */
    ev_timer map_timer;         /* cluster: the periodic slot map refresh */
    ev_tstamp refresh_asked_at; /* the last slot map refresh after a WAIT went short */

    int depth;          /* libev callbacks under way */
    int free_requested; /* writer_free called inside a callback */
};

static void writer_node_flush(struct writer_node *node);
static void writer_node_wait_maybe(struct writer_node *node);
static void writer_node_reroute(struct writer_node *node, unsigned fallback_slot);
static void writer_item_final(struct writer_node *node, struct writer_item *item);
static int writer_error_is(const redisReply *reply, const char *code);
static void writer_node_connect(struct writer_node *node);
static void writer_node_lost(struct writer_node *node, const char *reason);
static void writer_refresh_slots(struct writer *writer, struct writer_node *node);
static void writer_item_abandon(struct writer_node *node, struct writer_item *item);

/* ---- small helpers ------------------------------------------------------------ */

static int writer_ring_grow(struct writer_ring *ring) {
    size_t capacity = ring->capacity ? ring->capacity * 2 : 64;
    struct writer_item *items = malloc(capacity * sizeof(*items));
    if (items == NULL) return -1;
    for (size_t i = 0; i < ring->count; i++) {
        items[i] = ring->items[(ring->head + i) & (ring->capacity - 1)];
    }
    free(ring->items);
    ring->items = items;
    ring->capacity = capacity;
    ring->head = 0;
    return 0;
}

static int writer_ring_push_back(struct writer_ring *ring, struct writer_item item) {
    if (ring->count == ring->capacity && writer_ring_grow(ring) < 0) return -1;
    ring->items[(ring->head + ring->count) & (ring->capacity - 1)] = item;
    ring->count++;
    return 0;
}

static int writer_ring_push_front(struct writer_ring *ring, struct writer_item item) {
    if (ring->count == ring->capacity && writer_ring_grow(ring) < 0) return -1;
    ring->head = (ring->head - 1) & (ring->capacity - 1);
    ring->items[ring->head] = item;
    ring->count++;
    return 0;
}

static struct writer_item writer_ring_pop_front(struct writer_ring *ring) {
    struct writer_item item = ring->items[ring->head];
    ring->head = (ring->head + 1) & (ring->capacity - 1);
    ring->count--;
    return item;
}

static struct writer_item *writer_ring_at(struct writer_ring *ring, size_t i) {
    return &ring->items[(ring->head + i) & (ring->capacity - 1)];
}

/* A key as it appears in messages: printable bytes kept, others as \xHH, long
 * keys cut. */
static void writer_format_key(const char *key, size_t len, char *out, size_t outlen) {
    size_t used = 0;
    for (size_t i = 0; i < len && used + 8 < outlen; i++) {
        unsigned char c = (unsigned char)key[i];
        if (i == WRITER_KEY_SHOWN) {
            used += (size_t)snprintf(out + used, outlen - used, "...");
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
            out[used++] = (char)c;
        else
            used += (size_t)snprintf(out + used, outlen - used, "\\x%02x", c);
    }
    out[used] = '\0';
}

/* Argument `want` of a RESP-encoded command (*N $len bytes ...): 0 and the bytes,
 * or -1 when the command has no such argument. */
static int writer_resp_arg(const char *resp, size_t len, int want, const char **arg,
                           size_t *arg_len) {
    const char *end = resp + len, *at = resp;
    if (len == 0 || *at != '*') return -1;
    long count = strtol(at + 1, NULL, 10);
    for (long i = 0; i < count && i <= want; i++) {
        at = memchr(at, '\n', (size_t)(end - at));
        if (at == NULL || ++at >= end || *at != '$') return -1;
        long n = strtol(at + 1, NULL, 10);
        at = memchr(at, '\n', (size_t)(end - at));
        if (at == NULL || n < 0 || n > end - ++at) return -1;
        if (i == want) {
            *arg = at;
            *arg_len = (size_t)n;
            return 0;
        }
        at += n;
    }
    return -1;
}

/* "command 'SET' 'k'": a CMD item's command name and first argument, read back
 * from its encoding (a job keeps no copy of its argv). */
static void writer_command_subject(const struct command *command, char *out, size_t outlen) {
    char name[64], first[WRITER_KEY_SHOWN * 3];
    const char *arg;
    size_t arg_len;
    if (command->resp == NULL ||
        writer_resp_arg(command->resp, command->len, 0, &arg, &arg_len) < 0) {
        snprintf(out, outlen, "command");
        return;
    }
    writer_format_key(arg, arg_len < 32 ? arg_len : 32, name, sizeof(name));
    if (writer_resp_arg(command->resp, command->len, 1, &arg, &arg_len) < 0) {
        snprintf(out, outlen, "command '%s'", name);
        return;
    }
    writer_format_key(arg, arg_len, first, sizeof(first));
    snprintf(out, outlen, "command '%s' '%s'", name, first);
}

/* "key 'k'", "function library", "command 'SET' 'k'" or "transaction of N
 * commands" for messages about an item. */
static void writer_item_subject(const struct writer_item *item, char *out, size_t outlen) {
    const struct writer_job *job = item->job;
    if (job->kind == SHAKE_ENTRY_FUNCTION) {
        snprintf(out, outlen, "function library");
        return;
    }
    if (job->kind == SHAKE_ENTRY_CMD && job->transaction > 0) {
        snprintf(out, outlen, "transaction of %u commands", job->transaction);
        return;
    }
    if (job->kind == SHAKE_ENTRY_CMD) {
        writer_command_subject(&job->commands.items[item->index], out, outlen);
        return;
    }
    char shown[WRITER_KEY_SHOWN * 4 + 16];
    writer_format_key(job->key, job->key_len, shown, sizeof(shown));
    snprintf(out, outlen, "key '%s'", shown);
}

static ev_tstamp writer_now(struct writer *writer) {
    return ev_now(writer->loop);
}

/* The fatal path: stop every node, tell the owner once. */
static void writer_fail(struct writer *writer, const char *format, ...) {
    if (writer->state == WRITER_FAILED) return;
    writer->state = WRITER_FAILED;
    ev_timer_stop(writer->loop, &writer->map_timer);
    char message[WRITER_MESSAGE_LEN];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    for (int i = 0; i < writer->node_count; i++) {
        struct writer_node *node = writer->nodes[i];
        if (node->conn != NULL) conn_close(node->conn);
        ev_timer_stop(writer->loop, &node->timer);
        ev_timer_stop(writer->loop, &node->wait_timer);
        node->state = WRITER_NODE_DOWN;
    }
    if (writer->callbacks.failed != NULL) writer->callbacks.failed(writer->callbacks.ctx, message);
}

static int writer_stopped(const struct writer *writer) {
    return writer->state == WRITER_FAILED || writer->free_requested;
}

/* Tell the owner something worth a log line (writer_callbacks.notice). */
static void writer_notice(struct writer *writer, const char *format, ...) {
    if (writer->callbacks.notice == NULL || writer_stopped(writer)) return;
    char message[WRITER_MESSAGE_LEN];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    writer->callbacks.notice(writer->callbacks.ctx, message);
}

/* ---- jobs ---------------------------------------------------------------------- */

/* Releases what a job holds, and keeps the job itself for reuse while the spare
 * list is short: jobs come and go at the key rate, and the one freed last is
 * likely still in the caches when the next key needs one. */
static void writer_job_free(struct writer *writer, struct writer_job *job) {
    command_list_clear(&job->commands);
    if (job->key != job->key_inline) free(job->key);
    if (job->rename != NULL) free(job->rename->payload);
    free(job->rename);
    if (writer->spare_job_count >= WRITER_SPARE_JOBS) {
        free(job);
        return;
    }
    job->next_spare = writer->spare_jobs;
    writer->spare_jobs = job;
    writer->spare_job_count++;
}

static void writer_spare_jobs_free(struct writer *writer) {
    while (writer->spare_jobs != NULL) {
        struct writer_job *next = writer->spare_jobs->next_spare;
        free(writer->spare_jobs);
        writer->spare_jobs = next;
    }
    writer->spare_job_count = 0;
}

static const struct writer_job writer_job_blank;

/* A job for `entry_count` entries of `source` from sequence number `seq` on. */
static struct writer_job *writer_job_new(struct writer *writer, enum shake_entry_kind kind, int db,
                                         int source, uint64_t seq, uint32_t entry_count) {
    struct writer_job *job = writer->spare_jobs;
    if (job != NULL) {
        writer->spare_jobs = job->next_spare;
        writer->spare_job_count--;
        if (writer->spare_jobs != NULL) {
            /* The next key's job: likely out of the caches by now. */
            const char *next = (const char *)writer->spare_jobs;
            __builtin_prefetch(next, 1);
            __builtin_prefetch(next + 64, 1);
            __builtin_prefetch(next + 128, 1);
        }
        /* A copy of a blank job, not memset: GCC makes that a `rep stos`, whose
         * start-up is most of this function's cost (a job per key). */
        memcpy(job, &writer_job_blank, offsetof(struct writer_job, key_inline));
    } else {
        job = calloc(1, sizeof(*job));
        if (job == NULL) return NULL;
    }
    command_list_init_with_slot(&job->commands, &job->first_command);
    job->kind = kind;
    job->db = db;
    job->slot = WRITER_NO_SLOT;
    job->source = source;
    job->seq = seq;
    job->entry_count = entry_count;
    return job;
}

/* ---- sources: acknowledgement order and waiting entries ---------------------- */

static int writer_waiting_push(struct writer_waiting_queue *queue, struct writer_waiting waiting,
                               int front) {
    if (queue->count == queue->capacity) {
        size_t capacity = queue->capacity ? queue->capacity * 2 : 16;
        struct writer_waiting *items = malloc(capacity * sizeof(*items));
        if (items == NULL) return -1;
        for (size_t i = 0; i < queue->count; i++)
            items[i] = queue->items[(queue->head + i) & (queue->capacity - 1)];
        free(queue->items);
        queue->items = items;
        queue->capacity = capacity;
        queue->head = 0;
    }
    if (front) {
        queue->head = (queue->head - 1) & (queue->capacity - 1);
        queue->items[queue->head] = waiting;
    } else {
        queue->items[(queue->head + queue->count) & (queue->capacity - 1)] = waiting;
    }
    queue->count++;
    return 0;
}

static struct writer_waiting writer_waiting_pop(struct writer_waiting_queue *queue) {
    struct writer_waiting waiting = queue->items[queue->head];
    queue->head = (queue->head + 1) & (queue->capacity - 1);
    queue->count--;
    return waiting;
}

static void writer_waiting_free(struct writer_waiting_queue *queue) {
    while (queue->count > 0)
        shake_entry_free(writer_waiting_pop(queue).entry);
    free(queue->items);
}

static void writer_source_free(struct writer_source *source) {
    if (source == NULL) return;
    writer_waiting_free(&source->held);
    writer_waiting_free(&source->transaction);
    free(source->acks);
    free(source);
}

/* The state of source `index`, created when first seen; NULL when out of memory. */
static struct writer_source *writer_source_get(struct writer *writer, int index) {
    if (index >= writer->source_count) {
        int count = index + 1;
        struct writer_source **sources = realloc(writer->sources, (size_t)count * sizeof(*sources));
        if (sources == NULL) return NULL;
        for (int i = writer->source_count; i < count; i++)
            sources[i] = NULL;
        writer->sources = sources;
        writer->source_count = count;
    }
    if (writer->sources[index] == NULL)
        writer->sources[index] = calloc(1, sizeof(struct writer_source));
    return writer->sources[index];
}

static struct writer_ack *writer_ack_at(struct writer_source *source, uint64_t seq) {
    return &source->acks[seq & (source->ack_capacity - 1)];
}

/* Give the next entry of a source its place in the ack order. */
static int writer_ack_push(struct writer_source *source, const struct shake_entry *entry,
                           uint64_t *seq) {
    size_t count = (size_t)(source->ack_next - source->ack_head);
    if (count == source->ack_capacity) {
        size_t capacity = source->ack_capacity ? source->ack_capacity * 2 : 64;
        struct writer_ack *acks = malloc(capacity * sizeof(*acks));
        if (acks == NULL) return -1;
        for (uint64_t s = source->ack_head; s < source->ack_next; s++)
            acks[s & (capacity - 1)] = *writer_ack_at(source, s);
        free(source->acks);
        source->acks = acks;
        source->ack_capacity = capacity;
    }
    *seq = source->ack_next++;
    struct writer_ack *ack = writer_ack_at(source, *seq);
    ack->offset = entry->offset;
    ack->is_cmd = entry->kind == SHAKE_ENTRY_CMD;
    ack->done = 0;
    return 0;
}

/* Entries seq .. seq+count-1 of a source are done: pop what is done at the front
 * and report the offset of the last CMD popped. */
static void writer_entries_done(struct writer *writer, int index, uint64_t seq, uint32_t count) {
    writer->entries_pending -= count;
    if (index < 0) return;
    struct writer_source *source = writer->sources[index];
    for (uint32_t i = 0; i < count; i++)
        writer_ack_at(source, seq + i)->done = 1;
    if (seq != source->ack_head) return;
    int any_cmd = 0;
    uint64_t offset = 0;
    while (source->ack_head < source->ack_next && writer_ack_at(source, source->ack_head)->done) {
        struct writer_ack *ack = writer_ack_at(source, source->ack_head++);
        if (ack->is_cmd) {
            any_cmd = 1;
            offset = ack->offset;
        }
    }
    if (any_cmd && writer->callbacks.acked != NULL && !writer_stopped(writer))
        writer->callbacks.acked(writer->callbacks.ctx, index, offset);
}

static void writer_forget_failed_key(struct writer *writer, const char *key, size_t len,
                                     int *found) {
    *found = 0;
    for (struct writer_failed_key **link = &writer->failed_chunk_keys; *link != NULL;
         link = &(*link)->next) {
        struct writer_failed_key *entry = *link;
        if (entry->key_len == len && memcmp(entry->key, key, len) == 0) {
            *link = entry->next;
            free(entry);
            *found = 1;
            return;
        }
    }
}

/* A chunk of a key failed: remember it so that the key is not counted written
 * when its last chunk is answered. */
static void writer_remember_failed_key(struct writer *writer, const struct writer_job *job) {
    int found;
    writer_forget_failed_key(writer, job->key, job->key_len, &found);
    struct writer_failed_key *entry = malloc(sizeof(*entry) + job->key_len);
    if (entry == NULL) return;
    entry->key_len = job->key_len;
    memcpy(entry->key, job->key, job->key_len);
    entry->next = writer->failed_chunk_keys;
    writer->failed_chunk_keys = entry;
}

static int writer_rename_next(struct writer *writer, struct writer_job *job);
static void writer_source_pump(struct writer *writer, int index);

/* One item of a job was answered for good. When it was the last: the next step
 * of a RENAME emulation, or the job is done: count it, acknowledge its entries
 * and let its source go on. */
static void writer_job_answered(struct writer *writer, struct writer_job *job) {
    if (--job->remaining > 0) return;
    if (job->rename != NULL && writer_rename_next(writer, job)) return;
    struct writer_source *from = job->source >= 0 ? writer->sources[job->source] : NULL;
    if (job->kind == SHAKE_ENTRY_CMD && !job->failed) {
        writer->stats.commands_written += job->applied;
        if (from != NULL) from->stats.commands_written += job->applied;
    }
    if (job->kind == SHAKE_ENTRY_CHUNK && job->failed && !job->counts_key) {
        writer_remember_failed_key(writer, job);
    }
    if (job->counts_key) {
        int earlier_failure = 0;
        if (job->kind == SHAKE_ENTRY_CHUNK) {
            writer_forget_failed_key(writer, job->key, job->key_len, &earlier_failure);
        }
        if (job->skipped)
            writer->stats.keys_skipped++;
        else if (!job->failed && !earlier_failure) {
            writer->stats.keys_written++;
            if (from != NULL) from->stats.keys_written++;
        }
    }
    int source = job->source, was_rename = job->rename != NULL;
    uint64_t seq = job->seq;
    uint32_t entry_count = job->entry_count;
    writer_job_free(writer, job);
    writer_entries_done(writer, source, seq, entry_count);
    if (was_rename && source >= 0) {
        writer->sources[source]->rename_in_flight = 0;
        writer_source_pump(writer, source);
    }
}

/* ---- nodes --------------------------------------------------------------------- */

static struct command *writer_item_command(const struct writer_item *item) {
    return &item->job->commands.items[item->index];
}

/* Account a DATA item entering a node's queues (routing or redirection). */
static void writer_node_account_add(struct writer_node *node, const struct writer_item *item) {
    struct writer *writer = node->writer;
    node->inflight_bytes += writer_item_command(item)->len;
    if (node->slot_inflight != NULL && item->slot != WRITER_ITEM_NO_SLOT) {
        node->slot_inflight[item->slot]++;
    }
    if (node->inflight_bytes >= writer->conf->pipeline_max_bytes) {
        node->was_full = 1;
        writer->was_full = 1;
    }
}

static void writer_node_account_remove(struct writer_node *node, const struct writer_item *item) {
    node->inflight_bytes -= writer_item_command(item)->len;
    if (node->slot_inflight != NULL && item->slot != WRITER_ITEM_NO_SLOT) {
        node->slot_inflight[item->slot]--;
    }
}

static void writer_node_on_timer(struct ev_loop *loop, ev_timer *timer, int revents);
static void writer_node_on_wait_timer(struct ev_loop *loop, ev_timer *timer, int revents);
static void writer_node_on_connected(void *ctx, struct conn *conn);
static void writer_node_on_readable(void *ctx, struct conn *conn);
static void writer_node_on_error(void *ctx, struct conn *conn, const char *message);

static struct writer_node *writer_node_new(struct writer *writer, const char *host, int port) {
    struct writer_node **nodes =
        realloc(writer->nodes, (size_t)(writer->node_count + 1) * sizeof(*nodes));
    if (nodes == NULL) return NULL;
    writer->nodes = nodes;
    struct writer_node *node = calloc(1, sizeof(*node));
    if (node == NULL) return NULL;
    node->writer = writer;
    node->host = strdup(host);
    node->port = port;
    snprintf(node->name, sizeof(node->name), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    struct conn_callbacks callbacks = {
        .ctx = node,
        .connected = writer_node_on_connected,
        .readable = writer_node_on_readable,
        .error = writer_node_on_error,
    };
    node->conn = conn_new(writer->loop, host, port, writer->conf->connect_timeout_ms, &callbacks);
    if (node->conn != NULL) {
        conn_set_tls(node->conn, writer->conf->tls.context);
        conn_reuse_replies(node->conn); /* every reply is given back in on_readable */
    }
    if (node->host == NULL || node->conn == NULL) {
        conn_free(node->conn);
        free(node->host);
        free(node);
        return NULL;
    }
    node->state = WRITER_NODE_DOWN;
    node->backoff_s = WRITER_BACKOFF_FIRST_S;
    ev_init(&node->timer, writer_node_on_timer);
    node->timer.data = node;
    ev_init(&node->wait_timer, writer_node_on_wait_timer);
    node->wait_timer.data = node;
    replica_wait_init(&node->wait, writer->conf->wait_replicas > 0 && !writer->wait_refused
                                       ? writer->conf->wait_replicas
                                       : 0);
    node->index = writer->node_count;
    writer->nodes[writer->node_count++] = node;
    return node;
}

/* Release every item a node still holds (writer_free), then the node. */
static void writer_node_free(struct writer_node *node) {
    struct writer_ring *rings[] = {&node->unsent, &node->sent, &node->retry, &node->held};
    for (size_t r = 0; r < 4; r++) {
        struct writer_ring *ring = rings[r];
        while (ring->count > 0) {
            struct writer_item item = writer_ring_pop_front(ring);
            if (item.op == WRITER_OP_DATA && --item.job->remaining == 0)
                writer_job_free(node->writer, item.job);
        }
        free(ring->items);
    }
    ev_timer_stop(node->writer->loop, &node->timer);
    ev_timer_stop(node->writer->loop, &node->wait_timer);
    conn_free(node->conn);
    free(node->slot_inflight);
    free(node->host);
    free(node);
}

static struct writer_node *writer_find_node(struct writer *writer, const char *host, int port) {
    for (int i = 0; i < writer->node_count; i++) {
        struct writer_node *node = writer->nodes[i];
        if (node->port == port && strcmp(node->host, host) == 0) return node;
    }
    return NULL;
}

/* The node at host:port, created (and, for a cluster, given slot counters) when new. */
static struct writer_node *writer_node_for(struct writer *writer, const char *host, int port) {
    struct writer_node *node = writer_find_node(writer, host, port);
    if (node != NULL) return node;
    node = writer_node_new(writer, host, port);
    if (node == NULL) return NULL;
    if (writer->info.is_cluster) {
        node->slot_inflight = calloc(CLUSTER_SLOTS, sizeof(*node->slot_inflight));
        if (node->slot_inflight == NULL) return NULL; /* stays in the list, freed with it */
    }
    return node;
}

static void writer_node_start_timer(struct writer_node *node, enum writer_timer_purpose purpose,
                                    double delay_s) {
    ev_timer_stop(node->writer->loop, &node->timer);
    node->timer_purpose = purpose;
    ev_timer_set(&node->timer, delay_s, 0.);
    ev_timer_start(node->writer->loop, &node->timer);
}

/* Write a control command (not an entry's) and expect its reply in order. */
static void writer_node_send_control(struct writer_node *node, enum writer_op op, uint32_t arg,
                                     int argc, const char **argv) {
    struct writer *writer = node->writer;
    size_t lens[4];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    char *resp = NULL;
    long long len = redisFormatCommandArgv(&resp, argc, argv, lens);
    struct writer_item item = {.job = NULL, .index = arg, .op = (uint8_t)op, .asking = 0};
    if (len < 0 || conn_send(node->conn, resp, (size_t)len) < 0 ||
        writer_ring_push_back(&node->sent, item) < 0) {
        free(resp);
        writer_fail(writer, "target %s: out of memory", node->name);
        return;
    }
    free(resp);
}

/* Start (or restart) the TCP connection; a synchronous failure is reported from
 * the loop, like an asynchronous one. */
static void writer_node_connect(struct writer_node *node) {
    char err[256];
    node->state = WRITER_NODE_CONNECTING;
    if (conn_connect(node->conn, err, sizeof(err)) < 0) {
        snprintf(node->last_error, sizeof(node->last_error), "%s", err);
        node->state = WRITER_NODE_DOWN;
        writer_node_start_timer(node, WRITER_TIMER_ERROR, 0.);
    }
}

/* Make sure a node with work will get a connection. */
static void writer_node_wake(struct writer_node *node) {
    if (node->state == WRITER_NODE_DOWN && !ev_is_active(&node->timer))
        writer_node_connect(node);
    else
        writer_node_flush(node);
}

/* Write the node's unsent items, with SELECT / ASKING in front where needed. */
static void writer_node_flush(struct writer_node *node) {
    struct writer *writer = node->writer;
    if (node->state != WRITER_NODE_UP || node->paused || writer_stopped(writer)) return;
    while (node->unsent.count > 0 && !writer_stopped(writer)) {
        struct writer_item item = writer_ring_pop_front(&node->unsent);
        struct writer_job *job = item.job;
        if (!writer->info.is_cluster && job->db >= 0 && job->db != node->current_db) {
            char db[16];
            snprintf(db, sizeof(db), "%d", job->db);
            const char *argv[] = {"SELECT", db};
            writer_node_send_control(node, WRITER_OP_SELECT, (uint32_t)job->db, 2, argv);
            node->current_db = job->db;
        }
        if (item.asking) {
            const char *argv[] = {"ASKING"};
            writer_node_send_control(node, WRITER_OP_ASKING, 0, 1, argv);
        }
        struct command *command = writer_item_command(&item);
        if (conn_send(node->conn, command->resp, command->len) < 0 ||
            writer_ring_push_back(&node->sent, item) < 0) {
            writer_item_abandon(node, &item);
            writer_fail(writer, "target %s: out of memory", node->name);
            return;
        }
        writer->stats.commands_sent++;
        writer->stats.bytes_sent += command->len;
        if (node->wait.replicas > 0) replica_wait_wrote(&node->wait, command->len);
    }
    writer_node_wait_maybe(node);
}

/* Queue a DATA item at a node (new, redirected or requeued at the back). */
static void writer_node_enqueue(struct writer_node *node, struct writer_item item) {
    writer_node_account_add(node, &item);
    if (writer_ring_push_back(&node->unsent, item) < 0) {
        writer_item_abandon(node, &item);
        writer_fail(node->writer, "target %s: out of memory", node->name);
        return;
    }
    writer_node_wake(node);
}

/* Put every unanswered DATA item back in front of `unsent`, oldest first:
 * retried ones, then written ones. Control items are dropped (the handshake and
 * SELECTs are redone). Returns how many DATA items will be resent. */
static size_t writer_node_requeue(struct writer_node *node) {
    size_t resent = 0;
    for (size_t i = node->sent.count; i-- > 0;) {
        struct writer_item item = *writer_ring_at(&node->sent, i);
        if (item.op == WRITER_OP_DATA) {
            writer_ring_push_front(&node->unsent, item);
            resent++;
        } else if (item.op == WRITER_OP_CLUSTER_SLOTS) {
            node->writer->refresh_in_flight = 0;
        }
    }
    node->sent.count = 0;
    node->sent.head = 0;
    for (size_t i = node->retry.count; i-- > 0;) {
        writer_ring_push_front(&node->unsent, *writer_ring_at(&node->retry, i));
        resent++;
    }
    node->retry.count = 0;
    node->retry.head = 0;
    node->replies_seen = 0;
    node->queued_error[0] = '\0';
    /* Held items stay held: this node answered them. They go to another node only
     * if the slot map says their slots moved (writer_node_reroute). */
    replica_wait_reset(&node->wait, node->held.count > 0);
    ev_timer_stop(node->writer->loop, &node->wait_timer);
    return resent;
}

/* Start or continue a failure streak; returns 1 when it has lasted too long. */
static int writer_node_trouble(struct writer_node *node) {
    struct writer *writer = node->writer;
    if (node->trouble_since == 0) {
        node->trouble_since = writer_now(writer);
        node->backoff_s = WRITER_BACKOFF_FIRST_S;
    }
    return (writer_now(writer) - node->trouble_since) * 1000.0 >= writer->give_up_ms;
}

static double writer_node_next_backoff(struct writer_node *node) {
    double delay = node->backoff_s;
    node->backoff_s = delay * 2 > WRITER_BACKOFF_MAX_S ? WRITER_BACKOFF_MAX_S : delay * 2;
    return delay;
}

/* The connection broke after start: requeue what had no reply and reconnect
 * with back-off, or give up when it lasts. */
static void writer_node_lost(struct writer_node *node, const char *reason) {
    struct writer *writer = node->writer;
    if (writer->state != WRITER_READY) {
        writer_fail(writer, "target %s: %s", node->name, reason);
        return;
    }
    conn_close(node->conn);
    node->state = WRITER_NODE_DOWN;
    node->paused = 0;
    node->current_db = 0;
    size_t resent = writer_node_requeue(node);
    writer->stats.retries += resent;
    snprintf(node->last_error, sizeof(node->last_error), "%s", reason);
    if (!node->lost_reported && (node->is_master || resent > 0 || node->held.count > 0)) {
        node->lost_reported = 1;
        writer_notice(writer,
                      "target %s: connection lost (%s): %zu commands to resend, %zu answered "
                      "but not yet confirmed on a replica; reconnecting",
                      node->name, reason, node->unsent.count, node->held.count);
    }
    if (writer->info.is_cluster) {
        /* A failover moves the node's slots to a replica: the map says when. */
        writer_node_reroute(node, WRITER_NO_SLOT);
        writer_refresh_slots(writer, node);
    }
    if (writer_stopped(writer)) return;
    if (node->unsent.count == 0 && node->held.count == 0 && !node->is_master) {
        ev_timer_stop(writer->loop, &node->timer);
        return; /* nothing to deliver there: reconnect when something is routed to it */
    }
    if (writer_node_trouble(node)) {
        writer_fail(writer, "target %s: connection lost (%s); gave up reconnecting after %g s",
                    node->name, reason, writer->give_up_ms / 1000.0);
        return;
    }
    writer_node_start_timer(node, WRITER_TIMER_RECONNECT, writer_node_next_backoff(node));
}

/* The back-off is over and every reply of the streak is in: resend in order. */
static void writer_node_resume(struct writer_node *node) {
    struct writer *writer = node->writer;
    writer->stats.retries += node->retry.count;
    for (size_t i = node->retry.count; i-- > 0;) {
        writer_ring_push_front(&node->unsent, *writer_ring_at(&node->retry, i));
    }
    node->retry.count = 0;
    node->retry.head = 0;
    node->paused = 0;
    writer_node_flush(node);
}

/* ---- replica confirmation and failover ------------------------------------------ */

/* The held items are confirmed on a replica (or the node needs no confirmation
 * any more): they are answered for good, oldest first. */
static void writer_node_release_held(struct writer_node *node) {
    while (node->held.count > 0 && !writer_stopped(node->writer)) {
        struct writer_item item = writer_ring_pop_front(&node->held);
        writer_item_final(node, &item);
    }
}

/* An item answered OK: final, or held until a WAIT confirms it on a replica. */
static void writer_item_replied(struct writer_node *node, struct writer_item *item) {
    if (node->wait.replicas == 0) {
        writer_item_final(node, item);
        return;
    }
    if (writer_ring_push_back(&node->held, *item) < 0) {
        writer_item_abandon(node, item);
        writer_fail(node->writer, "target %s: out of memory", node->name);
    }
}

/* Send the node's next WAIT when it is due (replica_wait.h), or arm the timer for
 * it; a node that needs no confirmation releases what it still holds. */
static void writer_node_wait_maybe(struct writer_node *node) {
    struct writer *writer = node->writer;
    if (node->state != WRITER_NODE_UP || node->paused || writer_stopped(writer)) return;
    if (node->wait.replicas == 0) {
        if (node->held.count > 0) writer_node_release_held(node);
        return;
    }
    double due = replica_wait_due(&node->wait, writer_now(writer));
    if (due < 0) return;
    if (due > 0) {
        if (!ev_is_active(&node->wait_timer)) {
            ev_timer_set(&node->wait_timer, due, 0.);
            ev_timer_start(writer->loop, &node->wait_timer);
        }
        return;
    }
    ev_timer_stop(writer->loop, &node->wait_timer);
    char replicas[16], timeout[16];
    snprintf(replicas, sizeof(replicas), "%d", node->wait.replicas);
    snprintf(timeout, sizeof(timeout), "%d", REPLICA_WAIT_TIMEOUT_MS);
    const char *argv[] = {"WAIT", replicas, timeout};
    writer_node_send_control(node, WRITER_OP_WAIT, 0, 3, argv);
    replica_wait_sent(&node->wait, writer_now(writer));
}

/* wait_replicas = auto: a cluster master waits for one replica when the slot map
 * lists some (a failed replica is left out of CLUSTER SLOTS). */
static void writer_node_set_wait(struct writer_node *node, int map_replicas) {
    struct writer *writer = node->writer;
    if (writer->conf->wait_replicas != CONF_WAIT_REPLICAS_AUTO || writer->wait_refused) return;
    int replicas = map_replicas > 0 ? 1 : 0;
    if (replicas == node->wait.replicas) return;
    node->wait.replicas = replicas;
    if (replicas == 0) ev_timer_stop(writer->loop, &node->wait_timer);
    writer_node_wait_maybe(node);
}

/* A WAIT refused for good (an ACL without +wait, a server without WAIT): with
 * wait_replicas = auto, stop waiting everywhere and say so; an explicit number
 * cannot be honoured: fatal. */
static void writer_wait_refused(struct writer_node *node, const redisReply *reply) {
    struct writer *writer = node->writer;
    if (writer->conf->wait_replicas != CONF_WAIT_REPLICAS_AUTO) {
        writer_fail(writer,
                    "target %s: WAIT %d: %s (grant the target user +wait, or set [target] "
                    "wait_replicas = 0)",
                    node->name, node->wait.replicas, reply->str);
        return;
    }
    writer->wait_refused = 1;
    writer_notice(writer,
                  "target %s: WAIT refused (%s): writes count as done once a master answers, "
                  "without waiting for its replicas (a failover may lose the last ones)",
                  node->name, reply->str);
    for (int i = 0; i < writer->node_count; i++) {
        writer->nodes[i]->wait.replicas = 0;
        writer_node_wait_maybe(writer->nodes[i]);
    }
}

static void writer_on_wait_reply(struct writer_node *node, const redisReply *reply) {
    struct writer *writer = node->writer;
    ev_tstamp now = writer_now(writer);
    if (reply->type == REDIS_REPLY_ERROR &&
        (writer_error_is(reply, "NOPERM") || writer_error_is(reply, "ERR unknown command"))) {
        node->wait.in_flight = 0;
        writer_wait_refused(node, reply);
        return;
    }
    long long acked = reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (replica_wait_answered(&node->wait, acked, now)) {
        writer_node_release_held(node);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        /* Likely a replica now ("WAIT cannot be used with replica instances"): the
         * slot map tells where its held items go; no WAIT again until more writes. */
        node->wait.needed = 0;
        writer_refresh_slots(writer, node);
        return;
    }
    double streak = replica_wait_should_warn(&node->wait, now);
    if (streak > 0)
        writer_notice(writer,
                      "target %s: no replica has confirmed its writes for %.0f s (WAIT %d "
                      "answered %lld); holding %zu answered commands until one does (set "
                      "[target] wait_replicas = 0 not to wait)",
                      node->name, streak, node->wait.replicas, acked, node->held.count);
    if (writer->info.is_cluster && now - writer->refresh_asked_at >= 1.0) {
        /* A replica flagged as failed leaves the map, and auto stops waiting for it. */
        writer->refresh_asked_at = now;
        writer_refresh_slots(writer, node);
    }
}

/* Where an item of `node` goes after the slot map changed: its slot's master when
 * that is another node; an item with no slot (a broadcast, a keyless command) goes
 * where `fallback_slot` went, once the node serves no slot. -1: it stays. */
static int writer_reroute_destination(struct writer_node *node, const struct writer_item *item,
                                      unsigned fallback_slot) {
    struct writer *writer = node->writer;
    int destination = -1;
    if (item->slot != WRITER_ITEM_NO_SLOT)
        destination = writer->slot_node[item->slot];
    else if (!node->is_master && fallback_slot != WRITER_NO_SLOT)
        destination = writer->slot_node[fallback_slot];
    return destination != node->index ? destination : -1;
}

/* Move the items of `ring` that belong elsewhere now to the back of their new
 * node's `unsent`, in order; the others stay, in order. They are picked out first
 * and queued after: queueing may flush a node and route more items here. Returns
 * how many moved, and the last destination in *to. */
static size_t writer_reroute_ring(struct writer_node *node, struct writer_ring *ring,
                                  unsigned fallback_slot, int *to) {
    struct writer *writer = node->writer;
    struct writer_ring moving = {0};
    for (size_t i = 0, count = ring->count; i < count; i++) {
        struct writer_item item = writer_ring_pop_front(ring);
        if (writer_reroute_destination(node, &item, fallback_slot) < 0) {
            writer_ring_push_back(ring, item); /* a slot was just freed: no allocation */
        } else if (writer_ring_push_back(&moving, item) < 0) {
            writer_ring_push_back(ring, item);
            writer_fail(writer, "target %s: out of memory", node->name);
        }
    }
    size_t moved = 0;
    while (moving.count > 0) {
        struct writer_item item = writer_ring_pop_front(&moving);
        int destination = writer_reroute_destination(node, &item, fallback_slot);
        if (writer_stopped(writer) || destination < 0) { /* still this node's */
            writer_ring_push_back(ring, item);
            continue;
        }
        writer_node_account_remove(node, &item);
        item.asking = 0;
        if (item.slot != WRITER_ITEM_NO_SLOT) writer->slot_last[item.slot] = (int16_t)destination;
        writer_node_enqueue(writer->nodes[destination], item);
        *to = destination;
        moved++;
    }
    free(moving.items);
    return moved;
}

/* After a slot map change, or when its connection is lost: a node that is down
 * gives what it still has to send for slots now served elsewhere to their new
 * master; a node that is down or no longer a master also gives its held items (a
 * promoted replica may lack them), first, so that a key's commands keep their
 * order. A down node left with nothing to do that serves no slot is not
 * reconnected. */
static void writer_node_reroute(struct writer_node *node, unsigned fallback_slot) {
    struct writer *writer = node->writer;
    int down = node->state != WRITER_NODE_UP;
    if (!down && node->is_master) return;
    int to = -1;
    size_t held = writer_reroute_ring(node, &node->held, fallback_slot, &to);
    size_t unsent = down ? writer_reroute_ring(node, &node->unsent, fallback_slot, &to) : 0;
    if (writer_stopped(writer)) return;
    if (held + unsent > 0) {
        writer->stats.retries += held;
        writer_notice(writer,
                      "target %s: resending %zu commands to the new master of their slots "
                      "(%s), %zu of them answered by %s but not confirmed on a replica",
                      node->name, held + unsent, writer->nodes[to]->name, held, node->name);
    }
    if (down && !node->is_master && node->unsent.count == 0 && node->held.count == 0 &&
        ev_is_active(&node->timer)) {
        ev_timer_stop(writer->loop, &node->timer);
        node->trouble_since = 0;
        writer_notice(writer, "target %s: serves no slot any more; not reconnecting", node->name);
    }
}

/* ---- probing ------------------------------------------------------------------- */

static void writer_probe_done(struct writer *writer) {
    struct writer_node *seed = writer->nodes[0];
    if (writer->table == NULL) {
        writer->info.command_table_builtin = 1;
        if (cmd_table_builtin(&writer->table) < 0) {
            writer_fail(writer, "target %s: out of memory building the command table", seed->name);
            return;
        }
    }
    if (!seed->is_master) {
        conn_close(seed->conn);
        seed->state = WRITER_NODE_DOWN;
    }
    writer->state = WRITER_READY;
    writer->idle_reported = 1;
    if (writer->info.is_cluster && writer->conf->wait_replicas == CONF_WAIT_REPLICAS_AUTO)
        ev_timer_again(writer->loop, &writer->map_timer);
    if (writer->callbacks.ready != NULL) writer->callbacks.ready(writer->callbacks.ctx);
}

/* Ask a master for its key count (startup). */
static void writer_probe_keyspace(struct writer_node *node) {
    const char *argv[] = {"INFO", "keyspace"};
    node->probe_pending = 1;
    node->writer->probe_waiting++;
    writer_node_send_control(node, WRITER_OP_INFO_KEYSPACE, 0, 2, argv);
}

/* The map changed: nodes that are down or no longer masters hand their work to
 * the slots' new masters; an item with no slot follows the first slot the node
 * served before (`previous`: the slot -> node table before the change). */
static void writer_reroute_after(struct writer *writer, const int16_t *previous) {
    for (int i = 0; i < writer->node_count && !writer_stopped(writer); i++) {
        struct writer_node *node = writer->nodes[i];
        int down = node->state != WRITER_NODE_UP;
        if (!(down && node->unsent.count > 0) && node->held.count == 0 &&
            !(down && !node->is_master))
            continue;
        unsigned fallback = WRITER_NO_SLOT;
        for (unsigned slot = 0; slot < CLUSTER_SLOTS && fallback == WRITER_NO_SLOT; slot++)
            if (previous[slot] == node->index) fallback = slot;
        writer_node_reroute(node, fallback);
    }
}

/* Make the map the routing table: nodes for its masters, slot -> node. */
static int writer_apply_map(struct writer *writer, int at_startup) {
    int16_t previous[CLUSTER_SLOTS]; /* who served each slot before: see writer_reroute_after */
    memcpy(previous, writer->slot_node, sizeof(previous));
    for (int i = 0; i < writer->node_count; i++)
        writer->nodes[i]->is_master = 0;
    int16_t master_node[WRITER_MAX_MASTERS];
    int master_count = writer->map.master_count;
    if (master_count > WRITER_MAX_MASTERS) {
        writer_fail(writer, "target: more than %d masters", WRITER_MAX_MASTERS);
        return -1;
    }
    for (int m = 0; m < master_count; m++) {
        struct slots_master *master = &writer->map.masters[m];
        struct writer_node *node = writer_node_for(writer, master->host, master->port);
        if (node == NULL) {
            writer_fail(writer, "target %s:%d: out of memory", master->host, master->port);
            return -1;
        }
        node->is_master = 1;
        master_node[m] = (int16_t)node->index;
        writer_node_set_wait(node, master->replicas);
        if (at_startup) {
            if (node->state == WRITER_NODE_UP)
                writer_probe_keyspace(node);
            else {
                node->probe_pending = 1;
                writer->probe_waiting++;
                writer_node_connect(node);
            }
        } else if (node->state == WRITER_NODE_DOWN && !ev_is_active(&node->timer)) {
            writer_node_connect(node);
        }
    }
    for (unsigned slot = 0; slot < CLUSTER_SLOTS; slot++) {
        int owner = writer->map.owner[slot];
        writer->slot_node[slot] = owner >= 0 && owner < master_count ? master_node[owner] : -1;
    }
    writer->info.master_count = master_count;
    if (!at_startup) writer_reroute_after(writer, previous);
    return 0;
}

static void writer_on_info_server(struct writer_node *node, const redisReply *reply) {
    struct writer *writer = node->writer;
    char version[64];
    if (reply->type != REDIS_REPLY_STRING) {
        writer_fail(writer, "target %s: INFO server: %s", node->name,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        return;
    }
    if (probe_info_field(reply->str, reply->len, "redis_version", version, sizeof(version)) < 0 ||
        probe_parse_version(version, &writer->info.version_major, &writer->info.version_minor,
                            &writer->info.version_patch) < 0) {
        writer_fail(writer, "target %s: INFO server has no redis_version", node->name);
        return;
    }
    writer->info.rdb_version =
        probe_rdb_version(writer->info.version_major, writer->info.version_minor);
    writer->info.restorable_types = probe_restorable_types(writer->info.rdb_version);
}

/* Decide standalone or cluster; a standalone target is probed completely. */
static void writer_on_info_cluster(struct writer_node *node, const redisReply *reply) {
    struct writer *writer = node->writer;
    char enabled[8];
    if (reply->type == REDIS_REPLY_STRING &&
        probe_info_field(reply->str, reply->len, "cluster_enabled", enabled, sizeof(enabled)) ==
            0) {
        writer->cluster_known = 1;
        writer->info.is_cluster = enabled[0] == '1';
    }
    if (writer->cluster_known && !writer->info.is_cluster) {
        node->is_master = 1;
        writer->info.master_count = 1;
        writer_probe_keyspace(node);
        return;
    }
    const char *argv[] = {"CLUSTER", "SLOTS"};
    writer_node_send_control(node, WRITER_OP_CLUSTER_SLOTS, 0, 2, argv);
}

static void writer_on_cluster_slots(struct writer_node *node, const redisReply *reply) {
    struct writer *writer = node->writer;
    char err[256];
    if (writer->state == WRITER_PROBING) {
        if (reply->type == REDIS_REPLY_ERROR && !writer->cluster_known) {
            /* No INFO cluster (old release) and no cluster support: standalone. */
            writer->info.is_cluster = 0;
            node->is_master = 1;
            writer->info.master_count = 1;
            writer_probe_keyspace(node);
            return;
        }
        if (slots_map_parse(&writer->map, reply, node->host, err, sizeof(err)) < 0) {
            writer_fail(writer, "target %s: %s", node->name, err);
            return;
        }
        if (slots_map_covered(&writer->map) == 0) {
            writer_fail(writer, "target %s: the cluster serves no slot", node->name);
            return;
        }
        writer->info.is_cluster = 1;
        for (int i = 0; i < writer->node_count; i++) {
            struct writer_node *known = writer->nodes[i];
            if (known->slot_inflight == NULL) {
                known->slot_inflight = calloc(CLUSTER_SLOTS, sizeof(*known->slot_inflight));
                if (known->slot_inflight == NULL) {
                    writer_fail(writer, "target %s: out of memory", known->name);
                    return;
                }
            }
        }
        writer_apply_map(writer, 1);
        return;
    }
    writer->refresh_in_flight = 0;
    if (slots_map_parse(&writer->map, reply, node->host, err, sizeof(err)) < 0) return;
    writer_apply_map(writer, 0);
}

static void writer_on_info_keyspace(struct writer_node *node, const redisReply *reply) {
    struct writer *writer = node->writer;
    if (reply->type != REDIS_REPLY_STRING) {
        writer_fail(writer, "target %s: INFO keyspace: %s", node->name,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        return;
    }
    writer->info.keys += probe_keyspace_keys(reply->str, reply->len);
    if (node->probe_pending) {
        node->probe_pending = 0;
        if (--writer->probe_waiting == 0) writer_probe_done(writer);
    }
}

/* The target's command table routes CMD entries; a target that refuses COMMAND
 * (an ACL, a proxy) or answers something unreadable gets the built-in table. */
static void writer_on_command_table(struct writer_node *node, const redisReply *reply) {
    struct writer *writer = node->writer;
    char err[256];
    if (writer->table != NULL) return;
    if (reply->type == REDIS_REPLY_ARRAY &&
        cmd_table_from_reply(&writer->table, reply, err, sizeof(err)) == 0)
        return;
    writer->info.command_table_builtin = 1;
    if (cmd_table_builtin(&writer->table) < 0)
        writer_fail(writer, "target %s: out of memory building the command table", node->name);
}

/* Replies to commands that are not an entry's. */
static void writer_on_control_reply(struct writer_node *node, const struct writer_item *item,
                                    const redisReply *reply) {
    struct writer *writer = node->writer;
    switch ((enum writer_op)item->op) {
    case WRITER_OP_AUTH:
        if (reply->type == REDIS_REPLY_ERROR) {
            writer_fail(writer, "target %s: authentication failed: %s", node->name, reply->str);
        }
        return;
    case WRITER_OP_INFO_SERVER: writer_on_info_server(node, reply); return;
    case WRITER_OP_CONFIG_PROTO:
        writer->info.proto_max_bulk_len = probe_proto_max_bulk_len(reply);
        return;
    case WRITER_OP_INFO_CLUSTER: writer_on_info_cluster(node, reply); return;
    case WRITER_OP_CLUSTER_SLOTS: writer_on_cluster_slots(node, reply); return;
    case WRITER_OP_INFO_KEYSPACE: writer_on_info_keyspace(node, reply); return;
    case WRITER_OP_SELECT:
        if (reply->type == REDIS_REPLY_ERROR) {
            writer_fail(writer, "target %s: SELECT %u: %s", node->name, item->index, reply->str);
        }
        return;
    case WRITER_OP_COMMAND: writer_on_command_table(node, reply); return;
    case WRITER_OP_WAIT: writer_on_wait_reply(node, reply); return;
    case WRITER_OP_ASKING:
    case WRITER_OP_DATA: return;
    }
}

/* ---- data replies -------------------------------------------------------------- */

static int writer_error_is(const redisReply *reply, const char *code) {
    size_t len = strlen(code);
    return reply->len >= len && memcmp(reply->str, code, len) == 0 &&
           (reply->len == len || reply->str[len] == ' ');
}

/* A DATA item is done with this node: release its accounting here. */
static void writer_item_leaves(struct writer_node *node, const struct writer_item *item) {
    writer_node_account_remove(node, item);
}

/* The writer stopped while holding this item outside any queue: release it. */
static void writer_item_abandon(struct writer_node *node, struct writer_item *item) {
    writer_item_leaves(node, item);
    node->writer->data_outstanding--;
    if (--item->job->remaining == 0) writer_job_free(node->writer, item->job);
}

/* The item is answered for good (OK, skipped, or a failed key). */
static void writer_item_final(struct writer_node *node, struct writer_item *item) {
    struct writer *writer = node->writer;
    writer_item_leaves(node, item);
    writer->data_outstanding--;
    if (!item->job->shared) {
        command_free_resp(writer_item_command(item));
    }
    writer_job_answered(writer, item->job);
}

/* MOVED / ASK: send the item to the node named in the reply. */
static void writer_redirect(struct writer_node *node, struct writer_item *item,
                            const redisReply *reply) {
    struct writer *writer = node->writer;
    enum slots_redirect_kind kind;
    unsigned slot;
    char host[SLOTS_HOST_MAX];
    int port;
    if (slots_parse_redirect(reply->str, reply->len, &kind, &slot, host, sizeof(host), &port) < 0) {
        writer_item_abandon(node, item);
        writer_fail(writer, "target %s: unreadable redirection: %s", node->name, reply->str);
        return;
    }
    if (host[0] == '\0') snprintf(host, sizeof(host), "%s", node->host);
    struct writer_node *target = writer_node_for(writer, host, port);
    if (target == NULL) {
        writer_item_abandon(node, item);
        writer_fail(writer, "target %s:%d: out of memory", host, port);
        return;
    }
    writer->stats.redirects++;
    writer_item_leaves(node, item);
    item->asking = kind == SLOTS_REDIRECT_ASK;
    if (kind == SLOTS_REDIRECT_MOVED) {
        writer->slot_node[slot] = (int16_t)target->index;
        writer_refresh_slots(writer, target);
    }
    writer_node_enqueue(target, *item);
}

/* TRYAGAIN / CLUSTERDOWN / LOADING / BUSY: hold the item and back off. */
static void writer_retry_later(struct writer_node *node, struct writer_item *item,
                               const redisReply *reply) {
    struct writer *writer = node->writer;
    if (writer_node_trouble(node)) {
        char subject[WRITER_KEY_SHOWN * 4 + 64];
        writer_item_subject(item, subject, sizeof(subject));
        writer_item_abandon(node, item);
        writer_fail(writer, "target %s: %s: gave up after %g s of retries: %s", node->name, subject,
                    writer->give_up_ms / 1000.0, reply->str);
        return;
    }
    if (writer_ring_push_back(&node->retry, *item) < 0) {
        writer_item_abandon(node, item);
        writer_fail(writer, "target %s: out of memory", node->name);
        return;
    }
    if (!node->paused) {
        node->paused = 1;
        writer_node_start_timer(node, WRITER_TIMER_RESUME, writer_node_next_backoff(node));
    }
}

/* DUMP and PTTL of a RENAME emulation answered: keep what RESTORE needs. */
static void writer_rename_on_reply(struct writer *writer, struct writer_job *job, uint32_t index,
                                   const redisReply *reply) {
    struct writer_rename *rename = job->rename;
    if (index == 0 && reply->type == REDIS_REPLY_NIL) rename->missing = 1;
    if (index == 0 && reply->type == REDIS_REPLY_STRING) {
        rename->payload = malloc(reply->len ? reply->len : 1);
        if (rename->payload == NULL) {
            job->failed = 1;
            writer_fail(writer, "out of memory holding a DUMP for RENAME");
            return;
        }
        memcpy(rename->payload, reply->str, reply->len);
        rename->payload_len = reply->len;
    }
    if (index == 1 && reply->type == REDIS_REPLY_INTEGER) {
        if (reply->integer == -2) rename->missing = 1;
        rename->ttl_ms = reply->integer > 0 ? reply->integer : 0;
    }
}

static void writer_on_data_reply(struct writer_node *node, struct writer_item *item,
                                 const redisReply *reply) {
    struct writer *writer = node->writer;
    if (reply->type != REDIS_REPLY_ERROR) {
        if (node->trouble_since != 0) {
            node->trouble_since = 0;
            node->backoff_s = WRITER_BACKOFF_FIRST_S;
        }
        if (item->job->rename != NULL)
            writer_rename_on_reply(writer, item->job, item->index, reply);
        writer_item_replied(node, item);
        return;
    }
    if (writer_error_is(reply, "MOVED") || writer_error_is(reply, "ASK")) {
        writer_redirect(node, item, reply);
        return;
    }
    if (writer_error_is(reply, "TRYAGAIN") || writer_error_is(reply, "CLUSTERDOWN") ||
        writer_error_is(reply, "LOADING") || writer_error_is(reply, "BUSY") ||
        writer_error_is(reply, "MASTERDOWN")) {
        writer_retry_later(node, item, reply);
        return;
    }
    char subject[WRITER_KEY_SHOWN * 4 + 64];
    writer_item_subject(item, subject, sizeof(subject));
    if (writer_error_is(reply, "BUSYKEY") && writer_item_command(item)->busykey_is_skip) {
        item->job->skipped = 1;
        writer_item_final(node, item);
        return;
    }
    if (writer_error_is(reply, "OOM") || writer_error_is(reply, "NOAUTH")) {
        writer->stats.errors++; /* the refused key counts, even though the job stops */
        writer_item_abandon(node, item);
        writer_fail(writer, "target %s: %s: %s", node->name, subject, reply->str);
        return;
    }
    writer->stats.errors++;
    item->job->failed = 1;
    if (writer->callbacks.key_error != NULL) {
        char message[WRITER_MESSAGE_LEN];
        snprintf(message, sizeof(message), "target %s: %s: %s", node->name, subject, reply->str);
        writer->callbacks.key_error(writer->callbacks.ctx, message);
    }
    writer_item_final(node, item);
}

/* The last reply of a MULTI ... EXEC sent whole. An error while queueing
 * (MOVED, ASK, TRYAGAIN, a syntax error) made EXEC abort: that first error decides,
 * so that the whole transaction is redirected, retried or reported. An EXEC that
 * ran reports each failed command. */
static void writer_on_transaction_reply(struct writer_node *node, struct writer_item *item,
                                        const redisReply *reply) {
    struct writer *writer = node->writer;
    char queued_error[sizeof(node->queued_error)];
    snprintf(queued_error, sizeof(queued_error), "%s", node->queued_error);
    node->queued_error[0] = '\0';
    if (reply->type == REDIS_REPLY_ERROR && queued_error[0] != '\0') {
        redisReply first;
        memset(&first, 0, sizeof(first));
        first.type = REDIS_REPLY_ERROR;
        first.str = queued_error;
        first.len = strlen(queued_error);
        writer_on_data_reply(node, item, &first);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        char subject[WRITER_KEY_SHOWN * 4 + 64];
        writer_item_subject(item, subject, sizeof(subject));
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *element = reply->element[i];
            if (element->type != REDIS_REPLY_ERROR) continue;
            writer->stats.errors++;
            item->job->failed = 1;
            if (writer->callbacks.key_error == NULL) continue;
            char message[WRITER_MESSAGE_LEN];
            snprintf(message, sizeof(message), "target %s: %s: command %zu: %s", node->name,
                     subject, i + 1, element->str);
            writer->callbacks.key_error(writer->callbacks.ctx, message);
        }
    }
    writer_on_data_reply(node, item, reply);
}

/* Ask for the whole slot map again (after MOVED); one refresh at a time. */
static void writer_refresh_slots(struct writer *writer, struct writer_node *node) {
    if (writer->refresh_in_flight) return;
    struct writer_node *asked = node;
    if (asked->state != WRITER_NODE_UP) {
        asked = NULL;
        for (int i = 0; i < writer->node_count && asked == NULL; i++) {
            if (writer->nodes[i]->state == WRITER_NODE_UP) asked = writer->nodes[i];
        }
    }
    if (asked == NULL) return;
    const char *argv[] = {"CLUSTER", "SLOTS"};
    writer->refresh_in_flight = 1;
    writer_node_send_control(asked, WRITER_OP_CLUSTER_SLOTS, 0, 2, argv);
}

/* After a batch of replies: owe the owner a `drained`? */
static void writer_maybe_drained(struct writer *writer) {
    if (writer_stopped(writer) || writer->state != WRITER_READY) return;
    int call = 0;
    if (writer->was_full) {
        /* Room again once every node that hit its bound is under half of it; the
         * others keep their pipelines going meanwhile. */
        size_t half = writer->conf->pipeline_max_bytes / 2;
        int still_full = 0;
        for (int i = 0; i < writer->node_count; i++) {
            struct writer_node *node = writer->nodes[i];
            if (node->was_full && node->inflight_bytes < half) node->was_full = 0;
            still_full |= node->was_full;
        }
        still_full |= writer->held_bytes >= half && writer->held_bytes > 0;
        if (!still_full) {
            writer->was_full = 0;
            call = 1;
        }
    }
    if (writer_is_idle(writer) && !writer->idle_reported) {
        writer->idle_reported = 1;
        call = 1;
    }
    if (call && writer->callbacks.drained != NULL) writer->callbacks.drained(writer->callbacks.ctx);
}

/* ---- libev entry points ---------------------------------------------------------- */

static void writer_destroy(struct writer *writer);

static void writer_enter(struct writer *writer) {
    writer->depth++;
}

/* Leave a callback; the deferred writer_free happens here. */
static void writer_leave(struct writer *writer) {
    if (--writer->depth == 0 && writer->free_requested) writer_destroy(writer);
}

static void writer_node_on_connected(void *ctx, struct conn *conn) {
    (void)conn;
    struct writer_node *node = ctx;
    struct writer *writer = node->writer;
    writer_enter(writer);
    node->state = WRITER_NODE_UP;
    node->current_db = 0;
    if (node->lost_reported) {
        node->lost_reported = 0;
        writer_notice(writer, "target %s: reconnected, resending %zu commands", node->name,
                      node->unsent.count);
    }
    const struct conf_target *conf = writer->conf;
    if (conf->password != NULL) {
        const char *argv[] = {"AUTH", conf->username ? conf->username : conf->password,
                              conf->password};
        writer_node_send_control(node, WRITER_OP_AUTH, 0, conf->username ? 3 : 2, argv);
    }
    if (writer->state == WRITER_PROBING && node == writer->nodes[0] && !node->probe_pending) {
        const char *info_server[] = {"INFO", "server"};
        const char *config[] = {"CONFIG", "GET", "proto-max-bulk-len"};
        const char *info_cluster[] = {"INFO", "cluster"};
        writer_node_send_control(node, WRITER_OP_INFO_SERVER, 0, 2, info_server);
        writer_node_send_control(node, WRITER_OP_CONFIG_PROTO, 0, 3, config);
        writer_node_send_control(node, WRITER_OP_INFO_CLUSTER, 0, 2, info_cluster);
        const char *command[] = {"COMMAND"};
        writer_node_send_control(node, WRITER_OP_COMMAND, 0, 1, command);
    } else if (writer->state == WRITER_PROBING && node->probe_pending) {
        const char *argv[] = {"INFO", "keyspace"};
        writer_node_send_control(node, WRITER_OP_INFO_KEYSPACE, 0, 2, argv);
    }
    writer_node_flush(node);
    writer_leave(writer);
}

static void writer_node_on_readable(void *ctx, struct conn *conn) {
    struct writer_node *node = ctx;
    struct writer *writer = node->writer;
    writer_enter(writer);
    char err[256];
    while (!writer_stopped(writer) && node->state == WRITER_NODE_UP) {
        void *reply_ptr = NULL;
        int rc = conn_get_reply(conn, &reply_ptr, err, sizeof(err));
        if (rc == 0) break;
        if (rc < 0) {
            writer_node_lost(node, err);
            break;
        }
        redisReply *reply = reply_ptr;
        if (node->sent.count == 0) {
            conn_free_reply(conn, reply);
            writer_node_lost(node, "a reply to no command");
            break;
        }
        if (node->sent.count > WRITER_PREFETCH_AHEAD) {
            const struct writer_item *ahead = writer_ring_at(&node->sent, WRITER_PREFETCH_AHEAD);
            if (ahead->op == WRITER_OP_DATA) {
                const char *job = (const char *)ahead->job;
                __builtin_prefetch(job, 1);
                __builtin_prefetch(job + 64, 1);
                __builtin_prefetch(job + 128, 1);
            }
        }
        struct writer_item *front = writer_ring_at(&node->sent, 0);
        unsigned replies = front->op == WRITER_OP_DATA ? writer_item_command(front)->replies : 1;
        if (replies > 1 && ++node->replies_seen < replies) {
            /* A transaction's MULTI and QUEUED replies: only an error matters. */
            if (reply->type == REDIS_REPLY_ERROR && node->queued_error[0] == '\0')
                snprintf(node->queued_error, sizeof(node->queued_error), "%.*s", (int)reply->len,
                         reply->str);
            conn_free_reply(conn, reply);
            continue;
        }
        node->replies_seen = 0;
        struct writer_item item = writer_ring_pop_front(&node->sent);
        if (item.op != WRITER_OP_DATA)
            writer_on_control_reply(node, &item, reply);
        else if (replies > 1)
            writer_on_transaction_reply(node, &item, reply);
        else
            writer_on_data_reply(node, &item, reply);
        conn_free_reply(conn, reply);
    }
    if (!writer_stopped(writer) && node->paused && node->sent.count == 0 &&
        !ev_is_active(&node->timer)) {
        writer_node_resume(node);
    }
    writer_node_wait_maybe(node);
    writer_maybe_drained(writer);
    writer_leave(writer);
}

static void writer_node_on_error(void *ctx, struct conn *conn, const char *message) {
    (void)conn;
    struct writer_node *node = ctx;
    struct writer *writer = node->writer;
    writer_enter(writer);
    node->state = WRITER_NODE_DOWN;
    writer_node_lost(node, message);
    writer_maybe_drained(writer);
    writer_leave(writer);
}

static void writer_node_on_timer(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop;
    (void)revents;
    struct writer_node *node = timer->data;
    struct writer *writer = node->writer;
    writer_enter(writer);
    enum writer_timer_purpose purpose = node->timer_purpose;
    node->timer_purpose = WRITER_TIMER_NONE;
    switch (purpose) {
    case WRITER_TIMER_ERROR: {
        char reason[WRITER_MESSAGE_LEN];
        snprintf(reason, sizeof(reason), "%s", node->last_error);
        writer_node_lost(node, reason);
        break;
    }
    case WRITER_TIMER_RECONNECT: writer_node_connect(node); break;
    case WRITER_TIMER_RESUME:
        /* Replies of the streak still coming: resume when the last is in. */
        if (node->sent.count == 0) writer_node_resume(node);
        break;
    case WRITER_TIMER_NONE: break;
    }
    writer_maybe_drained(writer);
    writer_leave(writer);
}

static void writer_on_map_timer(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop;
    (void)revents;
    struct writer *writer = timer->data;
    writer_enter(writer);
    if (!writer_stopped(writer)) writer_refresh_slots(writer, writer->nodes[0]);
    writer_leave(writer);
}

static void writer_node_on_wait_timer(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop;
    (void)revents;
    struct writer_node *node = timer->data;
    struct writer *writer = node->writer;
    writer_enter(writer);
    writer_node_wait_maybe(node);
    writer_leave(writer);
}

/* ---- public API ---------------------------------------------------------------- */

struct writer *writer_new(struct ev_loop *loop, const struct conf_target *conf,
                          const struct writer_callbacks *callbacks) {
    struct writer *writer = calloc(1, sizeof(*writer));
    if (writer == NULL) return NULL;
    writer->loop = loop;
    writer->conf = conf;
    writer->callbacks = *callbacks;
    writer->state = WRITER_NEW;
    writer->give_up_ms = WRITER_GIVE_UP_MS_DEFAULT;
    writer->info.proto_max_bulk_len = PROBE_DEFAULT_PROTO_MAX_BULK_LEN;
    slots_map_init(&writer->map);
    cmd_plan_init(&writer->plan);
    ev_init(&writer->map_timer, writer_on_map_timer);
    writer->map_timer.repeat = WRITER_MAP_REFRESH_S;
    writer->map_timer.data = writer;
    for (unsigned slot = 0; slot < CLUSTER_SLOTS; slot++) {
        writer->slot_node[slot] = -1;
        writer->slot_last[slot] = -1;
    }
    if (writer_node_new(writer, conf->host, conf->port) == NULL) {
        free(writer->nodes);
        free(writer);
        return NULL;
    }
    return writer;
}

static void writer_destroy(struct writer *writer) {
    ev_timer_stop(writer->loop, &writer->map_timer);
    for (int i = 0; i < writer->node_count; i++)
        writer_node_free(writer->nodes[i]);
    free(writer->nodes);
    slots_map_free(&writer->map);
    while (writer->failed_chunk_keys != NULL) {
        struct writer_failed_key *next = writer->failed_chunk_keys->next;
        free(writer->failed_chunk_keys);
        writer->failed_chunk_keys = next;
    }
    for (int i = 0; i < writer->source_count; i++)
        writer_source_free(writer->sources[i]);
    free(writer->sources);
    cmd_table_free(writer->table);
    cmd_plan_free(&writer->plan);
    writer_spare_jobs_free(writer);
    free(writer);
}

void writer_free(struct writer *writer) {
    if (writer == NULL) return;
    if (writer->depth > 0) {
        writer->free_requested = 1;
        ev_timer_stop(writer->loop, &writer->map_timer);
        for (int i = 0; i < writer->node_count; i++) {
            conn_close(writer->nodes[i]->conn);
            ev_timer_stop(writer->loop, &writer->nodes[i]->timer);
            ev_timer_stop(writer->loop, &writer->nodes[i]->wait_timer);
        }
        return;
    }
    writer_destroy(writer);
}

void writer_set_give_up_ms(struct writer *writer, int give_up_ms) {
    writer->give_up_ms = give_up_ms > 0 ? give_up_ms : WRITER_GIVE_UP_MS_DEFAULT;
}

void writer_start(struct writer *writer) {
    if (writer->state != WRITER_NEW) return;
    writer->state = WRITER_PROBING;
    writer_node_connect(writer->nodes[0]);
}

const struct writer_target_info *writer_target_info(const struct writer *writer) {
    return &writer->info;
}

const struct writer_stats *writer_stats(const struct writer *writer) {
    return &writer->stats;
}

void writer_source_stats(const struct writer *writer, int source, struct writer_source_stats *out) {
    memset(out, 0, sizeof(*out));
    if (source >= 0 && source < writer->source_count && writer->sources[source] != NULL)
        *out = writer->sources[source]->stats;
}

int writer_is_full(const struct writer *writer) {
    for (int i = 0; i < writer->node_count; i++) {
        if (writer->nodes[i]->inflight_bytes >= writer->conf->pipeline_max_bytes) return 1;
    }
    return writer->held_bytes >= writer->conf->pipeline_max_bytes;
}

int writer_is_idle(const struct writer *writer) {
    return writer->data_outstanding == 0 && writer->held_entries == 0;
}

size_t writer_in_flight(const struct writer *writer) {
    return writer->entries_pending;
}

/* Where a new command for `slot` goes: behind the slot's earlier commands while
 * some are still queued at a node (so a key's order survives redirections),
 * else to the slot's master; WRITER_NO_SLOT: the first master. */
static struct writer_node *writer_pick_node(struct writer *writer, unsigned slot) {
    if (!writer->info.is_cluster) return writer->nodes[0];
    if (slot == WRITER_NO_SLOT) {
        /* Keyless: any master will do, the first one. */
        for (int i = 0; i < writer->node_count; i++)
            if (writer->nodes[i]->is_master) return writer->nodes[i];
        return writer->nodes[0];
    }
    int last = writer->slot_last[slot];
    int owner = writer->slot_node[slot];
    /* The usual case, with no redirection under way: the slot's latest commands
     * went to its master, so that is where this one goes either way (and the
     * node's per-slot count, a cache miss at the stream's rate, is not read). */
    if (last >= 0 && last == owner) return writer->nodes[owner];
    if (last >= 0 && writer->nodes[last]->slot_inflight[slot] > 0) return writer->nodes[last];
    if (owner < 0) {
        /* Nobody serves the slot in our map: ask any master, it redirects or says
         * CLUSTERDOWN (retried). */
        for (int i = 0; i < writer->node_count && owner < 0; i++) {
            if (writer->nodes[i]->is_master) owner = i;
        }
        if (owner < 0) owner = 0;
    }
    writer->slot_last[slot] = (int16_t)owner;
    return writer->nodes[owner];
}

/* Check that an entry can be written at all, before building anything. */
static int writer_check_entry(struct writer *writer, const struct shake_entry *entry, char *err,
                              size_t errlen) {
    char shown[WRITER_KEY_SHOWN * 4 + 16];
    if (writer->state != WRITER_READY) {
        snprintf(err, errlen, "target %s: %s", writer->nodes[0]->name,
                 writer->state == WRITER_FAILED ? "the writer has failed" : "not ready");
        return -1;
    }
    if (entry->kind == SHAKE_ENTRY_CMD) {
        if (entry->source < 0 || entry->source >= WRITER_MAX_SOURCES) {
            snprintf(err, errlen, "a command entry needs a source index (0..%d), not %d",
                     WRITER_MAX_SOURCES - 1, entry->source);
            return -1;
        }
        if (entry->argc < 1 || entry->argv == NULL || entry->argv_len == NULL) {
            snprintf(err, errlen, "an empty command entry");
            return -1;
        }
        return 0;
    }
    if (entry->source >= WRITER_MAX_SOURCES) {
        snprintf(err, errlen, "source index %d is too large", entry->source);
        return -1;
    }
    if (entry->kind == SHAKE_ENTRY_FUNCTION) return 0;
    if (writer->info.is_cluster && entry->db != 0) {
        writer_format_key(entry->key, entry->key_len, shown, sizeof(shown));
        snprintf(err, errlen,
                 "key '%s' is in db %d, but a cluster target has only db 0; map it with "
                 "[target] db_map = %d:0",
                 shown, entry->db, entry->db);
        return -1;
    }
    if (entry->db < 0) {
        writer_format_key(entry->key, entry->key_len, shown, sizeof(shown));
        snprintf(err, errlen, "key '%s' has no valid db (%d)", shown, entry->db);
        return -1;
    }
    if (entry->kind == SHAKE_ENTRY_KEY) {
        if (entry->rdb_type >= 64 || !(writer->info.restorable_types & (1ull << entry->rdb_type))) {
            writer_format_key(entry->key, entry->key_len, shown, sizeof(shown));
            snprintf(err, errlen,
                     "key '%s': RDB type %u cannot be restored on target %d.%d.%d (RDB %d)", shown,
                     entry->rdb_type, writer->info.version_major, writer->info.version_minor,
                     writer->info.version_patch, writer->info.rdb_version);
            return -1;
        }
        if (entry->raw_len + 11 > writer->info.proto_max_bulk_len) {
            writer_format_key(entry->key, entry->key_len, shown, sizeof(shown));
            snprintf(err, errlen,
                     "key '%s': a RESTORE payload of %zu bytes exceeds the target's "
                     "proto-max-bulk-len (%zu)",
                     shown, entry->raw_len + 11, writer->info.proto_max_bulk_len);
            return -1;
        }
    }
    return 0;
}

/* Build a KEY, CHUNK or FUNCTION entry's commands into a new job. Returns NULL
 * with err filled. */
/* The routing state a key's slot will read, asked for ahead of building its
 * commands: the per-slot arrays are touched at random and are rarely cached. */
static void writer_prefetch_slot(const struct writer *writer, unsigned slot) {
    __builtin_prefetch(&writer->slot_last[slot]);
    __builtin_prefetch(&writer->slot_node[slot]);
    for (int i = 0; i < writer->node_count && i < 8; i++)
        if (writer->nodes[i]->slot_inflight != NULL)
            __builtin_prefetch(&writer->nodes[i]->slot_inflight[slot], 1);
}

static struct writer_job *writer_build_job(struct writer *writer, struct shake_entry *entry,
                                           int source, uint64_t seq, char *err, size_t errlen) {
    unsigned slot = WRITER_NO_SLOT;
    if (writer->info.is_cluster && entry->kind != SHAKE_ENTRY_FUNCTION) {
        slot = key_hash_slot(entry->key != NULL ? entry->key : "", entry->key_len);
        writer_prefetch_slot(writer, slot);
    }
    struct writer_job *job = writer_job_new(
        writer, entry->kind, entry->kind == SHAKE_ENTRY_FUNCTION ? -1 : entry->db, source, seq, 1);
    if (job == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int replace = writer->conf->on_existing == CONF_ON_EXISTING_REPLACE;
    int rc;
    if (entry->kind == SHAKE_ENTRY_KEY) {
        struct restore_options options = {
            .rdb_version = writer->info.rdb_version, .replace = replace, .keep_lru_lfu = 1};
        rc = restore_build_take(entry, &options, &job->commands);
        if (rc < 0) snprintf(err, errlen, "out of memory building RESTORE");
        /* BUSYKEY is a skip only when the config asked to keep target keys; with
         * on_existing = error it means the key appeared meanwhile: an error. */
        int skip = writer->conf->on_existing == CONF_ON_EXISTING_SKIP;
        for (size_t i = 0; rc == 0 && i < job->commands.count; i++) {
            job->commands.items[i].busykey_is_skip = skip;
        }
    } else {
        struct rewrite_options options = {.batch_max_items = writer->conf->batch_max_items,
                                          .batch_max_bytes = writer->conf->batch_max_bytes,
                                          .replace = replace};
        rc = rewrite_build(entry, &options, &job->commands, err, errlen);
    }
    if (rc == 0 && entry->kind != SHAKE_ENTRY_FUNCTION) {
        /* A short key is copied into the job: the entry's copy is then freed at
         * once, while still hot. A long one is taken, not copied. */
        if (entry->key_len < WRITER_KEY_INLINE) {
            job->key = job->key_inline;
            if (entry->key_len > 0) memcpy(job->key, entry->key, entry->key_len);
        } else {
            job->key = entry->key;
            entry->key = NULL;
        }
        if (job->key == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else {
            job->key_len = entry->key_len;
            job->slot = slot;
        }
    }
    if (rc < 0) {
        writer_job_free(writer, job);
        return NULL;
    }
    job->counts_key = entry->kind == SHAKE_ENTRY_KEY ||
                      (entry->kind == SHAKE_ENTRY_CHUNK && (entry->chunk_flags & SHAKE_CHUNK_LAST));
    return job;
}

/* Queue command `index` of a job at `node`, routed by `slot`. The job's
 * `remaining` must already count it. */
static void writer_job_send_to(struct writer *writer, struct writer_job *job, size_t index,
                               unsigned slot, struct writer_node *node) {
    struct writer_item item = {.job = job,
                               .index = (uint32_t)index,
                               .op = WRITER_OP_DATA,
                               .asking = 0,
                               .slot = writer->info.is_cluster && slot != WRITER_NO_SLOT
                                           ? (uint16_t)slot
                                           : WRITER_ITEM_NO_SLOT};
    writer->idle_reported = 0;
    writer->data_outstanding++;
    writer_node_enqueue(node, item);
}

/* Queue command `index` of a job for `slot`'s master (WRITER_NO_SLOT: any). */
static void writer_job_send(struct writer *writer, struct writer_job *job, size_t index,
                            unsigned slot) {
    writer_job_send_to(writer, job, index, slot, writer_pick_node(writer, slot));
}

/* Queue every command of a job to every master (functions, flushes, scripts). */
static void writer_job_broadcast(struct writer *writer, struct writer_job *job) {
    job->shared = 1; /* one command, several items: keep its bytes until the end */
    job->remaining = 0;
    for (int i = 0; i < writer->node_count; i++) {
        if (writer->nodes[i]->is_master) job->remaining += job->commands.count;
    }
    for (int i = 0; i < writer->node_count; i++) {
        if (!writer->nodes[i]->is_master) continue;
        for (size_t c = 0; c < job->commands.count; c++)
            writer_job_send_to(writer, job, c, WRITER_NO_SLOT, writer->nodes[i]);
    }
}

/* Route a KEY, CHUNK or FUNCTION entry. Consumes it, or returns -1 with err when
 * nothing was done. */
static int writer_process_key(struct writer *writer, struct shake_entry *entry, int source,
                              uint64_t seq, char *err, size_t errlen) {
    struct writer_job *job = writer_build_job(writer, entry, source, seq, err, errlen);
    if (job == NULL) {
        char shown[WRITER_KEY_SHOWN * 4 + 16];
        char message[256];
        snprintf(message, sizeof(message), "%s", err);
        if (entry->kind == SHAKE_ENTRY_FUNCTION) {
            snprintf(err, errlen, "function library: %s", message);
        } else {
            writer_format_key(entry->key, entry->key_len, shown, sizeof(shown));
            snprintf(err, errlen, "key '%s': %s", shown, message);
        }
        return -1;
    }
    if (entry->kind == SHAKE_ENTRY_CHUNK && (entry->chunk_flags & SHAKE_CHUNK_FIRST)) {
        int found;
        writer_forget_failed_key(writer, job->key, job->key_len, &found);
    }
    shake_entry_free(entry);
    if (job->commands.count == 0) {
        /* Nothing to send (e.g. an empty chunk): the key is done now. */
        job->remaining = 1;
        writer_job_answered(writer, job);
        return 0;
    }
    if (job->kind == SHAKE_ENTRY_FUNCTION) {
        writer_job_broadcast(writer, job);
        return 0;
    }
    job->remaining = job->commands.count;
    for (size_t c = 0; c < job->commands.count; c++)
        writer_job_send(writer, job, c, job->slot);
    return 0;
}

/* ---- CMD entries ---------------------------------------------------------------- */

/* Plan a CMD entry into writer->plan. Returns -1 with err when it can never be
 * applied: unsupported with on_unsupported = error, or a db other than 0 on a
 * cluster target. */
static int writer_plan_command(struct writer *writer, const struct shake_entry *entry, char *err,
                               size_t errlen) {
    struct cmd_plan_options options = {.cluster = writer->info.is_cluster,
                                       .publish = writer->conf->forward_publish
                                                      ? CMD_PLAN_PUBLISH_FORWARD
                                                      : CMD_PLAN_PUBLISH_DROP};
    struct cmd_plan *plan = &writer->plan;
    if (cmd_plan_build(plan, writer->table, entry->argc, (const char *const *)entry->argv,
                       entry->argv_len, &options) < 0) {
        snprintf(err, errlen, "out of memory planning a command");
        return -1;
    }
    if (plan->kind == CMD_PLAN_UNSUPPORTED &&
        writer->conf->on_unsupported == CONF_ON_UNSUPPORTED_ERROR) {
        snprintf(err, errlen, "%s", plan->message);
        return -1;
    }
    /* The slot's routing state is read next, after the job is taken: start
     * loading it now (it is cold by the time the stream brings the key again). */
    if (writer->info.is_cluster && plan->slot >= 0) writer_prefetch_slot(writer, (unsigned)plan->slot);
    if (writer->info.is_cluster && entry->db != 0 && plan->kind != CMD_PLAN_DROP) {
        char name[160];
        size_t len = entry->argv_len[0] < 32 ? entry->argv_len[0] : 32;
        writer_format_key(entry->argv[0], len, name, sizeof(name));
        snprintf(err, errlen,
                 "command '%s' is in db %d, but a cluster target has only db 0; map it with "
                 "[target] db_map = %d:0",
                 name, entry->db, entry->db);
        return -1;
    }
    return 0;
}

/* Put an entry in a source's held queue (at the back, or at the front for the
 * commands of a split transaction, which come before anything held after EXEC). */
static int writer_hold(struct writer *writer, struct writer_source *source,
                       struct writer_waiting waiting, int front) {
    if (writer_waiting_push(&source->held, waiting, front) < 0) return -1;
    writer->held_entries++;
    writer->held_bytes += shake_entry_size(waiting.entry);
    writer->idle_reported = 0;
    if (writer->held_bytes >= writer->conf->pipeline_max_bytes) writer->was_full = 1;
    return 0;
}

/* SINGLE, SPLIT or BROADCAST: the plan's commands become the job's. */
static int writer_command_send(struct writer *writer, int index, struct shake_entry *entry,
                               uint64_t seq, char *err, size_t errlen) {
    struct cmd_plan *plan = &writer->plan;
    struct writer_job *job = writer_job_new(writer, SHAKE_ENTRY_CMD, entry->db, index, seq, 1);
    if (job == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    job->applied = 1;
    /* moved: one command into the job's slot (the plan keeps its array for the
     * next command), several with their array */
    command_list_move(&job->commands, &plan->commands);
    shake_entry_free(entry);
    if (plan->kind == CMD_PLAN_BROADCAST) {
        writer_job_broadcast(writer, job);
        return 0;
    }
    job->remaining = job->commands.count;
    for (size_t i = 0; i < job->commands.count; i++) {
        int slot = plan->kind == CMD_PLAN_SPLIT ? plan->parts[i].slot : plan->slot;
        writer_job_send(writer, job, i, slot < 0 ? WRITER_NO_SLOT : (unsigned)slot);
    }
    return 0;
}

/* Start a RENAME emulation: DUMP and PTTL of the source key, pipelined to its
 * master; later entries of the source are held until it is over (so that the
 * commands on both keys keep their order). */
static int writer_rename_start(struct writer *writer, struct writer_source *source, int index,
                               struct shake_entry *entry, uint64_t seq, char *err, size_t errlen) {
    const struct cmd_plan_rename *plan = &writer->plan.rename;
    struct writer_job *job = writer_job_new(writer, SHAKE_ENTRY_CMD, entry->db, index, seq, 1);
    struct writer_rename *rename =
        job ? calloc(1, sizeof(*rename) + plan->source_len + plan->destination_len + 1) : NULL;
    if (rename == NULL) {
        free(job);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rename->source = (char *)(rename + 1);
    memcpy(rename->source, plan->source, plan->source_len);
    rename->source_len = plan->source_len;
    rename->destination = rename->source + plan->source_len;
    memcpy(rename->destination, plan->destination, plan->destination_len);
    rename->destination_len = plan->destination_len;
    rename->nx = plan->nx;
    rename->source_slot = (unsigned)plan->source_slot;
    rename->destination_slot = (unsigned)plan->destination_slot;
    job->rename = rename;
    job->applied = 1;
    const char *dump[] = {"DUMP", rename->source};
    const char *pttl[] = {"PTTL", rename->source};
    const size_t lens[] = {4, rename->source_len};
    if (command_list_append_argv(&job->commands, 2, dump, lens) < 0 ||
        command_list_append_argv(&job->commands, 2, pttl, lens) < 0) {
        writer_job_free(writer, job);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    shake_entry_free(entry);
    source->rename_in_flight = 1;
    writer->stats.renames_emulated++;
    job->remaining = 2;
    writer_job_send(writer, job, 0, rename->source_slot);
    writer_job_send(writer, job, 1, rename->source_slot);
    return 0;
}

/* The next step of a RENAME emulation once the previous one is answered: RESTORE
 * after DUMP and PTTL (none when the source key did not exist), DEL after RESTORE
 * (none when RENAMENX found the destination). Returns 1 when a step was queued,
 * 0 when the emulation is over. */
static int writer_rename_next(struct writer *writer, struct writer_job *job) {
    struct writer_rename *rename = job->rename;
    if (job->failed || writer_stopped(writer)) return 0;
    if (job->commands.count == 2) {
        if (rename->missing || rename->payload == NULL) return 0;
        char ttl[32];
        int ttl_len = snprintf(ttl, sizeof(ttl), "%lld", rename->ttl_ms);
        const char *argv[] = {"RESTORE", rename->destination, ttl, rename->payload, "REPLACE"};
        const size_t lens[] = {7, rename->destination_len, (size_t)ttl_len, rename->payload_len, 7};
        int rc = command_list_append_argv(&job->commands, rename->nx ? 4 : 5, argv, lens);
        free(rename->payload);
        rename->payload = NULL;
        if (rc < 0) {
            writer_fail(writer, "out of memory building RESTORE for RENAME");
            return 0;
        }
        job->commands.items[2].busykey_is_skip = rename->nx;
        job->remaining = 1;
        writer_job_send(writer, job, 2, rename->destination_slot);
        return 1;
    }
    if (job->commands.count == 3 && !job->skipped) {
        const char *argv[] = {"DEL", rename->source};
        const size_t lens[] = {3, rename->source_len};
        if (command_list_append_argv(&job->commands, 2, argv, lens) < 0) {
            writer_fail(writer, "out of memory building DEL for RENAME");
            return 0;
        }
        job->remaining = 1;
        writer_job_send(writer, job, 3, rename->source_slot);
        return 1;
    }
    return 0;
}

/* Append bytes to a growing buffer. */
static int writer_buffer_append(char **buffer, size_t *len, size_t *capacity, const char *bytes,
                                size_t count) {
    if (*len + count > *capacity) {
        size_t grown = *capacity ? *capacity * 2 : 256;
        while (grown < *len + count)
            grown *= 2;
        char *larger = realloc(*buffer, grown);
        if (larger == NULL) return -1;
        *buffer = larger;
        *capacity = grown;
    }
    memcpy(*buffer + *len, bytes, count);
    *len += count;
    return 0;
}

/* A buffered transaction as one command: MULTI, the commands (with SELECT where
 * the db changes inside, standalone only), EXEC. Returns the replies it will get,
 * or 0 when out of memory. */
static unsigned writer_transaction_encode(struct writer_source *source,
                                          const struct cmd_plan *plans, size_t count,
                                          const struct command *exec, char **blob, size_t *blob_len,
                                          unsigned *inner) {
    size_t capacity = 0;
    unsigned replies = 2;
    const struct shake_entry *multi = source->transaction.items[source->transaction.head].entry;
    int db = multi->db;
    *blob = NULL;
    *blob_len = 0;
    *inner = 0;
    const struct command *first = &plans[0].commands.items[0];
    int rc = writer_buffer_append(blob, blob_len, &capacity, first->resp, first->len);
    for (size_t i = 1; i < count && rc == 0; i++) {
        if (plans[i].kind != CMD_PLAN_SINGLE) continue;
        const struct writer_waiting *waiting =
            &source->transaction
                 .items[(source->transaction.head + i) & (source->transaction.capacity - 1)];
        if (waiting->entry->db != db) {
            char select[64];
            db = waiting->entry->db;
            int n = snprintf(select, sizeof(select), "*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n",
                             snprintf(NULL, 0, "%d", db), db);
            rc = writer_buffer_append(blob, blob_len, &capacity, select, (size_t)n);
            replies++;
        }
        const struct command *command = &plans[i].commands.items[0];
        if (rc == 0)
            rc = writer_buffer_append(blob, blob_len, &capacity, command->resp, command->len);
        replies++;
        (*inner)++;
    }
    if (rc == 0 && db != multi->db) {
        /* Leave the connection in the db the job says (writer_node_flush tracks it). */
        char select[64];
        int n = snprintf(select, sizeof(select), "*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n",
                         snprintf(NULL, 0, "%d", multi->db), multi->db);
        rc = writer_buffer_append(blob, blob_len, &capacity, select, (size_t)n);
        replies++;
    }
    if (rc == 0) rc = writer_buffer_append(blob, blob_len, &capacity, exec->resp, exec->len);
    if (rc < 0) {
        free(*blob);
        *blob = NULL;
        return 0;
    }
    return replies;
}

/* Plan every buffered entry of a transaction (MULTI first). Returns 1 when it can
 * go whole to one master (its slot in *slot), 0 when it must be split, -1 when
 * out of memory. */
static int writer_transaction_plan(struct writer *writer, struct writer_source *source,
                                   struct cmd_plan *plans, const struct cmd_plan **pointers,
                                   size_t count, int *slot) {
    struct cmd_plan_options options = {.cluster = writer->info.is_cluster,
                                       .publish = writer->conf->forward_publish
                                                      ? CMD_PLAN_PUBLISH_FORWARD
                                                      : CMD_PLAN_PUBLISH_DROP};
    for (size_t i = 0; i < count; i++) {
        const struct shake_entry *entry =
            source->transaction
                .items[(source->transaction.head + i) & (source->transaction.capacity - 1)]
                .entry;
        pointers[i] = &plans[i];
        if (entry->kind != SHAKE_ENTRY_CMD) return 0;
        if (cmd_plan_build(&plans[i], writer->table, entry->argc, (const char *const *)entry->argv,
                           entry->argv_len, &options) < 0)
            return -1;
    }
    return cmd_plan_transaction_slot(pointers, count, slot);
}

/* Send a transaction whose commands share a slot as one MULTI ... EXEC. */
static int writer_transaction_whole(struct writer *writer, struct writer_source *source, int index,
                                    const struct cmd_plan *plans, size_t count, int slot,
                                    struct shake_entry *exec) {
    const struct shake_entry *multi = source->transaction.items[source->transaction.head].entry;
    uint64_t first_seq = source->transaction.items[source->transaction.head].seq;
    char *blob;
    size_t blob_len;
    unsigned inner;
    unsigned replies = writer_transaction_encode(
        source, plans, count, &writer->plan.commands.items[0], &blob, &blob_len, &inner);
    struct writer_job *job = replies ? writer_job_new(writer, SHAKE_ENTRY_CMD, multi->db, index,
                                                      first_seq, (uint32_t)count + 1)
                                     : NULL;
    if (job == NULL || command_list_append_resp(&job->commands, blob, blob_len) < 0) {
        if (job == NULL) free(blob);
        free(job);
        return -1;
    }
    job->commands.items[0].replies = replies;
    job->applied = inner;
    job->transaction = inner;
    while (source->transaction.count > 0)
        shake_entry_free(writer_waiting_pop(&source->transaction).entry);
    shake_entry_free(exec);
    source->in_transaction = 0;
    job->remaining = 1;
    writer_job_send(writer, job, 0, slot < 0 ? WRITER_NO_SLOT : (unsigned)slot);
    return 0;
}

/* A transaction whose keys span slots: its commands are applied one by one, in
 * order, ahead of anything the source submitted after EXEC. */
static void writer_transaction_split(struct writer *writer, struct writer_source *source, int index,
                                     struct shake_entry *exec, uint64_t exec_seq) {
    writer->stats.transactions_split++;
    source->in_transaction = 0;
    struct writer_waiting multi = writer_waiting_pop(&source->transaction);
    shake_entry_free(multi.entry);
    shake_entry_free(exec);
    while (source->transaction.count > 0) {
        struct writer_waiting *last =
            &source->transaction.items[(source->transaction.head + source->transaction.count - 1) &
                                       (source->transaction.capacity - 1)];
        if (writer_hold(writer, source, *last, 1) < 0) {
            writer_fail(writer, "out of memory splitting a transaction");
            break;
        }
        source->transaction.count--;
    }
    writer_entries_done(writer, index, multi.seq, 1);
    writer_entries_done(writer, index, exec_seq, 1);
}

/* EXEC of a buffered transaction: send it whole when it can be, else split it. */
static int writer_transaction_end(struct writer *writer, struct writer_source *source, int index,
                                  struct shake_entry *exec, uint64_t seq, char *err,
                                  size_t errlen) {
    size_t count = source->transaction.count;
    struct cmd_plan *plans = malloc(count * sizeof(*plans));
    const struct cmd_plan **pointers = malloc(count * sizeof(*pointers));
    int slot = CMD_PLAN_NO_SLOT, whole = -1;
    if (plans != NULL && pointers != NULL) {
        for (size_t i = 0; i < count; i++)
            cmd_plan_init(&plans[i]);
        whole = writer_transaction_plan(writer, source, plans, pointers, count, &slot);
        if (whole == 1)
            whole = writer_transaction_whole(writer, source, index, plans, count, slot, exec) == 0
                        ? 1
                        : -1;
        for (size_t i = 0; i < count; i++)
            cmd_plan_free(&plans[i]);
    }
    free(plans);
    free(pointers);
    if (whole < 0) {
        snprintf(err, errlen, "out of memory sending a transaction");
        return -1;
    }
    if (whole == 0) writer_transaction_split(writer, source, index, exec, seq);
    return 0;
}

/* on_unsupported = skip: count it and tell the owner which command it was. */
static void writer_skip_unsupported(struct writer *writer, const char *message) {
    writer->stats.commands_skipped++;
    if (writer->callbacks.key_error == NULL) return;
    char text[WRITER_MESSAGE_LEN];
    snprintf(text, sizeof(text), "skipped (on_unsupported = skip): %s", message);
    writer->callbacks.key_error(writer->callbacks.ctx, text);
}

/* Route a CMD entry planned in writer->plan. Consumes it, or returns -1 with err
 * when nothing was done. */
static int writer_process_command(struct writer *writer, struct writer_source *source, int index,
                                  struct shake_entry *entry, uint64_t seq, char *err,
                                  size_t errlen) {
    enum cmd_plan_kind kind = writer->plan.kind;
    if (source->in_transaction && kind == CMD_PLAN_EXEC)
        return writer_transaction_end(writer, source, index, entry, seq, err, errlen);
    if (source->in_transaction || kind == CMD_PLAN_MULTI) {
        if (writer_waiting_push(&source->transaction, (struct writer_waiting){entry, seq}, 0) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        source->in_transaction = 1;
        return 0;
    }
    if (kind == CMD_PLAN_UNSUPPORTED && writer->conf->on_unsupported == CONF_ON_UNSUPPORTED_ERROR) {
        snprintf(err, errlen, "%s", writer->plan.message);
        return -1;
    }
    if (kind == CMD_PLAN_RENAME)
        return writer_rename_start(writer, source, index, entry, seq, err, errlen);
    if (kind == CMD_PLAN_SINGLE || kind == CMD_PLAN_SPLIT || kind == CMD_PLAN_BROADCAST)
        return writer_command_send(writer, index, entry, seq, err, errlen);
    /* DROP, a skipped UNSUPPORTED, or an EXEC without MULTI: nothing to send. */
    if (kind == CMD_PLAN_UNSUPPORTED) writer_skip_unsupported(writer, writer->plan.message);
    shake_entry_free(entry);
    writer_entries_done(writer, index, seq, 1);
    return 0;
}

/* Route an entry whose turn has come (nothing of its source waits before it).
 * `planned`: writer->plan holds this CMD entry's plan. Consumes the entry, or
 * returns -1 with err when nothing was done. */
static int writer_process(struct writer *writer, int index, struct shake_entry *entry, uint64_t seq,
                          int planned, char *err, size_t errlen) {
    struct writer_source *source = index >= 0 ? writer->sources[index] : NULL;
    if (entry->kind != SHAKE_ENTRY_CMD) {
        if (source == NULL || !source->in_transaction)
            return writer_process_key(writer, entry, index, seq, err, errlen);
        if (writer_waiting_push(&source->transaction, (struct writer_waiting){entry, seq}, 0) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    if (!planned && writer_plan_command(writer, entry, err, errlen) < 0) return -1;
    return writer_process_command(writer, source, index, entry, seq, err, errlen);
}

/* Route a source's held entries in order, until a RENAME emulation holds them
 * again. A held entry that cannot be written fails the writer: its submit has
 * long returned. */
static void writer_source_pump(struct writer *writer, int index) {
    struct writer_source *source = writer->sources[index];
    char err[WRITER_MESSAGE_LEN];
    while (source->held.count > 0 && !source->rename_in_flight && !writer_stopped(writer)) {
        struct writer_waiting waiting = writer_waiting_pop(&source->held);
        writer->held_entries--;
        writer->held_bytes -= shake_entry_size(waiting.entry);
        if (writer_process(writer, index, waiting.entry, waiting.seq, 0, err, sizeof(err)) < 0) {
            shake_entry_free(waiting.entry);
            writer_fail(writer, "%s", err);
            return;
        }
    }
}

/* writer_submit once the entry passed the checks: give it its place in its
 * source's order, then route it now or hold it. */
static int writer_accept(struct writer *writer, struct shake_entry *entry, char *err,
                         size_t errlen) {
    int planned = entry->kind == SHAKE_ENTRY_CMD;
    if (planned && writer_plan_command(writer, entry, err, errlen) < 0) return -1;
    int index = entry->source;
    writer->entries_pending++;
    if (index < 0) {
        if (writer_process(writer, -1, entry, 0, planned, err, errlen) == 0) return 0;
        writer->entries_pending--;
        return -1;
    }
    struct writer_source *source = writer_source_get(writer, index);
    uint64_t seq;
    if (source == NULL || writer_ack_push(source, entry, &seq) < 0) {
        writer->entries_pending--;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc;
    if (source->rename_in_flight || source->held.count > 0) {
        rc = writer_hold(writer, source, (struct writer_waiting){entry, seq}, 0);
        if (rc < 0) snprintf(err, errlen, "out of memory");
    } else {
        rc = writer_process(writer, index, entry, seq, planned, err, errlen);
    }
    if (rc < 0) {
        source->ack_next--;
        writer->entries_pending--;
        return -1;
    }
    if (source->held.count > 0 && !source->rename_in_flight) writer_source_pump(writer, index);
    return 0;
}

int writer_submit(struct writer *writer, struct shake_entry *entry, char *err, size_t errlen) {
    if (writer_check_entry(writer, entry, err, errlen) < 0) return -1;
    writer_enter(writer);
    int rc = writer_accept(writer, entry, err, errlen);
    writer_leave(writer);
    return rc;
}
