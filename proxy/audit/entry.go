package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/crmgate/crmgate/policy"
)

// Entry is an Event as it leaves crmgate: input masked, input and result
// serialised, record ids bounded. Its JSON form uses OPA's decision-log
// field names (decision_id, labels, bundles, path, input, result, erased,
// masked, timestamp, metrics) followed by crmgate's own. Sinks receive
// Entries and must treat them as read-only.
type Entry struct {
	DecisionID string            `json:"decision_id"`
	Labels     map[string]string `json:"labels,omitempty"`
	Bundles    map[string]Bundle `json:"bundles,omitempty"`
	Path       string            `json:"path,omitempty"`
	Input      json.RawMessage   `json:"input,omitempty"`
	Result     json.RawMessage   `json:"result,omitempty"`
	// Erased lists the mask paths removed from Input.
	Erased []string `json:"erased,omitempty"`
	// Masked lists paths whose values were replaced; crmgate only erases,
	// so it is always empty, and kept for OPA's shape.
	Masked    []string         `json:"masked,omitempty"`
	Timestamp time.Time        `json:"timestamp"`
	Metrics   map[string]int64 `json:"metrics,omitempty"`

	RequestID          string        `json:"request_id,omitempty"`
	Subject            *EntrySubject `json:"subject,omitempty"`
	Module             string        `json:"module,omitempty"`
	Action             string        `json:"action,omitempty"`
	RecordID           string        `json:"record_id,omitempty"`
	Outcome            string        `json:"outcome"`
	Status             int           `json:"status"`
	RecordsReturned    int           `json:"records_returned"`
	RecordsFiltered    int           `json:"records_filtered"`
	FieldsRedacted     int           `json:"fields_redacted"`
	LatencyNS          int64         `json:"latency_ns"`
	RecordIDs          []string      `json:"record_ids,omitempty"`
	RecordIDsTruncated bool          `json:"record_ids_truncated,omitempty"`
	Reason             string        `json:"reason,omitempty"`
	Error              string        `json:"error,omitempty"`
}

// Bundle is the per-bundle entry of an event's "bundles" object.
type Bundle struct {
	Revision string `json:"revision"`
}

// EntrySubject is who asked: the subject id and roles.
type EntrySubject struct {
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
}

// bundleName is the key under "bundles" that carries the policy revision.
const bundleName = "crmgate"

// metricEvalNS is OPA's metric name for the evaluation time.
const metricEvalNS = "timer_rego_query_eval_ns"

// newEntryBuilder parses the mask paths; when one is invalid it still
// returns a builder, one that erases the whole input (fail closed), along
// with the error.
func newEntryBuilder(maskPaths []string, maxRecordIDs int, labels map[string]string, log *zap.Logger) (*entryBuilder, error) {
	b := &entryBuilder{maxRecordIDs: maxRecordIDs, labels: labels, log: log}
	paths, err := parseMaskPaths(maskPaths)
	if err != nil {
		b.eraseAll = true
		return b, err
	}
	for _, p := range paths {
		if len(p.parts) == 0 { // "/input" itself
			b.eraseAll = true
		}
	}
	b.eraser.paths = paths
	return b, nil
}

// entryBuilder turns Events into Entries on the writer goroutine; it is
// not safe for concurrent use.
type entryBuilder struct {
	eraser       eraser
	eraseAll     bool
	maxRecordIDs int
	labels       map[string]string
	log          *zap.Logger
}

