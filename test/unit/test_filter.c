/* test_filter.c -- the [filter] section and the filter: every rule on KEY, CHUNK,
 * FUNCTION and CMD entries, block-over-allow precedence, empty allow lists, db_map,
 * renames (longest prefix, both phases), the split of multi-key commands, the
 * refusal of unsplittable ones, counters, and the config errors (bad regex with
 * file:line, bad group, type, db, rename pair). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "filter/filter.h"
#include "filter/groups.h"
#include "filter/regex.h"

#define HEAD "[source]\ntype = rdb\nfiles = x.rdb\n[target]\naddress = 127.0.0.1:7000\n"

/* A filter from a [filter] section (and optional [target] lines); the conf lives
 * in the caller's struct, which must outlive the filter. */
static struct filter *make_filter(struct shake_conf *conf, const char *target_lines,
                                  const char *filter_lines) {
    char text[4096], err[CONF_ERR_LEN] = "";
    snprintf(text, sizeof(text), HEAD "%s[filter]\n%s", target_lines, filter_lines);
    conf_init(conf);
    cr_assert_eq(conf_load_string(conf, "t.ini", text, err, sizeof(err)), 0, "%s", err);
    struct filter *filter = filter_new(conf, NULL, err, sizeof(err));
    cr_assert_not_null(filter, "%s", err);
    return filter;
}

static struct shake_entry *key_entry(enum shake_entry_kind kind, int db, const char *key,
                                     enum shake_value_type type) {
    struct shake_entry *entry = shake_entry_new(kind);
    entry->db = db;
    entry->key = strdup(key);
    entry->key_len = strlen(key);
    entry->type = type;
    if (kind == SHAKE_ENTRY_CHUNK) entry->chunk_flags = SHAKE_CHUNK_FIRST | SHAKE_CHUNK_LAST;
    return entry;
}

/* A CMD entry from words separated by single spaces. */
static struct shake_entry *cmd_entry(int db, const char *line) {
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_CMD);
    char *copy = strdup(line), *save = NULL;
    entry->db = db;
    entry->argv = calloc(64, sizeof(char *));
    entry->argv_len = calloc(64, sizeof(size_t));
    for (char *w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        entry->argv[entry->argc] = strdup(w);
        entry->argv_len[entry->argc++] = strlen(w);
    }
    free(copy);
    return entry;
}

/* The argv of a CMD entry joined by spaces. */
static const char *joined(const struct shake_entry *entry) {
    static char out[1024];
    out[0] = '\0';
    for (int i = 0; i < entry->argc; i++) {
        if (i > 0) strcat(out, " ");
        strncat(out, entry->argv[i], entry->argv_len[i]);
    }
    return out;
}

/* The verdict for one string key in db 0. */
static enum filter_verdict key_verdict(struct filter *filter, const char *key) {
    struct shake_entry *entry = key_entry(SHAKE_ENTRY_KEY, 0, key, SHAKE_TYPE_STRING);
    enum filter_verdict verdict = filter_apply(filter, entry);
    shake_entry_free(entry);
    return verdict;
}

static enum filter_verdict cmd_verdict(struct filter *filter, int db, const char *line) {
    struct shake_entry *entry = cmd_entry(db, line);
    enum filter_verdict verdict = filter_apply(filter, entry);
    shake_entry_free(entry);
    return verdict;
}

