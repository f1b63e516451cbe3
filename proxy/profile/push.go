package profile

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/crmgate/crmgate/policy/cond"
)

// Pushing a record rule into a PHP CRM's query string.
//
// Both CRMs read their list filters from PHP's parse of the query string,
// which has quirks a naive rewrite would trip over: a later duplicate
// replaces an earlier one (filter[owner][eq] twice: the last wins), a
// scalar replaces an array (filter=x after filter[owner][eq]=me drops the
// filter), names are percent-decoded before brackets are read, leading
// spaces are dropped, and PHP stops reading after max_input_vars (1000 by
// default) variables, so parameters at the end can silently vanish.
//
// So crmgate never appends to the client's filter. It reads the client's
// filter parameters strictly (a duplicate, a scalar where an array belongs,
// an unknown operator, a name PHP might read differently is refused),
// drops them from the query, and writes one canonical filter at the front:
// the pushed condition first, then the client's own terms, combined with
// AND. Everything else in the query is passed on as sent.

// maxPushParams bounds the parameters of a query crmgate rewrites, far
// below PHP's max_input_vars, so that no parameter the CRM must read can
// fall past the limit.
const maxPushParams = 200

// phpParam is one query parameter as PHP reads its name.
type phpParam struct {
	raw   string // the parameter as sent, name=value, still encoded
	base  string
	keys  []string
	value string
}

// parsePHPParams splits a raw query the way PHP names its variables.
func parsePHPParams(rawQuery string) ([]phpParam, error) {
	params, err := splitQuery(rawQuery, "push")
	if err != nil {
		return nil, err
	}
	if len(params) > maxPushParams {
		return nil, fmt.Errorf("push: more than %d query parameters: %w", maxPushParams, ErrBadQuery)
	}
	out := make([]phpParam, 0, len(params))
	for _, qp := range params {
		name, value, pair := qp.name, qp.value, qp.raw
		base, keys := phpKey(name)
		out = append(out, phpParam{raw: pair, base: base, keys: keys, value: value})
	}
	return out, nil
}

// pushValue is a Cond value as it can be written into a PHP CRM's filter:
// strings only. A number or boolean travels as text and PHP compares it
// loosely ("false" is true), so such conditions are not pushed.
func pushValue(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok
}

