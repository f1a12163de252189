/* reply_spare.h -- reply objects for a connection's RESP reader that reuse one
 * object for the answer to almost every write.
 *
 * A target answers each command of a pipeline with a top-level status ("+OK") or
 * integer (":1"); hiredis' own object functions allocate and free a redisReply
 * for each, which was a tenth of shake's CPU in a live sync. Installed on a
 * redisReader, these functions hand out one spare object, kept here, for such a
 * reply whenever the previous one was given back with reply_spare_release();
 * everything else (errors, bulk strings, arrays, a second reply while the spare is
 * out) is built by hiredis' defaults as before.
 */
#ifndef SHAKE_REPLY_SPARE_H
#define SHAKE_REPLY_SPARE_H

#include <hiredis.h>

/* Status texts up to this many bytes fit the spare ("OK", "QUEUED", "PONG"). */
#define REPLY_SPARE_TEXT_MAX 31

struct reply_spare {
    redisReplyObjectFunctions functions;      /* ours, installed on the reader */
    const redisReplyObjectFunctions *hiredis; /* the reader's defaults */
    redisReply reply;
    char text[REPLY_SPARE_TEXT_MAX + 1];
    int out; /* the spare is handed out and not yet released */
};

/* Make `reader` build its replies through `spare`, which must outlive it (and
 * stay at the same address). */
void reply_spare_install(struct reply_spare *spare, redisReader *reader);
/* Give back a reply from a reader that uses `spare`: the spare is marked free,
 * any other reply is freed with freeReplyObject. NULL is ignored. */
void reply_spare_release(struct reply_spare *spare, void *reply);

#endif
