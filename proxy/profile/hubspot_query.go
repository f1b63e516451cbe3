package profile

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/crmgate/crmgate/policy/cond"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// HubSpot's search API, read strictly and written back canonically.
//
// A search body is {"filterGroups":[{"filters":[...]}],"sorts":[...],
// "query":"...","properties":[...],"limit":N,"after":"..."}: the groups
// are ORed, the filters of one group ANDed (developers.hubspot.com "CRM
// API > Search"). So a record rule added as one more group would widen
// the search instead of narrowing it: the rule is distributed into every
// group, (G1 or G2) and (R1 or R2) = G1R1 or G1R2 or G2R1 or G2R2, within
// HubSpot's limits of 5 groups, 6 filters a group and 18 filters in all.
// Past them the rule is not pushed and the proxy filters after.
//
// The body is decoded with unknown members, duplicate names (which
// HubSpot's JSON reader resolves one way and a first-wins reader another)
// and invalid UTF-8 refused, and only the members read here are written
// back, so nothing reaches HubSpot that crmgate did not read.

// HubSpot's search limits.
const (
	hsMaxGroups         = 5
	hsMaxGroupFilters   = 6
	hsMaxFilters        = 18
	hsMaxLimit          = 200
	hsMaxBatchInputs    = 100
	hsMaxPropertyParams = 200
)

// hsOperators are the search operators and what each takes: a value, a
// value and a highValue, a values list, or nothing.
var hsOperators = map[string]string{
	"EQ": "value", "NEQ": "value", "LT": "value", "LTE": "value", "GT": "value", "GTE": "value",
	"CONTAINS_TOKEN": "value", "NOT_CONTAINS_TOKEN": "value",
	"BETWEEN": "range", "IN": "values", "NOT_IN": "values",
	"HAS_PROPERTY": "none", "NOT_HAS_PROPERTY": "none",
}

type hsFilter struct {
	PropertyName string           `json:"propertyName"`
	Operator     string           `json:"operator"`
	Value        jsontext.Value   `json:"value,omitzero"`
	HighValue    jsontext.Value   `json:"highValue,omitzero"`
	Values       []jsontext.Value `json:"values,omitzero"`
}

type hsGroup struct {
	Filters []hsFilter `json:"filters"`
}

type hsSort struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction,omitzero"`
}

// hsSearch is a search body. Pointers tell an absent member from an empty
// one, so the body written back says what the client's said.
type hsSearch struct {
	FilterGroups []hsGroup      `json:"filterGroups,omitzero"`
	Sorts        []hsSort       `json:"sorts,omitzero"`
	Query        *string        `json:"query,omitzero"`
	Properties   []string       `json:"properties,omitzero"`
	Limit        *int           `json:"limit,omitzero"`
	After        jsontext.Value `json:"after,omitzero"`
}

// hsBatchRead is a batch-read body. propertiesWithHistory and idProperty
// are not members crmgate reads, so a body carrying them is refused (see
// hubspotQuery.QueryFields).
type hsBatchRead struct {
	Properties []string `json:"properties"`
	Inputs     []struct {
		ID string `json:"id"`
	} `json:"inputs"`
}

var hsDecode = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// hubspotQuery is HubSpot's Dialect: list parameters in the query string
// (properties) and searches in a JSON body.
type hubspotQuery struct{}

