/* rdb_chunk.c -- owns building the items of one CHUNK entry: an item array and
 * an arena holding their bytes. While the chunk is built, item strings are kept
 * as arena offsets (the arena moves when it grows); rdb_chunk_take turns them
 * into pointers as it hands items and arena to the entry.
 *
 * It knows nothing of RDB encodings nor of when a chunk should end.
 */
#include <stdlib.h>
#include <string.h>

#include "reader/rdb_internal.h"

/* An empty builder. */
void rdb_chunk_init(struct rdb_chunk *c) {
    *c = (struct rdb_chunk){0};
}

/* Releases whatever the builder still holds. */
void rdb_chunk_free(struct rdb_chunk *c) {
    free(c->items);
    free(c->offsets);
    rdb_buf_free(&c->arena);
    *c = (struct rdb_chunk){0};
}

/* Whether the chunk reached one of its bounds (it is never empty then). */
int rdb_chunk_full(const struct rdb_chunk *c, size_t max_items, size_t max_bytes) {
    return c->nitems > 0 && (c->nitems >= max_items || c->arena.len >= max_bytes);
}

/* Copies n bytes into the arena; returns the offset. */
static int rdb_chunk_copy(struct rdb_chunk *c, const char *p, size_t n, size_t *offset) {
    if (rdb_buf_reserve(&c->arena, c->arena.len + n) < 0) return -1;
    *offset = c->arena.len;
    if (n > 0) memcpy(c->arena.ptr + c->arena.len, p, n);
    c->arena.len += n;
    return 0;
}

/* Appends a copy of *item whose a and b strings are (a, alen) and (b, blen). */
int rdb_chunk_add(struct rdb_chunk *c, const struct shake_item *item, const char *a, size_t alen,
                  const char *b, size_t blen) {
    if (c->nitems == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        struct shake_item *items = realloc(c->items, cap * sizeof(*items));
        if (items == NULL) return -1;
        c->items = items;
        size_t *offsets = realloc(c->offsets, cap * 2 * sizeof(*offsets));
        if (offsets == NULL) return -1;
        c->offsets = offsets;
        c->cap = cap;
    }
    size_t *off = c->offsets + 2 * c->nitems;
    if (rdb_chunk_copy(c, a, alen, &off[0]) < 0 || rdb_chunk_copy(c, b, blen, &off[1]) < 0)
        return -1;
    struct shake_item *it = &c->items[c->nitems++];
    *it = *item;
    it->a = (struct shake_bytes){NULL, alen};
    it->b = (struct shake_bytes){NULL, blen};
    return 0;
}

/* Gives the items and the arena to entry, pointers fixed, and resets the
 * builder (its next chunk allocates afresh). */
int rdb_chunk_take(struct rdb_chunk *c, struct shake_entry *entry) {
    if (c->arena.ptr == NULL && rdb_buf_reserve(&c->arena, 1) < 0) return -1;
    for (size_t i = 0; i < c->nitems; i++) {
        c->items[i].a.ptr = c->arena.ptr + c->offsets[2 * i];
        c->items[i].b.ptr = c->arena.ptr + c->offsets[2 * i + 1];
    }
    entry->items = c->items;
    entry->nitems = c->nitems;
    entry->arena = c->arena.ptr;
    free(c->offsets);
    *c = (struct rdb_chunk){0};
    return 0;
}
