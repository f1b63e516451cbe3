package profile

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/crmgate/crmgate/policy/cond"
)

// odataQuery is the Dialect of the Dataverse Web API (profile dynamics).
//
// A Dataverse list query is a handful of OData system query options. crmgate
// reads all of them strictly and forwards its own canonical serialisation,
// so the CRM never sees a spelling crmgate read differently:
//
//   - accepted, on lists and related lists: $select, $filter, $orderby,
//     $top, $count and $skiptoken (the opaque paging cookie of an
//     @odata.nextLink); on a single record: $select; on writes: nothing;
//   - refused (ErrBadQuery): any other parameter, among them $expand (an
//     expanded entity would be judged by the parent's rules; related lists
//     are read through their own route instead), $apply (aggregates over
//     any field), $search, $skip, fetchXml, savedQuery and userQuery
//     (queries crmgate cannot read), parameter aliases (@p1), a $-less or
//     case-variant spelling ($Filter, filter: OData 4.01 lets a service
//     accept them) and any option given twice;
//   - $select=* is refused: it names every field, hidden ones included.
type odataQuery struct{}

// odataOptions are the accepted system query options per route kind.
var odataOptions = map[Kind]map[string]bool{
	KindList:    {"$select": true, "$filter": true, "$orderby": true, "$top": true, "$count": true, "$skiptoken": true},
	KindRelated: {"$select": true, "$filter": true, "$orderby": true, "$top": true, "$count": true, "$skiptoken": true},
	KindRecord:  {"$select": true},
}

// maxTop is Dataverse's largest page (its default and maximum page size).
const maxTop = 5000

// odataParams is a query as crmgate read it.
type odataParams struct {
	selects   []string
	filter    *ODataExpr
	orderby   []string // "field" or "field desc"
	top       string
	count     string
	skiptoken string
	has       map[string]bool
}

func parseODataParams(m Match, rawQuery string) (*odataParams, error) {
	q := &odataParams{has: map[string]bool{}}
	allowed := odataOptions[m.Kind]
	if m.Action != "read" && m.Action != "list" {
		allowed = nil
	}
	params, err := splitQuery(rawQuery, "odata")
	if err != nil {
		return nil, err
	}
	for _, qp := range params {
		name, value, hasValue := qp.name, qp.value, qp.hasValue
		if !allowed[name] {
			return nil, fmt.Errorf("odata: query option %q is not accepted on this route: %w", truncate(name), ErrBadQuery)
		}
		if q.has[name] {
			return nil, fmt.Errorf("odata: %s given twice: %w", name, ErrBadQuery)
		}
		if !hasValue {
			return nil, fmt.Errorf("odata: %s without a value: %w", name, ErrBadQuery)
		}
		q.has[name] = true
		switch name {
		case "$select":
			for _, f := range strings.Split(value, ",") {
				f = strings.TrimSpace(f)
				if !odataIdent(f) {
					return nil, fmt.Errorf("odata: $select item %q is not a property name: %w", truncate(f), ErrBadQuery)
				}
				q.selects = append(q.selects, f)
			}
		case "$filter":
			if q.filter, err = ParseODataFilter(value); err != nil {
				return nil, fmt.Errorf("odata: %w", err)
			}
		case "$orderby":
			for _, item := range strings.Split(value, ",") {
				fields := strings.Fields(item)
				if len(fields) == 0 || len(fields) > 2 || !odataIdent(fields[0]) ||
					len(fields) == 2 && fields[1] != "asc" && fields[1] != "desc" {
					return nil, fmt.Errorf("odata: $orderby item %q is not \"property [asc|desc]\": %w", truncate(item), ErrBadQuery)
				}
				q.orderby = append(q.orderby, strings.Join(fields, " "))
			}
		case "$top":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > maxTop || strconv.Itoa(n) != value {
				return nil, fmt.Errorf("odata: $top=%q is not 0..%d: %w", truncate(value), maxTop, ErrBadQuery)
			}
			q.top = value
		case "$count":
			if value != "true" && value != "false" {
				return nil, fmt.Errorf("odata: $count=%q is not true or false: %w", truncate(value), ErrBadQuery)
			}
			q.count = value
		case "$skiptoken":
			if value == "" || len(value) > maxFilterLen {
				return nil, fmt.Errorf("odata: $skiptoken empty or too long: %w", ErrBadQuery)
			}
			q.skiptoken = value
		}
	}
	return q, nil
}

