/*-------------------------------------------------------------------------
 *
 * card.c
 *	  Module entry point and settings of the card extension.
 *
 * card.key_file names the key file (superuser only, reloadable);
 * card.hosted_pages_url is the base of activation and reveal links;
 * card.events switches the live feed of events, card.notify its NOTIFY;
 * card.shard numbers the server among the shards of a scale-out.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "fmgr.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

char	   *card_key_file = NULL;
char	   *card_hosted_pages_url = NULL;
bool		card_events_enabled = true;
bool		card_notify_enabled = false;

void		_PG_init(void);

/* A hosted pages base must be an https URL; a trailing slash is dropped. */
static bool
check_hosted_pages_url(char **newval, void **extra, GucSource source)
{
	size_t		len;

	if (*newval == NULL)
		return true;
	len = strlen(*newval);
	if (len < 9 || strncmp(*newval, "https://", 8) != 0 ||
		strpbrk(*newval, " ?#\t\r\n") != NULL)
	{
		GUC_check_errdetail("card.hosted_pages_url must be an absolute https URL without query or fragment.");
		return false;
	}
	if ((*newval)[len - 1] == '/')
		(*newval)[len - 1] = '\0';
	return true;
}

void
_PG_init(void)
{
	DefineCustomStringVariable("card.key_file",
							   "Path of the file holding the MAC key and the PAN encryption keys.",
							   "Readable only by the server's OS user; re-read when it changes.",
							   &card_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("card.hosted_pages_url",
							   "Base URL of the hosted pages that activation and reveal links point to.",
							   NULL,
							   &card_hosted_pages_url,
							   "https://cards.example.com",
							   PGC_SUSET,
							   0,
							   check_hosted_pages_url, NULL, NULL);

	DefineCustomBoolVariable("card.events",
							 "Writes the live feed of events (card.event).",
							 "Off only where the feed is not used, for example where changes are streamed by logical decoding of the tables.",
							 &card_events_enabled,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("card.shard",
							"The number of this server among the shards of a scale-out (0 on a single server).",
							"Ids and tokens made here carry it, so that a proxy routes each call to the shard that holds its data. Set once, in postgresql.conf.",
							&card_shard,
							0, 0, CARD_SHARD_MAX,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("card.pan_stride",
							"How many shards the PAN space is split among (1 on a single server).",
							"Shard k draws only PANs whose account digits leave k when divided by it, so no two shards can draw the same PAN without asking each other. Set once, the same on every shard, above every shard's number.",
							&card_pan_stride,
							1, 1, CARD_SHARD_MAX + 1,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("card.notify",
							 "Sends NOTIFY card_events once per transaction that writes events.",
							 "For clients that LISTEN; PostgreSQL serialises the commits of notifying transactions. Consumers wait with card.events_after(cursor, max, wait) instead.",
							 &card_notify_enabled,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("card");

	RegisterSubXactCallback(card_event_subxact, NULL);
	card_feed_wakeup_init();
	card_plans_init();
	RegisterXactCallback(card_change_xact, NULL);
}
