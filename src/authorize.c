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
/*
 * A card's and an account's controls, as card_set_controls stores them
 * (NULL: no list), in this order in both tables' columns read here.
 */
#define CONTROL_COLUMNS "mcc_allowed", "mcc_blocked", "countries_allowed", \
	"countries_blocked", "channels_blocked"

enum ControlColumn
{
	CONTROL_MCC_ALLOWED,
	CONTROL_MCC_BLOCKED,
	CONTROL_COUNTRIES_ALLOWED,
	CONTROL_COUNTRIES_BLOCKED,
	CONTROL_CHANNELS_BLOCKED
};

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
	ACCOUNT_CONTROLS			/* the first of CONTROL_COLUMNS */
};

static CardKeyedTable account_by_id = {
	"account", "account_pkey", 1,
	{"status", "currency", "balance", "held", CONTROL_COLUMNS, NULL}
};

/*
 * 2. Read after the lock (a fresh snapshot): the card and its controls, its
 * programme's hold lifetime, an earlier answer to the same external_id
 * (by the unique key of card.authorization, as the plan of a join could
 * not be trusted to: external_id has no statistics), by their keys
 * (keyread.c); then, only for a payment nothing else declines, whether the
 * amount fits every applicable limit's running counter for its current
 * window.  The card is share-locked: a status change in flight (a freeze)
 * is waited for and then judged, and one that comes later waits for this
 * payment.
 */
enum CardColumn
{
	CARD_ID,
	CARD_ACCOUNT_ID,
	CARD_PROGRAMME_ID,
	CARD_CHAIN_ID,
	CARD_STATUS,
	CARD_EXPIRES_ON,
	CARD_CONTROLS				/* the first of CONTROL_COLUMNS */
};

static CardKeyedTable card_judged = {
	"card", "card_token_key", 1,
	{"id", "account_id", "programme_id", "chain_id", "status", "expires_on",
	CONTROL_COLUMNS, NULL}
};

static CardKeyedTable programme_by_id = {
	"programme", "programme_pkey", 1, {"hold_lifetime", NULL}
};

/* An earlier answer's four result columns, in the order of the result. */
enum EarlierColumn
{
	EARLIER_ID,
	EARLIER_APPROVED,
	EARLIER_REASON,
	EARLIER_AVAILABLE,
	EARLIER_CARD_ID
};

static CardKeyedTable earlier_by_external_id = {
	"authorization", "authorization_programme_id_external_id_key", 2,
	{"id", "approved", "decline_reason", "available_after", "card_id", NULL}
};

/* Whether $1 fits every limit of the chain $2 or the account $3 that counts category $4. */
static CardPlan limits_fit = {
	NULL,
	"SELECT coalesce(bool_and($1 + CASE WHEN l.window_start ="
	"                              card.spend_window_start(l.period, pg_catalog.now())"
	"                            THEN l.spent ELSE 0 END <= l.amount), true)"
	"  FROM card.spend_limit l"
	" WHERE (l.card_id = $2 OR l.account_id = $3)"
	"   AND (l.categories IS NULL OR l.categories @> $4)",
	4, {INT8OID, UUIDOID, UUIDOID, INT4OID}
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
/* What a row's controls say of the payment (the card's, or the account's). */
typedef struct AuthorizeControls
{
	bool		category_ok;
	bool		country_ok;
	bool		channel_ok;
} AuthorizeControls;

typedef struct AuthorizeAccount
{
	bool		active;
	bool		currency_matches;
	int64		available;
	AuthorizeControls controls;
} AuthorizeAccount;

/* The card's side, read after the account's lock, with the card share-locked. */
typedef struct AuthorizeCard
{
	Datum		card_id;
	Datum		account_id;
	Datum		programme_id;
	Datum		chain_id;		/* card.chain_of: whose limits count */
	const char *status;			/* effective: expired once its month ended */
	AuthorizeControls controls;
	Datum		hold_lifetime;
	bool		has_earlier;	/* an earlier answer to the external_id: */
	bool		earlier_same_card;
	Datum		earlier[RESULT_COLUMNS];	/* its result row */
	bool		earlier_nulls[RESULT_COLUMNS];
} AuthorizeCard;

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
 * What the controls of the row read (CONTROL_COLUMNS from its column
 * first) say of the payment, as the SQL "(allowed IS NULL OR allowed @>
 * mcc) AND (blocked IS NULL OR NOT blocked @> mcc)" and its likes for the
 * country and the channel say, an unknown reading as no.
 */
