-- status.sql: the card lifecycle's statuses and rules (DESIGN.md section 5;
-- C: src/status.c holds the transition table that the trigger and
-- card_status_transitions() both read).

CREATE TYPE card.card_status AS ENUM
    ('not_activated', 'active', 'frozen', 'blocked', 'lost', 'stolen', 'expired');

-- The status a card really has: a live card whose expiry month has ended
-- (expires_on, the first day after it, is today or earlier in UTC) is expired
-- for every purpose, even before card.card_expire_due() records it.  The
-- lifecycle trigger applies the same rule in C (src/status.c).
CREATE FUNCTION card.effective_status(status card.card_status, expires_on date)
    RETURNS card.card_status
    LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN status IN (@CARD_LIVE_STATUSES@)
                 AND expires_on <= (pg_catalog.now() AT TIME ZONE 'UTC')::date
            THEN 'expired'::card.card_status
            ELSE status
       END;
REVOKE ALL ON FUNCTION card.effective_status(card.card_status, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.effective_status(card.card_status, date) TO card_admin, card_api, card_processor, card_hosted_pages, card_reader;

-- Lifecycle: the C trigger enforces DESIGN.md section 5 on every write
CREATE FUNCTION card.card_status_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'card_status_guard'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_status_guard() FROM PUBLIC;

CREATE FUNCTION card.card_status_audit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'card_status_audit'
    LANGUAGE C
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_status_audit() FROM PUBLIC;

CREATE FUNCTION card.card_status_transitions(
    OUT from_status card.card_status, OUT to_status card.card_status,
    OUT rule text, OUT who_may text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'card_status_transitions'
    LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 49
    SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION card.card_status_transitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION card.card_status_transitions() TO card_admin, card_api, card_reader;
