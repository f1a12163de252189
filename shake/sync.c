/* sync.c -- the live sync job (see sync.h).
 *
 * Owns the loop-side plumbing of a sync: discovery, one replica per source shard,
 * pulling entries from the replicas in turn while the writer has room, the filter,
 * the per-shard acknowledged offsets and the checkpoint file, the periodic status
 * line, and the orderly stop on SIGINT/SIGTERM. Protocols, decoding and writing
 * live in reader/ and writer/.
 */
#include "shake/sync.h"

#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "filter/filter.h"
#include "reader/discover.h"
#include "reader/replica.h"
#include "shake/checkpoint.h"
#include "shake/checkpoint_live.h"
#include "shake/checkpoint_saver.h"
#include "shake/log.h"
#include "shake/progress.h"
#include "shake/status.h"
#include "shake/target_fit.h"
#include "writer/writer.h"

/* The replication id a checkpoint holds for a shard whose full sync is under way. */
#define SYNC_NO_REPLID "0000000000000000000000000000000000000000"
#define SYNC_ENTRIES_PER_SHARD_TURN 1024
#define SYNC_STATUS_TICK 1.0     /* the status model and the progress bar, seconds */
#define SYNC_STATUS_LOG_TICKS 5  /* a status log line every this many ticks */

/* A point in a shard's stream where the selected db changed. */
struct sync_db_change {
    uint64_t offset;
    int db;
};

struct sync_shard {
    struct sync_job *job;
    int index;
    char name[DISCOVER_NAME_MAX];
    char address[300];
    struct replica *replica;           /* owned */
    int has_entries;                   /* replica_next may return an entry */
    int in_stream;                     /* the RDB of the current sync is fully submitted */
    /* Acknowledged position: valid when `resumable`. */
    int resumable;
    char replid[41];
    uint64_t acked_offset;
    int acked_db;
    int live_dirty;                    /* acked_offset moved since checkpoint.live had it */
    /* db changes submitted and not yet acknowledged, in stream order */
    struct sync_db_change *db_changes; /* owned ring */
    size_t db_changes_head, db_changes_count, db_changes_cap;
    int submitted_db;
    uint64_t keys_submitted;
};

struct sync_job {
    struct ev_loop *loop;
    const struct shake_conf *conf;
    struct conf_target target;         /* the writer's view: REPLACE after the first check */
    struct sync_result *result;
    struct writer *writer;             /* owned */
    struct filter *filter;             /* owned; its counters are the sync's filter status */
    struct sync_shard *shards;         /* owned */
    int shard_count;
    int next_shard;                    /* round-robin position */
    struct checkpoint checkpoint;      /* owned */
    char checkpoint_path[4096];
    int checkpoint_dirty;
    struct checkpoint_saver *saver;    /* owned: saves on its own thread */
    char live_path[4096];
    struct checkpoint_live *live;      /* owned: positions at each ack; NULL until the
                                          shards start */
    int stopping;
    int rediscovering;                 /* a discovery for moved masters is running */
    struct conf_source rediscover_from; /* the source as configured, with the shards'
                                          current masters as first candidates; its
                                          addresses (and their hosts) are owned */
    struct status status;              /* owned; see shake/status.h */
    struct status_server *status_server; /* owned; NULL when off */
    struct progress progress;          /* the RDB phase's live line */
    int progress_shown;
    unsigned status_ticks;

    ev_idle pump;
    ev_prepare live_record;            /* active while a shard is live_dirty */
    ev_timer checkpoint_timer;
    ev_timer status_timer;
    ev_signal sigint, sigterm;
};

