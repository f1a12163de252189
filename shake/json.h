/* json.h -- a growable text buffer, and a small JSON writer on top of it.
 *
 * The status endpoint builds its JSON and Prometheus text with these, by hand, so
 * shake needs no JSON library. The writer tracks commas and nesting itself; strings
 * are escaped as RFC 8259 requires (quote, backslash, every control character), and
 * bytes that are not valid UTF-8 become U+FFFD, so the output is always valid JSON
 * whatever bytes a key name or an error message holds.
 *
 * Must not: allocate without a cap on failure being reported (`failed` is sticky:
 * once an allocation fails, every later call is a no-op and the text is unusable).
 */
#ifndef SHAKE_JSON_H
#define SHAKE_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 16

/* Owns `data` (NUL-terminated while not failed); text_buf_free releases it. */
struct text_buf {
    char *data;
    size_t len;
    size_t cap;
    int failed; /* out of memory: the text is incomplete */
};

void text_buf_init(struct text_buf *buf);
void text_buf_free(struct text_buf *buf);
void text_buf_append(struct text_buf *buf, const char *bytes, size_t len);
void text_buf_puts(struct text_buf *buf, const char *text);
void text_buf_printf(struct text_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A JSON document being written into `out` (borrowed). */
struct json_writer {
    struct text_buf *out;
    int depth;
    int has_items[JSON_MAX_DEPTH]; /* a value was already written at that level */
    int after_key;                 /* the next value completes a "key": pair */
    int failed;                    /* nesting deeper than JSON_MAX_DEPTH, or misuse */
};

void json_init(struct json_writer *json, struct text_buf *out);
void json_object_begin(struct json_writer *json);
void json_object_end(struct json_writer *json);
void json_array_begin(struct json_writer *json);
void json_array_end(struct json_writer *json);
/* The key of the next value (inside an object). */
void json_key(struct json_writer *json, const char *key);
void json_string(struct json_writer *json, const char *bytes, size_t len);
void json_cstring(struct json_writer *json, const char *text);
void json_uint(struct json_writer *json, uint64_t value);
/* Non-finite values are written as null (JSON has no NaN). */
void json_double(struct json_writer *json, double value);
void json_bool(struct json_writer *json, int value);
void json_null(struct json_writer *json);
/* Length of the well-formed UTF-8 sequence starting at `bytes`, or 0 when the
 * byte there starts none. */
size_t json_utf8_length(const char *bytes, size_t left);
/* Append `bytes` escaped as the inside of a JSON string (no quotes). */
void json_escape(struct text_buf *out, const char *bytes, size_t len);

#endif
