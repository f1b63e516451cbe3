// Package emulator serves in-memory imitations of the CRM APIs crmgate's
// built-in profiles classify (SuiteCRM's V8 JSON:API, EspoCRM's REST API and
// HubSpot's CRM v3/v4 API), for tests, benchmarks and `crmgate demo`.
//
// Every emulator renders the same Dataset, each with its own CRM's module
// names, field names and envelopes as the public API documentation describes
// them, so one policy scenario can be exercised against either profile. The
// handlers keep no global state: everything lives in the Dataset and in the
// handler value (issued tokens), and tests observe requests by wrapping the
// handler.
package emulator

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Dataset is the emulators' store: records per module, keyed by id, with
// SuiteCRM's field names as the canonical spelling (EspoCRM's are derived
// through the schema's mapping table). It is safe for concurrent use.
type Dataset struct {
	mu      sync.RWMutex
	modules map[string]*table // by SuiteCRM module name
	seq     int
}

type table struct {
	order []string
	byID  map[string]map[string]any
}

// moduleSchema maps one module between the two CRMs.
type moduleSchema struct {
	suite      string // SuiteCRM module name (paths, data.type)
	suiteType  string // SuiteCRM bean object name (response "type")
	espo       string // EspoCRM entity type
	fields     []fieldMap
	links      []linkSchema
	personName bool // name is first_name + last_name
}

// fieldMap is one field's name in each CRM; an empty espo name means the
// field does not exist in EspoCRM and is not rendered there.
type fieldMap struct{ suite, espo string }

// linkSchema is a one-to-many link: records of target whose foreignKey
// holds the parent's id. The link name is the same in both CRMs for the
// links modelled here.
type linkSchema struct {
	name, target, foreignKey string
}

var common = []fieldMap{
	{"date_entered", "createdAt"}, {"date_modified", "modifiedAt"},
	{"description", "description"},
}

func withCommon(f ...fieldMap) []fieldMap { return append(f, common...) }

// schemas is the mapping table between SuiteCRM and EspoCRM naming.
var schemas = []moduleSchema{
	{suite: "Users", suiteType: "User", espo: "User", personName: true, fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"user_name", "userName"}, fieldMap{"first_name", "firstName"},
		fieldMap{"last_name", "lastName"}, fieldMap{"title", "title"}, fieldMap{"department", "defaultTeamName"},
		fieldMap{"reports_to_id", "reportsToId"}, fieldMap{"status", "status"}, fieldMap{"is_admin", "isAdmin"},
		fieldMap{"email1", "emailAddress"}, fieldMap{"phone_work", "phoneNumber"})},
	{suite: "Employees", suiteType: "Employee", espo: "Employee", personName: true, fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"first_name", "firstName"}, fieldMap{"last_name", "lastName"},
		fieldMap{"title", "title"}, fieldMap{"department", "department"}, fieldMap{"reports_to_id", "reportsToId"},
		fieldMap{"assigned_user_id", "assignedUserId"}, fieldMap{"phone_work", "phoneNumber"},
		fieldMap{"phone_mobile", "phoneMobile"}, fieldMap{"email1", "emailAddress"},
		fieldMap{"salary_c", "salary"}, fieldMap{"employee_status", "employeeStatus"})},
	{suite: "Accounts", suiteType: "Account", espo: "Account", fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"account_type", "type"}, fieldMap{"industry", "industry"},
		fieldMap{"assigned_user_id", "assignedUserId"}, fieldMap{"phone_office", "phoneNumber"},
		fieldMap{"email1", "emailAddress"}, fieldMap{"billing_address_street", "billingAddressStreet"},
		fieldMap{"billing_address_city", "billingAddressCity"}, fieldMap{"billing_address_postalcode", "billingAddressPostalCode"}),
		links: []linkSchema{
			{"contacts", "Contacts", "account_id"}, {"opportunities", "Opportunities", "account_id"},
			{"cases", "Cases", "account_id"},
		}},
	{suite: "Contacts", suiteType: "Contact", espo: "Contact", personName: true, fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"first_name", "firstName"}, fieldMap{"last_name", "lastName"},
		fieldMap{"account_id", "accountId"}, fieldMap{"assigned_user_id", "assignedUserId"},
		fieldMap{"phone_work", "phoneNumber"}, fieldMap{"phone_mobile", "phoneMobile"},
		fieldMap{"email1", "emailAddress"}, fieldMap{"birthdate", "birthdate"},
		fieldMap{"primary_address_city", "addressCity"})},
	{suite: "Leads", suiteType: "Lead", espo: "Lead", personName: true, fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"first_name", "firstName"}, fieldMap{"last_name", "lastName"},
		fieldMap{"status", "status"}, fieldMap{"lead_source", "source"}, fieldMap{"account_name", "accountName"},
		fieldMap{"assigned_user_id", "assignedUserId"}, fieldMap{"phone_work", "phoneNumber"},
		fieldMap{"email1", "emailAddress"})},
	{suite: "Opportunities", suiteType: "Opportunity", espo: "Opportunity", fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"amount", "amount"}, fieldMap{"sales_stage", "stage"},
		fieldMap{"probability", "probability"}, fieldMap{"date_closed", "closeDate"},
		fieldMap{"account_id", "accountId"}, fieldMap{"assigned_user_id", "assignedUserId"})},
	{suite: "Cases", suiteType: "Case", espo: "Case", fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"case_number", "number"}, fieldMap{"status", "status"},
		fieldMap{"priority", "priority"}, fieldMap{"account_id", "accountId"},
		fieldMap{"assigned_user_id", "assignedUserId"})},
	{suite: "Calls", suiteType: "Call", espo: "Call", fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"status", "status"}, fieldMap{"direction", "direction"},
		fieldMap{"date_start", "dateStart"}, fieldMap{"parent_type", "parentType"}, fieldMap{"parent_id", "parentId"},
		fieldMap{"assigned_user_id", "assignedUserId"})},
	{suite: "Meetings", suiteType: "Meeting", espo: "Meeting", fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"status", "status"}, fieldMap{"date_start", "dateStart"},
		fieldMap{"location", ""}, fieldMap{"parent_type", "parentType"}, fieldMap{"parent_id", "parentId"},
		fieldMap{"assigned_user_id", "assignedUserId"})},
	{suite: "Tasks", suiteType: "Task", espo: "Task", fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"status", "status"}, fieldMap{"priority", "priority"},
		fieldMap{"date_due", "dateEnd"}, fieldMap{"parent_type", "parentType"}, fieldMap{"parent_id", "parentId"},
		fieldMap{"assigned_user_id", "assignedUserId"})},
	{suite: "AOS_Products", suiteType: "AOS_Products", espo: "Product", fields: withCommon(
		fieldMap{"name", "name"}, fieldMap{"part_number", "partNumber"}, fieldMap{"cost", "costPrice"},
		fieldMap{"price", "unitPrice"}, fieldMap{"aos_product_category_id", "categoryId"},
		fieldMap{"assigned_user_id", "assignedUserId"})},
}

