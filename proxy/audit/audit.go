// Package audit is crmgate's decision log (DESIGN.md §4): one event per
// decision, allow or deny, in the shape of OPA's decision-log events
// (logs.EventV1 field names) plus crmgate's own fields.
//
// Logging must never slow a request down or hold it up: Logger.Log only
// puts the event on a bounded queue, and a single background goroutine
// masks, serialises and hands events to a Sink in batches. When the queue is
// full the event is dropped and counted (crmgate_decision_log_events_total
// {result="dropped"}) rather than waiting.
package audit

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/metrics"
)

// Defaults applied by New to zero or negative Options.
const (
	DefaultBufferSize   = 4096
	DefaultMaxRecordIDs = 100
	defaultMaxBatch     = 256
	warnInterval        = 10 * time.Second
)

// Event is one decision as the proxy saw it. The caller fills it in and
// passes it to Logger.Log.
//
// An Event, and everything it points to (Input with its Subject, maps and
// slices, Result, RecordIDs), must not be modified after it is passed to
// Log: masking and serialisation happen later on another goroutine. Values
// that are never modified once built, such as a per-session Subject, may be
// shared between events.
type Event struct {
	// DecisionID identifies the decision; it is also returned to the client
	// in problem responses.
	DecisionID string
	// Timestamp is when the decision was made; zero means "when the event is
	// serialised".
	Timestamp time.Time
	// Path is the policy path queried, e.g. "crmgate".
	Path string
	// Input is the evaluated input; it is logged after MaskPaths are erased.
	Input *policy.Input
	// Result is the policy's answer (usually a policy.Decision), logged as
	// JSON.
	Result any
	// Revision is the policy revision that decided.
	Revision string
	// EvalNS is the policy evaluation time in nanoseconds.
	EvalNS int64

	RequestID string
	SubjectID string
	Roles     []string
	Module    string
	Action    string
	RecordID  string
	// RelatedModule is the module of the records a related list returned
	// (Module is the parent's), judged by that module's policy.
	RelatedModule string
	// Pushdown says how much of the record rule a list's upstream query
	// carried: exact, partial or none ("" for anything but a list), and
	// PushdownReason why it is not exact.
	Pushdown, PushdownReason string
	// Outcome is allow, deny, step_up or error.
	Outcome string
	// Status is the HTTP status crmgate answered with.
	Status          int
	RecordsReturned int
	RecordsFiltered int
	FieldsRedacted  int
	// Budgeted says the policy set a read budget for the request;
	// BudgetRemaining is what was left of it when the request ended,
	// BudgetSpent that this request found or left it spent, and
	// RecordsWithheld the records held back because it was.
	Budgeted        bool
	BudgetSpent     bool
	BudgetRemaining int64
	RecordsWithheld int
	// LatencyNS is the whole request's latency in nanoseconds.
	LatencyNS int64
	// RecordIDs are the ids of the records returned, so that an auditor can
	// answer "who read record 42"; at most Options.MaxRecordIDs are logged.
	RecordIDs []string
	// Reason is a short human-readable cause (policy reasons joined, or the
	// error class); it must not contain secrets or raw error strings from
	// upstream.
	Reason string
	// Error is the internal cause of an error outcome (a policy that
	// returned the wrong type, an upstream failure). It is for operators
	// only and never shown to the client.
	Error string
}

// Options tune a Logger. Zero values take the defaults noted per field.
type Options struct {
	// BufferSize bounds the queue between Log and the sink; beyond it events
	// are dropped and counted. Default DefaultBufferSize.
	BufferSize int
	// MaskPaths are input paths erased from logged input, written as JSON
	// pointers rooted at /input: /input/resource/body/password,
	// /input/subject/attributes/ssn, or /input to drop the input entirely.
	// Segments are matched exactly (case-sensitively); "~1" stands for "/"
	// and "~0" for "~"; a numeric segment indexes an array. A path that is
	// not of this form makes the Logger erase the whole input of every event
	// (fail closed); check paths at configuration time with
	// ValidateMaskPaths.
	MaskPaths []string
	// MaxRecordIDs bounds Event.RecordIDs per event; cut lists are flagged
	// with record_ids_truncated. Default DefaultMaxRecordIDs.
	MaxRecordIDs int
	// Labels are the OPA decision-log labels of this instance (id, version).
	Labels map[string]string
}

// Logger queues decision events and writes them to a Sink in the
// background. Create it with New and stop it with Close.
type Logger struct {
	sink     Sink
	m        *metrics.Metrics
	log      *zap.Logger
	maxBatch int
	linger   time.Duration
	builder  *entryBuilder

	// mu guards closed against queue sends, so Close can close the queue
	// without racing a Log: Log holds the read lock only for a non-blocking
	// send.
	mu     sync.RWMutex
	closed bool
	queue  chan *Event

	writeCtx    context.Context
	cancelWrite context.CancelFunc
	closeOnce   sync.Once
	done        chan struct{}
	sinkErr     error // set by the writer goroutine before done is closed

	dropWarn  rateLimit
	failWarn  rateLimit
	dropCount atomic.Uint64
}

