/* checkpoint_saver.c -- see checkpoint_saver.h.
 *
 * One mutex guards everything shared with the thread: the pending copy, the
 * generation counters and the last error. The thread saves outside the lock.
 */
#include "shake/checkpoint_saver.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct checkpoint_saver {
    char *path;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;          /* the thread: something to save, or stop */
    pthread_cond_t saved;         /* flush(): a save finished */
    struct checkpoint pending;    /* owned; meaningful when submitted > taken */
    unsigned long submitted;      /* generations */
    unsigned long taken;
    unsigned long written;
    int stop;
    int failed;                   /* an error not yet taken */
    char error[512];
};

static int checkpoint_copy(struct checkpoint *to, const struct checkpoint *from) {
    checkpoint_free(to);
    to->target_was_empty = from->target_was_empty;
    for (int i = 0; i < from->count; i++) {
        const struct checkpoint_shard *shard = &from->shards[i];
        if (checkpoint_set(to, shard->name, shard->replid, shard->offset, shard->db) != 0)
            return -1;
    }
    return 0;
}

/* The thread: save the newest pending copy, again and again, until told to stop. */
static void *checkpoint_saver_main(void *arg) {
    struct checkpoint_saver *saver = arg;
    struct checkpoint copy;
    checkpoint_init(&copy);
    pthread_mutex_lock(&saver->lock);
    for (;;) {
        while (saver->taken == saver->submitted && !saver->stop)
            pthread_cond_wait(&saver->wake, &saver->lock);
        if (saver->taken == saver->submitted) break;
        unsigned long generation = saver->submitted;
        struct checkpoint swap = copy;
        copy = saver->pending;
        saver->pending = swap;
        saver->taken = generation;
        pthread_mutex_unlock(&saver->lock);
        char err[512];
        int rc = checkpoint_save(&copy, saver->path, err, sizeof(err));
        pthread_mutex_lock(&saver->lock);
        if (rc != 0) {
            saver->failed = 1;
            snprintf(saver->error, sizeof(saver->error), "%s", err);
        }
        saver->written = generation;
        pthread_cond_broadcast(&saver->saved);
    }
    pthread_mutex_unlock(&saver->lock);
    checkpoint_free(&copy);
    return NULL;
}

struct checkpoint_saver *checkpoint_saver_new(const char *path) {
    struct checkpoint_saver *saver = calloc(1, sizeof(*saver));
    if (saver == NULL) return NULL;
    saver->path = strdup(path);
    checkpoint_init(&saver->pending);
    pthread_mutex_init(&saver->lock, NULL);
    pthread_cond_init(&saver->wake, NULL);
    pthread_cond_init(&saver->saved, NULL);
    if (saver->path == NULL ||
        pthread_create(&saver->thread, NULL, checkpoint_saver_main, saver) != 0) {
        free(saver->path);
        free(saver);
        return NULL;
    }
    return saver;
}

int checkpoint_saver_submit(struct checkpoint_saver *saver, const struct checkpoint *checkpoint) {
    pthread_mutex_lock(&saver->lock);
    int rc = checkpoint_copy(&saver->pending, checkpoint);
    if (rc == 0) {
        saver->submitted++;
        pthread_cond_signal(&saver->wake);
    }
    pthread_mutex_unlock(&saver->lock);
    return rc;
}

int checkpoint_saver_flush(struct checkpoint_saver *saver, char *err, size_t errlen) {
    pthread_mutex_lock(&saver->lock);
    unsigned long target = saver->submitted;
    while (saver->written < target) pthread_cond_wait(&saver->saved, &saver->lock);
    int rc = saver->failed ? -1 : 0;
    if (saver->failed) snprintf(err, errlen, "%s", saver->error);
    saver->failed = 0;
    pthread_mutex_unlock(&saver->lock);
    return rc;
}

int checkpoint_saver_take_error(struct checkpoint_saver *saver, char *err, size_t errlen) {
    pthread_mutex_lock(&saver->lock);
    int failed = saver->failed;
    if (failed) snprintf(err, errlen, "%s", saver->error);
    saver->failed = 0;
    pthread_mutex_unlock(&saver->lock);
    return failed;
}

void checkpoint_saver_free(struct checkpoint_saver *saver) {
    if (saver == NULL) return;
    pthread_mutex_lock(&saver->lock);
    saver->stop = 1;
    pthread_cond_signal(&saver->wake);
    pthread_mutex_unlock(&saver->lock);
    pthread_join(saver->thread, NULL);
    checkpoint_free(&saver->pending);
    pthread_mutex_destroy(&saver->lock);
    pthread_cond_destroy(&saver->wake);
    pthread_cond_destroy(&saver->saved);
    free(saver->path);
    free(saver);
}
