/*-------------------------------------------------------------------------
 *
 * card.h
 *	  Declarations shared by the C sources of the card extension.
 *
 * Each src/ file owns one concept: settings (card.c), the key file
 * (keys.c), OpenSSL primitives (crypto.c), PAN generation (pan.c), the
 * lifecycle rules and their trigger (status.c), ordering (order.c),
 * status changes (lifecycle.c), activation (activation.c), input checks
 * (validate.c), prepared SPI plans (plans.c), rows read by a unique key
 * without the executor (keyread.c), authorisation (authorize.c),
 * the live feed of events (event.c) and waking its readers (wakeup.c),
 * who is calling (tenancy.c) and which
 * programmes it sees (visible.c), hosted-page
 * links (link.c), PINs (pin.c) and their durably counted tries
 * (pin_try.c), reveal of card details (reveal.c),
 * replacement and reissue (replace.c), the lock order of replacement
 * chains (chain.c) and key rotation (rotate.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CARD_H
#define CARD_H

#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "nodes/lockoptions.h"
#include "storage/lockdefs.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
#include "utils/date.h"
#include "utils/uuid.h"

#include "facts.h"

/* A kept SPI plan (plans.c). */
typedef struct CardPlan CardPlan;

/* ---- settings (card.c) ---- */
extern char *card_key_file;
extern char *card_hosted_pages_url;
extern bool card_events_enabled;
extern bool card_notify_enabled;

/* ---- key file (keys.c) ---- */
#define CARD_KEY_LEN 32			/* AES-256 and HMAC-SHA-256 key size */

extern const uint8 *card_mac_key(void);
extern const uint8 *card_enc_key(int version);
extern int	card_enc_key_newest(void);

/* ---- OpenSSL primitives (crypto.c) ---- */
#define CARD_MAC_LEN 32			/* HMAC-SHA-256 output */
#define CARD_GCM_IV_LEN 12
#define CARD_GCM_TAG_LEN 16

/* Each use of the one MAC key carries its own label (domain separation). */
#define CARD_LABEL_PAN_FINGERPRINT "card/pan-fingerprint"
#define CARD_LABEL_PIN "card/pin"
#define CARD_LABEL_ONE_TIME_TOKEN "card/one-time-token"
#define CARD_LABEL_ORDER_REQUEST "card/order-request"
#define CARD_LABEL_CVV "card/cvv"
#define CARD_LABEL_PROGRAMME_SEAL "card/programme-seal"

extern void card_random_bytes(uint8 *buf, size_t len);
extern void card_hmac(const char *label, const uint8 *data, size_t len,
					  uint8 *out);
extern bytea *card_hmac_bytea(const char *label, const uint8 *data, size_t len);
extern bytea *card_encrypt(int key_version, const pg_uuid_t *card_id,
						   const char *plaintext, size_t len);
extern char *card_decrypt(int key_version, const pg_uuid_t *card_id,
						  const bytea *sealed, size_t *len);
extern char *card_random_token(const char *prefix, int nbytes);
/* Characters of nbytes random bytes in a token (unpadded base64url). */
#define CARD_TOKEN_TEXT_LEN(nbytes) (((nbytes) * 4 + 2) / 3)

/* ---- the shard an id or token belongs to (shard.c) ---- */
#define CARD_SHARD_MAX 4095
extern int	card_shard;
extern int	card_pan_stride;
extern void card_shard_stamp(pg_uuid_t *uuid);
extern const char *card_shard_token_prefix(const char *prefix);
extern const char *card_shard_token_payload(const char *token, size_t prefix_len);
extern Datum card_time_uuid(void);

/* ---- PAN (pan.c) ---- */
#define CARD_PAN_MAX 19

/* What is stored of a PAN: never the PAN itself. */
typedef struct CardStoredPan
{
	char	   *last4;
	bytea	   *sealed;			/* AES-256-GCM, bound to the card id */
	bytea	   *fingerprint;	/* HMAC, unique per programme */
} CardStoredPan;

extern void card_pan_issue(const char *bin, int pan_length, int key_version,
						   const pg_uuid_t *card_id, CardStoredPan *out);
