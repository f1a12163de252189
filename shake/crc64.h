/* crc64.h -- CRC-64/Jones (reflected, poly 0xad93d23594c935a9, init 0, no xorout),
 * the checksum of RDB files and DUMP payloads. crc64(0, "123456789", 9) is
 * 0xe9c6d914c4b8d9ca. Pass the previous result as `crc` to checksum in pieces. */
#ifndef SHAKE_CRC64_H
#define SHAKE_CRC64_H

#include <stddef.h>
#include <stdint.h>

uint64_t crc64(uint64_t crc, const void *buf, size_t len);

/* The implementations behind crc64(), for tests and benchmarks: slicing-by-8
 * tables (portable), carry-less multiplication folding (x86-64 with PCLMULQDQ),
 * and the same 512 bits wide (AVX-512 with VPCLMULQDQ). Each falls back to the
 * previous one when the CPU lacks what it needs, which the *_available()
 * functions tell. All give crc64()'s result for any input. */
uint64_t crc64_slice8(uint64_t crc, const void *buf, size_t len);
uint64_t crc64_clmul(uint64_t crc, const void *buf, size_t len);
uint64_t crc64_vpclmul(uint64_t crc, const void *buf, size_t len);
int crc64_clmul_available(void);
int crc64_vpclmul_available(void);

#endif
