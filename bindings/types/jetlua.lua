---@meta jetlua
-- luacheck: ignore (definitions for the editor: empty functions and unused arguments on purpose)
-- LuaLS (lua-language-server) annotations for jetlua's Lua API: completion, hover and type
-- checking of scripts in editors. Definitions only, never run by jetlua. Installed as
-- <prefix>/share/jetlua/types/jetlua.lua; point LuaLS at that directory (README, "Editor support"):
--   .luarc.json: { "runtime.version": "LuaJIT", "workspace.library": ["/usr/share/jetlua/types"] }
-- tests/lua/test_annotations.lua checks that every function README.md documents is annotated here
-- and the other way round, and that the real objects have what is annotated.
--
-- Conventions: a call that waits is ---@async (it must run in a jetlua coroutine: the main chunk,
-- a handler, a timer callback or jet.spawn). A failed I/O call returns nil, code, detail: `code`
-- is a stable string ("timeout", "no_responders", "closed", "stream_not_found", ...), `detail` a
-- sentence for people. A wrong argument raises an error naming the function and the argument.

-- ---------------------------------------------------------------------------------------------
-- Shared types
-- ---------------------------------------------------------------------------------------------

---Message headers: name -> value, or name -> list of values when a header has several.
---@alias jetlua.Headers table<string, string|string[]>

---@alias jetlua.ConnStatus "connecting"|"connected"|"reconnecting"|"draining"|"closed"
---@alias jetlua.ConnEvent "disconnected"|"reconnected"|"closed"|"error"
---@alias jetlua.FutureStatus "pending"|"acked"|"failed"
---@alias jetlua.Signal "TERM"|"KILL"|"INT"|"HUP"|"STOP"|"CONT"|"USR1"|"USR2"|integer

---What a retry policy returns: "nak" (with a delay in seconds, nil: the default back-off),
---"term", "ack", or "dlq" (with the subject to publish the message to).
---@alias jetlua.RetryAction "nak"|"term"|"ack"|"dlq"

---A retry policy: decides what happens to a message whose handler raised.
---@alias jetlua.RetryPolicy fun(msg: jetlua.Msg, err: any, meta: jetlua.MsgMetadata): jetlua.RetryAction?, (number|string)?

---`on_error` of consume and messages: statuses, missed heartbeats, back-offs and terminal errors
---(`terminal` true: the handle is closed).
---@alias jetlua.OnError fun(code: string, detail: string?, terminal: boolean)

-- ---------------------------------------------------------------------------------------------
-- Option and result tables
-- ---------------------------------------------------------------------------------------------

---@class jetlua.TLSOptions
---@field ca string? CA certificate file to verify the server
---@field cert string? client certificate file (with key)
---@field key string? client private key file

---@class jetlua.ReconnectOptions
---@field max integer? attempts after a connection is lost (default: forever); bounds the first connect too
---@field wait number? seconds between attempts (default 2)

---@class jetlua.ConnectOptions
---@field servers (string|string[])? URL or list; default: the server jetlua was started with, else the embedded one
---@field name string? connection name shown by the server
---@field user string?
---@field password string?
---@field password_file string?
---@field token string?
---@field token_file string?
---@field creds string? credentials file: user JWT + NKey seed
---@field nkey string? NKey user seed file
---@field tls jetlua.TLSOptions?
---@field reconnect jetlua.ReconnectOptions?
---@field timeout number? seconds to keep retrying the first connect (default 10; math.huge: forever)

---@class jetlua.PublishOptions
---@field headers jetlua.Headers?
---@field reply string? reply subject

---@class jetlua.SubscribeOptions
---@field queue string? queue group: each message goes to exactly one member
---@field concurrency integer? handler runs that may overlap (default 1: in order)
---@field pending_limit integer? messages waiting for the handler beyond this are dropped (default 65536, -1: unlimited)

---@class jetlua.RequestOptions
---@field timeout number? seconds (default 5)
---@field headers jetlua.Headers?

---@class jetlua.RespondOptions
---@field headers jetlua.Headers?

