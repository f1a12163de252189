/* discover.c -- finds the source's shards (see discover.h).
 *
 * A small state machine over one conn in RESP mode: CONNECT -> AUTH -> CLUSTER
 * SLOTS -> (standalone) ROLE. A user that may not run CLUSTER SLOTS is asked HELLO
 * (which no ACL refuses) whether the server is a cluster: only a standalone server
 * goes on without the slot map. A candidate that cannot be reached, or that is a
 * replica, hands over to the next one.
 */
#include "reader/discover.h"

#include <hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shake/conn.h"
#include "shake/slots.h"

enum discover_step {
    DISCOVER_AUTH,
    DISCOVER_CLUSTER_SLOTS,
    DISCOVER_HELLO, /* CLUSTER SLOTS was refused: is this a cluster node? */
    DISCOVER_ROLE,
};

struct discover {
    struct ev_loop *loop;
    const struct conf_source *source;
    discover_done_fn done;
    void *ctx;
    int candidate;             /* index into source->addresses */
    enum discover_step step;
    struct conn *conn;         /* owned, for the current candidate */
    char last_error[512];
    char refused[256];         /* the NOPERM reply to CLUSTER SLOTS, if any */
};

static void discover_try_candidate(struct discover *discover);

static void discover_finish(struct discover *discover, struct discover_result *result,
                            const char *error) {
    discover->done(discover->ctx, result, error);
    conn_free(discover->conn);
    free(discover);
}

void discover_result_free(struct discover_result *result) {
    if (result == NULL) return;
    for (int i = 0; i < result->shard_count; i++) free(result->shards[i].host);
    free(result->shards);
    free(result);
}

static const struct conf_address *discover_address(const struct discover *discover) {
    return &discover->source->addresses[discover->candidate];
}

/* This candidate is unusable: remember why and try the next one. */
static void discover_next_candidate(struct discover *discover, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void discover_next_candidate(struct discover *discover, const char *fmt, ...) {
    char why[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    const struct conf_address *address = discover_address(discover);
    snprintf(discover->last_error, sizeof(discover->last_error), "source %s:%d: %s",
             address->host, address->port, why);
    conn_free(discover->conn);
    discover->conn = NULL;
    discover->candidate++;
    discover_try_candidate(discover);
}

static void discover_send(struct discover *discover, const char *fmt, ...) {
    char *command = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&command, fmt, ap);
    va_end(ap);
    if (len > 0) conn_send(discover->conn, command, (size_t)len);
    free(command);
}

static struct discover_result *discover_single(const struct conf_address *address) {
    struct discover_result *result = calloc(1, sizeof(*result));
    if (result == NULL) return NULL;
    result->shards = calloc(1, sizeof(*result->shards));
    if (result->shards == NULL || (result->shards[0].host = strdup(address->host)) == NULL) {
        discover_result_free(result);
        return NULL;
    }
    snprintf(result->shards[0].name, DISCOVER_NAME_MAX, "standalone");
    result->shards[0].port = address->port;
    result->shard_count = 1;
    return result;
}

/* One shard per master, named by the first slot range it serves. */
static struct discover_result *discover_from_slots(const struct slots_map *map) {
    struct discover_result *result = calloc(1, sizeof(*result));
    if (result == NULL) return NULL;
    result->is_cluster = 1;
    result->shards = calloc((size_t)map->master_count, sizeof(*result->shards));
    if (result->shards == NULL) goto oom;
    for (int m = 0; m < map->master_count; m++) {
        struct discover_shard *shard = &result->shards[result->shard_count];
        int first = -1;
        for (unsigned slot = 0; slot < CLUSTER_SLOTS && first < 0; slot++)
            if (map->owner[slot] == m) first = (int)slot;
        if (first < 0) continue; /* a master with no slots holds no keys */
        unsigned last = (unsigned)first;
        while (last + 1 < CLUSTER_SLOTS && map->owner[last + 1] == m) last++;
        snprintf(shard->name, DISCOVER_NAME_MAX, "slots-%d-%u", first, last);
        shard->host = strdup(map->masters[m].host);
        if (shard->host == NULL) goto oom;
        shard->port = map->masters[m].port;
        result->shard_count++;
    }
    return result;
oom:
    discover_result_free(result);
    return NULL;
}

/* The candidate is a standalone server: with one candidate it is the shard; with
 * several, ROLE tells whether it is the master. */
static void discover_standalone(struct discover *discover) {
    if (discover->source->address_count == 1) {
        discover_finish(discover, discover_single(discover_address(discover)), NULL);
        return;
    }
    discover->step = DISCOVER_ROLE;
    discover_send(discover, "ROLE");
}

/* HELLO's "mode" field after CLUSTER SLOTS was refused. A cluster node cannot be
 * replicated without the slot map (one master would be taken for the whole
 * source), so that is an error naming the refused command. */
static void discover_on_hello(struct discover *discover, redisReply *reply) {
    const struct conf_address *address = discover_address(discover);
    const char *mode = NULL;
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            redisReply *key = reply->element[i], *value = reply->element[i + 1];
            if (key->type == REDIS_REPLY_STRING && strcmp(key->str, "mode") == 0 &&
                (value->type == REDIS_REPLY_STRING || value->type == REDIS_REPLY_STATUS))
                mode = value->str;
        }
    }
    if (mode != NULL && strcmp(mode, "standalone") == 0) {
        discover_standalone(discover);
        return;
    }
    char message[640];
    snprintf(message, sizeof(message),
             "source %s:%d: CLUSTER SLOTS refused: %s (%s; grant the source user "
             "+cluster|slots)",
             address->host, address->port, discover->refused,
             mode != NULL ? "the server is a cluster node"
                          : "and HELLO could not tell whether the server is a cluster");
    discover_finish(discover, NULL, message);
}