Test(filter, no_rule_keeps_everything_and_maps_the_db) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "db_map = 1:0\n", "");
    cr_assert_not(filter_is_active(filter));
    struct shake_entry *entry = key_entry(SHAKE_ENTRY_KEY, 1, "k", SHAKE_TYPE_HASH);
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_eq(entry->db, 0);
    shake_entry_free(entry);
    entry = cmd_entry(1, "SET k v");
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_eq(entry->db, 0);
    shake_entry_free(entry);
    cr_assert_eq(filter_stats(filter)->keys_filtered, 0);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, key_prefix_allow_and_block) {
    struct shake_conf conf;
    struct filter *filter =
        make_filter(&conf, "", "allow_key_prefix = user:, order:\nblock_key_prefix = user:tmp:\n");
    cr_assert_eq(key_verdict(filter, "user:1"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "order:7"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "user:tmp:1"), FILTER_DROP, "block wins over allow");
    cr_assert_eq(key_verdict(filter, "session:1"), FILTER_DROP, "not in the allow list");
    cr_assert_eq(key_verdict(filter, "use"), FILTER_DROP, "shorter than the prefix");
    cr_assert_eq(filter_stats(filter)->keys_filtered, 3);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, key_suffix_allow_and_block) {
    struct shake_conf conf;
    struct filter *filter =
        make_filter(&conf, "", "allow_key_suffix = :v2\nblock_key_suffix = :lock\n");
    cr_assert_eq(key_verdict(filter, "a:v2"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, ":v2"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "a:v1"), FILTER_DROP);
    cr_assert_eq(key_verdict(filter, "v2"), FILTER_DROP);
    filter_free(filter);
    conf_free(&conf);
    filter = make_filter(&conf, "", "block_key_suffix = :lock\n");
    cr_assert_eq(key_verdict(filter, "job:lock"), FILTER_DROP);
    cr_assert_eq(key_verdict(filter, "job:lock:x"), FILTER_KEEP, "empty allow list: everything");
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, exact_keys_repeat_and_escape_commas) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "",
                                        "allow_key = a, b\nallow_key = c\\,d\n"
                                        "block_key = b\n");
    cr_assert_eq(key_verdict(filter, "a"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "c,d"), FILTER_KEEP, "an escaped comma is part of the key");
    cr_assert_eq(key_verdict(filter, "c"), FILTER_DROP);
    cr_assert_eq(key_verdict(filter, "b"), FILTER_DROP, "block wins");
    cr_assert_eq(key_verdict(filter, "ab"), FILTER_DROP, "exact, not prefix");
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, many_exact_keys_use_the_hash_set) {
    struct shake_conf conf;
    char lines[4096] = "allow_key = ";
    for (int i = 0; i < 300; i++) {
        char item[16];
        snprintf(item, sizeof(item), "%sk%d", i ? "," : "", i);
        strcat(lines, item);
    }
    strcat(lines, "\n");
    struct filter *filter = make_filter(&conf, "", lines);
    cr_assert_eq(key_verdict(filter, "k0"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "k299"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "k300"), FILTER_DROP);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, regex_allow_and_block_match_anywhere_unless_anchored) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "",
                                        "allow_key_regex = ^user:[0-9]{1,3}$\n"
                                        "allow_key_regex = cache\n"
                                        "block_key_regex = ^user:0\n");
    cr_assert_eq(key_verdict(filter, "user:42"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "user:4242"), FILTER_DROP, "anchored at the end");
    cr_assert_eq(key_verdict(filter, "user:07"), FILTER_DROP, "block wins");
    cr_assert_eq(key_verdict(filter, "x:cache:y"), FILTER_KEEP, "unanchored: anywhere");
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, regex_matches_binary_keys_bytewise) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "", "block_key_regex = \\xff$\n");
    struct shake_entry *entry = key_entry(SHAKE_ENTRY_KEY, 0, "x", SHAKE_TYPE_STRING);
    free(entry->key);
    entry->key = malloc(3);
    memcpy(entry->key, "a\0\xff", 3);
    entry->key_len = 3;
    cr_assert_eq(filter_apply(filter, entry), FILTER_DROP);
    shake_entry_free(entry);
    cr_assert_eq(key_verdict(filter, "ab"), FILTER_KEEP);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, allow_rules_of_different_kinds_are_alternatives) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "",
                                        "allow_key_prefix = a:\nallow_key_suffix = :z\n"
                                        "allow_key = exact\nallow_key_regex = ^r[0-9]$\n");
    cr_assert_eq(key_verdict(filter, "a:1"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "1:z"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "exact"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "r5"), FILTER_KEEP);
    cr_assert_eq(key_verdict(filter, "b:1"), FILTER_DROP);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, dbs_are_judged_before_the_db_map) {
    struct shake_conf conf;
    struct filter *filter =
        make_filter(&conf, "db_map = 2:0\n", "allow_db = 0, 2\nallow_db = 3\nblock_db = 3\n");
    struct shake_entry *entry = key_entry(SHAKE_ENTRY_KEY, 2, "k", SHAKE_TYPE_STRING);
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_eq(entry->db, 0, "mapped after the verdict");
    shake_entry_free(entry);
    entry = key_entry(SHAKE_ENTRY_KEY, 1, "k", SHAKE_TYPE_STRING);
    cr_assert_eq(filter_apply(filter, entry), FILTER_DROP, "not allowed");
    shake_entry_free(entry);
    entry = key_entry(SHAKE_ENTRY_KEY, 3, "k", SHAKE_TYPE_STRING);
    cr_assert_eq(filter_apply(filter, entry), FILTER_DROP, "block wins");
    shake_entry_free(entry);
    cr_assert_eq(cmd_verdict(filter, 1, "SET k v"), FILTER_DROP, "commands too");
    cr_assert_eq(cmd_verdict(filter, 2, "SET k v"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 1, "SELECT 1"), FILTER_KEEP, "SELECT always passes");
    cr_assert_eq(cmd_verdict(filter, 1, "PING"), FILTER_KEEP);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, types_on_keys_and_chunks_count_a_chunked_key_once) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "", "block_type = stream, hash\n");
    struct shake_entry *entry = key_entry(SHAKE_ENTRY_KEY, 0, "s", SHAKE_TYPE_STREAM);
    cr_assert_eq(filter_apply(filter, entry), FILTER_DROP);
    shake_entry_free(entry);
    entry = key_entry(SHAKE_ENTRY_KEY, 0, "l", SHAKE_TYPE_LIST);
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    shake_entry_free(entry);
    for (int i = 0; i < 3; i++) {
        entry = key_entry(SHAKE_ENTRY_CHUNK, 0, "h", SHAKE_TYPE_HASH);
        entry->chunk_flags = i == 0 ? SHAKE_CHUNK_FIRST : (i == 2 ? SHAKE_CHUNK_LAST : 0);
        cr_assert_eq(filter_apply(filter, entry), FILTER_DROP);
        shake_entry_free(entry);
    }
    cr_assert_eq(filter_stats(filter)->keys_filtered, 2);
    filter_free(filter);
    conf_free(&conf);

    filter = make_filter(&conf, "", "allow_type = zset\n");
    entry = key_entry(SHAKE_ENTRY_KEY, 0, "z", SHAKE_TYPE_ZSET);
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    shake_entry_free(entry);
    entry = key_entry(SHAKE_ENTRY_KEY, 0, "s", SHAKE_TYPE_STRING);
    cr_assert_eq(filter_apply(filter, entry), FILTER_DROP);
    shake_entry_free(entry);
    cr_assert_eq(cmd_verdict(filter, 0, "ZADD z 1 a"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "GEOADD g 1 2 a"), FILTER_KEEP, "geo keys are zsets");
    cr_assert_eq(cmd_verdict(filter, 0, "SET s v"), FILTER_DROP, "judged by its group's type");
    cr_assert_eq(cmd_verdict(filter, 0, "SETBIT s 1 1"), FILTER_DROP, "bitmaps are strings");
    cr_assert_eq(cmd_verdict(filter, 0, "DEL s"), FILTER_KEEP, "generic: any type");
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, commands_by_name_and_subcommand) {
    struct shake_conf conf;
    struct filter *filter =
        make_filter(&conf, "", "block_command = FLUSHALL, function|flush\nblock_command = del\n");
    cr_assert_eq(cmd_verdict(filter, 0, "flushall"), FILTER_DROP, "case-insensitive");
    cr_assert_eq(cmd_verdict(filter, 0, "DEL a"), FILTER_DROP);
    cr_assert_eq(cmd_verdict(filter, 0, "FUNCTION FLUSH"), FILTER_DROP);
    cr_assert_eq(cmd_verdict(filter, 0, "FUNCTION DELETE lib"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "SET a b"), FILTER_KEEP);
    cr_assert_eq(filter_stats(filter)->commands_filtered, 3);
    filter_free(filter);
    conf_free(&conf);

    filter = make_filter(&conf, "", "allow_command = set, xgroup\n");
    cr_assert_eq(cmd_verdict(filter, 0, "SET a b"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "XGROUP CREATE s g $"), FILTER_KEEP, "every sub");
    cr_assert_eq(cmd_verdict(filter, 0, "INCR a"), FILTER_DROP);
    for (const char *const *line =
             (const char *const[]){"SELECT 3", "PING", "REPLCONF GETACK *", "MULTI", "EXEC", NULL};
         *line; line++)
        cr_assert_eq(cmd_verdict(filter, 0, *line), FILTER_KEEP, "%s always passes", *line);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, command_groups) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "", "block_command_group = pubsub, scripting\n");
    cr_assert_eq(cmd_verdict(filter, 0, "PUBLISH ch m"), FILTER_DROP);
    cr_assert_eq(cmd_verdict(filter, 0, "EVALSHA abc 0"), FILTER_DROP);
    cr_assert_eq(cmd_verdict(filter, 0, "SET a b"), FILTER_KEEP);
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_FUNCTION);
    entry->key = strdup("#!lua name=lib\n");
    entry->key_len = strlen(entry->key);
    cr_assert_eq(filter_apply(filter, entry), FILTER_DROP, "a library is FUNCTION LOAD");
    shake_entry_free(entry);
    cr_assert_eq(filter_stats(filter)->functions_filtered, 1);
    filter_free(filter);
    conf_free(&conf);

    filter = make_filter(&conf, "", "allow_command_group = string, generic\n");
    cr_assert_eq(cmd_verdict(filter, 0, "INCRBY a 2"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "EXPIRE a 2"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "HSET h f v"), FILTER_DROP);
    cr_assert_eq(cmd_verdict(filter, 0, "MYMODULE.CMD x"), FILTER_DROP, "unknown: module group");
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, group_table_is_sorted_and_answers) {
    cr_assert(filter_groups_table_sorted());
    cr_assert_eq(filter_group_of_command("ZADD", 4), FILTER_GROUP_SORTED_SET);
    cr_assert_eq(filter_group_of_command("restore-asking", 14), FILTER_GROUP_SERVER);
    cr_assert_eq(filter_group_of_command("georadius_ro", 12), FILTER_GROUP_GEO);
    cr_assert_eq(filter_group_of_command("setx", 3), FILTER_GROUP_STRING, "length is honoured");
    cr_assert_eq(filter_group_of_command("zzz", 3), FILTER_GROUP_MODULE);
    cr_assert_eq(filter_group_from_name("Sorted-Set"), FILTER_GROUP_SORTED_SET);
    cr_assert_eq(filter_group_from_name("sortedset"), -1);
}

