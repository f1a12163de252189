/* aof.c -- see aof.h.
 *
 * The command part is framed here, byte by byte, before cmd_stream parses it: the
 * framing knows where each command starts and ends in the file, so annotations
 * can be left out, a cut-short last command can be told from corrupt bytes, and
 * every error names the exact file offset. cmd_stream then receives exactly one
 * whole command at a time and turns it into a CMD entry (SELECT tracking
 * included). Memory: the unscanned part of one fed block, one command, and the
 * commands of an open MULTI (held until EXEC, as Redis applies them).
 */
#include "reader/aof.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "reader/cmd_stream.h"

#define AOF_MANIFEST_MAX_LINE 1024 /* as Redis's MANIFEST_MAX_LINE */
#define AOF_MANIFEST_MAX_TOKENS 64
#define AOF_MANIFEST_MAX_BYTES (16 * 1024 * 1024)
#define AOF_MAX_ARGS (1 << 24)    /* as cmd_stream: more is a corrupt count */
#define AOF_MAX_BULK (1ULL << 40) /* an argument longer than 1 TiB is a corrupt length */

/* ---- the list of files ------------------------------------------------------ */

int aof_file_list_add(struct aof_file_list *list, const char *path, char type, long long seq,
                      int last) {
    struct aof_file *grown = realloc(list->items, sizeof(*grown) * (size_t)(list->count + 1));
    if (grown == NULL) return -1;
    list->items = grown;
    char *copy = strdup(path);
    if (copy == NULL) return -1;
    grown[list->count++] = (struct aof_file){.path = copy, .type = type, .seq = seq, .last = last};
    return 0;
}

void aof_file_list_free(struct aof_file_list *list) {
    for (int i = 0; i < list->count; i++)
        free(list->items[i].path);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* ---- the manifest ----------------------------------------------------------- */

/* One manifest line split into its fields, the way Redis's sdssplitargs splits
 * it: blanks between fields, "double quotes" with \xHH \n \r \t \b \a and \c
 * escapes, 'single quotes' with \' only. Fields live in `bytes`, NUL-terminated
 * (a field may hold a NUL of its own through \x00: `length` tells). */
struct aof_manifest_fields {
    char bytes[2 * AOF_MANIFEST_MAX_LINE];
    size_t used;
    const char *field[AOF_MANIFEST_MAX_TOKENS];
    size_t length[AOF_MANIFEST_MAX_TOKENS];
    int count;
};

static int aof_hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int aof_is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* One character inside double quotes, at *p: appends its value, moves *p past it.
 * Returns -1 at an unterminated quote, 1 at the closing quote, 0 otherwise. */
static int aof_split_double_quoted(const char **p, char *out, size_t *n) {
    const char *s = *p;
    if (*s == '\0') return -1;
    if (*s == '"') {
        if (s[1] != '\0' && !aof_is_blank(s[1])) return -1; /* "a"b is not a field */
        *p = s + 1;
        return 1;
    }
    if (s[0] == '\\' && s[1] == 'x' && aof_hex_value(s[2]) >= 0 && aof_hex_value(s[3]) >= 0) {
        out[(*n)++] = (char)(aof_hex_value(s[2]) * 16 + aof_hex_value(s[3]));
        *p = s + 4;
        return 0;
    }
    if (s[0] == '\\' && s[1] != '\0') {
        const char *from = "nrtba", *to = "\n\r\t\b\a";
        const char *hit = strchr(from, s[1]);
        out[(*n)++] = hit != NULL ? to[hit - from] : s[1];
        *p = s + 2;
        return 0;
    }
    out[(*n)++] = *s;
    *p = s + 1;
    return 0;
}

/* As aof_split_double_quoted, inside single quotes. */
static int aof_split_single_quoted(const char **p, char *out, size_t *n) {
    const char *s = *p;
    if (*s == '\0') return -1;
    if (*s == '\'') {
        if (s[1] != '\0' && !aof_is_blank(s[1])) return -1;
        *p = s + 1;
        return 1;
    }
    if (s[0] == '\\' && s[1] == '\'') {
        out[(*n)++] = '\'';
        *p = s + 2;
        return 0;
    }
    out[(*n)++] = *s;
    *p = s + 1;
    return 0;
}

/* Split a trimmed line. Returns 0, or -1 on unbalanced quotes or too many fields. */
static int aof_split_fields(const char *line, struct aof_manifest_fields *out) {
    const char *p = line;
    out->used = 0;
    out->count = 0;
    for (;;) {
        while (aof_is_blank(*p))
            p++;
        if (*p == '\0') return 0;
        if (out->count == AOF_MANIFEST_MAX_TOKENS) return -1;
        char *field = out->bytes + out->used;
        size_t n = 0;
        int quote = 0; /* '"', '\'' or 0 */
        for (;;) {
            int rc = 0;
            if (quote == '"')
                rc = aof_split_double_quoted(&p, field, &n);
            else if (quote == '\'')
                rc = aof_split_single_quoted(&p, field, &n);
            else if (*p == '\0' || aof_is_blank(*p))
                break;
            else if (*p == '"' || *p == '\'')
                quote = *p++;
            else
                field[n++] = *p++;
            if (rc < 0) return -1;
            if (rc == 1) break;
        }
        field[n] = '\0';
        out->field[out->count] = field;
        out->length[out->count++] = n;
        out->used += n + 1;
    }
}

/* What one manifest line says. */
struct aof_manifest_line {
    const char *name;
    size_t name_len;
    long long seq;
    char type;
};

static int aof_parse_seq(const char *text, long long *seq) {
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || n <= 0) return -1;
    *seq = n;
    return 0;
}

