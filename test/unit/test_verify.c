/* test_verify.c -- the pure rules of `shake verify` (shake/verify_util.c): the
 * sample, TTL tolerance, key escaping, INFO keyspace, reverse rename candidates,
 * reply comparison; and `shake verify` / `shake cutover` argument parsing. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "shake/cutover.h"
#include "shake/verify.h"
#include "shake/verify_util.h"

Test(verify_sample, is_deterministic_and_close_to_the_percentage) {
    int in = 0;
    char key[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof(key), "key:%d", i);
        int first = verify_sampled(key, (size_t)n, 30);
        cr_assert_eq(first, verify_sampled(key, (size_t)n, 30));
        in += first;
    }
    cr_assert(in > 2700 && in < 3300, "30%% sample took %d of 10000", in);
    cr_assert(verify_sampled("x", 1, 100));
    cr_assert(!verify_sampled("x", 1, 0));
}

Test(verify_sample, a_bigger_sample_contains_the_smaller) {
    char key[32];
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i);
        if (verify_sampled(key, (size_t)n, 10)) cr_assert(verify_sampled(key, (size_t)n, 50));
    }
}

Test(verify_ttl, none_only_equals_none_and_times_within_tolerance) {
    cr_assert(verify_ttl_equal(-1, -1, 2000));
    cr_assert(!verify_ttl_equal(-1, 5000, 2000));
    cr_assert(!verify_ttl_equal(5000, -1, 2000));
    cr_assert(verify_ttl_equal(10000, 8000, 2000));
    cr_assert(!verify_ttl_equal(10000, 7999, 2000));
    cr_assert(!verify_ttl_equal(-2, -1, 2000));
}

Test(verify_escape, quotes_binary_and_cuts_long_keys) {
    char out[128];
    verify_escape("a\"b\\c\x00\xff", 7, 64, out, sizeof(out));
    cr_assert_str_eq(out, "\"a\\\"b\\\\c\\x00\\xff\"");
    verify_escape("abcdefghij", 10, 4, out, sizeof(out));
    cr_assert_str_eq(out, "\"abcd\"...(10 bytes)");
    char tiny[12];
    verify_escape("\xff\xff\xff\xff\xff\xff", 6, 64, tiny, sizeof(tiny));
    cr_assert(strlen(tiny) < sizeof(tiny));
    cr_assert_eq(tiny[0], '"');
}

Test(verify_keyspace, lists_the_dbs_in_order) {
    int dbs[8];
    const char *info = "# Keyspace\r\ndb5:keys=1,expires=0,avg_ttl=0\r\n"
                       "db0:keys=10,expires=2,avg_ttl=5\r\ndb12:keys=3,expires=0,avg_ttl=0\r\n";
    int n = verify_parse_keyspace(info, dbs, 8);
    cr_assert_eq(n, 3);
    cr_assert(dbs[0] == 0 && dbs[1] == 5 && dbs[2] == 12);
    cr_assert_eq(verify_parse_keyspace("# Keyspace\r\n", dbs, 8), 0);
}

Test(verify_candidates, reverse_every_rename_whose_target_prefix_matches) {
    struct conf_rename renames[2] = {{"old:", "new:"}, {"a:", "new:x:"}};
    struct conf_filter filter;
    memset(&filter, 0, sizeof(filter));
    filter.renames = renames;
    filter.rename_count = 2;
    struct verify_candidate out[4];
    int n = verify_rename_candidates(&filter, "new:x:1", 7, out, 4);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(out[0].key, "new:x:1"); /* unrenamed: the key itself */
    cr_assert_str_eq(out[1].key, "old:x:1");
    cr_assert_str_eq(out[2].key, "a:1");
    for (int i = 0; i < n; i++) free(out[i].key);
    n = verify_rename_candidates(&filter, "plain", 5, out, 4);
    cr_assert_eq(n, 1);
    free(out[0].key);
}

