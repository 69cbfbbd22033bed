/*-------------------------------------------------------------------------
 *
 * event.c
 *	  The live feed: card.event rows written in the transaction of each
 *	  change, and card.events_after(), which hands out events in seq order
 *	  and never one that an event still in flight could precede, and waits
 *	  for the next commit when there is none (wakeup.c).  NOTIFY
 *	  card_events once per transaction only when card.notify is on.
 *
 * Why events_after never skips: seq values come from a sequence, so a
 * transaction may take seq 1, another seq 2 and commit first; a reader that
 * returned 2 and moved its cursor past it would never see 1.  Before a
 * transaction draws a seq for an event of programme P it takes, until it
 * ends, a lock of its own on P (card_event_writer_lock: an advisory lock
 * tag no SQL function takes, RowExclusiveLock, which writers share).
 * events_after reads the sequence's last value L, then waits for the
 * transactions holding the lock of any programme the caller sees
 * (WaitForLockers, as CREATE INDEX CONCURRENTLY does: new writers are not
 * blocked).  Any transaction that drew a seq <= L for an event the caller
 * may be shown held its programme's lock when L was read, so after the
 * wait each such event is either committed or gone; a fresh snapshot then
 * returns events in (cursor, L].  Writers that start later draw seqs above
 * L.  A reader waits only for writers it could be shown: an open
 * transaction of another tenant's programme does not stall it.  A caller
 * who sees every programme (and events without one) waits for every writer
 * of a seq: nextval() holds RowExclusiveLock on card.event_seq until the
 * transaction ends.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define EVENTS_MAX 10000

/* locktag_field4 of the feed's programme locks (pg_advisory_* use 1 and 2). */
#define FEED_LOCK_KIND 0x4341

/* The lock that writers of programme_id's events hold until they end. */
static void
feed_lock_tag(LOCKTAG *tag, Datum programme_id)
{
	uint64		h = hash_bytes_extended(DatumGetUUIDP(programme_id)->data, UUID_LEN, 0);

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h,
						 FEED_LOCK_KIND);
}

/*
 * Taken before drawing the seq of an event of programme_id (NULL: none),
 * so that readers who see the programme wait for this transaction.
 */
void
card_event_writer_lock(Datum programme_id)
{
	LOCKTAG		tag;

	if (!card_events_enabled || programme_id == (Datum) 0)
		return;
	feed_lock_tag(&tag, programme_id);
	(void) LockAcquire(&tag, RowExclusiveLock, false, false);
}

/* The transaction, and the subtransaction, whose NOTIFY is queued. */
static LocalTransactionId notified_lxid = InvalidLocalTransactionId;
static SubTransactionId notified_subxid = InvalidSubTransactionId;

/* The event's parameters, as indexes of values[] ($1 is index 0). */
enum InsertEventParam
{
	EVENT_TYPE,
	EVENT_CARD_ID,
	EVENT_ACCOUNT_ID,
	EVENT_PROGRAMME_ID,
	EVENT_DATA,
	EVENT_PARAMS
};

enum InsertEventColumn
{
	INSERTED_SEQ = 1
};

static CardPlan insert_event = {
	NULL,
	"INSERT INTO card.event (type, card_id, account_id, programme_id, data)"
	" VALUES ($1::card.event_type, $2, $3, $4, $5::jsonb) RETURNING seq",
	EVENT_PARAMS, {TEXTOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID}
};

/*
 * After each event written: wake the feed's readers at commit (wakeup.c)
 * and, when card.notify is on, queue NOTIFY card_events with {"seq",
 * "type"} of the transaction's first event (later events of the same
 * transaction add nothing: the consumer reads them all with events_after).
 */
void
card_event_written(int64 seq, const char *type)
{
	StringInfoData payload;

	card_feed_wakeup_at_commit();
	if (!card_notify_enabled || MyProc->lxid == notified_lxid)
		return;
	initStringInfo(&payload);
	appendStringInfo(&payload, "{\"seq\": " INT64_FORMAT ", \"type\": ", seq);
	escape_json(&payload, type);
	appendStringInfoChar(&payload, '}');
	Async_Notify("card_events", payload.data);
	notified_lxid = MyProc->lxid;
	notified_subxid = GetCurrentSubTransactionId();
}

/*
 * PostgreSQL drops the NOTIFY of a subtransaction that rolls back: then the
 * next event of the transaction must queue it again.  A committed
 * subtransaction hands its NOTIFY to its parent.
 */