Test(filter, keyless_commands_pass_key_rules) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "", "allow_key_prefix = a:\n");
    cr_assert_eq(cmd_verdict(filter, 0, "FLUSHDB"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "PUBLISH ch m"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "SET a:1 v"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "SET b:1 v"), FILTER_DROP);
    cr_assert_eq(cmd_verdict(filter, 0, "EVAL x 2 a:1 a:2 arg"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "EVAL x 1 b:1 a:2"), FILTER_DROP, "a:2 is an argument");
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, multi_key_commands_are_split_per_key) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "", "block_key_prefix = tmp:\n");
    struct shake_entry *entry = cmd_entry(0, "DEL a tmp:1 b tmp:2");
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_str_eq(joined(entry), "DEL a b");
    shake_entry_free(entry);
    entry = cmd_entry(0, "MSET tmp:1 x a 1 tmp:2 y b 2");
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_str_eq(joined(entry), "MSET a 1 b 2");
    shake_entry_free(entry);
    entry = cmd_entry(0, "unlink tmp:1 tmp:2");
    cr_assert_eq(filter_apply(filter, entry), FILTER_DROP, "no key left");
    shake_entry_free(entry);
    cr_assert_eq(cmd_verdict(filter, 0, "MSETNX a 1 tmp:x 2"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "EXISTS tmp:x a"), FILTER_KEEP);
    cr_assert_eq(cmd_verdict(filter, 0, "TOUCH tmp:x a"), FILTER_KEEP);
    cr_assert_eq(filter_stats(filter)->commands_split, 5);
    cr_assert_eq(filter_stats(filter)->commands_filtered, 1);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, unsplittable_mixed_commands_are_refused_with_their_keys) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "", "block_key_prefix = tmp:\n");
    struct shake_entry *entry = cmd_entry(0, "SUNIONSTORE dst tmp:1 src");
    cr_assert_eq(filter_apply(filter, entry), FILTER_ERROR);
    const char *err = filter_error(filter);
    cr_assert(strstr(err, "SUNIONSTORE") != NULL, "%s", err);
    cr_assert(strstr(err, "kept: dst src") != NULL, "%s", err);
    cr_assert(strstr(err, "dropped: tmp:1") != NULL, "%s", err);
    cr_assert_str_eq(joined(entry), "SUNIONSTORE dst tmp:1 src", "left untouched");
    shake_entry_free(entry);
    cr_assert_eq(cmd_verdict(filter, 0, "RENAME a tmp:a"), FILTER_ERROR);
    cr_assert_eq(cmd_verdict(filter, 0, "RENAME tmp:b tmp:a"), FILTER_DROP);
    cr_assert_eq(filter_stats(filter)->commands_refused, 2);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, unknown_commands_are_refused_only_when_keys_matter) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "", "block_key = x\n");
    cr_assert_eq(cmd_verdict(filter, 0, "HYPOTHETICALCMD k v"), FILTER_ERROR);
    cr_assert(strstr(filter_error(filter), "HYPOTHETICALCMD") != NULL, "%s", filter_error(filter));
    filter_free(filter);
    conf_free(&conf);
    filter = make_filter(&conf, "", "block_command = get\n");
    cr_assert_eq(cmd_verdict(filter, 0, "HYPOTHETICALCMD k v"), FILTER_KEEP);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, rename_prefix_in_keys_longest_first) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "",
                                        "rename_key_prefix = ab\\::c\nrename_key_prefix = a:x, "
                                        "long-old-prefix:n\n");
    struct shake_entry *entry = key_entry(SHAKE_ENTRY_KEY, 0, "a1", SHAKE_TYPE_STRING);
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_eq(entry->key_len, 2);
    cr_assert_str_eq(entry->key, "x1");
    shake_entry_free(entry);
    entry = key_entry(SHAKE_ENTRY_CHUNK, 0, "ab:1", SHAKE_TYPE_LIST);
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_str_eq(entry->key, "c1", "'ab:' is longer than 'a'");
    shake_entry_free(entry);
    entry = key_entry(SHAKE_ENTRY_KEY, 0, "long-old-prefix:key", SHAKE_TYPE_STRING);
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_str_eq(entry->key, "n:key");
    cr_assert_eq(entry->key_len, 5);
    shake_entry_free(entry);
    entry = key_entry(SHAKE_ENTRY_KEY, 0, "zzz", SHAKE_TYPE_STRING);
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_str_eq(entry->key, "zzz");
    shake_entry_free(entry);
    cr_assert_eq(filter_stats(filter)->keys_renamed, 3);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, rename_applies_to_command_keys_only) {
    struct shake_conf conf;
    struct filter *filter =
        make_filter(&conf, "", "rename_key_prefix = old\\::new-longer\\:\nblock_key = old:x\n");
    struct shake_entry *entry = cmd_entry(0, "RENAME old:a old:b");
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_str_eq(joined(entry), "RENAME new-longer:a new-longer:b");
    shake_entry_free(entry);
    entry = cmd_entry(0, "SET old:a old:value");
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_str_eq(joined(entry), "SET new-longer:a old:value", "values are not keys");
    shake_entry_free(entry);
    entry = cmd_entry(0, "MSET old:x 1 old:y 2");
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_str_eq(joined(entry), "MSET new-longer:y 2",
                     "judged by the source name, then renamed");
    shake_entry_free(entry);
    entry = cmd_entry(0, "EVAL s 2 old:a b old:c");
    cr_assert_eq(filter_apply(filter, entry), FILTER_KEEP);
    cr_assert_str_eq(joined(entry), "EVAL s 2 new-longer:a b old:c");
    shake_entry_free(entry);
    filter_free(filter);
    conf_free(&conf);
}

