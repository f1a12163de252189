/* cutover.c -- `shake cutover` (see cutover.h and docs/cutover.md).
 *
 * Owns: the barrier plan (one key per source master, in a slot that master owns,
 * in a db the config's filter carries to the target), the optional write pause,
 * polling the target for the barriers, and cleaning up on every path. Must not
 * touch any other key, and must never leave the source paused.
 *
 * The pause and the barrier go in one MULTI/EXEC: CLIENT PAUSE WRITE blocks every
 * client's writes, ours included, so a SET sent after it would wait for the end
 * of the pause. Inside EXEC both run atomically: the barrier is the last write the
 * source accepts before the pause.
 */
#include "shake/cutover.h"
#include "shake/status_client.h"

#include <ev.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "filter/filter.h"
#include "shake/client.h"
#include "shake/entry.h"

#define CUTOVER_POLL_MS 50
#define CUTOVER_COMMAND_TIMEOUT_MS 10000
#define CUTOVER_KEY_MAX 128
#define CUTOVER_DB_CANDIDATES 16
/* Barriers expire on their own this long after the wait ends, should the
 * cleanup never run (a kill -9). */
#define CUTOVER_BARRIER_GRACE_MS 600000

struct cutover_barrier {
    int master;                /* source master index */
    char shard[64];            /* shake's name of that shard */
    int db;                    /* source db */
    char key[CUTOVER_KEY_MAX]; /* on the source */
    int target_db;             /* after the filter */
    char *target_key;          /* after the filter; owned */
    size_t target_key_len;
    int written, paused, arrived;
    double arrived_after_s;
};

struct cutover {
    const struct shake_conf *conf;
    const struct cutover_options *options;
    FILE *out;
    struct client_env env;
    struct client_side source, target;
    struct filter *filter;           /* owned */
    struct cutover_barrier *barriers; /* owned */
    int barrier_count;
    char run_id[33];
    char value[160];
    ev_signal sigint, sigterm;
};

static double cutover_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A random id for this run's keys: two runs must never meet each other's barriers. */
static void cutover_make_run_id(char out[33]) {
    unsigned char bytes[16];
    FILE *random = fopen("/dev/urandom", "rb");
    size_t got = random != NULL ? fread(bytes, 1, sizeof(bytes), random) : 0;
    if (random != NULL) fclose(random);
    if (got != sizeof(bytes)) {
        unsigned long long seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
        for (size_t i = 0; i < sizeof(bytes); i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            bytes[i] = (unsigned char)(seed >> 56);
        }
    }
    for (size_t i = 0; i < sizeof(bytes); i++)
        snprintf(out + 2 * i, 3, "%02x", bytes[i]);
}

static void cutover_on_signal(struct ev_loop *loop, ev_signal *watcher, int revents) {
    (void)revents;
    struct cutover *cutover = watcher->data;
    cutover->env.interrupted = 1;
    ev_break(loop, EVBREAK_ONE);
}

/* --- the plan ----------------------------------------------------------------------- */

/* Where the filter sends `SET key value` in source db `db`: 1 with the target's db
 * and key, 0 when the filter drops it, -1 on an error. */
