/* target_fit.h -- what the restore and sync jobs derive from the probed target:
 * the decoder options (which values may pass raw to RESTORE, and how big) and the
 * log line that says what the target is. One place, so both jobs agree. */
#ifndef SHAKE_TARGET_FIT_H
#define SHAKE_TARGET_FIT_H

#include "conf/conf.h"
#include "reader/rdb_decode.h"
#include "writer/writer.h"

/* Fill `options` for a decoder feeding `source` into the target described by
 * `info`: raw values up to [shake] restore_max_bytes (capped below the target's
 * proto-max-bulk-len), only the types it can RESTORE, keys expired by now skipped. */
void target_fit_decoder_options(const struct shake_conf *conf,
                                const struct writer_target_info *info, int source,
                                struct rdb_decoder_options *options);
/* "target host:port: cluster, Redis 7.0.15, 3 masters, 0 keys" */
void target_fit_log(const struct shake_conf *conf, const struct writer_target_info *info);

#endif