static redisReply *verify_test_string(const char *text) {
    redisReply *reply = calloc(1, sizeof(*reply));
    reply->type = REDIS_REPLY_STRING;
    reply->str = strdup(text);
    reply->len = strlen(text);
    return reply;
}

static redisReply *verify_test_array(size_t count, redisReply **items) {
    redisReply *reply = calloc(1, sizeof(*reply));
    reply->type = REDIS_REPLY_ARRAY;
    reply->elements = count;
    reply->element = calloc(count, sizeof(*items));
    memcpy(reply->element, items, count * sizeof(*items));
    return reply;
}

Test(verify_reply, compares_trees_and_finds_fields) {
    redisReply *a = verify_test_array(
        4, (redisReply *[]){verify_test_string("name"), verify_test_string("g1"),
                            verify_test_string("last-delivered-id"), verify_test_string("5-0")});
    redisReply *b = verify_test_array(
        4, (redisReply *[]){verify_test_string("name"), verify_test_string("g1"),
                            verify_test_string("last-delivered-id"), verify_test_string("0-0")});
    cr_assert(verify_reply_equal(a, a));
    cr_assert(!verify_reply_equal(a, b));
    cr_assert(verify_reply_equal(verify_reply_field(a, "name"), verify_reply_field(b, "name")));
    cr_assert(!verify_reply_equal(verify_reply_field(a, "last-delivered-id"),
                                  verify_reply_field(b, "last-delivered-id")));
    cr_assert_null(verify_reply_field(a, "entries-read"));
    char text[64];
    verify_reply_text(verify_reply_field(b, "last-delivered-id"), text, sizeof(text));
    cr_assert_str_eq(text, "\"0-0\"");
    verify_reply_text(a, text, sizeof(text));
    cr_assert_str_eq(text, "[4 items]");
    freeReplyObject(a);
    freeReplyObject(b);
}

Test(verify_args, defaults_and_refusals) {
    struct verify_options options;
    const char *path;
    char err[256];
    char *ok[] = {"-conf", "x.ini", "--sample", "50", "--rounds", "2"};
    cr_assert_eq(verify_parse_args(6, ok, &path, &options, err, sizeof(err)), 0);
    cr_assert_str_eq(path, "x.ini");
    cr_assert(options.sample_percent == 50 && options.rounds == 2);
    cr_assert_eq(options.ttl_tolerance_ms, 2000);
    char *bad_sample[] = {"-conf", "x.ini", "--sample", "0"};
    cr_assert_eq(verify_parse_args(4, bad_sample, &path, &options, err, sizeof(err)), -1);
    char *bad_rounds[] = {"-conf", "x.ini", "--rounds", "1.5"};
    cr_assert_eq(verify_parse_args(4, bad_rounds, &path, &options, err, sizeof(err)), -1);
    char *no_conf[] = {"--rounds", "2"};
    cr_assert_eq(verify_parse_args(2, no_conf, &path, &options, err, sizeof(err)), -1);
}

Test(cutover_args, pause_and_timeout_are_positive_seconds) {
    struct cutover_options options;
    const char *path;
    char err[256];
    char *ok[] = {"-conf", "x.ini", "--pause", "2.5", "--timeout", "9"};
    cr_assert_eq(cutover_parse_args(6, ok, &path, &options, err, sizeof(err)), 0);
    cr_assert(options.pause_s == 2.5 && options.timeout_s == 9);
    char *defaults[] = {"-conf", "x.ini"};
    cr_assert_eq(cutover_parse_args(2, defaults, &path, &options, err, sizeof(err)), 0);
    cr_assert(options.pause_s == 0 && options.timeout_s == 30);
    char *bad[] = {"-conf", "x.ini", "--pause", "-1"};
    cr_assert_eq(cutover_parse_args(4, bad, &path, &options, err, sizeof(err)), -1);
    char *dangling[] = {"-conf"};
    cr_assert_eq(cutover_parse_args(1, dangling, &path, &options, err, sizeof(err)), -1);
}
