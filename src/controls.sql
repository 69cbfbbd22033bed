-- controls.sql: spend controls and limits (DESIGN.md section 8).  Set in
-- PL/pgSQL; card_authorize (src/authorize.c) reads the parts they store.

-- Enums rather than CHECK lists on the hot tables: PostgreSQL re-reads every
-- CHECK expression for each statement that writes a table, and an enum
-- costs nothing there.
CREATE TYPE card.spend_interval AS ENUM
    ('per_authorization', 'daily', 'weekly', 'monthly', 'yearly', 'all_time');

-- Spending limits of a card or an account, in the order they were set,
-- each with its running spend in its current window: what authorisations
-- add and reversals, expiries and partial captures give back.  An
-- authorisation reads and updates one row per applicable limit, whatever
-- the card's history; a new window starts from zero.
CREATE TABLE card.spend_limit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id         uuid REFERENCES card.card ON DELETE CASCADE,
    account_id      uuid REFERENCES card.account ON DELETE CASCADE,
    position        integer NOT NULL,
    period          card.spend_interval NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    categories      int4multirange,     -- NULL: every category
    category_list   text[],             -- the categories as they were set
    window_start    timestamptz,        -- the window spent counts in
    spent           bigint NOT NULL DEFAULT 0 CHECK (spent >= 0),
    CHECK (num_nonnulls(card_id, account_id) = 1),
    CHECK ((period = 'per_authorization') = (window_start IS NULL))
);
CREATE INDEX spend_limit_card_idx ON card.spend_limit (card_id) WHERE card_id IS NOT NULL;
CREATE INDEX spend_limit_account_idx ON card.spend_limit (account_id) WHERE account_id IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('card.spend_limit', '');
ALTER TABLE card.spend_limit ENABLE ROW LEVEL SECURITY;
CREATE POLICY card_or_account_of_caller ON card.spend_limit
    USING (card_id IN (SELECT c.id FROM card.card c)
           OR account_id IN (SELECT a.id FROM card.account a));

SELECT pg_catalog.pg_extension_config_dump('card.spend_limit_id_seq', '');

