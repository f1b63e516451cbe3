package profile

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/crmgate/crmgate/policy/cond"
	"github.com/go-json-experiment/json"
)

// ErrBadQuery means a query parameter names a field in a form crmgate
// cannot check (an expression, an undecodable name or value, a malformed
// JSON search): the request is refused rather than passed on unread.
var ErrBadQuery = errors.New("bad query")

// FieldUse says what a query parameter does with the field it names.
type FieldUse string

// Field uses found in list queries.
const (
	// UseFilter restricts the records returned by the field's value
	// (SuiteCRM filter[f][op], EspoCRM where[i][attribute]).
	UseFilter FieldUse = "filter"
	// UseSort orders the records by the field (SuiteCRM sort, EspoCRM
	// orderBy).
	UseSort FieldUse = "sort"
	// UseSelect asks for the field in the response (SuiteCRM fields[M],
	// EspoCRM select). The response is redacted anyway; it is reported for
	// completeness.
	UseSelect FieldUse = "select"
	// UseText is a full-text search over fields the CRM chooses (EspoCRM
	// textFilter); Name is empty because crmgate cannot know which.
	UseText FieldUse = "text"
)

// QueryField is one field a list query names.
type QueryField struct {
	// Name is the field as the client wrote it, possibly link.field.
	Name string
	Use  FieldUse
	// Param is the query parameter that named it, for logs.
	Param string
	// Strict marks a selected field whose naming is refused, not only
	// redacted, when the field is hidden (OData $select: Dataverse would
	// also compute annotations and formatted values for it).
	Strict bool
}

// QueryFields lists the fields a raw query string filters, sorts, selects
// or text-searches on, read the way this profile's CRM reads its list
// parameters. A filter or a sort on a field is an oracle for its values
// (filter[cost][gt]=100 answers "which products cost more than 100?" by
// which records come back), so the proxy refuses those that name fields the
// subject may not see.
//
// Names are read as PHP parses a query string (both CRMs are PHP):
// percent-decoded, "+" as space, leading spaces dropped, cut at a NUL, the
// base name up to the first "[" and the bracketed keys after it. Base names
// compare case-insensitively, so a spelling PHP would not read is refused
// too rather than let through. A field name that is not an identifier
// (EspoCRM's expression attributes such as "MUL:(costPrice,2)") is
// ErrBadQuery. Profiles other than the built-in ones know no list
// parameters and return nil.
func (p *Profile) QueryFields(rawQuery string) ([]QueryField, error) {
	if p.Dialect == nil || rawQuery == "" {
		return nil, nil
	}
	return p.Dialect.QueryFields(rawQuery, nil)
}

// ListQueryFields is QueryFields for a request whose body may be a query
// too (Match.QueryBody): body is that body, nil otherwise.
func (p *Profile) ListQueryFields(rawQuery string, body []byte) ([]QueryField, error) {
	if p.Dialect == nil || rawQuery == "" && body == nil {
		return nil, nil
	}
	return p.Dialect.QueryFields(rawQuery, body)
}

// phpQuery is the Dialect of the PHP CRMs (SuiteCRM, EspoCRM): list
// parameters in a PHP query string, read by params.
type phpQuery struct {
	crm    string
	params map[string]paramReader
}

func (d phpQuery) QueryFields(rawQuery string, _ []byte) ([]QueryField, error) {
	params := d.params
	var out []QueryField
	for raw := rawQuery; raw != ""; {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, fmt.Errorf("query fields: parameter name %q: %w", truncate(rawName), ErrBadQuery)
		}
		base, keys := phpKey(name)
		read, ok := params[strings.ToLower(base)]
		if !ok {
			continue
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("query fields: parameter %q: value: %w", truncate(name), ErrBadQuery)
		}
		out, err = read(out, name, keys, value)
		if err != nil {
			return nil, fmt.Errorf("query fields: parameter %q: %w", truncate(name), err)
		}
	}
	return out, nil
}

// paramReader appends the fields one parameter names.
type paramReader func(out []QueryField, param string, keys []string, value string) ([]QueryField, error)

