package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/metrics"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden\n got: %s\nwant: %s", name, got, want)
	}
}

// testMetrics returns crmgate metrics on a private registry and a function
// reading crmgate_decision_log_events_total{result}.
func testMetrics(t *testing.T) (*metrics.Metrics, func(result string) float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil, nil)
	return m, func(result string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "crmgate_decision_log_events_total" {
				continue
			}
			for _, mm := range mf.GetMetric() {
				for _, lp := range mm.GetLabel() {
					if lp.GetName() == "result" && lp.GetValue() == result {
						return mm.GetCounter().GetValue()
					}
				}
			}
		}
		t.Fatalf("no crmgate_decision_log_events_total{result=%q}", result)
		return 0
	}
}

// syncBuffer is a WriteSyncer the test can read while the writer goroutine
// writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Sync() error { return nil }

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func sampleEvent() *Event {
	ts := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	return &Event{
		DecisionID: "0b6f6c2e-4d0e-4b7a-9a55-5f1e0d7d1c42",
		Timestamp:  ts,
		Path:       "crmgate",
		Input: &policy.Input{
			Subject: &policy.Subject{
				ID: "alice", Email: "alice@shop.example", Roles: []string{"sales"},
				Groups: []string{"sales"}, Teams: []string{"store-12"},
				Attributes: map[string]any{"crm_user_id": "u-17", "ssn": "078-05-1120"},
				MFA:        true, AMR: []string{"pwd", "otp"}, Auth: "session",
			},
			Request: policy.Request{
				ID: "req-1", Method: "PATCH", Path: "/Api/V8/module/Accounts/42",
				RemoteIP: "203.0.113.7", Time: ts,
			},
			Resource: policy.Resource{
				Module: "Accounts", ID: "42", Action: "update",
				Fields: []string{"name", "password"},
				Body:   map[string]any{"name": "Acme", "password": "hunter2"},
			},
		},
		Result:          policy.Decision{Allow: true, Reasons: []string{"owner"}, Revision: "rev-7"},
		Revision:        "rev-7",
		EvalNS:          34000,
		RequestID:       "req-1",
		SubjectID:       "alice",
		Roles:           []string{"sales"},
		Module:          "Accounts",
		Action:          "update",
		RecordID:        "42",
		Outcome:         "allow",
		Status:          200,
		RecordsReturned: 1,
		FieldsRedacted:  2,
		LatencyNS:       1500000,
		RecordIDs:       []string{"42"},
		Reason:          "owner",
	}
}

func sampleOptions() Options {
	return Options{
		BufferSize:   16,
		MaskPaths:    []string{"/input/resource/body/password", "/input/subject/attributes/ssn", "/input/record/phone"},
		MaxRecordIDs: 10,
		Labels:       map[string]string{"id": "crmgate-1", "version": "0.1.0"},
	}
}

// TestLogOneLineGolden: one Log gives exactly one JSON line carrying every
// OPA and crmgate field, with the configured secrets erased.
func TestLogOneLineGolden(t *testing.T) {
	var buf syncBuffer
	m, count := testMetrics(t)
	l := New(NewZapSink(&buf), sampleOptions(), m, zaptestLogger(t))
	l.Log(sampleEvent())
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	out := buf.Bytes()
	if n := bytes.Count(out, []byte("\n")); n != 1 {
		t.Fatalf("got %d lines, want 1:\n%s", n, out)
	}
	golden(t, "event.golden", out)

	var line map[string]any
	if err := json.Unmarshal(out, &line); err != nil {
		t.Fatalf("line is not JSON: %v", err)
	}
	for _, k := range []string{
		"level", "timestamp", "msg", "decision_id", "labels", "bundles", "path", "input", "result",
		"erased", "metrics", "request_id", "subject", "module", "action", "record_id", "outcome",
		"status", "records_returned", "records_filtered", "fields_redacted", "latency_ns", "record_ids", "reason",
	} {
		if _, ok := line[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	if line["msg"] != "decision" || line["level"] != "info" || line["timestamp"] != "2026-11-23T12:00:00.123456789Z" {
		t.Errorf("zap envelope = %v/%v/%v", line["msg"], line["level"], line["timestamp"])
	}
	if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "078-05-1120") {
		t.Errorf("masked secret in the log line: %s", out)
	}
	if got := count(metrics.LogWritten); got != 1 {
		t.Errorf("written = %v, want 1", got)
	}
}

func zaptestLogger(t *testing.T) *zap.Logger {
	t.Helper()
	core, _ := observer.New(zapcore.DebugLevel)
	return zap.New(core)
}

// TestZapAndJSONFormsAgree: the stdout/file line and the HTTP upload carry
// the same fields and values, so no output can drift from the other.
func TestZapAndJSONFormsAgree(t *testing.T) {
	cases := map[string]*Event{
		"full":         sampleEvent(),
		"minimal deny": {DecisionID: "d2", Timestamp: time.Unix(1, 0), Outcome: "deny", Status: 401},
		"truncated ids": func() *Event {
			e := sampleEvent()
			e.RecordIDs = []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}
			return e
		}(),
		"roles without id": {DecisionID: "d3", Timestamp: time.Unix(1, 0), Roles: []string{"x"}, Outcome: "error"},
	}
	for name, ev := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := newEntryBuilder(sampleOptions().MaskPaths, 10, map[string]string{"id": "i"}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			en := b.build(ev)

			var buf syncBuffer
			if n, err := NewZapSink(&buf).Write(context.Background(), []*Entry{en}); err != nil || n != 1 {
				t.Fatalf("zap write = %d, %v", n, err)
			}
			var fromZap, fromJSON map[string]any
			if err := json.Unmarshal(buf.Bytes(), &fromZap); err != nil {
				t.Fatal(err)
			}
			delete(fromZap, "level")
			delete(fromZap, "msg")
			raw, err := json.Marshal(en)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &fromJSON); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromZap, fromJSON) {
				t.Errorf("forms differ\n zap: %v\njson: %v", fromZap, fromJSON)
			}
		})
	}
}

