/*-------------------------------------------------------------------------
 *
 * activation.c
 *	  The hosted activation flow: card.card_activation_start() issues a
 *	  single-use link, card.card_activation_complete() sets the PIN and
 *	  activates the card.
 *
 * The link's token is returned once and stored only as a keyed hash.  A
 * token is consumed by one guarded UPDATE, so two completions of one token
 * cannot both win.  Starting again supersedes any earlier unused link.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"
#include "utils/timestamp.h"

#define ACTIVATION_TOKEN_PREFIX "act_"
#define ACTIVATION_TOKEN_BYTES 32

/*
 * Lock the card so that starts and status changes on it take turns, and
 * read its stored and effective status from the locked row itself (a join
 * to the card.cards view would rescan the row without the lock and could
 * see the status from before a concurrent change committed).
 */
static CardPlan lock_card = {
	NULL,
	"SELECT c.status::text, card.effective_status(c.status, c.expires_on)::text,"
	" p.activation_ttl"
	" FROM card.card c"
	" JOIN card.programme p ON p.id = c.programme_id"
	" WHERE c.id = $1 AND card.programme_visible(c.programme_id)"
	" FOR NO KEY UPDATE OF c",
	1, {UUIDOID}
};

static CardPlan supersede = {
	NULL,
	"UPDATE card.activation SET consumed_at = now(), outcome = 'superseded'"
	" WHERE card_id = $1 AND consumed_at IS NULL",
	1, {UUIDOID}
};

static CardPlan insert_activation = {
	NULL,
	"INSERT INTO card.activation (token_hash, card_id, return_url, expires_at)"
	" VALUES ($1, $2, $3, now() + $4) RETURNING expires_at",
	4, {BYTEAOID, UUIDOID, TEXTOID, INTERVALOID}
};

static CardPlan consume = {
	NULL,
	"UPDATE card.activation SET consumed_at = now(), outcome = 'completed'"
	" WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > now()"
	" RETURNING card_id, return_url",
	1, {BYTEAOID}
};

static CardPlan token_card = {
	NULL,
	"SELECT a.card_id, a.outcome, a.expires_at"
	" FROM card.activation a JOIN card.card c ON c.id = a.card_id"
	" WHERE a.token_hash = $1 AND card.programme_visible(c.programme_id)",
	1, {BYTEAOID}
};

static CardPlan activate = {
	NULL,
	"UPDATE card.card SET status = 'active', pin_hash = $2 WHERE id = $1",
	2, {UUIDOID, BYTEAOID}
};

/*
 * card.card_activation_start(card_id uuid, return_url text)
 *	 RETURNS TABLE(redirect_url text, expires_at timestamptz)
 */
PG_FUNCTION_INFO_V1(card_activation_start);
Datum
card_activation_start(PG_FUNCTION_ARGS)
{
	Datum		card_id;
	char	   *return_url = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *stored;
	char	   *effective;
	bool		isnull;
	Datum		ttl;
	char	   *token;
	Datum		values[4];
	TupleDesc	tupdesc;
	Datum		result[2];
	bool		nulls[2] = {false, false};
	Datum		row;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("card_id is required")));
	card_id = PG_GETARG_DATUM(0);
	card_check_https_url("return_url", return_url);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (card_exec(&lock_card, &card_id, NULL, false, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("card %s does not exist", card_uuid_string(card_id))));
	stored = card_spi_text(0, 1);
	effective = card_spi_text(0, 2);
	ttl = card_spi_datum(0, 3, &isnull);
	if (strcmp(effective, "not_activated") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s is %s and cannot be activated",
						card_uuid_string(card_id), effective),
				 strcmp(stored, "active") == 0 ?
				 errhint("The card is already active.") : 0));

	card_exec(&supersede, &card_id, NULL, false, 0);

	token = card_random_token(ACTIVATION_TOKEN_PREFIX, ACTIVATION_TOKEN_BYTES);
	values[0] = PointerGetDatum(card_hmac_bytea(CARD_LABEL_ONE_TIME_TOKEN,
												(uint8 *) token, strlen(token)));
	values[1] = card_id;
	values[2] = CStringGetTextDatum(return_url);
	values[3] = ttl;
	card_exec(&insert_activation, values, NULL, false, 1);

	result[0] = CStringGetTextDatum(psprintf("%s/activate?token=%s",
											 card_hosted_pages_url, token));
	explicit_bzero(token, strlen(token));
	result[1] = card_spi_datum(0, 1, &isnull);
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(row);
}

