/* progress.h -- what a person watching a long job sees: on a terminal, one live
 * line (done/total, rate, ETA) redrawn in place; otherwise a log line every few
 * seconds. */
#ifndef SHAKE_PROGRESS_H
#define SHAKE_PROGRESS_H

#include <stdint.h>

struct progress {
    int on_terminal;        /* redraw one line in place on stderr */
    double started;         /* monotonic seconds */
    double last_log;
    int line_drawn;
};

double progress_now(void);
/* `mode`: -1 auto (terminal when stderr is one), 0 log lines only, 1 live line. */
void progress_init(struct progress *progress, int mode);
/* Called about once a second. */
void progress_update(struct progress *progress, const char *phase, uint64_t bytes_done,
                     uint64_t bytes_total, uint64_t keys);
/* Clear the live line before other output. */
void progress_clear(struct progress *progress);

#endif