Test(filter, regex_compile_error_names_pattern_and_offset) {
    char why[512];
    cr_assert_null(filter_regex_compile("a(b", why, sizeof(why)));
    cr_assert(strstr(why, "a(b") != NULL, "%s", why);
    cr_assert(strstr(why, "offset 3") != NULL, "%s", why);
    struct filter_regex *regex = filter_regex_compile("^a.c$", why, sizeof(why));
    cr_assert_not_null(regex);
    cr_assert_eq(filter_regex_match(regex, "abc", 3, why, sizeof(why)), 1);
    cr_assert_eq(filter_regex_match(regex, "abcd", 4, why, sizeof(why)), 0);
    filter_regex_free(regex);
}

Test(filter, pathological_regex_reports_instead_of_stalling) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "", "block_key_regex = ^(a|a?)+$\n");
    char key[64];
    memset(key, 'a', 40);
    key[40] = 'b';
    key[41] = '\0';
    cr_assert_eq(key_verdict(filter, key), FILTER_ERROR);
    cr_assert(strstr(filter_error(filter), "gave up") != NULL, "%s", filter_error(filter));
    filter_free(filter);
    conf_free(&conf);
}

/* The message of a config that fails to load. */
static const char *load_error(const char *filter_lines) {
    static char err[CONF_ERR_LEN];
    char text[2048];
    struct shake_conf conf;
    snprintf(text, sizeof(text), HEAD "[filter]\n%s", filter_lines);
    conf_init(&conf);
    err[0] = '\0';
    cr_assert_neq(conf_load_string(&conf, "t.ini", text, err, sizeof(err)), 0, "loaded: %s",
                  filter_lines);
    conf_free(&conf);
    return err;
}

