-- A crowd for wrk: each request is a different person (one bearer token
-- each), exactly as many requests as tokens; a token's line may carry its
-- request's own body after a tab.
--
--   wrk -tT -c128 -d60s -s crowd.lua URL -- TOKENS_FILE PATH BODY T DONE_FILE
--
-- wrk runs for its whole -d: each thread appends "<thread> <time> <status
-- counts>" to DONE_FILE when its share is answered, so the caller can stop
-- wrk (SIGINT) then. Prints FIRST (CLOCK_REALTIME of the first request) and
-- wrk's latency percentiles in milliseconds.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } fitnus_timespec;
int clock_gettime(int clock_id, fitnus_timespec *tp);
]]
local CLOCK_REALTIME = 0

local function now()
  local t = ffi.new("fitnus_timespec")
  ffi.C.clock_gettime(CLOCK_REALTIME, t)
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) / 1e9
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("number", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local tokens, path, body, done_file
local sent, received = 0, 0
first = 0
local counts = {}

function init(args)
  local all = {}
  for line in io.lines(args[1]) do table.insert(all, line) end
  path, body, done_file = args[2], args[3], args[5]
  -- This thread's share: every thread_count-th token, starting at its number.
  tokens = {}
  for index = number + 1, #all, tonumber(args[4]) do table.insert(tokens, all[index]) end
end

function request()
  if sent >= #tokens then
    -- Share sent: the connection stays idle until the caller stops wrk.
    return ""
  end
  if sent == 0 then first = now() end
  sent = sent + 1
  -- A line is a token, or a token, a tab and this request's own body.
  local token, own = tokens[sent]:match("^([^\t]*)\t?(.*)$")
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }, own ~= "" and own or body)
end

function response(status, headers, answer)
  received = received + 1
  counts[status] = (counts[status] or 0) + 1
  -- wrk 4.1 skips this callback for one early answer on some threads, so the
  -- share counts as answered one answer short; both lines are written when
  -- the callback does see every answer, and the caller keeps the later one.
  if received >= #tokens - 1 then
    local parts = {}
    for code, count in pairs(counts) do table.insert(parts, code .. "=" .. count) end
    local marker = io.open(done_file, "a")
    marker:write(string.format("%d %.6f %s\n", number, now(), table.concat(parts, ",")))
    marker:close()
  end
end

function done(summary, latency, requests)
  local from = math.huge
  for _, thread in ipairs(threads) do from = math.min(from, thread:get("first")) end
  io.write(string.format("FIRST %.6f\n", from))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("P%s %.3f\n", p, latency:percentile(p) / 1000))
  end
  -- errors.status counts answers outside 2xx/3xx (the 409s): not errors here.
  io.write(string.format("RECORDED %d\nERRORS %d\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
