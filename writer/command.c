/* command.c -- the command list shared by the builders and the router. */
#include "writer/command.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "shake/entry.h"
#include "writer/resp.h"

void command_list_init(struct command_list *list) {
    list->items = NULL;
    list->count = 0;
    list->capacity = 0;
    list->slot = NULL;
}

void command_list_init_with_slot(struct command_list *list, struct command *slot) {
    command_list_init(list);
    list->slot = slot;
}

/* Make room for one more command, so that appending cannot fail halfway. */
static int command_list_reserve(struct command_list *list) {
    if (list->count < list->capacity) return 0;
    if (list->items == NULL && list->slot != NULL) {
        list->items = list->slot;
        list->capacity = 1;
        return 0;
    }
    size_t capacity = list->capacity ? list->capacity * 2 : 8;
    struct command *items;
    if (list->items != NULL && list->items == list->slot) {
        items = malloc(capacity * sizeof(*items));
        if (items != NULL) memcpy(items, list->items, list->count * sizeof(*items));
    } else {
        items = realloc(list->items, capacity * sizeof(*items));
    }
    if (items == NULL) return -1;
    list->items = items;
    list->capacity = capacity;
    return 0;
}

/* The RESP multi-bulk encoding, as redisFormatCommandArgv makes it, without its
 * printf per argument; the buffer is a value buffer (freed in bursts as replies
 * arrive, so kept for reuse rather than handed back to malloc). */
int command_list_append_argv(struct command_list *list, int argc, const char *const *argv,
                             const size_t *argv_len) {
    if (argc < 0 || command_list_reserve(list) != 0) return -1;
    size_t total = resp_array_header_size((size_t)argc);
    for (int i = 0; i < argc; i++) total += resp_bulk_size(argv_len[i]);
    size_t cap;
    char *resp = shake_value_buffer_alloc(total, &cap);
    if (resp == NULL) return -1;
    char *at = resp_put_array_header(resp, (size_t)argc);
    for (int i = 0; i < argc; i++)
        at = resp_put_bulk(at, argv[i], argv_len[i]);
    if (command_list_append_resp(list, resp, total) != 0) return -1; /* cannot fail: reserved */
    list->items[list->count - 1].cap = cap;
    return 0;
}

int command_list_append_resp(struct command_list *list, char *resp, size_t len) {
    if (command_list_reserve(list) != 0) {
        free(resp);
        return -1;
    }
    struct command *command = &list->items[list->count++];
    command->resp = resp;
    command->len = len;
    command->busykey_is_skip = 0;
    command->replies = 1;
    command->cap = 0;
    command->front = 0;
    return 0;
}

void command_free_resp(struct command *command) {
    if (command->cap != 0)
        shake_value_buffer_free(command->resp - command->front, command->cap);
    else
        free(command->resp);
    command->resp = NULL;
    command->cap = 0;
    command->front = 0;
}

void command_list_clear(struct command_list *list) {
    for (size_t i = 0; i < list->count; i++)
        command_free_resp(&list->items[i]);
    if (list->items != list->slot) free(list->items);
    command_list_init(list);
}

void command_list_reset(struct command_list *list) {
    for (size_t i = 0; i < list->count; i++)
        command_free_resp(&list->items[i]);
    list->count = 0;
}

void command_list_move(struct command_list *to, struct command_list *from) {
    assert(to->count == 0 && (from->items != from->slot || from->items == NULL));
    if (to->items != NULL && to->items != to->slot) free(to->items);
    if (from->count == 1 && to->slot != NULL) {
        /* The usual one command: into to's slot; from keeps its array for reuse. */
        to->slot[0] = from->items[0];
        to->items = to->slot;
        to->count = 1;
        to->capacity = 1;
        from->count = 0;
        return;
    }
    to->items = from->items;
    to->count = from->count;
    to->capacity = from->capacity;
    from->items = NULL;
    from->count = 0;
    from->capacity = 0;
}
