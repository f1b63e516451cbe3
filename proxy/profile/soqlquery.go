package profile

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/crmgate/crmgate/policy/cond"
)

// soqlQuery is the Dialect of Salesforce's REST API (profile salesforce).
//
// Parameters are read strictly and forwarded as crmgate writes them:
//
//   - /query takes exactly one q, a SOQL query read by ParseSOQL; its
//     FROM object is the request's module (QueryModule);
//   - a record read takes fields=A,B (the fields to return);
//   - a queryMore (/query/{locator}) takes the object, exp and sig crmgate
//     wrote into the nextRecordsUrl it handed out, and is forwarded with
//     none of them; nothing else takes parameters;
//   - any other parameter, a parameter given twice or without a value is
//     refused (ErrBadQuery). _HttpMethod, Salesforce's method tunnel, is
//     refused before that as a method override (CheckQuery).
type soqlQuery struct{}

// soqlParams is a request's query as crmgate read it.
type soqlParams struct {
	soql   *SOQLQuery
	fields []string
	// cursor holds a queryMore's object, exp and sig.
	cursor map[string]string
}

func parseSOQLParams(m Match, rawQuery string) (*soqlParams, error) {
	params, err := splitQuery(rawQuery, "salesforce")
	if err != nil {
		return nil, err
	}
	return readSOQLParams(m, params)
}

// readSOQLParams reads a split query as route m takes it.
func readSOQLParams(m Match, params []queryParam) (*soqlParams, error) {
	out := &soqlParams{}
	seen := map[string]bool{}
	var err error
	for _, qp := range params {
		name, value := qp.name, qp.value
		isCursor := name == CursorObject || name == CursorExpires || name == CursorSig
		accepted := name == "q" && m.Kind == KindList && m.Action == "list" && !m.Cursor ||
			name == "fields" && m.Kind == KindRecord && m.Action == "read" ||
			isCursor && m.Cursor
		switch {
		case !accepted:
			return nil, fmt.Errorf("salesforce: parameter %q is not accepted on this route: %w", truncate(name), ErrBadQuery)
		case seen[name]:
			return nil, fmt.Errorf("salesforce: %s given twice: %w", name, ErrBadQuery)
		case !qp.hasValue || value == "":
			return nil, fmt.Errorf("salesforce: %s without a value: %w", name, ErrBadQuery)
		}
		seen[name] = true
		if isCursor {
			if out.cursor == nil {
				out.cursor = map[string]string{}
			}
			out.cursor[name] = value
			continue
		}
		if name == "q" {
			if out.soql, err = ParseSOQL(value); err != nil {
				return nil, fmt.Errorf("salesforce: %w", err)
			}
			continue
		}
		for _, f := range strings.Split(value, ",") {
			f = strings.TrimSpace(f)
			if !soqlFieldName(f) {
				return nil, fmt.Errorf("salesforce: fields item %q is not a field name: %w", truncate(f), ErrBadQuery)
			}
			out.fields = append(out.fields, f)
		}
	}
	switch {
	case m.Cursor && len(out.cursor) != 3:
		return nil, fmt.Errorf("salesforce: a query cursor needs crmgate's %s, %s and %s: %w", CursorObject, CursorExpires, CursorSig, ErrBadQuery)
	case m.Cursor && m.Module != "" && out.cursor[CursorObject] != m.Module:
		return nil, fmt.Errorf("salesforce: cursor of %q, classified as %q: %w", truncate(out.cursor[CursorObject]), m.Module, ErrBadQuery)
	case m.Kind == KindList && m.Action == "list" && !m.Cursor && out.soql == nil:
		return nil, fmt.Errorf("salesforce: /query needs q: %w", ErrBadQuery)
	}
	if out.soql != nil && m.Module != "" {
		if !strings.EqualFold(out.soql.From, m.Module) {
			// The module was classified from this query; a different one
			// here means the two readings disagree.
			return nil, fmt.Errorf("salesforce: query reads %q, classified as %q: %w", truncate(out.soql.From), m.Module, ErrBadQuery)
		}
		out.soql.From = m.Module
	}
	return out, nil
}

// soqlFieldName accepts a plain field name: no relationship path, no
// keyword.
func soqlFieldName(s string) bool {
	return validModuleName(s) && !soqlKeywords[strings.ToUpper(s)]
}

