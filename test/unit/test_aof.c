/* test_aof.c -- AOF input: the Redis 7 manifest (order, history, quoting as Redis
 * writes it, errors naming file:line), what a file holds, and the command part
 * (annotations, SELECT, transactions, a cut-short end, malformed bytes with their
 * offset). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reader/aof.h"

/* ---- manifest --------------------------------------------------------------- */

static void parse_ok(const char *text, struct aof_file_list *out) {
    char err[512] = "";
    *out = (struct aof_file_list){0};
    int rc = aof_manifest_parse("d/appendonly.aof.manifest", "d", text, strlen(text), out, err,
                                sizeof(err));
    cr_assert_eq(rc, 0, "parse failed: %s", err);
}

static void parse_fails(const char *text, const char *expected) {
    char err[512] = "";
    struct aof_file_list out = {0};
    int rc = aof_manifest_parse("d/m.manifest", "d", text, strlen(text), &out, err, sizeof(err));
    cr_assert_eq(rc, -1, "accepted: %s", text);
    cr_assert(strstr(err, expected) != NULL, "error '%s' lacks '%s'", err, expected);
    aof_file_list_free(&out);
}

Test(aof_manifest, redis_written_manifest_gives_base_then_incr_files) {
    struct aof_file_list files;
    parse_ok("file appendonly.aof.2.base.rdb seq 2 type b\n"
             "file appendonly.aof.3.incr.aof seq 3 type i\n"
             "file appendonly.aof.4.incr.aof seq 4 type i\n",
             &files);
    cr_assert_eq(files.count, 3);
    cr_assert_str_eq(files.items[0].path, "d/appendonly.aof.2.base.rdb");
    cr_assert_eq(files.items[0].type, 'b');
    cr_assert_str_eq(files.items[1].path, "d/appendonly.aof.3.incr.aof");
    cr_assert_str_eq(files.items[2].path, "d/appendonly.aof.4.incr.aof");
    cr_assert_eq(files.items[2].seq, 4);
    cr_assert_eq(files.items[0].last + files.items[1].last, 0);
    cr_assert_eq(files.items[2].last, 1, "only the last file may end cut short");
    aof_file_list_free(&files);
}

Test(aof_manifest, history_files_are_skipped_and_the_base_comes_first_wherever_listed) {
    struct aof_file_list files;
    parse_ok("# a comment\n"
             "file old.1.base.rdb seq 1 type h\n"
             "file old.1.incr.aof seq 1 type h\n"
             "file a.5.incr.aof seq 5 type i\n"
             "file a.2.base.aof seq 2 type b\n"
             "file a.6.incr.aof seq 6 type i\r\n",
             &files);
    cr_assert_eq(files.count, 3);
    cr_assert_str_eq(files.items[0].path, "d/a.2.base.aof");
    cr_assert_str_eq(files.items[1].path, "d/a.5.incr.aof");
    cr_assert_str_eq(files.items[2].path, "d/a.6.incr.aof");
    aof_file_list_free(&files);
}

Test(aof_manifest, a_base_alone_is_the_last_file) {
    struct aof_file_list files;
    parse_ok("file x.1.base.rdb seq 1 type b", &files); /* no final newline */
    cr_assert_eq(files.count, 1);
    cr_assert_eq(files.items[0].last, 1);
    aof_file_list_free(&files);
}

Test(aof_manifest, quoted_names_as_redis_writes_them) {
    /* aofInfoFormat: sdscatrepr when a name needs it (spaces, quotes, bytes). */
    struct aof_file_list files;
    parse_ok("file \"my aof.1.base.rdb\" seq 1 type b\n"
             "file \"q\\\"x\\x41\\tz.2.incr.aof\" seq 2 type i\n"
             "file 'single quoted.3.incr.aof' seq 3 type i\n"
             "FILE plain.4.incr.aof SEQ 4 TYPE i future-key future-value\n",
             &files);
    cr_assert_eq(files.count, 4);
    cr_assert_str_eq(files.items[0].path, "d/my aof.1.base.rdb");
    cr_assert_str_eq(files.items[1].path, "d/q\"xA\tz.2.incr.aof");
    cr_assert_str_eq(files.items[2].path, "d/single quoted.3.incr.aof");
    cr_assert_str_eq(files.items[3].path, "d/plain.4.incr.aof");
    aof_file_list_free(&files);
}