// decodeBody reads a search or batch-read body: a body with "inputs" is a
// batch read, anything else a search.
func decodeHubSpotBody(body []byte) (*hsSearch, *hsBatchRead, error) {
	var probe map[string]jsontext.Value
	if err := json.Unmarshal(body, &probe, hsDecode); err != nil {
		return nil, nil, fmt.Errorf("hubspot body: %w: %w", ErrBadQuery, err)
	}
	if _, ok := probe["inputs"]; ok {
		var b hsBatchRead
		if err := json.Unmarshal(body, &b, hsDecode); err != nil {
			return nil, nil, fmt.Errorf("hubspot batch read: %w: %w", ErrBadQuery, err)
		}
		if len(b.Inputs) == 0 || len(b.Inputs) > hsMaxBatchInputs {
			return nil, nil, fmt.Errorf("hubspot batch read: %d inputs: %w", len(b.Inputs), ErrBadQuery)
		}
		for _, in := range b.Inputs {
			if !validID(in.ID) {
				return nil, nil, fmt.Errorf("hubspot batch read: input id %q: %w", truncate(in.ID), ErrBadQuery)
			}
		}
		return nil, &b, nil
	}
	var s hsSearch
	if err := json.Unmarshal(body, &s, hsDecode); err != nil {
		return nil, nil, fmt.Errorf("hubspot search: %w: %w", ErrBadQuery, err)
	}
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	return &s, nil, nil
}

func scalar(v jsontext.Value) bool {
	switch v.Kind() {
	case '"', '0', 't', 'f':
		return true
	}
	return false
}

// check refuses what HubSpot would read differently from crmgate or what
// crmgate cannot write back as read.
func (s *hsSearch) check() error {
	if len(s.FilterGroups) > hsMaxGroups {
		return fmt.Errorf("hubspot search: %d filterGroups: %w", len(s.FilterGroups), ErrBadQuery)
	}
	total := 0
	for _, g := range s.FilterGroups {
		if len(g.Filters) > hsMaxGroupFilters {
			return fmt.Errorf("hubspot search: %d filters in a group: %w", len(g.Filters), ErrBadQuery)
		}
		total += len(g.Filters)
		for _, f := range g.Filters {
			if err := f.check(); err != nil {
				return err
			}
		}
	}
	if total > hsMaxFilters {
		return fmt.Errorf("hubspot search: %d filters: %w", total, ErrBadQuery)
	}
	for _, so := range s.Sorts {
		if !hsProperty(so.PropertyName) || (so.Direction != "" && so.Direction != "ASCENDING" && so.Direction != "DESCENDING") {
			return fmt.Errorf("hubspot search: sort %q %q: %w", truncate(so.PropertyName), truncate(so.Direction), ErrBadQuery)
		}
	}
	if s.Limit != nil && (*s.Limit < 0 || *s.Limit > hsMaxLimit) {
		// HubSpot refuses more than 200; so does crmgate, before asking.
		return fmt.Errorf("hubspot search: limit %d: %w", *s.Limit, ErrBadQuery)
	}
	if len(s.After) > 0 && s.After.Kind() != '"' && s.After.Kind() != '0' {
		return fmt.Errorf("hubspot search: after is not a string or number: %w", ErrBadQuery)
	}
	for _, p := range s.Properties {
		if !hsProperty(p) {
			return fmt.Errorf("hubspot search: property %q: %w", truncate(p), ErrBadQuery)
		}
	}
	return nil
}

func (f *hsFilter) check() error {
	want, ok := hsOperators[f.Operator]
	if !ok || !hsProperty(f.PropertyName) {
		return fmt.Errorf("hubspot search: filter %q %q: %w", truncate(f.PropertyName), truncate(f.Operator), ErrBadQuery)
	}
	hasValue, hasHigh, hasValues := len(f.Value) > 0, len(f.HighValue) > 0, f.Values != nil
	shapeOK := false
	switch want {
	case "value":
		shapeOK = hasValue && !hasHigh && !hasValues && scalar(f.Value)
	case "range":
		shapeOK = hasValue && hasHigh && !hasValues && scalar(f.Value) && scalar(f.HighValue)
	case "values":
		shapeOK = !hasValue && !hasHigh && len(f.Values) > 0
		for _, v := range f.Values {
			shapeOK = shapeOK && scalar(v)
		}
	case "none":
		shapeOK = !hasValue && !hasHigh && !hasValues
	}
	if !shapeOK {
		return fmt.Errorf("hubspot search: filter on %q: operator %s with the wrong operands: %w", truncate(f.PropertyName), f.Operator, ErrBadQuery)
	}
	return nil
}

