/* test_entry.c -- the entry type's helpers: value buffers (size classes, reuse,
 * what is never kept) and releasing an entry whose raw bytes are one of them. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "shake/entry.h"

Test(value_buffer, rounds_up_to_a_class_and_reuses_the_last_freed) {
    shake_value_buffer_trim();
    size_t cap;
    char *a = shake_value_buffer_alloc(1000, &cap);
    cr_assert_not_null(a);
    cr_assert_geq(cap, 1000);
    cr_assert_leq(cap, 1000 + 1000 / 4, "a class wastes at most a quarter: %zu", cap);
    memset(a, 'x', cap);
    shake_value_buffer_free(a, cap);
    size_t again;
    char *b = shake_value_buffer_alloc(990, &again);
    cr_assert_eq(b, a, "a buffer of the same class is reused");
    cr_assert_eq(again, cap);
    shake_value_buffer_free(b, again);
    shake_value_buffer_trim();
}

Test(value_buffer, every_size_gets_at_least_what_it_asked_for) {
    for (size_t size = 1; size <= SHAKE_VALUE_BUFFER_POOLED + 10; size += size / 7 + 1) {
        size_t cap;
        char *p = shake_value_buffer_alloc(size, &cap);
        cr_assert_not_null(p);
        cr_assert_geq(cap, size);
        memset(p, 0, cap); /* ASan: cap bytes are really there */
        shake_value_buffer_free(p, cap);
    }
    shake_value_buffer_trim();
}

Test(value_buffer, classes_waste_at_most_a_quarter_and_grow_with_the_size) {
    size_t last = 0;
    for (size_t size = 1; size <= SHAKE_VALUE_BUFFER_POOLED; size++) {
        size_t cap, again;
        char *p = shake_value_buffer_alloc(size, &cap);
        cr_assert_not_null(p);
        cr_assert_geq(cap, size);
        cr_assert(size <= 128 ? cap == 128 : cap - size < size / 4, "size %zu: %zu", size, cap);
        cr_assert_geq(cap, last, "size %zu", size);
        last = cap;
        shake_value_buffer_free(p, cap);
        p = shake_value_buffer_alloc(cap, &again); /* a class size is its own class */
        cr_assert_eq(again, cap, "size %zu", size);
        shake_value_buffer_free(p, again);
    }
    cr_assert_eq(last, SHAKE_VALUE_BUFFER_POOLED);
    shake_value_buffer_trim();
}

Test(value_buffer, big_and_foreign_buffers_are_freed_not_kept) {
    shake_value_buffer_trim();
    size_t cap;
    char *big = shake_value_buffer_alloc(SHAKE_VALUE_BUFFER_POOLED + 1, &cap);
    cr_assert_eq(cap, SHAKE_VALUE_BUFFER_POOLED + 1);
    shake_value_buffer_free(big, cap);
    /* A malloc'd buffer whose size is no class size: freed (ASan sees a leak or a
     * reuse past its end otherwise). */
    char *foreign = malloc(1001);
    shake_value_buffer_free(foreign, 1001);
    char *p = shake_value_buffer_alloc(1001, &cap);
    cr_assert_neq(cap, 1001);
    memset(p, 0, cap);
    shake_value_buffer_free(p, cap);
    shake_value_buffer_free(NULL, 100);
    shake_value_buffer_trim();
}

Test(value_buffer, an_entry_releases_its_raw_value_buffer) {
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_KEY);
    cr_assert_not_null(entry);
    entry->raw = shake_value_buffer_alloc(300, &entry->raw_cap);
    entry->raw_len = 10;
    entry->key = strdup("k");
    entry->key_len = 1;
    shake_entry_free(entry);
    shake_value_buffer_trim();
}
