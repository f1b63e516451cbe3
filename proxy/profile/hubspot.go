package profile

import (
	"fmt"
	"strings"
)

// hubspotRoutes is HubSpot's CRM API: the v3 objects API and the v4
// associations API. Sources: developers.hubspot.com "CRM API > Objects"
// (basic: list, read, create, update, archive; search; batch), "CRM API >
// Associations v4" and "CRM API > Search" (filterGroups, sorts, query,
// properties, limit, after).
//
// Deliberately not routed, so denied: the properties, schemas, owners,
// pipelines, imports, exports and lists APIs (metadata and bulk paths that
// are not one module's records), merge and gdpr-delete (they act on two
// records or erase one for good), and v4 association batch paths.
// Refused outright: batch create/update/archive/upsert (each input would
// need the checks of a single write; clients send single writes) and
// association writes (crmgate cannot check the association's other side
// before the CRM applies it).
func hubspotRoutes() []Route {
	const base = "/crm/v3/objects"
	const v4 = "/crm/v4/objects"
	return []Route{
		// "List": GET /crm/v3/objects/{objectType}?limit&after&properties&archived.
		{Method: "GET", Pattern: base + "/{module}", Action: "list", Kind: KindList},
		// "Create": POST /crm/v3/objects/{objectType} {"properties":{...}}.
		{Method: "POST", Pattern: base + "/{module}", Action: "create", Kind: KindRecord},
		// "Read", "Update", "Archive": /crm/v3/objects/{objectType}/{objectId}.
		{Method: "GET", Pattern: base + "/{module}/{id}", Action: "read", Kind: KindRecord},
		{Method: "PATCH", Pattern: base + "/{module}/{id}", Action: "update", Kind: KindRecord},
		{Method: "DELETE", Pattern: base + "/{module}/{id}", Action: "delete", Kind: KindRecord},
		// "Search": POST /crm/v3/objects/{objectType}/search with the query
		// in the body.
		{Method: "POST", Pattern: base + "/{module}/search", Action: "list", Kind: KindList, QueryBody: true},
		// "Batch read": POST .../batch/read {"inputs":[{"id"}],"properties"}.
		// The records come back as a list, each judged by the record rule.
		{Method: "POST", Pattern: base + "/{module}/batch/read", Action: "read", Kind: KindList, QueryBody: true},
		{Method: "*", Pattern: base + "/{module}/batch/{any}", Refuse: true},
		// v3 "List associations" and v4 "List associations of an object by
		// type": the associated records' ids, judged by their own module.
		{Method: "GET", Pattern: base + "/{module}/{id}/associations/{any}", Action: "read", Kind: KindRelated, IDsOnly: true},
		{Method: "*", Pattern: base + "/{module}/{id}/associations/{any}/{any}", Refuse: true},
		{Method: "*", Pattern: base + "/{module}/{id}/associations/{any}/{any}/{any}", Refuse: true},
		{Method: "GET", Pattern: v4 + "/{module}/{id}/associations/{any}", Action: "read", Kind: KindRelated, IDsOnly: true},
		{Method: "*", Pattern: v4 + "/{module}/{id}/associations/{any}/{any}", Refuse: true},
		{Method: "*", Pattern: v4 + "/{module}/{id}/associations/{any}/{any}/{any}", Refuse: true},
	}
}

func hubspotShape() Shape {
	return Shape{
		// {"results":[{"id","properties":{...},"createdAt","updatedAt","archived"}],"paging":{...}}
		ListPath:   []string{"results"},
		RecordPath: []string{},
		FieldsPath: []string{"properties"},
		IDField:    "id",
		// A search's "total" counts every match, filtered out or not; a
		// batch read's "errors" (and "numErrors") name the ids that do not
		// exist, which would tell them from those the rule dropped.
		TotalPaths: [][]string{{"total"}, {"errors"}, {"numErrors"}},
	}
}

// hubspotObjects are the standard object types: the name the API takes in
// paths, its object type id, and its singular (both accepted by the API
// wherever an objectType is).
var hubspotObjects = []struct{ name, typeID, singular string }{
	{"contacts", "0-1", "contact"},
	{"companies", "0-2", "company"},
	{"deals", "0-3", "deal"},
	{"tickets", "0-5", "ticket"},
	{"products", "0-7", "product"},
	{"line_items", "0-8", "line_item"},
	{"quotes", "0-14", "quote"},
	{"tasks", "0-27", "task"},
	{"notes", "0-46", "note"},
	{"meetings", "0-47", "meeting"},
	{"calls", "0-48", "call"},
	{"emails", "0-49", "email"},
	{"leads", "0-136", "lead"},
}

func hubspotModules() []string {
	out := make([]string, 0, len(hubspotObjects))
	for _, o := range hubspotObjects {
		out = append(out, o.name)
	}
	return out
}

// hubspotAliases maps object type ids and singulars to the plural name, so
// /crm/v3/objects/0-1 and /crm/v3/objects/contacts are one module to the
// policy: a policy written about "contacts" must not be bypassed by
// spelling the type as its id.
func hubspotAliases() map[string]string {
	out := make(map[string]string, 2*len(hubspotObjects))
	for _, o := range hubspotObjects {
		out[o.typeID] = o.name
		out[o.singular] = o.name
	}
	return out
}

// hubspotLinks are the association targets: every object type by name, id
// or singular.
func hubspotLinks() map[string]string {
	out := hubspotAliases()
	for _, o := range hubspotObjects {
		out[o.name] = o.name
	}
	return out
}

// hubspotWriteMembers are the top-level members of a create or update body
// the API documents. "associations" on a create links the new record to
// others, which crmgate would not check, so it is refused with anything
// else unknown.
var hubspotWriteMembers = map[string]bool{"properties": true, "objectWriteTraceId": true}

func hubspotCheckBody(m Match, doc map[string]any) error {
	if m.QueryBody {
		// Search and batch-read bodies are read by the Dialect.
		return nil
	}
	for k := range doc {
		if !hubspotWriteMembers[k] {
			return fmt.Errorf("member %q of a HubSpot write is not one crmgate checks: %w", truncate(k), ErrBadBody)
		}
	}
	if p, ok := doc["properties"]; ok {
		props, ok := p.(map[string]any)
		if !ok {
			return fmt.Errorf("properties is not an object: %w", ErrBadBody)
		}
		for k := range props {
			// Property names are identifiers; one the policy cannot
			// compare with its field names could be written unchecked.
			if !validFieldRef(k) || strings.Contains(k, ".") {
				return fmt.Errorf("property %q: %w", truncate(k), ErrBadBody)
			}
		}
	}
	return nil
}