// hsProperty accepts HubSpot property names: lower-case identifiers as
// the API creates them, no dots (HubSpot has no link.field references).
func hsProperty(s string) bool { return validFieldRef(s) && !strings.Contains(s, ".") }

// hsRefused are list parameters that return data the field and record
// rules would not see: propertiesWithHistory lists every past value of a
// property (an owner's earlier records, a phone number before masking
// applied to its current value only); idProperty looks records up by
// another property (an e-mail address), which is an oracle for that
// property. They are refused in any case spelling.
var hsRefused = []string{"propertiesWithHistory", "idProperty"}

// Associations reads the associations parameter of a read or list: the
// object types whose associated ids each record is to carry. The proxy
// judges each type's policy (Associator); a spelling HubSpot might read
// but crmgate would not ("Associations") is refused by QueryFields.
func (hubspotQuery) Associations(rawQuery string) ([]string, error) {
	var out []string
	for raw := rawQuery; raw != ""; {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, fmt.Errorf("associations: parameter name %q: %w", truncate(rawName), ErrBadQuery)
		}
		if strings.TrimSpace(name) != "associations" {
			continue
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("associations: value: %w", ErrBadQuery)
		}
		for _, t := range strings.Split(value, ",") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			m, ok := hubspotLinks()[strings.ToLower(t)]
			if !ok {
				return nil, fmt.Errorf("associations: object type %q: %w", truncate(t), ErrBadQuery)
			}
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func (hubspotQuery) QueryFields(rawQuery string, body []byte) ([]QueryField, error) {
	var out []QueryField
	n := 0
	for raw := rawQuery; raw != ""; {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if n++; n > hsMaxPropertyParams {
			return nil, fmt.Errorf("query fields: more than %d parameters: %w", hsMaxPropertyParams, ErrBadQuery)
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, fmt.Errorf("query fields: parameter name %q: %w", truncate(rawName), ErrBadQuery)
		}
		name = strings.TrimSpace(name)
		for _, r := range hsRefused {
			if strings.EqualFold(name, r) {
				return nil, fmt.Errorf("query fields: parameter %q is refused: %w", truncate(name), ErrBadQuery)
			}
		}
		if strings.EqualFold(name, "associations") && name != "associations" {
			return nil, fmt.Errorf("query fields: parameter %q is not one HubSpot reads: %w", truncate(name), ErrBadQuery)
		}
		if !strings.EqualFold(name, "properties") {
			continue
		}
		if name != "properties" {
			return nil, fmt.Errorf("query fields: parameter %q is not one HubSpot reads: %w", truncate(name), ErrBadQuery)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("query fields: parameter %q: value: %w", name, ErrBadQuery)
		}
		for _, p := range strings.Split(value, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if !hsProperty(p) {
				return nil, fmt.Errorf("query fields: property %q: %w", truncate(p), ErrBadQuery)
			}
			out = append(out, QueryField{Name: p, Use: UseSelect, Param: "properties"})
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return out, nil
	}
	s, b, err := decodeHubSpotBody(body)
	if err != nil {
		return nil, fmt.Errorf("query fields: %w", err)
	}
	if b != nil {
		for _, p := range b.Properties {
			if !hsProperty(p) {
				return nil, fmt.Errorf("query fields: property %q: %w", truncate(p), ErrBadQuery)
			}
			out = append(out, QueryField{Name: p, Use: UseSelect, Param: "properties"})
		}
		return out, nil
	}
	for _, g := range s.FilterGroups {
		for _, f := range g.Filters {
			out = append(out, QueryField{Name: f.PropertyName, Use: UseFilter, Param: "filterGroups"})
		}
	}
	for _, so := range s.Sorts {
		out = append(out, QueryField{Name: so.PropertyName, Use: UseSort, Param: "sorts"})
	}
	for _, p := range s.Properties {
		out = append(out, QueryField{Name: p, Use: UseSelect, Param: "properties"})
	}
	if s.Query != nil && strings.TrimSpace(*s.Query) != "" {
		// HubSpot searches the object's default searchable properties
		// (names, e-mail, phone, domain...), which crmgate does not choose:
		// a text search is an oracle for any of them.
		out = append(out, QueryField{Use: UseText, Param: "query"})
	}
	return out, nil
}

// hsRuleProperty is the property a record-rule field means in a search:
// the record's id is hs_object_id.
func hsRuleProperty(field string) string {
	if field == "id" {
		return "hs_object_id"
	}
	return field
}

// hsValue is a rule value HubSpot compares exactly: a decimal id. HubSpot
// compares strings without regard to case, which would let records the
// rule refuses match; owner, company and record ids are digits.
func hsValue(v any) (jsontext.Value, bool) {
	s, ok := v.(string)
	if !ok || s == "" || len(s) > 20 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, false
		}
	}
	b, err := json.Marshal(s)
	return b, err == nil
}

