/* crc16.h -- CRC-16/XMODEM (poly 0x1021), the hash of Redis Cluster key slots, and
 * the slot of a key with hash tags. crc16("123456789") is 0x31C3. */
#ifndef SHAKE_CRC16_H
#define SHAKE_CRC16_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_SLOTS 16384

uint16_t crc16(const char *buf, size_t len);
/* The cluster slot of a key: CRC16 of the hash tag ({...}, first '{' and the first
 * '}' after it, non-empty) or of the whole key, modulo 16384. */
unsigned key_hash_slot(const char *key, size_t len);

#endif
