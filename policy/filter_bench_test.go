package policy

import (
	"context"
	"fmt"
	"testing"
)

// benchRecords are 1,000 CRM-shaped records: owners across the store's
// users, some unknown, some without an owner.
func benchRecords() []map[string]any {
	owners := []any{"u-sales1", "u-sales2", "u-sales3", "u-mgr", "u-mgr7", "u-unknown", "", nil}
	recs := make([]map[string]any, 1000)
	for i := range recs {
		recs[i] = map[string]any{
			"id": fmt.Sprintf("r-%d", i), "name": "Shop", "assigned_user_id": owners[i%len(owners)],
			"account_id": "acc-1", "phone_work": "+44 20 7946 0000",
		}
	}
	return recs
}

// BenchmarkRecordFilterCompile is the per-request cost of a filter that is
// not cached: partial evaluation and translation.
func BenchmarkRecordFilterCompile(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	in := salesInput()
	in.Resource.Module = "Accounts"
	c := e.state.Load()
	input, err := inputValue(in, false)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		cf, err := c.filters.compile(ctx, c, in, input)
		if err != nil || cf.prog == nil {
			b.Fatalf("compile = %+v, %v", cf, err)
		}
	}
}

// BenchmarkRecordFilterCached is RecordFilter as a repeated request makes
// it: a cache hit.
func BenchmarkRecordFilterCached(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	in := salesInput()
	in.Resource.Module = "Accounts"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.RecordFilter(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordFilterCheck1000 applies a compiled filter to a list of
// 1,000 records.
func BenchmarkRecordFilterCheck1000(b *testing.B) {
	e := benchEngine(b)
	in := salesInput()
	in.Resource.Module = "Accounts"
	f, err := e.RecordFilter(context.Background(), in)
	if err != nil || !f.Exact() {
		b.Fatalf("filter: exact %v, %v", f != nil && f.Exact(), err)
	}
	recs := benchRecords()
	b.ReportAllocs()
	for b.Loop() {
		allowed := 0
		for _, r := range recs {
			d, err := f.Check(r)
			if err != nil {
				b.Fatal(err)
			}
			if d.Allow {
				allowed++
			}
		}
		if allowed == 0 || allowed == len(recs) {
			b.Fatalf("%d of %d allowed", allowed, len(recs))
		}
	}
}

// BenchmarkRecordPerRecord1000 is the same list with one engine evaluation
// per record, for the ratio.
func BenchmarkRecordPerRecord1000(b *testing.B) {
	e := benchEngine(b)
	ctx := context.Background()
	in := salesInput()
	in.Resource.Module = "Accounts"
	recs := benchRecords()
	b.ReportAllocs()
	for b.Loop() {
		allowed := 0
		for _, r := range recs {
			in.Record = r
			d, err := e.Record(ctx, in)
			if err != nil {
				b.Fatal(err)
			}
			if d.Allow {
				allowed++
			}
		}
		if allowed == 0 || allowed == len(recs) {
			b.Fatalf("%d of %d allowed", allowed, len(recs))
		}
	}
}
