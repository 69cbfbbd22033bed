/*-------------------------------------------------------------------------
 *
 * replace.c
 *	  card.card_replace(): replacement and reissue.
 *
 * lost and stolen end the old card now and issue a new PAN; damaged and
 * expired reissue the same PAN with a new expiry, and the old card keeps
 * working until the new one is activated (a trigger then closes it).  The
 * new card names the old one (replacement_for), keeps its controls, and
 * belongs to its chain, whose spending limits and PIN the cards share.
 * Replacing a card again for the same reason returns the first
 * replacement: the old card's row lock makes the check and the insert one
 * step, and a unique index backs it.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"


enum OldCardColumn
{
	OLD_STATUS = 1,
	OLD_EFFECTIVE_STATUS,
	OLD_PROGRAMME_ID,
	OLD_ACCOUNT_ID,
	OLD_ACCOUNT_STATUS,
	OLD_BIN,
	OLD_PAN_LENGTH,
	OLD_VALIDITY_YEARS,
	OLD_PAN_CIPHERTEXT,
	OLD_PAN_KEY_VERSION,
	OLD_PAN_FINGERPRINT,
	OLD_LAST4,
	OLD_TYPE,
	OLD_DISPLAY_NAME,
	OLD_PAN_LENGTH_COLUMNS		/* the first of CARD_PAN_LENGTH_COLUMNS */
};

static CardPlan lock_old = {
	NULL,
	"SELECT c.status::text, card.effective_status(c.status, c.expires_on)::text,"
	" c.programme_id, c.account_id, a.status, p.bin, p.pan_length, p.validity_years,"
	" c.pan_ciphertext, c.pan_key_version, c.pan_fingerprint, c.last4, c.type::text,"
	" c.display_name,"
	CARD_PAN_LENGTH_COLUMNS
	" FROM card.card c"
	" JOIN card.programme p ON p.id = c.programme_id"
	" JOIN card.account a ON a.id = c.account_id"
	" WHERE c.id = $1 AND card.programme_visible(c.programme_id)"
	" FOR NO KEY UPDATE OF c",
	1, {UUIDOID}
};

/* The card's replacements so far, the one for this reason first. */
enum ReplacementColumn
{
	REPLACEMENT_ID = 1,
	REPLACEMENT_REASON
};

static CardPlan find_replacements = {
	NULL,
	"SELECT id, replacement_reason::text FROM card.card WHERE replacement_for = $1"
	" ORDER BY replacement_reason = $2::card.replacement_reason DESC",
	2, {UUIDOID, TEXTOID}
};

/* A reissue's number among the cards of its PAN. */
enum SequenceColumn
{
	NEXT_SEQUENCE = 1
};

static CardPlan next_sequence = {
	NULL,
	"SELECT coalesce(max(pan_sequence), 0) + 1 FROM card.card"
	" WHERE programme_id = $1 AND pan_fingerprint = $2",
	2, {UUIDOID, BYTEAOID}
};

/*
 * The new card, copied from the old one but for what is new about it.
 * Its parameters, as indexes of values[] ($1 is index 0):
 */
enum InsertParam
{
	INSERT_ID,
	INSERT_OLD_ID,
	INSERT_EXP_MONTH,
	INSERT_EXP_YEAR,
	INSERT_LAST4,
	INSERT_TOKEN,
	INSERT_PAN_CIPHERTEXT,
	INSERT_PAN_KEY_VERSION,
	INSERT_PAN_FINGERPRINT,
	INSERT_PAN_SEQUENCE,
	INSERT_SAME_PAN,			/* a reissue: the old card's programme and PIN */
	INSERT_REASON,
	INSERT_PARAMS
};

static CardPlan insert_replacement = {
	NULL,
	"INSERT INTO card.card (id, programme_id, account_id, individual_id, display_name,"
	" type, exp_month, exp_year, last4, token, pan_ciphertext, pan_key_version,"
	" pan_fingerprint, pan_sequence, pin_hash, replacement_for, replacement_reason,"
	" chain_id, controls, mcc_allowed, mcc_blocked, countries_allowed,"
	" countries_blocked, channels_blocked)"
	" SELECT $1, o.programme_id, o.account_id, o.individual_id, o.display_name,"
	" o.type, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11 THEN o.pin_hash END,"
	" o.id, $12::card.replacement_reason, card.chain_of(o.id, o.chain_id),"
	" o.controls, o.mcc_allowed, o.mcc_blocked, o.countries_allowed,"
	" o.countries_blocked, o.channels_blocked"
	" FROM card.card o WHERE o.id = $2"
	" ON CONFLICT DO NOTHING RETURNING id",
	INSERT_PARAMS, {UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID, INT2OID,
	BYTEAOID, INT2OID, BOOLOID, TEXTOID}
};

