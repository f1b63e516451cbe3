package emulator

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/crmgate/crmgate/proxy/profile"
)

// sfBatch reads Sforce-Query-Options: batchSize=N, which Salesforce takes
// as a hint between 200 and 2000 (the default).
func sfBatch(r *http.Request) int {
	size := 2000
	for _, opt := range strings.Split(r.Header.Get("Sforce-Query-Options"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(opt), "=")
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && strings.EqualFold(strings.TrimSpace(k), "batchSize") {
			size = min(max(n, 200), 2000)
		}
	}
	return size
}

type sfQueryError struct{ code, msg string }

// query answers GET .../query?q=SOQL.
func (s *sfAPI) query(w http.ResponseWriter, r *http.Request, base string) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || len(vals["q"]) != 1 {
		s.fail(w, r, http.StatusBadRequest, "MALFORMED_QUERY", "A query string has to be specified")
		return
	}
	q, err := profile.ParseSOQL(vals["q"][0])
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "MALFORMED_QUERY", err.Error())
		return
	}
	recs, qe := s.run(base, q)
	if qe != nil {
		s.fail(w, r, http.StatusBadRequest, qe.code, qe.msg)
		return
	}
	s.envelope(w, r, base, recs)
}

func sfNoColumn(field, object string) *sfQueryError {
	return &sfQueryError{"INVALID_FIELD", "No such column '" + field + "' on entity '" + object +
		"'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. " +
		"Please reference your WSDL or the describe call for the appropriate names."}
}

// run evaluates a parsed query over the dataset: WHERE, ORDER BY, OFFSET,
// LIMIT, then the projection with each key spelled as the query wrote it.
func (s *sfAPI) run(base string, q *profile.SOQLQuery) ([]any, *sfQueryError) {
	o := sfObjectByName(q.From)
	if o == nil {
		return nil, &sfQueryError{"INVALID_TYPE", "sObject type '" + q.From + "' is not supported. If you are attempting to use a " +
			"custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."}
	}
	seen := map[string]bool{}
	for _, name := range q.Fields {
		f := o.field(name)
		if f == nil {
			return nil, sfNoColumn(name, o.name)
		}
		if seen[f.name] {
			return nil, &sfQueryError{"MALFORMED_QUERY", "duplicate field selected: " + f.name}
		}
		seen[f.name] = true
	}
	for _, ob := range q.OrderBy {
		if o.field(ob.Field) == nil {
			return nil, sfNoColumn(ob.Field, o.name)
		}
	}
	ev := &sfEval{o: o, vals: map[*profile.SOQLExpr][]any{}, like: map[*profile.SOQLExpr]*regexp.Regexp{}}
	if q.Where != nil {
		if qe := ev.prepare(q.Where); qe != nil {
			return nil, qe
		}
	}
	var rows []map[string]any
	for _, rec := range s.ds.snapshot(o.module) {
		if row := o.row(rec); q.Where == nil || ev.match(q.Where, row) {
			rows = append(rows, row)
		}
	}
	sfSort(o, rows, q.OrderBy)
	if q.Offset > 0 {
		rows = rows[min(q.Offset, len(rows)):]
	}
	if q.Limit >= 0 && q.Limit < len(rows) {
		rows = rows[:q.Limit]
	}
	out := make([]any, len(rows))
	for i, row := range rows {
		out[i] = o.project(base, row, q.Fields)
	}
	return out, nil
}

// envelope writes a query result's first batch and keeps the rest behind
// a query locator, as Salesforce does for results over the batch size.
func (s *sfAPI) envelope(w http.ResponseWriter, r *http.Request, base string, recs []any) {
	if recs == nil {
		recs = []any{}
	}
	size := sfBatch(r)
	if len(recs) <= size {
		s.write(w, r, http.StatusOK, map[string]any{"totalSize": len(recs), "done": true, "records": recs})
		return
	}
	id15 := "01g" + sfRandom(12)
	loc := id15 + profile.SalesforceIDSuffix(id15)
	s.mu.Lock()
	now := time.Now()
	for k, c := range s.cursors {
		if now.After(c.expires) {
			delete(s.cursors, k)
		}
	}
	// Salesforce drops a locator after 15 minutes without use.
	s.cursors[loc] = &sfCursor{records: recs, size: size, expires: now.Add(15 * time.Minute)}
	s.mu.Unlock()
	s.batch(w, r, base, loc, recs, size, 0)
}

