/* restore.c -- the one-shot restore job (see restore.h).
 *
 * Owns the loop-side plumbing of a restore: opening the files in order, reading
 * them in blocks into the decoder, passing entries through the filter to the
 * writer, pausing while the writer is full, the progress line, SIGINT/SIGTERM, and
 * the tally for the summary. Decoding, routing and writing live elsewhere.
 */
#include "shake/restore.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "filter/filter.h"
#include "reader/rdb_decode.h"
#include "shake/log.h"
#include "shake/progress.h"
#include "shake/status.h"
#include "writer/writer.h"

#define RESTORE_READ_BLOCK (1024 * 1024)
#define RESTORE_ENTRIES_PER_PUMP 4096
#define RESTORE_MAX_ELEMENT (4ULL * 1024 * 1024 * 1024)
#define RESTORE_CHUNK_MAX_ITEMS 4096
#define RESTORE_CHUNK_MAX_BYTES (4 * 1024 * 1024)

enum restore_phase {
    RESTORE_CONNECTING, /* waiting for the writer to probe the target */
    RESTORE_RUNNING,    /* decoding files and submitting entries */
    RESTORE_DRAINING,   /* every file decoded (or stopping): waiting for replies */
    RESTORE_FINISHED,
};

struct restore_job {
    struct ev_loop *loop;
    const struct shake_conf *conf;
    struct restore_result *result;
    struct writer *writer;        /* owned */
    struct filter *filter;        /* owned */
    enum restore_phase phase;

    int file_index;
    int fd;                       /* current file, -1 when none */
    struct rdb_decoder *decoder;  /* owned, for the current file */
    int input_ended;
    char *block;                  /* owned read buffer */
    struct rdb_decoder_options decoder_options;

    ev_idle pump;                 /* runs while there is work and room in the writer */
    ev_timer ticker;              /* progress, once a second */
    ev_signal sigint, sigterm;
    struct progress progress;
    double started;
    struct status status;                 /* owned: one pseudo-shard per file */
    struct status_server *status_server;  /* owned; NULL when off */
};

static int64_t restore_now_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Record the first fatal error and start draining what is in flight. */
static void restore_fail(struct restore_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void restore_fail(struct restore_job *job, const char *fmt, ...) {
    if (job->result->error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->result->error, sizeof(job->result->error), fmt, ap);
        va_end(ap);
    }
    ev_idle_stop(job->loop, &job->pump);
    job->phase = RESTORE_DRAINING;
    if (writer_is_idle(job->writer)) ev_break(job->loop, EVBREAK_ONE);
}

static void restore_collect_decoder_stats(struct restore_job *job) {
    if (job->decoder == NULL) return;
    const struct rdb_decoder_stats *stats = rdb_decoder_stats(job->decoder);
    job->result->skipped_expired += stats->expired_skipped;
    job->result->skipped_empty += stats->empty_skipped;
    job->result->functions += stats->functions;
}

static void restore_close_file(struct restore_job *job) {
    restore_collect_decoder_stats(job);
    rdb_decoder_free(job->decoder);
    job->decoder = NULL;
    if (job->fd >= 0) close(job->fd);
    job->fd = -1;
}

/* Open the next file and a decoder for it. Returns 0, 1 when there is no next
 * file, -1 on error (already reported). */
