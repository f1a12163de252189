/* groups.c -- command groups as `COMMAND DOCS` reports them (see groups.h).
 *
 * The table is sorted by name (byte order of the lower-case names) so a lookup
 * is a binary search: the filter asks once per command of the stream. */
#include "filter/groups.h"

#include <string.h>
#include <strings.h>

#include "shake/entry.h"

struct group_row {
    const char *name;
    enum filter_group group;
};

static const char *const group_names[FILTER_GROUP_COUNT] = {
    [FILTER_GROUP_GENERIC] = "generic",
    [FILTER_GROUP_STRING] = "string",
    [FILTER_GROUP_LIST] = "list",
    [FILTER_GROUP_SET] = "set",
    [FILTER_GROUP_SORTED_SET] = "sorted-set",
    [FILTER_GROUP_HASH] = "hash",
    [FILTER_GROUP_STREAM] = "stream",
    [FILTER_GROUP_PUBSUB] = "pubsub",
    [FILTER_GROUP_SCRIPTING] = "scripting",
    [FILTER_GROUP_TRANSACTIONS] = "transactions",
    [FILTER_GROUP_SERVER] = "server",
    [FILTER_GROUP_CONNECTION] = "connection",
    [FILTER_GROUP_GEO] = "geo",
    [FILTER_GROUP_HYPERLOGLOG] = "hyperloglog",
    [FILTER_GROUP_BITMAP] = "bitmap",
    [FILTER_GROUP_CLUSTER] = "cluster",
    [FILTER_GROUP_SENTINEL] = "sentinel",
    [FILTER_GROUP_MODULE] = "module",
};

/* Every command of Redis 7.0 to 8.2, sorted by name. Keep it sorted: the unit
 * test checks it. */