void
card_event_subxact(SubXactEvent event, SubTransactionId mySubid,
				   SubTransactionId parentSubid, void *arg)
{
	if (mySubid != notified_subxid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		notified_lxid = InvalidLocalTransactionId;
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		notified_subxid = parentSubid;
}

/*
 * Write one event in the current transaction (the caller is connected to
 * SPI); returns its seq, or 0 when card.events is off.  data is a JSON
 * object as text; it must never hold a secret.
 */
static int64
card_event_write(const char *type, Datum card_id, Datum account_id,
				 Datum programme_id, const char *data)
{
	Datum		values[EVENT_PARAMS];
	char		nulls[EVENT_PARAMS] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		seq;

	if (!card_events_enabled)
		return 0;
	values[EVENT_TYPE] = CStringGetTextDatum(type);
	values[EVENT_CARD_ID] = card_id;
	nulls[EVENT_CARD_ID] = card_id ? ' ' : 'n';
	values[EVENT_ACCOUNT_ID] = account_id;
	nulls[EVENT_ACCOUNT_ID] = account_id ? ' ' : 'n';
	values[EVENT_PROGRAMME_ID] = programme_id;
	nulls[EVENT_PROGRAMME_ID] = programme_id ? ' ' : 'n';
	values[EVENT_DATA] = CStringGetTextDatum(data ? data : "{}");
	card_event_writer_lock(programme_id);
	card_exec(&insert_event, values, nulls, false, 1);
	seq = DatumGetInt64(card_spi_datum(0, INSERTED_SEQ, &isnull));
	card_event_written(seq, type);
	return seq;
}

/* Append "key": "value" (value may be NULL) to a JSON object being built. */
void
card_json_text(StringInfo buf, const char *key, const char *value)
{
	appendStringInfoString(buf, buf->len > 1 ? ", " : "");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/*
 * card.event_emit(type card.event_type, card_id uuid, account_id uuid,
 *	 programme_id uuid, data jsonb) RETURNS bigint
 */
PG_FUNCTION_INFO_V1(card_event_emit);
Datum
card_event_emit(PG_FUNCTION_ARGS)
{
	char	   *type;
	char	   *data;
	int64		seq;

	card_require(!PG_ARGISNULL(0), "event type");
	type = DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(0)));
	data = PG_ARGISNULL(4) ? NULL :
		DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(4)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	seq = card_event_write(type,
						   PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1),
						   PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
						   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
						   data);
	SPI_finish();
	if (seq == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(seq);
}

/*
 * card_event_append_only() RETURNS trigger
 *
 * BEFORE UPDATE ON card.event: events are facts; they are never changed.
 */
PG_FUNCTION_INFO_V1(card_event_append_only);
Datum
card_event_append_only(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "card_event_append_only must be called as a trigger");
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("card.event is append-only"),
			 errhint("Old events are removed with card.events_prune().")));
	PG_RETURN_NULL();
}

/* The lock of card.event_seq, which every writer of a seq holds. */
static void
feed_seq_tag(LOCKTAG *tag)
{
	Oid			seq_relid = get_relname_relid("event_seq", get_namespace_oid("card", false));

	if (!OidIsValid(seq_relid))
		elog(ERROR, "card.event_seq is missing");
	SET_LOCKTAG_RELATION(*tag, MyDatabaseId, seq_relid);
}

/*
 * The feed as the caller may be shown it, settled: every event of its
 * programmes with a seq up to horizon is committed or gone.
 */
typedef struct FeedSettled
{
	int64		horizon;
	Datum		sees_all;		/* bool */
	Datum		visible_ids;	/* uuid[]: those waited for, still seen */
} FeedSettled;

/*
 * Settle the feed after cursor for the caller (connected to SPI; seq_tag is
 * the lock of card.event_seq); false, with nothing waited for, if no seq
 * beyond cursor has been drawn and the caller sees every programme.  A
 * caller who does not waits for its writers either way: whether it waited
 * would tell it how far every programme's feed has come.
 */
