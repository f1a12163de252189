/* builder_server.h -- what test_restore.c and test_rewrite.c share on top of
 * test/unit/support/server.h: one redis-server with a connection, and sending a
 * whole command_list over it. Header-only (static functions) so that it is not a
 * unit of its own. */
#ifndef SHAKE_TEST_BUILDER_SERVER_H
#define SHAKE_TEST_BUILDER_SERVER_H

#include <criterion/criterion.h>
#include <hiredis.h>
#include <stdlib.h>

#include "test/unit/support/server.h"
#include "writer/command.h"

struct builder_server {
    struct test_server server;
    redisContext *redis;
};

/* Starts a redis-server (support/server.h) and connects to it. */
static void builder_server_start(struct builder_server *server) {
    cr_assert_eq(test_server_start(&server->server, NULL), 0, "redis-server did not start");
    server->redis = test_server_connect(&server->server);
    cr_assert_not_null(server->redis);
}

/* Closes the connection and stops the server by pid. */
static void builder_server_stop(struct builder_server *server) {
    if (server->redis) redisFree(server->redis);
    server->redis = NULL;
    test_server_stop(&server->server);
}

/* Sends every command of the list and returns the replies (caller frees each). */
static redisReply **builder_server_send(struct builder_server *server,
                                        const struct command_list *list) {
    for (size_t i = 0; i < list->count; i++) {
        cr_assert(redisAppendFormattedCommand(server->redis, list->items[i].resp,
                                              list->items[i].len) == REDIS_OK);
    }
    redisReply **replies = calloc(list->count + 1, sizeof(*replies));
    for (size_t i = 0; i < list->count; i++) {
        void *reply = NULL;
        cr_assert(redisGetReply(server->redis, &reply) == REDIS_OK);
        replies[i] = reply;
    }
    return replies;
}

/* Sends the list and asserts that no reply is an error. */
static void builder_server_send_ok(struct builder_server *server, const struct command_list *list) {
    redisReply **replies = builder_server_send(server, list);
    for (size_t i = 0; i < list->count; i++) {
        cr_assert(replies[i]->type != REDIS_REPLY_ERROR, "command %zu: %s", i, replies[i]->str);
        freeReplyObject(replies[i]);
    }
    free(replies);
}

#endif
