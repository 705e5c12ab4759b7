-- Filter on industry, sort, 50 rows.
local token = os.getenv("TOKEN")
request = function()
  return wrk.format("GET", "/api/v1/crm/accounts?industry=software&sort=-employee_count&limit=50",
    { ["Authorization"] = "Bearer " .. token })
end
