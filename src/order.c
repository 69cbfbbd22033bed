/*-------------------------------------------------------------------------
 *
 * order.c
 *	  card.card_order(): issue a new card on an account.
 *
 * The new card gets a fresh id, a PAN (encrypted under the newest key, its
 * HMAC fingerprint unique per programme), last4 and an opaque token, all
 * in one INSERT ... ON CONFLICT DO NOTHING.  When nothing is inserted,
 * either the idempotency key is taken (return the first card, or refuse if
 * the request differs) or a PAN/token collided (draw again).  A second
 * order with the same key waits on the first one's unique-index entry, so
 * concurrent orders with one key create one card.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#define DISPLAY_NAME_MAX 100
#define IDEMPOTENCY_KEY_MAX 200
#define EXPIRY_YEARS_AHEAD_MAX 20

/*
 * The account, the individual's membership of it and the account's
 * programme, read by their keys (keyread.c): as one statement (a row lock
 * over a join and a subplan) this look-up was an eighth of an order, most
 * of it starting its plan.
 */
enum AccountColumn
{
	ACCOUNT_PROGRAMME_ID,
	ACCOUNT_STATUS,
	ACCOUNT_CURRENCY
};

static CardKeyedTable account_by_id = {
	"account", "account_pkey", 1, {"programme_id", "status", "currency", NULL}
};

static CardKeyedTable membership = {
	"account_member", "account_member_pkey", 2, {NULL}
};

enum ProgrammeColumn
{
	PROGRAMME_BIN,
	PROGRAMME_PAN_LENGTH,
	PROGRAMME_VALIDITY_YEARS,
	PROGRAMME_BRAND,
	PROGRAMME_REGION,
	PROGRAMME_NAME
};

static CardKeyedTable programme_by_id = {
	"programme", "programme_pkey", 1,
	{"bin", "pan_length", "validity_years", "brand", "region", "name", NULL}
};

/*
 * The programme of an individual who is not a member of the account, to
 * say why it may not hold a card there (a member is always of the
 * account's programme: the member's keys say so).
 */
static CardPlan individual_lookup = {
	NULL,
	"SELECT programme_id FROM card.individual"
	" WHERE id = $1 AND card.programme_visible(programme_id)",
	1, {UUIDOID}
};

/* The card an idempotency key ordered, and the request it was ordered with. */
enum KeyColumn
{
	KEY_CARD_ID = 1,
	KEY_REQUEST_HASH
};

static CardPlan find_by_key = {
	NULL,
	"SELECT id, order_request_hash FROM card.card"
	" WHERE programme_id = $1 AND idempotency_key = $2",
	2, {UUIDOID, TEXTOID}
};

/* The new card's row; its parameters, as indexes of values[] ($1 is index 0): */
enum InsertParam
{
	INSERT_ID,
	INSERT_PROGRAMME_ID,
	INSERT_ACCOUNT_ID,
	INSERT_INDIVIDUAL_ID,
	INSERT_DISPLAY_NAME,
	INSERT_TYPE,
	INSERT_EXP_MONTH,
	INSERT_EXP_YEAR,
	INSERT_LAST4,
	INSERT_TOKEN,
	INSERT_PAN_CIPHERTEXT,
	INSERT_PAN_KEY_VERSION,
	INSERT_PAN_FINGERPRINT,
	INSERT_IDEMPOTENCY_KEY,
	INSERT_REQUEST_HASH,
	INSERT_ACTOR,				/* its first audit row's */
	INSERT_EVENT_DATA,			/* its card.ordered event's */
	INSERT_EVENTS,				/* card.events: whether the event is written */
	INSERT_BRAND,				/* the result's, from the account's look-up */
	INSERT_REGION,
	INSERT_CURRENCY,
	INSERT_PARAMS
};

/*
 * The card, its first audit row and its card.ordered event in one
 * statement that returns the card as card.cards shows it (nothing when the
 * key is taken or the PAN or token collided: ON CONFLICT DO NOTHING).  The
 * programme's and the account's columns of the result come from the
 * look-up that share-locked the account: joining them again here cost a
 * tenth of an order.
 */
