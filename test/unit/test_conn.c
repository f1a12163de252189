/* test_conn.c -- conn's end of a connection, against a raw TCP peer on 127.0.0.1
 * made here (no Redis involved: what is tested is how the socket's end is told to
 * the owner). Replies that arrived before a clean close are handed over first,
 * then the close is named; a reset is named as a reset. (Linux drops unread bytes
 * when a reset arrives, so there are no replies to hand over before one.) */
#include <criterion/criterion.h>
#include <errno.h>
#include <ev.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shake/conn.h"

struct peer_test {
    struct ev_loop *loop;
    struct conn *conn;
    int replies;
    int replies_at_error; /* replies handed over before `error` came; -1: no error */
    char error[256];
    ev_timer deadline;
};

static void on_connected(void *ctx, struct conn *conn) {
    (void)ctx, (void)conn;
}

static void on_readable(void *ctx, struct conn *conn) {
    struct peer_test *t = ctx;
    void *reply;
    char err[256];
    while (conn_get_reply(conn, &reply, err, sizeof(err)) == 1) {
        t->replies++;
        conn_free_reply(conn, reply);
    }
}

static void on_error(void *ctx, struct conn *conn, const char *message) {
    (void)conn;
    struct peer_test *t = ctx;
    t->replies_at_error = t->replies;
    snprintf(t->error, sizeof(t->error), "%s", message);
    ev_break(t->loop, EVBREAK_ALL);
}

static void on_deadline(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)timer, (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* A listening socket on 127.0.0.1 and a free port. */
static int listen_loopback(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0, "%s", strerror(errno));
    cr_assert_eq(listen(fd, 1), 0);
    socklen_t len = sizeof(addr);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* Connects a conn to a raw peer, which sends `replies` and then closes: with a
 * reset (SO_LINGER 0) or cleanly. Both arrive before the conn reads anything.
 * Runs the loop until the conn reports its end. */
static void run_against_peer(struct peer_test *t, const char *replies, int reset) {
    memset(t, 0, sizeof(*t));
    t->replies_at_error = -1;
    t->loop = ev_loop_new(EVFLAG_AUTO);
    int port;
    int listener = listen_loopback(&port);
    struct conn_callbacks callbacks = {
        .ctx = t, .connected = on_connected, .readable = on_readable, .error = on_error};
    t->conn = conn_new(t->loop, "127.0.0.1", port, 3000, &callbacks);
    cr_assert_not_null(t->conn);
    conn_reuse_replies(t->conn);
    char err[256];
    cr_assert_eq(conn_connect(t->conn, err, sizeof(err)), 0, "%s", err);
    int peer = accept(listener, NULL, NULL);
    cr_assert_geq(peer, 0, "%s", strerror(errno));
    close(listener);
    size_t len = strlen(replies);
    cr_assert_eq(send(peer, replies, len, 0), (ssize_t)len);
    if (reset) {
        struct linger linger = {.l_onoff = 1, .l_linger = 0};
        cr_assert_eq(setsockopt(peer, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)), 0);
    }
    close(peer);
    usleep(100 * 1000); /* the bytes and the reset (or FIN) are in before the first read */
    ev_timer_init(&t->deadline, on_deadline, 5., 0.);
    ev_timer_start(t->loop, &t->deadline);
    ev_run(t->loop, 0);
    ev_timer_stop(t->loop, &t->deadline);
    conn_free(t->conn);
    ev_loop_destroy(t->loop);
}

Test(conn, replies_before_a_clean_close_are_handed_over_then_the_close_is_named) {
    struct peer_test t;
    run_against_peer(&t, "+OK\r\n:1\r\n", 0);
    cr_assert_eq(t.replies_at_error, 2);
    cr_assert(strstr(t.error, "connection closed by server") != NULL, "'%s'", t.error);
}

Test(conn, a_reset_with_nothing_before_it_is_named_at_once) {
    struct peer_test t;
    run_against_peer(&t, "", 1);
    cr_assert_eq(t.replies_at_error, 0);
    cr_assert(strstr(t.error, "reset") != NULL, "'%s'", t.error);
}
