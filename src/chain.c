/*-------------------------------------------------------------------------
 *
 * chain.c
 *	  The lock order of a card's replacement chain.
 *
 * A chain is a first card and its replacements (chain_id names the first
 * card).  Its cards change together: a reissue's activation blocks the
 * card it replaces, a lost card ends every card of its PAN, a PIN check
 * counts on the first card, controls and PINs are set on every card of
 * the chain.  Each of those statements locks rows of several cards, and
 * in whatever order its plan meets them; two of them at once on one chain
 * deadlocked (40P01).  So everything that touches a chain first calls
 * card_chain_lock(), which locks every card of the chain in one order:
 * the first card, then the card the call is about, then the rest by id.
 * The first card's lock alone serialises callers on one chain; the rest
 * are then taken without waiting on one another.  The chain's account
 * comes before it, FOR NO KEY UPDATE as card_authorize and controls lock
 * it: card_authorize locks the account and then its card, so a
 * transaction that held a chain and then wanted the account (a status
 * change, then controls, in one transaction) deadlocked with an
 * authorisation; and a weaker lock here would deadlock two transactions
 * that both later strengthen it.  A change of one card alone
 * (card_set_status) locks the account, the first card and that card only
 * (card_lock): the same order, without the rest of the chain.
 *
 *-------------------------------------------------------------------------
 */
#include "card.h"

#include "utils/builtins.h"

/*
 * Lock the account and every card of card_id's chain, in the chain's
 * order; returns how many cards (0: no such card among the caller's
 * programmes).  The caller is connected to SPI; the result table holds a
 * row per card (id, stored status, effective status, programme), as
 * locked.
 */
int
card_chain_lock(Datum card_id)
{
	/*
	 * One statement: the account's lock is an InitPlan, which runs when the
	 * scan below the sort first needs it, before the sort hands the first
	 * card to the row locks above it.
	 */
	static CardPlan lock_chain = {
		NULL,
		"WITH target AS ("
		"  SELECT card.chain_of(x.id, x.chain_id) AS chain, x.account_id FROM card.card x"
		"   WHERE x.id = $1 AND card.programme_visible(x.programme_id))"
		" SELECT c.id, c.status::text, card.effective_status(c.status, c.expires_on)::text,"
		"        c.programme_id"
		"  FROM card.card c, target t"
		"  WHERE (c.id = t.chain OR c.chain_id = t.chain)"
		"    AND EXISTS (SELECT FROM card.account a WHERE a.id = (SELECT account_id FROM target)"
		"                FOR NO KEY UPDATE OF a)"
		"  ORDER BY c.id <> t.chain, c.id <> $1, c.id"
		"  FOR NO KEY UPDATE OF c",
		1, {UUIDOID}
	};

	return card_exec(&lock_chain, &card_id, NULL, false, 0);
}

/* The card's columns card_lock() reads. */
enum LockedCardColumn
{
	LOCKED_ACCOUNT_ID,
	LOCKED_CHAIN_ID,
	LOCKED_PROGRAMME_ID,
	LOCKED_STATUS,
	LOCKED_EXPIRES_ON
};

static CardKeyedTable card_by_id = {
	"card", "card_pkey", 1,
	{"account_id", "chain_id", "programme_id", "status", "expires_on", NULL}
};

static CardKeyedTable account_by_id = {
	"account", "account_pkey", 1, {NULL}
};

/* The first card of the chain of the card read (card.chain_of). */
static Datum
first_card_of(CardKeyRead *card, Datum card_id)
{
	bool		isnull;
	Datum		chain_id = card_key_column(card, LOCKED_CHAIN_ID, &isnull);

	return isnull ? card_id : chain_id;
}

