package audit

import (
	"bytes"
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
	RelatedModule      string        `json:"related_module,omitempty"`
	Outcome            string        `json:"outcome"`
	Status             int           `json:"status"`
	RecordsReturned    int           `json:"records_returned"`
	RecordsFiltered    int           `json:"records_filtered"`
	Pushdown           string        `json:"pushdown,omitempty"`
	PushdownReason     string        `json:"pushdown_reason,omitempty"`
	FieldsRedacted     int           `json:"fields_redacted"`
	BudgetRemaining    *int64        `json:"budget_remaining,omitempty"`
	BudgetSpent        bool          `json:"budget_spent,omitempty"`
	RecordsWithheld    int           `json:"records_withheld,omitempty"`
	LatencyNS          int64         `json:"latency_ns"`
	RecordIDs          []string      `json:"record_ids,omitempty"`
	RecordIDsTruncated bool          `json:"record_ids_truncated,omitempty"`
	Reason             string        `json:"reason,omitempty"`
	Error              string        `json:"error,omitempty"`

	// labelsJSON and bundlesJSON are Labels and Bundles as JSON, shared
	// by the entries of one builder so that sinks need not sort and
	// encode the same maps for every line.
	labelsJSON, bundlesJSON []byte
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
	if len(labels) > 0 {
		b.labelsJSON = appendStringMap(nil, labels)
	}
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
	b.writer.paths = paths
	return b, nil
}

// entryBuilder turns Events into Entries on the writer goroutine; it is
// not safe for concurrent use. What is the same from one event to the next
// (labels, the bundles object of a revision, the erased list of a set of
// mask paths, the subject) is built once and shared by the Entries, which
// sinks only read.
type entryBuilder struct {
	eraser       eraser
	writer       inputWriter
	eraseAll     bool
	maxRecordIDs int
	labels       map[string]string
	labelsJSON   []byte
	log          *zap.Logger

	scratch     []byte
	revision    string
	bundles     map[string]Bundle
	bundlesJSON []byte
	subject     *EntrySubject
	erased      map[pathSet][]string
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
		RelatedModule:   e.RelatedModule,
		Pushdown:        e.Pushdown,
		PushdownReason:  e.PushdownReason,
		Outcome:         e.Outcome,
		Status:          e.Status,
		RecordsReturned: e.RecordsReturned,
		RecordsFiltered: e.RecordsFiltered,
		FieldsRedacted:  e.FieldsRedacted,
		LatencyNS:       e.LatencyNS,
		Reason:          e.Reason,
		Error:           e.Error,
		BudgetSpent:     e.BudgetSpent,
		RecordsWithheld: e.RecordsWithheld,
	}
	if e.Budgeted {
		rem := e.BudgetRemaining
		en.BudgetRemaining = &rem
	}
	if len(b.labels) > 0 {
		en.Labels, en.labelsJSON = b.labels, b.labelsJSON
	}
	if e.Revision != "" {
		if b.bundles == nil || b.revision != e.Revision {
			b.revision = e.Revision
			b.bundles = map[string]Bundle{bundleName: {Revision: e.Revision}}
			b.bundlesJSON = appendBundles(nil, b.bundles)
		}
		en.Bundles, en.bundlesJSON = b.bundles, b.bundlesJSON
	}
	if e.EvalNS > 0 {
		en.Metrics = map[string]int64{metricEvalNS: e.EvalNS}
	}
	if e.SubjectID != "" || len(e.Roles) > 0 {
		if s := b.subject; s == nil || s.ID != e.SubjectID || !slices.Equal(s.Roles, e.Roles) {
			roles := slices.Clone(e.Roles)
			if roles == nil {
				roles = []string{}
			}
			b.subject = &EntrySubject{ID: e.SubjectID, Roles: roles}
		}
		en.Subject = b.subject
	}
	en.RecordIDs = e.RecordIDs
	if len(en.RecordIDs) > b.maxRecordIDs {
		en.RecordIDs, en.RecordIDsTruncated = en.RecordIDs[:b.maxRecordIDs], true
	}
	// Input and result share one allocation, sized to fit.
	buf := b.scratch[:0]
	buf, hasInput, erased := b.input(buf, e.Input, e.DecisionID)
	nIn := len(buf)
	buf, hasResult := b.result(buf, e.Result, e.DecisionID)
	b.scratch = buf
	if hasInput || hasResult {
		out := bytes.Clone(buf)
		if hasInput {
			en.Input = out[:nIn:nIn]
		}
		if hasResult {
			en.Result = out[nIn:]
		}
	}
	en.Erased = erased
	return en
}

