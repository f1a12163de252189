/* server.h -- real redis-server processes for unit tests: a standalone server or a
 * 3-master cluster on free 127.0.0.1 ports, each in its own temp dir.
 *
 * Started by fork/exec, stopped by pid (SIGTERM, then SIGKILL after 10 s) and never
 * by name. A started server also dies with the test process (PR_SET_PDEATHSIG).
 * Loopback only. Functions return 0, or -1 after printing why on stderr: the tests
 * assert on the status.
 */
#ifndef SHAKE_TEST_SUPPORT_SERVER_H
#define SHAKE_TEST_SUPPORT_SERVER_H

#include <hiredis.h>
#include <sys/types.h>

#define TEST_CLUSTER_MAX_NODES 6

struct test_server {
    pid_t pid; /* 0: not running */
    int port;
    char dir[64]; /* temp dir: the server's cwd, log (redis.log), nodes.conf */
};

struct test_cluster {
    struct test_server nodes[TEST_CLUSTER_MAX_NODES];
    int count;
};

/* Start redis-server with `extra_args` (NULL-terminated, or NULL), e.g.
 * {"--requirepass", "secret", NULL}, and wait until it answers PING (a NOAUTH
 * error counts as an answer). Retries on another port when the one picked was
 * taken meanwhile. */
int test_server_start(struct test_server *server, const char *const *extra_args);
/* SIGTERM the server by pid, wait for it, remove its dir. Safe to call twice. */
void test_server_stop(struct test_server *server);
/* A synchronous hiredis connection to the server (caller redisFree()s), NULL on
 * failure. */
redisContext *test_server_connect(const struct test_server *server);
/* A port on 127.0.0.1 with nothing listening (for "connection refused" tests). */
int test_server_unused_port(void);

/* Start `masters` (1..TEST_CLUSTER_MAX_NODES) cluster-enabled servers, join them with
 * `redis-cli --cluster create --cluster-yes`, and wait until every node reports
 * cluster_state:ok with all 16384 slots and knows every other node. */
int test_cluster_start(struct test_cluster *cluster, int masters);
void test_cluster_stop(struct test_cluster *cluster);
/* Index of the node serving `slot` (asked from node 0's CLUSTER SLOTS), -1 on
 * error. */
int test_cluster_slot_owner(const struct test_cluster *cluster, unsigned slot);
/* Copy the node id of nodes[index] (CLUSTER MYID) into id (41 bytes). */
int test_cluster_node_id(const struct test_cluster *cluster, int index, char *id);
/* Move an empty slot from its owner to nodes[to] with the migration protocol
 * (SETSLOT IMPORTING / MIGRATING, then SETSLOT NODE on every node). */
int test_cluster_move_slot(struct test_cluster *cluster, unsigned slot, int to);

#endif
