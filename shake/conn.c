/* conn.c -- one non-blocking TCP connection to a Redis node (see conn.h).
 *
 * Owns: the socket and its libev watchers, the connect timeout, the output
 * buffer, the input reader. Must not interpret replies or retry anything: the
 * owner decides. All socket I/O is in conn_io_read / conn_io_write (TLS later).
 */
#include "shake/conn.h"

#include <errno.h>
#include <ev.h>
#include <hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define CONN_READ_CHUNK (256 * 1024)
/* Reads per readable event before yielding to the loop, so that one busy node
 * cannot starve the others. */
#define CONN_READS_PER_EVENT 8
#define CONN_READER_MAX_IDLE_BUF (1024 * 1024)
/* Output beyond this is written at once instead of at the next loop iteration. */
#define CONN_EAGER_WRITE (256 * 1024)

struct conn {
    struct ev_loop *loop;
    char *host;
    int port;
    int connect_timeout_ms;
    struct conn_callbacks callbacks;
    enum conn_state state;
    int fd;
    ev_io read_watcher;
    ev_io write_watcher;
    ev_timer connect_timer;

    /* Output: bytes [out_start, out_end) of out_buf are still to be written. */
    char *out_buf;
    size_t out_start, out_end, out_cap;

    char *read_buf; /* CONN_READ_CHUNK bytes, reused for every read */
    redisReader *reader;
    int reading;    /* the owner wants input (see conn_set_reading) */
};

static void conn_on_io(struct ev_loop *loop, ev_io *watcher, int revents);
static void conn_on_connect_timeout(struct ev_loop *loop, ev_timer *timer, int revents);

struct conn *conn_new(struct ev_loop *loop, const char *host, int port, int connect_timeout_ms,
                      const struct conn_callbacks *callbacks) {
    struct conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) return NULL;
    conn->host = strdup(host);
    conn->read_buf = malloc(CONN_READ_CHUNK);
    if (conn->host == NULL || conn->read_buf == NULL) {
        free(conn->host);
        free(conn->read_buf);
        free(conn);
        return NULL;
    }
    conn->loop = loop;
    conn->port = port;
    conn->connect_timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms : 5000;
    conn->callbacks = *callbacks;
    conn->state = CONN_CLOSED;
    conn->fd = -1;
    ev_init(&conn->read_watcher, conn_on_io);
    conn->read_watcher.data = conn;
    ev_init(&conn->write_watcher, conn_on_io);
    conn->write_watcher.data = conn;
    ev_init(&conn->connect_timer, conn_on_connect_timeout);
    conn->connect_timer.data = conn;
    return conn;
}

void conn_free(struct conn *conn) {
    if (conn == NULL) return;
    conn_close(conn);
    free(conn->out_buf);
    free(conn->read_buf);
    free(conn->host);
    free(conn);
}

void conn_close(struct conn *conn) {
    ev_io_stop(conn->loop, &conn->read_watcher);
    ev_io_stop(conn->loop, &conn->write_watcher);
    ev_timer_stop(conn->loop, &conn->connect_timer);
    if (conn->fd >= 0) close(conn->fd);
    conn->fd = -1;
    conn->state = CONN_CLOSED;
    conn->out_start = conn->out_end = 0;
    if (conn->reader != NULL) redisReaderFree(conn->reader);
    conn->reader = NULL;
}

enum conn_state conn_state(const struct conn *conn) {
    return conn->state;
}

void conn_set_reading(struct conn *conn, int on) {
    conn->reading = on;
    if (conn->state != CONN_CONNECTED) return;
    if (on) ev_io_start(conn->loop, &conn->read_watcher);
    else ev_io_stop(conn->loop, &conn->read_watcher);
}
const char *conn_host(const struct conn *conn) {
    return conn->host;
}
int conn_port(const struct conn *conn) {
    return conn->port;
}
size_t conn_pending_output(const struct conn *conn) {
    return conn->out_end - conn->out_start;
}

