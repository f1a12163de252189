/* test_spool.c -- the on-disk byte queue: order across segments, interleaving,
 * clearing, and that read segments leave the disk. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader/spool.h"

static char dir[64];

static void make_dir(void) {
    snprintf(dir, sizeof(dir), "/tmp/shake-spool-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static int files_in_dir(void) {
    int count = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) count += strncmp(e->d_name, "spool-", 6) == 0;
    closedir(d);
    return count;
}

Test(spool, bytes_come_back_in_order_across_segments) {
    make_dir();
    char err[256];
    struct spool *spool = spool_new(dir, "0", 100);
    char in[1000], out[1000];
    for (int i = 0; i < 1000; i++) in[i] = (char)(i * 7);
    size_t written = 0, read = 0;
    /* Interleave appends of 37 bytes and reads of 23. */
    while (read < sizeof(out)) {
        if (written < sizeof(in)) {
            size_t n = sizeof(in) - written < 37 ? sizeof(in) - written : 37;
            cr_assert_eq(spool_append(spool, in + written, n, err, sizeof(err)), 0, "%s", err);
            written += n;
        }
        ssize_t got = spool_read(spool, out + read, 23, err, sizeof(err));
        cr_assert_geq(got, 0, "%s", err);
        read += (size_t)got;
        cr_assert_eq(spool_size(spool), written - read);
    }
    cr_assert(memcmp(in, out, sizeof(in)) == 0);
    cr_assert_eq(spool_read(spool, out, 10, err, sizeof(err)), 0);
    cr_assert_eq(files_in_dir(), 0, "a drained spool leaves no file");
    spool_free(spool);
    cr_assert_eq(files_in_dir(), 0);
}

Test(spool, clear_drops_everything_and_the_spool_still_works) {
    make_dir();
    char err[256], out[16];
    struct spool *spool = spool_new(dir, "1", 8);
    cr_assert_eq(spool_append(spool, "0123456789abcdef", 16, err, sizeof(err)), 0);
    cr_assert_eq(files_in_dir(), 2);
    spool_clear(spool);
    cr_assert_eq(spool_size(spool), 0);
    cr_assert_eq(files_in_dir(), 0);
    cr_assert_eq(spool_append(spool, "xyz", 3, err, sizeof(err)), 0);
    cr_assert_eq(spool_read(spool, out, sizeof(out), err, sizeof(err)), 3);
    cr_assert(memcmp(out, "xyz", 3) == 0);
    spool_free(spool);
}

Test(spool, an_unwritable_directory_is_an_error) {
    char err[256] = "";
    struct spool *spool = spool_new("/nonexistent-shake-dir", "0", 0);
    cr_assert_eq(spool_append(spool, "x", 1, err, sizeof(err)), -1);
    cr_assert(strstr(err, "/nonexistent-shake-dir/spool-0-0") != NULL, "%s", err);
    spool_free(spool);
}
