/* server.c -- real redis-server processes for unit tests (see server.h).
 * Owns only what it starts: processes by pid, their temp dirs. Never kills by name. */
#include "test/unit/support/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_SERVER_MAX_ARGS 64

static void test_sleep_ms(int ms) {
    struct timespec pause = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* 1 when nothing listens on 127.0.0.1:port and we may bind it. */
static int test_port_bindable(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return ok;
}

/* A random port in 20000..29999 whose cluster bus port (+10000) is free too, so
 * that parallel test runs rarely collide. */
static int test_pick_port(void) {
    static unsigned seed;
    if (seed == 0) seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)clock();
    for (int attempt = 0; attempt < 1000; attempt++) {
        int port = 20000 + (int)(rand_r(&seed) % 10000);
        if (test_port_bindable(port) && test_port_bindable(port + 10000)) return port;
    }
    return -1;
}

int test_server_unused_port(void) {
    return test_pick_port();
}

/* Remove the files of a server dir (one level: redis writes no subdirs), then it. */
static void test_remove_dir(const char *path) {
    DIR *dir = opendir(path);
    if (dir == NULL) return;
    struct dirent *entry;
    char file[512];
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        snprintf(file, sizeof(file), "%s/%s", path, entry->d_name);
        unlink(file);
    }
    closedir(dir);
    rmdir(path);
}

/* fork/exec argv with stdout and stderr to log_path; the child dies with us. */
static pid_t test_spawn(const char *const *argv, const char *log_path) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
        dup2(log, 1);
        dup2(log, 2);
        close(log);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

redisContext *test_server_connect(const struct test_server *server) {
    struct timeval timeout = {5, 0};
    redisContext *redis = redisConnectWithTimeout("127.0.0.1", server->port, timeout);
    if (redis == NULL) return NULL;
    if (redis->err) {
        redisFree(redis);
        return NULL;
    }
    return redis;
}

