/*-------------------------------------------------------------------------
 *
 * pan.c
 *	  Primary account numbers: generation, Luhn check, and a check of a
 *	  stored PAN that reveals nothing.
 *
 * A PAN is the programme's BIN, then digits drawn uniformly from OpenSSL's
 * CSPRNG (rejection sampling, so no digit is likelier than another), then
 * the Luhn check digit.  PAN buffers are wiped as soon as they are used.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/* Read the CARD_PAN_LENGTH_COLUMNS of the first result row. */
void
card_pan_length_read(int first_column, CardPanLength *out)
{
	out->hint = card_spi_text(0, first_column);
	out->programme_name = out->brand = NULL;
	if (out->hint != NULL)
	{
		out->programme_name = card_spi_text(0, first_column + 1);
		out->brand = card_spi_text(0, first_column + 2);
	}
}

/*
 * Whether a brand issues a PAN length, as card.brand_pan_lengths says, kept
 * per backend for the few brands and lengths there are: the function is
 * immutable, and any change to a function (an update script replacing it)
 * forgets them all.
 */
#define PAN_RULES_KEPT 16

typedef struct PanRule
{
	char		brand[NAMEDATALEN];
	int			pan_length;
	char	   *hint;			/* in TopMemoryContext; NULL: issued */
} PanRule;

static PanRule pan_rules[PAN_RULES_KEPT];
static int	pan_rules_kept = 0;
static bool pan_rules_callback = false;

static void
forget_pan_rules(Datum arg, int cacheid, uint32 hashvalue)
{
	for (int i = 0; i < pan_rules_kept; i++)
		if (pan_rules[i].hint)
			pfree(pan_rules[i].hint);
	pan_rules_kept = 0;
}

static CardPlan pan_rule_hint = {
	NULL,
	"SELECT CASE WHEN NOT $2 = ANY (card.brand_pan_lengths($1))"
	" THEN card.brand_pan_lengths_hint($1) END",
	2, {TEXTOID, INT4OID}
};

/*
 * The same as card_pan_length_read, for a programme read by its key
 * (keyread.c) instead of joined: its name, brand and PAN length.  The
 * caller is connected to SPI.
 */
void
card_pan_length_judge(const char *programme_name, const char *brand, int pan_length,
					  CardPanLength *out)
{
	const char *hint = NULL;
	int			i;

	for (i = 0; i < pan_rules_kept; i++)
		if (pan_rules[i].pan_length == pan_length && strcmp(pan_rules[i].brand, brand) == 0)
			break;
	if (i < pan_rules_kept)
		hint = pan_rules[i].hint;
	else
	{
		Datum		values[2] = {CStringGetTextDatum(brand), Int32GetDatum(pan_length)};

		if (card_exec(&pan_rule_hint, values, NULL, true, 1) != 1)
			elog(ERROR, "the PAN length rule of brand %s returned no row", brand);
		hint = card_spi_text(0, 1);
		if (!pan_rules_callback)
		{
			CacheRegisterSyscacheCallback(PROCOID, forget_pan_rules, (Datum) 0);
			pan_rules_callback = true;
		}
		if (pan_rules_kept < PAN_RULES_KEPT && strlen(brand) < NAMEDATALEN)
		{
			PanRule    *rule = &pan_rules[pan_rules_kept];

			strlcpy(rule->brand, brand, NAMEDATALEN);
			rule->pan_length = pan_length;
			rule->hint = hint ? MemoryContextStrdup(TopMemoryContext, hint) : NULL;
			pan_rules_kept++;
		}
	}
	out->hint = hint ? pstrdup(hint) : NULL;
	out->programme_name = hint ? pstrdup(programme_name) : NULL;
	out->brand = hint ? pstrdup(brand) : NULL;
}

