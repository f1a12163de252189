/* test_cmd_plan.c -- the routing plan of replicated commands: exact parts, slots
 * and RESP for single, split, rename, broadcast, drop, transaction and
 * unsupported commands, on cluster and standalone targets, binary keys included.
 * Uses the built-in command table (pure: no server). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "shake/crc16.h"
#include "writer/cmd_plan.h"

#define MAX_ARGS 1100

/* An argv split on single spaces; bytes point into the line (not NUL-terminated). */
struct args {
    int argc;
    const char *argv[MAX_ARGS];
    size_t len[MAX_ARGS];
};

static void words(struct args *a, const char *line) {
    a->argc = 0;
    for (const char *p = line; *p && a->argc < MAX_ARGS;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        a->argv[a->argc] = p;
        a->len[a->argc++] = len;
        p += len + (end != NULL);
    }
}

static struct cmd_table *table;
static struct args args;
static struct cmd_plan plan;

static void setup(void) {
    cr_assert_eq(cmd_table_builtin(&table), 0);
    cmd_plan_init(&plan);
}

static void teardown(void) {
    cmd_plan_free(&plan);
    cmd_table_free(table);
}

TestSuite(cmd_plan, .init = setup, .fini = teardown);

static const struct cmd_plan_options cluster = {1, CMD_PLAN_PUBLISH_DROP};
static const struct cmd_plan_options cluster_publish = {1, CMD_PLAN_PUBLISH_FORWARD};
static const struct cmd_plan_options standalone = {0, CMD_PLAN_PUBLISH_DROP};

/* Plan a command line; the plan and argv live in the file's statics. */
static void plan_line(const char *line, const struct cmd_plan_options *options) {
    words(&args, line);
    cr_assert_eq(cmd_plan_build(&plan, table, args.argc, args.argv, args.len, options), 0);
}

static int slot_of(const char *key) {
    return (int)key_hash_slot(key, strlen(key));
}

/* A part as a space-joined line. */
static void part_line(const struct cmd_plan_part *part, char *out, size_t outlen) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < part->argc && used < outlen; i++)
        used += (size_t)snprintf(out + used, outlen - used, i ? " %.*s" : "%.*s",
                                 (int)part->argv_len[i], part->argv[i]);
}

/* parts[i] is `line` at `slot`, and commands.items[i] is its RESP encoding. */
static void expect_part(size_t i, const char *line, int slot) {
    cr_assert_lt(i, plan.part_count);
    char got[512];
    part_line(&plan.parts[i], got, sizeof(got));
    cr_expect_str_eq(got, line, "part %zu: %s, expected %s", i, got, line);
    cr_expect_eq(plan.parts[i].slot, slot, "part %zu slot", i);
    cr_assert_eq(plan.commands.count, plan.part_count);
    char resp[1024];
    size_t used = (size_t)snprintf(resp, sizeof(resp), "*%d\r\n", plan.parts[i].argc);
    for (int k = 0; k < plan.parts[i].argc; k++) {
        used += (size_t)snprintf(resp + used, sizeof(resp) - used, "$%zu\r\n",
                                 plan.parts[i].argv_len[k]);
        memcpy(resp + used, plan.parts[i].argv[k], plan.parts[i].argv_len[k]);
        used += plan.parts[i].argv_len[k];
        used += (size_t)snprintf(resp + used, sizeof(resp) - used, "\r\n");
    }
    cr_expect_eq(plan.commands.items[i].len, used, "part %zu RESP length", i);
    cr_expect_eq(memcmp(plan.commands.items[i].resp, resp, used), 0, "part %zu RESP", i);
}

/* ------------------------------------------------------------------------ */

Test(cmd_plan, set_is_single_at_its_key_slot) {
    plan_line("SET k v", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_SINGLE);
    cr_expect_eq(plan.slot, slot_of("k"));
    cr_expect_eq(plan.key_index, 1);
    cr_assert_eq(plan.part_count, 1);
    cr_expect_eq(plan.parts[0].argv, args.argv, "a single part is the caller's argv");
    expect_part(0, "SET k v", slot_of("k"));
    cr_expect_eq(memcmp(plan.commands.items[0].resp, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
                        plan.commands.items[0].len),
                 0);
}