// plainKey accepts the bracket keys crmgate writes back: identifiers and
// indexes. A key with any other character might be read differently by
// PHP or the CRM than by crmgate.
func plainKey(k string) bool {
	if k == "" || len(k) > maxNameLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// suiteFilterOps are the operators of SuiteCRM V8's Filter (eq, neq, gt,
// gte, lt, lte). Its operator check also lets the combinators AND and OR
// through as field operators (filter[f][or]=1 becomes "f OR '1'"), so
// those are refused here.
var suiteFilterOps = map[string]bool{"eq": true, "neq": true, "gt": true, "gte": true, "lt": true, "lte": true}

// suitePushFields are the fields SuiteCRM's Filter can compare in SQL: it
// builds "table.field = value", so only a module's own database columns
// work (a relate field such as a contact's account_id is not one, and the
// CRM would fail the query). Every module has id and assigned_user_id.
var suitePushFields = map[string]map[string]bool{
	"":           {"id": true, "assigned_user_id": true},
	"Cases":      {"account_id": true},
	"AOS_Quotes": {"billing_account_id": true},
}

func suitePushable(module, field string) bool {
	return suitePushFields[""][field] || suitePushFields[module][field]
}

type suiteTerm struct{ field, op, value string }

// pushSuite adds c to a SuiteCRM V8 list query. SuiteCRM's filter is a
// flat list of field comparisons joined by one global operator, so only a
// conjunction of equalities can be pushed; sets and alternatives (a team's
// records) cannot, and are filtered after as before.
func pushSuite(module, rawQuery string, c cond.Cond) (string, bool, error) {
	if c.Op == cond.True {
		return rawQuery, true, nil
	}
	leaves := []cond.Cond{c}
	if c.Op == cond.And {
		leaves = c.Args
	}
	var pushed []suiteTerm
	for _, l := range leaves {
		if l.Op != cond.Eq || !suitePushable(module, l.Field) {
			return rawQuery, false, nil
		}
		v, ok := pushValue(l.Values[0])
		if !ok || slices.ContainsFunc(pushed, func(t suiteTerm) bool { return t.field == l.Field }) {
			return rawQuery, false, nil
		}
		pushed = append(pushed, suiteTerm{l.Field, "eq", v})
	}
	params, err := parsePHPParams(rawQuery)
	if err != nil {
		return "", false, err
	}
	var client []suiteTerm
	var rest []string
	seen := map[[2]string]bool{}
	for _, p := range params {
		if !strings.EqualFold(p.base, "filter") {
			rest = append(rest, p.raw)
			continue
		}
		if p.base != "filter" {
			return "", false, fmt.Errorf("push: parameter %q is not a filter SuiteCRM reads: %w", truncate(p.base), ErrBadQuery)
		}
		switch {
		case len(p.keys) == 1 && p.keys[0] == "operator":
			// The pushed rule must hold whatever the client filters on:
			// only AND keeps it.
			if !strings.EqualFold(strings.TrimSpace(p.value), "and") {
				return "", false, fmt.Errorf("push: filter[operator]=%q would let records past the record rule: %w", truncate(p.value), ErrBadQuery)
			}
			if seen[[2]string{"", "operator"}] {
				return "", false, fmt.Errorf("push: filter[operator] given twice: %w", ErrBadQuery)
			}
			seen[[2]string{"", "operator"}] = true
			continue
		case len(p.keys) != 2 || !plainKey(p.keys[0]) || !suiteFilterOps[strings.ToLower(p.keys[1])] || p.keys[1] != strings.ToLower(p.keys[1]):
			return "", false, fmt.Errorf("push: %q is not filter[field][eq|neq|gt|gte|lt|lte]: %w", truncate(p.base+bracketed(p.keys)), ErrBadQuery)
		}
		key := [2]string{p.keys[0], p.keys[1]}
		if seen[key] {
			// PHP would keep the last of the two; the client's intent is
			// ambiguous, and so would be the rewrite.
			return "", false, fmt.Errorf("push: filter[%s][%s] given twice: %w", key[0], key[1], ErrBadQuery)
		}
		seen[key] = true
		client = append(client, suiteTerm{p.keys[0], p.keys[1], p.value})
	}
	terms := slices.Clone(pushed)
	for _, t := range client {
		i := slices.IndexFunc(pushed, func(p suiteTerm) bool { return strings.EqualFold(p.field, t.field) && p.op == t.op })
		switch {
		case i < 0:
			terms = append(terms, t)
		case pushed[i].field == t.field && pushed[i].value == t.value:
			// The client asks for what the rule allows: one term.
		default:
			// One (field, op) holds one value: the client's and the
			// rule's cannot both be written. Filtering after answers
			// the same (their intersection) without guessing.
			return rawQuery, false, nil
		}
	}
	var b strings.Builder
	for _, t := range terms {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		fmt.Fprintf(&b, "filter[%s][%s]=%s", t.field, t.op, url.QueryEscape(t.value))
	}
	b.WriteString("&filter[operator]=and")
	for _, r := range rest {
		b.WriteByte('&')
		b.WriteString(r)
	}
	return b.String(), true, nil
}

func bracketed(keys []string) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("[" + k + "]")
	}
	return b.String()
}

// phpNode is a PHP array built from bracketed parameters, in insertion
// order, or a leaf value.
type phpNode struct {
	order []string
	kids  map[string]*phpNode
	leaf  *string
	next  int // PHP's next append index
}

// set stores value at keys, refusing what PHP would resolve by silently
// overwriting: a duplicate, or a value and an array at the same place.
func (n *phpNode) set(keys []string, value string, depth int) error {
	if depth > maxWhereDepth {
		return fmt.Errorf("nested too deeply: %w", ErrBadQuery)
	}
	if len(keys) == 0 {
		if n.leaf != nil || n.kids != nil {
			return fmt.Errorf("given twice: %w", ErrBadQuery)
		}
		n.leaf = &value
		return nil
	}
	if n.leaf != nil {
		return fmt.Errorf("a value and an array at one place: %w", ErrBadQuery)
	}
	k := keys[0]
	if k == "" {
		k = strconv.Itoa(n.next)
	}
	if !plainKey(k) {
		return fmt.Errorf("key %q: %w", truncate(k), ErrBadQuery)
	}
	if i, err := strconv.Atoi(k); err == nil && i >= n.next && strconv.Itoa(i) == k {
		n.next = i + 1
	}
	if n.kids == nil {
		n.kids = map[string]*phpNode{}
	}
	kid := n.kids[k]
	if kid == nil {
		kid = &phpNode{}
		n.kids[k] = kid
		n.order = append(n.order, k)
	}
	return kid.set(keys[1:], value, depth+1)
}

