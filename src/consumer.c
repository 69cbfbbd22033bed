/*-------------------------------------------------------------------------
 *
 * consumer.c
 *	  card.consumer_ack(): how far a registered consumer of the caller's
 *	  has read the live feed.
 *
 * A consumer acknowledges after every batch it reads, so this runs as
 * often as the feed is read.  Until 1.10 it was PL/pgSQL that named the
 * consumer's role through card.consumer_role(), an SQL function planned
 * again at each of its two calls: the acknowledgement cost its backend
 * more than the read.  Here the role is worked out once, in C, by the
 * same rule: the caller's own consumer of that name, or else the one
 * registered under card_reader (where consumers of 1.0 went)
 * if the caller has card_reader's privileges.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#define SHARED_CONSUMER_ROLE "card_reader"

/*
 * card.consumer_ack(name text, cursor bigint) RETURNS bigint
 *
 * Stores how far the consumer has read; a cursor never moves back, and
 * moves forward only to where a consumer may stand without skipping an
 * event (card_feed_cursor_settled).  Returns the stored cursor.
 */
CARD_ENTRY_POINT(card_consumer_ack)
{
	enum ConsumerColumn
	{
		CONSUMER_ROLE = 1,
		CONSUMER_CURSOR
	};
	/* The caller's own consumer first, then the shared one. */
	static CardPlan find_consumer = {
		NULL,
		"SELECT role_name, cursor FROM card.event_consumer"
		" WHERE name = $1 AND role_name IN ($2, '" SHARED_CONSUMER_ROLE "')"
		" ORDER BY role_name = $2 DESC",
		2, {TEXTOID, NAMEOID}
	};
	static CardPlan move_cursor = {
		NULL,
		"UPDATE card.event_consumer SET cursor = greatest(cursor, $3), acked_at = now()"
		" WHERE role_name = $1 AND name = $2 RETURNING cursor",
		3, {NAMEOID, TEXTOID, INT8OID}
	};
	Oid			caller = card_caller_role();
	Datum		caller_name;
	Datum		name;
	int64		cursor;
	bool		registered = false;
	Datum		role = (Datum) 0;
	int64		stored = 0;
	bool		isnull;
	int			found;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("%s is required", PG_ARGISNULL(0) ? "name" : "cursor")));
	name = PG_GETARG_DATUM(0);
	cursor = PG_GETARG_INT64(1);
	caller_name = DirectFunctionCall1(namein,
									  CStringGetDatum(GetUserNameFromId(caller, false)));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * Not read-only: under a fresh snapshot, as each statement of the
	 * PL/pgSQL version was, so that a consumer registered earlier in the
	 * calling statement counts.
	 */
	{
		Datum		args[2] = {name, caller_name};

		found = card_exec(&find_consumer, args, NULL, false, 0);
	}
	if (found > 0)
	{
		Datum		first_role = card_spi_datum(0, CONSUMER_ROLE, &isnull);
		Oid			shared_role = get_role_oid(SHARED_CONSUMER_ROLE, true);

		if (namestrcmp(DatumGetName(first_role), NameStr(*DatumGetName(caller_name))) == 0 ||
			(OidIsValid(shared_role) && card_caller_reaches_role(caller, shared_role)))
		{
			registered = true;
			role = first_role;
			stored = DatumGetInt64(card_spi_datum(0, CONSUMER_CURSOR, &isnull));
		}
	}

	/* Only a move forward can skip an event (backwards changes nothing). */
	if (registered && cursor > stored && !card_feed_cursor_settled(cursor))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cursor " INT64_FORMAT " is beyond the last event", cursor),
				 errhint("Acknowledge the seq of an event read from card.events_after(); a larger one would skip the events written after it.")));
	if (registered)
	{
		Datum		args[3] = {role, name, Int64GetDatum(cursor)};

		if (card_exec(&move_cursor, args, NULL, false, 1) == 1)
			stored = DatumGetInt64(card_spi_datum(0, 1, &isnull));
		else
			registered = false; /* unregistered meanwhile */
	}
	SPI_finish();
	if (!registered)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("consumer \"%s\" is not registered", text_to_cstring(DatumGetTextPP(name))),
				 errhint("Register it with card.consumer_register().")));
	PG_RETURN_INT64(stored);
}
