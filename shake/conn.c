/* conn.c -- one non-blocking TCP connection to a Redis node (see conn.h).
 *
 * Owns: the socket and its libev watchers, the connect timeout, the output
 * buffer, the input reader, and with TLS the SSL object (handshake, records). Must
 * not interpret replies, retry anything or print: the owner decides and reports.
 * All socket I/O is in conn_io_read / conn_io_write; the TLS context (trust,
 * names) comes built from shake/tls.c.
 */
#include "shake/conn.h"

#include <errno.h>
#include <ev.h>
#include <hiredis.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "shake/reply_spare.h"
#include "shake/tls.h"

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
    ev_prepare flush_prepare; /* output queued: write it before the loop sleeps */
    ev_timer connect_timer;

    /* Output: bytes [out_start, out_end) of out_buf are still to be written. */
    char *out_buf;
    size_t out_start, out_end, out_cap;

    char *read_buf; /* CONN_READ_CHUNK bytes, reused for every read */
    redisReader *reader;
    int reuse_replies;          /* conn_reuse_replies was called */
    struct reply_spare replies; /* the reader's reply objects, with reuse_replies */
    int reading; /* the owner wants input (see conn_set_reading) */
    /* The socket refused a write (EAGAIN): conn_send stops writing eagerly until
     * the write watcher says it is writable again, instead of trying (and
     * failing) once per command. */
    int out_blocked;

    /* TLS (tls != NULL): the side's context (not owned) and this link's SSL
     * object (owned, from the TCP connect to conn_close). */
    const struct tls_context *tls;
    SSL *ssl;
    int tls_handshaking;  /* TCP is up, SSL_connect has not finished */
    int read_wants_write; /* SSL_read must wait for the socket to be writable */
    int write_wants_read; /* SSL_write must wait for the socket to be readable */
    /* A fatal TLS condition met after some bytes were returned, reported by the
     * next conn_io_read: 0 none, 1 end of stream, -1 error (io_error says why). */
    int io_sticky;
    char io_error[256]; /* why the last conn_io_* failed with EPROTO */
};

static void conn_on_io(struct ev_loop *loop, ev_io *watcher, int revents);
static void conn_on_prepare(struct ev_loop *loop, ev_prepare *watcher, int revents);
static int conn_flush(struct conn *conn);
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
    ev_prepare_init(&conn->flush_prepare, conn_on_prepare);
    conn->flush_prepare.data = conn;
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

void conn_set_tls(struct conn *conn, const struct tls_context *tls) {
    conn->tls = tls;
}