// queryParams are each built-in CRM's list parameters that name fields,
// keyed by lower-case base name. Sources: SuiteCRM docs "JSON API > Get
// list of records" (filter, sort, fields); EspoCRM docs "API > Search
// parameters" (where, orderBy, select, textFilter, searchParams) and
// Espo\Core\Select\SearchParams (the legacy aliases sortBy, whereGroup,
// attributeSelect, q and a where item's "field").
var queryParams = map[string]map[string]paramReader{
	"suitecrm8": {
		"filter": suiteFilter,
		"sort":   listOf(UseSort),
		"fields": listOf(UseSelect),
	},
	"espocrm": {
		"where":           espoWhere,
		"wheregroup":      espoWhere,
		"orderby":         listOf(UseSort),
		"sortby":          listOf(UseSort),
		"select":          listOf(UseSelect),
		"attributeselect": listOf(UseSelect),
		"textfilter":      textSearch,
		"q":               textSearch,
		"searchparams":    espoSearchParams,
	},
}

// suiteFilter reads filter[FIELD][op]=v; filter[operator] combines them.
func suiteFilter(out []QueryField, param string, keys []string, _ string) ([]QueryField, error) {
	if len(keys) == 0 || keys[0] == "operator" {
		return out, nil
	}
	return addField(out, keys[0], UseFilter, param)
}

// espoWhere reads where[i][attribute]=FIELD at any depth (an "or" or "and"
// item nests its items under value), and the legacy where[i][field].
func espoWhere(out []QueryField, param string, keys []string, value string) ([]QueryField, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("where without an index: %w", ErrBadQuery)
	}
	last := keys[len(keys)-1]
	if len(keys) >= 2 && last == "" {
		// attribute[]=x: PHP makes the attribute an array.
		last = keys[len(keys)-2]
	}
	if strings.EqualFold(last, "attribute") || strings.EqualFold(last, "field") {
		return addField(out, value, UseFilter, param)
	}
	return out, nil
}