static int cutover_filter_barrier(struct cutover *cutover, struct cutover_barrier *barrier, int db,
                                  char *err, size_t errlen) {
    struct shake_entry *entry = shake_entry_new(SHAKE_ENTRY_CMD);
    const char *words[3] = {"SET", barrier->key, cutover->value};
    if (entry == NULL || (entry->argv = calloc(3, sizeof(char *))) == NULL ||
        (entry->argv_len = calloc(3, sizeof(size_t))) == NULL) {
        shake_entry_free(entry);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    entry->argc = 3;
    entry->db = db;
    for (int i = 0; i < 3; i++) {
        entry->argv[i] = strdup(words[i]);
        entry->argv_len[i] = strlen(words[i]);
        if (entry->argv[i] == NULL) {
            shake_entry_free(entry);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    enum filter_verdict verdict = filter_apply(cutover->filter, entry);
    int rc = verdict == FILTER_KEEP ? 1 : 0;
    if (verdict == FILTER_ERROR) {
        snprintf(err, errlen, "filter: %s", filter_error(cutover->filter));
        rc = -1;
    }
    if (rc == 1 && entry->argc >= 2 && shake_entry_arg_own(entry, 1) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    if (rc == 1 && entry->argc >= 2) {
        barrier->target_db = entry->db;
        barrier->target_key = entry->argv[1];
        barrier->target_key_len = entry->argv_len[1];
        entry->argv[1] = NULL;
    } else if (rc == 1) {
        rc = 0;
    }
    shake_entry_free(entry);
    return rc;
}

/* A key whose hash tag puts it in a slot master `master` owns. */
static int cutover_barrier_key(struct cutover *cutover, int master, char *out, size_t len) {
    for (int tag = 0; tag < 1000000; tag++) {
        snprintf(out, len, "shake:barrier:{%d}:%s", tag, cutover->run_id);
        if (client_side_index_for_key(&cutover->source, out, strlen(out)) == master) return 0;
    }
    return -1;
}

/* One barrier per source master that owns slots, each in the first db the
 * filter carries to the target (a cluster has db 0 only). */
static int cutover_plan(struct cutover *cutover, char *err, size_t errlen) {
    int masters = client_side_count(&cutover->source);
    cutover->barriers = calloc((size_t)masters, sizeof(*cutover->barriers));
    if (cutover->barriers == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int m = 0; m < masters; m++) {
        struct cutover_barrier *barrier = &cutover->barriers[cutover->barrier_count];
        barrier->master = m;
        if (cutover_barrier_key(cutover, m, barrier->key, sizeof(barrier->key)) != 0)
            continue; /* a master without slots holds nothing to prove */
        client_side_shard_name(&cutover->source, m, barrier->shard, sizeof(barrier->shard));
        int dbs = cutover->source.is_cluster ? 1 : CUTOVER_DB_CANDIDATES, rc = 0;
        for (int db = 0; db < dbs && rc == 0; db++) {
            rc = cutover_filter_barrier(cutover, barrier, db, err, errlen);
            barrier->db = db;
        }
        if (rc < 0) return -1;
        if (rc == 0) {
            snprintf(err, errlen,
                     "the config's [filter] drops the barrier key %s in every db: cutover "
                     "cannot prove anything through this sync",
                     barrier->key);
            return -1;
        }
        cutover->barrier_count++;
    }
    return 0;
}

/* --- the source ----------------------------------------------------------------------- */

/* A one-line reason from a reply that should not be an error. */
static int cutover_reply_failed(const redisReply *reply, char *why, size_t len) {
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, len, "%s", reply->str);
        return 1;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        snprintf(why, len, "transaction aborted");
        return 1;
    }
    return 0;
}

/* SET the barrier, with CLIENT PAUSE before it in one transaction when asked. */
static int cutover_write_barrier(struct cutover *cutover, struct cutover_barrier *barrier,
                                 char *err, size_t errlen) {
    struct client *client = client_side_master(&cutover->source, barrier->master, err, errlen);
    if (client == NULL || client_select(client, barrier->db, err, errlen) != 0) return -1;
    long long expire_ms = (long long)(cutover->options->timeout_s * 1000) + CUTOVER_BARRIER_GRACE_MS;
    long long pause_ms = (long long)(cutover->options->pause_s * 1000);
    int paused = pause_ms > 0;
    if (paused) {
        client_append(client, "MULTI");
        client_append(client, "CLIENT PAUSE %lld WRITE", pause_ms);
    }
    client_append(client, "SET %s %s PX %lld", barrier->key, cutover->value, expire_ms);
    if (paused) client_append(client, "EXEC");
    int replies = paused ? 4 : 1, rc = 0;
    char why[256] = "";
    for (int i = 0; i < replies; i++) {
        redisReply *reply = client_get_reply(client, err, errlen);
        if (reply == NULL) return -1;
        if (rc == 0 && cutover_reply_failed(reply, why, sizeof(why))) rc = -1;
        if (paused && i == 3 && rc == 0 && reply->type == REDIS_REPLY_ARRAY) {
            for (size_t e = 0; e < reply->elements && rc == 0; e++)
                if (cutover_reply_failed(reply->element[e], why, sizeof(why))) rc = -1;
            barrier->paused = barrier->written = rc == 0;
        }
        freeReplyObject(reply);
    }
    if (!paused) barrier->written = rc == 0;
    if (rc != 0)
        snprintf(err, errlen, "source %s: %s %s: %s%s", client_address(client),
                 paused ? "CLIENT PAUSE + SET" : "SET", barrier->key, why,
                 paused ? " (CLIENT PAUSE WRITE needs Redis >= 6.2 and +client|pause)" : "");
    return rc;
}

/* CLIENT UNPAUSE everywhere we paused; failures are reported, not fatal. */
static void cutover_unpause(struct cutover *cutover) {
    for (int i = 0; i < cutover->barrier_count; i++) {
        struct cutover_barrier *barrier = &cutover->barriers[i];
        if (!barrier->paused) continue;
        char err[CLIENT_ERR_LEN];
        struct client *client = client_side_master(&cutover->source, barrier->master, err, sizeof(err));
        redisReply *reply = client ? client_command(client, err, sizeof(err), "CLIENT UNPAUSE") : NULL;
        if (reply == NULL)
            fprintf(cutover->out, "cutover: warning: could not unpause shard %s: %s\n",
                    barrier->shard, err);
        else if (reply->type == REDIS_REPLY_ERROR)
            fprintf(cutover->out, "cutover: warning: CLIENT UNPAUSE on shard %s: %s\n",
                    barrier->shard, reply->str);
        else
            barrier->paused = 0;
        freeReplyObject(reply);
    }
}

/* DEL on one node in one db; returns 0 or -1 (reported). */
static int cutover_delete_one(struct cutover *cutover, struct client_side *side, const char *key,
                              size_t key_len, int db) {
    char err[CLIENT_ERR_LEN];
    struct client *client =
        client_side_master(side, client_side_index_for_key(side, key, key_len), err, sizeof(err));
    redisReply *reply = NULL;
    if (client != NULL && client_select(client, db, err, sizeof(err)) == 0) {
        const char *argv[2] = {"DEL", key};
        size_t argvlen[2] = {3, key_len};
        reply = client_command_argv(client, err, sizeof(err), 2, argv, argvlen);
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        fprintf(cutover->out, "cutover: warning: could not delete barrier %.*s: %s\n",
                (int)key_len, key, reply ? reply->str : err);
        freeReplyObject(reply);
        return -1;
    }
    freeReplyObject(reply);
    return 0;
}

/* Remove the barriers: on the source (the sync carries the DEL too) and directly
 * on the target, for a sync that is behind or stopped. */
static void cutover_delete_barriers(struct cutover *cutover) {
    for (int i = 0; i < cutover->barrier_count; i++) {
        struct cutover_barrier *barrier = &cutover->barriers[i];
        if (!barrier->written) continue;
        cutover_delete_one(cutover, &cutover->source, barrier->key, strlen(barrier->key),
                           barrier->db);
        cutover_delete_one(cutover, &cutover->target, barrier->target_key,
                           barrier->target_key_len, barrier->target_db);
    }
}

/* --- the target ----------------------------------------------------------------------- */

/* GET one barrier on the target: 1 there, 0 not yet, -1 on an error. */
static int cutover_barrier_arrived(struct cutover *cutover, struct cutover_barrier *barrier,
                                   char *err, size_t errlen) {
    struct client_side *target = &cutover->target;
    int index = client_side_index_for_key(target, barrier->target_key, barrier->target_key_len);
    struct client *client = client_side_master(target, index, err, errlen);
    if (client == NULL || client_select(client, barrier->target_db, err, errlen) != 0) return -1;
    const char *argv[2] = {"GET", barrier->target_key};
    size_t argvlen[2] = {3, barrier->target_key_len};
    redisReply *reply = client_command_argv(client, err, errlen, 2, argv, argvlen);
    if (reply == NULL) return -1;
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "target %s: GET %s: %s", client_address(client), barrier->target_key,
                 reply->str);
        rc = -1;
    } else if (reply->type == REDIS_REPLY_STRING && strcmp(reply->str, cutover->value) == 0) {
        rc = 1;
    }
    freeReplyObject(reply);
    return rc;
}

