/*
 * pool.c: a fixed pool of libpq connections, one request at a time each.
 *
 * A call is one transaction of two statements sent as one pipeline: the
 * first switches to the caller's role and sets the statement timeout, both
 * local to the transaction (set_config(..., true)); the second is the call.
 * The Sync that ends the pipeline commits them, or rolls both back if one
 * fails, so no role outlives its request and nothing half-done is kept.
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

static PoolConn *
acquire(Pool *pool)
{
	PoolConn   *pc = NULL;

	pthread_mutex_lock(&pool->lock);
	for (;;)
	{
		for (int i = 0; i < pool->nconns && pc == NULL; i++)
			if (!pool->conns[i].busy)
				pc = &pool->conns[i];
		if (pc != NULL)
			break;
		pthread_cond_wait(&pool->free, &pool->lock);
	}
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

/* The name of sql prepared on pc, preparing it first if need be. */
static const char *
prepared_name(PoolConn *pc, const char *sql, int nparams, char *name, size_t namelen)
{
	for (int i = 0; i < pc->nprepared; i++)
		if (pc->prepared[i] == sql)
		{
			snprintf(name, namelen, "s%d", i);
			return name;
		}
	if (pc->nprepared == MAX_PREPARED)
		return NULL;			/* not kept: sent unnamed */
	snprintf(name, namelen, "s%d", pc->nprepared);
	{
		PGresult   *res = PQprepare(pc->conn, name, sql, nparams, NULL);
		bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

		PQclear(res);
		if (!ok)
			return NULL;
	}
	pc->prepared[pc->nprepared++] = sql;
	return name;
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

/*
 * Run the call's pipeline on pc.  false if the connection itself failed
 * (nothing is known of the call's fate before its Sync came back).
 */
static bool
run_pipeline(PoolConn *pc, const DbCall *call, DbResult *result)
{
	char		timeout[32];
	const char *enter_params[2];
	char		name[16];
	char		enter_name[16];
	const char *stmt;
	const char *enter;
	PGresult   *res;
	int			step = 0;		/* 0: entering the role, 1: the call */
	bool		synced = false;
	bool		answered = false;

	snprintf(timeout, sizeof(timeout), "%ds",
			 call->timeout_s > 0 ? call->timeout_s : server_config.timeout_s);
	enter_params[0] = call->role;
	enter_params[1] = timeout;
	enter = prepared_name(pc, enter_role_sql, 2, enter_name, sizeof(enter_name));
	stmt = prepared_name(pc, call->sql, call->nparams, name, sizeof(name));
	if (PQstatus(pc->conn) != CONNECTION_OK || !PQenterPipelineMode(pc->conn))
		return false;
	if (!(enter ? PQsendQueryPrepared(pc->conn, enter, 2, enter_params, NULL, NULL, 0)
		  : PQsendQueryParams(pc->conn, enter_role_sql, 2, NULL, enter_params, NULL, NULL, 0)) ||
		!(stmt ? PQsendQueryPrepared(pc->conn, stmt, call->nparams, call->params, NULL, NULL, 0)
		  : PQsendQueryParams(pc->conn, call->sql, call->nparams, NULL, call->params,
							  NULL, NULL, 0)) ||
		!PQpipelineSync(pc->conn))
	{
		PQexitPipelineMode(pc->conn);
		return false;
	}
	while (!synced)
	{
		res = PQgetResult(pc->conn);
		if (res == NULL)
		{
			/* The end of one statement's results; the next follows. */
			if (PQstatus(pc->conn) != CONNECTION_OK)
				return false;
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
				if (step == 1)
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
					return false;
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
	return true;
}

/* Run one call; a broken connection is remade once, a serialisation failure retried once. */
void
pool_call(const DbCall *call, DbResult *result)
{
	Pool	   *pool = call->long_poll ? &poll_pool : &call_pool;
	PoolConn   *pc = acquire(pool);
	int			tries = 0;

	memset(result, 0, sizeof(*result));
	for (;;)
	{
		bool		reached;

		db_result_free(result); /* what a try before this one left */
		reached = run_pipeline(pc, call, result);

		tries++;
		if (!reached)
		{
			/* Remade connections have nothing prepared. */
			PQreset(pc->conn);
			session_setup(pc->conn);
			pc->nprepared = 0;
			if (tries < 2 && PQstatus(pc->conn) == CONNECTION_OK)
				continue;
			set_error(result, "08006", "the database is not reachable", NULL);
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
	PoolConn   *pc = acquire(&call_pool);
	PGresult   *res;
	bool		ok;

	if (PQstatus(pc->conn) != CONNECTION_OK)
	{
		PQreset(pc->conn);
		session_setup(pc->conn);
		pc->nprepared = 0;
	}
	res = PQexec(pc->conn, "SELECT 1");
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	release(&call_pool, pc);
	return ok;
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