Test(aof_manifest, malformed_manifests_name_file_and_line) {
    parse_fails("file a seq 1 type b\nfile b seq 3 type i\nfile c seq 2 type i\n",
                "d/m.manifest:3: incr file seq 2 after seq 3: not increasing");
    parse_fails("file a seq 1 type b\nfile b seq 2 type b\n", "d/m.manifest:2: a second base file");
    parse_fails("file a seq 1 type x\n", "d/m.manifest:1: unknown file type 'x'");
    parse_fails("file a seq 1\n", "d/m.manifest:1: expected 'file <name> seq <n> type <b|h|i>'");
    parse_fails("file a seq 1 type b extra\n", "d/m.manifest:1: expected");
    parse_fails("file a seq zero type b\n", "d/m.manifest:1: seq is not a positive number");
    parse_fails("name a seq 1 type b\n", "d/m.manifest:1: no file name");
    parse_fails("file a seq 1 type b\nfile \"b seq 2 type i\n",
                "d/m.manifest:2: unbalanced quotes");
    parse_fails("file \"a\"b seq 1 type b\n", "d/m.manifest:1: unbalanced quotes");
    parse_fails("file ../a seq 1 type b\n", "d/m.manifest:1: a file name must be a plain name");
    parse_fails("file \"a\\\\b\" seq 1 type b\n",
                "d/m.manifest:1: a file name must be a plain name");
    parse_fails("file \"a\\x00b\" seq 1 type b\n", "d/m.manifest:1: a file name must be");
    parse_fails("file a seq 1 type b\n\nfile b seq 2 type i\n", "d/m.manifest:2: an empty line");
    parse_fails("", "d/m.manifest: an empty AOF manifest");
    char long_line[1200];
    memset(long_line, 'x', sizeof(long_line) - 1);
    long_line[sizeof(long_line) - 1] = '\0';
    parse_fails(long_line, "d/m.manifest:1: line longer than 1024 bytes");
}

Test(aof_manifest, a_missing_manifest_names_the_file) {
    char err[512];
    struct aof_file_list files = {0};
    cr_assert_eq(aof_manifest_load("/nonexistent/x.manifest", &files, err, sizeof(err)), -1);
    cr_assert(strstr(err, "/nonexistent/x.manifest: cannot open") != NULL, "%s", err);
}

Test(aof_manifest, load_joins_names_to_the_manifest_directory) {
    char dir[] = "/tmp/shake-test-aof-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/appendonly.aof.manifest", dir);
    FILE *f = fopen(path, "w");
    fputs("file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 "
          "type i\n",
          f);
    fclose(f);
    char err[512] = "", expected[300];
    struct aof_file_list files = {0};
    char *names[] = {path};
    cr_assert_eq(aof_expand(names, 1, &files, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(files.count, 2);
    snprintf(expected, sizeof(expected), "%s/appendonly.aof.1.incr.aof", dir);
    cr_assert_str_eq(files.items[1].path, expected);
    aof_file_list_free(&files);
    remove(path);
    rmdir(dir);
}

/* ---- file kinds ------------------------------------------------------------- */

Test(aof_kind, kinds_from_name_and_first_bytes) {
    cr_assert_eq(aof_kind_of("x/appendonly.aof.manifest", "", 0), AOF_KIND_MANIFEST);
    cr_assert_eq(aof_kind_of("m", "file a seq", 10), AOF_KIND_MANIFEST);
    cr_assert_eq(aof_kind_of("a.aof", "REDIS0010", 9), AOF_KIND_RDB);
    cr_assert_eq(aof_kind_of("a.aof", "*2\r\n$", 5), AOF_KIND_COMMANDS);
    cr_assert_eq(aof_kind_of("a.aof", "#TS:1", 5), AOF_KIND_COMMANDS);
    cr_assert_eq(aof_kind_of("a.aof", "", 0), AOF_KIND_EMPTY);
    cr_assert_eq(aof_kind_of("a.aof", "RED", 3), AOF_KIND_COMMANDS); /* then malformed */
}

/* ---- commands --------------------------------------------------------------- */

#define SELECT_3 "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
#define SET_K "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n"
#define ANNOTATION "#TS:1700000000\r\n"

/* Every entry of `text` fed `step` bytes at a time; returns the count. */
static int pull_all(struct aof_commands *commands, const char *text, size_t len, size_t step,
                    struct shake_entry **out, int max) {
    int got = 0;
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        cr_assert_eq(aof_commands_feed(commands, text + i, n), AOF_OK);
        struct shake_entry *entry;
        enum aof_status status;
        while ((status = aof_commands_next(commands, &entry)) == AOF_OK) {
            cr_assert_lt(got, max);
            out[got++] = entry;
        }
        cr_assert_eq(status, AOF_NEED_MORE, "%s", aof_commands_error(commands));
    }
    return got;
}

static void free_all(struct shake_entry **entries, int count) {
    for (int i = 0; i < count; i++)
        shake_entry_free(entries[i]);
}

Test(aof_commands, annotations_are_skipped_and_select_is_tracked_whatever_the_feeding) {
    static const char text[] = ANNOTATION SELECT_3 ANNOTATION SET_K ANNOTATION;
    size_t len = sizeof(text) - 1;
    for (size_t step = 1; step <= len; step++) {
        struct aof_commands *commands = aof_commands_new(2, 100);
        struct shake_entry *entries[4];
        int got = pull_all(commands, text, len, step, entries, 4);
        cr_assert_eq(got, 2, "step %zu", step);
        cr_assert_str_eq(entries[0]->argv[0], "SELECT");
        cr_assert_eq(entries[1]->argc, 3);
        cr_assert(memcmp(entries[1]->argv[2], "a\0b", 3) == 0);
        cr_assert_eq(entries[1]->db, 3);
        cr_assert_eq(entries[1]->source, 2);
        cr_assert_eq(aof_commands_finish(commands), 0);
        cr_assert_eq(aof_commands_offset(commands), 100 + len);
        cr_assert_eq(aof_commands_count(commands), 2);
        free_all(entries, got);
        aof_commands_free(commands);
    }
}

