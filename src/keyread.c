/*-------------------------------------------------------------------------
 *
 * keyread.c
 *	  Rows read by a unique key without the executor.
 *
 * A statement, however small, starts a plan tree at each execution: for
 * card_order's look-up of the account (a row lock over a join of two
 * index scans and a subplan) the start-up was most of the statement and
 * the statement an eighth of an order (docs/benchmarks.md).  A read here
 * goes to a unique index of the table directly, as PostgreSQL reads its
 * catalogs: one index probe under a snapshot taken as an SPI statement
 * takes it (after CommandCounterIncrement, the transaction's snapshot in
 * REPEATABLE READ and SERIALIZABLE, a fresh one in READ COMMITTED), with
 * SERIALIZABLE's predicate locks taken by the index and heap access
 * methods as for any scan.
 *
 * A row lock is taken as the executor's LockRows takes SELECT ... FOR
 * SHARE's (or FOR NO KEY UPDATE's): in READ COMMITTED a row updated since the snapshot is waited
 * for and the newest version locked and returned, for the caller to judge
 * again (as EvalPlanQual would); in REPEATABLE READ and SERIALIZABLE that
 * is a serialization failure (40001).  A row deleted meanwhile is not
 * found.
 *
 * The reads see every row, as the extension's own statements do (run as
 * its owner, whom row-level security does not filter): each caller checks
 * card_programme_visible() on what it reads.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "storage/lmgr.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* The tables resolved in this backend (a list), forgotten when one changes. */
static CardKeyedTable *resolved = NULL;
static bool callback_registered = false;

/*
 * A change to a resolved table or its index (DROP EXTENSION, an ALTER of
 * the owner's) sends a relcache invalidation: resolve again by name at the
 * next read.
 */
static void
forget_keyed_tables(Datum arg, Oid relid)
{
	for (CardKeyedTable *t = resolved; t != NULL; t = t->next_resolved)
		if (!OidIsValid(relid) || relid == t->relid || relid == t->indexid)
			t->relid = InvalidOid;
}

static Oid
card_relation(const char *name)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid("card", false));

	if (!OidIsValid(relid))
		elog(ERROR, "relation card.%s does not exist", name);
	return relid;
}

/* The table's and its index's oids and its columns' numbers, by name. */
static void
resolve(CardKeyedTable *t)
{
	Oid			relid;
	Relation	index;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(forget_keyed_tables, (Datum) 0);
		callback_registered = true;
	}
	/* Valid only once resolved whole: an error half-way leaves it unresolved. */
	t->relid = InvalidOid;
	t->indexid = card_relation(t->index);
	relid = card_relation(t->table);
	index = index_open(t->indexid, AccessShareLock);
	if (index->rd_index->indrelid != relid || t->nkeys > CARD_KEY_COLUMNS_MAX ||
		index->rd_index->indnkeyatts != t->nkeys || !index->rd_index->indisunique)
		elog(ERROR, "index card.%s is not a unique key of %d columns of card.%s",
			 t->index, t->nkeys, t->table);
	/* Each key column's equality, as the index's operator family has it. */
	for (int k = 0; k < t->nkeys; k++)
	{
		Oid			type = index->rd_opcintype[k];
		Oid			equality = get_opfamily_member(index->rd_opfamily[k], type, type,
												   BTEqualStrategyNumber);

		if (!OidIsValid(equality))
			elog(ERROR, "index card.%s has no equality for its column %d", t->index, k + 1);
		t->key_equality[k] = get_opcode(equality);
		t->key_collation[k] = index->rd_indcollation[k];
		t->key_attnums[k] = index->rd_index->indkey.values[k];
		if (t->key_attnums[k] == 0)
			elog(ERROR, "index card.%s has an expression", t->index);
	}
	if (!heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL))
		elog(ERROR, "index card.%s is partial", t->index);
	index_close(index, AccessShareLock);
	for (int c = 0; t->columns[c] != NULL; c++)
	{
		t->attnums[c] = get_attnum(relid, t->columns[c]);
		if (t->attnums[c] == InvalidAttrNumber)
			elog(ERROR, "column %s of card.%s does not exist", t->columns[c], t->table);
	}
	if (!t->listed)
	{
		t->next_resolved = resolved;
		resolved = t;
		t->listed = true;
	}
	t->relid = relid;
}