-- The calendar window (UTC) of a limit period that contains a moment:
-- days from 00:00, ISO weeks from Monday, months, years; all_time is one window.
-- The body is parsed once, here (so no search_path applies at run time),
-- and the planner inlines it into card_authorize's statements.
CREATE FUNCTION card.spend_window_start(period card.spend_interval, at timestamptz)
    RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE period
    WHEN 'daily'    THEN pg_catalog.date_trunc('day',   at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'weekly'   THEN pg_catalog.date_trunc('week',  at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'monthly'  THEN pg_catalog.date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'yearly'   THEN pg_catalog.date_trunc('year',  at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    WHEN 'all_time' THEN '-infinity'::timestamptz
END;
REVOKE ALL ON FUNCTION card.spend_window_start(card.spend_interval, timestamp with time zone) FROM PUBLIC;

-- When the window that starts at window_start ends (NULL: never).
CREATE FUNCTION card.spend_window_end(period card.spend_interval, window_start timestamptz)
    RETURNS timestamptz
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ((window_start AT TIME ZONE 'UTC') + CASE period
    WHEN 'daily'    THEN interval '1 day'
    WHEN 'weekly'   THEN interval '7 days'
    WHEN 'monthly'  THEN interval '1 month'
    WHEN 'yearly'   THEN interval '1 year'
END) AT TIME ZONE 'UTC';
REVOKE ALL ON FUNCTION card.spend_window_end(card.spend_interval, timestamp with time zone) FROM PUBLIC;

-- A category list ("5812", "5813-5814") as a multirange; refuses bad entries.
CREATE FUNCTION card.controls_categories(list jsonb, field text)
    RETURNS int4multirange
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry jsonb;
    parts text[];
    result int4multirange := '{}';
BEGIN
    IF jsonb_typeof(list) <> 'array' THEN
        RAISE EXCEPTION 'controls field "%" must be an array of categories', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR entry IN SELECT e FROM jsonb_array_elements(list) e LOOP
        IF jsonb_typeof(entry) <> 'string' OR entry #>> '{}' !~ '^[0-9]{4}(-[0-9]{4})?$' THEN
            RAISE EXCEPTION 'controls field "%" has an invalid category %', field, entry
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A category is a 4-digit MCC such as "5812" or a range such as "5813-5814".';
        END IF;
        parts := string_to_array(entry #>> '{}', '-');
        IF parts[2] IS NOT NULL AND parts[2] < parts[1] THEN
            RAISE EXCEPTION 'controls field "%" has an empty category range %', field, entry
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        result := result + int4multirange(int4range(parts[1]::int, coalesce(parts[2], parts[1])::int, '[]'));
    END LOOP;
    IF result = '{}' THEN
        RAISE EXCEPTION 'controls field "%" must not be empty', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION card.controls_categories(jsonb, text) FROM PUBLIC;

-- A country list (ISO 3166 alpha-2) as a sorted array; refuses bad entries.
CREATE FUNCTION card.controls_countries(list jsonb, field text)
    RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry jsonb;
    result text[] := '{}';
BEGIN
    IF jsonb_typeof(list) <> 'array' OR jsonb_array_length(list) = 0 THEN
        RAISE EXCEPTION 'controls field "%" must be a non-empty array of countries', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR entry IN SELECT e FROM jsonb_array_elements(list) e LOOP
        IF jsonb_typeof(entry) <> 'string' OR entry #>> '{}' !~ '^[A-Z]{2}$' THEN
            RAISE EXCEPTION 'controls field "%" has an invalid country %', field, entry
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A country is an ISO 3166 alpha-2 code such as "SE".';
        END IF;
        result := result || (entry #>> '{}');
    END LOOP;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION card.controls_countries(jsonb, text) FROM PUBLIC;

-- Stores the controls of a card (and its chain) or an account the caller
-- sees, and their limits.  Locks the account, then the chain in its order,
-- as every other writer of a chain does.
CREATE FUNCTION card.controls_apply(target_card uuid, target_account uuid, controls jsonb)
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
            IF channel_name NOT IN (@CARD_CHANNELS@) THEN
                RAISE EXCEPTION 'unknown channel "%" in controls field "channels"', channel_name
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Channels: @CARD_CHANNELS_TEXT@.';
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
REVOKE ALL ON FUNCTION card.controls_apply(uuid, uuid, jsonb) FROM PUBLIC;

CREATE FUNCTION card_internal.card_set_controls(card_id uuid, controls jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF card_id IS NULL THEN
        RAISE EXCEPTION 'card_id is required' USING ERRCODE = 'not_null_violation';
    END IF;
    RETURN card.controls_apply(card_id, NULL, controls);
END
$$;
REVOKE ALL ON FUNCTION card_internal.card_set_controls(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.card_set_controls(card_id uuid, controls jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.card_set_controls(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_set_controls(uuid, jsonb) TO card_api;

CREATE FUNCTION card_internal.account_set_controls(account_id uuid, controls jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF account_id IS NULL THEN
        RAISE EXCEPTION 'account_id is required' USING ERRCODE = 'not_null_violation';
    END IF;
    RETURN card.controls_apply(NULL, account_id, controls);
END
$$;
REVOKE ALL ON FUNCTION card_internal.account_set_controls(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.account_set_controls(account_id uuid, controls jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.account_set_controls(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.account_set_controls(uuid, jsonb) TO card_admin, card_api;

-- The controls of a card the caller sees, as set.
CREATE FUNCTION card_internal.card_controls(card_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
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
REVOKE ALL ON FUNCTION card_internal.card_controls(uuid) FROM PUBLIC;
CREATE FUNCTION card.card_controls(card_id uuid)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION card.card_controls(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_controls(uuid) TO card_api, card_reader;

-- The controls of an account the caller sees, as set.
CREATE FUNCTION card_internal.account_controls(account_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
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
REVOKE ALL ON FUNCTION card_internal.account_controls(uuid) FROM PUBLIC;
CREATE FUNCTION card.account_controls(account_id uuid)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION card.account_controls(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.account_controls(uuid) TO card_admin, card_api, card_reader;

-- Per limit of a card (the card's limits are its chain's) and of its
-- account: the amount, what the current window has spent, what remains,
-- and when the window started and resets.  Only cards the caller sees.
CREATE FUNCTION card_internal.card_spend_status(card_id uuid)
    RETURNS TABLE (scope text, "interval" text, amount bigint, categories text[],
                   spent bigint, remaining bigint, window_start timestamptz, resets_at timestamptz)
    LANGUAGE plpgsql STABLE
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
REVOKE ALL ON FUNCTION card_internal.card_spend_status(uuid) FROM PUBLIC;
CREATE FUNCTION card.card_spend_status(card_id uuid)
    RETURNS TABLE(scope text, "interval" text, amount bigint, categories text[], spent bigint, remaining bigint, window_start timestamp with time zone, resets_at timestamp with time zone)
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C STABLE ROWS 1000;
REVOKE ALL ON FUNCTION card.card_spend_status(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_spend_status(uuid) TO card_api, card_reader;
