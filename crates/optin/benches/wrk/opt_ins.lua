-- wrk script: POST /v1/opt-ins for fresh numbers read from $OPTIN_BENCH_NUMBERS; each thread takes
-- its own share of the file so that every request is a new contact until the file is exhausted.
local numbers = {}
for line in io.lines(os.getenv("OPTIN_BENCH_NUMBERS")) do numbers[#numbers + 1] = line end
local key = os.getenv("OPTIN_API_KEY")
local notice = os.getenv("OPTIN_NOTICE_ID")
local threads_total = tonumber(os.getenv("OPTIN_BENCH_THREADS") or "1")
local thread_number = 0
local counter = 0
local next_thread = 0

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

request = function()
  local index = (counter * threads_total + thread_number) % #numbers + 1
  counter = counter + 1
  local body = '{"phone":"' .. numbers[index] .. '","categories":["offers"],"method":"web_form",' ..
    '"notice_id":"' .. notice .. '","evidence":{"page_url":"https://shop.example/join","ip":"203.0.113.7"}}'
  return wrk.format("POST", "/v1/opt-ins",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end

response = function(status, headers, body)
  if status ~= 201 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
