-- validate.sql: reading the fields of JSON requests (C: src/validate.c
-- checks the typed calls' input).

-- A string field of a request object: NULL when absent or JSON null.
CREATE FUNCTION card.json_text_field(request jsonb, field text)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT request ? field OR jsonb_typeof(request -> field) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(request -> field) <> 'string' THEN
        RAISE EXCEPTION 'field "%" must be a string', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN request ->> field;
END
$$;
REVOKE ALL ON FUNCTION card.json_text_field(jsonb, text) FROM PUBLIC;

-- A uuid field of a request object, refused (22023) when not a uuid.
CREATE FUNCTION card.json_uuid_field(request jsonb, field text)
    RETURNS uuid
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    value text := card.json_text_field(request, field);
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    IF value !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RAISE EXCEPTION 'field "%" must be a UUID', field
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN value::uuid;
END
$$;
REVOKE ALL ON FUNCTION card.json_uuid_field(jsonb, text) FROM PUBLIC;

-- An integer field of a request object (a JSON number without a fraction
-- that fits bigint), refused (22023) otherwise: amounts are minor units.
CREATE FUNCTION card.json_bigint_field(request jsonb, field text)
    RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    value numeric;
BEGIN
    IF NOT request ? field OR jsonb_typeof(request -> field) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(request -> field) <> 'number' THEN
        RAISE EXCEPTION 'field "%" must be a number', field
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Amounts are integers in minor units, such as 1250 for 12.50.';
    END IF;
    value := (request -> field)::numeric;
    IF value <> trunc(value) OR value NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
        RAISE EXCEPTION 'field "%" must be a whole number within bigint', field
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Amounts are integers in minor units, such as 1250 for 12.50.';
    END IF;
    RETURN value::bigint;
END
$$;
REVOKE ALL ON FUNCTION card.json_bigint_field(jsonb, text) FROM PUBLIC;

-- Refuse a request that is not an object or has fields outside allowed.
CREATE FUNCTION card.json_check_fields(request jsonb, what text, allowed text[])
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    unknown text;
BEGIN
    IF request IS NULL OR jsonb_typeof(request) <> 'object' THEN
        RAISE EXCEPTION '% must be a JSON object', what
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT k INTO unknown FROM jsonb_object_keys(request) AS k
     WHERE k <> ALL (allowed) ORDER BY k LIMIT 1;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown field "%" in %', unknown, what
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Allowed fields: %s.', array_to_string(allowed, ', '));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION card.json_check_fields(jsonb, text, text[]) FROM PUBLIC;
