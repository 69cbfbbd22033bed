/*-------------------------------------------------------------------------
 *
 * facts.h
 *	  Facts of the card programme that the C code and the SQL sources both
 *	  use, each defined once, here.
 *
 * The C code includes this header (through card.h).  The SQL sources name
 * a fact as @NAME@ (a number, or a list as SQL literals) or @NAME_TEXT@ (a
 * list for messages); the build fills them in from the same definitions
 * (src/facts.c prints the substitutions), so neither side can drift.  Plain
 * C, without PostgreSQL headers, so that the build tool compiles alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CARD_FACTS_H
#define CARD_FACTS_H

/*
 * The statuses in which a card still works or can change (DESIGN.md
 * section 5); every other status is final.  In the order of the
 * card.card_status enum.
 */
#define CARD_LIVE_STATUSES "not_activated", "active", "frozen"

/* The channels a payment comes through, which controls may block. */
#define CARD_CHANNELS "ecommerce", "atm", "contactless", "chip", "magstripe"

/* The kinds of card, in the order of the card.card_type enum. */
#define CARD_TYPES "virtual", "physical"

/* Wrong PINs in a row that block a card's PIN until it is reset. */
#define CARD_PIN_TRIES 3

#endif							/* CARD_FACTS_H */
