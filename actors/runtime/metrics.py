"""Every Prometheus metric the system registers, in one place.

Metrics are written by each actor process and served for the whole host by the supervisor
(prometheus_client multiprocess mode: PROMETHEUS_MULTIPROC_DIR is set by the supervisor
before any process imports this module). Base units; no unbounded labels.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# A process's multiprocess files (one per metric type and mode) start at one page and
# double as they fill (the library grows them), not at 64 KiB: on a disk-backed metrics
# dir the first read of each was read ahead and mapped whole, ~0.17 MiB of every actor's
# idle memory for three files of a few KiB (issue 16, idle PSS). Set before any file opens.
# The library's private constant: a release without it (or without `mmap_dict`) runs as
# is, with files at its own start size (tests/runtime/test_metrics_files.py notices).
FILE_START_BYTES = 4096
try:
    from prometheus_client import mmap_dict as _mmap_dict
except ImportError:  # moved or removed by a later release
    pass
else:
    if hasattr(_mmap_dict, "_INITIAL_MMAP_SIZE"):
        _mmap_dict._INITIAL_MMAP_SIZE = FILE_START_BYTES

_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
_RESTART_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# ---------------------------------------------------------------- supervision
ACTOR_UP = Gauge(
    "tradepulse_actor_up", "1 while the actor is READY", ["actor"], multiprocess_mode="mostrecent"
)
ACTOR_RESTARTS = Counter(
    "tradepulse_actor_restarts",
    "Restarts of an actor by the supervisor, by why its last incarnation ended "
    "(crash, hang, start_timeout, operator)",
    ["actor", "reason"],
)
ACTOR_RESTART_SECONDS = Histogram(
    "tradepulse_actor_restart_seconds",
    "Actor crash detected -> next incarnation READY",
    buckets=_RESTART_BUCKETS,
)
ACTOR_RSS = Gauge(
    "tradepulse_actor_resident_memory_bytes",
    "Resident memory of an actor process",
    ["actor"],
    multiprocess_mode="mostrecent",
)
ACTOR_HEARTBEAT_AGE = Gauge(
    "tradepulse_actor_heartbeat_age_seconds",
    "Seconds since the actor's last application heartbeat",
    ["actor"],
    multiprocess_mode="mostrecent",
)
ACTOR_HANG_DEFERRALS = Counter(
    "tradepulse_actor_hang_deferrals",
    "Silences of an actor past the hang limit not judged hung (yet): its main thread waited "
    "on the disk (reason=disk) or for a core (reason=cpu)",
    ["actor", "reason"],
)
SUPERVISOR_STALL_SECONDS = Counter(
    "tradepulse_supervisor_stall_seconds",
    "Time the supervisor's loop was stalled (paused, not reading): not held against actors",
)
HEAP_TRIMS = Counter(
    "tradepulse_heap_trims",
    "Times an actor gave the C heap's free pages back (malloc_trim)",
    ["actor"],
)
HEAP_TRIM_SECONDS = Counter(
    "tradepulse_heap_trim_seconds",
    "Time an actor's loop spent giving free heap pages back",
    ["actor"],
)
LOG_LINES_DROPPED = Counter(
    "tradepulse_log_lines_dropped",
    "Log lines not written to the state dir's log file (disk full, I/O error, backlog)",
)
BAD_MESSAGES = Counter(
    "tradepulse_bad_messages", "Frames rejected as malformed, by receiving actor", ["actor"]
)
OPERATOR_COMMANDS = Counter(
    "tradepulse_operator_commands",
    "Operator commands on the control socket (and reloads by SIGHUP), by result",
    ["command", "result"],
)
AUDIT_WRITE_FAILURES = Counter(
    "tradepulse_audit_write_failures", "Audit log records that could not be written"
)
CONFIG_RELOADS = Counter(
    "tradepulse_config_reloads",
    "Config reloads (reload command or SIGHUP), by result",
    ["result"],
)
REPLIES_DROPPED = Counter(
    "tradepulse_replies_dropped",
    "Replies not sent: the requester does not read (hwm) or is gone (unroutable)",
    ["actor", "reason"],
)
REQUESTS_UNSENT = Counter(
    "tradepulse_requests_unsent",
    "Requests failed at once: the peer's queue is full (hwm), it is down or not reading",
    ["actor", "peer", "reason"],
)

OPEN_AT_VENUE_DRIFTS = Counter(
    "tradepulse_oms_open_at_venue_drifts",
    "Orders the OMS's open-at-venue safety net found miscounted (and fixed): 0 unless a bug",
)

# ---------------------------------------------------------------- venues and connectors
RECONNECTS = Counter(
    "tradepulse_reconnects", "Venue connection attempts after the first", ["venue"]
)
VENUE_REQUEST_UNSERVED = Gauge(
    "tradepulse_venue_request_unserved",
    "1 while the connector answers a request itself: the venue does not serve it "
    "(request: mass_status = AF, positions = AN; positions then come from the fill ledger)",
    ["venue", "request"],
    multiprocess_mode="mostrecent",
)
FILL_LEDGER_FILLS = Counter(
    "tradepulse_fill_ledger_fills", "Fills applied to the connector's own fill ledger", ["venue"]
)
VENUE_ANSWERS_UNREADABLE = Counter(
    "tradepulse_venue_answers_unreadable",
    "Venue answers and events a connector could not read (refused, logged): ccxt, FIX positions",
    ["venue", "source"],
)
VENUE_UP = Gauge(
    "tradepulse_venue_up",
    "1 while the venue session is logged on",
    ["venue"],
    multiprocess_mode="mostrecent",
)
VENUE_DOWN = Gauge(
    "tradepulse_venue_down",
    "1 while the venue is marked DOWN (connector over its restart or reconnect budget)",
    ["venue"],
    multiprocess_mode="mostrecent",
)
VENUE_IN_SESSION = Gauge(
    "tradepulse_venue_in_session",
    "1 inside the venue's trading session (always, without a schedule), 0 outside it",
    ["venue"],
    multiprocess_mode="mostrecent",
)
VENUE_ROUNDTRIP = Histogram(
    "tradepulse_venue_roundtrip_seconds",
    "Connector send of a request -> the venue's first answer",
    ["venue"],
    buckets=_LATENCY_BUCKETS,
)
FIX_GARBLED_FRAMES = Counter(
    "tradepulse_fix_garbled_frames",
    "Garbled FIX frames ignored by a logged-on session (number not consumed), by peer CompID",
    ["peer", "reason"],
)
FIX_REJECTS_SENT = Counter(
    "tradepulse_fix_rejects_sent",
    "Messages of a peer a FIX session refused: session Reject (kind session, reason its"
    " SessionRejectReason 373) or BusinessMessageReject (kind business, reason 380)",
    ["peer", "kind", "reason"],
)
FIX_RESEND_REQUESTS_SKIPPED = Counter(
    "tradepulse_fix_resend_requests_skipped",
    "ResendRequests of a peer left unanswered in one loop turn: every number asked for was"
    " answered already in that turn (covered), or the turn resent its bound (over_budget)",
    ["peer", "reason"],
)
FIX_ORDERS_NOT_RESENT = Counter(
    "tradepulse_fix_orders_not_resent",
    "NewOrderSingles a peer asked for again (of an earlier connection, or sent more than"
    " two HeartBtInt ago) and got a gap fill for: the OMS's reconciliation decides whether"
    " each order still goes",
    ["peer"],
)

# ---------------------------------------------------------------- orders (oms)
ORDERS = Counter("tradepulse_orders", "Orders reaching a status", ["venue", "status"])
FILLS = Counter(
    "tradepulse_fills",
    "Fills applied (once per exec id; one inferred from venue state, an adoption's included)",
    ["venue"],
)
ORDER_LATENCY = Histogram(
    "tradepulse_order_latency_seconds",
    "Submit received by the OMS -> venue acknowledgement",
    ["venue"],
    buckets=_LATENCY_BUCKETS,
)
ORDERS_REFUSED = Counter(
    "tradepulse_orders_refused",
    "Submits / replaces refused at OMS intake, by error code (e.g. journal_unavailable)",
    ["reason"],
)
JOURNAL_RESERVE_BYTES = Gauge(
    "tradepulse_journal_reserve_bytes",
    "Space allocated past the end of the OMS journal, for writes while the disk is full",
    multiprocess_mode="mostrecent",
)
JOURNAL_LOW = Gauge(
    "tradepulse_journal_low",
    "1 while the OMS journal cannot reserve space (new orders refused), else 0",
    multiprocess_mode="mostrecent",
)
QUEUE_DEPTH = Gauge(
    "tradepulse_queue_depth",
    "Orders waiting in the OMS submission queue of a venue",
    ["venue"],
    multiprocess_mode="mostrecent",
)
OPEN_POSITIONS = Gauge(
    "tradepulse_open_positions",
    "Net position quantity per venue and symbol",
    ["venue", "symbol"],
    multiprocess_mode="mostrecent",
)
UNMATCHED_FILLS = Counter("tradepulse_unmatched_fills", "Fills that matched no order", ["venue"])
BAD_FILLS = Counter(
    "tradepulse_bad_fills", "Venue fills refused: no valid positive price or qty", ["venue"]
)
TRADE_BUSTS = Counter(
    "tradepulse_oms_trade_busts",
    "Venue trade busts (150=H) and corrections (150=G), by outcome: busted, corrected, "
    "unknown_fill (escalated, not applied), cum_mismatch (applied, venue CumQty differs)",
    ["venue", "outcome"],
)
BAD_FEES = Counter(
    "tradepulse_oms_bad_fees",
    "Fill fees refused (over protocol.fees.MAX_FEE_SHARE of the fill): the fill booked without",
    ["venue"],
)
ORDERS_REPLACED_EXTERNALLY = Counter(
    "tradepulse_oms_orders_replaced_externally",
    "Orders replaced at the venue by someone else (no replace request of ours)",
    ["venue"],
)
EXECUTIONS_QUARANTINED = Counter(
    "tradepulse_oms_executions_quarantined",
    "Venue executions the OMS could not apply, journalled aside and acked",
    ["venue"],
)
QUARANTINED_EXECUTIONS_ACKED = Counter(
    "tradepulse_oms_quarantined_executions_acked",
    "Resends of quarantined venue executions acked without being applied",
    ["venue"],
)
ARCHIVE_WRITE_FAILURES = Counter(
    "tradepulse_oms_archive_write_failures",
    "Failed writes of evicted terminal orders to the OMS's order archive (kept in memory)",
)
ARCHIVE_PENDING_ORDERS = Gauge(
    "tradepulse_oms_archive_pending_orders",
    "Terminal orders the OMS let go that wait in memory for the order archive",
    multiprocess_mode="mostrecent",
)
ARCHIVE_OLDEST_UNCONFIRMED = Gauge(
    "tradepulse_oms_archive_oldest_unconfirmed_seconds",
    "Age of the oldest batch handed to the OMS's archive writer and not committed yet"
    " (0: none waiting)",
    multiprocess_mode="mostrecent",
)
RECONCILE_ACTIONS = Counter(
    "tradepulse_reconcile_actions", "Reconciliation plan actions applied", ["venue", "action"]
)
RESUBMITS_UNSENT = Counter(
    "tradepulse_oms_resubmits_unsent",
    "Resubmissions a connector did not send, taken back (not counted toward max_resubmits)",
    ["venue"],
)
JOURNAL_FSYNC_SECONDS = Histogram(
    "tradepulse_journal_fsync_seconds",
    "Duration of one journal group commit",
    buckets=_LATENCY_BUCKETS,
)

# ---------------------------------------------------------------- risk and kill-switch
RECONCILE_FAILURES = Counter(
    "tradepulse_reconcile_failures",
    "Reconciliation passes that failed while the venue was CONNECTED",
    ["venue"],
)
OPENING_POSITIONS_RETRIES = Counter(
    "tradepulse_opening_positions_retries",
    "Positions asked again by a cold start: the answer's cut was not one the OMS can account"
    " for (its wait for the OMS's acks ran out, or older than the OMS's fill log)",
    ["venue"],
)
RECONCILE_FAILING = Gauge(
    "tradepulse_reconcile_failing",
    "1 while the venue's reconciliation keeps failing (nothing is sent to it)",
    ["venue"],
    multiprocess_mode="mostrecent",
)
RISK_CHECKS = Counter("tradepulse_risk_checks", "Pre-trade checks by outcome", ["outcome"])
KILL_SWITCH_ENGAGED = Gauge(
    "tradepulse_kill_switch_engaged",
    "1 while the kill-switch is engaged",
    multiprocess_mode="mostrecent",
)
RISK_DAILY_REALIZED_PNL = Gauge(
    "tradepulse_risk_daily_realized_pnl",
    "Risk's realised P&L since the trading day started (risk.day_start; negative: a loss),"
    " what risk.max_daily_loss is checked against",
    multiprocess_mode="mostrecent",
)
KILL_SWITCH_TRIGGERS = Counter(
    "tradepulse_kill_switch_triggers", "Kill-switch engagements by reason", ["reason"]
)
KILL_SWITCH_LIVE_SWEEPS = Counter(
    "tradepulse_kill_switch_live_sweeps",
    "Mass cancels of a venue sent again while the kill-switch is engaged: an order showed live"
    " there after its last round (a create that landed late)",
    ["venue"],
)

# ---------------------------------------------------------------- heartbeat
LAST_HEARTBEAT = Gauge(
    "tradepulse_last_heartbeat_timestamp_seconds",
    "Unix time of the last successful position heartbeat of a venue",
    ["venue"],
    multiprocess_mode="mostrecent",
)
POSITION_DIVERGENCE = Gauge(
    "tradepulse_position_divergence",
    "Absolute OMS vs venue position difference summed over symbols",
    ["venue"],
    multiprocess_mode="mostrecent",
)
POSITION_COMPARED = Gauge(
    "tradepulse_position_compared_timestamp_seconds",
    "Unix time a venue's positions were last compared with the OMS's (a fresh answer at a"
    " consistent cut), or excused (out of session, stopped by an operator); until then, when"
    " the supervisor run's heartbeat first watched it (kept across heartbeat restarts)",
    ["venue"],
    multiprocess_mode="mostrecent",
)

# ---------------------------------------------------------------- same-host peers
PEERS_REFUSED = Counter(
    "tradepulse_peers_refused",
    "Connections to an internal socket refused: not one of the system's own processes",
    ["actor"],
)
MESSAGES_REFUSED = Counter(
    "tradepulse_messages_refused",
    "Messages refused: the sender may not send that type (or claims another's name)",
    ["actor", "type"],
)

# ---------------------------------------------------------------- trading windows
TRADING_WINDOW_OPEN = Gauge(
    "tradepulse_trading_window_open",
    "1 while new orders are taken by the trading windows / blackouts ([trading]), else 0",
    multiprocess_mode="mostrecent",
)
TRADING_WINDOW_NEXT_CHANGE = Gauge(
    "tradepulse_trading_window_next_change_timestamp_seconds",
    "Unix time of the next trading window open/close (0: none scheduled)",
    multiprocess_mode="mostrecent",
)

# ---------------------------------------------------------------- systemd
SD_NOTIFY_FAILURES = Counter(
    "tradepulse_sd_notify_failures",
    "sd_notify datagrams to systemd ($NOTIFY_SOCKET) that could not be sent",
)

# ---------------------------------------------------------------- operator intake pauses
INTAKE_PAUSED = Gauge(
    "tradepulse_intake_paused",
    "1 while an operator pause closes intake (scope: global, or the venue)",
    ["scope"],
    multiprocess_mode="mostrecent",
)
INTAKE_STATE_UNREADABLE = Counter(
    "tradepulse_intake_state_unreadable",
    "Loads of an unreadable intake pause file (the OMS then pauses intake globally)",
)
ACTOR_STOPPED_BY_OPERATOR = Gauge(
    "tradepulse_actor_stopped_by_operator",
    "1 while an operator keeps the actor stopped (`tradepulse stop`): no ActorDown page",
    ["actor"],
    multiprocess_mode="mostrecent",
)

# ---------------------------------------------------------------- the link between hosts
LINK_UP = Gauge(
    "tradepulse_link_up",
    "1 while the link to the peer host group answers (edge: the core; core: each edge)",
    ["peer"],
    multiprocess_mode="mostrecent",
)
LINK_RTT = Gauge(
    "tradepulse_link_rtt_seconds",
    "The link's last ping round trip (measured by the edge)",
    ["peer"],
    multiprocess_mode="mostrecent",
)
LINK_DROPPED = Counter(
    "tradepulse_link_dropped",
    "Messages the link dropped: peer unreachable or its queue full (hwm), stale epoch, not allowed"
    " (an answer from an edge not asked), unexpected (an answer nobody waits for), malformed,"
    " open_failed (no socket for a bridge)",
    ["peer", "reason"],
)
LINK_RECONNECTS = Counter(
    "tradepulse_link_reconnects", "Times the link to the peer came back after a loss", ["peer"]
)
LINK_CORE_LOST = Counter(
    "tradepulse_link_core_lost",
    "Dead-man switch firings at an edge: the core silent past link.edge.core_loss_cancel_s",
)
LINK_DEAD_MAN_CANCELS = Counter(
    "tradepulse_link_dead_man_cancels",
    "Mass cancels the edge's dead-man switch asked of a connector, by answer",
    ["connector", "result"],
)
