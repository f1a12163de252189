/* conf.h -- shake's configuration: the INI file's sections as structs.
 *
 * conf.c loads and validates a file (inih), expanding ${VAR} from the environment.
 * Every key is documented in docs/config.md. Nothing here talks to a server.
 *
 * Ownership: struct shake_conf owns every string in it; conf_free() releases them.
 */
#ifndef SHAKE_CONF_H
#define SHAKE_CONF_H

#include <stddef.h>

#define CONF_MAX_DB 16384
#define CONF_ERR_LEN 512

enum conf_source_type {
    CONF_SOURCE_RDB,  /* restore RDB files, then exit */
    CONF_SOURCE_SYNC, /* replicate a running source (standalone or cluster) */
    CONF_SOURCE_AOF,  /* replay AOF files (or Redis 7 manifests), then exit */
};

enum conf_on_unsupported {
    CONF_ON_UNSUPPORTED_ERROR, /* stop the sync with an error naming the command */
    CONF_ON_UNSUPPORTED_SKIP,  /* count it, log it, go on */
};

struct conf_address {
    char *host;
    int port;
};

enum conf_on_existing {
    CONF_ON_EXISTING_ERROR,   /* refuse to start when the target holds keys */
    CONF_ON_EXISTING_REPLACE, /* overwrite target keys */
    CONF_ON_EXISTING_SKIP,    /* keep target keys, count the source key as skipped */
};

enum conf_log_level {
    CONF_LOG_DEBUG,
    CONF_LOG_INFO,
    CONF_LOG_WARN,
    CONF_LOG_ERROR,
};

struct tls_context;

/* [source] / [target] tls_*: how to reach that side's nodes over TLS. */
struct conf_tls {
    int enabled;          /* tls = yes */
    char *ca_file;        /* NULL (and ca_dir NULL): the system's CAs */
    char *ca_dir;
    char *cert_file;      /* client certificate for mutual TLS; NULL: none */
    char *key_file;       /* NULL: in cert_file */
    char *server_name;    /* SNI and the name verified; NULL: each node's host */
    int insecure;         /* tls_insecure = yes: nothing is verified */
    /* Built by conf_load from the keys above once they are all read (a bad file
     * is a config error); owned. NULL when tls = no. */
    struct tls_context *context;
};

struct conf_source {
    enum conf_source_type type;
    char **files;         /* type = rdb: the RDB files; type = aof: AOF files or manifests; in order */
    int file_count;
    struct conf_address *addresses;  /* type = sync: candidate nodes, in order */
    int address_count;
    char *username;       /* NULL: none */
    char *password;       /* NULL: none */
    int connect_timeout_ms;
    struct conf_tls tls;
};

struct conf_db_map_entry {
    int from;
    int to;
};

/* [target] wait_replicas = auto: one replica on every cluster master that has some. */
#define CONF_WAIT_REPLICAS_AUTO (-1)

struct conf_target {
    char *host;           /* from address = host:port */
    int port;
    char *username;       /* NULL: none */
    char *password;       /* NULL: none */
    enum conf_on_existing on_existing;
    struct conf_db_map_entry *db_map;  /* source db -> target db */
    int db_map_count;
    size_t pipeline_max_bytes;  /* bytes of commands in flight per connection */
    size_t batch_max_items;     /* elements per rewritten command (RPUSH, HSET, ...) */
    size_t batch_max_bytes;     /* bytes per rewritten command */
    int connect_timeout_ms;
    enum conf_on_unsupported on_unsupported;
    int forward_publish;        /* replay PUBLISH on the target */
    int wait_replicas;          /* replicas that must confirm a write before it counts as
                                   acknowledged: CONF_WAIT_REPLICAS_AUTO or 0..N */
    struct conf_tls tls;
};

struct conf_shake {
    char *dir;
    enum conf_log_level log_level;
    size_t restore_max_bytes;   /* values bigger than this are streamed as commands */
    int progress;               /* -1 auto (terminal), 0 off, 1 on */
    int checkpoint_interval_ms; /* sync: how often acknowledged offsets are saved */
    int io_collect_us;          /* busy event loop: least time between two rounds of I/O */
    size_t max_buffered;        /* sync: bytes read from one source and not yet decoded */
    size_t spool_max;           /* sync: bytes of command stream parked on disk per shard
                                   while the target is behind; 0: no spool */
    char *status_host;          /* status endpoint (docs/status.md); NULL: off */
    int status_port;
    int status_explicit;        /* the key was set (a bind failure is then a warning) */
};

/* A [filter] list: comma-separated values, the key repeatable (values append). */
struct conf_list {
    char **items;
    int count;
};

/* allow_db / block_db: database numbers. */
struct conf_db_list {
    int *dbs;
    int count;
};

/* rename_key_prefix = from:to */
struct conf_rename {
    char *from;
    char *to;
};

/* [filter]: see docs/filters.md. Regexes are checked here (file:line on a bad one)
 * and compiled again by the filter. Command names are kept in lower case. */
struct conf_filter {
    struct conf_list allow_key_prefix, block_key_prefix;
    struct conf_list allow_key_suffix, block_key_suffix;
    struct conf_list allow_key, block_key;
    struct conf_list allow_key_regex, block_key_regex; /* one pattern per line */
    struct conf_db_list allow_db, block_db;
    struct conf_list allow_command, block_command;     /* "name" or "container|sub" */
    struct conf_list allow_command_group, block_command_group;
    struct conf_list allow_type, block_type;
    struct conf_rename *renames;
    int rename_count;
};

struct shake_conf {
    char *path;
    struct conf_source source;
    struct conf_target target;
    struct conf_shake shake;
    struct conf_filter filter;
    /* Lines the job logs as warnings when it starts (a password in a file others
     * can read, tls_insecure); conf.c never prints. Owned. */
    char **warnings;
    int warning_count;
};

/* Fill `conf` with every default. */
void conf_init(struct shake_conf *conf);
/* Load `path` over the defaults. Returns 0, or -1 with a one-line message naming
 * file:line and the key in `err`. */
int conf_load(struct shake_conf *conf, const char *path, char *err, size_t errlen);
/* Load from an INI text in memory (the embedded demo config, tests). `name` is used
 * in messages in place of a file name. */
int conf_load_string(struct shake_conf *conf, const char *name, const char *text, char *err,
                     size_t errlen);
/* Map a source db through db_map: returns the target db (the db itself when unmapped). */
int conf_map_db(const struct conf_target *target, int db);
int conf_db_is_mapped(const struct conf_target *target, int db);
void conf_free(struct shake_conf *conf);

#endif
