/* entry.c -- allocation, release and sizing of shake_entry (see entry.h).
 * Knows nothing of readers or writers. */
#include "shake/entry.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Size classes of value buffers: four per power of two from 2^7 bytes up to
 * SHAKE_VALUE_BUFFER_POOLED, so that rounding up wastes at most a quarter. */
#define VALUE_CLASS_MIN_SHIFT 7
#define VALUE_CLASS_STEPS_SHIFT 2
#define VALUE_CLASS_STEPS (1u << VALUE_CLASS_STEPS_SHIFT)
#define VALUE_CLASSES ((16 - VALUE_CLASS_MIN_SHIFT) * VALUE_CLASS_STEPS + 1)
/* Bytes of freed buffers a thread keeps at most, over all classes. */
#define VALUE_POOL_MAX_BYTES ((size_t)16 << 20)

/* The freed buffers of one class: a stack of pointers, so that keeping or
 * reusing a buffer touches none of its bytes. */
struct value_class {
    void **buffers;
    size_t count;
    size_t capacity;
};

/* Owner: the thread. The buffers are ordinary malloc'd memory. */
static _Thread_local struct value_class value_pool[VALUE_CLASSES];
static _Thread_local size_t value_pool_bytes;

/* The class of a buffer of `size` bytes (<= SHAKE_VALUE_BUFFER_POOLED), and its
 * size: up to 2^VALUE_CLASS_MIN_SHIFT bytes the first; above, with 2^k < size <=
 * 2^(k+1), the j-th step of 2^k / VALUE_CLASS_STEPS above 2^k that reaches size.
 * Arithmetic, not a search: it runs twice per key. */
static unsigned value_class_of(size_t size, size_t *class_size) {
    if (size <= (size_t)1 << VALUE_CLASS_MIN_SHIFT) {
        *class_size = (size_t)1 << VALUE_CLASS_MIN_SHIFT;
        return 0;
    }
    unsigned k = (unsigned)(63 - __builtin_clzll((unsigned long long)(size - 1)));
    unsigned step_shift = k - VALUE_CLASS_STEPS_SHIFT; /* log2 of 2^k / VALUE_CLASS_STEPS */
    size_t base = (size_t)1 << k;
    size_t j = (size - base + ((size_t)1 << step_shift) - 1) >> step_shift;
    *class_size = base + (j << step_shift);
    return (k - VALUE_CLASS_MIN_SHIFT) * VALUE_CLASS_STEPS + (unsigned)j;
}

void *shake_value_buffer_alloc(size_t size, size_t *cap) {
    if (size > SHAKE_VALUE_BUFFER_POOLED) {
        *cap = size;
        return malloc(size);
    }
    size_t bytes;
    struct value_class *class = &value_pool[value_class_of(size, &bytes)];
    *cap = bytes;
    if (class->count > 0) {
        value_pool_bytes -= bytes;
        return class->buffers[--class->count];
    }
    return malloc(bytes);
}

void shake_value_buffer_free(void *buffer, size_t cap) {
    if (buffer == NULL) return;
    size_t bytes;
    if (cap == 0 || cap > SHAKE_VALUE_BUFFER_POOLED ||
        value_pool_bytes + cap > VALUE_POOL_MAX_BYTES) {
        free(buffer);
        return;
    }
    struct value_class *class = &value_pool[value_class_of(cap, &bytes)];
    if (bytes != cap) { /* not one of ours: its size is no class size */
        free(buffer);
        return;
    }
    if (class->count == class->capacity) {
        size_t capacity = class->capacity ? class->capacity * 2 : 64;
        void **grown = realloc(class->buffers, capacity * sizeof(*grown));
        if (grown == NULL) {
            free(buffer);
            return;
        }
        class->buffers = grown;
        class->capacity = capacity;
    }
    class->buffers[class->count++] = buffer;
    value_pool_bytes += cap;
}

void shake_value_buffer_trim(void) {
    for (unsigned i = 0; i < VALUE_CLASSES; i++) {
        struct value_class *class = &value_pool[i];
        while (class->count > 0)
            free(class->buffers[--class->count]);
        free(class->buffers);
        *class = (struct value_class){0};
    }
    value_pool_bytes = 0;
}

/* Released entries kept per thread for the next shake_entry_new: a replication
 * stream makes and frees an entry per command, and malloc pays for that in
 * searching its bins more than the entry costs to clear. Not under ASan, which
 * must see every entry's end. */
