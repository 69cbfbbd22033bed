/*-------------------------------------------------------------------------
 *
 * status.c
 *	  The card lifecycle: one transition table, the trigger that enforces
 *	  it on card.card, and card.card_status_transitions() that shows it.
 *
 * Whoever writes card.card.status, one of our functions or a direct
 * UPDATE, goes through card_status_guard, which checks the move against
 * the table below using the row as locked by the UPDATE (so concurrent
 * changes are judged against the latest committed status), and
 * card_status_audit, which records each real change (but the one that
 * card_set_status records in its own statement).
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"

typedef enum CardStatus
{
	CARD_NOT_ACTIVATED,
	CARD_ACTIVE,
	CARD_FROZEN,
	CARD_BLOCKED,
	CARD_LOST,
	CARD_STOLEN,
	CARD_EXPIRED,
	CARD_STATUS_COUNT
} CardStatus;

typedef enum TransitionRule
{
	RULE_NOOP,					/* same status: accepted, nothing recorded */
	RULE_ALLOWED,				/* anyone may make this change */
	RULE_ACTIVATION,			/* physical: hosted flow only; virtual: anyone */
	RULE_FORBIDDEN,				/* not from this status */
	RULE_TERMINAL				/* the card's life has ended */
} TransitionRule;

static const char *const status_names[CARD_STATUS_COUNT] = {
	"not_activated", "active", "frozen", "blocked", "lost", "stolen", "expired"
};

#define N RULE_NOOP
#define Y RULE_ALLOWED
#define A RULE_ACTIVATION
#define F RULE_FORBIDDEN
#define T RULE_TERMINAL

/* transitions[from][to]: DESIGN.md section 5, the one source of truth. */
static const TransitionRule transitions[CARD_STATUS_COUNT][CARD_STATUS_COUNT] = {
	/* to: not_act active frozen blocked lost stolen expired */
	/* not_activated */ {N, A, F, Y, Y, Y, Y},
	/* active        */ {F, N, Y, Y, Y, Y, Y},
	/* frozen        */ {F, Y, N, Y, Y, Y, Y},
	/* blocked       */ {T, T, T, N, T, T, T},
	/* lost          */ {T, T, T, T, N, T, T},
	/* stolen        */ {T, T, T, T, T, N, T},
	/* expired       */ {T, T, T, T, T, T, N},
};

#undef N
#undef Y
#undef A
#undef F
#undef T

static const char *const rule_names[] = {
	"no-op", "allowed", "activation", "forbidden", "terminal"
};

static const char *const rule_who[] = {
	"anyone (nothing is recorded)",
	"anyone",
	"hosted activation flow; virtual cards also card_set_status",
	"nobody",
	"nobody: the status is final"
};

CardChangeContext card_change_context = {false, NULL, NULL, NULL, NULL, NULL, NULL};

/*
 * Describe the status change our caller is about to make; returns the
 * context it replaces, for card_change_end.
 */
CardChangeContext
card_change_begin(const char *reason, const char *channel,
				  const pg_uuid_t *activating)
{
	CardChangeContext previous = card_change_context;

	card_change_context.active = true;
	card_change_context.activating = activating;
	card_change_context.reason = reason;
	card_change_context.channel = channel;
	card_change_context.recorded = NULL;
	card_change_context.recorded_from = NULL;
	card_change_context.recorded_to = NULL;
	return previous;
}

/* Restore the context before (always, also on error: PG_FINALLY in callers). */
void
card_change_end(CardChangeContext previous)
{
	card_change_context = previous;
}

/*
 * No context outlives its transaction: an error that escaped a caller's
 * PG_FINALLY must not leave a later direct UPDATE recorded with a freed
 * reason or skipped as recorded.
 */
void
card_change_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PREPARE)
		memset(&card_change_context, 0, sizeof(card_change_context));
}

static CardStatus
card_status_from_name(const char *name)
{
	for (int i = 0; i < CARD_STATUS_COUNT; i++)
		if (strcmp(status_names[i], name) == 0)
			return (CardStatus) i;
	elog(ERROR, "unknown card status \"%s\"", name);
	return CARD_STATUS_COUNT;	/* keep compiler quiet */
}

