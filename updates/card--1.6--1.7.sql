/* card--1.6--1.7.sql: the DBA's experience (issue 14) */

\echo Use "ALTER EXTENSION card UPDATE TO '1.7'" to load this file. \quit

-- A card_update status outside the list names "blocked" in its hint too.
CREATE OR REPLACE FUNCTION card_internal.card_update(card_id uuid, request jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_status text;
    return_url text;
    link record;
BEGIN
    PERFORM card.json_check_fields(request, 'card update',
        ARRAY['status', 'return_url', 'reason', 'channel']);
    new_status := card.json_text_field(request, 'status');
    return_url := card.json_text_field(request, 'return_url');
    IF new_status IS NOT NULL AND return_url IS NOT NULL THEN
        RAISE EXCEPTION 'card update takes either "status" or "return_url", not both'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF return_url IS NOT NULL THEN
        IF request ?| ARRAY['reason', 'channel'] THEN
            RAISE EXCEPTION '"reason" and "channel" go with "status" only'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT * INTO link FROM card.card_activation_start(card_id, return_url);
        RETURN jsonb_build_object('redirect_url', link.redirect_url,
                                  'expires_at', link.expires_at);
    END IF;
    IF new_status IS NULL THEN
        RAISE EXCEPTION 'card update needs "status" or "return_url"'
            USING ERRCODE = 'not_null_violation';
    END IF;
    IF new_status = 'block' THEN
        new_status := 'blocked';
    ELSIF new_status NOT IN ('active', 'frozen', 'blocked', 'lost', 'stolen') THEN
        RAISE EXCEPTION 'invalid status "%"', new_status
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use active, frozen, block (or blocked), lost or stolen.';
    END IF;
    RETURN to_jsonb(card.card_set_status(
        card_id => card_id,
        status  => new_status::card.card_status,
        reason  => card.json_text_field(request, 'reason'),
        channel => coalesce(card.json_text_field(request, 'channel'), 'api')));
END
$$;

-- Consumers stand no further than the last seq drawn (consumer_ack,
-- consumer_register's start_after): beyond it they would skip events.
CREATE FUNCTION card_internal.cursor_check(cursor bigint, field text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last_seq bigint;
BEGIN
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END INTO last_seq FROM card.event_seq s;
    IF cursor > last_seq THEN
        RAISE EXCEPTION '% % is beyond the last event', field, cursor
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Acknowledge the seq of an event read from card.events_after(); a larger one would skip the events written after it.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION card_internal.cursor_check(bigint, text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION card_internal.consumer_register(name text, start_after bigint DEFAULT 0)
    RETURNS bigint
    LANGUAGE plpgsql
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
    PERFORM card_internal.cursor_check(start_after, 'start_after');
    INSERT INTO card.event_consumer AS c (role_name, name, cursor)
    VALUES (card.consumer_role(name), name, start_after)
    ON CONFLICT ON CONSTRAINT event_consumer_pkey DO NOTHING;
    SELECT c.cursor INTO result FROM card.event_consumer c WHERE c.role_name = card.consumer_role(consumer_register.name)
       AND c.name = consumer_register.name;
    RETURN result;
END
$$;
CREATE OR REPLACE FUNCTION card_internal.consumer_ack(name text, cursor bigint)
    RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result bigint;
BEGIN
    IF name IS NULL OR cursor IS NULL THEN
        RAISE EXCEPTION '% is required', CASE WHEN name IS NULL THEN 'name' ELSE 'cursor' END
            USING ERRCODE = 'not_null_violation';
    END IF;
    PERFORM card_internal.cursor_check(cursor, 'cursor');
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

-- programme_revoke refuses a role that does not exist, as programme_grant
-- does (a grant left behind by a dropped role is still taken back).
CREATE OR REPLACE FUNCTION card_internal.programme_revoke(programme_id uuid, role name)
    RETURNS boolean
    LANGUAGE plpgsql
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
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
                                  WHERE r.rolname = programme_revoke.role) THEN
        RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = 'undefined_object';
    END IF;
    RETURN FOUND;
END
$$;

-- Cardholders as a backend reads them (1.7): names, no secrets (a
-- cardholder holds none), the caller's programmes only.
GRANT SELECT (id, programme_id, name, created_at)
    ON card.individual TO card_admin, card_api, card_reader;
CREATE VIEW card.individuals WITH (security_invoker = true) AS
SELECT i.id, i.programme_id, i.name, i.created_at
  FROM card.individual i;
GRANT SELECT ON card.individuals TO card_admin, card_api, card_reader;

-- A card's status history as a backend reads it (1.7), through the audit
-- trail's policy (the caller's cards only).
GRANT SELECT (id, card_id, from_status, to_status, reason, channel, actor, changed_at)
    ON card.card_status_change TO card_admin, card_api, card_reader;
CREATE VIEW card.status_history WITH (security_invoker = true) AS
SELECT s.id, s.card_id, s.from_status, s.to_status, s.reason, s.channel, s.actor, s.changed_at
  FROM card.card_status_change s;
GRANT SELECT ON card.status_history TO card_admin, card_api, card_reader;

-- Authorisations as a backend reads them (1.7): the view reads the table as
-- the querying role, so its policy shows only the caller's programmes.
GRANT SELECT (id, programme_id, card_id, account_id, external_id, amount, currency, mcc,
              merchant_country, channel, merchant_name, approved, decline_reason, status,
              held, captured, released, created_at, expires_at, resolved_at)
    ON card."authorization" TO card_admin, card_api, card_reader;
CREATE VIEW card.authorizations WITH (security_invoker = true) AS
SELECT h.id, h.card_id, h.account_id, h.external_id, h.amount, h.currency, h.mcc,
       h.merchant_country, h.channel, h.merchant_name, h.approved, h.decline_reason,
       h.status, h.held, h.captured, h.released, h.created_at, h.expires_at, h.resolved_at
  FROM card."authorization" h;
GRANT SELECT ON card.authorizations TO card_admin, card_api, card_reader;