static CardPlan insert_card = {
	NULL,
	"WITH c AS ("
	"  INSERT INTO card.card (id, programme_id, account_id, individual_id,"
	"   display_name, type, exp_month, exp_year, last4, token,"
	"   pan_ciphertext, pan_key_version, pan_fingerprint,"
	"   idempotency_key, order_request_hash)"
	"  VALUES ($1, $2, $3, $4, $5, $6::card.card_type,"
	"   $7, $8, $9, $10,"
	"   $11, $12, $13, $14, $15)"
	"  ON CONFLICT DO NOTHING"
	CARD_WRITTEN_RETURNING ","
	" audit AS ("
	"  INSERT INTO card.card_status_change"
	"   (card_id, from_status, to_status, reason, channel, actor)"
	"  SELECT c.id, NULL, c.status, 'ordered', 'api', $16 FROM c),"
	" fed AS ("
	"  INSERT INTO card.event (type, card_id, account_id, programme_id, data)"
	"  SELECT 'card.ordered', c.id, c.account_id, c.programme_id, $17::jsonb"
	"    FROM c WHERE $18 RETURNING seq)"
	" SELECT c.id, c.display_name, c.type, $19 AS brand, $20 AS region, c.exp_month,"
	"        c.exp_year, c.last4, $21 AS currency, c.account_id, c.individual_id,"
	"        card.effective_status(c.status, c.expires_on) AS status,"
	"        (SELECT seq FROM fed) AS event_seq"
	"  FROM c",
	INSERT_PARAMS, {UUIDOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID, BYTEAOID, INT2OID, BYTEAOID, TEXTOID,
		BYTEAOID, NAMEOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID, TEXTOID}
};

/* The arguments of one order, checked, and what follows from them. */
typedef struct OrderRequest
{
	Datum		individual_id;
	Datum		account_id;
	char	   *display_name;
	char	   *exp_month;		/* as given; NULL if not */
	char	   *exp_year;
	char	   *type;
	char	   *key;			/* the idempotency key; NULL if none */
	bool		expiry_requested;
	char		month[3];		/* the new card's expiry */
	char		year[5];
	bytea	   *request_hash;	/* what the key was given for; NULL if no key */
} OrderRequest;

/* The account's row, share-locked: its programme, and the individual's. */
typedef struct OrderAccount
{
	Datum		programme_id;
	char	   *status;
	char	   *bin;
	int			pan_length;
	int			validity_years;
	bool		is_member;
	Datum		brand;			/* text, for the new card's row */
	Datum		region;
	Datum		currency;
	CardPanLength pan_length_rule;	/* whether the brand issues pan_length */
} OrderAccount;

/*
 * The data of a card.ordered event: the card as ordered, and for a
 * replacement the card it replaces and why.
 */
static char *
ordered_event_data(const char *type, const char *display_name, const char *month,
				   const char *year, const char *last4, const char *replacement_for,
				   const char *replacement_reason)
{
	StringInfoData data;

	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	card_json_text(&data, "status", "not_activated");
	card_json_text(&data, "type", type);
	card_json_text(&data, "display_name", display_name);
	card_json_text(&data, "exp_month", month);
	card_json_text(&data, "exp_year", year);
	card_json_text(&data, "last4", last4);
	if (replacement_for)
	{
		card_json_text(&data, "replacement_for", replacement_for);
		card_json_text(&data, "replacement_reason", replacement_reason);
	}
	appendStringInfoChar(&data, '}');
	return data.data;
}

/*
 * The first audit row of a new card and its card.ordered event (for a
 * replacement; card_order writes its own with the card).
 */
void
card_audit_ordered(Datum card_id, Datum account_id, Datum programme_id,
				   const char *reason, const char *type, const char *display_name,
				   const char *month, const char *year, const char *last4,
				   const char *replacement_for, const char *replacement_reason)
{
	card_audit_insert(card_id, account_id, programme_id, NULL, "not_activated",
					  reason, "api", "card.ordered",
					  ordered_event_data(type, display_name, month, year, last4,
										 replacement_for, replacement_reason));
}

