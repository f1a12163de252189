/* aof.h -- reading Redis append-only files: which files to replay, what each one
 * holds, and the command part of each.
 *
 * Owns the AOF-specific rules, taken from Redis's src/aof.c:
 *  - a Redis 7 manifest (`appendonly.aof.manifest`) names the files of one AOF:
 *    lines `file <name> seq <n> type <b|h|i>`, names quoted as sdscatrepr writes
 *    them when they need it; the base (b) is replayed first, then the incr (i)
 *    files in sequence order; history (h) files are not part of the data set;
 *  - a file that starts with "REDIS" is an RDB (a preamble or an RDB base) that
 *    commands may follow; any other file is commands only;
 *  - the command part is RESP arrays of bulk strings, with `#...` annotation lines
 *    between commands; a file cut in the middle of a command (a crash) loads up to
 *    its last complete command, and a MULTI without EXEC at the end of a file is
 *    not applied (Redis's aof-load-truncated yes).
 *
 * Must not: decode RDB bytes (rdb_decode.h does), know the writer or the target,
 * print or exit. Every error names the file and the line (manifest) or the byte
 * offset (data).
 */
#ifndef SHAKE_AOF_H
#define SHAKE_AOF_H

#include <stddef.h>
#include <stdint.h>

#include "shake/entry.h"

/* One file to replay. */
struct aof_file {
    char *path;    /* owned */
    char type;     /* 'b' base, 'i' incr (from a manifest), 0 for a file named directly */
    long long seq; /* from the manifest, 0 otherwise */
    int last;      /* the last file of its AOF: only it may end cut short */
};

/* The files to replay, in order. Owns its items. */
struct aof_file_list {
    struct aof_file *items;
    int count;
};

/* Append a file. Returns 0, or -1 when out of memory. */
int aof_file_list_add(struct aof_file_list *list, const char *path, char type, long long seq,
                      int last);
void aof_file_list_free(struct aof_file_list *list);

/* Parse the text of a manifest and append its base and incr files (paths joined
 * to `dir`) to `out`, the last one marked `last`. `name` is used in messages.
 * Returns 0, or -1 with "name:line: what is wrong" in `err`. */
int aof_manifest_parse(const char *name, const char *dir, const char *text, size_t len,
                       struct aof_file_list *out, char *err, size_t errlen);
/* Read the manifest at `path` and parse it (names relative to its directory). */
int aof_manifest_load(const char *path, struct aof_file_list *out, char *err, size_t errlen);

enum aof_kind {
    AOF_KIND_EMPTY,    /* nothing to replay */
    AOF_KIND_RDB,      /* an RDB, maybe followed by commands */
    AOF_KIND_COMMANDS, /* commands only */
    AOF_KIND_MANIFEST, /* a multi-part AOF manifest */
};

/* What a file holds, from its name and its first bytes (`head`, `len` of them; 5
 * are enough): a name ending in ".manifest" or a first line starting with "file "
 * is a manifest. */
enum aof_kind aof_kind_of(const char *path, const char *head, size_t len);
/* Read the first bytes of `path` and tell its kind. Returns 0, or -1 with a
 * message naming the file. */
int aof_file_kind(const char *path, enum aof_kind *kind, char *err, size_t errlen);

/* Expand the files of a `type = aof` source into the files to replay: a manifest
 * becomes its base and incr files, any other file stays itself. Returns 0, or -1
 * with a message naming the file (and the line for a manifest). */
int aof_expand(char *const *files, int count, struct aof_file_list *out, char *err, size_t errlen);

/* The command part of one AOF file: feed its bytes, pull CMD entries. */
enum aof_status {
    AOF_OK,        /* *out holds a CMD entry, owned by the caller */
    AOF_NEED_MORE, /* feed more bytes, or call aof_commands_finish at the end of the file */
    AOF_ERR,       /* see aof_commands_error(); the file cannot be read further */
};

struct aof_commands;

/* `offset`: the file offset of the first byte that will be fed (after an RDB
 * preamble, its length). Every file starts in db 0, as Redis loads it. */
struct aof_commands *aof_commands_new(int source, uint64_t offset);
void aof_commands_free(struct aof_commands *commands);
/* Append bytes (copied). Returns AOF_OK, or AOF_ERR when out of memory. */
enum aof_status aof_commands_feed(struct aof_commands *commands, const char *buf, size_t len);
enum aof_status aof_commands_next(struct aof_commands *commands, struct shake_entry **out);
/* No more bytes will come. Returns 0 when the file ended after a complete command
 * (or annotation), 1 when it was cut short: the bytes after the last complete
 * command, or a MULTI without EXEC, are not replayed, and aof_commands_warning()
 * says what was left out from which offset. */
int aof_commands_finish(struct aof_commands *commands);
/* "offset N: what went wrong" */
const char *aof_commands_error(const struct aof_commands *commands);
/* After aof_commands_finish returned 1: "offset N: what was left out". */
const char *aof_commands_warning(const struct aof_commands *commands);
/* The file offset just after the last complete command or annotation read. */
uint64_t aof_commands_offset(const struct aof_commands *commands);
/* CMD entries emitted so far. */
uint64_t aof_commands_count(const struct aof_commands *commands);

#endif
