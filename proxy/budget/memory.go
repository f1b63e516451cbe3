package budget

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Memory is a Store for a single node: replicas do not see each other's
// counts, so it must not be used behind a load balancer with several.
type Memory struct {
	mu    sync.Mutex
	now   func() time.Time
	w     map[string]*window
	calls int
}

type window struct {
	used int64
	end  time.Time
	id   string
}

// NewMemory returns an empty memory store; now defaults to time.Now.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, w: make(map[string]*window)}
}

// sweepEvery is how many reservations pass between removals of ended
// windows, which bounds the map by the subjects active in one window.
const sweepEvery = 4096

// Reserve implements Store.
func (m *Memory) Reserve(_ context.Context, subject string, limit int64, per time.Duration, want int64) (Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.calls++
	if m.calls%sweepEvery == 0 {
		for k, w := range m.w {
			if !now.Before(w.end) {
				delete(m.w, k)
			}
		}
	}
	w := m.w[subject]
	if w == nil || !now.Before(w.end) {
		w = &window{end: now.Add(per), id: strconv.FormatInt(now.UnixNano(), 10)}
		m.w[subject] = w
	}
	g := min(want, limit-w.used)
	g = max(g, 0)
	w.used += g
	return Grant{Granted: g, Used: w.used, Reset: w.end.Sub(now), Window: w.id}, nil
}

// Refund implements Store.
func (m *Memory) Refund(_ context.Context, subject, id string, n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.w[subject]
	if w == nil || w.id != id || n <= 0 || !m.now().Before(w.end) {
		return nil
	}
	w.used = max(w.used-n, 0)
	return nil
}
