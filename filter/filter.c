/* filter.c -- the [filter] rules applied to entries (see filter.h).
 *
 * Owns: the rules in the form the hot path wants (borrowed strings with their
 * lengths, a hash set for exact keys, compiled regexes, bit masks for groups and
 * types, renames longest prefix first), the per-entry verdicts, the in-place
 * rewrites (db, key names, split argv), and the counters.
 *
 * Must not: allocate per entry when no rule asks for it (scratch buffers for key
 * positions are owned by the filter and reused; only a rename that lengthens a key
 * reallocates that key), print, or know readers and writers.
 */
#include "filter/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter/groups.h"
#include "filter/regex.h"
#include "writer/cmd_table.h"

#define FILTER_ERR_LEN 512
#define FILTER_SCRATCH_KEYS 256
#define FILTER_KEY_SHOWN 64 /* bytes of a key shown in a message */

/* A borrowed byte string (points into the config). */
struct filter_text {
    const char *ptr;
    size_t len;
};

struct filter_text_list {
    struct filter_text *items; /* owned array */
    size_t count;
};

/* Exact keys: open addressing, linear probing, at most half full. */
struct filter_key_set {
    struct filter_text *slots; /* owned; ptr NULL = empty */
    size_t mask;
    size_t count;
};

struct filter_regex_list {
    struct filter_regex **items; /* owned, each owned */
    size_t count;
};

/* allow_command / block_command entry: "name" or "container|sub". */
struct filter_command_rule {
    struct filter_text name;
    struct filter_text sub; /* ptr NULL: every subcommand */
};

struct filter_command_list {
    struct filter_command_rule *items; /* owned */
    size_t count;
};

struct filter_rename {
    struct filter_text from;
    struct filter_text to;
};

struct filter {
    const struct shake_conf *conf;
    const struct cmd_table *table; /* borrowed, or own_table */
    struct cmd_table *own_table;   /* owned: built-in table, built when keys matter */

    int active;        /* any rule at all */
    int has_key_rules; /* any allow/block key rule */
    int has_allow_key; /* any allow key rule: a key must match one */
    int has_cmd_rules; /* command, group or type rules */

    struct filter_text_list allow_prefix, block_prefix, allow_suffix, block_suffix;
    struct filter_key_set allow_exact, block_exact;
    struct filter_regex_list allow_regex, block_regex;
    const struct conf_db_list *allow_db, *block_db;
    struct filter_command_list allow_command, block_command;
    unsigned allow_groups, block_groups; /* bit per enum filter_group; 0 allow = all */
    unsigned allow_types, block_types;   /* bit per enum shake_value_type */
    struct filter_rename *renames;       /* owned, longest `from` first */
    size_t rename_count;

    int *positions;          /* owned scratch: key positions of one command */
    unsigned char *verdicts; /* owned scratch: the verdict of each of them */
    int scratch_capacity;

    struct filter_stats stats;
    char err[FILTER_ERR_LEN];
};

/* --- building ------------------------------------------------------------------ */

static uint64_t filter_hash(const char *ptr, size_t len) {
    uint64_t hash = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        hash ^= (unsigned char)ptr[i];
        hash *= 1099511628211ULL;
    }
    return hash;
}

static int filter_text_equal(struct filter_text a, const char *ptr, size_t len) {
    return a.len == len && memcmp(a.ptr, ptr, len) == 0;
}

static void filter_key_set_add(struct filter_key_set *set, const char *ptr, size_t len) {
    size_t at = (size_t)filter_hash(ptr, len) & set->mask;
    while (set->slots[at].ptr != NULL) {
        if (filter_text_equal(set->slots[at], ptr, len)) return;
        at = (at + 1) & set->mask;
    }
    set->slots[at].ptr = ptr;
    set->slots[at].len = len;
    set->count++;
}

static int filter_key_set_build(struct filter_key_set *set, const struct conf_list *list) {
    size_t capacity = 8;
    while (capacity < (size_t)list->count * 2)
        capacity *= 2;
    if (list->count == 0) return 0;
    set->slots = calloc(capacity, sizeof(*set->slots));
    if (set->slots == NULL) return -1;
    set->mask = capacity - 1;
    for (int i = 0; i < list->count; i++)
        filter_key_set_add(set, list->items[i], strlen(list->items[i]));
    return 0;
}