Test(aof_commands, a_file_cut_in_a_command_replays_up_to_the_last_complete_one) {
    static const char text[] = SELECT_3 SET_K "*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$5\r\nab";
    size_t complete = sizeof(SELECT_3 SET_K) - 1;
    struct aof_commands *commands = aof_commands_new(0, 0);
    struct shake_entry *entries[4];
    int got = pull_all(commands, text, sizeof(text) - 1, 7, entries, 4);
    cr_assert_eq(got, 2);
    cr_assert_eq(aof_commands_finish(commands), 1);
    char expected[128];
    snprintf(expected, sizeof(expected), "offset %zu: the file ends in the middle of a command",
             complete);
    cr_assert(strstr(aof_commands_warning(commands), expected) != NULL, "%s",
              aof_commands_warning(commands));
    cr_assert(strstr(aof_commands_warning(commands), "the 26 bytes after it") != NULL, "%s",
              aof_commands_warning(commands));
    free_all(entries, got);
    aof_commands_free(commands);
}

Test(aof_commands, a_transaction_is_handed_out_at_its_exec_and_dropped_without_it) {
    static const char text[] = "*1\r\n$5\r\nMULTI\r\n" SET_K "*1\r\n$4\r\nEXEC\r\n"
                               "*1\r\n$5\r\nmulti\r\n" SET_K;
    size_t second_multi = sizeof("*1\r\n$5\r\nMULTI\r\n" SET_K "*1\r\n$4\r\nEXEC\r\n") - 1;
    struct aof_commands *commands = aof_commands_new(0, 0);
    struct shake_entry *entries[8];
    int got = pull_all(commands, text, sizeof(text) - 1, 1, entries, 8);
    cr_assert_eq(got, 3, "MULTI, SET, EXEC; the open transaction is held");
    cr_assert_str_eq(entries[0]->argv[0], "MULTI");
    cr_assert_str_eq(entries[2]->argv[0], "EXEC");
    cr_assert_eq(aof_commands_finish(commands), 1);
    char expected[64];
    snprintf(expected, sizeof(expected), "offset %zu: MULTI without EXEC", second_multi);
    cr_assert(strstr(aof_commands_warning(commands), expected) != NULL, "%s",
              aof_commands_warning(commands));
    free_all(entries, got);
    aof_commands_free(commands); /* the held entries are freed: ASan checks */
}

static void assert_malformed(const char *text, size_t len, const char *expected) {
    struct aof_commands *commands = aof_commands_new(0, 1000);
    cr_assert_eq(aof_commands_feed(commands, text, len), AOF_OK);
    struct shake_entry *entry = NULL;
    enum aof_status status;
    while ((status = aof_commands_next(commands, &entry)) == AOF_OK)
        shake_entry_free(entry);
    cr_assert_eq(status, AOF_ERR, "accepted: %s", text);
    cr_assert(strstr(aof_commands_error(commands), expected) != NULL, "error '%s' lacks '%s'",
              aof_commands_error(commands), expected);
    aof_commands_free(commands);
}

Test(aof_commands, malformed_bytes_name_their_file_offset) {
    assert_malformed(SET_K "garbage", sizeof(SET_K) - 1 + 7,
                     "offset 1029: expected a command ('*') or an annotation ('#'), found byte "
                     "0x67");
    assert_malformed("*2\r\n$3\r\nGET\r\n:1\r\n", 18,
                     "offset 1013: malformed command (from offset 1000)");
    assert_malformed("*1\r\n$4\r\nPINGxx", 14, "offset 1012: malformed command");
    assert_malformed("*0\r\n", 4, "offset 1003: malformed command");
    assert_malformed("*x\r\n", 4, "offset 1001: malformed");
    assert_malformed("*99999999\r\n", 11, "offset 1008: malformed");
    assert_malformed("*2\r\n$6\r\nSELECT\r\n$2\r\nno\r\n", 24,
                     "offset 1000: SELECT with a bad db number");
    assert_malformed("*1\r\n$5\r\nMULTI\r\n*1\r\n$5\r\nMULTI\r\n", 30,
                     "offset 1015: MULTI inside a transaction");
}

Test(aof_commands, an_empty_command_part_is_complete) {
    struct aof_commands *commands = aof_commands_new(0, 55);
    struct shake_entry *entry = NULL;
    cr_assert_eq(aof_commands_next(commands, &entry), AOF_NEED_MORE);
    cr_assert_eq(aof_commands_finish(commands), 0);
    cr_assert_eq(aof_commands_offset(commands), 55);
    aof_commands_free(commands);
}
