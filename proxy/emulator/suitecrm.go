package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SuiteOptions configures the SuiteCRM emulator.
type SuiteOptions struct {
	// ClientID and ClientSecret, when ClientID is set, turn on OAuth2: every
	// /Api/V8 call needs a bearer token issued by POST /Api/access_token
	// for grant_type=client_credentials with these credentials. When
	// ClientID is empty any request is accepted, with or without a token.
	ClientID     string
	ClientSecret string
	// Gzip compresses responses for clients that send Accept-Encoding:
	// gzip. Off, responses use the identity encoding whatever is asked.
	Gzip bool
}

const jsonAPI = "application/vnd.api+json"

// tokenTTL is what SuiteCRM's default OAuth2 configuration issues.
const tokenTTL = time.Hour

type suite struct {
	ds   *Dataset
	opts SuiteOptions

	tokens accessTokens
}

// NewSuiteCRM returns an http.Handler imitating SuiteCRM's V8 JSON:API
// (Api/V8/Config/routes.php; docs.suitecrm.com "JSON API"): JSON:API
// envelopes with Content-Type application/vnd.api+json, paging with
// page[size]/page[number], fields[Module]=a,b, filter[field][op]=v with
// filter[operator]=and|or, sort=[-]field, errors as
// {"errors":{"status","title","detail"}}.
func NewSuiteCRM(ds *Dataset, opts SuiteOptions) http.Handler {
	s := &suite{ds: ds, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /Api/access_token", s.accessToken)
	const b = "/Api/V8"
	mux.Handle("POST "+b+"/logout", s.auth(s.logout))
	mux.Handle("GET "+b+"/meta/modules", s.auth(s.metaModules))
	mux.Handle("GET "+b+"/meta/fields/{module}", s.auth(s.metaFields))
	mux.Handle("GET "+b+"/module/{module}", s.auth(s.list))
	mux.Handle("GET "+b+"/module/{module}/{id}", s.auth(s.read))
	mux.Handle("POST "+b+"/module", s.auth(s.create))
	mux.Handle("PATCH "+b+"/module", s.auth(s.update))
	mux.Handle("DELETE "+b+"/module/{module}/{id}", s.auth(s.delete))
	mux.Handle("GET "+b+"/module/{module}/{id}/relationships/{link}", s.auth(s.related))
	mux.Handle("POST "+b+"/module/{module}/{id}/relationships", s.auth(s.relate))
	mux.Handle("POST "+b+"/module/{module}/{id}/relationships/{link}", s.auth(s.relate))
	mux.Handle("DELETE "+b+"/module/{module}/{id}/relationships/{link}/{related}", s.auth(s.unrelate))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "Not Found", "Route not found")
	})
	return mux
}

func (s *suite) write(w http.ResponseWriter, r *http.Request, status int, v any) {
	writeJSON(w, r, s.opts.Gzip, status, jsonAPI, v)
}

// fail writes the V8 API's error document. SuiteCRM leaves title null for
// most exceptions; a title is kept where the API sets one.
func (s *suite) fail(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	var t any
	if title != "" {
		t = title
	}
	s.write(w, r, status, map[string]any{"errors": map[string]any{"status": status, "title": t, "detail": detail}})
}

