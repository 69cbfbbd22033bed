/*-------------------------------------------------------------------------
 *
 * card_consumer.c
 *	  A consumer of the card live feed: prints each event as one JSON line.
 *
 * It registers a named cursor (card.consumer_register) and drains
 * card.events_after(cursor, batch, wait) in batches: print the batch, then
 * store the new cursor (card.consumer_ack).  When there is nothing to
 * read, events_after itself waits in the server until an event-writing
 * transaction commits, up to the wait (-p ms): no LISTEN, no NOTIFY.  After
 * a batch that was not full it pauses (-g ms) before reading again, so that
 * under a steady stream of commits it reads and acknowledges one batch per
 * pause instead of one per commit: each acknowledgement is a commit of its
 * own, and reading every commit alone costs the writers on the same
 * machine more than the feed itself (docs/benchmarks.md).  The
 * acknowledgements commit with synchronous_commit off: one lost in a
 * server crash only moves the stored cursor back (this process goes on
 * from its own; a new one prints those events again, as after a crash
 * between printing and acknowledging), and an events_prune that relied on
 * it is lost with it, as its commit comes later in the log.  When
 * the connection breaks (a server restart), it reconnects with backoff and
 * resumes from the later of its own cursor and the stored one, so no event
 * is printed twice or skipped.
 *
 * A failed request is classified by its SQLSTATE (see classify_failure):
 * a transient one (a deadlock, a serialization failure, a cancel or
 * statement_timeout, a lock_timeout) is retried on the same connection, a
 * connection-level one (08xxx, an administrator shutdown or termination)
 * after reconnecting; both with capped exponential backoff with jitter,
 * one line on stderr per retry naming the request and the SQLSTATE, never
 * an event or a message text.  Any other failure is the request's fault
 * (a bad name, no privilege, an unknown consumer) and ends the program.
 *
 * Usage: card-consumer [-n name] [-b batch] [-p wait_ms] [-g gather_ms] [-x exit_idle_ms]
 *                      "connection string"
 *
 * Exit status: 0 when stopped (SIGINT, SIGTERM) or idle for -x ms; 1 when
 * a request fails with a permanent error (retrying cannot help), when the
 * server stays unreachable or the requests keep failing for -x ms, or when
 * stdout cannot be written.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

/* Backoff between retries: from BACKOFF_MIN_MS, doubling, up to BACKOFF_MAX_MS. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000

static volatile sig_atomic_t stopping = 0;

/*
 * Cancels the events_after call in progress (a wait) when a signal stops
 * us; only that call: an acknowledgement must finish, or the batch it
 * acknowledges would be printed again by the next run.
 */
static PGcancel *volatile cancel_request = NULL;
static volatile sig_atomic_t waiting = 0;

/* How a failed request is handled. */
typedef enum
{
	FAIL_PERMANENT,				/* the request's fault: give up */
	FAIL_RETRY,					/* transient: retry on the same connection */
	FAIL_RECONNECT				/* the connection is gone or going: reconnect */
} FailureKind;

/* The last failed request: what it was, its SQLSTATE ("" if none), its kind. */
static const char *fail_what = "";
static char fail_state[6] = "";
static FailureKind fail_kind = FAIL_PERMANENT;

static void
on_signal(int signo)
{
	PGcancel   *cancel = cancel_request;
	char		errbuf[1];

	(void) signo;
	stopping = 1;
	/* PQcancel is safe in a signal handler. */
	if (cancel != NULL && waiting)
		(void) PQcancel(cancel, errbuf, sizeof(errbuf));
}

