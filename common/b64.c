/* common/b64.c: strict base64 (RFC 4648 §4) over OpenSSL's EVP_DecodeBlock/EVP_EncodeBlock,
 * for SASL (RFC 5034 §4, RFC 4616). Not for: MIME bodies (no line breaks allowed here).
 *
 * EVP_DecodeBlock is lenient where a SASL decoder must not be: it skips leading and
 * trailing whitespace, and it decodes the padding as zero bytes that it counts in its
 * returned length. So the length, the alphabet and the place of '=' are checked here first,
 * and the padding is taken off the count afterwards. */
#include <limits.h>

#include <openssl/evp.h>

#include "b64.h"

static bool
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

	/* EVP_DecodeBlock takes an int length. */
	if (len % 4 != 0 || len > INT_MAX - 3 || B64_DECODED_MAX(len) > outsize)
		return -1;
	if (len == 0)
		return 0;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	/* Everything before the padding is the alphabet: no '=' inside, no whitespace. */
	for (size_t i = 0; i < len - pad; i++)
		if (!b64_char(in[i]))
			return -1;
	n = EVP_DecodeBlock(out, in, (int)len);
	if (n < 0 || (size_t)n != B64_DECODED_MAX(len))
		return -1;
	return (ssize_t)((size_t)n - pad);
}

size_t
b64_encode(const uint8_t *in, size_t len, char *out)
{
	/* EVP_EncodeBlock takes an int length and returns an int count. */
	if (len > (size_t)INT_MAX / 4 * 3) {
		out[0] = '\0';
		return 0;
	}
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}
