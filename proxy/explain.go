package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

// Explainer is what `crmgate explain` needs from the policy engine.
type Explainer interface {
	Decider
	Explain(ctx context.Context, in *policy.Input) (policy.Decision, []string, error)
}

// ExplainOptions configure Explain.
type ExplainOptions struct {
	Profile *profile.Profile
	Policy  Explainer
	// MaxRequestBody caps the body as the proxy would (config
	// upstream.max_request_body).
	MaxRequestBody int64
	// Now is the request time; zero means time.Now.
	Now time.Time
}

// Explanation is what the proxy would do with one request: the policy input
// it would build, the decision, and the answer it would give.
type Explanation struct {
	Method, Target string
	// Match is the profile's classification; zero when the request was
	// refused before it was classified.
	Match profile.Match
	// Input is exactly what the proxy passes to the policy; nil when the
	// request was refused before the decision.
	Input *policy.Input
	// Decision is set when the policy was asked.
	Decision *policy.Decision
	// Rules are the package's rule values for this input ("name = value").
	Rules []string
	// Outcome is allow, deny, step_up or error, as in the decision log.
	Outcome string
	// Status is the proxy's answer when it refuses (0: forwarded).
	Status int
	// Refusal says why the request is refused; Cause is the internal error
	// behind it, which the proxy would only log.
	Refusal string
	Cause   string
	// RefusedFields are the written fields a write guard refuses.
	RefusedFields []string
	// Record is the record rule's answer for the record given to Explain,
	// for the request's own action, as the proxy applies it to what the
	// CRM returns (list filtering, a single record's read); nil without a
	// record, and for writes to an existing record, whose target check
	// decides the Outcome instead.
	Record *policy.RecordDecision
}

