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

#define REPLACE_ATTEMPTS 16

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
	OLD_DISPLAY_NAME
};

static CardPlan lock_old = {
	NULL,
	"SELECT c.status::text, card.effective_status(c.status, c.expires_on)::text,"
	" c.programme_id, c.account_id, a.status, p.bin, p.pan_length, p.validity_years,"
	" c.pan_ciphertext, c.pan_key_version, c.pan_fingerprint, c.last4, c.type::text,"
	" c.display_name"
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
 * The new card, copied from the old one but for what is new about it.  A
 * new PAN (lost, stolen) passes the programme through
 * card.programme_for_new_card(), which refuses a PAN length the brand
 * does not issue (a programme of 1.1); a reissue keeps its PAN.  Its
 * parameters, as indexes of values[] ($1 is index 0):
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
	" SELECT $1, CASE WHEN $11 THEN o.programme_id"
	"             ELSE card.programme_for_new_card(o.programme_id) END,"
	" o.account_id, o.individual_id, o.display_name,"
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

	if (strcmp(reason, "lost") == 0 || strcmp(reason, "stolen") == 0)
		ok = card_status_name_live(effective) ||
			strcmp(stored, "lost") == 0 || strcmp(stored, "stolen") == 0;
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
				 strcmp(stored, "lost") == 0 || strcmp(stored, "stolen") == 0 ?
				 errhint("Replace a lost or stolen card with reason lost or stolen.") : 0));
}

/*
 * card.card_replace(card_id uuid, reason text) RETURNS card.cards
 */
