-- The values the fuzzer draws arguments from, as SQL expressions.
--
-- pool 'hostile': by argument type (format_type), whatever the parameter;
--   each is a valid value of its type (so the function, not the cast, has
--   to cope with it), except the few marked below that PostgreSQL itself
--   refuses while parsing the call.
-- pool 'valid': by parameter name (and function, where one name means
--   different things), a value that passes validation, so that calls reach
--   the code behind it.  New functions get these by their parameter names,
--   and the hostile pool by their types, without editing this file.
--
-- Placeholders, resolved per call by fuzz.generate():
--   {kind}    a fixture of that kind of the tenant chosen for this argument:
--             fuzz.fx('<t>', '<kind>', <random n>)
--   {X.kind}  the same, of the other tenant (mixes tenants in one value)
--   {rand}    a random 64-bit integer; {uuid} a random uuid (both fixed at
--             generation, so a call reproduces)
\set ON_ERROR_STOP 1

CREATE TABLE fuzz.value (
    id serial PRIMARY KEY,
    pool text NOT NULL CHECK (pool IN ('hostile', 'valid')),
    typ text NOT NULL,          -- format_type() of the argument type
    pname text,                 -- valid pool: the parameter name
    fn text,                    -- valid pool: only for this function (NULL: any)
    expr text NOT NULL
);

-- Kinds of fixture that identify an object of a programme: an argument
-- holding another programme's one is a cross-tenant reference.
CREATE TABLE fuzz.ref_kind (kind text PRIMARY KEY);
INSERT INTO fuzz.ref_kind VALUES ('programme'), ('individual'), ('account'), ('card'), ('card_token'),
    ('authorization'), ('check'), ('activation_token'), ('reveal_token'), ('reset_token');

