-- wrk script of bench/compare.py: POSTs the request bodies of one case in rotation and checks
-- every answer; at the end prints one line `COMPARE_JSON {...}` for compare.py to read (so it
-- never parses wrk's text).
--
--   wrk -t 1 -c 16 -d 10s -s bench/compare.lua http://127.0.0.1:PORT/graphql -- CASE_FILE
--
-- CASE_FILE (written by compare.py): line 1 holds the body lengths a valid answer may have,
-- separated by spaces (the lengths of the answers compare.py checked before the run, one per
-- request body); every further line is one JSON request body. An answer is valid when its
-- status is 200, it has no "errors" member and its length is one of those lengths.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  accepted = {}
  local lengths = file:read("*l")
  -- "*": any length (the mixed runs, where writes change the answers while wrk reads)
  any_length = lengths:find("*", 1, true) ~= nil
  for n in lengths:gmatch("%d+") do
    accepted[tonumber(n)] = true
  end
  local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
  prepared = {}
  for line in file:lines() do
    if #line > 0 then
      table.insert(prepared, wrk.format("POST", nil, headers, line))
    end
  end
  file:close()
  assert(#prepared > 0, "no request bodies in " .. args[1])
  turn = 0
  responses = 0
  invalid = 0
  sample = ""
end

function request()
  turn = turn % #prepared + 1
  return prepared[turn]
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 or not (any_length or accepted[#body]) or body:find('"errors"', 1, true) then
    invalid = invalid + 1
    if sample == "" then
      sample = "status " .. status .. ", " .. #body .. " bytes: " .. body:sub(1, 300)
    end
  end
end

local function json_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local total_responses, total_invalid, first_sample = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_responses = total_responses + thread:get("responses")
    total_invalid = total_invalid + thread:get("invalid")
    local s = thread:get("sample")
    if first_sample == "" and s then
      first_sample = s
    end
  end
  local e = summary.errors
  io.write(string.format(
    '\nCOMPARE_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"responses":%d,"invalid":%d,"sample":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout,
    total_responses, total_invalid, json_string(first_sample)))
end
