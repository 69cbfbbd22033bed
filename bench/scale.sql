-- Filler data for bench/scale, loaded by the superuser straight into the
-- tables (the API would take hours for millions of cards).  Every row is one
-- the extension could have written: every CHECK, unique index and foreign
-- key is checked as usual and no trigger is disabled (card.card and
-- card.account have no INSERT triggers; their UPDATE triggers do not fire).
--
-- Per filler card, as the spread layout has: its own individual, its own
-- account (with its holder in account_member and a monthly account limit),
-- the card itself, active, with a daily card limit, and the two audit rows
-- an ordered and activated card has (not_activated, then active).  Ids are
-- time-ordered as the extension makes them (version 7): a millisecond
-- count from November 2023 up, one per filler card, then md5 of a counter;
-- token, PAN ciphertext (IV || 16 digits || tag, 44 bytes) and fingerprint
-- are random bytes of the real lengths.  The filler cards live
-- in a programme of their own with another BIN, so they do not use up the
-- PAN space that card_order draws from for the base programme.  No events
-- are written for them (the feed is append-only at its right edge).
\set ON_ERROR_STOP 1

CREATE FUNCTION bench_id(kind text, n bigint) RETURNS uuid
    LANGUAGE sql IMMUTABLE
RETURN (lpad(to_hex(1700000000000 + n), 12, '0') || '7' || substr(md5(kind || n), 1, 3)
        || '8' || substr(md5(kind || n), 4, 15))::uuid;

-- A time-ordered (version 7) id, as card_authorize gives its rows.
CREATE FUNCTION bench_time_uuid(at timestamptz) RETURNS uuid
    LANGUAGE sql VOLATILE
RETURN (lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7'
        || substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid;

-- Random bytes of a given length (at most 64).
CREATE FUNCTION bench_bytes(len integer) RETURNS bytea
    LANGUAGE sql VOLATILE
RETURN substr(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
              || uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 1, len);

-- Filler cards first_n .. last_n of programme prog, one transaction per batch.
CREATE PROCEDURE bench_fill(prog uuid, first_n bigint, last_n bigint, batch integer)
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint := first_n;
    hi bigint;
    this_year integer := extract(year FROM now() AT TIME ZONE 'UTC')::integer;
BEGIN
    WHILE lo <= last_n LOOP
        hi := least(lo + batch - 1, last_n);
        INSERT INTO card.individual (id, programme_id, name)
        SELECT bench_id('i', g), prog, 'Filler holder ' || g
          FROM generate_series(lo, hi) g;
        INSERT INTO card.account (id, programme_id, individual_id, currency, balance, controls)
        SELECT bench_id('a', g), prog, bench_id('i', g), 'EUR', 1000000000,
               '{"spending_limits": [{"amount": 900000000, "interval": "monthly"}]}'
          FROM generate_series(lo, hi) g;
        INSERT INTO card.account_member (account_id, individual_id, programme_id, role)
        SELECT bench_id('a', g), bench_id('i', g), prog, 'holder'
          FROM generate_series(lo, hi) g;
        INSERT INTO card.card (id, programme_id, account_id, individual_id, display_name, type,
                               status, exp_month, exp_year, last4, token, pan_ciphertext,
                               pan_key_version, pan_fingerprint, controls)
        SELECT bench_id('c', g), prog, bench_id('a', g), bench_id('i', g), 'Filler ' || g, 'virtual',
               'active', to_char(1 + g % 12, 'FM00'), (this_year + 1 + g % 3)::text,
               to_char(g % 10000, 'FM0000'),
               'ct_' || translate(rtrim(encode(bench_bytes(18), 'base64'), '='), '+/', '-_'),
               bench_bytes(12 + 16 + 16), 1, bench_bytes(32),
               '{"spending_limits": [{"amount": 50000000, "interval": "daily"}]}'
          FROM generate_series(lo, hi) g;
        INSERT INTO card.spend_limit (card_id, position, period, amount, window_start)
        SELECT bench_id('c', g), 1, 'daily', 50000000, card.spend_window_start('daily', now())
          FROM generate_series(lo, hi) g;
        INSERT INTO card.spend_limit (account_id, position, period, amount, window_start)
        SELECT bench_id('a', g), 1, 'monthly', 900000000, card.spend_window_start('monthly', now())
          FROM generate_series(lo, hi) g;
        INSERT INTO card.card_status_change (card_id, from_status, to_status, channel, actor)
        SELECT bench_id('c', g), s.from_status, s.to_status, 'api', current_user
          FROM generate_series(lo, hi) g,
               (VALUES (NULL, 'not_activated'::card.card_status),
                       ('not_activated'::card.card_status, 'active'::card.card_status))
                   s (from_status, to_status);
        COMMIT;
        lo := hi + 1;
    END LOOP;
END $$;

-- per_card prior authorisations on each of the cards n = 1 .. hot of
-- bench_card, one transaction per card: one in twenty declined
-- (insufficient funds), the rest captured in full, one every five minutes
-- going back from now (100,000 reach back about a year), with the random
-- external ids processors send.  Captured history leaves no hold, so the
-- accounts' held amounts stay as they are.
CREATE PROCEDURE bench_prior(per_card integer, hot integer)
LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT k.id, k.programme_id, k.account_id
               FROM bench_card b JOIN card.card k ON k.id = b.card_id
              WHERE b.n <= hot ORDER BY b.n LOOP
        INSERT INTO card."authorization" (id, programme_id, card_id, account_id, external_id,
                                          amount, currency, mcc, merchant_country, channel,
                                          merchant_name, approved, decline_reason, status,
                                          held, captured, released, available_after,
                                          created_at, expires_at, resolved_at)
        SELECT bench_time_uuid(t.at), c.programme_id, c.id, c.account_id, gen_random_uuid()::text,
               t.amount, 'EUR', '5411', 'SE', 'chip', 'Prior merchant', NOT t.declined,
               CASE WHEN t.declined THEN 'insufficient_funds'::card.decline_reason END,
               CASE WHEN t.declined THEN 'declined' ELSE 'captured' END::card.authorization_status,
               0, CASE WHEN t.declined THEN 0 ELSE t.amount END, 0, 1000000000,
               t.at,
               CASE WHEN NOT t.declined THEN t.at + interval '7 days' END,
               CASE WHEN NOT t.declined THEN t.at + interval '1 day' END
          FROM (SELECT g % 20 = 0 AS declined, 100 + (g * 7919) % 10000 AS amount,
                       now() - g * interval '5 minutes' AS at
                  FROM generate_series(per_card, 1, -1) g) t;
        COMMIT;
    END LOOP;
END $$;
