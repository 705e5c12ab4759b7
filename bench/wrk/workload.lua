-- One wrk script for every workload and server of bench/compare.py, driven by environment:
--   WL_METHOD    GET, POST, PATCH
--   WL_PATH      path template, e.g. /api/v1/crm/accounts/{id}
--   WL_BODY      body template (JSON) or empty
--   IDS_FILE     one seeded record id per line ({id})
--   DOMAINS_FILE one seeded domain per line ({domain})
--   RUN_ID       nonce so {uniq} never repeats across runs
--   WL_BATCH     when > 0, WL_BODY is one item and each request carries WL_BATCH items:
--   WL_FORMAT    json (a JSON array) or ndjson (one item per line)
-- Placeholders: {id} {domain} a random seeded record; {industry} one of the seeded industries;
-- {term} a search term found in seeded names; {uniq} unique per request; {rand} 1..50000.
-- The Authorization header comes from wrk -H; done() prints one WRKJSON line for the driver.
local function lines(path)
  local t = {}
  if path and path ~= "" then
    for l in io.lines(path) do if l ~= "" then t[#t + 1] = l end end
  end
  return t
end

local METHOD = os.getenv("WL_METHOD") or "GET"
local PATH = os.getenv("WL_PATH") or "/"
local BODY = os.getenv("WL_BODY") or ""
local RUN_ID = os.getenv("RUN_ID") or tostring(os.time())
local BATCH = tonumber(os.getenv("WL_BATCH") or "0") or 0
local FORMAT = os.getenv("WL_FORMAT") or "json"
local IDS = lines(os.getenv("IDS_FILE"))
local DOMAINS = lines(os.getenv("DOMAINS_FILE"))
local INDUSTRIES = { "Software", "Healthcare", "Manufacturing", "Finance", "Retail" }
local TERMS = { "quantum", "north", "labs", "logist", "bright", "pixel", "harbor", "zen" }

local thread_seq = 0
local threads = {}
function setup(thread)
  thread_seq = thread_seq + 1
  thread:set("tid", thread_seq)
  threads[#threads + 1] = thread
end

-- An NDJSON bulk request answers 200 with one result per line: a line refused (status 4xx or
-- 5xx in its result) is an error of the run even though its request succeeded.
item_errors = 0
if BATCH > 0 and FORMAT == "ndjson" then
  function response(status, headers, body)
    for _ in body:gmatch('"status":%s*[45]%d%d') do item_errors = item_errors + 1 end
  end
end

local n = 0
local hdr
function init(args)
  math.randomseed(os.time() + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
  hdr = {}
  for k, v in pairs(wrk.headers) do hdr[k] = v end
  if BODY ~= "" then
    hdr["Content-Type"] = (BATCH > 0 and FORMAT == "ndjson") and "application/x-ndjson" or "application/json"
  end
end

local function fill(s)
  return (s:gsub("{(%a+)}", function(k)
    if k == "id" then return IDS[math.random(#IDS)]
    elseif k == "domain" then return DOMAINS[math.random(#DOMAINS)]
    elseif k == "industry" then return INDUSTRIES[math.random(#INDUSTRIES)]
    elseif k == "term" then return TERMS[math.random(#TERMS)]
    elseif k == "uniq" then return string.format("%s-%d-%d", RUN_ID, tid or 0, n)
    elseif k == "rand" then return tostring(math.random(1, 50000))
    end
  end))
end

function request()
  n = n + 1
  if BODY == "" then return wrk.format(METHOD, fill(PATH), hdr) end
  if BATCH == 0 then return wrk.format(METHOD, fill(PATH), hdr, fill(BODY)) end
  local items = {}
  for i = 1, BATCH do
    n = n + 1 -- {uniq} differs per item
    items[i] = fill(BODY)
  end
  if FORMAT == "ndjson" then return wrk.format(METHOD, fill(PATH), hdr, table.concat(items, "\n") .. "\n") end
  return wrk.format(METHOD, fill(PATH), hdr, "[" .. table.concat(items, ",") .. "]")
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local refused = 0
  for _, t in ipairs(threads) do refused = refused + (tonumber(t:get("item_errors")) or 0) end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,"item_errors":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect, e.read, e.write, e.status, e.timeout, refused))
end
