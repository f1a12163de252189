/* test_reply_spare.c -- the reader's reply objects (shake/reply_spare.h): a
 * top-level status or integer reuses the one spare object once it is released;
 * everything else, and a reply that comes while the spare is out, is a normal
 * hiredis reply with the same content. Run under ASan in CI, which catches a
 * spare freed by mistake or a reply leaked. */
#include <criterion/criterion.h>
#include <hiredis.h>
#include <string.h>

#include "shake/reply_spare.h"

struct spare_reader {
    redisReader *reader;
    struct reply_spare spare;
};

static void spare_reader_init(struct spare_reader *r, const char *input) {
    r->reader = redisReaderCreate();
    cr_assert_not_null(r->reader);
    reply_spare_install(&r->spare, r->reader);
    cr_assert_eq(redisReaderFeed(r->reader, input, strlen(input)), REDIS_OK);
}

static redisReply *next_reply(struct spare_reader *r) {
    void *reply = NULL;
    cr_assert_eq(redisReaderGetReply(r->reader, &reply), REDIS_OK, "%s", r->reader->errstr);
    cr_assert_not_null(reply, "a whole reply is buffered");
    return reply;
}

Test(reply_spare, status_and_integer_replies_reuse_the_spare) {
    struct spare_reader r;
    spare_reader_init(&r, "+OK\r\n:42\r\n+QUEUED\r\n:-7\r\n");
    redisReply *a = next_reply(&r);
    cr_assert_eq(a, &r.spare.reply);
    cr_assert_eq(a->type, REDIS_REPLY_STATUS);
    cr_assert_eq(a->len, 2);
    cr_assert_str_eq(a->str, "OK");
    reply_spare_release(&r.spare, a);
    redisReply *b = next_reply(&r);
    cr_assert_eq(b, &r.spare.reply, "released, so used again");
    cr_assert_eq(b->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(b->integer, 42);
    cr_assert_null(b->str);
    reply_spare_release(&r.spare, b);
    redisReply *c = next_reply(&r);
    cr_assert_str_eq(c->str, "QUEUED");
    reply_spare_release(&r.spare, c);
    redisReply *d = next_reply(&r);
    cr_assert_eq(d->integer, -7);
    reply_spare_release(&r.spare, d);
    redisReaderFree(r.reader);
}

Test(reply_spare, a_reply_while_the_spare_is_out_is_allocated) {
    struct spare_reader r;
    spare_reader_init(&r, "+OK\r\n:5\r\n+PONG\r\n");
    redisReply *held = next_reply(&r);
    redisReply *second = next_reply(&r);
    redisReply *third = next_reply(&r);
    cr_assert_eq(held, &r.spare.reply);
    cr_assert_neq(second, &r.spare.reply);
    cr_assert_neq(third, &r.spare.reply);
    cr_assert_eq(second->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(second->integer, 5);
    cr_assert_str_eq(third->str, "PONG");
    cr_assert_str_eq(held->str, "OK", "the spare keeps its reply while it is out");
    reply_spare_release(&r.spare, second);
    reply_spare_release(&r.spare, third);
    reply_spare_release(&r.spare, held);
    reply_spare_release(&r.spare, NULL);
    redisReaderFree(r.reader);
}

Test(reply_spare, errors_strings_arrays_and_long_statuses_are_hiredis_replies) {
    struct spare_reader r;
    char long_status[REPLY_SPARE_TEXT_MAX + 2];
    memset(long_status, 'x', sizeof(long_status) - 1);
    long_status[sizeof(long_status) - 1] = '\0';
    char input[256];
    snprintf(input, sizeof(input),
             "-MOVED 3999 127.0.0.1:7001\r\n$5\r\nhello\r\n*3\r\n:1\r\n+OK\r\n$-1\r\n$-1\r\n+%s\r\n",
             long_status);
    spare_reader_init(&r, input);
    redisReply *err = next_reply(&r);
    cr_assert_neq(err, &r.spare.reply);
    cr_assert_eq(err->type, REDIS_REPLY_ERROR);
    cr_assert_str_eq(err->str, "MOVED 3999 127.0.0.1:7001");
    redisReply *bulk = next_reply(&r);
    cr_assert_neq(bulk, &r.spare.reply);
    cr_assert_eq(bulk->type, REDIS_REPLY_STRING);
    cr_assert_str_eq(bulk->str, "hello");
    redisReply *array = next_reply(&r);
    cr_assert_neq(array, &r.spare.reply);
    cr_assert_eq(array->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(array->elements, 3);
    cr_assert_eq(array->element[0]->type, REDIS_REPLY_INTEGER, "elements are never the spare");
    cr_assert_neq(array->element[0], &r.spare.reply);
    cr_assert_eq(array->element[0]->integer, 1);
    cr_assert_neq(array->element[1], &r.spare.reply);
    cr_assert_str_eq(array->element[1]->str, "OK");
    cr_assert_eq(array->element[2]->type, REDIS_REPLY_NIL);
    redisReply *nil = next_reply(&r);
    cr_assert_eq(nil->type, REDIS_REPLY_NIL);
    redisReply *status = next_reply(&r);
    cr_assert_neq(status, &r.spare.reply, "too long for the spare");
    cr_assert_str_eq(status->str, long_status);
    reply_spare_release(&r.spare, err);
    reply_spare_release(&r.spare, bulk);
    reply_spare_release(&r.spare, array);
    reply_spare_release(&r.spare, nil);
    reply_spare_release(&r.spare, status);
    cr_assert_eq(r.spare.out, 0, "the spare was never handed out");
    redisReaderFree(r.reader);
}

Test(reply_spare, a_half_read_array_is_freed_with_the_reader) {
    struct spare_reader r;
    spare_reader_init(&r, "*3\r\n:1\r\n+OK\r\n");
    void *reply = NULL;
    cr_assert_eq(redisReaderGetReply(r.reader, &reply), REDIS_OK);
    cr_assert_null(reply, "the array is not whole yet");
    redisReaderFree(r.reader); /* frees the half-built array (ASan checks) */
}
