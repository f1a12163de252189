/* test_slots.c -- CLUSTER SLOTS parsing (replies built by feeding RESP bytes to a
 * hiredis redisReader, as the writer gets them), slot lookups, MOVED/ASK parsing,
 * and the target probe's parsing (writer/probe.c). */
#include <criterion/criterion.h>
#include <hiredis.h>
#include <string.h>

#include "writer/probe.h"
#include "shake/slots.h"

/* Parse RESP text into one reply, as conn.c does. */
static redisReply *parse_resp(const char *resp) {
    redisReader *reader = redisReaderCreate();
    cr_assert(redisReaderFeed(reader, resp, strlen(resp)) == REDIS_OK);
    void *reply = NULL;
    cr_assert(redisReaderGetReply(reader, &reply) == REDIS_OK);
    cr_assert_not_null(reply, "incomplete RESP in the test");
    redisReaderFree(reader);
    return reply;
}

/* A 3-master reply as Redis 7 sends it (master, id, hostname map; one replica). */
static const char *three_masters =
    "*3\r\n"
    "*4\r\n:0\r\n:5460\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$40\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7003\r\n$40\r\ndddddddddddddddddddddddddddddddddddddddd\r\n*0\r\n"
    "*3\r\n:5461\r\n:10922\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7001\r\n$40\r\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n*0\r\n"
    "*3\r\n:10923\r\n:16383\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:7002\r\n$40\r\ncccccccccccccccccccccccccccccccccccccccc\r\n*0\r\n";

