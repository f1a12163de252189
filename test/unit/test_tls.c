/* test_tls.c -- conn over TLS against a real redis-server started with --tls-port,
 * with a CA and certificates made here by `openssl`: the handshake and a big value
 * both ways, raw mode with paused reading, certificate and host name verification
 * (exact messages), insecure mode, mutual TLS, and tls_context_new's errors; then
 * the tls_* config keys, and the warnings for tls_insecure and for a password in a
 * config file others can read. */
#include <criterion/criterion.h>
#include <ev.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "shake/conn.h"
#include "shake/tls.h"
#include "test/unit/support/server.h"

#define BIG_VALUE (3 * 1024 * 1024 + 17)

/* ---- certificates ------------------------------------------------------------------ */

struct pki {
    char dir[64];
    char ca[128], other_ca[128];
    char server_cert[128], server_key[128];
    char client_cert[128], client_key[128];
};

static int run(const char *command) {
    int rc = system(command);
    if (rc != 0) fprintf(stderr, "failed (%d): %s\n", rc, command);
    return rc;
}

/* A CA, a server certificate for 127.0.0.1 / localhost and a client certificate
 * signed by it, and an unrelated CA. EC keys: fast to make. */
static void pki_make(struct pki *pki) {
    snprintf(pki->dir, sizeof(pki->dir), "/tmp/shake-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(pki->dir));
    snprintf(pki->ca, sizeof(pki->ca), "%s/ca.crt", pki->dir);
    snprintf(pki->other_ca, sizeof(pki->other_ca), "%s/other-ca.crt", pki->dir);
    snprintf(pki->server_cert, sizeof(pki->server_cert), "%s/server.crt", pki->dir);
    snprintf(pki->server_key, sizeof(pki->server_key), "%s/server.key", pki->dir);
    snprintf(pki->client_cert, sizeof(pki->client_cert), "%s/client.crt", pki->dir);
    snprintf(pki->client_key, sizeof(pki->client_key), "%s/client.key", pki->dir);
    char command[2048];
    const char *key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    snprintf(command, sizeof(command),
             "(cd %s && "
             "openssl req -x509 -new %s -keyout ca.key -out ca.crt -days 2 -subj /CN=shake-ca "
             "&& openssl req -x509 -new %s -keyout other-ca.key -out other-ca.crt -days 2 "
             "-subj /CN=other-ca "
             "&& printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext "
             "&& openssl req -new %s -keyout server.key -out server.csr -subj /CN=shake-server "
             "&& openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-out server.crt -days 2 -extfile server.ext "
             "&& openssl req -new %s -keyout client.key -out client.csr -subj /CN=shake-client "
             "&& openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-out client.crt -days 2 "
             "&& chmod 644 *.key) >/dev/null 2>&1",
             pki->dir, key, key, key, key);
    /* The subshell keeps openssl's chatter quiet; the && chain fails as a whole. */
    cr_assert_eq(run(command), 0, "openssl could not make the test certificates");
}

static void pki_remove(struct pki *pki) {
    char command[128];
    snprintf(command, sizeof(command), "rm -rf %s", pki->dir);
    run(command);
}

/* ---- a TLS redis-server -------------------------------------------------------------- */

struct tls_server {
    struct test_server server; /* its plain port answers the harness */
    int tls_port;
};

/* `server_ca` is what the server trusts for client certificates; OpenSSL also
 * sends it as the chain when it issued the server's certificate. */
static void tls_server_start(struct tls_server *server, const struct pki *pki,
                             const char *server_ca, int auth_clients) {
    char port[16];
    server->tls_port = test_server_unused_port();
    cr_assert_gt(server->tls_port, 0);
    snprintf(port, sizeof(port), "%d", server->tls_port);
    const char *args[] = {"--tls-port",
                          port,
                          "--tls-cert-file",
                          pki->server_cert,
                          "--tls-key-file",
                          pki->server_key,
                          "--tls-ca-cert-file",
                          server_ca,
                          "--tls-auth-clients",
                          auth_clients ? "yes" : "no",
                          NULL};
    cr_assert_eq(test_server_start(&server->server, args), 0);
}

/* ---- one conn, driven to an outcome ------------------------------------------------ */

struct probe {
    struct ev_loop *loop;
    struct conn *conn;
    ev_timer deadline;
    ev_timer resume;
    int connected;
    int done;
    char error[512];
    /* RESP mode: the replies to the commands sent on connect. */
    int replies_wanted;
    int replies;
    char first_reply[64];
    size_t last_len;
    int last_matches;
    /* raw mode */
    size_t raw_bytes;
    size_t raw_expected;
    int pauses;
};

static char *big_value(void) {
    char *value = malloc(BIG_VALUE);
    cr_assert_not_null(value);
    for (size_t i = 0; i < BIG_VALUE; i++)
        value[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    return value;
}

static void probe_on_connected(void *ctx, struct conn *conn) {
    struct probe *probe = ctx;
    probe->connected = 1;
    if (probe->replies_wanted == 0) {
        probe->done = 1;
        ev_break(probe->loop, EVBREAK_ALL);
        return;
    }
    char *command = NULL;
    int len = redisFormatCommand(&command, "PING");
    conn_send(conn, command, (size_t)len);
    free(command);
    if (probe->replies_wanted > 1) {
        /* A value big enough to need many TLS records and partial writes. */
        char *value = big_value();
        len = redisFormatCommand(&command, "SET big %b", value, (size_t)BIG_VALUE);
        conn_send(conn, command, (size_t)len);
        free(command);
        len = redisFormatCommand(&command, "GET big");
        conn_send(conn, command, (size_t)len);
        free(command);
        free(value);
    }
}

static void probe_on_readable(void *ctx, struct conn *conn) {
    struct probe *probe = ctx;
    void *reply;
    char err[256];
    int rc;
    while ((rc = conn_get_reply(conn, &reply, err, sizeof(err))) == 1) {
        redisReply *r = reply;
        if (probe->replies == 0)
            snprintf(probe->first_reply, sizeof(probe->first_reply), "%s", r->str ? r->str : "");
        if (r->type == REDIS_REPLY_STRING) {
            probe->last_len = r->len;
            char *value = big_value();
            probe->last_matches = r->len == BIG_VALUE && memcmp(r->str, value, r->len) == 0;
            free(value);
        }
        probe->replies++;
        conn_free_reply(conn, reply);
    }
    if (rc < 0) snprintf(probe->error, sizeof(probe->error), "%s", err);
    if (rc < 0 || probe->replies >= probe->replies_wanted) {
        probe->done = 1;
        ev_break(probe->loop, EVBREAK_ALL);
    }
}

static void probe_on_resume(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)loop, (void)revents;
    struct probe *probe = timer->data;
    conn_set_reading(probe->conn, 1);
}

/* Raw mode: count bytes; pause after each delivery and resume a little later, so
 * that bytes left decrypted inside OpenSSL must be found without a socket event. */
static void probe_on_data(void *ctx, struct conn *conn, const char *buf, size_t len) {
    (void)buf;
    struct probe *probe = ctx;
    probe->raw_bytes += len;
    if (probe->raw_bytes >= probe->raw_expected) {
        probe->done = 1;
        ev_break(probe->loop, EVBREAK_ALL);
        return;
    }
    probe->pauses++;
    conn_set_reading(conn, 0);
    ev_timer_set(&probe->resume, 0.005, 0.);
    ev_timer_start(probe->loop, &probe->resume);
}

static void probe_on_error(void *ctx, struct conn *conn, const char *message) {
    (void)conn;
    struct probe *probe = ctx;
    snprintf(probe->error, sizeof(probe->error), "%s", message);
    probe->done = 1;
    ev_break(probe->loop, EVBREAK_ALL);
}

static void probe_on_deadline(struct ev_loop *loop, ev_timer *timer, int revents) {
    (void)revents, (void)timer;
    ev_break(loop, EVBREAK_ALL);
}

/* Connect to port with `tls` and run until the probe is done (bounded: 20 s). */
static void probe_run(struct probe *probe, int port, const struct tls_context *tls, int raw) {
    probe->loop = ev_loop_new(EVFLAG_AUTO);
    struct conn_callbacks callbacks = {
        .ctx = probe,
        .connected = probe_on_connected,
        .readable = probe_on_readable,
        .data = raw ? probe_on_data : NULL,
        .error = probe_on_error,
    };
    probe->conn = conn_new(probe->loop, "127.0.0.1", port, 3000, &callbacks);
    cr_assert_not_null(probe->conn);
    conn_reuse_replies(probe->conn); /* the writer's way: every reply given back */
    conn_set_tls(probe->conn, tls);
    ev_timer_init(&probe->deadline, probe_on_deadline, 20., 0.);
    ev_timer_start(probe->loop, &probe->deadline);
    ev_init(&probe->resume, probe_on_resume);
    probe->resume.data = probe;
    char err[256];
    cr_assert_eq(conn_connect(probe->conn, err, sizeof(err)), 0, "%s", err);
    ev_run(probe->loop, 0);
    ev_timer_stop(probe->loop, &probe->deadline);
    ev_timer_stop(probe->loop, &probe->resume);
    conn_free(probe->conn);
    ev_loop_destroy(probe->loop);
    cr_assert(probe->done, "no outcome within 20 s");
}

static struct tls_context *context_or_die(const struct tls_options *options) {
    char err[512];
    struct tls_context *context = tls_context_new(options, err, sizeof(err));
    cr_assert_not_null(context, "%s", err);
    return context;
}

/* ---- tests ----------------------------------------------------------------------------- */

static struct pki pki;
static struct tls_server server;

static void setup_plain_tls(void) {
    pki_make(&pki);
    tls_server_start(&server, &pki, pki.ca, 0);
}

/* The server trusts another CA: it sends its own certificate without the chain. */
static void setup_leaf_only(void) {
    pki_make(&pki);
    tls_server_start(&server, &pki, pki.other_ca, 0);
}

static void setup_mutual_tls(void) {
    pki_make(&pki);
    tls_server_start(&server, &pki, pki.ca, 1);
}

static void teardown(void) {
    test_server_stop(&server.server);
    pki_remove(&pki);
}

TestSuite(tls, .timeout = 60, .fini = teardown);

Test(tls, handshake_then_a_big_value_both_ways, .init = setup_plain_tls) {
    struct tls_options options = {.ca_file = pki.ca};
    struct tls_context *tls = context_or_die(&options);
    struct probe probe = {.replies_wanted = 3};
    probe_run(&probe, server.tls_port, tls, 0);
    cr_assert_str_empty(probe.error);
    cr_assert_eq(probe.replies, 3);
    cr_assert_str_eq(probe.first_reply, "PONG");
    cr_assert_eq(probe.last_len, BIG_VALUE);
    cr_assert(probe.last_matches, "the value came back different");
    tls_context_free(tls);
}

Test(tls, raw_mode_with_paused_reading_gets_every_byte, .init = setup_plain_tls) {
    /* Load the value through the plain port, then read it raw over TLS. */
    redisContext *admin = test_server_connect(&server.server);
    cr_assert_not_null(admin);
    char *value = big_value();
    freeReplyObject(redisCommand(admin, "SET big %b", value, (size_t)BIG_VALUE));
    free(value);
    redisFree(admin);
    struct tls_options options = {.ca_file = pki.ca};
    struct tls_context *tls = context_or_die(&options);
    char header[32];
    struct probe probe = {.raw_expected =
                              (size_t)snprintf(header, sizeof(header), "$%d\r\n", BIG_VALUE) +
                              BIG_VALUE + 2};
    /* connected sends nothing in raw mode: send GET ourselves once connected. */
    probe.replies_wanted = 0;
    probe.loop = NULL;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    probe.loop = loop;
    struct conn_callbacks callbacks = {
        .ctx = &probe,
        .connected = probe_on_connected,
        .data = probe_on_data,
        .error = probe_on_error,
    };
    probe.conn = conn_new(loop, "127.0.0.1", server.tls_port, 3000, &callbacks);
    conn_set_tls(probe.conn, tls);
    char err[256];
    cr_assert_eq(conn_connect(probe.conn, err, sizeof(err)), 0);
    ev_timer_init(&probe.deadline, probe_on_deadline, 20., 0.);
    ev_timer_start(loop, &probe.deadline);
    ev_init(&probe.resume, probe_on_resume);
    probe.resume.data = &probe;
    ev_run(loop, 0); /* until connected */
    cr_assert(probe.connected, "%s", probe.error);
    probe.done = 0;
    char *command = NULL;
    int len = redisFormatCommand(&command, "GET big");
    conn_send(probe.conn, command, (size_t)len);
    free(command);
    ev_run(loop, 0);
    cr_assert_str_empty(probe.error);
    cr_assert(probe.done, "only %zu of %zu bytes", probe.raw_bytes, probe.raw_expected);
    cr_assert_eq(probe.raw_bytes, probe.raw_expected);
    cr_assert_gt(probe.pauses, 2);
    ev_timer_stop(loop, &probe.deadline);
    ev_timer_stop(loop, &probe.resume);
    conn_free(probe.conn);
    ev_loop_destroy(loop);
    tls_context_free(tls);
}

Test(tls, a_wrong_ca_fails_verification_with_a_clear_message, .init = setup_leaf_only) {
    struct tls_options options = {.ca_file = pki.other_ca};
    struct tls_context *tls = context_or_die(&options);
    struct probe probe = {.replies_wanted = 1};
    probe_run(&probe, server.tls_port, tls, 0);
    cr_assert_not(probe.connected);
    cr_assert_str_eq(probe.error,
                     "TLS: certificate verify failed: unable to get local issuer certificate");
    tls_context_free(tls);
}

Test(tls, a_wrong_ca_against_a_server_sending_its_chain, .init = setup_plain_tls) {
    struct tls_options options = {.ca_file = pki.other_ca};
    struct tls_context *tls = context_or_die(&options);
    struct probe probe = {.replies_wanted = 1};
    probe_run(&probe, server.tls_port, tls, 0);
    cr_assert_not(probe.connected);
    cr_assert_str_eq(
        probe.error,
        "TLS: certificate verify failed: self-signed certificate in certificate chain");
    tls_context_free(tls);
}

Test(tls, a_server_name_the_certificate_lacks_is_a_mismatch, .init = setup_plain_tls) {
    struct tls_options options = {.ca_file = pki.ca, .server_name = "redis.example.com"};
    struct tls_context *tls = context_or_die(&options);
    struct probe probe = {.replies_wanted = 1};
    probe_run(&probe, server.tls_port, tls, 0);
    cr_assert_not(probe.connected);
    cr_assert_str_eq(probe.error, "TLS: certificate verify failed: hostname mismatch");
    tls_context_free(tls);
}

Test(tls, a_server_name_in_the_certificate_is_accepted, .init = setup_plain_tls) {
    struct tls_options options = {.ca_file = pki.ca, .server_name = "localhost"};
    struct tls_context *tls = context_or_die(&options);
    struct probe probe = {.replies_wanted = 1};
    probe_run(&probe, server.tls_port, tls, 0);
    cr_assert_str_empty(probe.error);
    cr_assert_str_eq(probe.first_reply, "PONG");
    tls_context_free(tls);
}

Test(tls, insecure_mode_accepts_an_unverifiable_server, .init = setup_plain_tls) {
    struct tls_options options = {
        .ca_file = pki.other_ca, .server_name = "redis.example.com", .insecure = 1};
    struct tls_context *tls = context_or_die(&options);
    cr_assert(tls_context_insecure(tls));
    struct probe probe = {.replies_wanted = 1};
    probe_run(&probe, server.tls_port, tls, 0);
    cr_assert_str_empty(probe.error);
    cr_assert_str_eq(probe.first_reply, "PONG");
    tls_context_free(tls);
}

Test(tls, mutual_tls_works_with_a_client_certificate, .init = setup_mutual_tls) {
    struct tls_options options = {
        .ca_file = pki.ca, .cert_file = pki.client_cert, .key_file = pki.client_key};
    struct tls_context *tls = context_or_die(&options);
    struct probe probe = {.replies_wanted = 3};
    probe_run(&probe, server.tls_port, tls, 0);
    cr_assert_str_empty(probe.error);
    cr_assert_str_eq(probe.first_reply, "PONG");
    cr_assert(probe.last_matches);
    tls_context_free(tls);
}

Test(tls, mutual_tls_without_a_client_certificate_is_refused, .init = setup_mutual_tls) {
    struct tls_options options = {.ca_file = pki.ca};
    struct tls_context *tls = context_or_die(&options);
    struct probe probe = {.replies_wanted = 1};
    probe_run(&probe, server.tls_port, tls, 0);
    /* TLS 1.3 finishes the client's handshake first; the server's alert follows. */
    cr_assert(strstr(probe.error, "TLS: ") != NULL, "error: '%s'", probe.error);
    cr_assert(strstr(probe.error, "certificate required") != NULL, "error: '%s'", probe.error);
    cr_assert_eq(probe.replies, 0);
    tls_context_free(tls);
}

Test(tls, plain_conns_still_work_next_to_tls, .init = setup_plain_tls) {
    struct probe probe = {.replies_wanted = 3};
    probe_run(&probe, server.server.port, NULL, 0);
    cr_assert_str_empty(probe.error);
    cr_assert(probe.last_matches);
}

Test(tls, context_errors_name_the_file) {
    char err[512];
    struct tls_options missing_ca = {.ca_file = "/nonexistent/ca.crt"};
    cr_assert_null(tls_context_new(&missing_ca, err, sizeof(err)));
    cr_assert_str_eq(err, "tls_ca_file /nonexistent/ca.crt: No such file or directory");
    struct tls_options missing_cert = {.cert_file = "/nonexistent/client.crt"};
    cr_assert_null(tls_context_new(&missing_cert, err, sizeof(err)));
    cr_assert_str_eq(err, "tls_cert_file /nonexistent/client.crt: No such file or directory");
    /* A file that is not PEM at all. */
    char path[] = "/tmp/shake-tls-garbage-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    struct tls_options garbage = {.ca_file = path};
    cr_assert_null(tls_context_new(&garbage, err, sizeof(err)));
    cr_assert(strncmp(err, "tls_ca_file /tmp/shake-tls-garbage-", 35) == 0, "%s", err);
    unlink(path);
}

/* ---- the tls_* config keys ------------------------------------------------------------ */

static int load(struct shake_conf *conf, const char *text, char *err) {
    conf_init(conf);
    return conf_load_string(conf, "t.ini", text, err, CONF_ERR_LEN);
}

Test(tls_conf, keys_build_one_context_per_side) {
    struct pki keys;
    pki_make(&keys);
    char text[2048], err[CONF_ERR_LEN];
    snprintf(text, sizeof(text),
             "[source]\ntype = sync\naddress = 127.0.0.1:1\ntls = yes\ntls_ca_file = %s\n"
             "tls_cert_file = %s\ntls_key_file = %s\ntls_server_name = localhost\n"
             "[target]\naddress = 127.0.0.1:2\ntls = yes\ntls_ca_file = %s\n"
             "tls_insecure = yes\n",
             keys.ca, keys.client_cert, keys.client_key, keys.ca);
    struct shake_conf conf;
    cr_assert_eq(load(&conf, text, err), 0, "%s", err);
    cr_assert(conf.source.tls.enabled);
    cr_assert_str_eq(conf.source.tls.server_name, "localhost");
    cr_assert_not_null(conf.source.tls.context);
    cr_assert_not_null(conf.target.tls.context);
    cr_assert(tls_context_insecure(conf.target.tls.context));
    cr_assert_not(tls_context_insecure(conf.source.tls.context));
    cr_assert_eq(conf.warning_count, 1);
    cr_assert(strstr(conf.warnings[0], "[target] tls_insecure = yes") != NULL, "%s",
              conf.warnings[0]);
    conf_free(&conf);
    pki_remove(&keys);
}

Test(tls_conf, without_tls_there_is_no_context) {
    char err[CONF_ERR_LEN];
    struct shake_conf conf;
    cr_assert_eq(load(&conf, "[source]\ntype = rdb\nfiles = a.rdb\n[target]\naddress = h:1\n", err),
                 0, "%s", err);
    cr_assert_null(conf.source.tls.context);
    cr_assert_null(conf.target.tls.context);
    cr_assert_eq(conf.warning_count, 0);
    conf_free(&conf);
}

Test(tls_conf, a_tls_key_without_tls_yes_is_an_error) {
    char err[CONF_ERR_LEN];
    struct shake_conf conf;
    cr_assert_eq(load(&conf,
                      "[source]\ntype = rdb\nfiles = a.rdb\n[target]\naddress = h:1\n"
                      "tls_ca_file = /x.crt\n",
                      err),
                 -1);
    cr_assert_str_eq(err, "t.ini: [target] tls_ca_file is set but tls is not yes");
    conf_free(&conf);
}

Test(tls_conf, an_unreadable_ca_is_a_config_error_naming_it) {
    char err[CONF_ERR_LEN];
    struct shake_conf conf;
    cr_assert_eq(load(&conf,
                      "[source]\ntype = rdb\nfiles = a.rdb\n[target]\naddress = h:1\n"
                      "tls = yes\ntls_ca_file = /nonexistent/ca.crt\n",
                      err),
                 -1);
    cr_assert_str_eq(err,
                     "t.ini: [target] tls_ca_file /nonexistent/ca.crt: No such file or directory");
    conf_free(&conf);
}

Test(tls_conf, a_bad_yes_no_names_the_line_and_key) {
    char err[CONF_ERR_LEN];
    struct shake_conf conf;
    cr_assert_eq(load(&conf, "[source]\ntype = rdb\nfiles = a.rdb\ntls = maybe\n", err), -1);
    cr_assert_str_eq(err, "t.ini:4: [source] tls: 'maybe' is not yes or no");
    conf_free(&conf);
}

/* Write text to a fresh file with `mode`; returns its path in path (64 bytes). */
static void write_conf_file(char *path, const char *text, mode_t mode) {
    snprintf(path, 64, "/tmp/shake-tls-conf-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

Test(tls_conf, a_password_in_a_file_others_can_read_is_a_warning_without_the_password) {
    const char *text = "[source]\ntype = rdb\nfiles = a.rdb\n[target]\naddress = h:1\n"
                       "password = Sup3r-secret\n";
    char path[64], err[CONF_ERR_LEN];
    write_conf_file(path, text, 0644);
    struct shake_conf conf;
    conf_init(&conf);
    cr_assert_eq(conf_load(&conf, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(conf.warning_count, 1);
    cr_assert(strstr(conf.warnings[0], "readable by others (mode 0644)") != NULL, "%s",
              conf.warnings[0]);
    cr_assert(strstr(conf.warnings[0], "Sup3r-secret") == NULL);
    conf_free(&conf);
    /* Private: no warning. */
    chmod(path, 0600);
    conf_init(&conf);
    cr_assert_eq(conf_load(&conf, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(conf.warning_count, 0);
    conf_free(&conf);
    unlink(path);
}

Test(tls_conf, a_password_from_the_environment_is_not_in_the_file) {
    const char *text = "[source]\ntype = rdb\nfiles = a.rdb\n[target]\naddress = h:1\n"
                       "password = ${SHAKE_TLS_TEST_PW}\n";
    char path[64], err[CONF_ERR_LEN];
    write_conf_file(path, text, 0644);
    setenv("SHAKE_TLS_TEST_PW", "from-env", 1);
    struct shake_conf conf;
    conf_init(&conf);
    cr_assert_eq(conf_load(&conf, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(conf.target.password, "from-env");
    cr_assert_eq(conf.warning_count, 0);
    conf_free(&conf);
    unlink(path);
}
