/* writer.h -- loads entries into the target, standalone or Redis Cluster.
 *
 * The writer connects (non-blocking, on the caller's libev loop), learns what the
 * target is (cluster or standalone, version, RDB version, proto-max-bulk-len), then
 * accepts entries. It routes each key by CRC16 slot to its master over one pipelined
 * connection per master, follows MOVED/ASK, retries TRYAGAIN/CLUSTERDOWN with
 * back-off, reconnects and resends what had no reply. Every reply is checked.
 *
 * On a master with replicas (`[target] wait_replicas`), an answered command is
 * acknowledged only once a WAIT confirms it on a replica; until then it is held,
 * and resent to the slot's new master when the node is lost and the slot map says
 * its slots moved (a failover): a master that dies before replicating loses no
 * write shake counted as done.
 *
 * It knows entries only: never which reader made them.
 */
#ifndef SHAKE_WRITER_H
#define SHAKE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "shake/entry.h"

struct ev_loop;
struct writer;

struct writer_target_info {
    int is_cluster;
    int master_count;
    int version_major, version_minor, version_patch;
    int rdb_version;           /* highest RDB version the target's RESTORE accepts */
    uint64_t restorable_types; /* bit t: the target can RESTORE RDB type t */
    size_t proto_max_bulk_len;
    uint64_t keys;             /* keys held by the target when probed (all dbs) */
    int command_table_builtin; /* the target refused `COMMAND` or its reply was unreadable:
                                  commands are routed with the built-in table */
};

struct writer_stats {
    uint64_t keys_written; /* keys whose last command was acknowledged */
    uint64_t keys_skipped; /* on_existing = skip and the target had the key */
    uint64_t commands_sent;
    uint64_t bytes_sent;
    uint64_t errors;             /* error replies that failed a key */
    uint64_t redirects;          /* MOVED + ASK followed */
    uint64_t retries;            /* TRYAGAIN / CLUSTERDOWN / LOADING / reconnect resends */
    uint64_t commands_written;   /* CMD entries applied: every command answered, none
                                    failed (dropped and skipped entries not counted) */
    uint64_t commands_skipped;   /* unsupported commands skipped (on_unsupported = skip) */
    uint64_t transactions_split; /* MULTI/EXEC applied command by command (keys in
                                    several slots of a cluster target) */
    uint64_t renames_emulated;   /* cross-slot RENAME/RENAMENX done with DUMP/RESTORE/DEL */
};

struct writer_callbacks {
    void *ctx;
    /* The target was probed and every master connection is up. */
    void (*ready)(void *ctx);
    /* There is room again after writer_is_full() said no, or all work is done. */
    void (*drained)(void *ctx);
    /* A fatal error: the message names the node and, where known, the key. The
     * writer stops; entries not yet acknowledged are not written. */
    void (*failed)(void *ctx, const char *message);
    /* The target refused one key (an error reply other than the fatal ones): the
     * message names the node, the key and the reply. The job goes on. */
    void (*key_error)(void *ctx, const char *message);
    /* Every entry of `source` submitted up to and including the CMD entry whose
     * offset is `offset` has been answered by the target (in submit order): that
     * offset can be checkpointed. May be NULL. */
    void (*acked)(void *ctx, int source, uint64_t offset);
    /* Something an operator should see in the log, the job going on: a target
     * node's connection lost or back, commands resent to a slot's new master after a
     * failover, replicas that do not confirm writes. The message names the nodes.
     * May be NULL. */
    void (*notice)(void *ctx, const char *message);
};

/* `conf` must outlive the writer. */
struct writer *writer_new(struct ev_loop *loop, const struct conf_target *conf,
                          const struct writer_callbacks *callbacks);
/* Safe to call from inside a writer callback (the release is then deferred
 * until the callback returns). */
void writer_free(struct writer *writer);
/* How long a node may keep failing (reconnects, TRYAGAIN/CLUSTERDOWN/LOADING)
 * before the writer gives up; default 60000 ms. */
void writer_set_give_up_ms(struct writer *writer, int give_up_ms);

/* Start connecting and probing; `ready` or `failed` follows. */
void writer_start(struct writer *writer);
const struct writer_target_info *writer_target_info(const struct writer *writer);

/* Hand an entry over; the writer owns it from now on. Returns 0, or -1 with a
 * message in `err` when the entry can never be written (e.g. a db other than 0 on
 * a cluster target, a KEY whose RDB type the target cannot RESTORE or whose
 * RESTORE exceeds proto-max-bulk-len, a CMD the target cannot apply faithfully
 * with on_unsupported = error: the message names the command and its keys, a CMD
 * entry with a negative source, or the writer is not ready / has failed); the
 * writer does not keep it then and the caller frees it.
 *
 * CMD entries (argv, db = the target db, source, offset = the replication offset
 * just after the command) are routed by their keys' slots: split per slot where
 * that is faithful, RENAME across slots emulated, MULTI ... EXEC buffered and sent
 * whole when it can be (else command by command), PING/REPLCONF/SELECT (and
 * PUBLISH unless forward_publish) dropped. Entries of one source are applied in
 * submit order per key; `acked` reports, per source, the offset of the latest
 * CMD entry up to which every entry of that source (KEY, CHUNK and FUNCTION
 * included) has been answered. `acked` may be called from inside writer_submit
 * (an entry that needs no command completes at once). */
int writer_submit(struct writer *writer, struct shake_entry *entry, char *err, size_t errlen);
/* True when the in-flight bound is reached: stop submitting until `drained`. */
int writer_is_full(const struct writer *writer);
/* True when nothing is queued or awaiting a reply (the commands of a transaction
 * whose EXEC has not been submitted yet wait for it, and do not count). */
int writer_is_idle(const struct writer *writer);
/* Entries submitted and not yet done: queued, awaiting a reply, held behind a
 * RENAME emulation, or buffered in an open transaction. */
size_t writer_in_flight(const struct writer *writer);
const struct writer_stats *writer_stats(const struct writer *writer);

/* What the entries of one source came to (the status shows it per shard). */
struct writer_source_stats {
    uint64_t keys_written;     /* as writer_stats.keys_written, for this source */
    uint64_t commands_written; /* as writer_stats.commands_written, for this source */
};
/* Zeroes when the source has submitted nothing yet. */
void writer_source_stats(const struct writer *writer, int source,
                         struct writer_source_stats *out);

#endif
