package app

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// countingStore records every SeenUser call; fail makes them all fail.
type countingStore struct {
	mu    sync.Mutex
	calls []seenAt
	fail  error
}

func (c *countingStore) SeenUser(_ context.Context, userID string, at time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, seenAt{user: userID, at: at})
	return c.fail
}

func (c *countingStore) written() []seenAt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]seenAt(nil), c.calls...)
}

// queued empties the recorder's queue without a writer running.
func queued(r *seenRecorder) []seenAt {
	var out []seenAt
	for len(r.queue) > 0 {
		out = append(out, <-r.queue)
	}
	return out
}

func TestSeenRecorderThrottle(t *testing.T) {
	now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	r, err := newSeenRecorder(&countingStore{}, time.Minute, 2, 16, func() time.Time { return now }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	r.Seen("alice")
	r.Seen("alice")
	r.Seen("")
	if got := queued(r); len(got) != 1 || got[0] != (seenAt{"alice", now}) {
		t.Fatalf("two calls and an empty id queued %v, want alice once", got)
	}
	now = now.Add(59 * time.Second)
	r.Seen("alice")
	if got := queued(r); len(got) != 0 {
		t.Fatalf("within the interval queued %v", got)
	}
	now = now.Add(time.Second)
	r.Seen("alice")
	if got := queued(r); len(got) != 1 || got[0] != (seenAt{"alice", now}) {
		t.Fatalf("after the interval queued %v, want alice at %v", got, now)
	}

	// The throttle holds two users: a third pushes the least recent out,
	// who is then written again early (more writes, never fewer).
	r.Seen("bob")
	r.Seen("carol")
	if n := r.recent.Len(); n != 2 {
		t.Errorf("throttle holds %d users, want at most 2", n)
	}
	r.Seen("alice")
	if got := queued(r); len(got) != 3 || got[2].user != "alice" {
		t.Errorf("queued %v, want bob, carol and alice again", got)
	}
}

func TestSeenRecorderFullQueue(t *testing.T) {
	now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	r, err := newSeenRecorder(&countingStore{}, time.Minute, 10, 1, func() time.Time { return now }, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	r.Seen("alice")
	done := make(chan struct{})
	go func() {
		r.Seen("bob") // the queue is full and nobody drains it
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Seen blocked on a full queue")
	}
	if n := r.dropped.Load(); n != 1 {
		t.Errorf("dropped = %d, want 1", n)
	}
	queued(r)
	// bob was not recorded, so his next request must try again at once.
	r.Seen("bob")
	if got := queued(r); len(got) != 1 || got[0].user != "bob" {
		t.Errorf("after a drop queued %v, want bob", got)
	}
}

// TestSeenRecorderRun: the writer writes what is queued, drains the queue
// when stopped, and logs failed writes and drops as warnings.
func TestSeenRecorderRun(t *testing.T) {
	now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	store := &countingStore{}
	core, logs := observer.New(zapcore.WarnLevel)
	r, err := newSeenRecorder(store, time.Minute, 10, 4, func() time.Time { return now }, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		r.run(ctx)
		close(finished)
	}()
	r.Seen("alice")
	deadline := time.Now().Add(5 * time.Second)
	for len(store.written()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("alice was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Stop the writer with writes still queued: they are written before
	// run returns, so App.Close loses none of them.
	store.mu.Lock() // holds the writer inside its next write
	store.fail = errors.New("store down")
	for _, u := range []string{"bob", "carol", "dave", "erin", "frank"} {
		r.Seen(u)
	}
	stop()
	store.mu.Unlock()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after stop")
	}
	got := store.written()
	users := map[string]bool{}
	for _, w := range got {
		users[w.user] = true
		if !w.at.Equal(now) {
			t.Errorf("%s written at %v, want %v", w.user, w.at, now)
		}
	}
	// The queue holds 4 and the writer may have taken one out before it
	// blocked: five or six were written, a sixth at most dropped.
	written, dropped := len(got), 0
	for _, e := range logs.FilterMessageSnippet("dropped").All() {
		dropped += int(e.ContextMap()["dropped"].(int64))
	}
	if written+dropped != 6 || !users["alice"] || !users["bob"] {
		t.Errorf("written %v (%d), dropped %d: want all six accounted for, alice and bob written", users, written, dropped)
	}
	if n := logs.FilterMessageSnippet("record last seen").Len(); n != written-1 {
		t.Errorf("%d failed writes logged, want %d", n, written-1)
	}
}
