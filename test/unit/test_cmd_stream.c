/* test_cmd_stream.c -- command stream parsing: exact offsets, SELECT tracking,
 * resumable feeding, bad input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "reader/cmd_stream.h"

static const char *stream_text = "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
                                 "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n"
                                 "*1\r\n$4\r\nPING\r\n";
#define SELECT_LEN 23
#define SET_LEN 29
#define STREAM_LEN (SELECT_LEN + SET_LEN + 14)

static void assert_stream_entries(struct cmd_stream *stream, struct shake_entry **entries) {
    cr_assert_eq(entries[0]->offset, 1000 + SELECT_LEN);
    cr_assert_str_eq(entries[0]->argv[0], "SELECT");
    cr_assert_eq(entries[0]->db, 3);
    cr_assert_eq(entries[1]->offset, 1000 + SELECT_LEN + SET_LEN);
    cr_assert_eq(entries[1]->argc, 3);
    cr_assert_eq(entries[1]->argv_len[2], 3);
    cr_assert(memcmp(entries[1]->argv[2], "a\0b", 3) == 0);
    cr_assert_eq(entries[1]->db, 3);
    cr_assert_eq(entries[2]->offset, 1000 + STREAM_LEN);
    cr_assert_eq(cmd_stream_offset(stream), 1000 + STREAM_LEN);
    cr_assert_eq(cmd_stream_buffered(stream), 0);
}

Test(cmd_stream, offsets_count_every_byte_of_each_command) {
    struct cmd_stream *stream = cmd_stream_new(0, 1000, 0);
    struct shake_entry *entries[3];
    cr_assert_eq(cmd_stream_feed(stream, stream_text, STREAM_LEN), CMD_STREAM_OK);
    for (int i = 0; i < 3; i++) cr_assert_eq(cmd_stream_next(stream, &entries[i]), CMD_STREAM_OK);
    struct shake_entry *none = NULL;
    cr_assert_eq(cmd_stream_next(stream, &none), CMD_STREAM_NEED_MORE);
    assert_stream_entries(stream, entries);
    for (int i = 0; i < 3; i++) shake_entry_free(entries[i]);
    cmd_stream_free(stream);
}

Test(cmd_stream, byte_at_a_time_gives_the_same_entries) {
    struct cmd_stream *stream = cmd_stream_new(0, 1000, 0);
    struct shake_entry *entries[3];
    int got = 0;
    for (size_t i = 0; i < STREAM_LEN; i++) {
        cmd_stream_feed(stream, stream_text + i, 1);
        struct shake_entry *entry;
        while (cmd_stream_next(stream, &entry) == CMD_STREAM_OK) entries[got++] = entry;
    }
    cr_assert_eq(got, 3);
    assert_stream_entries(stream, entries);
    for (int i = 0; i < 3; i++) shake_entry_free(entries[i]);
    cmd_stream_free(stream);
}

Test(cmd_stream, offsets_survive_reader_buffer_compaction) {
    struct cmd_stream *stream = cmd_stream_new(0, 0, 0);
    char buf[64];
    uint64_t expected = 0;
    for (int i = 0; i < 5000; i++) {
        char key[16];
        int key_len = snprintf(key, sizeof(key), "k%d", i);
        int n = snprintf(buf, sizeof(buf), "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n",
                         key_len, key);
        cmd_stream_feed(stream, buf, (size_t)n);
        expected += (uint64_t)n;
        if (i % 7 == 0) {
            struct shake_entry *entry;
            while (cmd_stream_next(stream, &entry) == CMD_STREAM_OK) {
                cr_assert_leq(entry->offset, expected);
                shake_entry_free(entry);
            }
            cr_assert_eq(cmd_stream_offset(stream), expected);
        }
    }
    struct shake_entry *entry;
    while (cmd_stream_next(stream, &entry) == CMD_STREAM_OK) shake_entry_free(entry);
    cr_assert_eq(cmd_stream_offset(stream), expected);
    cmd_stream_free(stream);
}

Test(cmd_stream, a_reply_that_is_not_a_command_is_an_error) {
    struct cmd_stream *stream = cmd_stream_new(0, 42, 0);
    struct shake_entry *entry = NULL;
    cmd_stream_feed(stream, "+OK\r\n", 5);
    cr_assert_eq(cmd_stream_next(stream, &entry), CMD_STREAM_ERR);
    cr_assert_str_eq(cmd_stream_error(stream),
                     "offset 42: expected a command (an array of bulk strings)");
    cmd_stream_free(stream);
}

Test(cmd_stream, bad_select_and_protocol_errors_are_reported) {
    struct cmd_stream *stream = cmd_stream_new(0, 0, 0);
    struct shake_entry *entry = NULL;
    cmd_stream_feed(stream, "*2\r\n$6\r\nselect\r\n$1\r\nx\r\n", 23);
    cr_assert_eq(cmd_stream_next(stream, &entry), CMD_STREAM_ERR);
    cr_assert(strstr(cmd_stream_error(stream), "SELECT") != NULL);
    cmd_stream_free(stream);
    stream = cmd_stream_new(0, 0, 0);
    cmd_stream_feed(stream, "*2\r\n!!!\r\n", 9);
    cr_assert_eq(cmd_stream_next(stream, &entry), CMD_STREAM_ERR);
    cr_assert(strstr(cmd_stream_error(stream), "offset 0: ") == cmd_stream_error(stream));
    cmd_stream_free(stream);
}

Test(cmd_stream, a_big_backlog_fed_at_once_parses_across_slices) {
    /* 20000 small commands and one 200 KB argument in a single feed: commands cross
     * the 64 KB slices the parser is given, and one spans several. */
    struct cmd_stream *stream = cmd_stream_new(0, 0, 0);
    size_t cap = 2 * 1024 * 1024, used = 0;
    char *buf = malloc(cap);
    uint64_t ends[20001];
    for (int i = 0; i < 20000; i++) {
        if (i == 10000) {
            used += (size_t)sprintf(buf + used, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$204800\r\n");
            memset(buf + used, 'x', 204800);
            used += 204800;
            used += (size_t)sprintf(buf + used, "\r\n");
            ends[20000] = used;
        }
        char key[16];
        int key_len = snprintf(key, sizeof(key), "k%d", i);
        used += (size_t)sprintf(buf + used, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n", key_len,
                                key);
        ends[i] = used;
    }
    cr_assert_eq(cmd_stream_feed(stream, buf, used), CMD_STREAM_OK);
    cr_assert_eq(cmd_stream_buffered(stream), used);
    struct shake_entry *entry;
    int count = 0, saw_big = 0;
    while (cmd_stream_next(stream, &entry) == CMD_STREAM_OK) {
        if (entry->argv_len[1] == 3 && memcmp(entry->argv[1], "big", 3) == 0) {
            cr_assert_eq(entry->argv_len[2], 204800);
            cr_assert_eq(entry->offset, ends[20000]);
            saw_big = 1;
        } else {
            cr_assert_eq(entry->offset, ends[count], "command %d", count);
            count++;
        }
        shake_entry_free(entry);
    }
    cr_assert_eq(count, 20000);
    cr_assert(saw_big);
    cr_assert_eq(cmd_stream_offset(stream), used);
    cr_assert_eq(cmd_stream_buffered(stream), 0);
    free(buf);
    cmd_stream_free(stream);
}

