/* main.c -- shake's entry point: arguments, config, the loop, the job, the summary.
 *
 * This is the edge where errors are reported: one line, "shake: error: ...", and
 * the exit status (0 every key landed, 1 a runtime failure, 2 a usage or config
 * error, reported before any server is touched).
 */
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "shake/cutover.h"
#include "shake/decode.h"
#include "shake/log.h"
#include "shake/restore.h"
#include "shake/status_client.h"
#include "shake/status.h" /* SHAKE_VERSION */
#include "shake/sync.h"
#include "shake/verify.h"


#define EXIT_RUNTIME_FAILURE 1
#define EXIT_USAGE 2

/* The edge's one error line. */
static void report_error(const char *message) {
    fprintf(stderr, "shake: error: %s\n", message);
}

static void print_usage(FILE *out) {
    fprintf(out,
            "usage: shake -conf FILE      run the job the config describes\n"
            "       shake cutover -conf FILE [--pause SECONDS] [--timeout SECONDS]\n"
            "       shake verify -conf FILE [--sample PCT] [--rounds N]\n"
            "       shake status -conf FILE [--json]\n"
            "       shake decode [--chunks] FILE...   check RDB files with the decoder alone\n"
            "       shake --version\n"
            "       shake --help\n"
            "See docs/config.md for the config keys.\n");
}

static void print_summary(const struct restore_result *r) {
    printf("restore %s in %.2f s: %llu keys written, %llu errors\n",
           r->ok ? "finished" : "FAILED", r->seconds, (unsigned long long)r->keys_written,
           (unsigned long long)r->key_errors);
    printf("  skipped: %llu expired, %llu empty, %llu already on the target, %llu filtered\n",
           (unsigned long long)r->skipped_expired, (unsigned long long)r->skipped_empty,
           (unsigned long long)r->skipped_existing, (unsigned long long)r->filtered);
    printf("  read %llu of %llu bytes, %llu function libraries, %llu commands replayed\n",
           (unsigned long long)r->bytes_read, (unsigned long long)r->bytes_total,
           (unsigned long long)r->functions, (unsigned long long)r->commands);
    printf("summary: written=%llu skipped_expired=%llu skipped_empty=%llu skipped_existing=%llu "
           "filtered=%llu errors=%llu bytes=%llu seconds=%.3f status=%s commands=%llu\n",
           (unsigned long long)r->keys_written, (unsigned long long)r->skipped_expired,
           (unsigned long long)r->skipped_empty, (unsigned long long)r->skipped_existing,
           (unsigned long long)r->filtered, (unsigned long long)r->key_errors,
           (unsigned long long)r->bytes_read, r->seconds, r->ok ? "ok" : "failed",
           (unsigned long long)r->commands);
    fflush(stdout);
}

/* The live sync runs until a signal (exit 0 once drained and checkpointed) or a
 * fatal error. */
static int run_sync(struct ev_loop *loop, const struct shake_conf *conf) {
    struct sync_result result;
    sync_run(loop, conf, &result);
    if (!result.ok) {
        report_error(result.error);
        return EXIT_RUNTIME_FAILURE;
    }
    printf("sync stopped; checkpoint saved in %s/checkpoint\n", conf->shake.dir);
    return 0;
}

static int run_restore(struct ev_loop *loop, const struct shake_conf *conf) {
    struct restore_result result;
    restore_run(loop, conf, &result);
    print_summary(&result);
    if (result.error[0] != '\0') report_error(result.error);
    else if (!result.ok)
        fprintf(stderr, "shake: error: %llu keys were refused by the target (see the log)\n",
                (unsigned long long)result.key_errors);
    return result.ok ? 0 : EXIT_RUNTIME_FAILURE;
}

/* Loads the config at path for a command that talks to servers, and ignores SIGPIPE
 * (a closed connection is an error the code sees, not a signal). On a bad config,
 * reports it and returns EXIT_USAGE with nothing left to free. */
