package proxy

import (
	"net/http"
	"strings"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy/profile"
	"github.com/crmgate/crmgate/proxy/redact"
)

// guardRequest closes ways round the decision that the CRM's own features
// open once a request is allowed: a list query that filters or sorts on a
// field the subject may not see (an oracle for its values), a create with
// a client-chosen id (an oracle for which ids exist), a related list of a
// parent the subject may not see, and a relate or unlink that changes a
// record the subject may not see. It runs after the module-level decision.
func (h *Handler) guardRequest(x *exchange) error {
	if x.match.Cursor {
		if err := h.checkCursor(x); err != nil {
			return err
		}
	}
	if x.match.Kind == profile.KindRelated {
		if err := h.decideRelated(x); err != nil {
			return err
		}
	}
	if err := h.guardQuery(x); err != nil {
		return err
	}
	if err := h.guardAssociations(x); err != nil {
		return err
	}
	if err := h.guardCreateID(x); err != nil {
		return err
	}
	if x.match.Kind == profile.KindRelated && x.match.ID != "" {
		// Answer 404 for the related records of a parent the subject may
		// not see, as for the parent itself; otherwise the CRM's "no such
		// parent" and "no related records" tell them apart.
		if err := h.checkVisible(x, x.match.Module, x.match.ID, policy.ActionRead); err != nil {
			return err
		}
	}
	if x.match.Action == policy.ActionRelate {
		return h.guardRelated(x)
	}
	return nil
}

func errHiddenFieldQuery(fields []string) *Problem {
	return &Problem{Status: http.StatusForbidden, Kind: "hidden-field-query", Title: "Query on hidden fields",
		Detail:  "The query filters, sorts or searches on fields this user may not see.",
		Outcome: OutcomeDeny, Reason: "query on hidden fields", Fields: fields}
}

// guardQuery refuses filters, sorts and full-text searches that involve a
// field the decision hides, masks or leaves out of the allow-list: which
// records come back (and in which order) would reveal its values. Asking
// for such a field (a sparse fieldset) is allowed: the response is
// redacted anyway. A full-text search is refused whenever anything is
// hidden or masked, because the CRM, not crmgate, chooses the fields it
// searches.
func (h *Handler) guardQuery(x *exchange) error {
	refs, err := h.o.Profile.ListQueryFields(x.r.URL.RawQuery, x.queryBody())
	if err != nil {
		return errBadRequest("The query names fields in a form crmgate cannot check.", "bad query", err)
	}
	d := x.fieldDecision()
	var bad []string
	for _, f := range refs {
		switch f.Use {
		case profile.UseFilter, profile.UseSort:
			if h.fieldHidden(d, x.responseModule(), f.Name) {
				bad = append(bad, f.Name)
			}
		case profile.UseSelect:
			// Masked fields may be selected (they come back masked);
			// hidden ones and those outside the allow-list may not.
			if f.Strict && h.fieldRemoved(d, x.responseModule(), f.Name) {
				bad = append(bad, f.Name)
			}
		case profile.UseText:
			if len(d.HiddenFields) > 0 || len(d.MaskedFields) > 0 || d.VisibleDefined {
				bad = append(bad, f.Param)
			}
		}
	}
	if len(bad) > 0 {
		return errHiddenFieldQuery(bad)
	}
	return nil
}

// fieldHidden reports whether any name a field reference can mean is
// hidden, masked or outside the allow-list, case-insensitively.
func (h *Handler) fieldHidden(d *policy.Decision, module, ref string) bool {
	for _, name := range profile.FieldRefParts(ref) {
		if containsFold(d.HiddenFields, name) {
			return true
		}
		for m := range d.MaskedFields {
			if strings.EqualFold(m, name) {
				return true
			}
		}
		if d.VisibleDefined && !containsFold(d.VisibleFields, name) && !strings.EqualFold(name, h.o.Profile.IDField(module)) {
			return true
		}
	}
	return false
}

