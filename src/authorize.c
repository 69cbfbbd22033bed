/*-------------------------------------------------------------------------
 *
 * authorize.c
 *	  card.card_authorize(): decide in real time whether a card payment may
 *	  go through, and hold the money if it may.
 *
 * One lock serialises everything an authorisation depends on: the row of
 * the card's account.  Every authorisation of any card on the account takes
 * it first, and so do changes to card or account controls, so limits and
 * their counters hold still under it, and two cards on one account queue
 * on it instead of deadlocking.  The card itself is then share-locked
 * (account, then card: no path locks them the other way round), so a
 * freeze and an authorisation on one card take turns.
 *
 * Three statements: lock the account, judge (card, controls, earlier answer
 * to the same external_id, each applicable limit's running counter for its
 * current window: one row per limit, so the cost does not grow with the
 * card's history), then approve (guarded hold, counters, record) or record
 * the decline.  The same external_id returns the first answer.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"

#define AMOUNT_MAX INT64CONST(999999999999999)
#define EXTERNAL_ID_MAX 200
#define MERCHANT_NAME_MAX 200

/*
 * 1. The card's account, locked.  Every authorisation of a card goes
 * through this one lock, and so do changes to the card's or the account's
 * controls: under it, counters and limits hold still.
 */
enum LockAccountColumn
{
	ACCOUNT_STATUS = 1,
	ACCOUNT_CURRENCY_MATCHES,
	ACCOUNT_AVAILABLE,
	ACCOUNT_CATEGORY_OK,
	ACCOUNT_COUNTRY_OK,
	ACCOUNT_CHANNEL_OK
};

static CardPlan lock_account = {
	NULL,
	"SELECT a.status, a.currency = $2, a.balance - a.held,"
	" (a.mcc_allowed IS NULL OR a.mcc_allowed @> $3)"
	"   AND (a.mcc_blocked IS NULL OR NOT a.mcc_blocked @> $3),"
	" (a.countries_allowed IS NULL OR $4 = ANY (a.countries_allowed))"
	"   AND (a.countries_blocked IS NULL OR $4 <> ALL (a.countries_blocked)),"
	" $5 <> ALL (a.channels_blocked)"
	" FROM card.account a"
	" WHERE a.id = (SELECT c.account_id FROM card.card c"
	"               WHERE c.token = $1 AND card.programme_visible(c.programme_id))"
	" FOR NO KEY UPDATE OF a",
	5, {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID}
};

/*
 * 2. Read after the lock (a fresh snapshot): the card and its controls, an
 * earlier answer to the same external_id, and whether the amount fits every
 * applicable limit's running counter for its current window.  The card is
 * share-locked: a status change in flight (a freeze) is waited for and
 * then judged, and one that comes later waits for this payment.
 */
enum JudgeColumn
{
	JUDGE_CARD_ID = 1,
	JUDGE_ACCOUNT_ID,
	JUDGE_PROGRAMME_ID,
	JUDGE_EFFECTIVE_STATUS,
	JUDGE_CATEGORY_OK,
	JUDGE_COUNTRY_OK,
	JUDGE_CHANNEL_OK,
	JUDGE_HOLD_LIFETIME,
	JUDGE_LIMITS_OK,
	JUDGE_EARLIER_ID,			/* the earlier answer to this external_id: */
	JUDGE_EARLIER_APPROVED,		/* its four result columns, in the order of */
	JUDGE_EARLIER_REASON,		/* card_authorize's result */
	JUDGE_EARLIER_AVAILABLE,
	JUDGE_EARLIER_SAME_CARD,
	JUDGE_CHAIN_ID
};

