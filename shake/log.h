/* log.h -- shake's log: timestamped lines on stderr, filtered by level.
 * The level is process-wide state, set once by main from [shake] log_level. */
#ifndef SHAKE_LOG_H
#define SHAKE_LOG_H

#include "conf/conf.h"

void log_set_level(enum conf_log_level level);
int log_enabled(enum conf_log_level level);
void log_write(enum conf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_write(CONF_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_write(CONF_LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_write(CONF_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(CONF_LOG_ERROR, __VA_ARGS__)

#endif
