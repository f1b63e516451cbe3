package report

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ReadQuery selects the decision-log events "report reads" answers with:
// who read record R (Record), what did user U read (User), or both, in a
// time window.
type ReadQuery struct {
	User   string
	Record string
	// Module narrows Record to one module (record ids are unique per
	// module only in some CRMs).
	Module       string
	Since, Until time.Time // zero: unbounded
}

// Read is one decision that let records leave crmgate.
type Read struct {
	Time          time.Time `json:"time"`
	Subject       string    `json:"subject"`
	Roles         []string  `json:"roles,omitempty"`
	Module        string    `json:"module"`
	RelatedModule string    `json:"related_module,omitempty"`
	Action        string    `json:"action"`
	Records       int       `json:"records"`
	RecordIDs     []string  `json:"record_ids,omitempty"`
	// Truncated: the event listed only the first record ids of a longer
	// answer (decision_log.max_record_ids).
	Truncated bool `json:"record_ids_truncated,omitempty"`
	// Maybe: a Record query whose id is not among the listed ids of a
	// truncated list of the same module, so the list may have held it.
	Maybe      bool   `json:"maybe,omitempty"`
	DecisionID string `json:"decision_id"`
	// Source is file:line, so an auditor can show the event itself.
	Source string `json:"source"`
}

// ReadStats says what a scan read and what it could not.
type ReadStats struct {
	Files   int
	Lines   int64
	Matched int64
	Maybe   int64
	// Malformed lines are not JSON objects (lines the prefilter skips are
	// only checked for starting like one).
	Malformed int64
	TooLong   int64 // lines over MaxLogLine, skipped
	// Damaged names files that ended early (a truncated gzip member, a
	// read error); the lines read before the damage were used.
	Damaged []string
}

// MaxLogLine bounds one decision-log line a scan holds in memory. An event
// carries the request input, whose body is bounded by
// upstream.max_request_body; a line beyond this is skipped and counted.
const MaxLogLine = 4 << 20

// readEvent is the part of a decision-log event (proxy/audit's Entry) a
// scan needs; the rest of the line is not decoded.
type readEvent struct {
	Msg        string    `json:"msg"`
	DecisionID string    `json:"decision_id"`
	Timestamp  time.Time `json:"timestamp"`
	Subject    *struct {
		ID    string   `json:"id"`
		Roles []string `json:"roles"`
	} `json:"subject"`
	Module             string   `json:"module"`
	RelatedModule      string   `json:"related_module"`
	Action             string   `json:"action"`
	RecordID           string   `json:"record_id"`
	Outcome            string   `json:"outcome"`
	Status             int      `json:"status"`
	RecordsReturned    int      `json:"records_returned"`
	RecordIDs          []string `json:"record_ids"`
	RecordIDsTruncated bool     `json:"record_ids_truncated"`
}

// ScanReads streams the decision-log files (in the order given; see
// LogFiles) and calls emit for every event matching q in which records
// left crmgate: an allowed, successful answer with records_returned > 0.
// Memory stays bounded by one line (MaxLogLine) whatever the logs' size;
// gzip'd files are read transparently.
func ScanReads(ctx context.Context, files []string, q ReadQuery, emit func(Read) error) (ReadStats, error) {
	if q.User == "" && q.Record == "" {
		return ReadStats{}, errors.New("reads: a user or a record is required")
	}
	var st ReadStats
	s := &readScan{q: q, emit: emit, st: &st}
	// A line can only match if the user or record id is in it: a plain
	// substring search skips most lines without decoding them. Only for
	// ids JSON writes as they are (no escapes).
	if q.User != "" && plainJSON(q.User) {
		s.needle = []byte(`"id":"` + q.User + `"`)
	} else if q.Record != "" && plainJSON(q.Record) {
		s.needle = []byte(`"` + q.Record + `"`)
	}
	buf := bufio.NewReaderSize(nil, 64<<10)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		st.Files++
		if err := s.file(f, buf); err != nil {
			var damaged errDamaged
			if !errors.As(err, &damaged) {
				return st, err
			}
			st.Damaged = append(st.Damaged, fmt.Sprintf("%s: %v", f, damaged.err))
		}
	}
	return st, nil
}

