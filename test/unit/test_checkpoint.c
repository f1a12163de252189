/* test_checkpoint.c -- checkpoints round-trip through the file, and bad files are
 * reported with their line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shake/checkpoint.h"
#include "shake/checkpoint_saver.h"

static const char *replid_a = "0123456789abcdef0123456789abcdef01234567";
static const char *replid_b = "fedcba9876543210fedcba9876543210fedcba98";

static void temp_path(char *path, size_t len) {
    char dir[] = "/tmp/shake-checkpoint-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, len, "%s/checkpoint", dir);
}

Test(checkpoint, saved_shards_load_back_exactly) {
    char path[256], err[256] = "";
    temp_path(path, sizeof(path));
    struct checkpoint saved, loaded;
    checkpoint_init(&saved);
    checkpoint_init(&loaded);
    cr_assert_eq(checkpoint_set(&saved, "127.0.0.1:6379", replid_a, 12345, 0), 0);
    cr_assert_eq(checkpoint_set(&saved, "node-b", replid_b, 18446744073709551615ULL, 9), 0);
    cr_assert_eq(checkpoint_set(&saved, "127.0.0.1:6379", replid_b, 99, 3), 0);
    cr_assert_eq(saved.count, 2);
    saved.target_was_empty = 1;
    cr_assert_eq(checkpoint_save(&saved, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(checkpoint_load(&loaded, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(loaded.target_was_empty, 1);
    const struct checkpoint_shard *a = checkpoint_find(&loaded, "127.0.0.1:6379");
    const struct checkpoint_shard *b = checkpoint_find(&loaded, "node-b");
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_str_eq(a->replid, replid_b);
    cr_assert_eq(a->offset, 99);
    cr_assert_eq(a->db, 3);
    cr_assert_eq(b->offset, 18446744073709551615ULL);
    cr_assert_eq(b->db, 9);
    cr_assert_null(checkpoint_find(&loaded, "other"));
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_neq(access(tmp, F_OK), 0, "the temp file must be gone after the rename");
    checkpoint_free(&saved);
    checkpoint_free(&loaded);
}

Test(checkpoint, a_missing_file_is_an_empty_checkpoint) {
    struct checkpoint loaded;
    char err[256] = "";
    checkpoint_init(&loaded);
    cr_assert_eq(checkpoint_load(&loaded, "/tmp/shake-no-such-dir/checkpoint", err, sizeof(err)), 0);
    cr_assert_eq(loaded.count, 0);
}

Test(checkpoint, a_malformed_line_names_file_and_line) {
    char path[256], err[256] = "";
    temp_path(path, sizeof(path));
    FILE *file = fopen(path, "w");
    fprintf(file, "# shake checkpoint v1\nshard a %s 1 0\nshard b short 1 0\n", replid_a);
    fclose(file);
    struct checkpoint loaded;
    checkpoint_init(&loaded);
    cr_assert_eq(checkpoint_load(&loaded, path, err, sizeof(err)), -1);
    char expected[300];
    snprintf(expected, sizeof(expected), "%s:3: malformed checkpoint line", path);
    cr_assert(strstr(err, expected) != NULL, "%s", err);
    checkpoint_free(&loaded);
}

Test(checkpoint, names_with_spaces_are_refused) {
    struct checkpoint checkpoint;
    checkpoint_init(&checkpoint);
    cr_assert_eq(checkpoint_set(&checkpoint, "a b", replid_a, 1, 0), -1);
    checkpoint_free(&checkpoint);
}

Test(checkpoint, an_unwritable_directory_is_an_error) {
    struct checkpoint checkpoint;
    char err[256] = "";
    checkpoint_init(&checkpoint);
    cr_assert_eq(checkpoint_save(&checkpoint, "/nonexistent-dir/checkpoint", err, sizeof(err)), -1);
    cr_assert(strstr(err, "cannot write checkpoint") != NULL, "%s", err);
}

Test(checkpoint, the_saver_thread_writes_the_newest_copy) {
    char path[256], err[256] = "";
    temp_path(path, sizeof(path));
    struct checkpoint_saver *saver = checkpoint_saver_new(path);
    cr_assert_not_null(saver);
    struct checkpoint checkpoint, loaded;
    checkpoint_init(&checkpoint);
    checkpoint_init(&loaded);
    for (uint64_t offset = 1; offset <= 200; offset++) {
        checkpoint_set(&checkpoint, "s", replid_a, offset, 0);
        cr_assert_eq(checkpoint_saver_submit(saver, &checkpoint), 0);
    }
    cr_assert_eq(checkpoint_saver_flush(saver, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(checkpoint_load(&loaded, path, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(checkpoint_find(&loaded, "s")->offset, 200);
    checkpoint_saver_free(saver);
    checkpoint_free(&checkpoint);
    checkpoint_free(&loaded);
}

Test(checkpoint, the_saver_reports_a_failed_save) {
    char err[256] = "";
    struct checkpoint_saver *saver = checkpoint_saver_new("/nonexistent-dir/checkpoint");
    struct checkpoint checkpoint;
    checkpoint_init(&checkpoint);
    cr_assert_eq(checkpoint_saver_submit(saver, &checkpoint), 0);
    cr_assert_eq(checkpoint_saver_flush(saver, err, sizeof(err)), -1);
    cr_assert(strstr(err, "cannot write checkpoint") != NULL, "%s", err);
    cr_assert_eq(checkpoint_saver_take_error(saver, err, sizeof(err)), 0, "reported once");
    checkpoint_saver_free(saver);
}

/* --- the live file (checkpoint_live.h) ------------------------------------------ */