// accessToken is league/oauth2-server's token endpoint as SuiteCRM mounts
// it, for the client_credentials grant only.
func (s *suite) accessToken(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(status int, code, desc string) {
		writeJSON(w, r, false, status, "application/json", map[string]any{
			"error": code, "error_description": desc, "message": desc,
		})
	}
	if err := r.ParseForm(); err != nil {
		oauthErr(http.StatusBadRequest, "invalid_request", "The request is missing a required parameter.")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		oauthErr(http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
		return
	}
	if s.opts.ClientID == "" || !clientIs(r, s.opts.ClientID, s.opts.ClientSecret) {
		oauthErr(http.StatusUnauthorized, "invalid_client", "Client authentication failed")
		return
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		oauthErr(http.StatusInternalServerError, "server_error", "token generation failed")
		return
	}
	tok := hex.EncodeToString(raw[:])
	s.tokens.issue(tok, tokenTTL)
	writeJSON(w, r, false, http.StatusOK, "application/json", map[string]any{
		"token_type": "Bearer", "expires_in": int(tokenTTL.Seconds()), "access_token": tok,
	})
}

// auth is SuiteCRM's ResourceServerMiddleware when OAuth2 is configured.
func (s *suite) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.ClientID != "" && !s.tokens.valid(r) {
			desc := "The resource owner or authorization server denied the request."
			writeJSON(w, r, false, http.StatusUnauthorized, "application/json", map[string]any{
				"error": "access_denied", "error_description": desc, "message": desc,
			})
			return
		}
		next(w, r)
	})
}

// logout revokes the token the call was made with (LogoutController).
func (s *suite) logout(w http.ResponseWriter, r *http.Request) {
	if tok, ok := bearer(r); ok {
		s.tokens.revoke(tok)
	}
	s.write(w, r, http.StatusOK, map[string]any{"meta": map[string]any{"message": "You have been successfully logged out"}})
}

func (s *suite) metaModules(w http.ResponseWriter, r *http.Request) {
	mods := make(map[string]any, len(schemas))
	for _, sc := range schemas {
		mods[sc.suite] = map[string]any{
			"label":  sc.suite,
			"access": []string{"access", "delete", "edit", "export", "import", "list", "view"},
		}
	}
	s.write(w, r, http.StatusOK, map[string]any{"data": map[string]any{
		"type": "modules", "id": "", "attributes": mods,
	}})
}

func (s *suite) metaFields(w http.ResponseWriter, r *http.Request) {
	sc := s.module(w, r, r.PathValue("module"))
	if sc == nil {
		return
	}
	fields := map[string]any{"id": map[string]any{"type": "id"}}
	for _, f := range sc.fields {
		fields[f.suite] = map[string]any{"type": suiteFieldType(f.suite)}
	}
	s.write(w, r, http.StatusOK, map[string]any{"data": map[string]any{
		"type": sc.suiteType, "id": "", "attributes": fields,
	}})
}

func suiteFieldType(name string) string {
	switch {
	case strings.HasSuffix(name, "_id"):
		return "id"
	case strings.HasPrefix(name, "date_"), name == "birthdate":
		return "datetime"
	case name == "cost", name == "price", name == "amount", name == "salary_c":
		return "currency"
	case name == "email1":
		return "email"
	case strings.HasPrefix(name, "phone_"):
		return "phone"
	}
	return "varchar"
}

// module resolves a module name as SuiteCRM's BeanFactory does: exactly.
func (s *suite) module(w http.ResponseWriter, r *http.Request, name string) *moduleSchema {
	sc := schemaBySuite(name)
	if sc == nil {
		s.fail(w, r, http.StatusBadRequest, "", fmt.Sprintf("Module %s does not exist", name))
	}
	return sc
}

// render is one record as a JSON:API resource object. fields, when not
// nil, limits the attributes (fields[Module]=a,b).
func (s *suite) render(sc *moduleSchema, rec map[string]any, fields map[string]bool, users map[string]any) map[string]any {
	attrs := make(map[string]any, len(sc.fields)+1)
	for _, f := range sc.fields {
		if fields != nil && !fields[f.suite] {
			continue
		}
		attrs[f.suite] = suiteValue(rec[f.suite])
	}
	if uid, ok := rec["assigned_user_id"].(string); ok && (fields == nil || fields["assigned_user_name"]) {
		name, ok := users[uid]
		if !ok {
			name = ""
		}
		attrs["assigned_user_name"] = name
	}
	id, _ := rec["id"].(string)
	rels := make(map[string]any, len(sc.links))
	for _, l := range sc.links {
		rels[l.target] = map[string]any{"links": map[string]any{
			"related": "V8/module/" + sc.suite + "/" + id + "/relationships/" + l.name,
		}}
	}
	out := map[string]any{"type": sc.suiteType, "id": id, "attributes": attrs}
	if len(rels) > 0 {
		out["relationships"] = rels
	}
	return out
}