func TestMasking(t *testing.T) {
	withRecord := func() *Event {
		e := sampleEvent()
		e.Input.Record = map[string]any{
			"id": "42", "phone": "+1 555 0100",
			"a/b":    "slash",
			"t~x":    "tilde",
			"nested": map[string]any{"list": []any{"keep", "secret"}},
		}
		return e
	}
	cases := []struct {
		name       string
		paths      []string
		event      func() *Event
		erased     []string
		mustNot    []string // values that must not appear in the logged input
		mustRemain []string // values that must still appear
	}{
		{"body field and attribute", []string{"/input/resource/body/password", "/input/subject/attributes/ssn"}, sampleEvent,
			[]string{"/input/resource/body/password", "/input/subject/attributes/ssn"}, []string{"hunter2", "078-05-1120"}, []string{"Acme", "u-17"}},
		{"absent path is not listed", []string{"/input/resource/body/pin", "/input/record/phone"}, sampleEvent,
			nil, nil, []string{"hunter2"}},
		{"record field", []string{"/input/record/phone"}, withRecord,
			[]string{"/input/record/phone"}, []string{"+1 555 0100"}, []string{"hunter2"}},
		{"escaped slash and tilde", []string{"/input/record/a~1b", "/input/record/t~0x"}, withRecord,
			[]string{"/input/record/a~1b", "/input/record/t~0x"}, []string{"slash", "tilde"}, nil},
		{"array element", []string{"/input/record/nested/list/1"}, withRecord,
			[]string{"/input/record/nested/list/1"}, []string{"secret"}, []string{"keep"}},
		{"array index out of range or not canonical", []string{"/input/record/nested/list/2", "/input/record/nested/list/01", "/input/record/nested/list/-1"}, withRecord,
			nil, nil, []string{"secret"}},
		{"whole subtree", []string{"/input/resource/body"}, sampleEvent,
			[]string{"/input/resource/body"}, []string{"hunter2", "Acme"}, []string{"alice"}},
		{"whole input", []string{"/input"}, sampleEvent,
			[]string{"/input"}, []string{"hunter2", "alice@shop.example"}, nil},
		// A mask path that cannot be parsed must not leave the input
		// unmasked: the whole input goes.
		{"invalid path fails closed", []string{"/resource/body/password"}, sampleEvent,
			[]string{"/input"}, []string{"hunter2", "Acme"}, nil},
		{"bad escape fails closed", []string{"/input/resource/body/pass~2word"}, sampleEvent,
			[]string{"/input"}, []string{"hunter2"}, nil},
		{"path through a scalar", []string{"/input/resource/body/password/x"}, sampleEvent,
			nil, nil, []string{"hunter2"}},
		// Keys are exact: a differently cased key is a different CRM field.
		{"case differs", []string{"/input/resource/body/Password"}, sampleEvent,
			nil, nil, []string{"hunter2"}},
		{"unserialisable input fails closed", []string{"/input/resource/body/password"}, func() *Event {
			e := sampleEvent()
			e.Input.Resource.Body["amount"] = math.NaN()
			return e
		}, []string{"/input"}, []string{"hunter2", "Acme"}, nil},
		// encoding/json repairs invalid UTF-8, so two distinct Go keys
		// can serialise to one JSON name; the eraser must not pick one
		// copy and let the other through.
		{"keys colliding after UTF-8 repair fail closed", []string{"/input/resource/body/pass\uFFFDword"}, func() *Event {
			e := sampleEvent()
			e.Input.Resource.Body["pass\xffword"] = "collide-1"
			e.Input.Resource.Body["pass\uFFFDword"] = "collide-2"
			return e
		}, []string{"/input"}, []string{"collide-1", "collide-2", "hunter2"}, nil},
		{"overlapping paths", []string{"/input/resource/body", "/input/resource/body/password", "/input/resource/fields/1"}, sampleEvent,
			[]string{"/input/resource/body", "/input/resource/fields/1"}, []string{"hunter2", "Acme", `"password"`}, []string{`"fields":["name"]`}},
		{"erased listed in configuration order", []string{"/input/subject/attributes/ssn", "/input/resource/body/password"}, sampleEvent,
			[]string{"/input/subject/attributes/ssn", "/input/resource/body/password"}, []string{"hunter2", "078-05-1120"}, nil},
		{"unserialisable input without masks fails closed", nil, func() *Event {
			e := sampleEvent()
			e.Input.Subject.Attributes["f"] = func() {}
			return e
		}, []string{"/input"}, []string{"hunter2"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, _ := newEntryBuilder(tc.paths, 10, nil, zap.NewNop())
			en := b.build(tc.event())
			if !reflect.DeepEqual(en.Erased, tc.erased) {
				t.Errorf("erased = %q, want %q", en.Erased, tc.erased)
			}
			in := string(en.Input)
			for _, s := range tc.mustNot {
				if strings.Contains(in, s) {
					t.Errorf("input still contains %q: %s", s, in)
				}
			}
			for _, s := range tc.mustRemain {
				if !strings.Contains(in, s) {
					t.Errorf("input lost %q: %s", s, in)
				}
			}
			if len(en.Input) > 0 && !json.Valid(en.Input) {
				t.Errorf("input is not valid JSON: %s", in)
			}
		})
	}
}

