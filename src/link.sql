-- link.sql: hosted-page links (activation, reveal, PIN reset; DESIGN.md
-- section 6; C: src/link.c).

-- Hosted-page links of every kind share one table and one set of rules:
-- single use, short lived, a newer link of the same purpose supersedes an
-- unused older one, the one-time token kept only as a keyed hash.
CREATE TYPE card.link_purpose AS ENUM ('activation', 'reveal', 'pin_reset');

CREATE TABLE card.hosted_link (
    token_hash      bytea PRIMARY KEY,
    card_id         uuid NOT NULL REFERENCES card.card,
    return_url      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at      timestamptz NOT NULL,
    consumed_at     timestamptz,
    outcome         text CHECK (outcome IN ('completed', 'superseded')),
    purpose         card.link_purpose NOT NULL,
    CHECK ((consumed_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX hosted_link_pending_idx ON card.hosted_link (card_id, purpose)
    WHERE consumed_at IS NULL;
SELECT pg_catalog.pg_extension_config_dump('card.hosted_link', '');
ALTER TABLE card.hosted_link ENABLE ROW LEVEL SECURITY;
CREATE POLICY card_of_caller ON card.hosted_link
    USING (card_id IN (SELECT c.id FROM card.card c));
