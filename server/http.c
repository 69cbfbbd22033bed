/*
 * http.c: responses, the SQLSTATE to HTTP status map, escaping and form
 * fields, shared by the API (api.c) and the hosted pages (pages.c).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

char *
str_printf(const char *fmt,...)
{
	va_list		ap;
	char	   *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		abort();				/* out of memory: nothing sensible to answer */
	return s;
}

/* A response body of ours: wiped when libmicrohttpd is done with it (a page may show a PAN). */
typedef struct OwnedBody
{
	size_t		len;
	char		data[];
} OwnedBody;

static void
wipe_body(void *cls)
{
	OwnedBody  *owned = cls;

	explicit_bzero(owned->data, owned->len);
	free(owned);
}

/*
 * Send a response.  Every answer carries the headers of DESIGN section 13:
 * nothing is cached, framed, sniffed or sent on as a referrer; pages load
 * no script and only our own stylesheet.
 */
enum MHD_Result
respond(struct MHD_Connection *connection, unsigned int status,
		const char *content_type, const char *body, const char *location)
{
	return respond_with(connection, status, content_type, body,
						location ? MHD_HTTP_HEADER_LOCATION : NULL, location);
}

/* respond(), with one more header (name NULL: none). */
enum MHD_Result
respond_with(struct MHD_Connection *connection, unsigned int status,
			 const char *content_type, const char *body, const char *name, const char *value)
{
	struct MHD_Response *response;
	enum MHD_Result ret;

	size_t		len = strlen(body);
	OwnedBody  *owned = malloc(sizeof(OwnedBody) + len + 1);

	if (owned == NULL)
		return MHD_NO;
	owned->len = len;
	memcpy(owned->data, body, len + 1);
	response = MHD_create_response_from_buffer_with_free_callback_cls(len, owned->data,
																	  wipe_body, owned);
	if (response == NULL)
	{
		wipe_body(owned);
		return MHD_NO;
	}
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(response, "X-Frame-Options", "DENY");
	MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(response, "Content-Security-Policy",
							"default-src 'none'; style-src 'self'; img-src 'self'; "
							"base-uri 'none'; frame-ancestors 'none'");
	if (server_config.tls_cert)
		MHD_add_response_header(response, "Strict-Transport-Security", "max-age=31536000");
	if (name)
		MHD_add_response_header(response, name, value);
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	note_response_status(status);
	ret = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return ret;
}

/* {"error": {"code": ..., "message": ...}} */
enum MHD_Result
respond_json_error(struct MHD_Connection *connection, unsigned int status,
				   const char *code, const char *message)
{
	return respond_json_error_allow(connection, status, code, message, NULL);
}

/* The same, for a 405: allow lists the methods the path takes. */
enum MHD_Result
respond_json_error_allow(struct MHD_Connection *connection, unsigned int status,
						 const char *code, const char *message, const char *allow)
{
	char	   *escaped = json_escape(message);
	char	   *body = str_printf("{\"error\": {\"code\": \"%s\", \"message\": \"%s\"}}\n",
								  code, escaped);
	enum MHD_Result ret = respond_with(connection, status, "application/json", body,
									   allow ? MHD_HTTP_HEADER_ALLOW : NULL, allow);

	free(escaped);
	free(body);
	return ret;
}

/*
 * DESIGN section 13: the status a database error answers, and the code a
 * client sees (the SQLSTATE's condition name).  Others: 500 internal_error.
 */
