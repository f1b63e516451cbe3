package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/crmgate/crmgate/policy"
)

// oddInput is an input with the values the appenders must write exactly as
// encoding/json does: HTML characters, control characters, line
// separators, invalid UTF-8 in values, numbers of every kind, nesting, nil
// and empty containers.
func oddInput() *policy.Input {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	return &policy.Input{
		Subject: &policy.Subject{
			ID: "a<b>&c", Roles: nil, Groups: []string{}, Teams: []string{"t\u2028\u2029"},
			Attributes: map[string]any{
				"n": json.Number("12345678901234567890"), "z": json.Number(""), "f": 1e21, "g": 1e-7,
				"h": 0.000001, "i": -0.0, "j": 123456789.125, "k": 7, "l": int64(-8), "m": nil,
				"o": []any{"x", true, nil, map[string]any{}, []any{}}, "p": []string{"q"},
				"ctl": "\b\f\n\r\t\x00\x1f\x7f\"\\", "bad": "a\xffb\xc0",
			},
			MFA: true, AMR: nil, ACR: "", AuthTime: 17, Auth: "bearer",
		},
		Request: policy.Request{
			ID: "r", Method: "GET", Path: "/x",
			Query: map[string][]string{"b": {"1", "2"}, "a": nil, "é": {"<"}},
			Time:  ts,
		},
		Resource: policy.Resource{
			Module: "M", Action: "read", Fields: []string{},
			Body: map[string]any{"nested": map[string]any{"deep": []any{1.5, "x"}}},
		},
		Record: map[string]any{"id": "1", "": "empty key"},
	}
}

