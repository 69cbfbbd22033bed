-- wrk: POST /v3/authorizations of 1.00 on a random active card, each with
-- an external_id of its own (bench/server writes tokens.lua).
local cards = dofile(os.getenv("HTTP_CARDS"))
local token = os.getenv("HTTP_TOKEN")
local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
local counter = 0

request = function()
  counter = counter + 1
  local body = string.format('{"card_token": "%s", "amount": 100, "currency": "EUR", "mcc": "5411", '
                             .. '"merchant_country": "SE", "channel": "chip", "external_id": "wrk-%d-%d-%d"}',
                             cards[math.random(#cards)], math.random(1000000000), counter, os.time())
  return wrk.format("POST", "/v3/authorizations", headers, body)
end
