/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Checks of caller input shared by the entry points.
 *
 * Each check raises 22023 (invalid_parameter_value) or 23502 (a required
 * value is missing).  Checks of secrets (the PIN) never quote the value.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "datatype/timestamp.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#define CARD_URL_MAX 2048

/* 23502 when a required value is missing. */
void
card_require(bool present, const char *field)
{
	if (!present)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("%s is required", field)));
}

/*
 * 55000 unless the transaction reads with a fresh snapshot per statement:
 * what (the call) must see rows that commit while it runs, as why says.
 */
void
card_require_read_committed(const char *what, const char *why)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s needs READ COMMITTED isolation", what),
				 errdetail("%s", why)));
}

/* Wipe a secret copy, if there is one. */
static void
wipe(char *secret)
{
	if (secret)
		explicit_bzero(secret, strlen(secret));
}

/*
 * Run work on our copies of a function's secret arguments (a token, and a
 * PIN if the function takes one), wiping both however the call ends.  The
 * first argument is required and named first_field in the error; the
 * second may be NULL, for work to judge.
 */
Datum
card_with_secrets(FunctionCallInfo fcinfo, const char *first_field, CardSecretWork work)
{
	char	   *volatile first = NULL;
	char	   *second = (PG_NARGS() > 1 && !PG_ARGISNULL(1)) ?
		text_to_cstring(PG_GETARG_TEXT_PP(1)) : NULL;
	volatile Datum result = (Datum) 0;

	PG_TRY();
	{
		card_require(!PG_ARGISNULL(0), first_field);
		first = text_to_cstring(PG_GETARG_TEXT_PP(0));
		result = work(fcinfo, first, second);
	}
	PG_CATCH();
	{
		wipe(first);
		wipe(second);
		/*
		 * The statement may carry the secrets as literals: keep it out of
		 * the server log (log_min_error_statement logs a failing
		 * statement's text by default).  The error is still on the stack.
		 */
		errhidestmt(true);
		PG_RE_THROW();
	}
	PG_END_TRY();
	wipe(first);
	wipe(second);
	return result;
}

static bool
host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* Characters a URL may carry after its host: printable ASCII, no quotes. */
static bool
url_char(char c)
{
	return c > ' ' && c < 0x7f && strchr("\"<>\\^`{|}", c) == NULL;
}

static void
url_error(const char *field, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must be an absolute https URL", field),
			 errdetail("%s", detail),
			 errhint("For example: https://app.example.com/cards/done")));
}

/* An absolute https URL with a host, optional port, path, query, fragment. */
void
card_check_https_url(const char *field, const char *url)
{
	const char *p;
	const char *host;

	card_require(url != NULL, field);
	if (strlen(url) > CARD_URL_MAX)
		url_error(field, "The URL is longer than 2048 characters.");
	if (pg_strncasecmp(url, "https://", 8) != 0)
		url_error(field, "The URL does not start with https://.");
	host = p = url + 8;
	while (host_char(*p))
		p++;
	if (p == host || *host == '.' || *host == '-' || p[-1] == '-')
		url_error(field, "The URL has no valid host name.");
	if (*p == ':')
	{
		const char *port = ++p;
		long		portnum = 0;

		while (*p >= '0' && *p <= '9' && p - port < 6)
			portnum = portnum * 10 + (*p++ - '0');
		if (p == port || portnum < 1 || portnum > 65535)
			url_error(field, "The URL has an invalid port.");
	}
	if (*p != '\0' && *p != '/' && *p != '?' && *p != '#')
		url_error(field, "The host name contains an invalid character.");
	for (; *p; p++)
		if (!url_char(*p))
			url_error(field, "The URL contains a space, a control character or an unsafe character.");
}

/* A PIN is 4 to 6 ASCII digits.  The value is never shown. */
void
card_check_pin(const char *pin)
{
	size_t		len;

	card_require(pin != NULL, "pin");
	len = strlen(pin);
	if (len < 4 || len > 6 || strspn(pin, "0123456789") != len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pin must be 4 to 6 digits")));
}

/* The channel of a status change: who asked for it. */
void
card_check_channel(const char *channel)
{
	static const char *const channels[] = {
		"api", "holder", "operator", "system", "fraud"
	};

	card_require(channel != NULL, "channel");
	for (size_t i = 0; i < lengthof(channels); i++)
		if (strcmp(channel, channels[i]) == 0)
			return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid channel \"%s\"", channel),
			 errhint("Use api, holder, operator, system or fraud.")));
}

/* Today's date in UTC, as of the start of the transaction. */
DateADT
card_utc_today(void)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(GetCurrentTransactionStartTimestamp(), NULL, &tm, &fsec,
					 NULL, NULL) != 0)
		elog(ERROR, "transaction start time out of range");
	return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
}

/* Months since year 0 of a (year, month 1-12): for comparing expiry months. */
int
card_month_index(int year, int month)
{
	return year * 12 + (month - 1);
}

/* The current month in UTC as a month index. */
int
card_utc_month_index(void)
{
	int			year;
	int			month;
	int			day;

	j2date(card_utc_today() + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	return card_month_index(year, month);
}

/* A uuid Datum as text, for messages. */
char *
card_uuid_string(Datum uuid)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, uuid));
}

/* A list of names such as facts.h defines, "a, b", for a message. */
char *
card_name_list(const char *const *names, size_t count)
{
	StringInfoData list;

	initStringInfo(&list);
	for (size_t i = 0; i < count; i++)
		appendStringInfo(&list, "%s%s", i > 0 ? ", " : "", names[i]);
	return list.data;
}
