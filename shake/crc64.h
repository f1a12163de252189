/* crc64.h -- CRC-64/Jones (reflected, poly 0xad93d23594c935a9, init 0, no xorout),
 * the checksum of RDB files and DUMP payloads. crc64(0, "123456789", 9) is
 * 0xe9c6d914c4b8d9ca. Pass the previous result as `crc` to checksum in pieces. */
#ifndef SHAKE_CRC64_H
#define SHAKE_CRC64_H

#include <stddef.h>
#include <stdint.h>

uint64_t crc64(uint64_t crc, const void *buf, size_t len);

#endif
