/* conf.c -- loads shake's INI configuration (through inih) into struct shake_conf.
 *
 * Owns: defaults, ${VAR} expansion, parsing and validating every key, and the
 * one-line messages that name file:line and the key. It talks to no server: a bad
 * config is reported before anything is touched. Every key is in docs/config.md.
 */
#include "conf/conf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "filter/groups.h"
#include "filter/regex.h"
#include "shake/tls.h"

/* Parsing state handed through inih to the key handler. */
struct conf_parse {
    struct shake_conf *conf;
    const char *name;       /* file name for messages */
    char *err;
    size_t errlen;
    int failed;
    int seen_address;
    int seen_files;
    int seen_type;
    int seen_source_address;
    int password_in_file;   /* a password key holds the secret itself, not ${VAR} */
};

typedef int (*conf_key_setter)(struct conf_parse *parse, const char *value, char *why,
                               size_t whylen);

struct conf_key {
    const char *section;
    const char *name;
    conf_key_setter set;
};

static int conf_set_string(char **slot, const char *value) {
    char *copy = strdup(value);
    if (copy == NULL) return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Parse "123", "64kb", "16mb", "1gb" into bytes. */
static int conf_parse_size(const char *value, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (errno != 0 || end == value || value[0] == '-') return -1;
    unsigned long long unit = 1;
    if (strcasecmp(end, "") == 0 || strcasecmp(end, "b") == 0) unit = 1;
    else if (strcasecmp(end, "kb") == 0 || strcasecmp(end, "k") == 0) unit = 1024ULL;
    else if (strcasecmp(end, "mb") == 0 || strcasecmp(end, "m") == 0) unit = 1024ULL * 1024;
    else if (strcasecmp(end, "gb") == 0 || strcasecmp(end, "g") == 0) unit = 1024ULL * 1024 * 1024;
    else return -1;
    if (n > SIZE_MAX / unit) return -1;
    *out = (size_t)(n * unit);
    return 0;
}

static int conf_parse_int(const char *value, long min, long max, long *out) {
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || n < min || n > max) return -1;
    *out = n;
    return 0;
}

/* conf_parse_int with the error every bounded number gives: "'v' is not a number
 * <unit> from <min> to <max>" (unit: "" or " of milliseconds", ...). */
static int conf_parse_bounded(const char *value, long min, long max, const char *unit, long *out,
                              char *why, size_t len) {
    if (conf_parse_int(value, min, max, out) == 0) return 0;
    snprintf(why, len, "'%s' is not a number%s from %ld to %ld", value, unit, min, max);
    return -1;
}

static int set_source_type(struct conf_parse *parse, const char *value, char *why, size_t len) {
    parse->seen_type = 1;
    if (strcmp(value, "rdb") == 0) {
        parse->conf->source.type = CONF_SOURCE_RDB;
        return 0;
    }
    if (strcmp(value, "sync") == 0) {
        parse->conf->source.type = CONF_SOURCE_SYNC;
        return 0;
    }
    if (strcmp(value, "aof") == 0) {
        parse->conf->source.type = CONF_SOURCE_AOF;
        return 0;
    }
    snprintf(why, len, "'%s' is not a source type (expected: rdb, aof or sync)", value);
    return -1;
}

/* files = a.rdb, b.rdb (commas or white space between names). */
static int set_source_files(struct conf_parse *parse, const char *value, char *why, size_t len) {
    struct conf_source *source = &parse->conf->source;
    const char *p = value;
    parse->seen_files = 1;
    while (*p != '\0') {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (*p == '\0') break;
        const char *start = p;
        while (*p != '\0' && *p != ',' && *p != '\n') p++;
        const char *end = p;
        while (end > start && isspace((unsigned char)end[-1])) end--;
        char **files = realloc(source->files, sizeof(*files) * (size_t)(source->file_count + 1));
        if (files == NULL) goto oom;
        source->files = files;
        files[source->file_count] = strndup(start, (size_t)(end - start));
        if (files[source->file_count] == NULL) goto oom;
        source->file_count++;
    }
    if (source->file_count == 0) {
        snprintf(why, len, "no file named");
        return -1;
    }
    return 0;
oom:
    snprintf(why, len, "out of memory");
    return -1;
}

static int set_size(size_t *slot, size_t min, const char *value, char *why, size_t len) {
    size_t n;
    if (conf_parse_size(value, &n) != 0 || n < min) {
        snprintf(why, len, "'%s' is not a size of at least %zu bytes (e.g. 64mb)", value, min);
        return -1;
    }
    *slot = n;
    return 0;
}

