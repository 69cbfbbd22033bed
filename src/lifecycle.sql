-- lifecycle.sql: status changes, their audit trail and the triggers that
-- enforce the lifecycle (DESIGN.md section 4; C: src/lifecycle.c for the
-- changes, src/status.c for the rules).

-- The audit trail: one row per status change, the first when ordered.  Its
-- time is the time of the change, not of its transaction's start: a change
-- that waited for a card's lock behind a later transaction would get the
-- earlier time, and ordering a card's changes by time would contradict its
-- status (found by test/crash.sh).
CREATE TABLE card.card_status_change (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    card_id         uuid NOT NULL REFERENCES card.card,
    from_status     card.card_status,
    to_status       card.card_status NOT NULL,
    reason          text,
    channel         text NOT NULL
                    CHECK (channel IN ('api', 'holder', 'operator', 'system', 'fraud')),
    actor           name NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX card_status_change_card_idx ON card.card_status_change (card_id, id);
SELECT pg_catalog.pg_extension_config_dump('card.card_status_change', '');
-- No statistics on what tenants write (1.7): the planner's estimates for a
-- query under row-level security come from every programme's rows, and
-- EXPLAIN would show another programme's most common values.
ALTER TABLE card.card_status_change ALTER reason SET STATISTICS 0,
    ALTER actor SET STATISTICS 0;
SELECT pg_catalog.pg_extension_config_dump('card.card_status_change_id_seq', '');
-- Rows of a card or an account: visible with it (its own policy applies).
ALTER TABLE card.card_status_change ENABLE ROW LEVEL SECURITY;
CREATE POLICY card_of_caller ON card.card_status_change
    USING (card_id IN (SELECT c.id FROM card.card c));

-- A card's status history as a backend reads it (1.7), through the audit
-- trail's policy (the caller's cards only).
GRANT SELECT (id, card_id, from_status, to_status, reason, channel, actor, changed_at)
    ON card.card_status_change TO card_admin, card_api, card_reader;
CREATE VIEW card.status_history WITH (security_invoker = true) AS
SELECT s.id, s.card_id, s.from_status, s.to_status, s.reason, s.channel, s.actor, s.changed_at
  FROM card.card_status_change s;
GRANT SELECT ON card.status_history TO card_admin, card_api, card_reader;

-- Every change of a card's status goes through the transition table
-- (card_status_guard) and leaves a row in the audit trail.
CREATE TRIGGER card_status_guard
    BEFORE UPDATE OF status, type, exp_month, exp_year ON card.card
    FOR EACH ROW EXECUTE FUNCTION card.card_status_guard();
-- It also ends the other cards of the PAN that a change ends (a lost or
-- stolen card, a reissue's activation: card.end_same_pan, replace.sql).
-- No WHEN condition (1.12): PostgreSQL compiles one at each statement that
-- fires the trigger; the function makes the same tests.
CREATE TRIGGER card_status_audit
    AFTER UPDATE OF status ON card.card
    FOR EACH ROW EXECUTE FUNCTION card.card_status_audit();

-- Changes a card's status (C: src/lifecycle.c), its account locked first.
CREATE FUNCTION card.card_set_status(
    card_id uuid, status card.card_status, reason text DEFAULT NULL,
    channel text DEFAULT 'api')
    RETURNS card.cards
    AS 'MODULE_PATHNAME', 'card_set_status'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_set_status(uuid, card.card_status, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_set_status(uuid, card.card_status, text, text) TO card_api;

-- The daily sweep: cards whose expiry month has ended become expired.
CREATE FUNCTION card.card_expire_due(
    as_of date DEFAULT (pg_catalog.now() AT TIME ZONE 'UTC')::date)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'card_expire_due'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_expire_due(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_expire_due(date) TO card_admin;

-- PATCH /v3/cards/:id with {"status": ...} or {"return_url": ...}
CREATE FUNCTION card_internal.card_update(card_id uuid, request jsonb)
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
REVOKE ALL ON FUNCTION card_internal.card_update(uuid, jsonb) FROM PUBLIC;
CREATE FUNCTION card.card_update(card_id uuid, request jsonb)
    RETURNS jsonb
    AS 'MODULE_PATHNAME', 'card_plpgsql_entry'
    LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION card.card_update(uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_update(uuid, jsonb) TO card_api;