static void sync_fail(struct sync_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Save what the target has acknowledged. */
static void sync_save_checkpoint(struct sync_job *job) {
    char err[512];
    for (int i = 0; i < job->shard_count; i++) {
        struct sync_shard *shard = &job->shards[i];
        if (!shard->resumable) continue;
        const struct checkpoint_shard *saved = checkpoint_find(&job->checkpoint, shard->name);
        if (saved != NULL && saved->offset == shard->acked_offset &&
            strcmp(saved->replid, shard->replid) == 0 && saved->db == shard->acked_db)
            continue;
        checkpoint_set(&job->checkpoint, shard->name, shard->replid, shard->acked_offset,
                       shard->acked_db);
        job->checkpoint_dirty = 1;
    }
    if (checkpoint_saver_take_error(job->saver, err, sizeof(err))) log_error("%s", err);
    if (!job->checkpoint_dirty) return;
    if (checkpoint_saver_submit(job->saver, &job->checkpoint) == 0) job->checkpoint_dirty = 0;
}

/* Save now and wait until it is on disk. */
static int sync_save_checkpoint_durably(struct sync_job *job, char *err, size_t errlen) {
    sync_save_checkpoint(job);
    if (checkpoint_saver_submit(job->saver, &job->checkpoint) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return checkpoint_saver_flush(job->saver, err, errlen);
}

/* Forget a shard's position at once: a full sync is rewriting its data, and a
 * restart must not continue the old stream over a half-written RDB. */
static void sync_forget_checkpoint(struct sync_job *job, struct sync_shard *shard) {
    char err[512];
    shard->live_dirty = 0;
    checkpoint_live_forget(job->live, shard->index); /* before the durable record */
    /* The shard stays in the file with an id no master has, so that a restart
     * knows the target's keys are this sync's (no on_existing refusal) and asks
     * for a full sync again. */
    if (checkpoint_set(&job->checkpoint, shard->name, SYNC_NO_REPLID, 0, 0) != 0 ||
        sync_save_checkpoint_durably(job, err, sizeof(err)) != 0)
        sync_fail(job, "%s: cannot record the start of a full sync: %s", job->checkpoint_path,
                  err);
}

/* A one-word command entry of a shard's stream (PING, FLUSHALL), made by shake
 * itself. NULL when out of memory. */
static struct shake_entry *sync_new_command(const struct sync_shard *shard, const char *name,
                                            uint64_t offset, int db) {
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_CMD);
    if (entry == NULL) return NULL;
    entry->argv = calloc(1, sizeof(char *));
    entry->argv_len = calloc(1, sizeof(size_t));
    if (entry->argv == NULL || entry->argv_len == NULL ||
        (entry->argv[0] = strdup(name)) == NULL) {
        shake_entry_free(entry);
        return NULL;
    }
    entry->argc = 1;
    entry->argv_len[0] = strlen(name);
    entry->source = shard->index;
    entry->offset = offset;
    entry->db = db;
    return entry;
}

/* A position marker: a PING the writer drops and acknowledges in order. Submitted
 * when the stream starts, it makes the sync resumable at the RDB's offset once every
 * key of the RDB has been acknowledged, even if no write follows. */
static void sync_submit_position_marker(struct sync_job *job, struct sync_shard *shard,
                                        uint64_t offset, int db) {
    char err[512];
    struct shake_entry *marker = sync_new_command(shard, "PING", offset, db);
    if (marker != NULL && writer_submit(job->writer, marker, err, sizeof(err)) != 0)
        shake_entry_free(marker);
}

/* Stop reading everything, drain what is in flight, then end the loop. */
static void sync_begin_stop(struct sync_job *job) {
    job->stopping = 1;
    ev_idle_stop(job->loop, &job->pump);
    for (int i = 0; i < job->shard_count; i++) {
        if (job->shards[i].replica != NULL) replica_stop(job->shards[i].replica);
    }
    if (job->writer == NULL || writer_is_idle(job->writer)) ev_break(job->loop, EVBREAK_ONE);
}

static void sync_fail(struct sync_job *job, const char *fmt, ...) {
    if (job->result->error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->result->error, sizeof(job->result->error), fmt, ap);
        va_end(ap);
    }
    sync_begin_stop(job);
}

static void sync_db_changes_push(struct sync_shard *shard, uint64_t offset, int db) {
    if (shard->db_changes_count == shard->db_changes_cap) {
        size_t cap = shard->db_changes_cap ? shard->db_changes_cap * 2 : 16;
        struct sync_db_change *grown = malloc(cap * sizeof(*grown));
        if (grown == NULL) return; /* the db of the checkpoint is then conservative */
        for (size_t i = 0; i < shard->db_changes_count; i++)
            grown[i] = shard->db_changes[(shard->db_changes_head + i) % shard->db_changes_cap];
        free(shard->db_changes);
        shard->db_changes = grown;
        shard->db_changes_head = 0;
        shard->db_changes_cap = cap;
    }
    size_t at = (shard->db_changes_head + shard->db_changes_count) % shard->db_changes_cap;
    shard->db_changes[at].offset = offset;
    shard->db_changes[at].db = db;
    shard->db_changes_count++;
}

/* Every entry up to `offset` of this shard's stream is on the target. */
static void sync_on_acked(void *ctx, int source, uint64_t offset) {
    struct sync_job *job = ctx;
    if (source < 0 || source >= job->shard_count) return;
    struct sync_shard *shard = &job->shards[source];
    /* A resumed stream may repeat a few keep-alive commands: never move back. */
    if (!shard->in_stream || (shard->resumable && offset < shard->acked_offset)) return;
    while (shard->db_changes_count > 0 &&
           shard->db_changes[shard->db_changes_head].offset <= offset) {
        shard->acked_db = shard->db_changes[shard->db_changes_head].db;
        shard->db_changes_head = (shard->db_changes_head + 1) % shard->db_changes_cap;
        shard->db_changes_count--;
    }
    shard->acked_offset = offset;
    shard->resumable = 1;
    shard->live_dirty = 1;
    ev_prepare_start(job->loop, &job->live_record);
}

/* Store the acknowledged positions in checkpoint.live once per loop iteration,
 * before the loop sleeps, rather than at every reply: a reply batch acknowledges
 * hundreds of commands. A kill between an ack and this record only replays those
 * writes again (at-least-once), it loses none. */
