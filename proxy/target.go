package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
)

// maxTargetRecord bounds the record fetched to check a write's target.
const maxTargetRecord = 4 << 20

// targetActions are the writes to an existing record whose target is
// fetched and checked against the record rule before the write is sent.
var targetActions = map[string]bool{policy.ActionUpdate: true, policy.ActionDelete: true, policy.ActionRelate: true}

// checkTarget fetches the record an update, delete or relate acts on (with
// crmgate's own credential) and applies the record rule: a record the
// subject may not see is a 404, one it may see but not change a 403. The
// same rule filters lists, so what a user can list and what they can write
// cannot drift apart.
func (h *Handler) checkTarget(x *exchange) error {
	if !targetActions[x.match.Action] || x.match.ID == "" {
		return nil
	}
	rec, err := h.fetchRecord(x)
	if err != nil {
		return err
	}
	in := x.input
	in.Record = rec
	in.Resource.Action = policy.ActionRead
	seen, err := h.o.Policy.Record(x.r.Context(), &in)
	if err != nil {
		return errPolicy(err)
	}
	if !seen.Allow {
		return errRecordNotFound()
	}
	in.Resource.Action = x.match.Action
	act, err := h.o.Policy.Record(x.r.Context(), &in)
	if err != nil {
		return errPolicy(err)
	}
	if !act.Allow {
		return errForbidden("record rule denied " + x.match.Action)
	}
	// Fields hidden for this record may not be written either.
	if bad := intersectFold(x.input.Resource.Fields, act.HiddenFields); len(bad) > 0 {
		h.o.Metrics.WriteGuardRejection(x.match.Module)
		return &Problem{Status: http.StatusForbidden, Kind: "readonly-fields", Title: "Fields not writable",
			Detail: "The request writes fields this user may not change.", Outcome: OutcomeDeny,
			Reason: "write to record-hidden fields", Fields: bad}
	}
	return nil
}

// fetchRecord reads the target record from the CRM and flattens it the way
// the redactor does for lists: the fields object plus the id.
func (h *Handler) fetchRecord(x *exchange) (map[string]any, error) {
	path, err := h.o.Profile.ReadPath(x.match.Module, x.match.ID)
	if err != nil {
		return nil, errPolicy(fmt.Errorf("check target: %w", err))
	}
	u := *h.o.Upstream.URL
	u.Path = joinPath(u.Path, path)
	u.RawPath, u.RawQuery = u.Path, ""
	if u.RawQuery, err = h.targetFieldsQuery(x); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(x.r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, upstreamErrorProblem(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Request-Id", x.id)
	if x.credName != "" {
		req.Header.Set(x.credName, x.credValue)
	} else if name, value, err := h.o.Upstream.Credential.Header(x.r.Context()); err != nil {
		return nil, upstreamErrorProblem(err)
	} else if name != "" {
		req.Header.Set(name, value)
	}
	res, err := h.o.Transport.RoundTrip(req)
	if err != nil {
		return nil, upstreamErrorProblem(err)
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusNotFound:
		return nil, errRecordNotFound()
	case res.StatusCode != http.StatusOK:
		return nil, errResponseUninspectable(fmt.Errorf("check target: crm answered %d", res.StatusCode))
	}
	body, err := decodedBody(res)
	if err != nil {
		return nil, errResponseUninspectable(err)
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxTargetRecord+1))
	if err != nil {
		return nil, upstreamErrorProblem(err)
	}
	if len(raw) > maxTargetRecord {
		return nil, errResponseUninspectable(errors.New("check target: record too large"))
	}
	doc, err := decodeStrict(raw)
	if err != nil {
		return nil, errResponseUninspectable(fmt.Errorf("check target: %w", err))
	}
	shape := h.o.Profile.ShapeFor(x.match.Module)
	recObj, err := writtenFields(doc, shape.RecordPath, nil, policy.ActionRead)
	if err != nil {
		return nil, errResponseUninspectable(fmt.Errorf("check target: %w", err))
	}
	fields, err := writtenFields(recObj, shape.FieldsPath, nil, policy.ActionRead)
	if err != nil {
		return nil, errResponseUninspectable(fmt.Errorf("check target: %w", err))
	}
	rec := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		rec[k] = v
	}
	if id, ok := recObj[shape.IDField]; ok {
		rec[shape.IDField] = id
	}
	if rec[shape.IDField] != x.match.ID {
		// The CRM answered with another record than the one asked for.
		return nil, errResponseUninspectable(errors.New("check target: record id mismatch"))
	}
	return rec, nil
}

func intersectFold(a, b []string) []string {
	var out []string
	for _, v := range a {
		if containsFold(b, v) {
			out = append(out, v)
		}
	}
	return out
}

// targetFieldsQuery is the query that makes a CRM which answers only the
// fields a request names (profile.FieldFetcher) return the fields the
// record rule reads for the target's module, for reading and for the
// write's own action. Other CRMs answer every field: no query.
func (h *Handler) targetFieldsQuery(x *exchange) (string, error) {
	ff, ok := h.o.Profile.Dialect.(profile.FieldFetcher)
	if !ok {
		return "", nil
	}
	var fields []string
	for _, action := range []string{policy.ActionRead, x.match.Action} {
		in := x.input
		in.Resource = policy.Resource{CRM: h.o.Profile.Name, Module: x.match.Module, ID: x.match.ID, Action: action}
		f, err := h.o.Policy.RecordFilter(x.r.Context(), &in)
		if err != nil {
			return "", errPolicy(err)
		}
		fields = append(fields, f.Fields()...)
	}
	m := profile.Match{Module: x.match.Module, ID: x.match.ID, Action: policy.ActionRead, Kind: profile.KindRecord}
	q, _, err := ff.WithFields(m, "", nil, fields)
	if err != nil {
		return "", errPolicy(fmt.Errorf("check target: %w", err))
	}
	return q, nil
}