static int filter_key_set_has(const struct filter_key_set *set, const char *ptr, size_t len) {
    if (set->count == 0) return 0;
    size_t at = (size_t)filter_hash(ptr, len) & set->mask;
    while (set->slots[at].ptr != NULL) {
        if (filter_text_equal(set->slots[at], ptr, len)) return 1;
        at = (at + 1) & set->mask;
    }
    return 0;
}

static int filter_text_list_build(struct filter_text_list *out, const struct conf_list *list) {
    if (list->count == 0) return 0;
    out->items = calloc((size_t)list->count, sizeof(*out->items));
    if (out->items == NULL) return -1;
    for (int i = 0; i < list->count; i++) {
        out->items[i].ptr = list->items[i];
        out->items[i].len = strlen(list->items[i]);
    }
    out->count = (size_t)list->count;
    return 0;
}

static int filter_regex_list_build(struct filter_regex_list *out, const struct conf_list *list,
                                   char *err, size_t errlen) {
    if (list->count == 0) return 0;
    out->items = calloc((size_t)list->count, sizeof(*out->items));
    if (out->items == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < list->count; i++) {
        char why[FILTER_ERR_LEN];
        out->items[i] = filter_regex_compile(list->items[i], why, sizeof(why));
        if (out->items[i] == NULL) {
            snprintf(err, errlen, "[filter] %s", why);
            return -1;
        }
        out->count++;
    }
    return 0;
}

static int filter_command_list_build(struct filter_command_list *out,
                                     const struct conf_list *list) {
    if (list->count == 0) return 0;
    out->items = calloc((size_t)list->count, sizeof(*out->items));
    if (out->items == NULL) return -1;
    for (int i = 0; i < list->count; i++) {
        const char *name = list->items[i];
        const char *bar = strchr(name, '|');
        struct filter_command_rule *rule = &out->items[i];
        rule->name.ptr = name;
        rule->name.len = bar ? (size_t)(bar - name) : strlen(name);
        if (bar != NULL) {
            rule->sub.ptr = bar + 1;
            rule->sub.len = strlen(bar + 1);
        }
    }
    out->count = (size_t)list->count;
    return 0;
}

static unsigned filter_group_mask(const struct conf_list *list) {
    unsigned mask = 0;
    for (int i = 0; i < list->count; i++) {
        int group = filter_group_from_name(list->items[i]);
        if (group >= 0) mask |= 1u << group;
    }
    return mask;
}

static unsigned filter_type_mask(const struct conf_list *list) {
    unsigned mask = 0;
    for (int i = 0; i < list->count; i++) {
        for (int type = SHAKE_TYPE_STRING; type <= SHAKE_TYPE_MODULE; type++) {
            if (strcasecmp(list->items[i], shake_value_type_name(type)) == 0) mask |= 1u << type;
        }
    }
    return mask;
}

static int filter_rename_longer_first(const void *a, const void *b) {
    const struct filter_rename *x = a, *y = b;
    return x->from.len < y->from.len ? 1 : (x->from.len > y->from.len ? -1 : 0);
}

static int filter_renames_build(struct filter *filter, const struct conf_filter *conf) {
    if (conf->rename_count == 0) return 0;
    filter->renames = calloc((size_t)conf->rename_count, sizeof(*filter->renames));
    if (filter->renames == NULL) return -1;
    for (int i = 0; i < conf->rename_count; i++) {
        struct filter_rename *rename = &filter->renames[i];
        rename->from.ptr = conf->renames[i].from;
        rename->from.len = strlen(conf->renames[i].from);
        rename->to.ptr = conf->renames[i].to;
        rename->to.len = strlen(conf->renames[i].to);
    }
    filter->rename_count = (size_t)conf->rename_count;
    qsort(filter->renames, filter->rename_count, sizeof(*filter->renames),
          filter_rename_longer_first);
    return 0;
}

