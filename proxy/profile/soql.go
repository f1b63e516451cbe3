package profile

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A SOQL parser for the queries crmgate lets through to Salesforce's
// /query resource: the subset of the Salesforce Object Query Language
// (developer.salesforce.com "SOQL and SOSL Reference", SELECT, WHERE,
// ORDER BY, LIMIT, OFFSET) whose every field crmgate can name:
//
//	query      = SELECT field *( "," field ) FROM object
//	             [ WHERE cond ] [ ORDER BY order *( "," order ) ]
//	             [ LIMIT int ] [ OFFSET int ]
//	cond       = term *( AND term ) / term *( OR term )   ; mixing needs parentheses, as in SOQL
//	term       = NOT term / "(" cond ")" / comparison
//	comparison = field op value / field [ NOT ] IN "(" value *( "," value ) ")"
//	             / field ( INCLUDES / EXCLUDES ) "(" string *( "," string ) ")"
//	op         = "=" / "!=" / "<>" / "<" / "<=" / ">" / ">=" / LIKE
//	value      = string / number / TRUE / FALSE / NULL / date / datetime / dateLiteral
//	order      = field [ ASC / DESC ] [ NULLS ( FIRST / LAST ) ]
//
// Refused (ErrBadQuery), because each names fields crmgate would have to
// judge by another object's rules or computes values it cannot see into:
// relationship paths (Account.Name, Owner.Email), FIELDS(ALL|STANDARD|
// CUSTOM), relationship sub-queries in SELECT, semi- and anti-joins (Id IN
// (SELECT ...)), TYPEOF, aggregates and other functions (COUNT(),
// toLabel(), convertCurrency(), FORMAT(), DISTANCE()), GROUP BY, HAVING,
// WITH, USING SCOPE, FOR VIEW/REFERENCE/UPDATE, ALL ROWS, object aliases,
// bind variables (:x) and comments (SOQL has none; "--" and "/*" are
// refused with a message saying so rather than read as operators).
// Keywords are case-insensitive, as in SOQL; field names are kept as
// written, which is how Salesforce spells them back in the answer.
//
// crmgate forwards String, its own serialisation of the parse, never the
// client's text.

// SOQLOp is a node kind of a parsed WHERE clause.
type SOQLOp uint8

// WHERE node kinds.
const (
	SOQLOr SOQLOp = iota
	SOQLAnd
	SOQLNot
	SOQLCmp
)

// SOQLQuery is a parsed query.
type SOQLQuery struct {
	// Fields is the SELECT list, plain field names as written.
	Fields []string
	// From is the object, as written.
	From    string
	Where   *SOQLExpr
	OrderBy []SOQLOrder
	// Limit and Offset are -1 when absent.
	Limit, Offset int
}

// SOQLOrder is one ORDER BY item.
type SOQLOrder struct {
	Field string
	Desc  bool
	// Nulls is "", "FIRST" or "LAST".
	Nulls string
}

// SOQLExpr is one node of a WHERE clause.
type SOQLExpr struct {
	Op SOQLOp
	// Args are the operands of AND/OR (two or more) and NOT (one).
	Args []*SOQLExpr
	// Field, Cmp and Values are a comparison's. Cmp is one of = != < <=
	// > >= LIKE IN "NOT IN" INCLUDES EXCLUDES; Values holds one value, or
	// the list of IN, NOT IN, INCLUDES and EXCLUDES.
	Field  string
	Cmp    string
	Values []SOQLValue
}

// SOQLValue is a literal.
type SOQLValue struct {
	// Kind is string, number, bool, null, date, datetime or dateliteral.
	Kind string
	// Text is the literal as written: a string's content between the
	// quotes with its escapes, a number, date or date-time as written,
	// bool true or false, null, or a date literal such as LAST_N_DAYS:30.
	Text string
}

// Limits on what one query costs to parse. Salesforce takes up to 100,000
// characters; crmgate's clients need far less than its own cap.
const (
	maxSOQLLen    = 16384
	maxSOQLDepth  = 32
	maxSOQLFields = 500
	maxSOQLOffset = 2000 // Salesforce's own maximum OFFSET
	maxSOQLLimit  = 50000
)