static void discover_on_cluster_slots(struct discover *discover, redisReply *reply) {
    const struct conf_address *address = discover_address(discover);
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strstr(reply->str, "cluster support disabled") == NULL &&
            strncmp(reply->str, "NOPERM", 6) != 0) {
            discover_next_candidate(discover, "CLUSTER SLOTS: %s", reply->str);
            return;
        }
        if (strncmp(reply->str, "NOPERM", 6) == 0) {
            snprintf(discover->refused, sizeof(discover->refused), "%s", reply->str);
            discover->step = DISCOVER_HELLO;
            discover_send(discover, "HELLO 2");
            return;
        }
        discover_standalone(discover);
        return;
    }
    struct slots_map map;
    char err[256];
    slots_map_init(&map);
    if (slots_map_parse(&map, reply, address->host, err, sizeof(err)) != 0) {
        discover_next_candidate(discover, "CLUSTER SLOTS: %s", err);
        return;
    }
    struct discover_result *result = discover_from_slots(&map);
    slots_map_free(&map);
    discover_finish(discover, result, result ? NULL : "out of memory");
}

static void discover_on_role(struct discover *discover, redisReply *reply) {
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "master") != 0) {
        discover_next_candidate(discover, "is a %s, not a master", reply->element[0]->str);
        return;
    }
    discover_finish(discover, discover_single(discover_address(discover)), NULL);
}

static void discover_on_reply(struct discover *discover, redisReply *reply) {
    switch (discover->step) {
    case DISCOVER_AUTH:
        if (reply->type == REDIS_REPLY_ERROR) {
            const struct conf_address *address = discover_address(discover);
            char message[512];
            snprintf(message, sizeof(message), "source %s:%d: authentication failed: %s",
                     address->host, address->port, reply->str);
            discover_finish(discover, NULL, message);
            return;
        }
        discover->step = DISCOVER_CLUSTER_SLOTS;
        discover_send(discover, "CLUSTER SLOTS");
        return;
    case DISCOVER_CLUSTER_SLOTS: discover_on_cluster_slots(discover, reply); return;
    case DISCOVER_HELLO: discover_on_hello(discover, reply); return;
    case DISCOVER_ROLE: discover_on_role(discover, reply); return;
    }
}

static void discover_on_readable(void *ctx, struct conn *conn) {
    struct discover *discover = ctx;
    void *reply;
    char err[256];
    int rc = conn_get_reply(conn, &reply, err, sizeof(err));
    if (rc < 0) {
        discover_next_candidate(discover, "%s", err);
        return;
    }
    if (rc == 0) return;
    /* Each step sends one command and waits, so one reply per event is enough;
     * the reply may end this object, so nothing touches it afterwards. */
    discover_on_reply(discover, reply);
    freeReplyObject(reply);
}

static void discover_on_connected(void *ctx, struct conn *conn) {
    (void)conn;
    struct discover *discover = ctx;
    const struct conf_source *source = discover->source;
    if (source->password != NULL) {
        discover->step = DISCOVER_AUTH;
        if (source->username != NULL)
            discover_send(discover, "AUTH %s %s", source->username, source->password);
        else discover_send(discover, "AUTH %s", source->password);
        return;
    }
    discover->step = DISCOVER_CLUSTER_SLOTS;
    discover_send(discover, "CLUSTER SLOTS");
}

static void discover_on_error(void *ctx, struct conn *conn, const char *message) {
    (void)conn;
    discover_next_candidate(ctx, "%s", message);
}

static void discover_try_candidate(struct discover *discover) {
    if (discover->candidate >= discover->source->address_count) {
        discover_finish(discover, NULL, discover->last_error);
        return;
    }
    const struct conf_address *address = discover_address(discover);
    struct conn_callbacks callbacks = {
        .ctx = discover,
        .connected = discover_on_connected,
        .readable = discover_on_readable,
        .error = discover_on_error,
    };
    char err[256];
    discover->conn = conn_new(discover->loop, address->host, address->port,
                              discover->source->connect_timeout_ms, &callbacks);
    if (discover->conn == NULL) {
        discover_finish(discover, NULL, "out of memory");
        return;
    }
    conn_set_tls(discover->conn, discover->source->tls.context);
    if (conn_connect(discover->conn, err, sizeof(err)) != 0)
        discover_next_candidate(discover, "%s", err);
}

int discover_start(struct ev_loop *loop, const struct conf_source *source, discover_done_fn done,
                   void *ctx) {
    struct discover *discover = calloc(1, sizeof(*discover));
    if (discover == NULL) return -1;
    discover->loop = loop;
    discover->source = source;
    discover->done = done;
    discover->ctx = ctx;
    snprintf(discover->last_error, sizeof(discover->last_error), "no source address");
    discover_try_candidate(discover);
    return 0;
}
