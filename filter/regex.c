/* regex.c -- PCRE2 key patterns (see regex.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "filter/regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds on one match: a key is short, so a pattern that needs more than this is
 * backtracking catastrophically and the filter says so instead of stalling. */
#define FILTER_REGEX_MATCH_LIMIT 1000000
#define FILTER_REGEX_DEPTH_LIMIT 10000

/* A compiled pattern and the buffers its matches reuse (no allocation per key). */
struct filter_regex {
    char *pattern;                /* owned copy, for messages */
    pcre2_code *code;             /* owned */
    pcre2_match_data *match_data; /* owned */
    pcre2_match_context *context; /* owned: the limits */
};

void filter_regex_free(struct filter_regex *regex) {
    if (regex == NULL) return;
    pcre2_match_context_free(regex->context);
    pcre2_match_data_free(regex->match_data);
    pcre2_code_free(regex->code);
    free(regex->pattern);
    free(regex);
}

/* Build the match data and limits once, so matching never allocates. */
static int filter_regex_prepare(struct filter_regex *regex) {
    regex->match_data = pcre2_match_data_create(1, NULL);
    regex->context = pcre2_match_context_create(NULL);
    if (regex->match_data == NULL || regex->context == NULL) return -1;
    pcre2_set_match_limit(regex->context, FILTER_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(regex->context, FILTER_REGEX_DEPTH_LIMIT);
    (void)pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE); /* interpreted when absent */
    return 0;
}

struct filter_regex *filter_regex_compile(const char *pattern, char *why, size_t whylen) {
    struct filter_regex *regex = calloc(1, sizeof(*regex));
    if (regex == NULL || (regex->pattern = strdup(pattern)) == NULL) {
        free(regex);
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    int code;
    PCRE2_SIZE at;
    regex->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &at, NULL);
    if (regex->code == NULL) {
        PCRE2_UCHAR message[256];
        if (pcre2_get_error_message(code, message, sizeof(message)) < 0)
            snprintf((char *)message, sizeof(message), "error %d", code);
        snprintf(why, whylen, "bad regex '%s': %s at offset %zu", pattern, (char *)message,
                 (size_t)at);
        filter_regex_free(regex);
        return NULL;
    }
    if (filter_regex_prepare(regex) != 0) {
        snprintf(why, whylen, "out of memory");
        filter_regex_free(regex);
        return NULL;
    }
    return regex;
}

int filter_regex_match(struct filter_regex *regex, const char *key, size_t len, char *why,
                       size_t whylen) {
    int rc =
        pcre2_match(regex->code, (PCRE2_SPTR)key, len, 0, 0, regex->match_data, regex->context);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    PCRE2_UCHAR message[256];
    if (pcre2_get_error_message(rc, message, sizeof(message)) < 0)
        snprintf((char *)message, sizeof(message), "error %d", rc);
    snprintf(why, whylen, "regex '%s' gave up: %s", regex->pattern, (char *)message);
    return -1;
}

const char *filter_regex_pattern(const struct filter_regex *regex) {
    return regex->pattern;
}
