package emulator

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	stdjson "encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/crmgate/crmgate/proxy/profile"
)

// SalesforceOptions configure the Salesforce REST API emulator.
type SalesforceOptions struct {
	// ClientID and ClientSecret are the connected app's consumer key and
	// secret for the client credentials flow at /services/oauth2/token.
	// ClientID empty accepts any request, with or without a token.
	ClientID, ClientSecret string
}

// sfField is one sObject field over a dataset field (SuiteCRM name).
type sfField struct {
	name, suite, typ string
	// ref is a lookup's target object; "" on a lookup means polymorphic,
	// resolved through the record's parent_type (WhatId).
	ref string
	ro  bool // not createable/updateable
	req bool // required on create
	// get derives a read-only value the dataset does not store as such.
	get func(rec map[string]any) any
}

type sfChild struct{ name, object, field string }

type sfObject struct {
	name, module string
	fields       []sfField
	children     []sfChild
}

func sfF(name, suite, typ string) sfField { return sfField{name: name, suite: suite, typ: typ} }
func sfReq(name, suite, typ string) sfField {
	return sfField{name: name, suite: suite, typ: typ, req: true}
}
func sfRef(name, suite, ref string) sfField {
	return sfField{name: name, suite: suite, typ: "reference", ref: ref}
}

// sfName is the compound Name of person objects: the dataset derives it
// from first and last name, so Salesforce's read-only rule matches.
var sfName = sfField{name: "Name", suite: "name", typ: "string", ro: true}

func sfFields(f ...sfField) []sfField {
	return append(append([]sfField{{name: "Id", suite: "id", typ: "id", ro: true}}, f...),
		sfField{name: "CreatedDate", suite: "date_entered", typ: "datetime", ro: true},
		sfField{name: "LastModifiedDate", suite: "date_modified", typ: "datetime", ro: true})
}

