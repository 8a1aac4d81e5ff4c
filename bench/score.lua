-- wrk script for POST /v1/score (bench/serving.py --wrk): every request a new order id, 70 %
-- from known customers (their usual e-mail and IP, read from the file in $FRAUD_BENCH_KNOWN, one
-- "customer,email,ip" per line), 30 % from new people; order times from $FRAUD_BENCH_START_S
-- on, a second every 50 orders. Prints one JSON line at the end for the bench to parse.

local known = {}
local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  for line in io.lines(os.getenv("FRAUD_BENCH_KNOWN")) do
    local c, e, i = line:match("([^,]+),([^,]+),([^,]+)")
    table.insert(known, {c, e, i})
  end
  start_s = tonumber(os.getenv("FRAUD_BENCH_START_S"))
  run = os.getenv("FRAUD_BENCH_RUN")
  n = 0
  math.randomseed(tid * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-Key"] = os.getenv("FRAUD_BENCH_KEY")
end

function request()
  n = n + 1
  local c, e, i
  if math.random() < 0.7 then
    local k = known[math.random(#known)]
    c, e, i = k[1], k[2], k[3]
  else
    c = string.format("W%s-%d-%d", run, tid, n)
    e = string.format("w%s-%d-%d@example.org", run, tid, n)
    i = string.format("10.%d.%d.9", tid % 250, n % 250)
  end
  local t = os.date("!%Y-%m-%dT%H:%M:%SZ", start_s + math.floor(n / 50))
  local body = string.format(
    '{"order_id":"W%s-%d-%d","order_date":"%s","customer_id":"%s","email":"%s",' ..
    '"ip_addr":"%s","order_amount":%.2f}',
    run, tid, n, t, c, e, i, 5 + math.random() * 300)
  return wrk.format(nil, "/v1/score", nil, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_ms":%.2f,"p99_ms":%.2f}\n',
    summary.requests, summary.duration / 1e6, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