Test(slots, parses_three_masters_and_maps_every_slot) {
    redisReply *reply = parse_resp(three_masters);
    struct slots_map map;
    slots_map_init(&map);
    char err[256] = "";
    cr_assert_eq(slots_map_parse(&map, reply, "127.0.0.1", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(map.master_count, 3);
    cr_assert_str_eq(map.masters[0].host, "127.0.0.1");
    cr_assert_eq(map.masters[0].port, 7000);
    cr_assert_eq(map.masters[1].port, 7001);
    cr_assert_eq(map.masters[2].port, 7002);
    cr_assert_eq(slots_map_owner(&map, 0), 0);
    cr_assert_eq(slots_map_owner(&map, 5460), 0);
    cr_assert_eq(slots_map_owner(&map, 5461), 1);
    cr_assert_eq(slots_map_owner(&map, 10922), 1);
    cr_assert_eq(slots_map_owner(&map, 10923), 2);
    cr_assert_eq(slots_map_owner(&map, 16383), 2);
    cr_assert_eq(slots_map_owner(&map, 16384), -1);
    cr_assert_eq(slots_map_covered(&map), 16384u);
    cr_assert_eq(slots_map_find(&map, "127.0.0.1", 7001), 1);
    cr_assert_eq(slots_map_find(&map, "127.0.0.1", 7003), -1, "a replica is not a master");
    /* The slot of "foo" is 12182 (redis docs): served by the third master. */
    cr_assert_eq(slots_map_owner(&map, key_hash_slot("foo", 3)), 2);
    slots_map_free(&map);
    freeReplyObject(reply);
}

Test(slots, counts_the_replicas_listed_with_each_master) {
    redisReply *reply = parse_resp(three_masters);
    struct slots_map map;
    slots_map_init(&map);
    char err[256] = "";
    cr_assert_eq(slots_map_parse(&map, reply, "127.0.0.1", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(map.masters[0].replicas, 1, "7000 has the replica 7003");
    cr_assert_eq(map.masters[1].replicas, 0);
    cr_assert_eq(map.masters[2].replicas, 0);
    slots_map_free(&map);
    freeReplyObject(reply);
}

Test(slots, one_master_with_several_ranges_is_one_master) {
    redisReply *reply = parse_resp("*3\r\n"
                                   "*3\r\n:0\r\n:99\r\n*2\r\n$4\r\nhost\r\n:1\r\n"
                                   "*3\r\n:200\r\n:299\r\n*2\r\n$5\r\nother\r\n:2\r\n"
                                   "*3\r\n:100\r\n:100\r\n*2\r\n$4\r\nhost\r\n:1\r\n");
    struct slots_map map;
    slots_map_init(&map);
    char err[256] = "";
    cr_assert_eq(slots_map_parse(&map, reply, "x", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(map.master_count, 2);
    cr_assert_eq(slots_map_owner(&map, 100), 0);
    cr_assert_eq(slots_map_owner(&map, 101), -1, "a gap has no owner");
    cr_assert_eq(slots_map_owner(&map, 250), 1);
    cr_assert_eq(slots_map_covered(&map), 201u);
    slots_map_free(&map);
    freeReplyObject(reply);
}

Test(slots, empty_host_means_the_node_asked) {
    redisReply *reply = parse_resp("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$0\r\n\r\n:6379\r\n");
    struct slots_map map;
    slots_map_init(&map);
    char err[256] = "";
    cr_assert_eq(slots_map_parse(&map, reply, "10.1.2.3", err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(map.masters[0].host, "10.1.2.3");
    cr_assert_eq(map.masters[0].port, 6379);
    slots_map_free(&map);
    freeReplyObject(reply);
}

Test(slots, an_error_reply_is_reported_with_its_text) {
    redisReply *reply = parse_resp("-ERR This instance has cluster support disabled\r\n");
    struct slots_map map;
    slots_map_init(&map);
    char err[256] = "";
    cr_assert_eq(slots_map_parse(&map, reply, "x", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "CLUSTER SLOTS: ERR This instance has cluster support disabled");
    cr_assert_eq(map.master_count, 0);
    freeReplyObject(reply);
}

Test(slots, malformed_replies_are_refused_and_leave_the_map_empty) {
    const char *bad[] = {
        ":1\r\n",
        "*1\r\n*2\r\n:0\r\n:1\r\n",
        "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n:1\r\n:1\r\n",
        "*1\r\n*3\r\n:0\r\n:1\r\n$1\r\nh\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReply *reply = parse_resp(bad[i]);
        struct slots_map map;
        slots_map_init(&map);
        char err[256] = "";
        cr_assert_eq(slots_map_parse(&map, reply, "x", err, sizeof(err)), -1, "case %zu", i);
        cr_assert_eq(strncmp(err, "CLUSTER SLOTS: ", 15), 0, "case %zu: %s", i, err);
        cr_assert_eq(map.master_count, 0);
        cr_assert_eq(slots_map_owner(&map, 0), -1);
        freeReplyObject(reply);
    }
}

Test(slots, parses_moved_and_ask) {
    enum slots_redirect_kind kind;
    unsigned slot = 0;
    char host[64];
    int port = 0;
    const char *moved = "MOVED 3999 127.0.0.1:6381";
    cr_assert_eq(
        slots_parse_redirect(moved, strlen(moved), &kind, &slot, host, sizeof(host), &port), 0);
    cr_assert_eq(kind, SLOTS_REDIRECT_MOVED);
    cr_assert_eq(slot, 3999u);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_eq(port, 6381);
    const char *ask = "ASK 16383 ::1:7002";
    cr_assert_eq(slots_parse_redirect(ask, strlen(ask), &kind, &slot, host, sizeof(host), &port),
                 0);
    cr_assert_eq(kind, SLOTS_REDIRECT_ASK);
    cr_assert_eq(slot, 16383u);
    cr_assert_str_eq(host, "::1");
    cr_assert_eq(port, 7002);
    const char *empty_host = "MOVED 0 :7000";
    cr_assert_eq(slots_parse_redirect(empty_host, strlen(empty_host), &kind, &slot, host,
                                      sizeof(host), &port),
                 0);
    cr_assert_str_eq(host, "");
    cr_assert_eq(port, 7000);
}

Test(slots, refuses_what_is_not_a_redirection) {
    const char *bad[] = {"MOVED",     "MOVED 16384 h:1", "MOVED x h:1",
                         "MOVED 1 h", "MOVED 1 h:",      "MOVED 1 h:70000",
                         "ASK 1h:1",  "ERR wrong",       "MOVEDX 1 h:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enum slots_redirect_kind kind;
        unsigned slot;
        char host[64];
        int port;
        cr_assert_eq(
            slots_parse_redirect(bad[i], strlen(bad[i]), &kind, &slot, host, sizeof(host), &port),
            -1, "%s", bad[i]);
    }
}

Test(probe, reads_info_fields_versions_and_keyspace) {
    const char *info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n";
    char value[32];
    cr_assert_eq(probe_info_field(info, strlen(info), "redis_version", value, sizeof(value)), 0);
    cr_assert_str_eq(value, "7.0.15");
    cr_assert_eq(probe_info_field(info, strlen(info), "redis", value, sizeof(value)), -1);
    int major, minor, patch;
    cr_assert_eq(probe_parse_version("7.0.15", &major, &minor, &patch), 0);
    cr_assert(major == 7 && minor == 0 && patch == 15);
    cr_assert_eq(probe_parse_version("6.2", &major, &minor, &patch), 0);
    cr_assert(major == 6 && minor == 2 && patch == 0);
    cr_assert_eq(probe_parse_version("unknown", &major, &minor, &patch), -1);
    const char *keyspace = "# Keyspace\r\ndb0:keys=12,expires=1,avg_ttl=0\r\n"
                           "db2:keys=30,expires=0,avg_ttl=0\r\n";
    cr_assert_eq(probe_keyspace_keys(keyspace, strlen(keyspace)), 42u);
    cr_assert_eq(probe_keyspace_keys("# Keyspace\r\n", 12), 0u);
}

Test(probe, maps_releases_to_rdb_versions_and_types) {
    cr_assert_eq(probe_rdb_version(8, 0), 12);
    cr_assert_eq(probe_rdb_version(7, 4), 12);
    cr_assert_eq(probe_rdb_version(7, 2), 11);
    cr_assert_eq(probe_rdb_version(7, 0), 10);
    cr_assert_eq(probe_rdb_version(6, 2), 9);
    cr_assert_eq(probe_rdb_version(5, 0), 9);
    cr_assert_eq(probe_rdb_version(4, 0), 8);
    cr_assert_eq(probe_rdb_version(3, 2), 7);
    cr_assert_eq(probe_rdb_version(3, 0), 6);
    cr_assert_eq(probe_rdb_version(2, 8), 6);
    uint64_t v10 = probe_restorable_types(10);
    for (int t = 0; t <= 19; t++) {
        int expected = t != 6 && t != 8;
        cr_assert_eq((v10 >> t) & 1, (uint64_t)expected, "RDB 10, type %d", t);
    }
    for (int t = 20; t < 64; t++)
        cr_assert_eq((v10 >> t) & 1, 0u, "RDB 10, type %d", t);
    uint64_t v11 = probe_restorable_types(11);
    cr_assert(v11 & (1u << 20) && v11 & (1u << 21) && !(v11 & (1u << 22)));
    uint64_t v12 = probe_restorable_types(12);
    cr_assert(v12 & (1u << 25) && !(v12 & (1ull << 26)));
    uint64_t v6 = probe_restorable_types(6);
    cr_assert(v6 & (1u << 13) && !(v6 & (1u << 14)) && !(v6 & (1u << 5)));
    cr_assert(probe_restorable_types(7) & (1u << 14));
    cr_assert(probe_restorable_types(9) & (1u << 15));
    cr_assert(!(probe_restorable_types(9) & (1u << 16)));
}

Test(probe, proto_max_bulk_len_defaults_when_refused) {
    redisReply *ok = parse_resp("*2\r\n$18\r\nproto-max-bulk-len\r\n$7\r\n1048576\r\n");
    cr_assert_eq(probe_proto_max_bulk_len(ok), (size_t)1048576);
    freeReplyObject(ok);
    redisReply *refused = parse_resp("-NOPERM this user has no permissions\r\n");
    cr_assert_eq(probe_proto_max_bulk_len(refused), PROBE_DEFAULT_PROTO_MAX_BULK_LEN);
    freeReplyObject(refused);
    redisReply *empty = parse_resp("*0\r\n");
    cr_assert_eq(probe_proto_max_bulk_len(empty), (size_t)512 * 1024 * 1024);
    freeReplyObject(empty);
}
