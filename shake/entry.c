/* entry.c -- allocation, release and sizing of shake_entry (see entry.h).
 * Knows nothing of readers or writers. */
#include "shake/entry.h"

#include <stdlib.h>

struct shake_entry *shake_entry_new(enum shake_entry_kind kind) {
    struct shake_entry *entry = calloc(1, sizeof(*entry));
    if (entry == NULL) return NULL;
    entry->kind = kind;
    entry->expire_ms = SHAKE_NO_EXPIRE;
    entry->idle_s = -1;
    entry->freq = -1;
    return entry;
}

void shake_entry_free(struct shake_entry *entry) {
    if (entry == NULL) return;
    free(entry->key);
    free(entry->raw);
    free(entry->items);
    free(entry->arena);
    if (entry->argv != NULL) {
        for (int i = 0; i < entry->argc; i++) free(entry->argv[i]);
        free(entry->argv);
    }
    free(entry->argv_len);
    free(entry);
}

size_t shake_entry_size(const struct shake_entry *entry) {
    size_t size = sizeof(*entry) + entry->key_len + entry->raw_len;
    for (size_t i = 0; i < entry->nitems; i++) {
        size += sizeof(struct shake_item) + entry->items[i].a.len + entry->items[i].b.len;
    }
    for (int i = 0; i < entry->argc; i++) size += entry->argv_len[i] + sizeof(char *);
    return size;
}

const char *shake_value_type_name(enum shake_value_type type) {
    switch (type) {
    case SHAKE_TYPE_STRING: return "string";
    case SHAKE_TYPE_LIST: return "list";
    case SHAKE_TYPE_SET: return "set";
    case SHAKE_TYPE_ZSET: return "zset";
    case SHAKE_TYPE_HASH: return "hash";
    case SHAKE_TYPE_STREAM: return "stream";
    case SHAKE_TYPE_MODULE: return "module";
    }
    return "unknown";
}