// sfObjects are the department store's modules as standard objects (REST
// API Developer Guide and Object Reference field names); employees are a
// custom object, as Salesforce has none. Lookups that Salesforce keeps on
// objects the dataset lacks (Case.ContactId, Task.WhoId) map to
// contact_id, which SuiteCRM has and the demo data leaves empty.
var sfObjects = []sfObject{
	{"Account", "Accounts", sfFields(sfReq("Name", "name", "string"), sfF("Type", "account_type", "picklist"),
		sfF("Industry", "industry", "picklist"), sfRef("OwnerId", "assigned_user_id", "User"),
		sfF("Phone", "phone_office", "phone"), sfF("BillingStreet", "billing_address_street", "textarea"),
		sfF("BillingCity", "billing_address_city", "string"), sfF("BillingPostalCode", "billing_address_postalcode", "string"),
		sfF("Description", "description", "textarea")),
		[]sfChild{{"Contacts", "Contact", "AccountId"}, {"Opportunities", "Opportunity", "AccountId"},
			{"Cases", "Case", "AccountId"}, {"Tasks", "Task", "WhatId"}, {"Events", "Event", "WhatId"}}},
	{"Contact", "Contacts", sfFields(sfName, sfF("FirstName", "first_name", "string"), sfReq("LastName", "last_name", "string"),
		sfRef("AccountId", "account_id", "Account"), sfRef("OwnerId", "assigned_user_id", "User"),
		sfF("Phone", "phone_work", "phone"), sfF("MobilePhone", "phone_mobile", "phone"), sfF("Email", "email1", "email"),
		sfF("Birthdate", "birthdate", "date"), sfF("MailingCity", "primary_address_city", "string"),
		sfF("Description", "description", "textarea")),
		[]sfChild{{"Cases", "Case", "ContactId"}, {"Tasks", "Task", "WhoId"}}},
	{"Lead", "Leads", sfFields(sfName, sfF("FirstName", "first_name", "string"), sfReq("LastName", "last_name", "string"),
		sfF("Status", "status", "picklist"), sfF("LeadSource", "lead_source", "picklist"), sfReq("Company", "account_name", "string"),
		sfRef("OwnerId", "assigned_user_id", "User"), sfF("Phone", "phone_work", "phone"), sfF("Email", "email1", "email"),
		sfF("Description", "description", "textarea")), nil},
	{"Opportunity", "Opportunities", sfFields(sfReq("Name", "name", "string"), sfF("Amount", "amount", "currency"),
		sfReq("StageName", "sales_stage", "picklist"), sfF("Probability", "probability", "percent"),
		sfReq("CloseDate", "date_closed", "date"), sfRef("AccountId", "account_id", "Account"),
		sfRef("OwnerId", "assigned_user_id", "User"), sfF("Description", "description", "textarea")), nil},
	{"Case", "Cases", sfFields(sfF("Subject", "name", "string"),
		sfField{name: "CaseNumber", suite: "case_number", typ: "string", ro: true, get: func(rec map[string]any) any {
			// An auto-number field: Salesforce pads it to eight digits.
			if n, ok := toFloat(rec["case_number"]); ok {
				return fmt.Sprintf("%08d", int(n))
			}
			return nil
		}},
		sfF("Status", "status", "picklist"), sfF("Priority", "priority", "picklist"),
		sfRef("AccountId", "account_id", "Account"), sfRef("ContactId", "contact_id", "Contact"),
		sfRef("OwnerId", "assigned_user_id", "User"), sfF("Description", "description", "textarea")), nil},
	{"Task", "Tasks", sfFields(sfF("Subject", "name", "string"), sfF("Status", "status", "picklist"),
		sfF("Priority", "priority", "picklist"), sfF("ActivityDate", "date_due", "date"),
		sfRef("WhatId", "parent_id", ""), sfRef("WhoId", "contact_id", "Contact"),
		sfRef("OwnerId", "assigned_user_id", "User"), sfF("Description", "description", "textarea")), nil},
	{"Event", "Meetings", sfFields(sfF("Subject", "name", "string"), sfF("StartDateTime", "date_start", "datetime"),
		sfF("Location", "location", "string"), sfRef("WhatId", "parent_id", ""),
		sfRef("OwnerId", "assigned_user_id", "User"), sfF("Description", "description", "textarea")), nil},
	{"Product2", "AOS_Products", sfFields(sfReq("Name", "name", "string"), sfF("ProductCode", "part_number", "string"),
		sfF("Cost__c", "cost", "currency"), sfF("ListPrice__c", "price", "currency"),
		sfF("Description", "description", "textarea"), sfF("Family", "aos_product_category_id", "picklist"),
		sfField{name: "IsActive", typ: "boolean", ro: true, get: func(map[string]any) any { return true }}), nil},
	{"User", "Users", sfFields(sfName, sfF("FirstName", "first_name", "string"), sfReq("LastName", "last_name", "string"),
		sfF("Title", "title", "string"), sfReq("Username", "user_name", "string"), sfReq("Email", "email1", "email"),
		sfF("Phone", "phone_work", "phone"), sfRef("ManagerId", "reports_to_id", "User"),
		sfF("Department", "department", "string"),
		sfField{name: "IsActive", suite: "status", typ: "boolean", ro: true, get: func(rec map[string]any) any {
			return rec["status"] == "Active"
		}}), nil},
	// Manager__c is a lookup to the manager's User, as the dataset records
	// managers by user id; OwnerId is the employee's own user.
	{"Employee__c", "Employees", sfFields(sfName, sfF("First_Name__c", "first_name", "string"),
		sfReq("Last_Name__c", "last_name", "string"), sfF("Title__c", "title", "string"),
		sfF("Department__c", "department", "string"), sfRef("Manager__c", "reports_to_id", "User"),
		sfRef("OwnerId", "assigned_user_id", "User"), sfF("Phone__c", "phone_work", "phone"),
		sfF("MobilePhone__c", "phone_mobile", "phone"), sfF("Email__c", "email1", "email"),
		sfF("Salary__c", "salary_c", "currency"), sfF("Status__c", "employee_status", "picklist")), nil},
}

// sfPrefixes are the key prefixes of the objects' ids (Object Reference
// "Entity key prefixes"); Note, Quote and Organization have no dataset
// module but ids of them appear in policies and token responses.
var sfPrefixes = map[string]string{
	"Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006", "Case": "500",
	"Task": "00T", "Event": "00U", "Product2": "01t", "User": "005", "Employee__c": "a00",
	"Note": "002", "Quote": "0Q0", "Organization": "00D",
}