void conn_close(struct conn *conn) {
    if (conn->ssl != NULL) {
        /* A best-effort close_notify when the session was up; never waits. */
        if (!conn->tls_handshaking && conn->io_sticky == 0) SSL_shutdown(conn->ssl);
        SSL_free(conn->ssl);
        ERR_clear_error();
        conn->ssl = NULL;
    }
    conn->tls_handshaking = conn->read_wants_write = conn->write_wants_read = 0;
    conn->io_sticky = 0;
    conn->io_error[0] = '\0';
    conn->out_blocked = 0;
    ev_prepare_stop(conn->loop, &conn->flush_prepare);
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
    if (on) {
        ev_io_start(conn->loop, &conn->read_watcher);
        /* Bytes OpenSSL already decrypted make the socket no more readable. */
        if (conn->ssl != NULL && SSL_pending(conn->ssl) > 0)
            ev_feed_event(conn->loop, &conn->read_watcher, EV_READ);
    } else if (!conn->write_wants_read) {
        ev_io_stop(conn->loop, &conn->read_watcher);
    }
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

/* The reason for an SSL_* failure, with the certificate check's verdict first:
 * "certificate verify failed: unable to get local issuer certificate". */
static void conn_tls_describe(struct conn *conn, int ssl_error, char *out, size_t len) {
    long verify = SSL_get_verify_result(conn->ssl);
    char reason[256];
    if (ssl_error == SSL_ERROR_SSL && verify != X509_V_OK) {
        snprintf(out, len, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
        ERR_clear_error();
    } else if (ssl_error == SSL_ERROR_SSL) {
        snprintf(out, len, "%s", tls_last_error("protocol error", reason, sizeof(reason)));
    } else if (ssl_error == SSL_ERROR_SYSCALL && errno != 0) {
        snprintf(out, len, "%s", strerror(errno));
    } else if (conn->tls_handshaking) {
        snprintf(out, len, "connection closed by server during the handshake");
    } else {
        snprintf(out, len, "connection closed by server");
    }
}

/* Map a failed SSL_read/SSL_write to the plain-socket contract: -1 with errno
 * EAGAIN (retry on the right socket event), 0 at the end of the stream, or -1 with
 * EPROTO and the reason in io_error. The end and errors are sticky (io_sticky):
 * OpenSSL must not be used again after a fatal error, not even for SSL_shutdown. */
static ssize_t conn_tls_failure(struct conn *conn, int rc, int writing) {
    int ssl_error = SSL_get_error(conn->ssl, rc);
    switch (ssl_error) {
    case SSL_ERROR_WANT_READ:
        if (writing) {
            /* Renegotiation or a post-handshake message: the write resumes when
             * the socket is readable, not writable. */
            conn->write_wants_read = 1;
            ev_io_stop(conn->loop, &conn->write_watcher);
            ev_io_start(conn->loop, &conn->read_watcher);
        }
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        if (!writing) {
            conn->read_wants_write = 1;
            ev_io_stop(conn->loop, &conn->read_watcher);
            ev_io_start(conn->loop, &conn->write_watcher);
        }
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN: conn->io_sticky = 1; return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (errno == 0) { /* EOF without close_notify */
            conn->io_sticky = 1;
            return 0;
        }
        snprintf(conn->io_error, sizeof(conn->io_error), "%s", strerror(errno));
        conn->io_sticky = -1;
        errno = EPROTO;
        return -1;
    default:
        snprintf(conn->io_error, sizeof(conn->io_error), "TLS: ");
        conn_tls_describe(conn, ssl_error, conn->io_error + 5, sizeof(conn->io_error) - 5);
        conn->io_sticky = -1;
        errno = EPROTO;
        return -1;
    }
}

/* Read up to cap bytes: >0 bytes, 0 at EOF, -1 with errno (EAGAIN when nothing
 * is there). With TLS, records are decrypted until cap is full or the socket is
 * drained, so that one call still means one big read. */
static ssize_t conn_io_read(struct conn *conn, char *buf, size_t cap) {
    if (conn->ssl == NULL) return recv(conn->fd, buf, cap, 0);
    if (conn->io_sticky != 0) {
        errno = EPROTO;
        return conn->io_sticky > 0 ? 0 : -1;
    }
    size_t total = 0;
    while (total < cap) {
        size_t want = cap - total > INT_MAX ? INT_MAX : cap - total;
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(conn->ssl, buf + total, (int)want);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        ssize_t rc = conn_tls_failure(conn, n, 0);
        if (total == 0) return rc;
        break; /* deliver these bytes; a sticky end or error comes next call */
    }
    return (ssize_t)total;
}

/* Write up to len bytes: bytes written, or -1 with errno. A TLS write that must be
 * retried is retried with the same bytes at the head of the output (its length
 * can only have grown), as OpenSSL requires. */
static ssize_t conn_io_write(struct conn *conn, const char *buf, size_t len) {
    if (conn->ssl == NULL) return send(conn->fd, buf, len, MSG_NOSIGNAL);
    if (conn->io_sticky != 0) {
        if (conn->io_error[0] == '\0')
            snprintf(conn->io_error, sizeof(conn->io_error), "connection closed by server");
        errno = EPROTO;
        return -1;
    }
    if (conn->write_wants_read) {
        errno = EAGAIN;
        return -1;
    }
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(conn->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0) return n;
    ssize_t rc = conn_tls_failure(conn, n, 1);
    if (rc == 0) {
        snprintf(conn->io_error, sizeof(conn->io_error), "connection closed by server");
        errno = EPROTO;
    }
    return -1;
}

/* The reason for the last failed conn_io_* call. */
static const char *conn_io_strerror(struct conn *conn, int error) {
    if (error == EPROTO && conn->io_error[0] != '\0') return conn->io_error;
    return strerror(error);
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
    if (conn->reuse_replies) reply_spare_install(&conn->replies, conn->reader);
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
    if (conn->out_end - conn->out_start >= CONN_EAGER_WRITE && !conn->out_blocked) {
        /* Keep the server busy while the owner builds more: write now. Errors are
         * left to the write watcher, which reports them from the loop. */
        while (conn->out_start < conn->out_end) {
            ssize_t n = conn_io_write(conn, conn->out_buf + conn->out_start,
                                      conn->out_end - conn->out_start);
            if (n <= 0) {
                conn->out_blocked = 1;
                break;
            }
            conn->out_start += (size_t)n;
        }
        if (conn->out_start == conn->out_end) conn->out_start = conn->out_end = 0;
    }
    /* The rest is written once the loop has nothing else to do (one send for
     * everything queued meanwhile), or by the write watcher once the socket has
     * room again. */
    if (conn->out_end > conn->out_start && !conn->write_wants_read &&
        !ev_is_active(&conn->write_watcher)) {
        /* TLS keeps the watcher: a record written before the loop reads could
         * turn a server's alert (the reason) into a reset (no reason). */
        if (conn->out_blocked || conn->ssl != NULL)
            ev_io_start(conn->loop, &conn->write_watcher);
        else
            ev_prepare_start(conn->loop, &conn->flush_prepare);
    }
    return 0;
}

/* Before the loop waits: write the output queued during this iteration at once,
 * with no round through the write watcher (which would cost epoll changes and a
 * wake-up per batch); only what the socket refuses waits for it to be writable. */
static void conn_on_prepare(struct ev_loop *loop, ev_prepare *watcher, int revents) {
    (void)revents;
    struct conn *conn = watcher->data;
    ev_prepare_stop(loop, watcher);
    if (conn->state != CONN_CONNECTED || conn->write_wants_read ||
        ev_is_active(&conn->write_watcher) || conn->out_end == conn->out_start)
        return;
    if (conn_flush(conn) < 0) return; /* conn_fail reported it; conn may be gone */
    if (conn->out_end > conn->out_start && !conn->write_wants_read)
        ev_io_start(conn->loop, &conn->write_watcher);
}

/* TCP (and TLS) are up: start reading, write what the owner queued, tell it. */
static void conn_established(struct conn *conn) {
    ev_timer_stop(conn->loop, &conn->connect_timer);
    conn->state = CONN_CONNECTED;
    conn->reading = 1;
    ev_io_start(conn->loop, &conn->read_watcher);
    if (conn->out_end == conn->out_start)
        ev_io_stop(conn->loop, &conn->write_watcher);
    else
        ev_io_start(conn->loop, &conn->write_watcher);
    conn->callbacks.connected(conn->callbacks.ctx, conn);
}

/* One step of SSL_connect, resumed on whichever socket event OpenSSL waits for;
 * the connect timer still bounds the whole handshake. */
static void conn_tls_handshake(struct conn *conn) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_connect(conn->ssl);
    if (rc == 1) {
        conn->tls_handshaking = 0;
        conn_established(conn);
        return;
    }
    int ssl_error = SSL_get_error(conn->ssl, rc);
    if (ssl_error == SSL_ERROR_WANT_READ) {
        ev_io_stop(conn->loop, &conn->write_watcher);
        ev_io_start(conn->loop, &conn->read_watcher);
        return;
    }
    if (ssl_error == SSL_ERROR_WANT_WRITE) {
        ev_io_stop(conn->loop, &conn->read_watcher);
        ev_io_start(conn->loop, &conn->write_watcher);
        return;
    }
    char reason[256];
    conn_tls_describe(conn, ssl_error, reason, sizeof(reason));
    conn_fail(conn, "TLS", reason);
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
    if (conn->tls == NULL) {
        conn_established(conn);
        return;
    }
    char err[256];
    conn->ssl = tls_session_new(conn->tls, conn->fd, conn->host, err, sizeof(err));
    if (conn->ssl == NULL) {
        conn_fail(conn, "TLS", err);
        return;
    }
    conn->tls_handshaking = 1;
    conn_tls_handshake(conn);
}

/* Write as much output as the socket takes. Returns 0, or -1 after conn_fail. */
static int conn_flush(struct conn *conn) {
    conn->out_blocked = 0;
    while (conn->out_start < conn->out_end) {
        ssize_t n =
            conn_io_write(conn, conn->out_buf + conn->out_start, conn->out_end - conn->out_start);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn->out_blocked = 1;
                return 0;
            }
            conn_fail(conn, "write", conn_io_strerror(conn, errno));
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
            conn_fail(conn, "read", conn_io_strerror(conn, errno));
        return;
    }
    /* Bytes OpenSSL holds decrypted will not make the socket readable again:
     * come back for them (or for the end met after them) on this loop iteration. */
    if (conn->ssl != NULL && conn->reading && !conn->read_wants_write &&
        (SSL_pending(conn->ssl) > 0 || conn->io_sticky != 0))
        ev_feed_event(conn->loop, &conn->read_watcher, EV_READ);
    if (fed > 0) conn->callbacks.readable(conn->callbacks.ctx, conn);
}

