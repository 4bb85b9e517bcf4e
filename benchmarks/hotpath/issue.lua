-- wrk script: POST an issue webhook with a new idempotence_key every request, so every one
-- claims a key in the idempotency store, calls the provider and stores the sealed answer.
--   wrk -s issue.lua URL -- RUN_PREFIX
-- Keys are RUN_PREFIX-<thread>-<n>: unique across wrk's threads and across runs.
local threads = 0
local n = 0
local prefix = "bench"

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  prefix = args[1] or prefix
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local body = string.format(
    '{"amount":{"value":10,"currency":"USD"},"customer":{"id":"bench"},"idempotence_key":"%s-%s-%d"}',
    prefix, tostring(tid), n)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
