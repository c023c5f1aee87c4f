/* common/b64.h: strict base64 (RFC 4648 §4) on OpenSSL's block codec. */
#ifndef POPGATE_B64_H
#define POPGATE_B64_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to decode len base64 characters. */
#define B64_DECODED_MAX(len) (((len) / 4) * 3)

/* Decodes exactly: length a multiple of 4, only the alphabet, '=' only as 1-2 final pad.
 * Returns the decoded length, or -1 (nothing guaranteed in out). out must hold
 * B64_DECODED_MAX(len) bytes. */
ssize_t b64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t outsize);

/* Encodes; out must hold 4 * ((len + 2) / 3) + 1 bytes (NUL-terminated). Returns length. */
size_t b64_encode(const uint8_t *in, size_t len, char *out);

#endif
