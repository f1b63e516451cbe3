package report

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logGen writes decision-log lines shaped like proxy/audit's and keeps
// the answers the report must give.
type logGen struct {
	rng  *rand.Rand
	t0   time.Time
	n    int
	user string // the user whose reads are counted
	rec  string // the record whose readers are counted
	// since splits the log: reads before it are outside the query window.
	since time.Time

	userReads  int      // user's reads at or after since
	recReaders []string // decision ids of reads listing rec
	recMaybe   int      // truncated lists of Accounts without rec
}

var genUsers = []string{"alice", "bob", "carol", "dana", "ivan", "morgan", "pat", "sky", "sam"}

func (g *logGen) line(b []byte) []byte {
	g.n++
	at := g.t0.Add(time.Duration(g.n) * 50 * time.Millisecond)
	user := genUsers[g.rng.IntN(len(genUsers))]
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", g.n, g.rng.Uint64()&0xffffffffffff)
	if g.n%100_000 == 7 {
		// Not every line is a decision event: a startup message, and
		// now and then a damaged one.
		if g.n%200_000 == 7 {
			return append(b, "{\"level\":\"info\",\"msg\":\"policy loaded\",\"revision\":\"abc\"}\n"...)
		}
		return append(b, "\x00\x00garbage after a crash\n"...)
	}
	module, action := "Accounts", "read"
	outcome, status := "allow", 200
	var ids []string
	truncated := false
	switch k := g.rng.IntN(10); {
	case k < 5:
		ids = []string{fmt.Sprintf("acc-%d", g.rng.IntN(500))}
	case k < 8:
		action = "list"
		for range 1 + g.rng.IntN(20) {
			ids = append(ids, fmt.Sprintf("acc-%d", g.rng.IntN(500)))
		}
		truncated = g.rng.IntN(20) == 0
	case k < 9:
		module, action = "Contacts", "read"
		ids = []string{fmt.Sprintf("acc-%d", g.rng.IntN(500))} // same ids, other module
	default:
		outcome, status = "deny", 403
		ids = []string{fmt.Sprintf("acc-%d", g.rng.IntN(500))}
	}
	returned := len(ids)
	if truncated {
		returned += 50
	}
	if outcome == "deny" {
		returned = 0
	}
	counted := outcome == "allow"
	if counted && user == g.user && !at.Before(g.since) {
		g.userReads++
	}
	if counted && module == "Accounts" {
		switch {
		case slices.Contains(ids, g.rec):
			g.recReaders = append(g.recReaders, id)
		case truncated:
			g.recMaybe++
		}
	}
	recordID := ""
	if action == "read" {
		recordID = fmt.Sprintf(`"record_id":%q,`, ids[0])
	}
	idsJSON := ""
	if outcome == "allow" {
		idsJSON = `"record_ids":["` + strings.Join(ids, `","`) + `"],`
		if truncated {
			idsJSON += `"record_ids_truncated":true,`
		}
	}
	return fmt.Appendf(b, `{"level":"info","timestamp":%q,"msg":"decision","decision_id":%q,"labels":{"app":"crmgate","version":"1.0"},`+
		`"bundles":{"crmgate":{"revision":"a8f1b35b74177375"}},"path":"crmgate","input":{"request":{"id":%q,"method":"GET",`+
		`"path":"/Api/V8/module/%s","remote_ip":"203.0.113.9","time":%q},"resource":{"action":%q,"module":%q},`+
		`"subject":{"id":%q,"roles":["sales"],"teams":["store-12"]}},"result":{"allow":%v},"request_id":%q,`+
		`"subject":{"id":%q,"roles":["sales"]},"module":%q,"action":%q,%s"outcome":%q,"status":%d,"records_returned":%d,`+
		`"records_filtered":0,"fields_redacted":0,"latency_ns":3941708,%s"x":0}`+"\n",
		at.Format(time.RFC3339Nano), id, id, module, at.Format(time.RFC3339Nano), action, module, user, outcome == "allow", id,
		user, module, action, recordID, outcome, status, returned, idsJSON)
}