// TestAppendInputMatchesEncodingJSON: without mask paths the hand-written
// input is byte for byte encoding/json's.
func TestAppendInputMatchesEncodingJSON(t *testing.T) {
	cases := map[string]*policy.Input{
		"sample": sampleEvent().Input,
		"odd":    oddInput(),
		"nil subject and empty maps": {
			Request:  policy.Request{Query: map[string][]string{}},
			Resource: policy.Resource{Body: map[string]any{}},
			Record:   map[string]any{},
		},
		"nil attributes": {Subject: &policy.Subject{ID: "s"}},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var w inputWriter
			got, err := w.appendInput(nil, in)
			if err != nil {
				t.Fatalf("appendInput: %v", err)
			}
			want, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("differs from encoding/json\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestAppendInputDeclines: what the appenders cannot write exactly goes to
// the general path, never out as something else.
func TestAppendInputDeclines(t *testing.T) {
	cases := map[string]func(in *policy.Input){
		"unknown type":           func(in *policy.Input) { in.Resource.Body["x"] = struct{ A int }{1} },
		"float32":                func(in *policy.Input) { in.Resource.Body["x"] = float32(1.5) },
		"NaN":                    func(in *policy.Input) { in.Resource.Body["x"] = math.NaN() },
		"infinity":               func(in *policy.Input) { in.Subject.Attributes["x"] = math.Inf(-1) },
		"invalid number":         func(in *policy.Input) { in.Resource.Body["x"] = json.Number("1e") },
		"invalid UTF-8 key":      func(in *policy.Input) { in.Resource.Body["pass\xffword"] = "v" },
		"invalid UTF-8 in query": func(in *policy.Input) { in.Request.Query = map[string][]string{"\xff": {"v"}} },
		"year 10000":             func(in *policy.Input) { in.Request.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"func in attributes":     func(in *policy.Input) { in.Subject.Attributes["f"] = func() {} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			in := sampleEvent().Input
			mutate(in)
			var w inputWriter
			if _, err := w.appendInput(nil, in); !errors.Is(err, errSlowPath) {
				t.Errorf("appendInput error = %v, want errSlowPath", err)
			}
		})
	}
}

func TestValidNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "1.5": true, "-1.5e+10": true, "1E5": true, "0.0e-0": true,
		"": false, "-": false, "01": false, "1.": false, ".5": false, "1e": false, "1e+": false,
		"+1": false, "0x10": false, "1a": false, "NaN": false, "1.5.5": false,
	} {
		if got := validNumber(s); got != want {
			t.Errorf("validNumber(%q) = %v, want %v", s, got, want)
		}
		var v any
		if err := json.Unmarshal([]byte(s), &v); (err == nil) != want {
			t.Errorf("validNumber(%q) disagrees with encoding/json (%v)", s, err)
		}
	}
}

// TestAppendDecisionMatchesEncodingJSON covers every field, set and empty.
func TestAppendDecisionMatchesEncodingJSON(t *testing.T) {
	cases := map[string]policy.Decision{
		"zero": {},
		"full": {
			Allow: true, RequireMFA: true, Reasons: []string{"a<b", "c"}, HiddenFields: []string{"h"},
			MaskedFields: map[string]string{"z": "last4", "a": "email"}, VisibleFields: []string{"v"},
			VisibleDefined: true, ReadonlyFields: []string{"r"}, Revision: "rev\n1", Duration: time.Second,
		},
		"empty slices": {Reasons: []string{}, MaskedFields: map[string]string{}, VisibleDefined: true},
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendDecision(nil, &d); !bytes.Equal(got, want) {
				t.Errorf("differs from encoding/json\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestFastAndSlowMaskingAgree: with mask paths, the one-pass writer and
// encoding/json plus the streaming eraser log the same input and list the
// same erased paths.
func TestFastAndSlowMaskingAgree(t *testing.T) {
	cases := map[string][]string{
		"sample paths":        sampleOptions().MaskPaths,
		"whole subject":       {"/input/subject"},
		"subject scalars":     {"/input/subject/id", "/input/subject/mfa", "/input/subject/auth_time", "/input/subject/amr"},
		"array elements":      {"/input/subject/teams/0", "/input/subject/attributes/o/1", "/input/request/query/b/1"},
		"through scalars":     {"/input/subject/id/x", "/input/request/time/x", "/input/subject/attributes/ctl/0"},
		"html and empty keys": {"/input/record/", "/input/subject/attributes/bad", "/input/request/query/é"},
		"request and time":    {"/input/request/time", "/input/request/remote_ip", "/input/request/query"},
		"overlapping":         {"/input/resource", "/input/resource/body/nested/deep/0", "/input/record/id"},
		"absent":              {"/input/nope", "/input/subject/attributes/nope/1"},
	}
	inputs := map[string]func() *policy.Input{"sample": func() *policy.Input { return sampleEvent().Input }, "odd": oddInput}
	for name, paths := range cases {
		for inName, mk := range inputs {
			t.Run(name+"/"+inName, func(t *testing.T) {
				b, err := newEntryBuilder(paths, 10, nil, zap.NewNop())
				if err != nil {
					t.Fatal(err)
				}
				in := mk()
				fast, ok, fastErased := b.input(nil, in, "d")
				if !ok {
					t.Fatal("fast path dropped the input")
				}
				slow, slowErased, ok := b.slowInput(in, "d")
				if !ok {
					t.Fatal("slow path dropped the input")
				}
				if !reflect.DeepEqual(fastErased, slowErased) {
					t.Errorf("erased: fast %q, slow %q", fastErased, slowErased)
				}
				var f, s any
				if err := json.Unmarshal(fast, &f); err != nil {
					t.Fatalf("fast output is not JSON: %v\n%s", err, fast)
				}
				if err := json.Unmarshal(slow, &s); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(f, s) {
					t.Errorf("inputs differ\nfast: %s\nslow: %s", fast, slow)
				}
			})
		}
	}
}

// TestSubjectCacheKeepsMasking: the cached form of a subject is the masked
// one, and a later event of the same subject still lists the subject's
// erased paths; a different Subject value with the same id is not served
// from the other's entry.
func TestSubjectCacheKeepsMasking(t *testing.T) {
	b, err := newEntryBuilder(sampleOptions().MaskPaths, 10, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	shared := sampleEvent().Input.Subject
	for i := range 3 {
		e := sampleEvent()
		e.Input.Subject = shared
		en := b.build(e)
		if strings.Contains(string(en.Input), "078-05-1120") {
			t.Fatalf("event %d: masked attribute logged: %s", i, en.Input)
		}
		want := []string{"/input/resource/body/password", "/input/subject/attributes/ssn"}
		if !reflect.DeepEqual(en.Erased, want) {
			t.Fatalf("event %d: erased = %q, want %q", i, en.Erased, want)
		}
	}
	other := &policy.Subject{ID: shared.ID, Roles: []string{"admin"}, Attributes: map[string]any{"crm_user_id": "u-99"}}
	e := sampleEvent()
	e.Input.Subject = other
	en := b.build(e)
	if !strings.Contains(string(en.Input), `"u-99"`) || !strings.Contains(string(en.Input), `"admin"`) {
		t.Errorf("another subject with the same id logged from the cache: %s", en.Input)
	}
	want := []string{"/input/resource/body/password"}
	if !reflect.DeepEqual(en.Erased, want) {
		t.Errorf("erased = %q, want %q (the other subject has no ssn)", en.Erased, want)
	}
}

// TestSubjectCacheBounded: subjects that are gone do not keep the cache
// growing.
func TestSubjectCacheBounded(t *testing.T) {
	b, err := newEntryBuilder(nil, 10, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 * maxCachedSubjects {
		e := &Event{DecisionID: "d", Input: &policy.Input{Subject: &policy.Subject{ID: strings.Repeat("x", i%7)}}}
		b.build(e)
		if i%maxCachedSubjects == 0 {
			runtime.GC()
		}
	}
	if n := len(b.writer.subjects); n > maxCachedSubjects {
		t.Errorf("%d cached subjects, bound %d", n, maxCachedSubjects)
	}
}

// shortWriter takes the first n bytes, then fails.
type shortWriter struct {
	n   int
	got bytes.Buffer
}

func (w *shortWriter) Write(p []byte) (int, error) {
	k := min(len(p), w.n)
	w.n -= k
	w.got.Write(p[:k])
	if k < len(p) {
		return k, io.ErrClosedPipe
	}
	return k, nil
}

func (w *shortWriter) Sync() error { return nil }

// TestLineSinkCountsWholeLines: when a write fails part-way, only the
// lines written completely are reported stored.
func TestLineSinkCountsWholeLines(t *testing.T) {
	b, err := newEntryBuilder(nil, 10, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]*Entry, 5)
	for i := range batch {
		batch[i] = b.build(sampleEvent())
	}
	lineLen := len(appendLine(nil, batch[0]))
	cases := []struct {
		name   string
		limit  int
		stored int
	}{
		{"all", 10 * lineLen, 5},
		{"two and a half", 2*lineLen + lineLen/2, 2},
		{"none", 0, 0},
		{"exactly three", 3 * lineLen, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &shortWriter{n: tc.limit}
			n, err := NewZapSink(w).Write(context.Background(), batch)
			if n != tc.stored {
				t.Errorf("stored = %d, want %d", n, tc.stored)
			}
			if (err != nil) != (tc.stored < len(batch)) {
				t.Errorf("err = %v with %d of %d stored", err, n, len(batch))
			}
			if err != nil && !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("err = %v, want it to wrap the writer's", err)
			}
		})
	}
}

// TestLineSinkLongLine: a line longer than a chunk is written on its own
// and every line stays whole.
func TestLineSinkLongLine(t *testing.T) {
	b, err := newEntryBuilder(nil, 10, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var batch []*Entry
	for i := range 40 {
		e := sampleEvent()
		if i == 20 {
			e.Reason = strings.Repeat("r", 2*maxChunk)
		}
		batch = append(batch, b.build(e))
	}
	w := &countingWriter{}
	if n, err := NewZapSink(w).Write(context.Background(), batch); err != nil || n != len(batch) {
		t.Fatalf("write = %d, %v", n, err)
	}
	lines := 0
	for _, p := range w.writes {
		if !bytes.HasSuffix(p, []byte("\n")) {
			t.Fatalf("a write ends mid-line")
		}
		for line := range bytes.Lines(p) {
			var v map[string]any
			if err := json.Unmarshal(line, &v); err != nil {
				t.Fatalf("bad line: %v", err)
			}
			lines++
		}
		if len(p) > maxChunk && bytes.Count(p, []byte("\n")) > 1 {
			t.Errorf("a %d-byte write carries %d lines", len(p), bytes.Count(p, []byte("\n")))
		}
	}
	if lines != len(batch) {
		t.Errorf("%d lines, want %d", lines, len(batch))
	}
}

type countingWriter struct{ writes [][]byte }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func (w *countingWriter) Sync() error { return nil }

// TestAppendRawKeepsOneLine: an Entry made outside the builder with an
// indented input still gives one line.
func TestAppendRawKeepsOneLine(t *testing.T) {
	e := &Entry{DecisionID: "d", Input: json.RawMessage("{\n  \"a\": 1\r\n}"), Result: json.RawMessage("{\n")}
	line := appendLine(nil, e)
	if bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", line)
	}
	var v map[string]any
	if err := json.Unmarshal(line, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	if v["result"] != nil {
		t.Errorf("broken result = %v, want null", v["result"])
	}
}

// FuzzAppendInputMatchesEncodingJSON: for any strings in keys and values,
// the hand-written input equals encoding/json's or is declined.
func FuzzAppendInputMatchesEncodingJSON(f *testing.F) {
	f.Add("password", "hunter2", "x", 1.5, "12")
	f.Add("a<b&c", "<script>\u2028", "\xff", 1e21, "-0.0e-5")
	f.Add("", "\x00\x1f", "é", -1e-7, "01")
	f.Fuzz(func(t *testing.T, key, val, attr string, num float64, number string) {
		in := sampleEvent().Input
		in.Resource.Body = map[string]any{key: val, "n": num, "j": json.Number(number), "o": []any{val, map[string]any{key: num}}}
		in.Subject.Attributes = map[string]any{attr: val}
		in.Request.Query = map[string][]string{key: {val}}
		var w inputWriter
		got, err := w.appendInput(nil, in)
		want, werr := json.Marshal(in)
		if err != nil {
			if !errors.Is(err, errSlowPath) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if werr != nil {
			t.Fatalf("appender wrote what encoding/json refuses (%v): %s", werr, got)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("differs\n got: %s\nwant: %s", got, want)
		}
	})
}

// BenchmarkWriteEntry is the writer goroutine's whole cost per event:
// masking and serialisation, then the line written to a discarding sink.
func BenchmarkWriteEntry(b *testing.B) {
	bld, err := newEntryBuilder(sampleOptions().MaskPaths, 100, sampleOptions().Labels, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	sink := NewZapSink(discardSyncer{})
	e := sampleEvent()
	batch := make([]*Entry, 1)
	b.ReportAllocs()
	for b.Loop() {
		batch[0] = bld.build(e)
		if _, err := sink.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

type discardSyncer struct{}

func (discardSyncer) Write(p []byte) (int, error) { return len(p), nil }
func (discardSyncer) Sync() error                 { return nil }
