/* test_command.c -- the command list: appending, growing, clearing, and the
 * in-owner slot for the first command (no allocation for one-command lists). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "writer/command.h"

static char *text(const char *s) {
    char *p = malloc(strlen(s) + 1);
    cr_assert_not_null(p);
    strcpy(p, s);
    return p;
}

Test(command_list, the_first_command_goes_into_the_slot) {
    struct command slot;
    struct command_list list;
    command_list_init_with_slot(&list, &slot);
    cr_assert_eq(command_list_append_resp(&list, text("one"), 3), 0);
    cr_assert_eq(list.items, &slot);
    cr_assert_eq(list.count, 1);
    cr_assert_str_eq(slot.resp, "one");
    command_list_clear(&list); /* frees the resp, not the slot */
    cr_assert_eq(list.count, 0);
    cr_assert_null(list.items);
}

Test(command_list, growing_past_the_slot_keeps_every_command_in_order) {
    struct command slot;
    struct command_list list;
    command_list_init_with_slot(&list, &slot);
    for (int i = 0; i < 40; i++) {
        char buf[16];
        snprintf(buf, sizeof(buf), "c%d", i);
        cr_assert_eq(command_list_append_resp(&list, text(buf), strlen(buf)), 0);
        list.items[list.count - 1].busykey_is_skip = i % 2;
    }
    cr_assert_neq(list.items, &slot);
    for (int i = 0; i < 40; i++) {
        char buf[16];
        snprintf(buf, sizeof(buf), "c%d", i);
        cr_assert_str_eq(list.items[i].resp, buf);
        cr_assert_eq(list.items[i].busykey_is_skip, i % 2);
        cr_assert_eq(list.items[i].replies, 1);
    }
    command_list_clear(&list);
}

Test(command_list, a_list_without_slot_allocates_as_before) {
    struct command_list list;
    command_list_init(&list);
    cr_assert_null(list.slot);
    cr_assert_eq(command_list_append_resp(&list, text("x"), 1), 0);
    cr_assert_not_null(list.items);
    cr_assert_eq(list.capacity, 8);
    command_list_clear(&list);
}
