/* status.c -- see status.h. */
#include "shake/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shake/http.h"
#include "shake/log.h"
#include "shake/progress.h"

static const char *const status_phases[] = {
    "connecting", "handshake", "waiting_bgsave", "rdb", "stream", "reconnecting", "error",
};
#define STATUS_PHASE_COUNT (sizeof(status_phases) / sizeof(status_phases[0]))

struct status_server {
    struct http_server *http; /* owned */
    struct status *status;    /* borrowed */
    void (*refresh)(void *ctx);
    void *ctx;
};

void status_init(struct status *status, const char *job) {
    memset(status, 0, sizeof(*status));
    status->job = job;
    status->started = progress_now();
}

void status_free(struct status *status) {
    free(status->shards);
    status->shards = NULL;
    status->shard_count = 0;
}

int status_set_shard_count(struct status *status, int count) {
    struct status_shard *shards = calloc(count > 0 ? (size_t)count : 1, sizeof(*shards));
    if (shards == NULL) return -1;
    for (int i = 0; i < count; i++)
        shards[i].phase = status_phases[0];
    free(status->shards);
    status->shards = shards;
    status->shard_count = count;
    return 0;
}

static struct status_lag_sample *status_sample_at(struct status_shard *shard, size_t i) {
    return &shard->samples[(shard->sample_head + i) % STATUS_LAG_SAMPLES];
}

/* Forget the samples the target has acknowledged entirely. */
static void status_lag_trim(struct status_shard *shard) {
    while (shard->sample_count > 0 && status_sample_at(shard, 0)->offset <= shard->acked_offset) {
        shard->sample_head = (shard->sample_head + 1) % STATUS_LAG_SAMPLES;
        shard->sample_count--;
    }
}

/* When the ring is full, or the last sample is very recent, the newest sample
 * takes the new offset and keeps its older time: lag_ms can then only be
 * overstated, never understated. */
void status_lag_received(struct status_shard *shard, uint64_t offset, double now) {
    status_lag_trim(shard);
    if (offset <= shard->acked_offset) return;
    if (shard->sample_count > 0) {
        struct status_lag_sample *last = status_sample_at(shard, shard->sample_count - 1);
        if (offset <= last->offset) return;
        if (shard->sample_count == STATUS_LAG_SAMPLES ||
            (now - last->time) * 1000.0 < STATUS_LAG_MERGE_MS) {
            last->offset = offset;
            return;
        }
    }
    struct status_lag_sample *slot = status_sample_at(shard, shard->sample_count++);
    slot->offset = offset;
    slot->time = now;
}

void status_lag_reset(struct status_shard *shard) {
    shard->sample_head = 0;
    shard->sample_count = 0;
}

static void status_update_shard(struct status_shard *shard, double now) {
    int streaming = strcmp(shard->phase, "stream") == 0;
    shard->source_offset = shard->received_offset + (streaming ? shard->buffered_bytes : 0);
    shard->lag_bytes =
        shard->source_offset > shard->acked_offset ? shard->source_offset - shard->acked_offset : 0;
    status_lag_trim(shard);
    shard->lag_ms = 0;
    if (shard->lag_bytes > 0 && shard->sample_count > 0) {
        double age = now - status_sample_at(shard, 0)->time;
        shard->lag_ms = age > 0 ? (uint64_t)(age * 1000.0) : 0;
    }
    if (shard->rate_time == 0 || shard->ops_done < shard->rate_ops) {
        shard->rate_time = now;
        shard->rate_ops = shard->ops_done;
    } else if (now - shard->rate_time >= 1.0) {
        shard->ops_per_sec = (double)(shard->ops_done - shard->rate_ops) / (now - shard->rate_time);
        shard->rate_time = now;
        shard->rate_ops = shard->ops_done;
    }
}

/* A shard has nothing left to deliver: streaming with nothing pending (sync), or
 * its file read to the end (restore). */
static int status_shard_settled(const struct status *status, const struct status_shard *shard) {
    if (strcmp(status->job, "restore") == 0) return shard->rdb_bytes_done >= shard->rdb_bytes_total;
    return strcmp(shard->phase, "stream") == 0 && shard->buffered_bytes == 0 &&
           shard->lag_bytes == 0;
}