// soqlKeywords cannot be field or object names: each either starts a
// clause crmgate does not parse or would be read as an operator.
var soqlKeywords = map[string]bool{
	"SELECT": true, "FROM": true, "WHERE": true, "AND": true, "OR": true, "NOT": true, "IN": true,
	"LIKE": true, "INCLUDES": true, "EXCLUDES": true, "ORDER": true, "BY": true, "ASC": true, "DESC": true,
	"NULLS": true, "FIRST": true, "LAST": true, "LIMIT": true, "OFFSET": true, "NULL": true, "TRUE": true,
	"FALSE": true, "GROUP": true, "HAVING": true, "WITH": true, "USING": true, "SCOPE": true, "FOR": true,
	"VIEW": true, "REFERENCE": true, "UPDATE": true, "TYPEOF": true, "WHEN": true, "THEN": true, "ELSE": true,
	"END": true, "ALL": true, "ROWS": true, "FIELDS": true, "ROLLUP": true, "CUBE": true, "AS": true,
	"TRACKING": true, "VIEWSTAT": true, "SECURITY_ENFORCED": true, "USER_MODE": true, "SYSTEM_MODE": true,
}

// soqlDateLiterals are SOQL's relative dates; those ending in _N_ take ":n".
var soqlDateLiterals = map[string]bool{
	"YESTERDAY": true, "TODAY": true, "TOMORROW": true, "LAST_WEEK": true, "THIS_WEEK": true,
	"NEXT_WEEK": true, "LAST_MONTH": true, "THIS_MONTH": true, "NEXT_MONTH": true, "LAST_90_DAYS": true,
	"NEXT_90_DAYS": true, "THIS_QUARTER": true, "LAST_QUARTER": true, "NEXT_QUARTER": true,
	"THIS_YEAR": true, "LAST_YEAR": true, "NEXT_YEAR": true, "THIS_FISCAL_QUARTER": true,
	"LAST_FISCAL_QUARTER": true, "NEXT_FISCAL_QUARTER": true, "THIS_FISCAL_YEAR": true,
	"LAST_FISCAL_YEAR": true, "NEXT_FISCAL_YEAR": true,
	"LAST_N_DAYS": true, "NEXT_N_DAYS": true, "N_DAYS_AGO": true, "LAST_N_WEEKS": true,
	"NEXT_N_WEEKS": true, "N_WEEKS_AGO": true, "LAST_N_MONTHS": true, "NEXT_N_MONTHS": true,
	"N_MONTHS_AGO": true, "LAST_N_QUARTERS": true, "NEXT_N_QUARTERS": true, "N_QUARTERS_AGO": true,
	"LAST_N_YEARS": true, "NEXT_N_YEARS": true, "N_YEARS_AGO": true, "LAST_N_FISCAL_QUARTERS": true,
	"NEXT_N_FISCAL_QUARTERS": true, "N_FISCAL_QUARTERS_AGO": true, "LAST_N_FISCAL_YEARS": true,
	"NEXT_N_FISCAL_YEARS": true, "N_FISCAL_YEARS_AGO": true,
}

type soqlTok uint8

const (
	tEOF soqlTok = iota
	tIdent
	tString
	tNumber
	tDate
	tDateTime
	tPunct // ( ) ,
	tOp    // = != <> < <= > >=
)

type soqlToken struct {
	kind soqlTok
	text string
	pos  int
}

type soqlParser struct {
	s   string
	i   int
	tok soqlToken
}

// ParseSOQL parses a query (the decoded q parameter).
func ParseSOQL(s string) (*SOQLQuery, error) {
	if len(s) > maxSOQLLen {
		return nil, fmt.Errorf("soql: query longer than %d bytes: %w", maxSOQLLen, ErrBadQuery)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("soql: query is not UTF-8: %w", ErrBadQuery)
	}
	p := &soqlParser{s: s}
	if err := p.next(); err != nil {
		return nil, err
	}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	return q, nil
}

func (p *soqlParser) errf(format string, a ...any) error {
	return fmt.Errorf("soql: at %d: %s: %w", p.tok.pos, fmt.Sprintf(format, a...), ErrBadQuery)
}

func soqlSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// next reads one token. Dotted names are read whole so that a relationship
// path is refused with its name rather than as a stray ".".
func (p *soqlParser) next() error {
	for p.i < len(p.s) && soqlSpace(p.s[p.i]) {
		p.i++
	}
	start := p.i
	p.tok = soqlToken{pos: start}
	if p.i >= len(p.s) {
		p.tok.kind = tEOF
		return nil
	}
	c := p.s[p.i]
	switch {
	case strings.HasPrefix(p.s[p.i:], "--") || strings.HasPrefix(p.s[p.i:], "/*") || strings.HasPrefix(p.s[p.i:], "//"):
		return p.errf("SOQL has no comments")
	case asciiLetter(c) || c == '_':
		for p.i < len(p.s) && (identByte(p.s[p.i]) || p.s[p.i] == '.') {
			p.i++
		}
		// A relative date's ":n" belongs to it (LAST_N_DAYS:30).
		name := p.s[start:p.i]
		if p.i < len(p.s) && p.s[p.i] == ':' && soqlDateLiterals[strings.ToUpper(name)] && strings.Contains(strings.ToUpper(name), "_N_") {
			j := p.i + 1
			n := digitsAt(p.s[j:])
			if n == 0 || n > 6 {
				return p.errf("date literal %s needs :n", truncate(name))
			}
			p.i = j + n
		}
		p.tok.kind, p.tok.text = tIdent, p.s[start:p.i]
	case c == '\'':
		return p.str()
	case c >= '0' && c <= '9' || c == '-' && p.i+1 < len(p.s) && p.s[p.i+1] >= '0' && p.s[p.i+1] <= '9':
		return p.number()
	case c == '(' || c == ')' || c == ',':
		p.i++
		p.tok.kind, p.tok.text = tPunct, string(c)
	case c == '=' || c == '<' || c == '>' || c == '!':
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '=' || c == '<' && p.s[p.i] == '>') {
			p.i++
		}
		op := p.s[start:p.i]
		if op == "!" || op == "==" {
			return p.errf("operator %q", op)
		}
		if op == "<>" {
			op = "!="
		}
		p.tok.kind, p.tok.text = tOp, op
	case c == ':':
		return p.errf("bind variables are not accepted")
	default:
		return p.errf("unexpected %q", truncate(p.s[p.i:min(p.i+8, len(p.s))]))
	}
	return nil
}

// str reads a quoted string, checking each escape: SOQL accepts \n \r \t
// \b \f \" \' \\ \uXXXX and, in LIKE patterns, \_ and \%; any other
// backslash is an error in Salesforce, so it is one here.
func (p *soqlParser) str() error {
	start := p.i
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\'':
			p.i++
			p.tok.kind, p.tok.text = tString, p.s[start+1:p.i-1]
			return nil
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return p.errf("string ends in a backslash")
			}
			switch p.s[p.i+1] {
			case 'n', 'r', 't', 'b', 'f', '"', '\'', '\\', '_', '%':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.s) || !hexByte(p.s[p.i+2]) || !hexByte(p.s[p.i+3]) || !hexByte(p.s[p.i+4]) || !hexByte(p.s[p.i+5]) {
					return p.errf("bad \\u escape")
				}
				p.i += 6
			default:
				return p.errf("invalid escape \\%c", p.s[p.i+1])
			}
		case c < 0x20 || c == 0x7f:
			return p.errf("control character in a string")
		default:
			p.i++
		}
	}
	return p.errf("unterminated string")
}

// number reads an integer, a decimal, a date or a date-time.
func (p *soqlParser) number() error {
	rest := p.s[p.i:]
	if n := dateAt(rest); n > 0 && (n == len(rest) || !identByte(rest[n]) && rest[n] != '.' && rest[n] != ':' && rest[n] != '-' && rest[n] != '+') {
		p.tok.kind, p.tok.text = tDateTime, rest[:n]
		if n == len("2006-01-02") {
			p.tok.kind = tDate
		}
		if !soqlDateOK(rest[:n]) {
			return p.errf("date %q must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.sss](Z|±hh:mm)", truncate(rest[:n]))
		}
		p.i += n
		return nil
	}
	// -digits[.digits]: SOQL has no exponents.
	n := 0
	if rest[0] == '-' {
		n++
	}
	d := digitsAt(rest[n:])
	if d == 0 || d > 30 {
		return p.errf("bad number")
	}
	n += d
	if n < len(rest) && rest[n] == '.' {
		f := digitsAt(rest[n+1:])
		if f == 0 || f > 30 {
			return p.errf("bad number")
		}
		n += 1 + f
	}
	if n < len(rest) && (identByte(rest[n]) || rest[n] == '.') {
		return p.errf("bad number %q", truncate(rest[:n+1]))
	}
	p.tok.kind, p.tok.text = tNumber, rest[:n]
	p.i += n
	return nil
}