extern bytea *card_pan_reseal(int from_version, const pg_uuid_t *from_card,
							  const bytea *sealed, int to_version,
							  const pg_uuid_t *to_card);

/*
 * Whether a programme's brand issues its PAN length (card.brand_pan_lengths),
 * read with the row a new PAN is drawn for: a lookup that joins
 * card.programme p ends with these columns, read by card_pan_length_read
 * from the first of them.  The first is the refusal's hint, NULL when the
 * length is issued (or the brand has no rule).  A programme created under
 * 1.1 may have a length its brand does not issue; it takes no new PAN
 * (card_pan_length_refuse).
 */
#define CARD_PAN_LENGTH_COLUMNS \
	" CASE WHEN NOT p.pan_length = ANY (card.brand_pan_lengths(p.brand))" \
	"      THEN card.brand_pan_lengths_hint(p.brand) END, p.name, p.brand"

typedef struct CardPanLength
{
	char	   *hint;			/* NULL: the length is issued */
	char	   *programme_name; /* the rest only when it is not */
	char	   *brand;
} CardPanLength;

extern void card_pan_length_read(int first_column, CardPanLength *out);
extern void card_pan_length_judge(const char *programme_name, const char *brand,
								  int pan_length, CardPanLength *out);
extern void card_pan_length_refuse(const CardPanLength *length, Datum programme_id,
								   int pan_length);

/* ---- ordering (order.c) ---- */
/* A card's processor token: this prefix and 18 random bytes. */
#define CARD_TOKEN_PREFIX "ct_"
#define CARD_TOKEN_BYTES 18
/* Draws of a new PAN and token before an order or a replacement gives up. */
#define CARD_ISSUE_ATTEMPTS 16

extern void card_new_expiry(bool requested, int validity_years, char *month,
							char *year);
extern void card_audit_ordered(Datum card_id, Datum account_id, Datum programme_id,
							   const char *reason, const char *type,
							   const char *display_name, const char *month,
							   const char *year, const char *last4,
							   const char *replacement_for,
							   const char *replacement_reason);

/* ---- replacement chains (chain.c) ---- */
/* The columns of card_chain_lock()'s rows, one per card of the chain. */
enum CardChainColumn
{
	CHAIN_CARD_ID = 1,
	CHAIN_STATUS,
	CHAIN_EFFECTIVE_STATUS,
	CHAIN_PROGRAMME_ID
};

/* A card as card_lock() locked it. */
typedef struct CardLocked
{
	Datum		programme_id;
	char	   *status;			/* stored */
	const char *effective;		/* card.effective_status */
} CardLocked;

extern int	card_chain_lock(Datum card_id);
extern bool card_lock(Datum card_id, CardLocked *locked);
extern int	card_chain_row(Datum card_id);

/* ---- who is calling (tenancy.c) ---- */
extern Oid	card_caller_role(void);
extern bool card_entry_running(void);
extern bool card_entry_nested(void);
extern bool card_caller_reaches_role(Oid caller, Oid role);

/* ---- the programmes the caller sees, kept per backend (visible.c) ---- */
extern bool card_programme_visible(const pg_uuid_t *programme_id);
extern bool card_caller_sees_no_programme(void);
extern Datum card_visible_programme_array(bool *sees_all);
extern Datum card_visible_programmes_among(Datum programme_ids);
extern Datum card_entry_call(FunctionCallInfo fcinfo, PGFunction body);

/*
 * Define an SQL-callable entry point: the function PostgreSQL calls runs
 * name_body as the extension's owner, with the acting role as the caller
 * (card_entry_call).  Usage: CARD_ENTRY_POINT(card_order) { ... body ... }
 */