/* True if s holds a control character. */
static bool
has_control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static void
check_display_name(const char *name)
{
	int			chars = pg_mbstrlen(name);

	if (chars == 0 || strspn(name, " ") == strlen(name) ||
		chars > DISPLAY_NAME_MAX || has_control_char(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid display_name \"%s\"", name),
				 errdetail("A display name has 1 to %d characters and no control characters.",
						   DISPLAY_NAME_MAX)));
}

/*
 * card_order(individual, account, 'physical') passes the type as the third
 * argument, the display name: refused, where it would order a virtual card
 * named "physical".  A name that is the type ordered is the caller's
 * choice, and so is any name given by the JSON form (called from another
 * entry point), whose fields are named.
 */
static void
check_type_as_name(const char *name, const char *type)
{
	static const char *const types[] = {CARD_TYPES};
	size_t		start = strspn(name, " ");
	size_t		len = strlen(name + start);

	if (card_entry_nested())
		return;
	while (len > 0 && name[start + len - 1] == ' ')
		len--;
	for (size_t i = 0; i < lengthof(types); i++)
		if (len == strlen(types[i]) && pg_strncasecmp(name + start, types[i], len) == 0 &&
			strcmp(type, types[i]) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("display_name \"%s\" is a card type", name),
					 errdetail("The third argument of card_order is the display name printed on the card."),
					 errhint("Pass the type by name: card_order(individual_id, account_id, display_name, type => '%s').",
							 types[i])));
}

static void
check_idempotency_key(const char *key)
{
	size_t		len = strlen(key);

	if (len == 0 || len > IDEMPOTENCY_KEY_MAX || has_control_char(key))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid idempotency_key"),
				 errdetail("An idempotency key has 1 to %d bytes and no control characters.",
						   IDEMPOTENCY_KEY_MAX)));
}

/*
 * Parse the requested expiry into "MM" and "YYYY"; false if none was given.
 * Only the form is checked here: whether it is in the past is a question
 * for new orders, not for idempotent retries of old ones.
 */
static bool
parse_expiry(const char *exp_month, const char *exp_year, char *month_out,
			 char *year_out)
{
	int			month;

	if (exp_month == NULL && exp_year == NULL)
		return false;
	card_require(exp_month != NULL, "exp_month");
	card_require(exp_year != NULL, "exp_year");
	if (strlen(exp_month) < 1 || strlen(exp_month) > 2 ||
		strspn(exp_month, "0123456789") != strlen(exp_month) ||
		(month = atoi(exp_month)) < 1 || month > 12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid exp_month \"%s\"", exp_month),
				 errhint("Give the month as \"01\" to \"12\".")));
	if (strlen(exp_year) != 4 || strspn(exp_year, "0123456789") != 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid exp_year \"%s\"", exp_year),
				 errhint("Give the year with four digits, such as \"2029\".")));
	snprintf(month_out, 3, "%02d", month);
	snprintf(year_out, 5, "%s", exp_year);
	return true;
}

/*
 * The expiry of a new card: the one requested, which must lie between this
 * month and EXPIRY_YEARS_AHEAD_MAX years ahead, or the programme's validity
 * from this month.
 */
void
card_new_expiry(bool requested, int validity_years, char *month, char *year)
{
	int			now = card_utc_month_index();
	int			index;

	if (!requested)
	{
		index = now + validity_years * 12;
		snprintf(month, 3, "%02d", index % 12 + 1);
		snprintf(year, 5, "%04d", index / 12);
		return;
	}
	index = card_month_index(atoi(year), atoi(month));
	if (index < now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("card expiry %s/%s is in the past", month, year),
				 errhint("Omit exp_month and exp_year to use the programme's validity.")));
	if (index > now + EXPIRY_YEARS_AHEAD_MAX * 12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("card expiry %s/%s is more than %d years ahead",
						month, year, EXPIRY_YEARS_AHEAD_MAX)));
}