static void sync_on_live_record(struct ev_loop *loop, ev_prepare *watcher, int revents) {
    (void)revents;
    struct sync_job *job = watcher->data;
    ev_prepare_stop(loop, watcher);
    for (int i = 0; i < job->shard_count; i++) {
        struct sync_shard *shard = &job->shards[i];
        if (!shard->live_dirty) continue;
        shard->live_dirty = 0;
        if (!shard->resumable || !shard->in_stream) continue;
        checkpoint_live_record(job->live, i, shard->name, shard->replid, shard->acked_offset,
                               shard->acked_db);
    }
}

/* Turn a command the filter dropped into a PING the writer drops at once, so its
 * offset is still acknowledged in order: otherwise lag and the checkpoint would
 * stall while the filter drops everything. Returns 0, or -1 when out of memory. */
static int sync_make_offset_marker(struct shake_entry *entry) {
    char *ping = strdup("PING");
    if (ping == NULL) return -1;
    for (int i = 0; i < entry->argc; i++) shake_entry_arg_free(entry, i);
    entry->argc = 1;
    entry->argv[0] = ping;
    entry->argv_len[0] = 4;
    return 0;
}

/* Hand one entry of a shard to the filter and the writer. */
static int sync_submit(struct sync_job *job, struct sync_shard *shard, struct shake_entry *entry) {
    char err[512];
    if (entry->kind == SHAKE_ENTRY_CMD && entry->db != shard->submitted_db) {
        shard->submitted_db = entry->db;
        sync_db_changes_push(shard, entry->offset, entry->db);
    }
    if (entry->kind != SHAKE_ENTRY_CMD) shard->keys_submitted++;
    switch (filter_apply(job->filter, entry)) {
    case FILTER_KEEP: break;
    case FILTER_DROP:
        if (entry->kind != SHAKE_ENTRY_CMD || sync_make_offset_marker(entry) != 0) {
            shake_entry_free(entry);
            return 0;
        }
        break;
    case FILTER_ERROR:
        if (entry->kind == SHAKE_ENTRY_CMD &&
            job->conf->target.on_unsupported == CONF_ON_UNSUPPORTED_SKIP) {
            log_warn("shard %s: skipped: %s", shard->name, filter_error(job->filter));
            snprintf(job->status.shards[shard->index].last_error, STATUS_TEXT_MAX, "skipped: %s",
                     filter_error(job->filter));
            if (sync_make_offset_marker(entry) == 0) break;
            shake_entry_free(entry);
            return 0;
        }
        shake_entry_free(entry);
        sync_fail(job, "shard %s (%s): %s", shard->name, shard->address,
                  filter_error(job->filter));
        return -1;
    }
    if (writer_submit(job->writer, entry, err, sizeof(err)) != 0) {
        shake_entry_free(entry);
        sync_fail(job, "shard %s (%s): %s", shard->name, shard->address, err);
        return -1;
    }
    return 0;
}

/* Pull up to a turn's worth of entries from one shard. Returns 1 when the writer
 * filled up. */
static int sync_pump_shard(struct sync_job *job, struct sync_shard *shard) {
    for (int n = 0; n < SYNC_ENTRIES_PER_SHARD_TURN && shard->has_entries; n++) {
        if (writer_is_full(job->writer)) return 1;
        struct shake_entry *entry = NULL;
        switch (replica_next(shard->replica, &entry)) {
        case REPLICA_ENTRY:
            if (sync_submit(job, shard, entry) != 0) return 1;
            break;
        case REPLICA_NEED_MORE: shard->has_entries = 0; break;
        case REPLICA_FAILED: shard->has_entries = 0; return 0;
        }
        if (job->stopping) return 1;
    }
    return 0;
}

static void sync_on_pump(struct ev_loop *loop, ev_idle *watcher, int revents) {
    (void)loop, (void)revents;
    struct sync_job *job = watcher->data;
    int any = 0;
    for (int i = 0; i < job->shard_count && !job->stopping; i++) {
        struct sync_shard *shard = &job->shards[(job->next_shard + i) % job->shard_count];
        if (sync_pump_shard(job, shard)) {
            ev_idle_stop(job->loop, &job->pump); /* `drained` restarts it */
            job->next_shard = (shard->index + 1) % job->shard_count;
            return;
        }
        any |= shard->has_entries;
    }
    job->next_shard = (job->next_shard + 1) % job->shard_count;
    if (!any) ev_idle_stop(job->loop, &job->pump); /* `readable` restarts it */
}

static void sync_wake(struct sync_job *job) {
    if (!job->stopping && !writer_is_full(job->writer)) ev_idle_start(job->loop, &job->pump);
}

/* Note when stream bytes arrived, for lag_ms (see status.h). */
static void sync_sample_lag(struct sync_shard *shard) {
    struct replica_progress progress;
    if (shard->index >= shard->job->status.shard_count) return;
    replica_get_progress(shard->replica, &progress);
    if (progress.phase != REPLICA_STREAM) return;
    struct status_shard *seen = &shard->job->status.shards[shard->index];
    seen->acked_offset = shard->acked_offset;
    status_lag_received(seen, progress.received_offset + progress.buffered_bytes, progress_now());
}