static CardPlan end_old = {
	NULL,
	"SELECT card.card_set_status($1, $2::card.card_status, $3, 'api')",
	3, {UUIDOID, TEXTOID, TEXTOID}
};

static CardPlan replaced_event = {
	NULL,
	"SELECT card.event_emit('card.replaced', $1, $2, $3,"
	" jsonb_build_object('replacement_id', $4, 'reason', $5))",
	5, {UUIDOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID}
};

/* The card being replaced: its locked row, with its account and programme. */
typedef struct OldCard
{
	Datum		id;
	char	   *stored;			/* its status as stored */
	char	   *effective;		/* and in effect (expired once its month ended) */
	Datum		programme_id;
	Datum		account_id;
	char	   *account_status;
	char	   *bin;
	int			pan_length;
	int			validity_years;
	bytea	   *sealed;			/* its PAN, encrypted for it */
	int			key_version;
	Datum		fingerprint;
	char	   *last4;
	char	   *type;
	char	   *display_name;
	CardPanLength pan_length_rule;	/* whether the brand issues pan_length */
} OldCard;

/* The replacement asked for. */
typedef struct Replacement
{
	char	   *reason;
	bool		same_pan;		/* a reissue (damaged, expired): the old PAN */
	int			sequence;		/* a reissue's number among its PAN's cards */
	char		month[3];		/* the new card's expiry */
	char		year[5];
} Replacement;

/*
 * Which cards each reason may replace: lost and stolen any live card or
 * one already reported so; damaged a live card; expired a card that is
 * live or ran out of date (not one ended for another reason).
 */
static void
check_replaceable(Datum card_id, const char *reason, const char *stored,
				  const char *effective)
{
	bool		ok;

	if (card_name_compromises_pan(reason))
		ok = card_status_name_live(effective) || card_name_compromises_pan(stored);
	else if (strcmp(reason, "damaged") == 0)
		ok = card_status_name_live(effective);
	else
		ok = card_status_name_live(stored) || strcmp(stored, "expired") == 0;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s is %s and cannot be replaced as %s",
						card_uuid_string(card_id), effective, reason),
				 strcmp(effective, "expired") == 0 ?
				 errhint("Replace an expired card with reason expired.") :
				 card_name_compromises_pan(stored) ?
				 errhint("Replace a lost or stolen card with reason lost or stolen.") : 0));
}

/* Read and check the arguments (23502 if one is missing, 22023 if bad). */
static Datum
replace_read_request(FunctionCallInfo fcinfo, Replacement *repl)
{
	card_require(!PG_ARGISNULL(0), "card_id");
	card_require(!PG_ARGISNULL(1), "reason");
	repl->reason = text_to_cstring(PG_GETARG_TEXT_PP(1));
	repl->same_pan = card_reason_reissues_pan(repl->reason);
	if (!repl->same_pan && !card_name_compromises_pan(repl->reason))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid replacement reason \"%s\"", repl->reason),
				 errhint("Use lost, stolen (new PAN), damaged or expired (same PAN).")));
	repl->sequence = 0;
	return PG_GETARG_DATUM(0);
}

/*
 * Lock the old card (P0002 if the caller sees no such card) and read it;
 * its PAN and fingerprint are copied out of the result row.
 */