/* The object functions refuse what is not a flat array of bulk strings wherever it
 * appears, also after some arguments were built (freed with the half-built entry:
 * ASan's leak check sees it). */
Test(cmd_stream, anything_but_bulk_strings_inside_a_command_is_an_error) {
    static const char *bad[] = {
        "*3\r\n$3\r\nSET\r\n:1\r\n$1\r\nv\r\n",      /* an integer argument */
        "*3\r\n$3\r\nSET\r\n$-1\r\n$1\r\nv\r\n",     /* a nil argument */
        "*3\r\n$3\r\nSET\r\n+k\r\n$1\r\nv\r\n",      /* a status argument */
        "*2\r\n$3\r\nSET\r\n*1\r\n$1\r\nk\r\n",      /* a nested array */
        "*0\r\n",                                    /* an empty array */
        ":5\r\n",                                    /* an integer alone */
        "*-1\r\n",                                   /* a nil array */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cmd_stream *stream = cmd_stream_new(0, 7, 0);
        struct shake_entry *entry = NULL;
        cmd_stream_feed(stream, bad[i], strlen(bad[i]));
        cr_assert_eq(cmd_stream_next(stream, &entry), CMD_STREAM_ERR, "input %zu", i);
        cr_assert(strstr(cmd_stream_error(stream), "offset 7: ") == cmd_stream_error(stream));
        cr_assert(strstr(cmd_stream_error(stream), "array") != NULL, "input %zu: %s", i,
                  cmd_stream_error(stream));
        cmd_stream_free(stream);
    }
}

/* A command cut short is held half-built until the rest comes, or freed with the
 * stream; one with more arguments than fit in the entry gets its own arrays. */
Test(cmd_stream, half_built_and_long_commands) {
    struct cmd_stream *stream = cmd_stream_new(0, 0, 0);
    struct shake_entry *entry = NULL;
    cmd_stream_feed(stream, "*8\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n", 22);
    cr_assert_eq(cmd_stream_next(stream, &entry), CMD_STREAM_NEED_MORE);
    cmd_stream_feed(stream, "$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n$2\r\nff\r\n", 43);
    cr_assert_eq(cmd_stream_next(stream, &entry), CMD_STREAM_OK);
    cr_assert_eq(entry->argc, 8);
    cr_assert_str_eq(entry->argv[0], "RPUSH");
    cr_assert_str_eq(entry->argv[7], "ff");
    cr_assert_eq(entry->argv_len[7], 2);
    cr_assert_eq(entry->offset, 65);
    shake_entry_free(entry);
    /* Half a command left in the reader when the stream is freed. */
    cmd_stream_feed(stream, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n", 20);
    cr_assert_eq(cmd_stream_next(stream, &entry), CMD_STREAM_NEED_MORE);
    cmd_stream_free(stream);
    shake_entry_trim();
}
