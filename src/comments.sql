-- The reference inside psql (issue 14): a comment on every function, table,
-- view, type and column of schema card, so that \df+ card.* and
-- \d+ card.cards explain themselves.  Last of the sources: it comments on
-- objects of every file before it.  test/pgtap/95_comments.sql fails when a
-- public object has none.
--
-- Written for a DBA in psql: what an object is or does, what a function
-- returns, which of the extension's roles may call it, and the SQLSTATEs a
-- caller should expect where they matter.  "Owner only" means no role is
-- granted EXECUTE: the function is the extension's own (called by its
-- other functions or triggers) and only the owner or a superuser may call
-- it.  Amounts are bigint minor units of the account currency.  No comment
-- holds a secret, a PAN or a PIN.  The facts of src/facts.h are filled in
-- by the build as in every other source.

-- ===========================================================================
-- Schemas
-- ===========================================================================

COMMENT ON SCHEMA card IS
    'The card-issuing programme of extension card: its tables, views, types and API functions. EXECUTE and table privileges go only to the roles card_admin, card_api, card_processor, card_hosted_pages and card_reader (README.md, "Roles and privileges").';
COMMENT ON SCHEMA card_internal IS
    'Bodies of the PL/pgSQL and SQL entry points of schema card, not to be called directly: each is called by the C wrapper of the same name and signature in schema card, which checks the caller and carries the grants. No role has USAGE on it.';

-- ===========================================================================
-- Types
-- ===========================================================================

COMMENT ON TYPE card.card_status IS
    'Lifecycle status of a card: not_activated = ordered, not yet usable (a physical card is activated only through the hosted flow); active = usable; frozen = paused, may become active again; blocked = closed for good (by the API, or by the extension when a reissue is activated or the PAN is lost or stolen); lost, stolen = reported so, final, and every other live card with the same PAN is blocked; expired = past its expiry month, final. @CARD_LIVE_STATUSES_TEXT@ are live, the other four final; card.card_status_transitions() lists every move.';
COMMENT ON TYPE card.card_type IS
    'Kind of card: virtual = no plastic, activated through the hosted flow or directly by card.card_set_status; physical = a plastic card, activated only by the cardholder through the hosted activation flow. A card''s type never changes.';
COMMENT ON TYPE card.replacement_reason IS
    'Why a card replaced another (card.card_replace): lost, stolen = the PAN is compromised, so the new card gets a new PAN and the old card ends at once; damaged, expired = a reissue with the same PAN (pan_sequence + 1), a new expiry and the PIN carried, the old card working until the new one is activated, then blocked.';
COMMENT ON TYPE card.link_purpose IS
    'What a hosted-page link (card.hosted_link) is for: activation = the holder sets (or, for a reissue, confirms) the PIN and the card becomes active (card_activation_start); reveal = the hosted page shows PAN, expiry and CVV once (card_reveal_start); pin_reset = the holder sets a new PIN (card_pin_reset_start).';
COMMENT ON TYPE card.spend_interval IS
    'Window of a spending limit, a calendar window in UTC: per_authorization = caps each payment, keeps no counter; daily = from 00:00; weekly = ISO week from Monday 00:00; monthly = from the 1st; yearly = from 1 January; all_time = one window that never resets.';
COMMENT ON TYPE card.authorization_status IS
    'Where an authorisation stands: declined = refused, holds nothing; pending = approved, its hold (held) is still on the account; captured = the hold ended with a capture (any rest released); reversed = released in full by reversals; expired = released by card.authorization_expire_due after the programme''s hold_lifetime.';
COMMENT ON TYPE card.decline_reason IS
    'Why card.card_authorize declined a payment: the first check that failed, in this order: card_expired (expired, or past its expiry month); card_not_active (not activated, frozen, blocked, lost or stolen); account_not_active (frozen or closed); currency_mismatch (not the account''s currency); channel_blocked, country_blocked, category_blocked (by the card''s or the account''s controls); spending_limit (a limit of the card or the account would be exceeded); insufficient_funds (more than the available funds).';
COMMENT ON TYPE card.event_type IS
    'Type of a live feed event (card.event): card.ordered (an order, or a replacement''s new card); card.activated (not_activated to active); card.status_changed (any other real status change); card.controls_updated; card.revealed (details shown, none in the event); card.replaced (on the old card: replacement_id, reason); card.pin_blocked (the last allowed wrong PIN); card.pin_reset; authorization.approved, authorization.declined; authorization.captured, authorization.reversed, authorization.expired (also partial); account.credited.';

-- ===========================================================================
-- programme.sql
-- ===========================================================================

COMMENT ON TABLE card.programme IS
    'Card programmes: the issuer configuration (BIN, brand, PAN length, validity, link and hold lifetimes) every card is ordered under. Created by card.programme_create; a role sees only the programmes granted to it (card.programme_role, row-level security). card_admin, card_api and card_reader may read id, brand and region.';
COMMENT ON COLUMN card.programme.id IS 'Programme id.';
COMMENT ON COLUMN card.programme.name IS 'Name, 1 to 100 characters, unique in the whole database (whatever programmes the caller sees).';
COMMENT ON COLUMN card.programme.bin IS 'Bank identification number, 6 or 8 digits: the first digits of every PAN of the programme (Visa: starts with 4; Mastercard: 51-55 or 2221-2720).';
COMMENT ON COLUMN card.programme.brand IS 'Card scheme: visa or mastercard.';
COMMENT ON COLUMN card.programme.region IS 'Region, a lower-case word such as europe or north_america.';
COMMENT ON COLUMN card.programme.pan_length IS 'Digits in the programme''s PANs (default 16): one the brand issues (card.brand_pan_lengths: Mastercard 16, Visa 16 or 19), checked on creation and on every change (22023). A programme of 1.1 with another length orders no new cards (55000) until it is changed.';
COMMENT ON COLUMN card.programme.validity_years IS 'Years a new card is valid, 1 to 10 (default 3): its expiry month is this many years after the month it is ordered, unless the order gives one.';
COMMENT ON COLUMN card.programme.activation_ttl IS 'Lifetime of activation and PIN reset links, more than 0 and at most 7 days (default 30 minutes).';
COMMENT ON COLUMN card.programme.hold_lifetime IS 'How long an approved authorisation holds money before card.authorization_expire_due releases it, more than 0 and at most 31 days (default 7 days).';
COMMENT ON COLUMN card.programme.created_at IS 'When the programme was created.';

COMMENT ON FUNCTION card.programme_create(text, text, text, text, integer, integer, interval, interval) IS
    'Creates a programme and returns its id; one created by a non-superuser is granted to that role at once, one created by a superuser to nobody until card.programme_grant. card_admin. 22023 bad BIN, brand, region, PAN length (with a hint naming the brand''s lengths), validity or lifetime; 23505 name taken; 42501 acting as a shared role (SET ROLE card_admin).';
COMMENT ON FUNCTION card.brand_pan_lengths(text) IS
    'The PAN lengths a brand issues (visa {16,19}, mastercard {16}; NULL for an unknown brand): the one statement of the rule that programme_create, the programme trigger, card_order and card_replace read. Owner only.';
COMMENT ON FUNCTION card.brand_pan_lengths_hint(text) IS
    'The hint of every refusal of a PAN length, naming the lengths the brand issues ("A visa PAN has 16 or 19 digits."). Owner only.';