/* Close and tell the owner why; always the last statement of a libev callback. */
static void conn_fail(struct conn *conn, const char *what, const char *reason) {
    char message[256];
    snprintf(message, sizeof(message), "%s%s%s", what, *what ? ": " : "", reason);
    conn_close(conn);
    conn->callbacks.error(conn->callbacks.ctx, conn, message);
}

/* Read up to cap bytes from the socket: >0 bytes, 0 at EOF, -1 with errno
 * (EAGAIN when nothing is there). The one place TLS will hook reads. */
static ssize_t conn_io_read(struct conn *conn, char *buf, size_t cap) {
    return recv(conn->fd, buf, cap, 0);
}

/* Write up to len bytes to the socket: bytes written, or -1 with errno. The one
 * place TLS will hook writes. */
static ssize_t conn_io_write(struct conn *conn, const char *buf, size_t len) {
    return send(conn->fd, buf, len, MSG_NOSIGNAL);
}

int conn_connect(struct conn *conn, char *err, size_t errlen) {
    conn_close(conn);
    struct addrinfo hints, *result = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof(port), "%d", conn->port);
    /* getaddrinfo blocks for names that need DNS; addresses are immediate. */
    int rc = getaddrinfo(conn->host, port, &hints, &result);
    if (rc != 0) {
        snprintf(err, errlen, "resolve: %s", gai_strerror(rc));
        return -1;
    }
    int fd = socket(result->ai_family, result->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    result->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(result);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = connect(fd, result->ai_addr, result->ai_addrlen);
    int saved = errno;
    freeaddrinfo(result);
    if (rc < 0 && saved != EINPROGRESS) {
        close(fd);
        snprintf(err, errlen, "connect: %s", strerror(saved));
        return -1;
    }
    conn->reader = redisReaderCreate();
    if (conn->reader == NULL) {
        close(fd);
        snprintf(err, errlen, "connect: out of memory");
        return -1;
    }
    conn->reader->maxbuf = CONN_READER_MAX_IDLE_BUF;
    conn->fd = fd;
    conn->state = CONN_CONNECTING;
    ev_io_set(&conn->read_watcher, fd, EV_READ);
    ev_io_set(&conn->write_watcher, fd, EV_WRITE);
    ev_io_start(conn->loop, &conn->write_watcher);
    ev_timer_set(&conn->connect_timer, conn->connect_timeout_ms / 1000.0, 0.);
    ev_timer_start(conn->loop, &conn->connect_timer);
    return 0;
}

static void conn_on_connect_timeout(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop;
    (void)revents;
    struct conn *conn = timer->data;
    char reason[64];
    snprintf(reason, sizeof(reason), "timed out after %d ms", conn->connect_timeout_ms);
    conn_fail(conn, "connect", reason);
}

int conn_send(struct conn *conn, const char *buf, size_t len) {
    if (conn->out_end + len > conn->out_cap) {
        size_t pending = conn->out_end - conn->out_start;
        if (conn->out_start > 0) {
            memmove(conn->out_buf, conn->out_buf + conn->out_start, pending);
            conn->out_start = 0;
            conn->out_end = pending;
        }
        if (pending + len > conn->out_cap) {
            size_t cap = conn->out_cap ? conn->out_cap : 64 * 1024;
            while (cap < pending + len)
                cap *= 2;
            char *grown = realloc(conn->out_buf, cap);
            if (grown == NULL) return -1;
            conn->out_buf = grown;
            conn->out_cap = cap;
        }
    }
    memcpy(conn->out_buf + conn->out_end, buf, len);
    conn->out_end += len;
    if (conn->state != CONN_CONNECTED) return 0;
    if (conn->out_end - conn->out_start >= CONN_EAGER_WRITE) {
        /* Keep the server busy while the owner builds more: write now. Errors are
         * left to the write watcher, which reports them from the loop. */
        while (conn->out_start < conn->out_end) {
            ssize_t n = conn_io_write(conn, conn->out_buf + conn->out_start,
                                      conn->out_end - conn->out_start);
            if (n <= 0) break;
            conn->out_start += (size_t)n;
        }
        if (conn->out_start == conn->out_end) conn->out_start = conn->out_end = 0;
    }
    if (conn->out_end > conn->out_start && !ev_is_active(&conn->write_watcher)) {
        ev_io_start(conn->loop, &conn->write_watcher);
    }
    return 0;
}

