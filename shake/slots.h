/* slots.h -- the Redis Cluster slot map, learned from CLUSTER SLOTS, and the
 * parsing of MOVED / ASK redirections.
 *
 * Pure: no I/O. The writer asks for CLUSTER SLOTS and hands the reply here; it
 * then maps slots to its own connections by master index.
 *
 * Ownership: a slots_map owns its masters' host strings; slots_map_free().
 */
#ifndef SHAKE_SLOTS_H
#define SHAKE_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "shake/crc16.h"

#define SLOTS_HOST_MAX 256

struct slots_master {
    char *host;
    int port;
    int replicas; /* replicas listed with its slot ranges (the fewest over its ranges);
                     CLUSTER SLOTS leaves out replicas the cluster flags as failed */
};

struct slots_map {
    struct slots_master *masters; /* distinct masters, in reply order */
    int master_count;
    int16_t owner[CLUSTER_SLOTS]; /* index into masters, -1 when no master serves it */
};

void slots_map_init(struct slots_map *map);
void slots_map_free(struct slots_map *map);

/* Fill `map` from a CLUSTER SLOTS reply (a redisReply). An empty host in the
 * reply means "the node you asked", so `asked_host` stands for it. Returns 0, or -1
 * with a message in err (the map is then left empty). */
int slots_map_parse(struct slots_map *map, const void *reply, const char *asked_host, char *err,
                    size_t errlen);

/* The master index serving a slot, -1 when none. */
int slots_map_owner(const struct slots_map *map, unsigned slot);
/* The index of the master at host:port, -1 when it is not one. */
int slots_map_find(const struct slots_map *map, const char *host, int port);
/* Number of slots with a master. */
unsigned slots_map_covered(const struct slots_map *map);

enum slots_redirect_kind {
    SLOTS_REDIRECT_MOVED,
    SLOTS_REDIRECT_ASK,
};

/* Parse an error reply "MOVED 3999 127.0.0.1:6381" or "ASK 3999 host:port"
 * (IPv6 hosts are split at the last ':'). An empty host (":6381") is left
 * empty for the caller to replace. Returns 0, or -1 when the text is neither. */
int slots_parse_redirect(const char *text, size_t len, enum slots_redirect_kind *kind,
                         unsigned *slot, char *host, size_t hostlen, int *port);

#endif
