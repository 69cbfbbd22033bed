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

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"

#define AMOUNT_MAX INT64CONST(999999999999999)
#define EXTERNAL_ID_MAX 200
#define MERCHANT_NAME_MAX 200

/*
 * 1. The card's account, locked.  Every authorisation of a card goes
 * through this one lock, and so do changes to the card's or the account's
 * controls: under it, counters and limits hold still.  The card (by its
 * token) and then the account are read by their keys (keyread.c): as a
 * statement, starting its plan (a row lock over an index scan, the card's
 * look-up as an init plan) cost more than reading the two rows.
 */
enum CardByTokenColumn
{
	TOKEN_CARD_ACCOUNT_ID,
	TOKEN_CARD_PROGRAMME_ID
};

static CardKeyedTable card_by_token = {
	"card", "card_token_key", 1, {"account_id", "programme_id", NULL}
};

enum LockAccountColumn
{
	ACCOUNT_STATUS,
	ACCOUNT_CURRENCY,
	ACCOUNT_BALANCE,
	ACCOUNT_HELD,
	ACCOUNT_MCC_ALLOWED,
	ACCOUNT_MCC_BLOCKED,
	ACCOUNT_COUNTRIES_ALLOWED,
	ACCOUNT_COUNTRIES_BLOCKED,
	ACCOUNT_CHANNELS_BLOCKED
};

static CardKeyedTable account_by_id = {
	"account", "account_pkey", 1,
	{"status", "currency", "balance", "held", "mcc_allowed", "mcc_blocked",
	"countries_allowed", "countries_blocked", "channels_blocked", NULL}
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

/*
 * The earlier authorisation of the same external id is read with LIMIT 1
 * (its key is unique): external_id has no statistics, so a join on it
 * would be estimated at 0.5 % of the table's rows, a cost that grows with
 * the table.
 */
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
	" LEFT JOIN LATERAL (SELECT * FROM card.\"authorization\" h"
	"   WHERE h.programme_id = c.programme_id AND h.external_id = $5 LIMIT 1) h ON true"
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

/* The columns of card_authorize's result, as heap_form_tuple takes them. */
enum ResultColumn
{
	RESULT_AUTHORIZATION_ID,
	RESULT_APPROVED,
	RESULT_DECLINE_REASON,
	RESULT_AVAILABLE,
	RESULT_COLUMNS
};

/* The arguments of one authorisation, checked. */
typedef struct AuthorizeRequest
{
	char	   *token;
	int64		amount;
	char	   *currency;
	char	   *mcc;
	Datum		mcc_code;		/* mcc as the integer the plans compare */
	char	   *country;
	char	   *channel;
	char	   *external_id;
	char	   *merchant_name;	/* NULL if none was given */
} AuthorizeRequest;

/* The account's side of the judgement, read under its lock. */
typedef struct AuthorizeAccount
{
	bool		active;
	bool		currency_matches;
	int64		available;
	bool		category_ok;
	bool		country_ok;
	bool		channel_ok;
} AuthorizeAccount;

/* card_authorize's answer: one result row. */
typedef struct AuthorizeAnswer
{
	Datum		values[RESULT_COLUMNS];
	bool		nulls[RESULT_COLUMNS];
} AuthorizeAnswer;

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

/* Read and check the arguments (23502 if one is missing, 22023 if one is bad). */
static void
authorize_read_request(FunctionCallInfo fcinfo, AuthorizeRequest *req)
{
	static const char *const channels[] = {CARD_CHANNELS};
	bool		channel_known = false;

	req->token = required_text(fcinfo, 0, "card_token");
	req->currency = required_text(fcinfo, 2, "currency");
	req->mcc = required_text(fcinfo, 3, "mcc");
	req->country = required_text(fcinfo, 4, "merchant_country");
	req->channel = required_text(fcinfo, 5, "channel");
	req->external_id = required_text(fcinfo, 6, "external_id");
	req->merchant_name = PG_ARGISNULL(7) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(7));

	card_require(!PG_ARGISNULL(1), "amount");
	req->amount = PG_GETARG_INT64(1);
	if (req->amount <= 0 || req->amount > AMOUNT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("authorization amount " INT64_FORMAT " is out of range", req->amount),
				 errhint("Amounts are positive, in minor units, at most " INT64_FORMAT ".", AMOUNT_MAX)));
	check_code("currency", req->currency, 3, false);
	check_code("mcc", req->mcc, 4, true);
	check_code("merchant_country", req->country, 2, false);
	for (size_t i = 0; i < lengthof(channels); i++)
		if (strcmp(req->channel, channels[i]) == 0)
			channel_known = true;
	if (!channel_known)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid channel \"%s\"", req->channel),
				 errhint("Channels: %s.", card_name_list(channels, lengthof(channels)))));
	if (strlen(req->external_id) == 0 || strlen(req->external_id) > EXTERNAL_ID_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("external_id must have 1 to %d bytes", EXTERNAL_ID_MAX)));
	if (req->merchant_name && strlen(req->merchant_name) > MERCHANT_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("merchant_name is longer than %d bytes", MERCHANT_NAME_MAX)));
	req->mcc_code = Int32GetDatum(atoi(req->mcc));
}

