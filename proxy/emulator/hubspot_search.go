package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// HubSpot's search: POST /crm/v3/objects/{type}/search. Filter groups are
// ORed, a group's filters ANDed; at most 5 groups, 6 filters a group and
// 18 in all; limit at most 200; string comparisons ignore case; "query"
// matches the object's default searchable properties by token prefix.

type hubFilter struct {
	PropertyName string `json:"propertyName"`
	Operator     string `json:"operator"`
	Value        any    `json:"value"`
	HighValue    any    `json:"highValue"`
	Values       []any  `json:"values"`
}

type hubSearch struct {
	FilterGroups []struct {
		Filters []hubFilter `json:"filters"`
	} `json:"filterGroups"`
	Sorts []struct {
		PropertyName string `json:"propertyName"`
		Direction    string `json:"direction"`
	} `json:"sorts"`
	Query      string   `json:"query"`
	Properties []string `json:"properties"`
	Limit      *int     `json:"limit"`
	After      any      `json:"after"`
}

func (h *hub) search(w http.ResponseWriter, r *http.Request) {
	o := h.object(w, r)
	if o == nil {
		return
	}
	body, err := readBody(r)
	var s hubSearch
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		err = dec.Decode(&s)
	}
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1")
		return
	}
	if msg := h.checkSearch(o, &s); msg != "" {
		h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", msg)
		return
	}
	limit := 10
	if s.Limit != nil {
		limit = *s.Limit
	}
	after := 0
	if s.After != nil {
		a := fmt.Sprint(s.After)
		if after, err = strconv.Atoi(a); err != nil || after < 0 {
			h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid after: "+a)
			return
		}
	}
	var matched []map[string]any // HubSpot properties, with the record
	for _, rec := range h.ds.snapshot(o.suite) {
		props := h.props(o, rec)
		if h.matchSearch(o, &s, props) {
			props["\x00rec"] = rec
			matched = append(matched, props)
		}
	}
	for i := len(s.Sorts) - 1; i >= 0; i-- {
		so := s.Sorts[i]
		desc := so.Direction == "DESCENDING"
		sort.SliceStable(matched, func(a, b int) bool {
			c := compareValues(matched[a][so.PropertyName], matched[b][so.PropertyName])
			if desc {
				return c > 0
			}
			return c < 0
		})
	}
	start := min(after, len(matched))
	end := min(start+limit, len(matched))
	results := make([]any, 0, end-start)
	for _, m := range matched[start:end] {
		results = append(results, h.render(o, m["\x00rec"].(map[string]any), s.Properties, nil))
	}
	out := map[string]any{"total": len(matched), "results": results}
	if end < len(matched) {
		out["paging"] = map[string]any{"next": map[string]any{"after": strconv.Itoa(end)}}
	}
	h.write(w, r, http.StatusOK, out)
}

func (h *hub) checkSearch(o *hubObject, s *hubSearch) string {
	if len(s.FilterGroups) > 5 {
		return "Too many filter groups: the limit is 5"
	}
	total := 0
	for _, g := range s.FilterGroups {
		if len(g.Filters) > 6 {
			return "Too many filters in a filter group: the limit is 6"
		}
		total += len(g.Filters)
		for _, f := range g.Filters {
			if !o.known(f.PropertyName) {
				return fmt.Sprintf("There was a problem with the request: property %q does not exist", f.PropertyName)
			}
			if _, ok := hubOps[f.Operator]; !ok {
				return fmt.Sprintf("operator %q is not valid", f.Operator)
			}
		}
	}
	if total > 18 {
		return "Too many filters: the limit is 18"
	}
	if s.Limit != nil && (*s.Limit < 0 || *s.Limit > 200) {
		return "limit must be between 0 and 200"
	}
	for _, so := range s.Sorts {
		if !o.known(so.PropertyName) {
			return fmt.Sprintf("property %q does not exist", so.PropertyName)
		}
	}
	return ""
}

