-- :count prior authorisations, spread over the benchmark cards.
SELECT count(*) FILTER (WHERE a.approved) AS approved_history
  FROM generate_series(1, :count) g
  JOIN bench_card b ON b.n = 1 + g % (SELECT count(*) FROM bench_card)
  CROSS JOIN LATERAL card.card_authorize(b.token, 100, 'EUR', '5411', 'SE', 'chip', 'history-' || g) a;
