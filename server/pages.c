/*
 * pages.c: the hosted pages a cardholder is sent to (DESIGN section 13):
 * activation (a PIN entered twice), reveal (PAN, expiry and CVV shown
 * once), PIN reset.  Plain HTML forms and one stylesheet, no script.
 *
 * The token arrives in the link's query (the extension's links name it so)
 * and is carried in a hidden field of the form, never in a redirect or a
 * log line; the PIN only in the POST body.  Every call runs as the pages
 * role.  A refused call answers a page that says what to do, never the
 * database's message with its internals, except where that message is
 * about what the holder typed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static const char *const stylesheet =
"body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\n"
"main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.75rem;"
"box-shadow:0 1px 4px rgba(0,0,0,.12)}\n"
"h1{font-size:1.4rem;margin-top:0}\n"
"label{display:block;margin:1rem 0 .25rem}\n"
"input{font-size:1.2rem;padding:.5rem;width:100%;box-sizing:border-box;letter-spacing:.3em}\n"
"button{margin-top:1.5rem;font-size:1rem;padding:.7rem 1.4rem;border:0;border-radius:.4rem;"
"background:#1d4ed8;color:#fff;cursor:pointer}\n"
".error{color:#b91c1c}\n"
"dl{display:grid;grid-template-columns:auto 1fr;gap:.5rem 1rem}\n"
"dd{margin:0;font-family:ui-monospace,monospace;font-size:1.2rem}\n";

typedef struct Page
{
	const char *path;
	const char *title;
	const char *intro;
	const char *button;
	bool		asks_pin;
} Page;

static const Page activate_page = {
	"/activate", "Activate your card",
	"Choose a 4-digit PIN for your card (for a replacement card, enter the PIN it already has).",
	"Activate", true
};
static const Page pin_page = {
	"/pin", "Choose a new PIN",
	"Choose a new 4-digit PIN for your card.",
	"Set PIN", true
};
static const Page reveal_page = {
	"/reveal", "Your card details",
	"Your card number, expiry date and security code are shown once. Make sure nobody is watching.",
	"Show card details", false
};

bool
pages_path(const char *url)
{
	return strcmp(url, "/activate") == 0 || strcmp(url, "/pin") == 0 ||
		strcmp(url, "/reveal") == 0 || strcmp(url, "/pages.css") == 0;
}

static enum MHD_Result
respond_html(struct MHD_Connection *connection, unsigned int status, const char *title,
			 const char *content)
{
	char	   *html_title = html_escape(title);
	char	   *body = str_printf("<!doctype html>\n<html lang=\"en\">\n<head>\n"
								  "<meta charset=\"utf-8\">\n"
								  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
								  "<title>%s</title>\n<link rel=\"stylesheet\" href=\"/pages.css\">\n"
								  "</head>\n<body>\n<main>\n<h1>%s</h1>\n%s</main>\n</body>\n</html>\n",
								  html_title, html_title, content);
	enum MHD_Result ret = respond(connection, status, "text/html; charset=utf-8", body, NULL);

	free(html_title);
	free(body);
	return ret;
}

/* The page of a link that names nothing usable. */
static enum MHD_Result
respond_not_valid(struct MHD_Connection *connection)
{
	return respond_html(connection, MHD_HTTP_NOT_FOUND, "This link is not valid",
						"<p>Check that you opened the whole link, or ask for a new one in your app.</p>\n");
}

/* The form of a page, with an error above it if any. */
static enum MHD_Result
respond_form(struct MHD_Connection *connection, unsigned int status, const Page *page,
			 const char *token, const char *error)
{
	char	   *html_token = html_escape(token);
	char	   *html_error = error ? html_escape(error) : NULL;
	char	   *content;
	enum MHD_Result ret;

	content = str_printf("%s%s%s<p>%s</p>\n<form method=\"post\" action=\"%s\">\n"
						 "<input type=\"hidden\" name=\"token\" value=\"%s\">\n%s"
						 "<button type=\"submit\">%s</button>\n</form>\n",
						 error ? "<p class=\"error\" role=\"alert\">" : "",
						 error ? html_error : "", error ? "</p>\n" : "",
						 page->intro, page->path, html_token,
						 page->asks_pin ?
						 "<label for=\"pin\">PIN</label>\n"
						 "<input id=\"pin\" name=\"pin\" type=\"password\" inputmode=\"numeric\""
						 " autocomplete=\"off\" pattern=\"[0-9]{4}\" maxlength=\"4\" required>\n"
						 "<label for=\"pin2\">The same PIN again</label>\n"
						 "<input id=\"pin2\" name=\"pin2\" type=\"password\" inputmode=\"numeric\""
						 " autocomplete=\"off\" pattern=\"[0-9]{4}\" maxlength=\"4\" required>\n" : "",
						 page->button);
	ret = respond_html(connection, status, page->title, content);
	free(html_token);
	free(html_error);
	free(content);
	return ret;
}