/*
 * Whether value is in a text[] column, as "value = ANY (list)" answers
 * true (a NULL element matches nothing, and makes a miss unknown: *unknown).
 */
static bool
text_list_has(Datum list, const char *value, bool *unknown)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;

	deconstruct_array(DatumGetArrayTypeP(list), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &count);
	*unknown = false;
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			*unknown = true;
		else if (strcmp(TextDatumGetCString(elems[i]), value) == 0)
			return true;
	}
	return false;
}

/* "list IS NULL OR value = ANY (list)", an unknown reading as false. */
static bool
text_list_allows(CardKeyRead *read, int column, const char *value)
{
	bool		isnull;
	bool		unknown;
	Datum		list = card_key_column(read, column, &isnull);

	return isnull || text_list_has(list, value, &unknown);
}

/* "list IS NULL OR value <> ALL (list)", an unknown reading as false. */
static bool
text_list_lets_through(CardKeyRead *read, int column, const char *value)
{
	bool		isnull;
	bool		unknown;
	Datum		list = card_key_column(read, column, &isnull);

	return isnull || (!text_list_has(list, value, &unknown) && !unknown);
}

/* Whether an int4multirange column holds the category, as @> does. */
static bool
mcc_ranges_hold(Datum ranges, Datum mcc_code)
{
	return DatumGetBool(OidFunctionCall2(F_MULTIRANGE_CONTAINS_ELEM, ranges, mcc_code));
}

/*
 * 1. Lock the card's account, the one lock every authorisation of the card
 * takes (P0002 if no card has the token), and read its side of the verdict:
 * the account's controls as card_set_controls stores them (NULL: no list).
 */
static void
authorize_lock_account(const AuthorizeRequest *req, AuthorizeAccount *account)
{
	Datum		token = CStringGetTextDatum(req->token);
	CardKeyRead card;
	CardKeyRead read;
	Datum		account_id = (Datum) 0;
	Datum		mcc_allowed;
	Datum		mcc_blocked;
	bool		found;
	bool		isnull;
	bool		allowed_null;
	bool		blocked_null;

	card_key_read_begin(&card_by_token, &card, false, NULL);
	card_key_read_begin(&account_by_id, &read, true, &card);
	found = card_key_read(&card, &token) &&
		card_programme_visible(DatumGetUUIDP(card_key_column(&card, TOKEN_CARD_PROGRAMME_ID,
															 &isnull)));
	if (found)
	{
		account_id = card_key_column(&card, TOKEN_CARD_ACCOUNT_ID, &isnull);
		found = card_key_read(&read, &account_id) &&
			card_key_lock(&read, &account_id, LockTupleNoKeyExclusive);
	}
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no card has this token"),
				 errhint("Processors refer to cards by the token of card.card_token().")));
	account->active = strcmp(TextDatumGetCString(card_key_column(&read, ACCOUNT_STATUS, &isnull)),
							 "active") == 0;
	account->currency_matches =
		strcmp(TextDatumGetCString(card_key_column(&read, ACCOUNT_CURRENCY, &isnull)),
			   req->currency) == 0;
	account->available = DatumGetInt64(card_key_column(&read, ACCOUNT_BALANCE, &isnull)) -
		DatumGetInt64(card_key_column(&read, ACCOUNT_HELD, &isnull));
	mcc_allowed = card_key_column(&read, ACCOUNT_MCC_ALLOWED, &allowed_null);
	mcc_blocked = card_key_column(&read, ACCOUNT_MCC_BLOCKED, &blocked_null);
	account->category_ok = (allowed_null || mcc_ranges_hold(mcc_allowed, req->mcc_code)) &&
		(blocked_null || !mcc_ranges_hold(mcc_blocked, req->mcc_code));
	account->country_ok = text_list_allows(&read, ACCOUNT_COUNTRIES_ALLOWED, req->country) &&
		text_list_lets_through(&read, ACCOUNT_COUNTRIES_BLOCKED, req->country);
	account->channel_ok = text_list_lets_through(&read, ACCOUNT_CHANNELS_BLOCKED, req->channel);
	card_key_read_end(&read);
	card_key_read_end(&card);
}