// writeLogs writes n lines as lumberjack leaves them: three gzip'd
// backups named by rotation time and the live file.
func (g *logGen) writeLogs(t testing.TB, dir string, n int) (live string, size int64) {
	t.Helper()
	parts := []struct {
		name  string
		lines int
		gz    bool
	}{
		{"crmgate-2026-12-01T00-00-00.000.log.gz", n / 5, true},
		{"crmgate-2026-12-02T00-00-00.000.log.gz", n / 5, true},
		{"crmgate-2026-12-03T00-00-00.000.log", n / 5, false},
		{"crmgate.log", n - 3*(n/5), false},
	}
	var buf []byte
	for _, p := range parts {
		f, err := os.Create(filepath.Join(dir, p.name))
		if err != nil {
			t.Fatal(err)
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		var w interface {
			Write([]byte) (int, error)
		} = bw
		var zw *gzip.Writer
		if p.gz {
			zw, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
			w = zw
		}
		for range p.lines {
			buf = g.line(buf[:0])
			size += int64(len(buf))
			if _, err := w.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "crmgate.log"), size
}

// peakHeap samples the heap in use until stop is called.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// TestReadsMillionLines: both auditors' questions answered right from a
// million-line log, part rotated and gzip'd, with the heap never holding
// more than a small fixed amount however big the log is.
func TestReadsMillionLines(t *testing.T) {
	n := 1_000_000
	dir := t.TempDir()
	g := &logGen{rng: rand.New(rand.NewPCG(1, 2)), t0: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), user: "sam", rec: "acc-42"}
	g.since = g.t0.Add(time.Duration(n/2) * 50 * time.Millisecond)
	live, size := g.writeLogs(t, dir, n)
	if size < 300<<20 {
		t.Fatalf("generated %d MB: too small to show the scan does not buffer", size>>20)
	}
	files, err := LogFiles([]string{live})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 || filepath.Base(files[0]) != "crmgate-2026-12-01T00-00-00.000.log.gz" || filepath.Base(files[3]) != "crmgate.log" {
		t.Fatalf("files %v, want the three backups oldest first, then the live file", files)
	}
	const bound = 16 << 20
	t.Run("what did sam read since", func(t *testing.T) {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := peakHeap()
		var got int
		st, err := ScanReads(context.Background(), files, ReadQuery{User: "sam", Since: g.since}, func(r Read) error {
			if r.Subject != "sam" || r.Time.Before(g.since) {
				t.Fatalf("read of %s at %s outside the query", r.Subject, r.Time)
			}
			got++
			return nil
		})
		peak := stop()
		if err != nil {
			t.Fatal(err)
		}
		if got != g.userReads || st.Matched != int64(got) {
			t.Errorf("%d reads (stats %d), want %d", got, st.Matched, g.userReads)
		}
		if st.Lines != int64(n) || st.Files != 4 || len(st.Damaged) != 0 {
			t.Errorf("stats %+v, want %d lines of 4 files, nothing damaged", st, n)
		}
		if peak > base.HeapInuse+bound {
			t.Errorf("heap in use peaked at %d MB over a %d MB log (base %d MB)", (peak-base.HeapInuse)>>20, size>>20, base.HeapInuse>>20)
		}
		t.Logf("%d lines, %d MB uncompressed: %d reads; heap peak %d KB over base", st.Lines, size>>20, got, (peak-base.HeapInuse)>>10)
	})
	t.Run("who read acc-42", func(t *testing.T) {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := peakHeap()
		var got []string
		var maybe int
		st, err := ScanReads(context.Background(), files, ReadQuery{Record: "acc-42", Module: "Accounts"}, func(r Read) error {
			if r.Maybe {
				maybe++
			} else {
				got = append(got, r.DecisionID)
			}
			return nil
		})
		peak := stop()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, g.recReaders) || maybe != g.recMaybe {
			t.Errorf("%d readers and %d maybe, want %d and %d", len(got), maybe, len(g.recReaders), g.recMaybe)
		}
		if st.Malformed == 0 {
			t.Error("the damaged lines were not counted")
		}
		if peak > base.HeapInuse+bound+uint64(len(got))*64 {
			t.Errorf("heap in use peaked at %d MB over base", (peak-base.HeapInuse)>>20)
		}
	})
}

// TestReadsDamagedAndOddLogs: a truncated gzip backup, an over-long line
// and lines without a newline are reported, not fatal, and what could be
// read is used.
func TestReadsDamagedAndOddLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := &logGen{rng: rand.New(rand.NewPCG(3, 4)), t0: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), user: "alice", rec: "acc-1"}
	var plain, zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	var buf []byte
	for range 2000 {
		buf = g.line(buf[:0])
		_, _ = zw.Write(buf)
	}
	_ = zw.Close()
	want := g.userReads
	cut := zipped.Bytes()[:zipped.Len()*2/3]
	if err := os.WriteFile(filepath.Join(dir, "crmgate-2026-12-01T00-00-00.000.log.gz"), cut, 0o600); err != nil {
		t.Fatal(err)
	}
	plain.WriteString(strings.Repeat("x", MaxLogLine+10) + "\n")
	before := g.userReads
	for range 50 {
		buf = g.line(buf[:0])
		plain.Write(buf)
	}
	plain.Truncate(plain.Len() - 1) // the live file's last line has no newline yet
	if err := os.WriteFile(filepath.Join(dir, "crmgate.log"), plain.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := LogFiles([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var got int
	st, err := ScanReads(context.Background(), files, ReadQuery{User: "alice"}, func(Read) error { got++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Damaged) != 1 || !strings.Contains(st.Damaged[0], ".gz") {
		t.Errorf("damaged %v, want the truncated backup", st.Damaged)
	}
	if st.TooLong != 1 {
		t.Errorf("too long %d, want 1", st.TooLong)
	}
	// All of the live file's reads, and some but not all of the backup's.
	live := g.userReads - before
	if got < live || got >= live+want {
		t.Errorf("%d reads, want the live file's %d plus part of the damaged backup's %d", got, live, want)
	}
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-12-06T08:30:00Z": time.Date(2026, 12, 6, 8, 30, 0, 0, time.UTC),
		"2026-12-06":           time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC),
		"36h":                  now.Add(-36 * time.Hour),
		"7d":                   now.Add(-7 * 24 * time.Hour),
	} {
		got, err := ParseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-3h", "7w", "", "2026-13-01"} {
		if _, err := ParseSince(in, now); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

// BenchmarkScanReads is the scan's throughput over plain lines, for the
// README: MB/s of log read answering "who read record R".
func BenchmarkScanReads(b *testing.B) {
	dir := b.TempDir()
	g := &logGen{rng: rand.New(rand.NewPCG(5, 6)), t0: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), user: "sam", rec: "acc-42"}
	_, size := g.writeLogs(b, dir, 200_000)
	files, err := LogFiles([]string{dir})
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []ReadQuery{{Record: "acc-42"}, {User: "sam"}} {
		b.Run(fmt.Sprintf("user=%s,record=%s", q.User, q.Record), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if _, err := ScanReads(context.Background(), files, q, func(Read) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(200_000*b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
