/* test_status.c -- the JSON writer escapes every byte into valid JSON, the
 * Prometheus text parses strictly (HELP and TYPE before samples, every sample
 * `name{labels} value`), and the status model derives lag and caught_up as
 * docs/status.md says. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shake/json.h"
#include "shake/status.h"

static char *escaped(const char *bytes, size_t len) {
    struct text_buf out;
    text_buf_init(&out);
    struct json_writer json;
    json_init(&json, &out);
    json_string(&json, bytes, len);
    cr_assert(!out.failed && !json.failed);
    return out.data;
}

Test(json, quotes_and_backslashes_are_escaped) {
    char *s = escaped("a\"b\\c/", 6);
    cr_assert_str_eq(s, "\"a\\\"b\\\\c/\"");
    free(s);
}

Test(json, every_control_character_is_escaped) {
    char *s = escaped("\n\r\t\b\f\x01\x1f\x7f", 8);
    cr_assert_str_eq(s, "\"\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\"");
    free(s);
    char nul[] = {'a', '\0', 'b'};
    s = escaped(nul, 3);
    cr_assert_str_eq(s, "\"a\\u0000b\"");
    free(s);
}

Test(json, valid_utf8_passes_through) {
    const char *text = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    char *s = escaped(text, strlen(text));
    cr_assert_str_eq(s, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    free(s);
}

Test(json, invalid_utf8_bytes_become_replacement_characters) {
    /* a lone 0xff, a truncated 2-byte sequence, an overlong '/', a surrogate, above U+10FFFF */
    const char *cases[][2] = {
        {"\xff", "\"\\ufffd\""},
        {"x\xc3", "\"x\\ufffd\""},
        {"\xc0\xaf", "\"\\ufffd\\ufffd\""},
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
        {"\xe2\x82", "\"\\ufffd\\ufffd\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = escaped(cases[i][0], strlen(cases[i][0]));
        cr_assert_str_eq(s, cases[i][1], "case %zu", i);
        free(s);
    }
}

Test(json, nesting_and_commas) {
    struct text_buf out;
    text_buf_init(&out);
    struct json_writer json;
    json_init(&json, &out);
    json_object_begin(&json);
    json_key(&json, "a");
    json_uint(&json, 18446744073709551615ULL);
    json_key(&json, "b");
    json_array_begin(&json);
    json_bool(&json, 1);
    json_null(&json);
    json_double(&json, 1.5);
    json_object_begin(&json);
    json_object_end(&json);
    json_array_end(&json);
    json_key(&json, "k\"ey");
    json_double(&json, 0.0 / 0.0);
    json_object_end(&json);
    cr_assert_str_eq(out.data,
                     "{\"a\":18446744073709551615,\"b\":[true,null,1.5,{}],\"k\\\"ey\":null}");
    cr_assert_eq(json.depth, 0);
    cr_assert(!json.failed);
    text_buf_free(&out);
}

Test(json, too_deep_nesting_is_reported) {
    struct text_buf out;
    text_buf_init(&out);
    struct json_writer json;
    json_init(&json, &out);
    for (int i = 0; i <= JSON_MAX_DEPTH; i++)
        json_array_begin(&json);
    cr_assert(json.failed);
    text_buf_free(&out);
}

/* ---- the status model -------------------------------------------------------------- */

static void model(struct status *status, int shards) {
    status_init(status, "sync");
    cr_assert_eq(status_set_shard_count(status, shards), 0);
    status->writer_idle = 1;
    for (int i = 0; i < shards; i++) {
        snprintf(status->shards[i].name, sizeof(status->shards[i].name), "slots-%d", i);
        snprintf(status->shards[i].address, sizeof(status->shards[i].address), "127.0.0.1:%d",
                 7000 + i);
        status->shards[i].phase = "stream";
    }
}

