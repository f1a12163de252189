/* filter.h -- decides, for each entry, keep or drop, and rewrites what crosses
 * (the database number through [target] db_map). Sees entries only: it never knows
 * which reader made them or which writer takes them. */
#ifndef SHAKE_FILTER_H
#define SHAKE_FILTER_H

#include "conf/conf.h"
#include "shake/entry.h"

enum filter_verdict {
    FILTER_KEEP,
    FILTER_DROP,
};

/* Apply the configured rules to `entry` in place. */
enum filter_verdict filter_apply(const struct shake_conf *conf, struct shake_entry *entry);

#endif