COMMENT ON FUNCTION card.programme_pan_length_guard() IS
    'Trigger function of programme_pan_length_guard (BEFORE UPDATE OF brand, pan_length ON card.programme): a change must leave a PAN length the brand issues, else 22023. Inserts are not checked, so a restore reloads programmes as they were.';

-- ===========================================================================
-- tenancy.sql
-- ===========================================================================

COMMENT ON TABLE card.programme_role IS
    'Which roles see which programme (card.programme_grant, card.programme_revoke): a role sees a programme granted to it or to a role whose privileges it has. Every role of the extension may read its own grants (programme_id, role_name); a change makes every backend forget the visibility it keeps (trigger programme_role_changed).';
COMMENT ON COLUMN card.programme_role.programme_id IS 'The programme granted.';
COMMENT ON COLUMN card.programme_role.role_name IS 'The role it is granted to, kept by name (not OID) so that grants survive pg_dump into another cluster: a renamed role must be granted again, and a new role with a dropped role''s name inherits its programmes.';
COMMENT ON COLUMN card.programme_role.granted_at IS 'When the grant was made.';

COMMENT ON FUNCTION card.caller() IS
    'The role the current entry point acts for: the role PostgreSQL says is acting when it is called (the login role, a SET ROLE, or the owner of a SECURITY DEFINER function calling in), never the extension''s owner. All five roles (a policy helper).';
COMMENT ON FUNCTION card.caller_sees_all() IS
    'Whether the caller is a superuser or a BYPASSRLS role, which see every programme. All five roles (a policy helper).';
COMMENT ON FUNCTION card.caller_has_role(name) IS
    'Whether the caller has the privileges of a role (is it, or inherits it through memberships its side agreed to); false for a role that does not exist. All five roles (a policy helper).';
COMMENT ON FUNCTION card.programme_visible(uuid) IS
    'Whether the caller sees a programme (sees all, or holds a role it is granted to): the check of every function that looks a row up. Kept per backend until a grant or a role membership changes. All five roles (a policy helper).';
COMMENT ON FUNCTION card.visible_programmes() IS
    'The programmes granted to the caller or to roles whose privileges it has, for the row-level security policies ("programme_id IN (SELECT card.visible_programmes())"). All five roles (a policy helper).';
COMMENT ON FUNCTION card.programme_role_changed() IS
    'Trigger function of programme_role_changed and programme_role_truncated on card.programme_role (enabled ALWAYS): makes every backend forget the programmes it keeps as visible.';
COMMENT ON FUNCTION card.programme_grant(uuid, name) IS
    'Lets a role (and every role with its privileges) see and change a programme; true if the grant is new. card_admin. A caller who does not see all may grant only to itself or a role it holds WITH ADMIN OPTION, never to a capability or pg_* role (42501); P0002 programme not visible; 42704 no such role.';
COMMENT ON FUNCTION card.programme_revoke(uuid, name) IS
    'Takes a programme grant back; true if there was one (the caller may revoke its own last grant; a dropped role''s grant is still taken back). card_admin. P0002 programme not visible; 42704 no such role (and no grant to it).';
COMMENT ON FUNCTION card.role_is_shared(name) IS
    'Whether a role is shared by every tenant (a capability role card_* or a predefined pg_* role), to which only a superuser grants a programme and as which no one creates a programme or consumer. Owner only.';

-- ===========================================================================
-- account.sql
-- ===========================================================================

COMMENT ON TABLE card.individual IS
    'Cardholders, each in one programme (card.individual_create). card_admin, card_api and card_reader may read it, as card.individuals shows it; row-level security: rows of the caller''s programmes only.';
COMMENT ON COLUMN card.individual.id IS 'Individual id.';
COMMENT ON COLUMN card.individual.programme_id IS 'The programme the individual belongs to.';
COMMENT ON COLUMN card.individual.name IS 'Name, 1 to 200 characters.';
COMMENT ON COLUMN card.individual.created_at IS 'When the individual was created.';

COMMENT ON TABLE card.account IS
    'Accounts cards spend from: holder, currency, status, posted balance and held funds, and the account''s spend controls. Invariant (constraint account_held_covered): 0 <= held <= balance, so available funds never go below zero. card_admin, card_api and card_reader may read id, programme_id, currency, balance and held; read balances through card.balances.';
COMMENT ON COLUMN card.account.id IS 'Account id.';
COMMENT ON COLUMN card.account.programme_id IS 'The programme of the account (that of its holder and its cards).';
COMMENT ON COLUMN card.account.individual_id IS 'The account''s holder (also in card.account_member as holder).';
COMMENT ON COLUMN card.account.currency IS 'ISO 4217 code (3 upper-case letters): the currency of every amount of the account; payments in another one are declined (currency_mismatch).';
COMMENT ON COLUMN card.account.status IS 'active, frozen or closed. A frozen or closed account declines authorisations (account_not_active); cards are ordered and replaced only on an active account; a closed one refuses credits (55000).';
COMMENT ON COLUMN card.account.balance IS 'Posted money, bigint minor units (cents for EUR): credits add to it, captures take from it.';
COMMENT ON COLUMN card.account.held IS 'Sum of the pending holds of approved authorisations, bigint minor units; available = balance - held.';
COMMENT ON COLUMN card.account.controls IS 'The account''s spend controls as set by card.account_set_controls (JSON: spending_limits, allowed/blocked categories and countries, channels); {} when none. Its limits are rows of card.spend_limit.';
COMMENT ON COLUMN card.account.mcc_allowed IS 'allowed_categories of the controls as MCC ranges, read by card_authorize; NULL when there is no allow list.';
COMMENT ON COLUMN card.account.mcc_blocked IS 'blocked_categories of the controls as MCC ranges; NULL when none are blocked.';
COMMENT ON COLUMN card.account.countries_allowed IS 'allowed_countries of the controls (ISO 3166 alpha-2); NULL when there is no allow list.';
COMMENT ON COLUMN card.account.countries_blocked IS 'blocked_countries of the controls (ISO 3166 alpha-2); NULL when none are blocked.';
COMMENT ON COLUMN card.account.channels_blocked IS 'Channels the controls set to false (of @CARD_CHANNELS_TEXT@); empty when none is blocked.';
COMMENT ON COLUMN card.account.created_at IS 'When the account was opened.';

COMMENT ON TABLE card.account_member IS
    'Who may hold cards on an account: its holder and its authorised users (card.account_member_add). card_order refuses a cardholder who is not a member (22023).';
COMMENT ON COLUMN card.account_member.account_id IS 'The account.';
COMMENT ON COLUMN card.account_member.individual_id IS 'The member.';
COMMENT ON COLUMN card.account_member.programme_id IS 'The programme of both (their foreign keys make them agree), for row-level security.';
COMMENT ON COLUMN card.account_member.role IS 'holder (added by card.account_open) or authorised (added by card.account_member_add).';
COMMENT ON COLUMN card.account_member.added_at IS 'When the member was added.';

COMMENT ON TABLE card.account_credit IS
    'Credits to accounts (card.account_credit), one per (account_id, reference): a repeat with the same amount credits nothing.';
COMMENT ON COLUMN card.account_credit.account_id IS 'The account credited.';
COMMENT ON COLUMN card.account_credit.reference IS 'The caller''s reference of the credit, 1 to 200 characters, unique per account.';
COMMENT ON COLUMN card.account_credit.amount IS 'Amount credited, positive, bigint minor units of the account currency.';
COMMENT ON COLUMN card.account_credit.credited_at IS 'When the credit was made.';