-- text (also name and varchar) -------------------------------------------
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'text', e FROM unnest(ARRAY[
    $$''$$, $$' '$$, $$'x'$$,
    $$repeat('x', 1048576)$$,                                   -- 1 MB
    $$repeat('é', 600000)$$,                                    -- 1.2 MB of two-byte characters
    $$repeat('🂡', 5000)$$,
    $$E'\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x1b[31m\x7f'$$,  -- control characters (text has no NUL)
    $$E'\x01'$$, $$chr(127)$$, $$E'line\nbreak\r\ttab'$$,
    $$E'\\0'$$, $$E'\\u0000'$$, $$'%00'$$, $$'␀'$$,                -- what stands in for NUL
    $$E'\u202Eevil\u200B\uFEFF'$$,                              -- RTL override, zero-width space, BOM
    $$'e' || repeat(E'\u0301', 2000)$$,                         -- combining marks
    $$chr(1114111)$$, $$E'\uFFFF\uFFFE'$$, $$'Ω≈ç√∫˜µ≤≥÷ 中文 العربية 😀💳'$$,
    $$'１２３４'$$, $$'٤٥٦٧'$$,                                    -- digits that are not ASCII
    $$''';DROP TABLE card.card;--'$$, $$'" OR 1=1 --'$$, $$'$1'$$, $$'%s%s%n%x%p'$$, $$'\'$$,
    $$'null'$$, $$'NULL'$$, $$'true'$$, $$'{}'$$, $$'[]'$$, $$'{"a":'$$,
    $$'0'$$, $$'-1'$$, $$'1e309'$$, $$'99999999999999999999999999'$$, $$' 1234 '$$, $$'12 34'$$,
    $$'{uuid}'$$, $$'00000000-0000-0000-0000-000000000000'$$,
    $$'ct_' || repeat('A', 24)$$, $$'act_' || repeat('A', 43)$$, $$'rvl_'$$, $$'pin_' || repeat('/', 43)$$,
    $$'act_' || repeat('A', 100000)$$,
    $${card_token}$$, $${activation_token}$$, $${reveal_token}$$, $${reset_token}$$,  -- the tenant's tokens
    $$left({card_token}, 10)$$, $${activation_token} || 'A'$$, $$upper({reveal_token})$$,
    $$'https://'$$, $$'http://app.example.com/'$$, $$'javascript:alert(1)'$$, $$'https://' || repeat('a', 100000) || '.example'$$,
    $$'https://user:pass@evil.example/?token=x#frag'$$, $$'https:\\evil.example'$$, $$'HTTPS://APP.EXAMPLE.COM/'$$,
    $$E'https://app.example.com/\nSet-Cookie: x'$$, $$'//evil.example'$$, $$'https://[::1]:99999/'$$,
    $$'0000'$$, $$'000000'$$, $$'123'$$, $$'1234567'$$, $$'12345678901234567890'$$, $$'-123'$$, $$'12.3'$$,
    $$'EUR'$$, $$'eur'$$, $$'EU'$$, $$'EURO'$$, $$'XXX'$$, $$'5411'$$, $$'541'$$, $$'54111'$$, $$'-001'$$,
    $$'SE'$$, $$'se'$$, $$'S'$$, $$'chip'$$, $$'ATM'$$, $$'lost'$$, $$'LOST'$$, $$'damaged'$$, $$'expired'$$,
    $$'visa'$$, $$'amex'$$, $$'europe'$$, $$'mars'$$, $$'4'$$, $$'45'$$, $$'4000000'$$, $$'2720999'$$, $$'9999999999'$$,
    $$'12'$$, $$'13'$$, $$'00'$$, $$'2099'$$, $$'1899'$$, $$'99999'$$,
    $$md5({rand}::text)$$
]) e;

INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'name', e FROM unnest(ARRAY[
    $$''$$, $$'postgres'$$, $$'no_such_role'$$, $$'fuzz_' || repeat('x', 100)$$, $$repeat('x', 1048576)$$,
    $$E'\x01'$$, $$'Ω'$$, $$'"fuzz_a_api"'$$, $$' fuzz_a_api'$$, $$'FUZZ_A_API'$$
]) e;

-- uuid ---------------------------------------------------------------------
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'uuid', e FROM unnest(ARRAY[
    $$'{uuid}'$$, $$'{uuid}'$$, $$'00000000-0000-0000-0000-000000000000'$$, $$'ffffffff-ffff-ffff-ffff-ffffffffffff'$$,
    -- ids of the wrong kind (an account where a card is wanted, ...), of either tenant
    $${programme}$$, $${individual}$$, $${account}$$, $${card}$$, $${authorization}$$, $${check}$$,
    $${X.programme}$$, $${X.card}$$, $${X.account}$$
]) e;

-- numbers ------------------------------------------------------------------
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'bigint', e FROM unnest(ARRAY[
    $$0$$, $$1$$, $$-1$$, $$9223372036854775807$$, $$-9223372036854775808$$, $$9223372036854775806$$,
    $$999999999999999$$, $$1000000000000000$$, $$2147483647$$, $$2147483648$$, $$-2147483649$$,
    $$4611686018427387904$$, $$100$$, $${rand}$$, $$-{rand}$$
]) e;
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'integer', e FROM unnest(ARRAY[
    $$0$$, $$1$$, $$-1$$, $$2147483647$$, $$-2147483648$$, $$2147483646$$, $$100000$$, $$100001$$,
    $$12$$, $$13$$, $$16$$, $$19$$, $$20$$, $$32767$$, $$32768$$, $$65536$$
]) e;
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'smallint', e FROM unnest(ARRAY[$$0$$, $$-1$$, $$32767$$, $$-32768$$, $$1$$]) e;
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'numeric', e FROM unnest(ARRAY[$$0$$, $$-1$$, $$1e100$$, $$'NaN'$$, $$0.5$$, $$9223372036854775808$$]) e;
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'boolean', e FROM unnest(ARRAY[$$true$$, $$false$$]) e;

-- dates and times ----------------------------------------------------------
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'date', e FROM unnest(ARRAY[
    $$'infinity'$$, $$'-infinity'$$, $$'4713-01-01 BC'$$, $$'5874897-12-31'$$, $$'294276-12-31'$$,
    $$'0001-01-01'$$, $$'1970-01-01'$$, $$'2000-02-29'$$, $$current_date$$, $$current_date + 1$$,
    $$current_date - 1$$, $$current_date + 36500$$, $$current_date - 36500$$
]) e;
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'timestamp with time zone', e FROM unnest(ARRAY[
    $$'infinity'$$, $$'-infinity'$$, $$'294276-12-31 23:59:59.999999+00'$$, $$'4713-01-01 00:00:00+00 BC'$$,
    $$'1970-01-01 00:00:00+00'$$, $$'2000-01-01 23:59:59.999999+14'$$, $$now()$$,
    $$now() + interval '1 microsecond'$$, $$now() + interval '1 day'$$, $$now() - interval '1 day'$$,
    $$now() + interval '100 years'$$, $$now() - interval '100 years'$$
]) e;
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'interval', e FROM unnest(ARRAY[
    $$'0'$$, $$'1 microsecond'$$, $$'-1 day'$$, $$'-1 microsecond'$$, $$'30 minutes'$$, $$'7 days'$$,
    $$'31 days'$$, $$'32 days'$$, $$'1 month'$$, $$'178000000 years'$$, $$'-178000000 years'$$,
    $$'2147483647 days'$$, $$'-2147483648 days'$$, $$'2562047788 hours'$$
]) e;

-- jsonb --------------------------------------------------------------------
INSERT INTO fuzz.value (pool, typ, expr)
SELECT 'hostile', 'jsonb', e FROM unnest(ARRAY[
    $$'null'$$, $$'{}'$$, $$'[]'$$, $$'""'$$, $$'0'$$, $$'-0'$$, $$'true'$$, $$'"x"'$$, $$'1e1000'$$, $$'-1e-1000'$$,
    $$'[{}]'$$, $$'{"": null}'$$, $$'{"a": 1, "a": 2}'$$, $$'{"\u0001": "\u0001\u001f"}'$$,
    -- 10,000 nested arrays and objects: the function must walk them or refuse them, never crash
    $$repeat('[', 10000) || repeat(']', 10000)$$,
    $$repeat('{"a": ', 10000) || '1' || repeat('}', 10000)$$,
    $$'{"spending_limits": ' || repeat('[', 5000) || repeat(']', 5000) || '}'$$,
    $$'{"channels": ' || repeat('{"atm": ', 5000) || 'false' || repeat('}', 5000) || '}'$$,
    -- refused by PostgreSQL's parser before the call (54001): the stack guard
    $$repeat('[', 100000) || repeat(']', 100000)$$,
    $$(SELECT jsonb_agg(g) FROM generate_series(1, 100000) g)$$,
    $$jsonb_build_object('display_name', repeat('x', 1048576))$$,
    $$jsonb_build_object('return_url', 'https://' || repeat('a', 1048576))$$,
    $$jsonb_build_object(repeat('k', 100000), 1)$$,
    -- controls, broken in every field
    $$'{"spending_limits": [{"amount": 9223372036854775807, "interval": "daily"}]}'$$,
    $$'{"spending_limits": [{"amount": -1, "interval": "daily"}]}'$$,
    $$'{"spending_limits": [{"amount": 0, "interval": "daily"}]}'$$,
    $$'{"spending_limits": [{"amount": 1.5, "interval": "daily"}]}'$$,
    $$'{"spending_limits": [{"amount": 1e30, "interval": "daily"}]}'$$,
    $$'{"spending_limits": [{"amount": "100", "interval": "daily"}]}'$$,
    $$'{"spending_limits": [{"amount": 100, "interval": "fortnightly"}]}'$$,
    $$'{"spending_limits": [{"amount": 100}]}'$$,
    $$'{"spending_limits": [{"amount": 100, "interval": "daily", "categories": ["9999-0000"]}]}'$$,
    $$'{"spending_limits": [{"amount": 100, "interval": "daily", "categories": ["0000-9999", "5411-5411"]}]}'$$,
    $$'{"spending_limits": [{"amount": 100, "interval": "daily", "categories": []}]}'$$,
    $$'{"spending_limits": [{"amount": 100, "interval": "daily", "categories": [5411]}]}'$$,
    $$'{"spending_limits": {"amount": 100}}'$$, $$'{"spending_limits": null}'$$,
    $$(SELECT jsonb_build_object('spending_limits', jsonb_agg(jsonb_build_object('amount', g, 'interval', 'daily')))
         FROM generate_series(1, 5000) g)$$,
    $$(SELECT jsonb_build_object('allowed_categories', jsonb_agg(lpad(g::text, 4, '0'))) FROM generate_series(0, 9999) g)$$,
    $$'{"allowed_categories": ["5411"], "blocked_categories": ["5411"]}'$$,
    $$'{"allowed_countries": ["SE"], "blocked_countries": ["RU"]}'$$,
    $$'{"blocked_countries": ["ru", "", "SWE", null, 1]}'$$,
    $$'{"allowed_categories": ["54", "5411-", "-5411", "54a1", "5411-5410"]}'$$,
    $$'{"channels": {"atm": "false"}}'$$, $$'{"channels": {"atm": null}}'$$, $$'{"channels": {"teleport": false}}'$$,
    $$'{"channels": []}'$$, $$'{"unknown": 1}'$$,
    -- API request bodies, broken
    $$'{"status": "lost", "return_url": "https://app.example.com/x"}'$$, $$'{"status": null}'$$,
    $$'{"status": "expired"}'$$, $$'{"status": "not_activated"}'$$, $$'{"status": ["lost"]}'$$,
    $$'{"return_url": 1}'$$, $$'{"reason": "x", "channel": "fraud"}'$$,
    $$'{"individual_id": "not-a-uuid", "account_id": "{uuid}", "display_name": "x"}'$$,
    $$jsonb_build_object('individual_id', {individual}, 'account_id', {X.account}, 'display_name', 'Mixed')$$,
    $$jsonb_build_object('individual_id', {individual}, 'account_id', {account}, 'display_name', 'x',
                         'exp_month', '13', 'exp_year', '99999')$$,
    $$jsonb_build_object('individual_id', {individual}, 'account_id', {account}, 'display_name', 'x',
                         'exp_month', 2, 'exp_year', 2030)$$,
    $$jsonb_build_object('individual_id', {individual}, 'account_id', {account}, 'display_name', 'x',
                         'type', 'plastic')$$,
    $$jsonb_build_object('individual_id', {individual}, 'account_id', {account}, 'display_name', E'\u0001',
                         'idempotency_key', repeat('k', 1000))$$
]) e;

-- valid values by parameter name ----------------------------------------------
INSERT INTO fuzz.value (pool, typ, pname, fn, expr)
SELECT 'valid', v.typ, v.pname, v.fn, v.expr FROM (VALUES
    ('uuid', 'programme_id', NULL, $${programme}$$),
    ('uuid', 'individual_id', NULL, $${individual}$$),
    ('uuid', 'account_id', NULL, $${account}$$),
    ('uuid', 'card_id', NULL, $${card}$$),
    ('uuid', 'chain_id', NULL, $${card}$$),
    ('uuid', 'authorization_id', NULL, $${authorization}$$),
    ('uuid', 'check_id', NULL, $${check}$$),
    ('text', 'card_token', NULL, $${card_token}$$),
    ('text', 'activation_token', NULL, $${activation_token}$$),
    ('text', 'reveal_token', NULL, $${reveal_token}$$),
    ('text', 'reset_token', NULL, $${reset_token}$$),
    ('text', 'pin', NULL, $$'2468'$$),
    ('text', 'pin', NULL, $$'1357'$$),
    ('text', 'pin', NULL, $$'135790'$$),
    ('text', 'return_url', NULL, $$'https://app.example.com/done'$$),
    ('text', 'currency', NULL, $$'EUR'$$),
    ('text', 'currency', NULL, $$'SEK'$$),
    ('text', 'mcc', NULL, $$'5411'$$),
    ('text', 'mcc', NULL, $$'5812'$$),
    ('text', 'merchant_country', NULL, $$'SE'$$),
    ('text', 'merchant_country', NULL, $$'RU'$$),
    ('text', 'channel', 'card_authorize', $$'chip'$$),
    ('text', 'channel', 'card_authorize', $$'ecommerce'$$),
    ('text', 'channel', 'card_authorize', $$'atm'$$),
    ('text', 'channel', 'card_authorize', $$'contactless'$$),
    ('text', 'channel', 'card_set_status', $$'api'$$),
    ('text', 'channel', 'card_set_status', $$'holder'$$),
    ('text', 'channel', 'card_set_status', $$'fraud'$$),
    ('text', 'external_id', NULL, $$'ext-fuzz-' || ({rand} % 50)$$),
    ('text', 'external_id', NULL, $${external_id}$$),
    ('text', 'merchant_name', NULL, $$'Fuzz shop'$$),
    ('bigint', 'amount', NULL, $$1$$),
    ('bigint', 'amount', NULL, $$250$$),
    ('bigint', 'amount', NULL, $$5000$$),
    ('text', 'reference', NULL, $$'ref-fuzz-' || ({rand} % 50)$$),
    ('text', 'reference', NULL, $${reference}$$),
    ('text', 'reason', 'card_replace', $$'lost'$$),
    ('text', 'reason', 'card_replace', $$'stolen'$$),
    ('text', 'reason', 'card_replace', $$'damaged'$$),
    ('text', 'reason', 'card_replace', $$'expired'$$),
    ('text', 'reason', NULL, $$'fuzzing'$$),
    ('jsonb', 'controls', NULL, $$'{}'$$),
    ('jsonb', 'controls', NULL, $$'{"spending_limits": [{"amount": 50000, "interval": "daily", "categories": ["5812", "5813-5814"]},
                                  {"amount": 20000, "interval": "per_authorization"}],
                                  "allowed_categories": ["5411", "5812-5814"], "blocked_countries": ["RU"],
                                  "channels": {"ecommerce": true, "atm": false}}'$$),
    ('jsonb', 'controls', NULL, $$'{"spending_limits": [{"amount": 3000, "interval": "all_time"}]}'$$),
    ('jsonb', 'request', 'card_update', $$'{"status": "frozen", "reason": "fuzz", "channel": "holder"}'$$),
    ('jsonb', 'request', 'card_update', $$'{"status": "active"}'$$),
    ('jsonb', 'request', 'card_update', $$'{"status": "block", "reason": "fuzz"}'$$),
    ('jsonb', 'request', 'card_update', $$'{"return_url": "https://app.example.com/done"}'$$),
    ('jsonb', 'request', 'card_order', $$jsonb_build_object('individual_id', {individual}, 'account_id', {account},
                                                            'display_name', 'Fuzz card')$$),
    ('jsonb', 'request', 'card_order', $$jsonb_build_object('individual_id', {individual}, 'account_id', {account},
                                                            'display_name', 'Fuzz card', 'type', 'physical',
                                                            'exp_month', '12', 'exp_year', (extract(year FROM now())::int + 2)::text,
                                                            'idempotency_key', 'idem-fuzz-' || ({rand} % 20))$$),
    ('text', 'name', 'programme_create', $$'Fuzz programme ' || ({rand} % 1000)$$),
    ('text', 'name', 'programme_create', $${programme_name}$$),
    ('text', 'name', 'individual_create', $$'Fuzz Person'$$),
    ('text', 'name', NULL, $${consumer}$$),
    ('text', 'name', NULL, $$'fuzz-consumer'$$),
    ('text', 'bin', NULL, $$'45671234'$$),
    ('text', 'bin', NULL, $$'411111'$$),
    ('text', 'bin', NULL, $$'2221000'$$),
    ('text', 'brand', NULL, $$'visa'$$),
    ('text', 'brand', NULL, $$'mastercard'$$),
    ('text', 'region', NULL, $$'europe'$$),
    ('integer', 'pan_length', NULL, $$16$$),
    ('integer', 'pan_length', NULL, $$19$$),
    ('integer', 'validity_years', NULL, $$3$$),
    ('interval', 'activation_ttl', NULL, $$'30 minutes'$$),
    ('interval', 'hold_lifetime', NULL, $$'7 days'$$),
    ('text', 'display_name', NULL, $$'Fuzz card'$$),
    ('text', 'exp_month', NULL, $$'12'$$),
    ('text', 'exp_month', NULL, $$'1'$$),
    ('text', 'exp_year', NULL, $$(extract(year FROM now())::int + 2)::text$$),
    ('text', 'idempotency_key', NULL, $$'idem-fuzz-' || ({rand} % 20)$$),
    ('text', 'idempotency_key', NULL, $${idempotency_key}$$),
    ('bigint', 'cursor', NULL, $$0$$),
    ('bigint', 'cursor', NULL, $$(SELECT max(seq) FROM card.event)$$),
    ('bigint', 'start_after', NULL, $$0$$),
    ('integer', 'max', NULL, $$100$$),
    ('integer', 'max', NULL, $$1$$),
    ('integer', 'batch_size', NULL, $$10$$),
    ('date', 'as_of', NULL, $$current_date$$),
    ('timestamp with time zone', 'as_of', NULL, $$now()$$),
    ('timestamp with time zone', 'before', NULL, $$now() - interval '1 hour'$$),
    ('timestamp with time zone', 'at', NULL, $$now()$$),
    ('timestamp with time zone', 'window_start', NULL, $$date_trunc('day', now())$$),
    ('date', 'expires_on', NULL, $$current_date + 365$$),
    ('name', 'role', NULL, $${role}$$),
    ('name', 'role_name', NULL, $${role}$$)
) v(typ, pname, fn, expr);

-- One line each (the summary prints a reproduction per line): the line
-- breaks above are layout, outside string literals or inside JSON text.
UPDATE fuzz.value SET expr = regexp_replace(expr, '\s*\n\s*', ' ', 'g');
