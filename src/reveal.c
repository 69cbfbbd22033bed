/*-------------------------------------------------------------------------
 *
 * reveal.c
 *	  Reveal of card details through the hosted page (the PCI redirect
 *	  flow): card.card_reveal_start() gives the API a one-time link,
 *	  card.card_reveal() gives the page the PAN, expiry and CVV once.
 *
 * The CVV is never stored: it is an HMAC over PAN and expiry under the MAC
 * key (its own label), reduced to three digits, derived at each reveal.
 * Each reveal writes a card.revealed event that holds none of the details.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"

/* Long enough to load a page, short enough that a leaked link is stale. */
#define REVEAL_TTL "5 minutes"

static void
refuse_ended(Datum card_id, const char *effective_status)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("card %s is %s and its details cannot be revealed",
					card_uuid_string(card_id), effective_status)));
}

/* The card's row as card_reveal_start locks it. */
enum RevealStartColumn
{
	START_EFFECTIVE_STATUS = 1,
	START_LINK_TTL
};

/* A link only for a card whose details may be shown: ordered and not ended. */
static void
check_revealable(Datum card_id)
{
	char	   *effective = card_spi_text(0, START_EFFECTIVE_STATUS);

	if (!card_status_name_live(effective))
		refuse_ended(card_id, effective);
}

/*
 * card.card_reveal_start(card_id uuid, return_url text)
 *	 RETURNS TABLE(redirect_url text, expires_at timestamptz)
 */
CARD_ENTRY_POINT(card_reveal_start)
{
	static CardPlan lock_card = {
		NULL,
		"SELECT card.effective_status(c.status, c.expires_on)::text,"
		" interval '" REVEAL_TTL "'"
		" FROM card.card c"
		" WHERE c.id = $1 AND card.programme_visible(c.programme_id)"
		" FOR NO KEY UPDATE",
		1, {UUIDOID}
	};

	PG_RETURN_DATUM(card_link_start(fcinfo, CARD_LINK_REVEAL, &lock_card,
									check_revealable, START_LINK_TTL));
}

/*
 * The three-digit CVV of a PAN and expiry: the first four bytes of an HMAC
 * over them, modulo 1000 (2^32 mod 1000 = 296, so no digit string is more
 * than 1e-7 likelier than another).
 */
static void
derive_cvv(const char *pan, size_t pan_len, const char *exp_month,
		   const char *exp_year, char *cvv)
{
	StringInfoData message;
	uint8		mac[CARD_MAC_LEN];
	uint32		n;

	initStringInfo(&message);
	appendBinaryStringInfo(&message, pan, pan_len);
	appendStringInfoChar(&message, '|');
	appendStringInfoString(&message, exp_month);
	appendStringInfoString(&message, exp_year);
	card_hmac(CARD_LABEL_CVV, (uint8 *) message.data, message.len, mac);
	explicit_bzero(message.data, message.len);
	n = ((uint32) mac[0] << 24) | ((uint32) mac[1] << 16) | ((uint32) mac[2] << 8) | mac[3];
	explicit_bzero(mac, sizeof(mac));
	snprintf(cvv, 4, "%03u", n % 1000);
}

