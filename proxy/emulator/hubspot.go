package emulator

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HubSpotOptions configures the HubSpot emulator.
type HubSpotOptions struct {
	// Token is the private app's access token, required as
	// "Authorization: Bearer <Token>". Empty refuses every request.
	Token string
	// SecondlyLimit, when positive, answers 429 once more requests than
	// this arrive within one second (HubSpot's per-app secondly limit).
	SecondlyLimit int
	// Gzip compresses responses for clients that send Accept-Encoding: gzip.
	Gzip bool
}

type hub struct {
	ds   *Dataset
	opts HubSpotOptions

	mu     sync.Mutex
	ids    map[string]map[string]string // Dataset module → dataset id → HubSpot id
	back   map[string]map[string]string // Dataset module → HubSpot id → dataset id
	next   int
	second int64
	count  int
}

// NewHubSpot returns an http.Handler imitating HubSpot's CRM API
// (developers.hubspot.com "CRM API > Objects", "Search", "Associations
// v4"): records are {"id","properties":{...},"createdAt","updatedAt",
// "archived"}, every property value a string; lists page with limit and
// an "after" cursor; a request names the properties it wants and gets a
// default set otherwise; searches take filterGroups (OR of ANDed filters),
// sorts, query, properties, limit and after, and answer a total; errors
// are {"status":"error","message","correlationId","category"}.
func NewHubSpot(ds *Dataset, opts HubSpotOptions) http.Handler {
	h := &hub{ds: ds, opts: opts, ids: map[string]map[string]string{}, back: map[string]map[string]string{}, next: 900001}
	mux := http.NewServeMux()
	const b = "/crm/v3/objects"
	mux.HandleFunc("GET "+b+"/{type}", h.list)
	mux.HandleFunc("POST "+b+"/{type}", h.create)
	mux.HandleFunc("GET "+b+"/{type}/{id}", h.read)
	mux.HandleFunc("PATCH "+b+"/{type}/{id}", h.update)
	mux.HandleFunc("DELETE "+b+"/{type}/{id}", h.archive)
	mux.HandleFunc("POST "+b+"/{type}/search", h.search)
	mux.HandleFunc("POST "+b+"/{type}/batch/read", h.batchRead)
	mux.HandleFunc("GET "+b+"/{type}/{id}/associations/{to}", h.associationsV3)
	mux.HandleFunc("GET /crm/v4/objects/{type}/{id}/associations/{to}", h.associationsV4)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "OBJECT_NOT_FOUND", "Unable to route "+r.Method+" request: "+r.URL.Path)
	})
	return h.auth(mux)
}

