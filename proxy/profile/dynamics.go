package profile

// dynamicsProfile is the Dataverse Web API (Dynamics 365 Sales, Customer
// Service and every model-driven app), OData v4 under /api/data/v9.2.
// Sources: learn.microsoft.com "Use the Microsoft Dataverse Web API"
// (Query data, Create, Retrieve, Update and delete table rows, Associate
// and disassociate, Execute batch operations, Page results) and the Web
// API EntityType reference for the tables below.
//
// Routed: a table's entity set (list, create), one row by its GUID key
// (read, update, delete) and a row's collection-valued navigation property
// (related list, judged by the related table's policy). Deliberately not
// routed, so refused: $batch, $metadata, $ref (associate/disassociate),
// $value, $count as a path segment, single-valued navigation properties,
// property paths (accounts(id)/name), functions and actions (WhoAmI,
// RetrieveTotalRecordCount, Microsoft.Dynamics.CRM.*), alternate keys
// and {guid} in braces. '$' and quotes are outside the path charset, so
// these never reach a placeholder.
func dynamicsProfile() (*Profile, error) {
	const base = "/api/data/v9.2"
	routes := []Route{
		{Method: "GET", Pattern: base + "/{module}", Action: "list", Kind: KindList},
		{Method: "POST", Pattern: base + "/{module}", Action: "create", Kind: KindRecord},
		{Method: "GET", Pattern: base + "/{module}({id})", Action: "read", Kind: KindRecord},
		// PATCH is an upsert in Dataverse: a PATCH to an id that does not
		// exist creates it. crmgate's target check fetches the row first,
		// so such a PATCH is a 404 and never a client-chosen id.
		{Method: "PATCH", Pattern: base + "/{module}({id})", Action: "update", Kind: KindRecord},
		{Method: "DELETE", Pattern: base + "/{module}({id})", Action: "delete", Kind: KindRecord},
		{Method: "GET", Pattern: base + "/{module}({id})/{any}", Action: "read", Kind: KindRelated},
		// Functions without parameters look like entity sets.
		{Method: "*", Pattern: base + "/WhoAmI", Refuse: true},
		{Method: "*", Pattern: base + "/EntityDefinitions", Refuse: true},
		{Method: "*", Pattern: base + "/RetrieveVersion", Refuse: true},
	}
	shape := Shape{
		ListPath:   []string{"value"},
		RecordPath: []string{},
		FieldsPath: []string{},
		// Dataverse names each table's key after the table; idFields
		// holds them, this is the fallback for a table not listed.
		IDField: "id",
		// $count=true adds @odata.count, the number of matching rows.
		TotalPaths: [][]string{{"@odata.count"}},
		LinkPaths:  [][]string{{"@odata.nextLink"}, {"@odata.context"}},
	}
	var modules []string
	ids := map[string]string{}
	for _, t := range dynamicsTables {
		modules = append(modules, t.set)
		ids[t.set] = t.key
	}
	p, err := New("dynamics", routes, shape, modules)
	if err != nil {
		return nil, err
	}
	p.Dialect = odataQuery{}
	p.odataKeys = true
	p.idFields = ids
	return p, nil
}

// dynamicsTables are the standard tables' entity sets and primary keys
// (activities share activityid), plus new_employees, the personnel table a
// Dataverse environment adds with its publisher prefix (Dataverse has no
// standard one).
var dynamicsTables = []struct{ set, key string }{
	{"accounts", "accountid"}, {"contacts", "contactid"}, {"leads", "leadid"},
	{"opportunities", "opportunityid"}, {"incidents", "incidentid"}, {"phonecalls", "activityid"},
	{"appointments", "activityid"}, {"tasks", "activityid"}, {"emails", "activityid"},
	{"annotations", "annotationid"}, {"products", "productid"}, {"quotes", "quoteid"},
	{"salesorders", "salesorderid"}, {"invoices", "invoiceid"}, {"systemusers", "systemuserid"},
	{"teams", "teamid"}, {"businessunits", "businessunitid"}, {"campaigns", "campaignid"},
	{"competitors", "competitorid"}, {"knowledgearticles", "knowledgearticleid"},
	{"new_employees", "new_employeeid"},
}
