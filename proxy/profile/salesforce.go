package profile

import (
	"fmt"
	"strings"
)

// SalesforceAPIVersion is the REST API version crmgate writes when it reads
// a record itself (the target check); clients may use any version.
const SalesforceAPIVersion = "v62.0"

// salesforceProfile is Salesforce's REST API (developer.salesforce.com
// "REST API Developer Guide": sObject Rows, sObject Create, Query, and
// sObject Relationships).
//
// Routed: one record by its 18-character id (read with ?fields=, update,
// delete), create, a record's child relationship (Account/{id}/Contacts,
// judged by the child object's policy) and /query, whose object is the
// SOQL's FROM, and /query/{locator} (queryMore) when crmgate signed the
// link for the subject. Deliberately not routed, so refused: /queryAll (deleted and
// archived rows), /search and /parameterizedSearch (SOSL searches every
// searchable field), /composite, /composite/batch, /composite/tree and
// /composite/sobjects (sub-requests crmgate would have to classify one by
// one), sObject collections, /sobjects and /sobjects/{Object} (describe
// and recent items), upserts by external id (/sobjects/{Object}/{field}/
// {value}), blob fields, /limits, /tooling, /ui-api and Apex REST.
func salesforceProfile() (*Profile, error) {
	const base = "/services/data/{version}"
	routes := []Route{
		{Method: "GET", Pattern: base + "/query", Action: "list", Kind: KindList, ModuleFromQuery: true},
		{Method: "POST", Pattern: base + "/sobjects/{module}", Action: "create", Kind: KindRecord},
		{Method: "GET", Pattern: base + "/sobjects/{module}/{id}", Action: "read", Kind: KindRecord},
		{Method: "PATCH", Pattern: base + "/sobjects/{module}/{id}", Action: "update", Kind: KindRecord},
		{Method: "DELETE", Pattern: base + "/sobjects/{module}/{id}", Action: "delete", Kind: KindRecord},
		{Method: "GET", Pattern: base + "/sobjects/{module}/{id}/{any}", Action: "read", Kind: KindRelated},
		// queryMore: the next batch of a query's answer, continued by
		// Salesforce as crmgate's integration user; accepted only with
		// crmgate's signature for this subject and object.
		{Method: "GET", Pattern: base + "/query/{any}", Action: "list", Kind: KindList, ModuleFromQuery: true, Cursor: true},
	}
	// An object's metadata resources sit where a record id would; ids are
	// checked (18 characters with their checksum), and these are refused
	// by name as well, so neither check alone carries the weight.
	for _, lit := range []string{"describe", "updated", "deleted", "listviews", "quickActions", "layouts",
		"compactLayouts", "approvalLayouts", "namedLayouts", "eventSchema", "defaultValues", "platformaction"} {
		routes = append(routes, Route{Method: "*", Pattern: base + "/sobjects/{module}/" + lit, Refuse: true})
	}
	shape := Shape{
		ListPath:   []string{"records"},
		RecordPath: []string{},
		FieldsPath: []string{},
		IDField:    "Id",
		// totalSize counts every row the query matched.
		TotalPaths: [][]string{{"totalSize"}},
		// nextRecordsUrl continues the answer (queryMore): crmgate signs
		// it for the subject (proxy cursor.go).
		LinkPaths: [][]string{{"nextRecordsUrl"}},
	}
	p, err := New("salesforce", routes, shape, salesforceObjects)
	if err != nil {
		return nil, err
	}
	p.Dialect = soqlQuery{}
	p.idCheck = IsSalesforceID
	p.version = SalesforceAPIVersion
	p.checkBody = salesforceCheckBody
	return p, nil
}

// salesforceObjects are the standard objects the department store uses,
// plus Employee__c, the custom object an org adds for personnel (Salesforce
// has no standard one).
var salesforceObjects = []string{
	"Account", "Contact", "Lead", "Opportunity", "Case", "Task", "Event", "Note", "Product2",
	"Pricebook2", "PricebookEntry", "Quote", "QuoteLineItem", "Order", "Contract", "Campaign",
	"CampaignMember", "Asset", "User", "Group", "Attachment", "ContentDocument", "Employee__c",
}

// salesforceCheckBody refuses write members that are not plain values: a
// nested object sets a lookup through another record's external id
// ("Account": {"Ext__c": "A-1"}), which crmgate would not see as the
// AccountId the policy guards, and "attributes" is not a field.
func salesforceCheckBody(_ Match, doc map[string]any) error {
	for k, v := range doc {
		switch v.(type) {
		case map[string]any, []any:
			return fmt.Errorf("member %q of a Salesforce write is not a plain value: %w", truncate(k), ErrBadBody)
		}
		if !validModuleName(k) || strings.Contains(k, ".") {
			return fmt.Errorf("member %q is not a field name: %w", truncate(k), ErrBadBody)
		}
	}
	return nil
}
