-- GET one account by id, ids drawn at random from ids.txt.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
local token = os.getenv("TOKEN")
math.randomseed(os.time())
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/api/v1/crm/accounts/" .. id, { ["Authorization"] = "Bearer " .. token })
end