/* Parse host:port (IPv6 as [addr]:port) into a new host string and a port. */
static int conf_parse_address(const char *value, char **host_out, int *port_out, char *why,
                              size_t len) {
    const char *colon = strrchr(value, ':');
    long port;
    if (colon == NULL || colon == value || conf_parse_int(colon + 1, 1, 65535, &port) != 0) {
        snprintf(why, len, "'%s' is not host:port", value);
        return -1;
    }
    const char *host = value;
    size_t host_len = (size_t)(colon - value);
    if (host[0] == '[' && host_len >= 2 && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    char *copy = strndup(host, host_len);
    if (copy == NULL) return -1;
    free(*host_out);
    *host_out = copy;
    *port_out = (int)port;
    return 0;
}

static int set_target_address(struct conf_parse *parse, const char *value, char *why,
                              size_t len) {
    parse->seen_address = 1;
    return conf_parse_address(value, &parse->conf->target.host, &parse->conf->target.port, why,
                              len);
}

/* [source] address = host:port[, host:port ...]: candidates tried in order. */
static int set_source_address(struct conf_parse *parse, const char *value, char *why,
                              size_t len) {
    struct conf_source *source = &parse->conf->source;
    char *copy = strdup(value), *save = NULL;
    if (copy == NULL) return -1;
    parse->seen_source_address = 1;
    for (char *item = strtok_r(copy, ", \t\n", &save); item != NULL;
         item = strtok_r(NULL, ", \t\n", &save)) {
        struct conf_address *grown =
            realloc(source->addresses, sizeof(*grown) * (size_t)(source->address_count + 1));
        if (grown == NULL) goto fail;
        source->addresses = grown;
        grown[source->address_count].host = NULL;
        if (conf_parse_address(item, &grown[source->address_count].host,
                               &grown[source->address_count].port, why, len) != 0)
            goto fail;
        source->address_count++;
    }
    free(copy);
    if (source->address_count > 0) return 0;
    snprintf(why, len, "no address given");
    return -1;
fail:
    free(copy);
    return -1;
}

static int set_source_username(struct conf_parse *parse, const char *value, char *why,
                               size_t len) {
    (void)why, (void)len;
    if (value[0] == '\0') return 0;
    return conf_set_string(&parse->conf->source.username, value);
}

static int set_source_password(struct conf_parse *parse, const char *value, char *why,
                               size_t len) {
    (void)why, (void)len;
    if (value[0] == '\0') return 0;
    return conf_set_string(&parse->conf->source.password, value);
}

static int set_timeout_ms(int *slot, const char *value, char *why, size_t len) {
    long n;
    if (conf_parse_bounded(value, 1, 3600000, " of milliseconds", &n, why, len) != 0) return -1;
    *slot = (int)n;
    return 0;
}

static int set_source_connect_timeout_ms(struct conf_parse *parse, const char *value, char *why,
                                         size_t len) {
    return set_timeout_ms(&parse->conf->source.connect_timeout_ms, value, why, len);
}

static int set_yes_no(int *slot, const char *value, char *why, size_t len) {
    if (strcmp(value, "yes") == 0) *slot = 1;
    else if (strcmp(value, "no") == 0) *slot = 0;
    else {
        snprintf(why, len, "'%s' is not yes or no", value);
        return -1;
    }
    return 0;
}

static int set_target_on_unsupported(struct conf_parse *parse, const char *value, char *why,
                                     size_t len) {
    enum conf_on_unsupported *slot = &parse->conf->target.on_unsupported;
    if (strcmp(value, "error") == 0) *slot = CONF_ON_UNSUPPORTED_ERROR;
    else if (strcmp(value, "skip") == 0) *slot = CONF_ON_UNSUPPORTED_SKIP;
    else {
        snprintf(why, len, "'%s' is not one of error, skip", value);
        return -1;
    }
    return 0;
}

static int set_target_forward_publish(struct conf_parse *parse, const char *value, char *why,
                                      size_t len) {
    return set_yes_no(&parse->conf->target.forward_publish, value, why, len);
}

static int set_shake_checkpoint_interval_ms(struct conf_parse *parse, const char *value,
                                            char *why, size_t len) {
    long n;
    if (conf_parse_bounded(value, 10, 1000, " of milliseconds", &n, why, len) != 0) return -1;
    parse->conf->shake.checkpoint_interval_ms = (int)n;
    return 0;
}

static int set_shake_io_collect_us(struct conf_parse *parse, const char *value, char *why,
                                   size_t len) {
    long n;
    if (conf_parse_bounded(value, 0, 100000, " of microseconds", &n, why, len) != 0) return -1;
    parse->conf->shake.io_collect_us = (int)n;
    return 0;
}

static int set_shake_max_buffered(struct conf_parse *parse, const char *value, char *why,
                                  size_t len) {
    return set_size(&parse->conf->shake.max_buffered, 64 * 1024, value, why, len);
}

static int set_shake_spool_max(struct conf_parse *parse, const char *value, char *why,
                               size_t len) {
    return set_size(&parse->conf->shake.spool_max, 0, value, why, len);
}

/* [shake] status = host:port of the status endpoint; empty turns it off. */
static int set_shake_status(struct conf_parse *parse, const char *value, char *why, size_t len) {
    struct conf_shake *shake = &parse->conf->shake;
    shake->status_explicit = 1;
    if (value[0] == '\0') {
        free(shake->status_host);
        shake->status_host = NULL;
        return 0;
    }
    return conf_parse_address(value, &shake->status_host, &shake->status_port, why, len);
}

static int set_target_username(struct conf_parse *parse, const char *value, char *why,
                               size_t len) {
    (void)why, (void)len;
    if (value[0] == '\0') return 0;
    return conf_set_string(&parse->conf->target.username, value);
}

static int set_target_password(struct conf_parse *parse, const char *value, char *why,
                               size_t len) {
    (void)why, (void)len;
    if (value[0] == '\0') return 0;
    return conf_set_string(&parse->conf->target.password, value);
}

static int set_target_on_existing(struct conf_parse *parse, const char *value, char *why,
                                  size_t len) {
    enum conf_on_existing *slot = &parse->conf->target.on_existing;
    if (strcmp(value, "error") == 0) *slot = CONF_ON_EXISTING_ERROR;
    else if (strcmp(value, "replace") == 0) *slot = CONF_ON_EXISTING_REPLACE;
    else if (strcmp(value, "skip") == 0) *slot = CONF_ON_EXISTING_SKIP;
    else {
        snprintf(why, len, "'%s' is not one of error, replace, skip", value);
        return -1;
    }
    return 0;
}

/* db_map = 1:0, 2:0 */
static int set_target_db_map(struct conf_parse *parse, const char *value, char *why,
                             size_t len) {
    struct conf_target *target = &parse->conf->target;
    const char *p = value;
    while (*p != '\0') {
        while (*p == ',' || isspace((unsigned char)*p)) p++;
        if (*p == '\0') break;
        char *end;
        long from = strtol(p, &end, 10);
        if (end == p || *end != ':') goto bad;
        p = end + 1;
        long to = strtol(p, &end, 10);
        if (end == p || from < 0 || to < 0 || from >= CONF_MAX_DB || to >= CONF_MAX_DB) goto bad;
        p = end;
        for (int i = 0; i < target->db_map_count; i++) {
            if (target->db_map[i].from == from) {
                snprintf(why, len, "db %ld is mapped twice", from);
                return -1;
            }
        }
        struct conf_db_map_entry *map =
            realloc(target->db_map, sizeof(*map) * (size_t)(target->db_map_count + 1));
        if (map == NULL) return -1;
        target->db_map = map;
        map[target->db_map_count].from = (int)from;
        map[target->db_map_count].to = (int)to;
        target->db_map_count++;
        while (isspace((unsigned char)*p)) p++;
        if (*p != '\0' && *p != ',') goto bad;
    }
    return 0;
bad:
    snprintf(why, len, "'%s' is not a list of source:target db pairs (e.g. 1:0, 2:0)", value);
    return -1;
}


static int set_target_pipeline_max_bytes(struct conf_parse *parse, const char *value, char *why,
                                         size_t len) {
    return set_size(&parse->conf->target.pipeline_max_bytes, 64 * 1024, value, why, len);
}

static int set_target_batch_max_bytes(struct conf_parse *parse, const char *value, char *why,
                                      size_t len) {
    return set_size(&parse->conf->target.batch_max_bytes, 1024, value, why, len);
}

static int set_target_batch_max_items(struct conf_parse *parse, const char *value, char *why,
                                      size_t len) {
    long n;
    if (conf_parse_bounded(value, 1, 1000000, "", &n, why, len) != 0) return -1;
    parse->conf->target.batch_max_items = (size_t)n;
    return 0;
}

static int set_target_wait_replicas(struct conf_parse *parse, const char *value, char *why,
                                    size_t len) {
    long n;
    if (strcmp(value, "auto") == 0) {
        parse->conf->target.wait_replicas = CONF_WAIT_REPLICAS_AUTO;
        return 0;
    }
    if (conf_parse_int(value, 0, 100, &n) != 0) {
        snprintf(why, len, "'%s' is not auto or a number of replicas from 0 to 100", value);
        return -1;
    }
    parse->conf->target.wait_replicas = (int)n;
    return 0;
}

static int set_target_connect_timeout_ms(struct conf_parse *parse, const char *value, char *why,
                                         size_t len) {
    return set_timeout_ms(&parse->conf->target.connect_timeout_ms, value, why, len);
}

static int set_shake_dir(struct conf_parse *parse, const char *value, char *why, size_t len) {
    if (value[0] == '\0') {
        snprintf(why, len, "must not be empty");
        return -1;
    }
    return conf_set_string(&parse->conf->shake.dir, value);
}

static int set_shake_log_level(struct conf_parse *parse, const char *value, char *why,
                               size_t len) {
    enum conf_log_level *slot = &parse->conf->shake.log_level;
    if (strcmp(value, "debug") == 0) *slot = CONF_LOG_DEBUG;
    else if (strcmp(value, "info") == 0) *slot = CONF_LOG_INFO;
    else if (strcmp(value, "warn") == 0) *slot = CONF_LOG_WARN;
    else if (strcmp(value, "error") == 0) *slot = CONF_LOG_ERROR;
    else {
        snprintf(why, len, "'%s' is not one of debug, info, warn, error", value);
        return -1;
    }
    return 0;
}

static int set_shake_restore_max_bytes(struct conf_parse *parse, const char *value, char *why,
                                       size_t len) {
    return set_size(&parse->conf->shake.restore_max_bytes, 1024, value, why, len);
}

static int set_shake_progress(struct conf_parse *parse, const char *value, char *why,
                              size_t len) {
    int *slot = &parse->conf->shake.progress;
    if (strcmp(value, "auto") == 0) *slot = -1;
    else if (strcmp(value, "yes") == 0) *slot = 1;
    else if (strcmp(value, "no") == 0) *slot = 0;
    else {
        snprintf(why, len, "'%s' is not one of auto, yes, no", value);
        return -1;
    }
    return 0;
}

/* What a [filter] list holds, for validation. */
enum conf_item_kind {
    CONF_ITEM_TEXT,    /* key prefix, suffix or name: any bytes but an unescaped comma */
    CONF_ITEM_COMMAND, /* a command name or container|sub, stored in lower case */
    CONF_ITEM_GROUP,   /* a group as COMMAND DOCS reports it */
    CONF_ITEM_TYPE,    /* a value type */
};

static int conf_list_append(struct conf_list *list, char *item) {
    char **items = realloc(list->items, sizeof(*items) * (size_t)(list->count + 1));
    if (items == NULL) {
        free(item);
        return -1;
    }
    list->items = items;
    items[list->count++] = item;
    return 0;
}

/* The next item of a list value: up to an unescaped comma, white space trimmed,
 * "\x" read as x (x = ',' '\\' ...). Sets *next after the comma. Returns a new
 * string or NULL (out of memory). */
static char *conf_next_item(const char *p, const char **next) {
    while (isspace((unsigned char)*p)) p++;
    char *out = malloc(strlen(p) + 1);
    size_t used = 0, kept = 0; /* kept: length without trailing unescaped space */
    if (out == NULL) return NULL;
    while (*p != '\0' && *p != ',') {
        if (*p == '\\' && p[1] != '\0') {
            out[used++] = p[1];
            kept = used;
            p += 2;
            continue;
        }
        out[used++] = *p;
        if (!isspace((unsigned char)*p)) kept = used;
        p++;
    }
    out[kept] = '\0';
    *next = *p == '\0' ? p : p + 1;
    return out;
}

static const char *const conf_type_names[] = {"string", "list", "set", "zset",
                                              "hash",   "stream", "module"};

/* Check one item of a list and put it in its stored form. */
static int conf_check_item(enum conf_item_kind kind, char *item, char *why, size_t len) {
    if (kind == CONF_ITEM_COMMAND) {
        for (char *c = item; *c != '\0'; c++) {
            if (isspace((unsigned char)*c)) {
                snprintf(why, len, "'%s' is not a command name", item);
                return -1;
            }
            *c = (char)tolower((unsigned char)*c);
        }
    } else if (kind == CONF_ITEM_GROUP && filter_group_from_name(item) < 0) {
        snprintf(why, len,
                 "'%s' is not a command group (expected one of generic, string, list, set, "
                 "sorted-set, hash, stream, pubsub, scripting, transactions, server, "
                 "connection, geo, hyperloglog, bitmap, cluster, sentinel, module)",
                 item);
        return -1;
    } else if (kind == CONF_ITEM_TYPE) {
        for (size_t i = 0; i < sizeof(conf_type_names) / sizeof(conf_type_names[0]); i++) {
            if (strcasecmp(item, conf_type_names[i]) == 0) return 0;
        }
        snprintf(why, len,
                 "'%s' is not a type (expected string, list, set, zset, hash, stream, module)",
                 item);
        return -1;
    }
    return 0;
}

/* key = a, b, c: append each item (commas escaped as "\,"). */
static int conf_filter_add(struct conf_list *list, enum conf_item_kind kind, const char *value,
                           char *why, size_t len) {
    const char *p = value;
    int added = 0;
    while (*p != '\0') {
        char *item = conf_next_item(p, &p);
        if (item == NULL) return -1;
        if (item[0] == '\0') {
            free(item);
            continue;
        }
        if (conf_check_item(kind, item, why, len) != 0) {
            free(item);
            return -1;
        }
        if (conf_list_append(list, item) != 0) return -1;
        added++;
    }
    if (added > 0) return 0;
    snprintf(why, len, "no value given");
    return -1;
}

/* allow_key_regex = pattern: the whole value is one pattern (regexes hold commas);
 * compiled here so that a bad one is reported with its line. */
static int conf_filter_add_regex(struct conf_list *list, const char *value, char *why,
                                 size_t len) {
    struct filter_regex *regex = filter_regex_compile(value, why, len);
    if (regex == NULL) return -1;
    filter_regex_free(regex);
    char *copy = strdup(value);
    if (copy == NULL) return -1;
    return conf_list_append(list, copy);
}

/* allow_db = 0, 3 */
static int conf_filter_add_dbs(struct conf_db_list *list, const char *value, char *why,
                               size_t len) {
    char *copy = strdup(value), *save = NULL;
    int added = 0;
    if (copy == NULL) return -1;
    for (char *item = strtok_r(copy, ", \t", &save); item != NULL;
         item = strtok_r(NULL, ", \t", &save)) {
        long db;
        if (conf_parse_int(item, 0, CONF_MAX_DB - 1, &db) != 0) {
            snprintf(why, len, "'%s' is not a db number from 0 to %d", item, CONF_MAX_DB - 1);
            free(copy);
            return -1;
        }
        int *dbs = realloc(list->dbs, sizeof(*dbs) * (size_t)(list->count + 1));
        if (dbs == NULL) {
            free(copy);
            return -1;
        }
        list->dbs = dbs;
        dbs[list->count++] = (int)db;
        added++;
    }
    free(copy);
    if (added > 0) return 0;
    snprintf(why, len, "no db given");
    return -1;
}

/* Cut white space off both ends of a string in place. */
static char *conf_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

/* One old:new pair of rename_key_prefix, from *cursor up to an unescaped comma
 * ("\:", "\," and "\\" stand for themselves). Returns 1 with *out filled, 0 when
 * the pair is blank, -1 on error (why set unless out of memory). */
static int conf_next_rename(const char **cursor, struct conf_rename *out, char *why,
                            size_t len) {
    const char *p = *cursor;
    size_t cap = strlen(p) + 1, used[2] = {0, 0};
    char *side[2] = {malloc(cap), malloc(cap)};
    int at = 0, rc = side[0] && side[1] ? 1 : -1;
    while (rc == 1 && *p != '\0' && *p != ',') {
        if (*p == '\\' && p[1] != '\0') {
            side[at][used[at]++] = p[1];
            p += 2;
        } else if (*p == ':' && at == 0) {
            at = 1;
            p++;
        } else if (*p == ':') {
            rc = -1;
            snprintf(why, len, "more than one ':' in a pair (write a ':' inside a prefix as '\\:')");
        } else {
            side[at][used[at]++] = *p++;
        }
    }
    *cursor = *p == ',' ? p + 1 : p;
    if (rc == 1) {
        side[0][used[0]] = side[1][used[1]] = '\0';
        if (at == 0 && conf_trim(side[0])[0] == '\0') rc = 0;
        else if (at == 0) {
            rc = -1;
            snprintf(why, len, "'%s' is not old:new", conf_trim(side[0]));
        }
    }
    if (rc == 1) {
        out->from = strdup(conf_trim(side[0]));
        out->to = strdup(conf_trim(side[1]));
        if (out->from == NULL || out->to == NULL) {
            free(out->from), free(out->to);
            rc = -1;
        }
    }
    free(side[0]), free(side[1]);
    return rc;
}

/* rename_key_prefix = old:new[, old2:new2] */
static int set_filter_rename_key_prefix(struct conf_parse *parse, const char *value, char *why,
                                        size_t len) {
    struct conf_filter *filter = &parse->conf->filter;
    const char *p = value;
    int added = 0;
    while (*p != '\0') {
        struct conf_rename pair;
        int rc = conf_next_rename(&p, &pair, why, len);
        if (rc < 0) return -1;
        if (rc == 0) continue;
        for (int i = 0; i < filter->rename_count; i++) {
            if (strcmp(filter->renames[i].from, pair.from) == 0) {
                snprintf(why, len, "prefix '%s' is renamed twice", pair.from);
                free(pair.from), free(pair.to);
                return -1;
            }
        }
        struct conf_rename *renames = realloc(
            filter->renames, sizeof(*renames) * (size_t)(filter->rename_count + 1));
        if (renames == NULL) {
            free(pair.from), free(pair.to);
            return -1;
        }
        filter->renames = renames;
        renames[filter->rename_count++] = pair;
        added++;
    }
    if (added > 0) return 0;
    snprintf(why, len, "no old:new pair given");
    return -1;
}

#define CONF_FILTER_LIST_SETTER(field, kind)                                                   \
    static int set_filter_##field(struct conf_parse *parse, const char *value, char *why,      \
                                  size_t len) {                                                \
        return conf_filter_add(&parse->conf->filter.field, kind, value, why, len);             \
    }
