/*-------------------------------------------------------------------------
 *
 * pin.c
 *	  PINs: the keyed hash they are kept as, wrong tries, checks by the
 *	  processor (a counted check, then its verdict once committed), and
 *	  reset through the hosted page flow.
 *
 * A PIN is kept only as an HMAC over the card chain's id and the PIN, so
 * equal PINs hash apart and a reissued card (same PAN) carries its PIN.
 * Every wrong PIN counts; after CARD_PIN_TRIES the PIN is blocked until it
 * is reset.  The count is the chain's, kept on its first card: a reissue
 * working alongside the card it replaces shares the PIN and so shares the
 * tries, and the first card's row lock makes concurrent tries take turns.
 * A wrong PIN is an answer, not an error: an error would roll back the
 * count along with everything else.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include <openssl/crypto.h>

#include "utils/builtins.h"

static CardPlan emit = {
	NULL,
	"SELECT card.event_emit($1::card.event_type, $2, $3, $4, $5::jsonb)",
	5, {TEXTOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID}
};

/* The stored form of a PIN of a card chain. */
bytea *
card_pin_hash(Datum chain_id, const char *pin)
{
	StringInfoData message;
	bytea	   *hash;

	initStringInfo(&message);
	appendBinaryStringInfo(&message, (char *) DatumGetUUIDP(chain_id)->data, UUID_LEN);
	appendStringInfoString(&message, pin);
	hash = card_hmac_bytea(CARD_LABEL_PIN, (uint8 *) message.data, message.len);
	explicit_bzero(message.data, message.len);
	return hash;
}

static void
pin_event(const char *type, Datum card_id, Datum account_id, Datum programme_id,
		  const char *data)
{
	Datum		values[5] = {
		CStringGetTextDatum(type), card_id, account_id, programme_id,
		CStringGetTextDatum(data)
	};

	card_exec(&emit, values, NULL, false, 1);
}

/* Start the count of a chain's PIN afresh (a new PIN was set). */
void
card_pin_tries_clear(Datum chain_id)
{
	static CardPlan clear_tries = {
		NULL,
		"UPDATE card.card SET pin_tries = 0 WHERE id = $1 AND pin_tries > 0",
		1, {UUIDOID}
	};

	card_exec(&clear_tries, &chain_id, NULL, false, 0);
}

/* Whether a PIN matches a stored hash (constant time). */
bool
card_pin_matches(Datum chain_id, const bytea *stored, const char *pin)
{
	bytea	   *given = card_pin_hash(chain_id, pin);

	return VARSIZE_ANY_EXHDR(stored) == CARD_MAC_LEN &&
		CRYPTO_memcmp(VARDATA_ANY(stored), VARDATA(given), CARD_MAC_LEN) == 0;
}

/*
 * The work of card_pin_check, on our copies of the token and PIN: count the
 * try, keep its verdict, return only the check's id.  The verdict leaves
 * the database through card_pin_result() in a later transaction, once the
 * count is committed: a caller that rolls back after seeing an answer
 * would otherwise undo the count, and could try every PIN.  And what this
 * transaction writes must not depend on the verdict either (row counts in
 * pg_stat_xact_user_tables and locks in pg_locks are visible to anyone):
 * every try counts here, right or wrong; card_pin_result() clears the
 * count of a right one and reports a block.
 */