COMMENT ON VIEW card.balances IS
    'Balances of the accounts the querying role sees (security_invoker: row-level security applies). Readable by card_admin, card_api and card_reader.';
COMMENT ON COLUMN card.balances.account_id IS 'Account id.';
COMMENT ON COLUMN card.balances.currency IS 'ISO 4217 currency of the amounts.';
COMMENT ON COLUMN card.balances.balance IS 'Posted money, bigint minor units.';
COMMENT ON COLUMN card.balances.held IS 'Sum of pending holds, bigint minor units.';
COMMENT ON COLUMN card.balances.available IS 'balance - held: what authorisations may still hold, bigint minor units, never below zero.';

COMMENT ON FUNCTION card.individual_create(uuid, text) IS
    'Creates a cardholder in a programme the caller sees; returns its id. card_admin. P0002 programme not visible; 22023 name not 1 to 200 characters; 23502 missing argument.';
COMMENT ON FUNCTION card.individual_create(jsonb) IS
    'POST /v3/individuals: {"programme_id", "name"} gives {"id"}; otherwise as individual_create(uuid, text). card_admin. 22023 unknown or mistyped field.';
COMMENT ON FUNCTION card.account_open(uuid, uuid, text) IS
    'Opens an account (currency default EUR) held by an individual of the programme, who becomes its holder member; returns its id. card_admin. P0002 programme or individual not visible; 22023 bad currency or individual of another programme.';
COMMENT ON FUNCTION card.account_open(jsonb) IS
    'POST /v3/accounts: {"programme_id", "individual_id", "currency"?} gives the account as card.account_get shows it. card_admin. 22023 unknown or mistyped field.';
COMMENT ON FUNCTION card.account_member_add(uuid, uuid) IS
    'Adds an individual as an authorised user of an account (nothing if already a member), so that cards may be ordered for it. card_admin. P0002 account or individual not visible; 22023 different programmes.';
COMMENT ON FUNCTION card.account_credit(uuid, bigint, text) IS
    'Funds an account once per reference and returns (balance, held, available) in minor units; a repeat with the same amount returns the balances and credits nothing. card_admin, card_api. 23505 reference used with another amount; 55000 account closed; 22023 amount not positive or balance overflow; P0002.';
COMMENT ON FUNCTION card.account_credit(uuid, jsonb) IS
    'POST /v3/accounts/:id/credits: {"amount", "reference"} gives {"balance", "held", "available"}; otherwise as account_credit(uuid, bigint, text). card_admin, card_api.';
COMMENT ON FUNCTION card.account_get(uuid) IS
    'GET /v3/accounts/:id: the account as JSON (id, programme_id, individual_id, currency, status, balance, held, available, controls, created_at). card_admin, card_api, card_reader. P0002 if the caller does not see it.';

-- ===========================================================================
-- status.sql
-- ===========================================================================

COMMENT ON FUNCTION card.effective_status(card.card_status, date) IS
    'The status a card really has: expired for a live card whose expiry month has ended (expires_on today or earlier, UTC), else the stored status; card.cards shows it. All five roles.';
COMMENT ON FUNCTION card.card_status_guard() IS
    'Trigger function of card_status_guard (BEFORE UPDATE OF status, type, exp_month, exp_year ON card.card): judges each status change by the transition table against the locked row, and refuses a change of type or of an ended card''s expiry (55000), whoever writes.';
COMMENT ON FUNCTION card.card_status_audit() IS
    'Trigger function of card_status_audit (AFTER UPDATE OF status ON card.card): writes the audit row and event of a status change that card_set_status did not record itself (a direct UPDATE is recorded with channel operator, reason "direct update"); then, for a card become lost or stolen, or a reissue (damaged, expired) activated, blocks every other live card with its PAN (card.end_same_pan).';
COMMENT ON FUNCTION card.card_status_transitions() IS
    'The lifecycle table the trigger enforces, from the same C array: 49 rows (from_status, to_status, rule, who_may), rules no-op, allowed, activation, forbidden, terminal. card_admin, card_api, card_reader.';

-- ===========================================================================
-- validate.sql
-- ===========================================================================

COMMENT ON FUNCTION card.json_text_field(jsonb, text) IS
    'A string field of a JSON request; NULL when absent or null; 22023 when not a string. Owner only (the JSON forms).';
COMMENT ON FUNCTION card.json_uuid_field(jsonb, text) IS
    'A UUID field of a JSON request; NULL when absent or null; 22023 when not a UUID string. Owner only (the JSON forms).';
COMMENT ON FUNCTION card.json_bigint_field(jsonb, text) IS
    'A whole-number field of a JSON request within bigint (amounts in minor units); NULL when absent or null; 22023 otherwise. Owner only (the JSON forms).';
COMMENT ON FUNCTION card.json_check_fields(jsonb, text, text[]) IS
    'Refuses (22023) a request that is not a JSON object or has a field outside the allowed list, naming it. Owner only (the JSON forms).';

-- ===========================================================================
-- order.sql
-- ===========================================================================

COMMENT ON TABLE card.card IS
    'One row per card: the public fields of the API, the replacement chain, the spend controls, and secrets that are never in clear (encrypted PAN, its fingerprint, PIN hash), readable by no role. Status, type and expiry changes are judged by the trigger card_status_guard. card_admin, card_api and card_reader may read the public columns; read cards through card.cards.';
