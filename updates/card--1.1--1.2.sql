/* card--1.1--1.2.sql: security fixes of issue 10, PAN lengths per brand (issue 16) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.2'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- PAN lengths per brand (issue 16)
-- ---------------------------------------------------------------------------

-- The PAN lengths each brand issues (DESIGN.md section 3): Mastercard 16,
-- Visa 16 or 19 (13 is a legacy Visa length that checkout forms refuse).
-- The one statement of the rule, next to the BIN ranges of
-- programme_create: that function, the trigger on changes of
-- card.programme, card_order (card.programme_for_new_card) and this
-- script's report of older programmes all read it here.  An unknown brand
-- has none.
CREATE FUNCTION card.brand_pan_lengths(brand text) RETURNS integer[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE brand WHEN 'visa' THEN ARRAY[16, 19] WHEN 'mastercard' THEN ARRAY[16] END;

-- The hint of every refusal of a length: "A visa PAN has 16 or 19 digits."
CREATE FUNCTION card.brand_pan_lengths_hint(brand text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.format('A %s PAN has %s digits.', brand,
                         coalesce(pg_catalog.array_to_string(card.brand_pan_lengths(brand), ' or '), 'no'));

-- programme_create refuses a length its brand does not issue (22023), right
-- after the BIN range check.  Otherwise as in 1.1.
CREATE OR REPLACE FUNCTION card.programme_create(
    name text, bin text, brand text DEFAULT 'visa', region text DEFAULT 'europe',
    pan_length integer DEFAULT 16, validity_years integer DEFAULT 3,
    activation_ttl interval DEFAULT '30 minutes', hold_lifetime interval DEFAULT '7 days')
    RETURNS uuid
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    IF name IS NULL OR bin IS NULL OR brand IS NULL OR region IS NULL
       OR pan_length IS NULL OR validity_years IS NULL OR activation_ttl IS NULL
       OR hold_lifetime IS NULL THEN
        RAISE EXCEPTION 'programme % is required', CASE
            WHEN name IS NULL THEN 'name' WHEN bin IS NULL THEN 'bin'
            WHEN brand IS NULL THEN 'brand' WHEN region IS NULL THEN 'region'
            WHEN pan_length IS NULL THEN 'pan_length'
            WHEN validity_years IS NULL THEN 'validity_years'
            WHEN activation_ttl IS NULL THEN 'activation_ttl'
            ELSE 'hold_lifetime' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF length(name) NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION 'invalid programme name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A programme name has 1 to 100 characters.';
    END IF;
    IF bin !~ '^([0-9]{6}|[0-9]{8})$' THEN
        RAISE EXCEPTION 'invalid bin "%"', bin
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A BIN is 6 or 8 digits.';
    END IF;
    IF brand NOT IN ('visa', 'mastercard') THEN
        RAISE EXCEPTION 'invalid brand "%"', brand
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use visa or mastercard.';
    END IF;
    IF (brand = 'visa' AND bin !~ '^4')
       OR (brand = 'mastercard' AND NOT (substr(bin, 1, 2) BETWEEN '51' AND '55'
                                         OR substr(bin, 1, 4) BETWEEN '2221' AND '2720')) THEN
        RAISE EXCEPTION 'bin "%" is not a % range', bin, brand
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Visa BINs start with 4; Mastercard BINs with 51-55 or 2221-2720.';
    END IF;
    -- Every length a brand issues leaves at least 8 random digits after an
    -- 8-digit BIN, more than the 4 the table's check asks for.
    IF NOT pan_length = ANY (card.brand_pan_lengths(brand)) THEN
        RAISE EXCEPTION 'invalid pan_length % for brand %', pan_length, brand
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = card.brand_pan_lengths_hint(brand);
    END IF;
    IF region !~ '^[a-z][a-z_]{1,31}$' THEN
        RAISE EXCEPTION 'invalid region "%"', region
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A region is a lower-case word such as europe or north_america.';
    END IF;
    IF validity_years NOT BETWEEN 1 AND 10 THEN
        RAISE EXCEPTION 'invalid validity_years %', validity_years
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use 1 to 10 years.';
    END IF;
    IF activation_ttl <= interval '0' OR activation_ttl > interval '7 days' THEN
        RAISE EXCEPTION 'invalid activation_ttl %', activation_ttl
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'An activation link lives more than 0 and at most 7 days.';
    END IF;
    IF hold_lifetime <= interval '0' OR hold_lifetime > interval '31 days' THEN
        RAISE EXCEPTION 'invalid hold_lifetime %', hold_lifetime
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A hold lives more than 0 and at most 31 days.';
    END IF;
    IF NOT card.caller_sees_all() AND card.role_is_shared(card.caller()) THEN
        RAISE EXCEPTION 'a programme cannot be created acting as the shared role "%"', card.caller()
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'It would be granted to every tenant''s roles that hold it.',
                  HINT = 'Create it as your own role (RESET ROLE).';
    END IF;
    IF EXISTS (SELECT 1 FROM card.programme p WHERE p.name = programme_create.name) THEN
        RAISE EXCEPTION 'programme "%" already exists', name
            USING ERRCODE = 'unique_violation';
    END IF;

    INSERT INTO card.programme (name, bin, brand, region, pan_length, validity_years,
                                activation_ttl, hold_lifetime)
    VALUES (name, bin, brand, region, pan_length, validity_years, activation_ttl, hold_lifetime)
    RETURNING id INTO new_id;
    -- The creator's role sees it; a superuser grants it to whom it is for.
    IF NOT card.caller_sees_all() THEN
        INSERT INTO card.programme_role (programme_id, role_name) VALUES (new_id, card.caller());
    END IF;
    RETURN new_id;
END
$$;

-- Any later change of a programme's brand or PAN length, a direct UPDATE
-- by the owner included, must leave a length the brand issues (22023, the
-- same refusal as programme_create's).  A trigger rather than a table
-- check: a check added NOT VALID would still test every row a pg_dump
-- restore loads, so a database holding a programme of 1.1 with a length
-- now refused could no longer be restored; it would answer 23514 without
-- the hint; and it would refuse any change to such a programme, even a
-- new name, rather than only a change that sets a refused length.  Inserts
-- are not checked, as on card.card: programme_create checks what it
-- inserts, and a restore must reload a programme of 1.1 as it was.
CREATE FUNCTION card.programme_pan_length_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT NEW.pan_length = ANY (card.brand_pan_lengths(NEW.brand)) THEN
        RAISE EXCEPTION 'invalid pan_length % for brand %', NEW.pan_length, NEW.brand
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('Programme "%s" (%s) keeps its brand and PAN length.',
                                             OLD.name, OLD.id),
                  HINT = card.brand_pan_lengths_hint(NEW.brand);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER programme_pan_length_guard
    BEFORE UPDATE OF brand, pan_length ON card.programme
    FOR EACH ROW
    WHEN (NEW.brand IS DISTINCT FROM OLD.brand OR NEW.pan_length IS DISTINCT FROM OLD.pan_length)
    EXECUTE FUNCTION card.programme_pan_length_guard();

-- The programme a new card is issued under: card_order's INSERT passes the
-- programme's id through this (src/order.c), so a programme of 1.1 whose
-- length its brand does not issue takes no new card (55000) until its
-- length is changed.  The INSERT, not the read of the account and
-- programme, so that a retried order whose idempotency key already made
-- its card still returns that card, as before any other state check.
CREATE FUNCTION card.programme_for_new_card(programme_id uuid) RETURNS uuid
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
BEGIN
    SELECT g.name, g.brand, g.pan_length INTO p
      FROM card.programme g WHERE g.id = programme_for_new_card.programme_id;
    IF FOUND AND NOT p.pan_length = ANY (card.brand_pan_lengths(p.brand)) THEN
        RAISE EXCEPTION 'programme "%" (%) orders no new cards: its pan_length % is not one % issues',
                        p.name, programme_id, p.pan_length, p.brand
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The programme dates from before version 1.2; the cards it holds keep working.',
                  HINT = card.brand_pan_lengths_hint(p.brand)
                         || ' Change the programme''s pan_length to one of them (as the extension''s owner: UPDATE card.programme).';
    END IF;
    RETURN programme_id;
END
$$;

REVOKE ALL ON FUNCTION
    card.brand_pan_lengths(text), card.brand_pan_lengths_hint(text),
    card.programme_pan_length_guard(), card.programme_for_new_card(uuid)
    FROM PUBLIC;

-- Programmes of 1.1 with a length now refused keep their cards; each is
-- reported here, and card_order refuses new cards under it (above).
DO $$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT g.id, g.name, g.brand, g.pan_length,
               (SELECT count(*) FROM card.card c WHERE c.programme_id = g.id) AS cards
          FROM card.programme g
         WHERE NOT g.pan_length = ANY (card.brand_pan_lengths(g.brand))
         ORDER BY g.name
    LOOP
        RAISE WARNING 'programme "%" (%) has pan_length %, which % does not issue', p.name, p.id, p.pan_length, p.brand
            USING DETAIL = pg_catalog.format('Cards under it: %s.  They keep working, but card_order refuses new cards under it until its pan_length is changed.', p.cards),
                  HINT = card.brand_pan_lengths_hint(p.brand)
                         || pg_catalog.format(' As the extension''s owner: UPDATE card.programme SET pan_length = %s WHERE id = %L;',
                                              (card.brand_pan_lengths(p.brand))[1], p.id);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Security fixes (issue 10)
-- ---------------------------------------------------------------------------

-- Roles every tenant's roles may hold: the capability roles and
-- PostgreSQL's predefined roles (C: src/tenancy.c).  No one but a superuser
-- grants a programme to one, and no one creates a programme or a consumer
-- acting as one (SET ROLE card_admin would otherwise hand the new programme
-- to every tenant's admins).
CREATE FUNCTION card.role_is_shared(role_name name) RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_role_is_shared'
    LANGUAGE C STABLE PARALLEL SAFE;
REVOKE ALL ON FUNCTION card.role_is_shared(name) FROM PUBLIC;

-- A grant reaches only roles the granting tenant already controls (defect
-- 6: tenant A's admin made its cards visible to B's reader and authorisable
-- by B's processor, through B's roles or a shared group role).  A caller
-- who does not see every programme may grant only to itself or to a role
-- it holds with ADMIN OPTION (whose members it chooses), never to a role
-- that the capability roles or PostgreSQL's predefined roles are: those
-- are shared by every tenant.  Superusers (and BYPASSRLS roles) keep full
-- control.
CREATE OR REPLACE FUNCTION card.programme_grant(programme_id uuid, role name)
    RETURNS boolean
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grantee oid;
BEGIN
    IF programme_id IS NULL OR role IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN programme_id IS NULL THEN 'programme_id' ELSE 'role' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM card.programme p
                    WHERE p.id = programme_grant.programme_id AND card.programme_visible(p.id)) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT r.oid INTO grantee FROM pg_catalog.pg_roles r WHERE r.rolname = programme_grant.role;
    IF grantee IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT card.caller_sees_all() THEN
        IF card.role_is_shared(role) THEN
            RAISE EXCEPTION 'programme % cannot be granted to the shared role "%"', programme_id, role
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'Every tenant''s roles may hold it.',
                      HINT = 'Grant the programme to a role of your own, which you grant to your login roles.';
        END IF;
        IF role <> card.caller()
           AND NOT pg_catalog.pg_has_role(card.caller(), grantee, 'USAGE WITH ADMIN OPTION') THEN
            RAISE EXCEPTION 'programme % cannot be granted to role "%"', programme_id, role
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A tenant grants its programmes only to itself or to roles it holds WITH ADMIN OPTION.',
                      HINT = 'Ask a superuser, or have the role granted to you WITH ADMIN OPTION.';
        END IF;
    END IF;
    INSERT INTO card.programme_role AS g (programme_id, role_name)
    VALUES (programme_id, role)
    ON CONFLICT ON CONSTRAINT programme_role_pkey DO NOTHING;
    RETURN FOUND;
END
$$;

-- No sweep runs ahead of the calendar (defect 7): authorization_expire_due
-- with 'infinity' released every live hold.  A future as_of is refused
-- (22023), as card_expire_due refuses one.
CREATE OR REPLACE FUNCTION card.authorization_expire_due(as_of timestamptz DEFAULT now())
    RETURNS integer
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hold card."authorization";
    expired integer := 0;
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of is required' USING ERRCODE = 'not_null_violation';
    END IF;
    IF as_of > pg_catalog.now() THEN
        RAISE EXCEPTION 'as_of % is in the future', as_of
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Holds would be released before their lifetime ends.',
                  HINT = 'Omit as_of to expire what is due now.';
    END IF;
    FOR hold IN SELECT * FROM card."authorization" h
                 WHERE h.status = 'pending' AND h.expires_at <= as_of
                   AND (card.caller_sees_all() OR h.programme_id IN (SELECT card.visible_programmes()))
                 ORDER BY h.expires_at
                 FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM card.hold_settle(hold, 0, hold.held, 'expired');
        expired := expired + 1;
    END LOOP;
    RETURN expired;
END
$$;

-- A PAN is unique in the whole database (defect 8, DESIGN.md section 6):
-- two programmes sharing a BIN could issue the same PAN, as the
-- fingerprint (a keyed hash of the PAN alone) was unique per programme.
-- Cards of one PAN (a reissue) differ by pan_sequence.
DO $$
DECLARE
    shared text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%s and %s', a.id, b.id), '; ') INTO shared
      FROM card.card a JOIN card.card b
        ON b.pan_fingerprint = a.pan_fingerprint AND b.pan_sequence = a.pan_sequence AND b.id > a.id;
    IF shared IS NOT NULL THEN
        RAISE EXCEPTION 'cards of different programmes share a PAN: %', shared
            USING ERRCODE = 'unique_violation',
                  HINT = 'Replace one card of each pair (card.card_replace with reason lost), then update again.';
    END IF;
END
$$;
ALTER TABLE card.card
    DROP CONSTRAINT card_pan_unique,
    ADD CONSTRAINT card_pan_unique UNIQUE (pan_fingerprint, pan_sequence);

-- Key rotation pages by card id (issue 10, item 10): a batch without an
-- order could rescan rows (and their dead versions) already rotated.
DROP PROCEDURE card.rotate_keys(integer);
DROP FUNCTION card.rotate_keys_batch(integer);
CREATE FUNCTION card.rotate_keys_batch(batch_size integer, after uuid DEFAULT NULL,
    OUT rotated integer, OUT key_version integer, OUT done boolean, OUT last_id uuid)
    AS 'MODULE_PATHNAME', 'card_rotate_keys_batch'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;

-- Re-encrypts every PAN under the newest key version, committing after
-- each batch: no lock lives longer than a batch, an interrupted run keeps
-- what it committed, and calling it again resumes.  A procedure that
-- commits may not fix its search_path: its body names only
-- card.rotate_keys_batch, schema-qualified, and it is the superuser's alone.
CREATE PROCEDURE card.rotate_keys(batch_size integer DEFAULT 1000)
    LANGUAGE plpgsql
AS $$
DECLARE
    step record;
    rotated bigint := 0;
    after uuid;
BEGIN
    LOOP
        SELECT * INTO step FROM card.rotate_keys_batch(batch_size, after);
        COMMIT;
        rotated := rotated + step.rotated;
        after := step.last_id;
        RAISE NOTICE 'rotate_keys: % PANs re-encrypted under key version % so far%',
            rotated, step.key_version, CASE WHEN step.done THEN ', done' ELSE '' END;
        EXIT WHEN step.done IS NOT FALSE;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION card.rotate_keys_batch(integer, uuid) FROM PUBLIC;
REVOKE ALL ON PROCEDURE card.rotate_keys(integer) FROM PUBLIC;

-- One lock order for everything that touches a replacement chain (defect 5:
-- controls, replacement, reissue activation, status changes and PIN calls
-- on one chain deadlocked, 40P01): the chain's first card, then the card
-- the call is about, then the rest by id (C: src/chain.c).  Every C entry
-- point takes it first; the PL/pgSQL code that changes several cards of a
-- chain calls it here.  Whoever also locks the account locks it first, as
-- card_authorize does.
CREATE FUNCTION card.card_chain_lock(card_id uuid) RETURNS integer
    AS 'MODULE_PATHNAME', 'card_chain_lock_sql'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_chain_lock(uuid) FROM PUBLIC;

-- Controls of a card: the account, then the chain in its order.  Otherwise
-- as in 1.1.
CREATE OR REPLACE FUNCTION card.controls_apply(target_card uuid, target_account uuid, controls jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
    lim jsonb;
    n integer := 0;
    lim_amount bigint;
    lim_period card.spend_interval;
    lim_categories int4multirange;
    new_mcc_allowed int4multirange;
    new_mcc_blocked int4multirange;
    new_countries_allowed text[];
    new_countries_blocked text[];
    new_channels_blocked text[] := '{}';
    channel_name text;
    channel_value jsonb;
    target_chain uuid;
BEGIN
    IF controls IS NULL OR jsonb_typeof(controls) <> 'object' THEN
        RAISE EXCEPTION 'controls must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO unknown FROM jsonb_object_keys(controls) k
     WHERE k NOT IN ('spending_limits', 'allowed_categories', 'blocked_categories',
                     'allowed_countries', 'blocked_countries', 'channels') ORDER BY k LIMIT 1;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown controls field "%"', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Fields: spending_limits, allowed_categories | blocked_categories, allowed_countries | blocked_countries, channels.';
    END IF;
    IF controls ? 'allowed_categories' AND controls ? 'blocked_categories' THEN
        RAISE EXCEPTION 'allowed_categories and blocked_categories are mutually exclusive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF controls ? 'allowed_countries' AND controls ? 'blocked_countries' THEN
        RAISE EXCEPTION 'allowed_countries and blocked_countries are mutually exclusive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF controls ? 'allowed_categories' THEN
        new_mcc_allowed := card.controls_categories(controls -> 'allowed_categories', 'allowed_categories');
    END IF;
    IF controls ? 'blocked_categories' THEN
        new_mcc_blocked := card.controls_categories(controls -> 'blocked_categories', 'blocked_categories');
    END IF;
    IF controls ? 'allowed_countries' THEN
        new_countries_allowed := card.controls_countries(controls -> 'allowed_countries', 'allowed_countries');
    END IF;
    IF controls ? 'blocked_countries' THEN
        new_countries_blocked := card.controls_countries(controls -> 'blocked_countries', 'blocked_countries');
    END IF;
    IF controls ? 'channels' THEN
        IF jsonb_typeof(controls -> 'channels') <> 'object' THEN
            RAISE EXCEPTION 'controls field "channels" must be an object of booleans'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR channel_name, channel_value IN SELECT * FROM jsonb_each(controls -> 'channels') LOOP
            IF channel_name NOT IN ('ecommerce', 'atm', 'contactless', 'chip', 'magstripe') THEN
                RAISE EXCEPTION 'unknown channel "%" in controls field "channels"', channel_name
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Channels: ecommerce, atm, contactless, chip, magstripe.';
            END IF;
            IF jsonb_typeof(channel_value) <> 'boolean' THEN
                RAISE EXCEPTION 'channels.% must be true or false', channel_name
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF NOT channel_value::boolean THEN
                new_channels_blocked := new_channels_blocked || channel_name;
            END IF;
        END LOOP;
    END IF;
    IF controls ? 'spending_limits' AND jsonb_typeof(controls -> 'spending_limits') <> 'array' THEN
        RAISE EXCEPTION 'controls field "spending_limits" must be an array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Lock the account, as card_authorize does for every card on it: limits
    -- and counters change only under that lock.  Then replace.
    IF target_card IS NOT NULL THEN
        PERFORM 1 FROM card.account a
         WHERE a.id = (SELECT c.account_id FROM card.card c
                       WHERE c.id = target_card AND card.programme_visible(c.programme_id))
           FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'card % does not exist', target_card USING ERRCODE = 'no_data_found';
        END IF;
        -- Limits and controls belong to the card's replacement chain.
        -- Then the chain, in its lock order (src/chain.c): the cards of a
        -- chain are changed below in whatever order the plan meets them.
        PERFORM card.card_chain_lock(target_card);
        SELECT card.chain_of(c.id, c.chain_id) INTO target_chain FROM card.card c WHERE c.id = target_card;
        DELETE FROM card.spend_limit l WHERE l.card_id = target_chain;
    ELSE
        PERFORM 1 FROM card.account a
         WHERE a.id = target_account AND card.programme_visible(a.programme_id)
           FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'account % does not exist', target_account USING ERRCODE = 'no_data_found';
        END IF;
        DELETE FROM card.spend_limit l WHERE l.account_id = target_account;
    END IF;

    FOR lim IN SELECT e FROM jsonb_array_elements(coalesce(controls -> 'spending_limits', '[]')) e LOOP
        n := n + 1;
        IF jsonb_typeof(lim) <> 'object' THEN
            RAISE EXCEPTION 'spending_limits[%] must be an object', n - 1
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT k INTO unknown FROM jsonb_object_keys(lim) k
         WHERE k NOT IN ('amount', 'interval', 'categories') ORDER BY k LIMIT 1;
        IF unknown IS NOT NULL THEN
            RAISE EXCEPTION 'unknown field "%" in spending_limits[%]', unknown, n - 1
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A limit has amount, interval and optionally categories.';
        END IF;
        IF jsonb_typeof(lim -> 'amount') IS DISTINCT FROM 'number'
           OR (lim ->> 'amount') !~ '^[0-9]{1,18}$' OR (lim ->> 'amount')::bigint <= 0 THEN
            RAISE EXCEPTION 'spending_limits[%].amount must be a positive whole number of minor units', n - 1
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        lim_amount := (lim ->> 'amount')::bigint;
        IF jsonb_typeof(lim -> 'interval') IS DISTINCT FROM 'string' OR (lim ->> 'interval') NOT IN
           ('per_authorization', 'daily', 'weekly', 'monthly', 'yearly', 'all_time') THEN
            RAISE EXCEPTION 'spending_limits[%].interval must be one of per_authorization, daily, weekly, monthly, yearly, all_time', n - 1
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        lim_period := (lim ->> 'interval')::card.spend_interval;
        lim_categories := NULL;
        IF lim ? 'categories' THEN
            lim_categories := card.controls_categories(lim -> 'categories',
                                                       format('spending_limits[%s].categories', n - 1));
        END IF;

        -- The spend already in the current window counts against the new limit.
        INSERT INTO card.spend_limit (card_id, account_id, position, period, amount,
                                      categories, category_list, window_start, spent)
        SELECT target_chain, target_account, n, lim_period, lim_amount, lim_categories,
               CASE WHEN lim ? 'categories'
                    THEN ARRAY(SELECT jsonb_array_elements_text(lim -> 'categories')) END,
               w.start,
               CASE WHEN w.start IS NULL THEN 0 ELSE
                 (SELECT coalesce(sum(h.held + h.captured), 0)
                    FROM card."authorization" h
                   WHERE h.approved
                     AND h.card_id IN (SELECT c.id FROM card.card c
                                        WHERE c.id = target_chain OR c.chain_id = target_chain
                                           OR c.account_id = target_account)
                     AND h.created_at >= w.start
                     AND (lim_categories IS NULL OR lim_categories @> h.mcc::integer)) END
          FROM (SELECT CASE WHEN lim_period <> 'per_authorization'
                            THEN card.spend_window_start(lim_period, now()) END AS start) w;
    END LOOP;

    IF target_card IS NOT NULL THEN
        UPDATE card.card c
           SET controls = controls_apply.controls, mcc_allowed = new_mcc_allowed,
               mcc_blocked = new_mcc_blocked,
               countries_allowed = new_countries_allowed,
               countries_blocked = new_countries_blocked,
               channels_blocked = new_channels_blocked
         WHERE c.id = target_chain OR c.chain_id = target_chain;
    ELSE
        UPDATE card.account a
           SET controls = controls_apply.controls, mcc_allowed = new_mcc_allowed,
               mcc_blocked = new_mcc_blocked,
               countries_allowed = new_countries_allowed,
               countries_blocked = new_countries_blocked,
               channels_blocked = new_channels_blocked
         WHERE a.id = target_account;
    END IF;
    PERFORM card.event_emit('card.controls_updated', target_card, o.account_id, o.programme_id,
                            jsonb_build_object('scope', CASE WHEN target_card IS NULL
                                                             THEN 'account' ELSE 'card' END,
                                               'controls', controls))
       FROM (SELECT c.account_id, c.programme_id FROM card.card c WHERE c.id = target_card
             UNION ALL
             SELECT a.id, a.programme_id FROM card.account a WHERE a.id = target_account) o;
    RETURN controls;
END
$$;

-- The cards of a PAN end in the chain's lock order.  Otherwise as in 1.1.
CREATE OR REPLACE FUNCTION card.end_same_pan(card_id uuid, reason text) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other record;
    ended integer := 0;
BEGIN
    -- The chain's lock order first: the cards of a PAN are cards of one
    -- chain, and a direct UPDATE by the owner comes here too.
    PERFORM card.card_chain_lock(card_id);
    FOR other IN SELECT o.id, o.status, o.expires_on
                   FROM card.card c
                   JOIN card.card o ON o.programme_id = c.programme_id
                                   AND o.pan_fingerprint = c.pan_fingerprint AND o.id <> c.id
                  WHERE c.id = end_same_pan.card_id
                  ORDER BY o.id
                    FOR NO KEY UPDATE OF o
    LOOP
        IF card.effective_status(other.status, other.expires_on) IN ('not_activated', 'active', 'frozen') THEN
            PERFORM card.card_set_status(other.id, 'blocked', reason, 'system');
            ended := ended + 1;
        END IF;
    END LOOP;
    RETURN ended;
END
$$;

-- Found by the fuzzing suite (test/fuzz.sh): a credit that overflowed the
-- balance failed with 22003 from the UPDATE, and a negative start_after
-- with 23514 from a table constraint; both are bad input (22023).
-- Otherwise as in 1.1.
CREATE OR REPLACE FUNCTION card.account_credit(account_id uuid, amount bigint, reference text,
    OUT balance bigint, OUT held bigint, OUT available bigint)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    first_amount bigint;
    account_status text;
BEGIN
    IF account_id IS NULL OR amount IS NULL OR reference IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN account_id IS NULL THEN 'account_id'
            WHEN amount IS NULL THEN 'amount' ELSE 'reference' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF amount <= 0 THEN
        RAISE EXCEPTION 'credit amount must be positive, not %', amount
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Amounts are in minor units of the account currency.';
    END IF;
    IF length(reference) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'invalid credit reference'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A reference has 1 to 200 characters.';
    END IF;
    SELECT a.status INTO account_status FROM card.account a WHERE a.id = account_credit.account_id
       AND card.programme_visible(a.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', account_id USING ERRCODE = 'no_data_found';
    END IF;
    IF account_status = 'closed' THEN
        RAISE EXCEPTION 'account % is closed', account_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    INSERT INTO card.account_credit AS c (account_id, reference, amount)
    VALUES (account_credit.account_id, reference, amount)
    ON CONFLICT ON CONSTRAINT account_credit_pkey DO NOTHING;
    IF FOUND THEN
        UPDATE card.account a SET balance = a.balance + amount
         WHERE a.id = account_credit.account_id AND a.balance <= 9223372036854775807 - amount
        RETURNING a.balance, a.held, a.balance - a.held INTO balance, held, available;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'credit of % would take the balance of account % past the largest amount',
                amount, account_id
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Amounts are bigint minor units: the balance cannot exceed 9223372036854775807.';
        END IF;
        PERFORM card.event_emit('account.credited', NULL, account_credit.account_id,
            (SELECT a.programme_id FROM card.account a WHERE a.id = account_credit.account_id),
            jsonb_build_object('amount', amount, 'reference', reference,
                               'balance', balance, 'available', available));
    ELSE
        SELECT c.amount INTO first_amount FROM card.account_credit c
         WHERE c.account_id = account_credit.account_id AND c.reference = account_credit.reference;
        IF first_amount <> amount THEN
            RAISE EXCEPTION 'credit reference "%" of account % was already used for amount %',
                reference, account_id, first_amount
                USING ERRCODE = 'unique_violation',
                      HINT = 'Use a new reference for a new credit.';
        END IF;
        SELECT a.balance, a.held, a.balance - a.held INTO balance, held, available
          FROM card.account a WHERE a.id = account_credit.account_id;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION card.consumer_register(name text, start_after bigint DEFAULT 0)
    RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result bigint;
BEGIN
    IF name IS NULL OR start_after IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN name IS NULL THEN 'name' ELSE 'start_after' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF card.role_is_shared(card.caller()) THEN
        RAISE EXCEPTION 'a consumer cannot be registered acting as the shared role "%"', card.caller()
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Every tenant''s roles that hold it could move or drop it.',
                  HINT = 'Register it as your own role (RESET ROLE).';
    END IF;
    IF start_after < 0 THEN
        RAISE EXCEPTION 'start_after must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Start after 0 to read the feed from its beginning.';
    END IF;
    IF name !~ '^[A-Za-z0-9_.-]{1,100}$' THEN
        RAISE EXCEPTION 'invalid consumer name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use 1 to 100 letters, digits, ".", "_" or "-".';
    END IF;
    INSERT INTO card.event_consumer AS c (role_name, name, cursor)
    VALUES (card.consumer_role(name), name, start_after)
    ON CONFLICT ON CONSTRAINT event_consumer_pkey DO NOTHING;
    SELECT c.cursor INTO result FROM card.event_consumer c WHERE c.role_name = card.consumer_role(consumer_register.name)
       AND c.name = consumer_register.name;
    RETURN result;
END
$$;

-- The audit trail's time is the time of the change, not of its
-- transaction's start: a change that waited for a card's lock behind a
-- later transaction got the earlier time, so ordering a card's changes by
-- time contradicted its status (found by test/crash.sh).
ALTER TABLE card.card_status_change ALTER COLUMN changed_at SET DEFAULT pg_catalog.clock_timestamp();

-- Entry points act for the role PostgreSQL says is acting (defect 3, a
-- confused deputy): another role's SECURITY DEFINER function calling a
-- SECURITY DEFINER entry point made the entry point act with the
-- session's programmes, since PostgreSQL switches to the owner before the
-- function runs and keeps the caller to itself.  Every entry point is now
-- SECURITY INVOKER and switches to the owner in C, keeping the acting role
-- as the caller (src/tenancy.c, card_entry_call).  C entry points do it in
-- their own code; a PL/pgSQL or SQL entry point moves to schema
-- card_internal (keeping its name, which its body uses to qualify its
-- parameters) and a C wrapper of the same name and signature takes its
-- place and its grants.  Nobody is granted anything in card_internal.
CREATE SCHEMA card_internal;
REVOKE ALL ON SCHEMA card_internal FROM PUBLIC;
COMMENT ON SCHEMA card_internal IS
    'Bodies of the card extension''s PL/pgSQL and SQL entry points; called only by their C wrappers in schema card';

DO $$
DECLARE
    f record;
    grantee regrole;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, l.lanname, p.proacl, p.proretset, p.prorows, p.proisstrict,
               p.provolatile, pg_catalog.pg_get_function_arguments(p.oid) AS args,
               pg_catalog.pg_get_function_identity_arguments(p.oid) AS ident,
               pg_catalog.pg_get_function_result(p.oid) AS result
          FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
         WHERE p.pronamespace = 'card'::regnamespace AND p.prosecdef
         ORDER BY p.proname, ident
    LOOP
        IF f.lanname = 'c' THEN
            EXECUTE pg_catalog.format('ALTER FUNCTION card.%I(%s) SECURITY INVOKER', f.proname, f.ident);
            CONTINUE;
        END IF;
        EXECUTE pg_catalog.format('ALTER FUNCTION card.%I(%s) SET SCHEMA card_internal', f.proname, f.ident);
        EXECUTE pg_catalog.format('ALTER FUNCTION card_internal.%I(%s) SECURITY INVOKER', f.proname, f.ident);
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION card.%I(%s) RETURNS %s AS %L, %L LANGUAGE C %s %s %s',
            f.proname, f.args, f.result, 'MODULE_PATHNAME', 'card_plpgsql_entry',
            CASE f.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END,
            CASE WHEN f.proisstrict THEN 'STRICT' ELSE '' END,
            CASE WHEN f.proretset THEN 'ROWS ' || f.prorows ELSE '' END);
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION card.%I(%s) FROM PUBLIC', f.proname, f.ident);
        FOR grantee IN
            SELECT DISTINCT a.grantee::regrole FROM pg_catalog.aclexplode(f.proacl) a
             WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> 0
               AND a.grantee <> (SELECT proowner FROM pg_catalog.pg_proc WHERE oid = f.oid)
        LOOP
            EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION card.%I(%s) TO %s', f.proname, f.ident, grantee);
            EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION card_internal.%I(%s) FROM %s', f.proname, f.ident, grantee);
        END LOOP;
    END LOOP;
END
$$;
