/*-------------------------------------------------------------------------
 *
 * card_consumer.c
 *	  A consumer of the card live feed: prints each event as one JSON line.
 *
 * It registers a named cursor (card.consumer_register), LISTENs on
 * card_events, and drains card.events_after(cursor) in batches: print the
 * batch, then store the new cursor (card.consumer_ack).  Between batches
 * it sleeps until a notification arrives or a poll interval passes.  When
 * the connection breaks (a server restart), it reconnects with backoff and
 * resumes from the later of its own cursor and the stored one, so no event
 * is printed twice or skipped.
 *
 * Usage: card-consumer [-n name] [-b batch] [-p poll_ms] [-x exit_idle_ms]
 *                      "connection string"
 *
 * Exit status: 0 when stopped (SIGINT, SIGTERM) or idle for -x ms; 1 when
 * a request fails on a live connection (retrying cannot help), when the
 * server stays unreachable for -x ms, or when stdout cannot be written.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

static volatile sig_atomic_t stopping = 0;

static void
on_signal(int signo)
{
	(void) signo;
	stopping = 1;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run a statement with text parameters; NULL (and a message) on failure. */
static PGresult *
exec_params(PGconn *conn, const char *sql, int n, const char *const *values)
{
	PGresult   *res = PQexecParams(conn, sql, n, NULL, values, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "card-consumer: %s", PQerrorMessage(conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * An error on a live connection is the request's fault (a bad name, no
 * privilege, a bad batch size): retrying cannot help, so give up.
 */
static void
give_up_if_permanent(PGconn *conn)
{
	if (PQstatus(conn) == CONNECTION_OK)
	{
		fprintf(stderr, "card-consumer: giving up\n");
		PQfinish(conn);
		exit(1);
	}
}

/* Connect, register, listen; returns NULL if the server cannot be reached. */
static PGconn *
connect_feed(const char *conninfo, const char *name, long long *cursor)
{
	PGconn	   *conn = PQconnectdb(conninfo);
	PGresult   *res;
	const char *args[1] = {name};
	long long	stored;

	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "card-consumer: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	res = exec_params(conn, "SELECT card.consumer_register($1)", 1, args);
	if (res == NULL)
	{
		give_up_if_permanent(conn);
		PQfinish(conn);
		return NULL;
	}
	stored = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (stored > *cursor)
		*cursor = stored;
	res = exec_params(conn, "LISTEN card_events", 0, NULL);
	if (res == NULL)
	{
		give_up_if_permanent(conn);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

/*
 * Print and acknowledge one batch after *cursor.  Returns the number of
 * events, or -1 if the connection failed.
 */
static int
drain_batch(PGconn *conn, const char *name, long long *cursor, int batch)
{
	char		cursor_text[32];
	char		batch_text[16];
	const char *args[2];
	PGresult   *res;
	int			rows;

	snprintf(cursor_text, sizeof(cursor_text), "%lld", *cursor);
	snprintf(batch_text, sizeof(batch_text), "%d", batch);
	args[0] = cursor_text;
	args[1] = batch_text;
	res = exec_params(conn,
					  "SELECT seq, to_jsonb(e)::text FROM card.events_after($1::bigint, $2::integer) e",
					  2, args);
	if (res == NULL)
	{
		give_up_if_permanent(conn);
		return -1;
	}
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
	if (rows > 0)
	{
		args[0] = name;
		snprintf(cursor_text, sizeof(cursor_text), "%lld", *cursor);
		args[1] = cursor_text;
		res = exec_params(conn, "SELECT card.consumer_ack($1, $2::bigint)", 2, args);
		if (res == NULL)
		{
			give_up_if_permanent(conn);
			return -1;
		}
		PQclear(res);
	}
	return rows;
}

/* Wait for a notification or the poll interval; false if the link broke. */
static int
wait_for_events(PGconn *conn, int poll_ms)
{
	int			sock = PQsocket(conn);
	fd_set		input;
	struct timeval timeout;
	PGnotify   *notify;

	if (sock < 0)
		return 0;
	/* A notification that arrived during the last query is already here. */
	if (!PQconsumeInput(conn))
		return 0;
	if ((notify = PQnotifies(conn)) != NULL)
	{
		do
			PQfreemem(notify);
		while ((notify = PQnotifies(conn)) != NULL);
		return 1;
	}
	FD_ZERO(&input);
	FD_SET(sock, &input);
	timeout.tv_sec = poll_ms / 1000;
	timeout.tv_usec = (poll_ms % 1000) * 1000;
	if (select(sock + 1, &input, NULL, NULL, &timeout) < 0 && errno != EINTR)
		return 0;
	if (!PQconsumeInput(conn))
		return 0;
	while ((notify = PQnotifies(conn)) != NULL)
		PQfreemem(notify);
	return PQstatus(conn) == CONNECTION_OK;
}

int
main(int argc, char **argv)
{
	const char *name = "card-consumer";
	int			batch = 500;
	int			poll_ms = 1000;
	long long	exit_idle_ms = 0;
	long long	cursor = 0;
	long long	last_event = now_ms();
	int			backoff_ms = 100;
	int			opt;
	PGconn	   *conn = NULL;

	while ((opt = getopt(argc, argv, "n:b:p:x:")) != -1)
	{
		switch (opt)
		{
			case 'n':
				name = optarg;
				break;
			case 'b':
				batch = atoi(optarg);
				break;
			case 'p':
				poll_ms = atoi(optarg);
				break;
			case 'x':
				exit_idle_ms = atoll(optarg);
				break;
			default:
				fprintf(stderr, "usage: %s [-n name] [-b batch] [-p poll_ms] [-x exit_idle_ms] conninfo\n", argv[0]);
				return 2;
		}
	}
	if (optind != argc - 1 || batch < 1 || batch > 10000 || poll_ms < 1)
	{
		fprintf(stderr, "usage: %s [-n name] [-b batch] [-p poll_ms] [-x exit_idle_ms] conninfo\n", argv[0]);
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	while (!stopping)
	{
		int			got;

		if (conn == NULL)
		{
			conn = connect_feed(argv[optind], name, &cursor);
			if (conn == NULL)
			{
				if (exit_idle_ms > 0 && now_ms() - last_event >= exit_idle_ms)
					return 1;
				/* The server is away (a restart?): try again, a little later each time. */
				usleep((useconds_t) backoff_ms * 1000);
				backoff_ms = backoff_ms < 5000 ? backoff_ms * 2 : 5000;
				continue;
			}
			backoff_ms = 100;
		}
		got = drain_batch(conn, name, &cursor, batch);
		if (got < 0 || PQstatus(conn) != CONNECTION_OK)
		{
			fprintf(stderr, "card-consumer: connection lost after seq %lld, reconnecting\n", cursor);
			PQfinish(conn);
			conn = NULL;
			usleep((useconds_t) backoff_ms * 1000);
			continue;
		}
		if (got > 0)
		{
			last_event = now_ms();
			continue;			/* more may be waiting */
		}
		if (exit_idle_ms > 0 && now_ms() - last_event >= exit_idle_ms)
			break;
		if (!wait_for_events(conn, poll_ms))
		{
			fprintf(stderr, "card-consumer: connection lost after seq %lld, reconnecting\n", cursor);
			PQfinish(conn);
			conn = NULL;
		}
	}
	if (conn)
		PQfinish(conn);
	return 0;
}
