/* replica.h -- reads one source shard the way a Redis replica does.
 *
 * Connects to the shard's master, does the replica handshake (PING, AUTH,
 * REPLCONF listening-port, REPLCONF capa eof capa psync2, PSYNC), receives the RDB
 * (either framing: `$<len>` or diskless `$EOF:<mark>`) and decodes it while it
 * arrives, then parses the command stream. The caller pulls entries with
 * replica_next(); the replica stops reading the socket while too much is buffered.
 * It sends REPLCONF ACK every second and answers REPLCONF GETACK.
 *
 * A dropped link is reconnected with back-off and resumed with PSYNC from the last
 * command parsed (no full sync when the master's backlog still covers it).
 *
 * Knows nothing of targets: it produces entries only.
 */
#ifndef SHAKE_REPLICA_H
#define SHAKE_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "reader/rdb_decode.h"
#include "shake/entry.h"

struct ev_loop;
struct replica;
struct tls_context;

enum replica_phase {
    REPLICA_CONNECTING,
    REPLICA_HANDSHAKE,
    REPLICA_WAITING_BGSAVE, /* PSYNC answered FULLRESYNC; the master is making the RDB */
    REPLICA_RDB,
    REPLICA_STREAM,
    REPLICA_RECONNECTING,
    REPLICA_ERROR,
};

struct replica_options {
    int source;                 /* copied into every entry */
    const char *host;
    int port;
    const char *username;       /* NULL: AUTH with the password only */
    const char *password;       /* NULL: no AUTH */
    int connect_timeout_ms;
    const struct tls_context *tls; /* NULL: plain TCP; else must outlive the replica */
    int listening_port;         /* announced with REPLCONF listening-port */
    /* Where to resume: replid NULL (or empty) asks for a full sync. */
    const char *replid;
    uint64_t offset;            /* bytes of the stream already applied */
    int db;                     /* db selected at that offset */
    size_t max_buffered;        /* bytes held in memory before the stream spools / the
                                   RDB phase stops reading the socket */
    const char *spool_dir;      /* where the stream spools while the writer is behind;
                                   NULL: no spool, stop reading instead */
    uint64_t spool_max;         /* stop reading when this much is spooled */
    struct rdb_decoder_options rdb;
};

struct replica_callbacks {
    void *ctx;
    /* Entries may be ready: call replica_next(). */
    void (*readable)(void *ctx);
    /* A full sync starts (the first one, or a new one because PSYNC could not
     * continue): `reason` says why. Entries of the RDB follow. */
    void (*full_sync)(void *ctx, const char *replid, uint64_t offset, const char *reason);
    /* The command stream starts: after the RDB, or `continued` by a partial resync
     * (PSYNC answered +CONTINUE). */
    void (*stream_started)(void *ctx, int continued);
    /* The link broke or the master was not ready; shake retries with back-off.
     * `attempts` counts the retries since the stream last ran, so the owner can
     * look for the shard elsewhere (a failover) with replica_set_address. May be
     * NULL. */
    void (*reconnecting)(void *ctx, const char *reason, int attempts);
    /* A fatal error (wrong password, missing permission, corrupt RDB): the message
     * names the shard's address. The replica stops. */
    void (*failed)(void *ctx, const char *message);
};

enum replica_status {
    REPLICA_ENTRY,     /* *out holds an entry owned by the caller */
    REPLICA_NEED_MORE, /* nothing buffered: `readable` will say when */
    REPLICA_FAILED,    /* see the `failed` callback */
};

struct replica_progress {
    enum replica_phase phase;
    char replid[41];
    uint64_t rdb_bytes_done;
    uint64_t rdb_bytes_total;   /* 0 when unknown (diskless transfer) */
    uint64_t received_offset;   /* end of the last command parsed */
    int db;                     /* db selected at received_offset */
    uint64_t full_syncs;
    uint64_t partial_syncs;
    uint64_t reconnects;
    uint64_t buffered_bytes;    /* received and not yet parsed (RDB or stream bytes) */
};

struct replica *replica_new(struct ev_loop *loop, const struct replica_options *options,
                            const struct replica_callbacks *callbacks);
void replica_free(struct replica *replica);
void replica_start(struct replica *replica);
/* Stop reading; the connection is closed. */
void replica_stop(struct replica *replica);
/* Point the replica at another node of the same shard (e.g. a promoted replica):
 * the next reconnect goes there and continues with PSYNC from where it was.
 * Returns 0, or -1 when out of memory. */
int replica_set_address(struct replica *replica, const char *host, int port);
enum replica_status replica_next(struct replica *replica, struct shake_entry **out);
void replica_get_progress(const struct replica *replica, struct replica_progress *progress);
const char *replica_phase_name(enum replica_phase phase);

#endif