COMMENT ON COLUMN card.card.id IS 'Card id.';
COMMENT ON COLUMN card.card.programme_id IS 'The programme the card was issued under (that of its account).';
COMMENT ON COLUMN card.card.account_id IS 'The account the card spends from.';
COMMENT ON COLUMN card.card.individual_id IS 'The cardholder: the holder or an authorised user of the account.';
COMMENT ON COLUMN card.card.display_name IS 'Name shown on the card, 1 to 100 characters, no control characters.';
COMMENT ON COLUMN card.card.type IS 'virtual or physical (card.card_type); never changes.';
COMMENT ON COLUMN card.card.status IS 'Status as stored (card.card_status). A live card past its expiry month is expired for every purpose before the sweep records it: read card.effective_status(status, expires_on), as card.cards does.';
COMMENT ON COLUMN card.card.exp_month IS 'Expiry month, two digits 01 to 12. The card is valid through the last day of that month (UTC).';
COMMENT ON COLUMN card.card.exp_year IS 'Expiry year, four digits.';
COMMENT ON COLUMN card.card.expires_on IS 'Generated: the first day (UTC) after the expiry month, from which the card is expired.';
COMMENT ON COLUMN card.card.expiry_due IS 'Generated: expires_on while the card is live (not_activated, active, frozen), NULL once it has ended; the key of card.card_expire_due''s index, which a status change between live statuses leaves alone so that the row is updated in place.';
COMMENT ON COLUMN card.card.last4 IS 'The last four digits of the PAN, the only part of it kept in clear.';
COMMENT ON COLUMN card.card.token IS 'The processor-facing token: ct_ then 18 random bytes in base64url, unique, unrelated to the PAN. Readable by no role; card_api gets it through card.card_token.';
COMMENT ON COLUMN card.card.pan_ciphertext IS 'Secret: the PAN, never in clear, AES-256-GCM encrypted (random 96-bit IV, 128-bit tag, the card id as associated data) under the key of version pan_key_version. Readable by no role; decrypted only inside the server.';
COMMENT ON COLUMN card.card.pan_key_version IS 'Version of the key-file key that encrypts pan_ciphertext; new cards take the newest, card.rotate_keys moves older ones to it.';
COMMENT ON COLUMN card.card.pan_fingerprint IS 'Secret: HMAC-SHA-256 of the PAN under the MAC key, never the PAN. With pan_sequence unique (card_pan_unique), so no PAN is issued twice in the database.';
COMMENT ON COLUMN card.card.pin_hash IS 'Secret: the PIN as HMAC-SHA-256 under the MAC key over the chain''s first card id and the PIN, never in clear; NULL until set at activation. Shared by the cards of a chain.';
COMMENT ON COLUMN card.card.idempotency_key IS 'The idempotency key of the order, unique per programme: an order with a key the programme has seen returns this card; NULL when none was given.';
COMMENT ON COLUMN card.card.order_request_hash IS 'Keyed hash (HMAC-SHA-256) of the order parameters sent with idempotency_key, so that reusing the key for another order is refused (23505); NULL without a key.';
COMMENT ON COLUMN card.card.replacement_for IS 'The card this card replaced (card.card_replace); NULL for a card that was ordered.';
COMMENT ON COLUMN card.card.controls IS 'Spend controls as set by card.card_set_controls (the same on every card of the chain); {} when none. The limits are rows of card.spend_limit.';
COMMENT ON COLUMN card.card.mcc_allowed IS 'allowed_categories of the controls as MCC ranges, read by card_authorize; NULL when there is no allow list.';
COMMENT ON COLUMN card.card.mcc_blocked IS 'blocked_categories of the controls as MCC ranges; NULL when none are blocked.';
COMMENT ON COLUMN card.card.countries_allowed IS 'allowed_countries of the controls (ISO 3166 alpha-2); NULL when there is no allow list.';
COMMENT ON COLUMN card.card.countries_blocked IS 'blocked_countries of the controls (ISO 3166 alpha-2); NULL when none are blocked.';
COMMENT ON COLUMN card.card.channels_blocked IS 'Channels the controls set to false (of @CARD_CHANNELS_TEXT@); empty when none is blocked.';
COMMENT ON COLUMN card.card.created_at IS 'When the card was ordered.';
COMMENT ON COLUMN card.card.replacement_reason IS 'Why this card replaced replacement_for (card.replacement_reason); NULL for a card that was ordered.';
COMMENT ON COLUMN card.card.chain_id IS 'The first card of this card''s replacement chain; NULL on that first card. The chain''s limits, PIN and PIN tries are keyed by card.chain_of(id, chain_id).';
COMMENT ON COLUMN card.card.pan_sequence IS 'Tells apart the cards of one PAN: 0 for the first, plus 1 for each reissue that keeps it.';
COMMENT ON COLUMN card.card.pin_tries IS 'Wrong PIN tries in a row, counted on the chain''s first card only; at @CARD_PIN_TRIES@ the PIN is blocked until reset; a right PIN clears it.';

COMMENT ON VIEW card.cards IS
    'A card as the API returns it (the JSON response of /v3/cards), nothing secret, with its effective status. security_invoker: the querying role''s row-level security applies, so it shows the cards of its programmes. Readable by card_admin, card_api and card_reader.';
COMMENT ON COLUMN card.cards.id IS 'Card id.';
COMMENT ON COLUMN card.cards.display_name IS 'Name shown on the card.';
COMMENT ON COLUMN card.cards.type IS 'virtual or physical.';
COMMENT ON COLUMN card.cards.brand IS 'Card scheme of the programme: visa or mastercard.';
COMMENT ON COLUMN card.cards.region IS 'Region of the programme.';
COMMENT ON COLUMN card.cards.exp_month IS 'Expiry month, two digits.';
COMMENT ON COLUMN card.cards.exp_year IS 'Expiry year, four digits.';
COMMENT ON COLUMN card.cards.last4 IS 'Last four digits of the PAN.';
COMMENT ON COLUMN card.cards.currency IS 'ISO 4217 currency of the card''s account.';
COMMENT ON COLUMN card.cards.account_id IS 'The account the card spends from.';
COMMENT ON COLUMN card.cards.individual_id IS 'The cardholder.';
COMMENT ON COLUMN card.cards.status IS 'Effective status (card.effective_status): expired once the expiry month has ended, even before card.card_expire_due records it.';

COMMENT ON FUNCTION card.card_order(uuid, uuid, text, text, text, card.card_type, text) IS
    'Orders a card (not_activated) for a member of an account, with a new PAN under the account''s programme; NULL expiry = the programme''s validity from this month. Returns it as card.cards shows it; a known idempotency_key returns the first card and orders nothing. card_api. 22023 bad field; P0002 account or individual not visible; 55000 account not active, or a PAN length the brand no longer issues; 23505 key reused with other parameters; 54000 BIN range exhausted.';
COMMENT ON FUNCTION card.card_order(jsonb) IS
    'POST /v3/cards: the request body (individual_id, account_id, display_name, exp_month?, exp_year?, type?, idempotency_key?) gives the card as JSON; otherwise as the typed card_order. card_api. 22023 unknown or mistyped field.';
COMMENT ON FUNCTION card.card_token(uuid) IS
    'The processor-facing token of a card (what card_authorize and card_pin_check take). card_api. P0002 if the caller does not see the card.';
COMMENT ON FUNCTION card.card_get(uuid) IS
    'GET /v3/cards/:id: the card as card.cards shows it, as JSON. card_admin, card_api, card_reader. P0002 if the caller does not see it.';

-- ===========================================================================
-- pan.sql
-- ===========================================================================

COMMENT ON FUNCTION card.pan_check(uuid) IS
    'Integrity check of a stored PAN, decrypted inside the server and never returned: its length and whether it passes Luhn, starts with the BIN, ends with last4 and matches its fingerprint. card_admin. P0002 card not visible; 55000 no key file; F0000 key version missing.';

-- ===========================================================================
-- lifecycle.sql
-- ===========================================================================

COMMENT ON TABLE card.card_status_change IS
    'The audit trail: one row per real status change of a card, the first when it is ordered, written in the transaction of the change (a no-op writes none). card_admin, card_api and card_reader may read it, as card.status_history shows it; row-level security: rows of the cards the caller sees.';
COMMENT ON COLUMN card.card_status_change.id IS 'Identity: the order in which the changes were made.';
COMMENT ON COLUMN card.card_status_change.card_id IS 'The card.';
COMMENT ON COLUMN card.card_status_change.from_status IS 'Status before the change; NULL for the row written when the card was ordered.';
COMMENT ON COLUMN card.card_status_change.to_status IS 'Status after the change.';
COMMENT ON COLUMN card.card_status_change.reason IS 'The caller''s reason, or the extension''s: ordered, replacement (reason), direct update, replaced by card ..., PAN lost or stolen with card ...; may be NULL.';
COMMENT ON COLUMN card.card_status_change.channel IS 'Who asked for it: api, holder, operator, system or fraud, as the caller said; a direct UPDATE is recorded as operator, the extension''s own changes as system.';
COMMENT ON COLUMN card.card_status_change.actor IS 'The role that made the change (card.caller(): the login role or SET ROLE), never the extension''s owner.';
COMMENT ON COLUMN card.card_status_change.changed_at IS 'Clock time of the change itself (not its transaction''s start), so that the order of a card''s rows by time agrees with its statuses.';

