package profile

import (
	"net/http"

	"github.com/crmgate/crmgate/policy/cond"
)

// Dialect is the code a built-in profile needs beyond its route table: how
// its CRM's list queries name fields and how a record rule is added to
// them. SuiteCRM and EspoCRM share the PHP query-string reader of query.go;
// a CRM with a query language of its own (OData, SOQL, HubSpot search)
// brings its own parser.
type Dialect interface {
	// QueryFields lists the fields a list request filters, sorts, selects
	// or text-searches on. body is the request body of a search sent as a
	// POST, nil otherwise. A form it cannot read is ErrBadQuery.
	QueryFields(rawQuery string, body []byte) ([]QueryField, error)
	// Push rewrites a list request so that the CRM applies c as well as
	// the client's own filter (AND, never instead of it). ok is false when
	// c cannot be said exactly in the CRM's query language; nothing is
	// pushed then and the proxy filters after. An error wrapping
	// ErrBadQuery means the client's query cannot be combined with c
	// safely (it would undo or escape it) and the request is refused.
	Push(m Match, rawQuery string, body []byte, c cond.Cond) (query string, newBody []byte, ok bool, err error)
}

// Canonicalizer is a Dialect whose CRM must receive every query exactly as
// crmgate read it, not only the lists a record rule is pushed into: the
// proxy forwards Canonical's query (and extra headers) in place of the
// client's. An error wrapping ErrBadQuery refuses the request.
type Canonicalizer interface {
	Canonical(m Match, rawQuery string, header http.Header) (query string, extra http.Header, err error)
}

// FieldFetcher is implemented by the Dialect of a CRM that returns only the
// fields a request names: HubSpot answers its default properties unless
// asked for others, a Dataverse $select or a SOQL SELECT returns only the
// columns it lists. The record rule can only judge a record that carries
// the fields it reads (without the owner every row would be refused), so
// the proxy asks for them.
type FieldFetcher interface {
	// WithFields rewrites a list, related list or read request (query
	// string, or body for a QueryBody route) so that the CRM returns
	// fields as well as what the client asked for; a request that
	// already returns every field is left as it is. fields may be empty;
	// nil means the rule needs every field. A request the CRM cannot be
	// made to answer with them is ErrBadQuery.
	WithFields(m Match, rawQuery string, body []byte, fields []string) (query string, newBody []byte, err error)
}

// Associator is implemented by the Dialect of a CRM whose reads can carry
// the ids of associated records of other modules (HubSpot's associations
// parameter): the proxy judges each such module as it judges a related
// list of bare ids.
type Associator interface {
	// Associations lists the modules whose associated ids the request
	// asks for, in canonical spelling. A name the profile does not know
	// is ErrBadQuery.
	Associations(rawQuery string) ([]string, error)
}

// QueryClassifier is implemented by the Dialect of a CRM whose list
// queries name their module (Salesforce's SOQL FROM, or the object a
// signed cursor continues): the query, not the path, says which module's
// policy applies.
type QueryClassifier interface {
	// QueryModule returns the module the query of route m reads, as
	// written. A query it cannot read is ErrBadQuery.
	QueryModule(m Match, rawQuery string) (string, error)
}

// Cursor parameters: a Cursor route's query is the module the cursor
// continues, when its signature expires (Unix seconds) and the
// signature, all three written by crmgate into the link it hands out.
const (
	CursorObject  = "object"
	CursorExpires = "exp"
	CursorSig     = "sig"
)
