/*-------------------------------------------------------------------------
 *
 * wakeup.c
 *	  Waking the readers of the live feed without NOTIFY.
 *
 * NOTIFY makes the commits of notifying transactions take one lock in
 * turn, through the commit record's flush: with durable commits every
 * event-writing transaction would wait for the one before it.  Instead,
 * shared memory holds a count of the commits of event-writing transactions
 * and a condition variable.  A transaction that wrote an event adds one
 * and broadcasts once it has committed (its rows are visible by then); a
 * reader in card.events_after(cursor, max, wait) that found nothing sleeps
 * until the count moves or its wait ends.  Broadcasting takes a spinlock
 * for a moment and wakes only sleeping readers: writers never wait for
 * each other here.
 *
 * Counts and condition variables are kept per database, in a small fixed
 * array indexed by the database's OID: databases that share a slot wake
 * each other's readers for nothing but a second look.  COMMIT PREPARED of
 * a transaction that wrote events wakes no one: a waiting reader finds its
 * events when another commit wakes it or its wait ends.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#define FEED_WAKEUP_SLOTS 64

typedef struct FeedWakeupSlot
{
	pg_atomic_uint64 commits;	/* event-writing transactions committed */
	ConditionVariable committed;	/* broadcast after each of them */
} FeedWakeupSlot;

typedef struct FeedWakeup
{
	FeedWakeupSlot slots[FEED_WAKEUP_SLOTS];
} FeedWakeup;

/* The slot of the current database. */
#define MY_SLOT() (&feed_wakeup->slots[MyDatabaseId % FEED_WAKEUP_SLOTS])

/* NULL unless card is in shared_preload_libraries. */
static FeedWakeup *feed_wakeup = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Whether the current transaction has written an event. */
static bool wrote_events = false;

static void
feed_wakeup_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(FeedWakeup)));
}

static void
feed_wakeup_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	feed_wakeup = ShmemInitStruct("card feed wakeup", sizeof(FeedWakeup), &found);
	if (!found)
		for (int i = 0; i < FEED_WAKEUP_SLOTS; i++)
		{
			pg_atomic_init_u64(&feed_wakeup->slots[i].commits, 0);
			ConditionVariableInit(&feed_wakeup->slots[i].committed);
		}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * After the commit of a transaction that wrote events (nothing here may
 * fail: the transaction has committed).
 */
static void
feed_wakeup_xact(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			if (wrote_events && feed_wakeup != NULL)
			{
				FeedWakeupSlot *slot = MY_SLOT();

				pg_atomic_fetch_add_u64(&slot->commits, 1);
				ConditionVariableBroadcast(&slot->committed);
			}
			wrote_events = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			wrote_events = false;
			break;
		default:
			break;
	}
}

/* From _PG_init: the shared memory (when preloaded) and the callback. */
void
card_feed_wakeup_init(void)
{
	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = feed_wakeup_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = feed_wakeup_startup;
	}
	RegisterXactCallback(feed_wakeup_xact, NULL);
}

/* The current transaction wrote an event: wake the readers at its commit. */
void
card_feed_wakeup_at_commit(void)
{
	wrote_events = true;
}

/*
 * The count of commits to compare with after a read that found nothing;
 * take it before the read, so that a commit between the read and the
 * sleep is not missed.
 */
uint64
card_feed_commits(void)
{
	if (feed_wakeup == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("card.events_after can wait only when card is preloaded"),
				 errhint("Add card to shared_preload_libraries and restart, or call it with wait 0 and poll.")));
	return pg_atomic_read_u64(&MY_SLOT()->commits);
}

/*
 * Sleep until an event-writing transaction of this database commits after
 * seen was read, or until deadline; false when the deadline has passed
 * (also when commits keep coming: the caller's reads must end with its
 * wait).  Cancels and statement_timeout interrupt the sleep.
 */
bool
card_feed_wait(uint64 seen, TimestampTz deadline)
{
	FeedWakeupSlot *slot = MY_SLOT();
	bool		woken = false;

	if (GetCurrentTimestamp() >= deadline)
		return false;
	ConditionVariablePrepareToSleep(&slot->committed);
	for (;;)
	{
		long		left_ms;

		if (pg_atomic_read_u64(&slot->commits) != seen)
		{
			woken = true;
			break;
		}
		left_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (left_ms <= 0 ||
			ConditionVariableTimedSleep(&slot->committed, left_ms, PG_WAIT_EXTENSION))
			break;
	}
	ConditionVariableCancelSleep();
	return woken && GetCurrentTimestamp() < deadline;
}
