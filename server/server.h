/*
 * card-server: the HTTP API and hosted pages of DESIGN.md section 13.
 *
 * A thin layer: each request is one transaction of one extension call, run
 * as the database role its bearer token maps to.  No business rule lives
 * here; the database decides, and its SQLSTATE becomes the HTTP status.
 */
#ifndef CARD_SERVER_H
#define CARD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <microhttpd.h>
#include <libpq-fe.h>

/* Settings from the command line. */
typedef struct ServerConfig
{
	const char *listen_host;	/* numeric address to bind */
	int			listen_port;	/* 0: any free port (printed at start) */
	const char *conninfo;
	const char *tokens_file;
	const char *pages_role;
	const char *tls_cert;		/* both or neither */
	const char *tls_key;
	const char *port_file;		/* where the bound port is written, if set */
	int			pool_size;		/* database connections for calls */
	int			poll_pool_size; /* and for long polls of the feed */
	size_t		max_body;		/* bytes of a request body */
	int			timeout_s;		/* idle connection and statement timeout */
	int			max_wait_s;		/* longest long-poll of /v3/events */
} ServerConfig;

extern ServerConfig server_config;

/* tokens.c: bearer tokens, stored as SHA-256 hex, each mapped to a role. */
extern int	tokens_load(const char *path, char *err, size_t errlen);
extern const char *tokens_role(const char *bearer);
extern int	tokens_count(void);
extern const char *tokens_role_at(int i);

/* pool.c: a fixed pool of libpq connections. */
typedef struct DbCall
{
	const char *sql;			/* one statement, $1..$n */
	int			nparams;
	const char *const *params;	/* text values; NULL is SQL NULL */
	const char *role;			/* run as this role (set_config, local) */
	int			timeout_s;		/* statement_timeout; 0: the server's */
	bool		long_poll;		/* a wait for the feed: the long polls' pool */
} DbCall;

typedef struct DbResult
{
	bool		ok;
	char		sqlstate[6];	/* on error */
	char	   *message;		/* on error: the primary message (malloc) */
	char	   *hint;			/* on error, may be NULL (malloc) */
	int			ntuples;
	int			nfields;
	char	  **values;			/* ntuples * nfields, NULL for SQL NULL (malloc) */
} DbResult;

extern int	pool_init(const char *conninfo, int size, int poll_size, char *err, size_t errlen);
extern void pool_call(const DbCall *call, DbResult *result);
extern const char *db_value(const DbResult *result, int row, int col);
extern void db_result_free(DbResult *result);
extern bool pool_healthy(void);
extern int	pool_check_role(const char *role, char *err, size_t errlen);
extern void pool_close(void);

/* http.c: responses and small helpers shared by the API and the pages. */
typedef struct Request
{
	struct MHD_Connection *connection;
	const char *method;
	const char *url;
	char	   *body;			/* NUL-terminated (malloc) */
	size_t		body_len;
	bool		too_large;
} Request;

extern enum MHD_Result respond(struct MHD_Connection *connection, unsigned int status,
							   const char *content_type, const char *body,
							   const char *location);
extern enum MHD_Result respond_with(struct MHD_Connection *connection, unsigned int status,
								   const char *content_type, const char *body,
								   const char *name, const char *value);
extern enum MHD_Result respond_json_error(struct MHD_Connection *connection,
										  unsigned int status, const char *code,
										  const char *message);
extern enum MHD_Result respond_json_error_allow(struct MHD_Connection *connection,
												unsigned int status, const char *code,
												const char *message, const char *allow);
extern unsigned int status_of_sqlstate(const char *sqlstate);
extern const char *code_of_status(unsigned int status, const char *sqlstate);
extern char *json_escape(const char *s);
extern char *html_escape(const char *s);
extern char *form_value(const char *body, const char *name);
extern void note_response_status(unsigned int status);
extern char *str_printf(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* api.c and pages.c: the two faces of the server. */
extern enum MHD_Result api_handle(Request *req);
extern enum MHD_Result pages_handle(Request *req);
extern bool pages_path(const char *url);

#endif							/* CARD_SERVER_H */