/*
 * Start a read of t: the table opened with the lock a SELECT (or, when
 * rows will be locked, a SELECT ... FOR SHARE) takes, and the snapshot of
 * a new statement, or the one of another read still open (the reads of
 * one statement).  End it with card_key_read_end().
 */
void
card_key_read_begin(CardKeyedTable *t, CardKeyRead *read, bool locking,
					const CardKeyRead *same_snapshot_as)
{
	if (!OidIsValid(t->relid))
		resolve(t);
	read->table = t;
	read->lockmode = locking ? RowShareLock : AccessShareLock;
	read->rel = table_open(t->relid, read->lockmode);
	read->index = index_open(t->indexid, AccessShareLock);
	read->slot = table_slot_create(read->rel, NULL);
	if (same_snapshot_as)
		read->snapshot = RegisterSnapshot(same_snapshot_as->snapshot);
	else
	{
		CommandCounterIncrement();
		read->snapshot = RegisterSnapshot(GetTransactionSnapshot());
	}
}

void
card_key_read_end(CardKeyRead *read)
{
	UnregisterSnapshot(read->snapshot);
	ExecDropSingleTupleTableSlot(read->slot);
	/* The locks are kept to the end of the transaction, as a statement's. */
	index_close(read->index, NoLock);
	table_close(read->rel, NoLock);
}

/* Find the row whose key is keys[] in read->slot; false if none. */
bool
card_key_read(CardKeyRead *read, const Datum *keys)
{
	CardKeyedTable *t = read->table;
	ScanKeyData skey[INDEX_MAX_KEYS];
	IndexScanDesc scan;
	bool		found;

	for (int k = 0; k < t->nkeys; k++)
		ScanKeyEntryInitialize(&skey[k], 0, k + 1, BTEqualStrategyNumber, InvalidOid,
							   t->key_collation[k], t->key_equality[k], keys[k]);
	scan = index_beginscan(read->rel, read->index, read->snapshot, t->nkeys, 0);
	index_rescan(scan, skey, t->nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, read->slot);
	index_endscan(scan);
	return found;
}

/*
 * Lock the row in read->slot in mode, as LockRows does: true with the
 * row as locked in the slot (in READ COMMITTED a newer version if one was
 * committed meanwhile: the caller judges it again), false if it was
 * deleted or its key changed meanwhile.
 */
bool
card_key_lock(CardKeyRead *read, const Datum *keys, LockTupleMode mode)
{
	CardKeyedTable *t = read->table;
	bool		xact_snapshot = IsolationUsesXactSnapshot();
	ItemPointerData tid = read->slot->tts_tid;
	TM_FailureData tmfd;
	TM_Result	result;

	result = table_tuple_lock(read->rel, &tid, read->snapshot, read->slot,
							  GetCurrentCommandId(false), mode, LockWaitBlock,
							  xact_snapshot ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
							  &tmfd);
	switch (result)
	{
		case TM_Ok:
			if (!tmfd.traversed)
				return true;
			/* A newer version: still the row of the key? */
			for (int k = 0; k < t->nkeys; k++)
			{
				bool		isnull;
				Datum		value = slot_getattr(read->slot, t->key_attnums[k], &isnull);

				if (isnull ||
					!DatumGetBool(OidFunctionCall2Coll(t->key_equality[k], t->key_collation[k],
													   value, keys[k])))
					return false;
			}
			return true;
		case TM_SelfModified:
			/* Changed by this command: LockRows skips such a row. */
			return false;
		case TM_Updated:
		case TM_Deleted:
			if (xact_snapshot)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent %s",
								result == TM_Updated ? "update" : "delete")));
			if (result == TM_Deleted)
				return false;
			elog(ERROR, "unexpected table_tuple_lock status: %u", result);
			break;
		default:
			elog(ERROR, "unexpected table_tuple_lock status: %u", result);
			break;
	}
	pg_unreachable();
}

/*
 * Column c (an index into the table's columns[]) of the row in read->slot,
 * copied into the current memory context.
 */
Datum
card_key_column(CardKeyRead *read, int c, bool *isnull)
{
	AttrNumber	attnum = read->table->attnums[c];
	Form_pg_attribute att = TupleDescAttr(read->slot->tts_tupleDescriptor, attnum - 1);
	Datum		value = slot_getattr(read->slot, attnum, isnull);

	return *isnull ? (Datum) 0 : datumCopy(value, att->attbyval, att->attlen);
}