static void sync_on_replica_readable(void *ctx) {
    struct sync_shard *shard = ctx;
    shard->has_entries = 1;
    sync_sample_lag(shard);
    sync_wake(shard->job);
}

/* A new full sync of a shard whose keys an earlier sync already wrote: keys the
 * source deleted meanwhile would survive on the target. When the target held
 * nothing but this sync's keys (empty at the first start) and the source is one
 * shard, FLUSHALL goes first, in order before the RDB's keys. Otherwise only a
 * warning can be given. */
static void sync_clear_before_resync(struct sync_job *job, struct sync_shard *shard) {
    if (!job->checkpoint.target_was_empty || job->shard_count != 1) {
        log_warn("shard %s: keys deleted on the source since the last sync may remain on the "
                 "target (it held other keys, or the source has several shards); run "
                 "`shake verify` to list them",
                 shard->name);
        return;
    }
    log_info("shard %s: clearing the target (FLUSHALL) before the new full sync: it holds only "
             "this sync's keys",
             shard->name);
    struct shake_entry *flush = sync_new_command(shard, "FLUSHALL", 0, 0);
    char err[512];
    if (flush == NULL) {
        sync_fail(job, "out of memory");
        return;
    }
    if (writer_submit(job->writer, flush, err, sizeof(err)) != 0) {
        shake_entry_free(flush);
        sync_fail(job, "shard %s: cannot clear the target before a full sync: %s", shard->name,
                  err);
    }
}

static void sync_on_full_sync(void *ctx, const char *replid, uint64_t offset,
                              const char *reason) {
    struct sync_shard *shard = ctx;
    progress_clear(&shard->job->progress);
    log_info("shard %s (%s): full sync from %s at offset %llu (%s)", shard->name,
             shard->address, replid, (unsigned long long)offset, reason);
    shard->in_stream = 0;
    shard->resumable = 0;
    shard->db_changes_count = 0;
    shard->submitted_db = 0;
    snprintf(shard->replid, sizeof(shard->replid), "%s", replid);
    shard->acked_offset = offset;
    shard->acked_db = 0;
    if (shard->index < shard->job->status.shard_count)
        status_lag_reset(&shard->job->status.shards[shard->index]);
    if (checkpoint_find(&shard->job->checkpoint, shard->name) != NULL)
        sync_clear_before_resync(shard->job, shard);
    sync_forget_checkpoint(shard->job, shard);
}

static void sync_on_stream_started(void *ctx, int continued) {
    struct sync_shard *shard = ctx;
    progress_clear(&shard->job->progress);
    struct replica_progress progress;
    replica_get_progress(shard->replica, &progress);
    if (continued)
        log_info("shard %s (%s): continuing %s at offset %llu, no full sync needed",
                 shard->name, shard->address, progress.replid,
                 (unsigned long long)progress.received_offset);
    else
        log_info("shard %s (%s): RDB received (%llu bytes), streaming commands", shard->name,
                 shard->address, (unsigned long long)progress.rdb_bytes_done);
    snprintf(shard->replid, sizeof(shard->replid), "%s", progress.replid);
    shard->in_stream = 1;
    shard->submitted_db = progress.db;
    sync_submit_position_marker(shard->job, shard, progress.received_offset, progress.db);
    sync_sample_lag(shard);
}

/* A failover moved the shard's master: point the replica at the new one. */
static void sync_on_rediscovered(void *ctx, struct discover_result *found, const char *error) {
    struct sync_job *job = ctx;
    job->rediscovering = 0;
    if (found == NULL) {
        log_warn("source: looking for moved masters failed: %s", error ? error : "unknown");
        return;
    }
    for (int i = 0; i < found->shard_count && !job->stopping; i++) {
        for (int j = 0; j < job->shard_count; j++) {
            struct sync_shard *shard = &job->shards[j];
            if (strcmp(shard->name, found->shards[i].name) != 0) continue;
            char address[sizeof(shard->address)];
            snprintf(address, sizeof(address), "%s:%d", found->shards[i].host,
                     found->shards[i].port);
            if (strcmp(address, shard->address) == 0) continue;
            log_info("shard %s: master moved from %s to %s; continuing there with PSYNC",
                     shard->name, shard->address, address);
            if (replica_set_address(shard->replica, found->shards[i].host,
                                    found->shards[i].port) == 0)
                snprintf(shard->address, sizeof(shard->address), "%s", address);
        }
    }
    discover_result_free(found);
}

static void sync_free_rediscover_source(struct sync_job *job) {
    for (int i = 0; i < job->rediscover_from.address_count; i++)
        free(job->rediscover_from.addresses[i].host);
    free(job->rediscover_from.addresses);
    job->rediscover_from.addresses = NULL;
    job->rediscover_from.address_count = 0;
}

