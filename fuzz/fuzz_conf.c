/* fuzz_conf.c -- libFuzzer target: an INI text through conf_load_string
 * (conf/conf.h), defaults first, then conf_free whatever the outcome, so a leak on
 * an error path shows. A failed load must say why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (text == NULL) return 0;
    if (size > 0) memcpy(text, data, size);
    text[size] = '\0';
    struct shake_conf conf;
    char err[CONF_ERR_LEN] = "";
    conf_init(&conf);
    int rc = conf_load_string(&conf, "fuzz.ini", text, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || err[0] != '\0', "conf_load_string failed without a message");
    if (rc == 0) {
        for (int db = 0; db < 4; db++)
            (void)conf_map_db(&conf.target, db);
    }
    conf_free(&conf);
    free(text);
    return 0;
}