/* 55000 for a new PAN under a programme whose brand does not issue its length. */
void
card_pan_length_refuse(const CardPanLength *length, Datum programme_id, int pan_length)
{
	if (length->hint != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("programme \"%s\" (%s) orders no new cards: its pan_length %d is not one %s issues",
						length->programme_name, card_uuid_string(programme_id),
						pan_length, length->brand),
				 errdetail("The programme dates from before version 1.2; the cards it holds keep working."),
				 errhint("%s Change the programme's pan_length to one of them (as the extension's owner: UPDATE card.programme).",
						 length->hint)));
}

/* Luhn check digit for the payload digits[0..len-1]. */
static int
luhn_check_digit(const char *digits, size_t len)
{
	int			sum = 0;

	/* The check digit will sit to the right, so the last payload digit doubles. */
	for (size_t i = 0; i < len; i++)
	{
		int			d = digits[len - 1 - i] - '0';

		if (i % 2 == 0)
		{
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	return (10 - sum % 10) % 10;
}

/* True if the digit string passes the Luhn check. */
static bool
card_luhn_valid(const char *digits, size_t len)
{
	if (len < 2 || strspn(digits, "0123456789") < len)
		return false;
	return luhn_check_digit(digits, len - 1) == digits[len - 1] - '0';
}

/* A uniform random number below bound (> 0). */
static uint64
random_below(uint64 bound)
{
	/* Draws at or above the last whole multiple of bound would favour the low values. */
	uint64		limit = PG_UINT64_MAX - PG_UINT64_MAX % bound;
	uint64		draw;
	uint64		result;

	do
		card_random_bytes((uint8 *) &draw, sizeof(draw));
	while (draw >= limit);
	result = draw % bound;
	explicit_bzero(&draw, sizeof(draw));
	return result;
}

/*
 * Write a new PAN of pan_length digits (NUL-terminated) into pan: the BIN,
 * account digits at random, the Luhn check digit.  Across shards
 * (card.pan_stride > 1) shard k draws only account numbers that leave k
 * when divided by the stride: the shards' PANs are disjoint sets, so each
 * shard's unique index on the fingerprint keeps every PAN unique without a
 * look-up elsewhere.
 */
static void
pan_generate(const char *bin, int pan_length, char *pan)
{
	int			binlen = (int) strlen(bin);
	int			digits = pan_length - binlen - 1;
	uint64		space = 1;
	uint64		account;

	if (card_shard >= card_pan_stride)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("card.shard %d needs a card.pan_stride above it (it is %d)",
						card_shard, card_pan_stride),
				 errhint("Set card.pan_stride in postgresql.conf, the same on every shard.")));
	for (int i = 0; i < digits; i++)
		space *= 10;			/* at most 10^12: a 19-digit PAN, 6-digit BIN */
	account = random_below((space - 1 - card_shard) / card_pan_stride + 1) * card_pan_stride
		+ card_shard;
	memcpy(pan, bin, binlen);
	for (int i = pan_length - 2; i >= binlen; i--)
	{
		pan[i] = '0' + account % 10;
		account /= 10;
	}
	pan[pan_length - 1] = '0' + luhn_check_digit(pan, pan_length - 1);
	pan[pan_length] = '\0';
	explicit_bzero(&account, sizeof(account));
}

/*
 * Issue a new PAN under a programme's BIN and return only what is stored of
 * it: last4, the PAN sealed for card_id under key_version, and its keyed
 * fingerprint.  The clear PAN stays on this function's stack and is wiped
 * however the function ends.
 */
void
card_pan_issue(const char *bin, int pan_length, int key_version,
			   const pg_uuid_t *card_id, CardStoredPan *out)
{
	char		pan[CARD_PAN_MAX + 1];

	if (pan_length > CARD_PAN_MAX || (int) strlen(bin) + 5 > pan_length)
		elog(ERROR, "PAN length %d does not fit BIN of %d digits",
			 pan_length, (int) strlen(bin));
	PG_TRY();
	{
		pan_generate(bin, pan_length, pan);
		out->last4 = pstrdup(pan + pan_length - 4);
		out->sealed = card_encrypt(key_version, card_id, pan, pan_length);
		out->fingerprint = card_hmac_bytea(CARD_LABEL_PAN_FINGERPRINT,
										   (uint8 *) pan, pan_length);
	}
	PG_FINALLY();
	{
		explicit_bzero(pan, sizeof(pan));
	}
	PG_END_TRY();
}

