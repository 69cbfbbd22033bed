/*-------------------------------------------------------------------------
 *
 * authorize.c
 *	  card.card_authorize(): decide in real time whether a card payment may
 *	  go through, and hold the money if it may.
 *
 * Locks are taken in one fixed order, the card and then its account, so
 * authorisations on two cards that share an account queue on the account
 * instead of deadlocking.  Under those two locks every check reads a
 * stable state: card status and expiry, account status and currency,
 * channel, country and category controls of both, then each applicable
 * limit's running counter for its current window (one row per limit, so
 * the cost does not grow with the card's history), then available funds.
 * An approval adds the amount to the account's held balance and to the
 * counters; a decline is recorded with its reason and changes no balance.
 * The same external_id returns the first answer and holds nothing new.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"

#define AMOUNT_MAX INT64CONST(999999999999999)
#define EXTERNAL_ID_MAX 200
#define MERCHANT_NAME_MAX 200

/* The card by token, locked, with its own controls judged for this payment. */
static CardPlan lock_card = {
	NULL,
	"SELECT c.id, c.account_id, c.programme_id, c.status::text,"
	" c.expires_on <= (pg_catalog.now() AT TIME ZONE 'UTC')::date,"
	" (c.mcc_allowed IS NULL OR c.mcc_allowed @> $2)"
	"   AND (c.mcc_blocked IS NULL OR NOT c.mcc_blocked @> $2),"
	" (c.countries_allowed IS NULL OR $3 = ANY (c.countries_allowed))"
	"   AND (c.countries_blocked IS NULL OR $3 <> ALL (c.countries_blocked)),"
	" $4 <> ALL (c.channels_blocked),"
	" p.hold_lifetime"
	" FROM card.card c JOIN card.programme p ON p.id = c.programme_id"
	" WHERE c.token = $1 FOR NO KEY UPDATE OF c",
	4, {TEXTOID, INT4OID, TEXTOID, TEXTOID}
};

static CardPlan find_external = {
	NULL,
	"SELECT id, approved, decline_reason, available_after, card_id = $3"
	" FROM card.\"authorization\" WHERE programme_id = $1 AND external_id = $2",
	3, {UUIDOID, TEXTOID, UUIDOID}
};

/* The account, locked second, with its controls judged likewise. */
static CardPlan lock_account = {
	NULL,
	"SELECT a.status, a.currency = $5, a.balance - a.held,"
	" (a.mcc_allowed IS NULL OR a.mcc_allowed @> $2)"
	"   AND (a.mcc_blocked IS NULL OR NOT a.mcc_blocked @> $2),"
	" (a.countries_allowed IS NULL OR $3 = ANY (a.countries_allowed))"
	"   AND (a.countries_blocked IS NULL OR $3 <> ALL (a.countries_blocked)),"
	" $4 <> ALL (a.channels_blocked)"
	" FROM card.account a WHERE a.id = $1 FOR NO KEY UPDATE",
	5, {UUIDOID, INT4OID, TEXTOID, TEXTOID, TEXTOID}
};

/* Does the amount fit every applicable limit of the card and the account? */
static CardPlan limits_fit = {
	NULL,
	"SELECT coalesce(bool_and(CASE WHEN l.period = 'per_authorization'"
	"                              THEN $4 <= l.amount"
	"                              ELSE coalesce(sc.spent, 0) + $4 <= l.amount END), true)"
	" FROM card.spend_limit l"
	" LEFT JOIN card.spend_counter sc ON sc.limit_id = l.id"
	"  AND sc.window_start = card.spend_window_start(l.period, pg_catalog.now())"
	" WHERE (l.card_id = $1 OR l.account_id = $2)"
	"   AND (l.categories IS NULL OR l.categories @> $3)",
	4, {UUIDOID, UUIDOID, INT4OID, INT8OID}
};

static CardPlan place_hold = {
	NULL,
	"UPDATE card.account SET held = held + $2"
	" WHERE id = $1 AND balance - held >= $2 RETURNING balance - held",
	2, {UUIDOID, INT8OID}
};

static CardPlan count_spend = {
	NULL,
	"INSERT INTO card.spend_counter AS sc (limit_id, window_start, spent)"
	" SELECT l.id, card.spend_window_start(l.period, pg_catalog.now()), $4"
	" FROM card.spend_limit l"
	" WHERE (l.card_id = $1 OR l.account_id = $2)"
	"   AND l.period <> 'per_authorization'"
	"   AND (l.categories IS NULL OR l.categories @> $3)"
	" ON CONFLICT (limit_id, window_start) DO UPDATE SET spent = sc.spent + EXCLUDED.spent",
	4, {UUIDOID, UUIDOID, INT4OID, INT8OID}
};