/* Wait until the server answers PING; 0, or -1 when it exited or took > 10 s. */
static int test_server_wait_ready(struct test_server *server) {
    for (int attempt = 0; attempt < 1000; attempt++) {
        int status;
        if (waitpid(server->pid, &status, WNOHANG) == server->pid) {
            server->pid = 0;
            return -1;
        }
        redisContext *redis = test_server_connect(server);
        if (redis != NULL) {
            redisReply *reply = redisCommand(redis, "PING");
            int ok = reply != NULL &&
                     (reply->type == REDIS_REPLY_STATUS ||
                      (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOAUTH", 6) == 0));
            if (reply != NULL) freeReplyObject(reply);
            redisFree(redis);
            if (ok) return 0;
        }
        test_sleep_ms(10);
    }
    return -1;
}

int test_server_start(struct test_server *server, const char *const *extra_args) {
    memset(server, 0, sizeof(*server));
    snprintf(server->dir, sizeof(server->dir), "/tmp/shake-test-XXXXXX");
    if (mkdtemp(server->dir) == NULL) {
        fprintf(stderr, "test_server_start: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char log_path[128];
    snprintf(log_path, sizeof(log_path), "%s/redis.log", server->dir);
    for (int attempt = 0; attempt < 5; attempt++) {
        server->port = test_pick_port();
        if (server->port < 0) break;
        char port[16];
        snprintf(port, sizeof(port), "%d", server->port);
        const char *argv[TEST_SERVER_MAX_ARGS] = {
            "redis-server", "--port", port,           "--bind", "127.0.0.1",   "--dir", server->dir,
            "--save",       "",       "--appendonly", "no",     "--daemonize", "no"};
        int argc = 13;
        for (int i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
            if (argc + 1 >= TEST_SERVER_MAX_ARGS) break;
            argv[argc++] = extra_args[i];
        }
        argv[argc] = NULL;
        server->pid = test_spawn(argv, log_path);
        if (server->pid < 0) {
            server->pid = 0;
            break;
        }
        if (test_server_wait_ready(server) == 0) return 0;
        if (server->pid > 0) {
            kill(server->pid, SIGKILL);
            waitpid(server->pid, NULL, 0);
            server->pid = 0;
        }
    }
    fprintf(stderr, "test_server_start: redis-server did not come up (see %s)\n", log_path);
    test_remove_dir(server->dir);
    server->dir[0] = '\0';
    return -1;
}

void test_server_stop(struct test_server *server) {
    if (server->pid > 0) {
        kill(server->pid, SIGTERM);
        int exited = 0;
        for (int i = 0; i < 1000 && !exited; i++) {
            if (waitpid(server->pid, NULL, WNOHANG) == server->pid)
                exited = 1;
            else
                test_sleep_ms(10);
        }
        if (!exited) {
            kill(server->pid, SIGKILL);
            waitpid(server->pid, NULL, 0);
        }
        server->pid = 0;
    }
    if (server->dir[0] != '\0') test_remove_dir(server->dir);
    server->dir[0] = '\0';
}

/* Every node reports cluster_state:ok, all slots ok and knows all nodes. */
static int test_cluster_settled(const struct test_cluster *cluster) {
    for (int i = 0; i < cluster->count; i++) {
        redisContext *redis = test_server_connect(&cluster->nodes[i]);
        if (redis == NULL) return 0;
        redisReply *reply = redisCommand(redis, "CLUSTER INFO");
        char known[64];
        snprintf(known, sizeof(known), "cluster_known_nodes:%d\r", cluster->count);
        int ok = reply != NULL && reply->type == REDIS_REPLY_STRING &&
                 strstr(reply->str, "cluster_state:ok") != NULL &&
                 strstr(reply->str, "cluster_slots_ok:16384") != NULL &&
                 strstr(reply->str, known) != NULL;
        if (reply != NULL) freeReplyObject(reply);
        redisFree(redis);
        if (!ok) return 0;
    }
    return 1;
}

int test_cluster_start(struct test_cluster *cluster, int masters) {
    memset(cluster, 0, sizeof(*cluster));
    if (masters < 1 || masters > TEST_CLUSTER_MAX_NODES) return -1;
    const char *args[] = {"--cluster-enabled",
                          "yes",
                          "--cluster-config-file",
                          "nodes.conf",
                          "--cluster-node-timeout",
                          "5000",
                          NULL};
    for (int i = 0; i < masters; i++) {
        if (test_server_start(&cluster->nodes[i], args) < 0) {
            test_cluster_stop(cluster);
            return -1;
        }
        cluster->count++;
    }
    char addresses[TEST_CLUSTER_MAX_NODES][32];
    const char *argv[TEST_CLUSTER_MAX_NODES + 8];
    int argc = 0;
    argv[argc++] = "redis-cli";
    argv[argc++] = "--cluster";
    argv[argc++] = "create";
    for (int i = 0; i < masters; i++) {
        snprintf(addresses[i], sizeof(addresses[i]), "127.0.0.1:%d", cluster->nodes[i].port);
        argv[argc++] = addresses[i];
    }
    argv[argc++] = "--cluster-replicas";
    argv[argc++] = "0";
    argv[argc++] = "--cluster-yes";
    argv[argc] = NULL;
    char log_path[128];
    snprintf(log_path, sizeof(log_path), "%s/cluster-create.log", cluster->nodes[0].dir);
    pid_t pid = test_spawn(argv, log_path);
    int status = -1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "test_cluster_start: redis-cli --cluster create failed\n");
        test_cluster_stop(cluster);
        return -1;
    }
    for (int attempt = 0; attempt < 3000; attempt++) {
        if (test_cluster_settled(cluster)) return 0;
        test_sleep_ms(10);
    }
    fprintf(stderr, "test_cluster_start: cluster_state never became ok\n");
    test_cluster_stop(cluster);
    return -1;
}

void test_cluster_stop(struct test_cluster *cluster) {
    for (int i = 0; i < TEST_CLUSTER_MAX_NODES; i++) {
        if (cluster->nodes[i].pid > 0 || cluster->nodes[i].dir[0] != '\0') {
            test_server_stop(&cluster->nodes[i]);
        }
    }
    cluster->count = 0;
}

int test_cluster_node_id(const struct test_cluster *cluster, int index, char *id) {
    redisContext *redis = test_server_connect(&cluster->nodes[index]);
    if (redis == NULL) return -1;
    redisReply *reply = redisCommand(redis, "CLUSTER MYID");
    int ok = reply != NULL && reply->type == REDIS_REPLY_STRING && reply->len == 40;
    if (ok) memcpy(id, reply->str, 41);
    if (reply != NULL) freeReplyObject(reply);
    redisFree(redis);
    return ok ? 0 : -1;
}

int test_cluster_slot_owner(const struct test_cluster *cluster, unsigned slot) {
    redisContext *redis = test_server_connect(&cluster->nodes[0]);
    if (redis == NULL) return -1;
    redisReply *reply = redisCommand(redis, "CLUSTER SLOTS");
    int owner = -1;
    for (size_t i = 0; reply != NULL && reply->type == REDIS_REPLY_ARRAY && i < reply->elements;
         i++) {
        redisReply *range = reply->element[i];
        if ((long long)slot < range->element[0]->integer ||
            (long long)slot > range->element[1]->integer)
            continue;
        long long port = range->element[2]->element[1]->integer;
        for (int n = 0; n < cluster->count; n++) {
            if (cluster->nodes[n].port == port) owner = n;
        }
    }
    if (reply != NULL) freeReplyObject(reply);
    redisFree(redis);
    return owner;
}

/* Run one command on nodes[index]; 0 when the reply is not an error. */
static int test_cluster_command(const struct test_cluster *cluster, int index, const char *format,
                                ...) {
    redisContext *redis = test_server_connect(&cluster->nodes[index]);
    if (redis == NULL) return -1;
    va_list args;
    va_start(args, format);
    redisReply *reply = redisvCommand(redis, format, args);
    va_end(args);
    int ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    if (!ok) {
        fprintf(stderr, "test_cluster_command on %d: %s\n", cluster->nodes[index].port,
                reply != NULL ? reply->str : redis->errstr);
    }
    if (reply != NULL) freeReplyObject(reply);
    redisFree(redis);
    return ok ? 0 : -1;
}

int test_cluster_move_slot(struct test_cluster *cluster, unsigned slot, int to) {
    int from = test_cluster_slot_owner(cluster, slot);
    if (from < 0 || from == to) return -1;
    char from_id[41], to_id[41];
    if (test_cluster_node_id(cluster, from, from_id) < 0 ||
        test_cluster_node_id(cluster, to, to_id) < 0)
        return -1;
    if (test_cluster_command(cluster, to, "CLUSTER SETSLOT %u IMPORTING %s", slot, from_id) < 0 ||
        test_cluster_command(cluster, from, "CLUSTER SETSLOT %u MIGRATING %s", slot, to_id) < 0 ||
        test_cluster_command(cluster, to, "CLUSTER SETSLOT %u NODE %s", slot, to_id) < 0 ||
        test_cluster_command(cluster, from, "CLUSTER SETSLOT %u NODE %s", slot, to_id) < 0)
        return -1;
    for (int i = 0; i < cluster->count; i++) {
        if (i == from || i == to) continue;
        if (test_cluster_command(cluster, i, "CLUSTER SETSLOT %u NODE %s", slot, to_id) < 0)
            return -1;
    }
    return 0;
}