static bool
feed_settle(int64 cursor, LOCKTAG seq_tag, FeedSettled *settled)
{
	/*
	 * Read the sequence's tuple, not pg_sequence_last_value(): that takes
	 * RowExclusiveLock on the sequence until the transaction ends, which
	 * made a second call in one transaction look like a writer's and made
	 * other readers wait for this one.
	 */
	enum LastSeqColumn
	{
		LAST_SEQ = 1			/* 0 before the first event */
	};
	static CardPlan last_seq = {
		NULL,
		"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM card.event_seq",
		0, {InvalidOid}
	};
	bool		isnull;
	int64		horizon;
	bool		sees_all;
	Datum		visible_ids;

	/* 1. Every seq up to the horizon has been drawn by now. */
	card_exec(&last_seq, NULL, NULL, false, 1);
	horizon = DatumGetInt64(card_spi_datum(0, LAST_SEQ, &isnull));
	SPI_freetuptable(SPI_tuptable);

	/*
	 * 2. Wait for the writers in flight that the caller could be shown (new
	 * writers draw higher seqs).
	 */
	visible_ids = card_visible_programme_array(&sees_all);
	if (horizon <= cursor && sees_all)
		return false;
	if (sees_all)
		WaitForLockers(seq_tag, ShareLock, false);
	else
	{
		ArrayType  *visible = DatumGetArrayTypeP(visible_ids);
		Datum	   *ids;
		int			n;
		List	   *tags = NIL;

		deconstruct_array(visible, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR,
						  &ids, NULL, &n);
		for (int i = 0; i < n; i++)
		{
			LOCKTAG    *programme_tag = palloc(sizeof(LOCKTAG));

			feed_lock_tag(programme_tag, ids[i]);
			tags = lappend(tags, programme_tag);
		}
		if (tags != NIL)
			WaitForLockersMultiple(tags, ShareLock, false);
	}

	/*
	 * 3. Of those, the programmes the caller still sees: a writer just
	 * waited for may have revoked a grant in the transaction that wrote its
	 * events (it sends its invalidations before it releases its locks, so
	 * they are in by now).  One granted meanwhile stays out: its writers
	 * were not waited for.
	 */
	if (sees_all)
		visible_ids = card_visible_programme_array(&sees_all);
	else
		visible_ids = card_visible_programmes_among(visible_ids);
	settled->horizon = horizon;
	settled->sees_all = BoolGetDatum(sees_all);
	settled->visible_ids = visible_ids;
	return true;
}

/*
 * Reads into rsinfo's tuplestore the settled events after cursor that the
 * caller may be shown, at most max; returns how many (the caller is
 * connected to SPI, in a memory context reset after each read; seq_tag is
 * the lock of card.event_seq).
 */
