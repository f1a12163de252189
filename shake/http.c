/* http.c -- see http.h.
 *
 * Each connection is a small state machine: READING the request head, then
 * WRITING the whole reply, then closed. Every connection has a deadline timer.
 */
#include "shake/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct http_client {
    struct http_server *server;
    struct http_client *next; /* in the server's list */
    int fd;
    ev_io io;
    ev_timer deadline;
    char request[HTTP_REQUEST_MAX + 1];
    size_t request_len;
    struct text_buf response; /* owned: head and body */
    size_t sent;
    int writing;
};

struct http_server {
    struct ev_loop *loop;
    int fd;
    ev_io accept_io;
    http_handler handler;
    void *ctx;
    struct http_client *clients; /* owned list */
    int client_count;
    int port;
    int loopback;
};

static void http_client_close(struct http_client *client) {
    struct http_server *server = client->server;
    for (struct http_client **link = &server->clients; *link != NULL; link = &(*link)->next) {
        if (*link == client) {
            *link = client->next;
            break;
        }
    }
    server->client_count--;
    ev_io_stop(server->loop, &client->io);
    ev_timer_stop(server->loop, &client->deadline);
    close(client->fd);
    text_buf_free(&client->response);
    free(client);
}

static const char *http_reason(int code) {
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    default: return "Error";
    }
}

/* Build the whole response: status line, headers, and the body unless HEAD. */
static void http_compose(struct http_client *client, struct http_reply *reply, int with_body) {
    if (reply->body.failed) {
        text_buf_free(&reply->body);
        reply->code = 500;
        reply->content_type = "text/plain; charset=utf-8";
        text_buf_puts(&reply->body, "out of memory\n");
    }
    struct text_buf *out = &client->response;
    text_buf_printf(out,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n",
                    reply->code, http_reason(reply->code), reply->content_type, reply->body.len);
    if (reply->code == 405) text_buf_puts(out, "Allow: GET, HEAD\r\n");
    text_buf_puts(out, "\r\n");
    if (with_body && reply->body.len > 0) text_buf_append(out, reply->body.data, reply->body.len);
}

static void http_error_reply(struct http_reply *reply, int code) {
    reply->code = code;
    reply->content_type = "text/plain; charset=utf-8";
    text_buf_printf(&reply->body, "%d %s\n", code, http_reason(code));
}

/* The request head is complete (or too long): decide the reply, start writing. */
static void http_answer(struct http_client *client, int too_long) {
    struct http_reply reply = {.code = 200, .content_type = "text/plain; charset=utf-8"};
    text_buf_init(&reply.body);
    char method[16] = "", target[HTTP_REQUEST_MAX + 1] = "", version[16] = "";
    int head = 0;
    if (too_long)
        http_error_reply(&reply, 431);
    else if (sscanf(client->request, "%15s %8192s %15s", method, target, version) != 3 ||
             strncmp(version, "HTTP/1.", 7) != 0 || target[0] != '/')
        http_error_reply(&reply, 400);
    else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        http_error_reply(&reply, 405);
    else {
        head = strcmp(method, "HEAD") == 0;
        target[strcspn(target, "?#")] = '\0';
        client->server->handler(client->server->ctx, target, &reply);
    }
    http_compose(client, &reply, !head);
    text_buf_free(&reply.body);
    if (client->response.failed) {
        http_client_close(client);
        return;
    }
    client->writing = 1;
    ev_io_stop(client->server->loop, &client->io);
    ev_io_set(&client->io, client->fd, EV_WRITE);
    ev_io_start(client->server->loop, &client->io);
}

/* The end of the request head: a blank line. */
static int http_head_complete(const struct http_client *client) {
    return strstr(client->request, "\r\n\r\n") != NULL || strstr(client->request, "\n\n") != NULL;
}