COMMENT ON FUNCTION card.card_set_status(uuid, card.card_status, text, text) IS
    'A lifecycle move of a card (its chain locked in order), with its audit row and event; setting the status the card has is a silent no-op. Returns the card as card.cards shows it. card_api. 55000 a move the lifecycle forbids (a physical card''s activation, anything from a final status); 22023 bad channel (api, holder, operator, system, fraud) or reason over 500 bytes; P0002.';
COMMENT ON FUNCTION card.card_expire_due(date) IS
    'The expiry sweep: records as expired every live card of the caller''s programmes whose expiry month ended before as_of (default today, UTC); returns how many. card_admin; run it daily. 22023 as_of after today (UTC).';
COMMENT ON FUNCTION card.card_update(uuid, jsonb) IS
    'PATCH /v3/cards/:id: {"status": active, frozen, block (or blocked), lost or stolen, "reason"?, "channel"?} calls card_set_status and returns the card; {"return_url"} calls card_activation_start and returns {"redirect_url", "expires_at"}. card_api. 22023 both or an unknown field; 23502 neither.';

-- ===========================================================================
-- chain.sql
-- ===========================================================================

COMMENT ON FUNCTION card.chain_of(uuid, uuid) IS
    'The card whose id keys a card''s replacement chain (its limits, PIN and tries): chain_id, or the card itself when it is the first. Owner only.';
COMMENT ON FUNCTION card.card_chain_lock(uuid) IS
    'Locks a card''s account, then every card of its chain in the one lock order (first card, this card, the rest by id); returns how many cards (0: not visible). Owner only (the PL/pgSQL writers of a chain; the C entry points take it themselves).';

-- ===========================================================================
-- link.sql
-- ===========================================================================

COMMENT ON TABLE card.hosted_link IS
    'Links to the hosted pages (activation, reveal, PIN reset): single use, short lived, a newer link of the same purpose supersedes an unused one. The one-time token is kept only as a keyed hash. Readable by no capability role.';
COMMENT ON COLUMN card.hosted_link.token_hash IS 'Secret: HMAC-SHA-256 of the link''s one-time token under the MAC key; the token itself is never stored (only the redirect URL carries it).';
COMMENT ON COLUMN card.hosted_link.card_id IS 'The card the link is for.';
COMMENT ON COLUMN card.hosted_link.return_url IS 'Where the hosted page sends the holder back (absolute https URL).';
COMMENT ON COLUMN card.hosted_link.created_at IS 'When the link was issued.';
COMMENT ON COLUMN card.hosted_link.expires_at IS 'When the link stops working: the programme''s activation_ttl after issue for activation and PIN reset, five minutes for reveal.';
COMMENT ON COLUMN card.hosted_link.consumed_at IS 'When the link was used or superseded; NULL while it may still be used.';
COMMENT ON COLUMN card.hosted_link.outcome IS 'completed (used) or superseded (by a newer link of the same purpose); NULL while unused.';
COMMENT ON COLUMN card.hosted_link.purpose IS 'activation, reveal or pin_reset (card.link_purpose).';

-- ===========================================================================
-- activation.sql
-- ===========================================================================

COMMENT ON FUNCTION card.card_activation_start(uuid, text) IS
    'A single-use link to the hosted activation page for a not_activated card: returns redirect_url (card.hosted_pages_url/activate?token=act_...) and expires_at (the programme''s activation_ttl); supersedes any unused earlier link. card_api. 55000 card already active or ended; 22023 return_url not absolute https; P0002.';
COMMENT ON FUNCTION card.card_activation_complete(text, text) IS
    'Called by the hosted page with the link''s token and the PIN: sets the PIN (or, for a reissue, checks the PIN it carries, counting the try) and activates the card; returns card_id, status, return_url, pin_tries_left. A wrong carried PIN leaves the card not_activated and the link usable. card_hosted_pages. 22023 malformed token or PIN; P0002 unknown token; 55000 link used, superseded or expired, or PIN blocked; 55P03, 53400, 40001 retry.';

-- ===========================================================================
-- reveal.sql
-- ===========================================================================

COMMENT ON FUNCTION card.card_reveal_start(uuid, text) IS
    'A single-use, five-minute link to the hosted reveal page: returns redirect_url (card.hosted_pages_url/reveal?token=rvl_...) and expires_at. card_api. 55000 card ended (blocked, lost, stolen, expired); 22023 return_url not absolute https; P0002.';
COMMENT ON FUNCTION card.card_reveal_start(uuid, jsonb) IS
    'POST /v3/cards/:id/reveal: {"return_url"} gives {"redirect_url", "expires_at"}; otherwise as card_reveal_start(uuid, text). Pass the body as jsonb: a bare literal resolves to the text form. card_api.';
COMMENT ON FUNCTION card.card_reveal(text) IS
    'Called by the hosted page, once per reveal link: returns the card''s PAN, exp_month, exp_year and CVV (derived, never stored), the only way a PAN leaves the database; writes a card.revealed event without them. card_hosted_pages only. 55000 link used, superseded or expired, or card ended; P0002 unknown token; 22023 malformed token.';

-- ===========================================================================
-- replace.sql
-- ===========================================================================

COMMENT ON FUNCTION card.card_replace(uuid, text) IS
    'Replaces a card: lost or stolen (new PAN, the old card ends now) or damaged or expired (same PAN, new expiry, PIN carried, the old card blocked once the new one is activated). Returns the new card, not_activated, as card.cards shows it; the same reason again returns the first replacement. card_api. 22023 bad reason; 55000 card state or account not active; P0002; 54000.';
COMMENT ON FUNCTION card.card_replace(uuid, jsonb) IS
    'POST /v3/cards/:id/replace: {"reason"} gives the new card as JSON; otherwise as card_replace(uuid, text). Pass the body as jsonb: a bare literal resolves to the text form. card_api.';
COMMENT ON FUNCTION card.end_same_pan(uuid, text) IS
    'Blocks (channel system) every other live card that carries a card''s PAN, in the chain''s lock order; returns how many. Owner only (the audit trigger card_status_audit calls it).';

-- ===========================================================================
-- pin.sql
-- ===========================================================================

COMMENT ON TABLE card.pin_check IS
    'Verdicts of the processor''s PIN checks, between card.card_pin_check (which counts the try and writes the row) and card.card_pin_result (which reads it once and deletes it); unread rows are dropped after ten minutes. Readable by no capability role.';
COMMENT ON COLUMN card.pin_check.id IS 'The check id card.card_pin_check returned.';
COMMENT ON COLUMN card.pin_check.card_id IS 'The card whose token was checked.';
COMMENT ON COLUMN card.pin_check.verified IS 'Whether the PIN was right (false without a compare when the PIN was already blocked).';
COMMENT ON COLUMN card.pin_check.tries_left IS 'Wrong tries left after this check, 0 to @CARD_PIN_TRIES@.';
COMMENT ON COLUMN card.pin_check.used_last_try IS 'This try reached the limit: reading its wrong verdict writes card.pin_blocked.';
COMMENT ON COLUMN card.pin_check.checked_at IS 'When the check was made.';