/* Every rule of conf->filter in its hot-path form. */
static int filter_build_rules(struct filter *filter, const struct conf_filter *conf, char *err,
                              size_t errlen) {
    if (filter_text_list_build(&filter->allow_prefix, &conf->allow_key_prefix) != 0 ||
        filter_text_list_build(&filter->block_prefix, &conf->block_key_prefix) != 0 ||
        filter_text_list_build(&filter->allow_suffix, &conf->allow_key_suffix) != 0 ||
        filter_text_list_build(&filter->block_suffix, &conf->block_key_suffix) != 0 ||
        filter_key_set_build(&filter->allow_exact, &conf->allow_key) != 0 ||
        filter_key_set_build(&filter->block_exact, &conf->block_key) != 0 ||
        filter_command_list_build(&filter->allow_command, &conf->allow_command) != 0 ||
        filter_command_list_build(&filter->block_command, &conf->block_command) != 0 ||
        filter_renames_build(filter, conf) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (filter_regex_list_build(&filter->allow_regex, &conf->allow_key_regex, err, errlen) != 0 ||
        filter_regex_list_build(&filter->block_regex, &conf->block_key_regex, err, errlen) != 0)
        return -1;
    filter->allow_db = &conf->allow_db;
    filter->block_db = &conf->block_db;
    filter->allow_groups = filter_group_mask(&conf->allow_command_group);
    filter->block_groups = filter_group_mask(&conf->block_command_group);
    filter->allow_types = filter_type_mask(&conf->allow_type);
    filter->block_types = filter_type_mask(&conf->block_type);
    return 0;
}

/* Summarise which kinds of rules exist, so entries skip the checks that cannot
 * matter. */
static void filter_classify(struct filter *filter) {
    filter->has_allow_key = filter->allow_prefix.count > 0 || filter->allow_suffix.count > 0 ||
                            filter->allow_exact.count > 0 || filter->allow_regex.count > 0;
    filter->has_key_rules = filter->has_allow_key || filter->block_prefix.count > 0 ||
                            filter->block_suffix.count > 0 || filter->block_exact.count > 0 ||
                            filter->block_regex.count > 0;
    filter->has_cmd_rules = filter->allow_command.count > 0 || filter->block_command.count > 0 ||
                            filter->allow_groups != 0 || filter->block_groups != 0 ||
                            filter->allow_types != 0 || filter->block_types != 0;
    filter->active = filter->has_key_rules || filter->has_cmd_rules || filter->rename_count > 0 ||
                     filter->allow_db->count > 0 || filter->block_db->count > 0;
}

/* The scratch arrays for key positions, and the command table when key
 * positions will be needed. */
static int filter_prepare_keys(struct filter *filter, const struct cmd_table *table) {
    if (!filter->has_key_rules && filter->rename_count == 0) return 0;
    filter->table = table;
    if (table == NULL) {
        if (cmd_table_builtin(&filter->own_table) != 0) return -1;
        filter->table = filter->own_table;
    }
    filter->scratch_capacity = FILTER_SCRATCH_KEYS;
    filter->positions = malloc(sizeof(*filter->positions) * FILTER_SCRATCH_KEYS);
    filter->verdicts = malloc(FILTER_SCRATCH_KEYS);
    return filter->positions && filter->verdicts ? 0 : -1;
}

struct filter *filter_new(const struct shake_conf *conf, const struct cmd_table *table, char *err,
                          size_t errlen) {
    struct filter *filter = calloc(1, sizeof(*filter));
    if (filter == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    filter->conf = conf;
    if (filter_build_rules(filter, &conf->filter, err, errlen) != 0) {
        filter_free(filter);
        return NULL;
    }
    filter_classify(filter);
    if (filter_prepare_keys(filter, table) != 0) {
        snprintf(err, errlen, "out of memory");
        filter_free(filter);
        return NULL;
    }
    return filter;
}

static void filter_regex_list_free(struct filter_regex_list *list) {
    for (size_t i = 0; i < list->count; i++)
        filter_regex_free(list->items[i]);
    free(list->items);
}

void filter_free(struct filter *filter) {
    if (filter == NULL) return;
    free(filter->allow_prefix.items);
    free(filter->block_prefix.items);
    free(filter->allow_suffix.items);
    free(filter->block_suffix.items);
    free(filter->allow_exact.slots);
    free(filter->block_exact.slots);
    filter_regex_list_free(&filter->allow_regex);
    filter_regex_list_free(&filter->block_regex);
    free(filter->allow_command.items);
    free(filter->block_command.items);
    free(filter->renames);
    free(filter->positions);
    free(filter->verdicts);
    cmd_table_free(filter->own_table);
    free(filter);
}

const char *filter_error(const struct filter *filter) {
    return filter->err;
}

const struct filter_stats *filter_stats(const struct filter *filter) {
    return &filter->stats;
}

int filter_is_active(const struct filter *filter) {
    return filter->active;
}

/* --- messages ------------------------------------------------------------------ */

/* Append `len` bytes of a key to `out`, printable: other bytes as \xHH, long keys
 * cut with "...". */
static void filter_append_key(char *out, size_t outlen, const char *key, size_t len) {
    size_t used = strlen(out);
    size_t shown = len > FILTER_KEY_SHOWN ? FILTER_KEY_SHOWN : len;
    for (size_t i = 0; i < shown && used + 5 < outlen; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[used++] = (char)c;
        else
            used += (size_t)snprintf(out + used, outlen - used, "\\x%02x", c);
    }
    out[used] = '\0';
    if (shown < len && used + 4 < outlen) memcpy(out + used, "...", 4);
}

static void filter_append(char *out, size_t outlen, const char *text) {
    size_t used = strlen(out);
    if (used + 1 < outlen) snprintf(out + used, outlen - used, "%s", text);
}

/* --- verdicts ------------------------------------------------------------------ */

static int filter_has_prefix(const struct filter_text_list *list, const char *key, size_t len) {
    for (size_t i = 0; i < list->count; i++) {
        const struct filter_text *p = &list->items[i];
        if (p->len <= len && memcmp(key, p->ptr, p->len) == 0) return 1;
    }
    return 0;
}

static int filter_has_suffix(const struct filter_text_list *list, const char *key, size_t len) {
    for (size_t i = 0; i < list->count; i++) {
        const struct filter_text *s = &list->items[i];
        if (s->len <= len && memcmp(key + len - s->len, s->ptr, s->len) == 0) return 1;
    }
    return 0;
}

/* 1 when a regex of the list matches, 0 when none, -1 when one gave up. */
static int filter_regex_any(struct filter *filter, const struct filter_regex_list *list,
                            const char *key, size_t len) {
    for (size_t i = 0; i < list->count; i++) {
        char why[FILTER_ERR_LEN];
        int rc = filter_regex_match(list->items[i], key, len, why, sizeof(why));
        if (rc != 0) {
            if (rc < 0) {
                snprintf(filter->err, sizeof(filter->err), "filter: key '");
                filter_append_key(filter->err, sizeof(filter->err), key, len);
                filter_append(filter->err, sizeof(filter->err), "': ");
                filter_append(filter->err, sizeof(filter->err), why);
            }
            return rc;
        }
    }
    return 0;
}

/* The key rules for one key: 1 keep, 0 drop, -1 error (in filter->err). Block
 * rules win; with no allow rule every key is allowed. */
static int filter_key_verdict(struct filter *filter, const char *key, size_t len) {
    if (filter_has_prefix(&filter->block_prefix, key, len) ||
        filter_has_suffix(&filter->block_suffix, key, len) ||
        filter_key_set_has(&filter->block_exact, key, len))
        return 0;
    int rc = filter_regex_any(filter, &filter->block_regex, key, len);
    if (rc != 0) return rc < 0 ? -1 : 0;
    if (!filter->has_allow_key) return 1;
    if (filter_has_prefix(&filter->allow_prefix, key, len) ||
        filter_has_suffix(&filter->allow_suffix, key, len) ||
        filter_key_set_has(&filter->allow_exact, key, len))
        return 1;
    return filter_regex_any(filter, &filter->allow_regex, key, len);
}

static int filter_db_listed(const struct conf_db_list *list, int db) {
    for (int i = 0; i < list->count; i++) {
        if (list->dbs[i] == db) return 1;
    }
    return 0;
}

static int filter_db_passes(const struct filter *filter, int db) {
    if (filter_db_listed(filter->block_db, db)) return 0;
    return filter->allow_db->count == 0 || filter_db_listed(filter->allow_db, db);
}

static int filter_type_passes(const struct filter *filter, int type) {
    unsigned bit = 1u << type;
    if (filter->block_types & bit) return 0;
    return filter->allow_types == 0 || (filter->allow_types & bit) != 0;
}

static int filter_word_is(struct filter_text word, const char *ptr, size_t len) {
    return word.len == len && strncasecmp(word.ptr, ptr, len) == 0;
}

/* 1 when a rule of the list names this command (or its subcommand). */
static int filter_command_listed(const struct filter_command_list *list, int argc,
                                 char *const *argv, const size_t *argv_len) {
    for (size_t i = 0; i < list->count; i++) {
        const struct filter_command_rule *rule = &list->items[i];
        if (!filter_word_is(rule->name, argv[0], argv_len[0])) continue;
        if (rule->sub.ptr == NULL) return 1;
        if (argc >= 2 && filter_word_is(rule->sub, argv[1], argv_len[1])) return 1;
    }
    return 0;
}

/* The command, group and type rules for one command line. */
static int filter_command_passes(const struct filter *filter, int argc, char *const *argv,
                                 const size_t *argv_len) {
    if (filter_command_listed(&filter->block_command, argc, argv, argv_len)) return 0;
    if (filter->allow_command.count > 0 &&
        !filter_command_listed(&filter->allow_command, argc, argv, argv_len))
        return 0;
    if (filter->allow_groups == 0 && filter->block_groups == 0 && filter->allow_types == 0 &&
        filter->block_types == 0)
        return 1;
    enum filter_group group = filter_group_of_command(argv[0], argv_len[0]);
    unsigned bit = 1u << group;
    if (filter->block_groups & bit) return 0;
    if (filter->allow_groups != 0 && !(filter->allow_groups & bit)) return 0;
    int type = filter_group_value_type(group);
    return type < 0 || filter_type_passes(filter, type);
}

/* Commands the writer needs whatever the rules say (db switches, keep-alives,
 * transaction bounds): dropping them would change the meaning of the stream or
 * stall the offsets. */
static int filter_always_passes(const struct shake_entry *entry) {
    static const char *const names[] = {"select", "ping", "replconf", "multi", "exec"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len = strlen(names[i]);
        if (entry->argv_len[0] == len && strncasecmp(entry->argv[0], names[i], len) == 0) return 1;
    }
    return 0;
}

/* --- rewrites ------------------------------------------------------------------ */

static const struct filter_rename *filter_rename_for(const struct filter *filter, const char *key,
                                                     size_t len) {
    for (size_t i = 0; i < filter->rename_count; i++) {
        const struct filter_rename *rename = &filter->renames[i];
        if (rename->from.len <= len && memcmp(key, rename->from.ptr, rename->from.len) == 0)
            return rename;
    }
    return NULL;
}

/* Replace the prefix of a heap key in place (reallocating only when it grows);
 * the result stays NUL-terminated. Returns 0, or -1 when out of memory. */
static int filter_rename_key(struct filter *filter, char **key, size_t *len) {
    const struct filter_rename *rename = filter_rename_for(filter, *key, *len);
    if (rename == NULL) return 0;
    size_t rest = *len - rename->from.len, new_len = rename->to.len + rest;
    char *bytes = *key;
    if (new_len >= *len) {
        bytes = realloc(bytes, new_len + 1);
        if (bytes == NULL) {
            snprintf(filter->err, sizeof(filter->err), "filter: out of memory renaming a key");
            return -1;
        }
    }
    memmove(bytes + rename->to.len, bytes + rename->from.len, rest);
    memcpy(bytes, rename->to.ptr, rename->to.len);
    bytes[new_len] = '\0';
    *key = bytes;
    *len = new_len;
    filter->stats.keys_renamed++;
    return 0;
}

/* --- KEY, CHUNK and FUNCTION entries -------------------------------------------- */

static enum filter_verdict filter_drop_key(struct filter *filter, const struct shake_entry *entry) {
    if (entry->kind == SHAKE_ENTRY_KEY || (entry->chunk_flags & SHAKE_CHUNK_FIRST))
        filter->stats.keys_filtered++;
    return FILTER_DROP;
}

static enum filter_verdict filter_apply_key(struct filter *filter, struct shake_entry *entry) {
    if (!filter_db_passes(filter, entry->db) || !filter_type_passes(filter, (int)entry->type))
        return filter_drop_key(filter, entry);
    if (filter->has_key_rules) {
        int rc = filter_key_verdict(filter, entry->key, entry->key_len);
        if (rc < 0) return FILTER_ERROR;
        if (rc == 0) return filter_drop_key(filter, entry);
    }
    if (filter_rename_key(filter, &entry->key, &entry->key_len) != 0) return FILTER_ERROR;
    entry->db = conf_map_db(&filter->conf->target, entry->db);
    return FILTER_KEEP;
}

/* A function library is what FUNCTION LOAD carries in the stream: judged as that
 * command so that both phases agree. */
static enum filter_verdict filter_apply_function(struct filter *filter,
                                                 const struct shake_entry *entry) {
    (void)entry;
    char *argv[] = {"function", "load"};
    size_t argv_len[] = {8, 4};
    if (filter_command_passes(filter, 2, argv, argv_len)) return FILTER_KEEP;
    filter->stats.functions_filtered++;
    return FILTER_DROP;
}

/* --- CMD entries ---------------------------------------------------------------- */

static int filter_grow_scratch(struct filter *filter, int need) {
    int *positions = realloc(filter->positions, sizeof(*positions) * (size_t)need);
    if (positions == NULL) return -1;
    filter->positions = positions;
    unsigned char *verdicts = realloc(filter->verdicts, (size_t)need);
    if (verdicts == NULL) return -1;
    filter->verdicts = verdicts;
    filter->scratch_capacity = need;
    return 0;
}

static void filter_error_command(struct filter *filter, const struct shake_entry *entry,
                                 const char *what) {
    snprintf(filter->err, sizeof(filter->err), "filter: ");
    filter_append(filter->err, sizeof(filter->err), what);
    filter_append(filter->err, sizeof(filter->err), " ");
    filter_append_key(filter->err, sizeof(filter->err), entry->argv[0], entry->argv_len[0]);
}

/* The key positions of a command into filter->positions. Returns how many, or -1
 * with the reason in filter->err. */
static int filter_command_keys(struct filter *filter, const struct shake_entry *entry) {
    const char *const *argv = (const char *const *)entry->argv;
    const struct cmd_table_command *command =
        cmd_table_lookup(filter->table, entry->argc, argv, entry->argv_len);
    if (command == NULL) {
        filter_error_command(filter, entry, "cannot tell the keys of the command");
        filter_append(filter->err, sizeof(filter->err),
                      ": it is not in the command table, so the key rules cannot judge it");
        return -1;
    }
    int n = cmd_table_get_keys(command, entry->argc, argv, entry->argv_len, 0, filter->positions,
                               filter->scratch_capacity);
    if (n > filter->scratch_capacity) {
        if (filter_grow_scratch(filter, n) != 0) {
            snprintf(filter->err, sizeof(filter->err), "filter: out of memory");
            return -1;
        }
        n = cmd_table_get_keys(command, entry->argc, argv, entry->argv_len, 0, filter->positions,
                               filter->scratch_capacity);
    }
    if (n == CMD_TABLE_KEYS_UNKNOWN) {
        filter_error_command(filter, entry, "cannot tell the keys of");
        filter_append(filter->err, sizeof(filter->err), " from its arguments");
        return -1;
    }
    return n;
}

/* Per-key argument groups of the commands that can be split: DEL-like (one key
 * each) and MSET-like (key value). 0 when the command cannot be split. */
static int filter_split_step(const struct shake_entry *entry) {
    static const struct {
        const char *name;
        int step;
    } splittable[] = {{"del", 1},   {"unlink", 1}, {"exists", 1},
                      {"touch", 1}, {"mset", 2},   {"msetnx", 2}};
    for (size_t i = 0; i < sizeof(splittable) / sizeof(splittable[0]); i++) {
        size_t len = strlen(splittable[i].name);
        if (entry->argv_len[0] == len && strncasecmp(entry->argv[0], splittable[i].name, len) == 0)
            return splittable[i].step;
    }
    return 0;
}

/* Keep only the arguments of kept keys. Returns 0, or -1 when the argv does not
 * have the layout the split assumes (then nothing is changed). */
static int filter_split(struct filter *filter, struct shake_entry *entry, int n, int step) {
    if (entry->argc != 1 + n * step) return -1;
    for (int i = 0; i < n; i++) {
        if (filter->positions[i] != 1 + i * step) return -1;
    }
    int w = 1;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < step; j++) {
            int from = 1 + i * step + j;
            if (filter->verdicts[i]) {
                entry->argv[w] = entry->argv[from];
                entry->argv_len[w] = entry->argv_len[from];
                w++;
            } else {
                shake_entry_arg_free(entry, from);
            }
        }
    }
    for (int i = w; i < entry->argc; i++)
        entry->argv[i] = NULL;
    entry->argc = w;
    return 0;
}

