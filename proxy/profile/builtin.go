package profile

import "fmt"

// Builtin returns a fresh copy of a built-in profile: "suitecrm8",
// "espocrm", "dynamics", "salesforce" or "hubspot". Any other name is an error.
func Builtin(name string) (*Profile, error) {
	var p *Profile
	var err error
	switch name {
	case "suitecrm8":
		p, err = New(name, suiteRoutes(), suiteShape(), suiteModules())
	case "espocrm":
		p, err = New(name, espoRoutes(), espoShape(), espoModules())
	case "dynamics":
		return dynamicsProfile()
	case "salesforce":
		return salesforceProfile()
	case "hubspot":
		if p, err = New(name, hubspotRoutes(), hubspotShape(), hubspotModules()); err != nil {
			return nil, err
		}
		p.aliases, p.checkBody, p.Dialect = hubspotAliases(), hubspotCheckBody, hubspotQuery{}
		return p, nil
	default:
		return nil, fmt.Errorf("builtin profile %q: unknown (want suitecrm8, espocrm, dynamics, salesforce or hubspot)", name)
	}
	if err != nil {
		return nil, err
	}
	p.Dialect = phpQuery{crm: name, params: queryParams[name]}
	return p, nil
}

// suiteRoutes is SuiteCRM's V8 JSON:API (SuiteCRM 7.10+, and the legacy API
// of SuiteCRM 8). Sources: Api/V8/Config/routes.php in salesagility/SuiteCRM
// (Slim routes) and docs.suitecrm.com "Developer > API > JSON API".
//
// Deliberately not routed, so denied: POST /Api/access_token (crmgate holds
// the upstream credentials); /Api/V8/custom/... (site-specific);
// current-user, user-preferences, search-defs, listview/columns and
// meta/swagger.json (UI helpers no API client needs); the legacy
// /Api/index.php/V8 prefix (whether a given web server maps it could not be
// confirmed). SuiteCRM 8 serves this API under /legacy/Api/V8: point
// upstream.url at {crm}/legacy rather than changing the table.
func suiteRoutes() []Route {
	const base = "/Api/V8"
	return []Route{
		// routes.php "Get module records"; docs "Get list of records",
		// paging page[size]/page[number], filter[...], sort, fields[...].
		{Method: "GET", Pattern: base + "/module/{module}", Action: "list", Kind: KindList},
		// "Get a module record"; docs "Get a single record".
		{Method: "GET", Pattern: base + "/module/{module}/{id}", Action: "read", Kind: KindRecord},
		// "Create a module record": body {"data":{"type":"Accounts","attributes":{...}}}.
		{Method: "POST", Pattern: base + "/module", Action: "create", Kind: KindRecord,
			ModuleFromBody: []string{"data", "type"}},
		// "Update a module record": body {"data":{"type","id","attributes"}}.
		{Method: "PATCH", Pattern: base + "/module", Action: "update", Kind: KindRecord,
			ModuleFromBody: []string{"data", "type"}, IDFromBody: []string{"data", "id"}},
		// "Delete a module record".
		{Method: "DELETE", Pattern: base + "/module/{module}/{id}", Action: "delete", Kind: KindRecord},
		// "Get relationships": /module/{moduleName}/{id}/relationships/{linkFieldName}.
		// The related records' module is the link's, unknown here.
		{Method: "GET", Pattern: base + "/module/{module}/{id}/relationships/{any}", Action: "read", Kind: KindRelated},
		// "Create relationship": body {"data":{"type","id"}} of the related record.
		{Method: "POST", Pattern: base + "/module/{module}/{id}/relationships", Action: "relate", Kind: KindOther},
		// "Create relationship by link" (newer routes.php).
		{Method: "POST", Pattern: base + "/module/{module}/{id}/relationships/{any}", Action: "relate", Kind: KindOther},
		// "Delete relationship": .../relationships/{linkFieldName}/{relatedBeanId}.
		{Method: "DELETE", Pattern: base + "/module/{module}/{id}/relationships/{any}/{any}", Action: "relate", Kind: KindOther},
		// routes.php "/meta/modules": the module list is metadata of no one
		// module, so it is its own pseudo-module "Meta".
		{Method: "GET", Pattern: base + "/meta/modules", Action: "read", Kind: KindOther, Module: "Meta"},
		// "/meta/fields/{moduleName}": a module's field definitions are
		// governed by read access to that module.
		{Method: "GET", Pattern: base + "/meta/fields/{module}", Action: "read", Kind: KindOther},
		// "Logout" revokes the access token it is called with, which behind
		// crmgate is crmgate's own: its own action so a policy must name it.
		{Method: "POST", Pattern: base + "/logout", Action: "logout", Kind: KindOther, Module: "Session"},
	}
}

func suiteShape() Shape {
	return Shape{
		ListPath:   []string{"data"},
		RecordPath: []string{"data"},
		FieldsPath: []string{"attributes"},
		IDField:    "id",
		// A V8 list's meta carries "total-pages" and, since 7.11,
		// "records-on-this-page": both reveal how many records exist. So
		// does a paged list's links.last (its page[number] is the page
		// count); links.next only says whether more follow.
		TotalPaths: [][]string{{"meta", "total-pages"}, {"meta", "records-on-this-page"}, {"links", "last"}},
		TypeField:  "type",
	}
}