/* A page that ends the flow: the link cannot be used (again). */
static enum MHD_Result
respond_refused(struct MHD_Connection *connection, const DbResult *result)
{
	unsigned int status = status_of_sqlstate(result->sqlstate);

	if (status == MHD_HTTP_NOT_FOUND)
		return respond_not_valid(connection);
	if (status == MHD_HTTP_CONFLICT)
		return respond_html(connection, MHD_HTTP_GONE, "This link can no longer be used",
							"<p>It was used already, a newer one replaced it, or it has expired. "
							"Ask for a new one in your app.</p>\n");
	if (strcmp(result->sqlstate, "08007") == 0)
		return respond_html(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "We could not tell whether that worked",
							"<p>Check your card in your app before you try again.</p>\n");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		return respond_html(connection, status, "Please try again",
							"<p>We could not finish just now. Nothing was changed.</p>\n");
	if (status == MHD_HTTP_BAD_REQUEST || status == MHD_HTTP_UNPROCESSABLE_CONTENT)
		return respond_not_valid(connection);
	return respond_html(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "Something went wrong",
						"<p>Nothing was changed. Please try again later.</p>\n");
}

static enum MHD_Result
respond_redirect(struct MHD_Connection *connection, const char *return_url)
{
	char	   *html_url = html_escape(return_url);
	char	   *content = str_printf("<p>Done. <a href=\"%s\">Continue</a>.</p>\n", html_url);
	char	   *body = str_printf("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
								  "<title>Done</title></head><body>%s</body></html>\n", content);
	enum MHD_Result ret = respond(connection, MHD_HTTP_SEE_OTHER, "text/html; charset=utf-8",
								  body, return_url);

	free(html_url);
	free(content);
	free(body);
	return ret;
}

static void
call_as_pages(const char *sql, int nparams, const char *const *params, DbResult *result)
{
	DbCall		call = {sql, nparams, params, server_config.pages_role, 0, false};

	pool_call(&call, result);
}

/* Whether a 4xx message is about what the holder typed (shown on the form). */
static bool
about_input(const DbResult *result)
{
	return strcmp(result->sqlstate, "22023") == 0 || strcmp(result->sqlstate, "23502") == 0;
}

static enum MHD_Result
post_pin_page(Request *req, const Page *page, const char *token)
{
	char	   *pin = form_value(req->body, "pin");
	char	   *pin2 = form_value(req->body, "pin2");
	const char *params[2];
	DbResult	result;
	enum MHD_Result ret;

	if (pin == NULL || pin2 == NULL || *pin == '\0')
		ret = respond_form(req->connection, MHD_HTTP_UNPROCESSABLE_CONTENT, page, token,
						   "Enter your PIN in both fields.");
	else if (strcmp(pin, pin2) != 0)
		ret = respond_form(req->connection, MHD_HTTP_UNPROCESSABLE_CONTENT, page, token,
						   "The two PINs differ. Enter the same PIN twice.");
	else
	{
		params[0] = token;
		params[1] = pin;
		if (page == &activate_page)
			call_as_pages("SELECT status::text, return_url, pin_tries_left"
						  " FROM card.card_activation_complete($1, $2)", 2, params, &result);
		else
			call_as_pages("SELECT 'active', return_url, NULL FROM card.card_pin_reset($1, $2)",
						  2, params, &result);
		if (!result.ok && about_input(&result))
			ret = respond_form(req->connection, MHD_HTTP_UNPROCESSABLE_CONTENT, page, token,
							   result.message);
		else if (!result.ok)
			ret = respond_refused(req->connection, &result);
		else if (db_value(&result, 0, 1) != NULL && strcmp(db_value(&result, 0, 0), "active") == 0)
			ret = respond_redirect(req->connection, db_value(&result, 0, 1));
		else
		{
			/* A replacement card's PIN was not the one it carries. */
			const char *left = db_value(&result, 0, 2);
			char	   *message = str_printf("That is not your card's PIN. %s tr%s left.",
											 left ? left : "No",
											 left && strcmp(left, "1") == 0 ? "y" : "ies");

			ret = respond_form(req->connection, MHD_HTTP_UNPROCESSABLE_CONTENT, page, token, message);
			free(message);
		}
		db_result_free(&result);
	}
	if (pin)
	{
		memset(pin, 0, strlen(pin));
		free(pin);
	}
	if (pin2)
	{
		memset(pin2, 0, strlen(pin2));
		free(pin2);
	}
	return ret;
}