Test(status, caught_up_needs_every_shard_streaming_and_nothing_pending) {
    struct status status;
    model(&status, 2);
    status_update(&status, 10.0);
    cr_assert(status.caught_up);
    status.shards[1].phase = "rdb";
    status_update(&status, 10.0);
    cr_assert(!status.caught_up, "a shard in rdb");
    status.shards[1].phase = "stream";
    status.writer_in_flight = 1;
    status_update(&status, 10.0);
    cr_assert(!status.caught_up, "writes in flight");
    status.writer_in_flight = 0;
    status.shards[0].buffered_bytes = 10;
    status_update(&status, 10.0);
    cr_assert(!status.caught_up, "bytes buffered");
    cr_assert_eq(status.shards[0].lag_bytes, 10);
    cr_assert_eq(status.shards[0].source_offset, 10);
    status.shards[0].buffered_bytes = 0;
    status.shards[0].received_offset = 100;
    status.shards[0].acked_offset = 40;
    status_update(&status, 10.0);
    cr_assert(!status.caught_up, "not acknowledged");
    cr_assert_eq(status.shards[0].lag_bytes, 60);
    status.shards[0].acked_offset = 100;
    status_update(&status, 10.0);
    cr_assert(status.caught_up);
    status_free(&status);
}

Test(status, no_shard_is_not_caught_up) {
    struct status status;
    model(&status, 0);
    status_update(&status, 1.0);
    cr_assert(!status.caught_up);
    status_free(&status);
}

Test(status, lag_ms_is_the_age_of_the_oldest_unacknowledged_sample) {
    struct status status;
    model(&status, 1);
    struct status_shard *shard = &status.shards[0];
    status_lag_received(shard, 100, 1.000);
    status_lag_received(shard, 200, 1.500);
    status_lag_received(shard, 300, 2.000);
    shard->received_offset = 300;
    shard->acked_offset = 50;
    status_update(&status, 3.0);
    cr_assert_eq(shard->lag_ms, 2000);
    shard->acked_offset = 100;
    status_update(&status, 3.0);
    cr_assert_eq(shard->lag_ms, 1500, "the sample at 100 is acknowledged");
    shard->acked_offset = 250;
    status_update(&status, 3.0);
    cr_assert_eq(shard->lag_ms, 1000);
    shard->acked_offset = 300;
    status_update(&status, 3.0);
    cr_assert_eq(shard->lag_ms, 0);
    cr_assert_eq(shard->lag_bytes, 0);
    status_free(&status);
}

Test(status, a_full_sample_ring_never_understates_lag) {
    struct status status;
    model(&status, 1);
    struct status_shard *shard = &status.shards[0];
    for (int i = 1; i <= 3 * STATUS_LAG_SAMPLES; i++)
        status_lag_received(shard, (uint64_t)i * 10, (double)i);
    cr_assert_leq(shard->sample_count, STATUS_LAG_SAMPLES);
    shard->received_offset = 30 * STATUS_LAG_SAMPLES;
    shard->acked_offset = 30 * STATUS_LAG_SAMPLES - 5;
    double now = 3.0 * STATUS_LAG_SAMPLES + 1;
    status_update(&status, now);
    /* the last write arrived at time 3*SAMPLES: the lag is at least 1 s */
    cr_assert_geq(shard->lag_ms, 1000);
    status_free(&status);
}

/* ---- Prometheus text, parsed strictly ------------------------------------------------ */

static int metric_name_ok(const char *s, size_t len) {
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':')) return 0;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':')) return 0;
    return 1;
}

/* Parse `{k="v",...}` starting at *p; returns 0 on success and moves *p after '}'. */
static int parse_labels(const char **p) {
    const char *s = *p;
    if (*s != '{') return 0;
    s++;
    while (*s != '}') {
        const char *start = s;
        while (isalnum((unsigned char)*s) || *s == '_')
            s++;
        if (s == start || isdigit((unsigned char)*start) || *s++ != '=' || *s++ != '"') return -1;
        while (*s != '"') {
            if (*s == '\0' || *s == '\n') return -1;
            if (*s == '\\') {
                s++;
                if (*s != '\\' && *s != '"' && *s != 'n') return -1;
            }
            s++;
        }
        s++;
        if (*s == ',')
            s++;
        else if (*s != '}')
            return -1;
    }
    *p = s + 1;
    return 0;
}

