-- Shared by the pgTAP suites (included with \ir, not run on its own).
-- What the hosted page is shown for a card, through a fresh reveal link.
CREATE FUNCTION pg_temp.tap_reveal(c uuid, OUT pan text, OUT exp_month text, OUT exp_year text, OUT cvv text)
LANGUAGE plpgsql AS $$
DECLARE
    tok text;
BEGIN
    SELECT substring(redirect_url FROM 'token=(.*)$') INTO tok
      FROM card.card_reveal_start(c, 'https://app.example.com/back');
    SELECT r.pan, r.exp_month, r.exp_year, r.cvv INTO pan, exp_month, exp_year, cvv FROM card.card_reveal(tok) r;
END $$;
