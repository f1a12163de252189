/* status_client.c -- see status_client.h. */
#include "shake/status_client.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shake/json.h"

#define STATUS_CLIENT_SHARDS_MAX 1024

/* One table row, gathered from the metrics of a shard. */
struct status_row {
    char name[128];
    char phase[32];
    double rdb_done, rdb_total, received, acked, lag_bytes, lag_seconds, ops;
};

struct status_table {
    struct status_row *rows; /* owned */
    int count;
    double caught_up, in_flight;
};

int status_client_parse_args(int argc, char **argv, const char **conf_path, int *json, char *err,
                             size_t errlen) {
    *conf_path = NULL;
    *json = 0;
    for (int i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "-conf") == 0 || strcmp(argv[i], "--conf") == 0) && i + 1 < argc)
            *conf_path = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            *json = 1;
        else {
            snprintf(err, errlen,
                     "status: unexpected argument '%s' (usage: shake status -conf "
                     "FILE [--json])",
                     argv[i]);
            return -1;
        }
    }
    if (*conf_path == NULL) {
        snprintf(err, errlen, "status: expected -conf FILE");
        return -1;
    }
    return 0;
}

static int64_t status_client_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for `events` on `fd` until `deadline`. Returns 0 when ready, -1 on timeout. */
static int status_client_wait(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - status_client_now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0) return 0;
        if (rc < 0 && errno != EINTR) return -1;
    }
}

/* Connect to host:port within the deadline. Returns the socket or -1 with `err`. */
static int status_client_connect(const char *host, int port, int64_t deadline, char *err,
                                 size_t errlen) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *found;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int error = fd < 0 ? errno : 0;
    if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
        error = errno;
        if (error == EINPROGRESS) {
            socklen_t len = sizeof(error);
            error = status_client_wait(fd, POLLOUT, deadline) != 0 ? ETIMEDOUT : 0;
            if (error == 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
        }
    }
    freeaddrinfo(found);
    if (error != 0) {
        snprintf(err, errlen, "%s", strerror(error));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Send the request and read the whole reply (the server closes). */
static int status_client_exchange(int fd, const char *request, struct text_buf *reply,
                                  int64_t deadline, char *err, size_t errlen) {
    size_t sent = 0, len = strlen(request);
    while (sent < len) {
        ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "send: %s", strerror(errno));
            return -1;
        } else if (status_client_wait(fd, POLLOUT, deadline) != 0) {
            snprintf(err, errlen, "timed out sending the request");
            return -1;
        }
    }
    char block[65536];
    for (;;) {
        ssize_t n = recv(fd, block, sizeof(block), 0);
        if (n == 0) return 0;
        if (n > 0) {
            text_buf_append(reply, block, (size_t)n);
            if (reply->failed || reply->len > STATUS_CLIENT_MAX_REPLY) {
                snprintf(err, errlen, "reply too large");
                return -1;
            }
        } else if (errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "recv: %s", strerror(errno));
            return -1;
        } else if (status_client_wait(fd, POLLIN, deadline) != 0) {
            snprintf(err, errlen, "timed out waiting for the reply");
            return -1;
        }
    }
}

/* GET `path`; on success *body points into `reply` after the head. */
static int status_client_get(const struct conf_shake *conf, const char *path,
                             struct text_buf *reply, const char **body, char *err, size_t errlen) {
    char why[256], request[512];
    int64_t deadline = status_client_now_ms() + STATUS_CLIENT_TIMEOUT_MS;
    int fd =
        status_client_connect(conf->status_host, conf->status_port, deadline, why, sizeof(why));
    if (fd < 0) {
        snprintf(err, errlen,
                 "shake is not reachable at %s:%d (%s): is it running with this "
                 "config?",
                 conf->status_host, conf->status_port, why);
        return -1;
    }
    snprintf(request, sizeof(request),
             "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: shake-status\r\nConnection: "
             "close\r\n\r\n",
             path, conf->status_host, conf->status_port);
    int rc = status_client_exchange(fd, request, reply, deadline, why, sizeof(why));
    close(fd);
    const char *end = rc == 0 && reply->data ? strstr(reply->data, "\r\n\r\n") : NULL;
    if (rc != 0 || end == NULL || strncmp(reply->data, "HTTP/1.1 200 ", 13) != 0) {
        snprintf(err, errlen, "shake is not reachable at %s:%d: %s", conf->status_host,
                 conf->status_port, rc != 0 ? why : "not a shake status endpoint");
        return -1;
    }
    *body = end + 4;
    return 0;
}

/* ---- the table, from the metrics ----------------------------------------------------- */

/* Read `key="value"` pairs; copy the value of `want` (escapes undone) into `out`. */
static void status_client_label(const char *labels, const char *want, char *out, size_t len) {
    size_t want_len = strlen(want), at = 0;
    out[0] = '\0';
    const char *p = labels;
    while (*p != '\0' && *p != '}') {
        const char *eq = strchr(p, '=');
        if (eq == NULL || eq[1] != '"') return;
        int match = (size_t)(eq - p) == want_len && strncmp(p, want, want_len) == 0;
        for (p = eq + 2; *p != '\0' && *p != '"'; p++) {
            char c = *p;
            if (c == '\\' && p[1] != '\0') c = *++p == 'n' ? '\n' : *p;
            if (match && at + 1 < len) out[at++] = c;
        }
        if (match) {
            out[at] = '\0';
            return;
        }
        if (*p == '"') p++;
        if (*p == ',') p++;
    }
}