func schemaBySuite(name string) *moduleSchema {
	for i := range schemas {
		if schemas[i].suite == name {
			return &schemas[i]
		}
	}
	return nil
}

func schemaByEspo(name string) *moduleSchema {
	for i := range schemas {
		if schemas[i].espo == name {
			return &schemas[i]
		}
	}
	return nil
}

// schemaByAny accepts either CRM's module name, case-insensitively.
func schemaByAny(name string) *moduleSchema {
	for i := range schemas {
		if strings.EqualFold(schemas[i].suite, name) || strings.EqualFold(schemas[i].espo, name) {
			return &schemas[i]
		}
	}
	return nil
}

func (s *moduleSchema) espoField(suite string) string {
	for _, f := range s.fields {
		if f.suite == suite {
			return f.espo
		}
	}
	return ""
}

func (s *moduleSchema) suiteField(espo string) string {
	if espo == "" {
		return ""
	}
	for _, f := range s.fields {
		if f.espo == espo {
			return f.suite
		}
	}
	return ""
}

func (s *moduleSchema) link(name string) *linkSchema {
	for i := range s.links {
		if s.links[i].name == name {
			return &s.links[i]
		}
	}
	return nil
}

func newDataset() *Dataset {
	ds := &Dataset{modules: make(map[string]*table, len(schemas))}
	for _, s := range schemas {
		ds.modules[s.suite] = &table{byID: make(map[string]map[string]any)}
	}
	return ds
}

// put stores rec (SuiteCRM field names) under id, replacing any record
// with that id. The caller holds the write lock.
func (ds *Dataset) put(module, id string, rec map[string]any) {
	t := ds.modules[module]
	if _, ok := t.byID[id]; !ok {
		t.order = append(t.order, id)
	}
	rec["id"] = id
	if s := schemaBySuite(module); s != nil && s.personName {
		rec["name"] = strings.TrimSpace(fmt.Sprint(rec["first_name"], " ", rec["last_name"]))
	}
	t.byID[id] = rec
}

func (ds *Dataset) remove(module, id string) bool {
	t := ds.modules[module]
	if _, ok := t.byID[id]; !ok {
		return false
	}
	delete(t.byID, id)
	for i, v := range t.order {
		if v == id {
			t.order = append(t.order[:i:i], t.order[i+1:]...)
			break
		}
	}
	return true
}

// Get returns a copy of one record with SuiteCRM field names. module may be
// spelled as either CRM spells it.
func (ds *Dataset) Get(module, id string) (map[string]any, bool) {
	s := schemaByAny(module)
	if s == nil {
		return nil, false
	}
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	rec, ok := ds.modules[s.suite].byID[id]
	if !ok {
		return nil, false
	}
	return clone(rec), true
}

