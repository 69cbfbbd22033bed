/*-------------------------------------------------------------------------
 *
 * visible.c
 *	  The programmes the caller sees, decided in C and kept per backend.
 *
 * Every entry point asks, for each row it looks up, whether the caller
 * sees its programme (card.programme_visible), and every row-level
 * security policy asks for the whole set (card.visible_programmes).  As
 * SQL functions they were planned again at every execution of the
 * statements that call them.  Here the answer for a caller is worked out
 * once, from card.programme_role and the caller's memberships
 * (card_caller_reaches_role, the rule of tenancy.c), and kept sorted in
 * backend memory until something it depends on changes:
 *
 * - card.programme_role: its triggers (card_programme_role_changed, after
 *	 each row and each TRUNCATE, enabled ALWAYS so that logical replication
 *	 and session_replication_role = replica fire them too) send a relcache
 *	 invalidation, which this backend applies at its next command and every
 *	 other backend when the writer commits;
 * - role memberships and role attributes (superuser, BYPASSRLS, INHERIT,
 *	 a rename): the syscache callbacks of pg_auth_members and pg_authid;
 * - another caller: the set is kept for one role at a time.
 *
 * Superusers and BYPASSRLS roles see every programme, as they see every
 * row of a table with row-level security.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "access/xact.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* The set of one caller, or nothing (valid false). */
typedef struct VisibleSet
{
	bool		valid;
	Oid			caller;
	bool		sees_all;
	int			count;
	pg_uuid_t  *ids;			/* sorted, in TopMemoryContext */
} VisibleSet;

static VisibleSet visible = {false};

/* Bumped by every invalidation: a set read while it moved is stale. */
static uint64 invalidations = 0;
static Oid	programme_role_relid = InvalidOid;	/* as of the last read */
static bool callbacks_registered = false;

static CardPlan programme_grants = {
	NULL,
	"SELECT programme_id, role_name FROM card.programme_role",
	0, {InvalidOid}
};

enum GrantColumn
{
	GRANT_PROGRAMME_ID = 1,
	GRANT_ROLE_NAME
};

static void
forget_relation(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == programme_role_relid)
	{
		visible.valid = false;
		invalidations++;
	}
}

static void
forget_roles(Datum arg, int cacheid, uint32 hashvalue)
{
	visible.valid = false;
	invalidations++;
}

static int
uuid_order(const void *a, const void *b)
{
	return memcmp(a, b, UUID_LEN);
}

/* Work out the set of caller (SPI may be connected already or not). */
static void
visible_build(Oid caller)
{
	pg_uuid_t  *found;
	pg_uuid_t  *ids;
	int			count = 0;
	uint64		invalidations_before;
	bool		sees_all;
	int			rows;

	if (!callbacks_registered)
	{
		CacheRegisterRelcacheCallback(forget_relation, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMMEMROLE, forget_roles, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, forget_roles, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, forget_roles, (Datum) 0);
		callbacks_registered = true;
	}
	/* Looked up at each read: the extension may have been created again. */
	programme_role_relid = get_relname_relid("programme_role",
											 get_namespace_oid("card", false));

	/*
	 * The set counts as valid only if no invalidation arrived while it was
	 * read, and only once it is complete: an error while reading (a cancel,
	 * a timeout) leaves the set invalid, never an older one marked valid.
	 * The grants are read whether or not the caller sees all:
	 * visible_programmes() lists them either way.
	 */
	visible.valid = false;
	invalidations_before = invalidations;
	sees_all = superuser_arg(caller) || has_bypassrls_privilege(caller);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * Under the latest snapshot, not the statement's or the transaction's:
	 * the set outlives them, and an older snapshot (REPEATABLE READ, a
	 * cursor, an imported snapshot) would keep a revoked grant after its
	 * invalidation has been taken in.  A writer's invalidations go out only
	 * once its commit is visible, so a read after one sees the change.  (On
	 * an error, aborting the (sub)transaction pops the snapshot.)
	 */
	PushActiveSnapshot(IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot());
	rows = card_exec(&programme_grants, NULL, NULL, true, 0);
	PopActiveSnapshot();
	found = palloc(sizeof(pg_uuid_t) * Max(rows, 1));	/* freed with SPI's memory */
	for (int i = 0; i < rows; i++)
	{
		bool		isnull;
		Datum		role_name = card_spi_datum(i, GRANT_ROLE_NAME, &isnull);
		Oid			role = get_role_oid(NameStr(*DatumGetName(role_name)), true);

		if (OidIsValid(role) && card_caller_reaches_role(caller, role))
			found[count++] = *DatumGetUUIDP(card_spi_datum(i, GRANT_PROGRAMME_ID, &isnull));
	}
	qsort(found, count, sizeof(pg_uuid_t), uuid_order);
	ids = MemoryContextAlloc(TopMemoryContext, sizeof(pg_uuid_t) * Max(count, 1));
	memcpy(ids, found, sizeof(pg_uuid_t) * count);
	SPI_finish();

	if (visible.ids)
		pfree(visible.ids);
	visible.caller = caller;
	visible.sees_all = sees_all;
	visible.count = count;
	visible.ids = ids;
	/*
	 * In parallel mode (a statement with a parallel plan) no new snapshot
	 * may be taken: the set read under the statement's serves this call
	 * only.
	 */
	visible.valid = (invalidations == invalidations_before) && !IsInParallelMode();
}