/* Check the whole exposition; returns the number of samples, -1 on a bad line. */
static int parse_exposition(const char *text, char *why, size_t len) {
    char typed[256][128];
    int typed_count = 0, samples = 0;
    char *copy = strdup(text), *save = NULL;
    cr_assert(text[strlen(text) - 1] == '\n', "the text ends with a line feed");
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            const char *name = line + 7;
            size_t name_len = strcspn(name, " ");
            if (!metric_name_ok(name, name_len) || name[name_len] != ' ') goto bad;
            if (line[2] == 'T') {
                const char *type = name + name_len + 1;
                if (strcmp(type, "gauge") && strcmp(type, "counter")) goto bad;
                if (typed_count == 256) goto bad;
                snprintf(typed[typed_count++], 128, "%.*s", (int)name_len, name);
            }
            continue;
        }
        if (line[0] == '#') continue;
        const char *p = line;
        size_t name_len = strcspn(p, "{ ");
        if (!metric_name_ok(p, name_len)) goto bad;
        int known = 0;
        for (int i = 0; i < typed_count; i++)
            if (strlen(typed[i]) == name_len && strncmp(typed[i], p, name_len) == 0) known = 1;
        if (!known) goto bad; /* TYPE must come before the family's samples */
        p += name_len;
        if (parse_labels(&p) != 0 || *p++ != ' ') goto bad;
        char *end;
        strtod(p, &end);
        if (end == p || *end != '\0') goto bad;
        samples++;
    }
    free(copy);
    return samples;
bad:
    snprintf(why, len, "bad line: %s", text);
    free(copy);
    return -1;
}

Test(metrics, exposition_parses_with_every_family_typed_before_its_samples) {
    struct status status;
    model(&status, 2);
    snprintf(status.shards[1].name, sizeof(status.shards[1].name), "we\"ird\\name\nx\xff");
    status.shards[0].received_offset = 1000;
    status.shards[0].acked_offset = 400;
    status_update(&status, 5.0);
    struct text_buf out;
    text_buf_init(&out);
    status_render_metrics(&status, &out);
    char why[256] = "";
    int samples = parse_exposition(out.data, why, sizeof(why));
    cr_assert_gt(samples, 20, "%s", why);
    cr_assert_not_null(strstr(out.data, "shake_shard_lag_bytes{shard=\"slots-0\"} 600\n"));
    cr_assert_not_null(strstr(out.data, "shake_caught_up 0\n"));
    cr_assert_not_null(strstr(out.data, "shard=\"we\\\"ird\\\\name\\nx\xef\xbf\xbd\""));
    cr_assert_not_null(
        strstr(out.data, "shake_shard_phase{shard=\"slots-0\",phase=\"stream\"} 1\n"));
    text_buf_free(&out);
    status_free(&status);
}

Test(metrics, json_of_the_same_model_is_one_object_starting_with_caught_up) {
    struct status status;
    model(&status, 1);
    snprintf(status.shards[0].last_error, STATUS_TEXT_MAX, "bad \x01 key \xfe");
    status_update(&status, 5.0);
    struct text_buf out;
    text_buf_init(&out);
    status_render_json(&status, &out);
    cr_assert_eq(strncmp(out.data, "{\"caught_up\":true,", 18), 0, "%s", out.data);
    cr_assert_not_null(strstr(out.data, "\"last_error\":\"bad \\u0001 key \\ufffd\""));
    cr_assert_not_null(strstr(out.data, "\"lag_ms\":0,"));
    text_buf_free(&out);
    status_free(&status);
}