// result appends the policy's answer; a policy.Decision, the usual case,
// is written without reflection.
func (b *entryBuilder) result(buf []byte, r any, decisionID string) ([]byte, bool) {
	switch r := r.(type) {
	case nil:
		return buf, false
	case policy.Decision:
		return appendDecision(buf, &r), true
	case *policy.Decision:
		if r != nil {
			return appendDecision(buf, r), true
		}
	}
	res, err := json.Marshal(r)
	if err != nil {
		b.log.Warn("decision log result not serialisable; logged without it",
			zap.String("decision_id", decisionID), zap.Error(err))
		return buf, false
	}
	return append(buf, res...), true
}

// input appends in with the mask paths erased. Whenever the input cannot
// be masked with certainty it is dropped whole and reported as erased at
// /input: a decision log must not become the place secrets leak.
func (b *entryBuilder) input(buf []byte, in *policy.Input, decisionID string) ([]byte, bool, []string) {
	if in == nil {
		return buf, false, nil
	}
	if b.eraseAll {
		return buf, false, []string{inputRoot}
	}
	if len(b.writer.paths) <= maxFastPaths {
		b.writer.found = 0
		out, err := b.writer.appendInput(buf, in)
		if err == nil {
			return out, true, b.erasedList(b.writer.found)
		}
		// errSlowPath: the general path below decides.
	}
	raw, erased, ok := b.slowInput(in, decisionID)
	if !ok {
		return buf, false, erased
	}
	return append(buf, raw...), true, erased
}

// erasedList is the erased paths of found in configuration order, shared
// between the entries with the same set.
func (b *entryBuilder) erasedList(found pathSet) []string {
	if found == 0 {
		return nil
	}
	if l, ok := b.erased[found]; ok {
		return l
	}
	var l []string
	for i := range b.writer.paths {
		if found&(1<<i) != 0 {
			l = append(l, b.writer.paths[i].raw)
		}
	}
	if b.erased == nil {
		b.erased = make(map[pathSet][]string)
	}
	if len(b.erased) < maxCachedSubjects {
		b.erased[found] = l
	}
	return l
}

// slowInput serialises in with encoding/json and erases the mask paths
// from the result with the streaming eraser; ok is false when the input is
// dropped whole.
func (b *entryBuilder) slowInput(in *policy.Input, decisionID string) (json.RawMessage, []string, bool) {
	raw, err := json.Marshal(in)
	if err != nil {
		b.log.Warn("decision log input not serialisable; erased",
			zap.String("decision_id", decisionID), zap.Error(err))
		return nil, []string{inputRoot}, false
	}
	if len(b.eraser.paths) == 0 {
		return raw, nil, true
	}
	out, erased, err := b.eraser.erase(raw)
	if err != nil {
		b.log.Warn("decision log input not maskable; erased",
			zap.String("decision_id", decisionID), zap.Error(err))
		return nil, []string{inputRoot}, false
	}
	return out, erased, true
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
	if e.RelatedModule != "" {
		enc.AddString("related_module", e.RelatedModule)
	}
	enc.AddString("outcome", e.Outcome)
	enc.AddInt("status", e.Status)
	enc.AddInt("records_returned", e.RecordsReturned)
	enc.AddInt("records_filtered", e.RecordsFiltered)
	if e.BudgetRemaining != nil {
		enc.AddInt64("budget_remaining", *e.BudgetRemaining)
	}
	if e.BudgetSpent {
		enc.AddBool("budget_spent", true)
	}
	if e.RecordsWithheld > 0 {
		enc.AddInt("records_withheld", e.RecordsWithheld)
	}
	if e.Pushdown != "" {
		enc.AddString("pushdown", e.Pushdown)
	}
	if e.PushdownReason != "" {
		enc.AddString("pushdown_reason", e.PushdownReason)
	}
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