static int restore_open_next_file(struct restore_job *job) {
    restore_close_file(job);
    if (job->file_index >= job->conf->source.file_count) return 1;
    const char *path = job->conf->source.files[job->file_index];
    job->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (job->fd < 0) {
        restore_fail(job, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    job->decoder_options.source = job->file_index;
    job->decoder = rdb_decoder_new(&job->decoder_options);
    job->input_ended = 0;
    if (job->decoder == NULL) {
        restore_fail(job, "%s: out of memory", path);
        return -1;
    }
    log_info("restoring %s", path);
    return 0;
}

static const char *restore_current_file(const struct restore_job *job) {
    return job->conf->source.files[job->file_index];
}

/* Read one block of the current file into the decoder. */
static int restore_read_block(struct restore_job *job) {
    ssize_t n;
    do {
        n = read(job->fd, job->block, RESTORE_READ_BLOCK);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        restore_fail(job, "%s: offset %llu: read: %s", restore_current_file(job),
                     (unsigned long long)rdb_decoder_offset(job->decoder), strerror(errno));
        return -1;
    }
    if (n == 0) {
        rdb_decoder_finish(job->decoder);
        job->input_ended = 1;
        return 0;
    }
    job->result->bytes_read += (uint64_t)n;
    if (rdb_decoder_feed(job->decoder, job->block, (size_t)n) != RDB_OK) {
        restore_fail(job, "%s: %s", restore_current_file(job), rdb_decoder_error(job->decoder));
        return -1;
    }
    return 0;
}

/* Filter an entry and hand it to the writer. */
static int restore_submit(struct restore_job *job, struct shake_entry *entry) {
    char err[512];
    switch (filter_apply(job->filter, entry)) {
    case FILTER_KEEP: break;
    case FILTER_DROP: shake_entry_free(entry); return 0;
    case FILTER_ERROR:
        shake_entry_free(entry);
        restore_fail(job, "%s: %s", restore_current_file(job), filter_error(job->filter));
        return -1;
    }
    if (writer_submit(job->writer, entry, err, sizeof(err)) != 0) {
        shake_entry_free(entry);
        restore_fail(job, "%s: %s", restore_current_file(job), err);
        return -1;
    }
    return 0;
}

/* All files are done: wait for the last replies. */
static void restore_start_draining(struct restore_job *job) {
    job->phase = RESTORE_DRAINING;
    ev_idle_stop(job->loop, &job->pump);
    if (writer_is_idle(job->writer)) ev_break(job->loop, EVBREAK_ONE);
}

/* One step of the decoder. Returns 1 to keep pumping, 0 to stop this round. */
static int restore_step(struct restore_job *job) {
    struct shake_entry *entry = NULL;
    switch (rdb_decoder_next(job->decoder, &entry)) {
    case RDB_OK:
        return restore_submit(job, entry) == 0;
    case RDB_NEED_MORE:
        if (job->input_ended) {
            /* The decoder must report truncation itself once finished. */
            restore_fail(job, "%s: offset %llu: unexpected end of file",
                         restore_current_file(job),
                         (unsigned long long)rdb_decoder_offset(job->decoder));
            return 0;
        }
        return restore_read_block(job) == 0;
    case RDB_DONE: {
        const char *tail;
        size_t tail_len;
        rdb_decoder_unconsumed(job->decoder, &tail, &tail_len);
        struct stat st;
        if (tail_len > 0 || (fstat(job->fd, &st) == 0 &&
                             (uint64_t)st.st_size > rdb_decoder_offset(job->decoder))) {
            log_warn("%s: ignoring bytes after the end of the RDB at offset %llu",
                     restore_current_file(job),
                     (unsigned long long)rdb_decoder_offset(job->decoder));
        }
        job->file_index++;
        int rc = restore_open_next_file(job);
        if (rc == 1) restore_start_draining(job);
        return rc == 0;
    }
    case RDB_ERR:
        restore_fail(job, "%s: %s", restore_current_file(job), rdb_decoder_error(job->decoder));
        return 0;
    }
    return 0;
}

static void restore_on_pump(struct ev_loop *loop, ev_idle *watcher, int revents) {
    (void)loop, (void)revents;
    struct restore_job *job = watcher->data;
    for (int i = 0; i < RESTORE_ENTRIES_PER_PUMP; i++) {
        if (job->phase != RESTORE_RUNNING) return;
        if (writer_is_full(job->writer)) {
            ev_idle_stop(job->loop, &job->pump); /* `drained` restarts it */
            return;
        }
        if (!restore_step(job)) return;
    }
}

/* Decide which values go raw (RESTORE) and which as commands, from what the
 * target can take. */
static void restore_set_decoder_options(struct restore_job *job,
                                        const struct writer_target_info *info) {
    struct rdb_decoder_options *options = &job->decoder_options;
    size_t raw_max = job->conf->shake.restore_max_bytes;
    /* The payload carries a type byte, a 10-byte footer and the RESP framing. */
    if (info->proto_max_bulk_len > 64 && raw_max > info->proto_max_bulk_len - 64)
        raw_max = info->proto_max_bulk_len - 64;
    options->raw_max = raw_max;
    options->chunk_max_bytes = RESTORE_CHUNK_MAX_BYTES;
    options->chunk_max_items = RESTORE_CHUNK_MAX_ITEMS;
    options->restorable_types = info->restorable_types;
    options->now_ms = restore_now_ms();
    options->max_element = RESTORE_MAX_ELEMENT;
}

static void restore_on_ready(void *ctx) {
    struct restore_job *job = ctx;
    const struct writer_target_info *info = writer_target_info(job->writer);
    log_info("target %s:%d: %s, Redis %d.%d.%d, %d master%s, %llu keys", job->conf->target.host,
             job->conf->target.port, info->is_cluster ? "cluster" : "standalone",
             info->version_major, info->version_minor, info->version_patch, info->master_count,
             info->master_count == 1 ? "" : "s", (unsigned long long)info->keys);
    if (info->keys > 0 && job->conf->target.on_existing == CONF_ON_EXISTING_ERROR) {
        restore_fail(job,
                     "target %s:%d already holds %llu keys; refusing to restore over them. Set "
                     "[target] on_existing = replace to overwrite them, or on_existing = skip to "
                     "keep them",
                     job->conf->target.host, job->conf->target.port,
                     (unsigned long long)info->keys);
        return;
    }
    restore_set_decoder_options(job, info);
    job->phase = RESTORE_RUNNING;
    int rc = restore_open_next_file(job);
    if (rc == 1) restore_start_draining(job);
    else if (rc == 0) ev_idle_start(job->loop, &job->pump);
}

static void restore_on_drained(void *ctx) {
    struct restore_job *job = ctx;
    if (job->phase == RESTORE_RUNNING) ev_idle_start(job->loop, &job->pump);
    else if (job->phase == RESTORE_DRAINING && writer_is_idle(job->writer))
        ev_break(job->loop, EVBREAK_ONE);
}

static void restore_on_failed(void *ctx, const char *message) {
    struct restore_job *job = ctx;
    if (job->result->error[0] == '\0')
        snprintf(job->result->error, sizeof(job->result->error), "%s", message);
    job->phase = RESTORE_FINISHED;
    ev_idle_stop(job->loop, &job->pump);
    ev_break(job->loop, EVBREAK_ONE);
}

static void restore_on_key_error(void *ctx, const char *message) {
    struct restore_job *job = ctx;
    progress_clear(&job->progress);
    log_error("%s", message);
}

static void restore_on_tick(struct ev_loop *loop, ev_timer *watcher, int revents) {
    (void)loop, (void)revents;
    struct restore_job *job = watcher->data;
    if (job->phase == RESTORE_CONNECTING) return;
    progress_update(&job->progress, "restore", job->result->bytes_read, job->result->bytes_total,
                    writer_stats(job->writer)->keys_written);
}

/* The status model: each file is a shard in phase "rdb", its bytes decoded and
 * the keys the target acknowledged from it (the decoder's source is the file's
 * index). */
static void restore_refresh_status(void *ctx) {
    struct restore_job *job = ctx;
    for (int i = 0; i < job->status.shard_count; i++) {
        struct status_shard *file = &job->status.shards[i];
        struct writer_source_stats written;
        writer_source_stats(job->writer, i, &written);
        file->phase = "rdb";
        file->keys_written = written.keys_written;
        file->ops_done = written.keys_written;
        if (i < job->file_index) file->rdb_bytes_done = file->rdb_bytes_total;
        else if (i == job->file_index && job->decoder != NULL)
            file->rdb_bytes_done = rdb_decoder_offset(job->decoder);
    }
    job->status.writer_in_flight = writer_in_flight(job->writer);
    job->status.writer_idle = writer_is_idle(job->writer);
    job->status.writer = *writer_stats(job->writer);
    job->status.filter = *filter_stats(job->filter);
}

/* Name the files in the status model and take their sizes. */
static void restore_status_start(struct restore_job *job) {
    const struct shake_conf *conf = job->conf;
    status_init(&job->status, "restore");
    if (status_set_shard_count(&job->status, conf->source.file_count) != 0) return;
    for (int i = 0; i < conf->source.file_count; i++) {
        struct status_shard *file = &job->status.shards[i];
        struct stat st;
        snprintf(file->name, sizeof(file->name), "file%d", i);
        snprintf(file->address, sizeof(file->address), "%s", conf->source.files[i]);
        file->phase = "rdb";
        if (stat(conf->source.files[i], &st) == 0) file->rdb_bytes_total = (uint64_t)st.st_size;
    }
    job->status_server = status_server_start(job->loop, &conf->shake, &job->status,
                                             restore_refresh_status, job);
}

static void restore_on_signal(struct ev_loop *loop, ev_signal *watcher, int revents) {
    (void)loop, (void)revents;
    struct restore_job *job = watcher->data;
    progress_clear(&job->progress);
    if (job->phase == RESTORE_DRAINING || job->phase == RESTORE_FINISHED) {
        log_warn("second signal: stopping without waiting for replies");
        ev_break(job->loop, EVBREAK_ONE);
        return;
    }
    log_warn("signal %d: stopping; waiting for the writes in flight", watcher->signum);
    restore_fail(job, "stopped by signal %d before the end", watcher->signum);
}

/* Sum of the sizes of every file, for progress; missing files fail later with a
 * clear message when their turn comes, so they count as 0 here. */
static uint64_t restore_total_bytes(const struct shake_conf *conf) {
    uint64_t total = 0;
    for (int i = 0; i < conf->source.file_count; i++) {
        struct stat st;
        if (stat(conf->source.files[i], &st) == 0) total += (uint64_t)st.st_size;
    }
    return total;
}

static void restore_tally(struct restore_job *job) {
    const struct writer_stats *stats = writer_stats(job->writer);
    struct restore_result *result = job->result;
    result->keys_written = stats->keys_written;
    result->skipped_existing = stats->keys_skipped;
    result->key_errors = stats->errors;
    result->seconds = progress_now() - job->started;
    result->ok = result->error[0] == '\0' && result->key_errors == 0;
}

static void restore_watchers_start(struct restore_job *job) {
    ev_idle_init(&job->pump, restore_on_pump);
    job->pump.data = job;
    ev_timer_init(&job->ticker, restore_on_tick, 1.0, 1.0);
    job->ticker.data = job;
    ev_timer_start(job->loop, &job->ticker);
    ev_signal_init(&job->sigint, restore_on_signal, SIGINT);
    job->sigint.data = job;
    ev_signal_start(job->loop, &job->sigint);
    ev_signal_init(&job->sigterm, restore_on_signal, SIGTERM);
    job->sigterm.data = job;
    ev_signal_start(job->loop, &job->sigterm);
}

static void restore_watchers_stop(struct restore_job *job) {
    ev_idle_stop(job->loop, &job->pump);
    ev_timer_stop(job->loop, &job->ticker);
    ev_signal_stop(job->loop, &job->sigint);
    ev_signal_stop(job->loop, &job->sigterm);
}

int restore_run(struct ev_loop *loop, const struct shake_conf *conf,
                struct restore_result *result) {
    struct restore_job job = {.loop = loop, .conf = conf, .result = result, .fd = -1};
    memset(result, 0, sizeof(*result));
    result->bytes_total = restore_total_bytes(conf);
    for (int i = 0; i < conf->warning_count; i++) /* once per run: see conf.h */
        log_warn("%s", conf->warnings[i]);
    job.started = progress_now();
    progress_init(&job.progress, conf->shake.progress);
    job.block = malloc(RESTORE_READ_BLOCK);
    struct writer_callbacks callbacks = {
        .ctx = &job,
        .ready = restore_on_ready,
        .drained = restore_on_drained,
        .failed = restore_on_failed,
        .key_error = restore_on_key_error,
    };
    job.writer = job.block ? writer_new(loop, &conf->target, &callbacks) : NULL;
    if (job.writer == NULL) {
        free(job.block);
        snprintf(result->error, sizeof(result->error), "out of memory");
        return -1;
    }
    job.filter = filter_new(conf, NULL, result->error, sizeof(result->error));
    if (job.filter == NULL) {
        writer_free(job.writer);
        free(job.block);
        return -1;
    }
    restore_watchers_start(&job);
    restore_status_start(&job);
    writer_start(job.writer);
    ev_run(loop, 0);
    restore_watchers_stop(&job);
    status_server_free(job.status_server);
    status_free(&job.status);
    progress_clear(&job.progress);
    restore_tally(&job);
    result->filtered =
        filter_stats(job.filter)->keys_filtered + filter_stats(job.filter)->functions_filtered;
    filter_free(job.filter);
    restore_close_file(&job);
    writer_free(job.writer);
    free(job.block);
    return result->ok ? 0 : -1;
}