func (b *entryBuilder) build(e *Event) *Entry {
	ts := e.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	en := &Entry{
		DecisionID:      e.DecisionID,
		Path:            e.Path,
		Timestamp:       ts.UTC(),
		RequestID:       e.RequestID,
		Module:          e.Module,
		Action:          e.Action,
		RecordID:        e.RecordID,
		Outcome:         e.Outcome,
		Status:          e.Status,
		RecordsReturned: e.RecordsReturned,
		RecordsFiltered: e.RecordsFiltered,
		FieldsRedacted:  e.FieldsRedacted,
		LatencyNS:       e.LatencyNS,
		Reason:          e.Reason,
		Error:           e.Error,
	}
	if len(b.labels) > 0 {
		en.Labels = b.labels
	}
	if e.Revision != "" {
		en.Bundles = map[string]Bundle{bundleName: {Revision: e.Revision}}
	}
	if e.EvalNS > 0 {
		en.Metrics = map[string]int64{metricEvalNS: e.EvalNS}
	}
	if e.SubjectID != "" || len(e.Roles) > 0 {
		roles := e.Roles
		if roles == nil {
			roles = []string{}
		}
		en.Subject = &EntrySubject{ID: e.SubjectID, Roles: roles}
	}
	en.RecordIDs = e.RecordIDs
	if len(en.RecordIDs) > b.maxRecordIDs {
		en.RecordIDs, en.RecordIDsTruncated = en.RecordIDs[:b.maxRecordIDs], true
	}
	en.Input, en.Erased = b.input(e.Input, e.DecisionID)
	if e.Result != nil {
		res, err := json.Marshal(e.Result)
		if err != nil {
			b.log.Warn("decision log result not serialisable; logged without it",
				zap.String("decision_id", e.DecisionID), zap.Error(err))
		} else {
			en.Result = res
		}
	}
	return en
}

// input serialises in and erases the mask paths from it. Whenever the input
// cannot be masked with certainty it is dropped whole and reported as
// erased at /input: a decision log must not become the place secrets leak.
func (b *entryBuilder) input(in *policy.Input, decisionID string) (json.RawMessage, []string) {
	if in == nil {
		return nil, nil
	}
	if b.eraseAll {
		return nil, []string{inputRoot}
	}
	raw, err := json.Marshal(in)
	if err != nil {
		b.log.Warn("decision log input not serialisable; erased",
			zap.String("decision_id", decisionID), zap.Error(err))
		return nil, []string{inputRoot}
	}
	if len(b.eraser.paths) == 0 {
		return raw, nil
	}
	out, erased, err := b.eraser.erase(raw)
	if err != nil {
		b.log.Warn("decision log input not maskable; erased",
			zap.String("decision_id", decisionID), zap.Error(err))
		return nil, []string{inputRoot}
	}
	return out, erased
}

const inputRoot = "/input"

// maskPath is a parsed mask path: the raw form (for "erased") and its
// unescaped segments below /input.
type maskPath struct {
	raw   string
	parts []string
}

// ValidateMaskPaths reports every mask path that is not a JSON pointer
// rooted at /input (see Options.MaskPaths), for configuration checks.
func ValidateMaskPaths(paths []string) error {
	_, err := parseMaskPaths(paths)
	return err
}

