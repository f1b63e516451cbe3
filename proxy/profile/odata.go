package profile

import (
	"fmt"
	"strings"
)

// An OData v4 $filter parser: the subset of the OData ABNF (OData v4.01
// Part 2, URL Conventions, §5.1.1, and odata-abnf-construction-rules) that
// Dataverse clients use for list queries and that crmgate can classify
// completely:
//
//	boolExpr   = orExpr
//	orExpr     = andExpr *( RWS "or" RWS andExpr )
//	andExpr    = notExpr *( RWS "and" RWS notExpr )
//	notExpr    = "not" RWS notExpr / primary
//	primary    = "(" boolExpr ")" / method / comparison
//	method     = ( "contains" / "startswith" / "endswith" ) "(" member "," string ")"
//	comparison = operand RWS ( "eq" / "ne" / "gt" / "ge" / "lt" / "le" ) RWS operand
//	operand    = member / literal
//	member     = identifier             ; a property of the entity itself
//	literal    = string / guid / dateTimeOffset / date / number / "null" / "true" / "false"
//
// Everything else is refused (ErrBadQuery): navigation paths ("a/b"),
// lambdas (any/all, which need a path), other functions and Dataverse's
// query functions (Microsoft.Dynamics.CRM.*), parameter aliases (@p), the
// "in" and "has" operators, arithmetic, casts and a bare boolean property.
// Each of them either names fields crmgate would have to resolve through
// another entity's metadata or evaluates an expression crmgate cannot see
// into. Keywords are case-sensitive, as the ABNF says; "EQ" is not an
// operator here, so it is refused rather than guessed at.
//
// The parse is complete, and crmgate forwards its own serialisation of it
// (String), never the client's text: whatever Dataverse reads is exactly
// what crmgate classified.

// ODataOp is a node kind of a parsed $filter.
type ODataOp uint8

// $filter node kinds.
const (
	ODataOr ODataOp = iota
	ODataAnd
	ODataNot
	ODataCmp
	ODataFunc
)

// ODataExpr is one node of a parsed $filter.
type ODataExpr struct {
	Op ODataOp
	// Args are the operands of or/and (two) and not (one).
	Args []*ODataExpr
	// Cmp is eq, ne, gt, ge, lt or le (ODataCmp), or the method name
	// (ODataFunc).
	Cmp string
	// L and R are the comparison's operands; a method's are its property
	// (L) and string (R).
	L, R ODataOperand
}

// ODataOperand is a property or a literal.
type ODataOperand struct {
	// Field is the property name; empty for a literal.
	Field string
	// Kind of literal: "string", "guid", "number", "date", "null", "bool".
	Kind string
	// Value is the literal as the OData text says it, unquoted for strings.
	Value string
}

// maxFilterLen and maxFilterDepth bound what one $filter costs to parse.
const (
	maxFilterLen   = 8192
	maxFilterDepth = 32
)

// ParseODataFilter parses a percent-decoded $filter value.
func ParseODataFilter(s string) (*ODataExpr, error) {
	if len(s) > maxFilterLen {
		return nil, fmt.Errorf("$filter longer than %d bytes: %w", maxFilterLen, ErrBadQuery)
	}
	p := &odataParser{s: s}
	e, err := p.or(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, p.errf("unexpected %q", p.rest())
	}
	return e, nil
}

type odataParser struct {
	s string
	i int
}

func (p *odataParser) errf(format string, a ...any) error {
	return fmt.Errorf("$filter at %d: %s: %w", p.i, fmt.Sprintf(format, a...), ErrBadQuery)
}

func (p *odataParser) rest() string { return truncate(p.s[p.i:]) }

func (p *odataParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// keyword consumes word when it stands alone at the cursor (after spaces).
func (p *odataParser) keyword(word string) bool {
	save := p.i
	p.space()
	if strings.HasPrefix(p.s[p.i:], word) {
		end := p.i + len(word)
		if end == len(p.s) || !identByte(p.s[end]) {
			p.i = end
			return true
		}
	}
	p.i = save
	return false
}

func (p *odataParser) or(depth int) (*ODataExpr, error) {
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = &ODataExpr{Op: ODataOr, Args: []*ODataExpr{l, r}}
	}
	return l, nil
}

func (p *odataParser) and(depth int) (*ODataExpr, error) {
	l, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		l = &ODataExpr{Op: ODataAnd, Args: []*ODataExpr{l, r}}
	}
	return l, nil
}

func (p *odataParser) not(depth int) (*ODataExpr, error) {
	if depth > maxFilterDepth {
		return nil, p.errf("nested too deeply")
	}
	if p.keyword("not") {
		e, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return &ODataExpr{Op: ODataNot, Args: []*ODataExpr{e}}, nil
	}
	return p.primary(depth)
}

var odataMethods = map[string]bool{"contains": true, "startswith": true, "endswith": true}