func TestValidateMaskPaths(t *testing.T) {
	cases := []struct {
		paths []string
		ok    bool
	}{
		{nil, true},
		{[]string{"/input"}, true},
		{[]string{"/input/resource/body/password", "/input/a~0b~1c"}, true},
		{[]string{"/input/"}, true}, // the empty key is a valid pointer segment
		{[]string{"input/resource"}, false},
		{[]string{"/inputs/x"}, false},
		{[]string{"/result/x"}, false},
		{[]string{""}, false},
		{[]string{"/input/x~"}, false},
		{[]string{"/input/ok", "/bad", "/input/x~9"}, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.paths), func(t *testing.T) {
			err := ValidateMaskPaths(tc.paths)
			if (err == nil) != tc.ok {
				t.Errorf("ValidateMaskPaths(%q) = %v, want ok=%v", tc.paths, err, tc.ok)
			}
		})
	}
	err := ValidateMaskPaths([]string{"/input/ok", "/bad", "/input/x~9"})
	if err == nil || !strings.Contains(err.Error(), `"/bad"`) || !strings.Contains(err.Error(), `"/input/x~9"`) {
		t.Errorf("want every bad path reported, got %v", err)
	}
}

func TestRecordIDsBounded(t *testing.T) {
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint(i)
		}
		return out
	}
	cases := []struct {
		name      string
		max, n    int
		wantLen   int
		truncated bool
	}{
		{"under", 5, 3, 3, false},
		{"exact", 5, 5, 5, false},
		{"over", 5, 6, 5, true},
		{"default bound", 0, DefaultMaxRecordIDs + 1, DefaultMaxRecordIDs, true},
		{"none", 5, 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &recordSink{}
			l := New(s, Options{MaxRecordIDs: tc.max}, nil, nil)
			l.Log(&Event{DecisionID: "d", RecordIDs: ids(tc.n), Outcome: "allow"})
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := s.all()
			if len(got) != 1 {
				t.Fatalf("entries = %d", len(got))
			}
			if len(got[0].RecordIDs) != tc.wantLen || got[0].RecordIDsTruncated != tc.truncated {
				t.Errorf("record_ids = %d (truncated %v), want %d (%v)", len(got[0].RecordIDs), got[0].RecordIDsTruncated, tc.wantLen, tc.truncated)
			}
		})
	}
}