type readScan struct {
	q      ReadQuery
	emit   func(Read) error
	st     *ReadStats
	needle []byte
	line   []byte // reused for lines longer than the reader's buffer
}

// errDamaged is a file that could not be read to its end.
type errDamaged struct{ err error }

func (e errDamaged) Error() string { return e.err.Error() }

func (s *readScan) file(name string, buf *bufio.Reader) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("reads: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	var magic [2]byte
	if n, _ := io.ReadFull(f, magic[:]); n == 2 && magic == [2]byte{0x1f, 0x8b} {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("reads: %w", err)
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return errDamaged{err}
		}
		defer zr.Close()
		r = zr
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("reads: %w", err)
	}
	buf.Reset(r)
	var lineNo int64
	for {
		line, err := s.readLine(buf)
		if len(line) > 0 || err == nil {
			lineNo++
			s.st.Lines++
			if line != nil {
				if err := s.event(line, name, lineNo); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errDamaged{err}
		}
	}
}

// readLine returns the next line without its newline; nil for a line over
// MaxLogLine, which is skipped and counted.
func (s *readScan) readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return bytes.TrimRight(line, "\r\n"), err
	}
	s.line = append(s.line[:0], line...)
	tooLong := false
	for err == bufio.ErrBufferFull {
		line, err = br.ReadSlice('\n')
		if !tooLong && len(s.line)+len(line) > MaxLogLine {
			tooLong = true
			s.line = s.line[:0]
		}
		if !tooLong {
			s.line = append(s.line, line...)
		}
	}
	if cap(s.line) > MaxLogLine {
		// Not kept past one huge line.
		defer func() { s.line = nil }()
	}
	if tooLong {
		s.st.TooLong++
		return nil, err
	}
	return bytes.TrimRight(s.line, "\r\n"), err
}

func (s *readScan) event(line []byte, file string, lineNo int64) error {
	if len(line) == 0 {
		return nil
	}
	if s.needle != nil && !bytes.Contains(line, s.needle) &&
		// A truncated list may hold the record without naming it.
		(s.q.Record == "" || !bytes.Contains(line, truncatedNeedle)) {
		// Damage is not hidden by the prefilter: a line that does not
		// even start like an object is counted.
		if line[0] != '{' {
			s.st.Malformed++
		}
		return nil
	}
	var ev readEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		s.st.Malformed++
		return nil
	}
	if ev.Msg != "decision" || ev.DecisionID == "" {
		return nil
	}
	if ev.Outcome != "allow" || ev.Status >= 300 || ev.RecordsReturned == 0 || ev.Subject == nil {
		return nil
	}
	q := s.q
	if q.User != "" && ev.Subject.ID != q.User ||
		!q.Since.IsZero() && ev.Timestamp.Before(q.Since) ||
		!q.Until.IsZero() && !ev.Timestamp.Before(q.Until) {
		return nil
	}
	rd := Read{Time: ev.Timestamp, Subject: ev.Subject.ID, Roles: ev.Subject.Roles, Module: ev.Module,
		RelatedModule: ev.RelatedModule, Action: ev.Action, Records: ev.RecordsReturned, RecordIDs: ev.RecordIDs,
		Truncated: ev.RecordIDsTruncated, DecisionID: ev.DecisionID, Source: file + ":" + strconv.FormatInt(lineNo, 10)}
	if q.Record != "" {
		// A related list's records belong to the related module.
		module := ev.Module
		if ev.RelatedModule != "" {
			module = ev.RelatedModule
		}
		if q.Module != "" && !strings.EqualFold(module, q.Module) {
			return nil
		}
		switch {
		case ev.RecordID == q.Record && ev.RelatedModule == "" || slices.Contains(ev.RecordIDs, q.Record):
		case ev.RecordIDsTruncated:
			rd.Maybe = true
		default:
			return nil
		}
	} else if q.Module != "" && !strings.EqualFold(ev.Module, q.Module) && !strings.EqualFold(ev.RelatedModule, q.Module) {
		return nil
	}
	if rd.Maybe {
		s.st.Maybe++
	} else {
		s.st.Matched++
	}
	return s.emit(rd)
}

var truncatedNeedle = []byte(`"record_ids_truncated":true`)