/* Forget the cancel handle before the connection goes. */
static void
finish(PGconn *conn)
{
	PGcancel   *cancel = cancel_request;

	cancel_request = NULL;
	if (cancel != NULL)
		PQfreeCancel(cancel);
	PQfinish(conn);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Classify a failed request by its SQLSTATE.  Transient: deadlock_detected
 * (40P01), serialization_failure (40001), query_canceled (57014: a cancel or
 * statement_timeout), lock_not_available (55P03: lock_timeout).  Connection
 * level: class 08, admin_shutdown (57P01), crash_shutdown (57P02),
 * cannot_connect_now (57P03), idle_session_timeout (57P05), or a connection
 * that libpq reports broken.  Everything else (42501, P0002, 22023, ...,
 * 57P04 database_dropped, or no SQLSTATE on a live connection) is permanent.
 */
static FailureKind
classify_failure(PGconn *conn, const char *state)
{
	if (strncmp(state, "08", 2) == 0 ||
		strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
		strcmp(state, "57P03") == 0 || strcmp(state, "57P05") == 0 ||
		PQstatus(conn) != CONNECTION_OK)
		return FAIL_RECONNECT;
	if (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0 ||
		strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0)
		return FAIL_RETRY;
	return FAIL_PERMANENT;
}

/*
 * A request's result, or NULL on failure, with the failure recorded in
 * fail_what, fail_state and fail_kind.  Only a permanent failure prints
 * the server's message (the program then ends); a retried one is reported
 * by the caller, by SQLSTATE alone.
 */
static PGresult *
check_result(PGconn *conn, const char *what, PGresult *res)
{
	const char *state;

	if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK)
		return res;
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	fail_what = what;
	snprintf(fail_state, sizeof(fail_state), "%s", state ? state : "");
	fail_kind = classify_failure(conn, fail_state);
	if (fail_kind == FAIL_PERMANENT)
		fprintf(stderr, "card-consumer: %s", PQerrorMessage(conn));
	PQclear(res);
	return NULL;
}

/* Run a statement with text parameters (see check_result). */
static PGresult *
exec_params(PGconn *conn, const char *what, const char *sql, int n, const char *const *values)
{
	return check_result(conn, what, PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0));
}

/*
 * The statements of every round, prepared once per connection under their
 * names: parsing and planning them at each round cost the server more than
 * running them.
 */
enum RoundStatement
{
	ROUND_EVENTS_AFTER,
	ROUND_CONSUMER_ACK,
	ROUND_STATEMENTS
};

static const struct
{
	const char *name;
	const char *sql;
	int			n_params;
}			round_statements[ROUND_STATEMENTS] = {
	[ROUND_EVENTS_AFTER] = {"events_after",
	"SELECT seq, to_jsonb(e)::text FROM card.events_after($1::bigint, $2::integer, $3::interval) e", 3},
	[ROUND_CONSUMER_ACK] = {"consumer_ack", "SELECT card.consumer_ack($1, $2::bigint)", 2}
};

/* Run one of round_statements (see check_result). */
static PGresult *
exec_round(PGconn *conn, enum RoundStatement which, const char *const *values)
{
	const char *name = round_statements[which].name;

	return check_result(conn, name,
						PQexecPrepared(conn, name, round_statements[which].n_params, values,
									   NULL, NULL, 0));
}

/* A permanent failure: retrying cannot help, so give up. */
static void
give_up(PGconn *conn)
{
	fprintf(stderr, "card-consumer: %s failed with %s%s: giving up\n", fail_what,
			fail_state[0] ? "SQLSTATE " : "no SQLSTATE", fail_state);
	finish(conn);
	exit(1);
}

/*
 * The next pause before a retry: the current backoff with jitter (between
 * half and all of it, so that consumers failing together spread out), then
 * double the backoff up to BACKOFF_MAX_MS.
 */
static int
next_delay(int *backoff_ms)
{
	int			delay = *backoff_ms / 2 + (int) (random() % (*backoff_ms / 2 + 1));

	*backoff_ms = *backoff_ms < BACKOFF_MAX_MS / 2 ? *backoff_ms * 2 : BACKOFF_MAX_MS;
	return delay;
}

/*
 * Sleep for ms milliseconds, or until a signal (SIGINT, SIGTERM) stops us:
 * in slices, so that a signal that came just before the sleep began ends
 * it within a slice.
 */
#define SLEEP_SLICE_MS 100
static void
sleep_ms(int ms)
{
	while (ms > 0 && !stopping)
	{
		int			slice = ms < SLEEP_SLICE_MS ? ms : SLEEP_SLICE_MS;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long) slice * 1000000};

		(void) nanosleep(&ts, NULL);
		ms -= slice;
	}
}

static int
usage(const char *program)
{
	fprintf(stderr, "usage: %s [-n name] [-b batch] [-p wait_ms] [-g gather_ms] [-x exit_idle_ms] conninfo\n", program);
	return 2;
}

/* An option's value: digits only, from min (>= 0) to max; or false. */
static int
parse_number(const char *text, long long min, long long max, long long *value)
{
	char	   *end;

	/* strtoll would also take leading blanks and a sign. */
	if (!isdigit((unsigned char) text[0]))
		return 0;
	errno = 0;
	*value = strtoll(text, &end, 10);
	return errno == 0 && *end == '\0' && *value >= min && *value <= max;
}