/* Poll until every barrier is on the target: 1 all there, 0 timed out or
 * interrupted, -1 on an error. */
static int cutover_wait(struct cutover *cutover, double started, char *err, size_t errlen) {
    double deadline = started + cutover->options->timeout_s;
    for (;;) {
        int missing = 0;
        for (int i = 0; i < cutover->barrier_count; i++) {
            struct cutover_barrier *barrier = &cutover->barriers[i];
            if (barrier->arrived) continue;
            int rc = cutover_barrier_arrived(cutover, barrier, err, errlen);
            if (rc < 0) return -1;
            barrier->arrived = rc;
            if (rc) barrier->arrived_after_s = cutover_now() - started;
            missing += !rc;
        }
        if (missing == 0) return 1;
        if (cutover->env.interrupted || cutover_now() >= deadline) return 0;
        client_sleep(&cutover->env, CUTOVER_POLL_MS);
    }
}

/* --- arguments ----------------------------------------------------------------------- */

/* A positive number of seconds (fractions allowed); -1 when it is not one. */
static double cutover_seconds(const char *text) {
    char *end = NULL;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || !(value > 0) || value > 86400) return -1;
    return value;
}

int cutover_parse_args(int argc, char **argv, const char **conf_path,
                       struct cutover_options *options, char *err, size_t errlen) {
    *conf_path = NULL;
    options->pause_s = 0;
    options->timeout_s = 30;
    for (int i = 0; i < argc; i++) {
        const char *word = argv[i];
        if (i + 1 >= argc) {
            snprintf(err, errlen, "cutover: %s needs a value", word);
            return -1;
        }
        const char *value = argv[++i];
        if (strcmp(word, "-conf") == 0 || strcmp(word, "--conf") == 0) {
            *conf_path = value;
        } else if (strcmp(word, "--pause") == 0 || strcmp(word, "--timeout") == 0) {
            double seconds = cutover_seconds(value);
            if (seconds < 0) {
                snprintf(err, errlen, "cutover: %s wants seconds (0 < s <= 86400), got '%s'", word,
                         value);
                return -1;
            }
            *(word[2] == 'p' ? &options->pause_s : &options->timeout_s) = seconds;
        } else {
            snprintf(err, errlen, "cutover: unknown option '%s'", word);
            return -1;
        }
    }
    if (*conf_path == NULL) {
        snprintf(err, errlen, "cutover: expected -conf FILE");
        return -1;
    }
    return 0;
}

