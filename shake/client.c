/* client.c -- blocking-style calls over shake/conn, and a side's masters (see
 * client.h).
 *
 * Owns: running the loop until a reply, a connect or a timer arrives; AUTH and
 * SELECT bookkeeping; the side's slot map and lazily opened master clients. Must
 * not print, retry, or follow MOVED: the operator commands report what they meet.
 */
#include "shake/client.h"

#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shake/conn.h"
#include "shake/crc16.h"

struct client {
    struct client_env *env;
    char label[32];
    char address[SLOTS_HOST_MAX + 16];
    struct conn *conn; /* owned */
    int connected;     /* the connect finished */
    int failed;        /* the link is gone: `failure` says why */
    char failure[256];
    int current_db;
};

/* --- the loop --------------------------------------------------------------------- */

static void client_on_connected(void *ctx, struct conn *conn) {
    (void)conn;
    struct client *client = ctx;
    client->connected = 1;
}

static void client_on_readable(void *ctx, struct conn *conn) {
    (void)ctx;
    (void)conn; /* replies are pulled by the waiting call */
}

static void client_on_error(void *ctx, struct conn *conn, const char *message) {
    (void)conn;
    struct client *client = ctx;
    client->failed = 1;
    snprintf(client->failure, sizeof(client->failure), "%s", message);
}

static void client_on_timer(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop;
    (void)revents;
    *(int *)timer->data = 1;
}

/* Give up on the link: a late reply would be taken for the next command's. */
static void client_fail(struct client *client, const char *why) {
    client->failed = 1;
    if (why != client->failure) snprintf(client->failure, sizeof(client->failure), "%s", why);
    conn_close(client->conn);
}

static void client_error(const struct client *client, char *err, size_t errlen,
                         const char *what) {
    snprintf(err, errlen, "%s %s: %s", client->label, client->address, what);
}

/* Run the loop until a reply is parsed (1), or fail (-1) on a broken link, a
 * timeout or an interrupt. `want_connect` waits for the connect instead. */
static int client_wait(struct client *client, redisReply **reply, char *err, size_t errlen) {
    int timed_out = 0;
    ev_timer timer;
    ev_timer_init(&timer, client_on_timer, client->env->timeout_ms / 1000.0, 0.);
    timer.data = &timed_out;
    ev_timer_start(client->env->loop, &timer);
    int rc = -1;
    char why[sizeof(client->failure)];
    for (;;) {
        if (client->failed) break;
        if (reply == NULL && client->connected) {
            rc = 1;
            break;
        }
        if (reply != NULL) {
            void *parsed = NULL;
            int got = conn_get_reply(client->conn, &parsed, why, sizeof(why));
            if (got < 0) {
                client_fail(client, why);
                break;
            }
            if (got > 0) {
                *reply = parsed;
                rc = 1;
                break;
            }
        }
        if (client->env->interrupted) {
            client_fail(client, "interrupted");
            break;
        }
        if (timed_out) {
            snprintf(why, sizeof(why), "%s timed out after %d ms",
                     reply == NULL ? "connect" : "reply", client->env->timeout_ms);
            client_fail(client, why);
            break;
        }
        ev_run(client->env->loop, EVRUN_ONCE);
    }
    ev_timer_stop(client->env->loop, &timer);
    if (rc < 0) client_error(client, err, errlen, client->failure);
    return rc;
}

void client_sleep(struct client_env *env, int ms) {
    int done = 0;
    ev_timer timer;
    ev_timer_init(&timer, client_on_timer, ms / 1000.0, 0.);
    timer.data = &done;
    ev_timer_start(env->loop, &timer);
    while (!done && !env->interrupted)
        ev_run(env->loop, EVRUN_ONCE);
    ev_timer_stop(env->loop, &timer);
}

/* --- one node --------------------------------------------------------------------- */

static int client_login(struct client *client, const struct client_auth *auth, char *err,
                        size_t errlen) {
    if (auth->password == NULL) return 0;
    redisReply *reply =
        auth->username != NULL
            ? client_command(client, err, errlen, "AUTH %s %s", auth->username, auth->password)
            : client_command(client, err, errlen, "AUTH %s", auth->password);
    if (reply == NULL) return -1;
    int ok = reply->type != REDIS_REPLY_ERROR;
    if (!ok) {
        char why[400];
        snprintf(why, sizeof(why), "authentication failed: %s", reply->str);
        client_error(client, err, errlen, why);
    }
    freeReplyObject(reply);
    return ok ? 0 : -1;
}

