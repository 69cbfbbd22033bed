/*-------------------------------------------------------------------------
 *
 * facts.c
 *	  Build tool: prints the sed script that fills the facts of facts.h
 *	  into the SQL sources (see the Makefile).  Not part of the module.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>

#include "facts.h"

#define lengthof(array) (sizeof(array) / sizeof((array)[0]))

/* @NAME@ as SQL literals ('a', 'b'); @NAME_TEXT@ as words (a, b). */
static void
list(const char *name, const char *const *items, size_t count)
{
	printf("s/@%s@/", name);
	for (size_t i = 0; i < count; i++)
		printf("%s'%s'", i ? ", " : "", items[i]);
	printf("/g\ns/@%s_TEXT@/", name);
	for (size_t i = 0; i < count; i++)
		printf("%s%s", i ? ", " : "", items[i]);
	printf("/g\n");
}

int
main(void)
{
	static const char *const live_statuses[] = {CARD_LIVE_STATUSES};
	static const char *const channels[] = {CARD_CHANNELS};
	static const char *const types[] = {CARD_TYPES};

	list("CARD_LIVE_STATUSES", live_statuses, lengthof(live_statuses));
	list("CARD_CHANNELS", channels, lengthof(channels));
	list("CARD_TYPES", types, lengthof(types));
	printf("s/@CARD_PIN_TRIES@/%d/g\n", CARD_PIN_TRIES);
	return 0;
}