/* --- the run ------------------------------------------------------------------------ */

/* How far behind: the running sync's own numbers (lag in bytes and ms per shard),
 * when its status endpoint answers. */
static void cutover_report_lag(struct cutover *cutover) {
    char err[512];
    fprintf(cutover->out, "lag, from the running sync (shake status):\n");
    if (status_client_run(&cutover->conf->shake, 0, cutover->out, err, sizeof(err)) ==
        STATUS_EXIT_UNREACHABLE)
        fprintf(cutover->out, "  not available: %s\n", err);
}

static void cutover_report_behind(struct cutover *cutover, double waited) {
    for (int i = 0; i < cutover->barrier_count; i++) {
        const struct cutover_barrier *barrier = &cutover->barriers[i];
        const struct slots_master *master = &cutover->source.map.masters[barrier->master];
        if (barrier->arrived)
            fprintf(cutover->out, "caught up: shard %s (%s:%d): barrier arrived after %.3f s\n",
                    barrier->shard, master->host, master->port, barrier->arrived_after_s);
        else
            fprintf(cutover->out,
                    "behind: shard %s (%s:%d): barrier %s (db %d) not on the target (as %.*s, "
                    "db %d) after %.3f s\n",
                    barrier->shard, master->host, master->port, barrier->key, barrier->db,
                    (int)barrier->target_key_len, barrier->target_key, barrier->target_db, waited);
    }
}

static int cutover_open(struct cutover *cutover, char *err, size_t errlen) {
    const struct shake_conf *conf = cutover->conf;
    if (conf->source.type != CONF_SOURCE_SYNC) {
        snprintf(err, errlen, "cutover needs a [source] type = sync config");
        return -1;
    }
    struct client_auth source_auth = client_auth_source(conf);
    struct client_auth target_auth = client_auth_target(conf);
    struct conf_address target_address = {conf->target.host, conf->target.port};
    if (client_side_open(&cutover->source, &cutover->env, "source", conf->source.addresses,
                         conf->source.address_count, &source_auth, err, errlen) != 0 ||
        client_side_open(&cutover->target, &cutover->env, "target", &target_address, 1,
                         &target_auth, err, errlen) != 0)
        return -1;
    cutover->filter = filter_new(conf, NULL, err, errlen);
    return cutover->filter == NULL ? -1 : 0;
}

