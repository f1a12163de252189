/* decode.c -- see decode.h. Reads each file in 1 MiB blocks straight into the
 * decoder's buffer and drops every entry: the cost measured is the decoder's. */
#include "shake/decode.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "reader/rdb_decode.h"

#define DECODE_BLOCK (1024 * 1024)

static double decode_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double decode_cpu(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

/* Pull every entry the decoder has; count them. */
static enum rdb_status decode_drain(struct rdb_decoder *decoder, struct decode_result *result) {
    for (;;) {
        struct shake_entry *entry = NULL;
        enum rdb_status status = rdb_decoder_next(decoder, &entry);
        if (status != RDB_OK) return status;
        if (entry->kind == SHAKE_ENTRY_CHUNK) result->chunks++;
        shake_entry_free(entry);
    }
}

static int decode_file(const char *path, int chunks, struct decode_result *result, char *err,
                       size_t errlen) {
    struct rdb_decoder_options options = {
        .raw_max = 16 * 1024 * 1024,
        .restorable_types = chunks ? 0 : ~0ULL,
        .max_element = 4ULL * 1024 * 1024 * 1024,
    };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct rdb_decoder *decoder = rdb_decoder_new(&options);
    enum rdb_status status = decoder ? RDB_NEED_MORE : RDB_ERR;
    while (status == RDB_NEED_MORE) {
        char *room = rdb_decoder_reserve(decoder, DECODE_BLOCK);
        ssize_t n = room ? read(fd, room, DECODE_BLOCK) : -1;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        if (n == 0) rdb_decoder_finish(decoder);
        rdb_decoder_commit(decoder, (size_t)n);
        result->bytes += (uint64_t)n;
        status = decode_drain(decoder, result);
    }
    int rc = 0;
    if (status != RDB_DONE) {
        snprintf(err, errlen, "%s: %s", path,
                 decoder == NULL ? "out of memory"
                 : status == RDB_ERR ? rdb_decoder_error(decoder)
                                     : strerror(errno));
        rc = -1;
    } else {
        const struct rdb_decoder_stats *stats = rdb_decoder_stats(decoder);
        result->keys += stats->keys;
        result->functions += stats->functions;
        result->skipped_expired += stats->expired_skipped;
        result->skipped_empty += stats->empty_skipped;
    }
    rdb_decoder_free(decoder);
    close(fd);
    return rc;
}

int decode_files(char **files, int count, int chunks, struct decode_result *result, char *err,
                 size_t errlen) {
    memset(result, 0, sizeof(*result));
    double started = decode_now(), cpu = decode_cpu();
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) rc = decode_file(files[i], chunks, result, err, errlen);
    result->seconds = decode_now() - started;
    result->cpu_seconds = decode_cpu() - cpu;
    return rc;
}