void status_update(struct status *status, double now) {
    int settled = status->shard_count > 0;
    status->reconnects = status->full_syncs = status->partial_syncs = 0;
    for (int i = 0; i < status->shard_count; i++) {
        struct status_shard *shard = &status->shards[i];
        status_update_shard(shard, now);
        settled &= status_shard_settled(status, shard);
        status->reconnects += shard->reconnects;
        status->full_syncs += shard->full_syncs;
        status->partial_syncs += shard->partial_syncs;
    }
    status->caught_up = settled && status->writer_in_flight == 0 && status->writer_idle;
    status->uptime = now - status->started;
}

/* ---- JSON ------------------------------------------------------------------------- */

static void status_json_uint(struct json_writer *json, const char *key, uint64_t value) {
    json_key(json, key);
    json_uint(json, value);
}

static void status_json_shard(struct json_writer *json, const struct status_shard *shard) {
    json_object_begin(json);
    json_key(json, "name");
    json_cstring(json, shard->name);
    json_key(json, "address");
    json_cstring(json, shard->address);
    json_key(json, "phase");
    json_cstring(json, shard->phase);
    status_json_uint(json, "rdb_bytes_done", shard->rdb_bytes_done);
    status_json_uint(json, "rdb_bytes_total", shard->rdb_bytes_total);
    status_json_uint(json, "keys_written", shard->keys_written);
    json_key(json, "ops_per_sec");
    json_double(json, shard->ops_per_sec);
    status_json_uint(json, "source_offset", shard->source_offset);
    status_json_uint(json, "received_offset", shard->received_offset);
    status_json_uint(json, "acked_offset", shard->acked_offset);
    status_json_uint(json, "buffered_bytes", shard->buffered_bytes);
    status_json_uint(json, "lag_bytes", shard->lag_bytes);
    status_json_uint(json, "lag_ms", shard->lag_ms);
    status_json_uint(json, "full_syncs", shard->full_syncs);
    status_json_uint(json, "partial_syncs", shard->partial_syncs);
    status_json_uint(json, "reconnects", shard->reconnects);
    json_key(json, "last_error");
    json_cstring(json, shard->last_error);
    json_object_end(json);
}

static void status_json_writer(struct json_writer *json, const struct status *status) {
    const struct writer_stats *w = &status->writer;
    json_key(json, "writer");
    json_object_begin(json);
    status_json_uint(json, "in_flight", status->writer_in_flight);
    json_key(json, "idle");
    json_bool(json, status->writer_idle);
    status_json_uint(json, "keys_written", w->keys_written);
    status_json_uint(json, "keys_skipped", w->keys_skipped);
    status_json_uint(json, "commands_written", w->commands_written);
    status_json_uint(json, "commands_sent", w->commands_sent);
    status_json_uint(json, "bytes_sent", w->bytes_sent);
    status_json_uint(json, "redirects", w->redirects);
    status_json_uint(json, "retries", w->retries);
    status_json_uint(json, "transactions_split", w->transactions_split);
    status_json_uint(json, "renames_emulated", w->renames_emulated);
    json_object_end(json);
}

static void status_json_errors(struct json_writer *json, const struct status *status) {
    json_key(json, "errors");
    json_object_begin(json);
    status_json_uint(json, "key_errors", status->writer.errors);
    status_json_uint(json, "commands_skipped", status->writer.commands_skipped);
    status_json_uint(json, "commands_refused", status->filter.commands_refused);
    status_json_uint(json, "keys_filtered", status->filter.keys_filtered);
    status_json_uint(json, "commands_filtered", status->filter.commands_filtered);
    status_json_uint(json, "functions_filtered", status->filter.functions_filtered);
    status_json_uint(json, "reconnects", status->reconnects);
    status_json_uint(json, "full_syncs", status->full_syncs);
    status_json_uint(json, "partial_syncs", status->partial_syncs);
    json_key(json, "last_key_error");
    json_cstring(json, status->last_key_error);
    json_object_end(json);
}