// New starts a Logger writing to sink; the Logger owns sink and closes it in
// Close. m may be nil (nothing is counted). log receives warnings about
// dropped and failed events; it must not be the decision log itself.
func New(sink Sink, opts Options, m *metrics.Metrics, log *zap.Logger) *Logger {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("audit")
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.MaxRecordIDs <= 0 {
		opts.MaxRecordIDs = DefaultMaxRecordIDs
	}
	builder, err := newEntryBuilder(opts.MaskPaths, opts.MaxRecordIDs, maps.Clone(opts.Labels), log)
	if err != nil {
		log.Error("decision log input will be erased entirely: invalid mask path", zap.Error(err))
	}
	maxBatch, linger := defaultMaxBatch, time.Duration(0)
	if b, ok := sink.(Batcher); ok {
		maxBatch, linger = b.Batching()
		if maxBatch <= 0 {
			maxBatch = defaultMaxBatch
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Logger{
		sink:        sink,
		m:           m,
		log:         log,
		maxBatch:    maxBatch,
		linger:      linger,
		builder:     builder,
		queue:       make(chan *Event, opts.BufferSize),
		writeCtx:    ctx,
		cancelWrite: cancel,
		done:        make(chan struct{}),
	}
	go l.run()
	return l
}

// Log queues e for the decision log. It never blocks: when the queue is
// full, or the Logger is closed, e is dropped and counted. e must not be
// modified afterwards (see Event).
func (l *Logger) Log(e *Event) {
	if l == nil || e == nil {
		return // a nil Logger is decision_log.output: none
	}
	l.mu.RLock()
	if !l.closed {
		select {
		case l.queue <- e:
			l.mu.RUnlock()
			return
		default:
		}
	}
	l.mu.RUnlock()
	l.drop()
}

func (l *Logger) drop() {
	l.m.DecisionLogEvents(metrics.LogDropped, 1)
	l.dropCount.Add(1)
	if l.dropWarn.allow(time.Now()) {
		l.log.Warn("decision log events dropped: queue full or logger closed",
			zap.Uint64("dropped", l.dropCount.Swap(0)))
	}
}

// Close stops accepting events, writes everything already queued, and
// closes the sink. If ctx ends first, Close cancels the context of sink
// writes and returns ctx's error without waiting further; a sink that
// honours its context (the HTTP sink) then gives up, and the events it did
// not store are counted as failed. Close may be called more than once; later
// calls wait in the same way.
func (l *Logger) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.queue)
		l.mu.Unlock()
	})
	select {
	case <-l.done:
		if l.sinkErr != nil {
			return fmt.Errorf("close decision log: %w", l.sinkErr)
		}
		return nil
	case <-ctx.Done():
		l.cancelWrite()
		return fmt.Errorf("close decision log: %w", ctx.Err())
	}
}

// writerPace is the writer's pause between batches (bounded extra delay
// before an event is written; the queue absorbs ~writerPace × request rate).
const writerPace = time.Millisecond

// run is the single writer goroutine: it turns events into entries and
// hands them to the sink in batches until the queue is closed and empty.
func (l *Logger) run() {
	defer close(l.done)
	defer l.cancelWrite()
	batch := make([]*Entry, 0, l.maxBatch)
	for e := range l.queue {
		batch = append(batch[:0], l.builder.build(e))
		batch = l.fill(batch)
		l.flush(batch)
		clear(batch) // let the entries be collected while waiting
		// Let events queue up before looking again: a writer that wakes
		// for every event costs the request path a goroutine hand-off per
		// request on a small machine; one that looks at most every
		// writerPace takes whole batches.
		time.Sleep(writerPace)
	}
	l.sinkErr = l.sink.Close()
}

// fill adds queued events to batch without waiting, or, for sinks that ask
// for it, waits up to the linger time for more.
func (l *Logger) fill(batch []*Entry) []*Entry {
	var expired <-chan time.Time
	if l.linger > 0 {
		t := time.NewTimer(l.linger)
		defer t.Stop()
		expired = t.C
	}
	for len(batch) < l.maxBatch {
		select {
		case e, ok := <-l.queue:
			if !ok {
				return batch
			}
			batch = append(batch, l.builder.build(e))
			continue
		default:
		}
		if expired == nil {
			return batch
		}
		select {
		case e, ok := <-l.queue:
			if !ok {
				return batch
			}
			batch = append(batch, l.builder.build(e))
		case <-expired:
			return batch
		}
	}
	return batch
}

func (l *Logger) flush(batch []*Entry) {
	n, err := l.sink.Write(l.writeCtx, batch)
	n = min(max(n, 0), len(batch))
	if err == nil {
		n = len(batch)
	}
	l.m.DecisionLogEvents(metrics.LogWritten, n)
	if failed := len(batch) - n; failed > 0 {
		l.m.DecisionLogEvents(metrics.LogFailed, failed)
		if l.failWarn.allow(time.Now()) {
			l.log.Warn("decision log events failed", zap.Int("failed", failed), zap.Error(err))
		}
	}
}

// rateLimit lets one warning through per warnInterval, so a stuck sink or a
// flood cannot turn the operational log into a second firehose.
type rateLimit struct {
	last atomic.Int64
}

func (r *rateLimit) allow(now time.Time) bool {
	n := now.UnixNano()
	last := r.last.Load()
	if last != 0 && n-last < int64(warnInterval) {
		return false
	}
	return r.last.CompareAndSwap(last, n)
}