// soqlDateOK accepts SOQL's date and dateTime formats: a date, or a date
// with a time to the second and a zone (Z or ±hh:mm); OData's dateAt
// also takes a time without seconds.
func soqlDateOK(s string) bool {
	if len(s) == len("2006-01-02") {
		return true
	}
	return len(s) >= len("2006-01-02T15:04:05Z") && s[16] == ':'
}

func (p *soqlParser) keyword(word string) bool {
	return p.tok.kind == tIdent && strings.EqualFold(p.tok.text, word)
}

func (p *soqlParser) expectKeyword(word string) error {
	if !p.keyword(word) {
		return p.errf("expected %s, got %q", word, truncate(p.tok.text))
	}
	return p.next()
}

func (p *soqlParser) punct(c string) bool { return p.tok.kind == tPunct && p.tok.text == c }

// name reads a field or object name, refusing what is not a plain one.
func (p *soqlParser) name(what string) (string, error) {
	if p.tok.kind != tIdent {
		return "", p.errf("expected a %s name, got %q", what, truncate(p.tok.text))
	}
	n := p.tok.text
	switch {
	case strings.Contains(n, "."):
		return "", p.errf("relationship path %q: a related record's fields follow that object's rules, query it directly", truncate(n))
	case soqlKeywords[strings.ToUpper(n)]:
		return "", p.errf("%s is a keyword, not a %s name", truncate(n), what)
	case len(n) > maxNameLen || !asciiLetter(n[0]):
		return "", p.errf("%q is not a %s name", truncate(n), what)
	case strings.Contains(n, ":"):
		return "", p.errf("%q is not a %s name", truncate(n), what)
	}
	if err := p.next(); err != nil {
		return "", err
	}
	if p.punct("(") {
		return "", p.errf("function %s(): only plain fields are accepted", truncate(n))
	}
	return n, nil
}

func (p *soqlParser) query() (*SOQLQuery, error) {
	q := &SOQLQuery{Limit: -1, Offset: -1}
	if err := p.expectKeyword("SELECT"); err != nil {
		return nil, err
	}
	for {
		switch {
		case p.punct("("):
			return nil, p.errf("relationship sub-queries are not accepted")
		case p.keyword("FIELDS"):
			return nil, p.errf("FIELDS() names every field, hidden ones included: list the fields")
		case p.keyword("TYPEOF"):
			return nil, p.errf("TYPEOF selects fields of other objects")
		}
		f, err := p.name("field")
		if err != nil {
			return nil, err
		}
		q.Fields = append(q.Fields, f)
		if len(q.Fields) > maxSOQLFields {
			return nil, p.errf("more than %d fields", maxSOQLFields)
		}
		if !p.punct(",") {
			break
		}
		if err := p.next(); err != nil {
			return nil, err
		}
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return nil, err
	}
	from, err := p.name("object")
	if err != nil {
		return nil, err
	}
	q.From = from
	if p.punct(",") {
		return nil, p.errf("one object per query")
	}
	if p.keyword("WHERE") {
		if err := p.next(); err != nil {
			return nil, err
		}
		if q.Where, err = p.cond(0); err != nil {
			return nil, err
		}
	}
	if p.keyword("ORDER") {
		if err := p.next(); err != nil {
			return nil, err
		}
		if err := p.expectKeyword("BY"); err != nil {
			return nil, err
		}
		for {
			if q.OrderBy, err = p.order(q.OrderBy); err != nil {
				return nil, err
			}
			if !p.punct(",") {
				break
			}
			if err := p.next(); err != nil {
				return nil, err
			}
		}
	}
	if p.keyword("LIMIT") {
		if q.Limit, err = p.count(maxSOQLLimit); err != nil {
			return nil, err
		}
	}
	if p.keyword("OFFSET") {
		if q.Offset, err = p.count(maxSOQLOffset); err != nil {
			return nil, err
		}
	}
	if p.tok.kind != tEOF {
		// GROUP BY, HAVING, WITH, USING SCOPE, FOR ..., ALL ROWS, an
		// alias, a second LIMIT: nothing crmgate classifies.
		return nil, p.errf("unexpected %q (only WHERE, ORDER BY, LIMIT and OFFSET are accepted, in that order)", truncate(p.tok.text))
	}
	return q, nil
}

