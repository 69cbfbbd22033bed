/*
 * api.c: the JSON API of DESIGN section 13.
 *
 * Each route is one statement calling one function of the extension with
 * the path's id and the body as they arrived; the function checks the
 * body's fields and answers the response body.  The server checks only
 * what is HTTP's: the bearer token, that a body is a JSON object, sizes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "server.h"

#define JSON_MAX_DEPTH 64

typedef enum BodyUse
{
	BODY_NONE,					/* GET: no body is read */
	BODY_OBJECT					/* a JSON object, "{}" when empty */
} BodyUse;

typedef struct Route
{
	const char *method;
	const char *pattern;		/* ":id" matches one path segment */
	const char *sql;			/* $1 the id (if any), then the body */
	BodyUse		body;
	unsigned int success;		/* the status of an answer */
	bool		idempotency_key;	/* Idempotency-Key joins the body */
} Route;

static const Route routes[] = {
	{"POST", "/v3/individuals", "SELECT card.individual_create($1::jsonb)", BODY_OBJECT, 201, false},
	{"POST", "/v3/accounts", "SELECT card.account_open($1::jsonb)", BODY_OBJECT, 201, false},
	{"GET", "/v3/accounts/:id", "SELECT card.account_get($1::uuid)", BODY_NONE, 200, false},
	{"GET", "/v3/accounts/:id/controls", "SELECT card.account_controls($1::uuid)", BODY_NONE, 200, false},
	{"PUT", "/v3/accounts/:id/controls", "SELECT card.account_set_controls($1::uuid, $2::jsonb)", BODY_OBJECT, 200, false},
	{"POST", "/v3/accounts/:id/credits", "SELECT card.account_credit($1::uuid, $2::jsonb)", BODY_OBJECT, 200, false},
	{"POST", "/v3/cards",
		"SELECT card.card_order(CASE WHEN $2::text IS NULL THEN $1::jsonb"
		" ELSE $1::jsonb || pg_catalog.jsonb_build_object('idempotency_key', $2::text) END)",
	BODY_OBJECT, 201, true},
	{"GET", "/v3/cards/:id", "SELECT card.card_get($1::uuid)", BODY_NONE, 200, false},
	{"PATCH", "/v3/cards/:id", "SELECT card.card_update($1::uuid, $2::jsonb)", BODY_OBJECT, 200, false},
	{"GET", "/v3/cards/:id/controls", "SELECT card.card_controls($1::uuid)", BODY_NONE, 200, false},
	{"PUT", "/v3/cards/:id/controls", "SELECT card.card_set_controls($1::uuid, $2::jsonb)", BODY_OBJECT, 200, false},
	{"POST", "/v3/cards/:id/replace", "SELECT card.card_replace($1::uuid, $2::jsonb)", BODY_OBJECT, 201, false},
	{"POST", "/v3/cards/:id/reveal", "SELECT card.card_reveal_start($1::uuid, $2::jsonb)", BODY_OBJECT, 200, false},
	{"POST", "/v3/authorizations", "SELECT card.card_authorize($1::jsonb)", BODY_OBJECT, 200, false},
	{"POST", "/v3/authorizations/:id/capture", "SELECT card.authorization_capture_request($1::uuid, $2::jsonb)", BODY_OBJECT, 200, false},
	{"POST", "/v3/authorizations/:id/reverse", "SELECT card.authorization_reverse_request($1::uuid, $2::jsonb)", BODY_OBJECT, 200, false},
};

/* The events after a cursor, waiting for some up to wait seconds. */
static const char *const events_sql =
"SELECT pg_catalog.jsonb_build_object("
" 'events', coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(e) ORDER BY e.seq), '[]'),"
" 'next', coalesce(max(e.seq), $1::bigint))"
" FROM card.events_after($1::bigint, $2::integer,"
"  pg_catalog.make_interval(secs => $3::double precision)) e";

/*
 * Whether path matches pattern; *id points into a copy of the ":id"
 * segment (caller frees) when the pattern has one.
 */