// odataIdent accepts a Dataverse property (logical or lookup) name.
func odataIdent(s string) bool {
	if s == "" || len(s) > 128 || odataReserved[s] || !(s[0] == '_' || asciiLetter(s[0])) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !identByte(s[i]) {
			return false
		}
	}
	return true
}

// odataEscape escapes a query value for Dataverse: spaces as %20, never
// "+", which some readers take literally.
func odataEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// encode writes the query in canonical order, with pushed ANDed before
// the client's filter.
func (q *odataParams) encode(pushed *ODataExpr) string {
	var parts []string
	add := func(name, value string) { parts = append(parts, name+"="+odataEscape(value)) }
	if len(q.selects) > 0 {
		add("$select", strings.Join(q.selects, ","))
	}
	filter := q.filter
	switch {
	case pushed == nil:
	case filter == nil:
		filter = pushed
	case filter.String() == pushed.String(),
		filter.Op == ODataAnd && filter.Args[0].String() == pushed.String():
		// Already (rule) and (client): an @odata.nextLink carries the
		// $filter crmgate sent for the first page. ANDing the rule again
		// changes nothing but would grow the filter page by page until
		// it passes maxFilterLen and the list breaks off.
	default:
		filter = &ODataExpr{Op: ODataAnd, Args: []*ODataExpr{pushed, q.filter}}
	}
	if filter != nil {
		add("$filter", filter.String())
	}
	if len(q.orderby) > 0 {
		add("$orderby", strings.Join(q.orderby, ","))
	}
	if q.top != "" {
		add("$top", q.top)
	}
	if q.count != "" {
		add("$count", q.count)
	}
	if q.skiptoken != "" {
		add("$skiptoken", q.skiptoken)
	}
	return strings.Join(parts, "&")
}

func (odataQuery) QueryFields(rawQuery string, _ []byte) ([]QueryField, error) {
	// Every option may name fields; the route kind only narrows which are
	// accepted, which Canonical checks.
	q, err := parseODataParams(Match{Kind: KindList, Action: "list"}, rawQuery)
	if err != nil {
		return nil, fmt.Errorf("query fields: %w", err)
	}
	var out []QueryField
	for _, f := range q.selects {
		out = append(out, QueryField{Name: f, Use: UseSelect, Param: "$select", Strict: true})
	}
	if q.filter != nil {
		for _, f := range q.filter.Fields(nil) {
			out = append(out, QueryField{Name: f, Use: UseFilter, Param: "$filter"})
		}
	}
	for _, o := range q.orderby {
		f, _, _ := strings.Cut(o, " ")
		out = append(out, QueryField{Name: f, Use: UseSort, Param: "$orderby"})
	}
	return out, nil
}

// Canonical reads the request's query for route m and returns what is
// forwarded instead, plus the Prefer header crmgate sends: only
// odata.maxpagesize passes. odata.include-annotations would add members
// such as standardcost@OData.Community.Display.V1.FormattedValue, a hidden
// field's value under another name; return=representation and
// odata.track-changes change the answer's shape.
func (odataQuery) Canonical(m Match, rawQuery string, h http.Header) (string, http.Header, error) {
	q, err := parseODataParams(m, rawQuery)
	if err != nil {
		return "", nil, err
	}
	var extra http.Header
	if size, ok, err := maxPageSize(h.Values("Prefer")); err != nil {
		return "", nil, err
	} else if ok && (m.Kind == KindList || m.Kind == KindRelated) {
		extra = http.Header{"Prefer": {"odata.maxpagesize=" + size}}
	}
	return q.encode(nil), extra, nil
}

func (d odataQuery) WithFields(m Match, query string, body []byte, fields []string) (string, []byte, error) {
	q, err := d.withFields(m, query, fields)
	return q, body, err
}