func (s *sfAPI) batch(w http.ResponseWriter, r *http.Request, base, loc string, recs []any, size, from int) {
	end := min(from+size, len(recs))
	out := map[string]any{"totalSize": len(recs), "done": end == len(recs), "records": recs[from:end]}
	if end < len(recs) {
		out["nextRecordsUrl"] = base + "/query/" + loc + "-" + strconv.Itoa(end)
	}
	s.write(w, r, http.StatusOK, out)
}

// more answers GET .../query/{locator}-{offset}, the next batch of a
// result envelope left behind.
func (s *sfAPI) more(w http.ResponseWriter, r *http.Request, base, seg string) {
	loc, off, _ := strings.Cut(seg, "-")
	from, err := strconv.Atoi(off)
	s.mu.Lock()
	c := s.cursors[loc]
	if c != nil && time.Now().After(c.expires) {
		delete(s.cursors, loc)
		c = nil
	}
	if c != nil {
		c.expires = time.Now().Add(15 * time.Minute)
	}
	s.mu.Unlock()
	if c == nil || err != nil || from <= 0 || from >= len(c.records) {
		s.fail(w, r, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	s.batch(w, r, base, loc, c.records, c.size, from)
}

// sfEval holds a WHERE clause's literals decoded for the fields they meet
// and its LIKE patterns compiled, so rows are matched without re-parsing.
type sfEval struct {
	o    *sfObject
	vals map[*profile.SOQLExpr][]any
	like map[*profile.SOQLExpr]*regexp.Regexp
}

func sfNumeric(typ string) bool {
	return typ == "double" || typ == "currency" || typ == "percent" || typ == "int"
}

func sfText(typ string) bool {
	return !sfNumeric(typ) && typ != "boolean" && typ != "date" && typ != "datetime"
}

// prepare checks what Salesforce checks before running a query (fields
// exist, literals suit the field's type, ids are ids) and decodes the
// literals.
func (ev *sfEval) prepare(e *profile.SOQLExpr) *sfQueryError {
	if e.Op != profile.SOQLCmp {
		for _, a := range e.Args {
			if qe := ev.prepare(a); qe != nil {
				return qe
			}
		}
		return nil
	}
	f := ev.o.field(e.Field)
	if f == nil {
		return sfNoColumn(e.Field, ev.o.name)
	}
	typeErr := func() *sfQueryError {
		if sfText(f.typ) {
			return &sfQueryError{"INVALID_FIELD", "value of filter criterion for field '" + e.Field + "' must be of type " + f.typ + " and should be enclosed in quotes"}
		}
		return &sfQueryError{"INVALID_FIELD", "value of filter criterion for field '" + e.Field + "' must be of type " + f.typ + " and should not be enclosed in quotes"}
	}
	// INCLUDES and EXCLUDES belong to multi-select picklists, which the
	// dataset does not have; they apply here to any text field holding
	// ';'-separated values.
	if (e.Cmp == "LIKE" || e.Cmp == "INCLUDES" || e.Cmp == "EXCLUDES") && !sfText(f.typ) {
		return &sfQueryError{"INVALID_FIELD", e.Cmp + " operator is not valid on field '" + e.Field + "' of type " + f.typ}
	}
	vals := make([]any, len(e.Values))
	for i, v := range e.Values {
		switch {
		case v.Kind == "null":
			continue
		case v.Kind == "dateliteral":
			// Relative dates need the org's time zone and fiscal year;
			// the emulator answers absolute dates only.
			return &sfQueryError{"MALFORMED_QUERY", "date literal " + v.Text + " is not supported by this emulator"}
		case sfNumeric(f.typ) && v.Kind == "number":
			vals[i], _ = strconv.ParseFloat(v.Text, 64)
		case f.typ == "boolean" && v.Kind == "bool":
			vals[i] = v.Text == "true"
		case f.typ == "date" && v.Kind == "date":
			vals[i] = v.Text
		case f.typ == "datetime" && v.Kind == "datetime":
			t, ok := sfParseTime(v.Text)
			if !ok {
				return &sfQueryError{"MALFORMED_QUERY", "invalid date-time " + v.Text}
			}
			vals[i] = t
		case sfText(f.typ) && v.Kind == "string":
			s := v.Unquote()
			if (f.typ == "id" || f.typ == "reference") && s != "" && e.Cmp != "LIKE" && !sfIDShape.MatchString(s) {
				return &sfQueryError{"INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: " + s}
			}
			vals[i] = s
		default:
			return typeErr()
		}
	}
	if e.Cmp == "LIKE" {
		if e.Values[0].Kind != "string" {
			return typeErr()
		}
		ev.like[e] = sfLike(e.Values[0].Text)
	}
	ev.vals[e] = vals
	return nil
}

// sfLike compiles a LIKE pattern from the literal as written, where \%
// and \_ are the characters themselves and % and _ the wildcards (the
// decoded string no longer tells them apart). Matching ignores case.
func sfLike(raw string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)^")
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '\\' && i+1 < len(raw):
			j := i + 2
			if raw[i+1] == 'u' && i+6 <= len(raw) {
				j = i + 6
			}
			b.WriteString(regexp.QuoteMeta(profile.SOQLValue{Kind: "string", Text: raw[i:j]}.Unquote()))
			i = j - 1
		case c == '%':
			b.WriteString(".*")
		case c == '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(raw[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func (ev *sfEval) match(e *profile.SOQLExpr, row map[string]any) bool {
	switch e.Op {
	case profile.SOQLOr:
		for _, a := range e.Args {
			if ev.match(a, row) {
				return true
			}
		}
		return false
	case profile.SOQLAnd:
		for _, a := range e.Args {
			if !ev.match(a, row) {
				return false
			}
		}
		return true
	case profile.SOQLNot:
		return !ev.match(e.Args[0], row)
	}
	f := ev.o.field(e.Field)
	v := sfComparable(f, row[f.name])
	vals := ev.vals[e]
	anyEqual := func() bool {
		for _, lit := range vals {
			if sfEqual(f, v, lit) {
				return true
			}
		}
		return false
	}
	// SOQL treats null as a value: = null matches a blank field, and !=
	// and NOT IN match blank fields too; ordering comparisons never do.
	switch e.Cmp {
	case "=", "IN":
		return anyEqual()
	case "!=", "NOT IN":
		return !anyEqual()
	case "LIKE":
		s, ok := v.(string)
		return ok && ev.like[e].MatchString(s)
	case "INCLUDES", "EXCLUDES":
		return sfIncludes(v, vals) == (e.Cmp == "INCLUDES")
	}
	if v == nil || vals[0] == nil {
		return false
	}
	c := sfCompare(v, vals[0])
	switch e.Cmp {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// sfComparable turns a rendered datetime back into a time, so literals in
// any zone compare by instant.
func sfComparable(f *sfField, v any) any {
	if s, ok := v.(string); ok && f.typ == "datetime" {
		if t, ok := sfParseTime(s); ok {
			return t
		}
	}
	return v
}

func sfEqual(f *sfField, v, lit any) bool {
	if v == nil || lit == nil {
		return v == nil && lit == nil
	}
	if (f.typ == "id" || f.typ == "reference") && len(lit.(string)) == 15 {
		return strings.HasPrefix(v.(string), lit.(string))
	}
	return sfCompare(v, lit) == 0
}

// sfCompare orders two non-null values of one field: text without regard
// to case (Salesforce's collation), numbers, dates as strings, instants.
func sfCompare(a, b any) int {
	switch x := a.(type) {
	case string:
		return strings.Compare(strings.ToLower(x), strings.ToLower(b.(string)))
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case time.Time:
		return x.Compare(b.(time.Time))
	}
	return 0
}

// sfIncludes reports whether any literal's ';'-separated values are all
// among the field's: INCLUDES('a;b', 'c') means (a and b) or c.
func sfIncludes(v any, vals []any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	have := map[string]bool{}
	for _, p := range strings.Split(s, ";") {
		have[strings.ToLower(strings.TrimSpace(p))] = true
	}
	for _, lit := range vals {
		ls, ok := lit.(string)
		if !ok {
			continue
		}
		all := true
		for _, p := range strings.Split(ls, ";") {
			all = all && have[strings.ToLower(strings.TrimSpace(p))]
		}
		if all {
			return true
		}
	}
	return false
}

// sfSort applies ORDER BY: nulls first unless NULLS LAST, in either
// direction, as the SOQL reference says; ties keep dataset order.
func sfSort(o *sfObject, rows []map[string]any, keys []profile.SOQLOrder) {
	if len(keys) == 0 {
		return
	}
	fields := make([]*sfField, len(keys))
	for i, k := range keys {
		fields[i] = o.field(k.Field)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		for n, k := range keys {
			a, b := sfComparable(fields[n], rows[i][fields[n].name]), sfComparable(fields[n], rows[j][fields[n].name])
			var c int
			switch {
			case a == nil && b == nil:
				continue
			case a == nil || b == nil:
				if (a == nil) == (k.Nulls != "LAST") {
					return true
				}
				return false
			}
			if c = sfCompare(a, b); c == 0 {
				continue
			}
			if k.Desc {
				return c > 0
			}
			return c < 0
		}
		return false
	})
}
