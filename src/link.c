/*-------------------------------------------------------------------------
 *
 * link.c
 *	  Hosted-page links: activation, reveal of card details, PIN reset.
 *
 * Every link follows the same rules.  Its token is returned once, in the
 * redirect URL, and stored only as a keyed hash; it is good for one use
 * and a short time; issuing a new link of the same purpose for a card
 * supersedes an unused older one; a token is consumed by one guarded
 * UPDATE, so two uses of one token cannot both win.  A link to a card of a
 * programme the caller does not see does not exist for it.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"

#define LINK_TOKEN_BYTES 32

typedef struct CardLinkKind
{
	const char *purpose;		/* card.link_purpose label */
	const char *prefix;			/* of the token, so a token names its kind */
	const char *page;			/* path on the hosted pages */
	const char *noun;			/* in messages */
	const char *start;			/* the function that issues it */
} CardLinkKind;

static const CardLinkKind link_kinds[] = {
	[CARD_LINK_ACTIVATION] = {"activation", "act_", "activate", "activation",
	"card.card_activation_start()"},
	[CARD_LINK_REVEAL] = {"reveal", "rvl_", "reveal", "reveal",
	"card.card_reveal_start()"},
	[CARD_LINK_PIN_RESET] = {"pin_reset", "pin_", "pin", "PIN reset",
	"card.card_pin_reset_start()"},
};

static CardPlan supersede = {
	NULL,
	"UPDATE card.hosted_link SET consumed_at = now(), outcome = 'superseded'"
	" WHERE card_id = $1 AND purpose = $2::card.link_purpose AND consumed_at IS NULL",
	2, {UUIDOID, TEXTOID}
};

/* The new link's parameters, as indexes of values[] ($1 is index 0). */
enum InsertLinkParam
{
	INSERT_TOKEN_HASH,
	INSERT_CARD_ID,
	INSERT_PURPOSE,
	INSERT_RETURN_URL,
	INSERT_TTL,
	INSERT_PARAMS
};

enum InsertLinkColumn
{
	INSERTED_EXPIRES_AT = 1
};

static CardPlan insert_link = {
	NULL,
	"INSERT INTO card.hosted_link (token_hash, card_id, purpose, return_url, expires_at)"
	" VALUES ($1, $2, $3::card.link_purpose, $4, now() + $5) RETURNING expires_at",
	INSERT_PARAMS, {BYTEAOID, UUIDOID, TEXTOID, TEXTOID, INTERVALOID}
};

/* A presented token's link, if its card is the caller's to see. */
enum FindLinkColumn
{
	FOUND_CARD_ID = 1,
	FOUND_OUTCOME,				/* NULL while unused */
	FOUND_EXPIRES_AT,
	FOUND_UNEXPIRED
};

static CardPlan find_link = {
	NULL,
	"SELECT l.card_id, l.outcome, l.expires_at, l.expires_at > now()"
	" FROM card.hosted_link l JOIN card.card c ON c.id = l.card_id"
	" WHERE l.token_hash = $1 AND l.purpose = $2::card.link_purpose"
	" AND card.programme_visible(c.programme_id)",
	2, {BYTEAOID, TEXTOID}
};

enum ConsumeColumn
{
	CONSUMED_RETURN_URL = 1
};

static CardPlan consume = {
	NULL,
	"UPDATE card.hosted_link SET consumed_at = now(), outcome = 'completed'"
	" WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > now()"
	" RETURNING return_url",
	1, {BYTEAOID}
};

/*
 * Issue a link of a purpose for a card, superseding any unused one; the
 * caller is connected to SPI and holds the card's row lock.  Returns the
 * redirect URL and sets *expires_at.
 */
Datum
card_link_issue(CardLinkPurpose purpose, Datum card_id, const char *return_url,
				Datum ttl, Datum *expires_at)
{
	const CardLinkKind *kind = &link_kinds[purpose];
	Datum		purpose_label = CStringGetTextDatum(kind->purpose);
	Datum		old[2] = {card_id, purpose_label};
	Datum		values[INSERT_PARAMS];
	char	   *token;
	char	   *url;
	Datum		result;
	bool		isnull;

	card_exec(&supersede, old, NULL, false, 0);

	token = card_random_token(kind->prefix, LINK_TOKEN_BYTES);
	values[INSERT_TOKEN_HASH] =
		PointerGetDatum(card_hmac_bytea(CARD_LABEL_ONE_TIME_TOKEN,
										(uint8 *) token, strlen(token)));
	values[INSERT_CARD_ID] = card_id;
	values[INSERT_PURPOSE] = purpose_label;
	values[INSERT_RETURN_URL] = CStringGetTextDatum(return_url);
	values[INSERT_TTL] = ttl;
	card_exec(&insert_link, values, NULL, false, 1);
	*expires_at = card_spi_datum(0, INSERTED_EXPIRES_AT, &isnull);

	url = psprintf("%s/%s?token=%s", card_hosted_pages_url, kind->page, token);
	result = CStringGetTextDatum(url);
	explicit_bzero(url, strlen(url));
	explicit_bzero(token, strlen(token));
	return result;
}

