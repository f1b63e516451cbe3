package emulator

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/crmgate/crmgate/proxy/profile"
)

// DynamicsOptions configure the Dataverse Web API emulator.
type DynamicsOptions struct {
	// Tenant, ClientID and ClientSecret are the Entra ID app registration
	// whose client-credentials tokens the API accepts: POST
	// /{Tenant}/oauth2/v2.0/token with scope {org}/.default. ClientID
	// empty accepts any request.
	Tenant, ClientID, ClientSecret string
}

// dynTable is one Dataverse table over a Dataset module.
type dynTable struct {
	set, logical, key, suite string
	fields                   []fieldMap // suite → Dataverse name
	// rows, when set, derives the table from the dataset instead of a
	// module of its own (teams and business units, read-only).
	rows func(ds *Dataset) []map[string]any
}

func dynFields(pairs ...string) []fieldMap {
	var out []fieldMap
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, fieldMap{pairs[i], pairs[i+1]})
	}
	return append(out, fieldMap{"date_entered", "createdon"}, fieldMap{"date_modified", "modifiedon"}, fieldMap{"description", "description"})
}

// dynTables are the department store's modules in Dataverse naming
// (Web API EntityType reference). Lookups are _x_value GUID columns;
// employees live in a custom table, new_employee, as Dataverse has none.
var dynTables = []dynTable{
	{"accounts", "account", "accountid", "Accounts", dynFields("name", "name", "account_type", "customertypecode",
		"industry", "industrycode", "assigned_user_id", "_ownerid_value", "phone_office", "telephone1",
		"email1", "emailaddress1", "billing_address_street", "address1_line1", "billing_address_city", "address1_city",
		"billing_address_postalcode", "address1_postalcode"), nil},
	{"contacts", "contact", "contactid", "Contacts", dynFields("name", "fullname", "first_name", "firstname",
		"last_name", "lastname", "account_id", "_parentcustomerid_value", "assigned_user_id", "_ownerid_value",
		"phone_work", "telephone1", "phone_mobile", "mobilephone", "email1", "emailaddress1", "birthdate", "birthdate",
		"primary_address_city", "address1_city"), nil},
	{"leads", "lead", "leadid", "Leads", dynFields("name", "fullname", "first_name", "firstname", "last_name", "lastname",
		"status", "statuscode", "lead_source", "leadsourcecode", "account_name", "companyname",
		"assigned_user_id", "_ownerid_value", "phone_work", "telephone1", "email1", "emailaddress1"), nil},
	{"opportunities", "opportunity", "opportunityid", "Opportunities", dynFields("name", "name", "amount", "estimatedvalue",
		"sales_stage", "stepname", "probability", "closeprobability", "date_closed", "estimatedclosedate",
		"account_id", "_parentaccountid_value", "assigned_user_id", "_ownerid_value"), nil},
	{"incidents", "incident", "incidentid", "Cases", dynFields("name", "title", "case_number", "ticketnumber",
		"status", "statuscode", "priority", "prioritycode", "account_id", "_customerid_value", "assigned_user_id", "_ownerid_value"), nil},
	{"phonecalls", "phonecall", "activityid", "Calls", dynFields("name", "subject", "status", "statuscode",
		"direction", "directioncode", "date_start", "scheduledstart", "parent_id", "_regardingobjectid_value",
		"assigned_user_id", "_ownerid_value"), nil},
	{"appointments", "appointment", "activityid", "Meetings", dynFields("name", "subject", "status", "statuscode",
		"date_start", "scheduledstart", "location", "location", "parent_id", "_regardingobjectid_value", "assigned_user_id", "_ownerid_value"), nil},
	{"tasks", "task", "activityid", "Tasks", dynFields("name", "subject", "status", "statuscode", "date_due", "scheduledend",
		"parent_id", "_regardingobjectid_value", "assigned_user_id", "_ownerid_value"), nil},
	{"products", "product", "productid", "AOS_Products", dynFields("name", "name", "part_number", "productnumber",
		"cost", "standardcost", "price", "price"), nil},
	{"systemusers", "systemuser", "systemuserid", "Users", dynFields("name", "fullname", "first_name", "firstname",
		"last_name", "lastname", "title", "title", "user_name", "domainname", "email1", "internalemailaddress",
		"phone_work", "address1_telephone1", "reports_to_id", "_parentsystemuserid_value", "status", "new_status",
		"business_unit", "_businessunitid_value"), nil},
	{set: "teams", logical: "team", key: "teamid", fields: dynFields("name", "name", "business_unit", "_businessunitid_value",
		"team_type", "teamtype"), rows: dynTeams},
	{set: "businessunits", logical: "businessunit", key: "businessunitid", fields: dynFields("name", "name"),
		rows: func(*Dataset) []map[string]any {
			return []map[string]any{{"id": "bu-root", "name": "Department store"}}
		}},
	{"new_employees", "new_employee", "new_employeeid", "Employees", dynFields("name", "new_name", "first_name", "new_firstname",
		"last_name", "new_lastname", "title", "new_jobtitle", "department", "new_department", "reports_to_id", "_new_manager_value",
		"assigned_user_id", "_ownerid_value", "phone_work", "new_telephone", "phone_mobile", "new_mobilephone",
		"email1", "new_email", "salary_c", "new_salary", "employee_status", "new_status"), nil},
}

