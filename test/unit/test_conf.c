/* test_conf.c -- the config loader: defaults, every key, ${VAR}, and the messages
 * for bad configs (file:line and the key). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

static int load(struct shake_conf *conf, const char *text, char *err) {
    conf_init(conf);
    return conf_load_string(conf, "t.ini", text, err, CONF_ERR_LEN);
}

Test(conf, minimal_restore_config_gets_defaults) {
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    cr_assert_eq(load(&conf,
                      "[source]\ntype = rdb\nfiles = /a.rdb, /b.rdb\n"
                      "[target]\naddress = 127.0.0.1:7000\n",
                      err),
                 0, "%s", err);
    cr_assert_eq(conf.source.file_count, 2);
    cr_assert_str_eq(conf.source.files[0], "/a.rdb");
    cr_assert_str_eq(conf.source.files[1], "/b.rdb");
    cr_assert_str_eq(conf.target.host, "127.0.0.1");
    cr_assert_eq(conf.target.port, 7000);
    cr_assert_null(conf.target.password);
    cr_assert_eq(conf.target.on_existing, CONF_ON_EXISTING_ERROR);
    cr_assert_eq(conf.target.wait_replicas, CONF_WAIT_REPLICAS_AUTO);
    cr_assert_str_eq(conf.shake.dir, "./shake-data");
    cr_assert_eq(conf.shake.log_level, CONF_LOG_INFO);
    conf_free(&conf);
}

Test(conf, every_key_is_read) {
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    setenv("SHAKE_TEST_PASSWORD", "s3cret", 1);
    cr_assert_eq(load(&conf,
                      "; comment\n[source]\ntype = rdb ; inline comment\nfiles = x.rdb\n"
                      "[target]\naddress = [::1]:6380\nusername = u\n"
                      "password = pre-${SHAKE_TEST_PASSWORD}-post\non_existing = skip\n"
                      "db_map = 1:0, 5:0\npipeline_max_bytes = 2mb\nbatch_max_items = 64\n"
                      "batch_max_bytes = 64kb\nconnect_timeout_ms = 250\n"
                      "[shake]\ndir = /tmp/x\nlog_level = debug\nrestore_max_bytes = 1mb\n"
                      "progress = no\n",
                      err),
                 0, "%s", err);
    cr_assert_str_eq(conf.target.host, "::1");
    cr_assert_eq(conf.target.port, 6380);
    cr_assert_str_eq(conf.target.username, "u");
    cr_assert_str_eq(conf.target.password, "pre-s3cret-post");
    cr_assert_eq(conf.target.on_existing, CONF_ON_EXISTING_SKIP);
    cr_assert_eq(conf.target.db_map_count, 2);
    cr_assert_eq(conf_map_db(&conf.target, 5), 0);
    cr_assert_eq(conf_map_db(&conf.target, 3), 3);
    cr_assert(conf_db_is_mapped(&conf.target, 1));
    cr_assert_not(conf_db_is_mapped(&conf.target, 0));
    cr_assert_eq(conf.target.pipeline_max_bytes, 2u * 1024 * 1024);
    cr_assert_eq(conf.target.batch_max_items, 64u);
    cr_assert_eq(conf.target.batch_max_bytes, 64u * 1024);
    cr_assert_eq(conf.target.connect_timeout_ms, 250);
    cr_assert_str_eq(conf.shake.dir, "/tmp/x");
    cr_assert_eq(conf.shake.log_level, CONF_LOG_DEBUG);
    cr_assert_eq(conf.shake.restore_max_bytes, 1024u * 1024);
    cr_assert_eq(conf.shake.progress, 0);
    conf_free(&conf);
}

Test(conf, long_file_lists_are_not_cut) {
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    char text[4096] = "[source]\ntype = rdb\nfiles = ";
    for (int i = 0; i < 100; i++) strcat(text, "/backups/node.rdb, ");
    strcat(text, "/last.rdb\n[target]\naddress = h:1\n");
    cr_assert_eq(load(&conf, text, err), 0, "%s", err);
    cr_assert_eq(conf.source.file_count, 101);
    cr_assert_str_eq(conf.source.files[100], "/last.rdb");
    conf_free(&conf);
}

static void assert_fails_with(const char *text, const char *expected) {
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    cr_assert_neq(load(&conf, text, err), 0, "config should fail: %s", text);
    cr_assert(strstr(err, expected) != NULL, "message '%s' should contain '%s'", err, expected);
    cr_assert(strchr(err, '\n') == NULL, "message must be one line: %s", err);
    conf_free(&conf);
}

Test(conf, bad_configs_name_line_and_key) {
    const char *base = "[source]\ntype = rdb\nfiles = a.rdb\n[target]\naddress = h:1\n";
    char text[512];
    snprintf(text, sizeof(text), "%s[bogus]\n", base);
    assert_fails_with(text, "t.ini:6: unknown section [bogus]");
    snprintf(text, sizeof(text), "%sfrobnicate = 1\n", base);
    assert_fails_with(text, "t.ini:6: unknown key 'frobnicate' in [target]");
    snprintf(text, sizeof(text), "%son_existing = maybe\n", base);
    assert_fails_with(text, "t.ini:6: [target] on_existing: 'maybe' is not one of");
    snprintf(text, sizeof(text), "%sdb_map = 1-0\n", base);
    assert_fails_with(text, "t.ini:6: [target] db_map");
    snprintf(text, sizeof(text), "%spipeline_max_bytes = lots\n", base);
    assert_fails_with(text, "t.ini:6: [target] pipeline_max_bytes");
    snprintf(text, sizeof(text), "%swait_replicas = some\n", base);
    assert_fails_with(text, "t.ini:6: [target] wait_replicas: 'some' is not auto or a number");
    snprintf(text, sizeof(text), "%swait_replicas = -1\n", base);
    assert_fails_with(text, "t.ini:6: [target] wait_replicas");
    snprintf(text, sizeof(text), "%spassword = ${SHAKE_TEST_UNSET_VARIABLE}\n", base);
    assert_fails_with(text, "environment variable SHAKE_TEST_UNSET_VARIABLE is not set");
    assert_fails_with("[source]\ntype = mysql\n", "t.ini:2: [source] type: 'mysql'");
    assert_fails_with("[source]\ntype = aof\n[target]\naddress = h:1\n",
                      "missing required key [source] files");
    assert_fails_with("[source]\ntype = rdb\nfiles = a\n[target]\naddress = nohost\n",
                      "t.ini:5: [target] address: 'nohost' is not host:port");
    assert_fails_with("[source]\ntype = rdb\nfiles = a\n[target]\naddress = h:99999\n",
                      "is not host:port");
    assert_fails_with("[source]\ntype = rdb\n[target]\naddress = h:1\n",
                      "missing required key [source] files");
    assert_fails_with("[source]\ntype = rdb\nfiles = a\n", "missing required key [target] address");
    assert_fails_with("[source]\ntype = rdb\nthis line has no equals\n", "t.ini:3: syntax error");
}

Test(conf, missing_file_is_reported) {
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    conf_init(&conf);
    cr_assert_neq(conf_load(&conf, "/nonexistent/shake.ini", err, sizeof(err)), 0);
    cr_assert(strstr(err, "/nonexistent/shake.ini: cannot open config") != NULL, "%s", err);
    conf_free(&conf);
}

Test(conf, sync_source_keys) {
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    cr_assert_eq(load(&conf,
                      "[source]\ntype = sync\naddress = 127.0.0.1:6379, [::1]:6380\n"
                      "username = repl\npassword = pw\nconnect_timeout_ms = 100\n"
                      "[target]\naddress = 127.0.0.1:7000\non_unsupported = skip\n"
                      "forward_publish = yes\n[shake]\ncheckpoint_interval_ms = 200\n"
                      "max_buffered = 1mb\n",
                      err),
                 0, "%s", err);
    cr_assert_eq(conf.source.type, CONF_SOURCE_SYNC);
    cr_assert_eq(conf.source.address_count, 2);
    cr_assert_str_eq(conf.source.addresses[0].host, "127.0.0.1");
    cr_assert_eq(conf.source.addresses[0].port, 6379);
    cr_assert_str_eq(conf.source.addresses[1].host, "::1");
    cr_assert_eq(conf.source.addresses[1].port, 6380);
    cr_assert_str_eq(conf.source.username, "repl");
    cr_assert_str_eq(conf.source.password, "pw");
    cr_assert_eq(conf.source.connect_timeout_ms, 100);
    cr_assert_eq(conf.target.on_unsupported, CONF_ON_UNSUPPORTED_SKIP);
    cr_assert_eq(conf.target.forward_publish, 1);
    cr_assert_eq(conf.shake.checkpoint_interval_ms, 200);
    cr_assert_eq(conf.shake.max_buffered, 1024u * 1024);
    conf_free(&conf);
}

Test(conf, sync_source_needs_an_address) {
    assert_fails_with("[source]\ntype = sync\n[target]\naddress = h:1\n",
                      "missing required key [source] address");
    assert_fails_with("[source]\ntype = sync\naddress = a:1, b\n[target]\naddress = h:1\n",
                      "t.ini:3: [source] address: 'b' is not host:port");
    assert_fails_with("[source]\ntype = sync\naddress = a:1\n[target]\naddress = h:1\n"
                      "forward_publish = maybe\n",
                      "t.ini:6: [target] forward_publish: 'maybe' is not yes or no");
}

Test(conf, io_collect_us_is_bounded_microseconds) {
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    const char *base = "[source]\ntype = sync\naddress = h:1\n[target]\naddress = h:2\n";
    char text[512];
    cr_assert_eq(load(&conf, base, err), 0, "%s", err);
    cr_assert_eq(conf.shake.io_collect_us, 1000, "the default is 1 ms");
    conf_free(&conf);
    snprintf(text, sizeof(text), "%s[shake]\nio_collect_us = 0\n", base);
    cr_assert_eq(load(&conf, text, err), 0, "%s", err);
    cr_assert_eq(conf.shake.io_collect_us, 0);
    conf_free(&conf);
    snprintf(text, sizeof(text), "%s[shake]\nio_collect_us = 250\n", base);
    cr_assert_eq(load(&conf, text, err), 0, "%s", err);
    cr_assert_eq(conf.shake.io_collect_us, 250);
    conf_free(&conf);
    snprintf(text, sizeof(text), "%s[shake]\nio_collect_us = 100001\n", base);
    assert_fails_with(text, "t.ini:7: [shake] io_collect_us: '100001' is not a number of "
                            "microseconds from 0 to 100000");
    snprintf(text, sizeof(text), "%s[shake]\nio_collect_us = 1ms\n", base);
    assert_fails_with(text, "t.ini:7: [shake] io_collect_us: '1ms' is not a number of "
                            "microseconds from 0 to 100000");
}

Test(conf, wait_replicas_is_auto_or_a_count) {
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    const char *base = "[source]\ntype = sync\naddress = h:1\n[target]\naddress = h:2\n";
    const char *values[] = {"auto", "0", "2"};
    const int expected[] = {CONF_WAIT_REPLICAS_AUTO, 0, 2};
    for (size_t i = 0; i < 3; i++) {
        char text[256];
        snprintf(text, sizeof(text), "%swait_replicas = %s\n", base, values[i]);
        cr_assert_eq(load(&conf, text, err), 0, "%s", err);
        cr_assert_eq(conf.target.wait_replicas, expected[i], "%s", values[i]);
        conf_free(&conf);
    }
}