static void http_client_read(struct http_client *client) {
    size_t room = HTTP_REQUEST_MAX - client->request_len;
    ssize_t n = recv(client->fd, client->request + client->request_len, room, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
        http_client_close(client);
        return;
    }
    client->request_len += (size_t)n;
    client->request[client->request_len] = '\0';
    if (memchr(client->request, '\0', client->request_len) != NULL) {
        http_answer(client, 0); /* a NUL byte: sscanf sees a cut line and answers 400 */
        return;
    }
    if (http_head_complete(client))
        http_answer(client, 0);
    else if (client->request_len == HTTP_REQUEST_MAX)
        http_answer(client, 1);
}

static void http_client_write(struct http_client *client) {
    while (client->sent < client->response.len) {
        ssize_t n = send(client->fd, client->response.data + client->sent,
                         client->response.len - client->sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        client->sent += (size_t)n;
    }
    shutdown(client->fd, SHUT_WR);
    http_client_close(client);
}

static void http_on_client_io(struct ev_loop *loop, ev_io *watcher, int revents) {
    (void)loop, (void)revents;
    struct http_client *client = watcher->data;
    if (client->writing)
        http_client_write(client);
    else
        http_client_read(client);
}

static void http_on_deadline(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop, (void)revents;
    http_client_close(timer->data);
}

static void http_client_start(struct http_server *server, int fd) {
    struct http_client *client = calloc(1, sizeof(*client));
    if (client == NULL) {
        close(fd);
        return;
    }
    client->server = server;
    client->fd = fd;
    text_buf_init(&client->response);
    client->next = server->clients;
    server->clients = client;
    server->client_count++;
    ev_io_init(&client->io, http_on_client_io, fd, EV_READ);
    client->io.data = client;
    ev_io_start(server->loop, &client->io);
    ev_timer_init(&client->deadline, http_on_deadline, HTTP_TIMEOUT, 0.);
    client->deadline.data = client;
    ev_timer_start(server->loop, &client->deadline);
}

static void http_on_accept(struct ev_loop *loop, ev_io *watcher, int revents) {
    (void)loop, (void)revents;
    struct http_server *server = watcher->data;
    for (int i = 0; i < HTTP_CLIENTS_MAX; i++) {
        int fd = accept4(server->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or a transient error such as EMFILE */
        if (server->client_count >= HTTP_CLIENTS_MAX)
            close(fd);
        else
            http_client_start(server, fd);
    }
}

static int http_address_is_loopback(const struct sockaddr *addr) {
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return 1;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

/* Bind and listen on the first address `host` resolves to. Returns the socket or -1. */
static int http_listen(struct http_server *server, const char *host, int port, char *err,
                       size_t errlen) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *found = NULL;
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(host[0] ? host : NULL, service, &hints, &found);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(found);
        return -1;
    }
    struct sockaddr_storage bound = {0};
    socklen_t bound_len = sizeof(bound);
    server->port = port;
    if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) == 0)
        server->port =
            ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    server->loopback = http_address_is_loopback(found->ai_addr);
    freeaddrinfo(found);
    return fd;
}

struct http_server *http_server_new(struct ev_loop *loop, const char *host, int port,
                                    http_handler handler, void *ctx, char *err, size_t errlen) {
    struct http_server *server = calloc(1, sizeof(*server));
    if (server == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    server->loop = loop;
    server->handler = handler;
    server->ctx = ctx;
    server->fd = http_listen(server, host, port, err, errlen);
    if (server->fd < 0) {
        free(server);
        return NULL;
    }
    ev_io_init(&server->accept_io, http_on_accept, server->fd, EV_READ);
    server->accept_io.data = server;
    ev_io_start(loop, &server->accept_io);
    return server;
}

void http_server_free(struct http_server *server) {
    if (server == NULL) return;
    while (server->clients != NULL)
        http_client_close(server->clients);
    ev_io_stop(server->loop, &server->accept_io);
    close(server->fd);
    free(server);
}

int http_server_port(const struct http_server *server) {
    return server->port;
}

int http_server_is_loopback(const struct http_server *server) {
    return server->loopback;
}
