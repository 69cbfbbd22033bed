-- Each account's money beside what the money model (README) says it must
-- be: held = the sum of its pending holds, balance = credits - captures.
-- Shared by the suites that check those invariants (pgTAP 40_money, the
-- crash and the fuzzing suites).  Include with \ir after
-- \set money_view <the view to create>.
CREATE VIEW :money_view AS
SELECT a.id, a.balance, a.held,
       (SELECT coalesce(sum(h.held), 0) FROM card."authorization" h
         WHERE h.account_id = a.id AND h.status = 'pending') AS pending_holds,
       (SELECT coalesce(sum(c.amount), 0) FROM card.account_credit c WHERE c.account_id = a.id)
     - (SELECT coalesce(sum(h.captured), 0) FROM card."authorization" h WHERE h.account_id = a.id)
         AS credits_minus_captures
  FROM card.account a;