/* The work of card_reveal, on our copy of the token. */
static Datum
reveal(FunctionCallInfo fcinfo, const char *token, const char *unused)
{
	enum RevealCardColumn
	{
		REVEAL_EFFECTIVE_STATUS = 1,
		REVEAL_PAN_CIPHERTEXT,
		REVEAL_PAN_KEY_VERSION,
		REVEAL_EXP_MONTH,
		REVEAL_EXP_YEAR,
		REVEAL_ACCOUNT_ID,
		REVEAL_PROGRAMME_ID
	};
	static CardPlan lock_card = {
		NULL,
		"SELECT card.effective_status(c.status, c.expires_on)::text,"
		" c.pan_ciphertext, c.pan_key_version, c.exp_month, c.exp_year,"
		" c.account_id, c.programme_id"
		" FROM card.card c WHERE c.id = $1 FOR NO KEY UPDATE",
		1, {UUIDOID}
	};
	static CardPlan revealed = {
		NULL,
		"SELECT card.event_emit('card.revealed', $1, $2, $3, '{}'::jsonb)",
		3, {UUIDOID, UUIDOID, UUIDOID}
	};
	TupleDesc	tupdesc;
	Datum		hash;
	Datum		card_id;
	char	   *effective;
	bytea	   *sealed;
	int			key_version;
	char	   *exp_month;
	char	   *exp_year;
	Datum		event[3];
	bool		isnull;
	char	   *pan;
	size_t		pan_len;
	char		cvv[4];
	Datum		result[4];
	bool		nulls[4] = {false, false, false, false};
	HeapTuple	volatile tuple = NULL;
	Datum		row;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	card_id = card_link_open(CARD_LINK_REVEAL, token, &hash);
	card_chain_lock(card_id);
	if (card_exec(&lock_card, &card_id, NULL, false, 1) != 1)
		card_link_refuse_unknown(CARD_LINK_REVEAL);
	effective = card_spi_text(0, REVEAL_EFFECTIVE_STATUS);
	if (!card_status_name_live(effective))
		refuse_ended(card_id, effective);
	sealed = DatumGetByteaPCopy(card_spi_datum(0, REVEAL_PAN_CIPHERTEXT, &isnull));
	key_version = DatumGetInt16(card_spi_datum(0, REVEAL_PAN_KEY_VERSION, &isnull));
	exp_month = card_spi_text(0, REVEAL_EXP_MONTH);
	exp_year = card_spi_text(0, REVEAL_EXP_YEAR);
	event[0] = card_id;
	event[1] = card_spi_datum(0, REVEAL_ACCOUNT_ID, &isnull);
	event[2] = card_spi_datum(0, REVEAL_PROGRAMME_ID, &isnull);

	(void) card_link_consume(CARD_LINK_REVEAL, hash, card_id);
	card_exec(&revealed, event, NULL, false, 1);

	(void) card_mac_key();		/* fail before anything is decrypted */
	pan = card_decrypt(key_version, DatumGetUUIDP(card_id), sealed, &pan_len);
	memset(result, 0, sizeof(result));
	PG_TRY();
	{
		derive_cvv(pan, pan_len, exp_month, exp_year, cvv);
		result[0] = PointerGetDatum(cstring_to_text_with_len(pan, pan_len));
		result[1] = CStringGetTextDatum(exp_month);
		result[2] = CStringGetTextDatum(exp_year);
		result[3] = CStringGetTextDatum(cvv);
		tupdesc = BlessTupleDesc(tupdesc);
		tuple = heap_form_tuple(tupdesc, result, nulls);
		row = SPI_datumTransfer(HeapTupleGetDatum(tuple), false, -1);
	}
	PG_FINALLY();
	{
		/*
		 * The row in the caller's context is the only copy left, and on an
		 * error there is none: wipe ours, however far we got.
		 */
		explicit_bzero(pan, pan_len);
		explicit_bzero(cvv, sizeof(cvv));
		if (result[0])
			explicit_bzero(VARDATA(DatumGetPointer(result[0])), pan_len);
		if (result[3])
			explicit_bzero(VARDATA(DatumGetPointer(result[3])),
						   VARSIZE(DatumGetPointer(result[3])) - VARHDRSZ);
		if (tuple)
			explicit_bzero(tuple->t_data, tuple->t_len);
	}
	PG_END_TRY();
	SPI_finish();
	return row;
}

/*
 * card.card_reveal(reveal_token text)
 *	 RETURNS TABLE(pan text, exp_month text, exp_year text, cvv text)
 *
 * For the hosted page only, once per link.
 */
CARD_ENTRY_POINT(card_reveal)
{
	PG_RETURN_DATUM(card_with_secrets(fcinfo, "reveal_token", reveal));
}
