/* json.c -- see json.h. */
#include "shake/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void text_buf_init(struct text_buf *buf) {
    memset(buf, 0, sizeof(*buf));
}

void text_buf_free(struct text_buf *buf) {
    free(buf->data);
    text_buf_init(buf);
}

/* Make room for `more` bytes plus the NUL; on failure the buffer is marked failed. */
static int text_buf_reserve(struct text_buf *buf, size_t more) {
    if (buf->failed) return -1;
    if (buf->len + more + 1 <= buf->cap) return 0;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + more + 1)
        cap *= 2;
    char *grown = realloc(buf->data, cap);
    if (grown == NULL) {
        buf->failed = 1;
        return -1;
    }
    buf->data = grown;
    buf->cap = cap;
    return 0;
}

void text_buf_append(struct text_buf *buf, const char *bytes, size_t len) {
    if (text_buf_reserve(buf, len) != 0) return;
    memcpy(buf->data + buf->len, bytes, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void text_buf_puts(struct text_buf *buf, const char *text) {
    text_buf_append(buf, text, strlen(text));
}

void text_buf_printf(struct text_buf *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || text_buf_reserve(buf, (size_t)n) != 0) return;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
}

/* Length of the well-formed UTF-8 sequence at `s` (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when the byte at `s` starts none. */
size_t json_utf8_length(const char *bytes, size_t left) {
    const unsigned char *s = (const unsigned char *)bytes;
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (left < need || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return need;
}

void json_escape(struct text_buf *out, const char *bytes, size_t len) {
    const unsigned char *s = (const unsigned char *)bytes;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        const char *short_form = NULL;
        switch (c) {
        case '"': short_form = "\\\""; break;
        case '\\': short_form = "\\\\"; break;
        case '\n': short_form = "\\n"; break;
        case '\r': short_form = "\\r"; break;
        case '\t': short_form = "\\t"; break;
        case '\b': short_form = "\\b"; break;
        case '\f': short_form = "\\f"; break;
        default: break;
        }
        if (short_form != NULL) {
            text_buf_puts(out, short_form);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            text_buf_printf(out, "\\u%04x", c);
            i++;
        } else {
            size_t n = json_utf8_length(bytes + i, len - i);
            if (n == 0) {
                text_buf_puts(out, "\\ufffd"); /* one replacement per invalid byte */
                i++;
            } else {
                text_buf_append(out, bytes + i, n);
                i += n;
            }
        }
    }
}

void json_init(struct json_writer *json, struct text_buf *out) {
    memset(json, 0, sizeof(*json));
    json->out = out;
}

/* Write the separator a new value needs at the current level. */
static void json_before_value(struct json_writer *json) {
    if (json->after_key) {
        json->after_key = 0;
        return;
    }
    if (json->depth > 0 && json->has_items[json->depth - 1]++) text_buf_puts(json->out, ",");
}

static void json_open(struct json_writer *json, const char *bracket) {
    json_before_value(json);
    if (json->depth == JSON_MAX_DEPTH) {
        json->failed = 1;
        return;
    }
    json->has_items[json->depth++] = 0;
    text_buf_puts(json->out, bracket);
}

static void json_close(struct json_writer *json, const char *bracket) {
    if (json->depth == 0) {
        json->failed = 1;
        return;
    }
    json->depth--;
    text_buf_puts(json->out, bracket);
}

void json_object_begin(struct json_writer *json) {
    json_open(json, "{");
}

void json_object_end(struct json_writer *json) {
    json_close(json, "}");
}

void json_array_begin(struct json_writer *json) {
    json_open(json, "[");
}

void json_array_end(struct json_writer *json) {
    json_close(json, "]");
}

void json_key(struct json_writer *json, const char *key) {
    json_before_value(json);
    text_buf_puts(json->out, "\"");
    json_escape(json->out, key, strlen(key));
    text_buf_puts(json->out, "\":");
    json->after_key = 1;
}

void json_string(struct json_writer *json, const char *bytes, size_t len) {
    json_before_value(json);
    text_buf_puts(json->out, "\"");
    json_escape(json->out, bytes, len);
    text_buf_puts(json->out, "\"");
}

void json_cstring(struct json_writer *json, const char *text) {
    json_string(json, text, strlen(text));
}

void json_uint(struct json_writer *json, uint64_t value) {
    json_before_value(json);
    text_buf_printf(json->out, "%llu", (unsigned long long)value);
}

void json_double(struct json_writer *json, double value) {
    json_before_value(json);
    if (!isfinite(value))
        text_buf_puts(json->out, "null");
    else
        text_buf_printf(json->out, "%.15g", value);
}

void json_bool(struct json_writer *json, int value) {
    json_before_value(json);
    text_buf_puts(json->out, value ? "true" : "false");
}

void json_null(struct json_writer *json) {
    json_before_value(json);
    text_buf_puts(json->out, "null");
}
