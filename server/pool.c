/*
 * pool.c: a fixed pool of libpq connections, one request at a time each.
 *
 * A call is one transaction sent as one pipeline: a statement switches to
 * the caller's role and sets the statement timeout, both local to the
 * transaction (set_config(..., true)); the call follows (prepared first,
 * the first time the connection runs it).  The Sync that ends the pipeline
 * commits them, or rolls all back if one fails, so no role outlives its
 * request and nothing half-done is kept.
 * One pool for every role (rather than a pool per role): connections are
 * few and each serves whoever comes next; long polls of the feed have a
 * pool of their own.  The server's login role must be
 * a member of every role in the tokens file and of the pages role.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "server.h"

#define MAX_PREPARED 32

typedef struct PoolConn
{
	PGconn	   *conn;
	bool		busy;
	const char *prepared[MAX_PREPARED];	/* statements prepared on it, by text */
	int			nprepared;
} PoolConn;

/*
 * Two pools: calls, and long polls of the feed.  A long poll holds its
 * connection for up to --max-wait seconds; in a pool of their own, any
 * number of them cannot keep a call from a connection.
 */
typedef struct Pool
{
	PoolConn   *conns;
	int			nconns;
	pthread_mutex_t lock;
	pthread_cond_t free;
} Pool;

static Pool call_pool = {NULL, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
static Pool poll_pool = {NULL, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
static const char *pool_conninfo;

static const char *const enter_role_sql =
"SELECT pg_catalog.set_config('role', $1, true),"
" pg_catalog.set_config('statement_timeout', $2, true)";

/*
 * A session's settings: names resolve in pg_catalog first and never in a
 * schema of the login role's (the prepared calls cast to jsonb and uuid).
 */
static void
session_setup(PGconn *conn)
{
	PGresult   *res;

	if (PQstatus(conn) != CONNECTION_OK)
		return;
	res = PQexec(conn, "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)");
	PQclear(res);
	/* Only pg_catalog's functions: preparable as the login role. */
	res = PQprepare(conn, "enter", enter_role_sql, 2, NULL);
	PQclear(res);
}

static PGconn *
connect_one(void)
{
	const char *keys[] = {"dbname", "application_name", NULL};
	const char *values[] = {pool_conninfo, "card-server", NULL};
	/* expand_dbname: conninfo may be a string or URI naming everything. */
	PGconn	   *conn = PQconnectdbParams(keys, values, 1);

	session_setup(conn);
	return conn;
}

static int
pool_open(Pool *pool, int size, char *err, size_t errlen)
{
	pool->conns = calloc(size, sizeof(PoolConn));
	if (pool->conns == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pool->nconns = size;
	for (int i = 0; i < size; i++)
	{
		pool->conns[i].conn = connect_one();
		if (PQstatus(pool->conns[i].conn) != CONNECTION_OK)
		{
			snprintf(err, errlen, "cannot connect to the database: %s",
					 PQerrorMessage(pool->conns[i].conn));
			return -1;
		}
	}
	return 0;
}

/* size connections for calls and poll_size for long polls of the feed. */
int
pool_init(const char *conninfo, int size, int poll_size, char *err, size_t errlen)
{
	pool_conninfo = conninfo;
	if (pool_open(&call_pool, size, err, errlen) != 0)
		return -1;
	return pool_open(&poll_pool, poll_size, err, errlen);
}

/* A free connection of pool, waiting up to wait_s seconds; NULL if none. */
static PoolConn *
acquire(Pool *pool, int wait_s)
{
	PoolConn   *pc = NULL;
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += wait_s;
	pthread_mutex_lock(&pool->lock);
	for (;;)
	{
		for (int i = 0; i < pool->nconns && pc == NULL; i++)
			if (!pool->conns[i].busy)
				pc = &pool->conns[i];
		if (pc != NULL || wait_s == 0 ||
			pthread_cond_timedwait(&pool->free, &pool->lock, &deadline) != 0)
			break;
	}
	if (pc)
		pc->busy = true;
	pthread_mutex_unlock(&pool->lock);
	return pc;
}

static void
release(Pool *pool, PoolConn *pc)
{
	pthread_mutex_lock(&pool->lock);
	pc->busy = false;
	pthread_cond_signal(&pool->free);
	pthread_mutex_unlock(&pool->lock);
}

/* The name sql is prepared under on pc, or NULL if it is not (yet). */
static const char *
prepared_name(PoolConn *pc, const char *sql, char *name, size_t namelen)
{
	for (int i = 0; i < pc->nprepared; i++)
		if (pc->prepared[i] == sql)
		{
			snprintf(name, namelen, "s%d", i);
			return name;
		}
	return NULL;
}
static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void
set_error(DbResult *result, const char *sqlstate, const char *message, const char *hint)
{
	result->ok = false;
	snprintf(result->sqlstate, sizeof(result->sqlstate), "%s", sqlstate ? sqlstate : "XX000");
	free(result->message);
	free(result->hint);
	result->message = dup_or_null(message);
	result->hint = dup_or_null(hint);
}

static void
take_error(DbResult *result, const PGresult *res)
{
	const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	set_error(result, PQresultErrorField(res, PG_DIAG_SQLSTATE),
			  message ? message : "the database refused the call",
			  PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
}

static void
take_rows(DbResult *result, const PGresult *res)
{
	int			n = PQntuples(res) * PQnfields(res);

	result->ok = true;
	result->ntuples = PQntuples(res);
	result->nfields = PQnfields(res);
	result->values = calloc(n > 0 ? n : 1, sizeof(char *));
	for (int r = 0; r < result->ntuples; r++)
		for (int c = 0; c < result->nfields; c++)
			if (!PQgetisnull(res, r, c))
				result->values[r * result->nfields + c] = strdup(PQgetvalue(res, r, c));
}

typedef enum PipelineOutcome
{
	PIPELINE_ANSWERED,			/* result holds the answer or the error */
	PIPELINE_NOT_SENT,			/* the connection failed before the Sync left */
	PIPELINE_LOST				/* it failed after: the call may have committed */
} PipelineOutcome;

/*
 * Run the call's pipeline on pc: enter the role, prepare the call the first
 * time this connection runs it (as that role: the login role itself may
 * not see schema card), execute it, Sync.
 */
static PipelineOutcome
run_pipeline(PoolConn *pc, const DbCall *call, DbResult *result)
{
	char		timeout[32];
	const char *enter_params[2];
	char		name[16];
	const char *stmt;
	bool		preparing = false;
	PGresult   *res;
	int			step = 0;		/* 0: the role, 1: the prepare (if any), then the call */
	int			call_step;
	bool		synced = false;
	bool		answered = false;

	snprintf(timeout, sizeof(timeout), "%ds",
			 call->timeout_s > 0 ? call->timeout_s : server_config.timeout_s);
	enter_params[0] = call->role;
	enter_params[1] = timeout;
	stmt = prepared_name(pc, call->sql, name, sizeof(name));
	if (stmt == NULL && pc->nprepared < MAX_PREPARED)
	{
		snprintf(name, sizeof(name), "s%d", pc->nprepared);
		stmt = name;
		preparing = true;
	}
	call_step = preparing ? 2 : 1;
	if (!PQenterPipelineMode(pc->conn))
		return PIPELINE_NOT_SENT;
	if (!PQsendQueryPrepared(pc->conn, "enter", 2, enter_params, NULL, NULL, 0) ||
		(preparing && !PQsendPrepare(pc->conn, stmt, call->sql, call->nparams, NULL)) ||
		!(stmt ? PQsendQueryPrepared(pc->conn, stmt, call->nparams, call->params, NULL, NULL, 0)
		  : PQsendQueryParams(pc->conn, call->sql, call->nparams, NULL, call->params,
							  NULL, NULL, 0)) ||
		!PQpipelineSync(pc->conn))
	{
		/* Without its Sync the server rolls back whatever it received. */
		PQexitPipelineMode(pc->conn);
		return PIPELINE_NOT_SENT;
	}
	while (!synced)
	{
		res = PQgetResult(pc->conn);
		if (res == NULL)
		{
			/* The end of one statement's results; the next follows. */
			if (PQstatus(pc->conn) != CONNECTION_OK)
				return PIPELINE_LOST;
			step++;
			continue;
		}
		switch (PQresultStatus(res))
		{
			case PGRES_PIPELINE_SYNC:
				synced = true;
				break;
			case PGRES_TUPLES_OK:
			case PGRES_COMMAND_OK:
				if (preparing && step == 1)
					pc->prepared[pc->nprepared++] = call->sql;
				else if (step == call_step)
				{
					take_rows(result, res);
					answered = true;
				}
				break;
			case PGRES_PIPELINE_ABORTED:
				break;			/* after the error reported for an earlier step */
			default:
				if (PQstatus(pc->conn) != CONNECTION_OK)
				{
					PQclear(res);
					return PIPELINE_LOST;
				}
				if (step == 0)
				{
					/* The server is not set up to act as this role. */
					syslog(LOG_ERR, "cannot act as role %s: %s", call->role,
						   PQresultErrorMessage(res));
					set_error(result, "XX000", "the server cannot act as its client's role", NULL);
				}
				else
					take_error(result, res);
				answered = true;
				break;
		}
		PQclear(res);
	}
	if (!answered)
		set_error(result, "XX000", "no answer from the database", NULL);
	PQexitPipelineMode(pc->conn);
	return PIPELINE_ANSWERED;
}

/* A new session for pc: it has nothing prepared. */
static void
remake(PoolConn *pc)
{
	PQreset(pc->conn);
	session_setup(pc->conn);
	pc->nprepared = 0;
}

/* Remake pc's connection if the server closed it while it was idle. */
static void
revive(PoolConn *pc)
{
	if (PQstatus(pc->conn) == CONNECTION_OK && PQconsumeInput(pc->conn) &&
		PQstatus(pc->conn) == CONNECTION_OK)
		return;
	remake(pc);
}

/*
 * Run one call.  A connection that fails before its Sync left is remade
 * and the call sent once more; one that fails after it leaves the call's
 * fate unknown (08007), never retried.  A serialisation failure or
 * deadlock (the transaction rolled back) is retried once.
 */
void
pool_call(const DbCall *call, DbResult *result)
{
	Pool	   *pool = call->long_poll ? &poll_pool : &call_pool;
	/* A long poll takes a free connection or none: the caller reads without waiting. */
	PoolConn   *pc = acquire(pool, call->long_poll ? 0 : server_config.timeout_s);
	int			tries = 0;

	memset(result, 0, sizeof(*result));
	if (pc == NULL)
	{
		set_error(result, "53300", "every database connection of the server is busy", NULL);
		return;
	}
	for (;;)
	{
		PipelineOutcome outcome;

		db_result_free(result); /* what a try before this one left */
		revive(pc);
		outcome = run_pipeline(pc, call, result);
		tries++;
		if (outcome == PIPELINE_NOT_SENT)
		{
			remake(pc);
			if (tries < 2 && PQstatus(pc->conn) == CONNECTION_OK)
				continue;
			set_error(result, "08006", "the database is not reachable", NULL);
			break;
		}
		if (outcome == PIPELINE_LOST)
		{
			remake(pc);
			set_error(result, "08007", "the connection to the database was lost during the call", NULL);
			break;
		}
		if (!result->ok && tries < 2 &&
			(strcmp(result->sqlstate, "40001") == 0 || strcmp(result->sqlstate, "40P01") == 0))
			continue;
		break;
	}
	release(pool, pc);
}

const char *
db_value(const DbResult *result, int row, int col)
{
	if (!result->ok || row >= result->ntuples || col >= result->nfields)
		return NULL;
	return result->values[row * result->nfields + col];
}

void
db_result_free(DbResult *result)
{
	if (result->values)
	{
		for (int i = 0; i < result->ntuples * result->nfields; i++)
			free(result->values[i]);
		free(result->values);
	}
	free(result->message);
	free(result->hint);
	memset(result, 0, sizeof(*result));
}

/* Whether a connection of the pool answers now (for /healthz). */
bool
pool_healthy(void)
{
	PoolConn   *pc = acquire(&call_pool, server_config.timeout_s);
	bool		ok = false;

	if (pc == NULL)
		return false;

	for (int tries = 0; tries < 2 && !ok; tries++)
	{
		PGresult   *res;

		revive(pc);
		res = PQexec(pc->conn, "SELECT 1");
		ok = PQresultStatus(res) == PGRES_TUPLES_OK;
		PQclear(res);
		if (!ok)
			remake(pc);
	}
	release(&call_pool, pc);
	return ok;
}

/*
 * 0 if the login role can act as role, else -1 with err set: checked at
 * start, so that a mistyped role fails the start, not every request.
 */
int
pool_check_role(const char *role, char *err, size_t errlen)
{
	const char *params[1] = {role};
	PGresult   *res;
	const char *verdict;
	int			rc = 0;

	res = PQexecParams(call_pool.conns[0].conn,
					   "SELECT CASE WHEN pg_catalog.to_regrole(pg_catalog.quote_ident($1)) IS NULL"
					   " THEN 'does not exist'"
					   " WHEN NOT pg_catalog.pg_has_role($1, 'MEMBER')"
					   " THEN 'is not a role the server''s login role is a member of' END",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		snprintf(err, errlen, "cannot check role %s: %s", role, PQresultErrorMessage(res));
		rc = -1;
	}
	else if (!PQgetisnull(res, 0, 0))
	{
		verdict = PQgetvalue(res, 0, 0);
		snprintf(err, errlen, "role %s %s", role, verdict);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

static void
pool_shut(Pool *pool)
{
	for (int i = 0; i < pool->nconns; i++)
		PQfinish(pool->conns[i].conn);
	free(pool->conns);
	pool->conns = NULL;
	pool->nconns = 0;
}

void
pool_close(void)
{
	pool_shut(&call_pool);
	pool_shut(&poll_pool);
}
