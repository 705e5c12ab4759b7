-- POST one new account per request (unique names; no domain, so no uniqueness contention).
local token = os.getenv("TOKEN")
local n = 0
local thread_tag = tostring(math.random(1, 1e9))
request = function()
  n = n + 1
  local body = '{"name":"Bench ' .. thread_tag .. '-' .. n .. '","industry":"bench-post","tags":["wrk"]}'
  return wrk.format("POST", "/api/v1/crm/accounts",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
