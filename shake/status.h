/* status.h -- what an operator sees of a running job: the status model, its JSON
 * and Prometheus renderings, and the HTTP endpoint that serves them.
 *
 * The job (sync.c, restore.c) owns a `struct status` and fills its raw fields
 * (phase, offsets, counters) from its replicas, writer and filter, in a refresh
 * callback called before every rendering and once a second; status_update() then
 * derives what is computed (source offset, lag in bytes and milliseconds, ops/s,
 * caught_up). The lag in milliseconds comes from a small FIFO per shard of
 * (stream offset, arrival time) samples: the age of the oldest sample the target
 * has not acknowledged yet. Every field is documented in docs/status.md.
 *
 * Must not: talk to servers, or block. The endpoint is optional: a job runs the
 * same without it.
 */
#ifndef SHAKE_STATUS_H
#define SHAKE_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "filter/filter.h"
#include "shake/json.h"
#include "writer/writer.h"

#define SHAKE_VERSION "0.1.0" /* shown by --version, /status and /metrics */

#define STATUS_LAG_SAMPLES 256   /* per shard; when full, the newest sample absorbs more */
#define STATUS_LAG_MERGE_MS 10.0 /* samples closer than this are merged */
#define STATUS_TEXT_MAX 512

struct ev_loop;
struct status_server;

/* One stream position and when shake had received it (monotonic seconds). */
struct status_lag_sample {
    uint64_t offset;
    double time;
};

struct status_shard {
    /* Filled by the job. */
    char name[128];
    char address[300];
    const char *phase; /* a static string: see docs/status.md */
    uint64_t rdb_bytes_done;
    uint64_t rdb_bytes_total; /* 0: unknown (diskless transfer) */
    uint64_t keys_written;
    uint64_t ops_done;        /* keys and commands applied, the base of ops_per_sec */
    uint64_t received_offset; /* end of the last command parsed */
    uint64_t buffered_bytes;  /* received from the source, not yet parsed */
    uint64_t acked_offset;
    uint64_t full_syncs, partial_syncs, reconnects;
    char last_error[STATUS_TEXT_MAX];
    /* Derived by status_update(). */
    uint64_t source_offset;
    uint64_t lag_bytes;
    uint64_t lag_ms;
    double ops_per_sec;
    /* Private to status.c. */
    struct status_lag_sample samples[STATUS_LAG_SAMPLES]; /* ring */
    size_t sample_head, sample_count;
    uint64_t rate_ops;
    double rate_time;
};

struct status {
    const char *job;             /* "sync" or "restore" */
    double started;              /* monotonic seconds */
    struct status_shard *shards; /* owned */
    int shard_count;
    /* Filled by the job. */
    size_t writer_in_flight;
    int writer_idle;
    struct writer_stats writer;
    struct filter_stats filter;
    char last_key_error[STATUS_TEXT_MAX];
    /* Derived by status_update(). */
    int caught_up;
    double uptime;
    uint64_t reconnects, full_syncs, partial_syncs; /* sums over the shards */
};

/* `job`: a static string. */
void status_init(struct status *status, const char *job);
void status_free(struct status *status);
/* Make room for `count` shards, each in phase "connecting". Returns 0 or -1. */
int status_set_shard_count(struct status *status, int count);

/* The shard had received (parsed or buffered) the stream up to `offset` at `now`. */
void status_lag_received(struct status_shard *shard, uint64_t offset, double now);
/* A new full sync: the samples of the old stream mean nothing any more. */
void status_lag_reset(struct status_shard *shard);

/* Derive the computed fields from the raw ones at monotonic time `now`. */
void status_update(struct status *status, double now);
void status_render_json(const struct status *status, struct text_buf *out);
/* Prometheus text exposition format 0.0.4. */
void status_render_metrics(const struct status *status, struct text_buf *out);

/* Serve GET /status and GET /metrics on conf->shake.status (NULL host: off).
 * `refresh` fills the model before each answer. Returns NULL when off or when the
 * address cannot be bound (logged as a warning: the job runs on without it). */
struct status_server *status_server_start(struct ev_loop *loop, const struct conf_shake *conf,
                                          struct status *status, void (*refresh)(void *ctx),
                                          void *ctx);
void status_server_free(struct status_server *server);

#endif