/* caught_up comes first, so that `shake status --json` can read it from the start. */
void status_render_json(const struct status *status, struct text_buf *out) {
    struct json_writer json;
    json_init(&json, out);
    json_object_begin(&json);
    json_key(&json, "caught_up");
    json_bool(&json, status->caught_up);
    json_key(&json, "job");
    json_cstring(&json, status->job);
    json_key(&json, "version");
    json_cstring(&json, SHAKE_VERSION);
    json_key(&json, "uptime_seconds");
    json_double(&json, (double)(uint64_t)(status->uptime * 1000.0) / 1000.0);
    json_key(&json, "shards");
    json_array_begin(&json);
    for (int i = 0; i < status->shard_count; i++)
        status_json_shard(&json, &status->shards[i]);
    json_array_end(&json);
    status_json_writer(&json, status);
    status_json_errors(&json, status);
    json_object_end(&json);
    text_buf_puts(out, "\n");
}

/* ---- Prometheus ---------------------------------------------------------------------- */

/* A label value: backslash, double quote and line feed escaped, as the format
 * asks; bytes that are not valid UTF-8 become U+FFFD, as in the JSON. */
static void status_label_value(struct text_buf *out, const char *value) {
    size_t len = strlen(value), i = 0;
    while (i < len) {
        size_t n = json_utf8_length(value + i, len - i);
        if (n == 0)
            text_buf_puts(out, "\xEF\xBF\xBD");
        else if (value[i] == '\\')
            text_buf_puts(out, "\\\\");
        else if (value[i] == '"')
            text_buf_puts(out, "\\\"");
        else if (value[i] == '\n')
            text_buf_puts(out, "\\n");
        else
            text_buf_append(out, value + i, n);
        i += n ? n : 1;
    }
}

static void status_metric_head(struct text_buf *out, const char *name, const char *type,
                               const char *help) {
    text_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void status_metric_value(struct text_buf *out, double value) {
    text_buf_printf(out, " %.15g\n", value);
}

/* One sample per shard: `field` reads the value from the shard. */
static void status_metric_shards(struct text_buf *out, const struct status *status,
                                 const char *name, const char *type, const char *help,
                                 double (*field)(const struct status_shard *)) {
    status_metric_head(out, name, type, help);
    for (int i = 0; i < status->shard_count; i++) {
        text_buf_printf(out, "%s{shard=\"", name);
        status_label_value(out, status->shards[i].name);
        text_buf_puts(out, "\"}");
        status_metric_value(out, field(&status->shards[i]));
    }
}

static void status_metric_global(struct text_buf *out, const char *name, const char *type,
                                 const char *help, double value) {
    status_metric_head(out, name, type, help);
    text_buf_puts(out, name);
    status_metric_value(out, value);
}

#define STATUS_SHARD_FIELD(field)                                                                  \
    static double status_field_##field(const struct status_shard *shard) {                         \
        return (double)shard->field;                                                               \
    }
STATUS_SHARD_FIELD(rdb_bytes_done)
STATUS_SHARD_FIELD(rdb_bytes_total)
STATUS_SHARD_FIELD(keys_written)
STATUS_SHARD_FIELD(ops_per_sec)
STATUS_SHARD_FIELD(source_offset)
STATUS_SHARD_FIELD(received_offset)
STATUS_SHARD_FIELD(acked_offset)
STATUS_SHARD_FIELD(buffered_bytes)
STATUS_SHARD_FIELD(lag_bytes)
STATUS_SHARD_FIELD(full_syncs)
STATUS_SHARD_FIELD(partial_syncs)
STATUS_SHARD_FIELD(reconnects)

static double status_field_lag_seconds(const struct status_shard *shard) {
    return (double)shard->lag_ms / 1000.0;
}