/* Read the file/seq/type pairs of a split line (other keys are ignored, as Redis
 * does for forward compatibility). Returns NULL or what is wrong. */
static const char *aof_read_line_fields(const struct aof_manifest_fields *fields,
                                        struct aof_manifest_line *line) {
    if (fields->count < 6 || fields->count % 2 != 0)
        return "expected 'file <name> seq <n> type <b|h|i>'";
    *line = (struct aof_manifest_line){0};
    for (int i = 0; i < fields->count; i += 2) {
        const char *key = fields->field[i], *value = fields->field[i + 1];
        if (strcasecmp(key, "file") == 0) {
            line->name = value;
            line->name_len = fields->length[i + 1];
        } else if (strcasecmp(key, "seq") == 0) {
            if (aof_parse_seq(value, &line->seq) != 0) return "seq is not a positive number";
        } else if (strcasecmp(key, "type") == 0) {
            line->type = value[0];
        }
    }
    if (line->name == NULL || line->name_len == 0) return "no file name";
    if (line->seq == 0) return "no seq";
    if (line->type == '\0') return "no type";
    if (strlen(line->name) != line->name_len || strchr(line->name, '/') != NULL ||
        strchr(line->name, '\\') != NULL)
        return "a file name must be a plain name in the manifest's directory, not a path";
    return NULL;
}

/* What the manifest said so far: its base and incr lines. */
struct aof_manifest_state {
    const char *name;
    const char *dir;
    int line_number;
    int base_found;
    struct aof_manifest_line base;
    char base_name[AOF_MANIFEST_MAX_LINE + 1];
    long long last_incr_seq;
    struct aof_file_list incr; /* owned until the end of the parse */
    char *err;
    size_t errlen;
};