// hsDNF writes c as alternatives of filter conjunctions, at most
// hsMaxGroups of them; ok is false when c cannot be said exactly.
func hsDNF(c cond.Cond) ([][]hsFilter, bool) {
	switch c.Op {
	case cond.True:
		return [][]hsFilter{{}}, true
	case cond.Eq, cond.In:
		if !hsProperty(c.Field) || len(c.Values) == 0 {
			return nil, false
		}
		var vals []jsontext.Value
		for _, x := range c.Values {
			v, ok := hsValue(x)
			if !ok {
				return nil, false
			}
			vals = append(vals, v)
		}
		f := hsFilter{PropertyName: hsRuleProperty(c.Field)}
		if len(vals) == 1 {
			f.Operator, f.Value = "EQ", vals[0]
		} else {
			f.Operator, f.Values = "IN", vals
		}
		return [][]hsFilter{{f}}, true
	case cond.Or:
		var out [][]hsFilter
		for _, a := range c.Args {
			d, ok := hsDNF(a)
			if !ok || len(out)+len(d) > hsMaxGroups {
				return nil, false
			}
			out = append(out, d...)
		}
		return out, len(out) > 0
	case cond.And:
		out := [][]hsFilter{{}}
		for _, a := range c.Args {
			d, ok := hsDNF(a)
			if !ok {
				return nil, false
			}
			out = crossGroups(out, d)
			if out == nil {
				return nil, false
			}
		}
		return out, true
	}
	// False has no HubSpot spelling (no filterGroups means all records).
	return nil, false
}

// crossGroups is (a1 or a2...) and (b1 or b2...) as groups; nil past
// HubSpot's limits.
func crossGroups(a, b [][]hsFilter) [][]hsFilter {
	if len(a)*len(b) > hsMaxGroups {
		return nil
	}
	out := make([][]hsFilter, 0, len(a)*len(b))
	total := 0
	for _, x := range a {
		for _, y := range b {
			g := append(slices.Clip(x), y...)
			if len(g) > hsMaxGroupFilters {
				return nil
			}
			total += len(g)
			out = append(out, g)
		}
	}
	if total > hsMaxFilters {
		return nil
	}
	return out
}

// Push distributes c into every filter group of a search. A plain list
// (GET) has no filter in HubSpot's API, so nothing is pushed into it.
func (hubspotQuery) Push(m Match, rawQuery string, body []byte, c cond.Cond) (string, []byte, bool, error) {
	if !m.QueryBody || m.Action != "list" {
		return rawQuery, body, false, nil
	}
	s, b, err := decodeHubSpotBody(body)
	if err != nil {
		return "", nil, false, fmt.Errorf("push: %w", err)
	}
	if b != nil {
		return "", nil, false, fmt.Errorf("push: a batch read is not a search: %w", ErrBadQuery)
	}
	rule, ok := hsDNF(c)
	if !ok {
		return rawQuery, body, false, nil
	}
	client := make([][]hsFilter, 0, len(s.FilterGroups))
	for _, g := range s.FilterGroups {
		client = append(client, g.Filters)
	}
	if len(client) == 0 {
		client = [][]hsFilter{{}}
	}
	groups := crossGroups(client, rule)
	if groups == nil {
		return rawQuery, body, false, nil
	}
	s.FilterGroups = s.FilterGroups[:0]
	for _, g := range groups {
		if len(g) == 0 {
			// A True rule and no client filter: no group at all, which
			// HubSpot reads as every record (an empty group it refuses).
			continue
		}
		s.FilterGroups = append(s.FilterGroups, hsGroup{Filters: g})
	}
	out, err := json.Marshal(s)
	if err != nil {
		return "", nil, false, fmt.Errorf("push: write search: %w", err)
	}
	return rawQuery, out, true, nil
}