static int load_conf(struct shake_conf *conf, const char *path) {
    char err[CONF_ERR_LEN];
    conf_init(conf);
    if (conf_load(conf, path, err, sizeof(err)) != 0) {
        report_error(err);
        conf_free(conf);
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int run_conf(const char *path) {
    struct shake_conf conf;
    if (load_conf(&conf, path) != 0) return EXIT_USAGE;
    log_set_level(conf.shake.log_level);
    struct ev_loop *loop = ev_default_loop(0);
    /* When busy, let input collect between two rounds of I/O: fewer wake-ups and
     * bigger batches (see io_collect_us in docs/config.md). An idle loop still
     * answers at once. */
    ev_set_io_collect_interval(loop, conf.shake.io_collect_us / 1e6);
    int rc = conf.source.type == CONF_SOURCE_SYNC ? run_sync(loop, &conf) : run_restore(loop, &conf);
    conf_free(&conf);
    return rc;
}

/* The start of an operator command (cutover, verify, status), its arguments parsed
 * (parsed: 0, or non-zero with err set): a usage error is reported before any config
 * is read; otherwise the config at path is loaded. Returns 0, or EXIT_USAGE with
 * nothing left to free. */
static int begin_operator(int parsed, const char *err, const char *path, struct shake_conf *conf) {
    if (parsed != 0) {
        report_error(err);
        return EXIT_USAGE;
    }
    return load_conf(conf, path);
}

/* The end of an operator command (cutover, verify, status): its output flushed
 * before its error line, if any, then its own exit status. */
static int finish_operator(struct shake_conf *conf, int rc, const char *err) {
    fflush(stdout);
    if (err[0] != '\0') report_error(err);
    conf_free(conf);
    return rc;
}

/* `shake cutover`: see docs/cutover.md. */
static int run_cutover(int argc, char **argv) {
    struct cutover_options options;
    const char *path = NULL;
    char err[1024];
    struct shake_conf conf;
    int parsed = cutover_parse_args(argc, argv, &path, &options, err, sizeof(err));
    if (begin_operator(parsed, err, path, &conf) != 0) return EXIT_USAGE;
    err[0] = '\0';
    int rc = cutover_run(ev_default_loop(0), &conf, &options, stdout, err, sizeof(err));
    return finish_operator(&conf, rc, err);
}

/* `shake status`: see docs/status.md. Exit 0 caught up, 1 not, 2 unreachable. */
static int run_status(int argc, char **argv) {
    const char *path = NULL;
    int json;
    char err[1024];
    struct shake_conf conf;
    int parsed = status_client_parse_args(argc, argv, &path, &json, err, sizeof(err));
    if (begin_operator(parsed, err, path, &conf) != 0) return EXIT_USAGE;
    int rc = status_client_run(&conf.shake, json, stdout, err, sizeof(err));
    return finish_operator(&conf, rc, err);
}

/* `shake verify`: see docs/cutover.md. */
static int run_verify(int argc, char **argv) {
    struct verify_options options;
    const char *path = NULL;
    char err[1024];
    struct shake_conf conf;
    int parsed = verify_parse_args(argc, argv, &path, &options, err, sizeof(err));
    if (begin_operator(parsed, err, path, &conf) != 0) return EXIT_USAGE;
    err[0] = '\0';
    int rc = verify_run(ev_default_loop(0), &conf, &options, stdout, err, sizeof(err));
    return finish_operator(&conf, rc, err);
}

/* `shake decode [--chunks] FILE...`: the decoder alone, no server. */
static int run_decode(int argc, char **argv) {
    int chunks = argc > 0 && strcmp(argv[0], "--chunks") == 0;
    if (argc - chunks < 1) {
        report_error("decode: expected one or more RDB files");
        return EXIT_USAGE;
    }
    struct decode_result r;
    char err[1024];
    int rc = decode_files(argv + chunks, argc - chunks, chunks, &r, err, sizeof(err));
    double mb = (double)r.bytes / 1e6;
    printf("decode %s in %.3f s (%.3f s CPU): %llu bytes, %llu keys, %llu chunks, %llu functions, "
           "%llu expired and %llu empty skipped, %.1f MB/s per CPU second\n",
           rc == 0 ? "finished" : "FAILED", r.seconds, r.cpu_seconds,
           (unsigned long long)r.bytes, (unsigned long long)r.keys, (unsigned long long)r.chunks,
           (unsigned long long)r.functions, (unsigned long long)r.skipped_expired,
           (unsigned long long)r.skipped_empty, r.cpu_seconds > 0 ? mb / r.cpu_seconds : 0.0);
    fflush(stdout);
    if (rc != 0) {
        report_error(err);
        return EXIT_RUNTIME_FAILURE;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        print_usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("shake %s\n", SHAKE_VERSION);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "cutover") == 0) return run_cutover(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "verify") == 0) return run_verify(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "status") == 0) return run_status(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "decode") == 0) return run_decode(argc - 2, argv + 2);
    if (argc == 3 && (strcmp(argv[1], "-conf") == 0 || strcmp(argv[1], "--conf") == 0))
        return run_conf(argv[2]);
    report_error("expected -conf FILE");
    print_usage(stderr);
    return EXIT_USAGE;
}