/*
 * Connect and register.  Returns NULL if the server cannot be reached
 * or a request failed transiently (the caller retries), with *problem
 * saying which in one line; exits on a permanent failure.  *acked is the
 * stored cursor: *cursor may be ahead of it (an acknowledgement that
 * failed), and drain_batch stores the difference.
 */
static PGconn *
connect_feed(const char *conninfo, const char *name, long long *cursor,
			 long long *acked, char *problem, size_t problem_size)
{
	PGconn	   *conn = PQconnectdb(conninfo);
	PGresult   *res;
	const char *args[1] = {name};
	long long	stored;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		/* libpq's message, first line only: one line per retry. */
		const char *msg = PQerrorMessage(conn);

		snprintf(problem, problem_size, "cannot connect: %.*s",
				 (int) strcspn(msg, "\n"), msg);
		finish(conn);
		return NULL;
	}
	res = exec_params(conn, "consumer_register", "SELECT card.consumer_register($1)", 1, args);
	if (res == NULL)
		goto failed;
	stored = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (stored > *cursor)
		*cursor = stored;
	*acked = stored;
	res = exec_params(conn, "set", "SET synchronous_commit = off", 0, NULL);
	if (res == NULL)
		goto failed;
	PQclear(res);
	for (int i = 0; i < ROUND_STATEMENTS; i++)
	{
		res = check_result(conn, round_statements[i].name,
						   PQprepare(conn, round_statements[i].name, round_statements[i].sql,
									 round_statements[i].n_params, NULL));
		if (res == NULL)
			goto failed;
		PQclear(res);
	}
	cancel_request = PQgetCancel(conn);
	return conn;

failed:
	if (fail_kind == FAIL_PERMANENT)
		give_up(conn);
	snprintf(problem, problem_size, "%s failed with %s%s", fail_what,
			 fail_state[0] ? "SQLSTATE " : "no SQLSTATE", fail_state);
	finish(conn);
	return NULL;
}

/* Store the cursor if it moved past *acked; false if the request failed. */
static int
acknowledge(PGconn *conn, const char *name, long long cursor, long long *acked)
{
	char		cursor_text[32];
	const char *args[2];
	PGresult   *res;

	if (cursor <= *acked)
		return 1;
	args[0] = name;
	snprintf(cursor_text, sizeof(cursor_text), "%lld", cursor);
	args[1] = cursor_text;
	res = exec_round(conn, ROUND_CONSUMER_ACK, args);
	if (res == NULL)
		return 0;
	PQclear(res);
	*acked = cursor;
	return 1;
}

/*
 * Print one batch after *cursor, then acknowledge everything printed and
 * not yet stored (*acked), also what an earlier failed acknowledgement
 * left.  Returns the number of events, or -1 if a request failed (see
 * fail_kind).
 */
static int
drain_batch(PGconn *conn, const char *name, long long *cursor, long long *acked, int batch,
			int wait_ms)
{
	char		cursor_text[32];
	char		batch_text[16];
	char		wait_text[32];
	const char *args[3];
	PGresult   *res;
	int			rows;

	snprintf(cursor_text, sizeof(cursor_text), "%lld", *cursor);
	snprintf(batch_text, sizeof(batch_text), "%d", batch);
	snprintf(wait_text, sizeof(wait_text), "%d ms", wait_ms);
	args[0] = cursor_text;
	args[1] = batch_text;
	args[2] = wait_text;
	waiting = !stopping;
	res = stopping ? NULL :
		exec_round(conn, ROUND_EVENTS_AFTER, args);
	waiting = 0;
	if (res == NULL)
		return -1;
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++)
	{
		if (puts(PQgetvalue(res, i, 1)) == EOF)
			break;
		*cursor = atoll(PQgetvalue(res, i, 0));
	}
	PQclear(res);
	/* Acknowledge only what reached the output. */
	if (fflush(stdout) == EOF || ferror(stdout))
	{
		fprintf(stderr, "card-consumer: cannot write the events: %s\n", strerror(errno));
		exit(1);
	}
	if (!acknowledge(conn, name, *cursor, acked))
		return -1;
	return rows;
}

