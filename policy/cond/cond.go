// Package cond is the record rule as a condition a CRM query can carry: the
// pushdown IR between the policy compiler, which produces it, and the CRM
// profiles, which translate it into SuiteCRM filter[], EspoCRM where[], OData
// $filter, SOQL WHERE or HubSpot filterGroups. It has no dependencies so the
// profiles can use it without the policy engine.
package cond

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Op is the operator of one node of a Cond.
type Op uint8

// Cond operators. The set is deliberately small: it is what every CRM query
// language crmgate pushes into (SuiteCRM filter[], EspoCRM where[], OData
// $filter, SOQL WHERE, HubSpot filterGroups) can say with the same meaning
// as Rego, so a profile translating a Cond never has to guess.
const (
	// True matches every record; False none.
	True Op = iota
	False
	// Eq matches records whose Field equals Values[0]: present, not
	// null, same JSON type and value (Rego's ==). A missing or null field
	// never matches, as in SQL.
	Eq
	// In matches records whose Field equals one of Values (two or more,
	// distinct, sorted).
	In
	// And and Or combine Args (two or more).
	And
	Or
)

// Cond is a record rule as a condition on the record's fields, the form in
// which crmgate pushes it into a CRM's own list query. Values are strings,
// json.Number or bools, compared as Rego compares them.
type Cond struct {
	Op     Op
	Field  string
	Values []any
	Args   []Cond
}

// Pushdown levels: how a RecordFilter's Cond relates to the record rule.
const (
	// Exact: a record matches Cond exactly when record_allow admits it,
	// so a CRM applying Cond returns full pages and true totals.
	Exact = "exact"
	// Partial: every record record_allow admits matches Cond, but some
	// that match are refused; the CRM's pages come back short and totals
	// are hidden, as without pushdown, but fewer records travel.
	Partial = "partial"
	// None: nothing is pushed (Cond is True).
	None = "none"
)

// Pushdown is what a RecordFilter can push into the CRM's list query.
type Pushdown struct {
	// Level is Exact, Partial or None.
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
	case True:
		b.WriteString("true")
	case False:
		b.WriteString("false")
	case Eq:
		b.WriteString(c.Field)
		b.WriteString(" == ")
		writeValue(b, c.Values[0])
	case In:
		b.WriteString(c.Field)
		b.WriteString(" in [")
		for i, v := range c.Values {
			if i > 0 {
				b.WriteByte(',')
			}
			writeValue(b, v)
		}
		b.WriteByte(']')
	case And, Or:
		sep := " and "
		if c.Op == Or {
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

func writeValue(b *strings.Builder, v any) {
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
	case True:
		return true
	case False:
		return false
	case Eq, In:
		v, ok := record[c.Field]
		if !ok {
			return false
		}
		for _, want := range c.Values {
			if valueEqual(v, want) {
				return true
			}
		}
		return false
	case And:
		for _, a := range c.Args {
			if !a.Match(record) {
				return false
			}
		}
		return true
	case Or:
		for _, a := range c.Args {
			if a.Match(record) {
				return true
			}
		}
		return false
	}
	return false
}

// valueEqual compares as Rego does: same type, same value; numbers by
// value (1 and 1.0 are equal), never a number with a string.
func valueEqual(got, want any) bool {
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
		case int:
			g = json.Number(strconv.Itoa(x))
		case int64:
			g = json.Number(strconv.FormatInt(x, 10))
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