/* The socket became writable while connecting: learn how the connect ended. */
static void conn_finish_connect(struct conn *conn) {
    int error = 0;
    socklen_t len = sizeof(error);
    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0) error = errno;
    if (error != 0) {
        conn_fail(conn, "connect", strerror(error));
        return;
    }
    ev_timer_stop(conn->loop, &conn->connect_timer);
    conn->state = CONN_CONNECTED;
    conn->reading = 1;
    ev_io_start(conn->loop, &conn->read_watcher);
    if (conn->out_end == conn->out_start) ev_io_stop(conn->loop, &conn->write_watcher);
    conn->callbacks.connected(conn->callbacks.ctx, conn);
}

/* Write as much output as the socket takes. Returns 0, or -1 after conn_fail. */
static int conn_flush(struct conn *conn) {
    while (conn->out_start < conn->out_end) {
        ssize_t n =
            conn_io_write(conn, conn->out_buf + conn->out_start, conn->out_end - conn->out_start);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            conn_fail(conn, "write", strerror(errno));
            return -1;
        }
        conn->out_start += (size_t)n;
    }
    conn->out_start = conn->out_end = 0;
    ev_io_stop(conn->loop, &conn->write_watcher);
    return 0;
}

/* Read what the socket has (a few big reads), feed the reader, then hand over. */
static void conn_fill(struct conn *conn) {
    size_t fed = 0;
    for (int i = 0; i < CONN_READS_PER_EVENT; i++) {
        ssize_t n = conn_io_read(conn, conn->read_buf, CONN_READ_CHUNK);
        if (n > 0 && conn->callbacks.data != NULL) {
            conn->callbacks.data(conn->callbacks.ctx, conn, conn->read_buf, (size_t)n);
            /* The owner may have closed us, or paused reading. */
            if (conn->state != CONN_CONNECTED || !conn->reading) return;
            if ((size_t)n < CONN_READ_CHUNK) break;
            continue;
        }
        if (n > 0) {
            if (redisReaderFeed(conn->reader, conn->read_buf, (size_t)n) != REDIS_OK) {
                conn_fail(conn, "read", "out of memory");
                return;
            }
            fed += (size_t)n;
            if ((size_t)n < CONN_READ_CHUNK) break;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        /* EOF or an error: deliver what was read first; the next event sees it again. */
        if (fed > 0) break;
        if (n == 0)
            conn_fail(conn, "", "connection closed by server");
        else
            conn_fail(conn, "read", strerror(errno));
        return;
    }
    if (fed > 0) conn->callbacks.readable(conn->callbacks.ctx, conn);
}

static void conn_on_io(struct ev_loop *loop, ev_io *watcher, int revents) {
    (void)loop;
    (void)revents;
    struct conn *conn = watcher->data;
    if (conn->state == CONN_CONNECTING) {
        conn_finish_connect(conn);
        return;
    }
    if (watcher == &conn->write_watcher) {
        conn_flush(conn);
        return;
    }
    conn_fill(conn);
}

int conn_get_reply(struct conn *conn, void **reply, char *err, size_t errlen) {
    *reply = NULL;
    if (conn->reader == NULL) return 0;
    if (redisReaderGetReply(conn->reader, reply) != REDIS_OK) {
        snprintf(err, errlen, "protocol error: %s", conn->reader->errstr);
        conn_close(conn);
        return -1;
    }
    return *reply != NULL;
}