/* Append one field, length-prefixed so that no two requests encode alike. */
static void
append_field(StringInfo buf, const char *value)
{
	uint32		len = value ? (uint32) strlen(value) : UINT32_MAX;

	appendBinaryStringInfo(buf, (const char *) &len, sizeof(len));
	if (value)
		appendBinaryStringInfo(buf, value, len);
}

/*
 * If a card with this idempotency key exists, set *card_id to it and
 * return true; refuse the key if it was used for a different request.
 */
static bool
card_for_key(Datum programme_id, const char *key, bytea *request_hash,
			 Datum *card_id)
{
	Datum		values[2] = {programme_id, CStringGetTextDatum(key)};
	bool		isnull;
	bytea	   *first_hash;

	if (card_exec(&find_by_key, values, NULL, false, 1) != 1)
		return false;
	*card_id = card_spi_datum(0, KEY_CARD_ID, &isnull);
	first_hash = DatumGetByteaPP(card_spi_datum(0, KEY_REQUEST_HASH, &isnull));
	if (VARSIZE_ANY_EXHDR(first_hash) != VARSIZE_ANY_EXHDR(request_hash) ||
		memcmp(VARDATA_ANY(first_hash), VARDATA_ANY(request_hash),
			   VARSIZE_ANY_EXHDR(request_hash)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("idempotency_key \"%s\" was already used for a different order", key),
				 errdetail("It ordered card %s.", card_uuid_string(*card_id)),
				 errhint("Use a new idempotency key for a new order.")));
	return true;
}

/* Read and check the arguments (23502 if one is missing, 22023 if one is bad). */
static void
order_read_request(FunctionCallInfo fcinfo, OrderRequest *req)
{
	req->exp_month = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	req->exp_year = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	req->key = PG_ARGISNULL(6) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(6));
	req->request_hash = NULL;

	card_require(!PG_ARGISNULL(0), "individual_id");
	card_require(!PG_ARGISNULL(1), "account_id");
	card_require(!PG_ARGISNULL(2), "display_name");
	card_require(!PG_ARGISNULL(5), "type");
	req->individual_id = PG_GETARG_DATUM(0);
	req->account_id = PG_GETARG_DATUM(1);
	req->display_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	req->type = DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(5)));
	check_display_name(req->display_name);
	if (req->key)
		check_idempotency_key(req->key);
}

/* Whether the caller sees the programme of the account read. */
static bool
account_visible(CardKeyRead *read)
{
	bool		isnull;
	Datum		programme_id = card_key_column(read, ACCOUNT_PROGRAMME_ID, &isnull);

	return card_programme_visible(DatumGetUUIDP(programme_id));
}

/*
 * Share-lock the account (P0002 if the caller sees no such account) and
 * read it with its programme and whether the individual is a member, as
 * of one snapshot; in READ COMMITTED, the account as locked (keyread.c).
 */
static void
order_lock_account(const OrderRequest *req, OrderAccount *account)
{
	CardKeyRead read;
	CardKeyRead member;
	CardKeyRead programme;
	Datum		member_key[2] = {req->account_id, req->individual_id};
	char	   *name;
	bool		found;
	bool		isnull;

	card_key_read_begin(&account_by_id, &read, true, NULL);
	found = card_key_read(&read, &req->account_id) && account_visible(&read) &&
		card_key_lock(&read, &req->account_id, LockTupleShare) && account_visible(&read);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("account %s does not exist", card_uuid_string(req->account_id))));
	account->programme_id = card_key_column(&read, ACCOUNT_PROGRAMME_ID, &isnull);
	account->status = TextDatumGetCString(card_key_column(&read, ACCOUNT_STATUS, &isnull));
	account->currency = card_key_column(&read, ACCOUNT_CURRENCY, &isnull);

	card_key_read_begin(&membership, &member, false, &read);
	account->is_member = card_key_read(&member, member_key);
	card_key_read_end(&member);

	card_key_read_begin(&programme_by_id, &programme, false, &read);
	if (!card_key_read(&programme, &account->programme_id))
		elog(ERROR, "programme %s of account %s does not exist",
			 card_uuid_string(account->programme_id), card_uuid_string(req->account_id));
	account->bin = TextDatumGetCString(card_key_column(&programme, PROGRAMME_BIN, &isnull));
	account->pan_length = DatumGetInt16(card_key_column(&programme, PROGRAMME_PAN_LENGTH,
														&isnull));
	account->validity_years = DatumGetInt16(card_key_column(&programme, PROGRAMME_VALIDITY_YEARS,
															&isnull));
	account->brand = card_key_column(&programme, PROGRAMME_BRAND, &isnull);
	account->region = card_key_column(&programme, PROGRAMME_REGION, &isnull);
	name = TextDatumGetCString(card_key_column(&programme, PROGRAMME_NAME, &isnull));
	card_key_read_end(&programme);
	card_key_read_end(&read);

	card_pan_length_judge(name, TextDatumGetCString(account->brand), account->pan_length,
						  &account->pan_length_rule);
}

