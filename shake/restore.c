/* restore.c -- the one-shot restore job (see restore.h).
 *
 * Owns the loop-side plumbing of a restore: opening the files in order, reading
 * them in blocks into the file's reader, passing entries through the filter to the
 * writer, pausing while the writer is full, the progress line, SIGINT/SIGTERM, and
 * the tally for the summary. Decoding, routing and writing live elsewhere.
 *
 * A file is "an RDB, then maybe commands": the RDB decoder reads an RDB file, an
 * AOF's RDB preamble or RDB base; with `type = aof` the bytes after the RDB (or the
 * whole file, when it has no preamble) go to the AOF command reader. Which files
 * and what each holds is reader/aof.c's business.
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
#include <unistd.h>

#include "filter/filter.h"
#include "reader/aof.h"
#include "reader/rdb_decode.h"
#include "shake/log.h"
#include "shake/progress.h"
#include "shake/status.h"
#include "shake/target_fit.h"
#include "writer/writer.h"

#define RESTORE_READ_BLOCK (128 * 1024)
#define RESTORE_ENTRIES_PER_PUMP 4096

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

    struct aof_file_list files;   /* owned: the files to replay, in order */
    int file_index;
    int fd;                       /* current file, -1 when none */
    struct rdb_decoder *decoder;  /* owned, for the current file's RDB part; NULL when none */
    struct aof_commands *commands;/* owned, for the current file's command part; NULL when none */
    int input_ended;
    char *block;                  /* owned read buffer */
    struct rdb_decoder_options decoder_options;

    ev_idle pump;                 /* runs while there is work and room in the writer */
    ev_timer ticker;              /* progress, once a second */
    ev_signal sigint, sigterm;
    struct progress progress;
    double started;
    struct status status;                 /* owned: one pseudo-shard per file replayed */
    struct status_server *status_server;  /* owned; NULL when off */
};

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

static const char *restore_current_file(const struct restore_job *job) {
    return job->files.items[job->file_index].path;
}

/* The RDB part of the current file is over. */
static void restore_close_decoder(struct restore_job *job) {
    restore_collect_decoder_stats(job);
    rdb_decoder_free(job->decoder);
    job->decoder = NULL;
}

static void restore_close_file(struct restore_job *job) {
    restore_close_decoder(job);
    if (job->commands != NULL)
        log_info("%s: %llu commands read", restore_current_file(job),
                 (unsigned long long)aof_commands_count(job->commands));
    aof_commands_free(job->commands);
    job->commands = NULL;
    if (job->fd >= 0) close(job->fd);
    job->fd = -1;
}

/* Where the current file is read up to: the decoder's offset in its RDB part,
 * the end of the last complete command in its command part. */
static uint64_t restore_file_offset(const struct restore_job *job) {
    if (job->decoder != NULL) return rdb_decoder_offset(job->decoder);
    if (job->commands != NULL) return aof_commands_offset(job->commands);
    return 0;
}

/* The same for progress: it never moves back (see rdb_decoder_progress). */
static uint64_t restore_file_progress(const struct restore_job *job) {
    if (job->decoder != NULL) return rdb_decoder_progress(job->decoder);
    return restore_file_offset(job);
}

/* Start the reader that fits the current file: the RDB decoder for an RDB file
 * (always, with type = rdb) or an AOF with a preamble, the command reader for an
 * AOF without. Returns 0, 1 for an empty file (nothing to replay), -1 on error. */
static int restore_start_reader(struct restore_job *job, const char *path) {
    char err[512];
    enum aof_kind kind = AOF_KIND_RDB;
    if (job->conf->source.type == CONF_SOURCE_AOF &&
        aof_file_kind(path, &kind, err, sizeof(err)) != 0) {
        restore_fail(job, "%s", err);
        return -1;
    }
    switch (kind) {
    case AOF_KIND_EMPTY: log_info("%s: empty, nothing to replay", path); return 1;
    case AOF_KIND_MANIFEST:
        restore_fail(job, "%s: a manifest named by a manifest (expected an AOF file)", path);
        return -1;
    case AOF_KIND_RDB: job->decoder = rdb_decoder_new(&job->decoder_options); break;
    case AOF_KIND_COMMANDS: job->commands = aof_commands_new(job->file_index, 0); break;
    }
    if (job->decoder == NULL && job->commands == NULL) {
        restore_fail(job, "%s: out of memory", path);
        return -1;
    }
    return 0;
}

