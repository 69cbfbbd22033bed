-- A PL/pgSQL + pgcrypto reference implementation of card_order,
-- card_set_status and card_authorize (issue 12): not product, a measuring
-- stick.  It is what a competent developer could write in an afternoon for
-- the same three calls, writing the same rows as the extension (a card, its
-- first audit row and its event; an UPDATE, its audit row and its event; a
-- hold, its spend counters, its authorization row and its event), into
-- tables LIKE the extension's (columns, defaults, CHECKs, indexes) filled
-- with copies of the bench's rows.  bench/reference/*.pgbench call it.
--
-- It does real work: a random Luhn-valid PAN under the programme's BIN
-- (gen_random_bytes), its HMAC-SHA-256 fingerprint, the PAN encrypted with
-- AES under a random IV, a random token, the lifecycle's transition rule,
-- the card's and the account's controls and limits, a guarded hold.  What it
-- leaves out, compared with the extension:
--   - programme isolation: no row-level security, no visibility check, no
--     roles or switch to the extension's owner (it runs as the caller);
--   - idempotency: no idempotency key on card_order, and a repeated
--     external_id fails on the unique index (23505) instead of returning
--     the first answer;
--   - cryptography: pgcrypto has no AES-GCM, so the PAN is sealed with
--     AES-256-CBC (PKCS#7 padding, random IV in front of the ciphertext) and
--     nothing authenticates it; the keys sit in a table (reference.key), not
--     in a key file outside the database, with one key version and no
--     rotation; the clear PAN passes through SQL values and is not wiped;
--   - no PINs, replacement chains (reissues, the chain's limits and lock
--     order), hosted activation (physical cards), card.card_status_guard's
--     check on direct UPDATEs, or the expired card's refusal in set_status;
--   - foreign keys: LIKE copies none, so its rows are checked against no
--     other table (the extension's card row has a key to its account's
--     member, and its audit row one to the card: two look-ups with a row
--     lock each per order, and two more trigger events for the replacement
--     keys, which are NULL on an order);
--   - the live feed's writer lock and wake-up (events_after's ordering
--     guarantee), and argument checks beyond what the tables' CHECKs catch;
--   - card_order returns the card's id, not the card.cards row.
-- Run after bench/authorize_setup.sql (and bench/twin/setup.sql, which it
-- does not need), in the same database.
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA reference;
CREATE TABLE reference.account (LIKE card.account INCLUDING ALL);
CREATE TABLE reference.card (LIKE card.card INCLUDING ALL);
-- LIKE copies no storage parameters: the card table's fillfactor, as the extension's.
ALTER TABLE reference.card SET (fillfactor = 90);
CREATE TABLE reference.card_status_change (LIKE card.card_status_change INCLUDING ALL);
CREATE TABLE reference."authorization" (LIKE card."authorization" INCLUDING ALL);
CREATE TABLE reference.event (LIKE card.event INCLUDING ALL);
CREATE TABLE reference.spend_limit (LIKE card.spend_limit INCLUDING ALL);
-- Its own event sequence (LIKE copies the default, card.event_seq).
CREATE SEQUENCE reference.event_seq OWNED BY reference.event.seq;
ALTER TABLE reference.event ALTER seq SET DEFAULT nextval('reference.event_seq');

-- The keys: one row, its id the PAN key version.  32-byte keys: AES-256.
CREATE TABLE reference.key (
    version     smallint PRIMARY KEY CHECK (version > 0),
    mac_key     bytea NOT NULL CHECK (length(mac_key) = 32),
    pan_key     bytea NOT NULL CHECK (length(pan_key) = 32)
);
INSERT INTO reference.key VALUES (1, gen_random_bytes(32), gen_random_bytes(32));

INSERT INTO reference.spend_limit OVERRIDING SYSTEM VALUE SELECT * FROM card.spend_limit;
INSERT INTO reference.account SELECT * FROM card.account;
INSERT INTO reference.card (id, programme_id, account_id, individual_id, display_name, type, status,
                            exp_month, exp_year, last4, token, pan_ciphertext, pan_key_version,
                            pan_fingerprint, controls, mcc_allowed, mcc_blocked, countries_allowed,
                            countries_blocked, channels_blocked, created_at)
