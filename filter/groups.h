/* groups.h -- the command groups Redis reports in `COMMAND DOCS` ("group"), and
 * the group of a command name.
 *
 * Owns: a fixed table of the Redis 7.x / 8.x command names and their groups (a
 * subcommand belongs to its container's group, as Redis reports it), the group
 * names the config accepts, and the value type a group's commands work on (the
 * filter judges a command against allow_type/block_type through it). A name the
 * table does not know (a module's command) is in FILTER_GROUP_MODULE, as Redis
 * reports module commands.
 *
 * Must not: allocate, do I/O, keep mutable state.
 */
#ifndef SHAKE_FILTER_GROUPS_H
#define SHAKE_FILTER_GROUPS_H

#include <stddef.h>

enum filter_group {
    FILTER_GROUP_GENERIC,
    FILTER_GROUP_STRING,
    FILTER_GROUP_LIST,
    FILTER_GROUP_SET,
    FILTER_GROUP_SORTED_SET,
    FILTER_GROUP_HASH,
    FILTER_GROUP_STREAM,
    FILTER_GROUP_PUBSUB,
    FILTER_GROUP_SCRIPTING,
    FILTER_GROUP_TRANSACTIONS,
    FILTER_GROUP_SERVER,
    FILTER_GROUP_CONNECTION,
    FILTER_GROUP_GEO,
    FILTER_GROUP_HYPERLOGLOG,
    FILTER_GROUP_BITMAP,
    FILTER_GROUP_CLUSTER,
    FILTER_GROUP_SENTINEL,
    FILTER_GROUP_MODULE,
    FILTER_GROUP_COUNT,
};

/* The group called `name` ("sorted-set", case-insensitive), or -1. */
int filter_group_from_name(const char *name);
const char *filter_group_name(enum filter_group group);
/* The group of the command `name` (argv[0], any case, not NUL-terminated). */
enum filter_group filter_group_of_command(const char *name, size_t len);
/* The value type (enum shake_value_type) a group's commands act on, or -1 for
 * groups that are not about one type (generic, server, pubsub...). */
int filter_group_value_type(enum filter_group group);
/* For the unit test: 1 when the table is sorted as the binary search needs. */
int filter_groups_table_sorted(void);

#endif
