/* tls.h -- TLS client contexts for one side (source or target), through OpenSSL.
 *
 * A tls_context is built once per side from the [source] / [target] tls_* keys: the
 * CA to trust, the client certificate for mutual TLS, the name to verify. Every
 * connection of that side then gets its own SSL object from tls_session_new(); the
 * handshake and the record I/O are conn.c's business.
 *
 * Verification of the server's certificate chain and of its host name (or IP
 * address) is on unless `insecure` is set. This module never logs: the caller warns
 * about insecure mode.
 *
 * Ownership: the context owns its SSL_CTX, its BIO method and its strings; the
 * caller owns the context and frees it after every conn using it.
 */
#ifndef SHAKE_TLS_H
#define SHAKE_TLS_H

#include <stddef.h>

struct tls_context;
struct ssl_st;

struct tls_options {
    const char *ca_file;     /* PEM bundle of trusted CAs; NULL with ca_dir NULL: system CAs */
    const char *ca_dir;      /* directory of hashed CA certificates (c_rehash) */
    const char *cert_file;   /* client certificate chain (PEM) for mutual TLS; NULL: none */
    const char *key_file;    /* its private key; NULL: taken from cert_file */
    const char *server_name; /* SNI and the name verified; NULL: each node's own host */
    int insecure;            /* no verification of the chain or the name at all */
};

/* Build a context. Returns NULL with a one-line reason in err naming the file at
 * fault ("tls_ca_file /x: No such file or directory"). */
struct tls_context *tls_context_new(const struct tls_options *options, char *err, size_t errlen);
void tls_context_free(struct tls_context *context);
int tls_context_insecure(const struct tls_context *context);

/* A new client SSL object over the non-blocking socket fd, for a node reached as
 * `host`: SNI (for names, not addresses) and the expected name or IP set from the
 * context's server_name or else `host`. Writes never raise SIGPIPE. Returns NULL
 * with a reason in err. The caller SSL_free()s it; the fd stays the caller's. */
struct ssl_st *tls_session_new(const struct tls_context *context, int fd, const char *host,
                               char *err, size_t errlen);

/* The reason of the last OpenSSL error on this thread's queue, or `fallback`. */
const char *tls_last_error(const char *fallback, char *buf, size_t len);

#endif