func (p *soqlParser) order(out []SOQLOrder) ([]SOQLOrder, error) {
	f, err := p.name("field")
	if err != nil {
		return nil, err
	}
	o := SOQLOrder{Field: f}
	switch {
	case p.keyword("ASC"):
		err = p.next()
	case p.keyword("DESC"):
		o.Desc = true
		err = p.next()
	}
	if err != nil {
		return nil, err
	}
	if p.keyword("NULLS") {
		if err := p.next(); err != nil {
			return nil, err
		}
		switch {
		case p.keyword("FIRST"):
			o.Nulls = "FIRST"
		case p.keyword("LAST"):
			o.Nulls = "LAST"
		default:
			return nil, p.errf("NULLS FIRST or NULLS LAST")
		}
		if err := p.next(); err != nil {
			return nil, err
		}
	}
	if len(out) >= 32 {
		return nil, p.errf("too many ORDER BY items")
	}
	return append(out, o), nil
}

func (p *soqlParser) count(max int) (int, error) {
	word := strings.ToUpper(p.tok.text)
	if err := p.next(); err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(p.tok.text)
	if p.tok.kind != tNumber || err != nil || n < 0 || n > max || strconv.Itoa(n) != p.tok.text {
		return 0, p.errf("%s must be an integer 0..%d", word, max)
	}
	return n, p.next()
}

// cond reads terms joined by one operator: SOQL refuses "a AND b OR c"
// without parentheses, and so does crmgate, so no precedence is guessed.
func (p *soqlParser) cond(depth int) (*SOQLExpr, error) {
	if depth > maxSOQLDepth {
		return nil, p.errf("nested deeper than %d", maxSOQLDepth)
	}
	first, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	var op SOQLOp
	switch {
	case p.keyword("AND"):
		op = SOQLAnd
	case p.keyword("OR"):
		op = SOQLOr
	default:
		return first, nil
	}
	e := &SOQLExpr{Op: op, Args: []*SOQLExpr{first}}
	for p.keyword("AND") || p.keyword("OR") {
		if (op == SOQLAnd) != p.keyword("AND") {
			return nil, p.errf("AND and OR mixed without parentheses")
		}
		if err := p.next(); err != nil {
			return nil, err
		}
		t, err := p.term(depth)
		if err != nil {
			return nil, err
		}
		e.Args = append(e.Args, t)
		if len(e.Args) > 256 {
			return nil, p.errf("too many conditions")
		}
	}
	return e, nil
}

