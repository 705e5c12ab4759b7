-- Mixed soak load for scripts/soak: 55 % GET one account, 15 % v2 _query, 10 % v1 filtered
-- list, 15 % PATCH one field, 5 % POST a new account. Every response that is not 2xx is
-- counted by status and reported in the SOAK_RESULT line done() prints.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local token = os.getenv("TOKEN")
local auth = { ["Authorization"] = "Bearer " .. token }
local json = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
local industries = { "software", "hardware", "retail", "healthcare", "finance", "manufacturing", "energy", "media" }
local threads = {}
local n = 0

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_no)
  statuses = {}
end

function request()
  n = n + 1
  local r = math.random(100)
  local id = ids[math.random(#ids)]
  if r <= 55 then
    return wrk.format("GET", "/api/v1/crm/accounts/" .. id, auth)
  elseif r <= 70 then
    local body = '{"filters":[{"field":"industry","operator":"eq","value":"' .. industries[math.random(#industries)]
      .. '"},{"field":"employee_count","operator":"gte","value":' .. math.random(0, 4000)
      .. '}],"sort":[{"field":"employee_count","direction":"desc"}],"limit":20}'
    return wrk.format("POST", "/api/v2/account/_query", json, body)
  elseif r <= 80 then
    return wrk.format("GET", "/api/v1/crm/accounts?industry=" .. industries[math.random(#industries)]
      .. "&sort=-employee_count&limit=20", auth)
  elseif r <= 95 then
    return wrk.format("PATCH", "/api/v1/crm/accounts/" .. id, json, '{"employee_count":' .. (n % 5000) .. '}')
  else
    return wrk.format("POST", "/api/v1/crm/accounts", json,
      '{"name":"Soak ' .. thread_no .. '-' .. n .. '","industry":"soak","tags":["soak"]}')
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local totals, bad = {}, {}
  for _, t in ipairs(threads) do
    for code, count in pairs(t:get("statuses")) do totals[code] = (totals[code] or 0) + count end
  end
  for code, count in pairs(totals) do bad[#bad + 1] = string.format('"%d":%d', code, count) end
  local e = summary.errors
  io.write(string.format(
    'SOAK_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,'
      .. '"non_2xx":{%s},"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, table.concat(bad, ","),
    latency:percentile(50), latency:percentile(99), latency.max))
end
