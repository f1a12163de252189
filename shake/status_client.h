/* status_client.h -- `shake status -conf FILE [--json]`: asks a running shake for
 * its status over the config's [shake] status address and prints it.
 *
 * A blocking HTTP/1.1 client is fine here: this is a command, not the job. Every
 * wait is bounded (STATUS_CLIENT_TIMEOUT_MS). The table comes from /metrics (a
 * line format, easy to read without a JSON parser); --json prints /status as is.
 */
#ifndef SHAKE_STATUS_CLIENT_H
#define SHAKE_STATUS_CLIENT_H

#include <stddef.h>
#include <stdio.h>

#include "conf/conf.h"

#define STATUS_CLIENT_TIMEOUT_MS 5000
#define STATUS_CLIENT_MAX_REPLY (16 * 1024 * 1024)

#define STATUS_EXIT_CAUGHT_UP 0
#define STATUS_EXIT_BEHIND 1
#define STATUS_EXIT_UNREACHABLE 2

/* Parse `-conf FILE [--json]` (the words after "status"): 0 with *conf_path
 * pointing into argv, or -1 with a message in `err`. */
int status_client_parse_args(int argc, char **argv, const char **conf_path, int *json, char *err,
                             size_t errlen);
/* Fetch and print. Returns STATUS_EXIT_*; on STATUS_EXIT_UNREACHABLE `err` says
 * why (nothing listens, the endpoint is off, a reply that is not shake's). */
int status_client_run(const struct conf_shake *conf, int json, FILE *out, char *err, size_t errlen);

#endif