SELECT id, programme_id, account_id, individual_id, display_name, type, status, exp_month,
       exp_year, last4, token, pan_ciphertext, pan_key_version, pan_fingerprint, controls,
       mcc_allowed, mcc_blocked, countries_allowed, countries_blocked, channels_blocked, created_at
  FROM card.card;

-- The UTC calendar window of a limit period that holds a moment.
CREATE FUNCTION reference.window_start(period card.spend_interval, at timestamptz)
    RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE period
    WHEN 'daily'    THEN date_trunc('day',   at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'weekly'   THEN date_trunc('week',  at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'monthly'  THEN date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'yearly'   THEN date_trunc('year',  at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'all_time' THEN '-infinity'::timestamptz
END;

-- A new card on an account: PAN, fingerprint, ciphertext, token, expiry;
-- the card row, its first audit row and its card.ordered event.
CREATE FUNCTION reference.card_order(individual uuid, account uuid, display_name text)
    RETURNS uuid
    LANGUAGE plpgsql
AS $$
DECLARE
    acct record;
    k reference.key;
    pan text;
    rnd bytea;
    total integer;
    d integer;
    iv bytea;
    expiry timestamp;
    new_id uuid;
BEGIN
    SELECT a.programme_id, a.individual_id, a.status, p.bin, p.pan_length, p.validity_years
      INTO acct
      FROM reference.account a JOIN card.programme p ON p.id = a.programme_id
     WHERE a.id = card_order.account
       FOR SHARE OF a;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % does not exist', account USING ERRCODE = 'no_data_found';
    END IF;
    IF acct.individual_id <> individual THEN
        RAISE EXCEPTION 'individual % does not hold account %', individual, account
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF acct.status <> 'active' THEN
        RAISE EXCEPTION 'account % is %', account, acct.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT * INTO k FROM reference.key ORDER BY version DESC LIMIT 1;
    expiry := (now() AT TIME ZONE 'UTC') + make_interval(years => acct.validity_years);

    -- A PAN or token already taken: draw again (the unique indexes say so).
    FOR attempt IN 1..16 LOOP
        -- BIN, uniform random digits (bytes >= 250 dropped), Luhn check digit.
        pan := acct.bin;
        WHILE length(pan) < acct.pan_length - 1 LOOP
            rnd := gen_random_bytes(acct.pan_length);
            FOR i IN 0..length(rnd) - 1 LOOP
                EXIT WHEN length(pan) = acct.pan_length - 1;
                IF get_byte(rnd, i) < 250 THEN
                    pan := pan || (get_byte(rnd, i) % 10)::text;
                END IF;
            END LOOP;
        END LOOP;
        total := 0;
        FOR i IN 1..length(pan) LOOP            -- from the right, doubling the first
            d := substr(pan, length(pan) + 1 - i, 1)::integer;
            IF i % 2 = 1 THEN
                d := d * 2;
                IF d > 9 THEN d := d - 9; END IF;
            END IF;
            total := total + d;
        END LOOP;
        pan := pan || ((10 - total % 10) % 10)::text;

        iv := gen_random_bytes(16);
        INSERT INTO reference.card (id, programme_id, account_id, individual_id, display_name,
                                    type, exp_month, exp_year, last4, token,
                                    pan_ciphertext, pan_key_version, pan_fingerprint)
        VALUES (gen_random_uuid(), acct.programme_id, account, individual, display_name,
                'virtual', to_char(expiry, 'MM'), to_char(expiry, 'YYYY'), right(pan, 4),
                'ct_' || translate(encode(gen_random_bytes(18), 'base64'), '+/', '-_'),
                -- pgcrypto has no GCM: CBC, unauthenticated (see the top).
                iv || encrypt_iv(convert_to(pan, 'UTF8'), k.pan_key, iv, 'aes-cbc/pad:pkcs'),
                k.version,
                hmac(convert_to(pan, 'UTF8'), k.mac_key, 'sha256'))
        ON CONFLICT DO NOTHING
        RETURNING id INTO new_id;
        EXIT WHEN new_id IS NOT NULL;
    END LOOP;
    IF new_id IS NULL THEN
        RAISE EXCEPTION 'no unused PAN found for account %', account
            USING ERRCODE = 'program_limit_exceeded';
    END IF;

    INSERT INTO reference.card_status_change (card_id, from_status, to_status, reason, channel, actor)
    VALUES (new_id, NULL, 'not_activated', 'ordered', 'api', current_user);
    INSERT INTO reference.event (type, card_id, account_id, programme_id, data)
    VALUES ('card.ordered', new_id, account, acct.programme_id,
            jsonb_build_object('status', 'not_activated', 'type', 'virtual',
                               'display_name', display_name,
                               'exp_month', to_char(expiry, 'MM'),
                               'exp_year', to_char(expiry, 'YYYY'), 'last4', right(pan, 4)));
    RETURN new_id;
END
$$;

-- A status change through the lifecycle's rule: the UPDATE, its audit row
-- and its event.  The same status again is a no-op, as in the extension.
CREATE FUNCTION reference.card_set_status(card uuid, status text)
    RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    c record;
    new_status card.card_status := card_set_status.status;
    allowed boolean;
BEGIN
    SELECT k.status, k.account_id, k.programme_id INTO c
      FROM reference.card k WHERE k.id = card_set_status.card
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'card % does not exist', card_set_status.card USING ERRCODE = 'no_data_found';
    END IF;
    IF c.status = new_status THEN
        RETURN;
    END IF;
    -- not_activated -> active; active <-> frozen; any live status -> blocked,
    -- lost, stolen or expired, which are final.
    allowed := CASE
                   WHEN c.status = 'not_activated' THEN new_status <> 'frozen'
                   WHEN c.status IN ('active', 'frozen') THEN new_status <> 'not_activated'
                   ELSE false
               END;
    IF NOT allowed THEN
        RAISE EXCEPTION 'card % cannot go from % to %', card_set_status.card, c.status, new_status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE reference.card k SET status = new_status WHERE k.id = card_set_status.card;
    INSERT INTO reference.card_status_change (card_id, from_status, to_status, reason, channel, actor)
    VALUES (card_set_status.card, c.status, new_status, NULL, 'api', current_user);
    INSERT INTO reference.event (type, card_id, account_id, programme_id, data)
    VALUES (CASE WHEN c.status = 'not_activated' AND new_status = 'active'
                 THEN 'card.activated' ELSE 'card.status_changed' END::card.event_type,
            card_set_status.card, c.account_id, c.programme_id,
            jsonb_build_object('from', c.status, 'to', new_status, 'reason', NULL,
                               'channel', 'api'));
END
$$;

-- An authorisation by token: the card (share-locked) and its account
-- (locked) read, the card's and the account's controls and every
-- applicable limit checked, then either the guarded hold, the limits'
-- counters, the authorization row and its event, or the declined row and
-- its event.
CREATE FUNCTION reference.card_authorize(token text, amount bigint, currency text, mcc text,
                                         country text, channel text, external_id text)
    RETURNS boolean
    LANGUAGE plpgsql
AS $$
DECLARE
    c record;
    a record;
    mcc_code integer := card_authorize.mcc::integer;
    limits_ok boolean;
    reason text;
    available bigint;
    auth_id uuid := gen_random_uuid();
BEGIN
    SELECT k.id, k.account_id, k.programme_id, k.status, k.expires_on, k.mcc_allowed,
           k.mcc_blocked, k.countries_allowed, k.countries_blocked, k.channels_blocked,
           p.hold_lifetime
      INTO c
      FROM reference.card k JOIN card.programme p ON p.id = k.programme_id
     WHERE k.token = card_authorize.token
       FOR SHARE OF k;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no card has this token' USING ERRCODE = 'no_data_found';
    END IF;
    SELECT x.status, x.currency, x.balance - x.held AS available, x.mcc_allowed, x.mcc_blocked,
           x.countries_allowed, x.countries_blocked, x.channels_blocked
      INTO a
      FROM reference.account x WHERE x.id = c.account_id
       FOR NO KEY UPDATE;
    -- Read under the account's lock: the counters hold still.
    SELECT coalesce(bool_and(CASE WHEN l.period = 'per_authorization'
                                  THEN card_authorize.amount <= l.amount
                                  ELSE card_authorize.amount
                                       + CASE WHEN l.window_start = reference.window_start(l.period, now())
                                              THEN l.spent ELSE 0 END <= l.amount END), true)
      INTO limits_ok
      FROM reference.spend_limit l
     WHERE (l.card_id = c.id OR l.account_id = c.account_id)
       AND (l.categories IS NULL OR l.categories @> mcc_code);

    reason := CASE
        WHEN c.status IN ('not_activated', 'active', 'frozen')
             AND c.expires_on <= (now() AT TIME ZONE 'UTC')::date THEN 'card_expired'
        WHEN c.status <> 'active' THEN 'card_not_active'
        WHEN a.status <> 'active' THEN 'account_not_active'
        WHEN a.currency <> card_authorize.currency THEN 'currency_mismatch'
        WHEN card_authorize.channel = ANY (c.channels_blocked)
             OR card_authorize.channel = ANY (a.channels_blocked) THEN 'channel_blocked'
        WHEN card_authorize.country = ANY (c.countries_blocked)
             OR card_authorize.country <> ALL (c.countries_allowed)
             OR card_authorize.country = ANY (a.countries_blocked)
             OR card_authorize.country <> ALL (a.countries_allowed) THEN 'country_blocked'
        WHEN c.mcc_blocked @> mcc_code OR NOT c.mcc_allowed @> mcc_code
             OR a.mcc_blocked @> mcc_code OR NOT a.mcc_allowed @> mcc_code THEN 'category_blocked'
        WHEN NOT limits_ok THEN 'spending_limit'
        WHEN a.available < card_authorize.amount THEN 'insufficient_funds'
    END;

    IF reason IS NULL THEN
        UPDATE reference.account x SET held = x.held + card_authorize.amount
         WHERE x.id = c.account_id AND x.balance - x.held >= card_authorize.amount
        RETURNING x.balance - x.held INTO available;
        IF NOT FOUND THEN
            reason := 'insufficient_funds';
        END IF;
    END IF;

    IF reason IS NULL THEN
        UPDATE reference.spend_limit l
           SET spent = card_authorize.amount
                       + CASE WHEN l.window_start = reference.window_start(l.period, now())
                              THEN l.spent ELSE 0 END,
               window_start = reference.window_start(l.period, now())
         WHERE (l.card_id = c.id OR l.account_id = c.account_id)
           AND l.period <> 'per_authorization'
           AND (l.categories IS NULL OR l.categories @> mcc_code);
        INSERT INTO reference."authorization" (id, programme_id, card_id, account_id, external_id,
                                               amount, currency, mcc, merchant_country, channel,
                                               approved, status, held, available_after, expires_at)
        VALUES (auth_id, c.programme_id, c.id, c.account_id, card_authorize.external_id,
                card_authorize.amount, card_authorize.currency, card_authorize.mcc,
                card_authorize.country, card_authorize.channel,
                true, 'pending', card_authorize.amount, available, now() + c.hold_lifetime);
        INSERT INTO reference.event (type, card_id, account_id, programme_id, data)
        VALUES ('authorization.approved', c.id, c.account_id, c.programme_id,
                jsonb_build_object('authorization_id', auth_id, 'amount', card_authorize.amount,
                                   'currency', card_authorize.currency, 'mcc', card_authorize.mcc,
                                   'merchant_country', card_authorize.country,
                                   'channel', card_authorize.channel, 'merchant_name', NULL,
                                   'available', available));
        RETURN true;
    END IF;

    INSERT INTO reference."authorization" (id, programme_id, card_id, account_id, external_id,
                                           amount, currency, mcc, merchant_country, channel,
                                           approved, decline_reason, status, held, available_after)
    VALUES (auth_id, c.programme_id, c.id, c.account_id, card_authorize.external_id,
            card_authorize.amount, card_authorize.currency, card_authorize.mcc,
            card_authorize.country, card_authorize.channel,
            false, reason::card.decline_reason, 'declined', 0, a.available);
    INSERT INTO reference.event (type, card_id, account_id, programme_id, data)
    VALUES ('authorization.declined', c.id, c.account_id, c.programme_id,
            jsonb_build_object('authorization_id', auth_id, 'amount', card_authorize.amount,
                               'currency', card_authorize.currency, 'mcc', card_authorize.mcc,
                               'merchant_country', card_authorize.country,
                               'channel', card_authorize.channel, 'merchant_name', NULL,
                               'decline_reason', reason, 'available', a.available));
    RETURN false;
END
$$;
ANALYZE;
