-- wrk script: POST /v1/decisions for numbers read from $OPTIN_BENCH_NUMBERS (one E.164 per line).
local numbers = {}
for line in io.lines(os.getenv("OPTIN_BENCH_NUMBERS")) do numbers[#numbers + 1] = line end
local key = os.getenv("OPTIN_API_KEY")
local next_index = 0

function init(args)
  next_index = math.random(1, #numbers)
end

request = function()
  next_index = next_index % #numbers + 1
  local body = '{"phone":"' .. numbers[next_index] .. '","category":"offers"}'
  return wrk.format("POST", "/v1/decisions",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