---@class jetlua.ConnStats
---@field in_msgs integer
---@field out_msgs integer
---@field in_bytes integer
---@field out_bytes integer
---@field reconnects integer
---@field buffered integer bytes waiting in the write buffer
---@field max_buffered integer above this, nc:publish yields
---@field fast_replies integer request replies read on the loop thread (a KV bucket's direct gets)

---@class jetlua.SubStats
---@field delivered integer
---@field dropped integer
---@field pending integer
---@field running integer
---@field closed boolean
---@field error string? e.g. "permission_denied"

---@class jetlua.PublishRetry
---@field attempts integer? retries (default 5)
---@field delay number? seconds before resending after no responders (default 0.25)

---@class jetlua.JetStreamOptions
---@field domain string?
---@field prefix string? API prefix (default "$JS.API")
---@field timeout number? API timeout in seconds (default 5)
---@field max_pending integer? async publishes in flight (default 4000)
---@field max_pending_bytes integer? bytes in flight (default 64 MiB, at least 1024)
---@field ack_timeout number? per-attempt ack timeout of async publishes (default 5)
---@field retry (boolean|integer|jetlua.PublishRetry)? retries of async publishes (default false; true: 5)

---@class jetlua.StreamSource
---@field name string
---@field filter_subject string?
---@field opt_start_seq integer?
---@field opt_start_time string?
---@field external {api: string, deliver: string?}?

---@class jetlua.StreamConfig
---@field name string letters, digits, - and _
---@field subjects string[]? default: the stream's name
---@field storage "file"|"memory"?
---@field retention "limits"|"workqueue"|"interest"?
---@field max_age number? seconds
---@field max_bytes integer?
---@field max_msgs integer?
---@field max_msgs_per_subject integer?
---@field max_msg_size integer?
---@field discard "old"|"new"?
---@field duplicate_window number? seconds
---@field replicas integer?
---@field allow_rollup boolean?
---@field deny_delete boolean?
---@field deny_purge boolean?
---@field allow_direct boolean? direct gets: any replica answers reads by subject or sequence
---@field description string?
---@field mirror jetlua.StreamSource?
---@field sources jetlua.StreamSource[]?
---@field placement {cluster: string?, tags: string[]?}?
---@field republish {src: string, dest: string, headers_only: boolean?}?
---@field subject_transform {src: string, dest: string}? needs nats-server 2.10

---@class jetlua.StreamState
---@field messages integer
---@field bytes integer
---@field first_seq integer
---@field last_seq integer
---@field consumer_count integer

---@class jetlua.StreamInfo
---@field config jetlua.StreamConfig
---@field state jetlua.StreamState
---@field cluster {name: string?, leader: string?, replicas: table[]?}?
---@field created string?

---@class jetlua.ConsumerConfig
---@field durable string? a durable name (or name=)
---@field name string?
---@field description string?
---@field filter_subject string?
---@field deliver_policy "all"|"last"|"new"|"by_start_sequence"|"by_start_time"|"last_per_subject"?
---@field opt_start_seq integer?
---@field opt_start_time string?
---@field ack_policy "explicit"|"all"|"none"? default explicit
---@field ack_wait number? seconds
---@field max_deliver integer?
---@field backoff number[]? redelivery delays in seconds
---@field max_ack_pending integer?
---@field max_waiting integer?
---@field max_request_batch integer?
---@field max_request_expires number?
---@field max_request_max_bytes integer?
---@field inactive_threshold number?
---@field headers_only boolean?
---@field replay "instant"|"original"?
---@field sample_freq string?
---@field replicas integer?
---@field mem_storage boolean?
---@field metadata table<string, string>? needs nats-server 2.10

---@class jetlua.SequencePair
---@field stream_seq integer
---@field consumer_seq integer

---@class jetlua.ConsumerInfo
---@field stream string
---@field name string
---@field config jetlua.ConsumerConfig
---@field delivered jetlua.SequencePair
---@field ack_floor jetlua.SequencePair
---@field num_pending integer
---@field num_ack_pending integer
---@field num_redelivered integer
---@field num_waiting integer

---@class jetlua.StoredMsg
---@field subject string
---@field seq integer
---@field data string
---@field headers jetlua.Headers?
---@field time string

---@class jetlua.PurgeOptions
---@field subject string?
---@field seq integer?
---@field keep integer?

---@class jetlua.PublishExpect
---@field stream string?
---@field last_seq integer?
---@field last_subject_seq integer?
---@field last_msg_id string?

---@class jetlua.JsPublishOptions
---@field msg_id string? Nats-Msg-Id: a repeated publish is stored once
---@field headers jetlua.Headers?
---@field timeout number?
---@field expect jetlua.PublishExpect?

---@class jetlua.PublishAsyncOptions: jetlua.JsPublishOptions
---@field retry (boolean|integer)? overrides the context's retry for this message
---@field ack jetlua.Msg? hand-off: ack this consumed message once the publish is stored

---@class jetlua.PubAck
---@field stream string
---@field seq integer
---@field duplicate boolean?
---@field domain string?

---@class jetlua.PublishErrorInfo
---@field subject string
---@field data string
---@field msg_id string?
---@field error string
---@field detail string?
---@field err_code integer?

---@class jetlua.PublishAsyncStats
---@field published integer
---@field acked integer
---@field failed integer
---@field retried integer
---@field pending integer
---@field max_pending integer
---@field pending_bytes integer
---@field max_pending_bytes integer
---@field buffer_waits integer
---@field fast_acks integer PubAcks read on the loop thread (no hop through cnats' delivery thread)

---@class jetlua.PullOptions
---@field max_messages integer? buffered + requested + running (default 4000)
---@field max_bytes integer?
---@field threshold_messages integer?
---@field threshold_bytes integer?
---@field expires number? each pull request's expiry in seconds (default 30)
---@field heartbeat (number|false)? idle heartbeat in seconds
---@field on_error jetlua.OnError?

---@class jetlua.ConsumeOptions: jetlua.PullOptions
---@field concurrency integer? handlers at once (default 1: stream order)
---@field auto_ack boolean? handler returns: ack; raises: nak with a growing delay (default true)
---@field in_progress (boolean|number)? send +WPI while a handler runs (true: every ack_wait/2)
---@field retry jetlua.RetryPolicy? decides what a failed handler's message becomes

---@class jetlua.FetchOptions
---@field expires number? seconds (default 5)
---@field no_wait boolean?
---@field heartbeat number?
---@field max_bytes integer?

---@class jetlua.OrderedConfig
---@field filter_subject string?
---@field deliver_policy "all"|"last"|"new"|"by_start_sequence"|"by_start_time"|"last_per_subject"?
---@field opt_start_seq integer?
---@field opt_start_time string?
---@field headers_only boolean?
---@field replay "instant"|"original"?

---@class jetlua.ConsumeStats
---@field delivered integer
---@field acked integer
---@field naked integer
---@field termed integer
---@field in_progress integer
---@field redelivered integer
---@field buffered integer
---@field in_flight integer
---@field outstanding integer
---@field requests integer
---@field pulls integer
---@field window integer
---@field handler_ms number
---@field heartbeats_missed integer
---@field errors integer
---@field handler_errors integer
---@field max_deliveries integer
---@field backoff number
---@field closed boolean
---@field num_pending integer?
---@field num_ack_pending integer?
---@field max_request_batch integer?
---@field max_request_expires number?
---@field max_request_max_bytes integer?
---@field resets integer? ordered consumers: how many times it was re-created
---@field error string? the terminal error's code

---@class jetlua.MsgMetadata
---@field stream string
---@field consumer string
---@field num_delivered integer
---@field stream_seq integer
---@field consumer_seq integer
---@field timestamp number seconds since the epoch
---@field num_pending integer
---@field domain string?

---@class jetlua.KVConfig
---@field bucket string
---@field history integer? (default 1)
---@field ttl number? seconds a value is kept
---@field max_bytes integer?
---@field storage "file"|"memory"?
---@field replicas integer?
---@field description string?
---@field max_value_size integer?

---@class jetlua.KVEntry
---@field key string
---@field value string
---@field revision integer
---@field created string|number
---@field operation "PUT"|"DEL"|"PURGE"
---@field bucket string
---@field delta integer? watch: values still to come before caught up

---@class jetlua.KVStatus
---@field bucket string
---@field values integer
---@field bytes integer
---@field history integer
---@field ttl number
---@field storage string
---@field replicas integer

---@class jetlua.KVWatchOptions
---@field include_history boolean?
---@field updates_only boolean?
---@field ignore_deletes boolean?

---@class jetlua.Version
---@field jetlua string
---@field luajit string
---@field libuv string
---@field cnats string

---@class jetlua.Worker
---@field index integer which worker this process is, 0-based (0 without --workers)
---@field count integer how many workers `jetlua run --workers N` started (1 without --workers)

---@class jetlua.SpawnOptions
---@field env table<string, string|false>? variables to add (false removes one)
---@field cwd string?
---@field stdout string? "inherit", "ignore" or a file path to append to
---@field stderr string? "inherit", "ignore" or a file path to append to
---@field pdeathsig boolean? the child dies with jetlua (default true)

---@class jetlua.ReloadInfo
---@field generation integer
---@field reason string
---@field swapped integer
---@field started integer
---@field stopped integer

---@class jetlua.HistogramOptions
---@field buckets number[]? upper bounds, ascending (default 1 ms ... 10 s)
---@field help string?

---@class jetlua.BackoffOptions
---@field initial number? seconds (default 1)
---@field max number? seconds (default 30)
---@field factor number? (default 2)
---@field jitter number? fraction (default 0.1)
---@field max_deliver integer? deliveries before giving up (default 5)
---@field dlq string? subject for messages given up on
---@field on_exhausted "dlq"|"term"|"ack"?

---@class jetlua.IdempotentOptions
---@field js jetlua.JetStream
---@field bucket string KV bucket of the claims (created on first use)
---@field key (fun(msg: jetlua.Msg): string)? default: Nats-Msg-Id, else <stream>:<sequence>
---@field ttl number? how long a key is remembered (the bucket's max age)
---@field claim_ttl number? default: the consumer's ack_wait

---@class jetlua.PipelineSource
---@field stream string
---@field consumer string? the durable (default: the pipeline's name)
---@field subject string? filter subject

---@class jetlua.PipelineStep
---@field map (fun(v: any, msg: jetlua.Msg): any)?
---@field filter (fun(v: any, msg: jetlua.Msg): boolean)?
---@field flat_map (fun(v: any, msg: jetlua.Msg): any[])?
---@field route (fun(v: any, msg: jetlua.Msg): string)?
---@field batch {size: integer, timeout: number?}? last step only

---@class jetlua.PipelineConfig
---@field js jetlua.JetStream
---@field name string
---@field from jetlua.PipelineSource
---@field steps jetlua.PipelineStep[]
---@field to (string|fun(v: any, msg: jetlua.Msg): string)?
---@field codec "json"?
---@field retry jetlua.RetryPolicy?
---@field concurrency integer?
---@field max_messages integer?
---@field on_error jetlua.OnError?

---@class jetlua.ServiceEndpointInfo
---@field name string
---@field subject string
---@field queue_group string?
---@field metadata table<string, string>?

---@class jetlua.ServiceConfig
---@field name string letters, digits, - and _
---@field version string a semantic version
---@field description string?
---@field metadata table<string, string>?
---@field queue (string|false)? the endpoints' default queue group ("q"; false: none)
---@field stats_handler (fun(endpoint: jetlua.ServiceEndpointInfo): any)?

---@class jetlua.EndpointOptions
---@field subject string? default: the endpoint's name
---@field queue (string|false)?
---@field metadata table<string, string>?
---@field concurrency integer?
---@field pending_limit integer?

---@class jetlua.GroupOptions
---@field queue (string|false)?

---@class jetlua.MicroQuery
---@field timeout number? seconds to wait for answers (default 1)
---@field max integer? stop after this many answers

-- ---------------------------------------------------------------------------------------------
-- The module: local jet = require "jetlua"
-- ---------------------------------------------------------------------------------------------

---@class jetlua
local jet = {}

---Connects to NATS: the server jetlua was started with (--server, NATS_URL), or the embedded one.
---@async
---@param opts jetlua.ConnectOptions?
---@return jetlua.Conn|nil nc
---@return string? code "connect_failed", "auth_failed", "tls_error", ...
---@return string? detail
function jet.connect(opts) end

---Waits `seconds` without blocking anything else.
---@async
---@param seconds number
function jet.sleep(seconds) end

---A one-shot timer: fn(timer) runs in its own coroutine after `seconds`.
---@param seconds number
---@param fn fun(timer: jetlua.Timer)
---@return jetlua.Timer
function jet.timer(seconds, fn) end

---A repeating timer; a tick is skipped while the previous run of fn is still busy.
---@param seconds number
---@param fn fun(timer: jetlua.Timer)
---@return jetlua.Timer
function jet.every(seconds, fn) end

---Runs fn(...) in a new coroutine, now, until it first waits.
---@param fn function
---@param ... any
function jet.spawn(fn, ...) end

---Wall-clock seconds since the epoch.
---@return number
function jet.now() end

---Monotonic seconds, for measuring.
---@return number
function jet.monotonic() end

---Graceful shutdown with this exit status (true: 0, false: 1).
---@param code (integer|boolean)?
function jet.exit(code) end

---@return jetlua.Version
function jet.version() end

---Which of the `jetlua run --workers N` processes this is: {index = 0..N-1, count = N}
---({index = 0, count = 1} in a single process).
---@return jetlua.Worker
function jet.worker() end

---After each successful hot reload: fn(info) (the hooks the newest code declared run).
---@param fn fun(info: jetlua.ReloadInfo)
function jet.on_reload(fn) end

---Wraps a handler so it runs once per key, even for copies of a message handled at once.
---@param opts jetlua.IdempotentOptions
---@return fun(handler: fun(msg: jetlua.Msg)): fun(msg: jetlua.Msg)
function jet.idempotent(opts) end

---Consume, transform, publish: acks upstream only after the downstream PubAcks.
---@param cfg jetlua.PipelineConfig
---@return jetlua.Pipeline|nil pipeline
---@return string? code
---@return string? detail
function jet.pipeline(cfg) end

---@class jetlua.log
jet.log = {}

---@param ... any joined by spaces
function jet.log.debug(...) end
---@param ... any joined by spaces
function jet.log.info(...) end
---@param ... any joined by spaces
function jet.log.warn(...) end
---@param ... any joined by spaces
function jet.log.error(...) end

---@class jetlua.json
---@field null lightuserdata JSON null
jet.json = {}

---Encodes a value as JSON; raises on values JSON cannot hold.
---@param v any
---@return string
function jet.json.encode(v) end

---Decodes JSON text; raises `jet.json.decode: <what is wrong>` on text that is not JSON.
---@param s string
---@return any
function jet.json.decode(s) end

---@class jetlua.process
jet.process = {}

---Starts a child process (by default it dies with jetlua).
---@param argv string[]
---@param opts jetlua.SpawnOptions?
---@return jetlua.Process|nil proc
---@return string? code
---@return string? detail
function jet.process.spawn(argv, opts) end

---A free TCP port on 127.0.0.1.
---@return integer
function jet.process.free_port() end

---Makes a new temporary directory.
---@param prefix string?
---@return string path
function jet.process.tmpdir(prefix) end

---Removes a directory tree (only under $TMPDIR or /tmp).
---@param path string
---@return boolean
function jet.process.rmtree(path) end

---Waits until host:port accepts TCP connections.
---@async
---@param host string an IP address
---@param port integer
---@param timeout number? seconds
---@return boolean|nil ok
---@return string? code
function jet.process.wait_port(host, port, timeout) end

---@param name string
---@return string?
function jet.process.getenv(name) end

---@return integer
function jet.process.pid() end

---CPU seconds this process used.
---@return number
function jet.process.cpu() end

---@class jetlua.metrics
jet.metrics = {}

---@param name string
---@param labels table<string, string|number>?
---@param help string?
---@return jetlua.Counter
function jet.metrics.counter(name, labels, help) end

---@param name string
---@param labels table<string, string|number>?
---@param help string?
---@return jetlua.Gauge
function jet.metrics.gauge(name, labels, help) end

---@param name string
---@param labels table<string, string|number>?
---@param opts jetlua.HistogramOptions?
---@return jetlua.Histogram
function jet.metrics.histogram(name, labels, opts) end

---@class jetlua.retry
jet.retry = {}

---The usual retry policy: nak with exponential back-off, then the DLQ (or term/ack).
---@param opts jetlua.BackoffOptions?
---@return jetlua.RetryPolicy
function jet.retry.backoff(opts) end

---@class jetlua.fail
jet.fail = {}

---Raises `err` as a permanent failure: a backoff policy gives up on it at once.
---@param err any
---@param level integer?
function jet.fail.permanent(err, level) end

---@class jetlua.micro
jet.micro = {}

---Every service (or the named one, or one instance) that answers $SRV.PING within the timeout.
---@async
---@param nc jetlua.Conn
---@param name string?
---@param id string?
---@param query jetlua.MicroQuery?
---@return table[]|nil answers sorted by name and id
---@return string? code
---@return string? detail
function jet.micro.ping(nc, name, id, query) end

---$SRV.INFO answers: description and endpoints of each instance.
---@async
---@param nc jetlua.Conn
---@param name string?
---@param id string?
---@param query jetlua.MicroQuery?
---@return table[]|nil answers
---@return string? code
---@return string? detail
function jet.micro.info(nc, name, id, query) end

---$SRV.STATS answers: requests, errors and processing times of each endpoint.
---@async
---@param nc jetlua.Conn
---@param name string?
---@param id string?
---@param query jetlua.MicroQuery?
---@return table[]|nil answers
---@return string? code
---@return string? detail
function jet.micro.stats(nc, name, id, query) end

-- ---------------------------------------------------------------------------------------------
-- Connections, subscriptions, messages
-- ---------------------------------------------------------------------------------------------

---A NATS connection (jet.connect).
---@class jetlua.Conn
local Conn = {}

---Publishes a message: true once handed to the connection.
---@param subject string
---@param data string?
---@param opts jetlua.PublishOptions?
---@return true|nil ok
---@return string? code "max_payload", "buffer_full", "closed", ...
---@return string? detail
function Conn:publish(subject, data, opts) end

---fn(msg) runs once per message, in a coroutine. Wildcards * and > work.
---@param subject string
---@param fn fun(msg: jetlua.Msg)
---@param opts jetlua.SubscribeOptions?
---@return jetlua.Subscription
function Conn:subscribe(subject, fn, opts) end

---Sends a request and waits for the reply.
---@async
---@param subject string
---@param data string?
---@param opts jetlua.RequestOptions?
---@return jetlua.Msg|nil reply
---@return string? code "timeout", "no_responders", "permission_denied", "closed"
---@return string? detail
function Conn:request(subject, data, opts) end

---Round trip to the server: everything published before has been received by it.
---@async
---@param timeout number?
---@return true|nil ok
---@return string? code
---@return string? detail
function Conn:flush(timeout) end

---Stops receiving, lets handlers finish what arrived, flushes and closes.
---@async
---@param timeout number?
---@return true|nil ok
---@return string? code
---@return string? detail
function Conn:drain(timeout) end

---Closes now; messages not yet handled are dropped.
function Conn:close() end

---@return jetlua.ConnStatus
function Conn:status() end

---The URL of the current server (secrets shown as ***), or nil.
---@return string?
function Conn:connected_url() end

---fn(nc, info) on "disconnected", "reconnected", "closed"; fn(nc, code, detail, subject) on "error".
---@param event jetlua.ConnEvent
---@param fn fun(nc: jetlua.Conn, a: any, b: any, c: any)
function Conn:on(event, fn) end

---@return jetlua.ConnStats
function Conn:stats() end

---A JetStream context: management, publish, consumers, KV.
---@param opts jetlua.JetStreamOptions?
---@return jetlua.JetStream
function Conn:jetstream(opts) end

---A NATS service (the micro protocol): $SRV.PING, INFO and STATS answered, endpoints added with svc:endpoint.
---@param cfg jetlua.ServiceConfig
---@return jetlua.Service
function Conn:service(cfg) end

---A core NATS subscription (nc:subscribe).
---@class jetlua.Subscription
local Subscription = {}

---Stops now and drops what is queued.
function Subscription:unsubscribe() end

---Handles what already arrived, then closes.
---@async
function Subscription:drain() end

---@return jetlua.SubStats
function Subscription:stats() end

---@return string
function Subscription:subject() end

---A message: from a subscription, a request's reply, or a JetStream consumer (ack methods).
---@class jetlua.Msg
---@field subject string
---@field reply string? nil when none
---@field data string
---@field size integer
---@field headers jetlua.Headers
local Msg = {}

---The first value of a header.
---@param name string
---@return string?
function Msg:header(name) end

---Every value of a header.
---@param name string
---@return string[]
function Msg:header_values(name) end

---Publishes `data` to the message's reply subject.
---@param data string?
---@param opts jetlua.RespondOptions?
---@return true|nil ok
---@return string? code
---@return string? detail
function Msg:respond(data, opts) end

---+ACK.
---@return true|nil ok
---@return string? code "already_acked", "closed"
---@return string? detail
function Msg:ack() end

---Acks and waits until the server confirms.
---@async
---@param timeout number? seconds (default 5)
---@return true|nil ok
---@return string? code
---@return string? detail
function Msg:ack_sync(timeout) end

---Sends -NAK: redelivered at once or after `delay` seconds.
---@param delay number?
---@return true|nil ok
---@return string? code
---@return string? detail
function Msg:nak(delay) end

---+WPI: resets the ack_wait clock.
---@return true|nil ok
---@return string? code
---@return string? detail
function Msg:in_progress() end

---+TERM: never redelivered.
---@return true|nil ok
---@return string? code
---@return string? detail
function Msg:term() end

---Stream, consumer, sequences, delivery count and pending count, from the ack subject.
---@return jetlua.MsgMetadata|nil
function Msg:metadata() end

-- ---------------------------------------------------------------------------------------------
-- JetStream
-- ---------------------------------------------------------------------------------------------

---A JetStream context (nc:jetstream).
---@class jetlua.JetStream
local JetStream = {}

---Creates the stream, or updates it when it differs from the declaration (the desired state).
---@async
---@param cfg jetlua.StreamConfig
---@return jetlua.StreamInfo|nil info
---@return string? changed_or_code "created", "updated" or nil on success; the error code on failure
---@return string? detail
function JetStream:stream(cfg) end

---@async
---@param name string
---@return jetlua.StreamInfo|nil info
---@return string? code "stream_not_found", ...
---@return string? detail
function JetStream:stream_info(name) end

---@async
---@param name string
---@return boolean|nil ok
---@return string? code
---@return string? detail
function JetStream:delete_stream(name) end

---Removes messages (all, or only some) → the number purged.
---@async
---@param name string
---@param opts jetlua.PurgeOptions?
---@return integer|nil purged
---@return string? code
---@return string? detail
function JetStream:purge(name, opts) end

---@async
---@param name string
---@param seq integer
---@return jetlua.StoredMsg|nil msg
---@return string? code "no_message_found", ...
---@return string? detail
function JetStream:get_msg(name, seq) end

---@async
---@param name string
---@param subject string
---@return jetlua.StoredMsg|nil msg
---@return string? code
---@return string? detail
function JetStream:get_last_msg(name, subject) end

---@async
---@param name string
---@param seq integer
---@return boolean|nil ok
---@return string? code
---@return string? detail
function JetStream:delete_msg(name, seq) end

---Every stream (all pages).
---@async
---@return jetlua.StreamInfo[]|nil streams
---@return string? code
---@return string? detail
function JetStream:streams() end

---@async
---@return string[]|nil names
---@return string? code
---@return string? detail
function JetStream:stream_names() end

---Creates the consumer, or updates it when it differs from the declaration.
---@async
---@param stream string
---@param cfg jetlua.ConsumerConfig
---@return jetlua.ConsumerInfo|nil info
---@return string? changed_or_code "created", "updated" or nil on success; the error code on failure
---@return string? detail
function JetStream:consumer(stream, cfg) end

---@async
---@param stream string
---@param name string
---@return jetlua.ConsumerInfo|nil info
---@return string? code "consumer_not_found", "stream_not_found", ...
---@return string? detail
function JetStream:consumer_info(stream, name) end

---@async
---@param stream string
---@param name string
---@return boolean|nil ok
---@return string? code
---@return string? detail
function JetStream:delete_consumer(stream, name) end

---@async
---@param stream string
---@return jetlua.ConsumerInfo[]|nil consumers
---@return string? code
---@return string? detail
function JetStream:consumers(stream) end

---The server's account info.
---@async
---@return table|nil info
---@return string? code
---@return string? detail
function JetStream:account_info() end

---"orders.created" → stream ORDERS with subjects orders.> and the template's other settings.
---@async
---@param subject string
---@param template jetlua.StreamConfig|table|nil
---@return jetlua.StreamInfo|nil info
---@return string? changed_or_code
---@return string? detail
function JetStream:ensure_stream_for(subject, template) end

---Publishes and waits for the PubAck.
---@async
---@param subject string
---@param data string?
---@param opts jetlua.JsPublishOptions?
---@return jetlua.PubAck|nil ack
---@return string? code "wrong_last_sequence", "no_responders", "timeout", "permission_denied", ...
---@return string? detail
---@return integer? err_code the server's JetStream error code
function JetStream:publish(subject, data, opts) end

---Publishes without waiting: a future (or true with opts.ack). Yields only while the window is full.
---@async
---@param subject string
---@param data string?
---@param opts jetlua.PublishAsyncOptions?
---@return jetlua.Future|true
function JetStream:publish_async(subject, data, opts) end

---Async publishes not acked yet.
---@return integer
function JetStream:publish_async_pending() end

---Waits until nothing is pending or the timeout → how many are still pending.
---@async
---@param timeout number?
---@return integer pending
function JetStream:publish_async_complete(timeout) end

---fn(info) for every final failure whose future had no waiter and no f:on.
---@param fn fun(info: jetlua.PublishErrorInfo)
function JetStream:on_publish_error(fn) end

---@return jetlua.PublishAsyncStats
function JetStream:publish_async_stats() end

---Runs handler(msg) for each message of a durable pull consumer, in pooled coroutines.
---@async
---@param stream string
---@param consumer string
---@param handler fun(msg: jetlua.Msg)
---@param opts jetlua.ConsumeOptions?
---@return jetlua.ConsumeHandle|nil h
---@return string? code "consumer_not_found", "push_consumer", ...
---@return string? detail
function JetStream:consume(stream, consumer, handler, opts) end

---An iterator over a consumer's messages: for msg in it do ... msg:ack() end.
---@async
---@param stream string
---@param consumer string
---@param opts jetlua.PullOptions?
---@return jetlua.MessageIterator|nil it
---@return string? code
---@return string? detail
function JetStream:messages(stream, consumer, opts) end

---One pull of up to n messages; with an error after some came: list, code, detail.
---@async
---@param stream string
---@param consumer string
---@param n integer
---@param opts jetlua.FetchOptions?
---@return jetlua.Msg[]|nil msgs
---@return string? code
---@return string? detail
function JetStream:fetch(stream, consumer, n, opts) end

---One pull bounded by bytes.
---@async
---@param stream string
---@param consumer string
---@param max_bytes integer
---@param opts jetlua.FetchOptions?
---@return jetlua.Msg[]|nil msgs
---@return string? code
---@return string? detail
function JetStream:fetch_bytes(stream, consumer, max_bytes, opts) end

---An ordered consumer: strictly in stream order, never a gap or a repeat.
---@param stream string
---@param cfg jetlua.OrderedConfig?
---@return jetlua.OrderedConsumer
function JetStream:ordered(stream, cfg) end

---Creates the bucket, or updates its settings to these.
---@async
---@param cfg jetlua.KVConfig
---@return jetlua.KV|nil kv
---@return string? code
---@return string? detail
function JetStream:create_kv(cfg) end

---@async
---@param bucket string
---@return jetlua.KV|nil kv
---@return string? code "bucket_not_found", ...
---@return string? detail
function JetStream:kv(bucket) end

---@async
---@param bucket string
---@return boolean|nil ok
---@return string? code
---@return string? detail
function JetStream:delete_kv(bucket) end

---An async publish's future (js:publish_async).
---@class jetlua.Future
local Future = {}

---Waits for the ack.
---@async
---@param timeout number?
---@return jetlua.PubAck|nil ack
---@return string? code "timeout", "no_responders", "disconnected", ...
---@return string? detail
---@return integer? err_code
function Future:wait(timeout) end

---fn runs once, in its own coroutine, when the publish is acked or fails for good.
---@param fn fun(ack: jetlua.PubAck?, code: string?, detail: string?, err_code: integer?)
function Future:on(fn) end

---@return jetlua.FutureStatus
function Future:status() end

---A running consumer (js:consume, oc:consume).
---@class jetlua.ConsumeHandle
local ConsumeHandle = {}

---Stops now; buffered messages are nak'd.
function ConsumeHandle:stop() end

---Stops pulling, finishes every buffered and running message, then closes.
---@async
function ConsumeHandle:drain() end

---True once it ended.
---@return boolean
function ConsumeHandle:closed() end

---@return jetlua.ConsumeStats
function ConsumeHandle:stats() end

---An iterator over a consumer's messages (js:messages, oc:messages).
---@class jetlua.MessageIterator
---@overload fun(): jetlua.Msg?
local MessageIterator = {}

---The next message, or nil, "timeout" / "closed" / code, detail.
---@async
---@param timeout number?
---@return jetlua.Msg|nil msg
---@return string? code
---@return string? detail
function MessageIterator:next(timeout) end

---Stops: buffered messages are nak'd; a waiting next returns nil, "closed".
function MessageIterator:stop() end

---No more pulls; next hands out what arrived, then nil, "closed".
function MessageIterator:drain() end

---@return jetlua.ConsumeStats
function MessageIterator:stats() end

---An ordered consumer (js:ordered).
---@class jetlua.OrderedConsumer
local OrderedConsumer = {}

---@async
---@param handler fun(msg: jetlua.Msg)
---@param opts jetlua.ConsumeOptions?
---@return jetlua.ConsumeHandle|nil h
---@return string? code
---@return string? detail
function OrderedConsumer:consume(handler, opts) end

---@async
---@param opts jetlua.PullOptions?
---@return jetlua.MessageIterator|nil it
---@return string? code
---@return string? detail
function OrderedConsumer:messages(opts) end

---@async
---@param n integer
---@param opts jetlua.FetchOptions?
---@return jetlua.Msg[]|nil msgs
---@return string? code
---@return string? detail
function OrderedConsumer:fetch(n, opts) end

-- ---------------------------------------------------------------------------------------------
-- Key-value buckets
-- ---------------------------------------------------------------------------------------------

---A key-value bucket (js:kv, js:create_kv).
---@class jetlua.KV
local KV = {}

---@async
---@param key string
---@param revision integer?
---@return jetlua.KVEntry|nil entry
---@return string? code "key_not_found", ...
---@return string? detail
function KV:get(key, revision) end

---@async
---@param key string
---@param value string
---@return integer|nil revision
---@return string? code
---@return string? detail
function KV:put(key, value) end

---Only when the key is absent (or deleted).
---@async
---@param key string
---@param value string
---@return integer|nil revision
---@return string? code "key_exists", ...
---@return string? detail
function KV:create(key, value) end

---Only when `revision` is still the latest.
---@async
---@param key string
---@param value string
---@param revision integer
---@return integer|nil revision
---@return string? code "wrong_revision", ...
---@return string? detail
function KV:update(key, value, revision) end

---A delete marker (history kept); with revision, only while that is still the latest.
---@async
---@param key string
---@param revision integer?
---@return integer|nil revision
---@return string? code "wrong_revision", ...
---@return string? detail
function KV:delete(key, revision) end

---A purge marker that drops the key's history.
---@async
---@param key string
---@return integer|nil revision
---@return string? code
---@return string? detail
function KV:purge(key) end

---Sorted live keys.
---@async
---@return string[]|nil keys
---@return string? code
---@return string? detail
function KV:keys() end

---Every kept revision, oldest first, deletes included.
---@async
---@param key string
---@return jetlua.KVEntry[]|nil entries
---@return string? code "key_not_found", ...
---@return string? detail
function KV:history(key) end

---@async
---@return jetlua.KVStatus|nil status
---@return string? code
---@return string? detail
function KV:status() end

---fn(entry) for the latest value of each matching key, then every change; fn(nil) once caught up.
---Without fn: an iterator (for e in w do ... end).
---@async
---@param keys string? a key or a pattern (default ">")
---@param fn (fun(entry: jetlua.KVEntry?))?
---@param opts jetlua.KVWatchOptions?
---@return jetlua.KVWatcher|nil w
---@return string? code
---@return string? detail
function KV:watch(keys, fn, opts) end

---A KV watcher (kv:watch).
---@class jetlua.KVWatcher
---@overload fun(): jetlua.KVEntry?
local KVWatcher = {}

---The next entry (iterator form).
---@async
---@param timeout number?
---@return jetlua.KVEntry|nil entry
---@return string? code
function KVWatcher:next(timeout) end

function KVWatcher:stop() end

---True once the initial values have all been seen.
---@return boolean
function KVWatcher:caught_up() end

-- ---------------------------------------------------------------------------------------------
-- Timers, processes, metrics, pipelines
-- ---------------------------------------------------------------------------------------------

---A timer (jet.timer, jet.every).
---@class jetlua.Timer
local Timer = {}

function Timer:stop() end

---@return boolean
function Timer:active() end

---A child process (jet.process.spawn).
---@class jetlua.Process
---@field pid integer
local Process = {}

---@param signal jetlua.Signal? default "TERM"
---@return true|nil ok
---@return string? code "exited", "kill_failed"
---@return string? detail
function Process:kill(signal) end

---Waits for the exit → status, signal.
---@async
---@param timeout number?
---@return integer|nil status
---@return integer|string|nil signal_or_code the signal, or "timeout"
function Process:wait(timeout) end

---@return boolean
function Process:running() end

---@class jetlua.Counter
local Counter = {}

---@param n number? default 1, >= 0
function Counter:inc(n) end

---@return number
function Counter:value() end

---@class jetlua.Gauge
local Gauge = {}

---@param v number
function Gauge:set(v) end

---@param n number? default 1
function Gauge:inc(n) end

---@param n number? default 1
function Gauge:dec(n) end

---@return number
function Gauge:value() end

---@class jetlua.Histogram
local Histogram = {}

---@param v number
function Histogram:observe(v) end

---@return integer
function Histogram:count() end

---@return number
function Histogram:sum() end

---A running pipeline (jet.pipeline).
---@class jetlua.Pipeline
local Pipeline = {}

---in, out, filtered, acked, publish_failed and the consumer's stats.
---@return table
function Pipeline:stats() end

function Pipeline:stop() end

---@async
function Pipeline:drain() end

---@return boolean
function Pipeline:closed() end

-- ---------------------------------------------------------------------------------------------
-- Services (NATS micro)
-- ---------------------------------------------------------------------------------------------

---A service (nc:service).
---@class jetlua.Service
---@field name string
---@field id string unique per instance
local Service = {}

---Adds an endpoint: handler(req) runs once per request.
---@param name string
---@param opts jetlua.EndpointOptions|fun(req: jetlua.ServiceRequest)
---@param handler (fun(req: jetlua.ServiceRequest))?
---@return true|nil ok
---@return string? code
---@return string? detail
function Service:endpoint(name, opts, handler) end

---A group of endpoints under `<name>.`.
---@param name string
---@param opts jetlua.GroupOptions?
---@return jetlua.ServiceGroup
function Service:group(name, opts) end

---The INFO document.
---@return table
function Service:info() end

---The STATS document.
---@return table
function Service:stats() end

---Counters to zero, started to now.
function Service:reset() end

---No more PING/INFO/STATS answers; endpoints are drained. False if already stopped.
---@return boolean
function Service:stop() end

---@return boolean
function Service:stopped() end

---A group of a service's endpoints (svc:group).
---@class jetlua.ServiceGroup
local ServiceGroup = {}

---@param name string
---@param opts jetlua.EndpointOptions|fun(req: jetlua.ServiceRequest)
---@param handler (fun(req: jetlua.ServiceRequest))?
---@return true|nil ok
---@return string? code
---@return string? detail
function ServiceGroup:endpoint(name, opts, handler) end

---@param name string
---@param opts jetlua.GroupOptions?
---@return jetlua.ServiceGroup
function ServiceGroup:group(name, opts) end

---A request to a service endpoint.
---@class jetlua.ServiceRequest
---@field data string
---@field subject string
---@field reply string?
---@field headers jetlua.Headers
---@field size integer
---@field msg jetlua.Msg
local ServiceRequest = {}

---@param name string
---@return string?
function ServiceRequest:header(name) end

---@param name string
---@return string[]
function ServiceRequest:header_values(name) end

---@param data string?
---@param opts jetlua.RespondOptions?
---@return true|nil ok
---@return string? code "no_reply", ...
---@return string? detail
function ServiceRequest:respond(data, opts) end

---@param value any encoded with jet.json.encode
---@param opts jetlua.RespondOptions?
---@return true|nil ok
---@return string? code
---@return string? detail
function ServiceRequest:respond_json(value, opts) end

---Answers with Nats-Service-Error and Nats-Service-Error-Code headers (counted as an error).
---@param code integer|string
---@param description string
---@param data string?
---@param opts jetlua.RespondOptions?
---@return true|nil ok
---@return string? code
---@return string? detail
function ServiceRequest:respond_error(code, description, data, opts) end

return jet