// sfAppUser is the integration user of the client credentials flow: it
// owns what the API creates and has no row in the dataset.
const sfAppUser = "crmgate-app-user"

func sfObjectByName(name string) *sfObject {
	for i := range sfObjects {
		if strings.EqualFold(sfObjects[i].name, name) {
			return &sfObjects[i]
		}
	}
	return nil
}

// field finds a field case-insensitively, as SOQL and the sObject
// resources do.
func (o *sfObject) field(name string) *sfField {
	for i := range o.fields {
		if strings.EqualFold(o.fields[i].name, name) {
			return &o.fields[i]
		}
	}
	return nil
}

// SalesforceObjectOf is the sObject name of a dataset module (either
// CRM's spelling), or "" for modules the emulator does not serve.
func SalesforceObjectOf(datasetModule string) string {
	if s := schemaByAny(datasetModule); s != nil {
		for _, o := range sfObjects {
			if o.module == s.suite {
				return o.name
			}
		}
	}
	return ""
}

const sfAlnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// SalesforceID is the 18-character Salesforce id of a dataset record as
// object (exact sObject name, e.g. "Account", "User", "Employee__c"): the
// object's key prefix, then for i in 0..11 the character
// sfAlnum[sha1(datasetID)[i] % 62] ("0-9A-Za-z"), then the case-checksum
// suffix. The hash takes the dataset id alone, so the same person's User
// and Employee__c ids differ only in the prefix and a policy author can
// compute either by hand. An object without a known prefix gives "".
func SalesforceID(object, datasetID string) string {
	p, ok := sfPrefixes[object]
	if !ok {
		return ""
	}
	sum := sha1.Sum([]byte(datasetID))
	b := []byte(p)
	for _, c := range sum[:12] {
		b = append(b, sfAlnum[int(c)%len(sfAlnum)])
	}
	return string(b) + profile.SalesforceIDSuffix(string(b))
}

// sfIDMatch reports whether a client's id (15 or 18 characters) names
// the record whose 18-character id is full.
func sfIDMatch(id, full string) bool {
	return id == full || (len(id) == 15 && strings.HasPrefix(full, id))
}

var (
	sfVersion = regexp.MustCompile(`^v\d+\.\d$`)
	sfIDShape = regexp.MustCompile(`^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$`)
)

type sfCursor struct {
	records []any
	size    int
	expires time.Time
}

type sfAPI struct {
	ds   *Dataset
	opts SalesforceOptions

	tokens accessTokens
	// mu guards cursors.
	mu      sync.Mutex
	cursors map[string]*sfCursor
}

// NewSalesforce returns an http.Handler imitating the Salesforce REST API
// (developer.salesforce.com "REST API Developer Guide") under
// /services/data/vNN.N/: SOQL queries (evaluated over the dataset, with
// query locators for later batches), sObject rows, child relationships and
// a minimal describe; errors are JSON arrays of {message, errorCode}. The
// OAuth 2.0 client credentials flow issues the bearer tokens. A POST with
// ?_HttpMethod=M acts as method M (PATCH, DELETE, even GET), as
// Salesforce's override for clients that cannot send them does, so a
// proxy that must refuse the override can be shown to need to.
// Composite, bulk, search and queryAll are not emulated.
func NewSalesforce(ds *Dataset, opts SalesforceOptions) http.Handler {
	s := &sfAPI{ds: ds, opts: opts, cursors: map[string]*sfCursor{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/oauth2/token", s.token)
	mux.Handle("/services/data/", s.auth(http.HandlerFunc(s.route)))
	mux.HandleFunc("/", s.notFound)
	return mux
}

type sfError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

func (s *sfAPI) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	writeJSON(w, r, false, status, "application/json;charset=UTF-8", []sfError{{msg, code}})
}

func (s *sfAPI) notFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

func (s *sfAPI) write(w http.ResponseWriter, r *http.Request, status int, v any) {
	writeJSON(w, r, false, status, "application/json;charset=UTF-8", v)
}

func sfRandom(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = sfAlnum[int(b[i])%len(sfAlnum)]
	}
	return string(b)
}

