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
		if rerr != nil {
			err = errPolicy(rerr)
		} else {
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
	id := path.Base(req.URL.Path)
	body, err := json.Marshal(envelope(t.profile.Shape, t.record, id))
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