func (q *soqlParams) encode() string {
	switch {
	case q.cursor != nil:
		return ""
	case q.soql != nil:
		return "q=" + odataEscape(q.soql.String())
	case len(q.fields) > 0:
		return "fields=" + odataEscape(strings.Join(q.fields, ","))
	}
	return ""
}

// QueryModule is the object a /query reads, or the one a signed cursor
// continues.
func (soqlQuery) QueryModule(m Match, rawQuery string) (string, error) {
	q, err := parseSOQLParams(m, rawQuery)
	if err != nil {
		return "", err
	}
	if m.Cursor {
		return q.cursor[CursorObject], nil
	}
	return q.soql.From, nil
}

func (soqlQuery) QueryFields(rawQuery string, _ []byte) ([]QueryField, error) {
	// Which parameters a route takes is Canonical's business; here each
	// query is read as the route that accepts its first parameter.
	params, err := splitQuery(rawQuery, "salesforce")
	if err != nil {
		return nil, fmt.Errorf("query fields: %w", err)
	}
	m := Match{Kind: KindRecord, Action: "read"}
	if len(params) > 0 {
		switch params[0].name {
		case "q":
			m = Match{Kind: KindList, Action: "list"}
		case CursorObject, CursorExpires, CursorSig:
			// A cursor's fields were read when its query was.
			m = Match{Kind: KindList, Action: "list", Cursor: true}
		}
	}
	q, err := readSOQLParams(m, params)
	if err != nil {
		return nil, fmt.Errorf("query fields: %w", err)
	}
	var out []QueryField
	if s := q.soql; s != nil {
		for _, f := range s.Fields {
			out = append(out, QueryField{Name: f, Use: UseSelect, Param: "q SELECT", Strict: true})
		}
		for _, f := range s.Where.Fields(nil) {
			out = append(out, QueryField{Name: f, Use: UseFilter, Param: "q WHERE"})
		}
		for _, o := range s.OrderBy {
			out = append(out, QueryField{Name: o.Field, Use: UseSort, Param: "q ORDER BY"})
		}
	}
	for _, f := range q.fields {
		out = append(out, QueryField{Name: f, Use: UseSelect, Param: "fields", Strict: true})
	}
	return out, nil
}

// Canonical forwards crmgate's own writing of the query, and of a query's
// Sforce-Query-Options: batchSize=N (200–2000), the only query option
// Salesforce has. A cursor is forwarded without crmgate's parameters.
func (soqlQuery) Canonical(m Match, rawQuery string, h http.Header) (string, http.Header, error) {
	q, err := parseSOQLParams(m, rawQuery)
	if err != nil {
		return "", nil, err
	}
	var extra http.Header
	if size, ok, err := batchSize(h.Values("Sforce-Query-Options")); err != nil {
		return "", nil, err
	} else if ok && q.soql != nil {
		extra = http.Header{"Sforce-Query-Options": {"batchSize=" + size}}
	}
	return q.encode(), extra, nil
}

// WithFields adds the record rule's fields to the SELECT list or the
// fields parameter, spelled as the rule spells them: Salesforce answers
// each field under the name the query used, and the rule reads OwnerId,
// not ownerid. SOQL cannot select "every field" (FIELDS(ALL) is refused
// for the same reason it is refused from clients), so a rule that needs
// every field cannot judge a query and the request is refused.
func (d soqlQuery) WithFields(m Match, query string, body []byte, fields []string) (string, []byte, error) {
	q, err := d.withFields(m, query, fields)
	return q, body, err
}

func (soqlQuery) withFields(m Match, query string, fields []string) (string, error) {
	if m.Cursor {
		// The continued query's SELECT, rule fields included, was
		// written when it ran; a cursor is forwarded without parameters.
		return query, nil
	}
	q, err := parseSOQLParams(m, query)
	if err != nil {
		return "", err
	}
	var list *[]string
	switch {
	case q.soql != nil:
		list = &q.soql.Fields
	case len(q.fields) > 0:
		list = &q.fields
	default:
		return query, nil // a read without fields= returns every field
	}
	if fields == nil {
		if q.soql == nil {
			q.fields = nil
			return q.encode(), nil
		}
		return "", fmt.Errorf("salesforce: the record rule reads whole records, which a SOQL query cannot select: %w", ErrBadQuery)
	}
	for _, f := range fields {
		if !soqlFieldName(f) {
			return "", fmt.Errorf("salesforce: record rule field %q is not a SOQL field: %w", truncate(f), ErrBadQuery)
		}
		found := false
		for i, have := range *list {
			if strings.EqualFold(have, f) {
				(*list)[i], found = f, true
			}
		}
		if !found {
			*list = append(*list, f)
		}
	}
	return q.encode(), nil
}