var odataCmps = []string{"eq", "ne", "gt", "ge", "lt", "le"}

// odataReserved may not be property names: written back they would read
// as operators.
var odataReserved = map[string]bool{
	"and": true, "or": true, "not": true, "eq": true, "ne": true, "gt": true, "ge": true, "lt": true,
	"le": true, "has": true, "in": true, "null": true, "true": true, "false": true, "any": true, "all": true,
	"add": true, "sub": true, "mul": true, "div": true, "divby": true, "mod": true,
}

func (p *odataParser) primary(depth int) (*ODataExpr, error) {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		e, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, p.errf("missing )")
		}
		p.i++
		return e, nil
	}
	save := p.i
	if name := p.ident(); name != "" && p.i < len(p.s) && p.s[p.i] == '(' {
		if !odataMethods[name] {
			return nil, p.errf("function %q is not one crmgate classifies", truncate(name))
		}
		p.i++
		p.space()
		f := p.ident()
		if f == "" {
			return nil, p.errf("%s needs a property first", name)
		}
		if err := p.member(f); err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ',' {
			return nil, p.errf("%s takes a property and a string", name)
		}
		p.i++
		p.space()
		lit, err := p.literal()
		if err != nil {
			return nil, err
		}
		if lit.Kind != "string" {
			return nil, p.errf("%s takes a string", name)
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, p.errf("missing ) after %s", name)
		}
		p.i++
		return &ODataExpr{Op: ODataFunc, Cmp: name, L: ODataOperand{Field: f}, R: lit}, nil
	}
	p.i = save
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := ""
	for _, c := range odataCmps {
		if p.keyword(c) {
			op = c
			break
		}
	}
	if op == "" {
		if l.Field != "" {
			return nil, p.errf("property %q is not compared (a bare boolean property is not accepted)", truncate(l.Field))
		}
		return nil, p.errf("expected a comparison operator at %q", p.rest())
	}
	r, err := p.operand()
	if err != nil {
		return nil, err
	}
	if l.Field == "" && r.Field == "" {
		return nil, p.errf("a comparison must name a property")
	}
	return &ODataExpr{Op: ODataCmp, Cmp: op, L: l, R: r}, nil
}

// member checks a property name just read: no path, alias, cast or
// reserved word.
func (p *odataParser) member(name string) error {
	if odataReserved[name] {
		return p.errf("%q is an operator, not a property", name)
	}
	if len(name) > 128 {
		return p.errf("property name too long")
	}
	if p.i < len(p.s) {
		switch p.s[p.i] {
		case '/':
			return p.errf("navigation path %s/... (lambdas and related properties are not accepted)", truncate(name))
		case '.', '(', '@', '\'':
			return p.errf("%q after property %s", p.s[p.i], truncate(name))
		}
	}
	return nil
}

func (p *odataParser) operand() (ODataOperand, error) {
	p.space()
	if p.i >= len(p.s) {
		return ODataOperand{}, p.errf("missing operand")
	}
	c := p.s[p.i]
	if c == '\'' || c == '-' || c >= '0' && c <= '9' {
		return p.literal()
	}
	if n := guidAt(p.s[p.i:]); n > 0 {
		return p.literal()
	}
	save := p.i
	name := p.ident()
	switch name {
	case "":
		return ODataOperand{}, p.errf("unexpected %q", p.rest())
	case "null", "true", "false":
		p.i = save
		return p.literal()
	}
	if err := p.member(name); err != nil {
		return ODataOperand{}, err
	}
	return ODataOperand{Field: name}, nil
}

func (p *odataParser) ident() string {
	start := p.i
	if p.i < len(p.s) && (p.s[p.i] == '_' || asciiLetter(p.s[p.i])) {
		p.i++
		for p.i < len(p.s) && identByte(p.s[p.i]) {
			p.i++
		}
	}
	return p.s[start:p.i]
}

func asciiLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func identByte(c byte) bool { return asciiLetter(c) || c >= '0' && c <= '9' || c == '_' }

func (p *odataParser) literal() (ODataOperand, error) {
	p.space()
	s := p.s[p.i:]
	switch {
	case strings.HasPrefix(s, "'"):
		var b strings.Builder
		for j := 1; j < len(s); j++ {
			if s[j] != '\'' {
				b.WriteByte(s[j])
				continue
			}
			if j+1 < len(s) && s[j+1] == '\'' {
				b.WriteByte('\'')
				j++
				continue
			}
			p.i += j + 1
			return ODataOperand{Kind: "string", Value: b.String()}, nil
		}
		return ODataOperand{}, p.errf("unterminated string")
	case guidAt(s) > 0:
		p.i += 36
		return p.endLiteral(ODataOperand{Kind: "guid", Value: strings.ToLower(s[:36])})
	}
	if n := dateAt(s); n > 0 {
		p.i += n
		return p.endLiteral(ODataOperand{Kind: "date", Value: s[:n]})
	}
	if n := numberAt(s); n > 0 {
		p.i += n
		return p.endLiteral(ODataOperand{Kind: "number", Value: s[:n]})
	}
	for _, w := range []string{"null", "true", "false"} {
		if p.keyword(w) {
			kind := "bool"
			if w == "null" {
				kind = "null"
			}
			return ODataOperand{Kind: kind, Value: w}, nil
		}
	}
	return ODataOperand{}, p.errf("not a literal: %q", p.rest())
}