static struct status_row *status_client_row(struct status_table *table, const char *name) {
    for (int i = 0; i < table->count; i++)
        if (strcmp(table->rows[i].name, name) == 0) return &table->rows[i];
    if (table->count == STATUS_CLIENT_SHARDS_MAX) return NULL;
    struct status_row *row = &table->rows[table->count++];
    memset(row, 0, sizeof(*row));
    snprintf(row->name, sizeof(row->name), "%s", name);
    return row;
}

/* Take one sample line into the table. */
static void status_client_sample(struct status_table *table, const char *line) {
    char name[128], shard[128], phase[32];
    size_t name_len = strcspn(line, "{ ");
    if (name_len == 0 || name_len >= sizeof(name)) return;
    memcpy(name, line, name_len);
    name[name_len] = '\0';
    const char *labels = line[name_len] == '{' ? line + name_len + 1 : "";
    const char *value_at = strrchr(line, ' ');
    double value = value_at ? strtod(value_at + 1, NULL) : 0;
    if (strcmp(name, "shake_caught_up") == 0) table->caught_up = value;
    if (strcmp(name, "shake_writer_in_flight_entries") == 0) table->in_flight = value;
    status_client_label(labels, "shard", shard, sizeof(shard));
    if (shard[0] == '\0') return;
    struct status_row *row = status_client_row(table, shard);
    if (row == NULL) return;
    status_client_label(labels, "phase", phase, sizeof(phase));
    if (strcmp(name, "shake_shard_phase") == 0 && value == 1)
        snprintf(row->phase, sizeof(row->phase), "%s", phase);
    struct {
        const char *name;
        double *slot;
    } fields[] = {
        {"shake_shard_rdb_bytes_done", &row->rdb_done},
        {"shake_shard_rdb_bytes_total", &row->rdb_total},
        {"shake_shard_received_offset_bytes", &row->received},
        {"shake_shard_acked_offset_bytes", &row->acked},
        {"shake_shard_lag_bytes", &row->lag_bytes},
        {"shake_shard_lag_seconds", &row->lag_seconds},
        {"shake_shard_ops_per_second", &row->ops},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcmp(name, fields[i].name) == 0) *fields[i].slot = value;
}

static void status_client_parse_metrics(struct status_table *table, char *text) {
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] != '#') status_client_sample(table, line);
    }
}

static void status_client_print_table(const struct status_table *table, FILE *out) {
    int width = 5;
    for (int i = 0; i < table->count; i++) {
        int len = (int)strlen(table->rows[i].name);
        if (len > width) width = len;
    }
    fprintf(out, "%-*s  %-14s  %6s  %15s  %15s  %12s  %8s  %9s\n", width, "shard", "phase", "rdb",
            "received", "acked", "lag bytes", "lag ms", "ops/s");
    for (int i = 0; i < table->count; i++) {
        const struct status_row *row = &table->rows[i];
        char rdb[16] = "-";
        if (row->rdb_total > 0)
            snprintf(rdb, sizeof(rdb), "%.1f%%", 100.0 * row->rdb_done / row->rdb_total);
        fprintf(out, "%-*s  %-14s  %6s  %15.0f  %15.0f  %12.0f  %8.0f  %9.0f\n", width, row->name,
                row->phase, rdb, row->received, row->acked, row->lag_bytes,
                row->lag_seconds * 1000.0, row->ops);
    }
    fprintf(out, "caught up: %s (writer: %.0f entries in flight)\n",
            table->caught_up == 1 ? "yes" : "no", table->in_flight);
}

static int status_client_table(const struct conf_shake *conf, FILE *out, char *err, size_t errlen) {
    struct text_buf reply;
    const char *body;
    text_buf_init(&reply);
    if (status_client_get(conf, "/metrics", &reply, &body, err, errlen) != 0) {
        text_buf_free(&reply);
        return STATUS_EXIT_UNREACHABLE;
    }
    struct status_table table = {.rows =
                                     calloc(STATUS_CLIENT_SHARDS_MAX, sizeof(struct status_row))};
    if (table.rows == NULL) {
        text_buf_free(&reply);
        snprintf(err, errlen, "out of memory");
        return STATUS_EXIT_UNREACHABLE;
    }
    status_client_parse_metrics(&table, (char *)body);
    status_client_print_table(&table, out);
    int caught_up = table.caught_up == 1;
    free(table.rows);
    text_buf_free(&reply);
    return caught_up ? STATUS_EXIT_CAUGHT_UP : STATUS_EXIT_BEHIND;
}

/* --json: the body as it came; caught_up is the first key the server writes. */
static int status_client_json(const struct conf_shake *conf, FILE *out, char *err, size_t errlen) {
    struct text_buf reply;
    const char *body;
    text_buf_init(&reply);
    if (status_client_get(conf, "/status", &reply, &body, err, errlen) != 0) {
        text_buf_free(&reply);
        return STATUS_EXIT_UNREACHABLE;
    }
    fputs(body, out);
    int caught_up = strncmp(body, "{\"caught_up\":true", 17) == 0;
    text_buf_free(&reply);
    return caught_up ? STATUS_EXIT_CAUGHT_UP : STATUS_EXIT_BEHIND;
}

int status_client_run(const struct conf_shake *conf, int json, FILE *out, char *err,
                      size_t errlen) {
    err[0] = '\0';
    if (conf->status_host == NULL) {
        snprintf(err, errlen,
                 "shake is not reachable: the status endpoint is off ([shake] "
                 "status is empty in the config)");
        return STATUS_EXIT_UNREACHABLE;
    }
    return json ? status_client_json(conf, out, err, errlen)
                : status_client_table(conf, out, err, errlen);
}