/*
 * 2. Read the card (share-locked), its controls, the earlier answer to the
 * external_id if any, and the limits' verdict: the row the next steps use.
 */
static void
authorize_read_card(const AuthorizeRequest *req)
{
	Datum		args[6] = {
		CStringGetTextDatum(req->token), req->mcc_code,
		CStringGetTextDatum(req->country), CStringGetTextDatum(req->channel),
		CStringGetTextDatum(req->external_id), Int64GetDatum(req->amount)
	};

	if (card_exec(&judge, args, NULL, false, 1) != 1)
		elog(ERROR, "card with this token vanished");
}

/*
 * The same external_id again (from the row judge read): the first answer,
 * nothing new held; 23505 if it was the answer for another card.  Returns
 * false for a new external_id.
 */
static bool
authorize_earlier_answer(const AuthorizeRequest *req, AuthorizeAnswer *answer)
{
	bool		isnull;

	(void) card_spi_datum(0, JUDGE_EARLIER_ID, &isnull);
	if (isnull)
		return false;
	if (!column_bool(JUDGE_EARLIER_SAME_CARD))
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("external_id \"%s\" was already used for another card",
						req->external_id)));
	for (int i = 0; i < RESULT_COLUMNS; i++)
		answer->values[i] = card_spi_datum(0, JUDGE_EARLIER_ID + i, &answer->nulls[i]);
	return true;
}

/*
 * The reason to decline, or NULL to approve, from the account's row and
 * the card's (the row judge read): the card, the account, the currency,
 * then each control (a block on the card or on the account declines), the
 * limits, the funds.
 */
static const char *
authorize_judge(const AuthorizeAccount *account, int64 amount)
{
	char	   *card_status = card_spi_text(0, JUDGE_EFFECTIVE_STATUS);	/* expired once its month ended */

	if (strcmp(card_status, "expired") == 0)
		return "card_expired";
	if (strcmp(card_status, "active") != 0)
		return "card_not_active";
	if (!account->active)
		return "account_not_active";
	if (!account->currency_matches)
		return "currency_mismatch";
	if (!account->channel_ok || !column_bool(JUDGE_CHANNEL_OK))
		return "channel_blocked";
	if (!account->country_ok || !column_bool(JUDGE_COUNTRY_OK))
		return "country_blocked";
	if (!account->category_ok || !column_bool(JUDGE_CATEGORY_OK))
		return "category_blocked";
	if (!column_bool(JUDGE_LIMITS_OK))
		return "spending_limit";
	if (account->available < amount)
		return "insufficient_funds";
	return NULL;
}

/*
 * Fill the parameters approve and decline share: a new authorisation id,
 * the card's ids (from the row judge read), the request.
 */
static void
authorize_fill_record(const AuthorizeRequest *req, Datum *values, char *nulls)
{
	bool		isnull;

	memset(nulls, ' ', RECORD_VALUES_MAX);
	values[RECORD_ID] = card_time_uuid();
	values[RECORD_PROGRAMME_ID] = card_spi_datum(0, JUDGE_PROGRAMME_ID, &isnull);
	values[RECORD_CARD_ID] = card_spi_datum(0, JUDGE_CARD_ID, &isnull);
	values[RECORD_ACCOUNT_ID] = card_spi_datum(0, JUDGE_ACCOUNT_ID, &isnull);
	values[RECORD_EXTERNAL_ID] = CStringGetTextDatum(req->external_id);
	values[RECORD_AMOUNT] = Int64GetDatum(req->amount);
	values[RECORD_CURRENCY] = CStringGetTextDatum(req->currency);
	values[RECORD_MCC] = CStringGetTextDatum(req->mcc);
	values[RECORD_MERCHANT_COUNTRY] = CStringGetTextDatum(req->country);
	values[RECORD_CHANNEL] = CStringGetTextDatum(req->channel);
	values[RECORD_MERCHANT_NAME] = req->merchant_name ?
		CStringGetTextDatum(req->merchant_name) : (Datum) 0;
	nulls[RECORD_MERCHANT_NAME] = req->merchant_name ? ' ' : 'n';
}

