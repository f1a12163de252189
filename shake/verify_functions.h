/* verify_functions.h -- compares the function libraries of the source with those
 * of every target master (FUNCTION LIST WITHCODE: name and code).
 *
 * A source without FUNCTION (Redis < 7) is not compared, and says so.
 */
#ifndef SHAKE_VERIFY_FUNCTIONS_H
#define SHAKE_VERIFY_FUNCTIONS_H

#include <stddef.h>

struct client_side;

enum verify_functions_result {
    VERIFY_FUNCTIONS_EQUAL,
    VERIFY_FUNCTIONS_DIFFERENT, /* `why` names the library and the node */
    VERIFY_FUNCTIONS_SKIPPED,   /* `why` says why they were not compared */
    VERIFY_FUNCTIONS_FAILED,    /* `why` is the error */
};

/* Compare the source's first master's libraries with every target master's. */
enum verify_functions_result verify_functions_compare(struct client_side *source,
                                                      struct client_side *target, char *why,
                                                      size_t whylen);

#endif