static void
judge_controls(CardKeyRead *read, int first, const AuthorizeRequest *req,
			   AuthorizeControls *out)
{
	bool		allowed_null;
	bool		blocked_null;
	Datum		mcc_allowed = card_key_column(read, first + CONTROL_MCC_ALLOWED, &allowed_null);
	Datum		mcc_blocked = card_key_column(read, first + CONTROL_MCC_BLOCKED, &blocked_null);

	out->category_ok = (allowed_null || mcc_ranges_hold(mcc_allowed, req->mcc_code)) &&
		(blocked_null || !mcc_ranges_hold(mcc_blocked, req->mcc_code));
	out->country_ok =
		text_list_allows(read, first + CONTROL_COUNTRIES_ALLOWED, req->country) &&
		text_list_lets_through(read, first + CONTROL_COUNTRIES_BLOCKED, req->country);
	out->channel_ok =
		text_list_lets_through(read, first + CONTROL_CHANNELS_BLOCKED, req->channel);
}

/*
 * 1. Lock the card's account, the one lock every authorisation of the card
 * takes (P0002 if no card has the token), and read its side of the verdict.
 */
static void
authorize_lock_account(const AuthorizeRequest *req, AuthorizeAccount *account)
{
	Datum		token = CStringGetTextDatum(req->token);
	CardKeyRead card;
	CardKeyRead read;
	Datum		account_id = (Datum) 0;
	bool		found;
	bool		isnull;

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
	judge_controls(&read, ACCOUNT_CONTROLS, req, &account->controls);
	card_key_read_end(&read);
	card_key_read_end(&card);
}

/*
 * 2. Read the card (share-locked), its controls, its programme's hold
 * lifetime and the earlier answer to the external_id if any.
 */
static void
authorize_read_card(const AuthorizeRequest *req, AuthorizeCard *card)
{
	Datum		token = CStringGetTextDatum(req->token);
	Datum		earlier_key[2];
	CardKeyRead read;
	CardKeyRead programme;
	CardKeyRead earlier;
	bool		isnull;

	card_key_read_begin(&card_judged, &read, true, NULL);
	card_key_read_begin(&programme_by_id, &programme, false, &read);
	card_key_read_begin(&earlier_by_external_id, &earlier, false, &read);
	if (!card_key_read(&read, &token) || !card_key_lock(&read, &token, LockTupleShare))
		elog(ERROR, "card with this token vanished");
	card->card_id = card_key_column(&read, CARD_ID, &isnull);
	card->account_id = card_key_column(&read, CARD_ACCOUNT_ID, &isnull);
	card->programme_id = card_key_column(&read, CARD_PROGRAMME_ID, &isnull);
	card->chain_id = card_key_column(&read, CARD_CHAIN_ID, &isnull);
	if (isnull)
		card->chain_id = card->card_id;
	card->status = card_effective_status(
		DatumGetCString(DirectFunctionCall1(enum_out, card_key_column(&read, CARD_STATUS,
																	  &isnull))),
		DatumGetDateADT(card_key_column(&read, CARD_EXPIRES_ON, &isnull)));
	judge_controls(&read, CARD_CONTROLS, req, &card->controls);

	if (!card_key_read(&programme, &card->programme_id))
		elog(ERROR, "programme of a card vanished");
	card->hold_lifetime = card_key_column(&programme, 0, &isnull);

	earlier_key[0] = card->programme_id;
	earlier_key[1] = CStringGetTextDatum(req->external_id);
	card->has_earlier = card_key_read(&earlier, earlier_key);
	if (card->has_earlier)
	{
		Datum		earlier_card = card_key_column(&earlier, EARLIER_CARD_ID, &isnull);

		card->earlier_same_card = DatumGetBool(DirectFunctionCall2(uuid_eq, earlier_card,
																   card->card_id));
		for (int i = 0; i < RESULT_COLUMNS; i++)
			card->earlier[i] = card_key_column(&earlier, EARLIER_ID + i, &card->earlier_nulls[i]);
		if (!card->earlier_nulls[EARLIER_REASON])
			card->earlier[EARLIER_REASON] =
				CStringGetTextDatum(DatumGetCString(DirectFunctionCall1(enum_out,
																		card->earlier[EARLIER_REASON])));
	}
	card_key_read_end(&earlier);
	card_key_read_end(&programme);
	card_key_read_end(&read);
}

