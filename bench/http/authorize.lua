-- wrk: POST /v3/authorizations of 1.00 on a random active card, each with
-- an external_id of its own (bench/server writes tokens.lua).
local cards = dofile(os.getenv("HTTP_CARDS"))
local token = os.getenv("HTTP_TOKEN")
local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
local counter = 0

-- Each wrk thread its own random sequence (LuaJIT's starts alike in every
-- thread: two threads would pick the same cards at the same moment).
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end
init = function(args)
  math.randomseed(os.time() * 1000 + thread_number)
end

request = function()
  counter = counter + 1
  local body = string.format('{"card_token": "%s", "amount": 100, "currency": "EUR", "mcc": "5411", '
                             .. '"merchant_country": "SE", "channel": "chip", "external_id": "wrk-%d-%d-%d-%d"}',
                             cards[math.random(#cards)], thread_number, math.random(1000000000), counter, os.time())
  return wrk.format("POST", "/v3/authorizations", headers, body)
end
