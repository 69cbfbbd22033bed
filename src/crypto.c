/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  OpenSSL primitives: randomness, keyed hashes, AES-256-GCM, tokens.
 *
 * Every OpenSSL handle is freed before any error is raised, and buffers
 * that held secrets are wiped with explicit_bzero.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "utils/timestamp.h"

/* Report an OpenSSL failure with its first queued reason; empty the queue. */
static void
openssl_error(const char *what)
{
	unsigned long code = ERR_get_error();
	const char *reason = code ? ERR_reason_error_string(code) : NULL;

	ERR_clear_error();
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("OpenSSL failure in %s", what),
			 errdetail("%s", reason ? reason : "no reason given")));
}

/* Fill buf with bytes from OpenSSL's CSPRNG. */
void
card_random_bytes(uint8 *buf, size_t len)
{
	if (RAND_bytes(buf, (int) len) != 1)
		openssl_error("RAND_bytes");
}

/* HMAC-SHA-256 under the MAC key of label || 0x00 || data. */
void
card_hmac(const char *label, const uint8 *data, size_t len, uint8 *out)
{
	const uint8 *key = card_mac_key();
	size_t		labellen = strlen(label);
	size_t		msglen = labellen + 1 + len;
	uint8	   *msg = palloc(msglen);
	unsigned int outlen = 0;
	bool		ok;

	memcpy(msg, label, labellen);
	msg[labellen] = 0;
	memcpy(msg + labellen + 1, data, len);
	ok = HMAC(EVP_sha256(), key, CARD_KEY_LEN, msg, msglen, out, &outlen) != NULL
		&& outlen == CARD_MAC_LEN;
	explicit_bzero(msg, msglen);
	pfree(msg);
	if (!ok)
		openssl_error("HMAC");
}

/* card_hmac as a bytea, for storing fingerprints and hashes. */
bytea *
card_hmac_bytea(const char *label, const uint8 *data, size_t len)
{
	bytea	   *result = palloc(VARHDRSZ + CARD_MAC_LEN);

	SET_VARSIZE(result, VARHDRSZ + CARD_MAC_LEN);
	card_hmac(label, data, len, (uint8 *) VARDATA(result));
	return result;
}

/*
 * Seal plaintext with AES-256-GCM under the given key version, binding it
 * to the card id as associated data.  Layout: IV || ciphertext || tag.
 */
bytea *
card_encrypt(int key_version, const pg_uuid_t *card_id,
			 const char *plaintext, size_t len)
{
	const uint8 *key = card_enc_key(key_version);
	size_t		total = CARD_GCM_IV_LEN + len + CARD_GCM_TAG_LEN;
	bytea	   *sealed = palloc(VARHDRSZ + total);
	uint8	   *iv = (uint8 *) VARDATA(sealed);
	uint8	   *ct = iv + CARD_GCM_IV_LEN;
	uint8	   *tag = ct + len;
	EVP_CIPHER_CTX *ctx;
	int			outl = 0;
	int			finl = 0;
	bool		ok;

	SET_VARSIZE(sealed, VARHDRSZ + total);
	card_random_bytes(iv, CARD_GCM_IV_LEN);

	ctx = EVP_CIPHER_CTX_new();
	ok = ctx != NULL
		&& EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) == 1
		&& EVP_EncryptUpdate(ctx, NULL, &outl, card_id->data, UUID_LEN) == 1
		&& EVP_EncryptUpdate(ctx, ct, &outl, (const uint8 *) plaintext, (int) len) == 1
		&& EVP_EncryptFinal_ex(ctx, ct + outl, &finl) == 1
		&& EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CARD_GCM_TAG_LEN, tag) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		openssl_error("AES-256-GCM encryption");
	return sealed;
}

/*
 * Open a value sealed by card_encrypt.  Returns a palloc'd NUL-terminated
 * plaintext that the caller must wipe; raises an error if the value was
 * altered, belongs to another card or was sealed under another key.
 */