static bool
path_matches(const char *pattern, const char *path, char **id)
{
	*id = NULL;
	while (*pattern && *path)
	{
		if (strncmp(pattern, ":id", 3) == 0)
		{
			/* An id is a UUID; a segment of other bytes names no object. */
			size_t		len = strspn(path, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_");

			if (len == 0 || len > 64 || (path[len] != '\0' && path[len] != '/'))
				break;
			free(*id);
			*id = strndup(path, len);
			pattern += 3;
			path += len;
			continue;
		}
		if (*pattern != *path)
			break;
		pattern++;
		path++;
	}
	if (*pattern == '\0' && *path == '\0')
		return true;
	free(*id);
	*id = NULL;
	return false;
}

/* The role of the request's bearer token, or NULL (401). */
static const char *
request_role(struct MHD_Connection *connection)
{
	const char *auth = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
												   MHD_HTTP_HEADER_AUTHORIZATION);

	char		token[512];
	size_t		len;

	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return NULL;
	auth += 7;
	while (*auth == ' ' || *auth == '\t')
		auth++;
	len = strlen(auth);
	while (len > 0 && (auth[len - 1] == ' ' || auth[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(token))
		return NULL;
	memcpy(token, auth, len);
	token[len] = '\0';
	{
		const char *role = tokens_role(token);

		explicit_bzero(token, sizeof(token));
		return role;
	}
}

/* Answer a call's result: its one value, or its error. */
static enum MHD_Result
respond_call(struct MHD_Connection *connection, const DbResult *result, unsigned int success)
{
	unsigned int status;
	const char *value;

	if (result->ok)
	{
		value = db_value(result, 0, 0);
		if (value == NULL)
			return respond_json_error(connection, MHD_HTTP_NOT_FOUND, "no_data_found",
									  "no such object");
		{
			char	   *body = str_printf("%s\n", value);
			enum MHD_Result ret = respond(connection, success, "application/json", body, NULL);

			free(body);
			return ret;
		}
	}
	status = status_of_sqlstate(result->sqlstate);
	/* A 500 says nothing of what failed inside; the message is for 4xx only. */
	if (status == MHD_HTTP_INTERNAL_SERVER_ERROR)
		return respond_json_error(connection, status, "internal_error",
								  "the request failed; nothing was changed");
	if (strcmp(result->sqlstate, "08007") == 0)
		return respond_json_error(connection, status, code_of_status(status, result->sqlstate),
								  "the connection to the database was lost during the call, which may "
								  "have been done: read the object before trying again");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		return respond_json_error(connection, status, code_of_status(status, result->sqlstate),
								  "the database is busy or unreachable; nothing was changed, try again");
	return respond_json_error(connection, status, code_of_status(status, result->sqlstate),
							  result->message ? result->message : "refused");
}

/* GET /v3/events?after=&limit=&wait= (wait in seconds: a long poll). */
static enum MHD_Result
handle_events(Request *req, const char *role)
{
	const char *after = MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "after");
	const char *limit = MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "limit");
	const char *wait = MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, "wait");
	const char *params[3];
	double		wait_s = 0;
	char	   *end;
	DbCall		call;
	DbResult	result;
	enum MHD_Result ret;

	if (wait)
	{
		wait_s = strtod(wait, &end);
		if (*wait == '\0' || *end != '\0' || !(wait_s >= 0 && wait_s <= server_config.max_wait_s))
		{
			char	   *message = str_printf("wait is a number of seconds from 0 to %d",
											 server_config.max_wait_s);

			ret = respond_json_error(req->connection, MHD_HTTP_UNPROCESSABLE_CONTENT,
									 "invalid_parameter_value", message);
			free(message);
			return ret;
		}
	}
	params[0] = after ? after : "0";
	params[1] = limit ? limit : "100";
	params[2] = wait ? wait : "0";
	call.sql = events_sql;
	call.nparams = 3;
	call.params = params;
	call.role = role;
	call.timeout_s = (int) wait_s + server_config.timeout_s;
	call.long_poll = true;
	pool_call(&call, &result);
	if (!result.ok && strcmp(result.sqlstate, "53300") == 0)
	{
		/* Every long-poll connection waits already: read now, without a wait. */
		db_result_free(&result);
		params[2] = "0";
		call.timeout_s = 0;
		call.long_poll = false;
		pool_call(&call, &result);
	}
	ret = respond_call(req->connection, &result, 200);
	db_result_free(&result);
	return ret;
}

/*
 * Check that the body is one JSON object (an empty body is "{}"); answers
 * 400 and returns false if not.  *has_key: whether it names "idempotency_key".
 */