#if defined(__SANITIZE_ADDRESS__)
#define ENTRY_POOL_MAX 0
#else
#define ENTRY_POOL_MAX 256
#endif
static _Thread_local struct shake_entry *entry_pool[ENTRY_POOL_MAX + 1];
static _Thread_local size_t entry_pool_count;

/* What a reused entry is reset to (up to argv_inline). Copying this costs a few
 * vector moves, where GCC turns memset(entry, 0, ...) into a `rep stos`, whose
 * start-up made it 15 ns per entry here (an entry per key). */
static const struct shake_entry entry_blank;

struct shake_entry *shake_entry_new(enum shake_entry_kind kind) {
    struct shake_entry *entry;
    if (entry_pool_count > 0) {
        entry = entry_pool[--entry_pool_count];
        memcpy(entry, &entry_blank, offsetof(struct shake_entry, argv_inline));
    } else {
        entry = calloc(1, sizeof(*entry));
        if (entry == NULL) return NULL;
    }
    entry->kind = kind;
    entry->expire_ms = SHAKE_NO_EXPIRE;
    entry->idle_s = -1;
    entry->freq = -1;
    return entry;
}

static int shake_entry_arg_is_inline(const struct shake_entry *entry, const char *arg) {
    uintptr_t at = (uintptr_t)arg, start = (uintptr_t)entry->argbuf;
    return at >= start && at < start + sizeof(entry->argbuf);
}

char *shake_entry_arg_alloc(struct shake_entry *entry, size_t len) {
    if (len < sizeof(entry->argbuf) - entry->argbuf_used) {
        char *arg = entry->argbuf + entry->argbuf_used;
        entry->argbuf_used += len + 1;
        return arg;
    }
    return malloc(len + 1);
}

void shake_entry_arg_free(struct shake_entry *entry, int i) {
    if (!shake_entry_arg_is_inline(entry, entry->argv[i])) free(entry->argv[i]);
    entry->argv[i] = NULL;
}

int shake_entry_arg_own(struct shake_entry *entry, int i) {
    if (!shake_entry_arg_is_inline(entry, entry->argv[i])) return 0;
    char *copy = malloc(entry->argv_len[i] + 1);
    if (copy == NULL) return -1;
    memcpy(copy, entry->argv[i], entry->argv_len[i] + 1);
    entry->argv[i] = copy;
    return 0;
}

int shake_entry_arg_is(const struct shake_entry *entry, int i, const char *word, size_t len) {
    return entry->argc > i && entry->argv_len[i] == len && strcasecmp(entry->argv[i], word) == 0;
}

int shake_entry_set_argc(struct shake_entry *entry, int argc) {
    entry->argc = 0;
    if (argc <= 0) return 0;
    if (argc <= SHAKE_ARGV_INLINE) {
        entry->argv = entry->argv_inline;
        entry->argv_len = entry->argv_len_inline;
        memset(entry->argv_inline, 0, sizeof(entry->argv_inline));
        memset(entry->argv_len_inline, 0, sizeof(entry->argv_len_inline));
    } else {
        entry->argv = calloc((size_t)argc, sizeof(char *));
        entry->argv_len = calloc((size_t)argc, sizeof(size_t));
        if (entry->argv == NULL || entry->argv_len == NULL) return -1;
    }
    entry->argc = argc;
    return 0;
}

void shake_entry_free(struct shake_entry *entry) {
    if (entry == NULL) return;
    free(entry->key);
    if (entry->raw != NULL)
        shake_value_buffer_free(entry->raw - entry->raw_front, entry->raw_front + entry->raw_cap);
    free(entry->items);
    free(entry->arena);
    if (entry->argv != NULL) {
        for (int i = 0; i < entry->argc; i++)
            shake_entry_arg_free(entry, i);
        if (entry->argv != entry->argv_inline) free(entry->argv);
    }
    if (entry->argv_len != entry->argv_len_inline) free(entry->argv_len);
#if ENTRY_POOL_MAX > 0
    if (entry_pool_count < ENTRY_POOL_MAX) {
        entry_pool[entry_pool_count++] = entry;
        return;
    }
#endif
    free(entry);
}

void shake_entry_trim(void) {
    while (entry_pool_count > 0)
        free(entry_pool[--entry_pool_count]);
}

size_t shake_entry_size(const struct shake_entry *entry) {
    size_t size = sizeof(*entry) + entry->key_len + entry->raw_len;
    for (size_t i = 0; i < entry->nitems; i++) {
        size += sizeof(struct shake_item) + entry->items[i].a.len + entry->items[i].b.len;
    }
    for (int i = 0; i < entry->argc; i++)
        size += entry->argv_len[i] + sizeof(char *);
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