COMMENT ON FUNCTION card.card_pin_check(text, text) IS
    'The processor''s PIN check, step one: by card token, counts the try (every try, right or wrong), keeps the verdict and returns only a check id; commit, then read card_pin_result. @CARD_PIN_TRIES@ wrong PINs in a row block the PIN. card_processor. 22023 malformed PIN; P0002 unknown token; 55000 card has no PIN or has ended.';
COMMENT ON FUNCTION card.card_pin_result(uuid) IS
    'Step two of a PIN check, in a later transaction: returns verified and tries_left once (a right PIN clears the count). card_processor. 55000 check made in this transaction (not committed); P0002 unknown, already read or dropped.';
COMMENT ON FUNCTION card.card_pin_reset_start(uuid, text) IS
    'A single-use link to the hosted PIN reset page for a card that has a PIN: returns redirect_url (card.hosted_pages_url/pin?token=pin_...) and expires_at (the programme''s activation_ttl). card_api. 55000 no PIN or card ended; 22023 return_url not absolute https; P0002.';
COMMENT ON FUNCTION card.card_pin_reset(text, text) IS
    'Called by the hosted page with the link''s token and a new PIN: sets it on every card of the chain, clears the tries, writes card.pin_reset; returns card_id and return_url. card_hosted_pages. 22023 malformed token or PIN; P0002 unknown token; 55000 link used, superseded or expired, or card ended.';

-- ===========================================================================
-- controls.sql
-- ===========================================================================

COMMENT ON TABLE card.spend_limit IS
    'Spending limits of a card''s chain or of an account, in the order set, each with its running spend in its current window: an authorisation reads and updates one row per applicable limit. Replaced whole by card_set_controls and account_set_controls. Readable by no capability role (see card.card_spend_status).';
COMMENT ON COLUMN card.spend_limit.id IS 'Identity.';
COMMENT ON COLUMN card.spend_limit.card_id IS 'For a card limit, the first card of the chain it belongs to; NULL for an account limit.';
COMMENT ON COLUMN card.spend_limit.account_id IS 'For an account limit, the account; NULL for a card limit.';
COMMENT ON COLUMN card.spend_limit.position IS 'Place of the limit in spending_limits as set, from 1.';
COMMENT ON COLUMN card.spend_limit.period IS 'Window of the limit (card.spend_interval).';
COMMENT ON COLUMN card.spend_limit.amount IS 'The limit, positive, bigint minor units of the account currency.';
COMMENT ON COLUMN card.spend_limit.categories IS 'MCC ranges the limit counts and applies to; NULL = every category.';
COMMENT ON COLUMN card.spend_limit.category_list IS 'The categories as they were set ("5812", "5813-5814"); NULL = every category.';
COMMENT ON COLUMN card.spend_limit.window_start IS 'Start of the window spent counts in; NULL for per_authorization. An older start means a new window, whose spend starts from 0.';
COMMENT ON COLUMN card.spend_limit.spent IS 'Approved, unreleased spend in that window, bigint minor units: authorisations add, reversals, expiries and partial captures give back.';

COMMENT ON FUNCTION card.spend_window_start(card.spend_interval, timestamp with time zone) IS
    'Start of the UTC calendar window of a limit period containing a moment (-infinity for all_time, NULL for per_authorization). Owner only.';
COMMENT ON FUNCTION card.spend_window_end(card.spend_interval, timestamp with time zone) IS
    'End of the window of a limit period that starts at window_start (NULL: never). Owner only.';
COMMENT ON FUNCTION card.controls_categories(jsonb, text) IS
    'A JSON list of categories ("5812", "5813-5814") as an int4multirange; 22023 naming the field on a bad entry. Owner only.';
COMMENT ON FUNCTION card.controls_countries(jsonb, text) IS
    'A JSON list of ISO 3166 alpha-2 countries as a text array; 22023 naming the field on a bad entry. Owner only.';
COMMENT ON FUNCTION card.controls_apply(uuid, uuid, jsonb) IS
    'Validates a controls document whole and stores it on a card''s chain or an account with its limits (under the account lock, then the chain''s), writing card.controls_updated; returns the document. Owner only (card_set_controls, account_set_controls).';
COMMENT ON FUNCTION card.card_set_controls(uuid, jsonb) IS
    'Replaces the spend controls of a card and every card of its chain ({} clears them); returns them as set. A new limit starts from the spend already in its window. card_api. 22023 invalid document, naming the field; P0002.';
COMMENT ON FUNCTION card.account_set_controls(uuid, jsonb) IS
    'Replaces the spend controls of an account ({} clears them); returns them as set. card_admin, card_api. 22023 invalid document, naming the field; P0002.';
COMMENT ON FUNCTION card.card_controls(uuid) IS
    'The spend controls of a card as set (JSON). card_api, card_reader. P0002 if the caller does not see it.';
COMMENT ON FUNCTION card.account_controls(uuid) IS
    'The spend controls of an account as set (JSON). card_admin, card_api, card_reader. P0002 if the caller does not see it.';
COMMENT ON FUNCTION card.card_spend_status(uuid) IS
    'Where each limit of a card (its chain) and of its account stands: scope, interval, amount, categories, spent and remaining in the current window (minor units), window_start, resets_at (NULL for all_time and per_authorization). card_api, card_reader. P0002.';

-- ===========================================================================
-- authorize.sql
-- ===========================================================================

COMMENT ON TABLE card."authorization" IS
    'Every authorisation decision: the payment, approved or the decline reason, and for an approval its hold; held + captured + released = amount when approved, 0 when declined. card_admin, card_api and card_reader may read it (but available_after), as card.authorizations shows it; row-level security: the caller''s programmes. No foreign keys: a hot path (src/authorize.sql).';
COMMENT ON COLUMN card."authorization".id IS 'Authorisation id, as card_authorize returned it.';
COMMENT ON COLUMN card."authorization".programme_id IS 'The programme of the card.';
COMMENT ON COLUMN card."authorization".card_id IS 'The card paid with.';
COMMENT ON COLUMN card."authorization".account_id IS 'The account of the card, which holds the money.';
COMMENT ON COLUMN card."authorization".external_id IS 'The processor''s id of the payment, unique per programme: repeated for the same card it returns the first answer, for another card 23505.';
COMMENT ON COLUMN card."authorization".amount IS 'Amount asked, positive, bigint minor units of currency.';
COMMENT ON COLUMN card."authorization".currency IS 'ISO 4217 currency of the payment.';
COMMENT ON COLUMN card."authorization".mcc IS 'Merchant category code, 4 digits.';
COMMENT ON COLUMN card."authorization".merchant_country IS 'Merchant country, ISO 3166 alpha-2.';
COMMENT ON COLUMN card."authorization".channel IS 'How the card was used: one of @CARD_CHANNELS_TEXT@.';
COMMENT ON COLUMN card."authorization".merchant_name IS 'Merchant name as the processor gave it; may be NULL.';
COMMENT ON COLUMN card."authorization".approved IS 'Whether the payment was approved.';
COMMENT ON COLUMN card."authorization".decline_reason IS 'Why it was declined (card.decline_reason); NULL when approved.';
COMMENT ON COLUMN card."authorization".status IS 'declined, or the hold''s state: pending, captured, reversed, expired (card.authorization_status).';
COMMENT ON COLUMN card."authorization".held IS 'What is still held on the account, bigint minor units; above 0 exactly while pending.';
COMMENT ON COLUMN card."authorization".captured IS 'What captures posted from the balance, bigint minor units.';
COMMENT ON COLUMN card."authorization".released IS 'What reversals, expiry or a partial capture gave back, bigint minor units.';
COMMENT ON COLUMN card."authorization".available_after IS 'The account''s available funds right after the decision, bigint minor units.';
COMMENT ON COLUMN card."authorization".created_at IS 'When the decision was made.';
COMMENT ON COLUMN card."authorization".expires_at IS 'When an approval''s hold is due to expire (created_at + the programme''s hold_lifetime); NULL for a decline.';
COMMENT ON COLUMN card."authorization".resolved_at IS 'When the hold resolved (nothing left held); NULL while pending or declined.';

