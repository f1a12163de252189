/* rdb_types.h -- the constants of the RDB file format, named after Redis's and
 * Valkey's src/rdb.h: length encodings, string encodings, object types, opcodes,
 * module value opcodes, and the few constants of the inner encodings (quicklist
 * containers, stream entry flags, hash TTL sentinels) the decoder needs.
 *
 * Owns no code. Values are on-disk facts: they never change.
 */
#ifndef SHAKE_RDB_TYPES_H
#define SHAKE_RDB_TYPES_H

#include <stdint.h>

/* Header: "REDIS" + 4 digits, or "VALKEY" + 3 digits (Valkey 9+). */
#define RDB_MAGIC_REDIS "REDIS"
#define RDB_MAGIC_VALKEY "VALKEY"
#define RDB_HEADER_LEN 9

/* Highest version written by Redis (7.4 .. 8.x) that we read. */
#define RDB_VERSION_REDIS_MAX 12
/* Valkey: 11 is the last shared version, 12..79 are "foreign" (non-OSS Redis),
 * 80 is Valkey 9.0 (VALKEY080), 81 is Valkey 9.2. */
#define RDB_FOREIGN_VERSION_MIN 12
#define RDB_FOREIGN_VERSION_MAX 79
#define RDB_VERSION_VALKEY_MIN 80
#define RDB_VERSION_VALKEY_MAX 81

/* The checksum trailer exists from version 5 on. */
#define RDB_VERSION_CHECKSUM 5

/* Length encodings: the two top bits of the first byte. */
#define RDB_6BITLEN 0
#define RDB_14BITLEN 1
#define RDB_32BITLEN 0x80
#define RDB_64BITLEN 0x81
#define RDB_ENCVAL 3

/* Special string encodings (RDB_ENCVAL + these six bits). */
#define RDB_ENC_INT8 0
#define RDB_ENC_INT16 1
#define RDB_ENC_INT32 2
#define RDB_ENC_LZF 3

/* Object types. */
#define RDB_TYPE_STRING 0
#define RDB_TYPE_LIST 1
#define RDB_TYPE_SET 2
#define RDB_TYPE_ZSET 3
#define RDB_TYPE_HASH 4
#define RDB_TYPE_ZSET_2 5
#define RDB_TYPE_MODULE_PRE_GA 6
#define RDB_TYPE_MODULE_2 7
#define RDB_TYPE_HASH_ZIPMAP 9
#define RDB_TYPE_LIST_ZIPLIST 10
#define RDB_TYPE_SET_INTSET 11
#define RDB_TYPE_ZSET_ZIPLIST 12
#define RDB_TYPE_HASH_ZIPLIST 13
#define RDB_TYPE_LIST_QUICKLIST 14
#define RDB_TYPE_STREAM_LISTPACKS 15
#define RDB_TYPE_HASH_LISTPACK 16
#define RDB_TYPE_ZSET_LISTPACK 17
#define RDB_TYPE_LIST_QUICKLIST_2 18
#define RDB_TYPE_STREAM_LISTPACKS_2 19
#define RDB_TYPE_SET_LISTPACK 20
#define RDB_TYPE_STREAM_LISTPACKS_3 21
/* Redis 7.4+ (REDIS magic): hash field expiration. */
#define RDB_TYPE_HASH_METADATA_PRE_GA 22
#define RDB_TYPE_HASH_LISTPACK_EX_PRE_GA 23
#define RDB_TYPE_HASH_METADATA 24
#define RDB_TYPE_HASH_LISTPACK_EX 25
/* Valkey 9+ (VALKEY magic): the same numbers mean something else. */
#define RDB_TYPE_VALKEY_HASH_2 22
#define RDB_TYPE_VALKEY_PATH_HASH 23

/* Opcodes (they grow down from 255). */
#define RDB_OPCODE_VALKEY_UPDATE 242      /* Valkey: inline command of a forkless save */
#define RDB_OPCODE_VALKEY_SLOT_IMPORT 243 /* Valkey 9: slot import state */
#define RDB_OPCODE_SLOT_INFO 244
#define RDB_OPCODE_FUNCTION2 245
#define RDB_OPCODE_FUNCTION_PRE_GA 246
#define RDB_OPCODE_MODULE_AUX 247
#define RDB_OPCODE_IDLE 248
#define RDB_OPCODE_FREQ 249
#define RDB_OPCODE_AUX 250
#define RDB_OPCODE_RESIZEDB 251
#define RDB_OPCODE_EXPIRETIME_MS 252
#define RDB_OPCODE_EXPIRETIME 253
#define RDB_OPCODE_SELECTDB 254
#define RDB_OPCODE_EOF 255

/* Module serialized value opcodes. */
#define RDB_MODULE_OPCODE_EOF 0
#define RDB_MODULE_OPCODE_SINT 1
#define RDB_MODULE_OPCODE_UINT 2
#define RDB_MODULE_OPCODE_FLOAT 3
#define RDB_MODULE_OPCODE_DOUBLE 4
#define RDB_MODULE_OPCODE_STRING 5

/* Text-encoded doubles (RDB_TYPE_ZSET): a length byte, or one of these. */
#define RDB_DOUBLE_NAN 253
#define RDB_DOUBLE_POS_INF 254
#define RDB_DOUBLE_NEG_INF 255

/* Quicklist 2 node containers. */
#define QUICKLIST_NODE_CONTAINER_PLAIN 1
#define QUICKLIST_NODE_CONTAINER_PACKED 2

/* Stream listpack entry flags (t_stream.c). */
#define STREAM_ITEM_FLAG_NONE 0
#define STREAM_ITEM_FLAG_DELETED (1 << 0)
#define STREAM_ITEM_FLAG_SAMEFIELDS (1 << 1)
/* A stream ID on disk: 64-bit ms then 64-bit seq, both big endian. */
#define RDB_STREAM_ID_LEN 16

/* Hash field TTLs: 0 in a HASH_LISTPACK_EX listpack means "no TTL"; absolute
 * times above EB_EXPIRE_TIME_MAX are invalid. */
#define HASH_LP_NO_TTL 0
#define EB_EXPIRE_TIME_MAX ((uint64_t)0x0000FFFFFFFFFFFF)

/* Sizes of empty packed blobs: header + terminator, no entries. */
#define RDB_LISTPACK_EMPTY_LEN 7
#define RDB_ZIPLIST_EMPTY_LEN 11
#define RDB_INTSET_EMPTY_LEN 8
#define RDB_ZIPMAP_EMPTY_LEN 2

#endif