static uint64
read_settled_events(int64 cursor, int32 max, LOCKTAG seq_tag, ReturnSetInfo *rsinfo)
{
	static CardPlan read_events = {
		NULL,
		"SELECT * FROM card.event WHERE seq > $1 AND seq <= $2"
		" AND ($4 OR programme_id = ANY ($5))"
		" ORDER BY seq LIMIT $3",
		5, {INT8OID, INT8OID, INT4OID, BOOLOID, UUIDARRAYOID}
	};
	FeedSettled settled;
	uint64		found;

	if (!feed_settle(cursor, seq_tag, &settled))
		return 0;

	/*
	 * 4. A new snapshot: every event up to the horizon is settled, of the
	 * programmes feed_settle names.
	 */
	{
		Datum		args[5] = {
			Int64GetDatum(cursor), Int64GetDatum(settled.horizon), Int32GetDatum(max),
			settled.sees_all, settled.visible_ids
		};

		card_exec(&read_events, args, NULL, false, 0);
	}
	found = SPI_processed;
	for (uint64 i = 0; i < found; i++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
	SPI_freetuptable(SPI_tuptable);
	return found;
}

/* The longest wait of one call: a waiting call holds its snapshot. */
#define EVENTS_WAIT_MAX_USECS USECS_PER_HOUR

/*
 * card.events_after(cursor bigint, max integer, wait interval)
 *	 RETURNS SETOF card.event
 *
 * With a wait, a call that finds nothing sleeps until an event-writing
 * transaction commits (wakeup.c) and looks again, until the wait ends.
 */
CARD_ENTRY_POINT(card_events_after)
{
	int64		cursor = PG_GETARG_INT64(0);
	int32		max = PG_GETARG_INT32(1);
	/* A 1.4 catalog's events_after(bigint, integer) calls this symbol too. */
	Interval   *wait = PG_NARGS() > 2 ? PG_GETARG_INTERVAL_P(2) : NULL;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext pass_context;
	int64		wait_usecs;
	TimestampTz deadline = 0;
	LOCKTAG		tag;

	if (cursor < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cursor must not be negative")));
	if (max < 1 || max > EVENTS_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max must be between 1 and %d", EVENTS_MAX)));
	wait_usecs = wait == NULL ? 0 : wait->month != 0 || wait->day != 0 ? -1 : wait->time;
	if (wait_usecs < 0 || wait_usecs > EVENTS_WAIT_MAX_USECS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("wait must be between 0 and 1 hour"),
				 errhint("A consumer waits some seconds and calls again; a waiting call holds back VACUUM like any running statement.")));
	card_require_read_committed("card.events_after",
								"It must see events that commit while it waits for them.");
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card.events_after cannot run on a standby"),
				 errdetail("A standby does not know which writers on the primary are in flight."),
				 errhint("Read the feed on the primary.")));
	feed_seq_tag(&tag);
	if (LockHeldByMe(&tag, RowExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card.events_after cannot run in a transaction that has written events"),
				 errdetail("It would hand out events that may still roll back."),
				 errhint("Commit first, or read the feed from another session.")));
	if (wait_usecs > 0)
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_usecs / 1000);

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* What one read allocates goes with it: a long wait reads many times. */
	pass_context = AllocSetContextCreate(CurrentMemoryContext, "events_after read",
										 ALLOCSET_SMALL_SIZES);
	for (;;)
	{
		/* Taken before the read: a commit after it ends the sleep below. */
		uint64		commits = wait_usecs > 0 ? card_feed_commits() : 0;
		MemoryContext outer = MemoryContextSwitchTo(pass_context);
		uint64		found = read_settled_events(cursor, max, tag, rsinfo);

		MemoryContextSwitchTo(outer);
		MemoryContextReset(pass_context);
		if (found > 0 || wait_usecs == 0 || !card_feed_wait(commits, deadline))
			break;
	}
	SPI_finish();
	return (Datum) 0;
}

/*
 * Whether a consumer may stand at cursor without skipping an event: the
 * event of that seq is one the caller may be shown (the usual ack: no
 * wait, unless the event is the caller's own, in flight), or, once the
 * feed is settled as events_after settles it (no writer of the caller's
 * programmes in flight), such an event has a seq of cursor or more.  Only
 * the caller's own events count, so the answer tells nothing of other
 * programmes' feed.
 */
bool
card_feed_cursor_settled(int64 cursor)
{
	static CardPlan event_at = {
		NULL,
		"SELECT xmin FROM card.event WHERE seq = $1"
		" AND card.programme_visible(programme_id)",
		1, {INT8OID}
	};
	static CardPlan event_from = {
		NULL,
		"SELECT EXISTS (SELECT FROM card.event WHERE seq >= $1 AND seq <= $2"
		" AND ($3 OR programme_id = ANY ($4)))",
		4, {INT8OID, INT8OID, BOOLOID, UUIDARRAYOID}
	};
	Datum		cursor_datum = Int64GetDatum(cursor);
	LOCKTAG		tag;
	FeedSettled settled;
	bool		isnull;
	bool		exists = false;

	if (cursor <= 0)
		return true;
	feed_seq_tag(&tag);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * Unless the event at cursor is the caller's own, still in flight, with
	 * other writers' perhaps in flight below it: then the feed is settled
	 * first.  (Every other row the caller reads is committed.)
	 */
	if (card_exec(&event_at, &cursor_datum, NULL, false, 1) == 1)
		exists = !TransactionIdIsCurrentTransactionId(
			DatumGetTransactionId(card_spi_datum(0, 1, &isnull)));
	if (!exists && feed_settle(cursor - 1, tag, &settled))
	{
		Datum		args[4] = {
			Int64GetDatum(cursor), Int64GetDatum(settled.horizon),
			settled.sees_all, settled.visible_ids
		};

		card_exec(&event_from, args, NULL, false, 1);
		exists = DatumGetBool(card_spi_datum(0, 1, &isnull));
	}
	SPI_finish();
	return exists;
}

/* card_internal.cursor_settled(cursor bigint) RETURNS boolean */
PG_FUNCTION_INFO_V1(card_cursor_settled);
Datum
card_cursor_settled(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(card_feed_cursor_settled(PG_GETARG_INT64(0)));
}