/* The keys of a mixed command, for the error message. */
static void filter_error_mixed(struct filter *filter, const struct shake_entry *entry, int n) {
    char *err = filter->err;
    size_t errlen = sizeof(filter->err);
    filter_error_command(filter, entry, "the keys of");
    filter_append(err, errlen, " get different verdicts and the command cannot be split");
    for (int pass = 1; pass >= 0; pass--) {
        filter_append(err, errlen, pass ? "; kept:" : "; dropped:");
        for (int i = 0; i < n; i++) {
            if (filter->verdicts[i] != pass) continue;
            int p = filter->positions[i];
            filter_append(err, errlen, " ");
            filter_append_key(err, errlen, entry->argv[p], entry->argv_len[p]);
        }
    }
}

/* Judge each key of a command and rewrite it: drop, keep, split or refuse. */
static enum filter_verdict filter_apply_command_keys(struct filter *filter,
                                                     struct shake_entry *entry) {
    int n = filter_command_keys(filter, entry);
    if (n < 0) return FILTER_ERROR;
    int kept = 0;
    for (int i = 0; i < n; i++) {
        int p = filter->positions[i];
        int rc = filter->has_key_rules
                     ? filter_key_verdict(filter, entry->argv[p], entry->argv_len[p])
                     : 1;
        if (rc < 0) return FILTER_ERROR;
        filter->verdicts[i] = (unsigned char)rc;
        kept += rc;
    }
    if (n > 0 && kept == 0) {
        filter->stats.commands_filtered++;
        return FILTER_DROP;
    }
    if (kept < n) {
        int step = filter_split_step(entry);
        if (step == 0 || filter_split(filter, entry, n, step) != 0) {
            filter_error_mixed(filter, entry, n);
            filter->stats.commands_refused++;
            return FILTER_ERROR;
        }
        filter->stats.commands_split++;
        n = kept;
        for (int i = 0; i < n; i++)
            filter->positions[i] = 1 + i * step;
    }
    for (int i = 0; i < n; i++) {
        int p = filter->positions[i];
        if (filter_rename_for(filter, entry->argv[p], entry->argv_len[p]) == NULL) continue;
        if (shake_entry_arg_own(entry, p) != 0) {
            snprintf(filter->err, sizeof(filter->err), "filter: out of memory renaming a key");
            return FILTER_ERROR;
        }
        if (filter_rename_key(filter, &entry->argv[p], &entry->argv_len[p]) != 0)
            return FILTER_ERROR;
    }
    return FILTER_KEEP;
}