Test(filter_conf, bad_values_name_file_line_and_key) {
    const char *err = load_error("allow_key_prefix = a\nblock_key_regex = (unclosed\n");
    cr_assert(strstr(err, "t.ini:8:") != NULL, "%s", err);
    cr_assert(strstr(err, "block_key_regex") != NULL, "%s", err);
    cr_assert(strstr(err, "(unclosed") != NULL, "%s", err);
    err = load_error("block_command_group = sortedset\n");
    cr_assert(strstr(err, "t.ini:7:") && strstr(err, "sortedset"), "%s", err);
    err = load_error("allow_type = zsets\n");
    cr_assert(strstr(err, "allow_type") && strstr(err, "zsets"), "%s", err);
    err = load_error("allow_db = 0, x\n");
    cr_assert(strstr(err, "allow_db") && strstr(err, "'x'"), "%s", err);
    err = load_error("block_db = 16384\n");
    cr_assert(strstr(err, "block_db"), "%s", err);
    err = load_error("rename_key_prefix = nocolon\n");
    cr_assert(strstr(err, "rename_key_prefix") && strstr(err, "old:new"), "%s", err);
    err = load_error("rename_key_prefix = a:b:c\n");
    cr_assert(strstr(err, "\\:"), "%s", err);
    err = load_error("rename_key_prefix = a:b, a:c\n");
    cr_assert(strstr(err, "renamed twice"), "%s", err);
    err = load_error("allow_key_prefix = , ,\n");
    cr_assert(strstr(err, "no value"), "%s", err);
    err = load_error("allow_keys = a\n");
    cr_assert(strstr(err, "unknown key 'allow_keys' in [filter]"), "%s", err);
}

