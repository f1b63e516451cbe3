package policy

import (
	"encoding/json"
	"strconv"
	"strings"
)

// CondOp is the operator of one node of a Cond.
type CondOp uint8

// Cond operators. The set is deliberately small: it is what every CRM query
// language crmgate pushes into (SuiteCRM filter[], EspoCRM where[], OData
// $filter, SOQL WHERE, HubSpot filterGroups) can say with the same meaning
// as Rego, so a profile translating a Cond never has to guess.
const (
	// CondTrue matches every record; CondFalse none.
	CondTrue CondOp = iota
	CondFalse
	// CondEq matches records whose Field equals Values[0]: present, not
	// null, same JSON type and value (Rego's ==). A missing or null field
	// never matches, as in SQL.
	CondEq
	// CondIn matches records whose Field equals one of Values (two or more,
	// distinct, sorted).
	CondIn
	// CondAnd and CondOr combine Args (two or more).
	CondAnd
	CondOr
)

// Cond is a record rule as a condition on the record's fields, the form in
// which crmgate pushes it into a CRM's own list query. Values are strings,
// json.Number or bools, compared as Rego compares them.
type Cond struct {
	Op     CondOp
	Field  string
	Values []any
	Args   []Cond
}

// Pushdown levels: how a RecordFilter's Cond relates to the record rule.
const (
	// PushExact: a record matches Cond exactly when record_allow admits it,
	// so a CRM applying Cond returns full pages and true totals.
	PushExact = "exact"
	// PushPartial: every record record_allow admits matches Cond, but some
	// that match are refused; the CRM's pages come back short and totals
	// are hidden, as without pushdown, but fewer records travel.
	PushPartial = "partial"
	// PushNone: nothing is pushed (Cond is CondTrue).
	PushNone = "none"
)

// Pushdown is what a RecordFilter can push into the CRM's list query.
type Pushdown struct {
	// Level is PushExact, PushPartial or PushNone.
	Level string
	Cond  Cond
	// Reason says why the level is not exact, for the decision log.
	Reason string
}

// String writes the condition in a compact, Rego-like form for logs and
// test failures, e.g. (assigned_user_id in ["u-1","u-2"] or id == "a-1").
func (c Cond) String() string {
	var b strings.Builder
	c.write(&b)
	return b.String()
}

func (c Cond) write(b *strings.Builder) {
	switch c.Op {
	case CondTrue:
		b.WriteString("true")
	case CondFalse:
		b.WriteString("false")
	case CondEq:
		b.WriteString(c.Field)
		b.WriteString(" == ")
		writeCondValue(b, c.Values[0])
	case CondIn:
		b.WriteString(c.Field)
		b.WriteString(" in [")
		for i, v := range c.Values {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCondValue(b, v)
		}
		b.WriteByte(']')
	case CondAnd, CondOr:
		sep := " and "
		if c.Op == CondOr {
			sep = " or "
		}
		b.WriteByte('(')
		for i, a := range c.Args {
			if i > 0 {
				b.WriteString(sep)
			}
			a.write(b)
		}
		b.WriteByte(')')
	}
}

func writeCondValue(b *strings.Builder, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString(strconv.Quote(v))
	case json.Number:
		b.WriteString(v.String())
	case bool:
		b.WriteString(strconv.FormatBool(v))
	default:
		b.WriteString("?")
	}
}

// Match reports whether record (field → JSON value as the redactor hands
// records to the record rule: string, json.Number, bool, nil, or a
// composite) matches the condition, with the meaning the operators
// document. Tests hold pushed queries to it, and it is the reference for
// the profiles' translations.
func (c Cond) Match(record map[string]any) bool {
	switch c.Op {
	case CondTrue:
		return true
	case CondFalse:
		return false
	case CondEq, CondIn:
		v, ok := record[c.Field]
		if !ok {
			return false
		}
		for _, want := range c.Values {
			if condValueEqual(v, want) {
				return true
			}
		}
		return false
	case CondAnd:
		for _, a := range c.Args {
			if !a.Match(record) {
				return false
			}
		}
		return true
	case CondOr:
		for _, a := range c.Args {
			if a.Match(record) {
				return true
			}
		}
		return false
	}
	return false
}

// condValueEqual compares as Rego does: same type, same value; numbers by
// value (1 and 1.0 are equal), never a number with a string.
func condValueEqual(got, want any) bool {
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		return ok && g == w
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case json.Number:
		var g json.Number
		switch x := got.(type) {
		case json.Number:
			g = x
		case float64:
			g = json.Number(strconv.FormatFloat(x, 'g', -1, 64))
		default:
			return false
		}
		if g == w {
			return true
		}
		a, err1 := strconv.ParseFloat(string(g), 64)
		b, err2 := strconv.ParseFloat(string(w), 64)
		return err1 == nil && err2 == nil && a == b
	}
	return false
}
