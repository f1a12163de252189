/* verify.c -- `shake verify`: scanning both sides, mapping keys through the
 * config's filter, the rounds, and the report (see verify.h).
 *
 * Owns: the list of differences still open, the per-type counters and the
 * summary. Must not write to either side. A key's value is compared by
 * verify_value.c; function libraries by verify_functions.c.
 *
 * The reverse direction: a target key is "extra" when no kept source key maps to
 * it. Its candidate sources are the key itself and the names rename_key_prefix
 * could have come from, in every source db that db_map sends to its db; each
 * candidate that exists on the source is run through the filter forward, which
 * alone decides where it lands.
 */
#include "shake/verify.h"

#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "filter/filter.h"
#include "shake/client.h"
#include "shake/entry.h"
#include "shake/verify_functions.h"
#include "shake/verify_util.h"
#include "shake/verify_value.h"

#define VERIFY_SCAN_COUNT 1000
#define VERIFY_COMMAND_TIMEOUT_MS 30000
#define VERIFY_MAX_CANDIDATES 16
#define VERIFY_WHY_LEN 512

enum verify_type { VT_STRING, VT_LIST, VT_SET, VT_ZSET, VT_HASH, VT_STREAM, VT_OTHER, VT_COUNT };
static const char *const verify_type_names[VT_COUNT] = {"string", "list", "set",   "zset",
                                                        "hash",   "stream", "other"};

enum verify_diff_kind { DIFF_DIFFERENT, DIFF_MISSING, DIFF_EXTRA };

/* A key that differs; owns both key copies. Source fields unused for EXTRA. */
struct verify_diff {
    enum verify_diff_kind kind;
    int source_db, target_db;
    char *source_key, *target_key;
    size_t source_len, target_len;
    enum verify_type type;
    char why[VERIFY_WHY_LEN];
};

struct verify_counts {
    unsigned long long checked[VT_COUNT]; /* source keys compared (kept by the filter) */
    unsigned long long target_checked;    /* target keys looked at in reverse */
    unsigned long long filtered;          /* source keys the filter drops */
};

struct verify {
    const struct shake_conf *conf;
    const struct verify_options *options;
    FILE *out;
    struct client_env env;
    struct client_side source, target;
    struct filter *filter; /* owned */
    struct verify_value value;
    int source_dbs[VERIFY_MAX_DBS];
    int source_db_count;
    struct verify_counts counts;
    struct verify_diff *diffs; /* owned, diff_count used */
    size_t diff_count, diff_cap;
    enum verify_functions_result functions;
    char functions_why[VERIFY_WHY_LEN];
    ev_signal sigint;
};

static enum verify_type verify_type_of(const char *name) {
    for (int t = 0; t < VT_OTHER; t++)
        if (strcmp(name, verify_type_names[t]) == 0) return (enum verify_type)t;
    return VT_OTHER;
}

static void verify_on_signal(struct ev_loop *loop, ev_signal *watcher, int revents) {
    (void)revents;
    struct verify *verify = watcher->data;
    verify->env.interrupted = 1;
    ev_break(loop, EVBREAK_ONE);
}

/* --- differences ------------------------------------------------------------------ */

static char *verify_copy(const char *bytes, size_t len) {
    char *copy = malloc(len + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, bytes, len);
    copy[len] = '\0';
    return copy;
}

static int verify_add_diff(struct verify *verify, const struct verify_diff *diff) {
    if (verify->diff_count == verify->diff_cap) {
        size_t cap = verify->diff_cap ? verify->diff_cap * 2 : 64;
        struct verify_diff *grown = realloc(verify->diffs, cap * sizeof(*grown));
        if (grown == NULL) return -1;
        verify->diffs = grown;
        verify->diff_cap = cap;
    }
    struct verify_diff *slot = &verify->diffs[verify->diff_count];
    *slot = *diff;
    slot->source_key = diff->source_key ? verify_copy(diff->source_key, diff->source_len) : NULL;
    slot->target_key = verify_copy(diff->target_key, diff->target_len);
    if ((diff->source_key && slot->source_key == NULL) || slot->target_key == NULL) {
        free(slot->source_key);
        free(slot->target_key);
        return -1;
    }
    verify->diff_count++;
    return 0;
}

static void verify_drop_diff(struct verify *verify, size_t index) {
    free(verify->diffs[index].source_key);
    free(verify->diffs[index].target_key);
    verify->diffs[index] = verify->diffs[--verify->diff_count];
}

