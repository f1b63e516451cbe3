package audit

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFileSinkRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	sink, err := NewFileSink(path, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil {
		t.Fatalf("file not created at start-up: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600: decision logs carry personal data", fi.Mode().Perm())
	}
	l := New(sink, Options{BufferSize: 4096}, nil, nil)
	// ~2.5 MB of events against a 1 MB limit: at least two rotations.
	reason := strings.Repeat("r", 1024)
	const n = 2500
	for i := range n {
		e := sampleEvent()
		e.DecisionID = fmt.Sprint(i)
		e.Reason = reason
		l.Log(e)
		if i%1000 == 999 {
			// Let the writer catch up rather than dropping.
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("close: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "decisions-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no rotated file")
	}
	// Every line in every file is a whole JSON event.
	lines := 0
	for _, f := range append(files, path) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(f); fi.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over the 1 MB limit", f, fi.Size())
		}
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var v map[string]any
			if err := json.Unmarshal(line, &v); err != nil {
				t.Fatalf("%s: bad line: %v", f, err)
			}
			lines++
		}
	}
	if len(files) < 2 {
		t.Errorf("%d rotated files for ~2.5 MB at 1 MB each, want at least 2", len(files))
	}
	// Rotation must not lose or split events.
	if lines != n {
		t.Errorf("%d events across the files, want %d", lines, n)
	}
}

func TestFileSinkBadPath(t *testing.T) {
	cases := map[string]string{
		"empty":          "",
		"directory":      t.TempDir(),
		"missing parent": filepath.Join(t.TempDir(), "nope", "decisions.log"),
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := NewFileSink(path, 1, 1); err == nil {
				t.Errorf("NewFileSink(%q) succeeded", path)
			} else if !strings.HasPrefix(err.Error(), "open decision log file") {
				t.Errorf("error %q lacks the operation prefix", err)
			}
		})
	}
}

// opaCollector is an httptest decision-log endpoint decoding uploads the
// way an OPA-compatible collector does.
type opaCollector struct {
	mu       sync.Mutex
	events   []map[string]any
	attempts atomic.Int32
	failures int32 // answer 503 to this many attempts first
	status   int   // if set, always answer this
	headers  http.Header
	errs     []error
}

func (c *opaCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := c.attempts.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.headers = r.Header.Clone()
	if c.status != 0 {
		w.WriteHeader(c.status)
		return
	}
	if n <= c.failures {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost {
		c.errs = append(c.errs, fmt.Errorf("method %s", r.Method))
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("gzip: %w", err))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var batch []map[string]any
	if err := json.NewDecoder(zr).Decode(&batch); err != nil {
		c.errs = append(c.errs, fmt.Errorf("decode array: %w", err))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.events = append(c.events, batch...)
	w.WriteHeader(http.StatusNoContent)
}

func fastHTTPSink(url string, client *http.Client) *httpSink {
	s := NewHTTPSink(url, client, "s3cret").(*httpSink)
	s.backoff, s.maxBackoff = time.Millisecond, 5*time.Millisecond
	s.linger = 0
	return s
}

func TestHTTPSinkUploadsOPAShape(t *testing.T) {
	col := &opaCollector{failures: 2}
	srv := httptest.NewServer(col)
	defer srv.Close()
	m, count := testMetrics(t)
	l := New(fastHTTPSink(srv.URL, srv.Client()), sampleOptions(), m, nil)
	for i := range 3 {
		e := sampleEvent()
		e.DecisionID = fmt.Sprint("d", i)
		l.Log(e)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, err := range col.errs {
		t.Error(err)
	}
	if len(col.events) != 3 {
		t.Fatalf("collector got %d events, want 3", len(col.events))
	}
	if h := col.headers; h.Get("Content-Type") != "application/json" || h.Get("Content-Encoding") != "gzip" || h.Get("Authorization") != "Bearer s3cret" {
		t.Errorf("headers = %v", h)
	}
	ev := col.events[0]
	for _, k := range []string{"decision_id", "labels", "bundles", "path", "input", "result", "erased", "timestamp", "metrics"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("OPA field %q missing", k)
		}
	}
	if rev := ev["bundles"].(map[string]any)["crmgate"].(map[string]any)["revision"]; rev != "rev-7" {
		t.Errorf("bundles.crmgate.revision = %v", rev)
	}
	if ts, _ := ev["timestamp"].(string); ts != "2026-11-23T12:00:00.123456789Z" {
		t.Errorf("timestamp = %v", ev["timestamp"])
	}
	raw, _ := json.Marshal(ev)
	if bytes.Contains(raw, []byte("hunter2")) {
		t.Error("masked secret uploaded")
	}
	if got := count("written"); got != 3 {
		t.Errorf("written = %v, want 3 (after two 503s)", got)
	}
	if got := count("failed"); got != 0 {
		t.Errorf("failed = %v, want 0", got)
	}
}

func TestHTTPSinkFailures(t *testing.T) {
	cases := []struct {
		name         string
		status       int
		wantAttempts int32
	}{
		{"5xx retried to the bound", http.StatusInternalServerError, httpMaxAttempts},
		{"429 retried", http.StatusTooManyRequests, httpMaxAttempts},
		{"401 not retried", http.StatusUnauthorized, 1},
		{"413 not retried", http.StatusRequestEntityTooLarge, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			col := &opaCollector{status: tc.status}
			srv := httptest.NewServer(col)
			defer srv.Close()
			m, count := testMetrics(t)
			l := New(fastHTTPSink(srv.URL, srv.Client()), Options{}, m, nil)
			l.Log(sampleEvent())
			l.Log(sampleEvent())
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Both events may go in one batch or two.
			att := col.attempts.Load()
			if att != tc.wantAttempts && att != 2*tc.wantAttempts {
				t.Errorf("attempts = %d, want %d per batch", att, tc.wantAttempts)
			}
			if got := count("failed"); got != 2 {
				t.Errorf("failed = %v, want 2", got)
			}
			if got := count("written"); got != 0 {
				t.Errorf("written = %v, want 0", got)
			}
		})
	}
}

func TestHTTPSinkUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s := fastHTTPSink(url, nil)
	n, err := s.Write(context.Background(), []*Entry{{DecisionID: "x"}})
	if n != 0 || err == nil || !strings.HasPrefix(err.Error(), "upload decision logs") {
		t.Errorf("Write = %d, %v", n, err)
	}
}

// TestHTTPSinkCancelStopsBackoff: a cancelled context (Close running out of
// time) ends the retry loop instead of sleeping through the backoff.
func TestHTTPSinkCancelStopsBackoff(t *testing.T) {
	col := &opaCollector{status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(col)
	defer srv.Close()
	s := NewHTTPSink(srv.URL, srv.Client(), "").(*httpSink)
	s.backoff, s.maxBackoff = time.Hour, time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Write(ctx, []*Entry{{DecisionID: "x"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Write took %v", d)
	}
	if h := col.headers.Get("Authorization"); h != "" {
		t.Errorf("Authorization sent without a token: %q", h)
	}
}

// TestHTTPSinkBadURL: a malformed URL is a permanent error, not one to
// retry (with an hour of backoff, a retry would hang the test).
func TestHTTPSinkBadURL(t *testing.T) {
	s := NewHTTPSink("://nope", nil, "").(*httpSink)
	s.backoff, s.maxBackoff = time.Hour, time.Hour
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(context.Background(), []*Entry{{DecisionID: "x"}})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Write to a malformed URL succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("malformed URL was retried")
	}
}
