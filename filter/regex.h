/* regex.h -- key patterns for allow_key_regex / block_key_regex, with PCRE2.
 *
 * Owns: the one way a pattern is compiled (8-bit, byte semantics: keys are
 * binary, not UTF-8; unanchored: a pattern matches anywhere in the key unless it
 * says ^ or $), JIT when the library has it, and a match that bounds the work a
 * pathological pattern may do. The config loader compiles each pattern once to
 * report a bad one with file:line; the filter compiles it again for use.
 *
 * Must not: keep global state, print.
 */
#ifndef SHAKE_FILTER_REGEX_H
#define SHAKE_FILTER_REGEX_H

#include <stddef.h>

struct filter_regex;

/* Compile `pattern`. Returns the compiled pattern, or NULL with the reason (PCRE2's
 * message and the offset in the pattern) in `why`. */
struct filter_regex *filter_regex_compile(const char *pattern, char *why, size_t whylen);
/* 1 when `key` matches, 0 when not, -1 when the match gave up (match limit hit
 * or out of memory), with the reason in `why`. */
int filter_regex_match(struct filter_regex *regex, const char *key, size_t len, char *why,
                       size_t whylen);
const char *filter_regex_pattern(const struct filter_regex *regex);
void filter_regex_free(struct filter_regex *regex);

#endif