/* --- where keys go ---------------------------------------------------------------- */

/* Run a source key through the filter: 1 kept (target db and key set; the key is
 * the caller's to free), 0 dropped, -1 on an error. */
static int verify_map_key(struct verify *verify, int db, const char *key, size_t len,
                          enum verify_type type, int *target_db, char **target_key,
                          size_t *target_len, char *err, size_t errlen) {
    static const enum shake_value_type types[VT_COUNT] = {
        SHAKE_TYPE_STRING, SHAKE_TYPE_LIST,   SHAKE_TYPE_SET,   SHAKE_TYPE_ZSET,
        SHAKE_TYPE_HASH,   SHAKE_TYPE_STREAM, SHAKE_TYPE_MODULE};
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_KEY);
    if (entry == NULL || (entry->key = verify_copy(key, len)) == NULL) {
        shake_entry_free(entry);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    entry->key_len = len;
    entry->db = db;
    entry->type = types[type];
    enum filter_verdict verdict = filter_apply(verify->filter, entry);
    int rc = verdict == FILTER_KEEP;
    if (verdict == FILTER_ERROR) {
        snprintf(err, errlen, "filter: %s", filter_error(verify->filter));
        rc = -1;
    }
    if (rc == 1) {
        *target_db = entry->db;
        *target_key = entry->key;
        *target_len = entry->key_len;
        entry->key = NULL;
    }
    shake_entry_free(entry);
    return rc;
}

/* The source master holding `key`, as a ref in `db`. */
static int verify_ref(struct client_side *side, int db, const char *key, size_t len,
                      struct verify_key_ref *ref, char *err, size_t errlen) {
    int index = client_side_index_for_key(side, key, len);
    ref->client = client_side_master(side, index, err, errlen);
    ref->db = db;
    ref->key = key;
    ref->len = len;
    return ref->client == NULL ? -1 : 0;
}

/* 1 when a kept source key maps to (db, key) of the target, 0 when none, -1 on
 * an error. */