/*
 * The body of every *_start(card_id uuid, return_url text) RETURNS
 * TABLE(redirect_url text, expires_at timestamptz): check the arguments,
 * lock the card with lock_card (whose one parameter is the card id; no row
 * means the card does not exist for the caller: P0002), let check refuse
 * the card's state from that row, and issue a link of purpose that lives
 * the interval in the row's column ttl_column.
 */
Datum
card_link_start(FunctionCallInfo fcinfo, CardLinkPurpose purpose, CardPlan *lock_card,
				void (*check) (Datum card_id), int ttl_column)
{
	char	   *return_url = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	Datum		card_id;
	TupleDesc	tupdesc;
	bool		isnull;
	Datum		result[2];
	bool		nulls[2] = {false, false};
	Datum		row;

	card_require(!PG_ARGISNULL(0), "card_id");
	card_id = PG_GETARG_DATUM(0);
	card_check_https_url("return_url", return_url);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	card_chain_lock(card_id);	/* the chain's lock order first */
	if (card_exec(lock_card, &card_id, NULL, false, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("card %s does not exist", card_uuid_string(card_id))));
	check(card_id);
	result[0] = card_link_issue(purpose, card_id, return_url,
								card_spi_datum(0, ttl_column, &isnull), &result[1]);
	tupdesc = BlessTupleDesc(tupdesc);
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	return row;
}

/* The hash a presented token is stored under; 22023 if it is not one. */
static Datum
link_token_hash(const CardLinkKind *kind, const char *token)
{
	size_t		len = strlen(token);
	size_t		plen = strlen(kind->prefix);
	const char *payload = strncmp(token, kind->prefix, plen) == 0 ?
		card_shard_token_payload(token, plen) : NULL;

	if (payload == NULL ||
		strlen(payload) != CARD_TOKEN_TEXT_LEN(LINK_TOKEN_BYTES) ||
		strspn(payload,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
		!= strlen(payload))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("malformed %s token", kind->noun),
				 errhint("Pass the token parameter of the redirect URL unchanged.")));
	return PointerGetDatum(card_hmac_bytea(CARD_LABEL_ONE_TIME_TOKEN,
										   (const uint8 *) token, len));
}

/* Refuse the link just read by find_link if it can no longer be used. */
static void
link_check_usable(const CardLinkKind *kind, Datum card_id)
{
	bool		isnull;
	char	   *outcome = card_spi_text(0, FOUND_OUTCOME);

	if (outcome != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s token of card %s was already %s", kind->noun,
						card_uuid_string(card_id),
						strcmp(outcome, "completed") == 0 ? "used" : "replaced by a newer one"),
				 errhint("Start the %s again with %s.", kind->noun, kind->start)));
	if (!DatumGetBool(card_spi_datum(0, FOUND_UNEXPIRED, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s token of card %s expired at %s", kind->noun,
						card_uuid_string(card_id), card_spi_text(0, FOUND_EXPIRES_AT)),
				 errhint("Start the %s again with %s.", kind->noun, kind->start)));
}

/*
 * P0002 for a token that opens no card the caller may see: an unknown one,
 * or one whose card left the caller's programmes (a grant revoked) while
 * the call waited for the card's chain.
 */
void
card_link_refuse_unknown(CardLinkPurpose purpose)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("%s token does not exist", link_kinds[purpose].noun)));
}

/*
 * The card of a presented token, without using the token up: P0002 if no
 * such link exists (for the caller), 55000 if it was used, superseded or
 * has expired.  Sets *hash for card_link_consume().
 */
Datum
card_link_open(CardLinkPurpose purpose, const char *token, Datum *hash)
{
	const CardLinkKind *kind = &link_kinds[purpose];
	Datum		args[2];
	Datum		card_id;
	bool		isnull;

	*hash = link_token_hash(kind, token);
	args[0] = *hash;
	args[1] = CStringGetTextDatum(kind->purpose);
	if (card_exec(&find_link, args, NULL, false, 1) != 1)
		card_link_refuse_unknown(purpose);
	card_id = card_spi_datum(0, FOUND_CARD_ID, &isnull);
	link_check_usable(kind, card_id);
	return card_id;
}

/*
 * Use the token up; returns the link's return URL.  Of two uses of one
 * token, the one that comes second finds it used (55000).
 */
char *
card_link_consume(CardLinkPurpose purpose, Datum hash, Datum card_id)
{
	const CardLinkKind *kind = &link_kinds[purpose];
	Datum		args[2];

	if (card_exec(&consume, &hash, NULL, false, 1) == 1)
		return card_spi_text(0, CONSUMED_RETURN_URL);
	args[0] = hash;
	args[1] = CStringGetTextDatum(kind->purpose);
	if (card_exec(&find_link, args, NULL, false, 1) == 1)
		link_check_usable(kind, card_id);
	elog(ERROR, "%s token vanished while it was being used", kind->noun);
	pg_unreachable();
}