/*
 * The keyed hash of the request as the caller sent it (a NULL expiry stays
 * NULL): a key's retry must be the same request.
 */
static bytea *
order_request_hash(const OrderRequest *req)
{
	StringInfoData request;

	initStringInfo(&request);
	append_field(&request, card_uuid_string(req->individual_id));
	append_field(&request, card_uuid_string(req->account_id));
	append_field(&request, req->display_name);
	append_field(&request, req->expiry_requested ? req->month : NULL);
	append_field(&request, req->expiry_requested ? req->year : NULL);
	append_field(&request, req->type);
	return card_hmac_bytea(CARD_LABEL_ORDER_REQUEST,
						   (uint8 *) request.data, request.len);
}

/*
 * Refuse a new card: for an individual the caller does not see (P0002),
 * of another programme or not on the account (22023), or on an account
 * that is not active (55000).  After the idempotent replay, so that a
 * retried order whose card exists is still answered with that card.
 */
static void
order_check_allowed(const OrderRequest *req, const OrderAccount *account)
{
	if (!account->is_member)
	{
		Datum		individual_id = req->individual_id;
		bool		isnull;

		if (card_exec(&individual_lookup, &individual_id, NULL, true, 1) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("individual %s does not exist",
							card_uuid_string(req->individual_id))));
		if (!DatumGetBool(DirectFunctionCall2(uuid_eq, card_spi_datum(0, 1, &isnull),
											  account->programme_id)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("individual %s and account %s belong to different programmes",
							card_uuid_string(req->individual_id),
							card_uuid_string(req->account_id))));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("individual %s is not a holder or authorised user of account %s",
						card_uuid_string(req->individual_id),
						card_uuid_string(req->account_id)),
				 errhint("Add the individual with card.account_member_add().")));
	}
	if (strcmp(account->status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("account %s is %s", card_uuid_string(req->account_id),
						account->status),
				 errhint("Cards can be ordered only on an active account.")));
}

/*
 * One try at inserting the card, with a new id, PAN (under the newest key)
 * and token, its first audit row and its event; false if nothing was
 * inserted (the key is taken, or the PAN or token collided).  On success
 * SPI_tuptable holds the card as card.cards shows it.
 */
