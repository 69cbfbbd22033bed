/*-------------------------------------------------------------------------
 *
 * activation.c
 *	  The hosted activation flow: card.card_activation_start() issues a
 *	  single-use link (link.c), card.card_activation_complete() sets the
 *	  PIN and activates the card.
 *
 * A reissued card (same PAN) carries the PIN of the card it replaces: its
 * activation checks that PIN instead of setting one; every try counts
 * towards the chain's tries (pin_try.c), and a wrong PIN does not use the
 * link up.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"

/*
 * Lock the card so that link starts, completions and status changes on it
 * take turns, and read its stored and effective status from the locked row
 * itself (a join to the card.cards view would rescan the row without the
 * lock and could see the status from before a concurrent change committed).
 */
enum ActivationCardColumn
{
	CARD_STATUS = 1,
	CARD_EFFECTIVE_STATUS,
	CARD_ACTIVATION_TTL,
	CARD_PIN_HASH,
	CARD_CHAIN_ID,
	CARD_ACCOUNT_ID,
	CARD_PROGRAMME_ID
};

static CardPlan lock_card = {
	NULL,
	"SELECT c.status::text, card.effective_status(c.status, c.expires_on)::text,"
	" p.activation_ttl, c.pin_hash, card.chain_of(c.id, c.chain_id),"
	" c.account_id, c.programme_id"
	" FROM card.card c"
	" JOIN card.programme p ON p.id = c.programme_id"
	" WHERE c.id = $1 AND card.programme_visible(c.programme_id)"
	" FOR NO KEY UPDATE OF c",
	1, {UUIDOID}
};

static CardPlan activate = {
	NULL,
	"UPDATE card.card SET status = 'active', pin_hash = $2 WHERE id = $1",
	2, {UUIDOID, BYTEAOID}
};

/* Only a card not yet activated (nor past its expiry) gets a link. */
static void
check_activatable(Datum card_id)
{
	char	   *stored = card_spi_text(0, CARD_STATUS);
	char	   *effective = card_spi_text(0, CARD_EFFECTIVE_STATUS);

	if (strcmp(effective, "not_activated") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s is %s and cannot be activated",
						card_uuid_string(card_id), effective),
				 strcmp(stored, "active") == 0 ?
				 errhint("The card is already active.") : 0));
}

/*
 * card.card_activation_start(card_id uuid, return_url text)
 *	 RETURNS TABLE(redirect_url text, expires_at timestamptz)
 */
CARD_ENTRY_POINT(card_activation_start)
{
	PG_RETURN_DATUM(card_link_start(fcinfo, CARD_LINK_ACTIVATION, &lock_card,
									check_activatable, CARD_ACTIVATION_TTL));
}

/*
 * The card an activation token opened, read without a lock: whether it
 * carries a PIN, and what a try of that PIN is counted against.
 */
enum PeekColumn
{
	PEEK_STATUS = 1,
	PEEK_EFFECTIVE_STATUS,
	PEEK_CARRIES_PIN,
	PEEK_CHAIN_ID,
	PEEK_ACCOUNT_ID,
	PEEK_PROGRAMME_ID
};

static CardPlan peek_card = {
	NULL,
	"SELECT c.status::text, card.effective_status(c.status, c.expires_on)::text,"
	" c.pin_hash IS NOT NULL, card.chain_of(c.id, c.chain_id), c.account_id, c.programme_id"
	" FROM card.card c WHERE c.id = $1",
	1, {UUIDOID}
};

static void
refuse_not_activatable(Datum card_id, const char *stored, const char *effective)
{
	if (strcmp(stored, "not_activated") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s is %s and cannot be activated",
						card_uuid_string(card_id), effective)));
}

/*
 * The work of card_activation_complete, on our copies of token and PIN.
 *
 * A reissue's carried PIN is compared only after its try is counted and
 * committed in a transaction of its own (pin_try.c), before this call takes
 * any lock: rolling back this call, or the statement or transaction around
 * it, leaves the try counted.
 */