/* Where to look for a moved master: the other shards' masters first (a cluster
 * answers CLUSTER SLOTS from any live node, and the configured node may be the one
 * that died), then the configured addresses. */
static int sync_build_rediscover_source(struct sync_job *job) {
    const struct conf_source *source = &job->conf->source;
    sync_free_rediscover_source(job);
    struct conf_source *from = &job->rediscover_from;
    struct conf_address *addresses = source->addresses;
    int configured = source->address_count;
    *from = *source;
    from->addresses = calloc((size_t)(job->shard_count + configured), sizeof(*from->addresses));
    from->address_count = 0;
    if (from->addresses == NULL) return -1;
    for (int i = 0; i < job->shard_count + configured; i++) {
        const char *host;
        size_t host_len;
        int port;
        if (i < job->shard_count) {
            const char *colon = strrchr(job->shards[i].address, ':');
            if (colon == NULL) continue;
            host = job->shards[i].address;
            host_len = (size_t)(colon - host);
            port = atoi(colon + 1);
        } else {
            host = addresses[i - job->shard_count].host;
            host_len = strlen(host);
            port = addresses[i - job->shard_count].port;
        }
        struct conf_address *to = &from->addresses[from->address_count];
        if ((to->host = strndup(host, host_len)) == NULL) return -1;
        to->port = port;
        from->address_count++;
    }
    return 0;
}

static void sync_on_reconnecting(void *ctx, const char *reason, int attempts) {
    struct sync_shard *shard = ctx;
    struct sync_job *job = shard->job;
    log_warn("shard %s (%s): link lost (%s); reconnecting, attempt %d", shard->name,
             shard->address, reason, attempts);
    /* After a failed retry, the master may have moved: ask the source again. */
    if (attempts >= 2 && !job->rediscovering && !job->stopping) {
        job->rediscovering = 1;
        if (sync_build_rediscover_source(job) != 0 ||
            discover_start(job->loop, &job->rediscover_from, sync_on_rediscovered, job) != 0)
            job->rediscovering = 0;
    }
}

static void sync_on_replica_failed(void *ctx, const char *message) {
    struct sync_shard *shard = ctx;
    if (shard->index < shard->job->status.shard_count)
        snprintf(shard->job->status.shards[shard->index].last_error, STATUS_TEXT_MAX, "%s",
                 message);
    sync_fail(shard->job, "%s", message);
}

/* Create and start one replica per discovered shard, resuming from the checkpoint. */
static void sync_start_shards(struct sync_job *job, const struct discover_result *found) {
    job->shards = calloc((size_t)found->shard_count, sizeof(*job->shards));
    if (job->shards == NULL) {
        sync_fail(job, "out of memory");
        return;
    }
    job->shard_count = found->shard_count;
    if (status_set_shard_count(&job->status, found->shard_count) != 0) {
        sync_fail(job, "out of memory");
        return;
    }
    char err[512];
    job->live = checkpoint_live_create(job->live_path, found->shard_count, err, sizeof(err));
    if (job->live == NULL) {
        sync_fail(job, "%s", err);
        return;
    }
    const struct conf_source *source = &job->conf->source;
    for (int i = 0; i < found->shard_count; i++) {
        struct sync_shard *shard = &job->shards[i];
        shard->job = job;
        shard->index = i;
        snprintf(shard->name, sizeof(shard->name), "%s", found->shards[i].name);
        snprintf(shard->address, sizeof(shard->address), "%s:%d", found->shards[i].host,
                 found->shards[i].port);
        snprintf(job->status.shards[i].name, sizeof(job->status.shards[i].name), "%s",
                 shard->name);
        snprintf(job->status.shards[i].address, sizeof(job->status.shards[i].address), "%s",
                 shard->address);
        const struct checkpoint_shard *saved = checkpoint_find(&job->checkpoint, shard->name);
        if (saved != NULL && strcmp(saved->replid, SYNC_NO_REPLID) == 0) {
            log_info("shard %s (%s): the previous full sync did not finish; starting a new one",
                     shard->name, shard->address);
            saved = NULL;
        }
        struct replica_options options = {
            .source = i,
            .host = found->shards[i].host,
            .port = found->shards[i].port,
            .username = source->username,
            .password = source->password,
            .connect_timeout_ms = source->connect_timeout_ms,
            .tls = source->tls.context,
            .listening_port = 0,
            .replid = saved ? saved->replid : NULL,
            .offset = saved ? saved->offset : 0,
            .db = saved ? saved->db : 0,
            .max_buffered = job->conf->shake.max_buffered,
            .spool_dir = job->conf->shake.dir,
            .spool_max = job->conf->shake.spool_max,
        };
        if (saved != NULL) {
            log_info("shard %s (%s): checkpoint %s offset %llu", shard->name, shard->address,
                     saved->replid, (unsigned long long)saved->offset);
            snprintf(shard->replid, sizeof(shard->replid), "%s", saved->replid);
            shard->acked_offset = saved->offset;
            shard->acked_db = saved->db;
            shard->submitted_db = saved->db;
            shard->resumable = 1;
        }
        target_fit_decoder_options(job->conf, writer_target_info(job->writer), i, &options.rdb);
        struct replica_callbacks callbacks = {
            .ctx = shard,
            .readable = sync_on_replica_readable,
            .full_sync = sync_on_full_sync,
            .stream_started = sync_on_stream_started,
            .reconnecting = sync_on_reconnecting,
            .failed = sync_on_replica_failed,
        };
        shard->replica = replica_new(job->loop, &options, &callbacks);
        if (shard->replica == NULL) {
            sync_fail(job, "out of memory");
            return;
        }
    }
    for (int i = 0; i < job->shard_count && !job->stopping; i++)
        replica_start(job->shards[i].replica);
}