/*
 * The PAN sealed for from_card under from_version, sealed again for
 * to_card under to_version: a reissue keeps its PAN under a new card id,
 * a key rotation under a new key.  The clear PAN is wiped however it ends.
 */
bytea *
card_pan_reseal(int from_version, const pg_uuid_t *from_card, const bytea *sealed,
				int to_version, const pg_uuid_t *to_card)
{
	size_t		len;
	char	   *pan = card_decrypt(from_version, from_card, sealed, &len);
	bytea	   *volatile result = NULL;

	PG_TRY();
	{
		result = card_encrypt(to_version, to_card, pan, len);
	}
	PG_FINALLY();
	{
		explicit_bzero(pan, len);
	}
	PG_END_TRY();
	return result;
}

/*
 * card.pan_check(card_id uuid) RETURNS TABLE(pan_length int, luhn_valid
 *	 boolean, bin_matches boolean, last4_matches boolean, fingerprint_matches
 *	 boolean)
 *
 * Decrypts the stored PAN and reports facts about it, never the PAN: an
 * integrity check for operators and tests.
 */
CARD_ENTRY_POINT(card_pan_check)
{
	enum PanColumn
	{
		PAN_CIPHERTEXT = 1,
		PAN_KEY_VERSION,
		PAN_FINGERPRINT,
		PAN_LAST4,
		PAN_BIN
	};
	static CardPlan lookup = {
		NULL,
		"SELECT c.pan_ciphertext, c.pan_key_version, c.pan_fingerprint,"
		" c.last4, p.bin"
		" FROM card.card c JOIN card.programme p ON p.id = c.programme_id"
		" WHERE c.id = $1 AND card.programme_visible(c.programme_id)",
		1, {UUIDOID}
	};
	Datum		card_id = PG_GETARG_DATUM(0);
	TupleDesc	tupdesc;
	bool		isnull;
	bytea	   *sealed;
	int			key_version;
	bytea	   *fingerprint;
	char	   *last4;
	char	   *bin;
	char	   *pan;
	size_t		len;
	bytea	   *recomputed;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Datum		result;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (card_exec(&lookup, &card_id, NULL, false, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("card %s does not exist",
						DatumGetCString(DirectFunctionCall1(uuid_out, card_id)))));
	sealed = DatumGetByteaPP(card_spi_datum(0, PAN_CIPHERTEXT, &isnull));
	key_version = DatumGetInt16(card_spi_datum(0, PAN_KEY_VERSION, &isnull));
	fingerprint = DatumGetByteaPP(card_spi_datum(0, PAN_FINGERPRINT, &isnull));
	last4 = card_spi_text(0, PAN_LAST4);
	bin = card_spi_text(0, PAN_BIN);

	(void) card_mac_key();		/* fail before anything is decrypted */
	pan = card_decrypt(key_version, DatumGetUUIDP(card_id), sealed, &len);
	PG_TRY();
	{
		recomputed = card_hmac_bytea(CARD_LABEL_PAN_FINGERPRINT, (uint8 *) pan, len);
		values[0] = Int32GetDatum((int32) len);
		values[1] = BoolGetDatum(card_luhn_valid(pan, len));
		values[2] = BoolGetDatum(len > strlen(bin) && strncmp(pan, bin, strlen(bin)) == 0);
		values[3] = BoolGetDatum(len >= 4 && strcmp(pan + len - 4, last4) == 0);
		values[4] = BoolGetDatum(VARSIZE_ANY_EXHDR(fingerprint) == CARD_MAC_LEN &&
								 memcmp(VARDATA_ANY(fingerprint), VARDATA(recomputed),
										CARD_MAC_LEN) == 0);
	}
	PG_FINALLY();
	{
		explicit_bzero(pan, len);
	}
	PG_END_TRY();

	result = HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
	result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