static const char *
card_status_name(CardStatus status)
{
	Assert(status >= 0 && status < CARD_STATUS_COUNT);
	return status_names[status];
}

static const char *const live_status_names[] = {CARD_LIVE_STATUSES};

/* A status from which the card can still be used or change (facts.h). */
static bool
card_status_live(CardStatus status)
{
	for (size_t i = 0; i < lengthof(live_status_names); i++)
		if (strcmp(live_status_names[i], status_names[status]) == 0)
			return true;
	return false;
}

/* The same, for a status by name (as the entry points read it from SQL). */
bool
card_status_name_live(const char *status)
{
	return card_status_live(card_status_from_name(status));
}

/*
 * card.effective_status, for a card read by key: expired once a live
 * card's expiry month has ended (expires_on today or earlier, UTC).
 */
const char *
card_effective_status(const char *status, DateADT expires_on)
{
	return card_status_name_live(status) && expires_on <= card_utc_today() ? "expired" : status;
}

/*
 * Whether a status, or a replacement's reason (they share these names),
 * says the card's PAN is compromised: lost or stolen.  A PAN that is not
 * compromised is reissued (damaged, expired: card_replace keeps it).
 */
bool
card_name_compromises_pan(const char *name)
{
	return strcmp(name, "lost") == 0 || strcmp(name, "stolen") == 0;
}

/* Whether a replacement's reason reissues the PAN: damaged or expired. */
bool
card_reason_reissues_pan(const char *reason)
{
	return strcmp(reason, "damaged") == 0 || strcmp(reason, "expired") == 0;
}

/* Status of a column of a trigger tuple. */
static CardStatus
tuple_status(HeapTuple tuple, TupleDesc tupdesc, int attnum)
{
	char	   *label = SPI_getvalue(tuple, tupdesc, attnum);

	if (label == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("card status must not be null")));
	return card_status_from_name(label);
}

static int
column(TupleDesc tupdesc, const char *name)
{
	int			attnum = SPI_fnumber(tupdesc, name);

	if (attnum <= 0)
		elog(ERROR, "card.card has no column \"%s\"", name);
	return attnum;
}

/*
 * The status a card really has: a live card whose expiry month has ended
 * (expires_on, first day after it, is today or earlier in UTC) is expired
 * for every purpose, even before card.card_expire_due() records it.
 */
static CardStatus
effective_status(HeapTuple tuple, TupleDesc tupdesc)
{
	CardStatus	stored = tuple_status(tuple, tupdesc, column(tupdesc, "status"));
	bool		isnull;
	Datum		expires_on = SPI_getbinval(tuple, tupdesc,
										   column(tupdesc, "expires_on"), &isnull);

	if (card_status_live(stored) && !isnull &&
		DatumGetDateADT(expires_on) <= card_utc_today())
		return CARD_EXPIRED;
	return stored;
}

/* True if the named column differs between the old and the new row. */
static bool
column_changed(TriggerData *trigdata, const char *name)
{
	TupleDesc	tupdesc = trigdata->tg_relation->rd_att;
	int			attnum = column(tupdesc, name);
	char	   *before = SPI_getvalue(trigdata->tg_trigtuple, tupdesc, attnum);
	char	   *after = SPI_getvalue(trigdata->tg_newtuple, tupdesc, attnum);

	if (before == NULL || after == NULL)
		return before != after;
	return strcmp(before, after) != 0;
}

/*
 * card_status_guard() RETURNS trigger
 *
 * BEFORE UPDATE OF status, type, exp_month, exp_year ON card.card FOR EACH
 * ROW.  Besides the status moves, it keeps the two other ways round the
 * lifecycle shut: the type never changes (a physical card would skip the
 * hosted activation), and an ended card's expiry cannot be moved to bring
 * it back.  Inserts are not checked: card_order creates cards, and a
 * restore from pg_dump must reload them as they were.
 */