/* The shard's address and phase as labels of constant-1 and 0/1 samples. */
static void status_metric_shard_labels(struct text_buf *out, const struct status *status) {
    status_metric_head(out, "shake_shard_info", "gauge",
                       "Always 1; the labels name the shard's source address.");
    for (int i = 0; i < status->shard_count; i++) {
        text_buf_puts(out, "shake_shard_info{shard=\"");
        status_label_value(out, status->shards[i].name);
        text_buf_puts(out, "\",address=\"");
        status_label_value(out, status->shards[i].address);
        text_buf_puts(out, "\"} 1\n");
    }
    status_metric_head(out, "shake_shard_phase", "gauge",
                       "1 for the shard's current phase, 0 for the others.");
    for (int i = 0; i < status->shard_count; i++) {
        for (size_t p = 0; p < STATUS_PHASE_COUNT; p++) {
            text_buf_puts(out, "shake_shard_phase{shard=\"");
            status_label_value(out, status->shards[i].name);
            text_buf_printf(out, "\",phase=\"%s\"} %d\n", status_phases[p],
                            strcmp(status->shards[i].phase, status_phases[p]) == 0);
        }
    }
}

static void status_metric_shard_values(struct text_buf *out, const struct status *status) {
    status_metric_shards(out, status, "shake_shard_rdb_bytes_done", "gauge",
                         "Bytes of the current full sync's RDB decoded.",
                         status_field_rdb_bytes_done);
    status_metric_shards(out, status, "shake_shard_rdb_bytes_total", "gauge",
                         "Size of the RDB announced by the source; 0 when unknown (diskless).",
                         status_field_rdb_bytes_total);
    status_metric_shards(out, status, "shake_shard_keys_written_total", "counter",
                         "Keys from this shard acknowledged by the target.",
                         status_field_keys_written);
    status_metric_shards(out, status, "shake_shard_ops_per_second", "gauge",
                         "Keys and commands from this shard applied per second.",
                         status_field_ops_per_sec);
    status_metric_shards(out, status, "shake_shard_source_offset_bytes", "gauge",
                         "Latest replication offset known to shake: received plus buffered.",
                         status_field_source_offset);
    status_metric_shards(out, status, "shake_shard_received_offset_bytes", "gauge",
                         "Replication offset at the end of the last command parsed.",
                         status_field_received_offset);
    status_metric_shards(out, status, "shake_shard_acked_offset_bytes", "gauge",
                         "Replication offset up to which the target acknowledged every write.",
                         status_field_acked_offset);
    status_metric_shards(out, status, "shake_shard_buffered_bytes", "gauge",
                         "Stream bytes received from the source and not yet parsed.",
                         status_field_buffered_bytes);
    status_metric_shards(out, status, "shake_shard_lag_bytes", "gauge",
                         "Source offset minus acknowledged offset.", status_field_lag_bytes);
    status_metric_shards(out, status, "shake_shard_lag_seconds", "gauge",
                         "Age of the oldest write not yet acknowledged by the target.",
                         status_field_lag_seconds);
    status_metric_shards(out, status, "shake_shard_full_syncs_total", "counter",
                         "Full syncs started.", status_field_full_syncs);
    status_metric_shards(out, status, "shake_shard_partial_syncs_total", "counter",
                         "Streams continued with PSYNC (+CONTINUE).", status_field_partial_syncs);
    status_metric_shards(out, status, "shake_shard_reconnects_total", "counter",
                         "Source links lost and reconnected.", status_field_reconnects);
}