// dynLinks are collection-valued navigation properties: rows of target
// whose foreign key (suite name) holds the parent's id.
var dynLinks = map[string]struct{ target, fk string }{
	"contact_customer_accounts":     {"contacts", "account_id"},
	"incident_customer_accounts":    {"incidents", "account_id"},
	"opportunity_customer_accounts": {"opportunities", "account_id"},
	"Account_Phonecalls":            {"phonecalls", "parent_id"},
	"Account_Tasks":                 {"tasks", "parent_id"},
	"Account_Appointments":          {"appointments", "parent_id"},
}

// dynTeams are the owner teams, one per department of the users (team
// ids "team-<department>", as a record's assigned_user_id names a team
// owner), all in the root business unit.
func dynTeams(ds *Dataset) []map[string]any {
	seen := map[string]bool{}
	var out []map[string]any
	for _, u := range ds.snapshot("Users") {
		dept, _ := u["department"].(string)
		if dept == "" || seen[dept] {
			continue
		}
		seen[dept] = true
		out = append(out, map[string]any{"id": "team-" + dept, "name": dept, "business_unit": "bu-root", "team_type": float64(0)})
	}
	return out
}

// records are the table's rows as dataset records.
func (d *dyn) records(t *dynTable) []map[string]any {
	if t.rows != nil {
		return t.rows(d.ds)
	}
	return d.ds.snapshot(t.suite)
}

func dynTableBySet(set string) *dynTable {
	for i := range dynTables {
		if dynTables[i].set == set {
			return &dynTables[i]
		}
	}
	return nil
}

func (t *dynTable) dynName(suite string) string {
	for _, f := range t.fields {
		if f.suite == suite {
			return f.espo
		}
	}
	return ""
}

func (t *dynTable) suiteName(dyn string) string {
	for _, f := range t.fields {
		if f.espo == dyn {
			return f.suite
		}
	}
	return ""
}

// DynamicsID is the Dataverse GUID of a dataset id: the id itself when it
// is a GUID, otherwise one derived from it (stable, so policies and tests
// can name the department store's users, accounts and contacts).
func DynamicsID(id string) string {
	if profile.IsGUID(id) {
		return strings.ToLower(id)
	}
	sum := sha1.Sum([]byte("crmgate-dataverse:" + id))
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

type dyn struct {
	ds     *Dataset
	opts   DynamicsOptions
	tokens accessTokens
}

// NewDynamics returns an http.Handler imitating the Dataverse Web API
// (learn.microsoft.com "Use the Microsoft Dataverse Web API"): OData v4
// JSON with @odata.context and @odata.etag, lists under "value" with
// @odata.count for $count=true and @odata.nextLink ($skiptoken paging
// cookie) when Prefer: odata.maxpagesize cuts the page; $select, $filter
// (evaluated with crmgate's OData parser), $orderby, $top; create answering
// 204 with OData-EntityId; PATCH as upsert unless If-Match: * ; errors as
// {"error":{"code":"0x...","message":...}}. Text compares
// case-insensitively, as Dataverse's SQL collation does. $expand, $apply,
// $batch and annotations are not emulated: crmgate never forwards them.
func NewDynamics(ds *Dataset, opts DynamicsOptions) http.Handler {
	d := &dyn{ds: ds, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", d.token)
	mux.Handle("/api/data/v9.2/", d.auth(d.route))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.fail(w, r, http.StatusNotFound, "0x80060888", "Resource not found for the segment '"+r.URL.Path+"'.")
	})
	return mux
}