// fieldRemoved reports whether the response would remove the field.
func (h *Handler) fieldRemoved(d *policy.Decision, module, ref string) bool {
	for _, name := range profile.FieldRefParts(ref) {
		if containsFold(d.HiddenFields, name) {
			return true
		}
		if d.VisibleDefined && !containsFold(d.VisibleFields, name) && !strings.EqualFold(name, h.o.Profile.IDField(module)) {
			return true
		}
	}
	return false
}

// queriedFields are the fields the request's query filters or sorts on.
func (h *Handler) queriedFields(x *exchange) []string {
	refs, err := h.o.Profile.ListQueryFields(x.r.URL.RawQuery, x.queryBody())
	if err != nil {
		return nil // refused in guardQuery before any response is read
	}
	var out []string
	for _, f := range refs {
		if f.Use == profile.UseFilter || f.Use == profile.UseSort {
			out = append(out, profile.FieldRefParts(f.Name)...)
		}
	}
	return out
}

// queryGuardRule drops list records for which the record rule hides a
// field the query filters or sorts on: whether such a record matched (or
// where it sorted) would reveal the hidden value. Records whose field is
// visible are unaffected, and without a filter nothing changes.
type queryGuardRule struct {
	inner  redact.RecordRule
	fields []string
}

func (q queryGuardRule) Fields() []string { return q.inner.Fields() }

func (q queryGuardRule) Check(rec map[string]any) (policy.RecordDecision, error) {
	d, err := q.inner.Check(rec)
	if err != nil || !d.Allow {
		return d, err
	}
	if len(intersectFold(q.fields, d.HiddenFields)) > 0 {
		d.Allow = false
	}
	return d, nil
}

// withQueryGuard wraps a list's record rule when the query filters or
// sorts.
func (h *Handler) withQueryGuard(x *exchange, rule redact.RecordRule) redact.RecordRule {
	fields := h.queriedFields(x)
	if len(fields) == 0 {
		return rule
	}
	return queryGuardRule{inner: rule, fields: fields}
}

// guardCreateID refuses a create that names the new record's id. The CRM
// answers "already exists" for an id in use, whoever may see that record,
// so any id could be probed; records are created with ids the CRM chooses.
func (h *Handler) guardCreateID(x *exchange) error {
	if x.match.Action != policy.ActionCreate || x.body == nil {
		return nil
	}
	doc, err := decodeStrict(x.body)
	if err != nil {
		return errBadRequest("The request body is not valid JSON (duplicate keys are refused).", "bad json", err)
	}
	shape := h.o.Profile.ShapeFor(x.match.Module)
	rec, err := writtenFields(doc, shape.RecordPath, nil, policy.ActionRead)
	if err != nil {
		return errBadRequest("The request body is not shaped as this CRM expects.", "bad body shape", err)
	}
	for _, obj := range []map[string]any{rec, x.input.Resource.Body} {
		for k := range obj {
			if strings.EqualFold(k, shape.IDField) {
				return errBadRequest("Records are created with ids the CRM chooses.", "client-chosen id", nil)
			}
		}
	}
	return nil
}

// guardRelated checks the records a relate or unlink attaches or
// detaches: linking another company's contact to your account changes that
// contact. The parent was checked by checkTarget. Each related record must
// be visible to the subject and pass the record rule for relate; a link
// whose records' module crmgate does not know is refused unchecked.
func (h *Handler) guardRelated(x *exchange) error {
	module, ids, err := h.relatedRecords(x)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := h.checkVisible(x, module, id, policy.ActionRelate); err != nil {
			return err
		}
	}
	return nil
}

