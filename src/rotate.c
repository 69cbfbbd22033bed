/*-------------------------------------------------------------------------
 *
 * rotate.c
 *	  Key rotation: re-encrypt stored PANs under the newest key version.
 *
 * card.rotate_keys() (a procedure) calls card.rotate_keys_batch() and
 * commits after each batch, so no row stays locked longer than one batch
 * and an interrupted rotation keeps what it committed; calling it again
 * picks up the PANs still under older keys.  A batch finds its rows through
 * the index on pan_key_version (so no batch rereads rows already rotated)
 * and waits for an authorisation that holds one, rather than skip it and
 * leave the rotation unfinished.  card.pan_key_versions() shows from any
 * session how many PANs each key version still holds.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/builtins.h"

#define BATCH_MAX 100000

/* locktag_field4 of the lock a rotation's first batch holds (see event.c's). */
#define ROTATION_LOCK_KIND 0x4342

/*
 * Wait until the transactions of this database that are running now have
 * ended.  One of them may have sealed a PAN under an older key before the
 * key file changed and commit it after the run has passed its id, leaving
 * it behind; each PAN sealed later goes under the newest key.  Like CREATE
 * INDEX CONCURRENTLY, a run waits for a transaction left open.
 */
static void
rotate_wait_for_running(void)
{
	int			n;
	VirtualTransactionId *running;
	LOCKTAG		tag;

	/*
	 * One run starts at a time: two starting together would each wait for
	 * the other.  Held to the end of the first batch; a run started later
	 * waits only for the batch another run has open.
	 */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, ROTATION_LOCK_KIND);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("another key rotation is starting in this database"),
				 errhint("Call card.rotate_keys() again once it has started; it resumes where the other left off.")));
	running = GetCurrentVirtualXIDs(InvalidTransactionId, false, false,
									PROC_IS_AUTOVACUUM | PROC_IN_VACUUM, &n);
	for (int i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		(void) VirtualXactLock(running[i], true);
	}
	pfree(running);
}

/*
 * card.rotate_keys_batch(batch_size integer, after uuid DEFAULT NULL,
 *	 OUT rotated integer, OUT key_version integer, OUT done boolean,
 *	 OUT last_id uuid)
 *
 * Pages by card id: each batch starts after the last id of the one
 * before, so no batch rescans rows (or their dead versions) already
 * rotated.  A card that gets an older key after the run passed its id
 * cannot exist: new cards take the newest key.
 */
PG_FUNCTION_INFO_V1(card_rotate_keys_batch);
Datum
card_rotate_keys_batch(PG_FUNCTION_ARGS)
{
	enum OlderColumn
	{
		OLDER_CARD_ID = 1,
		OLDER_PAN_CIPHERTEXT,
		OLDER_PAN_KEY_VERSION
	};
	static CardPlan older = {
		NULL,
		"SELECT id, pan_ciphertext, pan_key_version FROM card.card"
		" WHERE pan_key_version < $1 AND ($3::uuid IS NULL OR id > $3)"
		" ORDER BY id LIMIT $2 FOR NO KEY UPDATE",
		3, {INT2OID, INT4OID, UUIDOID}
	};
	static CardPlan reseal = {
		NULL,
		"UPDATE card.card SET pan_ciphertext = $2, pan_key_version = $3 WHERE id = $1",
		3, {UUIDOID, BYTEAOID, INT2OID}
	};
	int32		batch_size;
	int			newest;
	Datum		newest_datum;
	int			found;
	SPITupleTable *rows;
	TupleDesc	tupdesc;
	bool		isnull;
	Datum		result[4];
	bool		nulls[4] = {false, false, false, true};
	Datum		row;

	card_require(!PG_ARGISNULL(0), "batch_size");
	batch_size = PG_GETARG_INT32(0);
	if (batch_size < 1 || batch_size > BATCH_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and %d", BATCH_MAX)));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	/*
	 * A run's first batch waits for the PANs in flight to be committed; its
	 * query must see them: a snapshot taken when the transaction began
	 * (REPEATABLE READ, SERIALIZABLE) would not, and the run would end with
	 * their PANs under the old key.  Every batch takes READ COMMITTED's
	 * fresh snapshot.
	 */
	card_require_read_committed("card.rotate_keys",
								"Its first batch must see the PANs in flight that it waits for.");
	if (PG_ARGISNULL(1))
		rotate_wait_for_running();
	newest = card_enc_key_newest();
	newest_datum = Int16GetDatum((int16) newest);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	{
		Datum		args[3] = {newest_datum, Int32GetDatum(batch_size),
		PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1)};

		found = card_exec(&older, args, PG_ARGISNULL(1) ? "  n" : NULL, false, 0);
	}
	rows = SPI_tuptable;
	for (int i = 0; i < found; i++)
	{
		Datum		card_id = SPI_getbinval(rows->vals[i], rows->tupdesc,
											OLDER_CARD_ID, &isnull);
		bytea	   *sealed = DatumGetByteaPP(SPI_getbinval(rows->vals[i], rows->tupdesc,
														   OLDER_PAN_CIPHERTEXT, &isnull));
		int			version = DatumGetInt16(SPI_getbinval(rows->vals[i], rows->tupdesc,
														  OLDER_PAN_KEY_VERSION, &isnull));
		pg_uuid_t  *uuid = DatumGetUUIDP(card_id);
		Datum		values[3] = {
			card_id, PointerGetDatum(card_pan_reseal(version, uuid, sealed, newest, uuid)),
			newest_datum
		};

		card_exec(&reseal, values, NULL, false, 0);
	}

	result[0] = Int32GetDatum(found);
	result[1] = Int32GetDatum(newest);
	result[2] = BoolGetDatum(found < batch_size);	/* none older left */
	if (found > 0)
	{
		result[3] = SPI_getbinval(rows->vals[found - 1], rows->tupdesc,
								  OLDER_CARD_ID, &isnull);
		nulls[3] = false;
	}
	tupdesc = BlessTupleDesc(tupdesc);
	row = HeapTupleGetDatum(heap_form_tuple(tupdesc, result, nulls));
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	PG_RETURN_DATUM(row);
}