static void conn_on_io(struct ev_loop *loop, ev_io *watcher, int revents) {
    (void)loop;
    (void)revents;
    struct conn *conn = watcher->data;
    if (conn->state == CONN_CONNECTING) {
        if (conn->tls_handshaking)
            conn_tls_handshake(conn);
        else
            conn_finish_connect(conn);
        return;
    }
    if (watcher == &conn->write_watcher) {
        if (conn->read_wants_write) {
            conn->read_wants_write = 0;
            if (conn->reading) ev_io_start(conn->loop, &conn->read_watcher);
            if (conn->out_end == conn->out_start) ev_io_stop(conn->loop, &conn->write_watcher);
            conn_fill(conn);
            return;
        }
        conn_flush(conn);
        return;
    }
    if (conn->write_wants_read) {
        conn->write_wants_read = 0;
        if (!conn->reading) ev_io_stop(conn->loop, &conn->read_watcher);
        if (conn->out_end > conn->out_start) ev_io_start(conn->loop, &conn->write_watcher);
        if (conn_flush(conn) < 0 || !conn->reading || conn->state != CONN_CONNECTED) return;
    }
    if (!conn->reading) return;
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

void conn_reuse_replies(struct conn *conn) {
    conn->reuse_replies = 1;
}

void conn_free_reply(struct conn *conn, void *reply) {
    reply_spare_release(&conn->replies, reply);
}