static const struct
{
	const char *sqlstate;
	unsigned int status;
	const char *name;
}			sqlstate_map[] = {
	{"P0002", MHD_HTTP_NOT_FOUND, "no_data_found"},
	{"55000", MHD_HTTP_CONFLICT, "object_not_in_prerequisite_state"},
	{"23505", MHD_HTTP_CONFLICT, "unique_violation"},
	{"55P03", MHD_HTTP_SERVICE_UNAVAILABLE, "lock_not_available"},	/* try again */
	{"53400", MHD_HTTP_SERVICE_UNAVAILABLE, "configuration_limit_exceeded"},	/* no worker slot */
	{"53300", MHD_HTTP_SERVICE_UNAVAILABLE, "too_many_connections"},	/* every pool connection busy */
	{"08007", MHD_HTTP_SERVICE_UNAVAILABLE, "transaction_resolution_unknown"},	/* lost mid-call */
	{"22P05", MHD_HTTP_UNPROCESSABLE_CONTENT, "untranslatable_character"},	/* \u0000 in JSON */
	{"22023", MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_parameter_value"},
	{"22P02", MHD_HTTP_UNPROCESSABLE_CONTENT, "invalid_text_representation"},
	{"23502", MHD_HTTP_UNPROCESSABLE_CONTENT, "not_null_violation"},
	{"23514", MHD_HTTP_UNPROCESSABLE_CONTENT, "check_violation"},
	{"22003", MHD_HTTP_UNPROCESSABLE_CONTENT, "numeric_value_out_of_range"},
	{"42501", MHD_HTTP_FORBIDDEN, "insufficient_privilege"},
	{"40001", MHD_HTTP_SERVICE_UNAVAILABLE, "serialization_failure"},	/* after one retry */
	{"40P01", MHD_HTTP_SERVICE_UNAVAILABLE, "deadlock_detected"},
	{"57014", MHD_HTTP_SERVICE_UNAVAILABLE, "query_canceled"},	/* statement timeout */
	{"08006", MHD_HTTP_SERVICE_UNAVAILABLE, "connection_failure"},
	{"57P01", MHD_HTTP_SERVICE_UNAVAILABLE, "admin_shutdown"},
	{"54000", MHD_HTTP_UNPROCESSABLE_CONTENT, "program_limit_exceeded"},
	{"22021", MHD_HTTP_BAD_REQUEST, "character_not_in_repertoire"},	/* not UTF-8 (a path) */
};

static int
sqlstate_index(const char *sqlstate)
{
	for (size_t i = 0; i < sizeof(sqlstate_map) / sizeof(sqlstate_map[0]); i++)
		if (strcmp(sqlstate_map[i].sqlstate, sqlstate) == 0)
			return (int) i;
	return -1;
}

unsigned int
status_of_sqlstate(const char *sqlstate)
{
	int			i = sqlstate_index(sqlstate);

	return i < 0 ? MHD_HTTP_INTERNAL_SERVER_ERROR : sqlstate_map[i].status;
}

const char *
code_of_status(unsigned int status, const char *sqlstate)
{
	int			i = sqlstate_index(sqlstate);

	return status == MHD_HTTP_INTERNAL_SERVER_ERROR || i < 0 ? "internal_error" : sqlstate_map[i].name;
}

/* s as the inside of a JSON string. */
char *
json_escape(const char *s)
{
	size_t		len = strlen(s);
	char	   *out = malloc(len * 6 + 1);
	char	   *p = out;

	if (out == NULL)
		abort();
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
		{
			*p++ = '\\';
			*p++ = (char) c;
		}
		else if (c < 0x20)
			p += sprintf(p, "\\u%04x", c);
		else
			*p++ = (char) c;
	}
	*p = '\0';
	return out;
}

/* s safe in HTML text and attribute values. */
char *
html_escape(const char *s)
{
	size_t		len = strlen(s);
	char	   *out = malloc(len * 6 + 1);
	char	   *p = out;

	if (out == NULL)
		abort();
	for (; *s; s++)
	{
		switch (*s)
		{
			case '&':
				p += sprintf(p, "&amp;");
				break;
			case '<':
				p += sprintf(p, "&lt;");
				break;
			case '>':
				p += sprintf(p, "&gt;");
				break;
			case '"':
				p += sprintf(p, "&quot;");
				break;
			case '\'':
				p += sprintf(p, "&#39;");
				break;
			default:
				*p++ = *s;
		}
	}
	*p = '\0';
	return out;
}

static int
hex_digit(int c)
{
	if (isdigit(c))
		return c - '0';
	c = tolower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/*
 * The decoded value of field name in an application/x-www-form-urlencoded
 * body (malloc), or NULL if absent or malformed.
 */
char *
form_value(const char *body, const char *name)
{
	size_t		name_len = strlen(name);
	const char *p = body;

	while (p && *p)
	{
		const char *end = strchr(p, '&');
		size_t		len = end ? (size_t) (end - p) : strlen(p);

		if (len > name_len && strncmp(p, name, name_len) == 0 && p[name_len] == '=')
		{
			const char *v = p + name_len + 1;
			const char *v_end = p + len;
			char	   *out = malloc(len + 1);
			char	   *o = out;

			if (out == NULL)
				abort();
			while (v < v_end)
			{
				if (*v == '+')
				{
					*o++ = ' ';
					v++;
				}
				else if (*v == '%')
				{
					int			hi = v + 1 < v_end ? hex_digit((unsigned char) v[1]) : -1;
					int			lo = v + 2 < v_end ? hex_digit((unsigned char) v[2]) : -1;

					if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
					{
						free(out);
						return NULL;
					}
					*o++ = (char) (hi << 4 | lo);
					v += 3;
				}
				else
					*o++ = *v++;
			}
			*o = '\0';
			return out;
		}
		p = end ? end + 1 : NULL;
	}
	return NULL;
}