// suiteValue renders a value the way the V8 API does: everything from the
// database as a string (decimals with six places, booleans as "1"/"0").
func suiteValue(v any) any {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e9 {
			return strconv.FormatFloat(x, 'f', 0, 64)
		}
		return strconv.FormatFloat(x, 'f', 6, 64)
	case bool:
		if x {
			return "1"
		}
		return "0"
	}
	return v
}

func (s *suite) list(w http.ResponseWriter, r *http.Request) {
	sc := s.module(w, r, r.PathValue("module"))
	if sc == nil {
		return
	}
	q := r.URL.Query()
	recs, problem := s.filter(sc, r.URL.RawQuery)
	if problem != "" {
		s.fail(w, r, http.StatusBadRequest, "", problem)
		return
	}
	var err error
	if sortBy := q.Get("sort"); sortBy != "" {
		desc := strings.HasPrefix(sortBy, "-")
		field := strings.TrimPrefix(sortBy, "-")
		if !sc.hasSuiteField(field) {
			s.fail(w, r, http.StatusBadRequest, "", fmt.Sprintf("Sort field %s in %s module is not found", field, sc.suite))
			return
		}
		sortRecords(recs, field, desc)
	}
	total := len(recs)
	size, number := total, 1
	paged := q.Has("page[size]") || q.Has("page[number]")
	if paged {
		if size, err = positiveInt(q, "page[size]", 20); err == nil {
			number, err = positiveInt(q, "page[number]", 1)
		}
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, "", err.Error())
			return
		}
	}
	pages := 1
	if size > 0 {
		pages = int(math.Ceil(float64(total) / float64(size)))
	}
	start := min((number-1)*size, total)
	end := min(start+size, total)
	fields := fieldSelection(q, sc)
	data := make([]any, 0, end-start)
	users := s.ds.userNames("user_name")
	for _, rec := range recs[start:end] {
		data = append(data, s.render(sc, rec, fields, users))
	}
	doc := map[string]any{
		"meta": map[string]any{"total-pages": pages, "records-on-this-page": len(data)},
		"data": data,
	}
	if paged {
		link := func(n int) any {
			if n < 1 || n > pages {
				return nil
			}
			v := url.Values{}
			for k, vs := range q {
				v[k] = vs
			}
			v.Set("page[number]", strconv.Itoa(n))
			v.Set("page[size]", strconv.Itoa(size))
			return "/Api/V8/module/" + sc.suite + "?" + v.Encode()
		}
		doc["links"] = map[string]any{
			"first": link(1), "prev": link(number - 1), "next": link(number + 1), "last": link(pages),
		}
	}
	s.write(w, r, http.StatusOK, doc)
}

func positiveInt(q url.Values, key string, def int) (int, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("parse %s: want a positive integer", key)
	}
	return n, nil
}

func (sc *moduleSchema) hasSuiteField(name string) bool {
	if name == "id" {
		return true
	}
	for _, f := range sc.fields {
		if f.suite == name {
			return true
		}
	}
	return false
}

// fieldSelection reads fields[Module]=a,b (the module may be given by its
// module name or its object name, as clients do both).
func fieldSelection(q url.Values, sc *moduleSchema) map[string]bool {
	for _, key := range []string{"fields[" + sc.suite + "]", "fields[" + sc.suiteType + "]"} {
		if v := q.Get(key); v != "" {
			sel := make(map[string]bool)
			for _, f := range strings.Split(v, ",") {
				sel[strings.TrimSpace(f)] = true
			}
			return sel
		}
	}
	return nil
}