static CardPlan judge = {
	NULL,
	"SELECT c.id, c.account_id, c.programme_id,"
	" card.effective_status(c.status, c.expires_on)::text,"
	" (c.mcc_allowed IS NULL OR c.mcc_allowed @> $2)"
	"   AND (c.mcc_blocked IS NULL OR NOT c.mcc_blocked @> $2),"
	" (c.countries_allowed IS NULL OR $3 = ANY (c.countries_allowed))"
	"   AND (c.countries_blocked IS NULL OR $3 <> ALL (c.countries_blocked)),"
	" $4 <> ALL (c.channels_blocked),"
	" p.hold_lifetime,"
	" (SELECT coalesce(bool_and($6 + CASE WHEN l.window_start ="
	"                                   card.spend_window_start(l.period, pg_catalog.now())"
	"                                 THEN l.spent ELSE 0 END <= l.amount), true)"
	"    FROM card.spend_limit l"
	"   WHERE (l.card_id = card.chain_of(c.id, c.chain_id) OR l.account_id = c.account_id)"
	"     AND (l.categories IS NULL OR l.categories @> $2)),"
	" h.id, h.approved, h.decline_reason::text, h.available_after, h.card_id = c.id,"
	" card.chain_of(c.id, c.chain_id)"
	" FROM card.card c"
	" JOIN card.programme p ON p.id = c.programme_id"
	" LEFT JOIN card.\"authorization\" h"
	"   ON h.programme_id = c.programme_id AND h.external_id = $5"
	" WHERE c.token = $1 FOR SHARE OF c",
	6, {TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, INT8OID}
};

/*
 * The parameters approve and decline share, as indexes of their values[]
 * ($1 is index 0): the authorisation's record.  Each plan's own follow.
 */
enum RecordParam
{
	RECORD_ID,
	RECORD_PROGRAMME_ID,
	RECORD_CARD_ID,
	RECORD_ACCOUNT_ID,
	RECORD_EXTERNAL_ID,
	RECORD_AMOUNT,
	RECORD_CURRENCY,
	RECORD_MCC,
	RECORD_MERCHANT_COUNTRY,
	RECORD_CHANNEL,
	RECORD_MERCHANT_NAME,
	RECORD_PARAMS
};

/* The event's data: what a consumer acts on, nothing secret. */
#define EVENT_DATA \
	"jsonb_build_object('authorization_id', $1, 'amount', $6, 'currency', $7," \
	" 'mcc', $8, 'merchant_country', $9, 'channel', $10, 'merchant_name', $11"

#define AUTHORIZATION_COLUMNS \
	"INSERT INTO card.\"authorization\" (id, programme_id, card_id, account_id," \
	" external_id, amount, currency, mcc, merchant_country, channel, merchant_name," \
	" approved, decline_reason, status, held, available_after, expires_at)"

/*
 * 3a. An approval in one statement: the guarded hold (never below zero
 * available), the counters of every applicable limit, the record.  If the
 * guard fails, nothing is written and no row comes back.
 */
enum ApproveParam
{
	APPROVE_MCC_CODE = RECORD_PARAMS,	/* $12 */
	APPROVE_HOLD_LIFETIME,
	APPROVE_EVENTS,
	APPROVE_CHAIN_ID,			/* whose limits count the amount */
	APPROVE_PARAMS
};

enum ApproveColumn
{
	APPROVED_AVAILABLE = 1,
	APPROVED_SEQ				/* NULL when card.events is off */
};

