/* tls.c -- TLS client contexts and per-connection SSL objects (see tls.h).
 *
 * Owns: building an SSL_CTX from the tls_* options (trust, client certificate,
 * verification mode), a socket BIO that writes with MSG_NOSIGNAL, and the per-node
 * setup of SNI and the expected host name or IP. Must not do I/O on a connection,
 * log, or keep any state outside the context.
 */
#include "shake/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct tls_context {
    SSL_CTX *ssl_ctx;       /* owned */
    BIO_METHOD *bio_method; /* owned: the MSG_NOSIGNAL socket BIO */
    char *server_name;      /* owned; NULL: verify each node's host */
    int insecure;
};

const char *tls_last_error(const char *fallback, char *buf, size_t len) {
    unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    if (code == 0) return fallback;
    const char *reason = ERR_reason_error_string(code);
    if (reason != NULL)
        snprintf(buf, len, "%s", reason);
    else
        ERR_error_string_n(code, buf, len);
    return buf;
}

/* ---- the socket BIO ------------------------------------------------------------
 * OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE on a peer
 * that has gone away. Below main.c nothing may depend on how signals are set up,
 * so this BIO uses send(MSG_NOSIGNAL) like the plain path does. The fd lives in
 * the BIO's data pointer and is not owned. */

static int tls_bio_fd(BIO *bio) {
    return (int)(intptr_t)BIO_get_data(bio);
}

