package session

import (
	"context"
	"testing"
	"time"
)

func newMemoryHarness(t *testing.T) harness {
	clock := newFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	m := NewMemory(clock.Now)
	return harness{
		store:   m,
		advance: clock.Add,
		dropIndex: func(t *testing.T, userID, id string) {
			m.mu.Lock()
			defer m.mu.Unlock()
			delete(m.byUser[userID], HashID(id))
		},
		dump: func(t *testing.T) [][]byte {
			m.mu.Lock()
			defer m.mu.Unlock()
			var out [][]byte
			for h, e := range m.sessions {
				out = append(out, []byte(h), e.data, []byte(e.user))
			}
			for u, set := range m.byUser {
				out = append(out, []byte(u))
				for h := range set {
					out = append(out, []byte(h))
				}
			}
			return out
		},
	}
}

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	runConformance(t, newMemoryHarness)
}

// Sessions of users who never come back must not pile up forever: Create
// sweeps expired ones now and then.
func TestMemorySweepsExpired(t *testing.T) {
	t.Parallel()
	h := newMemoryHarness(t)
	m := h.store.(*Memory)
	ctx := context.Background()
	for range sweepEvery - 1 {
		mustCreate(t, h, newSession(t, "alice"), time.Minute)
	}
	h.advance(2 * time.Minute)
	mustCreate(t, h, newSession(t, "bob"), time.Minute) // the sweepEvery-th create
	m.mu.Lock()
	n, users := len(m.sessions), len(m.byUser)
	m.mu.Unlock()
	if n != 1 || users != 1 {
		t.Fatalf("after sweep: %d sessions, %d indexed users; want 1, 1", n, users)
	}
	if c, err := m.Count(ctx); err != nil || c != 1 {
		t.Fatalf("Count = %d, %v", c, err)
	}
}

// A session created at the very instant of a revocation (same clock
// reading) is refused: the tie goes to the revocation.
func TestMemoryRevocationTie(t *testing.T) {
	t.Parallel()
	h := newMemoryHarness(t)
	ctx := context.Background()
	if _, err := h.store.RevokeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	s := newSession(t, "alice")
	mustCreate(t, h, s, time.Minute)
	_, err := h.store.Get(ctx, s.ID)
	wantNotFound(t, err, "Get of session created at the revocation instant")
}