static const struct group_row group_rows[] = {
    {"acl", FILTER_GROUP_SERVER},
    {"append", FILTER_GROUP_STRING},
    {"asking", FILTER_GROUP_CLUSTER},
    {"auth", FILTER_GROUP_CONNECTION},
    {"bgrewriteaof", FILTER_GROUP_SERVER},
    {"bgsave", FILTER_GROUP_SERVER},
    {"bitcount", FILTER_GROUP_BITMAP},
    {"bitfield", FILTER_GROUP_BITMAP},
    {"bitfield_ro", FILTER_GROUP_BITMAP},
    {"bitop", FILTER_GROUP_BITMAP},
    {"bitpos", FILTER_GROUP_BITMAP},
    {"blmove", FILTER_GROUP_LIST},
    {"blmpop", FILTER_GROUP_LIST},
    {"blpop", FILTER_GROUP_LIST},
    {"brpop", FILTER_GROUP_LIST},
    {"brpoplpush", FILTER_GROUP_LIST},
    {"bzmpop", FILTER_GROUP_SORTED_SET},
    {"bzpopmax", FILTER_GROUP_SORTED_SET},
    {"bzpopmin", FILTER_GROUP_SORTED_SET},
    {"client", FILTER_GROUP_CONNECTION},
    {"cluster", FILTER_GROUP_CLUSTER},
    {"command", FILTER_GROUP_SERVER},
    {"config", FILTER_GROUP_SERVER},
    {"copy", FILTER_GROUP_GENERIC},
    {"dbsize", FILTER_GROUP_SERVER},
    {"debug", FILTER_GROUP_SERVER},
    {"decr", FILTER_GROUP_STRING},
    {"decrby", FILTER_GROUP_STRING},
    {"del", FILTER_GROUP_GENERIC},
    {"discard", FILTER_GROUP_TRANSACTIONS},
    {"dump", FILTER_GROUP_GENERIC},
    {"echo", FILTER_GROUP_CONNECTION},
    {"eval", FILTER_GROUP_SCRIPTING},
    {"eval_ro", FILTER_GROUP_SCRIPTING},
    {"evalsha", FILTER_GROUP_SCRIPTING},
    {"evalsha_ro", FILTER_GROUP_SCRIPTING},
    {"exec", FILTER_GROUP_TRANSACTIONS},
    {"exists", FILTER_GROUP_GENERIC},
    {"expire", FILTER_GROUP_GENERIC},
    {"expireat", FILTER_GROUP_GENERIC},
    {"expiretime", FILTER_GROUP_GENERIC},
    {"failover", FILTER_GROUP_SERVER},
    {"fcall", FILTER_GROUP_SCRIPTING},
    {"fcall_ro", FILTER_GROUP_SCRIPTING},
    {"flushall", FILTER_GROUP_SERVER},
    {"flushdb", FILTER_GROUP_SERVER},
    {"function", FILTER_GROUP_SCRIPTING},
    {"geoadd", FILTER_GROUP_GEO},
    {"geodist", FILTER_GROUP_GEO},
    {"geohash", FILTER_GROUP_GEO},
    {"geopos", FILTER_GROUP_GEO},
    {"georadius", FILTER_GROUP_GEO},
    {"georadius_ro", FILTER_GROUP_GEO},
    {"georadiusbymember", FILTER_GROUP_GEO},
    {"georadiusbymember_ro", FILTER_GROUP_GEO},
    {"geosearch", FILTER_GROUP_GEO},
    {"geosearchstore", FILTER_GROUP_GEO},
    {"get", FILTER_GROUP_STRING},
    {"getbit", FILTER_GROUP_BITMAP},
    {"getdel", FILTER_GROUP_STRING},
    {"getex", FILTER_GROUP_STRING},
    {"getrange", FILTER_GROUP_STRING},
    {"getset", FILTER_GROUP_STRING},
    {"hdel", FILTER_GROUP_HASH},
    {"hello", FILTER_GROUP_CONNECTION},
    {"hexists", FILTER_GROUP_HASH},
    {"hexpire", FILTER_GROUP_HASH},
    {"hexpireat", FILTER_GROUP_HASH},
    {"hexpiretime", FILTER_GROUP_HASH},
    {"hget", FILTER_GROUP_HASH},
    {"hgetall", FILTER_GROUP_HASH},
    {"hgetdel", FILTER_GROUP_HASH},
    {"hgetex", FILTER_GROUP_HASH},
    {"hincrby", FILTER_GROUP_HASH},
    {"hincrbyfloat", FILTER_GROUP_HASH},
    {"hkeys", FILTER_GROUP_HASH},
    {"hlen", FILTER_GROUP_HASH},
    {"hmget", FILTER_GROUP_HASH},
    {"hmset", FILTER_GROUP_HASH},
    {"hpersist", FILTER_GROUP_HASH},
    {"hpexpire", FILTER_GROUP_HASH},
    {"hpexpireat", FILTER_GROUP_HASH},
    {"hpexpiretime", FILTER_GROUP_HASH},
    {"hpttl", FILTER_GROUP_HASH},
    {"hrandfield", FILTER_GROUP_HASH},
    {"hscan", FILTER_GROUP_HASH},
    {"hset", FILTER_GROUP_HASH},
    {"hsetex", FILTER_GROUP_HASH},
    {"hsetnx", FILTER_GROUP_HASH},
    {"hstrlen", FILTER_GROUP_HASH},
    {"httl", FILTER_GROUP_HASH},
    {"hvals", FILTER_GROUP_HASH},
    {"incr", FILTER_GROUP_STRING},
    {"incrby", FILTER_GROUP_STRING},
    {"incrbyfloat", FILTER_GROUP_STRING},
    {"info", FILTER_GROUP_SERVER},
    {"keys", FILTER_GROUP_GENERIC},
    {"lastsave", FILTER_GROUP_SERVER},
    {"latency", FILTER_GROUP_SERVER},
    {"lcs", FILTER_GROUP_STRING},
    {"lindex", FILTER_GROUP_LIST},
    {"linsert", FILTER_GROUP_LIST},
    {"llen", FILTER_GROUP_LIST},
    {"lmove", FILTER_GROUP_LIST},
    {"lmpop", FILTER_GROUP_LIST},
    {"lolwut", FILTER_GROUP_SERVER},
    {"lpop", FILTER_GROUP_LIST},
    {"lpos", FILTER_GROUP_LIST},
    {"lpush", FILTER_GROUP_LIST},
    {"lpushx", FILTER_GROUP_LIST},
    {"lrange", FILTER_GROUP_LIST},
    {"lrem", FILTER_GROUP_LIST},
    {"lset", FILTER_GROUP_LIST},
    {"ltrim", FILTER_GROUP_LIST},
    {"memory", FILTER_GROUP_SERVER},
    {"mget", FILTER_GROUP_STRING},
    {"migrate", FILTER_GROUP_GENERIC},
    {"module", FILTER_GROUP_SERVER},
    {"monitor", FILTER_GROUP_SERVER},
    {"move", FILTER_GROUP_GENERIC},
    {"mset", FILTER_GROUP_STRING},
    {"msetnx", FILTER_GROUP_STRING},
    {"multi", FILTER_GROUP_TRANSACTIONS},
    {"object", FILTER_GROUP_GENERIC},
    {"persist", FILTER_GROUP_GENERIC},
    {"pexpire", FILTER_GROUP_GENERIC},
    {"pexpireat", FILTER_GROUP_GENERIC},
    {"pexpiretime", FILTER_GROUP_GENERIC},
    {"pfadd", FILTER_GROUP_HYPERLOGLOG},
    {"pfcount", FILTER_GROUP_HYPERLOGLOG},
    {"pfdebug", FILTER_GROUP_HYPERLOGLOG},
    {"pfmerge", FILTER_GROUP_HYPERLOGLOG},
    {"pfselftest", FILTER_GROUP_HYPERLOGLOG},
    {"ping", FILTER_GROUP_CONNECTION},
    {"psetex", FILTER_GROUP_STRING},
    {"psubscribe", FILTER_GROUP_PUBSUB},
    {"psync", FILTER_GROUP_SERVER},
    {"pttl", FILTER_GROUP_GENERIC},
    {"publish", FILTER_GROUP_PUBSUB},
    {"pubsub", FILTER_GROUP_PUBSUB},
    {"punsubscribe", FILTER_GROUP_PUBSUB},
    {"quit", FILTER_GROUP_CONNECTION},
    {"randomkey", FILTER_GROUP_GENERIC},
    {"readonly", FILTER_GROUP_CLUSTER},
    {"readwrite", FILTER_GROUP_CLUSTER},
    {"rename", FILTER_GROUP_GENERIC},
    {"renamenx", FILTER_GROUP_GENERIC},
    {"replconf", FILTER_GROUP_SERVER},
    {"replicaof", FILTER_GROUP_SERVER},
    {"reset", FILTER_GROUP_CONNECTION},
    {"restore", FILTER_GROUP_GENERIC},
    {"restore-asking", FILTER_GROUP_SERVER},
    {"role", FILTER_GROUP_SERVER},
    {"rpop", FILTER_GROUP_LIST},
    {"rpoplpush", FILTER_GROUP_LIST},
    {"rpush", FILTER_GROUP_LIST},
    {"rpushx", FILTER_GROUP_LIST},
    {"sadd", FILTER_GROUP_SET},
    {"save", FILTER_GROUP_SERVER},
    {"scan", FILTER_GROUP_GENERIC},
    {"scard", FILTER_GROUP_SET},
    {"script", FILTER_GROUP_SCRIPTING},
    {"sdiff", FILTER_GROUP_SET},
    {"sdiffstore", FILTER_GROUP_SET},
    {"select", FILTER_GROUP_CONNECTION},
    {"sentinel", FILTER_GROUP_SENTINEL},
    {"set", FILTER_GROUP_STRING},
    {"setbit", FILTER_GROUP_BITMAP},
    {"setex", FILTER_GROUP_STRING},
    {"setnx", FILTER_GROUP_STRING},
    {"setrange", FILTER_GROUP_STRING},
    {"shutdown", FILTER_GROUP_SERVER},
    {"sinter", FILTER_GROUP_SET},
    {"sintercard", FILTER_GROUP_SET},
    {"sinterstore", FILTER_GROUP_SET},
    {"sismember", FILTER_GROUP_SET},
    {"slaveof", FILTER_GROUP_SERVER},
    {"slowlog", FILTER_GROUP_SERVER},
    {"smembers", FILTER_GROUP_SET},
    {"smismember", FILTER_GROUP_SET},
    {"smove", FILTER_GROUP_SET},
    {"sort", FILTER_GROUP_GENERIC},
    {"sort_ro", FILTER_GROUP_GENERIC},
    {"spop", FILTER_GROUP_SET},
    {"spublish", FILTER_GROUP_PUBSUB},
    {"srandmember", FILTER_GROUP_SET},
    {"srem", FILTER_GROUP_SET},
    {"sscan", FILTER_GROUP_SET},
    {"ssubscribe", FILTER_GROUP_PUBSUB},
    {"strlen", FILTER_GROUP_STRING},
    {"subscribe", FILTER_GROUP_PUBSUB},
    {"substr", FILTER_GROUP_STRING},
    {"sunion", FILTER_GROUP_SET},
    {"sunionstore", FILTER_GROUP_SET},
    {"sunsubscribe", FILTER_GROUP_PUBSUB},
    {"swapdb", FILTER_GROUP_SERVER},
    {"sync", FILTER_GROUP_SERVER},
    {"time", FILTER_GROUP_SERVER},
    {"touch", FILTER_GROUP_GENERIC},
    {"ttl", FILTER_GROUP_GENERIC},
    {"type", FILTER_GROUP_GENERIC},
    {"unlink", FILTER_GROUP_GENERIC},
    {"unsubscribe", FILTER_GROUP_PUBSUB},
    {"unwatch", FILTER_GROUP_TRANSACTIONS},
    {"wait", FILTER_GROUP_GENERIC},
    {"waitaof", FILTER_GROUP_GENERIC},
    {"watch", FILTER_GROUP_TRANSACTIONS},
    {"xack", FILTER_GROUP_STREAM},
    {"xackdel", FILTER_GROUP_STREAM},
    {"xadd", FILTER_GROUP_STREAM},
    {"xautoclaim", FILTER_GROUP_STREAM},
    {"xclaim", FILTER_GROUP_STREAM},
    {"xdel", FILTER_GROUP_STREAM},
    {"xdelex", FILTER_GROUP_STREAM},
    {"xgroup", FILTER_GROUP_STREAM},
    {"xinfo", FILTER_GROUP_STREAM},
    {"xlen", FILTER_GROUP_STREAM},
    {"xpending", FILTER_GROUP_STREAM},
    {"xrange", FILTER_GROUP_STREAM},
    {"xread", FILTER_GROUP_STREAM},
    {"xreadgroup", FILTER_GROUP_STREAM},
    {"xrevrange", FILTER_GROUP_STREAM},
    {"xsetid", FILTER_GROUP_STREAM},
    {"xtrim", FILTER_GROUP_STREAM},
    {"zadd", FILTER_GROUP_SORTED_SET},
    {"zcard", FILTER_GROUP_SORTED_SET},
    {"zcount", FILTER_GROUP_SORTED_SET},
    {"zdiff", FILTER_GROUP_SORTED_SET},
    {"zdiffstore", FILTER_GROUP_SORTED_SET},
    {"zincrby", FILTER_GROUP_SORTED_SET},
    {"zinter", FILTER_GROUP_SORTED_SET},
    {"zintercard", FILTER_GROUP_SORTED_SET},
    {"zinterstore", FILTER_GROUP_SORTED_SET},
    {"zlexcount", FILTER_GROUP_SORTED_SET},
    {"zmpop", FILTER_GROUP_SORTED_SET},
    {"zmscore", FILTER_GROUP_SORTED_SET},
    {"zpopmax", FILTER_GROUP_SORTED_SET},
    {"zpopmin", FILTER_GROUP_SORTED_SET},
    {"zrandmember", FILTER_GROUP_SORTED_SET},
    {"zrange", FILTER_GROUP_SORTED_SET},
    {"zrangebylex", FILTER_GROUP_SORTED_SET},
    {"zrangebyscore", FILTER_GROUP_SORTED_SET},
    {"zrangestore", FILTER_GROUP_SORTED_SET},
    {"zrank", FILTER_GROUP_SORTED_SET},
    {"zrem", FILTER_GROUP_SORTED_SET},
    {"zremrangebylex", FILTER_GROUP_SORTED_SET},
    {"zremrangebyrank", FILTER_GROUP_SORTED_SET},
    {"zremrangebyscore", FILTER_GROUP_SORTED_SET},
    {"zrevrange", FILTER_GROUP_SORTED_SET},
    {"zrevrangebylex", FILTER_GROUP_SORTED_SET},
    {"zrevrangebyscore", FILTER_GROUP_SORTED_SET},
    {"zrevrank", FILTER_GROUP_SORTED_SET},
    {"zscan", FILTER_GROUP_SORTED_SET},
    {"zscore", FILTER_GROUP_SORTED_SET},
    {"zunion", FILTER_GROUP_SORTED_SET},
    {"zunionstore", FILTER_GROUP_SORTED_SET},
};