// write appends prefix[key]...=value for every leaf below n.
func (n *phpNode) write(b *strings.Builder, prefix string) {
	if n.leaf != nil {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(prefix)
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(*n.leaf))
		return
	}
	for _, k := range n.order {
		n.kids[k].write(b, prefix+"["+k+"]")
	}
}

// espoItem is a where item as crmgate writes it.
func espoItem(c cond.Cond) (*phpNode, bool) {
	n := &phpNode{}
	put := func(keys []string, v string) { _ = n.set(keys, v, 0) }
	switch c.Op {
	case cond.Eq:
		v, ok := pushValue(c.Values[0])
		if !ok || !validFieldRef(c.Field) || strings.Contains(c.Field, ".") {
			return nil, false
		}
		put([]string{"type"}, "equals")
		put([]string{"attribute"}, c.Field)
		put([]string{"value"}, v)
	case cond.In:
		if !validFieldRef(c.Field) || strings.Contains(c.Field, ".") {
			return nil, false
		}
		put([]string{"type"}, "in")
		put([]string{"attribute"}, c.Field)
		for i, x := range c.Values {
			v, ok := pushValue(x)
			if !ok {
				return nil, false
			}
			put([]string{"value", strconv.Itoa(i)}, v)
		}
	case cond.And, cond.Or:
		typ := "and"
		if c.Op == cond.Or {
			typ = "or"
		}
		put([]string{"type"}, typ)
		v := &phpNode{}
		for i, a := range c.Args {
			item, ok := espoItem(a)
			if !ok {
				return nil, false
			}
			k := strconv.Itoa(i)
			if v.kids == nil {
				v.kids = map[string]*phpNode{}
			}
			v.kids[k] = item
			v.order = append(v.order, k)
		}
		n.kids["value"] = v
		n.order = append(n.order, "value")
	default:
		return nil, false
	}
	return n, true
}

// pushEspo adds c to an EspoCRM list query as one more top-level where
// item: Espo ANDs its top-level items, and an item's or/and groups nest,
// so every Cond can be said exactly. The client's own items are renumbered
// after it, so none can share its index and overwrite part of it.
func pushEspo(rawQuery string, c cond.Cond) (string, bool, error) {
	if c.Op == cond.True {
		return rawQuery, true, nil
	}
	item, ok := espoItem(c)
	if !ok {
		return rawQuery, false, nil
	}
	params, err := parsePHPParams(rawQuery)
	if err != nil {
		return "", false, err
	}
	client := &phpNode{}
	var rest []string
	for _, p := range params {
		switch lower := strings.ToLower(p.base); {
		case lower == "searchparams" || lower == "wheregroup":
			// Espo reads these instead of where when present: the
			// client's search and the pushed item cannot both be said in
			// where[], so this list is filtered after, as before.
			return rawQuery, false, nil
		case lower == "where" && p.base != "where":
			return "", false, fmt.Errorf("push: parameter %q is not a where Espo reads: %w", truncate(p.base), ErrBadQuery)
		case lower == "where":
			if len(p.keys) < 2 {
				return "", false, fmt.Errorf("push: where%s is not a where item: %w", bracketed(p.keys), ErrBadQuery)
			}
			if err := client.set(p.keys, p.value, 0); err != nil {
				return "", false, fmt.Errorf("push: where%s: %w", bracketed(p.keys), err)
			}
		default:
			rest = append(rest, p.raw)
		}
	}
	var b strings.Builder
	item.write(&b, "where[0]")
	for i, k := range client.order {
		client.kids[k].write(&b, "where["+strconv.Itoa(i+1)+"]")
	}
	for _, r := range rest {
		b.WriteByte('&')
		b.WriteString(r)
	}
	return b.String(), true, nil
}
