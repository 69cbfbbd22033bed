-- wrk: POST /v3/cards, each request a new virtual card on one of the
-- bench's accounts (bench/server writes accounts.lua beside this file).
local accounts = dofile(os.getenv("HTTP_ACCOUNTS"))
local token = os.getenv("HTTP_TOKEN")
local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}

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
  local a = accounts[math.random(#accounts)]
  local body = string.format('{"individual_id": "%s", "account_id": "%s", "display_name": "Load %d"}',
                             a[2], a[1], math.random(1000000))
  return wrk.format("POST", "/v3/cards", headers, body)
end
