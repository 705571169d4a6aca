-- wrk script: API keys drawn at random from a file, each connection paced by a delay so the
-- offered rate is fixed (wrk -c N with delay d ms offers about N * 1000 / d requests/s), and a
-- count of responses per status printed at the end.
--   wrk -t1 -c64 -d30s -s bench/paced.lua URL -- KEYS_FILE DELAY_MS
local keys = {}
local pause = 0
statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    keys[#keys + 1] = line
  end
  pause = tonumber(args[2] or "0")
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  return wrk.format(nil, nil, { ["X-API-Key"] = keys[math.random(#keys)] })
end

function delay()
  if pause <= 0 then
    return 0
  end
  return math.random() * 2 * pause -- uniform around the mean: no lock-step between connections
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d %d\n", status, count))
  end
  io.write(string.format("socket errors %d %d %d %d\n", summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
