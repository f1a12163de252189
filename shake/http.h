/* http.h -- a tiny HTTP/1.1 server on the caller's libev loop, for the status
 * endpoint.
 *
 * One request per connection: accept, read the request head (bounded by
 * HTTP_REQUEST_MAX bytes), ask the handler for the reply, write it, close. Sockets
 * are non-blocking, there are no threads, and a client that is too slow, sends too
 * much or opens too many connections is cut off: nothing a client does can stall
 * the job that shares the loop. Only GET and HEAD are served.
 *
 * Knows nothing of what it serves: the handler fills the reply.
 */
#ifndef SHAKE_HTTP_H
#define SHAKE_HTTP_H

#include <stddef.h>

#include "shake/json.h"

#define HTTP_REQUEST_MAX 8192 /* request line and headers */
#define HTTP_CLIENTS_MAX 64   /* connections served at once; more are closed */
#define HTTP_TIMEOUT 5.0      /* seconds a connection may live */

struct ev_loop;
struct http_server;

/* What the handler answers. `body` starts empty and is owned by the server. */
struct http_reply {
    int code;                 /* 200, 404, ... */
    const char *content_type; /* a static string */
    struct text_buf body;
};

/* `path` is the request target without its query string. */
typedef void (*http_handler)(void *ctx, const char *path, struct http_reply *reply);

/* Listen on host:port (a numeric address or a name; port 0: any free port).
 * Returns NULL with a message in `err` when the address cannot be bound. */
struct http_server *http_server_new(struct ev_loop *loop, const char *host, int port,
                                    http_handler handler, void *ctx, char *err, size_t errlen);
/* Closes the listening socket and every open connection. NULL is fine. */
void http_server_free(struct http_server *server);
/* The port actually bound. */
int http_server_port(const struct http_server *server);
/* 1 when the bound address is a loopback one (127.0.0.0/8, ::1). */
int http_server_is_loopback(const struct http_server *server);

#endif
