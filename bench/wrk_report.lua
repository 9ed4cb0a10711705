-- wrk script for bench/bench.py.
--   WRK_AUTH          Authorization header value to send (empty: none)
--   WRK_TOKENS_FILE   instead of WRK_AUTH: a file of tokens, one per line;
--                     request g carries "Bearer <token g mod n>" (defeats
--                     verified-token caches when n exceeds their size)
--   WRK_THREADS       wrk's -t: with several threads, thread k sends requests
--                     g = k, k+T, k+2T, ... so that together they go through
--                     the token list in order, once per round (default 1)
--   WRK_MAX_REQUESTS  per-thread request cap: a count bound next to wrk's -d
--                     time bound. The thread sends at most this many requests;
--                     once it has, connections that come free send nothing
--                     more (an empty write) and the thread stops.
--   WRK_EXACT         "1": stop only once the responses to all of the thread's
--                     WRK_MAX_REQUESTS requests are in, so wrk counts exactly
--                     that many (adds a response() hook, which costs wrk a
--                     little per response). Otherwise the thread stops at the
--                     cap and responses still in flight are not counted.
-- A thread that stops at its cap prints "WRK_THREAD_DONE" at once: wrk itself
-- keeps sleeping until -d has passed, so bench.py sends it SIGINT when every
-- thread is done (wrk then reports the real run time).
-- done() prints one line "WRK_JSON {...}" that bench.py parses; latencies are
-- in microseconds, errors.status counts responses with status >= 400.
-- The hook is request() returning prebuilt requests, rather than response(),
-- which would build a Lua table of headers per response and slow wrk down.

local auth = os.getenv("WRK_AUTH") or ""
local tokens_file = os.getenv("WRK_TOKENS_FILE") or ""
local max_requests = tonumber(os.getenv("WRK_MAX_REQUESTS") or "") or 5000000
local threads = tonumber(os.getenv("WRK_THREADS") or "") or 1
local exact = os.getenv("WRK_EXACT") == "1"
local sent = 0
local prebuilt = {}
local count = 0
-- wrk calls request() once on thread 0's state before the run, to check what
-- it returns (script_verify_request); that call must not count as a request.
local verify_call_pending = false

-- Runs in the main Lua state once per thread, before the threads start:
-- hands each thread its index (a global in the thread's own state).
local next_thread = 0
function setup(thread)
    thread:set("thread_index", next_thread)
    next_thread = next_thread + 1
end

function init(args)
    verify_call_pending = (thread_index or 0) == 0
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

local finished = false
local function finish()
    if not finished then
        finished = true
        io.write("WRK_THREAD_DONE\n")
        io.stdout:flush()
    end
    wrk.thread:stop()
end

function request()
    if verify_call_pending then
        verify_call_pending = false
        return prebuilt[1]
    end
    if sent >= max_requests then
        if not exact then
            finish()
        end
        -- Nothing goes out: this connection just waits until the thread stops.
        return ""
    end
    local g = (thread_index or 0) + threads * sent
    sent = sent + 1
    return prebuilt[g % count + 1]
end

if exact then
    local received = 0
    function response(status, headers, body)
        received = received + 1
        if received >= max_requests then
            finish()
        end
    end
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