// Count returns how many records module holds.
func (ds *Dataset) Count(module string) int {
	s := schemaByAny(module)
	if s == nil {
		return 0
	}
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	return len(ds.modules[s.suite].order)
}

// snapshot returns copies of module's records in insertion order.
func (ds *Dataset) snapshot(module string) []map[string]any {
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	t := ds.modules[module]
	out := make([]map[string]any, 0, len(t.order))
	for _, id := range t.order {
		out = append(out, t.byID[id])
	}
	// The maps are never mutated in place (writes replace them), so
	// sharing them with a reader after unlocking is safe.
	return out
}

// userNames maps user id → the given field of the user record, taken once
// per response so rendering a long list does not lock per record.
func (ds *Dataset) userNames(field string) map[string]any {
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	t := ds.modules["Users"]
	out := make(map[string]any, len(t.order))
	for id, rec := range t.byID {
		out[id] = rec[field]
	}
	return out
}

func (ds *Dataset) newID() string {
	ds.seq++
	return fmt.Sprintf("new-%06d", ds.seq)
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// AddSynthetic appends n generated records of module (either CRM's
// spelling) for benchmarks: about 1 KB each once rendered, owners spread
// over the department-store users, deterministic for a given seed. Ids are
// "syn-<module>-<seed>-<i>". An unknown module panics: it is a programming
// error in a benchmark, not an input.
func (ds *Dataset) AddSynthetic(module string, n int, seed int64) {
	s := schemaByAny(module)
	if s == nil {
		panic(fmt.Sprintf("emulator: AddSynthetic: unknown module %q", module))
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	owners := []string{"u-sales1", "u-sales2", "u-sales3", "u-mgr", "u-mgr7", "u-inv", "u-admin"}
	words := strings.Fields("quarterly review delivery order customer follow-up invoice garden kitchen " +
		"furniture lighting textiles warranty return store visit catalogue promotion loyalty account")
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for i := 0; i < n; i++ {
		rec := make(map[string]any, len(s.fields)+1)
		var desc strings.Builder
		for desc.Len() < 640 {
			desc.WriteString(words[rng.IntN(len(words))])
			desc.WriteByte(' ')
		}
		for _, f := range s.fields {
			switch f.suite {
			case "description":
				rec[f.suite] = strings.TrimSpace(desc.String())
			case "assigned_user_id":
				rec[f.suite] = owners[rng.IntN(len(owners))]
			case "date_entered", "date_modified":
				rec[f.suite] = "2026-01-15 09:30:00"
			case "cost", "price", "amount", "salary_c":
				rec[f.suite] = float64(rng.IntN(100000)) / 100
			case "first_name":
				rec[f.suite] = "Synth" + strconv.Itoa(i)
			case "last_name":
				rec[f.suite] = "Person" + strconv.Itoa(rng.IntN(1000))
			case "email1":
				rec[f.suite] = fmt.Sprintf("synthetic%d@example.org", i)
			case "phone_work", "phone_office", "phone_mobile":
				rec[f.suite] = fmt.Sprintf("+44 20 7946 %04d", rng.IntN(10000))
			default:
				rec[f.suite] = fmt.Sprintf("%s %d", words[rng.IntN(len(words))], rng.IntN(1000))
			}
		}
		ds.put(s.suite, fmt.Sprintf("syn-%s-%d-%d", strings.ToLower(s.espo), seed, i), rec)
	}
}

// sortRecords sorts recs by field (SuiteCRM name), numerically when both
// values are numbers; the sort is stable so ties keep insertion order.
func sortRecords(recs []map[string]any, field string, desc bool) {
	sort.SliceStable(recs, func(i, j int) bool {
		c := compareValues(recs[i][field], recs[j][field])
		if desc {
			return c > 0
		}
		return c < 0
	})
}

func compareValues(a, b any) int {
	af, aok := toFloat(a)
	bf, bok := toFloat(b)
	if aok && bok {
		switch {
		case af < bf:
			return -1
		case af > bf:
			return 1
		}
		return 0
	}
	return strings.Compare(valueString(a), valueString(b))
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func valueString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "1"
		}
		return "0"
	}
	return fmt.Sprint(v)
}

// Snapshot returns a module's records (SuiteCRM module name, SuiteCRM
// field names) in insertion order, for tests that count what a persona
// should see. The records must not be modified.
func (ds *Dataset) Snapshot(module string) []map[string]any { return ds.snapshot(module) }

// Put stores a record (SuiteCRM module and field names) in place of any
// with the same id, for tests that need a record the demo data lacks.
func (ds *Dataset) Put(module, id string, rec map[string]any) { ds.put(module, id, clone(rec)) }