CONF_FILTER_LIST_SETTER(allow_key_prefix, CONF_ITEM_TEXT)
CONF_FILTER_LIST_SETTER(block_key_prefix, CONF_ITEM_TEXT)
CONF_FILTER_LIST_SETTER(allow_key_suffix, CONF_ITEM_TEXT)
CONF_FILTER_LIST_SETTER(block_key_suffix, CONF_ITEM_TEXT)
CONF_FILTER_LIST_SETTER(allow_key, CONF_ITEM_TEXT)
CONF_FILTER_LIST_SETTER(block_key, CONF_ITEM_TEXT)
CONF_FILTER_LIST_SETTER(allow_command, CONF_ITEM_COMMAND)
CONF_FILTER_LIST_SETTER(block_command, CONF_ITEM_COMMAND)
CONF_FILTER_LIST_SETTER(allow_command_group, CONF_ITEM_GROUP)
CONF_FILTER_LIST_SETTER(block_command_group, CONF_ITEM_GROUP)
CONF_FILTER_LIST_SETTER(allow_type, CONF_ITEM_TYPE)
CONF_FILTER_LIST_SETTER(block_type, CONF_ITEM_TYPE)
#undef CONF_FILTER_LIST_SETTER

static int set_filter_allow_key_regex(struct conf_parse *parse, const char *value, char *why,
                                      size_t len) {
    return conf_filter_add_regex(&parse->conf->filter.allow_key_regex, value, why, len);
}

