/* common/b64.h: strict base64 (RFC 4648 §4) on OpenSSL's block codec, for SASL exchanges
 * (RFC 5034 §4): no whitespace, no line breaks, padding required. */
#ifndef POPGATE_B64_H
#define POPGATE_B64_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes needed to decode len base64 characters. */
#define B64_DECODED_MAX(len) (((len) / 4) * 3)

/* Bytes needed to encode len bytes, the terminating NUL included. */
#define B64_ENCODED_SIZE(len) (4 * (((len) + 2) / 3) + 1)

/* Decodes exactly: length a multiple of 4, only the alphabet, '=' only as 1-2 final pad.
 * Returns the decoded length (0 for empty input), or -1 (out may hold partial bytes: the
 * caller wipes it if it matters). out must hold B64_DECODED_MAX(len) bytes, else -1. */
ssize_t b64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t outsize);

/* Encodes with padding into out, which must hold B64_ENCODED_SIZE(len) bytes; writes a
 * terminating NUL and returns the length without it. */
size_t b64_encode(const uint8_t *in, size_t len, char *out);

#endif