static Datum
check_pin(FunctionCallInfo fcinfo, const char *card_token, const char *pin)
{
	enum CardOfTokenColumn
	{
		OF_TOKEN_CARD_ID = 1
	};
	static CardPlan card_of_token = {
		NULL,
		"SELECT c.id FROM card.card c"
		" WHERE c.token = $1 AND card.programme_visible(c.programme_id)",
		1, {TEXTOID}
	};
	enum TokenCardColumn
	{
		TOKEN_CARD_ID = 1,
		TOKEN_ACCOUNT_ID,
		TOKEN_PROGRAMME_ID,
		TOKEN_CHAIN_ID,
		TOKEN_PIN_HASH,
		TOKEN_EFFECTIVE_STATUS
	};
	static CardPlan lock_by_token = {
		NULL,
		"SELECT c.id, c.account_id, c.programme_id, card.chain_of(c.id, c.chain_id),"
		" c.pin_hash, card.effective_status(c.status, c.expires_on)::text"
		" FROM card.card c"
		" WHERE c.token = $1 AND card.programme_visible(c.programme_id)"
		" FOR NO KEY UPDATE",
		1, {TEXTOID}
	};
	/* The verdict's parameters, as indexes of values[] ($1 is index 0). */
	enum RecordParam
	{
		RECORD_CHECK_ID,
		RECORD_CARD_ID,
		RECORD_VERIFIED,
		RECORD_TRIES_LEFT,
		RECORD_USED_LAST_TRY,
		RECORD_PARAMS
	};
	static CardPlan record = {
		NULL,
		"INSERT INTO card.pin_check (id, card_id, verified, tries_left, used_last_try)"
		" VALUES ($1, $2, $3, $4, $5)",
		RECORD_PARAMS, {UUIDOID, UUIDOID, BOOLOID, INT2OID, BOOLOID}
	};
	/* One statement, the same for every verdict; no row once blocked. */
	enum CountTryColumn
	{
		COUNTED_TRIES = 1
	};
	static CardPlan count_try = {
		NULL,
		"UPDATE card.card SET pin_tries = pin_tries + 1 WHERE id = $1 AND pin_tries < $2"
		" RETURNING pin_tries",
		2, {UUIDOID, INT2OID}
	};
	/* Verdicts nobody read: gone after ten minutes. */
	static CardPlan forget_stale = {
		NULL,
		"DELETE FROM card.pin_check WHERE card_id = $1"
		" AND checked_at < pg_catalog.now() - interval '10 minutes'",
		1, {UUIDOID}
	};
	Datum		token = CStringGetTextDatum(card_token);
	Datum		check_id;
	Datum		card_id;
	Datum		stored;
	bytea	   *stored_pin;
	Datum		chain_id;
	char	   *effective;
	bool		isnull;
	int			tries_left;
	bool		verified;
	bool		counted;
	Datum		values[RECORD_PARAMS];

	card_check_pin(pin);
	/* The id outlives the SPI session: made in the caller's memory context. */
	check_id = card_time_uuid();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* The chain's lock order first (the count is on its first card), read
	 * with the fresh snapshot the locking read after it has. */
	if (card_exec(&card_of_token, &token, NULL, false, 1) == 1)
	{
		bool		no_card;

		card_chain_lock(card_spi_datum(0, OF_TOKEN_CARD_ID, &no_card));
	}
	if (card_exec(&lock_by_token, &token, NULL, false, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no card has this token"),
				 errhint("Processors refer to cards by the token of card.card_token().")));
	card_id = card_spi_datum(0, TOKEN_CARD_ID, &isnull);
	stored = card_spi_datum(0, TOKEN_PIN_HASH, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s has no PIN yet", card_uuid_string(card_id)),
				 errhint("The holder sets the PIN when activating the card.")));
	/* An ended card's PIN is no one's concern: never compared nor counted. */
	effective = card_spi_text(0, TOKEN_EFFECTIVE_STATUS);
	if (!card_status_name_live(effective))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s is %s and its PIN cannot be checked",
						card_uuid_string(card_id), effective)));
	chain_id = card_spi_datum(0, TOKEN_CHAIN_ID, &isnull);
	stored_pin = DatumGetByteaPCopy(stored);

	/* Count this try whatever it turns out to be (the UPDATE takes turns). */
	{
		Datum		count_args[2] = {chain_id, Int16GetDatum(CARD_PIN_TRIES)};

		counted = card_exec(&count_try, count_args, NULL, false, 1) == 1;
	}
	if (counted)
	{
		tries_left = CARD_PIN_TRIES - DatumGetInt16(card_spi_datum(0, COUNTED_TRIES, &isnull));
		verified = card_pin_matches(chain_id, stored_pin, pin);
	}
	else
	{
		tries_left = 0;			/* blocked: not even compared */
		verified = false;
	}
	card_exec(&forget_stale, &card_id, NULL, false, 0);
	values[RECORD_CHECK_ID] = check_id;
	values[RECORD_CARD_ID] = card_id;
	values[RECORD_VERIFIED] = BoolGetDatum(verified);
	values[RECORD_TRIES_LEFT] = Int16GetDatum((int16) tries_left);	/* if wrong; a right one clears */
	values[RECORD_USED_LAST_TRY] = BoolGetDatum(counted && tries_left == 0);
	card_exec(&record, values, NULL, false, 0);
	SPI_finish();
	return check_id;
}

