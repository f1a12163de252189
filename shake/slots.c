/* slots.c -- CLUSTER SLOTS parsing, slot lookups and MOVED/ASK parsing (see
 * slots.h). Pure: must not talk to a server nor know about connections. */
#include "shake/slots.h"

#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void slots_map_init(struct slots_map *map) {
    map->masters = NULL;
    map->master_count = 0;
    for (unsigned slot = 0; slot < CLUSTER_SLOTS; slot++)
        map->owner[slot] = -1;
}

void slots_map_free(struct slots_map *map) {
    for (int i = 0; i < map->master_count; i++)
        free(map->masters[i].host);
    free(map->masters);
    slots_map_init(map);
}

int slots_map_find(const struct slots_map *map, const char *host, int port) {
    for (int i = 0; i < map->master_count; i++) {
        if (map->masters[i].port == port && strcmp(map->masters[i].host, host) == 0) return i;
    }
    return -1;
}

/* Index of host:port among the masters, added when new. -1 when out of memory. */
static int slots_map_intern(struct slots_map *map, const char *host, size_t host_len, int port) {
    char name[SLOTS_HOST_MAX];
    if (host_len >= sizeof(name)) host_len = sizeof(name) - 1;
    memcpy(name, host, host_len);
    name[host_len] = '\0';
    int index = slots_map_find(map, name, port);
    if (index >= 0) return index;
    struct slots_master *masters =
        realloc(map->masters, (size_t)(map->master_count + 1) * sizeof(*masters));
    if (masters == NULL) return -1;
    map->masters = masters;
    char *copy = strdup(name);
    if (copy == NULL) return -1;
    masters[map->master_count].host = copy;
    masters[map->master_count].port = port;
    masters[map->master_count].replicas = -1; /* no range seen yet */
    return map->master_count++;
}

/* Fail a parse: leave the map empty and say why. */
static int slots_parse_fail(struct slots_map *map, char *err, size_t errlen, const char *why) {
    slots_map_free(map);
    snprintf(err, errlen, "CLUSTER SLOTS: %s", why);
    return -1;
}

int slots_map_parse(struct slots_map *map, const void *reply_ptr, const char *asked_host, char *err,
                    size_t errlen) {
    const redisReply *reply = reply_ptr;
    slots_map_free(map);
    if (reply == NULL) return slots_parse_fail(map, err, errlen, "no reply");
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "CLUSTER SLOTS: %s", reply->str);
        return -1;
    }
    if (reply->type != REDIS_REPLY_ARRAY) return slots_parse_fail(map, err, errlen, "not an array");
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *range = reply->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3)
            return slots_parse_fail(map, err, errlen, "a range is not [start, end, master, ...]");
        const redisReply *start = range->element[0], *end = range->element[1];
        const redisReply *master = range->element[2];
        if (start->type != REDIS_REPLY_INTEGER || end->type != REDIS_REPLY_INTEGER ||
            start->integer < 0 || end->integer >= CLUSTER_SLOTS || start->integer > end->integer)
            return slots_parse_fail(map, err, errlen, "a range has bad slot numbers");
        if (master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
            master->element[0]->type != REDIS_REPLY_STRING ||
            master->element[1]->type != REDIS_REPLY_INTEGER)
            return slots_parse_fail(map, err, errlen, "a master is not [host, port, ...]");
        const char *host = master->element[0]->str;
        size_t host_len = master->element[0]->len;
        if (host_len == 0 && asked_host != NULL) {
            host = asked_host;
            host_len = strlen(asked_host);
        }
        int index = slots_map_intern(map, host, host_len, (int)master->element[1]->integer);
        if (index < 0) return slots_parse_fail(map, err, errlen, "out of memory");
        int replicas = (int)(range->elements - 3);
        if (map->masters[index].replicas < 0 || replicas < map->masters[index].replicas)
            map->masters[index].replicas = replicas;
        for (long long slot = start->integer; slot <= end->integer; slot++) {
            map->owner[slot] = (int16_t)index;
        }
    }
    return 0;
}

int slots_map_owner(const struct slots_map *map, unsigned slot) {
    if (slot >= CLUSTER_SLOTS) return -1;
    return map->owner[slot];
}

unsigned slots_map_covered(const struct slots_map *map) {
    unsigned covered = 0;
    for (unsigned slot = 0; slot < CLUSTER_SLOTS; slot++)
        covered += map->owner[slot] >= 0;
    return covered;
}

int slots_parse_redirect(const char *text, size_t len, enum slots_redirect_kind *kind,
                         unsigned *slot, char *host, size_t hostlen, int *port) {
    size_t pos;
    if (len > 6 && memcmp(text, "MOVED ", 6) == 0) {
        *kind = SLOTS_REDIRECT_MOVED;
        pos = 6;
    } else if (len > 4 && memcmp(text, "ASK ", 4) == 0) {
        *kind = SLOTS_REDIRECT_ASK;
        pos = 4;
    } else {
        return -1;
    }
    unsigned value = 0;
    size_t digits = 0;
    while (pos < len && text[pos] >= '0' && text[pos] <= '9' && digits < 6) {
        value = value * 10 + (unsigned)(text[pos++] - '0');
        digits++;
    }
    if (digits == 0 || value >= CLUSTER_SLOTS || pos >= len || text[pos] != ' ') return -1;
    pos++;
    const char *address = text + pos;
    size_t address_len = len - pos;
    const char *colon = NULL;
    for (size_t i = 0; i < address_len; i++) {
        if (address[i] == ':') colon = address + i;
    }
    if (colon == NULL) return -1;
    size_t host_len = (size_t)(colon - address);
    if (host_len >= hostlen) return -1;
    int port_value = 0;
    const char *p = colon + 1;
    const char *end = address + address_len;
    if (p == end) return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || port_value > 65535) return -1;
        port_value = port_value * 10 + (*p - '0');
    }
    if (port_value <= 0 || port_value > 65535) return -1;
    memcpy(host, address, host_len);
    host[host_len] = '\0';
    *slot = value;
    *port = port_value;
    return 0;
}