Test(cmd_plan, mset_across_slots_splits_into_pairs_in_order) {
    cr_assert_neq(slot_of("a"), slot_of("b"));
    cr_assert_neq(slot_of("b"), slot_of("c"));
    cr_assert_neq(slot_of("a"), slot_of("c"));
    plan_line("MSET a 1 b 2 c 3", &cluster);
    cr_assert_eq(plan.kind, CMD_PLAN_SPLIT);
    cr_assert_eq(plan.part_count, 3);
    expect_part(0, "MSET a 1", slot_of("a"));
    expect_part(1, "MSET b 2", slot_of("b"));
    expect_part(2, "MSET c 3", slot_of("c"));
}

Test(cmd_plan, split_groups_keys_by_slot_in_first_appearance_order) {
    plan_line("MSET b 1 a 2 {b}x 3 c 4 {a}y 5", &cluster);
    cr_assert_eq(plan.kind, CMD_PLAN_SPLIT);
    cr_assert_eq(plan.part_count, 3);
    expect_part(0, "MSET b 1 {b}x 3", slot_of("b"));
    expect_part(1, "MSET a 2 {a}y 5", slot_of("a"));
    expect_part(2, "MSET c 4", slot_of("c"));
}

Test(cmd_plan, mset_in_one_hash_tag_is_single) {
    plan_line("MSET {t}a 1 {t}b 2", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_SINGLE);
    cr_expect_eq(plan.slot, slot_of("t"));
    expect_part(0, "MSET {t}a 1 {t}b 2", slot_of("t"));
}

Test(cmd_plan, del_unlink_exists_touch_split_by_key) {
    const char *names[] = {"DEL", "unlink", "EXISTS", "Touch"};
    for (size_t i = 0; i < 4; i++) {
        char line[64], first[64], second[64];
        snprintf(line, sizeof(line), "%s a b {a}z", names[i]);
        snprintf(first, sizeof(first), "%s a {a}z", names[i]);
        snprintf(second, sizeof(second), "%s b", names[i]);
        plan_line(line, &cluster);
        cr_assert_eq(plan.kind, CMD_PLAN_SPLIT, "%s", names[i]);
        cr_assert_eq(plan.part_count, 2);
        expect_part(0, first, slot_of("a"));
        expect_part(1, second, slot_of("b"));
    }
}

Test(cmd_plan, msetnx_across_slots_becomes_per_slot_mset) {
    plan_line("MSETNX a 1 b 2", &cluster);
    cr_assert_eq(plan.kind, CMD_PLAN_SPLIT);
    cr_assert_eq(plan.part_count, 2);
    expect_part(0, "MSET a 1", slot_of("a"));
    expect_part(1, "MSET b 2", slot_of("b"));
}

Test(cmd_plan, msetnx_in_one_slot_is_kept_verbatim) {
    plan_line("MSETNX {t}a 1 {t}b 2", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_SINGLE);
    expect_part(0, "MSETNX {t}a 1 {t}b 2", slot_of("t"));
}

Test(cmd_plan, mset_with_a_missing_value_is_malformed) {
    plan_line("MSET a 1 b", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_UNSUPPORTED);
    cr_expect_eq(plan.reason, CMD_PLAN_REASON_MALFORMED);
    cr_expect_eq(plan.part_count, 0);
}

Test(cmd_plan, rename_across_slots_is_emulated) {
    plan_line("RENAME a b", &cluster);
    cr_assert_eq(plan.kind, CMD_PLAN_RENAME);
    cr_expect_eq(plan.part_count, 0);
    cr_expect_eq(plan.commands.count, 0);
    cr_expect_eq(plan.rename.source, args.argv[1]);
    cr_expect_eq(plan.rename.source_len, 1);
    cr_expect_eq(plan.rename.destination, args.argv[2]);
    cr_expect_eq(plan.rename.destination_len, 1);
    cr_expect_eq(plan.rename.nx, 0);
    cr_expect_eq(plan.rename.source_slot, slot_of("a"));
    cr_expect_eq(plan.rename.destination_slot, slot_of("b"));

    plan_line("renamenx a b", &cluster);
    cr_assert_eq(plan.kind, CMD_PLAN_RENAME);
    cr_expect_eq(plan.rename.nx, 1);
}

Test(cmd_plan, rename_within_a_slot_is_single) {
    plan_line("RENAME {x}a {x}b", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_SINGLE);
    expect_part(0, "RENAME {x}a {x}b", slot_of("x"));
    plan_line("RENAMENX k k", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_SINGLE);
}