// endLiteral refuses a literal run on into other characters (a suffix
// such as 1.5M or a GUID with trailing text).
func (p *odataParser) endLiteral(o ODataOperand) (ODataOperand, error) {
	if p.i < len(p.s) && (identByte(p.s[p.i]) || p.s[p.i] == '.' || p.s[p.i] == '-' || p.s[p.i] == ':') {
		return ODataOperand{}, p.errf("literal runs on at %q", p.rest())
	}
	return o, nil
}

func hexByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// guidAt returns 36 when s starts with a GUID 8-4-4-4-12.
func guidAt(s string) int {
	if len(s) < 36 {
		return 0
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return 0
			}
		default:
			if !hexByte(s[i]) {
				return 0
			}
		}
	}
	if len(s) > 36 && (hexByte(s[36]) || s[36] == '-') {
		return 0
	}
	return 36
}

// IsGUID reports whether s is exactly one GUID.
func IsGUID(s string) bool { return len(s) == 36 && guidAt(s) == 36 }

func digitsAt(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// numberAt reads -?digits(.digits)?([eE][+-]?digits)?.
func numberAt(s string) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	d := digitsAt(s[i:])
	if d == 0 || d > 30 {
		return 0
	}
	i += d
	if i < len(s) && s[i] == '.' {
		f := digitsAt(s[i+1:])
		if f == 0 {
			return 0
		}
		i += 1 + f
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		e := digitsAt(s[j:])
		if e == 0 {
			return 0
		}
		i = j + e
	}
	return i
}

// dateAt reads YYYY-MM-DD optionally followed by THH:MM[:SS[.fff]] and Z
// or ±HH:MM (OData date and dateTimeOffset literals).
func dateAt(s string) int {
	fixed := func(i int, pattern string) bool {
		if i+len(pattern) > len(s) {
			return false
		}
		for k := 0; k < len(pattern); k++ {
			c := s[i+k]
			if pattern[k] == 'd' {
				if c < '0' || c > '9' {
					return false
				}
			} else if c != pattern[k] {
				return false
			}
		}
		return true
	}
	if !fixed(0, "dddd-dd-dd") {
		return 0
	}
	i := 10
	if !fixed(i, "Tdd:dd") {
		return i
	}
	i += 6
	if fixed(i, ":dd") {
		i += 3
		if i < len(s) && s[i] == '.' {
			f := digitsAt(s[i+1:])
			if f == 0 {
				return 0
			}
			i += 1 + f
		}
	}
	switch {
	case i < len(s) && s[i] == 'Z':
		return i + 1
	case fixed(i, "+dd:dd") || fixed(i, "-dd:dd"):
		return i + 6
	}
	return 0
}

// Fields appends every property e names.
func (e *ODataExpr) Fields(out []string) []string {
	switch e.Op {
	case ODataOr, ODataAnd, ODataNot:
		for _, a := range e.Args {
			out = a.Fields(out)
		}
	default:
		for _, o := range []ODataOperand{e.L, e.R} {
			if o.Field != "" {
				out = append(out, o.Field)
			}
		}
	}
	return out
}

// String writes e back as OData, every group parenthesised so that no
// precedence is left to the reader.
func (e *ODataExpr) String() string {
	var b strings.Builder
	e.write(&b)
	return b.String()
}

func (e *ODataExpr) write(b *strings.Builder) {
	switch e.Op {
	case ODataOr, ODataAnd:
		op := " and "
		if e.Op == ODataOr {
			op = " or "
		}
		b.WriteByte('(')
		e.Args[0].write(b)
		b.WriteString(op)
		e.Args[1].write(b)
		b.WriteByte(')')
	case ODataNot:
		b.WriteString("not (")
		e.Args[0].write(b)
		b.WriteByte(')')
	case ODataFunc:
		b.WriteString(e.Cmp)
		b.WriteByte('(')
		b.WriteString(e.L.Field)
		b.WriteByte(',')
		e.R.write(b)
		b.WriteByte(')')
	case ODataCmp:
		e.L.write(b)
		b.WriteByte(' ')
		b.WriteString(e.Cmp)
		b.WriteByte(' ')
		e.R.write(b)
	}
}

func (o ODataOperand) write(b *strings.Builder) {
	switch {
	case o.Field != "":
		b.WriteString(o.Field)
	case o.Kind == "string":
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(o.Value, "'", "''"))
		b.WriteByte('\'')
	default:
		b.WriteString(o.Value)
	}
}
