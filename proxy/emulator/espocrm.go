package emulator

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// EspoOptions configures the EspoCRM emulator.
type EspoOptions struct {
	// APIKey, when set, is required in the X-Api-Key header (EspoCRM's
	// API-key authentication for API users). Empty accepts any request.
	APIKey string
	// Gzip compresses responses for clients that send Accept-Encoding: gzip.
	Gzip bool
	// MaxSize is the largest maxSize a list accepts (EspoCRM's default
	// limit is 200; larger asks are refused with 403). Zero means 200.
	MaxSize int
}

type espo struct {
	ds   *Dataset
	opts EspoOptions
}

// NewEspoCRM returns an http.Handler imitating EspoCRM's REST API under
// /api/v1 (docs.espocrm.com "API > CRUD operations", "Related records",
// "Search params"): records are flat objects, lists are
// {"total":N,"list":[...]} with maxSize/offset/select/orderBy/order and
// where[i][type|attribute|value], errors are bare status codes with an
// X-Status-Reason header.
func NewEspoCRM(ds *Dataset, opts EspoOptions) http.Handler {
	if opts.MaxSize <= 0 {
		opts.MaxSize = 200
	}
	e := &espo{ds: ds, opts: opts}
	mux := http.NewServeMux()
	const b = "/api/v1"
	mux.HandleFunc("GET "+b+"/{entity}", e.list)
	mux.HandleFunc("POST "+b+"/{entity}", e.create)
	mux.HandleFunc("GET "+b+"/{entity}/{id}", e.read)
	mux.HandleFunc("PUT "+b+"/{entity}/{id}", e.update)
	mux.HandleFunc("PATCH "+b+"/{entity}/{id}", e.update)
	mux.HandleFunc("DELETE "+b+"/{entity}/{id}", e.delete)
	mux.HandleFunc("GET "+b+"/{entity}/{id}/{link}", e.related)
	mux.HandleFunc("POST "+b+"/{entity}/{id}/{link}", e.link)
	mux.HandleFunc("DELETE "+b+"/{entity}/{id}/{link}", e.link)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.fail(w, http.StatusNotFound, "")
	})
	return e.auth(mux)
}