Test(cmd_plan, flushes_functions_and_scripts_broadcast_on_a_cluster) {
    const char *lines[] = {"FLUSHALL",
                           "FLUSHALL ASYNC",
                           "flushdb",
                           "FUNCTION LOAD code",
                           "FUNCTION DELETE lib",
                           "FUNCTION FLUSH",
                           "FUNCTION RESTORE payload",
                           "SCRIPT LOAD code",
                           "script flush"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        plan_line(lines[i], &cluster);
        cr_expect_eq(plan.kind, CMD_PLAN_BROADCAST, "%s", lines[i]);
        expect_part(0, lines[i], CMD_PLAN_NO_SLOT);
        plan_line(lines[i], &standalone);
        cr_expect_eq(plan.kind, CMD_PLAN_SINGLE, "%s", lines[i]);
        cr_expect_eq(plan.slot, CMD_PLAN_NO_SLOT);
        expect_part(0, lines[i], CMD_PLAN_NO_SLOT);
    }
}

Test(cmd_plan, ping_replconf_select_are_dropped) {
    const char *lines[] = {"PING", "REPLCONF GETACK *", "replconf ack 123", "SELECT 3"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        plan_line(lines[i], &cluster);
        cr_expect_eq(plan.kind, CMD_PLAN_DROP, "%s", lines[i]);
        cr_expect_eq(plan.part_count, 0);
        cr_expect_eq(plan.commands.count, 0);
        plan_line(lines[i], &standalone);
        cr_expect_eq(plan.kind, CMD_PLAN_DROP, "%s", lines[i]);
    }
}

Test(cmd_plan, publish_is_dropped_or_forwarded_by_option) {
    plan_line("PUBLISH ch msg", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_DROP);
    plan_line("SPUBLISH ch msg", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_DROP);

    plan_line("PUBLISH ch msg", &cluster_publish);
    cr_expect_eq(plan.kind, CMD_PLAN_SINGLE);
    cr_expect_eq(plan.slot, CMD_PLAN_NO_SLOT);
    expect_part(0, "PUBLISH ch msg", CMD_PLAN_NO_SLOT);
    plan_line("SPUBLISH ch msg", &cluster_publish);
    cr_expect_eq(plan.kind, CMD_PLAN_SINGLE);
    cr_expect_eq(plan.slot, slot_of("ch"));
}

Test(cmd_plan, sunionstore_across_slots_is_unsupported_with_its_keys) {
    plan_line("SUNIONSTORE dst a b", &cluster);
    cr_assert_eq(plan.kind, CMD_PLAN_UNSUPPORTED);
    cr_expect_eq(plan.reason, CMD_PLAN_REASON_CROSSSLOT);
    cr_expect_eq(plan.part_count, 0);
    char expected[CMD_PLAN_MESSAGE_MAX];
    snprintf(expected, sizeof(expected),
             "\"SUNIONSTORE\": keys in different slots, and no faithful split on a cluster "
             "target: \"dst\" (slot %d), \"a\" (slot %d), \"b\" (slot %d)",
             slot_of("dst"), slot_of("a"), slot_of("b"));
    cr_expect_str_eq(plan.message, expected);
}

Test(cmd_plan, other_cross_slot_commands_are_unsupported) {
    const char *lines[] = {"LMOVE a b LEFT RIGHT", "SMOVE a b m",   "EVAL return 2 a b",
                           "ZUNIONSTORE d 2 a b",  "RPOPLPUSH a b", "BITOP OR d a"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        plan_line(lines[i], &cluster);
        cr_expect_eq(plan.kind, CMD_PLAN_UNSUPPORTED, "%s", lines[i]);
        cr_expect_eq(plan.reason, CMD_PLAN_REASON_CROSSSLOT, "%s", lines[i]);
        cr_expect_neq(strstr(plan.message, "keys in different slots"), NULL, "%s", plan.message);
    }
}

Test(cmd_plan, eval_with_keys_in_one_slot_is_single) {
    plan_line("EVAL return 2 {u}a {u}b arg", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_SINGLE);
    cr_expect_eq(plan.slot, slot_of("u"));
    cr_expect_eq(plan.key_index, 3);
    plan_line("EVAL return 0 arg", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_SINGLE);
    cr_expect_eq(plan.slot, CMD_PLAN_NO_SLOT);
    cr_expect_eq(plan.key_index, -1);
}

