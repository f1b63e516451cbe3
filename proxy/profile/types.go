// Package profile classifies HTTP requests to a CRM as module + record id +
// action, and describes where that CRM puts records and fields in its JSON.
//
// A Profile is data, not code: a table of routes plus the shape of the CRM's
// JSON envelopes. Built-in profiles (suitecrm8, espocrm, hubspot) and
// user-declared ones (generic, from crm.routes in the config) are the same
// type, so there is one classifier to test and to fuzz.
package profile

// Kind says what a route returns or accepts, so the proxy knows which
// envelope to expect in the body.
type Kind string

// Route kinds.
const (
	// KindList answers a list of records of Module.
	KindList Kind = "list"
	// KindRecord answers (or, for writes, accepts) one record of Module.
	KindRecord Kind = "record"
	// KindRelated answers a list of records related to one record of Module;
	// the related records' module is not known from the path.
	KindRelated Kind = "related"
	// KindOther carries no records crmgate understands (metadata, actions);
	// its body is still redacted by field name when it is JSON.
	KindOther Kind = "other"
)

// Route maps one method + path pattern to an action.
//
// Pattern segments are literals or placeholders: {module} and {id} capture
// the module and record id; {any} matches one segment without capturing.
// When the module or id is carried in the request body instead (SuiteCRM V8
// PATCH /Api/V8/module), ModuleFromBody/IDFromBody name the JSON path.
type Route struct {
	Method  string `json:"method" yaml:"method"`
	Pattern string `json:"path" yaml:"path"`
	Action  string `json:"action" yaml:"action"`
	Kind    Kind   `json:"kind" yaml:"kind"`
	// Module fixes the module for routes whose path does not name it.
	Module string `json:"module,omitempty" yaml:"module,omitempty"`
	// ModuleFromBody and IDFromBody are JSON paths (e.g. ["data","type"])
	// read from the request body.
	ModuleFromBody []string `json:"module_from_body,omitempty" yaml:"module_from_body,omitempty"`
	IDFromBody     []string `json:"id_from_body,omitempty" yaml:"id_from_body,omitempty"`
	// Refuse marks a pattern the CRM routes to something crmgate does not
	// classify (EspoCRM's /{controller}/action/{action}, a record's stream).
	// It takes part in precedence like any route, so its literal segments
	// cannot be captured by another route's placeholder, but a request that
	// matches it is an unknown route. Method "*" is allowed only here.
	Refuse bool `json:"refuse,omitempty" yaml:"refuse,omitempty"`
	// QueryBody marks a list or read whose body is a query (HubSpot's
	// search and batch read): the proxy reads it, checks the fields it
	// names through the profile's Dialect and may rewrite it, as it does a
	// list's query string.
	QueryBody bool `json:"-" yaml:"-"`
	// IDsOnly marks a related list that answers the related records' ids
	// without their fields (HubSpot associations): a record rule that
	// needs fields cannot judge them, so the list is refused unless the
	// rule admits every record of the related module.
	IDsOnly bool `json:"-" yaml:"-"`
	// ModuleFromQuery marks a list whose module is named by its query
	// (Salesforce's /query?q=SELECT ... FROM Account): the profile's
	// Dialect, a QueryClassifier, reads it (Profile.ClassifyQuery).
	ModuleFromQuery bool `json:"-" yaml:"-"`
	// Cursor marks a list that continues an earlier list's answer
	// (Salesforce's queryMore, /query/{locator}): the CRM runs the
	// earlier query again as crmgate's own user, so the proxy forwards it
	// only with a signature binding the cursor to the subject who ran
	// that query and to its module (see proxy cursor.go).
	Cursor bool `json:"-" yaml:"-"`
}

// Shape says where records and fields live in a CRM's JSON.
type Shape struct {
	// ListPath is the path to the array of records in a list response
	// (SuiteCRM ["data"], EspoCRM ["list"]).
	ListPath []string `json:"list_path" yaml:"list_path"`
	// RecordPath is the path to the record object in a single-record
	// response or write body (SuiteCRM ["data"], EspoCRM [] = the root).
	RecordPath []string `json:"record_path" yaml:"record_path"`
	// FieldsPath is where the fields sit inside a record object (SuiteCRM
	// ["attributes"], EspoCRM [] = the record itself).
	FieldsPath []string `json:"fields_path" yaml:"fields_path"`
	// IDField names the record id inside the record object.
	IDField string `json:"id_field" yaml:"id_field"`
	// TotalPaths are counts in a list envelope that would reveal how many
	// records were filtered out (EspoCRM ["total"], SuiteCRM
	// ["meta","total-pages"]).
	TotalPaths [][]string `json:"total_paths,omitempty" yaml:"total_paths,omitempty"`
	// TypeField names the member of the record object that says which
	// module the record belongs to (SuiteCRM "type"); empty when the CRM's
	// records carry none (EspoCRM).
	TypeField string `json:"type_field,omitempty" yaml:"type_field,omitempty"`
	// LinkPaths are URLs in a list envelope that point at the CRM
	// (Dataverse's @odata.nextLink and @odata.context): the redactor
	// rewrites them to crmgate's address, or drops them when they point
	// anywhere else (redact.Plan.Links).
	LinkPaths [][]string `json:"link_paths,omitempty" yaml:"link_paths,omitempty"`
}

// Match is the classification of one request.
type Match struct {
	Module string
	ID     string
	Action string
	Kind   Kind
	// Route is the pattern that matched, for logs.
	Route string
	// Path is the canonical path to forward upstream: exactly what was
	// classified, with the module spelled as the profile knows it.
	Path string
	// NeedsBody is true when the module or id must still be read from the
	// request body (see Profile.ClassifyBody).
	NeedsBody bool
	// QueryBody and IDsOnly are the route's (see Route).
	QueryBody bool
	IDsOnly   bool
	// ModuleFromQuery is the route's: Module is empty until
	// Profile.ClassifyQuery has read the query.
	ModuleFromQuery bool
	// Cursor is the route's.
	Cursor bool

	// body is where ClassifyBody reads the module and id; set by Classify.
	// A pointer keeps Match comparable with ==.
	body *bodySpec
}
