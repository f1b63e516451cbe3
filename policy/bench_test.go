package policy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/crmgate/crmgate/rego"
)

func benchEngine(b *testing.B) *Engine {
	b.Helper()
	e, err := Load(context.Background(), Options{Source: Source{FS: rego.FS}})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkDecide is one module-level decision on the reference policy, as
// the proxy makes it for every request: a shared Subject, a fresh request.
// Besides ns/op (the mean) it reports the median and 99th percentile of
// Decision.Duration, since the target is a p50.
func BenchmarkDecide(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	subject := salesInput().Subject
	var durations []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		in := salesInput()
		in.Subject = subject
		d, err := e.Decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatalf("decide = %+v, %v", d, err)
		}
		durations = append(durations, d.Duration)
	}
	reportPercentiles(b, durations)
}

func reportPercentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkDecideParallel is BenchmarkDecide from every core at once.
func BenchmarkDecideParallel(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	subject := salesInput().Subject
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in := salesInput()
			in.Subject = subject
			if _, err := e.Decide(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRecord is the record rule for one record.
func BenchmarkRecord(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	in := salesInput()
	in.Record = map[string]any{"id": "r-1", "name": "Shop", "assigned_user_id": "u-sales2", "phone_work": "+44 20 7946 0000"}
	b.ReportAllocs()
	for b.Loop() {
		rd, err := e.Record(ctx, in)
		if err != nil || !rd.Allow {
			b.Fatalf("record = %+v, %v", rd, err)
		}
	}
}

// BenchmarkDecideTrivial is the engine's own overhead: a one-line policy.
func BenchmarkDecideTrivial(b *testing.B) {
	e, err := Load(context.Background(), Options{Source: mapFS(map[string]string{
		"crmgate.rego": "package crmgate\n\nallow if \"sales\" in input.subject.roles\n",
	})})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	subject := salesInput().Subject
	var durations []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		in := salesInput()
		in.Subject = subject
		d, err := e.Decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatalf("decide = %+v, %v", d, err)
		}
		durations = append(durations, d.Duration)
	}
	reportPercentiles(b, durations)
}

// BenchmarkDecideUncached is BenchmarkDecide with the decision cache off:
// the cost of a full evaluation, as for every first request of its kind.
func BenchmarkDecideUncached(b *testing.B) {
	e := benchEngine(b)
	c := *e.state.Load()
	c.cache = nil
	e.state.Store(&c)
	ctx := context.Background()
	subject := salesInput().Subject
	var durations []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		in := salesInput()
		in.Subject = subject
		d, err := e.Decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatalf("decide = %+v, %v", d, err)
		}
		durations = append(durations, d.Duration)
	}
	reportPercentiles(b, durations)
}