static void
replace_lock_old(Datum old_id, OldCard *old)
{
	bool		isnull;

	if (card_exec(&lock_old, &old_id, NULL, false, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("card %s does not exist", card_uuid_string(old_id))));
	old->id = old_id;
	old->stored = card_spi_text(0, OLD_STATUS);
	old->effective = card_spi_text(0, OLD_EFFECTIVE_STATUS);
	old->programme_id = card_spi_datum(0, OLD_PROGRAMME_ID, &isnull);
	old->account_id = card_spi_datum(0, OLD_ACCOUNT_ID, &isnull);
	old->account_status = card_spi_text(0, OLD_ACCOUNT_STATUS);
	old->bin = card_spi_text(0, OLD_BIN);
	old->pan_length = DatumGetInt16(card_spi_datum(0, OLD_PAN_LENGTH, &isnull));
	old->validity_years = DatumGetInt16(card_spi_datum(0, OLD_VALIDITY_YEARS, &isnull));
	old->sealed = DatumGetByteaPCopy(card_spi_datum(0, OLD_PAN_CIPHERTEXT, &isnull));
	old->key_version = DatumGetInt16(card_spi_datum(0, OLD_PAN_KEY_VERSION, &isnull));
	old->fingerprint = PointerGetDatum(DatumGetByteaPCopy(card_spi_datum(0, OLD_PAN_FINGERPRINT, &isnull)));
	old->last4 = card_spi_text(0, OLD_LAST4);
	old->type = card_spi_text(0, OLD_TYPE);
	old->display_name = card_spi_text(0, OLD_DISPLAY_NAME);
	card_pan_length_read(OLD_PAN_LENGTH_COLUMNS, &old->pan_length_rule);
}

/*
 * The same request again: set *first to the first replacement, as it is
 * now, and return true.  Otherwise a card is replaced once (55000), but
 * for a lost or stolen report that follows a reissue still under way (the
 * old card still works, so it can still be lost).
 */
static bool
replace_earlier(const OldCard *old, const Replacement *repl, Datum *first)
{
	Datum		args[2] = {old->id, CStringGetTextDatum(repl->reason)};
	bool		isnull;
	char	   *first_reason;

	if (card_exec(&find_replacements, args, NULL, false, 0) == 0)
		return false;
	*first = card_spi_datum(0, REPLACEMENT_ID, &isnull);
	first_reason = card_spi_text(0, REPLACEMENT_REASON);
	if (strcmp(first_reason, repl->reason) == 0)
		return true;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *earlier = card_spi_text(i, REPLACEMENT_REASON);

		if (repl->same_pan || card_name_compromises_pan(earlier))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("card %s was already replaced (%s) by card %s",
							card_uuid_string(old->id), earlier,
							card_uuid_string(card_spi_datum(i, REPLACEMENT_ID, &isnull)))));
	}
	return false;
}

/* Refuse a card the reason cannot replace, or one on an account not active (55000). */
static void
replace_check_allowed(const OldCard *old, const Replacement *repl)
{
	check_replaceable(old->id, repl->reason, old->stored, old->effective);
	if (strcmp(old->account_status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("account %s is %s", card_uuid_string(old->account_id),
						old->account_status),
				 errhint("Cards can be replaced only on an active account.")));
	/* A new PAN (lost, stolen) only where the brand issues the length. */
	if (!repl->same_pan)
		card_pan_length_refuse(&old->pan_length_rule, old->programme_id, old->pan_length);
}

/* A reissue's number among the cards of its PAN: one past the highest. */
static int
replace_pan_sequence(const OldCard *old)
{
	Datum		args[2] = {old->programme_id, old->fingerprint};
	bool		isnull;

	card_exec(&next_sequence, args, NULL, false, 1);
	return DatumGetInt32(card_spi_datum(0, NEXT_SEQUENCE, &isnull));
}

/*
 * One try at inserting the new card, with a new id and token, and the old
 * PAN sealed for it (a reissue) or a new PAN, under the newest key; false
 * if nothing was inserted.  Sets *new_id and *last4.
 */
