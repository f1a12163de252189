/* progress.c -- see progress.h. */
#include "shake/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "shake/log.h"

#define PROGRESS_LOG_INTERVAL 5.0

double progress_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_init(struct progress *progress, int mode) {
    progress->on_terminal = mode == -1 ? isatty(STDERR_FILENO) : mode;
    progress->started = progress_now();
    progress->last_log = progress->started;
    progress->line_drawn = 0;
}

static void progress_format_eta(double seconds, char *buf, size_t len) {
    if (seconds < 0 || seconds > 360000) {
        snprintf(buf, len, "--:--");
        return;
    }
    unsigned s = (unsigned)seconds;
    snprintf(buf, len, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
}

void progress_update(struct progress *progress, const char *phase, uint64_t bytes_done,
                     uint64_t bytes_total, uint64_t keys) {
    double now = progress_now();
    double elapsed = now - progress->started;
    double rate = elapsed > 0 ? (double)bytes_done / elapsed : 0;
    double keys_rate = elapsed > 0 ? (double)keys / elapsed : 0;
    double percent = bytes_total ? 100.0 * (double)bytes_done / (double)bytes_total : 0;
    char eta[32];
    progress_format_eta(rate > 0 && bytes_total >= bytes_done
                            ? (double)(bytes_total - bytes_done) / rate
                            : -1,
                        eta,
                        sizeof(eta));
    if (bytes_total == 0 && progress->on_terminal) { /* size unknown: a diskless transfer */
        fprintf(stderr, "\r\033[K%s %.1f MB  %llu keys  %.0f keys/s", phase,
                (double)bytes_done / 1e6, (unsigned long long)keys, keys_rate);
        fflush(stderr);
        progress->line_drawn = 1;
    } else if (progress->on_terminal) {
        fprintf(stderr, "\r\033[K%s %5.1f%%  %.1f/%.1f MB  %llu keys  %.0f keys/s  ETA %s", phase,
                percent, (double)bytes_done / 1e6, (double)bytes_total / 1e6,
                (unsigned long long)keys, keys_rate, eta);
        fflush(stderr);
        progress->line_drawn = 1;
    } else if (now - progress->last_log >= PROGRESS_LOG_INTERVAL) {
        progress->last_log = now;
        log_info("%s: %.1f%% (%.1f of %.1f MB), %llu keys, %.0f keys/s, ETA %s", phase, percent,
                 (double)bytes_done / 1e6, (double)bytes_total / 1e6, (unsigned long long)keys,
                 keys_rate, eta);
    }
}

void progress_clear(struct progress *progress) {
    if (progress->line_drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        progress->line_drawn = 0;
    }
}