// hubspotDefaults are the properties HubSpot returns when a request names
// none (developers.hubspot.com, each object's "Retrieve" section): asking
// for the record rule's fields must not take these away from the client.
var hubspotDefaults = map[string][]string{
	"":           {"createdate", "hs_object_id"},
	"contacts":   {"email", "firstname", "lastname", "lastmodifieddate"},
	"companies":  {"domain", "name", "hs_lastmodifieddate"},
	"deals":      {"amount", "closedate", "dealname", "dealstage", "pipeline", "hs_lastmodifieddate"},
	"tickets":    {"content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority", "subject", "hs_lastmodifieddate"},
	"products":   {"description", "name", "price", "hs_lastmodifieddate"},
	"line_items": {"amount", "name", "price", "quantity", "hs_lastmodifieddate"},
	"quotes":     {"hs_expiration_date", "hs_title", "hs_lastmodifieddate"},
	"calls":      {"hs_call_body", "hs_call_direction", "hs_call_title", "hs_timestamp", "hs_lastmodifieddate"},
	"meetings":   {"hs_meeting_title", "hs_timestamp", "hs_lastmodifieddate"},
	"tasks":      {"hs_task_subject", "hs_task_status", "hs_timestamp", "hs_lastmodifieddate"},
	"leads":      {"hs_lead_name", "hs_lead_label", "hs_lastmodifieddate"},
}

// HubSpotDefaultProperties are the properties HubSpot answers for a record
// of objectType when the request names none.
func HubSpotDefaultProperties(objectType string) []string {
	return append(slices.Clone(hubspotDefaults[""]), hubspotDefaults[objectType]...)
}

// WithFields asks HubSpot for the rule's fields as well as the client's
// (or, when the client named none, HubSpot's defaults).
func (hubspotQuery) WithFields(m Match, rawQuery string, body []byte, fields []string) (string, []byte, error) {
	var extra []string
	for _, f := range fields {
		if f == "id" || !hsProperty(f) {
			continue // the id is the record's, not a property
		}
		extra = append(extra, f)
	}
	if m.QueryBody {
		s, b, err := decodeHubSpotBody(body)
		if err != nil {
			return "", nil, fmt.Errorf("with fields: %w", err)
		}
		var out []byte
		if b != nil {
			if len(b.Properties) == 0 {
				b.Properties = HubSpotDefaultProperties(m.Module)
			}
			b.Properties = mergeNames(b.Properties, extra)
			out, err = json.Marshal(b)
		} else {
			if len(s.Properties) == 0 {
				s.Properties = HubSpotDefaultProperties(m.Module)
			}
			s.Properties = mergeNames(s.Properties, extra)
			out, err = json.Marshal(s)
		}
		if err != nil {
			return "", nil, fmt.Errorf("with fields: %w", err)
		}
		return rawQuery, out, nil
	}
	if len(extra) == 0 {
		return rawQuery, body, nil
	}
	named := false
	for raw := rawQuery; raw != "" && !named; {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		name, _, _ := strings.Cut(pair, "=")
		named = name == "properties"
	}
	if !named {
		extra = mergeNames(HubSpotDefaultProperties(m.Module), extra)
	}
	q := "properties=" + url.QueryEscape(strings.Join(extra, ","))
	if rawQuery != "" {
		q = rawQuery + "&" + q
	}
	return q, body, nil
}

func mergeNames(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