static int verify_has_source(struct verify *verify, int db, const char *key, size_t len,
                             char *err, size_t errlen) {
    struct verify_candidate candidates[VERIFY_MAX_CANDIDATES];
    int count = verify_rename_candidates(&verify->conf->filter, key, len, candidates,
                                         VERIFY_MAX_CANDIDATES);
    if (count < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int found = 0;
    for (int d = 0; d < verify->source_db_count && found == 0; d++) {
        int source_db = verify->source_dbs[d];
        if (conf_map_db(&verify->conf->target, source_db) != db) continue;
        for (int c = 0; c < count && found == 0; c++) {
            struct verify_key_ref ref;
            char type[32], *mapped = NULL;
            int mapped_db;
            size_t mapped_len;
            if (verify_ref(&verify->source, source_db, candidates[c].key, candidates[c].len, &ref,
                           err, errlen) != 0 ||
                verify_value_type(&ref, type, sizeof(type), err, errlen) != 0) {
                found = -1;
                break;
            }
            if (strcmp(type, "none") == 0) continue;
            int kept = verify_map_key(verify, source_db, candidates[c].key, candidates[c].len,
                                      verify_type_of(type), &mapped_db, &mapped, &mapped_len, err,
                                      errlen);
            if (kept < 0) found = -1;
            else if (kept && mapped_db == db && mapped_len == len && memcmp(mapped, key, len) == 0)
                found = 1;
            free(mapped);
        }
    }
    for (int c = 0; c < count; c++)
        free(candidates[c].key);
    return found;
}

/* --- one key, both ways ----------------------------------------------------------- */

/* Compare one kept source key with where it lands. Returns 0 (counted, and
 * recorded when it differs), or -1 on an error. `diff` in: the keys; out: the
 * outcome. */
static int verify_key(struct verify *verify, struct verify_diff *diff, enum verify_outcome *result,
                      char *err, size_t errlen) {
    struct verify_key_ref source, target;
    if (verify_ref(&verify->source, diff->source_db, diff->source_key, diff->source_len, &source,
                   err, errlen) != 0 ||
        verify_ref(&verify->target, diff->target_db, diff->target_key, diff->target_len, &target,
                   err, errlen) != 0)
        return -1;
    char type[32];
    *result = verify_value_compare(&verify->value, &source, &target, type, sizeof(type), diff->why,
                                   sizeof(diff->why));
    if (*result == VERIFY_FAILED) {
        snprintf(err, errlen, "%s", diff->why);
        return -1;
    }
    diff->type = verify_type_of(type);
    diff->kind = *result == VERIFY_MISSING ? DIFF_MISSING : DIFF_DIFFERENT;
    return 0;
}

/* Round 1, forward: one source key. */
static int verify_source_key(struct verify *verify, int db, const char *key, size_t len,
                             const char *type, char *err, size_t errlen) {
    struct verify_diff diff = {.source_db = db, .source_key = (char *)key, .source_len = len};
    enum verify_type vtype = verify_type_of(type);
    int kept = verify_map_key(verify, db, key, len, vtype, &diff.target_db, &diff.target_key,
                              &diff.target_len, err, errlen);
    if (kept <= 0) {
        verify->counts.filtered += kept == 0;
        return kept;
    }
    enum verify_outcome result;
    int rc = verify_key(verify, &diff, &result, err, errlen);
    if (rc == 0 && result != VERIFY_SOURCE_GONE) verify->counts.checked[diff.type]++;
    if (rc == 0 && (result == VERIFY_DIFFERENT || result == VERIFY_MISSING) &&
        verify_add_diff(verify, &diff) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    free(diff.target_key);
    return rc;
}

/* Round 1, reverse: one target key. */
static int verify_target_key(struct verify *verify, int db, const char *key, size_t len,
                             const char *type, char *err, size_t errlen) {
    verify->counts.target_checked++;
    int found = verify_has_source(verify, db, key, len, err, errlen);
    if (found != 0) return found < 0 ? -1 : 0;
    struct verify_diff diff = {.kind = DIFF_EXTRA, .target_db = db, .target_key = (char *)key,
                               .target_len = len, .type = verify_type_of(type)};
    snprintf(diff.why, sizeof(diff.why), "no kept source key maps to it");
    if (verify_add_diff(verify, &diff) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* --- scanning --------------------------------------------------------------------- */

/* The dbs holding keys on one node: INFO keyspace; db 0 alone on a cluster, or
 * when INFO is refused. */
static int verify_node_dbs(struct client_side *side, struct client *client, int *dbs, int max,
                           char *err, size_t errlen) {
    if (side->is_cluster) {
        dbs[0] = 0;
        return 1;
    }
    redisReply *reply = client_command(client, err, errlen, "INFO keyspace");
    if (reply == NULL) return -1;
    int count = 1;
    dbs[0] = 0;
    if (reply->type == REDIS_REPLY_STRING) count = verify_parse_keyspace(reply->str, dbs, max);
    freeReplyObject(reply);
    return count;
}

typedef int (*verify_key_fn)(struct verify *verify, int db, const char *key, size_t len,
                             const char *type, char *err, size_t errlen);

/* One SCAN page: TYPE of the sampled keys pipelined, then each key handled. */
static int verify_page(struct verify *verify, struct client *client, int db,
                       const redisReply *keys, verify_key_fn each, char *err, size_t errlen) {
    size_t queued = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *key = keys->element[i];
        if (!verify_sampled(key->str, key->len, verify->options->sample_percent)) continue;
        client_append(client, "TYPE %b", key->str, key->len);
        queued++;
    }
    redisReply **types = calloc(queued + 1, sizeof(*types));
    int rc = types == NULL ? -1 : 0;
    for (size_t i = 0; i < queued; i++) {
        types[i] = client_get_reply(client, err, errlen);
        if (types[i] == NULL) rc = -1;
        if (rc != 0) break;
    }
    for (size_t i = 0, t = 0; rc == 0 && i < keys->elements; i++) {
        const redisReply *key = keys->element[i];
        if (!verify_sampled(key->str, key->len, verify->options->sample_percent)) continue;
        const redisReply *type = types[t++];
        if (type->type != REDIS_REPLY_STATUS || strcmp(type->str, "none") == 0) continue;
        rc = each(verify, db, key->str, key->len, type->str, err, errlen);
        /* `each` may SELECT elsewhere on this client (a key's own node). */
        if (rc == 0) rc = client_select(client, db, err, errlen);
    }
    for (size_t i = 0; types != NULL && i < queued; i++)
        freeReplyObject(types[i]);
    free(types);
    if (types == NULL) snprintf(err, errlen, "out of memory");
    return rc;
}

/* SCAN one db of one node to the end. */
static int verify_scan_db(struct verify *verify, struct client *client, int db, verify_key_fn each,
                          char *err, size_t errlen) {
    char cursor[32] = "0";
    do {
        if (client_select(client, db, err, errlen) != 0) return -1;
        redisReply *page =
            client_command(client, err, errlen, "SCAN %s COUNT %d", cursor, VERIFY_SCAN_COUNT);
        if (page == NULL) return -1;
        int rc = 0;
        if (page->type != REDIS_REPLY_ARRAY || page->elements != 2) {
            snprintf(err, errlen, "%s %s: SCAN: %s", client_label(client), client_address(client),
                     page->type == REDIS_REPLY_ERROR ? page->str : "unexpected reply");
            rc = -1;
        } else {
            snprintf(cursor, sizeof(cursor), "%s", page->element[0]->str);
            rc = verify_page(verify, client, db, page->element[1], each, err, errlen);
        }
        freeReplyObject(page);
        if (rc != 0) return -1;
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* Every db of every master of one side. */
static int verify_scan_side(struct verify *verify, struct client_side *side, verify_key_fn each,
                            char *err, size_t errlen) {
    for (int m = 0; m < client_side_count(side); m++) {
        struct client *client = client_side_master(side, m, err, errlen);
        int dbs[VERIFY_MAX_DBS];
        int count = client ? verify_node_dbs(side, client, dbs, VERIFY_MAX_DBS, err, errlen) : -1;
        if (count < 0) return -1;
        for (int d = 0; d < count; d++)
            if (verify_scan_db(verify, client, dbs[d], each, err, errlen) != 0) return -1;
    }
    return 0;
}

/* The union of the source masters' dbs (the reverse direction's candidates). */
static int verify_collect_source_dbs(struct verify *verify, char *err, size_t errlen) {
    for (int m = 0; m < client_side_count(&verify->source); m++) {
        struct client *client = client_side_master(&verify->source, m, err, errlen);
        int dbs[VERIFY_MAX_DBS];
        int count =
            client ? verify_node_dbs(&verify->source, client, dbs, VERIFY_MAX_DBS, err, errlen) : -1;
        if (count < 0) return -1;
        for (int d = 0; d < count; d++) {
            int known = 0;
            for (int k = 0; k < verify->source_db_count; k++)
                known |= verify->source_dbs[k] == dbs[d];
            if (!known && verify->source_db_count < VERIFY_MAX_DBS)
                verify->source_dbs[verify->source_db_count++] = dbs[d];
        }
    }
    return 0;
}

/* --- rounds ------------------------------------------------------------------------ */

/* Check one open difference again: 1 resolved, 0 still open (updated), -1 error. */
static int verify_recheck(struct verify *verify, struct verify_diff *diff, char *err,
                          size_t errlen) {
    if (diff->kind != DIFF_EXTRA) {
        enum verify_outcome result;
        if (verify_key(verify, diff, &result, err, errlen) != 0) return -1;
        if (result == VERIFY_EQUAL) return 1;
        if (result != VERIFY_SOURCE_GONE) return 0;
        verify->counts.checked[diff->type]--; /* deleted or expired meanwhile */
        diff->kind = DIFF_EXTRA;              /* is the target's copy still there? */
        snprintf(diff->why, sizeof(diff->why), "no kept source key maps to it (the source key "
                 "was deleted)");
    }
    struct verify_key_ref ref;
    char type[32];
    if (verify_ref(&verify->target, diff->target_db, diff->target_key, diff->target_len, &ref, err,
                   errlen) != 0 ||
        verify_value_type(&ref, type, sizeof(type), err, errlen) != 0)
        return -1;
    if (strcmp(type, "none") == 0) return 1;
    int found = verify_has_source(verify, diff->target_db, diff->target_key, diff->target_len, err,
                                  errlen);
    return found < 0 ? -1 : found;
}

static int verify_check_functions(struct verify *verify) {
    if (verify->functions == VERIFY_FUNCTIONS_SKIPPED) return 0;
    verify->functions = verify_functions_compare(&verify->source, &verify->target,
                                                 verify->functions_why,
                                                 sizeof(verify->functions_why));
    return verify->functions == VERIFY_FUNCTIONS_FAILED ? -1 : 0;
}

/* Rounds 2..N: what still differs, a moment later. */
static int verify_rounds(struct verify *verify, int *rounds_run, char *err, size_t errlen) {
    *rounds_run = 1;
    while (*rounds_run < verify->options->rounds &&
           (verify->diff_count > 0 || verify->functions == VERIFY_FUNCTIONS_DIFFERENT)) {
        client_sleep(&verify->env, verify->options->round_interval_ms);
        if (verify->env.interrupted) {
            snprintf(err, errlen, "interrupted");
            return -1;
        }
        (*rounds_run)++;
        for (size_t i = 0; i < verify->diff_count;) {
            int rc = verify_recheck(verify, &verify->diffs[i], err, errlen);
            if (rc < 0) return -1;
            if (rc == 1) verify_drop_diff(verify, i);
            else i++;
        }
        if (verify->functions == VERIFY_FUNCTIONS_DIFFERENT && verify_check_functions(verify) != 0) {
            snprintf(err, errlen, "%s", verify->functions_why);
            return -1;
        }
    }
    return 0;
}

/* --- report ------------------------------------------------------------------------ */

static void verify_print_diff(struct verify *verify, const struct verify_diff *diff) {
    char source[200], target[200];
    static const char *const kinds[] = {"different", "missing", "extra"};
    verify_escape(diff->target_key, diff->target_len, 120, target, sizeof(target));
    if (diff->kind == DIFF_EXTRA) {
        fprintf(verify->out, "extra: %s db %d %s on the target: %s\n",
                verify_type_names[diff->type], diff->target_db, target, diff->why);
        return;
    }
    verify_escape(diff->source_key, diff->source_len, 120, source, sizeof(source));
    fprintf(verify->out, "%s: %s db %d %s (target db %d %s): %s\n", kinds[diff->kind],
            verify_type_names[diff->type], diff->source_db, source, diff->target_db, target,
            diff->why);
}

static void verify_report(struct verify *verify, int rounds_run) {
    unsigned long long by_kind[3][VT_COUNT] = {{0}}, total[3] = {0}, checked = 0;
    for (size_t i = 0; i < verify->diff_count; i++) {
        verify_print_diff(verify, &verify->diffs[i]);
        by_kind[verify->diffs[i].kind][verify->diffs[i].type]++;
        total[verify->diffs[i].kind]++;
    }
    if (verify->functions == VERIFY_FUNCTIONS_DIFFERENT)
        fprintf(verify->out, "different: %s\n", verify->functions_why);
    else if (verify->functions == VERIFY_FUNCTIONS_SKIPPED)
        fprintf(verify->out, "note: %s\n", verify->functions_why);
    if (verify->value.hash_ttl_keys_skipped > 0)
        fprintf(verify->out, "note: hash field TTLs not compared (the source has no "
                "HPEXPIRETIME, Redis < 7.4)\n");
    for (int t = 0; t < VT_COUNT; t++) {
        unsigned long long c = verify->counts.checked[t];
        checked += c;
        if (c == 0 && by_kind[DIFF_EXTRA][t] == 0) continue;
        fprintf(verify->out, "  %-7s checked %llu, equal %llu, different %llu, missing %llu, "
                "extra %llu\n", verify_type_names[t], c,
                c - by_kind[DIFF_DIFFERENT][t] - by_kind[DIFF_MISSING][t],
                by_kind[DIFF_DIFFERENT][t], by_kind[DIFF_MISSING][t], by_kind[DIFF_EXTRA][t]);
    }
    int ok = verify->diff_count == 0 && verify->functions != VERIFY_FUNCTIONS_DIFFERENT;
    fprintf(verify->out,
            "summary: checked=%llu equal=%llu different=%llu missing=%llu extra=%llu "
            "target_checked=%llu filtered=%llu functions=%s sample=%g rounds=%d status=%s\n",
            checked, checked - total[DIFF_DIFFERENT] - total[DIFF_MISSING], total[DIFF_DIFFERENT],
            total[DIFF_MISSING], total[DIFF_EXTRA], verify->counts.target_checked,
            verify->counts.filtered,
            verify->functions == VERIFY_FUNCTIONS_EQUAL       ? "equal"
            : verify->functions == VERIFY_FUNCTIONS_DIFFERENT ? "different"
                                                              : "skipped",
            verify->options->sample_percent, rounds_run, ok ? "equal" : "different");
    fflush(verify->out);
}

/* --- arguments and the run ---------------------------------------------------------- */

int verify_parse_args(int argc, char **argv, const char **conf_path,
                      struct verify_options *options, char *err, size_t errlen) {
    *conf_path = NULL;
    options->sample_percent = 100;
    options->rounds = 3;
    options->ttl_tolerance_ms = 2000;
    options->round_interval_ms = 1000;
    for (int i = 0; i < argc; i += 2) {
        const char *word = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        double number = value ? strtod(value, &end) : 0;
        int numeric = value != NULL && end != value && *end == '\0';
        if (value == NULL) {
            snprintf(err, errlen, "verify: %s needs a value", word);
            return -1;
        } else if (strcmp(word, "-conf") == 0 || strcmp(word, "--conf") == 0) {
            *conf_path = value;
        } else if (strcmp(word, "--sample") == 0 && numeric && number > 0 && number <= 100) {
            options->sample_percent = number;
        } else if (strcmp(word, "--rounds") == 0 && numeric && number >= 1 && number <= 1000 &&
                   number == (int)number) {
            options->rounds = (int)number;
        } else if (strcmp(word, "--ttl-tolerance") == 0 && numeric && number >= 0) {
            options->ttl_tolerance_ms = (long long)number;
        } else {
            snprintf(err, errlen, "verify: bad option '%s %s' (--sample 0<PCT<=100, --rounds "
                     "N>=1, --ttl-tolerance MS)", word, value);
            return -1;
        }
    }
    if (*conf_path == NULL) {
        snprintf(err, errlen, "verify: expected -conf FILE");
        return -1;
    }
    return 0;
}

static int verify_open(struct verify *verify, char *err, size_t errlen) {
    const struct shake_conf *conf = verify->conf;
    if (conf->source.type != CONF_SOURCE_SYNC) {
        snprintf(err, errlen, "verify needs a [source] type = sync config");
        return -1;
    }
    struct client_auth source_auth = client_auth_source(conf);
    struct client_auth target_auth = client_auth_target(conf);
    struct conf_address target_address = {conf->target.host, conf->target.port};
    if (client_side_open(&verify->source, &verify->env, "source", conf->source.addresses,
                         conf->source.address_count, &source_auth, err, errlen) != 0 ||
        client_side_open(&verify->target, &verify->env, "target", &target_address, 1, &target_auth,
                         err, errlen) != 0)
        return -1;
    verify->filter = filter_new(conf, NULL, err, errlen);
    return verify->filter == NULL ? -1 : 0;
}

/* Functions are compared unless the filter keeps them out of the sync. */
static int verify_functions_first(struct verify *verify) {
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_FUNCTION);
    int kept = entry != NULL && filter_apply(verify->filter, entry) == FILTER_KEEP;
    shake_entry_free(entry);
    if (!kept) {
        verify->functions = VERIFY_FUNCTIONS_SKIPPED;
        snprintf(verify->functions_why, sizeof(verify->functions_why),
                 "functions not compared: the config's [filter] drops them");
        return 0;
    }
    return verify_check_functions(verify);
}

static int verify_all(struct verify *verify, char *err, size_t errlen) {
    int rounds_run = 0;
    if (verify_open(verify, err, errlen) != 0 ||
        verify_collect_source_dbs(verify, err, errlen) != 0 ||
        verify_scan_side(verify, &verify->source, verify_source_key, err, errlen) != 0 ||
        verify_scan_side(verify, &verify->target, verify_target_key, err, errlen) != 0)
        return VERIFY_USAGE;
    if (verify_functions_first(verify) != 0) {
        snprintf(err, errlen, "%s", verify->functions_why);
        return VERIFY_USAGE;
    }
    if (verify_rounds(verify, &rounds_run, err, errlen) != 0) return VERIFY_USAGE;
    verify_report(verify, rounds_run);
    return verify->diff_count == 0 && verify->functions != VERIFY_FUNCTIONS_DIFFERENT
               ? VERIFY_OK
               : VERIFY_DIFFERS;
}

int verify_run(struct ev_loop *loop, const struct shake_conf *conf,
               const struct verify_options *options, FILE *out, char *err, size_t errlen) {
    struct verify verify;
    memset(&verify, 0, sizeof(verify));
    verify.conf = conf;
    verify.options = options;
    verify.out = out;
    verify.env.loop = loop;
    verify.env.timeout_ms = VERIFY_COMMAND_TIMEOUT_MS;
    verify_value_init(&verify.value, options->ttl_tolerance_ms);
    ev_signal_init(&verify.sigint, verify_on_signal, SIGINT);
    verify.sigint.data = &verify;
    ev_signal_start(loop, &verify.sigint);
    int rc = verify_all(&verify, err, errlen);
    ev_signal_stop(loop, &verify.sigint);
    while (verify.diff_count > 0)
        verify_drop_diff(&verify, verify.diff_count - 1);
    free(verify.diffs);
    filter_free(verify.filter);
    client_side_free(&verify.target);
    client_side_free(&verify.source);
    return rc;
}
