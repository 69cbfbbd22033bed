/*-------------------------------------------------------------------------
 *
 * shard.c
 *	  Which shard an id or a token belongs to (scale-out, issue 15).
 *
 * Across several servers (a PL/Proxy proxy in front of N shards, each
 * running this extension), a call is routed by the id or token it names,
 * without a global look-up: the shard is carried in the value itself.
 * card.shard (postgresql.conf, 0 to 4095) numbers the server.  Shard 0
 * makes the ids and tokens of a single server (time-ordered version 7
 * UUIDs since 1.8, random version 4 ones before, "ct_..." tokens), so
 * every id made before scale-out belongs to shard 0.  Shard k > 0 makes version 8 UUIDs (RFC
 * 9562's custom version) with k in the 12 bits after the version nibble,
 * and tokens "<prefix>k.<random>" ('.' is not base64url, so no random
 * token reads as a marked one).
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"
#include "utils/uuid.h"

/* The version nibble of an id made by shard k > 0. */
#define SHARD_UUID_VERSION 0x80

int			card_shard = 0;
int			card_pan_stride = 1;

/* Stamp a new UUID (version and variant set) with this server's shard. */
void
card_shard_stamp(pg_uuid_t *uuid)
{
	if (card_shard <= 0)
		return;
	uuid->data[6] = SHARD_UUID_VERSION | ((card_shard >> 8) & 0x0f);
	uuid->data[7] = card_shard & 0xff;
}

/* The shard of an id: what card_shard_stamp wrote, or 0. */
static int
uuid_shard(const pg_uuid_t *uuid)
{
	if ((uuid->data[6] & 0xf0) != SHARD_UUID_VERSION)
		return 0;
	return ((uuid->data[6] & 0x0f) << 8) | uuid->data[7];
}

/* A token's prefix as this server writes it: "<prefix>k." on shard k > 0. */
const char *
card_shard_token_prefix(const char *prefix)
{
	return card_shard > 0 ? psprintf("%s%d.", prefix, card_shard) : prefix;
}

/*
 * The marker at p, the rest of a token after its prefix: its length ("k."
 * is digits then a dot; 0 if there is none) and, in *shard, k, or
 * CARD_SHARD_MAX + 1 for a number beyond the last shard.
 */
static size_t
token_marker(const char *p, int *shard)
{
	size_t		digits = strspn(p, "0123456789");

	*shard = 0;
	if (digits == 0 || p[digits] != '.')
		return 0;
	for (size_t i = 0; i < digits && *shard <= CARD_SHARD_MAX; i++)
		*shard = *shard * 10 + (p[i] - '0');
	return digits + 1;
}

/*
 * The shard of a token "<letters>_<k>.<random>", 0 for one without the
 * marker, -1 for a value that is no token of ours.
 */
static int
token_shard(const char *token)
{
	const char *p = token + strspn(token, "abcdefghijklmnopqrstuvwxyz");
	int			shard;

	if (p == token || *p != '_')
		return -1;
	if (token_marker(p + 1, &shard) == 0)
		return 0;				/* no marker: a shard 0 token */
	return shard <= CARD_SHARD_MAX ? shard : -1;
}

/* Where the random part of a token starts, after its prefix and marker. */
const char *
card_shard_token_payload(const char *token, size_t prefix_len)
{
	int			shard;

	return token + prefix_len + token_marker(token + prefix_len, &shard);
}

/* card.shard() RETURNS integer: this server's shard (card.shard). */
PG_FUNCTION_INFO_V1(card_shard_sql);
Datum
card_shard_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(card_shard);
}

/* card.shard_of(id uuid) RETURNS integer: the shard that made the id. */
PG_FUNCTION_INFO_V1(card_shard_of);
Datum
card_shard_of(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(uuid_shard(PG_GETARG_UUID_P(0)));
}

/*
 * card.shard_of_token(token text) RETURNS integer: the shard of a card or
 * link token; 0 for a value that is no token (its call fails there as on
 * a single server).
 */
PG_FUNCTION_INFO_V1(card_shard_of_token);
Datum
card_shard_of_token(PG_FUNCTION_ARGS)
{
	char	   *token = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			shard = token_shard(token);

	PG_RETURN_INT32(shard < 0 ? 0 : shard);
}

/* card.new_id() RETURNS uuid: a new id of this shard (table defaults). */
PG_FUNCTION_INFO_V1(card_new_id);
Datum
card_new_id(PG_FUNCTION_ARGS)
{
	return card_time_uuid();
}

/*
 * card_internal.programme_mac(config text) RETURNS bytea: the keyed MAC of
 * a programme's id and configuration (card_internal.programme_sealed_text),
 * its seal: what shard 0 vouches for and another shard adopts only with.
 */
PG_FUNCTION_INFO_V1(card_programme_mac);
Datum
card_programme_mac(PG_FUNCTION_ARGS)
{
	text	   *config = PG_GETARG_TEXT_PP(0);

	PG_RETURN_BYTEA_P(card_hmac_bytea(CARD_LABEL_PROGRAMME_SEAL, (const uint8 *) VARDATA_ANY(config),
									  VARSIZE_ANY_EXHDR(config)));
}
