/* reply_spare.c -- see reply_spare.h.
 *
 * Owns the object functions and the one reusable reply. hiredis passes the
 * reader's privdata to every task, which is how the functions find the spare.
 */
#include "shake/reply_spare.h"

#include <string.h>

/* A reply can use the spare: it is the whole reply, not an element of an array,
 * and the previous spare reply was released. */
static struct reply_spare *reply_spare_free_for(const redisReadTask *task) {
    struct reply_spare *spare = task->privdata;
    return task->parent == NULL && !spare->out ? spare : NULL;
}

static void *reply_spare_take(struct reply_spare *spare, int type) {
    memset(&spare->reply, 0, sizeof(spare->reply));
    spare->reply.type = type;
    spare->out = 1;
    return &spare->reply;
}

static void *reply_spare_string(const redisReadTask *task, char *str, size_t len) {
    struct reply_spare *spare = reply_spare_free_for(task);
    if (spare == NULL || task->type != REDIS_REPLY_STATUS || len > REPLY_SPARE_TEXT_MAX)
        return ((const struct reply_spare *)task->privdata)->hiredis->createString(task, str, len);
    redisReply *reply = reply_spare_take(spare, REDIS_REPLY_STATUS);
    memcpy(spare->text, str, len);
    spare->text[len] = '\0';
    reply->str = spare->text;
    reply->len = len;
    return reply;
}

static void *reply_spare_integer(const redisReadTask *task, long long value) {
    struct reply_spare *spare = reply_spare_free_for(task);
    if (spare == NULL)
        return ((const struct reply_spare *)task->privdata)->hiredis->createInteger(task, value);
    redisReply *reply = reply_spare_take(spare, REDIS_REPLY_INTEGER);
    reply->integer = value;
    return reply;
}

/* Arrays, nils and frees stay hiredis' own: hiredis frees only a reply it is still
 * building, an array, never the spare, which is complete the moment it is made. */
void reply_spare_install(struct reply_spare *spare, redisReader *reader) {
    spare->hiredis = reader->fn;
    spare->functions = *reader->fn;
    spare->functions.createString = reply_spare_string;
    spare->functions.createInteger = reply_spare_integer;
    spare->out = 0;
    reader->fn = &spare->functions;
    reader->privdata = spare;
}

void reply_spare_release(struct reply_spare *spare, void *reply) {
    if (reply == NULL) return;
    if (reply == &spare->reply)
        spare->out = 0;
    else
        freeReplyObject(reply);
}
