/* command.h -- a list of RESP-encoded commands built for one entry.
 *
 * The builders (restore.c for KEY entries, rewrite.c for CHUNK and FUNCTION
 * entries) turn an entry into commands; the router (writer.c) decides where they
 * go. Every command built for a KEY or CHUNK entry touches only that entry's key,
 * so all of them route to the key's slot.
 *
 * Ownership: the list owns each command's bytes (a value buffer from
 * command_list_append_argv, or handed over with command_list_append_resp, released
 * with command_free_resp: free(), or the value buffers' own release).
 */
#ifndef SHAKE_WRITER_COMMAND_H
#define SHAKE_WRITER_COMMAND_H

#include <stddef.h>

struct command {
    char *resp; /* the encoded command */
    size_t len;
    int busykey_is_skip; /* a BUSYKEY error reply means "kept the target's key" */
    unsigned replies;    /* replies the server sends for it: 1, or more for a whole
                            MULTI ... EXEC sent as one command */
    size_t cap;          /* bytes of its value buffer (shake_value_buffer_alloc),
                            `front` of them before resp; 0: resp is a plain malloc */
    size_t front;
};

struct command_list {
    struct command *items;
    size_t count;
    size_t capacity;
    struct command *slot; /* room for one command inside the list's owner, or NULL:
                             the first command goes there, saving an allocation
                             per list (most entries make one command); a list
                             whose items are its slot must not be copied */
};

void command_list_init(struct command_list *list);
/* The same, with `slot` (owned by the caller, outliving the list) for the first
 * command. */
void command_list_init_with_slot(struct command_list *list, struct command *slot);
/* Encode argv as RESP (what redisFormatCommandArgv makes) and append it. Returns 0, or -1 when out
 * of memory. */
int command_list_append_argv(struct command_list *list, int argc, const char *const *argv,
                             const size_t *argv_len);
/* Append an already encoded command. The list takes ownership of `resp` (a malloc'd
 * buffer of `len` bytes) even on failure, when it frees it. Returns 0, or -1 when
 * out of memory. */
int command_list_append_resp(struct command_list *list, char *resp, size_t len);
/* Release one command's bytes (free, or back to the value buffers); resp is NULL
 * after. */
void command_free_resp(struct command *command);
/* Release every command and reset the list to empty (keeps nothing). */
void command_list_clear(struct command_list *list);
/* Release every command but keep the array, for the next commands. */
void command_list_reset(struct command_list *list);
/* Move every command of `from` to `to` (empty). One command goes into to's slot
 * when it has one, and `from` keeps its array; otherwise the array moves and
 * `from` is left empty. `from` must not use a slot of its own. */
void command_list_move(struct command_list *to, struct command_list *from);

#endif
