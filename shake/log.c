/* log.c -- see log.h. Lines look like "2026-11-22 03:04:05.678 INFO message". */
#include "shake/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static enum conf_log_level log_level = CONF_LOG_INFO;

void log_set_level(enum conf_log_level level) {
    log_level = level;
}

int log_enabled(enum conf_log_level level) {
    return level >= log_level;
}

static const char *log_level_name(enum conf_log_level level) {
    switch (level) {
    case CONF_LOG_DEBUG: return "DEBUG";
    case CONF_LOG_INFO: return "INFO";
    case CONF_LOG_WARN: return "WARN";
    case CONF_LOG_ERROR: return "ERROR";
    }
    return "?";
}

void log_write(enum conf_log_level level, const char *fmt, ...) {
    if (!log_enabled(level)) return;
    struct timeval now;
    struct tm tm;
    char stamp[32];
    gettimeofday(&now, NULL);
    localtime_r(&now.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03d %s %s\n", stamp, (int)(now.tv_usec / 1000), log_level_name(level),
            line);
}