PG_FUNCTION_INFO_V1(card_status_guard);
Datum
card_status_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	newtuple;
	int			status_col;
	CardStatus	from;
	CardStatus	to;
	char	   *card_id;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "card_status_guard must be a BEFORE UPDATE ROW trigger");

	tupdesc = trigdata->tg_relation->rd_att;
	status_col = column(tupdesc, "status");
	newtuple = trigdata->tg_newtuple;
	to = tuple_status(newtuple, tupdesc, status_col);
	card_id = SPI_getvalue(newtuple, tupdesc, column(tupdesc, "id"));
	from = effective_status(trigdata->tg_trigtuple, tupdesc);

	if (column_changed(trigdata, "type"))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the type of card %s cannot change", card_id),
				 errhint("Order a new card of the other type.")));
	if (!card_status_live(from) &&
		(column_changed(trigdata, "exp_month") || column_changed(trigdata, "exp_year")))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card %s is %s and its expiry cannot change",
						card_id, card_status_name(from)),
				 errhint("Order a new card instead.")));

	/* A write that leaves the stored status alone is not a status change. */
	if (tuple_status(trigdata->tg_trigtuple, tupdesc, status_col) == to)
		return PointerGetDatum(newtuple);
	if (from == to)				/* recording an expiry that already happened */
		return PointerGetDatum(newtuple);

	switch (transitions[from][to])
	{
		case RULE_NOOP:
		case RULE_ALLOWED:
			break;
		case RULE_ACTIVATION:
			{
				char	   *type = SPI_getvalue(trigdata->tg_trigtuple, tupdesc,
												column(tupdesc, "type"));
				bool		isnull;
				Datum		id = SPI_getbinval(newtuple, tupdesc,
											   column(tupdesc, "id"), &isnull);
				const pg_uuid_t *activating = card_change_context.activating;

				/* Only the one card the hosted flow is completing for. */
				if (strcmp(type, "physical") == 0 &&
					(activating == NULL ||
					 memcmp(DatumGetUUIDP(id)->data, activating->data, UUID_LEN) != 0))
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("physical card %s can only be activated by the cardholder", card_id),
							 errhint("Start the hosted activation flow with card.card_activation_start().")));
				break;
			}
		case RULE_FORBIDDEN:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("card %s cannot change from \"%s\" to \"%s\"",
							card_id, card_status_name(from), card_status_name(to)),
					 from == CARD_NOT_ACTIVATED ?
					 errhint("Activate the card first.") : 0));
			break;
		case RULE_TERMINAL:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("card %s is %s and cannot change to \"%s\"",
							card_id, card_status_name(from), card_status_name(to)),
					 errdetail("\"%s\" is a final status.", card_status_name(from)),
					 errhint("Order a new card instead.")));
			break;
	}
	return PointerGetDatum(newtuple);
}

/*
 * The event of a status change: an activation, or a status change, with
 * its data (from, to, reason, channel) as a JSON object; sets *event_type.
 */
char *
card_status_event(const char *from, const char *to, const char *reason,
				  const char *channel, const char **event_type)
{
	StringInfoData data;

	*event_type = strcmp(from, "not_activated") == 0 && strcmp(to, "active") == 0 ?
		"card.activated" : "card.status_changed";
	initStringInfo(&data);
	appendStringInfoChar(&data, '{');
	card_json_text(&data, "from", from);
	card_json_text(&data, "to", to);
	card_json_text(&data, "reason", reason);
	card_json_text(&data, "channel", channel);
	appendStringInfoChar(&data, '}');
	return data.data;
}

/*
 * Record one status change in card.card_status_change and, in the same
 * statement, its event on the live feed (unless card.events is off); from
 * is NULL for a new card.  The actor is the calling role, also inside
 * SECURITY DEFINER functions.  The caller must be connected to SPI.
 */