// Push makes the rule the first term of the WHERE clause, ANDed with the
// client's whole condition in parentheses: (rule) AND (client), so no OR
// of the client's can reach past it. Only conditions whose values compare
// exactly in Salesforce are pushed: 18-character ids (Salesforce matches
// ids exactly, while text compares case-insensitively), numbers and
// booleans.
func (soqlQuery) Push(m Match, rawQuery string, body []byte, c cond.Cond) (string, []byte, bool, error) {
	if m.Cursor {
		// Whatever rule ran in the first batch's query, crmgate cannot
		// see it here: the continuation is filtered after.
		return rawQuery, body, false, nil
	}
	q, err := parseSOQLParams(m, rawQuery)
	if err != nil {
		return "", nil, false, fmt.Errorf("push: %w", err)
	}
	if q.soql == nil {
		return q.encode(), body, false, nil
	}
	if c.Op == cond.True {
		return q.encode(), body, true, nil
	}
	e, ok := soqlCond(c)
	if !ok {
		return q.encode(), body, false, nil
	}
	if q.soql.Where != nil {
		e = &SOQLExpr{Op: SOQLAnd, Args: []*SOQLExpr{e, q.soql.Where}}
	}
	q.soql.Where = e
	return q.encode(), body, true, nil
}

func soqlCond(c cond.Cond) (*SOQLExpr, bool) {
	switch c.Op {
	case cond.Eq, cond.In:
		if !soqlFieldName(c.Field) || len(c.Values) == 0 || len(c.Values) > 1000 {
			return nil, false
		}
		var vals []SOQLValue
		for _, v := range c.Values {
			lit, ok := soqlLiteral(v)
			if !ok {
				return nil, false
			}
			vals = append(vals, lit)
		}
		if len(vals) == 1 {
			return &SOQLExpr{Op: SOQLCmp, Field: c.Field, Cmp: "=", Values: vals}, true
		}
		return &SOQLExpr{Op: SOQLCmp, Field: c.Field, Cmp: "IN", Values: vals}, true
	case cond.And, cond.Or:
		if len(c.Args) == 0 {
			return nil, false
		}
		var args []*SOQLExpr
		for _, a := range c.Args {
			e, ok := soqlCond(a)
			if !ok {
				return nil, false
			}
			args = append(args, e)
		}
		if len(args) == 1 {
			return args[0], true
		}
		op := SOQLAnd
		if c.Op == cond.Or {
			op = SOQLOr
		}
		return &SOQLExpr{Op: op, Args: args}, true
	}
	return nil, false
}

func soqlLiteral(v any) (SOQLValue, bool) {
	switch x := v.(type) {
	case string:
		if IsSalesforceID(x) {
			return SOQLValue{Kind: "string", Text: x}, true
		}
	case json.Number:
		s := string(x)
		if _, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eE+") {
			return SOQLValue{Kind: "number", Text: s}, true
		}
	case bool:
		return SOQLValue{Kind: "bool", Text: strconv.FormatBool(x)}, true
	}
	return SOQLValue{}, false
}

// batchSize reads Sforce-Query-Options: batchSize=N; anything else in it,
// a size outside Salesforce's 200–2000 or two sizes are refused.
func batchSize(values []string) (string, bool, error) {
	found := ""
	for _, v := range values {
		for _, opt := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(opt), "=")
			n, err := strconv.Atoi(strings.TrimSpace(val))
			if !strings.EqualFold(strings.TrimSpace(name), "batchSize") || err != nil || n < 200 || n > 2000 || found != "" {
				return "", false, fmt.Errorf("salesforce: Sforce-Query-Options %q is not batchSize=200..2000: %w", truncate(v), ErrBadQuery)
			}
			found = strconv.Itoa(n)
		}
	}
	return found, found != "", nil
}