func (e *espo) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.opts.APIKey != "" &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Api-Key")), []byte(e.opts.APIKey)) != 1 {
			e.fail(w, http.StatusUnauthorized, "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fail is how EspoCRM reports errors to API clients: the status code, a
// reason header, no JSON body.
func (e *espo) fail(w http.ResponseWriter, status int, reason string) {
	if reason != "" {
		w.Header().Set("X-Status-Reason", reason)
	}
	w.WriteHeader(status)
}

func (e *espo) write(w http.ResponseWriter, r *http.Request, v any) {
	writeJSON(w, r, e.opts.Gzip, http.StatusOK, "application/json", v)
}

func (e *espo) entity(w http.ResponseWriter, r *http.Request) *moduleSchema {
	sc := schemaByEspo(r.PathValue("entity"))
	if sc == nil {
		e.fail(w, http.StatusNotFound, "")
	}
	return sc
}

// render is one record as EspoCRM returns it: a flat object with the
// entity's attributes in camelCase, the link names resolved.
func (e *espo) render(sc *moduleSchema, rec map[string]any, sel map[string]bool, users map[string]any) map[string]any {
	out := make(map[string]any, len(sc.fields)+3)
	out["id"] = rec["id"]
	for _, f := range sc.fields {
		if f.espo == "" || sel != nil && !sel[f.espo] {
			continue
		}
		out[f.espo] = rec[f.suite]
	}
	if sel == nil {
		out["deleted"] = false
	}
	if uid, ok := rec["assigned_user_id"].(string); ok && (sel == nil || sel["assignedUserName"]) {
		out["assignedUserName"] = users[uid]
	}
	return out
}

func (e *espo) list(w http.ResponseWriter, r *http.Request) {
	sc := e.entity(w, r)
	if sc == nil {
		return
	}
	e.writeList(w, r, sc, e.ds.snapshot(sc.suite))
}

// writeList applies the search params to recs and writes the envelope.
func (e *espo) writeList(w http.ResponseWriter, r *http.Request, sc *moduleSchema, recs []map[string]any) {
	q := r.URL.Query()
	maxSize, offset := 20, 0
	var err error
	if v := q.Get("maxSize"); v != "" {
		if maxSize, err = strconv.Atoi(v); err != nil || maxSize < 0 {
			e.fail(w, http.StatusBadRequest, "Bad maxSize.")
			return
		}
	}
	if maxSize > e.opts.MaxSize {
		e.fail(w, http.StatusForbidden, fmt.Sprintf("Max size should should not exceed %d. Use offset and limit.", e.opts.MaxSize))
		return
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			e.fail(w, http.StatusBadRequest, "Bad offset.")
			return
		}
	}
	where, reason := parseWhere(r.URL.RawQuery)
	if reason == "" {
		recs, reason = applyWhere(sc, recs, where)
	}
	if reason != "" {
		e.fail(w, http.StatusBadRequest, reason)
		return
	}
	if by := q.Get("orderBy"); by != "" {
		field := sc.suiteField(by)
		if field == "" && by != "id" {
			e.fail(w, http.StatusBadRequest, "Bad orderBy.")
			return
		}
		if field == "" {
			field = "id"
		}
		sortRecords(recs, field, strings.EqualFold(q.Get("order"), "desc"))
	}
	var sel map[string]bool
	for _, key := range []string{"select", "attributeSelect"} {
		if v := q.Get(key); v != "" {
			sel = make(map[string]bool)
			for _, f := range strings.Split(v, ",") {
				sel[f] = true
			}
		}
	}
	total := len(recs)
	start := min(offset, total)
	end := min(start+maxSize, total)
	list := make([]any, 0, end-start)
	users := e.ds.userNames("name")
	for _, rec := range recs[start:end] {
		list = append(list, e.render(sc, rec, sel, users))
	}
	if r.Header.Get("X-No-Total") == "true" {
		total = -1
	}
	e.write(w, r, map[string]any{"total": total, "list": list})
}

// whereItem is one EspoCRM where item; or, and and not hold items.
type whereItem struct {
	typ, attribute string
	values         []string
	items          []whereItem
}

// parseWhere reads where[i][type|attribute|value] as PHP parses the query
// (parsePHPQuery); value is a value, a list (value[]=a&value[]=b) or, for
// or, and and not, nested items. The alias whereGroup is read when where is
// absent, as in EspoCRM.
func parseWhere(rawQuery string) ([]whereItem, string) {
	form := parsePHPQuery(rawQuery)
	w := form.get("where")
	if w == nil {
		w = form.get("whereGroup")
	}
	if w == nil {
		return nil, ""
	}
	if !w.isArr {
		return nil, "Bad where."
	}
	return whereItems(w, 0)
}

func whereItems(v *phpVal, depth int) ([]whereItem, string) {
	if depth > 16 {
		return nil, "Bad where: too deep."
	}
	var out []whereItem
	for _, it := range v.items() {
		if !it.isArr {
			return nil, "Bad where item."
		}
		item := whereItem{typ: it.get("type").scalar(), attribute: it.get("attribute").scalar()}
		val := it.get("value")
		switch item.typ {
		case "or", "and", "not":
			if val == nil || !val.isArr {
				return nil, "Bad where: " + item.typ + " needs items."
			}
			var reason string
			if item.items, reason = whereItems(val, depth+1); reason != "" {
				return nil, reason
			}
		default:
			switch {
			case val == nil:
			case val.isArr:
				for _, x := range val.items() {
					item.values = append(item.values, x.scalar())
				}
			default:
				item.values = []string{val.str}
			}
		}
		out = append(out, item)
	}
	return out, ""
}

func (v *phpVal) scalar() string {
	if v == nil || v.isArr {
		return ""
	}
	return v.str
}