static bool
replace_insert(const OldCard *old, const Replacement *repl, Datum *new_id,
			   char **last4)
{
	int			key_version = card_enc_key_newest();
	pg_uuid_t  *new_uuid;
	Datum		values[INSERT_PARAMS];

	*new_id = card_time_uuid();
	new_uuid = DatumGetUUIDP(*new_id);
	values[INSERT_ID] = *new_id;
	values[INSERT_OLD_ID] = old->id;
	values[INSERT_EXP_MONTH] = CStringGetTextDatum(repl->month);
	values[INSERT_EXP_YEAR] = CStringGetTextDatum(repl->year);
	values[INSERT_TOKEN] = CStringGetTextDatum(card_random_token(CARD_TOKEN_PREFIX, CARD_TOKEN_BYTES));
	values[INSERT_PAN_KEY_VERSION] = Int16GetDatum((int16) key_version);
	values[INSERT_PAN_SEQUENCE] = Int16GetDatum((int16) repl->sequence);
	values[INSERT_SAME_PAN] = BoolGetDatum(repl->same_pan);
	values[INSERT_REASON] = CStringGetTextDatum(repl->reason);
	if (repl->same_pan)
	{
		*last4 = old->last4;
		values[INSERT_PAN_CIPHERTEXT] =
			PointerGetDatum(card_pan_reseal(old->key_version, DatumGetUUIDP(old->id),
											old->sealed, key_version, new_uuid));
		values[INSERT_PAN_FINGERPRINT] = old->fingerprint;
	}
	else
	{
		CardStoredPan pan;

		card_pan_issue(old->bin, old->pan_length, key_version, new_uuid, &pan);
		*last4 = pan.last4;
		values[INSERT_PAN_CIPHERTEXT] = PointerGetDatum(pan.sealed);
		values[INSERT_PAN_FINGERPRINT] = PointerGetDatum(pan.fingerprint);
	}
	values[INSERT_LAST4] = CStringGetTextDatum(*last4);
	return card_exec(&insert_replacement, values, NULL, false, 0) == 1;
}

/*
 * Insert the new card, drawing again when a new PAN or token collides;
 * returns its id and sets *last4.  54000 once CARD_ISSUE_ATTEMPTS draws
 * collided.
 */
static Datum
replace_issue(const OldCard *old, const Replacement *repl, char **last4)
{
	for (int attempt = 0; attempt < CARD_ISSUE_ATTEMPTS; attempt++)
	{
		Datum		new_id;

		if (replace_insert(old, repl, &new_id, last4))
			return new_id;
		/* The old card's lock holds the PAN's sequence still: no conflict is expected. */
		if (repl->same_pan)
			elog(ERROR, "reissue of card %s collided with another card of its PAN",
				 card_uuid_string(old->id));
		/* A new PAN or token collided: draw again. */
	}
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("could not find an unused PAN for the replacement of card %s after %d attempts",
					card_uuid_string(old->id), CARD_ISSUE_ATTEMPTS),
			 errhint("The programme's BIN range is close to exhausted; use a longer PAN or another BIN.")));
	pg_unreachable();
}

/* The new card's first audit row, then the old card's card.replaced event. */
static void
replace_audit(const OldCard *old, const Replacement *repl, Datum new_id,
			  const char *last4)
{
	Datum		event[5];

	card_audit_ordered(new_id, old->account_id, old->programme_id,
					   psprintf("replacement (%s)", repl->reason), old->type,
					   old->display_name, repl->month, repl->year, last4,
					   card_uuid_string(old->id), repl->reason);
	event[0] = old->id;
	event[1] = old->account_id;
	event[2] = old->programme_id;
	event[3] = new_id;
	event[4] = CStringGetTextDatum(repl->reason);
	card_exec(&replaced_event, event, NULL, false, 1);
}

/*
 * End a lost or stolen card now; the audit trigger (card_status_audit) then
 * ends every other live card with its PAN.
 */
static void
replace_end_old(const OldCard *old, const Replacement *repl, Datum new_id)
{
	Datum		end[3] = {old->id, CStringGetTextDatum(repl->reason),
		CStringGetTextDatum(psprintf("replaced by card %s", card_uuid_string(new_id)))};

	card_exec(&end_old, end, NULL, false, 1);
}

/*
 * card.card_replace(card_id uuid, reason text) RETURNS card.cards
 */
CARD_ENTRY_POINT(card_replace)
{
	Replacement repl;
	Datum		old_id;
	OldCard		old;
	Datum		new_id;
	char	   *last4;

	old_id = replace_read_request(fcinfo, &repl);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	card_chain_lock(old_id);	/* the chain's lock order first */
	replace_lock_old(old_id, &old);
	if (replace_earlier(&old, &repl, &new_id))
		return card_return_card(fcinfo, new_id);
	replace_check_allowed(&old, &repl);
	card_new_expiry(false, old.validity_years, repl.month, repl.year);
	if (repl.same_pan)
		repl.sequence = replace_pan_sequence(&old);

	new_id = replace_issue(&old, &repl, &last4);
	replace_audit(&old, &repl, new_id, last4);
	/* Lost and stolen cards end now, unless already reported. */
	if (!repl.same_pan && card_status_name_live(old.effective))
		replace_end_old(&old, &repl, new_id);
	return card_return_card(fcinfo, new_id);
}