// withFields adds fields to a $select; without one Dataverse answers every
// column, and fields nil drops the $select for the same answer.
func (odataQuery) withFields(m Match, query string, fields []string) (string, error) {
	q, err := parseODataParams(m, query)
	if err != nil {
		return "", err
	}
	if len(q.selects) == 0 {
		return query, nil
	}
	if fields == nil {
		q.selects = nil
		return q.encode(nil), nil
	}
	for _, f := range fields {
		if !odataIdent(f) {
			// Not a column Dataverse could select: ask for all of them.
			q.selects = nil
			return q.encode(nil), nil
		}
		if !slices.Contains(q.selects, f) {
			q.selects = append(q.selects, f)
		}
	}
	return q.encode(nil), nil
}

// maxPageSize finds odata.maxpagesize among Prefer values; two of them
// are refused (which one would the CRM honour?).
func maxPageSize(values []string) (string, bool, error) {
	found := ""
	for _, v := range values {
		for _, pref := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(pref), "=")
			if !strings.EqualFold(strings.TrimSpace(name), "odata.maxpagesize") {
				continue
			}
			val = strings.Trim(strings.TrimSpace(val), `"`)
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > maxTop || found != "" {
				return "", false, fmt.Errorf("odata: Prefer odata.maxpagesize=%q: %w", truncate(val), ErrBadQuery)
			}
			found = strconv.Itoa(n)
		}
	}
	return found, found != "", nil
}

// Push ANDs c before the client's $filter. The translation is exact for
// the conditions record rules make: equality with GUIDs (owners, accounts,
// ids), numbers and booleans, sets as or-chains, and/or. A string that is
// not a GUID is not pushed: Dataverse compares text case-insensitively, so
// its answer would hold records the rule refuses.
func (odataQuery) Push(m Match, rawQuery string, body []byte, c cond.Cond) (string, []byte, bool, error) {
	q, err := parseODataParams(m, rawQuery)
	if err != nil {
		return "", nil, false, fmt.Errorf("push: %w", err)
	}
	if c.Op == cond.True {
		return q.encode(nil), body, true, nil
	}
	e, ok := odataCond(c)
	if !ok {
		return q.encode(nil), body, false, nil
	}
	return q.encode(e), body, true, nil
}

func odataCond(c cond.Cond) (*ODataExpr, bool) {
	chain := func(op ODataOp, args []*ODataExpr) *ODataExpr {
		e := args[0]
		for _, a := range args[1:] {
			e = &ODataExpr{Op: op, Args: []*ODataExpr{e, a}}
		}
		return e
	}
	switch c.Op {
	case cond.Eq, cond.In:
		if !odataIdent(c.Field) || len(c.Values) == 0 {
			return nil, false
		}
		var terms []*ODataExpr
		for _, v := range c.Values {
			lit, ok := odataLiteral(v)
			if !ok {
				return nil, false
			}
			terms = append(terms, &ODataExpr{Op: ODataCmp, Cmp: "eq", L: ODataOperand{Field: c.Field}, R: lit})
		}
		return chain(ODataOr, terms), true
	case cond.And, cond.Or:
		if len(c.Args) == 0 {
			return nil, false
		}
		var args []*ODataExpr
		for _, a := range c.Args {
			e, ok := odataCond(a)
			if !ok {
				return nil, false
			}
			args = append(args, e)
		}
		op := ODataAnd
		if c.Op == cond.Or {
			op = ODataOr
		}
		return chain(op, args), true
	}
	return nil, false
}

func odataLiteral(v any) (ODataOperand, bool) {
	switch x := v.(type) {
	case string:
		if IsGUID(x) && x == strings.ToLower(x) {
			return ODataOperand{Kind: "guid", Value: x}, true
		}
	case json.Number:
		if s := string(x); numberAt(s) == len(s) && s != "" {
			return ODataOperand{Kind: "number", Value: s}, true
		}
	case bool:
		return ODataOperand{Kind: "bool", Value: strconv.FormatBool(x)}, true
	}
	return ODataOperand{}, false
}