#define CARD_ENTRY_POINT(name) \
	static Datum name##_body(PG_FUNCTION_ARGS); \
	PG_FUNCTION_INFO_V1(name); \
	Datum \
	name(PG_FUNCTION_ARGS) \
	{ \
		return card_entry_call(fcinfo, name##_body); \
	} \
	static Datum \
	name##_body(PG_FUNCTION_ARGS)

/* ---- hosted-page links (link.c) ---- */
typedef enum CardLinkPurpose
{
	CARD_LINK_ACTIVATION,
	CARD_LINK_REVEAL,
	CARD_LINK_PIN_RESET
} CardLinkPurpose;

extern Datum card_link_start(FunctionCallInfo fcinfo, CardLinkPurpose purpose,
							 CardPlan *lock_card, void (*check) (Datum card_id),
							 int ttl_column);
extern Datum card_link_issue(CardLinkPurpose purpose, Datum card_id,
							 const char *return_url, Datum ttl, Datum *expires_at);
extern Datum card_link_open(CardLinkPurpose purpose, const char *token, Datum *hash);
extern void card_link_refuse_unknown(CardLinkPurpose purpose) pg_attribute_noreturn();
extern char *card_link_consume(CardLinkPurpose purpose, Datum hash, Datum card_id);

/* ---- PINs (pin.c); the try limit is CARD_PIN_TRIES (facts.h) ---- */
extern bytea *card_pin_hash(Datum chain_id, const char *pin);
extern bool card_pin_matches(Datum chain_id, const bytea *stored, const char *pin);
extern void card_pin_tries_clear(Datum chain_id);

/* ---- PIN tries counted in a transaction of their own (pin_try.c) ---- */
extern int	card_pin_try_count(Datum chain_id, Datum card_id, Datum account_id,
							   Datum programme_id, const bytea *given_hash);

/* ---- lifecycle rules (status.c) ---- */
/*
 * Who is making a status change.  The C entry points fill this in before
 * their UPDATE; the trigger reads it for the audit row.  A direct UPDATE
 * finds it empty and is recorded as an operator change.
 */
typedef struct CardChangeContext
{
	bool		active;			/* set by one of our functions */
	const pg_uuid_t *activating;	/* the card the hosted flow activates */
	const char *reason;
	const char *channel;
	/*
	 * The one change the calling statement records itself (card_set_status):
	 * this card, from this status to this one; NULL once the trigger met it.
	 */
	const pg_uuid_t *recorded;
	const char *recorded_from;
	const char *recorded_to;
} CardChangeContext;

extern CardChangeContext card_change_context;

extern CardChangeContext card_change_begin(const char *reason,
										   const char *channel,
										   const pg_uuid_t *activating);
extern void card_change_end(CardChangeContext previous);
extern void card_change_xact(XactEvent event, void *arg);
extern bool card_status_name_live(const char *status);
extern const char *card_effective_status(const char *status, DateADT expires_on);
extern bool card_name_compromises_pan(const char *name);
extern bool card_reason_reissues_pan(const char *reason);
extern int	card_exec_status_change(CardPlan *cp, Datum *values,
									const char *reason, const char *channel,
									const pg_uuid_t *activating);
extern char *card_status_event(const char *from, const char *to,
							   const char *reason, const char *channel,
							   const char **event_type);
extern void card_audit_insert(Datum card_id, Datum account_id,
							  Datum programme_id, const char *from,
							  const char *to, const char *reason,
							  const char *channel, const char *event_type,
							  const char *event_data);

/* ---- live feed (event.c) ---- */
extern void card_event_writer_lock(Datum programme_id);
extern void card_event_written(int64 seq, const char *type);

/* ---- waking the feed's readers (wakeup.c) ---- */
extern void card_feed_wakeup_init(void);
extern void card_feed_wakeup_at_commit(void);
extern uint64 card_feed_commits(void);
extern bool card_feed_wait(uint64 seen, TimestampTz deadline);
extern bool card_feed_cursor_settled(int64 cursor);
extern void card_event_subxact(SubXactEvent event, SubTransactionId mySubid,
							   SubTransactionId parentSubid, void *arg);
extern void card_json_text(StringInfo buf, const char *key, const char *value);

/* ---- input checks (validate.c) ---- */
extern char *card_name_list(const char *const *names, size_t count);
typedef Datum (*CardSecretWork) (FunctionCallInfo fcinfo, const char *first,
								 const char *second);

extern void card_require(bool present, const char *field);
extern void card_require_read_committed(const char *what, const char *why);
extern Datum card_with_secrets(FunctionCallInfo fcinfo, const char *first_field,
							   CardSecretWork work);
extern void card_check_https_url(const char *field, const char *url);
extern void card_check_pin(const char *pin);
extern void card_check_channel(const char *channel);
extern DateADT card_utc_today(void);
extern int	card_month_index(int year, int month);
extern int	card_utc_month_index(void);
extern char *card_uuid_string(Datum uuid);

/* ---- prepared plans (plans.c) ---- */
struct CardPlan
{
	SPIPlanPtr	plan;
	const char *sql;
	int			nargs;
	Oid			argtypes[24];
};

extern void card_plans_init(void);
extern SPIPlanPtr card_plan(CardPlan *cp);
extern int	card_exec(CardPlan *cp, Datum *values, const char *nulls,
					  bool read_only, long count);
extern char *card_spi_text(int row, int col);
extern Datum card_spi_datum(int row, int col, bool *isnull);
extern Datum card_return_card(FunctionCallInfo fcinfo, Datum card_id);
extern Datum card_return_written_card(FunctionCallInfo fcinfo);
extern void card_written_card_event(const char *event_type);

/*
 * A statement that writes a card, its audit row and its event: CTE c
 * writes the card (ending with CARD_WRITTEN_RETURNING), CTE fed its event
 * (RETURNING seq), and CARD_WRITTEN_RESULT returns the card as the view
 * card.cards (src/order.sql) shows it, which the view, read in that
 * statement, could not (it would see the row as it was before), with the
 * event's seq (card_written_card_event).
 */
#define CARD_WRITTEN_RETURNING \
	"  RETURNING id, display_name, type, programme_id, account_id, individual_id," \
	"            exp_month, exp_year, last4, status, expires_on)"
#define CARD_WRITTEN_RESULT \
	" SELECT c.id, c.display_name, c.type, p.brand, p.region, c.exp_month, c.exp_year," \
	"        c.last4, a.currency, c.account_id, c.individual_id," \
	"        card.effective_status(c.status, c.expires_on) AS status," \
	"        (SELECT seq FROM fed) AS event_seq" \
	"  FROM c JOIN card.programme p ON p.id = c.programme_id" \
	"  JOIN card.account a ON a.id = c.account_id"

/* ---- rows read by a unique key without the executor (keyread.c) ---- */
#define CARD_KEYED_COLUMNS_MAX 12
#define CARD_KEY_COLUMNS_MAX 4

/* A table read by a unique key; the names are in schema card. */
typedef struct CardKeyedTable
{
	const char *table;
	const char *index;			/* a unique index of it */
	int			nkeys;
	const char *columns[CARD_KEYED_COLUMNS_MAX + 1];	/* read; NULL-ended */
	/* resolved by name in each backend; relid invalid until then */
	Oid			relid;
	Oid			indexid;
	AttrNumber	attnums[CARD_KEYED_COLUMNS_MAX];
	AttrNumber	key_attnums[CARD_KEY_COLUMNS_MAX];
	RegProcedure key_equality[CARD_KEY_COLUMNS_MAX];
	Oid			key_collation[CARD_KEY_COLUMNS_MAX];
	bool		listed;			/* in keyread.c's list of resolved tables */
	struct CardKeyedTable *next_resolved;
} CardKeyedTable;

/* One read of a table: opened, with its snapshot and the row found. */
typedef struct CardKeyRead
{
	CardKeyedTable *table;
	Relation	rel;
	Relation	index;
	struct TupleTableSlot *slot;
	Snapshot	snapshot;
	LOCKMODE	lockmode;
} CardKeyRead;

extern void card_key_read_begin(CardKeyedTable *t, CardKeyRead *read, bool locking,
								const CardKeyRead *same_snapshot_as);
extern void card_key_read_end(CardKeyRead *read);
extern bool card_key_read(CardKeyRead *read, const Datum *keys);
extern bool card_key_lock(CardKeyRead *read, const Datum *keys, LockTupleMode mode);
extern Datum card_key_column(CardKeyRead *read, int column, bool *isnull);

#endif							/* CARD_H */