// Explain runs the proxy's own pipeline stages for one request, without
// forwarding it: request-line checks, classification by the profile, body
// checks, the decision and the request guards. The input it reports is the
// one the proxy would build. record, when set, is the target record as the
// CRM would return it, flattened (its fields and id): reads show its record
// decision, and writes to it (update, delete, relate) go through the same
// target check as in the proxy, against this record instead of a fetch.
func Explain(ctx context.Context, o ExplainOptions, subj *policy.Subject, r *http.Request, record map[string]any) (*Explanation, error) {
	if o.Profile == nil || o.Policy == nil || subj == nil {
		return nil, errors.New("explain: profile, policy and subject are required")
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if o.MaxRequestBody <= 0 {
		o.MaxRequestBody = 1 << 20
	}
	target, _ := url.Parse("http://crm.explain.invalid")
	h := &Handler{o: Options{
		Profile: o.Profile, Policy: o.Policy, MaxRequestBody: o.MaxRequestBody,
		Upstream:  UpstreamOptions{URL: target, Credential: NoCredential{}},
		Transport: recordTransport{profile: o.Profile, record: record},
		Now:       func() time.Time { return now },
	}}
	x := &exchange{r: r.WithContext(ctx), start: now, id: "explain", decisionID: "explain", h: h}
	x.input.Subject = subj
	e := &Explanation{Method: r.Method, Target: r.URL.RequestURI()}

	err := checkRequestLine(x.r)
	if err == nil {
		err = h.classify(x)
	}
	e.Match = x.match
	if err == nil {
		err = h.readBody(x)
	}
	if err == nil {
		e.Match = x.match
		err = h.decide(x)
	}
	if x.decided {
		in := x.input
		e.Input = &in
		d := x.decision
		e.Decision = &d
		if err == nil {
			if _, rules, xerr := o.Policy.Explain(ctx, &in); xerr == nil {
				e.Rules = rules
			} else {
				e.Rules = []string{"rule values unavailable: " + xerr.Error()}
			}
		}
	}
	if err == nil {
		err = h.enforceForExplain(x, record != nil)
	}
	if err == nil && record != nil && !targetActions[x.match.Action] {
		in := x.input
		in.Record = record
		rd, rerr := o.Policy.Record(ctx, &in)
		switch {
		case rerr != nil:
			err = errPolicy(rerr)
		case !rd.Allow && x.match.Kind == profile.KindRecord:
			// The proxy forwards the read but answers 404 for a record
			// the subject may not see.
			e.Record = &rd
			err = errRecordNotFound()
		default:
			e.Record = &rd
		}
	}
	if err != nil {
		p := asProblem(err)
		e.Outcome, e.Status, e.Refusal, e.RefusedFields = p.Outcome, p.Status, p.Reason, p.Fields
		if p.Cause != nil {
			e.Cause = p.Cause.Error()
		}
		return e, nil
	}
	e.Outcome = OutcomeAllow
	return e, nil
}

// enforceForExplain is enforceRequest without the step that needs the CRM
// when no record was given: the target check then cannot be made.
func (h *Handler) enforceForExplain(x *exchange, haveRecord bool) error {
	if haveRecord {
		return h.enforceRequest(x)
	}
	d := &x.decision
	if d.RequireMFA && !x.input.Subject.MFA {
		return errStepUp(h.o.StepUpACR, 0)
	}
	if !d.Allow {
		return errForbidden("policy denied")
	}
	return h.guardWrite(x)
}

// recordTransport plays the CRM for the target check: it answers the read
// of the record with the given record in the profile's envelope, and 404
// when there is none.
type recordTransport struct {
	profile *profile.Profile
	record  map[string]any
}

func (t recordTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	res := &http.Response{Request: req, Header: http.Header{"Content-Type": {"application/json"}}, ProtoMajor: 1, ProtoMinor: 1}
	if req.Method != http.MethodGet || t.record == nil {
		res.StatusCode, res.Body = http.StatusNotFound, io.NopCloser(strings.NewReader("{}"))
		return res, nil
	}
	id, shape := path.Base(req.URL.Path), t.profile.Shape
	if m, err := t.profile.Classify(http.MethodGet, req.URL.EscapedPath(), nil); err == nil && m.ID != "" {
		// OData keys sit inside a segment (accounts(guid)), and the id
		// field is the table's own.
		id, shape = m.ID, t.profile.ShapeFor(m.Module)
	}
	body, err := json.Marshal(envelope(shape, t.record, id))
	if err != nil {
		return nil, fmt.Errorf("explain: encode record: %w", err)
	}
	res.StatusCode, res.Body, res.ContentLength = http.StatusOK, io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return res, nil
}

// envelope puts a flattened record where the profile's shape says the CRM
// keeps it. A record without an id gets the requested one.
func envelope(s profile.Shape, record map[string]any, id string) map[string]any {
	fields := maps.Clone(record)
	recID, ok := fields[s.IDField]
	if !ok {
		recID = id
	}
	delete(fields, s.IDField)
	obj := map[string]any{}
	inner := obj
	for _, seg := range s.FieldsPath {
		next := map[string]any{}
		inner[seg] = next
		inner = next
	}
	maps.Copy(inner, fields)
	obj[s.IDField] = recID
	doc := obj
	for _, seg := range slices.Backward(s.RecordPath) {
		doc = map[string]any{seg: doc}
	}
	return doc
}

// NewExplainRequest builds the request Explain takes, as the server would
// have parsed it from the wire: target is the request target ("/path?query")
// and a body is sent as JSON.
func NewExplainRequest(method, target string, body []byte) (*http.Request, error) {
	u, err := url.ParseRequestURI(target)
	if err != nil || u.Host != "" || !strings.HasPrefix(target, "/") {
		return nil, fmt.Errorf("explain: request target %q: want a path such as /Api/V8/module/Accounts/42", target)
	}
	r := &http.Request{
		Method: strings.ToUpper(method), URL: u, RequestURI: target, Host: "crmgate.invalid",
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: http.NoBody, RemoteAddr: "127.0.0.1:0",
	}
	if len(body) > 0 {
		r.Header.Set("Content-Type", "application/json")
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	return r.WithContext(context.Background()), nil
}

// ParseSubject reads a subject as the policy sees it (input.subject's JSON:
// id, roles, teams, attributes, mfa, amr, auth...). Unknown keys are errors,
// so a misspelled "role" cannot silently explain a subject without roles.
func ParseSubject(data []byte) (*policy.Subject, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s policy.Subject
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("parse subject: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parse subject: more than one JSON value")
	}
	if s.ID == "" {
		return nil, errors.New("parse subject: id is required")
	}
	if s.Auth == "" {
		s.Auth = "bearer"
	}
	return &s, nil
}

// Write prints the explanation for people.
func (e *Explanation) Write(w io.Writer, withRules bool) error {
	var b strings.Builder
	line := func(k, format string, args ...any) { fmt.Fprintf(&b, "%-16s %s\n", k, fmt.Sprintf(format, args...)) }
	list := func(xs []string) string {
		if len(xs) == 0 {
			return "-"
		}
		return strings.Join(xs, ", ")
	}
	line("request", "%s %s", e.Method, e.Target)
	if e.Match.Route != "" {
		line("route", "%s (%s)", e.Match.Route, e.Match.Kind)
		line("resource", "module=%s id=%s action=%s", e.Match.Module, orDash(e.Match.ID), e.Match.Action)
	}
	if e.Input != nil {
		s := e.Input.Subject
		line("subject", "%s roles=[%s] teams=[%s] mfa=%t auth=%s", s.ID, strings.Join(s.Roles, " "), strings.Join(s.Teams, " "), s.MFA, s.Auth)
		if len(e.Input.Resource.Fields) > 0 {
			line("writes", "%s", list(e.Input.Resource.Fields))
		}
	}
	switch e.Outcome {
	case OutcomeAllow:
		line("decision", "allow (forwarded to the CRM)")
	case OutcomeStepUp:
		line("decision", "step-up (%d: the user must sign in with MFA)", e.Status)
	default:
		line("decision", "%s (%d: %s)", e.Outcome, e.Status, e.Refusal)
	}
	if e.Cause != "" {
		line("cause", "%s", e.Cause)
	}
	if len(e.RefusedFields) > 0 {
		line("refused fields", "%s", list(e.RefusedFields))
	}
	if d := e.Decision; d != nil {
		b.WriteString("reasons\n")
		for _, r := range d.Reasons {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
		line("hidden", "%s", list(d.HiddenFields))
		masked := make([]string, 0, len(d.MaskedFields))
		for _, f := range slices.Sorted(maps.Keys(d.MaskedFields)) {
			masked = append(masked, f+" ("+d.MaskedFields[f]+")")
		}
		line("masked", "%s", list(masked))
		switch {
		case !d.VisibleDefined:
			line("visible", "all fields not hidden")
		case len(d.VisibleFields) == 0:
			line("visible", "only the record id")
		default:
			line("visible", "only %s (and the id)", list(d.VisibleFields))
		}
		line("read-only", "%s", list(d.ReadonlyFields))
		line("policy revision", "%s", d.Revision)
	}
	if r := e.Record; r != nil {
		if r.Allow {
			line("record", "visible; hidden for this record: %s", list(r.HiddenFields))
		} else {
			line("record", "not visible to this subject (dropped from lists, 404 when read)")
		}
	}
	if e.Input != nil {
		in, err := inputJSON(e.Input)
		if err != nil {
			return fmt.Errorf("write explanation: %w", err)
		}
		fmt.Fprintf(&b, "input\n%s\n", in)
	}
	if withRules && len(e.Rules) > 0 {
		b.WriteString("rules\n")
		for _, r := range e.Rules {
			fmt.Fprintf(&b, "  %s\n", r)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write explanation: %w", err)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// inputJSON shows the input as the policy sees it: absent subject lists are
// empty arrays there (policy/input.go), not null.
func inputJSON(in *policy.Input) ([]byte, error) {
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if s, ok := doc["subject"].(map[string]any); ok {
		for _, k := range []string{"roles", "groups", "teams", "amr"} {
			if s[k] == nil {
				s[k] = []any{}
			}
		}
		if s["attributes"] == nil {
			s["attributes"] = map[string]any{}
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}