void
card_audit_insert(Datum card_id, Datum account_id, Datum programme_id,
				  const char *from, const char *to, const char *reason,
				  const char *channel, const char *event_type,
				  const char *event_data)
{
	/* The parameters, as indexes of values[] ($1 is index 0). */
	enum ChangeParam
	{
		CHANGE_CARD_ID,
		CHANGE_FROM,			/* NULL for a new card */
		CHANGE_TO,
		CHANGE_REASON,
		CHANGE_CHANNEL,
		CHANGE_ACTOR,
		CHANGE_EVENT_TYPE,
		CHANGE_ACCOUNT_ID,
		CHANGE_PROGRAMME_ID,
		CHANGE_EVENT_DATA,
		CHANGE_EVENTS,			/* card.events: whether the event is written */
		CHANGE_PARAMS
	};
	enum ChangeColumn
	{
		CHANGE_EVENT_SEQ = 1	/* no row when card.events is off */
	};
	static CardPlan insert_change = {
		NULL,
		"WITH audit AS ("
		"  INSERT INTO card.card_status_change"
		"   (card_id, from_status, to_status, reason, channel, actor)"
		"  VALUES ($1, $2::card.card_status, $3::card.card_status, $4, $5, $6))"
		" INSERT INTO card.event (type, card_id, account_id, programme_id, data)"
		" SELECT $7::card.event_type, $1, $8, $9, $10::jsonb WHERE $11"
		" RETURNING seq",
		CHANGE_PARAMS, {UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, NAMEOID, TEXTOID,
			UUIDOID, UUIDOID, TEXTOID, BOOLOID}
	};
	Datum		values[CHANGE_PARAMS];
	char		nulls[CHANGE_PARAMS];
	NameData	actor;
	bool		isnull;

	memset(nulls, ' ', sizeof(nulls));
	namestrcpy(&actor, GetUserNameFromId(card_caller_role(), false));
	values[CHANGE_CARD_ID] = card_id;
	values[CHANGE_FROM] = from ? CStringGetTextDatum(from) : (Datum) 0;
	nulls[CHANGE_FROM] = from ? ' ' : 'n';
	values[CHANGE_TO] = CStringGetTextDatum(to);
	values[CHANGE_REASON] = reason ? CStringGetTextDatum(reason) : (Datum) 0;
	nulls[CHANGE_REASON] = reason ? ' ' : 'n';
	values[CHANGE_CHANNEL] = CStringGetTextDatum(channel);
	values[CHANGE_ACTOR] = NameGetDatum(&actor);
	values[CHANGE_EVENT_TYPE] = CStringGetTextDatum(event_type);
	values[CHANGE_ACCOUNT_ID] = account_id;
	values[CHANGE_PROGRAMME_ID] = programme_id;
	values[CHANGE_EVENT_DATA] = CStringGetTextDatum(event_data);
	values[CHANGE_EVENTS] = BoolGetDatum(card_events_enabled);
	card_event_writer_lock(programme_id);
	if (card_exec(&insert_change, values, nulls, false, 1) == 1)
		card_event_written(DatumGetInt64(card_spi_datum(0, CHANGE_EVENT_SEQ, &isnull)),
						  event_type);
}

/*
 * The other cards of the PAN a change ends, by card.end_same_pan(), as the
 * reason their blocks are recorded with; NULL if it ends none.  A lost or
 * stolen card's PAN is compromised, however the card came to be lost or
 * stolen (card_replace, card_set_status, a direct UPDATE): every other
 * live card with it ends.  A reissue (damaged, expired: same PAN) closes
 * the card it replaces, and any earlier reissue, once it is activated;
 * until then they all work.
 */
static char *
status_change_ends_pan(TriggerData *trigdata, const char *from, const char *to,
					   Datum card_id)
{
	TupleDesc	tupdesc = trigdata->tg_relation->rd_att;
	char	   *replacement_reason;

	if (card_name_compromises_pan(to))
		return psprintf("PAN %s with card %s", to, card_uuid_string(card_id));
	if (strcmp(from, "not_activated") != 0 || strcmp(to, "active") != 0)
		return NULL;
	replacement_reason = SPI_getvalue(trigdata->tg_newtuple, tupdesc,
									  column(tupdesc, "replacement_reason"));
	if (replacement_reason != NULL && card_reason_reissues_pan(replacement_reason))
		return psprintf("replaced by card %s", card_uuid_string(card_id));
	return NULL;
}