CARD_ENTRY_POINT(card_replace)
{
	Datum		old_id;
	char	   *reason;
	bool		same_pan;
	char	   *stored;
	char	   *effective;
	Datum		programme_id;
	Datum		account_id;
	char	   *bin;
	int			pan_length;
	int			validity_years;
	bytea	   *old_sealed;
	int			old_version;
	Datum		fingerprint;
	char	   *last4;
	char	   *account_status;
	char	   *type;
	char	   *display_name;
	bool		isnull;
	char		month[3];
	char		year[5];
	int			sequence = 0;

	card_require(!PG_ARGISNULL(0), "card_id");
	card_require(!PG_ARGISNULL(1), "reason");
	old_id = PG_GETARG_DATUM(0);
	reason = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(reason, "lost") != 0 && strcmp(reason, "stolen") != 0 &&
		strcmp(reason, "damaged") != 0 && strcmp(reason, "expired") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid replacement reason \"%s\"", reason),
				 errhint("Use lost, stolen (new PAN), damaged or expired (same PAN).")));
	same_pan = strcmp(reason, "damaged") == 0 || strcmp(reason, "expired") == 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	card_chain_lock(old_id);	/* the chain's lock order first */
	if (card_exec(&lock_old, &old_id, NULL, false, 1) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("card %s does not exist", card_uuid_string(old_id))));
	stored = card_spi_text(0, OLD_STATUS);
	effective = card_spi_text(0, OLD_EFFECTIVE_STATUS);
	programme_id = card_spi_datum(0, OLD_PROGRAMME_ID, &isnull);
	account_id = card_spi_datum(0, OLD_ACCOUNT_ID, &isnull);
	account_status = card_spi_text(0, OLD_ACCOUNT_STATUS);
	bin = card_spi_text(0, OLD_BIN);
	pan_length = DatumGetInt16(card_spi_datum(0, OLD_PAN_LENGTH, &isnull));
	validity_years = DatumGetInt16(card_spi_datum(0, OLD_VALIDITY_YEARS, &isnull));
	old_sealed = DatumGetByteaPCopy(card_spi_datum(0, OLD_PAN_CIPHERTEXT, &isnull));
	old_version = DatumGetInt16(card_spi_datum(0, OLD_PAN_KEY_VERSION, &isnull));
	fingerprint = PointerGetDatum(DatumGetByteaPCopy(card_spi_datum(0, OLD_PAN_FINGERPRINT, &isnull)));
	last4 = card_spi_text(0, OLD_LAST4);
	type = card_spi_text(0, OLD_TYPE);
	display_name = card_spi_text(0, OLD_DISPLAY_NAME);

	/*
	 * The same request again returns the first replacement, as it is now.
	 * Otherwise a card is replaced once, but for a lost or stolen report
	 * that follows a reissue still under way (the old card still works, so
	 * it can still be lost).
	 */
	{
		Datum		args[2] = {old_id, CStringGetTextDatum(reason)};

		if (card_exec(&find_replacements, args, NULL, false, 0) > 0)
		{
			Datum		first = card_spi_datum(0, REPLACEMENT_ID, &isnull);
			char	   *first_reason = card_spi_text(0, REPLACEMENT_REASON);

			if (strcmp(first_reason, reason) == 0)
				return card_return_card(fcinfo, first);
			for (uint64 i = 0; i < SPI_processed; i++)
			{
				char	   *earlier = card_spi_text(i, REPLACEMENT_REASON);

				if (same_pan || strcmp(earlier, "lost") == 0 || strcmp(earlier, "stolen") == 0)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("card %s was already replaced (%s) by card %s",
									card_uuid_string(old_id), earlier,
									card_uuid_string(card_spi_datum(i, REPLACEMENT_ID, &isnull)))));
			}
		}
	}
	check_replaceable(old_id, reason, stored, effective);
	if (strcmp(account_status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("account %s is %s", card_uuid_string(account_id), account_status),
				 errhint("Cards can be replaced only on an active account.")));
	card_new_expiry(false, validity_years, month, year);
	if (same_pan)
	{
		Datum		args[2] = {programme_id, fingerprint};

		card_exec(&next_sequence, args, NULL, false, 1);
		sequence = DatumGetInt32(card_spi_datum(0, NEXT_SEQUENCE, &isnull));
	}

	for (int attempt = 0; attempt < REPLACE_ATTEMPTS; attempt++)
	{
		int			key_version = card_enc_key_newest();
		Datum		new_id = card_random_uuid();
		pg_uuid_t  *new_uuid = DatumGetUUIDP(new_id);
		Datum		values[INSERT_PARAMS];

		values[INSERT_ID] = new_id;
		values[INSERT_OLD_ID] = old_id;
		values[INSERT_EXP_MONTH] = CStringGetTextDatum(month);
		values[INSERT_EXP_YEAR] = CStringGetTextDatum(year);
		values[INSERT_TOKEN] = CStringGetTextDatum(card_random_token("ct_", 18));
		values[INSERT_PAN_KEY_VERSION] = Int16GetDatum((int16) key_version);
		values[INSERT_PAN_SEQUENCE] = Int16GetDatum((int16) sequence);
		values[INSERT_SAME_PAN] = BoolGetDatum(same_pan);
		values[INSERT_REASON] = CStringGetTextDatum(reason);
		if (same_pan)
		{
			values[INSERT_LAST4] = CStringGetTextDatum(last4);
			values[INSERT_PAN_CIPHERTEXT] =
				PointerGetDatum(card_pan_reseal(old_version, DatumGetUUIDP(old_id),
												old_sealed, key_version, new_uuid));
			values[INSERT_PAN_FINGERPRINT] = fingerprint;
		}
		else
		{
			CardStoredPan pan;

			card_pan_issue(bin, pan_length, key_version, new_uuid, &pan);
			values[INSERT_LAST4] = CStringGetTextDatum(pan.last4);
			values[INSERT_PAN_CIPHERTEXT] = PointerGetDatum(pan.sealed);
			values[INSERT_PAN_FINGERPRINT] = PointerGetDatum(pan.fingerprint);
		}
		if (card_exec(&insert_replacement, values, NULL, false, 0) != 1)
		{
			/* The old card's lock holds the PAN's sequence still: no conflict is expected. */
			if (same_pan)
				elog(ERROR, "reissue of card %s collided with another card of its PAN",
					 card_uuid_string(old_id));
			continue;			/* a new PAN or token collided: draw again */
		}

		card_audit_ordered(new_id, account_id, programme_id,
						   psprintf("replacement (%s)", reason), type, display_name,
						   month, year, TextDatumGetCString(values[INSERT_LAST4]),
						   card_uuid_string(old_id), reason);
		{
			Datum		event[5] = {old_id, account_id, programme_id, new_id,
			CStringGetTextDatum(reason)};

			card_exec(&replaced_event, event, NULL, false, 1);
		}
		/*
		 * Lost and stolen cards end now (unless already reported); the
		 * card_status_end_lost_pan trigger then ends every other live card
		 * with their PAN.
		 */
		if (!same_pan && card_status_name_live(effective))
		{
			Datum		end[3] = {old_id, CStringGetTextDatum(reason),
				CStringGetTextDatum(psprintf("replaced by card %s", card_uuid_string(new_id)))};

			card_exec(&end_old, end, NULL, false, 1);
		}
		return card_return_card(fcinfo, new_id);
	}
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("could not find an unused PAN for the replacement of card %s after %d attempts",
					card_uuid_string(old_id), REPLACE_ATTEMPTS),
			 errhint("The programme's BIN range is close to exhausted; use a longer PAN or another BIN.")));
	pg_unreachable();
}