// applyWhere keeps the records matching every item (EspoCRM ANDs the
// top-level where items).
func applyWhere(sc *moduleSchema, recs []map[string]any, where []whereItem) ([]map[string]any, string) {
	if len(where) == 0 {
		return recs, ""
	}
	if reason := checkWhere(sc, where); reason != "" {
		return nil, reason
	}
	out := recs[:0:0]
	for _, rec := range recs {
		if matchAll(sc, where, rec) {
			out = append(out, rec)
		}
	}
	return out, ""
}

func checkWhere(sc *moduleSchema, where []whereItem) string {
	for _, it := range where {
		switch it.typ {
		case "or", "and", "not":
			if reason := checkWhere(sc, it.items); reason != "" {
				return reason
			}
			continue
		case "equals", "notEquals", "in", "notIn", "isNull", "isNotNull", "greaterThan", "lessThan",
			"greaterThanOrEquals", "lessThanOrEquals", "contains", "startsWith":
		default:
			return "Bad where: unknown type " + it.typ + "."
		}
		if it.attribute != "id" && sc.suiteField(it.attribute) == "" {
			return "Bad where: unknown attribute " + it.attribute + "."
		}
	}
	return ""
}

func matchAll(sc *moduleSchema, items []whereItem, rec map[string]any) bool {
	for _, it := range items {
		if !matchItem(sc, it, rec) {
			return false
		}
	}
	return true
}

func matchItem(sc *moduleSchema, it whereItem, rec map[string]any) bool {
	switch it.typ {
	case "and":
		return matchAll(sc, it.items, rec)
	case "not":
		return !matchAll(sc, it.items, rec)
	case "or":
		for _, x := range it.items {
			if matchItem(sc, x, rec) {
				return true
			}
		}
		return false
	}
	f := "id"
	if it.attribute != "id" {
		f = sc.suiteField(it.attribute)
	}
	return whereMatch(it, rec[f])
}

func whereMatch(it whereItem, v any) bool {
	val := ""
	if len(it.values) > 0 {
		val = it.values[0]
	}
	s := valueString(v)
	switch it.typ {
	case "equals":
		return s == val || compareValues(v, val) == 0
	case "notEquals":
		return !(s == val || compareValues(v, val) == 0)
	case "in", "notIn":
		found := false
		for _, x := range it.values {
			if s == x {
				found = true
			}
		}
		return found == (it.typ == "in")
	case "isNull":
		return v == nil || s == ""
	case "isNotNull":
		return v != nil && s != ""
	case "greaterThan":
		return compareValues(v, val) > 0
	case "lessThan":
		return compareValues(v, val) < 0
	case "greaterThanOrEquals":
		return compareValues(v, val) >= 0
	case "lessThanOrEquals":
		return compareValues(v, val) <= 0
	case "contains":
		return strings.Contains(strings.ToLower(s), strings.ToLower(val))
	case "startsWith":
		return strings.HasPrefix(strings.ToLower(s), strings.ToLower(val))
	}
	return false
}

func (e *espo) read(w http.ResponseWriter, r *http.Request) {
	sc := e.entity(w, r)
	if sc == nil {
		return
	}
	rec, ok := e.ds.Get(sc.suite, r.PathValue("id"))
	if !ok {
		e.fail(w, http.StatusNotFound, "")
		return
	}
	e.write(w, r, e.render(sc, rec, nil, e.ds.userNames("name")))
}

func (e *espo) decode(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	body, err := readBody(r)
	var obj map[string]any
	if err == nil {
		err = json.Unmarshal(body, &obj)
	}
	if err != nil || obj == nil {
		e.fail(w, http.StatusBadRequest, "Bad payload.")
		return nil, false
	}
	return obj, true
}

// apply copies known attributes of a write payload onto rec; unknown
// attributes are ignored, as EspoCRM ignores attributes an entity lacks.
// An id in the payload is ignored too: EspoCRM strips it on update.
func apply(sc *moduleSchema, payload, rec map[string]any) {
	for k, v := range payload {
		if f := sc.suiteField(k); f != "" && f != "id" {
			rec[f] = v
		}
	}
}

