package proxy

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/identity"
	"github.com/crmgate/crmgate/proxy/profile"
)

// checkRequestLine refuses what no CRM API needs and what only serves to
// confuse a proxy: exotic methods and absolute-form targets.
func checkRequestLine(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return &Problem{Status: http.StatusMethodNotAllowed, Kind: "method-not-allowed", Title: "Method not allowed",
			Detail: "crmgate does not forward this method.", Outcome: OutcomeDeny, Reason: "method not allowed"}
	}
	// Go's server replaces the Host header with an absolute-form target's
	// host, so the two cannot be compared: crmgate is an origin to its
	// clients, not a forward proxy, and refuses absolute-form altogether.
	if r.URL.Host != "" || r.URL.Scheme != "" {
		return errBadRequest("The request target names a host.", "absolute-form target", nil)
	}
	return nil
}

// safePublicPath accepts only plain paths for the unauthenticated
// pass-through, so no spelling of a protected route can masquerade as a
// public one (no escapes, dot segments, doubled slashes or path params).
func safePublicPath(escaped string) bool {
	if escaped == "" || escaped[0] != '/' || strings.Contains(escaped, "//") {
		return false
	}
	for _, seg := range strings.Split(escaped[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '/' || c == '-' || c == '_' || c == '.' || c == '~'
		if !ok {
			return false
		}
	}
	return true
}

func joinPath(base, p string) string {
	base = strings.TrimSuffix(base, "/")
	if base == "" {
		return p
	}
	return base + p
}

func bearerToken(h http.Header) (string, bool, error) { return identity.BearerToken(h) }

// writeActions carry a body crmgate must read: to classify the request
// (SuiteCRM puts module and id there) and to guard the fields written.
var writeActions = map[string]bool{policy.ActionCreate: true, policy.ActionUpdate: true, policy.ActionRelate: true}

// readBody reads and checks the body of a write, and refuses bodies on
// requests that should not have one (they would reach the CRM unchecked).
func (h *Handler) readBody(x *exchange) error {
	r := x.r
	hasBody := r.ContentLength != 0 || len(r.TransferEncoding) > 0
	if !x.match.NeedsBody && !writeActions[x.match.Action] && !x.match.QueryBody {
		if hasBody {
			return errBadRequest("This request must not have a body.", "unexpected body", nil)
		}
		return nil
	}
	if !hasBody {
		if x.match.NeedsBody || x.match.QueryBody {
			return errBadRequest("This request needs a JSON body.", "missing body", nil)
		}
		return nil
	}
	if !identityOnly(r.Header.Values("Content-Encoding")) {
		return &Problem{Status: http.StatusUnsupportedMediaType, Kind: "unsupported-media-type", Title: "Unsupported media type",
			Detail: "Compressed request bodies are not accepted.", Outcome: OutcomeDeny, Reason: "compressed body"}
	}
	// Exactly one Content-Type: with two, crmgate would check the body as
	// one type while the CRM might parse it as the other (a JSON string
	// holding "&_METHOD=DELETE&" is also a form).
	if ct := r.Header.Values("Content-Type"); len(ct) != 1 || !isJSON(ct[0]) {
		return &Problem{Status: http.StatusUnsupportedMediaType, Kind: "unsupported-media-type", Title: "Unsupported media type",
			Detail: "Write requests must be JSON.", Outcome: OutcomeDeny, Reason: "non-json body"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, h.o.MaxRequestBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Problem{Status: http.StatusRequestEntityTooLarge, Kind: "body-too-large", Title: "Request body too large",
				Detail: "The request body exceeds the configured limit.", Outcome: OutcomeDeny, Reason: "body too large"}
		}
		return errBadRequest("The request body could not be read.", "body read", err)
	}
	x.body = body
	doc, err := decodeStrict(body)
	if err != nil {
		return errBadRequest("The request body is not valid JSON (duplicate keys are refused).", "bad json", err)
	}
	// Every body is checked by the profile, not only those that carry the
	// module or id: a body id that differs from the path's, or a body
	// method override, would make the CRM act on something else.
	m, err := h.o.Profile.ClassifyBody(x.match, body)
	switch {
	case errors.Is(err, profile.ErrMethodOverride):
		return errBadRequest("Method override is not accepted.", "method override", err)
	case err != nil:
		return errBadRequest("The request body does not name a module and record the CRM would accept.", "bad body", err)
	}
	x.match = m
	x.input.Resource.Module, x.input.Resource.ID, x.input.Resource.Action = m.Module, m.ID, m.Action
	if m.QueryBody {
		// A search body is a query, read by guardQuery, not fields written.
		x.clientQuery = body
		return nil
	}
	fields, err := writtenFields(doc, h.o.Profile.Shape.RecordPath, h.o.Profile.Shape.FieldsPath, x.match.Action)
	if err != nil {
		return errBadRequest("The request body is not shaped as this CRM expects.", "bad body shape", err)
	}
	x.input.Resource.Body = fields
	x.input.Resource.Fields = sortedKeys(fields)
	return nil
}

// identityOnly is true when every Content-Encoding value (a request may
// repeat the header or list codings) is identity.
func identityOnly(values []string) bool {
	for _, v := range values {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return false
			}
		}
	}
	return true
}

// decodeStrict parses JSON the way the write guard must see it: duplicate
// object names (which PHP's json_decode resolves to the last one) and
// invalid UTF-8 are errors, and escaped names are decoded, so "co\u0073t"
// is "cost".
func decodeStrict(body []byte) (map[string]any, error) {
	var doc map[string]any
	if err := json.Unmarshal(body, &doc, jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false)); err != nil {
		return nil, err
	}
	return doc, nil
}

// writtenFields finds the fields a write sets, where the profile says the
// record and its fields live. Relate bodies are not records; the whole body
// is passed on for the policy to inspect.
func writtenFields(doc map[string]any, recordPath, fieldsPath []string, action string) (map[string]any, error) {
	if action == policy.ActionRelate {
		return doc, nil
	}
	cur := any(doc)
	for _, seg := range append(slices.Clip(recordPath), fieldsPath...) {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, errors.New("record path does not lead to an object")
		}
		next, ok := obj[seg]
		if !ok {
			return map[string]any{}, nil
		}
		cur = next
	}
	obj, ok := cur.(map[string]any)
	if !ok {
		return nil, errors.New("fields are not an object")
	}
	return obj, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// guardWrite refuses writes that touch fields the subject may not change:
// read-only fields, hidden fields (what you may not see you may not alter)
// and, when an allow-list is defined, anything outside it. Names compare
// case-insensitively so "Cost" cannot slip past a rule about "cost".
func (h *Handler) guardWrite(x *exchange) error {
	if len(x.input.Resource.Fields) == 0 || x.match.Action == policy.ActionRelate {
		return nil
	}
	d := &x.decision
	var bad []string
	for _, f := range x.input.Resource.Fields {
		switch {
		case containsFold(d.ReadonlyFields, f), containsFold(d.HiddenFields, f):
			bad = append(bad, f)
		case d.VisibleDefined && !containsFold(d.VisibleFields, f) && !strings.EqualFold(f, h.o.Profile.IDField(x.match.Module)):
			bad = append(bad, f)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	h.o.Metrics.WriteGuardRejection(x.match.Module)
	return &Problem{Status: http.StatusForbidden, Kind: "readonly-fields", Title: "Fields not writable",
		Detail: "The request writes fields this user may not change.", Outcome: OutcomeDeny,
		Reason: "write to read-only fields", Fields: bad}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