Test(cmd_plan, unknown_commands_and_keys_are_unsupported_on_a_cluster) {
    plan_line("NOSUCHCMD a b", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_UNSUPPORTED);
    cr_expect_eq(plan.reason, CMD_PLAN_REASON_UNKNOWN_COMMAND);
    cr_expect_neq(strstr(plan.message, "\"NOSUCHCMD\""), NULL, "%s", plan.message);
    plan_line("MIGRATE h 1", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_UNSUPPORTED);
    cr_expect_eq(plan.reason, CMD_PLAN_REASON_UNKNOWN_KEYS);
    cr_assert_eq(cmd_plan_build(&plan, NULL, args.argc, args.argv, args.len, &cluster), 0);
    cr_expect_eq(plan.kind, CMD_PLAN_UNSUPPORTED);
    cr_assert_eq(cmd_plan_build(&plan, table, 0, args.argv, args.len, &cluster), 0);
    cr_expect_eq(plan.kind, CMD_PLAN_UNSUPPORTED);
    cr_expect_eq(plan.reason, CMD_PLAN_REASON_MALFORMED);
}

Test(cmd_plan, standalone_target_sends_everything_single) {
    const char *lines[] = {"MSET a 1 b 2",      "DEL a b",       "RENAME a b",
                           "SUNIONSTORE d a b", "NOSUCHCMD a b", "EVAL return 2 a b"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        words(&args, lines[i]);
        cr_assert_eq(cmd_plan_build(&plan, NULL, args.argc, args.argv, args.len, &standalone), 0);
        cr_expect_eq(plan.kind, CMD_PLAN_SINGLE, "%s", lines[i]);
        expect_part(0, lines[i], CMD_PLAN_NO_SLOT);
    }
}

Test(cmd_plan, multi_and_exec_are_markers) {
    plan_line("MULTI", &cluster);
    cr_expect_eq(plan.kind, CMD_PLAN_MULTI);
    expect_part(0, "MULTI", CMD_PLAN_NO_SLOT);
    plan_line("exec", &standalone);
    cr_expect_eq(plan.kind, CMD_PLAN_EXEC);
    expect_part(0, "exec", CMD_PLAN_NO_SLOT);
}

/* Plan each line of a transaction into plans[], then ask the helper. */
static int transaction_slot(const char *const *lines, size_t count,
                            const struct cmd_plan_options *options, int *slot) {
    static struct args many[8];
    struct cmd_plan plans[8];
    const struct cmd_plan *pointers[8];
    cr_assert_leq(count, 8);
    for (size_t i = 0; i < count; i++) {
        cmd_plan_init(&plans[i]);
        words(&many[i], lines[i]);
        cr_assert_eq(
            cmd_plan_build(&plans[i], table, many[i].argc, many[i].argv, many[i].len, options), 0);
        pointers[i] = &plans[i];
    }
    int whole = cmd_plan_transaction_slot(pointers, count, slot);
    for (size_t i = 0; i < count; i++)
        cmd_plan_free(&plans[i]);
    return whole;
}

Test(cmd_plan, transaction_in_one_slot_is_kept_whole) {
    const char *lines[] = {"MULTI", "SET {t}a 1",         "INCR {t}b", "PUBLISH ch m",
                           "PING",  "MSET {t}c 1 {t}d 2", "EXEC"};
    int slot = 0;
    cr_expect_eq(transaction_slot(lines, 7, &cluster_publish, &slot), 1);
    cr_expect_eq(slot, slot_of("t"));
}

Test(cmd_plan, transaction_across_slots_is_not_whole) {
    const char *across[] = {"MULTI", "SET a 1", "SET b 1", "EXEC"};
    const char *split[] = {"MULTI", "SET a 1", "DEL a b", "EXEC"};
    const char *flush[] = {"MULTI", "SET a 1", "FLUSHALL", "EXEC"};
    int slot;
    cr_expect_eq(transaction_slot(across, 4, &cluster, &slot), 0);
    cr_expect_eq(transaction_slot(split, 4, &cluster, &slot), 0);
    cr_expect_eq(transaction_slot(flush, 4, &cluster, &slot), 0);
    cr_expect_eq(transaction_slot(across, 4, &standalone, &slot), 1);
    cr_expect_eq(slot, CMD_PLAN_NO_SLOT);
    cr_expect_eq(cmd_plan_transaction_slot(NULL, 0, &slot), 1);
    cr_expect_eq(slot, CMD_PLAN_NO_SLOT);
}

/* Keys with NUL and high bytes: slots over every byte, split parts and RESP keep
 * the exact bytes, and messages escape them. */
