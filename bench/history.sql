-- :count prior authorisations, spread over the benchmark cards, committed
-- in batches (one transaction updating one account row 100,000 times would
-- measure PostgreSQL's version chains, not history).
CREATE PROCEDURE bench_history(total integer, prefix text, only_card integer DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    cards integer := (SELECT count(*) FROM bench_card);
BEGIN
    FOR batch IN 0 .. (total - 1) / 100 LOOP
        PERFORM card.card_authorize(b.token, 1, 'EUR', '5411', 'SE', 'chip', prefix || g)
           FROM generate_series(batch * 100 + 1, least((batch + 1) * 100, total)) g
           JOIN bench_card b ON b.n = coalesce(only_card, 1 + g % cards);
        COMMIT;
    END LOOP;
END $$;
CALL bench_history(:count, 'history-');