/* Open the current file (empty ones are passed over) and its reader. Returns 0,
 * 1 when there is no file left, -1 on error (already reported). */
static int restore_open_next_file(struct restore_job *job) {
    for (; job->file_index < job->files.count; job->file_index++) {
        const char *path = restore_current_file(job);
        job->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (job->fd < 0) {
            restore_fail(job, "%s: cannot open: %s", path, strerror(errno));
            return -1;
        }
        job->decoder_options.source = job->file_index;
        job->input_ended = 0;
        int rc = restore_start_reader(job, path);
        if (rc != 1) {
            if (rc == 0) log_info("restoring %s", path);
            return rc;
        }
        restore_close_file(job); /* empty */
    }
    return 1;
}

/* Read one block of the current file into its reader. */
static int restore_read_block(struct restore_job *job) {
    ssize_t n;
    /* An RDB alone is read straight into the decoder's buffer: no copy. */
    char *into = job->block;
    int direct = job->decoder != NULL && job->commands == NULL;
    if (direct && (into = rdb_decoder_reserve(job->decoder, RESTORE_READ_BLOCK)) == NULL) {
        restore_fail(job, "%s: %s", restore_current_file(job), rdb_decoder_error(job->decoder));
        return -1;
    }
    do {
        n = read(job->fd, into, RESTORE_READ_BLOCK);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        restore_fail(job, "%s: offset %llu: read: %s", restore_current_file(job),
                     (unsigned long long)restore_file_offset(job), strerror(errno));
        return -1;
    }
    if (n == 0) {
        if (job->decoder != NULL) rdb_decoder_finish(job->decoder);
        job->input_ended = 1;
        return 0;
    }
    job->result->bytes_read += (uint64_t)n;
    if (direct) {
        rdb_decoder_commit(job->decoder, (size_t)n);
        return 0;
    }
    if (job->decoder != NULL &&
        rdb_decoder_feed(job->decoder, job->block, (size_t)n) != RDB_OK) {
        restore_fail(job, "%s: %s", restore_current_file(job), rdb_decoder_error(job->decoder));
        return -1;
    }
    if (job->commands != NULL &&
        aof_commands_feed(job->commands, job->block, (size_t)n) != AOF_OK) {
        restore_fail(job, "%s: %s", restore_current_file(job), aof_commands_error(job->commands));
        return -1;
    }
    return 0;
}

/* Where an error about an entry happened: a command is named by the file offset
 * the command reader has reached (the end of that command). */
static void restore_fail_entry(struct restore_job *job, const struct shake_entry *entry,
                               const char *message) {
    if (entry->kind == SHAKE_ENTRY_CMD)
        restore_fail(job, "%s: offset %llu: %s", restore_current_file(job),
                     (unsigned long long)restore_file_offset(job), message);
    else restore_fail(job, "%s: %s", restore_current_file(job), message);
}

/* Filter an entry and hand it to the writer. A command the filter cannot split
 * is skipped with on_unsupported = skip, as a sync does. */