static int tls_bio_write(BIO *bio, const char *buf, int len) {
    BIO_clear_retry_flags(bio);
    ssize_t n = send(tls_bio_fd(bio), buf, (size_t)len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(bio);
    return (int)n;
}

static int tls_bio_read(BIO *bio, char *buf, int len) {
    BIO_clear_retry_flags(bio);
    ssize_t n = recv(tls_bio_fd(bio), buf, (size_t)len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(bio);
    return (int)n;
}

static long tls_bio_ctrl(BIO *bio, int cmd, long num, void *ptr) {
    (void)bio, (void)num, (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP: return 1;
    default: return 0;
    }
}

static BIO_METHOD *tls_bio_method_new(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shake socket");
    if (method == NULL) return NULL;
    if (!BIO_meth_set_write(method, tls_bio_write) || !BIO_meth_set_read(method, tls_bio_read) ||
        !BIO_meth_set_ctrl(method, tls_bio_ctrl)) {
        BIO_meth_free(method);
        return NULL;
    }
    return method;
}

/* ---- contexts -------------------------------------------------------------------- */

/* Name a file that cannot be read with the system's reason, before OpenSSL gives
 * its vaguer one. */
static int tls_check_readable(const char *key, const char *path, char *err, size_t errlen) {
    if (access(path, R_OK) == 0) return 0;
    snprintf(err, errlen, "%s %s: %s", key, path, strerror(errno));
    return -1;
}

/* Trust, client certificate and verification mode, from the options. */
static int tls_context_configure(struct tls_context *context, const struct tls_options *options,
                                 char *err, size_t errlen) {
    SSL_CTX *ctx = context->ssl_ctx;
    char reason[256];
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    long ssl_options = SSL_OP_NO_COMPRESSION;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A server that closes without close_notify reads as an ordinary EOF. */
    ssl_options |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
    SSL_CTX_set_options(ctx, ssl_options);
    /* conn.c's output buffer may move (realloc, compaction) between a write that
     * wanted to be retried and its retry; its length only grows. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_verify(ctx, options->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (options->ca_file != NULL || options->ca_dir != NULL) {
        if (options->ca_file != NULL &&
            tls_check_readable("tls_ca_file", options->ca_file, err, errlen) != 0)
            return -1;
        if (options->ca_dir != NULL &&
            tls_check_readable("tls_ca_dir", options->ca_dir, err, errlen) != 0)
            return -1;
        if (SSL_CTX_load_verify_locations(ctx, options->ca_file, options->ca_dir) != 1) {
            snprintf(err, errlen, "%s %s: %s", options->ca_file ? "tls_ca_file" : "tls_ca_dir",
                     options->ca_file ? options->ca_file : options->ca_dir,
                     tls_last_error("cannot load the CA certificates", reason, sizeof(reason)));
            return -1;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen, "the system's CA certificates: %s",
                 tls_last_error("cannot load", reason, sizeof(reason)));
        return -1;
    }
    if (options->cert_file != NULL) {
        const char *key_file = options->key_file ? options->key_file : options->cert_file;
        if (tls_check_readable("tls_cert_file", options->cert_file, err, errlen) != 0 ||
            tls_check_readable("tls_key_file", key_file, err, errlen) != 0)
            return -1;
        if (SSL_CTX_use_certificate_chain_file(ctx, options->cert_file) != 1) {
            snprintf(err, errlen, "tls_cert_file %s: %s", options->cert_file,
                     tls_last_error("cannot load the certificate", reason, sizeof(reason)));
            return -1;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
            snprintf(err, errlen, "tls_key_file %s: %s", key_file,
                     tls_last_error("cannot load the private key", reason, sizeof(reason)));
            return -1;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errlen, "tls_key_file %s does not match tls_cert_file %s", key_file,
                     options->cert_file);
            ERR_clear_error();
            return -1;
        }
    }
    return 0;
}

struct tls_context *tls_context_new(const struct tls_options *options, char *err, size_t errlen) {
    struct tls_context *context = calloc(1, sizeof(*context));
    if (context == NULL) goto oom;
    context->insecure = options->insecure;
    if (options->server_name != NULL &&
        (context->server_name = strdup(options->server_name)) == NULL)
        goto oom;
    context->ssl_ctx = SSL_CTX_new(TLS_client_method());
    context->bio_method = tls_bio_method_new();
    if (context->ssl_ctx == NULL || context->bio_method == NULL) goto oom;
    if (tls_context_configure(context, options, err, errlen) != 0) {
        tls_context_free(context);
        return NULL;
    }
    return context;
oom:
    snprintf(err, errlen, "cannot create a TLS context: out of memory");
    ERR_clear_error();
    tls_context_free(context);
    return NULL;
}

void tls_context_free(struct tls_context *context) {
    if (context == NULL) return;
    SSL_CTX_free(context->ssl_ctx);
    BIO_meth_free(context->bio_method);
    free(context->server_name);
    free(context);
}

int tls_context_insecure(const struct tls_context *context) {
    return context->insecure;
}

/* ---- sessions -------------------------------------------------------------------- */

static int tls_is_ip_address(const char *name) {
    unsigned char addr[16];
    return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

struct ssl_st *tls_session_new(const struct tls_context *context, int fd, const char *host,
                               char *err, size_t errlen) {
    char reason[256];
    SSL *ssl = SSL_new(context->ssl_ctx);
    BIO *bio = BIO_new(context->bio_method);
    if (ssl == NULL || bio == NULL) {
        snprintf(err, errlen, "cannot create a TLS session: %s",
                 tls_last_error("out of memory", reason, sizeof(reason)));
        BIO_free(bio);
        SSL_free(ssl);
        return NULL;
    }
    BIO_set_data(bio, (void *)(intptr_t)fd);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio); /* the SSL owns the BIO from here */
    const char *name = context->server_name ? context->server_name : host;
    int is_ip = tls_is_ip_address(name);
    int ok = 1;
    /* RFC 6066: SNI carries host names only, never literal addresses. */
    if (!is_ip) ok = SSL_set_tlsext_host_name(ssl, name) == 1;
    if (ok && !context->insecure) {
        if (is_ip)
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
        else
            ok = SSL_set1_host(ssl, name) == 1;
    }
    if (!ok) {
        snprintf(err, errlen, "cannot verify the server name '%s': %s", name,
                 tls_last_error("invalid name", reason, sizeof(reason)));
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}
