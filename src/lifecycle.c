/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *	  Status changes requested through the API: card.card_set_status() and
 *	  the expiry sweep card.card_expire_due().
 *
 * Both UPDATE card.card.status; the trigger in status.c judges each move
 * against the row it has locked.  The sweep's audit rows are written by
 * the trigger; card_set_status writes its change's audit row and event in
 * the statement of the change.  Both add what the trigger cannot know: the
 * reason and channel.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "miscadmin.h"
#include "utils/builtins.h"

#define REASON_MAX 500

/*
 * card_set_status's change with its audit row and event, in one statement
 * that returns the card as card.cards shows it: the audit trigger leaves
 * this change to it (card_change_context.recorded).  If a BEFORE trigger
 * of the superuser's changed the new status, the statement records
 * nothing and the audit trigger records what happened.  The parameters,
 * as indexes of values[] ($1 is index 0):
 */
enum RecordedChangeParam
{
	RECORDED_CARD_ID,
	RECORDED_TO,
	RECORDED_FROM,
	RECORDED_REASON,
	RECORDED_CHANNEL,
	RECORDED_ACTOR,
	RECORDED_EVENT_TYPE,
	RECORDED_EVENT_DATA,
	RECORDED_EVENTS,			/* card.events: whether the event is written */
	RECORDED_PARAMS
};

static CardPlan recorded_change = {
	NULL,
	"WITH c AS ("
	"  UPDATE card.card SET status = $2::card.card_status WHERE id = $1"
	CARD_WRITTEN_RETURNING ","
	" audit AS ("
	"  INSERT INTO card.card_status_change"
	"   (card_id, from_status, to_status, reason, channel, actor)"
	"  SELECT c.id, $3::card.card_status, c.status, $4, $5, $6 FROM c"
	"   WHERE c.status = $2::card.card_status),"
	" fed AS ("
	"  INSERT INTO card.event (type, card_id, account_id, programme_id, data)"
	"  SELECT $7::card.event_type, c.id, c.account_id, c.programme_id, $8::jsonb"
	"    FROM c WHERE c.status = $2::card.card_status AND $9 RETURNING seq)"
	CARD_WRITTEN_RESULT,
	RECORDED_PARAMS, {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, NAMEOID, TEXTOID,
		TEXTOID, BOOLOID}
};

/*
 * expiry_due is expires_on while a card is live (the live statuses of
 * facts.h), NULL once it has ended: the sweep's index holds live cards
 * only.
 */
static CardPlan expire_due = {
	NULL,
	"UPDATE card.card SET status = 'expired'"
	" WHERE expiry_due <= $1"
	" AND (card.caller_sees_all()"
	" OR programme_id IN (SELECT card.visible_programmes()))",
	1, {DATEOID}
};

/*
 * Run a status-changing plan with the change context set (activating names
 * the card the hosted flow activates, if any), clearing it however the
 * statement ends.  Returns the number of rows changed.
 */
int
card_exec_status_change(CardPlan *cp, Datum *values, const char *reason,
						const char *channel, const pg_uuid_t *activating)
{
	volatile int changed = 0;
	CardChangeContext previous = card_change_begin(reason, channel, activating);

	PG_TRY();
	{
		changed = card_exec(cp, values, NULL, false, 0);
	}
	PG_FINALLY();
	{
		card_change_end(previous);
	}
	PG_END_TRY();
	return changed;
}

/*
 * Change the (chain-locked) card's stored status from to status, writing
 * its audit row and event in the same statement; true with that
 * statement's row, the card as card.cards shows it, in SPI_tuptable, or
 * false if a BEFORE trigger of the superuser's skipped the update.
 */