// relatedRecords finds the module and ids of the records a relate names:
// SuiteCRM's {"data":{"type","id"}} (or an array of them) and unlink path
// .../relationships/{link}/{id}; EspoCRM's {"id"} or {"ids":[...]} on
// /{module}/{id}/{link}.
func (h *Handler) relatedRecords(x *exchange) (string, []string, error) {
	segs := strings.Split(strings.TrimPrefix(x.match.Path, "/"), "/")
	unknown := errForbidden("relate through a link crmgate cannot check")
	switch h.o.Profile.Name {
	case "suitecrm8":
		if x.r.Method == http.MethodDelete {
			// /Api/V8/module/{module}/{id}/relationships/{link}/{related}
			if len(segs) < 2 {
				return "", nil, unknown
			}
			mod, ok := h.o.Profile.LinkModule(segs[len(segs)-2])
			if !ok {
				return "", nil, unknown
			}
			return mod, []string{segs[len(segs)-1]}, nil
		}
		data := x.input.Resource.Body["data"]
		items, ok := data.([]any)
		if !ok {
			items = []any{data}
		}
		module := ""
		var ids []string
		for _, it := range items {
			obj, _ := it.(map[string]any)
			typ, _ := obj["type"].(string)
			id, _ := obj["id"].(string)
			if typ == "" || id == "" || (module != "" && !strings.EqualFold(module, typ)) {
				return "", nil, errBadRequest("A relationship names each record by type and id.", "bad relate body", nil)
			}
			module = typ
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			return "", nil, errBadRequest("A relationship names each record by type and id.", "bad relate body", nil)
		}
		return module, ids, nil
	case "espocrm":
		mod, ok := h.o.Profile.LinkModule(segs[len(segs)-1])
		if !ok {
			return "", nil, unknown
		}
		body := x.input.Resource.Body
		var ids []string
		if id, ok := body["id"].(string); ok {
			ids = append(ids, id)
		} else if _, present := body["id"]; present {
			return "", nil, errBadRequest("Related ids must be strings.", "bad relate body", nil)
		}
		if list, present := body["ids"]; present {
			arr, ok := list.([]any)
			if !ok {
				return "", nil, errBadRequest("Related ids must be strings.", "bad relate body", nil)
			}
			for _, v := range arr {
				s, ok := v.(string)
				if !ok {
					return "", nil, errBadRequest("Related ids must be strings.", "bad relate body", nil)
				}
				ids = append(ids, s)
			}
		}
		if len(ids) == 0 {
			return "", nil, errBadRequest("A relate names the related records by id.", "bad relate body", nil)
		}
		return mod, ids, nil
	}
	// A profile without relate knowledge: the policy saw the whole body
	// (resource.body) and allowed it.
	return "", nil, nil
}

// checkVisible fetches one record and applies the record rule: invisible
// is 404, visible but not allowed for action is 403.
func (h *Handler) checkVisible(x *exchange, module, id, action string) error {
	// The body may spell the module in any case; the policy and the
	// CRM get the profile's spelling, as for the path's module.
	path, err := h.o.Profile.ReadPath(module, id)
	if err != nil {
		return errBadRequest("The related record is not one crmgate can check.", "bad related record", err)
	}
	m, err := h.o.Profile.Classify(http.MethodGet, path, nil)
	if err != nil {
		return errBadRequest("The related record is not one crmgate can check.", "bad related record", err)
	}
	module = m.Module
	saved := x.match
	x.match.Module, x.match.ID = module, id
	rec, ferr := h.fetchRecord(x)
	x.match = saved
	if ferr != nil {
		return ferr
	}
	in := x.input
	in.Resource = policy.Resource{CRM: h.o.Profile.Name, Module: module, ID: id, Action: policy.ActionRead}
	in.Record = rec
	seen, err := h.o.Policy.Record(x.r.Context(), &in)
	if err != nil {
		return errPolicy(err)
	}
	if !seen.Allow {
		return errRecordNotFound()
	}
	if action == policy.ActionRead {
		return nil
	}
	in.Resource.Action = action
	act, err := h.o.Policy.Record(x.r.Context(), &in)
	if err != nil {
		return errPolicy(err)
	}
	if !act.Allow {
		return errForbidden("record rule denied " + action + " of a related record")
	}
	return nil
}