static Datum
complete_activation(FunctionCallInfo fcinfo, const char *token, const char *pin)
{
	Datum		hash;
	bool		isnull;
	Datum		card_id;
	char	   *return_url = NULL;
	bool		carries_pin;
	Datum		carried;
	Datum		chain_id;
	int			tries = 0;
	int			tries_left = CARD_PIN_TRIES;
	bool		activated = true;
	TupleDesc	tupdesc;
	Datum		result[4];
	bool		nulls[4] = {false, false, false, false};
	Datum		row;

	card_check_pin(pin);		/* a bad PIN must not burn the token */
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	card_id = card_link_open(CARD_LINK_ACTIVATION, token, &hash);

	/* Not read-only: the statement's snapshot may predate the link's card. */
	if (card_exec(&peek_card, &card_id, NULL, false, 1) != 1)
		elog(ERROR, "card of activation token vanished");
	refuse_not_activatable(card_id, card_spi_text(0, PEEK_STATUS),
						   card_spi_text(0, PEEK_EFFECTIVE_STATUS));
	carries_pin = DatumGetBool(card_spi_datum(0, PEEK_CARRIES_PIN, &isnull));
	chain_id = card_spi_datum(0, PEEK_CHAIN_ID, &isnull);
	if (carries_pin)
	{
		/* The count commits elsewhere: this transaction must see it. */
		card_require_read_committed("activating a reissued card",
									"Its PIN try is counted in a transaction of its own, which this transaction must see.");
		tries = card_pin_try_count(chain_id, card_id,
								   card_spi_datum(0, PEEK_ACCOUNT_ID, &isnull),
								   card_spi_datum(0, PEEK_PROGRAMME_ID, &isnull),
								   card_pin_hash(chain_id, pin));
	}

	/* The chain, then its links: the order a start takes too. */
	card_chain_lock(card_id);
	if (card_exec(&lock_card, &card_id, NULL, false, 1) != 1)
		card_link_refuse_unknown(CARD_LINK_ACTIVATION);
	refuse_not_activatable(card_id, card_spi_text(0, CARD_STATUS),
						   card_spi_text(0, CARD_EFFECTIVE_STATUS));
	carried = card_spi_datum(0, CARD_PIN_HASH, &isnull);
	if (isnull == carries_pin)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("card %s changed during its activation", card_uuid_string(card_id)),
				 errhint("Try again.")));

	if (!carries_pin)
	{
		/* A new card: the holder chooses its PIN now. */
		Datum		values[2] = {card_id, PointerGetDatum(card_pin_hash(chain_id, pin))};

		return_url = card_link_consume(CARD_LINK_ACTIVATION, hash, card_id);
		card_exec_status_change(&activate, values, "activation", "holder",
								DatumGetUUIDP(card_id));
		card_pin_tries_clear(chain_id);	/* a new PIN, counted afresh */
	}
	else if (tries < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("PIN of card %s is blocked after %d wrong tries",
						card_uuid_string(card_id), CARD_PIN_TRIES),
				 errhint("Reset it through the hosted page flow of card.card_pin_reset_start().")));
	else if (card_pin_matches(chain_id, DatumGetByteaPP(carried), pin))
	{
		/* A reissue: the holder proved the PIN it carries. */
		Datum		values[2] = {card_id, carried};

		return_url = card_link_consume(CARD_LINK_ACTIVATION, hash, card_id);
		card_exec_status_change(&activate, values, "activation", "holder",
								DatumGetUUIDP(card_id));
		card_pin_tries_clear(chain_id);
	}
	else
	{
		activated = false;		/* counted; the link stays usable */
		tries_left = CARD_PIN_TRIES - tries;
	}

	result[0] = card_id;
	result[1] = DirectFunctionCall2(enum_in, CStringGetDatum(activated ? "active" : "not_activated"),
									ObjectIdGetDatum(TupleDescAttr(tupdesc, 1)->atttypid));
	result[2] = return_url ? CStringGetTextDatum(return_url) : (Datum) 0;
	nulls[2] = return_url == NULL;
	result[3] = Int32GetDatum(tries_left);
	tupdesc = BlessTupleDesc(tupdesc);
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	return row;
}

/*
 * card.card_activation_complete(activation_token text, pin text)
 *	 RETURNS TABLE(card_id uuid, status card.card_status, return_url text,
 *	 pin_tries_left integer)
 */
CARD_ENTRY_POINT(card_activation_complete)
{
	PG_RETURN_DATUM(card_with_secrets(fcinfo, "activation_token", complete_activation));
}