static bool
order_insert(const OrderRequest *req, const OrderAccount *account)
{
	int			key_version = card_enc_key_newest();
	CardStoredPan pan;
	Datum		values[INSERT_PARAMS];
	char		nulls[INSERT_PARAMS];
	Datum	   *card_id = &values[INSERT_ID];
	NameData	actor;

	*card_id = card_time_uuid();
	memset(nulls, ' ', sizeof(nulls));
	card_pan_issue(account->bin, account->pan_length, key_version,
				   DatumGetUUIDP(*card_id), &pan);
	values[INSERT_ID] = *card_id;
	values[INSERT_PROGRAMME_ID] = account->programme_id;
	values[INSERT_ACCOUNT_ID] = req->account_id;
	values[INSERT_INDIVIDUAL_ID] = req->individual_id;
	values[INSERT_DISPLAY_NAME] = CStringGetTextDatum(req->display_name);
	values[INSERT_TYPE] = CStringGetTextDatum(req->type);
	values[INSERT_EXP_MONTH] = CStringGetTextDatum(req->month);
	values[INSERT_EXP_YEAR] = CStringGetTextDatum(req->year);
	values[INSERT_LAST4] = CStringGetTextDatum(pan.last4);
	values[INSERT_TOKEN] = CStringGetTextDatum(card_random_token(CARD_TOKEN_PREFIX, CARD_TOKEN_BYTES));
	values[INSERT_PAN_CIPHERTEXT] = PointerGetDatum(pan.sealed);
	values[INSERT_PAN_KEY_VERSION] = Int16GetDatum((int16) key_version);
	values[INSERT_PAN_FINGERPRINT] = PointerGetDatum(pan.fingerprint);
	values[INSERT_IDEMPOTENCY_KEY] = req->key ? CStringGetTextDatum(req->key) : (Datum) 0;
	nulls[INSERT_IDEMPOTENCY_KEY] = req->key ? ' ' : 'n';
	values[INSERT_REQUEST_HASH] = PointerGetDatum(req->request_hash);
	nulls[INSERT_REQUEST_HASH] = req->key ? ' ' : 'n';
	namestrcpy(&actor, GetUserNameFromId(card_caller_role(), false));
	values[INSERT_ACTOR] = NameGetDatum(&actor);
	values[INSERT_EVENT_DATA] =
		CStringGetTextDatum(ordered_event_data(req->type, req->display_name, req->month,
											   req->year, pan.last4, NULL, NULL));
	values[INSERT_EVENTS] = BoolGetDatum(card_events_enabled);
	values[INSERT_BRAND] = account->brand;
	values[INSERT_REGION] = account->region;
	values[INSERT_CURRENCY] = account->currency;
	card_event_writer_lock(account->programme_id);
	if (card_exec(&insert_card, values, nulls, false, 0) != 1)
		return false;
	card_written_card_event("card.ordered");
	return true;
}

/*
 * Insert the new card with its first audit row, drawing again when its PAN
 * or token collides: true with the new card's row in SPI_tuptable, or
 * false with *existing_id the card a concurrent order with the same key
 * made first.  54000 once CARD_ISSUE_ATTEMPTS draws collided.
 */
static bool
order_issue(const OrderRequest *req, const OrderAccount *account, Datum *existing_id)
{
	for (int attempt = 0; attempt < CARD_ISSUE_ATTEMPTS; attempt++)
	{
		if (order_insert(req, account))
			return true;
		/* Nothing inserted: the key is taken, or the PAN or token collided. */
		if (req->key &&
			card_for_key(account->programme_id, req->key, req->request_hash, existing_id))
			return false;
	}
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("could not find an unused PAN in the programme of account %s after %d attempts",
					card_uuid_string(req->account_id), CARD_ISSUE_ATTEMPTS),
			 errhint("The programme's BIN range is close to exhausted; use a longer PAN or another BIN.")));
	pg_unreachable();
}

/*
 * card.card_order(individual_id uuid, account_id uuid, display_name text,
 *	 exp_month text, exp_year text, type card.card_type,
 *	 idempotency_key text) RETURNS card.cards
 */
CARD_ENTRY_POINT(card_order)
{
	OrderRequest req;
	OrderAccount account;
	Datum		card_id;

	order_read_request(fcinfo, &req);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	order_lock_account(&req, &account);
	req.expiry_requested = parse_expiry(req.exp_month, req.exp_year,
										req.month, req.year);

	/* A known key returns its card as it is now, before any state check. */
	if (req.key)
	{
		req.request_hash = order_request_hash(&req);
		if (card_for_key(account.programme_id, req.key, req.request_hash, &card_id))
			return card_return_card(fcinfo, card_id);
	}

	order_check_allowed(&req, &account);
	check_type_as_name(req.display_name, req.type);
	card_new_expiry(req.expiry_requested, account.validity_years, req.month, req.year);
	/* A programme of 1.1 whose brand does not issue its PAN length: 55000. */
	card_pan_length_refuse(&account.pan_length_rule, account.programme_id,
						   account.pan_length);
	if (order_issue(&req, &account, &card_id))
		return card_return_written_card(fcinfo);
	return card_return_card(fcinfo, card_id);
}