// listOf reads a comma-separated list of fields; a leading "-" or "+"
// (JSON:API sort direction) is not part of the name.
func listOf(use FieldUse) paramReader {
	return func(out []QueryField, param string, _ []string, value string) ([]QueryField, error) {
		for _, f := range strings.Split(value, ",") {
			f = strings.TrimSpace(f)
			if use == UseSort {
				f = strings.TrimLeft(f, "-+ ")
			}
			if f == "" {
				continue
			}
			var err error
			if out, err = addField(out, f, use, param); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
}

func textSearch(out []QueryField, param string, _ []string, value string) ([]QueryField, error) {
	if strings.TrimSpace(value) == "" {
		return out, nil
	}
	return append(out, QueryField{Use: UseText, Param: param}), nil
}

// espoSearchParams reads the JSON form of the search parameters.
func espoSearchParams(out []QueryField, param string, _ []string, value string) ([]QueryField, error) {
	var sp struct {
		Where           any `json:"where"`
		OrderBy         any `json:"orderBy"`
		SortBy          any `json:"sortBy"`
		Select          any `json:"select"`
		AttributeSelect any `json:"attributeSelect"`
		TextFilter      any `json:"textFilter"`
		Q               any `json:"q"`
	}
	// Unknown members are tolerated (primaryFilter, maxSize...), but not
	// duplicates or case variants of the ones read here: PHP's json_decode
	// keeps the last duplicate, and a reader that kept the first would look
	// at the wrong one.
	if err := json.Unmarshal([]byte(value), &sp, json.RejectUnknownMembers(false), json.MatchCaseInsensitiveNames(false)); err != nil {
		return nil, fmt.Errorf("searchParams: %w: %w", ErrBadQuery, err)
	}
	var err error
	if out, err = jsonWhere(out, sp.Where, param, 0); err != nil {
		return nil, err
	}
	for _, v := range []struct {
		val any
		use FieldUse
	}{{sp.OrderBy, UseSort}, {sp.SortBy, UseSort}, {sp.Select, UseSelect}, {sp.AttributeSelect, UseSelect}} {
		switch x := v.val.(type) {
		case nil:
		case string:
			if out, err = listOf(v.use)(out, param, nil, x); err != nil {
				return nil, err
			}
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("searchParams: field list holds a non-string: %w", ErrBadQuery)
				}
				if out, err = addField(out, s, v.use, param); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("searchParams: field list of type %T: %w", x, ErrBadQuery)
		}
	}
	for _, t := range []any{sp.TextFilter, sp.Q} {
		if s, ok := t.(string); ok && strings.TrimSpace(s) != "" {
			out = append(out, QueryField{Use: UseText, Param: param})
		} else if t != nil && !ok {
			return nil, fmt.Errorf("searchParams: text filter of type %T: %w", t, ErrBadQuery)
		}
	}
	return out, nil
}

// maxWhereDepth bounds the nesting of JSON where items.
const maxWhereDepth = 32

func jsonWhere(out []QueryField, v any, param string, depth int) ([]QueryField, error) {
	if depth > maxWhereDepth {
		return nil, fmt.Errorf("searchParams: where nested too deeply: %w", ErrBadQuery)
	}
	var err error
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if out, err = jsonWhere(out, e, param, depth+1); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k, e := range x {
			switch {
			case strings.EqualFold(k, "attribute") || strings.EqualFold(k, "field"):
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("searchParams: where attribute of type %T: %w", e, ErrBadQuery)
				}
				if out, err = addField(out, s, UseFilter, param); err != nil {
					return nil, err
				}
			case strings.EqualFold(k, "value"):
				// Nested items of "and"/"or"/"not"; plain values hold no names.
				if out, err = jsonWhere(out, e, param, depth+1); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

func addField(out []QueryField, name string, use FieldUse, param string) ([]QueryField, error) {
	if !validFieldRef(name) {
		return nil, fmt.Errorf("field %q is not a plain field name: %w", truncate(name), ErrBadQuery)
	}
	return append(out, QueryField{Name: name, Use: use, Param: param}), nil
}

// validFieldRef accepts identifiers joined by dots (link.field), each
// [A-Za-z_][A-Za-z0-9_]{0,63}. Anything else could be an expression a CRM
// evaluates over fields crmgate cannot see in it.
func validFieldRef(s string) bool {
	if s == "" || len(s) > maxPathLen {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || len(part) > maxNameLen {
			return false
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
			case i > 0 && c >= '0' && c <= '9':
			default:
				return false
			}
		}
	}
	return true
}

// queryParam is one name=value pair of a raw query string.
type queryParam struct {
	raw         string // the pair as sent, still encoded
	name, value string // percent-decoded, "+" as space
	hasValue    bool   // an "=" was present
}

// splitQuery splits a raw query string into its pairs, decoding each
// name and value as the CRMs' frameworks do (PHP, .NET and Salesforce all
// take "+" as a space); empty pairs (a&&b) are skipped, a pair that does
// not decode is ErrBadQuery. who prefixes the errors.
func splitQuery(rawQuery, who string) ([]queryParam, error) {
	var out []queryParam
	for raw := rawQuery; raw != ""; {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		rawName, rawValue, hasValue := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			return nil, fmt.Errorf("%s: parameter name %q: %w", who, truncate(rawName), ErrBadQuery)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, fmt.Errorf("%s: parameter %q: value: %w", who, truncate(name), ErrBadQuery)
		}
		out = append(out, queryParam{raw: pair, name: name, value: value, hasValue: hasValue})
	}
	return out, nil
}

// FieldRefParts are the names a field reference can mean to the CRM: the
// whole reference and, for link.field, each part, so a policy hiding
// "costPrice" also covers "product.costPrice".
func FieldRefParts(ref string) []string {
	parts := strings.Split(ref, ".")
	if len(parts) == 1 {
		return parts
	}
	return append(parts, ref)
}

// phpKey splits a decoded parameter name the way PHP registers it: leading
// spaces dropped, cut at a NUL, the base name up to the first "[" with " "
// and "." turned into "_", then each "[key]". A "[" without a closing "]"
// is part of the base name (as "_"); text after a "]" that does not open
// another key ends the name.
func phpKey(name string) (string, []string) {
	name = strings.TrimLeft(name, " ")
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	mangle := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == ' ' || r == '.' || r == '[' {
				return '_'
			}
			return r
		}, s)
	}
	open := strings.IndexByte(name, '[')
	if open < 0 || !strings.Contains(name[open:], "]") {
		return mangle(name), nil
	}
	base := mangle(name[:open])
	var keys []string
	rest := name[open:]
	for len(rest) > 0 && rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			break
		}
		keys = append(keys, rest[1:end])
		rest = rest[end+1:]
	}
	return base, keys
}

// Push adds c to a list query in the CRM's filter syntax (push.go).
func (d phpQuery) Push(m Match, rawQuery string, body []byte, c cond.Cond) (string, []byte, bool, error) {
	var q string
	var ok bool
	var err error
	switch d.crm {
	case "suitecrm8":
		q, ok, err = pushSuite(m.Module, rawQuery, c)
	case "espocrm":
		q, ok, err = pushEspo(rawQuery, c)
	default:
		return rawQuery, body, false, nil
	}
	return q, body, ok, err
}