static void sync_on_discovered(void *ctx, struct discover_result *found, const char *error) {
    struct sync_job *job = ctx;
    if (found == NULL) {
        sync_fail(job, "%s", error ? error : "source discovery failed");
        return;
    }
    if (job->stopping) {
        discover_result_free(found);
        return;
    }
    log_info("source: %s, %d shard%s", found->is_cluster ? "cluster" : "standalone",
             found->shard_count, found->shard_count == 1 ? "" : "s");
    sync_start_shards(job, found);
    discover_result_free(found);
}

static void sync_on_writer_ready(void *ctx) {
    struct sync_job *job = ctx;
    const struct writer_target_info *info = writer_target_info(job->writer);
    target_fit_log(job->conf, info);
    if (job->checkpoint.count == 0) job->checkpoint.target_was_empty = info->keys == 0;
    if (info->keys > 0 && job->checkpoint.count == 0 &&
        job->conf->target.on_existing == CONF_ON_EXISTING_ERROR) {
        sync_fail(job,
                  "target %s:%d already holds %llu keys and there is no checkpoint in %s; "
                  "refusing to sync over them. Set [target] on_existing = replace to overwrite "
                  "them, or on_existing = skip to keep them",
                  job->conf->target.host, job->conf->target.port,
                  (unsigned long long)info->keys, job->checkpoint_path);
        return;
    }
    if (discover_start(job->loop, &job->conf->source, sync_on_discovered, job) != 0)
        sync_fail(job, "out of memory");
}

static void sync_on_writer_drained(void *ctx) {
    struct sync_job *job = ctx;
    if (job->stopping) {
        if (writer_is_idle(job->writer)) ev_break(job->loop, EVBREAK_ONE);
        return;
    }
    ev_idle_start(job->loop, &job->pump);
}

static void sync_on_writer_failed(void *ctx, const char *message) {
    struct sync_job *job = ctx;
    if (job->result->error[0] == '\0')
        snprintf(job->result->error, sizeof(job->result->error), "%s", message);
    job->stopping = 1;
    ev_idle_stop(job->loop, &job->pump);
    ev_break(job->loop, EVBREAK_ONE);
}

static void sync_on_key_error(void *ctx, const char *message) {
    struct sync_job *job = ctx;
    progress_clear(&job->progress);
    snprintf(job->status.last_key_error, sizeof(job->status.last_key_error), "%s", message);
    log_error("%s", message);
}

/* The writer's notices (a target node lost, writes resent after a failover). */
static void sync_on_writer_notice(void *ctx, const char *message) {
    struct sync_job *job = ctx;
    progress_clear(&job->progress);
    log_warn("%s", message);
}

static void sync_on_checkpoint_timer(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop, (void)revents;
    sync_save_checkpoint(timer->data);
}

/* Copy what the replicas, the writer and the filter know into the status model. */
static void sync_refresh_status(void *ctx) {
    struct sync_job *job = ctx;
    struct status *status = &job->status;
    for (int i = 0; i < job->shard_count && i < status->shard_count; i++) {
        struct sync_shard *shard = &job->shards[i];
        struct status_shard *out = &status->shards[i];
        struct replica_progress progress;
        struct writer_source_stats written;
        if (shard->replica == NULL) continue;
        replica_get_progress(shard->replica, &progress);
        writer_source_stats(job->writer, i, &written);
        out->phase = replica_phase_name(progress.phase);
        out->rdb_bytes_done = progress.rdb_bytes_done;
        out->rdb_bytes_total = progress.rdb_bytes_total;
        out->keys_written = written.keys_written;
        out->ops_done = written.keys_written + written.commands_written;
        out->received_offset = progress.received_offset;
        out->buffered_bytes = progress.buffered_bytes;
        out->acked_offset = shard->acked_offset;
        out->full_syncs = progress.full_syncs;
        out->partial_syncs = progress.partial_syncs;
        out->reconnects = progress.reconnects;
    }
    status->writer_in_flight = writer_in_flight(job->writer);
    status->writer_idle = writer_is_idle(job->writer);
    status->writer = *writer_stats(job->writer);
    status->filter = *filter_stats(job->filter);
}