COMMENT ON FUNCTION card.card_authorize(text, bigint, text, text, text, text, text, text) IS
    'Real-time authorisation by card token: approves and holds the amount, or declines with a reason (a decline is an answer, recorded, not an error); returns authorization_id, approved, decline_reason, available. The same external_id for the same card returns the first answer. card_processor. P0002 unknown token; 22023, 23502 malformed input; 23505 external_id used for another card.';
COMMENT ON FUNCTION card.card_authorize(jsonb) IS
    'POST /v3/authorizations: {card_token, amount, currency, mcc, merchant_country, channel, external_id, merchant_name?} gives {authorization_id, approved, decline_reason, available}; otherwise as the typed card_authorize. card_processor.';
COMMENT ON FUNCTION card.hold_settle(card."authorization", bigint, bigint, card.authorization_status) IS
    'Moves money out of a locked pending hold (capture from the balance, release back to available and to the limits of its windows) and writes its event. Owner only.';
COMMENT ON FUNCTION card.hold_lock(uuid, bigint, text) IS
    'Locks and returns the pending hold of a visible authorisation; P0002, 55000 not pending, 22023 amount not in 1..held. Owner only (capture, reverse).';
COMMENT ON FUNCTION card.authorization_capture(uuid, bigint) IS
    'Captures a hold: posts amount (default all that is held) from the balance and releases the rest; returns status, captured, released, held, available. card_processor. 55000 hold not pending (a hold resolves once); 22023 amount not in 1..held; P0002.';
COMMENT ON FUNCTION card.authorization_capture_request(uuid, jsonb) IS
    'POST /v3/authorizations/:id/capture: {"amount"?} (all when absent), as authorization_capture, as JSON; named apart so that a call with an untyped NULL amount is not ambiguous. card_processor.';
COMMENT ON FUNCTION card.authorization_reverse(uuid, bigint) IS
    'Releases amount (default all) of a hold back to the account; a partial reversal leaves the rest pending. Returns status, captured, released, held, available. card_processor. 55000 hold not pending; 22023 amount not in 1..held; P0002.';
COMMENT ON FUNCTION card.authorization_reverse_request(uuid, jsonb) IS
    'POST /v3/authorizations/:id/reverse: {"amount"?} (all when absent), as authorization_reverse, as JSON. card_processor.';
COMMENT ON FUNCTION card.authorization_expire_due(timestamp with time zone) IS
    'The hold sweep: releases the holds of the caller''s programmes whose expires_at is at or before as_of (default now), skipping holds being captured or reversed; returns how many. card_admin, card_processor; run it hourly. 22023 as_of in the future.';

-- ===========================================================================
-- event.sql
-- ===========================================================================

COMMENT ON SEQUENCE card.event_seq IS
    'Numbers card.event.seq, the order of the live feed; CACHE 1, so seqs are drawn in the order transactions ask. Kept by pg_dump.';
COMMENT ON TABLE card.event IS
    'The live feed: one row per change, written in the transaction of the change, never updated (55000), no secret in it. Read it with card.events_after; card.events_prune deletes old rows. card_reader may read it (row-level security: its programmes'' events).';
COMMENT ON COLUMN card.event.seq IS 'Position in the feed (card.event_seq); a gap is a transaction that rolled back, not a lost event.';
COMMENT ON COLUMN card.event.occurred_at IS 'Start time of the transaction that wrote the event.';
COMMENT ON COLUMN card.event.type IS 'What happened (card.event_type).';
COMMENT ON COLUMN card.event.card_id IS 'The card concerned; NULL for account events.';
COMMENT ON COLUMN card.event.account_id IS 'The account concerned.';
COMMENT ON COLUMN card.event.programme_id IS 'The programme, which decides who may read the event.';
COMMENT ON COLUMN card.event.data IS 'Details by type (README, "Live feed of events"): statuses, controls, amounts, last4, never a PAN, PIN, CVV, key or token.';

COMMENT ON TABLE card.event_consumer IS
    'Registered consumers of the feed and their cursors; a consumer belongs to the role that registered it. card.events_prune keeps every event a registered consumer has not acknowledged.';
COMMENT ON COLUMN card.event_consumer.name IS 'Consumer name, 1 to 100 letters, digits, ".", "_" or "-", unique per role.';
COMMENT ON COLUMN card.event_consumer.cursor IS 'The last seq the consumer acknowledged (card.consumer_ack); never moves back.';
COMMENT ON COLUMN card.event_consumer.registered_at IS 'When the consumer was registered.';
COMMENT ON COLUMN card.event_consumer.acked_at IS 'When it last acknowledged; NULL if never.';
COMMENT ON COLUMN card.event_consumer.role_name IS 'The role that owns the consumer; card_reader for consumers registered under 1.0, shared by the roles with its privileges.';

COMMENT ON FUNCTION card.event_append_only() IS
    'Trigger function of event_append_only (BEFORE UPDATE ON card.event): refuses every update (55000); events are removed only by card.events_prune.';
COMMENT ON FUNCTION card.event_emit(card.event_type, uuid, uuid, uuid, jsonb) IS
    'Writes one event in the current transaction and wakes the feed''s readers at commit; returns its seq, NULL when card.events is off. Owner only (the extension''s own functions).';
COMMENT ON FUNCTION card.events_after(bigint, integer, interval) IS
    'The feed after a cursor: up to max (1 to 10000, default 100) events of the caller''s programmes in seq order, never skipping one still in flight; with a wait (at most 1 hour), a call that finds none sleeps until an event-writing commit. card_reader. 22023 bad argument; 55000 not READ COMMITTED, on a standby, in a transaction that wrote events, or a wait without card preloaded.';
COMMENT ON FUNCTION card.consumer_register(text, bigint) IS
    'Registers a consumer of the caller''s role starting after start_after (default 0), or finds it; returns its cursor. card_reader. 42501 acting as a shared role; 22023 bad name, or start_after negative or beyond the last event.';
COMMENT ON FUNCTION card.consumer_ack(text, bigint) IS
    'Stores how far a consumer of the caller''s has read (never backwards); returns the stored cursor. card_reader. P0002 not registered; 22023 cursor beyond the last event.';
COMMENT ON FUNCTION card.consumer_unregister(text) IS
    'Removes a consumer of the caller''s. card_reader. P0002 not registered.';
COMMENT ON FUNCTION card.events_prune(timestamp with time zone) IS
    'Deletes the events of the caller''s programmes older than before that every registered consumer (of any role) has acknowledged; returns how many. Locks the consumer registry until the transaction ends: prune in a transaction of its own. card_admin.';