// filter applies filter[field][op]=value; filter[operator] combines them
// (and by default). Operators follow the V8 API: eq neq gt gte lt lte. The
// parameters are read as PHP reads them (parsePHPQuery): a duplicate's
// last value wins, and a scalar filter is not a filter.
func (s *suite) filter(sc *moduleSchema, rawQuery string) ([]map[string]any, string) {
	type cond struct{ field, op, value string }
	var conds []cond
	f := parsePHPQuery(rawQuery).get("filter")
	or := false
	if f != nil {
		if !f.isArr {
			return nil, "Filter parameter is invalid"
		}
		for _, field := range f.sortedKeys() {
			v := f.kids[field]
			if field == "operator" {
				if v.isArr {
					return nil, "Filter operator is invalid"
				}
				switch strings.ToLower(v.str) {
				case "", "and":
				case "or":
					or = true
				default:
					return nil, fmt.Sprintf("Filter operator %s is invalid", v.str)
				}
				continue
			}
			if !v.isArr {
				return nil, fmt.Sprintf("Filter parameter %s is invalid", field)
			}
			if !sc.hasSuiteField(field) && field != "deleted" {
				return nil, fmt.Sprintf("Filter field %s in %s module is not found", field, sc.suite)
			}
			for _, op := range v.sortedKeys() {
				val := v.kids[op]
				if val.isArr {
					return nil, fmt.Sprintf("Filter value of %s is invalid", field)
				}
				switch op = strings.ToLower(op); op {
				case "eq", "neq", "gt", "gte", "lt", "lte":
				default:
					return nil, fmt.Sprintf("Filter operator %s is invalid", op)
				}
				conds = append(conds, cond{field, op, val.str})
			}
		}
	}
	all := s.ds.snapshot(sc.suite)
	// Filter.php adds "deleted eq 0" unless the client filters on deleted,
	// joined with the same operator (so an OR filter also returns deleted
	// records). The emulator's records are not deleted (0).
	hasDeleted := false
	for _, c := range conds {
		hasDeleted = hasDeleted || c.field == "deleted"
	}
	if !hasDeleted && len(conds) > 0 {
		conds = append(conds, cond{"deleted", "eq", "0"})
	}
	if len(conds) == 0 {
		return all, ""
	}
	out := all[:0:0]
	for _, rec := range all {
		hit := !or
		for _, c := range conds {
			v := rec[c.field]
			if c.field == "deleted" && v == nil {
				v = float64(0)
			}
			cmp := compareValues(v, c.value)
			var m bool
			switch c.op {
			case "eq":
				m = valueString(v) == c.value || cmp == 0
			case "neq":
				m = !(valueString(v) == c.value || cmp == 0)
			case "gt":
				m = cmp > 0
			case "gte":
				m = cmp >= 0
			case "lt":
				m = cmp < 0
			case "lte":
				m = cmp <= 0
			}
			if or && m {
				hit = true
				break
			}
			if !or && !m {
				hit = false
				break
			}
		}
		if hit {
			out = append(out, rec)
		}
	}
	return out, ""
}

func (s *suite) notFound(w http.ResponseWriter, r *http.Request, module, id string) {
	s.fail(w, r, http.StatusNotFound, "", fmt.Sprintf("%s with id %s is not found", module, id))
}

func (s *suite) read(w http.ResponseWriter, r *http.Request) {
	sc := s.module(w, r, r.PathValue("module"))
	if sc == nil {
		return
	}
	rec, ok := s.ds.Get(sc.suite, r.PathValue("id"))
	if !ok {
		s.notFound(w, r, sc.suite, r.PathValue("id"))
		return
	}
	s.write(w, r, http.StatusOK, map[string]any{"data": s.render(sc, rec, fieldSelection(r.URL.Query(), sc), s.ds.userNames("user_name"))})
}

