-- Which shard an id or a token belongs to (1.8, issue 15).  This cluster is
-- shard 0 (card.shard unset): what it makes is shard 0's, as every id of a
-- single server is; ids and tokens marked by shard k > 0 read as k's.
\set VERBOSITY sqlstate
SELECT current_setting('card.shard') AS setting, card.shard();
SELECT programme_id AS prog, individual_id AS holder, account_id AS acct
  FROM test_account('Shards') \gset
SELECT id AS c FROM card.card_order(:'holder', :'acct', 'Shard card') \gset
SELECT card.shard_of(:'prog') AS programme, card.shard_of(:'holder') AS individual,
       card.shard_of(:'acct') AS account, card.shard_of(:'c') AS card,
       card.shard_of_token((SELECT token FROM card.card WHERE id = :'c')) AS token,
       substr(card.new_id()::text, 15, 1) AS new_id_version;
-- Version 8 ids carry the shard in the 12 bits after the version nibble;
-- other versions are shard 0's.
SELECT id, card.shard_of(id::uuid)
  FROM (VALUES ('01890a5d-ac96-8001-9c3e-a1b2c3d4e5f6'), ('01890a5d-ac96-8fff-9c3e-a1b2c3d4e5f6'),
               ('01890a5d-ac96-8a0b-9c3e-a1b2c3d4e5f6'), ('01890a5d-ac96-7001-9c3e-a1b2c3d4e5f6'),
               ('01890a5d-ac96-4fff-9c3e-a1b2c3d4e5f6')) v(id);
-- Tokens: "<prefix>k.<random>" is k's; without the marker, or not a token: 0.
SELECT t, card.shard_of_token(t)
  FROM (VALUES ('ct_1.AAAAAAAAAAAAAAAAAAAAAAAA'), ('act_4095.AAAA'), ('ct_AAAAAAAAAAAAAAAAAAAAAAAA'),
               ('ct_12AAAAAAAAAAAAAAAAAAAAAA'), ('ct_4096.AAAA'), ('ct_99999999.AAAA'), ('no token'), ('')) v(t);
-- A marked link token of the right form is looked up (none such here:
-- P0002), not refused as malformed; a marker without the random part is.
SELECT * FROM card.card_activation_complete('act_3.' || repeat('A', 43), '1234');
SELECT * FROM card.card_activation_complete('act_3.AAAA', '1234');
SELECT * FROM card.card_activation_complete('act_x.' || repeat('A', 43), '1234');
-- Every id the extension makes is time-ordered (version 7 since 1.8): its
-- first 48 bits are the Unix time in milliseconds, so a new row lands at the
-- right edge of every index that leads with an id, not on a random leaf.
SELECT id AS c2 FROM card.card_order(:'holder', :'acct', 'Second shard card') \gset
SELECT id AS r FROM card.card_replace(:'c2', 'lost') \gset
SELECT v.what, substr(v.id::text, 15, 1) AS version,
       abs(extract(epoch FROM clock_timestamp()) * 1000
           - ('x' || lpad(replace(left(v.id::text, 13), '-', ''), 16, '0'))::bit(64)::bigint)
           < 600000 AS made_in_the_last_ten_minutes
  FROM (VALUES ('individual', :'holder'::uuid), ('account', :'acct'), ('card', :'c'),
               ('second card', :'c2'), ('replacement', :'r'), ('new_id()', card.new_id())) v(what, id);
SELECT left(:'c', 13) <= left(:'c2', 13) AND left(:'c2', 13) <= left(:'r', 13) AS in_order_of_making;