// recordSink keeps what it is given; with block set, Write signals entered
// and then waits for release.
type recordSink struct {
	mu       sync.Mutex
	entries  []*Entry
	writes   int
	block    chan struct{}
	entered  chan struct{}
	maxBatch int
	linger   time.Duration
	fail     error
	closed   bool
}

func (s *recordSink) Write(ctx context.Context, batch []*Entry) (int, error) {
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
	}
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.fail != nil {
		return 0, s.fail
	}
	s.entries = append(s.entries, batch...)
	return len(batch), nil
}

func (s *recordSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *recordSink) all() []*Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slicesClone(s.entries)
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

// batchingSink is a recordSink that asks the Logger to linger.
type batchingSink struct{ *recordSink }

func (s batchingSink) Batching() (int, time.Duration) { return s.maxBatch, s.linger }

// TestFullBufferDropsWithoutBlocking blocks the sink, fills the queue, and
// proves that further Logs return at once and are counted as dropped.
func TestFullBufferDropsWithoutBlocking(t *testing.T) {
	const bufSize, extra = 8, 50
	sink := &recordSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	m, count := testMetrics(t)
	core, logs := observer.New(zapcore.WarnLevel)
	l := New(sink, Options{BufferSize: bufSize}, m, zap.New(core))

	l.Log(&Event{DecisionID: "first"})
	select {
	case <-sink.entered: // the writer holds "first" and is stuck in Write
	case <-time.After(5 * time.Second):
		t.Fatal("writer never reached the sink")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range bufSize + extra {
			l.Log(&Event{DecisionID: fmt.Sprint(i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Log blocked on a full queue")
	}
	if got := count(metrics.LogDropped); got != extra {
		t.Errorf("dropped = %v, want %d", got, extra)
	}
	if n := logs.FilterMessageSnippet("dropped").Len(); n != 1 {
		t.Errorf("drop warnings = %d, want 1 (rate-limited)", n)
	}

	close(sink.block)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(sink.all()); got != 1+bufSize {
		t.Errorf("written entries = %d, want %d (first + the queue)", got, 1+bufSize)
	}
	if got := count(metrics.LogWritten); got != 1+bufSize {
		t.Errorf("written metric = %v, want %d", got, 1+bufSize)
	}
}

// TestCloseFlushes: events queued before Close are written even when the
// sink asked to linger for a long time, and events after Close are dropped,
// not lost silently.
func TestCloseFlushes(t *testing.T) {
	const n = 300
	rs := &recordSink{maxBatch: 64, linger: time.Hour}
	m, count := testMetrics(t)
	l := New(batchingSink{rs}, Options{BufferSize: n}, m, nil)
	for i := range n {
		l.Log(&Event{DecisionID: fmt.Sprint(i), Outcome: "allow"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	got := rs.all()
	if len(got) != n {
		t.Fatalf("flushed %d entries, want %d", len(got), n)
	}
	for i, e := range got {
		if e.DecisionID != fmt.Sprint(i) {
			t.Fatalf("entry %d is %q: order lost", i, e.DecisionID)
		}
	}
	if rs.writes > (n+63)/64+1 {
		t.Errorf("%d writes for %d events with batches of 64", rs.writes, n)
	}
	if !rs.closed {
		t.Error("sink not closed")
	}
	if c := count(metrics.LogWritten); c != n {
		t.Errorf("written metric = %v, want %d", c, n)
	}

	l.Log(&Event{DecisionID: "late"})
	if c := count(metrics.LogDropped); c != 1 {
		t.Errorf("Log after Close: dropped = %v, want 1", c)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLingerWritesWithoutClose: a lingering sink still gets its batch when
// the linger time passes.
func TestLingerWritesWithoutClose(t *testing.T) {
	rs := &recordSink{maxBatch: 100, linger: 20 * time.Millisecond}
	l := New(batchingSink{rs}, Options{}, nil, nil)
	defer l.Close(context.Background())
	l.Log(&Event{DecisionID: "a"})
	l.Log(&Event{DecisionID: "b"})
	deadline := time.Now().Add(5 * time.Second)
	for len(rs.all()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("lingering batch never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCloseDeadline: a sink that never finishes cannot hold Close past its
// context; the stuck write is cancelled and counted as failed.
func TestCloseDeadline(t *testing.T) {
	sink := &recordSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	m, count := testMetrics(t)
	l := New(sink, Options{}, m, nil)
	l.Log(&Event{DecisionID: "stuck"})
	<-sink.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := l.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	<-l.done
	if got := count(metrics.LogFailed); got != 1 {
		t.Errorf("failed = %v, want 1", got)
	}
}

func TestSinkFailureCounted(t *testing.T) {
	sink := &recordSink{fail: errors.New("disk full")}
	m, count := testMetrics(t)
	core, logs := observer.New(zapcore.WarnLevel)
	l := New(sink, Options{}, m, zap.New(core))
	for range 5 {
		l.Log(&Event{DecisionID: "x"})
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := count(metrics.LogFailed); got != 5 {
		t.Errorf("failed = %v, want 5", got)
	}
	if got := count(metrics.LogWritten); got != 0 {
		t.Errorf("written = %v, want 0", got)
	}
	if logs.FilterMessageSnippet("failed").Len() < 1 {
		t.Error("no warning about failed events")
	}
}

func TestConcurrentLogAndClose(t *testing.T) {
	rs := &recordSink{}
	m, count := testMetrics(t)
	l := New(rs, Options{BufferSize: 64}, m, nil)
	var wg sync.WaitGroup
	const workers, each = 8, 500
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				l.Log(&Event{DecisionID: fmt.Sprint(w, "-", i)})
			}
		})
	}
	time.Sleep(time.Millisecond)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// Every event is accounted for exactly once, whether it raced Close or
	// not.
	total := count(metrics.LogWritten) + count(metrics.LogDropped) + count(metrics.LogFailed)
	if total != workers*each {
		t.Errorf("accounted %v events, want %d", total, workers*each)
	}
	if float64(len(rs.all())) != count(metrics.LogWritten) {
		t.Errorf("sink has %d entries, written metric %v", len(rs.all()), count(metrics.LogWritten))
	}
}

// parkedLogger returns a Logger whose writer is parked in a blocked sink
// and whose queue is large enough for the benchmark: what remains is the
// caller's own cost, without the writer competing for the CPU.
func parkedLogger(b *testing.B) (*Logger, func()) {
	b.Helper()
	sink := &recordSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	// Sized from b.N, so this uses the classic b.N loop rather than b.Loop,
	// which would grow the count past any fixed queue.
	l := New(sink, Options{BufferSize: b.N + 1}, nil, zap.NewNop())
	l.Log(&Event{DecisionID: "park"})
	<-sink.entered
	b.ResetTimer()
	return l, func() {
		b.StopTimer()
		if n := l.dropCount.Load(); n > 0 {
			b.Errorf("%d events dropped: the measurement includes the drop path", n)
		}
		// Discard the queue here: building millions of entries on Close
		// would take minutes and measure nothing.
		for len(l.queue) > 0 {
			<-l.queue
		}
		close(sink.block)
		_ = l.Close(context.Background())
	}
}

// BenchmarkLog measures the caller's cost of Log when the event is queued.
func BenchmarkLog(b *testing.B) {
	e := sampleEvent()
	b.ReportAllocs()
	l, done := parkedLogger(b)
	defer done()
	for range b.N {
		l.Log(e)
	}
}

// BenchmarkLogParallel is BenchmarkLog from many request goroutines at once.
func BenchmarkLogParallel(b *testing.B) {
	e := sampleEvent()
	b.ReportAllocs()
	l, done := parkedLogger(b)
	defer done()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Log(e)
		}
	})
}

// BenchmarkLogDropped measures the caller's cost when the queue is full.
func BenchmarkLogDropped(b *testing.B) {
	sink := &recordSink{block: make(chan struct{})}
	m := metrics.New(prometheus.NewRegistry(), nil, nil)
	l := New(sink, Options{BufferSize: 1}, m, zap.NewNop())
	e := sampleEvent()
	for range 3 {
		l.Log(e)
	}
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
	b.StopTimer()
	close(sink.block)
	_ = l.Close(context.Background())
}

// BenchmarkBuildEntry is the writer goroutine's cost per event (masking and
// serialisation), off the request path.
func BenchmarkBuildEntry(b *testing.B) {
	bld, err := newEntryBuilder(sampleOptions().MaskPaths, 100, nil, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	e := sampleEvent()
	b.ReportAllocs()
	for b.Loop() {
		bld.build(e)
	}
}