COMMENT ON FUNCTION card.consumer_role(text) IS
    'The role whose consumer of that name the caller works with: its own, or card_reader''s shared 1.0 consumer if it has none and holds card_reader. Owner only.';

-- ===========================================================================
-- rotate.sql
-- ===========================================================================

COMMENT ON FUNCTION card.pan_key_versions() IS
    'PANs per key version (key_version, cards) among the caller''s programmes (a superuser: the whole database): the progress of a key rotation. card_admin.';
COMMENT ON FUNCTION card.rotate_keys_batch(integer, uuid) IS
    'One batch of card.rotate_keys: re-encrypts up to batch_size PANs under older key versions with the newest, in card id order after the card after; returns rotated, key_version, done, last_id. Owner only. 22023 batch_size not in 1..100000; F0000 a key version missing from the key file.';
COMMENT ON PROCEDURE card.rotate_keys(integer) IS
    'Re-encrypts every PAN under the newest key version, committing after each batch (default 1000) and reporting progress as NOTICEs; an interrupted run keeps what it committed, and calling it again resumes. Superuser only, outside a transaction block (2D000 otherwise).';

-- ===========================================================================
-- Sequences behind identity columns
-- ===========================================================================

COMMENT ON SEQUENCE card.card_status_change_id_seq IS
    'Identity of card.card_status_change.id; registered with pg_extension_config_dump so that pg_dump keeps its value (else the first change after a restore fails with 23505).';
COMMENT ON SEQUENCE card.spend_limit_id_seq IS
    'Identity of card.spend_limit.id; kept by pg_dump.';

-- ===========================================================================
-- The views a backend reads (1.7)
-- ===========================================================================
COMMENT ON VIEW card.authorizations IS
    'Authorisation decisions of the programmes the querying role sees (security_invoker: row-level security applies), one row per card_authorize call that was not a replay: no secrets. Readable by card_admin, card_api and card_reader.';
COMMENT ON COLUMN card.authorizations.id IS 'Authorisation id, as card_authorize returned it.';
COMMENT ON COLUMN card.authorizations.card_id IS 'The card paid with.';
COMMENT ON COLUMN card.authorizations.account_id IS 'The account the money is held on.';
COMMENT ON COLUMN card.authorizations.external_id IS 'The processor''s id of the payment, unique per programme: a repeat is answered with the first decision.';
COMMENT ON COLUMN card.authorizations.amount IS 'Amount asked for, bigint minor units of currency.';
COMMENT ON COLUMN card.authorizations.currency IS 'ISO 4217 currency of the payment.';
COMMENT ON COLUMN card.authorizations.mcc IS 'Merchant category code, four digits.';
COMMENT ON COLUMN card.authorizations.merchant_country IS 'ISO 3166 alpha-2 country of the merchant.';
COMMENT ON COLUMN card.authorizations.channel IS 'Channel of the payment: @CARD_CHANNELS_TEXT@.';
COMMENT ON COLUMN card.authorizations.merchant_name IS 'Merchant name as the processor sent it, or NULL.';
COMMENT ON COLUMN card.authorizations.approved IS 'Whether the payment was approved (and held).';
COMMENT ON COLUMN card.authorizations.decline_reason IS 'Why it was declined (card.decline_reason), NULL when approved.';
COMMENT ON COLUMN card.authorizations.status IS 'declined, pending (held), captured, reversed or expired (card.authorization_status).';
COMMENT ON COLUMN card.authorizations.held IS 'Still held on the account, minor units.';
COMMENT ON COLUMN card.authorizations.captured IS 'Posted by authorization_capture, minor units.';
COMMENT ON COLUMN card.authorizations.released IS 'Released by a capture below the hold, a reversal or expiry, minor units.';
COMMENT ON COLUMN card.authorizations.created_at IS 'When it was decided.';
COMMENT ON COLUMN card.authorizations.expires_at IS 'When an uncaptured hold is released by authorization_expire_due (the programme''s hold_lifetime); NULL when declined.';
COMMENT ON COLUMN card.authorizations.resolved_at IS 'When it was captured, reversed or expired; NULL while pending or when declined.';

COMMENT ON VIEW card.status_history IS
    'The audit trail of the cards the querying role sees (security_invoker: row-level security applies): one row per status change, the first when the card was ordered. Readable by card_admin, card_api and card_reader.';
COMMENT ON COLUMN card.status_history.id IS 'The order in which the changes were made.';
COMMENT ON COLUMN card.status_history.card_id IS 'The card.';
COMMENT ON COLUMN card.status_history.from_status IS 'Status before the change; NULL for the row of the order.';
COMMENT ON COLUMN card.status_history.to_status IS 'Status after the change.';
COMMENT ON COLUMN card.status_history.reason IS 'Reason given by the caller (or ordered, replaced, expired ...), or NULL.';
COMMENT ON COLUMN card.status_history.channel IS 'Who asked: api, holder, operator, system or fraud.';
COMMENT ON COLUMN card.status_history.actor IS 'The database role that made the change (the caller, not the extension''s owner).';
COMMENT ON COLUMN card.status_history.changed_at IS 'When the change was made (clock time, not the transaction''s start).';

COMMENT ON VIEW card.individuals IS
    'Cardholders of the programmes the querying role sees (security_invoker: row-level security applies): names, no secrets. Readable by card_admin, card_api and card_reader.';
COMMENT ON COLUMN card.individuals.id IS 'Individual id, as individual_create returned it.';
COMMENT ON COLUMN card.individuals.programme_id IS 'The programme the cardholder belongs to.';
COMMENT ON COLUMN card.individuals.name IS 'The cardholder''s name, 1 to 200 characters.';
COMMENT ON COLUMN card.individuals.created_at IS 'When the cardholder was created.';

-- ===========================================================================
-- Shards (1.8)
-- ===========================================================================
COMMENT ON FUNCTION card.shard() IS
    'This server''s number among the shards of a scale-out (the setting card.shard; 0 on a single server). All five roles.';
COMMENT ON FUNCTION card.shard_of(uuid) IS
    'The shard that made an id: the number a version 8 id made on shard k > 0 carries, else 0 (every id of a single server). What a proxy routes a call by. All five roles.';
COMMENT ON FUNCTION card.shard_of_token(text) IS
    'The shard of a card or link token: k for "<prefix>k.<random>", 0 for a token without the marker or a value that is no token. All five roles.';
COMMENT ON FUNCTION card.new_id() IS
    'A new id of this shard, time-ordered (version 7 on shard 0, version 8 carrying the shard and the same time prefix elsewhere): the default id of individuals and accounts, and the form of every card id. All five roles.';
COMMENT ON FUNCTION card.programme_adopt(uuid, bytea, text, text, text, text, integer, integer, interval, interval) IS
    'Creates on this shard, with the given id, a programme shard 0 created (the scale-out proxy''s programme_create runs it on every shard), only with the programme''s seal from shard 0 (42501 otherwise) and never on shard 0 (P0002): the same checks and grant as programme_create; the same id and configuration again returns the id; another configuration under that id is 23505. card_admin.';
COMMENT ON FUNCTION card.programme_seal(uuid) IS
    'The seal of a programme the caller sees: a keyed MAC of its id and configuration, which card.programme_adopt on another shard requires (scale-out). card_admin.';