char *
card_decrypt(int key_version, const pg_uuid_t *card_id, const bytea *sealed,
			 size_t *len)
{
	const uint8 *key = card_enc_key(key_version);
	size_t		total = VARSIZE_ANY_EXHDR(sealed);
	const uint8 *iv = (const uint8 *) VARDATA_ANY(sealed);
	const uint8 *ct = iv + CARD_GCM_IV_LEN;
	size_t		ctlen;
	char	   *plain;
	EVP_CIPHER_CTX *ctx;
	int			outl = 0;
	int			finl = 0;
	bool		ok;

	if (total < CARD_GCM_IV_LEN + CARD_GCM_TAG_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("encrypted value is too short")));
	ctlen = total - CARD_GCM_IV_LEN - CARD_GCM_TAG_LEN;
	plain = palloc0(ctlen + 1);

	ctx = EVP_CIPHER_CTX_new();
	ok = ctx != NULL
		&& EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) == 1
		&& EVP_DecryptUpdate(ctx, NULL, &outl, card_id->data, UUID_LEN) == 1
		&& EVP_DecryptUpdate(ctx, (uint8 *) plain, &outl, ct, (int) ctlen) == 1
		&& EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CARD_GCM_TAG_LEN,
							   (void *) (ct + ctlen)) == 1
		&& EVP_DecryptFinal_ex(ctx, (uint8 *) plain + outl, &finl) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
	{
		explicit_bzero(plain, ctlen + 1);
		pfree(plain);
		ERR_clear_error();
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("encrypted value failed authentication"),
				 errdetail("The value was altered, belongs to another card, or was sealed under another key of version %d.", key_version)));
	}
	*len = ctlen;
	return plain;
}

/*
 * A random URL-safe token: prefix, this server's shard marker (shard.c;
 * none on shard 0), then nbytes of CSPRNG output in unpadded base64url.
 * It carries no information about the card.
 */
char *
card_random_token(const char *prefix, int nbytes)
{
	uint8		raw[64];
	char		b64[4 * (64 / 3) + 8];
	const char *marked = card_shard_token_prefix(prefix);
	size_t		plen = strlen(marked);
	int			n;
	char	   *result;

	Assert(nbytes > 0 && nbytes <= (int) sizeof(raw));
	card_random_bytes(raw, nbytes);
	n = EVP_EncodeBlock((unsigned char *) b64, raw, nbytes);
	explicit_bzero(raw, sizeof(raw));
	while (n > 0 && b64[n - 1] == '=')
		n--;
	result = palloc(plen + n + 1);
	memcpy(result, marked, plen);
	for (int i = 0; i < n; i++)
		result[plen + i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	result[plen + n] = '\0';
	explicit_bzero(b64, sizeof(b64));
	return result;
}

/*
 * A time-ordered (version 7) UUID: 48 bits of Unix time in milliseconds,
 * then 74 random bits (62 on a shard k > 0, which stamps its number).
 * Every id the extension makes is one: rows keyed by it are appended at
 * the right edge of their primary key index and of every index that leads
 * with it, instead of at a random leaf page of each (a random id costs
 * each insert a leaf page read and, after a checkpoint, a full-page image
 * in WAL per index once the indexes outgrow the cache).  palloc'd in the
 * current memory context: a Datum must never point into a stack frame
 * that ends before the Datum is used (card_pin_check once returned one).
 */
Datum
card_time_uuid(void)
{
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));
	uint64		ms = (uint64) (GetCurrentTimestamp() / 1000 + (uint64)
							   (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000);

	card_random_bytes(uuid->data + 6, UUID_LEN - 6);
	for (int i = 0; i < 6; i++)
		uuid->data[i] = (uint8) (ms >> (8 * (5 - i)));
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x70;	/* version 7 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	card_shard_stamp(uuid);
	return UUIDPGetDatum(uuid);
}
