/* test_command.c -- the command list: appending, growing, clearing, and the
 * in-owner slot for the first command (no allocation for one-command lists). */
#include <criterion/criterion.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shake/entry.h"
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

Test(command_list, a_value_buffer_command_goes_back_to_the_value_buffers) {
    size_t cap;
    char *resp = shake_value_buffer_alloc(200, &cap);
    cr_assert_not_null(resp);
    memcpy(resp, "*1\r\n$4\r\nPING\r\n", 14);
    struct command_list list;
    command_list_init(&list);
    cr_assert_eq(command_list_append_resp(&list, resp, 14), 0);
    list.items[0].cap = cap;
    command_free_resp(&list.items[0]);
    cr_assert_null(list.items[0].resp);
    size_t again;
    char *reused = shake_value_buffer_alloc(200, &again);
    cr_assert_eq(reused, resp, "the buffer was kept for reuse");
    shake_value_buffer_free(reused, again);
    command_list_clear(&list);
    shake_value_buffer_trim();
}

/* command_list_append_argv encodes what redisFormatCommandArgv does, byte for
 * byte: empty, binary and multi-digit lengths, and many arguments. */
Test(command_list, argv_encoding_is_redis_format_command_argv) {
    char big[1234];
    memset(big, 'b', sizeof(big));
    const char *argv[12] = {"SET", "", "a\0b\r\n", big};
    size_t lens[12] = {3, 0, 5, sizeof(big)};
    for (int i = 4; i < 12; i++) {
        argv[i] = "0123456789";
        lens[i] = (size_t)i;
    }
    for (int argc = 1; argc <= 12; argc++) {
        struct command_list list;
        command_list_init(&list);
        cr_assert_eq(command_list_append_argv(&list, argc, argv, lens), 0);
        char *expected = NULL;
        long long len = redisFormatCommandArgv(&expected, argc, argv, lens);
        cr_assert_eq((long long)list.items[0].len, len, "argc %d", argc);
        cr_assert(memcmp(list.items[0].resp, expected, (size_t)len) == 0, "argc %d", argc);
        redisFreeCommand(expected);
        command_list_clear(&list);
    }
    shake_value_buffer_trim();
}

/* One command moves into the destination's slot and the source keeps its array
 * for the next one; several move with their array. */
Test(command_list, move_puts_one_command_in_the_slot_and_several_with_their_array) {
    struct command_list plan;
    command_list_init(&plan);
    cr_assert_eq(command_list_append_resp(&plan, text("one"), 3), 0);
    struct command *array = plan.items;
    struct command slot;
    struct command_list job;
    command_list_init_with_slot(&job, &slot);
    command_list_move(&job, &plan);
    cr_assert_eq(job.items, &slot);
    cr_assert_eq(job.count, 1);
    cr_assert_str_eq(slot.resp, "one");
    cr_assert_eq(plan.count, 0);
    cr_assert_eq(plan.items, array, "the array stays with the plan, for reuse");
    command_list_clear(&job);

    cr_assert_eq(command_list_append_resp(&plan, text("a"), 1), 0);
    cr_assert_eq(command_list_append_resp(&plan, text("b"), 1), 0);
    command_list_init_with_slot(&job, &slot);
    command_list_move(&job, &plan);
    cr_assert_eq(job.count, 2);
    cr_assert_eq(job.items, array);
    cr_assert_str_eq(job.items[1].resp, "b");
    cr_assert_null(plan.items);
    cr_assert_eq(plan.count, 0);
    command_list_clear(&job);
    command_list_clear(&plan);
}

/* writer/resp.h's numbers, at every change of digit count and at the extremes,
 * against printf. */
#include <inttypes.h>

#include "writer/resp.h"

Test(resp, numbers_print_as_printf_prints_them) {
    uint64_t values[200];
    size_t n = 0;
    values[n++] = 0;
    values[n++] = UINT64_MAX;
    values[n++] = UINT64_MAX - 1;
    for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
        values[n++] = p - 1;
        values[n++] = p;
        values[n++] = p + 1;
        values[n++] = p * 10 - 1;
        values[n++] = p * 7 + 3;
    }
    values[n++] = UINT64_C(10000000000000000000);
    values[n++] = UINT64_C(1) << 63; /* INT64_MIN as a signed number */
    for (size_t i = 0; i < n; i++) {
        char want[32], got[32];
        snprintf(want, sizeof(want), "%" PRIu64, values[i]);
        cr_assert_eq(resp_digits(values[i]), strlen(want), "%s", want);
        char *end = resp_put_u64(got, values[i]);
        *end = '\0';
        cr_assert_str_eq(got, want);
        int64_t s = (int64_t)values[i];
        snprintf(want, sizeof(want), "%" PRId64, s);
        end = resp_put_i64(got, s);
        *end = '\0';
        cr_assert_str_eq(got, want);
        int64_t negated = s == INT64_MIN ? s : -s;
        end = resp_put_i64(got, negated);
        *end = '\0';
        snprintf(want, sizeof(want), "%" PRId64, negated);
        cr_assert_str_eq(got, want);
    }
}