/*
 * card.card_pin_check(card_token text, pin text) RETURNS uuid
 *
 * For the processor (online PIN), step one: the try is counted and its
 * verdict kept; the id returned gives the verdict in a later transaction.
 */
CARD_ENTRY_POINT(card_pin_check)
{
	PG_RETURN_DATUM(card_with_secrets(fcinfo, "card_token", check_pin));
}

/*
 * card.card_pin_result(check_id uuid)
 *	 RETURNS TABLE(verified boolean, tries_left integer)
 *
 * Step two: the verdict of a committed check, once.  A check made in the
 * current transaction (or one of its subtransactions) is refused: its
 * count could still be rolled back.
 */
CARD_ENTRY_POINT(card_pin_result)
{
	enum CheckColumn
	{
		CHECK_VERIFIED = 1,
		CHECK_TRIES_LEFT,
		CHECK_XMIN,
		CHECK_CARD_ID,
		CHECK_ACCOUNT_ID,
		CHECK_PROGRAMME_ID,
		CHECK_CHAIN_ID,
		CHECK_USED_LAST_TRY
	};
	static CardPlan take = {
		NULL,
		"SELECT p.verified, p.tries_left, p.xmin, p.card_id, c.account_id, c.programme_id,"
		" card.chain_of(c.id, c.chain_id), p.used_last_try"
		" FROM card.pin_check p JOIN card.card c ON c.id = p.card_id"
		" WHERE p.id = $1 AND card.programme_visible(c.programme_id)"
		" FOR UPDATE OF p",
		1, {UUIDOID}
	};
	static CardPlan forget = {
		NULL, "DELETE FROM card.pin_check WHERE id = $1", 1, {UUIDOID}
	};
	enum CardOfCheckColumn
	{
		OF_CHECK_CARD_ID = 1
	};
	static CardPlan card_of_check = {
		NULL, "SELECT card_id FROM card.pin_check WHERE id = $1", 1, {UUIDOID}
	};
	Datum		check_id;
	TupleDesc	tupdesc;
	bool		isnull;
	Datum		result[2];
	bool		nulls[2] = {false, false};
	Datum		row;

	card_require(!PG_ARGISNULL(0), "check_id");
	check_id = PG_GETARG_DATUM(0);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* The chain's lock order first (the count is on its first card), read
	 * with the fresh snapshot the locking read after it has. */
	if (card_exec(&card_of_check, &check_id, NULL, false, 1) == 1)
		card_chain_lock(card_spi_datum(0, OF_CHECK_CARD_ID, &isnull));
	if (card_exec(&take, &check_id, NULL, false, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("PIN check %s does not exist", card_uuid_string(check_id)),
				 errhint("A verdict is given once.")));
	if (TransactionIdIsCurrentTransactionId(DatumGetTransactionId(card_spi_datum(0, CHECK_XMIN, &isnull))))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("PIN check %s is not committed yet", card_uuid_string(check_id)),
				 errhint("Commit card.card_pin_check() first, then ask for its result in a new transaction.")));
	result[0] = card_spi_datum(0, CHECK_VERIFIED, &isnull);
	result[1] = Int32GetDatum(DatumGetInt16(card_spi_datum(0, CHECK_TRIES_LEFT, &isnull)));
	{
		Datum		card_id = card_spi_datum(0, CHECK_CARD_ID, &isnull);
		Datum		account_id = card_spi_datum(0, CHECK_ACCOUNT_ID, &isnull);
		Datum		programme_id = card_spi_datum(0, CHECK_PROGRAMME_ID, &isnull);
		Datum		chain_id = card_spi_datum(0, CHECK_CHAIN_ID, &isnull);

		/* Now that the try is committed: a right PIN clears the count... */
		if (DatumGetBool(result[0]))
		{
			card_pin_tries_clear(chain_id);
			result[1] = Int32GetDatum(CARD_PIN_TRIES);
		}
		/* ...and the wrong one that used the last try is reported. */
		else if (DatumGetBool(card_spi_datum(0, CHECK_USED_LAST_TRY, &isnull)))
			pin_event("card.pin_blocked", card_id, account_id, programme_id,
					  psprintf("{\"tries\": %d}", CARD_PIN_TRIES));
		card_exec(&forget, &check_id, NULL, false, 0);
	}
	tupdesc = BlessTupleDesc(tupdesc);
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(row);
}

