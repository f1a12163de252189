/* verify_functions.c -- function libraries, source against target (see
 * verify_functions.h). Must not load or delete a library. */
#include "shake/verify_functions.h"

#include <stdio.h>
#include <string.h>

#include "shake/client.h"
#include "shake/verify_util.h"

/* FUNCTION LIST WITHCODE of one node; NULL with why (an error reply included). */
static redisReply *verify_function_list(struct client_side *side, int index, char *why,
                                        size_t whylen) {
    struct client *client = client_side_master(side, index, why, whylen);
    if (client == NULL) return NULL;
    redisReply *reply = client_command(client, why, whylen, "FUNCTION LIST WITHCODE");
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%s %s: FUNCTION LIST: %s", client_label(client),
                 client_address(client), reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* The library named like `name` in a FUNCTION LIST reply, or NULL. */
static const redisReply *verify_library(const redisReply *list, const redisReply *name) {
    for (size_t i = 0; i < list->elements; i++) {
        if (verify_reply_equal(verify_reply_field(list->element[i], "library_name"), name))
            return list->element[i];
    }
    return NULL;
}

/* Every library of `a` is in `b` with the same code, and `b` has no other. */
static int verify_libraries_match(const redisReply *a, const redisReply *b, const char *node,
                                  char *why, size_t whylen) {
    char name[160];
    for (size_t i = 0; i < a->elements; i++) {
        const redisReply *library_name = verify_reply_field(a->element[i], "library_name");
        const redisReply *other = verify_library(b, library_name);
        verify_reply_text(library_name, name, sizeof(name));
        if (other == NULL) {
            snprintf(why, whylen, "function library %s is not on target %s", name, node);
            return 0;
        }
        if (!verify_reply_equal(verify_reply_field(a->element[i], "library_code"),
                                verify_reply_field(other, "library_code"))) {
            snprintf(why, whylen, "function library %s: code differs on target %s", name, node);
            return 0;
        }
    }
    for (size_t i = 0; i < b->elements; i++) {
        const redisReply *library_name = verify_reply_field(b->element[i], "library_name");
        if (verify_library(a, library_name) != NULL) continue;
        verify_reply_text(library_name, name, sizeof(name));
        snprintf(why, whylen, "function library %s is on target %s but not on the source", name,
                 node);
        return 0;
    }
    return 1;
}

enum verify_functions_result verify_functions_compare(struct client_side *source,
                                                      struct client_side *target, char *why,
                                                      size_t whylen) {
    redisReply *wanted = verify_function_list(source, 0, why, whylen);
    if (wanted == NULL) {
        if (strstr(why, "nknown") == NULL) return VERIFY_FUNCTIONS_FAILED;
        snprintf(why, whylen, "functions not compared: the source has no FUNCTION command");
        return VERIFY_FUNCTIONS_SKIPPED;
    }
    enum verify_functions_result rc = VERIFY_FUNCTIONS_EQUAL;
    for (int i = 0; i < client_side_count(target) && rc == VERIFY_FUNCTIONS_EQUAL; i++) {
        redisReply *have = verify_function_list(target, i, why, whylen);
        if (have == NULL) {
            rc = VERIFY_FUNCTIONS_FAILED;
            break;
        }
        char node[SLOTS_HOST_MAX + 16];
        snprintf(node, sizeof(node), "%s:%d", target->map.masters[i].host,
                 target->map.masters[i].port);
        if (!verify_libraries_match(wanted, have, node, why, whylen))
            rc = VERIFY_FUNCTIONS_DIFFERENT;
        freeReplyObject(have);
    }
    freeReplyObject(wanted);
    return rc;
}