// suiteModules is SuiteCRM's standard $moduleList (plus the AOS/AOR/AOW/AOK
// and events modules shipped with SuiteCRM), the names the V8 API takes in
// its paths and in data.type.
func suiteModules() []string {
	return []string{
		"Accounts", "Contacts", "Leads", "Opportunities", "Cases", "Calls", "Meetings",
		"Tasks", "Notes", "Documents", "Campaigns", "Prospects", "ProspectLists",
		"Project", "ProjectTask", "Bugs", "Employees", "Users", "SecurityGroups",
		"Emails", "EmailTemplates", "EmailAddresses", "Currencies", "Releases",
		"AOS_Products", "AOS_Product_Categories", "AOS_Quotes", "AOS_Invoices",
		"AOS_Contracts", "AOS_Line_Items", "AOS_Line_Item_Groups", "AOS_PDF_Templates",
		"AOR_Reports", "AOR_Charts", "AOW_WorkFlow", "AOW_Processed",
		"AOK_KnowledgeBase", "AOK_Knowledge_Base_Categories", "AOD_Index",
		"AM_ProjectTemplates", "AM_TaskTemplates", "FP_events", "FP_Event_Locations",
		"jjwg_Maps", "jjwg_Markers", "jjwg_Areas", "Surveys", "SurveyResponses",
		"Spots", "Alerts", "Favorites", "Meta", "Session",
	}
}

// espoRoutes is EspoCRM's REST API under /api/v1. Sources: docs.espocrm.com
// "API > CRUD operations" and "API > Related records", and the route table
// application/Espo/Resources/routes.json in espocrm/espocrm.
//
// Espo's router (FastRoute) tries /:controller/action/:action,
// /:controller/layout/:name, /:controller/:id/stream and
// /:controller/:id/subscription before the generic /:controller/:id/:link,
// so those literals must never be read as an id or a link: they are Refuse
// routes, which win precedence and are denied. Export and mass actions go
// through /:controller/action/... and are denied with them: the public API
// docs do not document them.
func espoRoutes() []Route {
	const base = "/api/v1"
	return []Route{
		// CRUD: "List" GET {entityType}, maxSize/offset/where/orderBy/order/select.
		{Method: "GET", Pattern: base + "/{module}", Action: "list", Kind: KindList},
		// CRUD: "Create" POST {entityType}.
		{Method: "POST", Pattern: base + "/{module}", Action: "create", Kind: KindRecord},
		// CRUD: "Read" GET {entityType}/{id}.
		{Method: "GET", Pattern: base + "/{module}/{id}", Action: "read", Kind: KindRecord},
		// CRUD: "Update" PUT {entityType}/{id}; routes.json also maps PATCH.
		{Method: "PUT", Pattern: base + "/{module}/{id}", Action: "update", Kind: KindRecord},
		{Method: "PATCH", Pattern: base + "/{module}/{id}", Action: "update", Kind: KindRecord},
		// CRUD: "Delete" DELETE {entityType}/{id}.
		{Method: "DELETE", Pattern: base + "/{module}/{id}", Action: "delete", Kind: KindRecord},
		// Related records: "List related records" GET {entityType}/{id}/{link}.
		{Method: "GET", Pattern: base + "/{module}/{id}/{any}", Action: "read", Kind: KindRelated},
		// Related records: "Link" POST and "Unlink" DELETE {entityType}/{id}/{link}.
		{Method: "POST", Pattern: base + "/{module}/{id}/{any}", Action: "relate", Kind: KindOther},
		{Method: "DELETE", Pattern: base + "/{module}/{id}/{any}", Action: "relate", Kind: KindOther},
		// routes.json literals that shadow the placeholders above.
		{Method: "*", Pattern: base + "/{module}/action/{any}", Refuse: true},
		{Method: "*", Pattern: base + "/{module}/layout/{any}", Refuse: true},
		// A record's stream lists field changes with old and new values,
		// which field redaction of the record would not see.
		{Method: "*", Pattern: base + "/{module}/{id}/stream", Refuse: true},
		{Method: "*", Pattern: base + "/{module}/{id}/subscription", Refuse: true},
	}
}

func espoShape() Shape {
	return Shape{
		ListPath:   []string{"list"},
		RecordPath: []string{},
		FieldsPath: []string{},
		IDField:    "id",
		TotalPaths: [][]string{{"total"}},
	}
}

// espoModules are EspoCRM's standard entity types (scopes), plus the Sales
// Pack's Product and Quote.
func espoModules() []string {
	return []string{
		"Account", "Contact", "Lead", "Opportunity", "Case", "Call", "Meeting",
		"Task", "Email", "Document", "DocumentFolder", "Campaign", "TargetList",
		"User", "Team", "Role", "Employee", "Note", "Attachment",
		"KnowledgeBaseArticle", "KnowledgeBaseCategory", "EmailTemplate",
		"EmailAccount", "InboundEmail", "Portal", "PortalUser", "Target",
		"Product", "ProductCategory", "Quote", "QuoteItem", "SalesOrder", "Invoice",
	}
}