/* The caller's set, worked out again if stale or another role's. */
static const VisibleSet *
visible_set(void)
{
	Oid			caller = card_caller_role();

	/*
	 * Take in other backends' invalidations now: a transaction that holds
	 * its locks already, or a statement that runs a kept plan, would
	 * otherwise take none in until it ends, and keep a revoked grant.
	 * Cheap when there are none.
	 */
	AcceptInvalidationMessages();
	if (!visible.valid || visible.caller != caller)
		visible_build(caller);
	return &visible;
}

/* Whether the caller sees no programme at all (nor every one). */
bool
card_caller_sees_no_programme(void)
{
	const VisibleSet *set = visible_set();

	return !set->sees_all && set->count == 0;
}

/* Whether the caller sees a programme. */
bool
card_programme_visible(const pg_uuid_t *programme_id)
{
	const VisibleSet *set = visible_set();

	return set->sees_all ||
		bsearch(programme_id, set->ids, set->count, sizeof(pg_uuid_t), uuid_order) != NULL;
}

/*
 * The programmes the caller sees, as a uuid[] in the current memory
 * context, and whether it sees every one (then the array has no bearing).
 */
Datum
card_visible_programme_array(bool *sees_all)
{
	const VisibleSet *set = visible_set();
	Datum	   *ids = palloc(sizeof(Datum) * Max(set->count, 1));

	for (int i = 0; i < set->count; i++)
		ids[i] = UUIDPGetDatum(&set->ids[i]);
	*sees_all = set->sees_all;
	return PointerGetDatum(construct_array(ids, set->count, UUIDOID, UUID_LEN, false,
										   TYPALIGN_CHAR));
}

/*
 * Of the programmes of a uuid[], those the caller sees, as a uuid[] in the
 * current memory context.
 */
Datum
card_visible_programmes_among(Datum programme_ids)
{
	const VisibleSet *set = visible_set();
	Datum	   *ids;
	int			count;
	int			kept = 0;

	deconstruct_array(DatumGetArrayTypeP(programme_ids), UUIDOID, UUID_LEN, false,
					  TYPALIGN_CHAR, &ids, NULL, &count);
	for (int i = 0; i < count; i++)
		if (set->sees_all ||
			bsearch(DatumGetUUIDP(ids[i]), set->ids, set->count, sizeof(pg_uuid_t),
					uuid_order) != NULL)
			ids[kept++] = ids[i];
	return PointerGetDatum(construct_array(ids, kept, UUIDOID, UUID_LEN, false,
										   TYPALIGN_CHAR));
}

/*
 * card.programme_visible(programme_id uuid) RETURNS boolean
 *
 * The programme check of every function that looks one row up.
 */
PG_FUNCTION_INFO_V1(card_programme_visible_sql);
Datum
card_programme_visible_sql(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(visible_set()->sees_all);
	PG_RETURN_BOOL(card_programme_visible(PG_GETARG_UUID_P(0)));
}

/*
 * card.visible_programmes() RETURNS SETOF uuid
 *
 * The programmes of the caller's grants, for the row-level security
 * policies ("programme_id IN (SELECT ...)": one call per query, hashed).
 * For superusers, every programme granted to any role (as before 1.4).
 */
PG_FUNCTION_INFO_V1(card_visible_programmes);
Datum
card_visible_programmes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const VisibleSet *set = visible_set();

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	for (int i = 0; i < set->count; i++)
	{
		Datum		value = UUIDPGetDatum(&set->ids[i]);
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	return (Datum) 0;
}

/*
 * card.programme_role_changed() RETURNS trigger, after each row written to
 * card.programme_role and after a TRUNCATE: every backend forgets its set
 * (this one at its next command, the others when the writer commits).
 */
PG_FUNCTION_INFO_V1(card_programme_role_changed);
Datum
card_programme_role_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "card_programme_role_changed: not called as a trigger");
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