static bool
set_status_recorded(Datum card_id, Datum programme_id, const char *from,
					const char *status, const char *reason, const char *channel)
{
	Datum		values[RECORDED_PARAMS];
	char		nulls[RECORDED_PARAMS];
	NameData	actor;
	const char *event_type;
	char	   *event_data;
	CardChangeContext previous;
	volatile int changed = 0;

	memset(nulls, ' ', sizeof(nulls));
	namestrcpy(&actor, GetUserNameFromId(card_caller_role(), false));
	event_data = card_status_event(from, status, reason, channel, &event_type);
	values[RECORDED_CARD_ID] = card_id;
	values[RECORDED_TO] = CStringGetTextDatum(status);
	values[RECORDED_FROM] = CStringGetTextDatum(from);
	values[RECORDED_REASON] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[RECORDED_REASON] = reason ? ' ' : 'n';
	values[RECORDED_CHANNEL] = CStringGetTextDatum(channel);
	values[RECORDED_ACTOR] = NameGetDatum(&actor);
	values[RECORDED_EVENT_TYPE] = CStringGetTextDatum(event_type);
	values[RECORDED_EVENT_DATA] = CStringGetTextDatum(event_data);
	values[RECORDED_EVENTS] = BoolGetDatum(card_events_enabled);
	card_event_writer_lock(programme_id);

	/* Nothing that can fail between setting the context and PG_TRY. */
	previous = card_change_begin(reason, channel, NULL);
	card_change_context.recorded = DatumGetUUIDP(card_id);
	card_change_context.recorded_from = from;
	card_change_context.recorded_to = status;
	PG_TRY();
	{
		changed = card_exec(&recorded_change, values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		card_change_end(previous);
	}
	PG_END_TRY();
	if (changed != 1)
		return false;
	card_written_card_event(event_type);
	return true;
}

/*
 * card.card_set_status(card_id uuid, status card.card_status, reason text,
 *	 channel text) RETURNS card.cards
 */
CARD_ENTRY_POINT(card_set_status)
{
	Datum		card_id;
	char	   *status;
	char	   *reason = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *channel = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	CardLocked	locked;
	char	   *stored;
	const char *effective;

	card_require(!PG_ARGISNULL(0), "card_id");
	card_require(!PG_ARGISNULL(1), "status");
	card_id = PG_GETARG_DATUM(0);
	status = DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(1)));
	card_check_channel(channel);
	if (reason && strlen(reason) > REASON_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reason is longer than %d bytes", REASON_MAX)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/*
	 * The account, the chain's first card, then the card, whose status
	 * this reads as locked; a change that ends other cards of the PAN
	 * locks them after, in the chain's order (chain.c).
	 */
	if (!card_lock(card_id, &locked))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("card %s does not exist", card_uuid_string(card_id))));
	stored = locked.status;
	effective = locked.effective;

	if (strcmp(stored, status) == 0)
	{
		/* Same status: a safe retry, nothing to do or record, unless the card ran out meanwhile. */
		if (strcmp(effective, stored) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("card %s is expired and cannot stay \"%s\"",
							card_uuid_string(card_id), stored),
					 errhint("Order a new card instead.")));
	}
	else
	{
		if (set_status_recorded(card_id, locked.programme_id, stored, status, reason, channel))
			return card_return_written_card(fcinfo);
	}
	return card_return_card(fcinfo, card_id);
}

/*
 * card.card_expire_due(as_of date) RETURNS integer
 *
 * Records as expired every live card whose expiry month ended before
 * as_of; returns how many.  as_of may not lie after today in UTC: expired
 * is final, so a sweep must never run ahead of the calendar.
 */
CARD_ENTRY_POINT(card_expire_due)
{
	Datum		as_of;
	int			expired;

	card_require(!PG_ARGISNULL(0), "as_of");
	as_of = PG_GETARG_DATUM(0);
	if (DatumGetDateADT(as_of) > card_utc_today())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of %s is after today (UTC)",
						DatumGetCString(DirectFunctionCall1(date_out, as_of))),
				 errdetail("Expired is a final status; cards still in date must not be swept."),
				 errhint("Omit as_of to sweep up to today.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	expired = card_exec_status_change(&expire_due, &as_of, "expiry", "system", NULL);
	SPI_finish();
	PG_RETURN_INT32(expired);
}