struct client *client_open(struct client_env *env, const char *label, const char *host, int port,
                           const struct client_auth *auth, char *err, size_t errlen) {
    struct client *client = calloc(1, sizeof(*client));
    if (client == NULL) {
        snprintf(err, errlen, "%s %s:%d: out of memory", label, host, port);
        return NULL;
    }
    client->env = env;
    snprintf(client->label, sizeof(client->label), "%s", label);
    snprintf(client->address, sizeof(client->address), "%s:%d", host, port);
    struct conn_callbacks callbacks = {
        .ctx = client,
        .connected = client_on_connected,
        .readable = client_on_readable,
        .error = client_on_error,
    };
    client->conn = conn_new(env->loop, host, port, auth->connect_timeout_ms, &callbacks);
    if (client->conn == NULL) {
        client_error(client, err, errlen, "out of memory");
        free(client);
        return NULL;
    }
    conn_set_tls(client->conn, auth->tls);
    char why[256];
    if (conn_connect(client->conn, why, sizeof(why)) != 0) {
        client_error(client, err, errlen, why);
        client_free(client);
        return NULL;
    }
    if (client_wait(client, NULL, err, errlen) < 0 || client_login(client, auth, err, errlen) < 0) {
        client_free(client);
        return NULL;
    }
    return client;
}

void client_free(struct client *client) {
    if (client == NULL) return;
    conn_free(client->conn);
    free(client);
}

const char *client_address(const struct client *client) {
    return client->address;
}

const char *client_label(const struct client *client) {
    return client->label;
}

int client_append_argv(struct client *client, int argc, const char **argv, const size_t *argvlen) {
    if (client->failed) return -1;
    char *command = NULL;
    long long len = redisFormatCommandArgv(&command, argc, argv, argvlen);
    if (len < 0) return -1;
    int rc = conn_send(client->conn, command, (size_t)len);
    free(command);
    return rc;
}

static int client_vappend(struct client *client, const char *fmt, va_list ap) {
    if (client->failed) return -1;
    char *command = NULL;
    int len = redisvFormatCommand(&command, fmt, ap);
    if (len < 0) return -1;
    int rc = conn_send(client->conn, command, (size_t)len);
    free(command);
    return rc;
}

int client_append(struct client *client, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = client_vappend(client, fmt, ap);
    va_end(ap);
    return rc;
}

redisReply *client_get_reply(struct client *client, char *err, size_t errlen) {
    redisReply *reply = NULL;
    if (client->failed) {
        client_error(client, err, errlen, client->failure);
        return NULL;
    }
    if (client_wait(client, &reply, err, errlen) < 0) return NULL;
    return reply;
}

redisReply *client_vcommand(struct client *client, char *err, size_t errlen, const char *fmt,
                            va_list ap) {
    if (client_vappend(client, fmt, ap) != 0) {
        client_error(client, err, errlen, client->failed ? client->failure : "out of memory");
        return NULL;
    }
    return client_get_reply(client, err, errlen);
}

redisReply *client_command(struct client *client, char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = client_vcommand(client, err, errlen, fmt, ap);
    va_end(ap);
    return reply;
}

redisReply *client_command_argv(struct client *client, char *err, size_t errlen, int argc,
                                const char **argv, const size_t *argvlen) {
    if (client_append_argv(client, argc, argv, argvlen) != 0) {
        client_error(client, err, errlen, client->failed ? client->failure : "out of memory");
        return NULL;
    }
    return client_get_reply(client, err, errlen);
}