// plainJSON reports whether JSON encoders write s unchanged inside quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// rotated matches lumberjack's backup names: name-2006-01-02T15-04-05.000.ext,
// optionally gzip'd.
var rotated = regexp.MustCompile(`-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3})(\.[^./]*)?(\.gz)?$`)

// LogFiles expands the paths an auditor gives into the files to read,
// oldest first: a directory is every regular file in it; a file is itself
// plus its rotated siblings (lumberjack backups, also gzip'd). Backups are
// ordered by the rotation time in their names, anything else by
// modification time, and the live file (no timestamp) comes after its
// backups.
func LogFiles(paths []string) ([]string, error) {
	type logFile struct {
		path string
		at   time.Time
	}
	seen := map[string]bool{}
	var out []logFile
	add := func(p string) error {
		if seen[p] {
			return nil
		}
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("reads: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		seen[p] = true
		at := fi.ModTime()
		if m := rotated.FindStringSubmatch(filepath.Base(p)); m != nil {
			if t, err := time.Parse("2006-01-02T15-04-05.000", m[1]); err == nil {
				at = t
			}
		}
		out = append(out, logFile{p, at})
		return nil
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reads: %w", err)
		}
		if fi.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("reads: %w", err)
			}
			for _, e := range entries {
				if err := add(filepath.Join(p, e.Name())); err != nil {
					return nil, err
				}
			}
			continue
		}
		// Backups of crmgate.log are crmgate-<time>.log[.gz].
		ext := filepath.Ext(p)
		stem := strings.TrimSuffix(p, ext)
		backups, _ := filepath.Glob(stem + "-*" + ext + "*")
		for _, b := range backups {
			if rotated.MatchString(filepath.Base(b)) {
				if err := add(b); err != nil {
					return nil, err
				}
			}
		}
		if err := add(p); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b logFile) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
	files := make([]string, len(out))
	for i, f := range out {
		files[i] = f.path
	}
	return files, nil
}

// ParseSince reads a --since/--until value: an RFC 3339 time, a date
// (midnight UTC), or a duration back from now ("36h", "7d").
func ParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a date (2006-01-02) or a duration back from now (36h, 7d)", s)
}

// ReadWriter writes Reads as they are found, in one of the report
// formats: text (one aligned line each), json (one object per line) or
// csv.
type ReadWriter struct {
	w      io.Writer
	format string
	csv    *csv.Writer
	header bool
}

// NewReadWriter returns a writer for format text, json or csv.
func NewReadWriter(w io.Writer, format string) (*ReadWriter, error) {
	switch format {
	case "text", "json":
		return &ReadWriter{w: w, format: format}, nil
	case "csv":
		return &ReadWriter{w: w, format: format, csv: csv.NewWriter(w)}, nil
	}
	return nil, fmt.Errorf("unknown format %q (want text, json or csv)", format)
}

// Write writes one read.
func (rw *ReadWriter) Write(r Read) error {
	module := r.Module
	if r.RelatedModule != "" {
		module += "→" + r.RelatedModule
	}
	switch rw.format {
	case "json":
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = rw.w.Write(append(b, '\n'))
		return err
	case "csv":
		if !rw.header {
			rw.header = true
			if err := rw.csv.Write([]string{"time", "subject", "roles", "module", "action", "records", "record_ids",
				"record_ids_truncated", "maybe", "decision_id", "source"}); err != nil {
				return err
			}
		}
		if err := rw.csv.Write([]string{r.Time.UTC().Format(time.RFC3339Nano), r.Subject, strings.Join(r.Roles, " "), module,
			r.Action, strconv.Itoa(r.Records), strings.Join(r.RecordIDs, " "), strconv.FormatBool(r.Truncated),
			strconv.FormatBool(r.Maybe), r.DecisionID, r.Source}); err != nil {
			return err
		}
		rw.csv.Flush()
		return rw.csv.Error()
	}
	ids := strings.Join(r.RecordIDs, ",")
	switch {
	case r.Maybe:
		ids = "(ids truncated: may include it) " + ids
	case r.Truncated:
		ids += ",…"
	}
	_, err := fmt.Fprintf(rw.w, "%s  %-12s %-8s %-24s %3d  %s\n", r.Time.UTC().Format(time.RFC3339), r.Subject, r.Action, module, r.Records, ids)
	return err
}
