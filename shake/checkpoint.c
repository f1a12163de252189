/* checkpoint.c -- see checkpoint.h. */
#include "shake/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECKPOINT_HEADER "# shake checkpoint v1\n"

void checkpoint_init(struct checkpoint *checkpoint) {
    checkpoint->shards = NULL;
    checkpoint->count = 0;
    checkpoint->target_was_empty = 0;
}

void checkpoint_free(struct checkpoint *checkpoint) {
    free(checkpoint->shards);
    checkpoint_init(checkpoint);
}

const struct checkpoint_shard *checkpoint_find(const struct checkpoint *checkpoint,
                                               const char *name) {
    for (int i = 0; i < checkpoint->count; i++) {
        if (strcmp(checkpoint->shards[i].name, name) == 0) return &checkpoint->shards[i];
    }
    return NULL;
}

int checkpoint_set(struct checkpoint *checkpoint, const char *name, const char *replid,
                   uint64_t offset, int db) {
    if (strlen(name) >= CHECKPOINT_NAME_MAX || strlen(replid) > CHECKPOINT_REPLID_LEN ||
        strpbrk(name, " \t\r\n") != NULL)
        return -1;
    struct checkpoint_shard *shard = (struct checkpoint_shard *)checkpoint_find(checkpoint, name);
    if (shard == NULL) {
        struct checkpoint_shard *grown =
            realloc(checkpoint->shards, sizeof(*grown) * (size_t)(checkpoint->count + 1));
        if (grown == NULL) return -1;
        checkpoint->shards = grown;
        shard = &grown[checkpoint->count++];
        snprintf(shard->name, sizeof(shard->name), "%s", name);
    }
    snprintf(shard->replid, sizeof(shard->replid), "%s", replid);
    shard->offset = offset;
    shard->db = db;
    return 0;
}

/* Parse one "shard name replid offset db" or "target_was_empty 0|1" line. */
static int checkpoint_parse_line(struct checkpoint *checkpoint, const char *line) {
    char name[CHECKPOINT_NAME_MAX], replid[CHECKPOINT_REPLID_LEN + 1];
    unsigned long long offset;
    int db, flag;
    char extra;
    if (sscanf(line, "target_was_empty %d %c", &flag, &extra) == 1 && (flag == 0 || flag == 1)) {
        checkpoint->target_was_empty = flag;
        return 0;
    }
    if (sscanf(line, "shard %255s %40s %llu %d %c", name, replid, &offset, &db, &extra) != 4)
        return -1;
    if (strlen(replid) != CHECKPOINT_REPLID_LEN || db < 0) return -1;
    return checkpoint_set(checkpoint, name, replid, offset, db);
}

int checkpoint_load(struct checkpoint *checkpoint, const char *path, char *err, size_t errlen) {
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: cannot open checkpoint: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    int number = 0, rc = 0;
    while (fgets(line, sizeof(line), file) != NULL) {
        number++;
        if (line[0] == '#' || line[0] == '\n') continue;
        if (checkpoint_parse_line(checkpoint, line) != 0) {
            snprintf(err, errlen, "%s:%d: malformed checkpoint line (remove the file to start "
                     "with a full sync)", path, number);
            rc = -1;
            break;
        }
    }
    fclose(file);
    return rc;
}

/* fsync the directory holding `path`, so the rename itself is durable. */
static int checkpoint_sync_dir(const char *path) {
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int checkpoint_save(const struct checkpoint *checkpoint, const char *path, char *err,
                    size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *file = fopen(tmp, "w");
    if (file == NULL) goto fail;
    fputs(CHECKPOINT_HEADER, file);
    fprintf(file, "target_was_empty %d\n", checkpoint->target_was_empty);
    for (int i = 0; i < checkpoint->count; i++) {
        const struct checkpoint_shard *shard = &checkpoint->shards[i];
        fprintf(file, "shard %s %s %llu %d\n", shard->name, shard->replid,
                (unsigned long long)shard->offset, shard->db);
    }
    if (fflush(file) != 0 || fsync(fileno(file)) != 0) {
        fclose(file);
        goto fail;
    }
    if (fclose(file) != 0 || rename(tmp, path) != 0 || checkpoint_sync_dir(path) != 0) goto fail;
    return 0;
fail:
    snprintf(err, errlen, "%s: cannot write checkpoint: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
}