// token is the OAuth 2.0 client credentials flow of a connected app.
func (s *sfAPI) token(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(code, desc string) {
		writeJSON(w, r, false, http.StatusBadRequest, "application/json", map[string]string{"error": code, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		oauthErr("unsupported_grant_type", "grant type not supported")
		return
	}
	if s.opts.ClientID != "" && !clientIs(r, s.opts.ClientID, s.opts.ClientSecret) {
		oauthErr("invalid_client", "invalid client credentials")
		return
	}
	org := SalesforceID("Organization", "crmgate")
	tok := org[:15] + "!" + sfRandom(96)
	s.tokens.issue(tok, 2*time.Hour) // the default session timeout
	issued := strconv.FormatInt(time.Now().UnixMilli(), 10)
	idURL := "http://" + r.Host + "/id/" + org + "/" + SalesforceID("User", sfAppUser)
	// The signature lets a client check id and issued_at came from the
	// server: HMAC-SHA256 of both keyed with the consumer secret.
	mac := hmac.New(sha256.New, []byte(s.opts.ClientSecret))
	mac.Write([]byte(idURL + issued))
	s.write(w, r, http.StatusOK, map[string]string{
		"access_token": tok, "instance_url": "http://" + r.Host, "id": idURL, "token_type": "Bearer",
		"issued_at": issued, "signature": base64.StdEncoding.EncodeToString(mac.Sum(nil)),
	})
}

func (s *sfAPI) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.ClientID != "" && !s.tokens.valid(r) {
			s.fail(w, r, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *sfAPI) notAllowed(w http.ResponseWriter, r *http.Request, method, allowed string) {
	w.Header().Set("Allow", allowed)
	s.fail(w, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "HTTP Method '"+method+"' not allowed. Allowed are "+allowed)
}

// route dispatches /services/data/vNN.N/{query[/locator] | sobjects/...}.
func (s *sfAPI) route(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/services/data/"), "/")
	if !sfVersion.MatchString(segs[0]) || len(segs) < 2 {
		s.notFound(w, r)
		return
	}
	base, segs := "/services/data/"+segs[0], segs[1:]
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet // writeJSON leaves the body out
	}
	if m := r.URL.Query()["_HttpMethod"]; method == http.MethodPost && len(m) > 0 {
		method = strings.ToUpper(m[0])
	}
	switch {
	case segs[0] == "query" && len(segs) <= 2:
		if method != http.MethodGet {
			s.notAllowed(w, r, method, "GET,HEAD")
		} else if len(segs) == 1 {
			s.query(w, r, base)
		} else {
			s.more(w, r, base, segs[1])
		}
		return
	case segs[0] != "sobjects" || len(segs) < 2 || len(segs) > 4:
		s.notFound(w, r)
		return
	}
	o := sfObjectByName(segs[1])
	if o == nil {
		s.notFound(w, r)
		return
	}
	switch {
	case len(segs) == 2 && method == http.MethodPost:
		s.create(w, r, o)
	case len(segs) == 2:
		s.notAllowed(w, r, method, "POST")
	case len(segs) == 3 && segs[2] == "describe" && method == http.MethodGet:
		s.describe(w, r, base, o)
	case len(segs) == 3 && segs[2] == "describe":
		s.notAllowed(w, r, method, "GET,HEAD")
	case len(segs) == 3 && method == http.MethodGet:
		s.read(w, r, base, o, segs[2])
	case len(segs) == 3 && method == http.MethodPatch:
		s.update(w, r, o, segs[2])
	case len(segs) == 3 && method == http.MethodDelete:
		s.delete(w, r, o, segs[2])
	case len(segs) == 3:
		s.notAllowed(w, r, method, "GET,PATCH,HEAD,DELETE")
	case method == http.MethodGet:
		s.children(w, r, base, o, segs[2], segs[3])
	default:
		s.notAllowed(w, r, method, "GET,HEAD")
	}
}

// value renders one field of a dataset record as the API writes it:
// lookups as Salesforce ids, blanks as null (Salesforce stores no empty
// strings), dates and datetimes in ISO 8601.
func (o *sfObject) value(f *sfField, rec map[string]any) any {
	if f.get != nil {
		return f.get(rec)
	}
	v := rec[f.suite]
	str, isStr := v.(string)
	if f.typ == "boolean" {
		// A checkbox is never null: unset reads as false.
		return v == true || str == "1" || str == "true"
	}
	if v == nil || (isStr && str == "") {
		return nil
	}
	switch f.typ {
	case "id":
		return SalesforceID(o.name, valueString(v))
	case "reference":
		obj := f.ref
		if obj == "" {
			obj = SalesforceObjectOf(valueString(rec["parent_type"]))
		}
		if id := SalesforceID(obj, valueString(v)); id != "" {
			return id
		}
		return nil
	case "date":
		if len(str) >= 10 {
			return str[:10]
		}
	case "datetime":
		switch len(str) {
		case len("2006-01-02"):
			return str + "T00:00:00.000+0000"
		case len("2006-01-02 15:04:05"):
			return str[:10] + "T" + str[11:] + ".000+0000"
		}
	case "double", "currency", "percent", "int":
		if n, ok := toFloat(v); ok {
			return n
		}
		return nil
	}
	if !isStr {
		return valueString(v)
	}
	return str
}

// row renders a record with every field under its API name.
func (o *sfObject) row(rec map[string]any) map[string]any {
	out := make(map[string]any, len(o.fields))
	for i := range o.fields {
		out[o.fields[i].name] = o.value(&o.fields[i], rec)
	}
	return out
}

// sfRecord is a JSON object that keeps its members in order: Salesforce
// writes "attributes" first and then the fields as selected.
type sfRecord struct {
	keys []string
	vals []any
}

func (r *sfRecord) set(k string, v any) { r.keys, r.vals = append(r.keys, k), append(r.vals, v) }

func (r *sfRecord) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range r.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := stdjson.Marshal(k)
		vb, err := stdjson.Marshal(r.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o *sfObject) record(base string, row map[string]any) *sfRecord {
	rec := &sfRecord{}
	rec.set("attributes", map[string]string{"type": o.name, "url": base + "/sobjects/" + o.name + "/" + row["Id"].(string)})
	return rec
}

// project renders a row with the given fields (API names as the client
// wrote them) or, when names is nil, every field.
func (o *sfObject) project(base string, row map[string]any, names []string) *sfRecord {
	rec := o.record(base, row)
	if names == nil {
		for _, f := range o.fields {
			rec.set(f.name, row[f.name])
		}
	}
	for _, n := range names {
		rec.set(n, row[o.field(n).name])
	}
	return rec
}

// find returns the record a client's id names.
func (s *sfAPI) find(o *sfObject, id string) (map[string]any, bool) {
	if !sfIDShape.MatchString(id) || !strings.HasPrefix(id, sfPrefixes[o.name]) {
		return nil, false
	}
	for _, rec := range s.ds.snapshot(o.module) {
		if sfIDMatch(id, SalesforceID(o.name, valueString(rec["id"]))) {
			return rec, true
		}
	}
	return nil, false
}

// fieldList resolves ?fields=A,B; nil when absent.
func (s *sfAPI) fieldList(w http.ResponseWriter, r *http.Request, o *sfObject) ([]string, bool) {
	raw, ok := r.URL.Query()["fields"]
	if !ok {
		return nil, true
	}
	names := []string{"Id"}
	for _, n := range strings.Split(strings.Join(raw, ","), ",") {
		f := o.field(strings.TrimSpace(n))
		if f == nil {
			s.fail(w, r, http.StatusBadRequest, "INVALID_FIELD", "No such column '"+strings.TrimSpace(n)+"' on sobject of type "+o.name)
			return nil, false
		}
		if !slices.Contains(names, f.name) {
			names = append(names, f.name)
		}
	}
	return names, true
}

func (s *sfAPI) read(w http.ResponseWriter, r *http.Request, base string, o *sfObject, id string) {
	names, ok := s.fieldList(w, r, o)
	if !ok {
		return
	}
	rec, found := s.find(o, id)
	if !found {
		s.notFound(w, r)
		return
	}
	s.write(w, r, http.StatusOK, o.project(base, o.row(rec), names))
}

func (s *sfAPI) children(w http.ResponseWriter, r *http.Request, base string, o *sfObject, id, rel string) {
	var c *sfChild
	for i := range o.children {
		if strings.EqualFold(o.children[i].name, rel) {
			c = &o.children[i]
		}
	}
	parent, found := s.find(o, id)
	if c == nil || !found {
		s.notFound(w, r)
		return
	}
	target := sfObjectByName(c.object)
	names, ok := s.fieldList(w, r, target)
	if !ok {
		return
	}
	pid := SalesforceID(o.name, valueString(parent["id"]))
	var recs []any
	for _, rec := range s.ds.snapshot(target.module) {
		if row := target.row(rec); row[c.field] == pid {
			recs = append(recs, target.project(base, row, names))
		}
	}
	s.envelope(w, r, base, recs)
}

func (s *sfAPI) describe(w http.ResponseWriter, r *http.Request, base string, o *sfObject) {
	fields := make([]map[string]any, 0, len(o.fields))
	for _, f := range o.fields {
		refTo := []string{}
		if f.ref != "" {
			refTo = append(refTo, f.ref)
		} else if f.typ == "reference" {
			refTo = append(refTo, "Account", "Opportunity", "Case")
		}
		fields = append(fields, map[string]any{"name": f.name, "type": f.typ, "createable": !f.ro, "updateable": !f.ro,
			"nillable": !f.req && !f.ro, "referenceTo": refTo, "custom": strings.HasSuffix(f.name, "__c")})
	}
	rels := []map[string]any{}
	for _, c := range o.children {
		rels = append(rels, map[string]any{"relationshipName": c.name, "childSObject": c.object, "field": c.field})
	}
	u := base + "/sobjects/" + o.name
	s.write(w, r, http.StatusOK, map[string]any{
		"name": o.name, "keyPrefix": sfPrefixes[o.name], "custom": strings.HasSuffix(o.name, "__c"),
		"queryable": true, "createable": true, "updateable": true, "deletable": true,
		"fields": fields, "childRelationships": rels,
		"urls": map[string]string{"sobject": u, "describe": u + "/describe", "rowTemplate": u + "/{ID}"},
	})
}

// decode maps a flat JSON body of API field names to dataset fields,
// refusing what Salesforce refuses: unknown fields, read-only ones, values
// of the wrong type and lookups to records that do not exist.
func (s *sfAPI) decode(w http.ResponseWriter, r *http.Request, o *sfObject) (map[string]any, bool) {
	raw, err := readBody(r)
	var body map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &body)
	}
	if err != nil || body == nil {
		s.fail(w, r, http.StatusBadRequest, "JSON_PARSER_ERROR", "The request body is not a valid JSON object.")
		return nil, false
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first error reported does not depend on map order
	out := map[string]any{}
	for _, k := range keys {
		if k == "attributes" {
			continue
		}
		f := o.field(k)
		if f == nil {
			s.fail(w, r, http.StatusBadRequest, "INVALID_FIELD", "No such column '"+k+"' on sobject of type "+o.name)
			return nil, false
		}
		if f.ro {
			s.fail(w, r, http.StatusBadRequest, "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: "+f.name+
				". Please check the security settings of this field and verify that it is read/write for your profile or permission set.")
			return nil, false
		}
		if code, msg := s.convert(f, body[k], out); code != "" {
			s.fail(w, r, http.StatusBadRequest, code, msg)
			return nil, false
		}
	}
	return out, true
}

// convert stores one API value in out under its dataset name.
func (s *sfAPI) convert(f *sfField, v any, out map[string]any) (code, msg string) {
	bad := func() (string, string) {
		return "JSON_PARSER_ERROR", fmt.Sprintf("Cannot deserialize instance of %s from value %v for field %s", f.typ, v, f.name)
	}
	if v == nil {
		switch f.typ {
		case "double", "currency", "percent", "int", "boolean":
			out[f.suite] = nil
		default:
			out[f.suite] = ""
		}
		return "", ""
	}
	str, isStr := v.(string)
	switch f.typ {
	case "double", "currency", "percent", "int":
		n, ok := toFloat(v)
		if !ok {
			return bad()
		}
		out[f.suite] = n
	case "boolean":
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		out[f.suite] = b
	case "date":
		if _, err := time.Parse("2006-01-02", str); err != nil {
			return bad()
		}
		out[f.suite] = str
	case "datetime":
		t, ok := sfParseTime(str)
		if !ok {
			return bad()
		}
		out[f.suite] = t.UTC().Format("2006-01-02 15:04:05")
	case "reference":
		if !isStr {
			return bad()
		}
		if str == "" {
			out[f.suite] = ""
			return "", ""
		}
		if !sfIDShape.MatchString(str) {
			return "MALFORMED_ID", f.name + ": id value of incorrect type: " + str
		}
		module, id, ok := s.resolve(f, str)
		if !ok {
			return "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"
		}
		out[f.suite] = id
		if f.ref == "" {
			out["parent_type"] = module
		}
	default:
		if !isStr {
			return bad()
		}
		out[f.suite] = str
	}
	return "", ""
}

// resolve finds the dataset record a lookup value names: the field's
// target object or, for a polymorphic lookup, whichever object the key
// prefix says.
func (s *sfAPI) resolve(f *sfField, id string) (module, datasetID string, ok bool) {
	for i := range sfObjects {
		o := &sfObjects[i]
		if (f.ref != "" && o.name != f.ref) || !strings.HasPrefix(id, sfPrefixes[o.name]) {
			continue
		}
		if o.name == "User" && sfIDMatch(id, SalesforceID("User", sfAppUser)) {
			return o.module, sfAppUser, true
		}
		if rec, found := s.find(o, id); found {
			return o.module, valueString(rec["id"]), true
		}
	}
	return "", "", false
}

func sfParseTime(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (s *sfAPI) create(w http.ResponseWriter, r *http.Request, o *sfObject) {
	f, ok := s.decode(w, r, o)
	if !ok {
		return
	}
	var missing []string
	for _, fl := range o.fields {
		if v := f[fl.suite]; fl.req && (v == nil || v == "") {
			missing = append(missing, fl.name)
		}
	}
	if len(missing) > 0 {
		s.fail(w, r, http.StatusBadRequest, "REQUIRED_FIELD_MISSING", "Required fields are missing: ["+strings.Join(missing, ", ")+"]")
		return
	}
	if o.field("OwnerId") != nil && f["assigned_user_id"] == nil {
		f["assigned_user_id"] = sfAppUser
	}
	if schemaBySuite(o.module).personName {
		for _, k := range []string{"first_name", "last_name"} {
			if f[k] == nil {
				f[k] = "" // the dataset composes name from both
			}
		}
	}
	now := time.Now().UTC().Format("2006-01-02 15:04:05")
	f["date_entered"], f["date_modified"] = now, now
	s.ds.mu.Lock()
	if o.name == "Case" {
		next := 1.0
		for _, rec := range s.ds.modules[o.module].byID {
			if n, ok := toFloat(rec["case_number"]); ok && n >= next {
				next = n + 1
			}
		}
		f["case_number"] = next
	}
	id := s.ds.newID()
	s.ds.put(o.module, id, f)
	s.ds.mu.Unlock()
	s.write(w, r, http.StatusCreated, map[string]any{"id": SalesforceID(o.name, id), "success": true, "errors": []any{}})
}

func (s *sfAPI) update(w http.ResponseWriter, r *http.Request, o *sfObject, id string) {
	rec, found := s.find(o, id)
	if !found {
		s.notFound(w, r)
		return
	}
	f, ok := s.decode(w, r, o)
	if !ok {
		return
	}
	next := clone(rec)
	for k, v := range f {
		next[k] = v
	}
	next["date_modified"] = time.Now().UTC().Format("2006-01-02 15:04:05")
	s.ds.mu.Lock()
	s.ds.put(o.module, valueString(rec["id"]), next)
	s.ds.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *sfAPI) delete(w http.ResponseWriter, r *http.Request, o *sfObject, id string) {
	rec, found := s.find(o, id)
	if !found {
		s.notFound(w, r)
		return
	}
	s.ds.mu.Lock()
	s.ds.remove(o.module, valueString(rec["id"]))
	s.ds.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}