func (p *soqlParser) term(depth int) (*SOQLExpr, error) {
	if depth > maxSOQLDepth {
		return nil, p.errf("nested deeper than %d", maxSOQLDepth)
	}
	switch {
	case p.keyword("NOT"):
		if err := p.next(); err != nil {
			return nil, err
		}
		t, err := p.term(depth + 1)
		if err != nil {
			return nil, err
		}
		return &SOQLExpr{Op: SOQLNot, Args: []*SOQLExpr{t}}, nil
	case p.punct("("):
		if err := p.next(); err != nil {
			return nil, err
		}
		if p.keyword("SELECT") {
			return nil, p.errf("sub-queries are not accepted")
		}
		e, err := p.cond(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.punct(")") {
			return nil, p.errf("expected )")
		}
		return e, p.next()
	}
	return p.comparison()
}

func (p *soqlParser) comparison() (*SOQLExpr, error) {
	f, err := p.name("field")
	if err != nil {
		return nil, err
	}
	e := &SOQLExpr{Op: SOQLCmp, Field: f}
	switch {
	case p.tok.kind == tOp:
		e.Cmp = p.tok.text
	case p.keyword("LIKE"):
		e.Cmp = "LIKE"
	case p.keyword("IN"), p.keyword("INCLUDES"), p.keyword("EXCLUDES"):
		e.Cmp = strings.ToUpper(p.tok.text)
	case p.keyword("NOT"):
		if err := p.next(); err != nil {
			return nil, err
		}
		if !p.keyword("IN") {
			return nil, p.errf("NOT after a field must be NOT IN")
		}
		e.Cmp = "NOT IN"
	default:
		return nil, p.errf("expected an operator after %s", truncate(f))
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	switch e.Cmp {
	case "IN", "NOT IN", "INCLUDES", "EXCLUDES":
		return e, p.list(e)
	}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	switch {
	case v.Kind == "null" && e.Cmp != "=" && e.Cmp != "!=":
		return nil, p.errf("null compares with = and != only")
	case e.Cmp == "LIKE" && v.Kind != "string":
		return nil, p.errf("LIKE takes a string")
	}
	e.Values = []SOQLValue{v}
	return e, nil
}

func (p *soqlParser) list(e *SOQLExpr) error {
	if !p.punct("(") {
		return p.errf("%s takes a parenthesised list", e.Cmp)
	}
	if err := p.next(); err != nil {
		return err
	}
	if p.keyword("SELECT") {
		return p.errf("semi-joins (%s (SELECT ...)) are not accepted", e.Cmp)
	}
	for {
		v, err := p.value()
		if err != nil {
			return err
		}
		if (e.Cmp == "INCLUDES" || e.Cmp == "EXCLUDES") && v.Kind != "string" {
			return p.errf("%s takes strings", e.Cmp)
		}
		e.Values = append(e.Values, v)
		if len(e.Values) > 1000 {
			return p.errf("more than 1000 values")
		}
		if p.punct(")") {
			return p.next()
		}
		if !p.punct(",") {
			return p.errf("expected , or )")
		}
		if err := p.next(); err != nil {
			return err
		}
	}
}

func (p *soqlParser) value() (SOQLValue, error) {
	t := p.tok
	var v SOQLValue
	switch t.kind {
	case tString:
		v = SOQLValue{Kind: "string", Text: t.text}
	case tNumber:
		v = SOQLValue{Kind: "number", Text: t.text}
	case tDate:
		v = SOQLValue{Kind: "date", Text: t.text}
	case tDateTime:
		v = SOQLValue{Kind: "datetime", Text: t.text}
	case tIdent:
		up := strings.ToUpper(t.text)
		base, _, hasN := strings.Cut(up, ":")
		switch {
		case up == "TRUE" || up == "FALSE":
			v = SOQLValue{Kind: "bool", Text: strings.ToLower(up)}
		case up == "NULL":
			v = SOQLValue{Kind: "null", Text: "null"}
		case soqlDateLiterals[base] && hasN == strings.Contains(base, "_N_"):
			v = SOQLValue{Kind: "dateliteral", Text: up}
		default:
			return v, p.errf("%q is not a value (a field cannot be compared with a field)", truncate(t.text))
		}
	default:
		return v, p.errf("expected a value, got %q", truncate(t.text))
	}
	return v, p.next()
}

// Unquote decodes a string value's escapes; \_ and \% become the
// characters themselves (they escape LIKE's wildcards).
func (v SOQLValue) Unquote() string {
	if !strings.Contains(v.Text, `\`) {
		return v.Text
	}
	var b strings.Builder
	for i := 0; i < len(v.Text); i++ {
		c := v.Text[i]
		if c != '\\' || i+1 >= len(v.Text) {
			b.WriteByte(c)
			continue
		}
		i++
		switch v.Text[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 <= len(v.Text) {
				if r, err := strconv.ParseUint(v.Text[i+1:i+5], 16, 32); err == nil {
					b.WriteRune(rune(r))
					i += 4
					continue
				}
			}
			b.WriteByte('u')
		default:
			b.WriteByte(v.Text[i])
		}
	}
	return b.String()
}

// SOQLString quotes s as a SOQL string literal's Text.
func SOQLString(s string) SOQLValue {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\b", `\b`, "\f", `\f`)
	return SOQLValue{Kind: "string", Text: r.Replace(s)}
}

// Fields appends the fields a WHERE clause compares.
func (e *SOQLExpr) Fields(out []string) []string {
	if e == nil {
		return out
	}
	if e.Op == SOQLCmp {
		return append(out, e.Field)
	}
	for _, a := range e.Args {
		out = a.Fields(out)
	}
	return out
}

// String is the canonical text of the query: keywords upper-case, single
// spaces, every AND/OR inside another and every NOT's operand in
// parentheses.
func (q *SOQLQuery) String() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(q.Fields, ", "))
	b.WriteString(" FROM ")
	b.WriteString(q.From)
	if q.Where != nil {
		b.WriteString(" WHERE ")
		q.Where.write(&b, false)
	}
	for i, o := range q.OrderBy {
		if i == 0 {
			b.WriteString(" ORDER BY ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(o.Field)
		if o.Desc {
			b.WriteString(" DESC")
		} else {
			b.WriteString(" ASC")
		}
		if o.Nulls != "" {
			b.WriteString(" NULLS " + o.Nulls)
		}
	}
	if q.Limit >= 0 {
		b.WriteString(" LIMIT " + strconv.Itoa(q.Limit))
	}
	if q.Offset >= 0 {
		b.WriteString(" OFFSET " + strconv.Itoa(q.Offset))
	}
	return b.String()
}

// String is the canonical text of a condition.
func (e *SOQLExpr) String() string {
	var b strings.Builder
	e.write(&b, false)
	return b.String()
}

func (e *SOQLExpr) write(b *strings.Builder, nested bool) {
	switch e.Op {
	case SOQLAnd, SOQLOr:
		if nested {
			b.WriteByte('(')
		}
		sep := " AND "
		if e.Op == SOQLOr {
			sep = " OR "
		}
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(sep)
			}
			a.write(b, true)
		}
		if nested {
			b.WriteByte(')')
		}
	case SOQLNot:
		b.WriteString("NOT (")
		e.Args[0].write(b, false)
		b.WriteByte(')')
	default:
		b.WriteString(e.Field)
		b.WriteByte(' ')
		b.WriteString(e.Cmp)
		b.WriteByte(' ')
		if len(e.Values) == 1 && e.Cmp != "IN" && e.Cmp != "NOT IN" && e.Cmp != "INCLUDES" && e.Cmp != "EXCLUDES" {
			e.Values[0].write(b)
			return
		}
		b.WriteByte('(')
		for i, v := range e.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			v.write(b)
		}
		b.WriteByte(')')
	}
}

func (v SOQLValue) write(b *strings.Builder) {
	if v.Kind == "string" {
		b.WriteByte('\'')
		b.WriteString(v.Text)
		b.WriteByte('\'')
		return
	}
	b.WriteString(v.Text)
}

// IsSalesforceID reports whether s is an 18-character Salesforce record id
// whose last three characters are the case checksum of the first fifteen.
// The 15-character form is case-sensitive (two ids may differ only in
// case) and is not accepted: crmgate compares ids as strings.
func IsSalesforceID(s string) bool {
	if len(s) != 18 {
		return false
	}
	for i := 0; i < 18; i++ {
		c := s[i]
		if !(asciiLetter(c) || c >= '0' && c <= '9') {
			return false
		}
	}
	return SalesforceIDSuffix(s[:15]) == s[15:]
}

// SalesforceIDSuffix is the 3-character case checksum Salesforce appends
// to a 15-character id: one character per 5-character chunk, whose bit i
// says that the chunk's character i is an upper-case letter.
func SalesforceIDSuffix(id15 string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
	var out [3]byte
	for chunk := 0; chunk < 3; chunk++ {
		n := 0
		for i := 0; i < 5; i++ {
			if c := id15[chunk*5+i]; c >= 'A' && c <= 'Z' {
				n |= 1 << i
			}
		}
		out[chunk] = alphabet[n]
	}
	return string(out[:])
}
