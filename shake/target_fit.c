/* target_fit.c -- see target_fit.h. */
#include "shake/target_fit.h"

#include <sys/time.h>

#include "shake/log.h"

#define TARGET_FIT_MAX_ELEMENT (4ULL * 1024 * 1024 * 1024)
#define TARGET_FIT_CHUNK_MAX_ITEMS 4096
#define TARGET_FIT_CHUNK_MAX_BYTES (4 * 1024 * 1024)
/* A RESTORE payload adds a type byte, a 10-byte footer and the RESP framing. */
#define TARGET_FIT_RESTORE_OVERHEAD 64

void target_fit_decoder_options(const struct shake_conf *conf,
                                const struct writer_target_info *info, int source,
                                struct rdb_decoder_options *options) {
    size_t raw_max = conf->shake.restore_max_bytes;
    if (info->proto_max_bulk_len > TARGET_FIT_RESTORE_OVERHEAD &&
        raw_max > info->proto_max_bulk_len - TARGET_FIT_RESTORE_OVERHEAD)
        raw_max = info->proto_max_bulk_len - TARGET_FIT_RESTORE_OVERHEAD;
    struct timeval now;
    gettimeofday(&now, NULL);
    options->source = source;
    options->raw_max = raw_max;
    options->chunk_max_bytes = TARGET_FIT_CHUNK_MAX_BYTES;
    options->chunk_max_items = TARGET_FIT_CHUNK_MAX_ITEMS;
    options->restorable_types = info->restorable_types;
    options->now_ms = (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
    options->max_element = TARGET_FIT_MAX_ELEMENT;
}

void target_fit_log(const struct shake_conf *conf, const struct writer_target_info *info) {
    log_info("target %s:%d: %s, Redis %d.%d.%d, %d master%s, %llu keys", conf->target.host,
             conf->target.port, info->is_cluster ? "cluster" : "standalone",
             info->version_major, info->version_minor, info->version_patch, info->master_count,
             info->master_count == 1 ? "" : "s", (unsigned long long)info->keys);
}