Test(cmd_plan, binary_keys_keep_their_bytes) {
    static const char key_a[] = {'a', '\0', 'x'};
    static const char key_b[] = {'b', '\0', '\xff'};
    static const char key_a2[] = {'{', 'a', '\0', 'x', '}', 'q'};
    const char *argv[] = {"DEL", key_a, key_b, key_a2};
    size_t len[] = {3, sizeof(key_a), sizeof(key_b), sizeof(key_a2)};
    int slot_a = (int)key_hash_slot(key_a, sizeof(key_a));
    int slot_b = (int)key_hash_slot(key_b, sizeof(key_b));
    cr_assert_neq(slot_a, slot_b);
    cr_assert_eq(slot_a, (int)key_hash_slot(key_a2, sizeof(key_a2)));
    cr_assert_eq(cmd_plan_build(&plan, table, 4, argv, len, &cluster), 0);
    cr_assert_eq(plan.kind, CMD_PLAN_SPLIT);
    cr_assert_eq(plan.part_count, 2);
    cr_expect_eq(plan.parts[0].argc, 3);
    cr_expect_eq(plan.parts[0].argv[1], key_a);
    cr_expect_eq(plan.parts[0].argv_len[1], 3);
    cr_expect_eq(plan.parts[0].argv[2], key_a2);
    cr_expect_eq(plan.parts[1].argv[1], key_b);
    const char resp_b[] = "*2\r\n$3\r\nDEL\r\n$3\r\nb\0\xff\r\n";
    cr_expect_eq(plan.commands.items[1].len, sizeof(resp_b) - 1);
    cr_expect_eq(memcmp(plan.commands.items[1].resp, resp_b, sizeof(resp_b) - 1), 0);

    argv[0] = "SUNIONSTORE";
    len[0] = 11;
    cr_assert_eq(cmd_plan_build(&plan, table, 3, argv, len, &cluster), 0);
    cr_assert_eq(plan.kind, CMD_PLAN_UNSUPPORTED);
    cr_expect_neq(strstr(plan.message, "\"a\\x00x\""), NULL, "%s", plan.message);
    cr_expect_neq(strstr(plan.message, "\"b\\x00\\xff\""), NULL, "%s", plan.message);
}

Test(cmd_plan, long_keys_are_cut_in_messages) {
    char line[600] = "SMOVE ";
    size_t used = strlen(line);
    memset(line + used, 'k', 300);
    used += 300;
    memcpy(line + used, " \"q\"\n m", 8);
    plan_line(line, &cluster);
    cr_assert_eq(plan.kind, CMD_PLAN_UNSUPPORTED);
    cr_expect_neq(strstr(plan.message, "kkk...\" (300 bytes)"), NULL, "%s", plan.message);
    cr_expect_neq(strstr(plan.message, "\"\\\"q\\\"\\n\""), NULL, "%s", plan.message);
    cr_expect_lt(strlen(plan.message), CMD_PLAN_MESSAGE_MAX);
}

Test(cmd_plan, a_thousand_keys_split_in_order) {
    static char keys[1000][16];
    static struct args many;
    many.argc = 1001;
    many.argv[0] = "DEL";
    many.len[0] = 3;
    for (int i = 0; i < 1000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        many.argv[i + 1] = keys[i];
        many.len[i + 1] = strlen(keys[i]);
    }
    cr_assert_eq(cmd_plan_build(&plan, table, many.argc, many.argv, many.len, &cluster), 0);
    cr_assert_eq(plan.kind, CMD_PLAN_SPLIT);
    size_t total = 0;
    const char *previous_first = NULL;
    for (size_t p = 0; p < plan.part_count; p++) {
        const struct cmd_plan_part *part = &plan.parts[p];
        cr_expect_str_eq(part->argv[0], "DEL");
        for (int k = 1; k < part->argc; k++) {
            cr_expect_eq((int)key_hash_slot(part->argv[k], part->argv_len[k]), part->slot);
            if (k > 1) cr_expect_gt(part->argv[k], part->argv[k - 1], "order kept in a part");
        }
        if (previous_first) cr_expect_gt(part->argv[1], previous_first, "parts by first key");
        previous_first = part->argv[1];
        total += (size_t)part->argc - 1;
    }
    cr_expect_eq(total, 1000);
    cr_expect_eq(plan.commands.count, plan.part_count);
}

Test(cmd_plan, a_plan_can_be_reused_and_copied) {
    plan_line("MSET a 1 b 2", &cluster);
    plan_line("SET k v", &cluster);
    plan_line("RENAME a b", &cluster);
    plan_line("DEL a b", &cluster);
    struct cmd_plan moved = plan;
    cmd_plan_init(&plan);
    cr_expect_eq(moved.kind, CMD_PLAN_SPLIT);
    cr_expect_eq(moved.parts[1].argv[1], args.argv[2]);
    cmd_plan_free(&moved);
    cr_expect_str_eq(cmd_plan_kind_name(CMD_PLAN_BROADCAST), "broadcast");
}