// writeDoc is the body of create, update and relate calls.
type writeDoc struct {
	Data struct {
		Type       string         `json:"type"`
		ID         string         `json:"id"`
		Attributes map[string]any `json:"attributes"`
	} `json:"data"`
}

func (s *suite) decode(w http.ResponseWriter, r *http.Request) (*writeDoc, bool) {
	body, err := readBody(r)
	var doc writeDoc
	if err == nil {
		err = json.Unmarshal(body, &doc)
	}
	if err != nil || doc.Data.Type == "" {
		s.fail(w, r, http.StatusBadRequest, "", "The request body is not a valid JSON API document")
		return nil, false
	}
	return &doc, true
}

// attributes copies a write's attributes onto rec, or returns the V8
// API's complaint about the first unknown one.
func (s *suite) attributes(sc *moduleSchema, attrs map[string]any, rec map[string]any) string {
	for k, v := range attrs {
		if k == "id" || !sc.hasSuiteField(k) {
			return fmt.Sprintf("Property %s in %s module is invalid", k, sc.suite)
		}
		rec[k] = v
	}
	return ""
}

func (s *suite) create(w http.ResponseWriter, r *http.Request) {
	doc, ok := s.decode(w, r)
	if !ok {
		return
	}
	sc := s.module(w, r, doc.Data.Type)
	if sc == nil {
		return
	}
	rec := map[string]any{"date_entered": time.Now().UTC().Format(time.DateTime)}
	rec["date_modified"] = rec["date_entered"]
	if problem := s.attributes(sc, doc.Data.Attributes, rec); problem != "" {
		s.fail(w, r, http.StatusBadRequest, "", problem)
		return
	}
	s.ds.mu.Lock()
	id := doc.Data.ID
	if id == "" {
		id = s.ds.newID()
	} else if _, exists := s.ds.modules[sc.suite].byID[id]; exists {
		s.ds.mu.Unlock()
		s.fail(w, r, http.StatusConflict, "Conflict", "Unable create record, because it already exists.")
		return
	}
	s.ds.put(sc.suite, id, rec)
	s.ds.mu.Unlock()
	saved, _ := s.ds.Get(sc.suite, id)
	s.write(w, r, http.StatusCreated, map[string]any{"data": s.render(sc, saved, nil, s.ds.userNames("user_name"))})
}

func (s *suite) update(w http.ResponseWriter, r *http.Request) {
	doc, ok := s.decode(w, r)
	if !ok {
		return
	}
	sc := s.module(w, r, doc.Data.Type)
	if sc == nil {
		return
	}
	s.ds.mu.Lock()
	old, exists := s.ds.modules[sc.suite].byID[doc.Data.ID]
	if !exists {
		s.ds.mu.Unlock()
		s.notFound(w, r, sc.suite, doc.Data.ID)
		return
	}
	rec := clone(old)
	if problem := s.attributes(sc, doc.Data.Attributes, rec); problem != "" {
		s.ds.mu.Unlock()
		s.fail(w, r, http.StatusBadRequest, "", problem)
		return
	}
	rec["date_modified"] = time.Now().UTC().Format(time.DateTime)
	s.ds.put(sc.suite, doc.Data.ID, rec)
	s.ds.mu.Unlock()
	s.write(w, r, http.StatusOK, map[string]any{"data": s.render(sc, rec, nil, s.ds.userNames("user_name"))})
}

func (s *suite) delete(w http.ResponseWriter, r *http.Request) {
	sc := s.module(w, r, r.PathValue("module"))
	if sc == nil {
		return
	}
	id := r.PathValue("id")
	s.ds.mu.Lock()
	ok := s.ds.remove(sc.suite, id)
	s.ds.mu.Unlock()
	if !ok {
		s.notFound(w, r, sc.suite, id)
		return
	}
	s.write(w, r, http.StatusOK, map[string]any{"meta": map[string]any{
		"message": fmt.Sprintf("Record with id %s is deleted", id),
	}})
}

