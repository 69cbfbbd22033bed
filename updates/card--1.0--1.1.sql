/* card--1.0--1.1.sql: programme isolation (DESIGN.md section 10) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.1'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Who is calling (C: src/tenancy.c).  The caller is the role the session
-- runs as, login role or SET ROLE, which our SECURITY DEFINER entry points
-- do not change.  Row-level security policies call these as the querying
-- role, so each reveals only the caller's own standing.  They resolve no
-- names, so they need no fixed search_path (which would make every call,
-- one per row under a policy, set and reset it).
-- ---------------------------------------------------------------------------

CREATE FUNCTION card.caller() RETURNS name
    AS 'MODULE_PATHNAME', 'card_caller'
    LANGUAGE C STABLE PARALLEL SAFE;

-- Superusers and BYPASSRLS roles see every programme.
CREATE FUNCTION card.caller_sees_all() RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_caller_sees_all'
    LANGUAGE C STABLE PARALLEL SAFE;

-- Whether the caller has the privileges of a role (is it or inherits it).
CREATE FUNCTION card.caller_has_role(role_name name) RETURNS boolean
    AS 'MODULE_PATHNAME', 'card_caller_has_role'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- Which roles see which programme: a role sees a programme granted to it
-- or to a role whose privileges it has.  Roles are kept by name, so the
-- grants survive pg_dump and restore into a cluster where the role ids
-- differ; a renamed role must be granted again.
CREATE TABLE card.programme_role (
    programme_id    uuid NOT NULL REFERENCES card.programme,
    role_name       name NOT NULL,
    granted_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (programme_id, role_name)
);
SELECT pg_catalog.pg_extension_config_dump('card.programme_role', '');

-- The programme check of every function that looks one row up: the caller
-- sees all, or holds a role the programme was granted to.  Statements that
-- scan many rows (the feed, the sweeps) test the same as
-- "(card.caller_sees_all() OR programme_id IN (SELECT card.visible_programmes()))",
-- which evaluates the caller's grants once rather than once per row.
CREATE FUNCTION card.programme_visible(programme_id uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN card.caller_sees_all()
    OR EXISTS (SELECT FROM card.programme_role g
                WHERE g.programme_id = programme_visible.programme_id
                  AND card.caller_has_role(g.role_name));

-- The programmes of the caller's grants, for the row-level security
-- policies (superusers and BYPASSRLS roles skip those policies anyway).
-- A policy reads it as "programme_id IN (SELECT ...)": one evaluation per
-- query, hashed, rather than one call per row.
CREATE FUNCTION card.visible_programmes() RETURNS SETOF uuid
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT g.programme_id FROM card.programme_role g WHERE card.caller_has_role(g.role_name);
END;

-- Grants a programme to a role (and so to every role that has its
-- privileges); true when the grant is new.
CREATE FUNCTION card.programme_grant(programme_id uuid, role name)
    RETURNS boolean
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF programme_id IS NULL OR role IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN programme_id IS NULL THEN 'programme_id' ELSE 'role' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM card.programme p
                    WHERE p.id = programme_grant.programme_id AND card.programme_visible(p.id)) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = programme_grant.role) THEN
        RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = 'undefined_object';
    END IF;
    INSERT INTO card.programme_role AS g (programme_id, role_name)
    VALUES (programme_id, role)
    ON CONFLICT ON CONSTRAINT programme_role_pkey DO NOTHING;
    RETURN FOUND;
END
$$;

-- Takes a grant back; true when there was one.  The caller may revoke its
-- own last grant and so lose sight of the programme.
CREATE FUNCTION card.programme_revoke(programme_id uuid, role name)
    RETURNS boolean
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF programme_id IS NULL OR role IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN programme_id IS NULL THEN 'programme_id' ELSE 'role' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM card.programme p
                    WHERE p.id = programme_revoke.programme_id AND card.programme_visible(p.id)) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id USING ERRCODE = 'no_data_found';
    END IF;
    DELETE FROM card.programme_role g
     WHERE g.programme_id = programme_revoke.programme_id AND g.role_name = programme_revoke.role;
    RETURN FOUND;
END
$$;

-- Consumers belong to the role that registered them; names are per role.
-- Those registered under 1.0 go to card_reader, the role that could: they
-- stay shared by the roles with card_reader's privileges, as they were.
ALTER TABLE card.event_consumer
    ADD COLUMN role_name name NOT NULL DEFAULT 'card_reader',
    DROP CONSTRAINT event_consumer_pkey,
    ADD CONSTRAINT event_consumer_pkey PRIMARY KEY (role_name, name);
ALTER TABLE card.event_consumer ALTER COLUMN role_name DROP DEFAULT;

-- The role whose consumer of that name the caller works with: its own, or
-- else a 1.0 consumer it may share (card_reader's, if it has that role).
CREATE FUNCTION card.consumer_role(consumer text) RETURNS name
    LANGUAGE sql STABLE
RETURN CASE WHEN NOT EXISTS (SELECT 1 FROM card.event_consumer c
                              WHERE c.role_name = card.caller() AND c.name = consumer)
             AND EXISTS (SELECT 1 FROM card.event_consumer c
                          WHERE c.role_name = 'card_reader' AND c.name = consumer)
             AND card.caller_has_role('card_reader')
            THEN 'card_reader'::name
            ELSE card.caller() END;

-- ---------------------------------------------------------------------------
-- The functions of 1.0 that look a row up now look only among the caller's
-- programmes: anything else "does not exist" (P0002), never "is not yours".
-- The C entry points do the same in their statements (src/*.c).
-- ---------------------------------------------------------------------------

-- A programme is granted to the role that creates it.
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
    IF region !~ '^[a-z][a-z_]{1,31}$' THEN
        RAISE EXCEPTION 'invalid region "%"', region
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A region is a lower-case word such as europe or north_america.';
    END IF;
    IF pan_length NOT BETWEEN 13 AND 19 OR pan_length < length(bin) + 5 THEN
        RAISE EXCEPTION 'invalid pan_length %', pan_length
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A PAN has 13 to 19 digits, at least 4 of them random after the BIN.';
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

-- Only in a programme the caller sees.
CREATE OR REPLACE FUNCTION card.individual_create(programme_id uuid, name text)
    RETURNS uuid
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
BEGIN
    IF programme_id IS NULL OR name IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN programme_id IS NULL THEN 'programme_id' ELSE 'name' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF length(btrim(name)) = 0 OR length(name) > 200 THEN
        RAISE EXCEPTION 'invalid individual name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A name has 1 to 200 characters.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM card.programme p WHERE p.id = individual_create.programme_id
                                             AND card.programme_visible(p.id)) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO card.individual (programme_id, name)
    VALUES (programme_id, name)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;

-- Only in a programme the caller sees, for an individual it sees.
CREATE OR REPLACE FUNCTION card.account_open(programme_id uuid, individual_id uuid, currency text DEFAULT 'EUR')
    RETURNS uuid
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid;
    holder_programme uuid;
BEGIN
    IF programme_id IS NULL OR individual_id IS NULL OR currency IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN programme_id IS NULL THEN 'programme_id'
            WHEN individual_id IS NULL THEN 'individual_id' ELSE 'currency' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF currency !~ '^[A-Z]{3}$' THEN
        RAISE EXCEPTION 'invalid currency "%"', currency
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use an ISO 4217 code such as EUR.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM card.programme p WHERE p.id = account_open.programme_id
                                             AND card.programme_visible(p.id)) THEN
        RAISE EXCEPTION 'programme % does not exist', programme_id
            USING ERRCODE = 'no_data_found';
    END IF;
    SELECT i.programme_id INTO holder_programme
      FROM card.individual i
     WHERE i.id = account_open.individual_id AND card.programme_visible(i.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'individual % does not exist', individual_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF holder_programme <> programme_id THEN
        RAISE EXCEPTION 'individual % does not belong to programme %', individual_id, programme_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO card.account (programme_id, individual_id, currency)
    VALUES (programme_id, individual_id, currency)
    RETURNING id INTO new_id;
    INSERT INTO card.account_member (account_id, individual_id, programme_id, role)
    VALUES (new_id, individual_id, programme_id, 'holder');
    RETURN new_id;
END
$$;

-- Only on accounts and individuals the caller sees.
CREATE OR REPLACE FUNCTION card.account_member_add(account_id uuid, individual_id uuid)
    RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account_programme uuid;
    member_programme uuid;
BEGIN
    IF account_id IS NULL OR individual_id IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN account_id IS NULL THEN 'account_id' ELSE 'individual_id' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    SELECT a.programme_id INTO account_programme
      FROM card.account a
     WHERE a.id = account_member_add.account_id AND card.programme_visible(a.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', account_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT i.programme_id INTO member_programme
      FROM card.individual i
     WHERE i.id = account_member_add.individual_id AND card.programme_visible(i.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'individual % does not exist', individual_id USING ERRCODE = 'no_data_found';
    END IF;
    IF member_programme <> account_programme THEN
        RAISE EXCEPTION 'individual % and account % belong to different programmes', individual_id, account_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO card.account_member (account_id, individual_id, programme_id, role)
    VALUES (account_id, individual_id, account_programme, 'authorised')
    ON CONFLICT DO NOTHING;
END
$$;

-- Another programme's card does not exist for the caller.
CREATE OR REPLACE FUNCTION card.card_token(card_id uuid)
    RETURNS text
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
BEGIN
    SELECT c.token INTO result FROM card.card c WHERE c.id = card_token.card_id
       AND card.programme_visible(c.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card % does not exist', card_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;

-- Only accounts the caller sees.
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
         WHERE a.id = account_credit.account_id
        RETURNING a.balance, a.held, a.balance - a.held INTO balance, held, available;
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

-- Only cards and accounts the caller sees.
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

-- Only cards the caller sees.
CREATE OR REPLACE FUNCTION card.card_controls(card_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
BEGIN
    SELECT c.controls INTO result FROM card.card c WHERE c.id = card_controls.card_id
       AND card.programme_visible(c.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card % does not exist', card_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;

-- Only accounts the caller sees.
CREATE OR REPLACE FUNCTION card.account_controls(account_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result jsonb;
BEGIN
    SELECT a.controls INTO result FROM card.account a WHERE a.id = account_controls.account_id
       AND card.programme_visible(a.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', account_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN result;
END
$$;

-- Only holds of programmes the caller sees.
CREATE OR REPLACE FUNCTION card.hold_lock(authorization_id uuid, amount bigint, verb text)
    RETURNS card."authorization"
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    hold card."authorization";
BEGIN
    IF authorization_id IS NULL THEN
        RAISE EXCEPTION 'authorization_id is required' USING ERRCODE = 'not_null_violation';
    END IF;
    SELECT * INTO hold FROM card."authorization" h WHERE h.id = hold_lock.authorization_id
       AND card.programme_visible(h.programme_id) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'authorization % does not exist', authorization_id
            USING ERRCODE = 'no_data_found';
    END IF;
    IF hold.status <> 'pending' THEN
        RAISE EXCEPTION 'authorization % is % and cannot be %', authorization_id, hold.status, verb
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = CASE WHEN hold.status = 'declined' THEN 'A declined authorization holds nothing.'
                              ELSE 'A hold resolves once: captured, reversed or expired.' END;
    END IF;
    IF amount IS NOT NULL AND amount <= 0 THEN
        RAISE EXCEPTION 'amount to be % must be positive, not %', verb, amount
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF amount > hold.held THEN
        RAISE EXCEPTION 'authorization % holds %, less than the % to be %', authorization_id,
            hold.held, amount, verb
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN hold;
END
$$;

-- Only holds of programmes the caller sees.
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

-- Only cards the caller sees; a card's limits are its chain's.
CREATE OR REPLACE FUNCTION card.card_spend_status(card_id uuid)
    RETURNS TABLE (scope text, "interval" text, amount bigint, categories text[],
                   spent bigint, remaining bigint, window_start timestamptz, resets_at timestamptz)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    owner_account uuid;
    owner_chain uuid;
BEGIN
    SELECT c.account_id, card.chain_of(c.id, c.chain_id) INTO owner_account, owner_chain
      FROM card.card c WHERE c.id = card_spend_status.card_id
       AND card.programme_visible(c.programme_id);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card % does not exist', card_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    SELECT CASE WHEN l.card_id IS NOT NULL THEN 'card' ELSE 'account' END,
           l.period::text, l.amount, l.category_list,
           s.spent, greatest(l.amount - s.spent, 0), w.start, card.spend_window_end(l.period, w.start)
      FROM card.spend_limit l
      CROSS JOIN LATERAL (SELECT CASE WHEN l.period = 'per_authorization' THEN NULL
                                      ELSE card.spend_window_start(l.period, now()) END AS start) w
      CROSS JOIN LATERAL (SELECT CASE WHEN l.window_start = w.start THEN l.spent
                                      ELSE 0 END AS spent) s
     WHERE l.card_id = owner_chain OR l.account_id = owner_account
     ORDER BY l.card_id IS NULL, l.position;
END
$$;

-- Released amounts go back to the limits of the card's chain.
CREATE OR REPLACE FUNCTION card.hold_settle(hold card."authorization", capture_amount bigint,
                                 release_amount bigint,
                                 final_status card.authorization_status)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    left_held bigint := hold.held - capture_amount - release_amount;
BEGIN
    UPDATE card.account a
       SET balance = a.balance - capture_amount,
           held = a.held - capture_amount - release_amount
     WHERE a.id = hold.account_id;
    UPDATE card."authorization" h
       SET held = left_held,
           captured = h.captured + capture_amount,
           released = h.released + release_amount,
           status = CASE WHEN left_held = 0 THEN final_status ELSE 'pending' END,
           resolved_at = CASE WHEN left_held = 0 THEN now() END
     WHERE h.id = hold.id;
    PERFORM card.event_emit(('authorization.' || final_status)::card.event_type,
                            hold.card_id, hold.account_id, hold.programme_id,
                            jsonb_build_object('authorization_id', hold.id,
                                               'captured', capture_amount,
                                               'released', release_amount,
                                               'held', left_held,
                                               'status', CASE WHEN left_held = 0 THEN final_status::text
                                                              ELSE 'pending' END,
                                               'currency', hold.currency));
    IF release_amount > 0 THEN
        UPDATE card.spend_limit l
           SET spent = l.spent - release_amount
         WHERE (l.card_id = (SELECT card.chain_of(k.id, k.chain_id) FROM card.card k WHERE k.id = hold.card_id)
                OR l.account_id = hold.account_id)
           AND l.period <> 'per_authorization'
           AND (l.categories IS NULL OR l.categories @> hold.mcc::integer)
           AND l.window_start = card.spend_window_start(l.period, hold.created_at);
    END IF;
END
$$;

-- Consumers belong to the role that registers them.
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

-- Only the caller's own consumers.
CREATE OR REPLACE FUNCTION card.consumer_ack(name text, cursor bigint)
    RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result bigint;
BEGIN
    IF name IS NULL OR cursor IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN name IS NULL THEN 'name' ELSE 'cursor' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    UPDATE card.event_consumer c
       SET cursor = greatest(c.cursor, consumer_ack.cursor), acked_at = now()
     WHERE c.role_name = card.consumer_role(consumer_ack.name) AND c.name = consumer_ack.name
    RETURNING c.cursor INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" is not registered', name
            USING ERRCODE = 'no_data_found', HINT = 'Register it with card.consumer_register().';
    END IF;
    RETURN result;
END
$$;

-- Only the caller's own consumers.
CREATE OR REPLACE FUNCTION card.consumer_unregister(name text)
    RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM card.event_consumer c
     WHERE c.role_name = card.consumer_role(consumer_unregister.name) AND c.name = consumer_unregister.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer "%" is not registered', name USING ERRCODE = 'no_data_found';
    END IF;
END
$$;

-- Only events of programmes the caller sees; every consumer still holds retention back.
CREATE OR REPLACE FUNCTION card.events_prune(before timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    slowest bigint;
    pruned bigint;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'before is required' USING ERRCODE = 'not_null_violation';
    END IF;
    -- Lock the registry so that no consumer registers or falls behind meanwhile.
    LOCK TABLE card.event_consumer IN SHARE MODE;
    SELECT min(c.cursor) INTO slowest FROM card.event_consumer c;
    DELETE FROM card.event e
     WHERE e.occurred_at < before
       AND (slowest IS NULL OR e.seq <= slowest)
       AND (card.caller_sees_all() OR e.programme_id IN (SELECT card.visible_programmes()));
    GET DIAGNOSTICS pruned = ROW_COUNT;
    RETURN pruned;
END
$$;

-- ---------------------------------------------------------------------------
-- Reveal, replacement and reissue, key rotation, PIN tries (DESIGN.md
-- section 11)
-- ---------------------------------------------------------------------------

ALTER TYPE card.event_type ADD VALUE 'card.revealed';
ALTER TYPE card.event_type ADD VALUE 'card.replaced';
ALTER TYPE card.event_type ADD VALUE 'card.pin_blocked';
ALTER TYPE card.event_type ADD VALUE 'card.pin_reset';

CREATE TYPE card.replacement_reason AS ENUM ('lost', 'stolen', 'damaged', 'expired');

-- Hosted-page links of every kind share one table and one set of rules:
-- single use, short lived, a newer link of the same purpose supersedes an
-- unused older one, the token kept only as a keyed hash.
CREATE TYPE card.link_purpose AS ENUM ('activation', 'reveal', 'pin_reset');
ALTER TABLE card.activation RENAME TO hosted_link;
ALTER TABLE card.hosted_link RENAME CONSTRAINT activation_pkey TO hosted_link_pkey;
ALTER TABLE card.hosted_link RENAME CONSTRAINT activation_card_id_fkey TO hosted_link_card_id_fkey;
ALTER TABLE card.hosted_link RENAME CONSTRAINT activation_outcome_check TO hosted_link_outcome_check;
ALTER TABLE card.hosted_link RENAME CONSTRAINT activation_check TO hosted_link_check;
ALTER TABLE card.hosted_link ADD COLUMN purpose card.link_purpose NOT NULL DEFAULT 'activation';
ALTER TABLE card.hosted_link ALTER COLUMN purpose DROP DEFAULT;
DROP INDEX card.activation_pending_idx;
CREATE INDEX hosted_link_pending_idx ON card.hosted_link (card_id, purpose)
    WHERE consumed_at IS NULL;

-- Replacement chains.  A replacement names the card it replaces and why;
-- chain_id is the first card of the chain (NULL on that first card), under
-- which the chain's spending limits and PIN live.  A reissue keeps the PAN:
-- pan_sequence tells the cards of one PAN apart.
ALTER TABLE card.card
    ADD COLUMN replacement_reason card.replacement_reason,
    ADD COLUMN chain_id uuid REFERENCES card.card,
    ADD COLUMN pan_sequence smallint NOT NULL DEFAULT 0 CHECK (pan_sequence >= 0),
    ADD COLUMN pin_tries smallint NOT NULL DEFAULT 0 CHECK (pin_tries BETWEEN 0 AND 3),
    ADD CONSTRAINT card_replacement_named
        CHECK ((replacement_for IS NULL) = (replacement_reason IS NULL)
               AND (replacement_for IS NULL) = (chain_id IS NULL)),
    DROP CONSTRAINT card_programme_id_pan_fingerprint_key,
    ADD CONSTRAINT card_pan_unique UNIQUE (programme_id, pan_fingerprint, pan_sequence);
-- Replacing a card again for the same reason finds the first replacement.
CREATE UNIQUE INDEX card_replacement_idx ON card.card (replacement_for, replacement_reason)
    WHERE replacement_for IS NOT NULL;
CREATE INDEX card_chain_idx ON card.card (chain_id) WHERE chain_id IS NOT NULL;

-- The card whose id keys a card's chain: its limits and its PIN hash.
CREATE FUNCTION card.chain_of(card_id uuid, chain_id uuid) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(chain_id, card_id);

-- Limits belong to the chain: replaced and replacing cards spend against
-- the same counters, so an overlap of two working cards cannot double them.

-- Reveal through the hosted page (C: src/reveal.c): a one-time link for
-- the API, the details once for the page.  The CVV is derived at reveal
-- time from the MAC key, never stored.
CREATE FUNCTION card.card_reveal_start(card_id uuid, return_url text)
    RETURNS TABLE (redirect_url text, expires_at timestamptz)
    AS 'MODULE_PATHNAME', 'card_reveal_start'
    LANGUAGE C VOLATILE ROWS 1
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION card.card_reveal(reveal_token text)
    RETURNS TABLE (pan text, exp_month text, exp_year text, cvv text)
    AS 'MODULE_PATHNAME', 'card_reveal'
    LANGUAGE C VOLATILE ROWS 1
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- Replacement and reissue (C: src/replace.c).
CREATE FUNCTION card.card_replace(card_id uuid, reason text)
    RETURNS card.cards
    AS 'MODULE_PATHNAME', 'card_replace'
    LANGUAGE C VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- Ends (blocks) every other live card that carries a card's PAN, locking
-- them in id order and judging each by its status under the lock.
CREATE FUNCTION card.end_same_pan(card_id uuid, reason text) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other record;
    ended integer := 0;
BEGIN
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

-- A reissue (same PAN) closes the card it replaces once it is activated,
-- and any other card still carrying that PAN (an earlier reissue); until
-- then they all work.  Fires after the audit trigger, so the new card's
-- activation is recorded before the old cards' closing.
CREATE FUNCTION card.replacement_activated() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM card.end_same_pan(NEW.id, 'replaced by card ' || NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER card_status_close_replaced
    AFTER UPDATE OF status ON card.card
    FOR EACH ROW
    WHEN (OLD.status = 'not_activated' AND NEW.status = 'active'
          AND NEW.replacement_reason IN ('damaged', 'expired'))
    EXECUTE FUNCTION card.replacement_activated();

-- A lost or stolen PAN is compromised: however the card came to be lost or
-- stolen (card_replace or card_set_status), every other live card with
-- that PAN (a reissue under way, or the card it reissued) ends too.
CREATE FUNCTION card.pan_compromised() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM card.end_same_pan(NEW.id, 'PAN ' || NEW.status || ' with card ' || NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER card_status_end_lost_pan
    AFTER UPDATE OF status ON card.card
    FOR EACH ROW
    WHEN (NEW.status IN ('lost', 'stolen') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION card.pan_compromised();

-- PIN tries (C: src/pin.c).  Activation of a reissued card checks the PIN
-- it carries, so its result now says how many tries are left.
DROP FUNCTION card.card_activation_complete(text, text);
CREATE FUNCTION card.card_activation_complete(activation_token text, pin text)
    RETURNS TABLE (card_id uuid, status card.card_status, return_url text, pin_tries_left integer)
    AS 'MODULE_PATHNAME', 'card_activation_complete'
    LANGUAGE C VOLATILE ROWS 1
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- The processor's PIN check comes in two steps so that no verdict leaves
-- before its try is counted for good: card_pin_check() counts the try and
-- keeps the verdict, card_pin_result() gives it once, from a later
-- transaction.  A row lives from the check to the reading of its result.
CREATE TABLE card.pin_check (
    id              uuid PRIMARY KEY,
    card_id         uuid NOT NULL REFERENCES card.card,
    verified        boolean NOT NULL,
    tries_left      smallint NOT NULL CHECK (tries_left BETWEEN 0 AND 3),
    used_last_try   boolean NOT NULL,   -- this try blocked the PIN, unless it was right
    checked_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX pin_check_card_idx ON card.pin_check (card_id);
SELECT pg_catalog.pg_extension_config_dump('card.pin_check', '');

CREATE FUNCTION card.card_pin_check(card_token text, pin text)
    RETURNS uuid
    AS 'MODULE_PATHNAME', 'card_pin_check'
    LANGUAGE C VOLATILE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION card.card_pin_result(check_id uuid)
    RETURNS TABLE (verified boolean, tries_left integer)
    AS 'MODULE_PATHNAME', 'card_pin_result'
    LANGUAGE C VOLATILE ROWS 1
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION card.card_pin_reset_start(card_id uuid, return_url text)
    RETURNS TABLE (redirect_url text, expires_at timestamptz)
    AS 'MODULE_PATHNAME', 'card_pin_reset_start'
    LANGUAGE C VOLATILE ROWS 1
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION card.card_pin_reset(reset_token text, pin text)
    RETURNS TABLE (card_id uuid, return_url text)
    AS 'MODULE_PATHNAME', 'card_pin_reset'
    LANGUAGE C VOLATILE ROWS 1
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- Key rotation (C: src/rotate.c).  One batch re-encrypts up to batch_size
-- PANs under older key versions with the newest, found through the index.
CREATE INDEX card_pan_key_version_idx ON card.card (pan_key_version);
CREATE FUNCTION card.rotate_keys_batch(batch_size integer,
    OUT rotated integer, OUT key_version integer, OUT done boolean)
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
BEGIN
    LOOP
        SELECT * INTO step FROM card.rotate_keys_batch(batch_size);
        COMMIT;
        rotated := rotated + step.rotated;
        RAISE NOTICE 'rotate_keys: % PANs re-encrypted under key version % so far%',
            rotated, step.key_version, CASE WHEN step.done THEN ', done' ELSE '' END;
        EXIT WHEN step.done IS NOT FALSE;
    END LOOP;
END
$$;

-- Progress of a rotation, from any session: PANs per key version (of the
-- caller's programmes; a superuser's count is the whole database's).
CREATE FUNCTION card.pan_key_versions()
    RETURNS TABLE (key_version smallint, cards bigint)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.pan_key_version, count(*) FROM card.card c
     WHERE (card.caller_sees_all() OR c.programme_id IN (SELECT card.visible_programmes()))
     GROUP BY c.pan_key_version ORDER BY 1;
END;

-- ---------------------------------------------------------------------------
-- Row-level security: the same rule for anyone who reads a table or view.
-- Nobody but the owner holds table privileges beyond SELECT on the columns
-- the views show; the policies hold should a DBA grant more.  The owner and
-- superusers bypass them, and the functions check for themselves.
-- ---------------------------------------------------------------------------

ALTER TABLE card.programme ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.programme
    USING (id IN (SELECT card.visible_programmes()));

ALTER TABLE card.programme_role ENABLE ROW LEVEL SECURITY;
-- A role sees its own grants; a row written (should a DBA allow writes)
-- must also be for a programme the writer already sees.
CREATE POLICY grants_of_caller ON card.programme_role
    USING (card.caller_has_role(role_name))
    WITH CHECK (card.caller_has_role(role_name)
                AND programme_id IN (SELECT card.visible_programmes()));

ALTER TABLE card.individual ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.individual
    USING (programme_id IN (SELECT card.visible_programmes()));

ALTER TABLE card.account ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.account
    USING (programme_id IN (SELECT card.visible_programmes()));

ALTER TABLE card.account_member ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.account_member
    USING (programme_id IN (SELECT card.visible_programmes()));

ALTER TABLE card.card ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.card
    USING (programme_id IN (SELECT card.visible_programmes()));

ALTER TABLE card."authorization" ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card."authorization"
    USING (programme_id IN (SELECT card.visible_programmes()));

ALTER TABLE card.event ENABLE ROW LEVEL SECURITY;
CREATE POLICY programme_of_caller ON card.event
    USING (programme_id IN (SELECT card.visible_programmes()));

-- Rows of a card or an account: visible with it (its own policy applies).
ALTER TABLE card.card_status_change ENABLE ROW LEVEL SECURITY;
CREATE POLICY card_of_caller ON card.card_status_change
    USING (card_id IN (SELECT c.id FROM card.card c));

ALTER TABLE card.hosted_link ENABLE ROW LEVEL SECURITY;
CREATE POLICY card_of_caller ON card.hosted_link
    USING (card_id IN (SELECT c.id FROM card.card c));

ALTER TABLE card.account_credit ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_of_caller ON card.account_credit
    USING (account_id IN (SELECT a.id FROM card.account a));

ALTER TABLE card.spend_limit ENABLE ROW LEVEL SECURITY;
CREATE POLICY card_or_account_of_caller ON card.spend_limit
    USING (card_id IN (SELECT c.id FROM card.card c)
           OR account_id IN (SELECT a.id FROM card.account a));

ALTER TABLE card.pin_check ENABLE ROW LEVEL SECURITY;
CREATE POLICY card_of_caller ON card.pin_check
    USING (card_id IN (SELECT c.id FROM card.card c));

ALTER TABLE card.event_consumer ENABLE ROW LEVEL SECURITY;
CREATE POLICY consumers_of_caller ON card.event_consumer
    USING (role_name = card.caller());

-- The views read the tables as the querying role, so its policies apply.
ALTER VIEW card.cards SET (security_invoker = true);
ALTER VIEW card.balances SET (security_invoker = true);

-- ---------------------------------------------------------------------------
-- Privileges
-- ---------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
    card.caller(), card.caller_sees_all(), card.caller_has_role(name),
    card.programme_visible(uuid), card.visible_programmes(),
    card.programme_grant(uuid, name), card.programme_revoke(uuid, name),
    card.chain_of(uuid, uuid), card.card_reveal_start(uuid, text), card.card_reveal(text),
    card.card_replace(uuid, text), card.replacement_activated(), card.pan_compromised(),
    card.consumer_role(text),
    card.end_same_pan(uuid, text),
    card.card_activation_complete(text, text), card.card_pin_check(text, text), card.card_pin_result(uuid),
    card.card_pin_reset_start(uuid, text), card.card_pin_reset(text, text),
    card.rotate_keys_batch(integer), card.pan_key_versions()
    FROM PUBLIC;
REVOKE ALL ON PROCEDURE card.rotate_keys(integer) FROM PUBLIC;
REVOKE ALL ON card.programme_role, card.pin_check FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    card.programme_grant(uuid, name),
    card.programme_revoke(uuid, name),
    card.pan_key_versions()
    TO card_admin;
GRANT EXECUTE ON FUNCTION
    card.card_reveal_start(uuid, text),
    card.card_replace(uuid, text),
    card.card_pin_reset_start(uuid, text)
    TO card_api;
GRANT EXECUTE ON FUNCTION
    card.card_pin_check(text, text), card.card_pin_result(uuid)
    TO card_processor;
GRANT EXECUTE ON FUNCTION
    card.card_activation_complete(text, text),
    card.card_reveal(text),
    card.card_pin_reset(text, text)
    TO card_hosted_pages;

-- What the policies and the views evaluate as the querying role.
GRANT EXECUTE ON FUNCTION
    card.caller(), card.caller_sees_all(), card.caller_has_role(name),
    card.programme_visible(uuid), card.visible_programmes(),
    card.effective_status(card.card_status, date)
    TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- The columns the views show (and the keys their joins and policies use);
-- never pan_ciphertext, pan_fingerprint, pin_hash, token or the request hash.
GRANT SELECT (id, programme_id, account_id, individual_id, display_name, type, status,
              exp_month, exp_year, expires_on, last4, replacement_for, replacement_reason)
    ON card.card TO card_admin, card_api, card_reader;
GRANT SELECT (id, brand, region) ON card.programme TO card_admin, card_api, card_reader;
GRANT SELECT (id, programme_id, currency, balance, held)
    ON card.account TO card_admin, card_api, card_reader;
GRANT SELECT (programme_id, role_name)
    ON card.programme_role TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;
