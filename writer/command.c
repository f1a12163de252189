/* command.c -- the command list shared by the builders and the router. */
#include "writer/command.h"

#include <hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "shake/entry.h"

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

int command_list_append_argv(struct command_list *list, int argc, const char *const *argv,
                             const size_t *argv_len) {
    if (command_list_reserve(list) != 0) return -1;
    char *resp = NULL;
    /* redisFormatCommandArgv only reads argv; its prototype lacks the const. */
    long long len = redisFormatCommandArgv(&resp, argc, (const char **)argv, argv_len);
    if (len < 0) return -1;
    return command_list_append_resp(list, resp, (size_t)len);
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
    return 0;
}

void command_free_resp(struct command *command) {
    if (command->cap != 0)
        shake_value_buffer_free(command->resp, command->cap);
    else
        free(command->resp);
    command->resp = NULL;
    command->cap = 0;
}

void command_list_clear(struct command_list *list) {
    for (size_t i = 0; i < list->count; i++)
        command_free_resp(&list->items[i]);
    if (list->items != list->slot) free(list->items);
    command_list_init(list);
}