/*
 * Lock the account, the chain's first card and the card, for a change of
 * that card alone (card_set_status's); false if there is no such card
 * among the caller's programmes, else true with the card as locked in
 * *locked.  The order is card_chain_lock()'s, without the rest of the
 * chain: whoever locks cards of a chain without its account (key rotation
 * locks cards by id, the owner's own statements in any order) meets the
 * first card before any other here too, so a transaction holding the
 * first card and wanting another waits instead of deadlocking.  A change
 * that ends other cards of the PAN locks them after (end_same_pan, from
 * the audit trigger), in the chain's order.  The rows are read by their
 * keys (keyread.c): the statement that did it (a join of the card and its
 * first card, the account's lock in a subplan, the row locks above) cost
 * more to start than the reads themselves.
 */
bool
card_lock(Datum card_id, CardLocked *locked)
{
	CardKeyRead card;
	CardKeyRead first;
	CardKeyRead account;
	Datum		first_id;
	Datum		account_id;
	bool		isnull;
	bool		found;

	card_key_read_begin(&card_by_id, &card, true, NULL);
	card_key_read_begin(&card_by_id, &first, true, &card);
	card_key_read_begin(&account_by_id, &account, true, &card);
	found = card_key_read(&card, &card_id) &&
		card_programme_visible(DatumGetUUIDP(card_key_column(&card, LOCKED_PROGRAMME_ID,
															 &isnull)));
	if (found)
	{
		account_id = card_key_column(&card, LOCKED_ACCOUNT_ID, &isnull);
		first_id = first_card_of(&card, card_id);
		found = card_key_read(&account, &account_id) &&
			card_key_lock(&account, &account_id, LockTupleNoKeyExclusive);
	}
	/* The first card, unless it is this one: its lock serialises the chain. */
	if (found && !DatumGetBool(DirectFunctionCall2(uuid_eq, first_id, card_id)))
		found = card_key_read(&first, &first_id) &&
			card_key_lock(&first, &first_id, LockTupleNoKeyExclusive);
	/*
	 * The card, as locked: a newer version (READ COMMITTED) is judged again,
	 * as the statement's EvalPlanQual did.
	 */
	found = found && card_key_lock(&card, &card_id, LockTupleNoKeyExclusive) &&
		card_programme_visible(DatumGetUUIDP(card_key_column(&card, LOCKED_PROGRAMME_ID,
															 &isnull))) &&
		DatumGetBool(DirectFunctionCall2(uuid_eq, first_card_of(&card, card_id), first_id));
	if (found)
	{
		Datum		expires_on = card_key_column(&card, LOCKED_EXPIRES_ON, &isnull);

		locked->programme_id = card_key_column(&card, LOCKED_PROGRAMME_ID, &isnull);
		locked->status = DatumGetCString(DirectFunctionCall1(enum_out,
															 card_key_column(&card, LOCKED_STATUS,
																			 &isnull)));
		locked->effective = card_effective_status(locked->status, DatumGetDateADT(expires_on));
	}
	card_key_read_end(&account);
	card_key_read_end(&first);
	card_key_read_end(&card);
	return found;
}

/* The row of card_id in the result of card_chain_lock(), or -1. */
int
card_chain_row(Datum card_id)
{
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		id = card_spi_datum((int) i, CHAIN_CARD_ID, &isnull);

		if (memcmp(DatumGetUUIDP(id), DatumGetUUIDP(card_id), UUID_LEN) == 0)
			return (int) i;
	}
	return -1;
}

/*
 * card.card_chain_lock(card_id uuid) RETURNS integer
 *
 * The same, for the PL/pgSQL code of the extension (controls, the
 * triggers that end cards of a PAN).
 */
PG_FUNCTION_INFO_V1(card_chain_lock_sql);
Datum
card_chain_lock_sql(PG_FUNCTION_ARGS)
{
	int			locked;

	card_require(!PG_ARGISNULL(0), "card_id");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	locked = card_chain_lock(PG_GETARG_DATUM(0));
	SPI_finish();
	PG_RETURN_INT32(locked);
}