func (h *hub) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok || h.opts.Token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(h.opts.Token)) != 1 {
			h.fail(w, r, http.StatusUnauthorized, "INVALID_AUTHENTICATION",
				"Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
			return
		}
		if h.limited() {
			writeJSON(w, r, h.opts.Gzip, http.StatusTooManyRequests, "application/json", map[string]any{
				"status": "error", "message": "You have reached your secondly limit.", "errorType": "RATE_LIMIT",
				"correlationId": correlationID(), "policyName": "SECONDLY"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (h *hub) limited() bool {
	if h.opts.SecondlyLimit <= 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now().Unix()
	if now != h.second {
		h.second, h.count = now, 0
	}
	h.count++
	return h.count > h.opts.SecondlyLimit
}

func correlationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// fail writes HubSpot's error body.
func (h *hub) fail(w http.ResponseWriter, r *http.Request, status int, category, message string) {
	writeJSON(w, r, h.opts.Gzip, status, "application/json", map[string]any{
		"status": "error", "message": message, "correlationId": correlationID(), "category": category})
}

func (h *hub) write(w http.ResponseWriter, r *http.Request, status int, v any) {
	writeJSON(w, r, h.opts.Gzip, status, "application/json", v)
}

func (h *hub) object(w http.ResponseWriter, r *http.Request) *hubObject {
	o := hubObjectByType(r.PathValue("type"))
	if o == nil {
		h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", "Unable to infer object type from: "+r.PathValue("type"))
	}
	return o
}

// hubID is the HubSpot id of a dataset record, made up on first sight for
// records outside the department store's numbering (created, synthetic).
func (h *hub) hubID(o *hubObject, sid string) string {
	if n, ok := o.fixedNumber(sid); ok {
		return strconv.Itoa(n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if id, ok := h.ids[o.suite][sid]; ok {
		return id
	}
	if h.ids[o.suite] == nil {
		h.ids[o.suite], h.back[o.suite] = map[string]string{}, map[string]string{}
	}
	id := strconv.Itoa(h.next)
	h.next++
	h.ids[o.suite][sid], h.back[o.suite][id] = id, sid
	return id
}

// datasetID is the inverse of hubID.
func (h *hub) datasetID(o *hubObject, id string) (string, bool) {
	if n, err := strconv.Atoi(id); err == nil && n > o.idBase && n < o.idBase+1000 && strconv.Itoa(n) == id {
		return o.prefix + strconv.Itoa(n-o.idBase), true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	sid, ok := h.back[o.suite][id]
	return sid, ok
}

// value is a dataset value as HubSpot writes a property: a string.
func (h *hub) value(p *hubProp, v any) any {
	if v == nil {
		return nil
	}
	switch p.kind {
	case "owner":
		s, _ := v.(string)
		if id, ok := hubOwners[s]; ok {
			return id
		}
		return nil
	case "company":
		s, _ := v.(string)
		if s == "" {
			return nil
		}
		return h.hubID(hubObjectBySuite("Accounts"), s)
	}
	if b, ok := v.(bool); ok {
		return strconv.FormatBool(b)
	}
	return valueString(v)
}

// props is a record's properties as HubSpot knows them, all of them.
func (h *hub) props(o *hubObject, rec map[string]any) map[string]any {
	out := make(map[string]any, len(o.props)+3)
	for i := range o.props {
		p := &o.props[i]
		out[p.hub] = h.value(p, rec[p.suite])
	}
	created := hubTime(rec["date_entered"])
	out["hs_object_id"] = h.hubID(o, rec["id"].(string))
	out["createdate"] = created
	out[o.modified] = hubTime(rec["date_modified"])
	return out
}

func hubTime(v any) string {
	s, _ := v.(string)
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		t, err = time.Parse(time.DateOnly, s)
	}
	if err != nil {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// render is one record in HubSpot's envelope with the properties asked
// for (nil: the defaults); hs_object_id, createdate and the last-modified
// property always come back. history adds propertiesWithHistory.
func (h *hub) render(o *hubObject, rec map[string]any, want []string, history []string) map[string]any {
	all := h.props(o, rec)
	if want == nil {
		want = o.defaults
	}
	props := map[string]any{"hs_object_id": all["hs_object_id"], "createdate": all["createdate"], o.modified: all[o.modified]}
	for _, p := range want {
		if o.known(p) {
			props[p] = all[p]
		}
	}
	out := map[string]any{
		"id": all["hs_object_id"], "properties": props,
		"createdAt": all["createdate"], "updatedAt": all[o.modified], "archived": false,
	}
	if len(history) > 0 {
		hist := map[string]any{}
		for _, p := range history {
			if v, ok := all[p]; ok && o.known(p) {
				hist[p] = []any{map[string]any{"value": v, "timestamp": all[o.modified], "sourceType": "CRM_UI"}}
			}
		}
		out["propertiesWithHistory"] = hist
	}
	return out
}

// listParam reads a list parameter given comma-separated, repeated or both.
func listParam(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (h *hub) paging(r *http.Request, o *hubObject, next int, more bool) map[string]any {
	if !more {
		return nil
	}
	after := strconv.Itoa(next)
	return map[string]any{"next": map[string]any{"after": after,
		"link": "https://api.hubapi.com/crm/v3/objects/" + o.name + "?after=" + after}}
}

func (h *hub) list(w http.ResponseWriter, r *http.Request) {
	o := h.object(w, r)
	if o == nil {
		return
	}
	q := r.URL.Query()
	limit, after, ok := h.page(w, r, q.Get("limit"), q.Get("after"), 100)
	if !ok {
		return
	}
	recs := h.ds.snapshot(o.suite)
	if q.Get("archived") == "true" {
		recs = nil // archived records are not kept
	}
	var want []string
	if _, named := q["properties"]; named {
		want = listParam(q["properties"])
	}
	history := listParam(q["propertiesWithHistory"])
	start := min(after, len(recs))
	end := min(start+limit, len(recs))
	results := make([]any, 0, end-start)
	for _, rec := range recs[start:end] {
		out := h.render(o, rec, want, history)
		h.withAssociations(o, rec, out, listParam(q["associations"]))
		results = append(results, out)
	}
	out := map[string]any{"results": results}
	if p := h.paging(r, o, end, end < len(recs)); p != nil {
		out["paging"] = p
	}
	h.write(w, r, http.StatusOK, out)
}

// page reads limit and after: limit defaults to 10 and may not pass max;
// after is the offset the previous page's paging.next.after gave.
func (h *hub) page(w http.ResponseWriter, r *http.Request, limitS, afterS string, max int) (int, int, bool) {
	limit, after := 10, 0
	var err error
	if limitS != "" {
		if limit, err = strconv.Atoi(limitS); err != nil || limit < 0 || limit > max {
			h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("limit must be between 0 and %d", max))
			return 0, 0, false
		}
	}
	if afterS != "" {
		if after, err = strconv.Atoi(afterS); err != nil || after < 0 {
			h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid after: "+afterS)
			return 0, 0, false
		}
	}
	return limit, after, true
}

// find looks a record up by HubSpot id or, with idProperty, by the value
// of a unique property.
func (h *hub) find(o *hubObject, id, idProperty string) (map[string]any, bool) {
	if idProperty != "" && idProperty != "hs_object_id" {
		for _, rec := range h.ds.snapshot(o.suite) {
			if v, ok := h.props(o, rec)[idProperty].(string); ok && v == id {
				return rec, true
			}
		}
		return nil, false
	}
	sid, ok := h.datasetID(o, id)
	if !ok {
		return nil, false
	}
	return h.ds.Get(o.suite, sid)
}

func (h *hub) notFound(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
}

func (h *hub) read(w http.ResponseWriter, r *http.Request) {
	o := h.object(w, r)
	if o == nil {
		return
	}
	q := r.URL.Query()
	rec, ok := h.find(o, r.PathValue("id"), q.Get("idProperty"))
	if !ok {
		h.notFound(w, r)
		return
	}
	var want []string
	if _, named := q["properties"]; named {
		want = listParam(q["properties"])
	}
	out := h.render(o, rec, want, listParam(q["propertiesWithHistory"]))
	h.withAssociations(o, rec, out, listParam(q["associations"]))
	h.write(w, r, http.StatusOK, out)
}

// decodeWrite reads {"properties":{...}} into dataset fields; a property
// the object type lacks, or one it computes, is a VALIDATION_ERROR.
func (h *hub) decodeWrite(w http.ResponseWriter, r *http.Request, o *hubObject) (map[string]any, bool) {
	body, err := readBody(r)
	var doc struct {
		Properties map[string]any `json:"properties"`
	}
	if err == nil {
		err = json.Unmarshal(body, &doc)
	}
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1")
		return nil, false
	}
	out := map[string]any{}
	for k, v := range doc.Properties {
		p := o.prop(k)
		if p == nil {
			h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Property values were not valid: Property %q does not exist", k))
			return nil, false
		}
		s, isString := v.(string)
		switch {
		case v == nil:
			out[p.suite] = nil
		case !isString:
			out[p.suite] = valueString(v)
		case p.kind == "owner":
			owner := ""
			for u, id := range hubOwners {
				if id == s {
					owner = u
				}
			}
			if owner == "" {
				h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Property values were not valid: %q is not a valid owner id", s))
				return nil, false
			}
			out[p.suite] = owner
		case p.kind == "company":
			sid, ok := h.datasetID(hubObjectBySuite("Accounts"), s)
			if !ok {
				h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Property values were not valid: company %q does not exist", s))
				return nil, false
			}
			out[p.suite] = sid
		default:
			out[p.suite] = s
		}
	}
	return out, true
}

func (h *hub) create(w http.ResponseWriter, r *http.Request) {
	o := h.object(w, r)
	if o == nil {
		return
	}
	fields, ok := h.decodeWrite(w, r, o)
	if !ok {
		return
	}
	now := time.Now().UTC().Format(time.DateTime)
	rec := map[string]any{"date_entered": now, "date_modified": now}
	for k, v := range fields {
		rec[k] = v
	}
	h.ds.mu.Lock()
	id := h.ds.newID()
	h.ds.put(o.suite, id, rec)
	h.ds.mu.Unlock()
	h.write(w, r, http.StatusCreated, h.render(o, rec, nil, nil))
}

func (h *hub) update(w http.ResponseWriter, r *http.Request) {
	o := h.object(w, r)
	if o == nil {
		return
	}
	fields, ok := h.decodeWrite(w, r, o)
	if !ok {
		return
	}
	sid, ok := h.datasetID(o, r.PathValue("id"))
	h.ds.mu.Lock()
	old, exists := h.ds.modules[o.suite].byID[sid]
	if !ok || !exists {
		h.ds.mu.Unlock()
		h.notFound(w, r)
		return
	}
	rec := clone(old)
	for k, v := range fields {
		rec[k] = v
	}
	rec["date_modified"] = time.Now().UTC().Format(time.DateTime)
	h.ds.put(o.suite, sid, rec)
	h.ds.mu.Unlock()
	h.write(w, r, http.StatusOK, h.render(o, rec, nil, nil))
}

func (h *hub) archive(w http.ResponseWriter, r *http.Request) {
	o := h.object(w, r)
	if o == nil {
		return
	}
	sid, ok := h.datasetID(o, r.PathValue("id"))
	if ok {
		h.ds.mu.Lock()
		ok = h.ds.remove(o.suite, sid)
		h.ds.mu.Unlock()
	}
	if !ok {
		h.notFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hub) batchRead(w http.ResponseWriter, r *http.Request) {
	o := h.object(w, r)
	if o == nil {
		return
	}
	body, err := readBody(r)
	var doc struct {
		Properties            []string `json:"properties"`
		PropertiesWithHistory []string `json:"propertiesWithHistory"`
		IDProperty            string   `json:"idProperty"`
		Inputs                []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	}
	if err == nil {
		err = json.Unmarshal(body, &doc)
	}
	if err != nil || len(doc.Inputs) > 100 {
		h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1")
		return
	}
	results := []any{}
	var missing []string
	for _, in := range doc.Inputs {
		if rec, ok := h.find(o, in.ID, doc.IDProperty); ok {
			results = append(results, h.render(o, rec, doc.Properties, doc.PropertiesWithHistory))
		} else {
			missing = append(missing, in.ID)
		}
	}
	now := time.Now().UTC().Format(time.RFC3339)
	out := map[string]any{"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
	status := http.StatusOK
	if len(missing) > 0 {
		// HubSpot answers 207 Multi-Status, naming the ids it lacks.
		status = http.StatusMultiStatus
		out["numErrors"] = 1
		out["errors"] = []any{map[string]any{"status": "error", "category": "OBJECT_NOT_FOUND",
			"message": "Could not get some " + o.name + " objects, they may be deleted or not exist.",
			"context": map[string]any{"ids": missing}}}
	}
	h.write(w, r, status, out)
}

// associated lists the records of to associated with one record of o:
// the department store's links are foreign keys to a company
// (associatedcompanyid), read in both directions.
func (h *hub) associated(w http.ResponseWriter, r *http.Request) (*hubObject, []string, bool) {
	o := h.object(w, r)
	if o == nil {
		return nil, nil, false
	}
	to := hubObjectByType(r.PathValue("to"))
	if to == nil {
		h.fail(w, r, http.StatusBadRequest, "VALIDATION_ERROR", "Unable to infer object type from: "+r.PathValue("to"))
		return nil, nil, false
	}
	rec, ok := h.find(o, r.PathValue("id"), "")
	if !ok {
		h.notFound(w, r)
		return nil, nil, false
	}
	return to, h.assocIDs(o, rec, to), true
}

// assocIDs are the HubSpot ids of the records of to associated with rec.
func (h *hub) assocIDs(o *hubObject, rec map[string]any, to *hubObject) []string {
	var ids []string
	switch {
	case o.suite == "Accounts" && to.prop("associatedcompanyid") != nil:
		for _, c := range h.ds.snapshot(to.suite) {
			if c["account_id"] == rec["id"] {
				ids = append(ids, h.hubID(to, c["id"].(string)))
			}
		}
	case to.suite == "Accounts" && o.prop("associatedcompanyid") != nil:
		if s, ok := rec["account_id"].(string); ok && s != "" {
			ids = append(ids, h.hubID(to, s))
		}
	}
	slices.Sort(ids)
	return ids
}

// withAssociations adds the v3 "associations" member a read or list asks
// for with ?associations=type,...: {"companies":{"results":[{"id","type"}]}}.
func (h *hub) withAssociations(o *hubObject, rec map[string]any, out map[string]any, types []string) {
	if len(types) == 0 {
		return
	}
	assoc := map[string]any{}
	for _, t := range types {
		to := hubObjectByType(t)
		if to == nil {
			continue
		}
		var res []any
		for _, id := range h.assocIDs(o, rec, to) {
			res = append(res, map[string]any{"id": id, "type": o.singular + "_to_" + to.singular})
		}
		if len(res) > 0 {
			assoc[to.name] = map[string]any{"results": res}
		}
	}
	out["associations"] = assoc
}

func (h *hub) associationsV4(w http.ResponseWriter, r *http.Request) {
	_, ids, ok := h.associated(w, r)
	if !ok {
		return
	}
	results := make([]any, 0, len(ids))
	for _, id := range ids {
		n, _ := strconv.Atoi(id)
		results = append(results, map[string]any{"toObjectId": n,
			"associationTypes": []any{map[string]any{"category": "HUBSPOT_DEFINED", "typeId": 1, "label": nil}}})
	}
	h.write(w, r, http.StatusOK, map[string]any{"results": results})
}

func (h *hub) associationsV3(w http.ResponseWriter, r *http.Request) {
	to, ids, ok := h.associated(w, r)
	if !ok {
		return
	}
	from := hubObjectByType(r.PathValue("type"))
	results := make([]any, 0, len(ids))
	for _, id := range ids {
		results = append(results, map[string]any{"id": id, "type": from.singular + "_to_" + to.singular})
	}
	h.write(w, r, http.StatusOK, map[string]any{"results": results})
}