#define GROUP_ROW_COUNT (sizeof(group_rows) / sizeof(group_rows[0]))

int filter_group_from_name(const char *name) {
    for (int i = 0; i < FILTER_GROUP_COUNT; i++) {
        if (strcasecmp(group_names[i], name) == 0) return i;
    }
    return -1;
}

const char *filter_group_name(enum filter_group group) {
    if ((int)group < 0 || group >= FILTER_GROUP_COUNT) return "unknown";
    return group_names[group];
}

/* Compare a table name with an argv word, the word folded to lower case. */
static int group_name_compare(const char *row, const char *name, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char a = (unsigned char)row[i];
        unsigned char b = (unsigned char)name[i];
        if (b >= 'A' && b <= 'Z') b = (unsigned char)(b - 'A' + 'a');
        if (a == '\0') return -1; /* the row is a prefix of the name */
        if (a != b) return a < b ? -1 : 1;
    }
    return row[len] == '\0' ? 0 : 1;
}

enum filter_group filter_group_of_command(const char *name, size_t len) {
    size_t lo = 0, hi = GROUP_ROW_COUNT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = group_name_compare(group_rows[mid].name, name, len);
        if (cmp == 0) return group_rows[mid].group;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return FILTER_GROUP_MODULE;
}

int filter_group_value_type(enum filter_group group) {
    switch (group) {
    case FILTER_GROUP_STRING:
    case FILTER_GROUP_BITMAP:
    case FILTER_GROUP_HYPERLOGLOG: return SHAKE_TYPE_STRING;
    case FILTER_GROUP_LIST: return SHAKE_TYPE_LIST;
    case FILTER_GROUP_SET: return SHAKE_TYPE_SET;
    case FILTER_GROUP_SORTED_SET:
    case FILTER_GROUP_GEO: return SHAKE_TYPE_ZSET;
    case FILTER_GROUP_HASH: return SHAKE_TYPE_HASH;
    case FILTER_GROUP_STREAM: return SHAKE_TYPE_STREAM;
    case FILTER_GROUP_MODULE: return SHAKE_TYPE_MODULE;
    default: return -1;
    }
}

/* For the unit test: the table is in strictly increasing order. */
int filter_groups_table_sorted(void) {
    for (size_t i = 1; i < GROUP_ROW_COUNT; i++) {
        if (strcmp(group_rows[i - 1].name, group_rows[i].name) >= 0) return 0;
    }
    return 1;
}