func (h *hub) matchSearch(o *hubObject, s *hubSearch, props map[string]any) bool {
	if q := strings.TrimSpace(s.Query); q != "" {
		hit := false
		for _, p := range o.searchable {
			if v, ok := props[p].(string); ok && tokenPrefix(v, q) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	if len(s.FilterGroups) == 0 {
		return true
	}
	for _, g := range s.FilterGroups {
		all := true
		for _, f := range g.Filters {
			if !hubOps[f.Operator](f, props[f.PropertyName]) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// tokenPrefix: some word of v starts with q, case-insensitively (a
// query for "ali" finds "Alice Sales").
func tokenPrefix(v, q string) bool {
	q = strings.ToLower(q)
	for _, t := range strings.FieldsFunc(strings.ToLower(v), func(r rune) bool {
		return r == ' ' || r == '@' || r == '.' || r == '-' || r == '+'
	}) {
		if strings.HasPrefix(t, q) {
			return true
		}
	}
	return strings.Contains(strings.ToLower(v), q) && strings.ContainsAny(q, "@.+ ")
}

// hubCompare compares a property value with a filter value: numerically
// when both are numbers, as case-folded text otherwise.
func hubCompare(prop, val any) (int, bool) {
	if prop == nil {
		return 0, false
	}
	ps := valueString(prop)
	vs := fmt.Sprint(val)
	if n, ok := val.(json.Number); ok {
		vs = n.String()
	}
	pf, perr := strconv.ParseFloat(ps, 64)
	vf, verr := strconv.ParseFloat(vs, 64)
	if perr == nil && verr == nil {
		switch {
		case pf < vf:
			return -1, true
		case pf > vf:
			return 1, true
		}
		return 0, true
	}
	return strings.Compare(strings.ToLower(ps), strings.ToLower(vs)), true
}

func cmpOp(ok func(int) bool) func(hubFilter, any) bool {
	return func(f hubFilter, v any) bool {
		c, present := hubCompare(v, f.Value)
		return present && ok(c)
	}
}

var hubOps = map[string]func(hubFilter, any) bool{
	"EQ": cmpOp(func(c int) bool { return c == 0 }),
	"NEQ": func(f hubFilter, v any) bool {
		c, present := hubCompare(v, f.Value)
		return !present || c != 0
	},
	"LT":  cmpOp(func(c int) bool { return c < 0 }),
	"LTE": cmpOp(func(c int) bool { return c <= 0 }),
	"GT":  cmpOp(func(c int) bool { return c > 0 }),
	"GTE": cmpOp(func(c int) bool { return c >= 0 }),
	"BETWEEN": func(f hubFilter, v any) bool {
		lo, ok1 := hubCompare(v, f.Value)
		hi, ok2 := hubCompare(v, f.HighValue)
		return ok1 && ok2 && lo >= 0 && hi <= 0
	},
	"IN": func(f hubFilter, v any) bool {
		for _, x := range f.Values {
			if c, ok := hubCompare(v, x); ok && c == 0 {
				return true
			}
		}
		return false
	},
	"NOT_IN": func(f hubFilter, v any) bool {
		for _, x := range f.Values {
			if c, ok := hubCompare(v, x); ok && c == 0 {
				return false
			}
		}
		return true
	},
	"HAS_PROPERTY":     func(_ hubFilter, v any) bool { return v != nil && valueString(v) != "" },
	"NOT_HAS_PROPERTY": func(_ hubFilter, v any) bool { return v == nil || valueString(v) == "" },
	"CONTAINS_TOKEN": func(f hubFilter, v any) bool {
		s, ok := v.(string)
		return ok && tokenPrefix(s, strings.Trim(fmt.Sprint(f.Value), "*"))
	},
	"NOT_CONTAINS_TOKEN": func(f hubFilter, v any) bool {
		s, ok := v.(string)
		return !ok || !tokenPrefix(s, strings.Trim(fmt.Sprint(f.Value), "*"))
	},
}