static CardPlan approve = {
	NULL,
	"WITH hold AS ("
	"  UPDATE card.account SET held = held + $6"
	"   WHERE id = $4 AND balance - held >= $6 RETURNING balance - held AS available),"
	" counted AS ("
	"  UPDATE card.spend_limit l"
	"     SET spent = $6 + CASE WHEN l.window_start ="
	"                             card.spend_window_start(l.period, pg_catalog.now())"
	"                           THEN l.spent ELSE 0 END,"
	"         window_start = card.spend_window_start(l.period, pg_catalog.now())"
	"    FROM hold"
	"   WHERE (l.card_id = $15 OR l.account_id = $4)"
	"     AND l.period <> 'per_authorization'"
	"     AND (l.categories IS NULL OR l.categories @> $12))"
	" , fed AS ("
	"  INSERT INTO card.event (type, card_id, account_id, programme_id, data)"
	"  SELECT 'authorization.approved', $3, $4, $2, " EVENT_DATA ", 'available', hold.available)"
	"    FROM hold WHERE $14 RETURNING seq)"
	" " AUTHORIZATION_COLUMNS
	" SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, true, NULL, 'pending', $6,"
	"        hold.available, pg_catalog.now() + $13"
	"   FROM hold RETURNING available_after, (SELECT seq FROM fed)",
	APPROVE_PARAMS, {UUIDOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID, INT8OID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID, INT4OID, INTERVALOID, BOOLOID, UUIDOID}
};

/* 3b. A decline: recorded with its reason; no balance or counter moves. */
enum DeclineParam
{
	DECLINE_REASON = RECORD_PARAMS, /* $12 */
	DECLINE_AVAILABLE,
	DECLINE_EVENTS,
	DECLINE_PARAMS
};

enum DeclineColumn
{
	DECLINED_SEQ = 1			/* no row when card.events is off */
};

static CardPlan decline = {
	NULL,
	"WITH recorded AS ("
	AUTHORIZATION_COLUMNS
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, false,"
	"         $12::card.decline_reason, 'declined', 0,"
	"         $13, NULL))"
	" INSERT INTO card.event (type, card_id, account_id, programme_id, data)"
	" SELECT 'authorization.declined', $3, $4, $2, " EVENT_DATA ","
	"        'decline_reason', $12, 'available', $13)"
	"  WHERE $14 RETURNING seq",
	DECLINE_PARAMS, {UUIDOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID, INT8OID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, BOOLOID}
};

/* One values[] serves approve and then, if its guard refuses, decline. */
#define RECORD_VALUES_MAX APPROVE_PARAMS
StaticAssertDecl((int) DECLINE_PARAMS <= (int) RECORD_VALUES_MAX,
				 "values[] of approve must hold decline's parameters");

static void
check_code(const char *field, const char *value, int len, bool digits)
{
	if ((int) strlen(value) != len ||
		(int) strspn(value, digits ? "0123456789" : "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"%s\"", field, value),
				 errhint(digits ? "Give %d digits." : "Give %d upper-case letters.", len)));
}

static char *
required_text(FunctionCallInfo fcinfo, int arg, const char *field)
{
	card_require(!PG_ARGISNULL(arg), field);
	return text_to_cstring(PG_GETARG_TEXT_PP(arg));
}

/* A boolean column of the first result row; NULL reads as false. */
static bool
column_bool(int col)
{
	bool		isnull;
	Datum		d = card_spi_datum(0, col, &isnull);

	return !isnull && DatumGetBool(d);
}

/*
 * card.card_authorize(card_token text, amount bigint, currency text,
 *	 mcc text, merchant_country text, channel text, external_id text,
 *	 merchant_name text) RETURNS TABLE(authorization_id uuid, approved
 *	 boolean, decline_reason text, available bigint)
 */