static int restore_submit(struct restore_job *job, struct shake_entry *entry) {
    char err[512];
    switch (filter_apply(job->filter, entry)) {
    case FILTER_KEEP: break;
    case FILTER_DROP: shake_entry_free(entry); return 0;
    case FILTER_ERROR:
        if (entry->kind == SHAKE_ENTRY_CMD &&
            job->conf->target.on_unsupported == CONF_ON_UNSUPPORTED_SKIP) {
            log_warn("%s: skipped: %s", restore_current_file(job), filter_error(job->filter));
            shake_entry_free(entry);
            return 0;
        }
        restore_fail_entry(job, entry, filter_error(job->filter));
        shake_entry_free(entry);
        return -1;
    }
    if (writer_submit(job->writer, entry, err, sizeof(err)) != 0) {
        restore_fail_entry(job, entry, err);
        shake_entry_free(entry);
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

/* The current file is done: on to the next one, or to draining after the last. */
static int restore_next_file(struct restore_job *job) {
    restore_close_file(job);
    job->file_index++;
    int rc = restore_open_next_file(job);
    if (rc == 1) restore_start_draining(job);
    return rc == 0;
}

/* The RDB part of an AOF file ended: the bytes the decoder was fed past it, and
 * the rest of the file, are commands. */
static int restore_start_commands(struct restore_job *job) {
    const char *tail;
    size_t tail_len;
    rdb_decoder_unconsumed(job->decoder, &tail, &tail_len);
    job->commands = aof_commands_new(job->file_index, rdb_decoder_offset(job->decoder));
    if (job->commands == NULL ||
        (tail_len > 0 && aof_commands_feed(job->commands, tail, tail_len) != AOF_OK)) {
        restore_fail(job, "%s: out of memory", restore_current_file(job));
        return 0;
    }
    restore_close_decoder(job);
    return 1;
}

/* The RDB ended: commands may follow in an AOF; an RDB file should end here. */
static int restore_rdb_done(struct restore_job *job) {
    if (job->conf->source.type == CONF_SOURCE_AOF) return restore_start_commands(job);
    const char *tail;
    size_t tail_len;
    rdb_decoder_unconsumed(job->decoder, &tail, &tail_len);
    struct stat st;
    if (tail_len > 0 || (fstat(job->fd, &st) == 0 &&
                         (uint64_t)st.st_size > rdb_decoder_offset(job->decoder))) {
        log_warn("%s: ignoring bytes after the end of the RDB at offset %llu",
                 restore_current_file(job), (unsigned long long)rdb_decoder_offset(job->decoder));
    }
    return restore_next_file(job);
}

/* The command part ended. A file cut short (a crash while Redis appended) is
 * replayed up to its last complete command with a warning, as Redis does with
 * aof-load-truncated yes, but only where Redis allows it: in the last file of an
 * AOF. */
static int restore_commands_done(struct restore_job *job) {
    if (aof_commands_finish(job->commands) != 0) {
        if (!job->files.items[job->file_index].last) {
            restore_fail(job, "%s: %s; only the last file of an AOF may be cut short",
                         restore_current_file(job), aof_commands_warning(job->commands));
            return 0;
        }
        progress_clear(&job->progress);
        log_warn("%s: %s", restore_current_file(job), aof_commands_warning(job->commands));
    }
    return restore_next_file(job);
}

/* One step of the command reader. Returns 1 to keep pumping, 0 to stop this round. */
static int restore_step_commands(struct restore_job *job) {
    struct shake_entry *entry = NULL;
    switch (aof_commands_next(job->commands, &entry)) {
    case AOF_OK: return restore_submit(job, entry) == 0;
    case AOF_NEED_MORE:
        if (job->input_ended) return restore_commands_done(job);
        return restore_read_block(job) == 0;
    case AOF_ERR:
        restore_fail(job, "%s: %s", restore_current_file(job), aof_commands_error(job->commands));
        return 0;
    }
    return 0;
}

/* One step of the current file's reader. Returns 1 to keep pumping, 0 to stop
 * this round. */
static int restore_step(struct restore_job *job) {
    if (job->decoder == NULL) return restore_step_commands(job);
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
    case RDB_DONE: return restore_rdb_done(job);
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

static void restore_on_ready(void *ctx) {
    struct restore_job *job = ctx;
    const struct writer_target_info *info = writer_target_info(job->writer);
    target_fit_log(job->conf, info);
    if (info->keys > 0 && job->conf->target.on_existing == CONF_ON_EXISTING_ERROR) {
        restore_fail(job,
                     "target %s:%d already holds %llu keys; refusing to restore over them. Set "
                     "[target] on_existing = replace to overwrite them, or on_existing = skip to "
                     "keep them",
                     job->conf->target.host, job->conf->target.port,
                     (unsigned long long)info->keys);
        return;
    }
    target_fit_decoder_options(job->conf, info, job->file_index, &job->decoder_options);
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

/* The writer's notices (a target node lost, writes resent after a failover). */
static void restore_on_writer_notice(void *ctx, const char *message) {
    struct restore_job *job = ctx;
    progress_clear(&job->progress);
    log_warn("%s", message);
}

static void restore_on_tick(struct ev_loop *loop, ev_timer *watcher, int revents) {
    (void)loop, (void)revents;
    struct restore_job *job = watcher->data;
    if (job->phase == RESTORE_CONNECTING) return;
    progress_update(&job->progress, "restore", job->result->bytes_read, job->result->bytes_total,
                    writer_stats(job->writer)->keys_written);
}

/* The status model: each file is a shard in phase "rdb", its bytes read (RDB
 * and commands alike) and the keys and commands the target acknowledged from it
 * (the readers' source is the file's index). */
static void restore_refresh_status(void *ctx) {
    struct restore_job *job = ctx;
    for (int i = 0; i < job->status.shard_count; i++) {
        struct status_shard *file = &job->status.shards[i];
        struct writer_source_stats written;
        writer_source_stats(job->writer, i, &written);
        file->phase = "rdb";
        file->keys_written = written.keys_written;
        file->ops_done = written.keys_written + written.commands_written;
        if (i < job->file_index) file->rdb_bytes_done = file->rdb_bytes_total;
        else if (i == job->file_index) file->rdb_bytes_done = restore_file_progress(job);
    }
    job->status.writer_in_flight = writer_in_flight(job->writer);
    job->status.writer_idle = writer_is_idle(job->writer);
    job->status.writer = *writer_stats(job->writer);
    job->status.filter = *filter_stats(job->filter);
}

/* Name the files in the status model and take their sizes. */
static void restore_status_start(struct restore_job *job) {
    status_init(&job->status, "restore");
    if (status_set_shard_count(&job->status, job->files.count) != 0) return;
    for (int i = 0; i < job->files.count; i++) {
        struct status_shard *file = &job->status.shards[i];
        struct stat st;
        snprintf(file->name, sizeof(file->name), "file%d", i);
        snprintf(file->address, sizeof(file->address), "%s", job->files.items[i].path);
        file->phase = "rdb";
        if (stat(job->files.items[i].path, &st) == 0) file->rdb_bytes_total = (uint64_t)st.st_size;
    }
    job->status_server = status_server_start(job->loop, &job->conf->shake, &job->status,
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
static uint64_t restore_total_bytes(const struct aof_file_list *files) {
    uint64_t total = 0;
    for (int i = 0; i < files->count; i++) {
        struct stat st;
        if (stat(files->items[i].path, &st) == 0) total += (uint64_t)st.st_size;
    }
    return total;
}

/* The files to replay: the RDB files as named, or the AOF files with each
 * manifest expanded into its base and incr files. A manifest that cannot be read
 * fails here, before any server is touched. */
static int restore_list_files(const struct shake_conf *conf, struct aof_file_list *files,
                              char *err, size_t errlen) {
    if (conf->source.type == CONF_SOURCE_AOF)
        return aof_expand(conf->source.files, conf->source.file_count, files, err, errlen);
    for (int i = 0; i < conf->source.file_count; i++) {
        if (aof_file_list_add(files, conf->source.files[i], 0, 0, 1) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static void restore_tally(struct restore_job *job) {
    const struct writer_stats *stats = writer_stats(job->writer);
    struct restore_result *result = job->result;
    result->keys_written = stats->keys_written;
    result->skipped_existing = stats->keys_skipped;
    result->key_errors = stats->errors;
    result->commands = stats->commands_written;
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
    if (restore_list_files(conf, &job.files, result->error, sizeof(result->error)) != 0) {
        aof_file_list_free(&job.files);
        return -1;
    }
    result->bytes_total = restore_total_bytes(&job.files);
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
        .notice = restore_on_writer_notice,
    };
    job.writer = job.block ? writer_new(loop, &conf->target, &callbacks) : NULL;
    if (job.writer == NULL) {
        free(job.block);
        aof_file_list_free(&job.files);
        snprintf(result->error, sizeof(result->error), "out of memory");
        return -1;
    }
    job.filter = filter_new(conf, NULL, result->error, sizeof(result->error));
    if (job.filter == NULL) {
        writer_free(job.writer);
        free(job.block);
        aof_file_list_free(&job.files);
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
    if (job.file_index < job.files.count) restore_close_file(&job);
    writer_free(job.writer);
    free(job.block);
    aof_file_list_free(&job.files);
    return result->ok ? 0 : -1;
}