int client_select(struct client *client, int db, char *err, size_t errlen) {
    if (db == client->current_db) return 0;
    redisReply *reply = client_command(client, err, errlen, "SELECT %d", db);
    if (reply == NULL) return -1;
    int ok = reply->type != REDIS_REPLY_ERROR;
    if (ok) client->current_db = db;
    else {
        char why[400];
        snprintf(why, sizeof(why), "SELECT %d: %s", db, reply->str);
        client_error(client, err, errlen, why);
    }
    freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* --- a side ----------------------------------------------------------------------- */

struct client_auth client_auth_source(const struct shake_conf *conf) {
    struct client_auth auth = {conf->source.username, conf->source.password,
                               conf->source.tls.context, conf->source.connect_timeout_ms};
    return auth;
}

struct client_auth client_auth_target(const struct shake_conf *conf) {
    struct client_auth auth = {conf->target.username, conf->target.password,
                               conf->target.tls.context, conf->target.connect_timeout_ms};
    return auth;
}

/* A standalone node serves every slot as master 0. */
static int client_side_standalone(struct client_side *side, const char *host, int port) {
    side->map.masters = calloc(1, sizeof(*side->map.masters));
    if (side->map.masters == NULL || (side->map.masters[0].host = strdup(host)) == NULL) return -1;
    side->map.masters[0].port = port;
    side->map.master_count = 1;
    for (unsigned slot = 0; slot < CLUSTER_SLOTS; slot++)
        side->map.owner[slot] = 0;
    return 0;
}

/* Learn the topology through one reachable node, which becomes a master client
 * when it is one (always, for a standalone node). */
static int client_side_learn(struct client_side *side, struct client *client, const char *host,
                             int port, char *err, size_t errlen) {
    redisReply *reply = client_command(client, err, errlen, "CLUSTER SLOTS");
    if (reply == NULL) return -1;
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "cluster support disabled")) {
        rc = client_side_standalone(side, host, port);
        if (rc != 0) snprintf(err, errlen, "%s %s:%d: out of memory", side->label, host, port);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s %s:%d: CLUSTER SLOTS: %s", side->label, host, port, reply->str);
        rc = -1;
    } else {
        side->is_cluster = 1;
        char why[256];
        if (slots_map_parse(&side->map, reply, host, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s %s:%d: %s", side->label, host, port, why);
            rc = -1;
        }
    }
    freeReplyObject(reply);
    return rc;
}

int client_side_open(struct client_side *side, struct client_env *env, const char *label,
                     const struct conf_address *addresses, int address_count,
                     const struct client_auth *auth, char *err, size_t errlen) {
    memset(side, 0, sizeof(*side));
    side->label = label;
    side->env = env;
    side->auth = *auth;
    slots_map_init(&side->map);
    snprintf(err, errlen, "%s: no address", label);
    for (int i = 0; i < address_count; i++) {
        const struct conf_address *address = &addresses[i];
        struct client *client =
            client_open(env, label, address->host, address->port, auth, err, errlen);
        if (client == NULL) continue;
        int rc = client_side_learn(side, client, address->host, address->port, err, errlen);
        if (rc != 0) {
            client_free(client);
            slots_map_free(&side->map);
            side->is_cluster = 0;
            continue;
        }
        side->masters = calloc((size_t)side->map.master_count, sizeof(*side->masters));
        if (side->masters == NULL) {
            client_free(client);
            snprintf(err, errlen, "%s: out of memory", label);
            return -1;
        }
        err[0] = '\0';
        int index = slots_map_find(&side->map, address->host, address->port);
        if (index >= 0) side->masters[index] = client;
        else client_free(client);
        return 0;
    }
    return -1;
}

void client_side_free(struct client_side *side) {
    for (int i = 0; side->masters != NULL && i < side->map.master_count; i++)
        client_free(side->masters[i]);
    free(side->masters);
    side->masters = NULL;
    slots_map_free(&side->map);
}

int client_side_count(const struct client_side *side) {
    return side->map.master_count;
}

struct client *client_side_master(struct client_side *side, int index, char *err, size_t errlen) {
    if (index < 0 || index >= side->map.master_count) {
        snprintf(err, errlen, "%s: no master serves this slot", side->label);
        return NULL;
    }
    if (side->masters[index] == NULL) {
        const struct slots_master *master = &side->map.masters[index];
        side->masters[index] =
            client_open(side->env, side->label, master->host, master->port, &side->auth, err, errlen);
    }
    return side->masters[index];
}

int client_side_index_for_key(const struct client_side *side, const char *key, size_t len) {
    return slots_map_owner(&side->map, key_hash_slot(key, len));
}

void client_side_shard_name(const struct client_side *side, int index, char *out, size_t len) {
    if (!side->is_cluster) {
        snprintf(out, len, "standalone");
        return;
    }
    int first = -1;
    for (unsigned slot = 0; slot < CLUSTER_SLOTS && first < 0; slot++)
        if (side->map.owner[slot] == index) first = (int)slot;
    if (first < 0) {
        snprintf(out, len, "no-slots");
        return;
    }
    unsigned last = (unsigned)first;
    while (last + 1 < CLUSTER_SLOTS && side->map.owner[last + 1] == index)
        last++;
    snprintf(out, len, "slots-%d-%u", first, last);
}
