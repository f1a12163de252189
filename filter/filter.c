/* filter.c -- see filter.h. For now: every entry passes, its db mapped by db_map. */
#include "filter/filter.h"

enum filter_verdict filter_apply(const struct shake_conf *conf, struct shake_entry *entry) {
    if (entry->kind == SHAKE_ENTRY_KEY || entry->kind == SHAKE_ENTRY_CHUNK ||
        entry->kind == SHAKE_ENTRY_CMD) {
        entry->db = conf_map_db(&conf->target, entry->db);
    }
    return FILTER_KEEP;
}