static int set_filter_block_key_regex(struct conf_parse *parse, const char *value, char *why,
                                      size_t len) {
    return conf_filter_add_regex(&parse->conf->filter.block_key_regex, value, why, len);
}

static int set_filter_allow_db(struct conf_parse *parse, const char *value, char *why,
                               size_t len) {
    return conf_filter_add_dbs(&parse->conf->filter.allow_db, value, why, len);
}

static int set_filter_block_db(struct conf_parse *parse, const char *value, char *why,
                               size_t len) {
    return conf_filter_add_dbs(&parse->conf->filter.block_db, value, why, len);
}

/* [source] / [target] tls_*: every key of one side, on that side's conf_tls. */
static int conf_set_optional_string(char **slot, const char *value) {
    if (value[0] != '\0') return conf_set_string(slot, value);
    free(*slot);
    *slot = NULL;
    return 0;
}

#define CONF_TLS_SETTERS(side)                                                                   \
    static int set_##side##_tls(struct conf_parse *parse, const char *value, char *why,         \
                                size_t len) {                                                   \
        return set_yes_no(&parse->conf->side.tls.enabled, value, why, len);                     \
    }                                                                                           \
    static int set_##side##_tls_insecure(struct conf_parse *parse, const char *value,           \
                                         char *why, size_t len) {                               \
        return set_yes_no(&parse->conf->side.tls.insecure, value, why, len);                    \
    }                                                                                           \
    static int set_##side##_tls_ca_file(struct conf_parse *parse, const char *value, char *why, \
                                        size_t len) {                                           \
        (void)why, (void)len;                                                                   \
        return conf_set_optional_string(&parse->conf->side.tls.ca_file, value);                 \
    }                                                                                           \
    static int set_##side##_tls_ca_dir(struct conf_parse *parse, const char *value, char *why,  \
                                       size_t len) {                                            \
        (void)why, (void)len;                                                                   \
        return conf_set_optional_string(&parse->conf->side.tls.ca_dir, value);                  \
    }                                                                                           \
    static int set_##side##_tls_cert_file(struct conf_parse *parse, const char *value,          \
                                          char *why, size_t len) {                              \
        (void)why, (void)len;                                                                   \
        return conf_set_optional_string(&parse->conf->side.tls.cert_file, value);               \
    }                                                                                           \
    static int set_##side##_tls_key_file(struct conf_parse *parse, const char *value,           \
                                         char *why, size_t len) {                               \
        (void)why, (void)len;                                                                   \
        return conf_set_optional_string(&parse->conf->side.tls.key_file, value);                \
    }                                                                                           \
    static int set_##side##_tls_server_name(struct conf_parse *parse, const char *value,        \
                                            char *why, size_t len) {                            \
        (void)why, (void)len;                                                                   \
        return conf_set_optional_string(&parse->conf->side.tls.server_name, value);             \
    }