func (d *dyn) write(w http.ResponseWriter, r *http.Request, status int, v any) {
	w.Header().Set("OData-Version", "4.0")
	writeJSON(w, r, false, status, "application/json; odata.metadata=minimal", v)
}

func (d *dyn) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	d.write(w, r, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// token is the Microsoft identity platform's v2.0 token endpoint for the
// client credentials grant.
func (d *dyn) token(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(status int, code, desc string) {
		writeJSON(w, r, false, status, "application/json", map[string]any{"error": code, "error_description": desc})
	}
	if r.PathValue("tenant") != d.opts.Tenant {
		oauthErr(http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant not found.")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		oauthErr(http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
		return
	}
	if d.opts.ClientID == "" || !clientIs(r, d.opts.ClientID, d.opts.ClientSecret) {
		oauthErr(http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	if !strings.HasSuffix(r.PostForm.Get("scope"), "/.default") {
		oauthErr(http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")
		return
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	d.tokens.issue(tok, time.Hour)
	writeJSON(w, r, false, http.StatusOK, "application/json", map[string]any{
		"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok,
	})
}

func (d *dyn) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.opts.ClientID != "" && !d.tokens.valid(r) {
			w.Header().Set("WWW-Authenticate", `Bearer authorization_uri=https://login.microsoftonline.com/`+d.opts.Tenant+`/oauth2/authorize`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next(w, r)
	})
}

func (d *dyn) base(r *http.Request) string { return "http://" + r.Host + "/api/data/v9.2" }

// route dispatches /api/data/v9.2/{set}[({key})[/{nav}]].
func (d *dyn) route(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/api/data/v9.2/")
	segs := strings.Split(rest, "/")
	set, key, hasKey := segs[0], "", false
	if i := strings.IndexByte(set, '('); i > 0 && strings.HasSuffix(set, ")") {
		set, key, hasKey = set[:i], set[i+1:len(set)-1], true
	}
	t := dynTableBySet(set)
	if t == nil || len(segs) > 2 || (len(segs) == 2 && !hasKey) {
		d.fail(w, r, http.StatusNotFound, "0x80060888", "Resource not found for the segment '"+segs[0]+"'.")
		return
	}
	if hasKey && !profile.IsGUID(key) {
		d.fail(w, r, http.StatusBadRequest, "0x80060888", "Unrecognized 'Edm.Guid' literal '"+key+"'.")
		return
	}
	key = strings.ToLower(key)
	switch {
	case len(segs) == 2 && r.Method == http.MethodGet:
		d.related(w, r, t, key, segs[1])
	case len(segs) == 2:
		d.fail(w, r, http.StatusMethodNotAllowed, "0x80060888", "The requested resource does not support http method '"+r.Method+"'.")
	case t.rows != nil && r.Method != http.MethodGet:
		d.fail(w, r, http.StatusMethodNotAllowed, "0x80060888", "The requested resource does not support http method '"+r.Method+"'.")
	case !hasKey && r.Method == http.MethodGet:
		d.list(w, r, t, d.records(t), t.set)
	case !hasKey && r.Method == http.MethodPost:
		d.create(w, r, t)
	case hasKey && r.Method == http.MethodGet:
		d.read(w, r, t, key)
	case hasKey && r.Method == http.MethodPatch:
		d.update(w, r, t, key)
	case hasKey && r.Method == http.MethodDelete:
		d.delete(w, r, t, key)
	default:
		d.fail(w, r, http.StatusMethodNotAllowed, "0x80060888", "The requested resource does not support http method '"+r.Method+"'.")
	}
}

// render turns a dataset record into a Dataverse row; ids and lookups
// become GUIDs.
func (d *dyn) render(t *dynTable, rec map[string]any, sel []string) map[string]any {
	row := map[string]any{}
	for _, f := range t.fields {
		v, ok := rec[f.suite]
		if !ok {
			continue
		}
		if s, isStr := v.(string); isStr && len(s) == len("2006-01-02 15:04:05") && s[10] == ' ' {
			// Dataverse writes date-times as ISO 8601 in UTC.
			v = s[:10] + "T" + s[11:] + "Z"
		}
		if s, isStr := v.(string); isStr && strings.HasPrefix(f.espo, "_") {
			if s == "" {
				v = nil
			} else {
				v = DynamicsID(s)
			}
		}
		row[f.espo] = v
	}
	switch t.set {
	case "products":
		row["currentcost"] = row["standardcost"]
	case "systemusers":
		row["_businessunitid_value"] = DynamicsID("bu-root")
	}
	id := DynamicsID(fmt.Sprint(rec["id"]))
	row[t.key] = id
	if len(sel) > 0 {
		out := map[string]any{t.key: id}
		for _, s := range sel {
			if v, ok := row[s]; ok {
				out[s] = v
			} else {
				out[s] = nil
			}
		}
		row = out
	}
	row["@odata.etag"] = `W/"` + strconv.Itoa(len(fmt.Sprint(rec["date_modified"]))+1000) + `"`
	return row
}

func (d *dyn) find(t *dynTable, key string) (map[string]any, bool) {
	for _, rec := range d.records(t) {
		if DynamicsID(fmt.Sprint(rec["id"])) == key {
			return rec, true
		}
	}
	return nil, false
}

func (d *dyn) notFound(w http.ResponseWriter, r *http.Request, t *dynTable, key string) {
	d.fail(w, r, http.StatusNotFound, "0x80040217", t.logical+" With Id = "+key+" Does Not Exist")
}

type dynQuery struct {
	sel     []string
	filter  *profile.ODataExpr
	orderby []string
	top     int
	count   bool
	page    int
	rest    url.Values
}

func (d *dyn) parseQuery(r *http.Request, t *dynTable) (*dynQuery, string) {
	q := &dynQuery{top: -1, page: 1}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, "The query string is malformed."
	}
	q.rest = url.Values{}
	for k, vs := range vals {
		if len(vs) != 1 {
			return nil, "Query option '" + k + "' was specified more than once, but it must be specified at most once."
		}
		v := vs[0]
		switch k {
		case "$select":
			for _, s := range strings.Split(v, ",") {
				if t.suiteName(s) == "" && s != t.key && !(t.set == "products" && s == "currentcost") {
					return nil, "Could not find a property named '" + s + "' on type 'Microsoft.Dynamics.CRM." + t.logical + "'."
				}
				q.sel = append(q.sel, s)
			}
		case "$filter":
			if q.filter, err = profile.ParseODataFilter(v); err != nil {
				return nil, "Syntax error in $filter: " + err.Error()
			}
			for _, f := range q.filter.Fields(nil) {
				if t.suiteName(f) == "" && f != t.key {
					return nil, "Could not find a property named '" + f + "' on type 'Microsoft.Dynamics.CRM." + t.logical + "'."
				}
			}
		case "$orderby":
			q.orderby = strings.Split(v, ",")
		case "$top":
			if q.top, err = strconv.Atoi(v); err != nil || q.top < 0 {
				return nil, "Invalid value for $top."
			}
		case "$count":
			q.count = v == "true"
		case "$skiptoken":
			// <cookie pagenumber="2" pagingcookie="..." istracking="False" />
			i := strings.Index(v, `pagenumber="`)
			if i < 0 {
				return nil, "Invalid $skiptoken."
			}
			n, err := strconv.Atoi(strings.SplitN(v[i+len(`pagenumber="`):], `"`, 2)[0])
			if err != nil || n < 1 {
				return nil, "Invalid $skiptoken."
			}
			q.page = n
		default:
			return nil, "The query parameter " + k + " is not supported"
		}
		if k != "$skiptoken" {
			q.rest.Set(k, v)
		}
	}
	return q, ""
}

func (d *dyn) list(w http.ResponseWriter, r *http.Request, t *dynTable, recs []map[string]any, ctxName string) {
	q, bad := d.parseQuery(r, t)
	if bad != "" {
		d.fail(w, r, http.StatusBadRequest, "0x80060888", bad)
		return
	}
	var rows []map[string]any
	for _, rec := range recs {
		full := d.render(t, rec, nil)
		if q.filter == nil || evalOData(q.filter, full) {
			rows = append(rows, full)
		}
	}
	for i := len(q.orderby) - 1; i >= 0; i-- {
		f, dir, _ := strings.Cut(strings.TrimSpace(q.orderby[i]), " ")
		sort.SliceStable(rows, func(a, b int) bool {
			c := dynCompare(rows[a][f], rows[b][f])
			if dir == "desc" {
				return c > 0
			}
			return c < 0
		})
	}
	total := len(rows)
	if q.top >= 0 && q.top < len(rows) {
		rows = rows[:q.top]
	}
	size := 5000
	if v, ok := preference(r, "odata.maxpagesize"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n < size {
			size = n
		}
	}
	start := (q.page - 1) * size
	if start > len(rows) {
		start = len(rows)
	}
	end := min(start+size, len(rows))
	page := rows[start:end]
	out := map[string]any{"@odata.context": d.base(r) + "/$metadata#" + ctxName}
	if q.count {
		out["@odata.count"] = total
	}
	vals := make([]any, 0, len(page))
	for _, row := range page {
		if len(q.sel) > 0 {
			proj := map[string]any{t.key: row[t.key], "@odata.etag": row["@odata.etag"]}
			for _, s := range q.sel {
				proj[s] = row[s]
			}
			row = proj
		}
		vals = append(vals, row)
	}
	out["value"] = vals
	if end < len(rows) {
		next := url.Values{}
		for k, v := range q.rest {
			next[k] = v
		}
		next.Set("$skiptoken", fmt.Sprintf(`<cookie pagenumber="%d" pagingcookie="" istracking="False" />`, q.page+1))
		out["@odata.nextLink"] = "http://" + r.Host + r.URL.Path + "?" + strings.ReplaceAll(next.Encode(), "+", "%20")
	}
	d.write(w, r, http.StatusOK, out)
}

func preference(r *http.Request, name string) (string, bool) {
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, name) {
				return strings.Trim(val, `"`), true
			}
		}
	}
	return "", false
}

func (d *dyn) read(w http.ResponseWriter, r *http.Request, t *dynTable, key string) {
	rec, ok := d.find(t, key)
	if !ok {
		d.notFound(w, r, t, key)
		return
	}
	q, bad := d.parseQuery(r, t)
	if bad != "" || q.filter != nil || q.top >= 0 {
		d.fail(w, r, http.StatusBadRequest, "0x80060888", "Only $select and $expand apply to a single row. "+bad)
		return
	}
	row := d.render(t, rec, q.sel)
	row["@odata.context"] = d.base(r) + "/$metadata#" + t.set + "/$entity"
	d.write(w, r, http.StatusOK, row)
}

func (d *dyn) related(w http.ResponseWriter, r *http.Request, t *dynTable, key, nav string) {
	rec, ok := d.find(t, key)
	if !ok {
		d.notFound(w, r, t, key)
		return
	}
	l, ok := dynLinks[nav]
	if !ok {
		d.fail(w, r, http.StatusBadRequest, "0x80060888", "Could not find a property named '"+nav+"' on type 'Microsoft.Dynamics.CRM."+t.logical+"'.")
		return
	}
	target := dynTableBySet(l.target)
	var kids []map[string]any
	for _, c := range d.ds.snapshot(target.suite) {
		if c[l.fk] == rec["id"] {
			kids = append(kids, c)
		}
	}
	d.list(w, r, target, kids, t.set+"("+key+")/"+nav)
}

// fields maps a write body to dataset fields, refusing what Dataverse
// refuses: unknown columns and direct writes of lookups.
func (d *dyn) fields(w http.ResponseWriter, r *http.Request, t *dynTable) (map[string]any, bool) {
	raw, err := readBody(r)
	var body map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &body)
	}
	if err != nil {
		d.fail(w, r, http.StatusBadRequest, "0x80060891", "The request body is not valid JSON.")
		return nil, false
	}
	out := map[string]any{}
	for k, v := range body {
		if strings.HasPrefix(k, "_") {
			d.fail(w, r, http.StatusBadRequest, "0x80048d19", "CRM do not support direct update of Entity Reference properties, Use Navigation properties instead.")
			return nil, false
		}
		s := t.suiteName(k)
		if s == "" {
			d.fail(w, r, http.StatusBadRequest, "0x80060888", "An undeclared property '"+k+"' which only has property annotations in the payload but no property value was found in the payload.")
			return nil, false
		}
		out[s] = v
	}
	return out, true
}

