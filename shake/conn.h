/* conn.h -- one non-blocking TCP connection to a Redis node, on a libev loop.
 *
 * Owns the socket, the connect timeout, a contiguous output buffer and a hiredis
 * redisReader fed from big reads. It knows RESP framing only: what the commands
 * mean, and what to do with the replies, is the owner's business (the writer, the replica
 * reader, discovery).
 *
 * Every byte goes through conn_io_read / conn_io_write, which speak plain TCP or,
 * after conn_set_tls(), TLS through OpenSSL (the handshake runs on the loop between
 * the TCP connect and `connected`). hiredis' own connection API is not used.
 *
 * Callbacks are always the last thing a conn does in a libev callback, so the
 * owner may close or free the conn from inside one.
 *
 * Ownership: the conn owns its socket, buffers and reader; the owner owns the conn.
 */
#ifndef SHAKE_CONN_H
#define SHAKE_CONN_H

#include <stddef.h>

struct ev_loop;
struct conn;
struct tls_context;

enum conn_state {
    CONN_CLOSED,
    CONN_CONNECTING,
    CONN_CONNECTED,
};

struct conn_callbacks {
    void *ctx;
    /* The connection is up (TCP, and the TLS handshake when TLS is on); commands
     * may be sent. */
    void (*connected)(void *ctx, struct conn *conn);
    /* New bytes were fed to the reader: pull replies with conn_get_reply(). */
    void (*readable)(void *ctx, struct conn *conn);
    /* Raw mode, when set: bytes read are handed over as they are, and the RESP
     * reader is not used (a replica link carries an RDB payload and a command
     * stream, not replies). `readable` is then not called. The owner may close the
     * conn from `data`, but must not free it there. */
    void (*data)(void *ctx, struct conn *conn, const char *buf, size_t len);
    /* Connect failed, timed out, or the connection broke (EOF, reset, protocol
     * error). The conn is closed when this is called; message is e.g.
     * "connect: Connection refused", "connection closed by server", or for TLS
     * "TLS: certificate verify failed: unable to get local issuer certificate". */
    void (*error)(void *ctx, struct conn *conn, const char *message);
};

struct conn *conn_new(struct ev_loop *loop, const char *host, int port, int connect_timeout_ms,
                      const struct conn_callbacks *callbacks);
/* Close (if open) and release. */
void conn_free(struct conn *conn);
/* Speak TLS from the next conn_connect() on: `tls` (NULL: plain TCP again) is the
 * side's context, not owned, and must outlive the conn. The server name verified
 * is the context's server_name, or else the conn's host. */
void conn_set_tls(struct conn *conn, const struct tls_context *tls);

/* Start a non-blocking connect; `connected` or `error` follows. Returns 0, or -1
 * with a message in err ("connect: Connection refused") when it failed at once;
 * no callback is called then. */
int conn_connect(struct conn *conn, char *err, size_t errlen);
/* Drop the socket, unsent output and unparsed input; no callback. */
void conn_close(struct conn *conn);
enum conn_state conn_state(const struct conn *conn);

/* Append bytes to the output buffer; they are written when the socket is
 * writable, in big writes. Returns 0, or -1 when out of memory. */
int conn_send(struct conn *conn, const char *buf, size_t len);
/* Stop (0) or resume (1) reading the socket: back-pressure for an owner that
 * cannot take more input now. Reading is on after every connect. */
void conn_set_reading(struct conn *conn, int on);
/* Bytes appended but not yet written to the socket. */
size_t conn_pending_output(const struct conn *conn);

/* Pull one parsed reply: 1 with *reply set (a redisReply, see conn_reuse_replies
 * for how to free it), 0 when no whole reply is
 * buffered, -1 on a protocol error (the conn is then closed and `error` is NOT
 * called: the caller handles it). */
int conn_get_reply(struct conn *conn, void **reply, char *err, size_t errlen);
/* From the next connect on, top-level status and integer replies reuse one object
 * the conn keeps (see shake/reply_spare.h), for an owner that gives every reply
 * back with conn_free_reply and keeps none past that. Without it, replies are
 * plain hiredis objects the caller may keep and free with freeReplyObject. */
void conn_reuse_replies(struct conn *conn);
/* Give back a reply from conn_get_reply. */
void conn_free_reply(struct conn *conn, void *reply);

const char *conn_host(const struct conn *conn);
int conn_port(const struct conn *conn);

#endif