/*
 * 3a. Hold the amount and count it, in one statement (the row judge read
 * gives the hold's lifetime and the chain); false if the guard refused.
 * Sets *available to what is left.
 */
static bool
authorize_approve(const AuthorizeRequest *req, Datum *values, const char *nulls,
				  int64 *available)
{
	bool		isnull;
	bool		no_event;
	Datum		seq;

	values[APPROVE_MCC_CODE] = req->mcc_code;
	values[APPROVE_HOLD_LIFETIME] = card_spi_datum(0, JUDGE_HOLD_LIFETIME, &isnull);
	values[APPROVE_EVENTS] = BoolGetDatum(card_events_enabled);
	values[APPROVE_CHAIN_ID] = card_spi_datum(0, JUDGE_CHAIN_ID, &isnull);
	if (card_exec(&approve, values, nulls, false, 1) != 1)
		return false;
	seq = card_spi_datum(0, APPROVED_SEQ, &no_event);
	*available = DatumGetInt64(card_spi_datum(0, APPROVED_AVAILABLE, &isnull));
	if (!no_event)
		card_event_written(DatumGetInt64(seq), "authorization.approved");
	return true;
}

/* 3b. Record the decline and its reason; nothing is held. */
static void
authorize_decline(Datum *values, const char *nulls, const char *reason,
				  int64 available)
{
	bool		isnull;

	values[DECLINE_REASON] = CStringGetTextDatum(reason);
	values[DECLINE_AVAILABLE] = Int64GetDatum(available);
	values[DECLINE_EVENTS] = BoolGetDatum(card_events_enabled);
	if (card_exec(&decline, values, nulls, false, 0) == 1)
		card_event_written(DatumGetInt64(card_spi_datum(0, DECLINED_SEQ, &isnull)),
						  "authorization.declined");
}

/*
 * 3. Approve, or record the decline (of the judgement, or of the hold's
 * guard), under the feed's writer lock; the answer is the new record.
 */
static void
authorize_record(const AuthorizeRequest *req, const char *reason, int64 available,
				 AuthorizeAnswer *answer)
{
	Datum		values[RECORD_VALUES_MAX];
	char		nulls[RECORD_VALUES_MAX];

	authorize_fill_record(req, values, nulls);
	card_event_writer_lock(values[RECORD_PROGRAMME_ID]);
	if (reason == NULL && !authorize_approve(req, values, nulls, &available))
		reason = "insufficient_funds";	/* the guard refused */
	if (reason != NULL)
		authorize_decline(values, nulls, reason, available);

	answer->values[RESULT_AUTHORIZATION_ID] = values[RECORD_ID];
	answer->nulls[RESULT_AUTHORIZATION_ID] = false;
	answer->values[RESULT_APPROVED] = BoolGetDatum(reason == NULL);
	answer->nulls[RESULT_APPROVED] = false;
	answer->values[RESULT_DECLINE_REASON] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	answer->nulls[RESULT_DECLINE_REASON] = reason == NULL;
	answer->values[RESULT_AVAILABLE] = Int64GetDatum(available);
	answer->nulls[RESULT_AVAILABLE] = false;
}

/*
 * card.card_authorize(card_token text, amount bigint, currency text,
 *	 mcc text, merchant_country text, channel text, external_id text,
 *	 merchant_name text) RETURNS TABLE(authorization_id uuid, approved
 *	 boolean, decline_reason text, available bigint)
 */
CARD_ENTRY_POINT(card_authorize)
{
	AuthorizeRequest req;
	AuthorizeAccount account;
	AuthorizeAnswer answer;
	TupleDesc	tupdesc;
	Datum		row;

	authorize_read_request(fcinfo, &req);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	authorize_lock_account(&req, &account);
	authorize_read_card(&req);
	if (!authorize_earlier_answer(&req, &answer))
		authorize_record(&req, authorize_judge(&account, req.amount),
						 account.available, &answer);

	/* The row leaves SPI's memory before SPI_finish frees it. */
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, answer.values, answer.nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(row);
}