/* A card's row, locked, for the reset flow. */
enum ResetCardColumn
{
	RESET_EFFECTIVE_STATUS = 1,
	RESET_HAS_PIN,
	RESET_LINK_TTL,
	RESET_CHAIN_ID,
	RESET_ACCOUNT_ID,
	RESET_PROGRAMME_ID
};

static CardPlan lock_for_reset = {
	NULL,
	"SELECT card.effective_status(c.status, c.expires_on)::text, c.pin_hash IS NOT NULL,"
	" p.activation_ttl, card.chain_of(c.id, c.chain_id), c.account_id, c.programme_id"
	" FROM card.card c JOIN card.programme p ON p.id = c.programme_id"
	" WHERE c.id = $1 AND card.programme_visible(c.programme_id)"
	" FOR NO KEY UPDATE OF c",
	1, {UUIDOID}
};

/* Refuse a card whose PIN cannot be reset: no PIN yet, or ended. */
static void
check_resettable(Datum card_id)
{
	bool		isnull;
	char	   *effective = card_spi_text(0, RESET_EFFECTIVE_STATUS);

	if (!card_status_name_live(effective))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s is %s and its PIN cannot be reset",
						card_uuid_string(card_id), effective)));
	if (!DatumGetBool(card_spi_datum(0, RESET_HAS_PIN, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s has no PIN yet", card_uuid_string(card_id)),
				 errhint("The holder sets the PIN when activating the card.")));
}

/*
 * card.card_pin_reset_start(card_id uuid, return_url text)
 *	 RETURNS TABLE(redirect_url text, expires_at timestamptz)
 */
CARD_ENTRY_POINT(card_pin_reset_start)
{
	PG_RETURN_DATUM(card_link_start(fcinfo, CARD_LINK_PIN_RESET, &lock_for_reset,
									check_resettable, RESET_LINK_TTL));
}

/* The work of card_pin_reset, on our copies of the token and PIN. */
static Datum
reset_pin(FunctionCallInfo fcinfo, const char *token, const char *pin)
{
	/* The PIN belongs to the chain: every card of it gets the new one. */
	static CardPlan set_pin = {
		NULL,
		"UPDATE card.card SET pin_hash = $2, pin_tries = 0 WHERE id = $1 OR chain_id = $1",
		2, {UUIDOID, BYTEAOID}
	};
	TupleDesc	tupdesc;
	Datum		hash;
	Datum		card_id;
	Datum		chain_id;
	bool		isnull;
	char	   *return_url;
	Datum		values[2];
	Datum		result[2];
	bool		nulls[2] = {false, false};
	Datum		row;

	card_check_pin(pin);		/* a bad PIN must not burn the token */
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	card_id = card_link_open(CARD_LINK_PIN_RESET, token, &hash);
	card_chain_lock(card_id);
	if (card_exec(&lock_for_reset, &card_id, NULL, false, 1) != 1)
		card_link_refuse_unknown(CARD_LINK_PIN_RESET);
	check_resettable(card_id);
	chain_id = card_spi_datum(0, RESET_CHAIN_ID, &isnull);
	values[0] = chain_id;
	values[1] = PointerGetDatum(card_pin_hash(chain_id, pin));
	pin_event("card.pin_reset", card_id, card_spi_datum(0, RESET_ACCOUNT_ID, &isnull),
			  card_spi_datum(0, RESET_PROGRAMME_ID, &isnull), "{}");
	return_url = card_link_consume(CARD_LINK_PIN_RESET, hash, card_id);
	card_exec(&set_pin, values, NULL, false, 0);

	result[0] = card_id;
	result[1] = CStringGetTextDatum(return_url);
	tupdesc = BlessTupleDesc(tupdesc);
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	return row;
}

/*
 * card.card_pin_reset(reset_token text, pin text)
 *	 RETURNS TABLE(card_id uuid, return_url text)
 *
 * Called by the hosted page: sets a new PIN and unblocks it.
 */
CARD_ENTRY_POINT(card_pin_reset)
{
	PG_RETURN_DATUM(card_with_secrets(fcinfo, "reset_token", reset_pin));
}