/* The hash under which a presented activation token is stored. */
static bytea *
token_hash(const char *token)
{
	size_t		len = strlen(token);

	if (len < strlen(ACTIVATION_TOKEN_PREFIX) + 40 || len > 64 ||
		strncmp(token, ACTIVATION_TOKEN_PREFIX, strlen(ACTIVATION_TOKEN_PREFIX)) != 0 ||
		strspn(token + strlen(ACTIVATION_TOKEN_PREFIX),
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
		!= len - strlen(ACTIVATION_TOKEN_PREFIX))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("malformed activation token"),
				 errhint("Pass the token parameter of the redirect URL unchanged.")));
	return card_hmac_bytea(CARD_LABEL_ONE_TIME_TOKEN, (const uint8 *) token, len);
}

/* The work of card_activation_complete, on our copies of token and PIN. */
static Datum
complete_activation(FunctionCallInfo fcinfo, const char *token, const char *pin)
{
	Datum		hash;
	bool		isnull;
	Datum		card_id;
	char	   *return_url;
	char	   *stored;
	char	   *effective;
	Datum		values[2];
	pg_uuid_t  *card_uuid;
	StringInfoData pin_message;
	CardChangeContext previous;
	TupleDesc	tupdesc;
	Datum		row;

	card_check_pin(pin);		/* a bad PIN must not burn the token */
	hash = PointerGetDatum(token_hash(token));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (card_exec(&token_card, &hash, NULL, false, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("activation token does not exist")));
	card_id = card_spi_datum(0, 1, &isnull);

	/* Card first, then its activation rows: the order start uses too. */
	if (card_exec(&lock_card, &card_id, NULL, false, 1) != 1)
		elog(ERROR, "card of activation token vanished");
	stored = card_spi_text(0, 1);
	effective = card_spi_text(0, 2);

	if (card_exec(&consume, &hash, NULL, false, 1) != 1)
	{
		char	   *outcome;

		card_exec(&token_card, &hash, NULL, false, 1);
		outcome = card_spi_text(0, 2);
		if (outcome != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("activation token of card %s was already %s",
							card_uuid_string(card_id),
							strcmp(outcome, "completed") == 0 ? "used" : "replaced by a newer one"),
					 errhint("Start the activation again with card.card_activation_start().")));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("activation token of card %s expired at %s",
						card_uuid_string(card_id), card_spi_text(0, 3)),
				 errhint("Start the activation again with card.card_activation_start().")));
	}
	return_url = card_spi_text(0, 2);
	if (strcmp(stored, "not_activated") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s is %s and cannot be activated",
						card_uuid_string(card_id), effective)));
	card_uuid = DatumGetUUIDP(card_id);

	/* The PIN is hashed with the card id so equal PINs hash apart. */
	initStringInfo(&pin_message);
	appendBinaryStringInfo(&pin_message, (char *) card_uuid->data, UUID_LEN);
	appendStringInfoString(&pin_message, pin);
	values[0] = card_id;
	values[1] = PointerGetDatum(card_hmac_bytea(CARD_LABEL_PIN,
												(uint8 *) pin_message.data,
												pin_message.len));
	explicit_bzero(pin_message.data, pin_message.len);

	previous = card_change_begin("activation", "holder", card_uuid);
	PG_TRY();
	{
		card_exec(&activate, values, NULL, false, 0);
	}
	PG_FINALLY();
	{
		card_change_end(previous);
	}
	PG_END_TRY();

	{
		Datum		result[3];
		bool		nulls[3] = {false, false, false};
		static CardPlan status_of = {
			NULL, "SELECT status FROM card.cards WHERE id = $1", 1, {UUIDOID}
		};

		card_exec(&status_of, &card_id, NULL, false, 1);
		result[0] = card_id;
		result[1] = card_spi_datum(0, 1, &isnull);
		result[2] = CStringGetTextDatum(return_url);
		tupdesc = BlessTupleDesc(tupdesc);
		row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, nulls));
	}
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(row);
}

/*
 * card.card_activation_complete(activation_token text, pin text)
 *	 RETURNS TABLE(card_id uuid, status card.card_status, return_url text)
 *
 * Our copies of the PIN and the token are wiped however the call ends.
 */
PG_FUNCTION_INFO_V1(card_activation_complete);
Datum
card_activation_complete(PG_FUNCTION_ARGS)
{
	char	   *token;
	char	   *pin;
	volatile Datum result = (Datum) 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("activation_token is required")));
	token = text_to_cstring(PG_GETARG_TEXT_PP(0));
	pin = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	PG_TRY();
	{
		result = complete_activation(fcinfo, token, pin);
	}
	PG_FINALLY();
	{
		explicit_bzero(token, strlen(token));
		if (pin)
			explicit_bzero(pin, strlen(pin));
	}
	PG_END_TRY();
	PG_RETURN_DATUM(result);
}