/* One line per shard, from the status model. */
static void sync_log_status(struct sync_job *job) {
    sync_refresh_status(job);
    status_update(&job->status, progress_now());
    progress_clear(&job->progress);
    for (int i = 0; i < job->status.shard_count; i++) {
        const struct status_shard *shard = &job->status.shards[i];
        if (strcmp(shard->phase, "rdb") == 0)
            log_info("shard %s: rdb %llu/%llu bytes, %llu keys written", shard->name,
                     (unsigned long long)shard->rdb_bytes_done,
                     (unsigned long long)shard->rdb_bytes_total,
                     (unsigned long long)shard->keys_written);
        else
            log_info("shard %s: %s, received offset %llu, acked %llu, lag %llu bytes %llu ms, "
                     "%.0f ops/s",
                     shard->name, shard->phase, (unsigned long long)shard->received_offset,
                     (unsigned long long)shard->acked_offset,
                     (unsigned long long)shard->lag_bytes, (unsigned long long)shard->lag_ms,
                     shard->ops_per_sec);
    }
}

/* On a terminal, while some shard receives its RDB: one live line over all shards
 * (the total is unknown when any transfer is diskless). */
static void sync_show_rdb_progress(struct sync_job *job) {
    uint64_t done = 0, total = 0, keys = 0;
    int receiving = 0, unknown_size = 0;
    for (int i = 0; i < job->status.shard_count; i++) {
        const struct status_shard *shard = &job->status.shards[i];
        if (strcmp(shard->phase, "rdb") != 0) continue;
        receiving = 1;
        done += shard->rdb_bytes_done;
        total += shard->rdb_bytes_total;
        keys += shard->keys_written;
        unknown_size |= shard->rdb_bytes_total == 0;
    }
    if (!receiving || !job->progress.on_terminal) {
        if (job->progress_shown) progress_clear(&job->progress);
        job->progress_shown = 0;
        return;
    }
    if (!job->progress_shown) { /* rates need a second of history: draw from the next tick */
        job->progress.started = progress_now();
        job->progress_shown = 1;
        return;
    }
    progress_update(&job->progress, "rdb", done, unknown_size ? 0 : total, keys);
}

static void sync_on_status_timer(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop, (void)revents;
    struct sync_job *job = timer->data;
    if (++job->status_ticks % SYNC_STATUS_LOG_TICKS == 0) {
        sync_log_status(job);
    } else {
        sync_refresh_status(job);
        status_update(&job->status, progress_now());
    }
    sync_show_rdb_progress(job);
}

static void sync_on_signal(struct ev_loop *loop, ev_signal *watcher, int revents) {
    (void)loop, (void)revents;
    struct sync_job *job = watcher->data;
    if (job->stopping) {
        log_warn("second signal: stopping without waiting for replies");
        ev_break(job->loop, EVBREAK_ONE);
        return;
    }
    log_info("signal %d: stopping; draining writes, then saving the checkpoint",
             watcher->signum);
    sync_begin_stop(job);
}

/* A kill -9 leaves the positions of the last acknowledgements in the live file,
 * newer than the last durable save: take them, and make them durable before the
 * live file is recreated. A live file that cannot be read only costs replays. */
static int sync_apply_live_positions(struct sync_job *job) {
    char err[512];
    int moved = checkpoint_live_apply(&job->checkpoint, job->live_path, SYNC_NO_REPLID, err,
                                      sizeof(err));
    if (moved < 0) {
        log_warn("%s; resuming from %s alone", err, job->checkpoint_path);
        return 0;
    }
    if (moved == 0) return 0;
    log_info("checkpoint: %d shard(s) resume from %s, the position of their last acknowledged "
             "write, newer than %s (shake was not stopped cleanly)",
             moved, job->live_path, job->checkpoint_path);
    if (sync_save_checkpoint_durably(job, err, sizeof(err)) != 0) {
        snprintf(job->result->error, sizeof(job->result->error), "%s", err);
        return -1;
    }
    return 0;
}

static int sync_prepare_dir(struct sync_job *job) {
    const char *dir = job->conf->shake.dir;
    char err[512];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(job->result->error, sizeof(job->result->error), "%s: cannot create: %s", dir,
                 strerror(errno));
        return -1;
    }
    snprintf(job->checkpoint_path, sizeof(job->checkpoint_path), "%s/checkpoint", dir);
    job->saver = checkpoint_saver_new(job->checkpoint_path);
    if (job->saver == NULL) {
        snprintf(job->result->error, sizeof(job->result->error),
                 "cannot start the checkpoint thread");
        return -1;
    }
    if (checkpoint_load(&job->checkpoint, job->checkpoint_path, err, sizeof(err)) != 0) {
        snprintf(job->result->error, sizeof(job->result->error), "%s", err);
        return -1;
    }
    snprintf(job->live_path, sizeof(job->live_path), "%s/checkpoint.live", dir);
    return sync_apply_live_positions(job);
}