/*
 * The same external_id again (read with the card): the first answer,
 * nothing new held; 23505 if it was the answer for another card.  Returns
 * false for a new external_id.
 */
static bool
authorize_earlier_answer(const AuthorizeRequest *req, const AuthorizeCard *card,
						 AuthorizeAnswer *answer)
{
	if (!card->has_earlier)
		return false;
	if (!card->earlier_same_card)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("external_id \"%s\" was already used for another card",
						req->external_id)));
	for (int i = 0; i < RESULT_COLUMNS; i++)
	{
		answer->values[i] = card->earlier[i];
		answer->nulls[i] = card->earlier_nulls[i];
	}
	return true;
}

/* Whether the amount fits every limit that counts it (the chain's, the account's). */
static bool
authorize_limits_fit(const AuthorizeRequest *req, const AuthorizeCard *card)
{
	Datum		values[4] = {
		Int64GetDatum(req->amount), card->chain_id, card->account_id, req->mcc_code
	};
	bool		isnull;
	bool		fit;

	if (card_exec(&limits_fit, values, NULL, false, 1) != 1)
		elog(ERROR, "the limits' verdict returned no row");
	fit = DatumGetBool(card_spi_datum(0, 1, &isnull));
	return !isnull && fit;
}

/*
 * The reason to decline, or NULL to approve, from the account's row and
 * the card's: the card, the account, the currency, then each control (a
 * block on the card or on the account declines), the limits, the funds.
 */
static const char *
authorize_judge(const AuthorizeRequest *req, const AuthorizeAccount *account,
				const AuthorizeCard *card)
{
	if (strcmp(card->status, "expired") == 0)
		return "card_expired";
	if (strcmp(card->status, "active") != 0)
		return "card_not_active";
	if (!account->active)
		return "account_not_active";
	if (!account->currency_matches)
		return "currency_mismatch";
	if (!account->controls.channel_ok || !card->controls.channel_ok)
		return "channel_blocked";
	if (!account->controls.country_ok || !card->controls.country_ok)
		return "country_blocked";
	if (!account->controls.category_ok || !card->controls.category_ok)
		return "category_blocked";
	if (!authorize_limits_fit(req, card))
		return "spending_limit";
	if (account->available < req->amount)
		return "insufficient_funds";
	return NULL;
}

/*
 * Fill the parameters approve and decline share: a new authorisation id,
 * the card's ids (from the row judge read), the request.
 */
static void
authorize_fill_record(const AuthorizeRequest *req, const AuthorizeCard *card, Datum *values,
					  char *nulls)
{
	memset(nulls, ' ', RECORD_VALUES_MAX);
	values[RECORD_ID] = card_time_uuid();
	values[RECORD_PROGRAMME_ID] = card->programme_id;
	values[RECORD_CARD_ID] = card->card_id;
	values[RECORD_ACCOUNT_ID] = card->account_id;
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
authorize_approve(const AuthorizeRequest *req, const AuthorizeCard *card, Datum *values,
				  const char *nulls, int64 *available)
{
	bool		isnull;
	bool		no_event;
	Datum		seq;

	values[APPROVE_MCC_CODE] = req->mcc_code;
	values[APPROVE_HOLD_LIFETIME] = card->hold_lifetime;
	values[APPROVE_EVENTS] = BoolGetDatum(card_events_enabled);
	values[APPROVE_CHAIN_ID] = card->chain_id;
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
authorize_record(const AuthorizeRequest *req, const AuthorizeCard *card, const char *reason,
				 int64 available, AuthorizeAnswer *answer)
{
	Datum		values[RECORD_VALUES_MAX];
	char		nulls[RECORD_VALUES_MAX];

	authorize_fill_record(req, card, values, nulls);
	card_event_writer_lock(values[RECORD_PROGRAMME_ID]);
	if (reason == NULL && !authorize_approve(req, card, values, nulls, &available))
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
	AuthorizeCard card;
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
	authorize_read_card(&req, &card);
	if (!authorize_earlier_answer(&req, &card, &answer))
		authorize_record(&req, &card, authorize_judge(&req, &account, &card),
						 account.available, &answer);

	/* The row leaves SPI's memory before SPI_finish frees it. */
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, answer.values, answer.nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(row);
}