/* Pause (optionally) and write every barrier; the first failure stops it. */
static int cutover_write_all(struct cutover *cutover, char *err, size_t errlen) {
    for (int i = 0; i < cutover->barrier_count; i++) {
        if (cutover_write_barrier(cutover, &cutover->barriers[i], err, errlen) != 0) return -1;
    }
    if (cutover->options->pause_s > 0)
        fprintf(cutover->out, "cutover: writes paused on %d source master(s) for up to %.3f s\n",
                cutover->barrier_count, cutover->options->pause_s);
    fprintf(cutover->out, "cutover: %d barrier(s) written, run %s\n", cutover->barrier_count,
            cutover->run_id);
    fflush(cutover->out);
    return 0;
}

/* After the barriers went in: wait, then clean up whatever happened. */
static int cutover_finish(struct cutover *cutover, double started, char *err, size_t errlen) {
    int rc = cutover_wait(cutover, started, err, errlen);
    int interrupted = cutover->env.interrupted;
    double waited = cutover_now() - started;
    cutover->env.interrupted = 0; /* the cleanup must still reach the servers */
    cutover_unpause(cutover);
    if (rc == 1) {
        cutover_delete_barriers(cutover);
        fprintf(cutover->out, "safe to switch: %d shard(s) caught up in %.3f s\n",
                cutover->barrier_count, waited);
        return CUTOVER_SAFE;
    }
    if (rc == 0) {
        cutover_report_behind(cutover, waited);
        cutover_report_lag(cutover);
        int behind = 0;
        for (int i = 0; i < cutover->barrier_count; i++)
            behind += !cutover->barriers[i].arrived;
        snprintf(err, errlen, "cutover %s after %.3f s: %d of %d shard(s) behind",
                 interrupted ? "interrupted" : "timed out", waited, behind, cutover->barrier_count);
    }
    cutover_delete_barriers(cutover);
    return CUTOVER_BEHIND;
}

static void cutover_free(struct cutover *cutover) {
    ev_signal_stop(cutover->env.loop, &cutover->sigint);
    ev_signal_stop(cutover->env.loop, &cutover->sigterm);
    for (int i = 0; i < cutover->barrier_count; i++)
        free(cutover->barriers[i].target_key);
    free(cutover->barriers);
    filter_free(cutover->filter);
    client_side_free(&cutover->target);
    client_side_free(&cutover->source);
}

int cutover_run(struct ev_loop *loop, const struct shake_conf *conf,
                const struct cutover_options *options, FILE *out, char *err, size_t errlen) {
    struct cutover cutover;
    memset(&cutover, 0, sizeof(cutover));
    cutover.conf = conf;
    cutover.options = options;
    cutover.out = out;
    cutover.env.loop = loop;
    cutover.env.timeout_ms = CUTOVER_COMMAND_TIMEOUT_MS;
    cutover_make_run_id(cutover.run_id);
    snprintf(cutover.value, sizeof(cutover.value), "shake cutover %s pid %d", cutover.run_id,
             (int)getpid());
    ev_signal_init(&cutover.sigint, cutover_on_signal, SIGINT);
    ev_signal_init(&cutover.sigterm, cutover_on_signal, SIGTERM);
    cutover.sigint.data = cutover.sigterm.data = &cutover;
    ev_signal_start(loop, &cutover.sigint);
    ev_signal_start(loop, &cutover.sigterm);

    int rc = CUTOVER_USAGE;
    if (cutover_open(&cutover, err, errlen) == 0 && cutover_plan(&cutover, err, errlen) == 0) {
        double started = cutover_now();
        if (cutover_write_all(&cutover, err, errlen) == 0) {
            rc = cutover_finish(&cutover, started, err, errlen);
        } else {
            cutover.env.interrupted = 0;
            cutover_unpause(&cutover);
            cutover_delete_barriers(&cutover);
            rc = CUTOVER_BEHIND;
        }
    }
    cutover_free(&cutover);
    return rc;
}