int
main(int argc, char **argv)
{
	const char *name = "card-consumer";
	int			batch = 500;
	int			wait_ms = 5000;
	int			gather_ms = 20;
	long long	exit_idle_ms = 0;
	long long	cursor = 0;
	long long	acked = 0;
	long long	last_event = now_ms();
	int			backoff_ms = BACKOFF_MIN_MS;
	int			attempt = 0;
	char		problem[256];
	int			opt;
	PGconn	   *conn = NULL;

	while ((opt = getopt(argc, argv, "n:b:p:g:x:")) != -1)
	{
		long long	value = 0;
		int			ok = 1;

		switch (opt)
		{
			case 'n':
				name = optarg;
				break;
			case 'b':
				if ((ok = parse_number(optarg, 1, 10000, &value)))
					batch = (int) value;
				break;
			case 'p':
				if ((ok = parse_number(optarg, 1, 3600 * 1000, &value)))
					wait_ms = (int) value;
				break;
			case 'g':
				if ((ok = parse_number(optarg, 0, 60 * 1000, &value)))
					gather_ms = (int) value;
				break;
			case 'x':
				if ((ok = parse_number(optarg, 0, LLONG_MAX, &value)))
					exit_idle_ms = value;
				break;
			default:
				ok = 0;
				break;
		}
		if (!ok)
			return usage(argv[0]);
	}
	if (optind != argc - 1)
		return usage(argv[0]);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	srandom((unsigned int) (time(NULL) ^ getpid()));

	while (!stopping)
	{
		int			got;
		long long	before = cursor;
		int			delay;
		int			wait;

		if (conn == NULL)
		{
			conn = connect_feed(argv[optind], name, &cursor, &acked, problem, sizeof(problem));
			if (conn == NULL)
			{
				if (exit_idle_ms > 0 && now_ms() - last_event >= exit_idle_ms)
					return 1;
				/* The server is away (a restart?): try again, a little later each time. */
				delay = next_delay(&backoff_ms);
				fprintf(stderr, "card-consumer: %s, retry %d in %d ms\n", problem, ++attempt, delay);
				sleep_ms(delay);
				continue;
			}
		}
		wait = wait_ms;
		/* Do not wait past the idle exit. */
		if (exit_idle_ms > 0 && exit_idle_ms - (now_ms() - last_event) < wait)
			wait = exit_idle_ms - (now_ms() - last_event) > 0 ?
				(int) (exit_idle_ms - (now_ms() - last_event)) : 1;
		got = drain_batch(conn, name, &cursor, &acked, batch, wait);
		if (cursor > before)
			last_event = now_ms();
		if (stopping)
			break;				/* our own cancel, or a signal meanwhile */
		if (got < 0)
		{
			if (fail_kind == FAIL_PERMANENT)
				give_up(conn);
			/* Out of time and the feed still fails (a lost connection gets one reconnect first). */
			if (fail_kind == FAIL_RETRY && exit_idle_ms > 0 && now_ms() - last_event >= exit_idle_ms)
			{
				finish(conn);
				return 1;
			}
			delay = next_delay(&backoff_ms);
			if (fail_kind == FAIL_RECONNECT)
			{
				/* A broken connection often has no SQLSTATE: libpq drops the server's last words. */
				fprintf(stderr, "card-consumer: connection lost after seq %lld (%s: %s%s), reconnecting, retry %d in %d ms\n",
						cursor, fail_what, fail_state[0] ? "SQLSTATE " : "no SQLSTATE",
						fail_state, ++attempt, delay);
				finish(conn);
				conn = NULL;
			}
			else
				fprintf(stderr, "card-consumer: %s failed with SQLSTATE %s after seq %lld, retry %d in %d ms\n",
						fail_what, fail_state, cursor, ++attempt, delay);
			sleep_ms(delay);
			continue;
		}
		/* The feed answers again: the next failure starts a new backoff. */
		backoff_ms = BACKOFF_MIN_MS;
		attempt = 0;
		if (got == 0 && exit_idle_ms > 0 && now_ms() - last_event >= exit_idle_ms)
			break;
		/* A batch that was not full: let the next one gather (a full one: read on). */
		if (got > 0 && got < batch && gather_ms > 0)
			sleep_ms(gather_ms);
	}
	/*
	 * The cancel of a wait is asynchronous and may land on the
	 * acknowledgement that followed it: store what was printed, once more.
	 */
	if (conn != NULL && cursor > acked)
		(void) acknowledge(conn, name, cursor, &acked);
	if (conn)
		finish(conn);
	return 0;
}
