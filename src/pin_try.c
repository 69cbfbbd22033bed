/*-------------------------------------------------------------------------
 *
 * pin_try.c
 *	  A PIN try counted in a transaction of its own, committed before the
 *	  PIN is compared (DESIGN.md section 11).
 *
 * Where a verdict is answered in the caller's own transaction (a reissue's
 * activation, card_activation_complete), a try counted in that transaction
 * could be rolled back after the verdict was seen: a savepoint around the
 * call, or one statement that raises an error on a wrong answer, would buy
 * unlimited guesses.  So the try is counted by a background worker in its
 * own transaction, committed synchronously, before the caller compares
 * anything; whatever the caller does afterwards, the try stays counted.
 * The worker also reports the block when the try that reaches the limit is
 * a wrong one; for that it gets the keyed hash of the PIN tried (never the
 * PIN), as stored PINs are kept.
 *
 * The worker is a dynamic background worker: one per try, which costs a
 * process start (a few milliseconds) on a path a cardholder takes once.
 * It runs as the extension's owner in the caller's database.  If the
 * chain's first card is locked (by another transaction, or the caller's
 * own), it gives up at once (NOWAIT) and the caller fails without a
 * verdict: waiting would let anyone who holds a card's lock keep worker
 * slots busy, every tenant's activations short of them.  The block is
 * judged against the PIN of the card being activated (the one compared),
 * not the first card's, which a lost card's replacement no longer shares.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

/* What the caller and the worker share. */
typedef struct PinTryShared
{
	Oid			database;
	Oid			role;
	pg_uuid_t	chain_id;
	pg_uuid_t	card_id;
	pg_uuid_t	account_id;
	pg_uuid_t	programme_id;
	uint8		given_hash[CARD_MAC_LEN];	/* of the PIN tried, to report a block */
	int			tries;			/* after this try; -1 when already blocked */
	bool		committed;		/* set by the worker after its commit */
} PinTryShared;

PGDLLEXPORT void card_pin_try_worker(Datum main_arg);

/*
 * Count one try of a chain's PIN and commit it; returns the count after it,
 * or -1 if the PIN was blocked already (nothing counted).  given_hash is
 * card_pin_hash() of the PIN tried.  The caller must not hold a lock on the
 * chain's first card.
 */
int
card_pin_try_count(Datum chain_id, Datum card_id, Datum account_id,
				   Datum programme_id, const bytea *given_hash)
{
	dsm_segment *segment;
	PinTryShared *shared;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	int			tries;

	segment = dsm_create(sizeof(PinTryShared), 0);
	shared = dsm_segment_address(segment);
	memset(shared, 0, sizeof(PinTryShared));
	shared->database = MyDatabaseId;
	shared->role = GetUserId();
	shared->chain_id = *DatumGetUUIDP(chain_id);
	shared->card_id = *DatumGetUUIDP(card_id);
	shared->account_id = *DatumGetUUIDP(account_id);
	shared->programme_id = *DatumGetUUIDP(programme_id);
	memcpy(shared->given_hash, VARDATA_ANY(given_hash), CARD_MAC_LEN);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "card");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "card_pin_try_worker");
	snprintf(worker.bgw_name, BGW_MAXLEN, "card PIN try counter for PID %d", MyProcPid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "card PIN try counter");
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(segment));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not count the PIN try: no background worker slot is free"),
				 errdetail("A PIN is compared only after its try is committed by a background worker."),
				 errhint("Raise max_worker_processes, or try again.")));
	status = WaitForBackgroundWorkerShutdown(handle);
	explicit_bzero(shared->given_hash, CARD_MAC_LEN);
	if (status != BGWH_STOPPED || !shared->committed)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not count the PIN try"),
				 errdetail("The PIN was not compared."),
				 errhint("The card may be locked by another transaction, or by this one; try again in a new transaction.")));
	tries = shared->tries;
	dsm_detach(segment);
	return tries;
}

/* The worker: one guarded UPDATE (and the block's event), committed. */
void
card_pin_try_worker(Datum main_arg)
{
	/* The parameters, as indexes of values[] ($1 is index 0). */
	enum CountParam
	{
		COUNT_CHAIN_ID,			/* the chain's first card keeps the count */
		COUNT_LIMIT,
		COUNT_CARD_ID,
		COUNT_ACCOUNT_ID,
		COUNT_PROGRAMME_ID,
		COUNT_GIVEN_HASH,
		COUNT_PARAMS
	};
	enum CountColumn
	{
		COUNT_TRIES = 1,
		COUNT_BLOCKED_SEQ		/* the block's event, on the try that reaches it */
	};

	/* Counts only below the limit; the try that reaches it reports the block. */
	static const char *count_sql =
	"WITH first AS ("
	"  SELECT id FROM card.card WHERE id = $1 FOR NO KEY UPDATE NOWAIT),"
	" counted AS ("
	"  UPDATE card.card SET pin_tries = pin_tries + 1"
	"   WHERE id = (SELECT id FROM first) AND pin_tries < $2"
	"  RETURNING pin_tries)"
	" SELECT pin_tries,"
	"  CASE WHEN pin_tries = $2"
	"   AND (SELECT pin_hash FROM card.card WHERE id = $3) IS DISTINCT FROM $6"
	"   THEN card.event_emit('card.pin_blocked', $3, $4, $5,"
	"    pg_catalog.jsonb_build_object('tries', pin_tries)) END"
	" FROM counted";
	Oid			argtypes[COUNT_PARAMS] = {UUIDOID, INT2OID, UUIDOID, UUIDOID, UUIDOID, BYTEAOID};
	Datum		values[COUNT_PARAMS];
	bytea	   *given;
	dsm_segment *segment;
	PinTryShared *shared;
	int			tries = -1;

	BackgroundWorkerUnblockSignals();
	segment = dsm_attach(DatumGetUInt32(main_arg));
	if (segment == NULL)
		proc_exit(1);			/* the caller gave up: nothing counted */
	shared = dsm_segment_address(segment);
	BackgroundWorkerInitializeConnectionByOid(shared->database, shared->role, 0);

	/* A durable count, whatever the server's default. */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "1s", PGC_SUSET, PGC_S_OVERRIDE);
	/* A look-up by key, as the extension's statements (plans.c). */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("application_name", "card PIN try counter", PGC_SUSET, PGC_S_OVERRIDE);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "counting a PIN try");
	values[COUNT_CHAIN_ID] = UUIDPGetDatum(&shared->chain_id);
	values[COUNT_LIMIT] = Int16GetDatum(CARD_PIN_TRIES);
	values[COUNT_CARD_ID] = UUIDPGetDatum(&shared->card_id);
	values[COUNT_ACCOUNT_ID] = UUIDPGetDatum(&shared->account_id);
	values[COUNT_PROGRAMME_ID] = UUIDPGetDatum(&shared->programme_id);
	given = palloc(VARHDRSZ + CARD_MAC_LEN);
	SET_VARSIZE(given, VARHDRSZ + CARD_MAC_LEN);
	memcpy(VARDATA(given), shared->given_hash, CARD_MAC_LEN);
	values[COUNT_GIVEN_HASH] = PointerGetDatum(given);
	if (SPI_execute_with_args(count_sql, COUNT_PARAMS, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "counting a PIN try failed");
	if (SPI_processed == 1)
	{
		bool		isnull;

		tries = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, COUNT_TRIES, &isnull));
	}
	explicit_bzero(VARDATA(given), CARD_MAC_LEN);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	shared->tries = tries;
	shared->committed = true;
	dsm_detach(segment);
	proc_exit(0);
}