static enum filter_verdict filter_apply_command(struct filter *filter, struct shake_entry *entry) {
    if (entry->argc < 1 || filter_always_passes(entry)) {
        entry->db = conf_map_db(&filter->conf->target, entry->db);
        return FILTER_KEEP;
    }
    if (!filter_db_passes(filter, entry->db) ||
        (filter->has_cmd_rules &&
         !filter_command_passes(filter, entry->argc, entry->argv, entry->argv_len))) {
        filter->stats.commands_filtered++;
        return FILTER_DROP;
    }
    if (filter->has_key_rules || filter->rename_count > 0) {
        enum filter_verdict verdict = filter_apply_command_keys(filter, entry);
        if (verdict != FILTER_KEEP) return verdict;
    }
    entry->db = conf_map_db(&filter->conf->target, entry->db);
    return FILTER_KEEP;
}

enum filter_verdict filter_apply(struct filter *filter, struct shake_entry *entry) {
    switch (entry->kind) {
    case SHAKE_ENTRY_KEY:
    case SHAKE_ENTRY_CHUNK:
        if (!filter->active) {
            entry->db = conf_map_db(&filter->conf->target, entry->db);
            return FILTER_KEEP;
        }
        return filter_apply_key(filter, entry);
    case SHAKE_ENTRY_CMD:
        if (!filter->active) {
            entry->db = conf_map_db(&filter->conf->target, entry->db);
            return FILTER_KEEP;
        }
        return filter_apply_command(filter, entry);
    case SHAKE_ENTRY_FUNCTION:
        return filter->has_cmd_rules ? filter_apply_function(filter, entry) : FILTER_KEEP;
    }
    return FILTER_KEEP;
}