func parseMaskPaths(paths []string) ([]maskPath, error) {
	var errs []error
	out := make([]maskPath, 0, len(paths))
	for _, p := range paths {
		mp, err := parseMaskPath(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, mp)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parseMaskPath(p string) (maskPath, error) {
	if p == inputRoot {
		return maskPath{raw: p}, nil
	}
	rest, ok := strings.CutPrefix(p, inputRoot+"/")
	if !ok {
		return maskPath{}, fmt.Errorf("parse mask path %q: must be /input or start with /input/", p)
	}
	parts := strings.Split(rest, "/")
	for i, s := range parts {
		u, err := unescapePointer(s)
		if err != nil {
			return maskPath{}, fmt.Errorf("parse mask path %q: %w", p, err)
		}
		parts[i] = u
	}
	return maskPath{raw: p, parts: parts}, nil
}

// unescapePointer undoes RFC 6901 escaping; a "~" not followed by 0 or 1 is
// an error rather than a literal, so a typo cannot silently mask nothing.
func unescapePointer(s string) (string, error) {
	if !strings.Contains(s, "~") {
		return s, nil
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '~' {
			sb.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) || (s[i+1] != '0' && s[i+1] != '1') {
			return "", fmt.Errorf("invalid escape %q in segment %q", s[i:min(i+2, len(s))], s)
		}
		if s[i+1] == '0' {
			sb.WriteByte('~')
		} else {
			sb.WriteByte('/')
		}
		i++
	}
	return sb.String(), nil
}

// MarshalLogObject writes the entry's fields for zap's JSON encoder, in the
// same names and order as its JSON form. The timestamp is not among them:
// the zap sink makes it the log entry's own time.
func (e *Entry) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("decision_id", e.DecisionID)
	if len(e.Labels) > 0 {
		_ = enc.AddObject("labels", stringMap(e.Labels))
	}
	if len(e.Bundles) > 0 {
		_ = enc.AddObject("bundles", bundleMap(e.Bundles))
	}
	if e.Path != "" {
		enc.AddString("path", e.Path)
	}
	if len(e.Input) > 0 {
		if err := enc.AddReflected("input", e.Input); err != nil {
			return fmt.Errorf("encode input: %w", err)
		}
	}
	if len(e.Result) > 0 {
		if err := enc.AddReflected("result", e.Result); err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
	}
	if len(e.Erased) > 0 {
		_ = enc.AddArray("erased", stringArray(e.Erased))
	}
	if len(e.Masked) > 0 {
		_ = enc.AddArray("masked", stringArray(e.Masked))
	}
	if len(e.Metrics) > 0 {
		_ = enc.AddObject("metrics", int64Map(e.Metrics))
	}
	if e.RequestID != "" {
		enc.AddString("request_id", e.RequestID)
	}
	if e.Subject != nil {
		_ = enc.AddObject("subject", zapcore.ObjectMarshalerFunc(func(oe zapcore.ObjectEncoder) error {
			oe.AddString("id", e.Subject.ID)
			return oe.AddArray("roles", stringArray(e.Subject.Roles))
		}))
	}
	if e.Module != "" {
		enc.AddString("module", e.Module)
	}
	if e.Action != "" {
		enc.AddString("action", e.Action)
	}
	if e.RecordID != "" {
		enc.AddString("record_id", e.RecordID)
	}
	enc.AddString("outcome", e.Outcome)
	enc.AddInt("status", e.Status)
	enc.AddInt("records_returned", e.RecordsReturned)
	enc.AddInt("records_filtered", e.RecordsFiltered)
	enc.AddInt("fields_redacted", e.FieldsRedacted)
	enc.AddInt64("latency_ns", e.LatencyNS)
	if len(e.RecordIDs) > 0 {
		_ = enc.AddArray("record_ids", stringArray(e.RecordIDs))
	}
	if e.RecordIDsTruncated {
		enc.AddBool("record_ids_truncated", true)
	}
	if e.Reason != "" {
		enc.AddString("reason", e.Reason)
	}
	if e.Error != "" {
		enc.AddString("error", e.Error)
	}
	return nil
}

type stringArray []string

func (a stringArray) MarshalLogArray(enc zapcore.ArrayEncoder) error {
	for _, s := range a {
		enc.AppendString(s)
	}
	return nil
}

// The map marshalers sort keys so that a line's bytes do not depend on map
// iteration order (and match encoding/json's output).
type stringMap map[string]string

func (m stringMap) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		enc.AddString(k, m[k])
	}
	return nil
}

type int64Map map[string]int64

func (m int64Map) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		enc.AddInt64(k, m[k])
	}
	return nil
}

type bundleMap map[string]Bundle

func (m bundleMap) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		rev := m[k].Revision
		_ = enc.AddObject(k, zapcore.ObjectMarshalerFunc(func(oe zapcore.ObjectEncoder) error {
			oe.AddString("revision", rev)
			return nil
		}))
	}
	return nil
}