// parent resolves the module and record of a relationship call.
func (s *suite) parent(w http.ResponseWriter, r *http.Request) (*moduleSchema, string, bool) {
	sc := s.module(w, r, r.PathValue("module"))
	if sc == nil {
		return nil, "", false
	}
	id := r.PathValue("id")
	if _, ok := s.ds.Get(sc.suite, id); !ok {
		s.notFound(w, r, sc.suite, id)
		return nil, "", false
	}
	return sc, id, true
}

func (s *suite) linkOf(w http.ResponseWriter, r *http.Request, sc *moduleSchema, name string) *linkSchema {
	l := sc.link(name)
	if l == nil {
		s.fail(w, r, http.StatusBadRequest, "", fmt.Sprintf("Cannot load relationship %s for %s module", name, sc.suiteType))
	}
	return l
}

func (s *suite) related(w http.ResponseWriter, r *http.Request) {
	sc, id, ok := s.parent(w, r)
	if !ok {
		return
	}
	l := s.linkOf(w, r, sc, r.PathValue("link"))
	if l == nil {
		return
	}
	target := schemaBySuite(l.target)
	data := []any{}
	users := s.ds.userNames("user_name")
	for _, rec := range s.ds.snapshot(l.target) {
		if rec[l.foreignKey] == id {
			data = append(data, s.render(target, rec, nil, users))
		}
	}
	s.write(w, r, http.StatusOK, map[string]any{"data": data})
}

// relate handles both "create relationship" (link found from data.type)
// and "create relationship by link".
func (s *suite) relate(w http.ResponseWriter, r *http.Request) {
	sc, id, ok := s.parent(w, r)
	if !ok {
		return
	}
	doc, ok := s.decode(w, r)
	if !ok {
		return
	}
	var l *linkSchema
	if name := r.PathValue("link"); name != "" {
		if l = s.linkOf(w, r, sc, name); l == nil {
			return
		}
	} else {
		for i := range sc.links {
			if sc.links[i].target == doc.Data.Type {
				l = &sc.links[i]
			}
		}
		if l == nil {
			s.fail(w, r, http.StatusBadRequest, "", fmt.Sprintf("Cannot load relationship for %s module", doc.Data.Type))
			return
		}
	}
	if !s.setForeignKey(l, doc.Data.ID, id) {
		s.notFound(w, r, l.target, doc.Data.ID)
		return
	}
	target := schemaBySuite(l.target)
	s.write(w, r, http.StatusCreated, map[string]any{"meta": map[string]any{
		"message": fmt.Sprintf("%s with id %s has been added to %s with id %s", target.suiteType, doc.Data.ID, sc.suiteType, id),
	}})
}

func (s *suite) unrelate(w http.ResponseWriter, r *http.Request) {
	sc, id, ok := s.parent(w, r)
	if !ok {
		return
	}
	l := s.linkOf(w, r, sc, r.PathValue("link"))
	if l == nil {
		return
	}
	related := r.PathValue("related")
	if rec, ok := s.ds.Get(l.target, related); !ok || rec[l.foreignKey] != id {
		s.notFound(w, r, l.target, related)
		return
	}
	s.setForeignKey(l, related, "")
	target := schemaBySuite(l.target)
	s.write(w, r, http.StatusOK, map[string]any{"meta": map[string]any{
		"message": fmt.Sprintf("%s with id %s has been deleted from %s with id %s", target.suiteType, related, sc.suiteType, id),
	}})
}

// setForeignKey points the child record at parent ("" unrelates).
func (ds *Dataset) setForeignKey(l *linkSchema, childID, parent string) bool {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	old, ok := ds.modules[l.target].byID[childID]
	if !ok {
		return false
	}
	rec := clone(old)
	rec[l.foreignKey] = parent
	ds.put(l.target, childID, rec)
	return true
}

func (s *suite) setForeignKey(l *linkSchema, childID, parent string) bool {
	return s.ds.setForeignKey(l, childID, parent)
}
