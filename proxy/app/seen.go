package app

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/crmgate/crmgate/proxy/login"
)

// Bearer-token activity is recorded in the session store's last-seen table,
// the one browser sessions write and the dormant-user report reads: an
// integration or portal backend that never signs in through a browser is
// as active as its requests, and an auditor must not be told otherwise.
const (
	// seenInterval is login's own throttle: the same write rate per user as
	// a browser session, and the report counts whole days, so a minute of
	// lag changes nothing in it.
	seenInterval = login.DefaultTouchInterval
	// seenUsers bounds the throttle's memory. A user pushed out of it is
	// written once more than needed, never less.
	seenUsers = 10000
	// seenQueue absorbs a burst of first requests while the store is slow;
	// beyond it writes are dropped rather than making requests wait.
	seenQueue = 1024
	// seenWriteTimeout bounds one write; seenDrainTimeout bounds the writes
	// still queued when the app closes, so a dead store cannot hold up
	// shutdown.
	seenWriteTimeout = 5 * time.Second
	seenDrainTimeout = 5 * time.Second
)

// seenWriter is the part of session.Store the recorder writes to.
type seenWriter interface {
	SeenUser(ctx context.Context, userID string, at time.Time) error
}

type seenAt struct {
	user string
	at   time.Time
}

// seenRecorder turns proxy.Options.Seen calls into last-seen writes: at
// most one per user per interval from this process, made by one goroutine
// (run) so the request only pays for a cache lookup and a channel send.
type seenRecorder struct {
	store    seenWriter
	interval time.Duration
	now      func() time.Time
	log      *zap.Logger
	// recent is when each user's activity was last queued.
	recent  *lru.Cache[string, time.Time]
	queue   chan seenAt
	dropped atomic.Int64
}

func newSeenRecorder(store seenWriter, interval time.Duration, users, queue int, now func() time.Time, log *zap.Logger) (*seenRecorder, error) {
	recent, err := lru.New[string, time.Time](users)
	if err != nil {
		return nil, fmt.Errorf("last-seen recorder: %w", err)
	}
	return &seenRecorder{store: store, interval: interval, now: now, log: log, recent: recent, queue: make(chan seenAt, queue)}, nil
}

// Seen implements proxy.Options.Seen; it never blocks.
func (s *seenRecorder) Seen(userID string) {
	if userID == "" {
		return
	}
	now := s.now()
	if last, ok := s.recent.Get(userID); ok && now.Sub(last) < s.interval {
		return
	}
	// Two requests racing here may both queue a write: harmless, the store
	// keeps the later time.
	s.recent.Add(userID, now)
	select {
	case s.queue <- seenAt{user: userID, at: now}:
	default:
		// Not recorded: forget the mark so the user's next request tries
		// again instead of waiting out the interval.
		s.recent.Remove(userID)
		s.dropped.Add(1)
	}
}

// run writes queued activity until ctx ends, then writes what was queued by
// then (within seenDrainTimeout) and returns.
func (s *seenRecorder) run(ctx context.Context) {
	for {
		select {
		case e := <-s.queue:
			wctx, cancel := context.WithTimeout(context.Background(), seenWriteTimeout)
			s.write(wctx, e)
			cancel()
		case <-ctx.Done():
			s.drain()
			return
		}
	}
}

func (s *seenRecorder) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), seenDrainTimeout)
	defer cancel()
	// Only what is queued now: requests still arriving during shutdown must
	// not keep the drain going.
	for n := len(s.queue); n > 0; n-- {
		if ctx.Err() != nil {
			s.dropped.Add(int64(n))
			break
		}
		s.write(ctx, <-s.queue)
	}
	s.reportDropped()
}

func (s *seenRecorder) write(ctx context.Context, e seenAt) {
	if err := s.store.SeenUser(ctx, e.user, e.at); err != nil {
		// Last-seen feeds the dormant-user report only; it never decides
		// access, so a failed write is logged, not fatal.
		s.log.Warn("record last seen of bearer token user", zap.String("user", e.user), zap.Error(err))
	}
	s.reportDropped()
}

// reportDropped logs drops from the writer goroutine, not the request path,
// and once per run of them rather than once per request.
func (s *seenRecorder) reportDropped() {
	if n := s.dropped.Swap(0); n > 0 {
		s.log.Warn("last-seen writes dropped: the session store is slower than new bearer token users arrive",
			zap.Int64("dropped", n))
	}
}