static void status_metric_totals(struct text_buf *out, const struct status *status) {
    const struct writer_stats *w = &status->writer;
    const struct filter_stats *f = &status->filter;
    status_metric_global(out, "shake_writer_in_flight_entries", "gauge",
                         "Entries submitted to the writer and not yet done.",
                         (double)status->writer_in_flight);
    status_metric_global(out, "shake_writer_keys_written_total", "counter",
                         "Keys acknowledged by the target.", (double)w->keys_written);
    status_metric_global(out, "shake_writer_keys_skipped_total", "counter",
                         "Keys kept as the target had them (on_existing = skip).",
                         (double)w->keys_skipped);
    status_metric_global(out, "shake_writer_commands_written_total", "counter",
                         "Stream commands applied.", (double)w->commands_written);
    status_metric_global(out, "shake_writer_commands_sent_total", "counter",
                         "Commands sent to the target.", (double)w->commands_sent);
    status_metric_global(out, "shake_writer_bytes_sent_total", "counter",
                         "Bytes of commands sent to the target.", (double)w->bytes_sent);
    status_metric_global(out, "shake_writer_redirects_total", "counter",
                         "MOVED and ASK redirections followed.", (double)w->redirects);
    status_metric_global(out, "shake_writer_retries_total", "counter", "Commands sent again.",
                         (double)w->retries);
    status_metric_global(out, "shake_key_errors_total", "counter",
                         "Keys or commands the target refused.", (double)w->errors);
    status_metric_global(out, "shake_commands_skipped_total", "counter",
                         "Unsupported commands skipped (on_unsupported = skip).",
                         (double)w->commands_skipped);
    status_metric_global(out, "shake_commands_refused_total", "counter",
                         "Commands the filter could not apply faithfully.",
                         (double)f->commands_refused);
    status_metric_global(out, "shake_keys_filtered_total", "counter", "Keys dropped by the filter.",
                         (double)f->keys_filtered);
    status_metric_global(out, "shake_commands_filtered_total", "counter",
                         "Commands dropped by the filter.", (double)f->commands_filtered);
    status_metric_global(out, "shake_functions_filtered_total", "counter",
                         "Function libraries dropped by the filter.",
                         (double)f->functions_filtered);
}

void status_render_metrics(const struct status *status, struct text_buf *out) {
    status_metric_head(out, "shake_info", "gauge", "Always 1; the labels say what runs.");
    text_buf_printf(out, "shake_info{version=\"%s\",job=\"%s\"} 1\n", SHAKE_VERSION, status->job);
    status_metric_global(out, "shake_uptime_seconds", "gauge", "Seconds since the job started.",
                         (double)(uint64_t)(status->uptime * 1000.0) / 1000.0);
    status_metric_global(out, "shake_caught_up", "gauge",
                         "1 when the target holds every write shake has received.",
                         status->caught_up ? 1 : 0);
    status_metric_shard_labels(out, status);
    status_metric_shard_values(out, status);
    status_metric_totals(out, status);
}

/* ---- the endpoint ------------------------------------------------------------------- */

static void status_on_request(void *ctx, const char *path, struct http_reply *reply) {
    struct status_server *server = ctx;
    int json = strcmp(path, "/status") == 0, metrics = strcmp(path, "/metrics") == 0;
    if (!json && !metrics) {
        reply->code = 404;
        text_buf_puts(&reply->body, "not found: try /status or /metrics\n");
        return;
    }
    server->refresh(server->ctx);
    status_update(server->status, progress_now());
    if (json) {
        reply->content_type = "application/json";
        status_render_json(server->status, &reply->body);
    } else {
        reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
        status_render_metrics(server->status, &reply->body);
    }
}

struct status_server *status_server_start(struct ev_loop *loop, const struct conf_shake *conf,
                                          struct status *status, void (*refresh)(void *ctx),
                                          void *ctx) {
    char err[512];
    if (conf->status_host == NULL) return NULL;
    struct status_server *server = calloc(1, sizeof(*server));
    if (server == NULL) return NULL;
    server->status = status;
    server->refresh = refresh;
    server->ctx = ctx;
    server->http = http_server_new(loop, conf->status_host, conf->status_port, status_on_request,
                                   server, err, sizeof(err));
    if (server->http == NULL) {
        if (conf->status_explicit)
            log_warn("status endpoint off: %s", err);
        else
            log_info("status endpoint off: %s (set [shake] status to choose another address)", err);
        free(server);
        return NULL;
    }
    log_info("status: http://%s:%d/status and /metrics", conf->status_host,
             http_server_port(server->http));
    if (!http_server_is_loopback(server->http))
        log_warn("status endpoint %s:%d is not a loopback address: anyone who can reach it can "
                 "read shard addresses and offsets",
                 conf->status_host, conf->status_port);
    return server;
}

void status_server_free(struct status_server *server) {
    if (server == NULL) return;
    http_server_free(server->http);
    free(server);
}