static int aof_manifest_fail(struct aof_manifest_state *state, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int aof_manifest_fail(struct aof_manifest_state *state, const char *fmt, ...) {
    int n = snprintf(state->err, state->errlen, "%s:%d: ", state->name, state->line_number);
    if (n < 0 || (size_t)n >= state->errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(state->err + n, state->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static char *aof_join_path(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    if (path != NULL) snprintf(path, len, "%s/%s", dir, name);
    return path;
}

/* Take one line's file into the state: the base, an incr in sequence order, or a
 * history file (no longer part of the data set: skipped). */
static int aof_manifest_take(struct aof_manifest_state *state,
                             const struct aof_manifest_line *line) {
    switch (line->type) {
    case 'b':
        if (state->base_found) return aof_manifest_fail(state, "a second base file");
        state->base_found = 1;
        state->base = *line;
        memcpy(state->base_name, line->name, line->name_len + 1);
        return 0;
    case 'h': return 0;
    case 'i': {
        if (line->seq <= state->last_incr_seq)
            return aof_manifest_fail(state, "incr file seq %lld after seq %lld: not increasing",
                                     line->seq, state->last_incr_seq);
        state->last_incr_seq = line->seq;
        char *path = aof_join_path(state->dir, line->name);
        int rc = path == NULL ? -1 : aof_file_list_add(&state->incr, path, 'i', line->seq, 0);
        free(path);
        return rc == 0 ? 0 : aof_manifest_fail(state, "out of memory");
    }
    default:
        return aof_manifest_fail(state, "unknown file type '%c' (expected b, h or i)", line->type);
    }
}

/* One line of the manifest, without its newline. */
static int aof_manifest_line(struct aof_manifest_state *state, const char *text, size_t len) {
    if (len > 0 && text[0] == '#') return 0; /* a comment */
    if (len > AOF_MANIFEST_MAX_LINE)
        return aof_manifest_fail(state, "line longer than %d bytes", AOF_MANIFEST_MAX_LINE);
    char line[AOF_MANIFEST_MAX_LINE + 1];
    memcpy(line, text, len);
    line[len] = '\0';
    while (len > 0 && aof_is_blank(line[len - 1]))
        line[--len] = '\0';
    const char *start = line;
    while (aof_is_blank(*start))
        start++;
    if (*start == '\0') return aof_manifest_fail(state, "an empty line");
    if (memchr(line, '\0', len) != NULL) return aof_manifest_fail(state, "a NUL byte");
    struct aof_manifest_fields fields;
    if (aof_split_fields(start, &fields) != 0)
        return aof_manifest_fail(state, "unbalanced quotes or too many fields");
    struct aof_manifest_line parsed;
    const char *why = aof_read_line_fields(&fields, &parsed);
    if (why != NULL) return aof_manifest_fail(state, "%s", why);
    return aof_manifest_take(state, &parsed);
}

/* The base first, then the incr files in the order read (increasing seq). */
static int aof_manifest_emit(struct aof_manifest_state *state, struct aof_file_list *out) {
    int total = state->base_found + state->incr.count;
    int done = 0;
    if (state->base_found) {
        char *path = aof_join_path(state->dir, state->base_name);
        int rc = path == NULL ? -1 : aof_file_list_add(out, path, 'b', state->base.seq, total == 1);
        free(path);
        if (rc != 0) return aof_manifest_fail(state, "out of memory");
        done++;
    }
    for (int i = 0; i < state->incr.count; i++, done++) {
        const struct aof_file *file = &state->incr.items[i];
        if (aof_file_list_add(out, file->path, 'i', file->seq, done + 1 == total) != 0)
            return aof_manifest_fail(state, "out of memory");
    }
    return 0;
}

int aof_manifest_parse(const char *name, const char *dir, const char *text, size_t len,
                       struct aof_file_list *out, char *err, size_t errlen) {
    struct aof_manifest_state state = {.name = name, .dir = dir, .err = err, .errlen = errlen};
    int rc = 0;
    size_t pos = 0;
    while (rc == 0 && pos < len) {
        const char *newline = memchr(text + pos, '\n', len - pos);
        size_t line_len = newline != NULL ? (size_t)(newline - (text + pos)) : len - pos;
        state.line_number++;
        rc = aof_manifest_line(&state, text + pos, line_len);
        pos += line_len + 1;
    }
    if (rc == 0 && state.line_number == 0) {
        snprintf(err, errlen, "%s: an empty AOF manifest", name);
        rc = -1;
    }
    if (rc == 0) rc = aof_manifest_emit(&state, out);
    aof_file_list_free(&state.incr);
    return rc;
}

/* The whole of a small file, NUL-terminated. Returns NULL with a message. */
static char *aof_read_small_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(AOF_MANIFEST_MAX_BYTES + 1);
    size_t n = text != NULL ? fread(text, 1, AOF_MANIFEST_MAX_BYTES + 1, f) : 0;
    int failed = text == NULL || ferror(f);
    fclose(f);
    if (failed || n > AOF_MANIFEST_MAX_BYTES) {
        snprintf(err, errlen, "%s: %s", path,
                 text == NULL ? "out of memory"
                 : failed     ? "read error"
                              : "larger than 16 MiB: not an AOF manifest");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

int aof_manifest_load(const char *path, struct aof_file_list *out, char *err, size_t errlen) {
    size_t len;
    char *text = aof_read_small_file(path, &len, err, errlen);
    if (text == NULL) return -1;
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? strdup(".") : strndup(path, (size_t)(slash - path));
    if (dir != NULL && dir[0] == '\0') { /* "/appendonly.aof.manifest" */
        free(dir);
        dir = strdup("");
    }
    int rc = -1;
    if (dir == NULL)
        snprintf(err, errlen, "%s: out of memory", path);
    else
        rc = aof_manifest_parse(path, dir, text, len, out, err, errlen);
    free(dir);
    free(text);
    return rc;
}

/* ---- what a file holds ------------------------------------------------------ */

static int aof_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

enum aof_kind aof_kind_of(const char *path, const char *head, size_t len) {
    if (aof_ends_with(path, ".manifest")) return AOF_KIND_MANIFEST;
    if (len == 0) return AOF_KIND_EMPTY;
    if (len >= 5 && memcmp(head, "REDIS", 5) == 0) return AOF_KIND_RDB;
    if (len >= 5 && strncasecmp(head, "file ", 5) == 0) return AOF_KIND_MANIFEST;
    return AOF_KIND_COMMANDS;
}

int aof_file_kind(const char *path, enum aof_kind *kind, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char head[5];
    size_t got = 0;
    while (got < sizeof(head)) {
        ssize_t n = read(fd, head + got, sizeof(head) - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: offset %zu: read: %s", path, got, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fd);
    *kind = aof_kind_of(path, head, got);
    return 0;
}

int aof_expand(char *const *files, int count, struct aof_file_list *out, char *err, size_t errlen) {
    for (int i = 0; i < count; i++) {
        enum aof_kind kind;
        if (aof_file_kind(files[i], &kind, err, errlen) != 0) return -1;
        if (kind == AOF_KIND_MANIFEST) {
            if (aof_manifest_load(files[i], out, err, errlen) != 0) return -1;
        } else if (aof_file_list_add(out, files[i], 0, 0, 1) != 0) {
            snprintf(err, errlen, "%s: out of memory", files[i]);
            return -1;
        }
    }
    return 0;
}

/* ---- the command part ------------------------------------------------------- */

enum aof_scan_state {
    AOF_SCAN_COMMAND,     /* between commands: '*' starts one, '#' an annotation */
    AOF_SCAN_ANNOTATION,  /* a '#' line, up to its '\n' */
    AOF_SCAN_ARGC,        /* "<count>\r\n" after the '*' */
    AOF_SCAN_BULK,        /* the '$' of the next argument */
    AOF_SCAN_BULK_LENGTH, /* "<length>\r\n" after the '$' */
    AOF_SCAN_BULK_BODY,   /* the argument's bytes */
    AOF_SCAN_BULK_END,    /* the "\r\n" after them */
};

struct aof_commands {
    struct cmd_stream *stream; /* owned: gets each whole command, makes the entry */
    char *buf;                 /* owned: bytes fed and not scanned yet */
    size_t len, pos, cap;
    uint64_t buf_offset; /* file offset of buf[0] */
    enum aof_scan_state state;
    uint64_t command_start; /* file offset of the '*' of the command being read */
    uint64_t complete;      /* file offset after the last complete command or annotation */
    uint64_t number;        /* the count or length being read */
    int digits, saw_cr;
    uint64_t args_left, body_left;
    int end_bytes;             /* of the "\r\n" after an argument */
    struct shake_entry **held; /* owned: MULTI and the commands after it, until EXEC */
    size_t held_count, held_next, held_cap;
    int in_multi, releasing;
    uint64_t multi_offset;
    uint64_t count;
    char error[300];
    char warning[300];
};

struct aof_commands *aof_commands_new(int source, uint64_t offset) {
    struct aof_commands *commands = calloc(1, sizeof(*commands));
    if (commands == NULL) return NULL;
    commands->stream = cmd_stream_new(source, offset, 0);
    if (commands->stream == NULL) {
        free(commands);
        return NULL;
    }
    commands->buf_offset = offset;
    commands->complete = offset;
    return commands;
}

static void aof_commands_drop_held(struct aof_commands *commands) {
    for (size_t i = commands->held_next; i < commands->held_count; i++)
        shake_entry_free(commands->held[i]);
    commands->held_count = commands->held_next = 0;
}

void aof_commands_free(struct aof_commands *commands) {
    if (commands == NULL) return;
    aof_commands_drop_held(commands);
    free(commands->held);
    cmd_stream_free(commands->stream);
    free(commands->buf);
    free(commands);
}

static enum aof_status aof_commands_fail(struct aof_commands *commands, uint64_t offset,
                                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum aof_status aof_commands_fail(struct aof_commands *commands, uint64_t offset,
                                         const char *fmt, ...) {
    if (commands->error[0] != '\0') return AOF_ERR;
    int n = snprintf(commands->error, sizeof(commands->error),
                     "offset %llu: ", (unsigned long long)offset);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(commands->error + n, sizeof(commands->error) - (size_t)n, fmt, ap);
    va_end(ap);
    return AOF_ERR;
}

enum aof_status aof_commands_feed(struct aof_commands *commands, const char *buf, size_t len) {
    if (commands->pos > 0) { /* drop what was scanned */
        memmove(commands->buf, commands->buf + commands->pos, commands->len - commands->pos);
        commands->buf_offset += commands->pos;
        commands->len -= commands->pos;
        commands->pos = 0;
    }
    if (commands->len + len > commands->cap) {
        size_t cap = commands->len + len;
        char *grown = realloc(commands->buf, cap);
        if (grown == NULL)
            return aof_commands_fail(commands, commands->buf_offset, "out of memory");
        commands->buf = grown;
        commands->cap = cap;
    }
    memcpy(commands->buf + commands->len, buf, len);
    commands->len += len;
    return AOF_OK;
}

static uint64_t aof_scan_offset(const struct aof_commands *commands) {
    return commands->buf_offset + commands->pos;
}

/* One byte of "<digits>\r\n". Returns 1 when the number is complete, 0 for more,
 * -1 when the byte cannot be there. */
static int aof_scan_number(struct aof_commands *commands, char byte, uint64_t max) {
    if (commands->saw_cr) return byte == '\n' ? 1 : -1;
    if (byte == '\r') {
        commands->saw_cr = 1;
        return commands->digits > 0 ? 0 : -1;
    }
    if (byte < '0' || byte > '9') return -1;
    commands->number = commands->number * 10 + (uint64_t)(byte - '0');
    commands->digits++;
    return commands->number <= max ? 0 : -1;
}

static void aof_scan_start_number(struct aof_commands *commands, enum aof_scan_state state) {
    commands->state = state;
    commands->number = 0;
    commands->digits = 0;
    commands->saw_cr = 0;
}

/* Between commands: a command's '*', or an annotation's '#'. */
static int aof_scan_command_start(struct aof_commands *commands, char byte) {
    if (byte == '#') {
        commands->state = AOF_SCAN_ANNOTATION;
        return 0;
    }
    if (byte != '*') {
        aof_commands_fail(commands, aof_scan_offset(commands),
                          "expected a command ('*') or an annotation ('#'), found byte 0x%02x",
                          (unsigned char)byte);
        return -1;
    }
    commands->command_start = aof_scan_offset(commands);
    aof_scan_start_number(commands, AOF_SCAN_ARGC);
    return 0;
}

/* One byte of a command's framing (not of an argument's body). Returns 1 when the
 * command is complete, 0 to go on, -1 on an error. */
static int aof_scan_framing_byte(struct aof_commands *commands, char byte) {
    int rc;
    switch (commands->state) {
    case AOF_SCAN_COMMAND: return aof_scan_command_start(commands, byte);
    case AOF_SCAN_ARGC:
        rc = aof_scan_number(commands, byte, AOF_MAX_ARGS);
        if (rc < 0 || (rc == 1 && commands->number == 0)) break;
        if (rc == 1) {
            commands->args_left = commands->number;
            commands->state = AOF_SCAN_BULK;
        }
        return 0;
    case AOF_SCAN_BULK:
        if (byte != '$') break;
        aof_scan_start_number(commands, AOF_SCAN_BULK_LENGTH);
        return 0;
    case AOF_SCAN_BULK_LENGTH:
        rc = aof_scan_number(commands, byte, AOF_MAX_BULK);
        if (rc < 0) break;
        if (rc == 1) {
            commands->body_left = commands->number;
            commands->state = AOF_SCAN_BULK_BODY;
        }
        return 0;
    case AOF_SCAN_BULK_END:
        if (byte != "\r\n"[commands->end_bytes]) break;
        if (++commands->end_bytes < 2) return 0;
        commands->state = --commands->args_left > 0 ? AOF_SCAN_BULK : AOF_SCAN_COMMAND;
        return commands->state == AOF_SCAN_COMMAND;
    case AOF_SCAN_ANNOTATION:
    case AOF_SCAN_BULK_BODY: break; /* not framing bytes */
    }
    aof_commands_fail(commands, aof_scan_offset(commands),
                      "malformed command (from offset %llu): unexpected byte 0x%02x",
                      (unsigned long long)commands->command_start, (unsigned char)byte);
    return -1;
}

/* Bytes with no framing to check: an annotation's, an argument's body. Moves pos. */
static void aof_scan_skip(struct aof_commands *commands) {
    size_t avail = commands->len - commands->pos;
    if (commands->state == AOF_SCAN_ANNOTATION) {
        const char *nl = memchr(commands->buf + commands->pos, '\n', avail);
        commands->pos = nl != NULL ? (size_t)(nl - commands->buf) + 1 : commands->len;
        if (nl != NULL) {
            commands->state = AOF_SCAN_COMMAND;
            commands->complete = aof_scan_offset(commands);
        }
        return;
    }
    size_t take = commands->body_left < avail ? (size_t)commands->body_left : avail;
    commands->pos += take;
    commands->body_left -= take;
    if (commands->body_left == 0) {
        commands->state = AOF_SCAN_BULK_END;
        commands->end_bytes = 0;
    }
}

/* Scan until a command is complete (1) or the input runs out (0); -1 on an error.
 * The bytes of commands (not annotations) go to cmd_stream as they are scanned. */
static int aof_scan(struct aof_commands *commands) {
    size_t segment = commands->pos; /* first scanned byte not given to cmd_stream */
    int rc = 0;
    while (rc == 0 && commands->pos < commands->len) {
        enum aof_scan_state before = commands->state;
        if (before == AOF_SCAN_ANNOTATION || before == AOF_SCAN_BULK_BODY) {
            aof_scan_skip(commands);
        } else {
            rc = aof_scan_framing_byte(commands, commands->buf[commands->pos]);
            if (rc < 0) return -1;
            commands->pos++;
        }
        if (before == AOF_SCAN_ANNOTATION || commands->state == AOF_SCAN_ANNOTATION)
            segment = commands->pos; /* annotations are left out */
    }
    if (commands->pos > segment && cmd_stream_feed(commands->stream, commands->buf + segment,
                                                   commands->pos - segment) != CMD_STREAM_OK) {
        aof_commands_fail(commands, aof_scan_offset(commands), "out of memory");
        return -1;
    }
    if (rc == 1) commands->complete = aof_scan_offset(commands);
    return rc;
}

/* cmd_stream's "offset N: what" counts only the bytes it was given (annotations
 * left out): keep the "what" and name the file offset of the command instead. */
static const char *aof_stream_reason(const struct aof_commands *commands) {
    const char *error = cmd_stream_error(commands->stream);
    const char *colon = strncmp(error, "offset ", 7) == 0 ? strstr(error, ": ") : NULL;
    return colon != NULL ? colon + 2 : error;
}

/* The entry of the command just scanned. */
static enum aof_status aof_take_command(struct aof_commands *commands, struct shake_entry **out) {
    switch (cmd_stream_next(commands->stream, out)) {
    case CMD_STREAM_OK: return AOF_OK;
    case CMD_STREAM_ERR:
        return aof_commands_fail(commands, commands->command_start, "%s",
                                 aof_stream_reason(commands));
    case CMD_STREAM_NEED_MORE: break;
    }
    return aof_commands_fail(commands, commands->command_start,
                             "a complete command that the RESP parser did not return");
}

static int aof_is_command(const struct shake_entry *entry, const char *name) {
    return entry->argc == 1 && shake_entry_arg_is(entry, 0, name, strlen(name));
}

static int aof_hold(struct aof_commands *commands, struct shake_entry *entry) {
    if (commands->held_count == commands->held_cap) {
        size_t cap = commands->held_cap ? commands->held_cap * 2 : 16;
        struct shake_entry **grown = realloc(commands->held, cap * sizeof(*grown));
        if (grown == NULL) return -1;
        commands->held = grown;
        commands->held_cap = cap;
    }
    commands->held[commands->held_count++] = entry;
    return 0;
}

/* Redis applies a transaction from an AOF only once its EXEC is read: hold MULTI
 * and what follows until then. Returns 1 when the entry was held, 0 when it is
 * to be handed out now, -1 on an error. */
static int aof_track_transaction(struct aof_commands *commands, struct shake_entry *entry) {
    int multi = aof_is_command(entry, "multi");
    if (multi && commands->in_multi) {
        shake_entry_free(entry);
        aof_commands_fail(commands, commands->command_start, "MULTI inside a transaction");
        return -1;
    }
    if (!multi && !commands->in_multi) return 0;
    if (multi) {
        commands->in_multi = 1;
        commands->multi_offset = commands->command_start;
    }
    if (aof_hold(commands, entry) != 0) {
        shake_entry_free(entry);
        aof_commands_fail(commands, commands->command_start, "out of memory");
        return -1;
    }
    if (aof_is_command(entry, "exec")) {
        commands->in_multi = 0;
        commands->releasing = 1;
    }
    return 1;
}

/* The next held entry of a transaction whose EXEC was read. */
static int aof_release(struct aof_commands *commands, struct shake_entry **out) {
    if (!commands->releasing) return 0;
    *out = commands->held[commands->held_next++];
    if (commands->held_next == commands->held_count) {
        commands->held_next = commands->held_count = 0;
        commands->releasing = 0;
    }
    commands->count++;
    return 1;
}

enum aof_status aof_commands_next(struct aof_commands *commands, struct shake_entry **out) {
    if (commands->error[0] != '\0') return AOF_ERR;
    for (;;) {
        if (aof_release(commands, out)) return AOF_OK;
        int rc = aof_scan(commands);
        if (rc < 0) return AOF_ERR;
        if (rc == 0) return AOF_NEED_MORE;
        struct shake_entry *entry = NULL;
        if (aof_take_command(commands, &entry) != AOF_OK) return AOF_ERR;
        rc = aof_track_transaction(commands, entry);
        if (rc < 0) return AOF_ERR;
        if (rc == 0) {
            commands->count++;
            *out = entry;
            return AOF_OK;
        }
    }
}

int aof_commands_finish(struct aof_commands *commands) {
    uint64_t end = commands->buf_offset + commands->len;
    int cut = commands->state != AOF_SCAN_COMMAND && commands->state != AOF_SCAN_ANNOTATION;
    if (commands->in_multi) {
        snprintf(commands->warning, sizeof(commands->warning),
                 "offset %llu: MULTI without EXEC before the end of the file%s: the transaction "
                 "(%zu commands read) is left out; replayed up to offset %llu",
                 (unsigned long long)commands->multi_offset,
                 cut ? ", which ends in the middle of a command" : "", commands->held_count,
                 (unsigned long long)commands->multi_offset);
        aof_commands_drop_held(commands);
        commands->in_multi = 0;
        return 1;
    }
    if (!cut) return 0;
    snprintf(commands->warning, sizeof(commands->warning),
             "offset %llu: the file ends in the middle of a command: replayed up to offset %llu "
             "(the last complete command), the %llu bytes after it are left out",
             (unsigned long long)commands->complete, (unsigned long long)commands->complete,
             (unsigned long long)(end - commands->complete));
    return 1;
}

const char *aof_commands_error(const struct aof_commands *commands) {
    return commands->error;
}

const char *aof_commands_warning(const struct aof_commands *commands) {
    return commands->warning;
}

uint64_t aof_commands_offset(const struct aof_commands *commands) {
    return commands->complete;
}

uint64_t aof_commands_count(const struct aof_commands *commands) {
    return commands->count;
}
