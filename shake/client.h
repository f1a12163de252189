/* client.h -- a small blocking-style Redis client for shake's operator commands
 * (`shake cutover`, `shake verify`), and a "side": the masters of a source or a
 * target (CLUSTER SLOTS, or the one standalone node), with keys routed by slot.
 *
 * Every connection is a shake/conn (so TLS comes from the config's tls_* keys);
 * a call runs the shared libev loop until its reply arrives, bounded by the env's
 * timeout. Commands may be pipelined: append several, then take the replies in
 * order. Not for the sync itself, whose readers and writers never block.
 *
 * Errors are one line naming the side and the node ("target 127.0.0.1:7001: GET:
 * timed out after 10000 ms"); a reply that is a Redis error is a reply, not an
 * error: the caller judges it. After a timeout or a broken link the client is
 * closed and every later call fails.
 *
 * Ownership: a client owns its conn and any unread replies; a side owns its slot
 * map and its clients. The env (loop, timeout, interrupt flag) is the caller's.
 */
#ifndef SHAKE_CLIENT_H
#define SHAKE_CLIENT_H

#include <hiredis.h>
#include <stdarg.h>
#include <stddef.h>

#include "conf/conf.h"
#include "shake/slots.h"

struct ev_loop;
struct client;
struct tls_context;

#define CLIENT_ERR_LEN 512

/* What every client of one CLI run shares. */
struct client_env {
    struct ev_loop *loop;
    int timeout_ms;  /* bound on each reply */
    int interrupted; /* set by the CLI's signal watcher: waits give up at once */
};

/* How to log in to one side's nodes. Strings are borrowed from the config. */
struct client_auth {
    const char *username; /* NULL: AUTH password alone */
    const char *password; /* NULL: no AUTH */
    const struct tls_context *tls;
    int connect_timeout_ms;
};

/* Connect and AUTH; `label` ("source", "target") starts every error message.
 * Returns NULL with a message in err. */
struct client *client_open(struct client_env *env, const char *label, const char *host, int port,
                           const struct client_auth *auth, char *err, size_t errlen);
void client_free(struct client *client);
/* "host:port" */
const char *client_address(const struct client *client);
/* The label given to client_open ("source", "target"). */
const char *client_label(const struct client *client);

/* Queue one command; returns 0, or -1 when the client is closed or out of memory. */
int client_append_argv(struct client *client, int argc, const char **argv, const size_t *argvlen);
int client_append(struct client *client, const char *fmt, ...);
/* The next reply, in the order commands were appended (freeReplyObject it), or
 * NULL with a message in err. */
redisReply *client_get_reply(struct client *client, char *err, size_t errlen);
/* append + get. */
redisReply *client_command(struct client *client, char *err, size_t errlen, const char *fmt, ...);
redisReply *client_vcommand(struct client *client, char *err, size_t errlen, const char *fmt,
                            va_list ap);
redisReply *client_command_argv(struct client *client, char *err, size_t errlen, int argc,
                                const char **argv, const size_t *argvlen);
/* SELECT db unless already there. Returns 0, or -1 with a message (an error reply
 * included). */
int client_select(struct client *client, int db, char *err, size_t errlen);
/* Run the loop for `ms` (an interrupt ends it early). */
void client_sleep(struct client_env *env, int ms);

/* One side of the migration: its masters and who serves which slot. */
struct client_side {
    const char *label;
    struct client_env *env;
    struct client_auth auth;
    int is_cluster;
    struct slots_map map;     /* a standalone node is master 0 for every slot */
    struct client **masters;  /* by map index, opened on first use; owned */
};

/* Learn the side from the first reachable address: CLUSTER SLOTS, or a standalone
 * node when cluster support is disabled. Returns 0, or -1 with a message. */
int client_side_open(struct client_side *side, struct client_env *env, const char *label,
                     const struct conf_address *addresses, int address_count,
                     const struct client_auth *auth, char *err, size_t errlen);
void client_side_free(struct client_side *side);
int client_side_count(const struct client_side *side);
/* The client of master `index`, connecting on first use; NULL with a message. */
struct client *client_side_master(struct client_side *side, int index, char *err, size_t errlen);
/* The master index serving `key`, -1 when its slot has none. */
int client_side_index_for_key(const struct client_side *side, const char *key, size_t len);
/* shake's name for the shard of master `index`: "standalone" or
 * "slots-<first>-<last>" (its first slot range, as the sync names it). */
void client_side_shard_name(const struct client_side *side, int index, char *out, size_t len);

/* The auth of a config side. */
struct client_auth client_auth_source(const struct shake_conf *conf);
struct client_auth client_auth_target(const struct shake_conf *conf);

#endif