static CardPlan record = {
	NULL,
	"INSERT INTO card.\"authorization\" (id, programme_id, card_id, account_id,"
	" external_id, amount, currency, mcc, merchant_country, channel, merchant_name,"
	" approved, decline_reason, status, held, available_after, expires_at)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
	" CASE WHEN $12 THEN 'pending' ELSE 'declined' END,"
	" CASE WHEN $12 THEN $6 ELSE 0 END, $14,"
	" CASE WHEN $12 THEN pg_catalog.now() + $15 END)",
	15, {UUIDOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID, INT8OID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, INT8OID, INTERVALOID}
};

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
	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("%s is required", field)));
	return text_to_cstring(PG_GETARG_TEXT_PP(arg));
}

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
PG_FUNCTION_INFO_V1(card_authorize);
Datum
card_authorize(PG_FUNCTION_ARGS)
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
	Datum		card_id;
	Datum		account_id;
	Datum		programme_id;
	char	   *card_status;
	bool		card_date_expired;
	bool		card_controls[3];
	Datum		hold_lifetime;
	char	   *account_status;
	bool		currency_matches;
	int64		available;
	bool		account_controls[3];
	const char *reason = NULL;
	pg_uuid_t	auth_uuid;
	Datum		auth_id;
	Datum		result[4];
	bool		result_nulls[4] = {false, false, false, false};
	Datum		row;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("amount is required")));
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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* 1. The card, locked first. */
	{
		Datum		values[4] = {
			CStringGetTextDatum(token), Int32GetDatum(atoi(mcc)),
			CStringGetTextDatum(country), CStringGetTextDatum(channel)
		};

		if (card_exec(&lock_card, values, NULL, false, 1) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("no card has this token"),
					 errhint("Processors refer to cards by the token of card.card_token().")));
	}
	card_id = card_spi_datum(0, 1, &isnull);
	account_id = card_spi_datum(0, 2, &isnull);
	programme_id = card_spi_datum(0, 3, &isnull);
	card_status = card_spi_text(0, 4);
	card_date_expired = column_bool(5);
	card_controls[0] = column_bool(6);	/* category */
	card_controls[1] = column_bool(7);	/* country */
	card_controls[2] = column_bool(8);	/* channel */
	hold_lifetime = card_spi_datum(0, 9, &isnull);

	/* 2. A repeated external_id gets the first answer. */
	{
		Datum		values[3] = {programme_id, CStringGetTextDatum(external_id), card_id};

		if (card_exec(&find_external, values, NULL, false, 1) == 1)
		{
			if (!column_bool(5))
				ereport(ERROR,
						(errcode(ERRCODE_UNIQUE_VIOLATION),
						 errmsg("external_id \"%s\" was already used for another card", external_id)));
			for (int i = 0; i < 4; i++)
				result[i] = card_spi_datum(0, i + 1, &result_nulls[i]);
			row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, result_nulls));
			row = SPI_datumTransfer(row, false, -1);
			SPI_finish();
			PG_RETURN_DATUM(row);
		}
	}

	/* 3. The account, locked second. */
	{
		Datum		values[5] = {
			account_id, Int32GetDatum(atoi(mcc)), CStringGetTextDatum(country),
			CStringGetTextDatum(channel), CStringGetTextDatum(currency)
		};

		if (card_exec(&lock_account, values, NULL, false, 1) != 1)
			elog(ERROR, "account of card %s vanished", card_uuid_string(card_id));
	}
	account_status = card_spi_text(0, 1);
	currency_matches = column_bool(2);
	available = DatumGetInt64(card_spi_datum(0, 3, &isnull));
	account_controls[0] = column_bool(4);
	account_controls[1] = column_bool(5);
	account_controls[2] = column_bool(6);

	/* 4. The checks: the card, the account, then the payment's channel,
	 * country and category, then the limits, then the funds. */
	if (strcmp(card_status, "expired") == 0 ||
		(card_date_expired && card_status_live(card_status_from_name(card_status))))
		reason = "card_expired";
	else if (strcmp(card_status, "active") != 0)
		reason = "card_not_active";
	else if (strcmp(account_status, "active") != 0)
		reason = "account_not_active";
	else if (!currency_matches)
		reason = "currency_mismatch";
	else if (!card_controls[2] || !account_controls[2])
		reason = "channel_blocked";
	else if (!card_controls[1] || !account_controls[1])
		reason = "country_blocked";
	else if (!card_controls[0] || !account_controls[0])
		reason = "category_blocked";
	else
	{
		Datum		values[4] = {card_id, account_id, Int32GetDatum(atoi(mcc)),
		Int64GetDatum(amount)};

		card_exec(&limits_fit, values, NULL, false, 1);
		if (!column_bool(1))
			reason = "spending_limit";
		else if (available < amount)
			reason = "insufficient_funds";
		else
		{
			Datum		hold[2] = {account_id, Int64GetDatum(amount)};

			/* Guarded: never below zero available, even if a check above erred. */
			if (card_exec(&place_hold, hold, NULL, false, 1) != 1)
				reason = "insufficient_funds";
			else
			{
				available = DatumGetInt64(card_spi_datum(0, 1, &isnull));
				card_exec(&count_spend, values, NULL, false, 0);
			}
		}
	}

	/* 5. Record the decision. */
	{
		Datum		values[15];
		char		nulls[15];

		memset(nulls, ' ', sizeof(nulls));
		auth_id = card_random_uuid(&auth_uuid);
		values[0] = auth_id;
		values[1] = programme_id;
		values[2] = card_id;
		values[3] = account_id;
		values[4] = CStringGetTextDatum(external_id);
		values[5] = Int64GetDatum(amount);
		values[6] = CStringGetTextDatum(currency);
		values[7] = CStringGetTextDatum(mcc);
		values[8] = CStringGetTextDatum(country);
		values[9] = CStringGetTextDatum(channel);
		values[10] = merchant_name ? CStringGetTextDatum(merchant_name) : (Datum) 0;
		nulls[10] = merchant_name ? ' ' : 'n';
		values[11] = BoolGetDatum(reason == NULL);
		values[12] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
		nulls[12] = reason ? ' ' : 'n';
		values[13] = Int64GetDatum(available);
		values[14] = hold_lifetime;
		card_exec(&record, values, nulls, false, 0);
	}

	result[0] = auth_id;
	result[1] = BoolGetDatum(reason == NULL);
	result[2] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	result_nulls[2] = reason == NULL;
	result[3] = Int64GetDatum(available);
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, result_nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(row);
}
