/* common/b64.c: strict base64 over OpenSSL's EVP_DecodeBlock/EVP_EncodeBlock.
 * EVP_DecodeBlock skips leading/trailing whitespace and counts padding as zero bytes, so
 * the alphabet and the padding are checked here first. */
#include <openssl/evp.h>

#include "b64.h"

static int
b64_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '+' || c == '/';
}

ssize_t
b64_decode(const uint8_t *in, size_t len, uint8_t *out, size_t outsize)
{
	size_t pad = 0;
	int n;

	if (len % 4 != 0 || B64_DECODED_MAX(len) > outsize || len > 0x7ffffff0)
		return -1;
	if (len == 0)
		return 0;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++)
		if (!b64_char(in[i]))
			return -1;
	n = EVP_DecodeBlock(out, in, (int)len);
	if (n < 0 || (size_t)n < pad)
		return -1;
	return (ssize_t)((size_t)n - pad);
}

size_t
b64_encode(const uint8_t *in, size_t len, char *out)
{
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}
