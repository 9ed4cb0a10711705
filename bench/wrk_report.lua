-- wrk script for bench/bench.py.
--   WRK_AUTH          Authorization header value to send (empty: none)
--   WRK_TOKENS_FILE   instead of WRK_AUTH: a file of tokens, one per line;
--                     request i carries "Bearer <token i mod n>" (defeats
--                     verified-token caches when n exceeds their size)
--   WRK_MAX_REQUESTS  per-thread request cap: a count bound next to wrk's -d
--                     time bound (the thread stops once it is reached)
-- done() prints one line "WRK_JSON {...}" that bench.py parses; latencies are
-- in microseconds, errors.status counts responses with status >= 400.
-- The hook is request() returning prebuilt requests, rather than response(),
-- which would build a Lua table of headers per response and slow wrk down.

local auth = os.getenv("WRK_AUTH") or ""
local tokens_file = os.getenv("WRK_TOKENS_FILE") or ""
local max_requests = tonumber(os.getenv("WRK_MAX_REQUESTS") or "") or 5000000
local sent = 0
local prebuilt = {}
local count = 0

function init(args)
    if tokens_file ~= "" then
        for line in io.lines(tokens_file) do
            if line ~= "" then
                count = count + 1
                prebuilt[count] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. line })
            end
        end
    end
    if count == 0 then
        if auth ~= "" then
            wrk.headers["Authorization"] = auth
        end
        prebuilt[1] = wrk.format()
        count = 1
    end
end

function request()
    sent = sent + 1
    if sent > max_requests then
        wrk.thread:stop()
    end
    return prebuilt[(sent - 1) % count + 1]
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
            .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
            .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f,"stdev":%.1f}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, latency.mean, latency.stdev))
end