Test(filter_conf, lists_append_and_commands_are_lower_case) {
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    conf_init(&conf);
    cr_assert_eq(conf_load_string(&conf, "t.ini",
                                  HEAD "[filter]\nallow_command = SET, Config|Set\n"
                                       "allow_command = del\nallow_key_regex = a{1,2},b\n"
                                       "rename_key_prefix = :pre\\:\n",
                                  err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(conf.filter.allow_command.count, 3);
    cr_assert_str_eq(conf.filter.allow_command.items[1], "config|set");
    cr_assert_eq(conf.filter.allow_key_regex.count, 1, "a regex is never split on commas");
    cr_assert_str_eq(conf.filter.allow_key_regex.items[0], "a{1,2},b");
    cr_assert_eq(conf.filter.rename_count, 1);
    cr_assert_str_eq(conf.filter.renames[0].from, "");
    cr_assert_str_eq(conf.filter.renames[0].to, "pre:");
    conf_free(&conf);
}

Test(filter, messages_show_binary_and_long_keys_readably) {
    struct shake_conf conf;
    struct filter *filter = make_filter(&conf, "", "block_key_prefix = tmp:\n");
    struct shake_entry *entry = cmd_entry(0, "SINTERSTORE dst tmp:1");
    free(entry->argv[1]);
    entry->argv[1] = malloc(100);
    memset(entry->argv[1], 'k', 100);
    entry->argv[1][1] = '\0';
    entry->argv_len[1] = 100;
    cr_assert_eq(filter_apply(filter, entry), FILTER_ERROR);
    const char *err = filter_error(filter);
    cr_assert(strstr(err, "kept: k\\x00kkk") != NULL, "%s", err);
    cr_assert(strstr(err, "k...; dropped: tmp:1") != NULL, "%s", err);
    shake_entry_free(entry);
    filter_free(filter);
    conf_free(&conf);
}
