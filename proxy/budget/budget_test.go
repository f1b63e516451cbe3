package budget_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/proxy/budget"
	"github.com/crmgate/crmgate/test/testredis"
)

func stores(t testing.TB) map[string]budget.Store {
	c := testredis.Client(t)
	return map[string]budget.Store{
		"memory": budget.NewMemory(nil),
		"redis":  budget.NewRedis(c, testredis.Prefix(t, c)),
	}
}

// TestStoresNeverGrantPastTheLimit: 16 meters racing on one subject (as
// replicas would) send exactly the limit, however the reservations
// interleave, and refunds of unsent records are not lost.
func TestStoresNeverGrantPastTheLimit(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			const limit = 997
			var sent atomic.Int64
			var wg sync.WaitGroup
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						m := budget.NewMeter(context.Background(), s, "racer", limit, time.Hour, 7, false)
						ok, err := m.Begin(7)
						if err != nil {
							t.Error(err)
							return
						}
						if !ok {
							return
						}
						for i := 0; i < 5; i++ { // a page of 5 under a reservation of 7
							if m.Take() {
								sent.Add(1)
							}
						}
						if err := m.Close(context.Background()); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			// Racers may stop while others hold reservations; drain.
			for {
				m := budget.NewMeter(context.Background(), s, "racer", limit, time.Hour, 7, false)
				if ok, _ := m.Begin(1); !ok {
					break
				}
				for m.Take() {
					sent.Add(1)
				}
				_ = m.Close(context.Background())
			}
			if got := sent.Load(); got != limit {
				t.Fatalf("sent %d records under a limit of %d", got, limit)
			}
		})
	}
}

// TestWindowResets: a spent window frees after per, with Reset counting
// down to it; a refund for an ended window does not credit the next one.
func TestWindowResets(t *testing.T) {
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			g, err := s.Reserve(ctx, "w", 3, 1500*time.Millisecond, 3)
			if err != nil || g.Granted != 3 {
				t.Fatalf("first reserve: %+v %v", g, err)
			}
			g2, _ := s.Reserve(ctx, "w", 3, 1500*time.Millisecond, 1)
			if g2.Granted != 0 || g2.Reset <= 0 || g2.Reset > 1500*time.Millisecond {
				t.Fatalf("spent window: %+v", g2)
			}
			time.Sleep(1600 * time.Millisecond)
			g3, _ := s.Reserve(ctx, "w", 3, 1500*time.Millisecond, 1)
			if g3.Granted != 1 || g3.Window == g.Window {
				t.Fatalf("after the window: %+v (old %q)", g3, g.Window)
			}
			if err := s.Refund(ctx, "w", g.Window, 3); err != nil {
				t.Fatal(err)
			}
			g4, _ := s.Reserve(ctx, "w", 3, 1500*time.Millisecond, 3)
			if g4.Granted != 2 {
				t.Fatalf("a refund to the old window credited the new one: %+v", g4)
			}
		})
	}
}

// BenchmarkMeter is the accounting cost of one list request of 20 records
// under a budget: reserve, admit 20, refund the rest of the chunk.
func BenchmarkMeter(b *testing.B) {
	for name, s := range stores(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				m := budget.NewMeter(ctx, s, "bench", 1<<40, time.Hour, 50, false)
				if ok, err := m.Begin(50); !ok || err != nil {
					b.Fatal(ok, err)
				}
				for j := 0; j < 20; j++ {
					m.Take()
				}
				if err := m.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
