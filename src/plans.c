/*-------------------------------------------------------------------------
 *
 * plans.c
 *	  SPI plans prepared once per backend and kept for its lifetime.
 *
 * Each entry point describes its statements as static CardPlan values; the
 * first call prepares and keeps them (SPI_keepplan), later calls only
 * execute.  The plan cache revalidates kept plans after DDL, so a dropped
 * and re-created extension keeps working in the same session.
 *
 * Nothing executed while one of them or an entry point (tenancy.c) runs is
 * JIT-compiled: the statements of PL/pgSQL bodies, of the triggers and
 * foreign-key checks they fire and of the plans kept here.  Each reads or
 * writes a few rows by key, or a bounded batch, and compiling it would cost
 * ten to a hundred times the statement at every execution (compiled code
 * is not kept with a plan).  The planner's cost estimate alone would
 * decide, and it grows with the tables: the columns tenants write have no
 * statistics (1.7), so an equality on one of them is estimated at 0.5 % of
 * the table, and with one programme card_authorize's plan passed
 * jit_above_cost at some 800,000 authorisations (70 calls a second instead
 * of 1,700).  It is decided when an execution starts, not when a plan is
 * made: PL/pgSQL and the foreign-key checks keep their plans for the
 * session, made wherever the statement first ran.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "executor/executor.h"
#include "jit/jit.h"

/* How many of our kept plans are running in this backend (nested ones too). */
static int	running_statements = 0;

static ExecutorStart_hook_type prev_executor_start = NULL;

static void
executor_start(QueryDesc *queryDesc, int eflags)
{
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * ExecutorStart, with JIT off for the execution (see above): the plan's
 * flags are cleared while the executor starts, where it reads them, and put
 * back after, as the plan also serves executions outside the extension.
 */
static void
card_executor_start(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;
	int			jit_flags = stmt->jitFlags;

	if (jit_flags == PGJIT_NONE || (running_statements == 0 && !card_entry_running()))
	{
		executor_start(queryDesc, eflags);
		return;
	}
	stmt->jitFlags = PGJIT_NONE;
	PG_TRY();
	{
		executor_start(queryDesc, eflags);
	}
	PG_FINALLY();
	{
		stmt->jitFlags = jit_flags;
	}
	PG_END_TRY();
}

/* From _PG_init. */
void
card_plans_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = card_executor_start;
}

/*
 * Error context while preparing: a library newer than the installed
 * extension's catalog fails here, on a name the old catalog lacks.
 */
static void
card_plan_context(void *arg)
{
	errcontext("preparing a statement of the card extension");
	errhint("If the card library was just upgraded, run ALTER EXTENSION card UPDATE.");
}

/* The kept plan for cp, prepared on first use. */
SPIPlanPtr
card_plan(CardPlan *cp)
{
	if (cp->plan == NULL)
	{
		ErrorContextCallback context = {
			.callback = card_plan_context, .previous = error_context_stack
		};

		/*
		 * Generic plans: every statement here looks rows up by key, so a
		 * plan made for one set of values serves all, and replanning per
		 * call (the plan cache's default for the first calls, and for good
		 * when it guesses custom plans are cheaper) would cost more than
		 * the statement.
		 */
		SPIPlanPtr	plan;

		error_context_stack = &context;
		plan = SPI_prepare_cursor(cp->sql, cp->nargs, cp->argtypes,
								  CURSOR_OPT_GENERIC_PLAN);
		error_context_stack = context.previous;
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 cp->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		cp->plan = plan;
	}
	return cp->plan;
}

/* Execute a kept plan; returns SPI_processed. */
int
card_exec(CardPlan *cp, Datum *values, const char *nulls, bool read_only,
		  long count)
{
	SPIPlanPtr	plan = card_plan(cp);
	volatile int rc = 0;

	/* Started (its own statement, and what it runs) with JIT off. */
	running_statements++;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, nulls, read_only, count);
	}
	PG_FINALLY();
	{
		running_statements--;
	}
	PG_END_TRY();
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed for \"%s\": %s",
			 cp->sql, SPI_result_code_string(rc));
	return (int) SPI_processed;
}

/* Column col (1-based) of result row as a C string, or NULL. */
char *
card_spi_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* Column col (1-based) of result row as a Datum. */
Datum
card_spi_datum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/*
 * After a statement that wrote a card (CARD_WRITTEN_RESULT): the event it
 * wrote, if any, wakes the feed's readers at commit.
 */
void
card_written_card_event(const char *event_type)
{
	bool		isnull;
	Datum		seq = card_spi_datum(0, SPI_fnumber(SPI_tuptable->tupdesc, "event_seq"),
									 &isnull);

	if (!isnull)
		card_event_written(DatumGetInt64(seq), event_type);
}

/*
 * Finish the SPI session with row 0 of the last statement's result as the
 * function's card.cards result: the statement returns the view's columns
 * by name (CARD_WRITTEN_RESULT) for a card it wrote.
 */
Datum
card_return_written_card(FunctionCallInfo fcinfo)
{
	TupleDesc	tupdesc;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	tuple;
	Datum		result;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "function returning card.cards called in a context that cannot accept it");
	if (SPI_processed != 1)
		elog(ERROR, "the card written is missing from its statement's result");
	values = palloc(tupdesc->natts * sizeof(Datum));
	nulls = palloc(tupdesc->natts * sizeof(bool));
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		int			col;

		if (att->attisdropped)
		{
			nulls[i] = true;
			continue;
		}
		col = SPI_fnumber(SPI_tuptable->tupdesc, NameStr(att->attname));
		if (col <= 0 || SPI_gettypeid(SPI_tuptable->tupdesc, col) != att->atttypid)
			elog(ERROR, "column \"%s\" of card.cards is missing from the statement's result",
				 NameStr(att->attname));
		values[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &nulls[i]);
	}
	tuple = heap_form_tuple(tupdesc, values, nulls);
	/* Copied out of SPI's memory before it goes. */
	result = PointerGetDatum(SPI_returntuple(tuple, tupdesc));
	SPI_finish();
	return result;
}

/*
 * Finish the SPI session with the card.cards row of card_id as the
 * function's composite result (the caller must be connected to SPI).
 */
Datum
card_return_card(FunctionCallInfo fcinfo, Datum card_id)
{
	static CardPlan view = {
		NULL, "SELECT * FROM card.cards WHERE id = $1", 1, {UUIDOID}
	};
	TupleDesc	tupdesc;
	Datum		result;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "function returning card.cards called in a context that cannot accept it");
	if (card_exec(&view, &card_id, NULL, false, 1) != 1)
		elog(ERROR, "card vanished while it was being returned");
	result = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], tupdesc));
	SPI_finish();
	return result;
}