static enum MHD_Result
post_reveal(Request *req, const char *token)
{
	const char *params[1] = {token};
	DbResult	result;
	enum MHD_Result ret;

	call_as_pages("SELECT pan, exp_month, exp_year, cvv FROM card.card_reveal($1)", 1, params, &result);
	if (!result.ok)
		ret = respond_refused(req->connection, &result);
	else
	{
		char	   *content = str_printf("<p>%s</p>\n<dl>\n<dt>Card number</dt><dd>%s</dd>\n"
										 "<dt>Expires</dt><dd>%s/%s</dd>\n<dt>Security code</dt><dd>%s</dd>\n"
										 "</dl>\n<p>Close this page when you are done; it cannot be shown again.</p>\n",
										 "Here are your card details.",
										 db_value(&result, 0, 0), db_value(&result, 0, 1),
										 db_value(&result, 0, 2), db_value(&result, 0, 3));

		ret = respond_html(req->connection, MHD_HTTP_OK, reveal_page.title, content);
		memset(content, 0, strlen(content));
		free(content);
	}
	/*
	 * Our copies of PAN and CVV are wiped (the page's too, once sent:
	 * respond()); libpq's buffers and the kernel's are not ours to wipe.
	 */
	for (int i = 0; result.values && i < result.ntuples * result.nfields; i++)
		if (result.values[i])
			memset(result.values[i], 0, strlen(result.values[i]));
	db_result_free(&result);
	return ret;
}

enum MHD_Result
pages_handle(Request *req)
{
	const Page *page;
	bool		get = strcmp(req->method, "GET") == 0;
	bool		post = strcmp(req->method, "POST") == 0;
	char	   *token;
	enum MHD_Result ret;

	if (strcmp(req->url, "/pages.css") == 0)
		return get ? respond(req->connection, MHD_HTTP_OK, "text/css; charset=utf-8", stylesheet, NULL)
			: respond_html(req->connection, MHD_HTTP_METHOD_NOT_ALLOWED, "Not allowed", "");
	page = strcmp(req->url, "/activate") == 0 ? &activate_page
		: strcmp(req->url, "/pin") == 0 ? &pin_page : &reveal_page;
	if (!get && !post)
		return respond_html(req->connection, MHD_HTTP_METHOD_NOT_ALLOWED, "Not allowed",
							"<p>This page takes GET and POST only.</p>\n");
	if (req->too_large)
		return respond_html(req->connection, MHD_HTTP_CONTENT_TOO_LARGE, "Too much data",
							"<p>Go back and try again.</p>\n");
	if (get)
	{
		const char *query_token = MHD_lookup_connection_value(req->connection,
															  MHD_GET_ARGUMENT_KIND, "token");

		if (query_token == NULL || *query_token == '\0')
			return respond_not_valid(req->connection);
		return respond_form(req->connection, MHD_HTTP_OK, page, query_token, NULL);
	}
	token = form_value(req->body, "token");
	if (token == NULL || *token == '\0')
	{
		free(token);
		return respond_not_valid(req->connection);
	}
	ret = page->asks_pin ? post_pin_page(req, page, token) : post_reveal(req, token);
	free(token);
	return ret;
}