/*
 * card_status_audit() RETURNS trigger
 *
 * AFTER UPDATE OF status ON card.card FOR EACH ROW: for each real change,
 * one card.card_status_change row and one event, in the same transaction,
 * with the reason and channel our caller declared; then the other cards of
 * the PAN it ends (status_change_ends_pan).  One trigger without a WHEN
 * condition (1.12): PostgreSQL compiles a trigger's WHEN expression at each
 * statement that fires it, and the three of them (this one's, and those of
 * the two PL/pgSQL triggers that ended other cards) cost a tenth of a
 * status change; the tests they made are these few comparisons.
 */
PG_FUNCTION_INFO_V1(card_status_audit);
Datum
card_status_audit(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	int			status_col;
	char	   *from;
	char	   *to;
	bool		isnull;
	bool		recorded;
	Datum		card_id;
	char	   *ends_pan;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "card_status_audit must be an AFTER UPDATE ROW trigger");

	tupdesc = trigdata->tg_relation->rd_att;
	status_col = column(tupdesc, "status");
	from = SPI_getvalue(trigdata->tg_trigtuple, tupdesc, status_col);
	to = SPI_getvalue(trigdata->tg_newtuple, tupdesc, status_col);
	if (strcmp(from, to) == 0)
		return PointerGetDatum(NULL);
	card_id = SPI_getbinval(trigdata->tg_trigtuple, tupdesc,
							column(tupdesc, "id"), &isnull);

	/*
	 * The calling statement records this change itself (card_set_status):
	 * the one change of that card between those statuses, once; any other,
	 * such as a change a trigger of the superuser's makes to it, is
	 * recorded here.
	 */
	recorded = card_change_context.active && card_change_context.recorded != NULL &&
		memcmp(DatumGetUUIDP(card_id)->data, card_change_context.recorded->data, UUID_LEN) == 0 &&
		strcmp(from, card_change_context.recorded_from) == 0 &&
		strcmp(to, card_change_context.recorded_to) == 0;
	if (recorded)
		card_change_context.recorded = NULL;
	ends_pan = status_change_ends_pan(trigdata, from, to, card_id);
	if (recorded && ends_pan == NULL)
		return PointerGetDatum(NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!recorded)
	{
		const char *reason = card_change_context.active ? card_change_context.reason : "direct update";
		const char *channel = card_change_context.active ? card_change_context.channel : "operator";
		const char *event_type;
		char	   *data = card_status_event(from, to, reason, channel, &event_type);

		card_audit_insert(card_id,
						  SPI_getbinval(trigdata->tg_trigtuple, tupdesc,
										column(tupdesc, "account_id"), &isnull),
						  SPI_getbinval(trigdata->tg_trigtuple, tupdesc,
										column(tupdesc, "programme_id"), &isnull),
						  from, to, reason, channel, event_type, data);
	}
	if (ends_pan != NULL)
	{
		/* After the audit row: this change is recorded before those it causes. */
		static CardPlan end_same_pan = {
			NULL,
			"SELECT card.end_same_pan($1, $2)",
			2, {UUIDOID, TEXTOID}
		};
		Datum		args[2] = {card_id, CStringGetTextDatum(ends_pan)};

		card_exec(&end_same_pan, args, NULL, false, 0);
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * card.card_status_transitions() RETURNS TABLE(from_status card.card_status,
 *	 to_status card.card_status, rule text, who_may text)
 */
PG_FUNCTION_INFO_V1(card_status_transitions);
Datum
card_status_transitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AttInMetadata *attinmeta;

	InitMaterializedSRF(fcinfo, 0);
	attinmeta = TupleDescGetAttInMetadata(rsinfo->setDesc);
	for (int from = 0; from < CARD_STATUS_COUNT; from++)
		for (int to = 0; to < CARD_STATUS_COUNT; to++)
		{
			TransitionRule rule = transitions[from][to];
			char	   *row[4];
			HeapTuple	tuple;

			row[0] = (char *) status_names[from];
			row[1] = (char *) status_names[to];
			row[2] = (char *) rule_names[rule];
			row[3] = (char *) rule_who[rule];
			tuple = BuildTupleFromCStrings(attinmeta, row);
			tuplestore_puttuple(rsinfo->setResult, tuple);
		}
	return (Datum) 0;
}