func (e *espo) create(w http.ResponseWriter, r *http.Request) {
	sc := e.entity(w, r)
	if sc == nil {
		return
	}
	payload, ok := e.decode(w, r)
	if !ok {
		return
	}
	now := time.Now().UTC().Format(time.DateTime)
	rec := map[string]any{"date_entered": now, "date_modified": now}
	apply(sc, payload, rec)
	e.ds.mu.Lock()
	id := e.ds.newID()
	e.ds.put(sc.suite, id, rec)
	e.ds.mu.Unlock()
	e.write(w, r, e.render(sc, rec, nil, e.ds.userNames("name")))
}

func (e *espo) update(w http.ResponseWriter, r *http.Request) {
	sc := e.entity(w, r)
	if sc == nil {
		return
	}
	payload, ok := e.decode(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	e.ds.mu.Lock()
	old, exists := e.ds.modules[sc.suite].byID[id]
	if !exists {
		e.ds.mu.Unlock()
		e.fail(w, http.StatusNotFound, "")
		return
	}
	rec := clone(old)
	apply(sc, payload, rec)
	rec["date_modified"] = time.Now().UTC().Format(time.DateTime)
	e.ds.put(sc.suite, id, rec)
	e.ds.mu.Unlock()
	e.write(w, r, e.render(sc, rec, nil, e.ds.userNames("name")))
}

func (e *espo) delete(w http.ResponseWriter, r *http.Request) {
	sc := e.entity(w, r)
	if sc == nil {
		return
	}
	e.ds.mu.Lock()
	ok := e.ds.remove(sc.suite, r.PathValue("id"))
	e.ds.mu.Unlock()
	if !ok {
		e.fail(w, http.StatusNotFound, "")
		return
	}
	e.write(w, r, true)
}

func (e *espo) parentLink(w http.ResponseWriter, r *http.Request) (*moduleSchema, string, *linkSchema, bool) {
	sc := e.entity(w, r)
	if sc == nil {
		return nil, "", nil, false
	}
	id := r.PathValue("id")
	if _, ok := e.ds.Get(sc.suite, id); !ok {
		e.fail(w, http.StatusNotFound, "")
		return nil, "", nil, false
	}
	l := sc.link(r.PathValue("link"))
	if l == nil {
		e.fail(w, http.StatusBadRequest, "Link does not exist.")
		return nil, "", nil, false
	}
	return sc, id, l, true
}

func (e *espo) related(w http.ResponseWriter, r *http.Request) {
	_, id, l, ok := e.parentLink(w, r)
	if !ok {
		return
	}
	var recs []map[string]any
	for _, rec := range e.ds.snapshot(l.target) {
		if rec[l.foreignKey] == id {
			recs = append(recs, rec)
		}
	}
	e.writeList(w, r, schemaBySuite(l.target), recs)
}

// link relates (POST) or unrelates (DELETE) {"id"} or {"ids":[...]}.
func (e *espo) link(w http.ResponseWriter, r *http.Request) {
	_, id, l, ok := e.parentLink(w, r)
	if !ok {
		return
	}
	payload, ok := e.decode(w, r)
	if !ok {
		return
	}
	var ids []string
	if v, ok := payload["id"].(string); ok {
		ids = append(ids, v)
	}
	if vs, ok := payload["ids"].([]any); ok {
		for _, v := range vs {
			if s, ok := v.(string); ok {
				ids = append(ids, s)
			}
		}
	}
	if len(ids) == 0 {
		e.fail(w, http.StatusBadRequest, "No id.")
		return
	}
	parent := id
	if r.Method == http.MethodDelete {
		parent = ""
	}
	for _, child := range ids {
		if r.Method == http.MethodDelete {
			if rec, ok := e.ds.Get(l.target, child); !ok || rec[l.foreignKey] != id {
				e.fail(w, http.StatusNotFound, "")
				return
			}
		}
		if !e.ds.setForeignKey(l, child, parent) {
			e.fail(w, http.StatusNotFound, "")
			return
		}
	}
	e.write(w, r, true)
}