func (d *dyn) create(w http.ResponseWriter, r *http.Request, t *dynTable) {
	f, ok := d.fields(w, r, t)
	if !ok {
		return
	}
	d.ds.mu.Lock()
	id := DynamicsID(d.ds.newID())
	f["assigned_user_id"] = "crmgate-app-user"
	d.ds.put(t.suite, id, f)
	d.ds.mu.Unlock()
	w.Header().Set("OData-EntityId", d.base(r)+"/"+t.set+"("+id+")")
	w.WriteHeader(http.StatusNoContent)
}

func (d *dyn) update(w http.ResponseWriter, r *http.Request, t *dynTable, key string) {
	f, ok := d.fields(w, r, t)
	if !ok {
		return
	}
	rec, exists := d.find(t, key)
	switch {
	case !exists && r.Header.Get("If-Match") == "*":
		d.notFound(w, r, t, key)
		return
	case exists && r.Header.Get("If-None-Match") == "*":
		d.fail(w, r, http.StatusPreconditionFailed, "0x80040237", "A record with matching key values already exists.")
		return
	}
	d.ds.mu.Lock()
	defer d.ds.mu.Unlock()
	if !exists {
		// Upsert: PATCH to a new key creates the row with that key.
		d.ds.put(t.suite, key, f)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	next := clone(rec)
	for k, v := range f {
		next[k] = v
	}
	d.ds.put(t.suite, fmt.Sprint(rec["id"]), next)
	w.WriteHeader(http.StatusNoContent)
}

func (d *dyn) delete(w http.ResponseWriter, r *http.Request, t *dynTable, key string) {
	rec, ok := d.find(t, key)
	if !ok {
		d.notFound(w, r, t, key)
		return
	}
	d.ds.mu.Lock()
	d.ds.remove(t.suite, fmt.Sprint(rec["id"]))
	d.ds.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// evalOData evaluates a parsed $filter over a row as Dataverse would:
// text and GUIDs compare case-insensitively, null matches a missing or
// null column.
func evalOData(e *profile.ODataExpr, row map[string]any) bool {
	switch e.Op {
	case profile.ODataOr:
		return evalOData(e.Args[0], row) || evalOData(e.Args[1], row)
	case profile.ODataAnd:
		return evalOData(e.Args[0], row) && evalOData(e.Args[1], row)
	case profile.ODataNot:
		return !evalOData(e.Args[0], row)
	case profile.ODataFunc:
		s, ok := row[e.L.Field].(string)
		if !ok {
			return false
		}
		s, v := strings.ToLower(s), strings.ToLower(e.R.Value)
		switch e.Cmp {
		case "contains":
			return strings.Contains(s, v)
		case "startswith":
			return strings.HasPrefix(s, v)
		}
		return strings.HasSuffix(s, v)
	}
	l, r := operandValue(e.L, row), operandValue(e.R, row)
	if l == nil || r == nil {
		switch e.Cmp {
		case "eq":
			return l == nil && r == nil
		case "ne":
			return (l == nil) != (r == nil)
		}
		return false
	}
	c, ok := compareTyped(l, r)
	if !ok {
		return false
	}
	switch e.Cmp {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	}
	return c <= 0
}

func operandValue(o profile.ODataOperand, row map[string]any) any {
	if o.Field != "" {
		return row[o.Field]
	}
	switch o.Kind {
	case "null":
		return nil
	case "number":
		f, _ := strconv.ParseFloat(o.Value, 64)
		return f
	case "bool":
		return o.Value == "true"
	}
	return o.Value
}

func compareTyped(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return 0, false
		}
		return dynCompare(x, y), true
	case bool:
		y, ok := b.(bool)
		if !ok || x != y {
			return 1, ok
		}
		return 0, true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(strings.ToLower(x), strings.ToLower(y)), true
	}
	return 0, false
}

func dynCompare(a, b any) int {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(strings.ToLower(x), strings.ToLower(y))
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}