#include "shake/checkpoint_live.h"

static const char *no_replid = "0000000000000000000000000000000000000000";

static void live_paths(char *durable, char *live) { /* 256 and 300 bytes */
    temp_path(durable, 256);
    snprintf(live, 300, "%s.live", durable);
}

Test(checkpoint_live, a_newer_live_position_moves_the_durable_one_forward) {
    char durable[256], live_path[300], err[256] = "";
    live_paths(durable, live_path);
    struct checkpoint cp;
    checkpoint_init(&cp);
    cr_assert_eq(checkpoint_set(&cp, "slots-0-5460", replid_a, 100, 0), 0);
    cr_assert_eq(checkpoint_set(&cp, "slots-5461-10922", replid_a, 500, 0), 0);
    cr_assert_eq(checkpoint_set(&cp, "slots-10923-16383", no_replid, 0, 0), 0);
    struct checkpoint_live *live = checkpoint_live_create(live_path, 3, err, sizeof(err));
    cr_assert_not_null(live, "%s", err);
    for (uint64_t off = 101; off <= 900; off++)
        checkpoint_live_record(live, 0, "slots-0-5460", replid_b, off, 2);
    checkpoint_live_record(live, 1, "slots-5461-10922", replid_a, 400, 0); /* older: ignored */
    checkpoint_live_record(live, 2, "slots-10923-16383", replid_b, 77, 1); /* after a full sync */
    checkpoint_live_free(live);
    cr_assert_eq(checkpoint_live_apply(&cp, live_path, no_replid, err, sizeof(err)), 2, "%s", err);
    const struct checkpoint_shard *a = checkpoint_find(&cp, "slots-0-5460");
    cr_assert_str_eq(a->replid, replid_b);
    cr_assert_eq(a->offset, 900);
    cr_assert_eq(a->db, 2);
    cr_assert_eq(checkpoint_find(&cp, "slots-5461-10922")->offset, 500);
    const struct checkpoint_shard *c = checkpoint_find(&cp, "slots-10923-16383");
    cr_assert_str_eq(c->replid, replid_b);
    cr_assert_eq(c->offset, 77);
    checkpoint_free(&cp);
}

Test(checkpoint_live, a_torn_copy_falls_back_to_the_other_and_forget_clears_both) {
    char durable[256], live_path[300], err[256] = "";
    live_paths(durable, live_path);
    struct checkpoint_live *live = checkpoint_live_create(live_path, 1, err, sizeof(err));
    cr_assert_not_null(live, "%s", err);
    checkpoint_live_record(live, 0, "standalone", replid_a, 1000, 0); /* copy 0 */
    checkpoint_live_record(live, 0, "standalone", replid_a, 2000, 0); /* copy 1 */
    checkpoint_live_free(live);
    /* Damage the newest copy (the second) as a kill in the middle of a store would. */
    FILE *f = fopen(live_path, "r+b");
    cr_assert_not_null(f);
    long second = 16 + 344 + 8; /* header, first copy, then the second copy's offset field */
    cr_assert_eq(fseek(f, second, SEEK_SET), 0);
    fputc(0x55, f);
    fclose(f);
    struct checkpoint cp;
    checkpoint_init(&cp);
    cr_assert_eq(checkpoint_set(&cp, "standalone", replid_a, 10, 0), 0);
    cr_assert_eq(checkpoint_live_apply(&cp, live_path, no_replid, err, sizeof(err)), 1);
    cr_assert_eq(checkpoint_find(&cp, "standalone")->offset, 1000);
    /* A forgotten shard (a full sync starting) moves nothing. */
    live = checkpoint_live_create(live_path, 1, err, sizeof(err));
    checkpoint_live_record(live, 0, "standalone", replid_a, 5000, 0);
    checkpoint_live_forget(live, 0);
    checkpoint_live_free(live);
    cr_assert_eq(checkpoint_live_apply(&cp, live_path, no_replid, err, sizeof(err)), 0);
    cr_assert_eq(checkpoint_find(&cp, "standalone")->offset, 1000);
    checkpoint_free(&cp);
}

Test(checkpoint_live, a_missing_or_foreign_file_changes_nothing) {
    char durable[256], live_path[300], err[256] = "";
    live_paths(durable, live_path);
    struct checkpoint cp;
    checkpoint_init(&cp);
    cr_assert_eq(checkpoint_set(&cp, "standalone", replid_a, 10, 0), 0);
    cr_assert_eq(checkpoint_live_apply(&cp, live_path, no_replid, err, sizeof(err)), 0);
    FILE *f = fopen(live_path, "wb");
    fputs("not a live checkpoint file at all, just text that is long enough", f);
    fclose(f);
    cr_assert_eq(checkpoint_live_apply(&cp, live_path, no_replid, err, sizeof(err)), 0);
    cr_assert_eq(checkpoint_find(&cp, "standalone")->offset, 10);
    checkpoint_free(&cp);
}