static void sync_watchers_start(struct sync_job *job) {
    ev_idle_init(&job->pump, sync_on_pump);
    job->pump.data = job;
    ev_prepare_init(&job->live_record, sync_on_live_record);
    job->live_record.data = job;
    double interval = job->conf->shake.checkpoint_interval_ms / 1000.0;
    ev_timer_init(&job->checkpoint_timer, sync_on_checkpoint_timer, interval, interval);
    job->checkpoint_timer.data = job;
    ev_timer_start(job->loop, &job->checkpoint_timer);
    ev_timer_init(&job->status_timer, sync_on_status_timer, SYNC_STATUS_TICK, SYNC_STATUS_TICK);
    job->status_timer.data = job;
    ev_timer_start(job->loop, &job->status_timer);
    ev_signal_init(&job->sigint, sync_on_signal, SIGINT);
    job->sigint.data = job;
    ev_signal_start(job->loop, &job->sigint);
    ev_signal_init(&job->sigterm, sync_on_signal, SIGTERM);
    job->sigterm.data = job;
    ev_signal_start(job->loop, &job->sigterm);
}

static void sync_watchers_stop(struct sync_job *job) {
    ev_idle_stop(job->loop, &job->pump);
    ev_prepare_stop(job->loop, &job->live_record);
    ev_timer_stop(job->loop, &job->checkpoint_timer);
    ev_timer_stop(job->loop, &job->status_timer);
    ev_signal_stop(job->loop, &job->sigint);
    ev_signal_stop(job->loop, &job->sigterm);
}

static void sync_free_shards(struct sync_job *job) {
    for (int i = 0; i < job->shard_count; i++) {
        replica_free(job->shards[i].replica);
        free(job->shards[i].db_changes);
    }
    free(job->shards);
}

int sync_run(struct ev_loop *loop, const struct shake_conf *conf, struct sync_result *result) {
    struct sync_job job = {.loop = loop, .conf = conf, .result = result};
    memset(result, 0, sizeof(*result));
    status_init(&job.status, "sync");
    progress_init(&job.progress, conf->shake.progress);
    for (int i = 0; i < conf->warning_count; i++) /* once per run: see conf.h */
        log_warn("%s", conf->warnings[i]);
    checkpoint_init(&job.checkpoint);
    if (sync_prepare_dir(&job) != 0) {
        checkpoint_saver_free(job.saver);
        checkpoint_free(&job.checkpoint);
        status_free(&job.status);
        return -1;
    }
    /* A sync rewrites keys it wrote before (a new full sync after a restart), so the
     * writer always replaces; on_existing is checked once, above, at the start. */
    job.target = conf->target;
    if (job.target.on_existing == CONF_ON_EXISTING_ERROR)
        job.target.on_existing = CONF_ON_EXISTING_REPLACE;
    struct writer_callbacks callbacks = {
        .ctx = &job,
        .ready = sync_on_writer_ready,
        .drained = sync_on_writer_drained,
        .failed = sync_on_writer_failed,
        .key_error = sync_on_key_error,
        .acked = sync_on_acked,
        .notice = sync_on_writer_notice,
    };
    job.writer = writer_new(loop, &job.target, &callbacks);
    if (job.writer == NULL) {
        snprintf(result->error, sizeof(result->error), "out of memory");
        checkpoint_saver_free(job.saver);
        checkpoint_free(&job.checkpoint);
        status_free(&job.status);
        return -1;
    }
    job.filter = filter_new(conf, NULL, result->error, sizeof(result->error));
    if (job.filter == NULL) {
        writer_free(job.writer);
        checkpoint_saver_free(job.saver);
        checkpoint_free(&job.checkpoint);
        status_free(&job.status);
        return -1;
    }
    job.status_server =
        status_server_start(loop, &conf->shake, &job.status, sync_refresh_status, &job);
    sync_watchers_start(&job);
    writer_start(job.writer);
    ev_run(loop, 0);
    sync_watchers_stop(&job);
    char err[512];
    if (sync_save_checkpoint_durably(&job, err, sizeof(err)) != 0) log_error("%s", err);
    checkpoint_saver_free(job.saver);
    checkpoint_live_free(job.live);
    sync_log_status(&job);
    status_server_free(job.status_server);
    sync_free_shards(&job);
    sync_free_rediscover_source(&job);
    status_free(&job.status);
    const struct filter_stats *filtered = filter_stats(job.filter);
    if (filter_is_active(job.filter))
        log_info("filter: %llu keys, %llu commands, %llu functions filtered; %llu commands "
                 "split, %llu refused, %llu keys renamed",
                 (unsigned long long)filtered->keys_filtered,
                 (unsigned long long)filtered->commands_filtered,
                 (unsigned long long)filtered->functions_filtered,
                 (unsigned long long)filtered->commands_split,
                 (unsigned long long)filtered->commands_refused,
                 (unsigned long long)filtered->keys_renamed);
    filter_free(job.filter);
    writer_free(job.writer);
    checkpoint_free(&job.checkpoint);
    result->ok = result->error[0] == '\0';
    return result->ok ? 0 : -1;
}