static bool
check_body(Request *req, enum MHD_Result *ret, bool *has_key)
{
	enum json_tokener_error jerr = json_tokener_success;
	json_tokener *tok;
	json_object *parsed;
	bool		is_object;

	*has_key = false;
	if (req->body_len == 0)
		return true;
	if (strlen(req->body) != req->body_len)
	{
		*ret = respond_json_error(req->connection, MHD_HTTP_BAD_REQUEST, "malformed_json",
								  "the request body holds a NUL byte");
		return false;
	}
	/* Strict RFC 8259, valid UTF-8, at most 64 levels deep, nothing after it. */
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (tok == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	parsed = json_tokener_parse_ex(tok, req->body, (int) req->body_len);
	jerr = json_tokener_get_error(tok);
	if (parsed != NULL && jerr == json_tokener_success)
	{
		size_t		end = json_tokener_get_parse_end(tok);

		end += strspn(req->body + end, " \t\r\n");
		if (end != req->body_len)
		{
			json_object_put(parsed);
			parsed = NULL;
			jerr = json_tokener_error_parse_unexpected;
		}
	}
	else if (parsed == NULL && jerr == json_tokener_continue)
		jerr = json_tokener_error_parse_eof;
	json_tokener_free(tok);
	if (parsed == NULL)
	{
		char	   *message = str_printf("the request body is not JSON: %s",
										 json_tokener_error_desc(jerr));

		*ret = respond_json_error(req->connection, MHD_HTTP_BAD_REQUEST, "malformed_json", message);
		free(message);
		return false;
	}
	is_object = json_object_is_type(parsed, json_type_object);
	if (is_object)
		*has_key = json_object_object_get_ex(parsed, "idempotency_key", NULL);
	json_object_put(parsed);
	if (!is_object)
	{
		*ret = respond_json_error(req->connection, MHD_HTTP_BAD_REQUEST, "malformed_json",
								  "the request body must be a JSON object");
		return false;
	}
	return true;
}

enum MHD_Result
api_handle(Request *req)
{
	const char *role;
	bool		path_known = false;
	char		allow[64] = "";
	char	   *id = NULL;
	const char *path = req->url;

	if (strcmp(path, "/healthz") == 0)
	{
		if (strcmp(req->method, "GET") != 0)
			return respond_json_error_allow(req->connection, MHD_HTTP_METHOD_NOT_ALLOWED,
											"method_not_allowed", "use GET", "GET");
		if (pool_healthy())
			return respond(req->connection, MHD_HTTP_OK, "application/json",
						   "{\"status\": \"ok\"}\n", NULL);
		return respond_json_error(req->connection, MHD_HTTP_SERVICE_UNAVAILABLE,
								  "connection_failure", "the database is not reachable");
	}
	if (strncmp(path, "/v3/", 4) != 0)
		return respond_json_error(req->connection, MHD_HTTP_NOT_FOUND, "not_found",
								  "no such route");
	if (req->too_large)
		return respond_json_error(req->connection, MHD_HTTP_CONTENT_TOO_LARGE,
								  "payload_too_large", "the request body is too large");

	/* Unknown routes and methods are told apart before the token is checked. */
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
	{
		if (path_matches(routes[i].pattern, path, &id))
		{
			path_known = true;
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s",
					 allow[0] ? ", " : "", routes[i].method);
			if (strcmp(routes[i].method, req->method) == 0)
			{
				const Route *route = &routes[i];
				const char *params[2];
				int			nparams = 0;
				const char *key = NULL;
				bool		body_has_key = false;
				enum MHD_Result ret;
				DbCall		call;
				DbResult	result;

				role = request_role(req->connection);
				if (role == NULL)
				{
					free(id);
					return respond_json_error(req->connection, MHD_HTTP_UNAUTHORIZED, "unauthorized",
											  "a valid bearer token is required");
				}
				if (route->body == BODY_OBJECT && !check_body(req, &ret, &body_has_key))
				{
					free(id);
					return ret;
				}
				if (route->idempotency_key)
				{
					key = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
													  "Idempotency-Key");
					if (key && body_has_key)
					{
						free(id);
						return respond_json_error(req->connection, MHD_HTTP_UNPROCESSABLE_CONTENT,
												  "invalid_parameter_value",
												  "give the idempotency key in the Idempotency-Key header or the body, not both");
					}
				}
				if (id)
					params[nparams++] = id;
				if (route->body == BODY_OBJECT)
					params[nparams++] = req->body_len > 0 ? req->body : "{}";
				if (route->idempotency_key)
					params[nparams++] = key;
				call.sql = route->sql;
				call.nparams = nparams;
				call.params = params;
				call.role = role;
				call.timeout_s = 0;
				call.long_poll = false;
				pool_call(&call, &result);
				ret = respond_call(req->connection, &result, route->success);
				db_result_free(&result);
				free(id);
				return ret;
			}
		}
		free(id);
		id = NULL;
	}
	if (strcmp(path, "/v3/events") == 0)
	{
		if (strcmp(req->method, "GET") != 0)
			return respond_json_error_allow(req->connection, MHD_HTTP_METHOD_NOT_ALLOWED,
											"method_not_allowed", "use GET", "GET");
		role = request_role(req->connection);
		if (role == NULL)
			return respond_json_error(req->connection, MHD_HTTP_UNAUTHORIZED, "unauthorized",
									  "a valid bearer token is required");
		return handle_events(req, role);
	}
	if (path_known)
		return respond_json_error_allow(req->connection, MHD_HTTP_METHOD_NOT_ALLOWED,
										"method_not_allowed", "this route does not take that method",
										allow);
	return respond_json_error(req->connection, MHD_HTTP_NOT_FOUND, "not_found", "no such route");
}