CARD_ENTRY_POINT(card_authorize)
{
	char	   *token = required_text(fcinfo, 0, "card_token");
	int64		amount;
	char	   *currency = required_text(fcinfo, 2, "currency");
	char	   *mcc = required_text(fcinfo, 3, "mcc");
	char	   *country = required_text(fcinfo, 4, "merchant_country");
	char	   *channel = required_text(fcinfo, 5, "channel");
	char	   *external_id = required_text(fcinfo, 6, "external_id");
	char	   *merchant_name = PG_ARGISNULL(7) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(7));
	static const char *const channels[] = {
		"ecommerce", "atm", "contactless", "chip", "magstripe"
	};
	bool		channel_known = false;
	TupleDesc	tupdesc;
	bool		isnull;
	Datum		mcc_code;
	Datum		card_id;
	Datum		account_id;
	Datum		programme_id;
	char	   *card_status;
	bool		account_active;
	bool		currency_matches;
	bool		category_ok;
	bool		country_ok;
	bool		channel_ok;
	int64		available;
	const char *reason = NULL;
	Datum		values[RECORD_VALUES_MAX];
	char		nulls[RECORD_VALUES_MAX];
	Datum		result[4];
	bool		result_nulls[4] = {false, false, false, false};
	Datum		row;

	card_require(!PG_ARGISNULL(1), "amount");
	amount = PG_GETARG_INT64(1);
	if (amount <= 0 || amount > AMOUNT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("authorization amount " INT64_FORMAT " is out of range", amount),
				 errhint("Amounts are positive, in minor units, at most " INT64_FORMAT ".", AMOUNT_MAX)));
	check_code("currency", currency, 3, false);
	check_code("mcc", mcc, 4, true);
	check_code("merchant_country", country, 2, false);
	for (size_t i = 0; i < lengthof(channels); i++)
		if (strcmp(channel, channels[i]) == 0)
			channel_known = true;
	if (!channel_known)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid channel \"%s\"", channel),
				 errhint("Use ecommerce, atm, contactless, chip or magstripe.")));
	if (strlen(external_id) == 0 || strlen(external_id) > EXTERNAL_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("external_id must have 1 to %d bytes", EXTERNAL_ID_MAX)));
	if (merchant_name && strlen(merchant_name) > MERCHANT_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("merchant_name is longer than %d bytes", MERCHANT_NAME_MAX)));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	mcc_code = Int32GetDatum(atoi(mcc));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* 1. Lock the account: the one lock every authorisation of the card takes. */
	{
		Datum		args[5] = {
			CStringGetTextDatum(token), CStringGetTextDatum(currency), mcc_code,
			CStringGetTextDatum(country), CStringGetTextDatum(channel)
		};

		if (card_exec(&lock_account, args, NULL, false, 1) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("no card has this token"),
					 errhint("Processors refer to cards by the token of card.card_token().")));
	}
	account_active = strcmp(card_spi_text(0, ACCOUNT_STATUS), "active") == 0;
	currency_matches = column_bool(ACCOUNT_CURRENCY_MATCHES);
	available = DatumGetInt64(card_spi_datum(0, ACCOUNT_AVAILABLE, &isnull));
	category_ok = column_bool(ACCOUNT_CATEGORY_OK);
	country_ok = column_bool(ACCOUNT_COUNTRY_OK);
	channel_ok = column_bool(ACCOUNT_CHANNEL_OK);

	/* 2. The card, the earlier answer if any, the limits. */
	{
		Datum		args[6] = {
			CStringGetTextDatum(token), mcc_code, CStringGetTextDatum(country),
			CStringGetTextDatum(channel), CStringGetTextDatum(external_id),
			Int64GetDatum(amount)
		};

		if (card_exec(&judge, args, NULL, false, 1) != 1)
			elog(ERROR, "card with this token vanished");
	}
	card_id = card_spi_datum(0, JUDGE_CARD_ID, &isnull);
	account_id = card_spi_datum(0, JUDGE_ACCOUNT_ID, &isnull);
	programme_id = card_spi_datum(0, JUDGE_PROGRAMME_ID, &isnull);

	/* The same external_id again: the first answer, nothing new held. */
	(void) card_spi_datum(0, JUDGE_EARLIER_ID, &isnull);
	if (!isnull)
	{
		if (!column_bool(JUDGE_EARLIER_SAME_CARD))
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("external_id \"%s\" was already used for another card", external_id)));
		for (int i = 0; i < 4; i++)
			result[i] = card_spi_datum(0, JUDGE_EARLIER_ID + i, &result_nulls[i]);
		row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, result_nulls));
		row = SPI_datumTransfer(row, false, -1);
		SPI_finish();
		PG_RETURN_DATUM(row);
	}

	/*
	 * The card, the account, the currency, then each control (a block on
	 * the card or on the account declines), the limits, the funds.
	 */
	card_status = card_spi_text(0, JUDGE_EFFECTIVE_STATUS);	/* expired once its month ended */
	if (strcmp(card_status, "expired") == 0)
		reason = "card_expired";
	else if (strcmp(card_status, "active") != 0)
		reason = "card_not_active";
	else if (!account_active)
		reason = "account_not_active";
	else if (!currency_matches)
		reason = "currency_mismatch";
	else if (!channel_ok || !column_bool(JUDGE_CHANNEL_OK))
		reason = "channel_blocked";
	else if (!country_ok || !column_bool(JUDGE_COUNTRY_OK))
		reason = "country_blocked";
	else if (!category_ok || !column_bool(JUDGE_CATEGORY_OK))
		reason = "category_blocked";
	else if (!column_bool(JUDGE_LIMITS_OK))
		reason = "spending_limit";
	else if (available < amount)
		reason = "insufficient_funds";

	memset(nulls, ' ', sizeof(nulls));
	values[RECORD_ID] = card_time_uuid();
	values[RECORD_PROGRAMME_ID] = programme_id;
	values[RECORD_CARD_ID] = card_id;
	values[RECORD_ACCOUNT_ID] = account_id;
	values[RECORD_EXTERNAL_ID] = CStringGetTextDatum(external_id);
	values[RECORD_AMOUNT] = Int64GetDatum(amount);
	values[RECORD_CURRENCY] = CStringGetTextDatum(currency);
	values[RECORD_MCC] = CStringGetTextDatum(mcc);
	values[RECORD_MERCHANT_COUNTRY] = CStringGetTextDatum(country);
	values[RECORD_CHANNEL] = CStringGetTextDatum(channel);
	values[RECORD_MERCHANT_NAME] = merchant_name ? CStringGetTextDatum(merchant_name) : (Datum) 0;
	nulls[RECORD_MERCHANT_NAME] = merchant_name ? ' ' : 'n';

	/* 3. Approve in one statement, or record the decline. */
	card_event_writer_lock(programme_id);
	if (reason == NULL)
	{
		values[APPROVE_MCC_CODE] = mcc_code;
		values[APPROVE_HOLD_LIFETIME] = card_spi_datum(0, JUDGE_HOLD_LIFETIME, &isnull);
		values[APPROVE_EVENTS] = BoolGetDatum(card_events_enabled);
		values[APPROVE_CHAIN_ID] = card_spi_datum(0, JUDGE_CHAIN_ID, &isnull);	/* the chain's limits */
		if (card_exec(&approve, values, nulls, false, 1) == 1)
		{
			bool		no_event;
			Datum		seq = card_spi_datum(0, APPROVED_SEQ, &no_event);

			available = DatumGetInt64(card_spi_datum(0, APPROVED_AVAILABLE, &isnull));
			if (!no_event)
				card_event_notify(DatumGetInt64(seq), "authorization.approved");
		}
		else
			reason = "insufficient_funds";	/* the guard refused */
	}
	if (reason != NULL)
	{
		values[DECLINE_REASON] = CStringGetTextDatum(reason);
		values[DECLINE_AVAILABLE] = Int64GetDatum(available);
		values[DECLINE_EVENTS] = BoolGetDatum(card_events_enabled);
		if (card_exec(&decline, values, nulls, false, 0) == 1)
			card_event_notify(DatumGetInt64(card_spi_datum(0, DECLINED_SEQ, &isnull)),
							  "authorization.declined");
	}

	result[0] = values[RECORD_ID];
	result[1] = BoolGetDatum(reason == NULL);
	result[2] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	result_nulls[2] = reason == NULL;
	result[3] = Int64GetDatum(available);
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, result_nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(row);
}