CONF_TLS_SETTERS(source)
CONF_TLS_SETTERS(target)

#define CONF_TLS_KEYS(side)                                                                      \
    {#side, "tls", set_##side##_tls}, {#side, "tls_insecure", set_##side##_tls_insecure},        \
        {#side, "tls_ca_file", set_##side##_tls_ca_file},                                       \
        {#side, "tls_ca_dir", set_##side##_tls_ca_dir},                                         \
        {#side, "tls_cert_file", set_##side##_tls_cert_file},                                   \
        {#side, "tls_key_file", set_##side##_tls_key_file},                                     \
        {#side, "tls_server_name", set_##side##_tls_server_name}

static const struct conf_key conf_keys[] = {
    {"source", "type", set_source_type},
    {"source", "files", set_source_files},
    {"source", "address", set_source_address},
    {"source", "username", set_source_username},
    {"source", "password", set_source_password},
    {"source", "connect_timeout_ms", set_source_connect_timeout_ms},
    CONF_TLS_KEYS(source),
    {"target", "address", set_target_address},
    {"target", "username", set_target_username},
    {"target", "password", set_target_password},
    {"target", "on_existing", set_target_on_existing},
    {"target", "db_map", set_target_db_map},
    {"target", "pipeline_max_bytes", set_target_pipeline_max_bytes},
    {"target", "batch_max_items", set_target_batch_max_items},
    {"target", "batch_max_bytes", set_target_batch_max_bytes},
    {"target", "connect_timeout_ms", set_target_connect_timeout_ms},
    {"target", "on_unsupported", set_target_on_unsupported},
    {"target", "forward_publish", set_target_forward_publish},
    {"target", "wait_replicas", set_target_wait_replicas},
    CONF_TLS_KEYS(target),
    {"shake", "dir", set_shake_dir},
    {"shake", "log_level", set_shake_log_level},
    {"shake", "restore_max_bytes", set_shake_restore_max_bytes},
    {"shake", "progress", set_shake_progress},
    {"shake", "checkpoint_interval_ms", set_shake_checkpoint_interval_ms},
    {"shake", "io_collect_us", set_shake_io_collect_us},
    {"shake", "max_buffered", set_shake_max_buffered},
    {"shake", "spool_max", set_shake_spool_max},
    {"shake", "status", set_shake_status},
    {"filter", "allow_key_prefix", set_filter_allow_key_prefix},
    {"filter", "block_key_prefix", set_filter_block_key_prefix},
    {"filter", "allow_key_suffix", set_filter_allow_key_suffix},
    {"filter", "block_key_suffix", set_filter_block_key_suffix},
    {"filter", "allow_key", set_filter_allow_key},
    {"filter", "block_key", set_filter_block_key},
    {"filter", "allow_key_regex", set_filter_allow_key_regex},
    {"filter", "block_key_regex", set_filter_block_key_regex},
    {"filter", "allow_db", set_filter_allow_db},
    {"filter", "block_db", set_filter_block_db},
    {"filter", "allow_command", set_filter_allow_command},
    {"filter", "block_command", set_filter_block_command},
    {"filter", "allow_command_group", set_filter_allow_command_group},
    {"filter", "block_command_group", set_filter_block_command_group},
    {"filter", "allow_type", set_filter_allow_type},
    {"filter", "block_type", set_filter_block_type},
    {"filter", "rename_key_prefix", set_filter_rename_key_prefix},
};

static int conf_section_known(const char *section) {
    return strcmp(section, "source") == 0 || strcmp(section, "target") == 0 ||
           strcmp(section, "shake") == 0 || strcmp(section, "filter") == 0;
}

/* Replace every ${NAME} in value with the environment's NAME. Returns a new string,
 * or NULL with a reason in why. */
static char *conf_expand_env(const char *value, char *why, size_t len) {
    size_t cap = strlen(value) + 1, used = 0;
    char *out = malloc(cap);
    if (out == NULL) return NULL;
    for (const char *p = value; *p != '\0';) {
        const char *piece = p;
        size_t piece_len = 1;
        if (p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p + 2, '}');
            if (close == NULL) {
                snprintf(why, len, "'${' without a closing '}'");
                free(out);
                return NULL;
            }
            char name[256];
            size_t name_len = (size_t)(close - (p + 2));
            if (name_len == 0 || name_len >= sizeof(name)) {
                snprintf(why, len, "bad environment variable reference");
                free(out);
                return NULL;
            }
            memcpy(name, p + 2, name_len);
            name[name_len] = '\0';
            piece = getenv(name);
            if (piece == NULL) {
                snprintf(why, len, "environment variable %s is not set", name);
                free(out);
                return NULL;
            }
            piece_len = strlen(piece);
            p = close + 1;
        } else {
            p++;
        }
        if (used + piece_len + 1 > cap) {
            cap = (used + piece_len + 1) * 2;
            char *grown = realloc(out, cap);
            if (grown == NULL) {
                free(out);
                return NULL;
            }
            out = grown;
        }
        memcpy(out + used, piece, piece_len);
        used += piece_len;
    }
    out[used] = '\0';
    return out;
}

/* inih's handler: route one key to its setter. Returns 0 to make inih report the
 * line number of the failure. */
static int conf_handle_key(void *user, const char *section, const char *name,
                           const char *value) {
    struct conf_parse *parse = user;
    char why[CONF_ERR_LEN];
    if (parse->failed) return 1; /* report only the first problem */
    why[0] = '\0';
    if (!conf_section_known(section)) {
        snprintf(parse->err, parse->errlen, "unknown section [%s]", section);
        parse->failed = 1;
        return 0;
    }
    for (size_t i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
        if (strcmp(conf_keys[i].section, section) != 0 || strcmp(conf_keys[i].name, name) != 0)
            continue;
        /* A value that is exactly one ${VAR} keeps the secret out of the file. */
        if (strcmp(name, "password") == 0 && value[0] != '\0' &&
            !(strncmp(value, "${", 2) == 0 && strchr(value, '}') == value + strlen(value) - 1))
            parse->password_in_file = 1;
        char *expanded = conf_expand_env(value, why, sizeof(why));
        int rc = expanded == NULL ? -1 : conf_keys[i].set(parse, expanded, why, sizeof(why));
        free(expanded);
        if (rc == 0) return 1;
        snprintf(parse->err, parse->errlen, "[%s] %s: %s", section, name,
                 why[0] ? why : "out of memory");
        parse->failed = 1;
        return 0;
    }
    snprintf(parse->err, parse->errlen, "unknown key '%s' in [%s]", name, section);
    parse->failed = 1;
    return 0;
}

/* inih calls the handler for keys only: an empty unknown section would pass
 * unnoticed, so section headers are checked here first. */
static int conf_check_sections(const char *name, const char *text, char *err, size_t errlen) {
    int line = 1;
    for (const char *p = text; *p != '\0'; line++) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        while (p < end && isspace((unsigned char)*p)) p++;
        if (p < end && *p == '[') {
            const char *close = memchr(p, ']', (size_t)(end - p));
            char section[64];
            size_t len = close ? (size_t)(close - p - 1) : 0;
            if (close == NULL || len == 0 || len >= sizeof(section)) {
                snprintf(err, errlen, "%s:%d: malformed section header", name, line);
                return -1;
            }
            memcpy(section, p + 1, len);
            section[len] = '\0';
            if (!conf_section_known(section)) {
                snprintf(err, errlen, "%s:%d: unknown section [%s] (expected source, target, shake, filter)",
                         name, line, section);
                return -1;
            }
        }
        p = eol ? eol + 1 : end;
    }
    return 0;
}

/* Keep one more line for the job to log as a warning. */
static int conf_add_warning(struct shake_conf *conf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int conf_add_warning(struct shake_conf *conf, const char *fmt, ...) {
    char line[CONF_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char **grown = realloc(conf->warnings, sizeof(*grown) * (size_t)(conf->warning_count + 1));
    if (grown == NULL) return -1;
    conf->warnings = grown;
    if ((grown[conf->warning_count] = strdup(line)) == NULL) return -1;
    conf->warning_count++;
    return 0;
}

/* Check one side's tls_* keys together and build its TLS context once: a CA or a
 * certificate that cannot be loaded is a config error, found before any server
 * is touched. */
static int conf_build_tls(struct shake_conf *conf, const char *name, const char *section,
                          struct conf_tls *tls, char *err, size_t errlen) {
    tls_context_free(tls->context);
    tls->context = NULL;
    if (!tls->enabled) {
        const char *stray = tls->ca_file       ? "tls_ca_file"
                            : tls->ca_dir      ? "tls_ca_dir"
                            : tls->cert_file   ? "tls_cert_file"
                            : tls->key_file    ? "tls_key_file"
                            : tls->server_name ? "tls_server_name"
                            : tls->insecure    ? "tls_insecure"
                                               : NULL;
        if (stray == NULL) return 0;
        snprintf(err, errlen, "%s: [%s] %s is set but tls is not yes", name, section, stray);
        return -1;
    }
    if (tls->key_file != NULL && tls->cert_file == NULL) {
        snprintf(err, errlen, "%s: [%s] tls_key_file needs tls_cert_file", name, section);
        return -1;
    }
    struct tls_options options = {
        .ca_file = tls->ca_file,
        .ca_dir = tls->ca_dir,
        .cert_file = tls->cert_file,
        .key_file = tls->key_file,
        .server_name = tls->server_name,
        .insecure = tls->insecure,
    };
    char why[CONF_ERR_LEN];
    tls->context = tls_context_new(&options, why, sizeof(why));
    if (tls->context == NULL) {
        snprintf(err, errlen, "%s: [%s] %s", name, section, why);
        return -1;
    }
    if (tls->insecure &&
        conf_add_warning(conf,
                         "[%s] tls_insecure = yes: the %s's TLS certificates and host names are "
                         "NOT verified; anyone on the path can pose as the server",
                         section, section) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The file holds a password in clear and others may read it: say so. */
static int conf_check_file_mode(struct shake_conf *conf, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || (st.st_mode & 077) == 0) return 0;
    return conf_add_warning(conf,
                            "%s holds a password and is readable by %s (mode %04o): chmod 600 it, "
                            "or take the password from ${VAR}",
                            path, (st.st_mode & 007) ? "others" : "its group",
                            (unsigned)(st.st_mode & 07777));
}

static int conf_check_required(struct conf_parse *parse) {
    const char *missing = NULL;
    if (!parse->seen_type) missing = "[source] type";
    else if (parse->conf->source.type != CONF_SOURCE_SYNC && !parse->seen_files)
        missing = "[source] files";
    else if (parse->conf->source.type == CONF_SOURCE_SYNC && !parse->seen_source_address)
        missing = "[source] address";
    else if (!parse->seen_address) missing = "[target] address";
    if (missing == NULL) return 0;
    snprintf(parse->err, parse->errlen, "%s: missing required key %s", parse->name, missing);
    return -1;
}

void conf_init(struct shake_conf *conf) {
    memset(conf, 0, sizeof(*conf));
    conf->source.type = CONF_SOURCE_RDB;
    conf->target.on_existing = CONF_ON_EXISTING_ERROR;
    conf->target.pipeline_max_bytes = 2 * 1024 * 1024;
    conf->target.batch_max_items = 512;
    conf->target.batch_max_bytes = 1024 * 1024;
    conf->target.connect_timeout_ms = 5000;
    conf->target.wait_replicas = CONF_WAIT_REPLICAS_AUTO;
    conf->shake.dir = strdup("./shake-data");
    conf->shake.log_level = CONF_LOG_INFO;
    conf->shake.restore_max_bytes = 16 * 1024 * 1024;
    conf->shake.progress = -1;
    conf->shake.checkpoint_interval_ms = 1000;
    conf->shake.io_collect_us = 1000;
    conf->shake.max_buffered = 16 * 1024 * 1024;
    conf->shake.spool_max = (size_t)1024 * 1024 * 1024;
    conf->shake.status_host = strdup("127.0.0.1");
    conf->shake.status_port = 9121;
    conf->source.connect_timeout_ms = 5000;
}

int conf_load_string(struct shake_conf *conf, const char *name, const char *text, char *err,
                     size_t errlen) {
    struct conf_parse parse = {.conf = conf, .name = name, .err = err, .errlen = errlen};
    char message[CONF_ERR_LEN];
    if (conf_check_sections(name, text, err, errlen) != 0) return -1;
    /* Long `files =` lists must not be cut at inih's default 200 bytes a line. */
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = 1 << 20;
    parse.err = message;
    parse.errlen = sizeof(message);
    int line = ini_parse_string(text, conf_handle_key, &parse);
    if (line != 0) {
        if (parse.failed) snprintf(err, errlen, "%s:%d: %s", name, line, message);
        else snprintf(err, errlen, "%s:%d: syntax error (expected key = value or [section])",
                      name, line);
        return -1;
    }
    parse.err = err;
    parse.errlen = errlen;
    if (conf_check_required(&parse) != 0) return -1;
    if (conf_build_tls(conf, name, "source", &conf->source.tls, err, errlen) != 0 ||
        conf_build_tls(conf, name, "target", &conf->target.tls, err, errlen) != 0)
        return -1;
    /* conf_load names the file it read; text from memory has no mode to check. */
    if (parse.password_in_file && conf->path != NULL && strcmp(conf->path, name) == 0 &&
        conf_check_file_mode(conf, name) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int conf_load(struct shake_conf *conf, const char *path, char *err, size_t errlen) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        snprintf(err, errlen, "%s: cannot open config: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, used = 0;
    char *text = malloc(cap);
    size_t n;
    while (text != NULL && (n = fread(text + used, 1, cap - used - 1, file)) > 0) {
        used += n;
        if (cap - used - 1 == 0) {
            char *grown = realloc(text, cap * 2);
            if (grown == NULL) {
                free(text);
                text = NULL;
                break;
            }
            text = grown;
            cap *= 2;
        }
    }
    int read_failed = ferror(file);
    fclose(file);
    if (text == NULL || read_failed) {
        free(text);
        snprintf(err, errlen, "%s: cannot read config", path);
        return -1;
    }
    text[used] = '\0';
    free(conf->path);
    conf->path = strdup(path);
    int rc = conf_load_string(conf, path, text, err, errlen);
    free(text);
    return rc;
}

int conf_map_db(const struct conf_target *target, int db) {
    for (int i = 0; i < target->db_map_count; i++) {
        if (target->db_map[i].from == db) return target->db_map[i].to;
    }
    return db;
}

int conf_db_is_mapped(const struct conf_target *target, int db) {
    for (int i = 0; i < target->db_map_count; i++) {
        if (target->db_map[i].from == db) return 1;
    }
    return 0;
}

static void conf_list_free(struct conf_list *list) {
    for (int i = 0; i < list->count; i++) free(list->items[i]);
    free(list->items);
}

static void conf_filter_free(struct conf_filter *filter) {
    struct conf_list *lists[] = {
        &filter->allow_key_prefix, &filter->block_key_prefix,    &filter->allow_key_suffix,
        &filter->block_key_suffix, &filter->allow_key,           &filter->block_key,
        &filter->allow_key_regex,  &filter->block_key_regex,     &filter->allow_command,
        &filter->block_command,    &filter->allow_command_group, &filter->block_command_group,
        &filter->allow_type,       &filter->block_type,
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) conf_list_free(lists[i]);
    free(filter->allow_db.dbs);
    free(filter->block_db.dbs);
    for (int i = 0; i < filter->rename_count; i++) {
        free(filter->renames[i].from);
        free(filter->renames[i].to);
    }
    free(filter->renames);
}

/* Release one side's tls_* strings and its context. */
static void conf_tls_free(struct conf_tls *tls) {
    free(tls->ca_file);
    free(tls->ca_dir);
    free(tls->cert_file);
    free(tls->key_file);
    free(tls->server_name);
    tls_context_free(tls->context);
}

void conf_free(struct shake_conf *conf) {
    conf_tls_free(&conf->source.tls);
    conf_tls_free(&conf->target.tls);
    for (int i = 0; i < conf->warning_count; i++) free(conf->warnings[i]);
    free(conf->warnings);
    conf_filter_free(&conf->filter);
    for (int i = 0; i < conf->source.file_count; i++) free(conf->source.files[i]);
    free(conf->source.files);
    for (int i = 0; i < conf->source.address_count; i++) free(conf->source.addresses[i].host);
    free(conf->source.addresses);
    free(conf->source.username);
    free(conf->source.password);
    free(conf->target.host);
    free(conf->target.username);
    free(conf->target.password);
    free(conf->target.db_map);
    free(conf->shake.dir);
    free(conf->shake.status_host);
    free(conf->path);
    memset(conf, 0, sizeof(*conf));
}
