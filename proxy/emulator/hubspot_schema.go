package emulator

import (
	"slices"
	"strconv"
	"strings"
)

// hubObject is one HubSpot object type rendered from a Dataset module.
type hubObject struct {
	name, typeID, singular string
	suite                  string // the Dataset module
	// idBase turns the department store's ids into HubSpot's numeric
	// ones: prefix-N becomes idBase+N.
	prefix string
	idBase int
	props  []hubProp
	// defaults are the properties HubSpot answers when a request names
	// none, besides hs_object_id and createdate.
	defaults []string
	// searchable are the properties a search's "query" matches
	// (developers.hubspot.com "Search": default searchable properties).
	searchable []string
	modified   string // the last-modified property's name
}

// hubProp maps a Dataset field to a HubSpot property. kind says how the
// value is translated: "" as text, "owner" through the owner ids,
// "company" through the companies' ids.
type hubProp struct{ suite, hub, kind string }

// hubOwners are the HubSpot owner ids of the department-store users
// (GET /crm/v3/owners would list them). A policy compares records'
// hubspot_owner_id with these, through data.crmgate_data.crm_ids.
var hubOwners = map[string]string{
	"u-admin": "31000001", "u-mgr": "31000002", "u-sales1": "31000003", "u-sales2": "31000004",
	"u-sales3": "31000005", "u-mgr7": "31000006", "u-inv": "31000007", "u-support": "31000008",
}

var hubObjects = []hubObject{
	{name: "contacts", typeID: "0-1", singular: "contact", suite: "Contacts", prefix: "c-", idBase: 51000,
		props: []hubProp{{"first_name", "firstname", ""}, {"last_name", "lastname", ""}, {"email1", "email", ""},
			{"phone_work", "phone", ""}, {"phone_mobile", "mobilephone", ""}, {"birthdate", "date_of_birth", ""},
			{"primary_address_city", "city", ""}, {"account_id", "associatedcompanyid", "company"},
			{"assigned_user_id", "hubspot_owner_id", "owner"}, {"description", "message", ""}},
		defaults:   []string{"email", "firstname", "lastname", "lastmodifieddate"},
		searchable: []string{"firstname", "lastname", "email", "phone", "mobilephone", "hs_object_id"},
		modified:   "lastmodifieddate"},
	{name: "companies", typeID: "0-2", singular: "company", suite: "Accounts", prefix: "acc-", idBase: 52000,
		props: []hubProp{{"name", "name", ""}, {"account_type", "type", ""}, {"industry", "industry", ""},
			{"phone_office", "phone", ""}, {"billing_address_street", "address", ""},
			{"billing_address_city", "city", ""}, {"billing_address_postalcode", "zip", ""},
			{"assigned_user_id", "hubspot_owner_id", "owner"}, {"description", "description", ""}},
		defaults:   []string{"domain", "name", "hs_lastmodifieddate"},
		searchable: []string{"name", "domain", "phone", "website", "hs_object_id"},
		modified:   "hs_lastmodifieddate"},
	{name: "deals", typeID: "0-3", singular: "deal", suite: "Opportunities", prefix: "o-", idBase: 53000,
		props: []hubProp{{"name", "dealname", ""}, {"amount", "amount", ""}, {"sales_stage", "dealstage", ""},
			{"probability", "hs_deal_stage_probability", ""}, {"date_closed", "closedate", ""},
			{"account_id", "associatedcompanyid", "company"}, {"assigned_user_id", "hubspot_owner_id", "owner"},
			{"description", "description", ""}},
		defaults:   []string{"amount", "closedate", "dealname", "dealstage", "pipeline", "hs_lastmodifieddate"},
		searchable: []string{"dealname", "hs_object_id"},
		modified:   "hs_lastmodifieddate"},
	{name: "tickets", typeID: "0-5", singular: "ticket", suite: "Cases", prefix: "cs-", idBase: 55000,
		props: []hubProp{{"name", "subject", ""}, {"status", "hs_pipeline_stage", ""}, {"priority", "hs_ticket_priority", ""},
			{"case_number", "hs_ticket_id", ""}, {"account_id", "associatedcompanyid", "company"},
			{"assigned_user_id", "hubspot_owner_id", "owner"}, {"description", "content", ""}},
		defaults:   []string{"content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority", "subject", "hs_lastmodifieddate"},
		searchable: []string{"subject", "content", "hs_object_id"},
		modified:   "hs_lastmodifieddate"},
	{name: "products", typeID: "0-7", singular: "product", suite: "AOS_Products", prefix: "p-", idBase: 57000,
		props: []hubProp{{"name", "name", ""}, {"part_number", "hs_sku", ""}, {"cost", "hs_cost_of_goods_sold", ""},
			{"price", "price", ""}, {"aos_product_category_id", "hs_product_type", ""},
			{"assigned_user_id", "hubspot_owner_id", "owner"}, {"description", "description", ""}},
		defaults:   []string{"description", "name", "price", "hs_lastmodifieddate"},
		searchable: []string{"name", "hs_sku", "description", "hs_object_id"},
		modified:   "hs_lastmodifieddate"},
	{name: "calls", typeID: "0-48", singular: "call", suite: "Calls", prefix: "call-", idBase: 48000,
		props: []hubProp{{"name", "hs_call_title", ""}, {"status", "hs_call_status", ""}, {"direction", "hs_call_direction", ""},
			{"date_start", "hs_timestamp", ""}, {"assigned_user_id", "hubspot_owner_id", "owner"},
			{"description", "hs_call_body", ""}},
		defaults:   []string{"hs_call_body", "hs_call_direction", "hs_call_title", "hs_timestamp", "hs_lastmodifieddate"},
		searchable: []string{"hs_call_title", "hs_object_id"},
		modified:   "hs_lastmodifieddate"},
	{name: "meetings", typeID: "0-47", singular: "meeting", suite: "Meetings", prefix: "m-", idBase: 47000,
		props: []hubProp{{"name", "hs_meeting_title", ""}, {"status", "hs_meeting_outcome", ""}, {"date_start", "hs_timestamp", ""},
			{"location", "hs_meeting_location", ""}, {"assigned_user_id", "hubspot_owner_id", "owner"},
			{"description", "hs_meeting_body", ""}},
		defaults:   []string{"hs_meeting_title", "hs_timestamp", "hs_lastmodifieddate"},
		searchable: []string{"hs_meeting_title", "hs_object_id"},
		modified:   "hs_lastmodifieddate"},
	{name: "tasks", typeID: "0-27", singular: "task", suite: "Tasks", prefix: "t-", idBase: 27000,
		props: []hubProp{{"name", "hs_task_subject", ""}, {"status", "hs_task_status", ""}, {"priority", "hs_task_priority", ""},
			{"date_due", "hs_timestamp", ""}, {"assigned_user_id", "hubspot_owner_id", "owner"},
			{"description", "hs_task_body", ""}},
		defaults:   []string{"hs_task_subject", "hs_task_status", "hs_timestamp", "hs_lastmodifieddate"},
		searchable: []string{"hs_task_subject", "hs_object_id"},
		modified:   "hs_lastmodifieddate"},
	{name: "leads", typeID: "0-136", singular: "lead", suite: "Leads", prefix: "l-", idBase: 36000,
		props: []hubProp{{"name", "hs_lead_name", ""}, {"status", "hs_lead_label", ""}, {"lead_source", "hs_lead_source", ""},
			{"email1", "hs_lead_email", ""}, {"assigned_user_id", "hubspot_owner_id", "owner"}},
		defaults:   []string{"hs_lead_name", "hs_lead_label", "hs_lastmodifieddate"},
		searchable: []string{"hs_lead_name", "hs_object_id"},
		modified:   "hs_lastmodifieddate"},
}

// hubObjectByType accepts an object type as the API does: its name, its
// singular or its type id, case-insensitively.
func hubObjectByType(t string) *hubObject {
	for i := range hubObjects {
		o := &hubObjects[i]
		if strings.EqualFold(t, o.name) || strings.EqualFold(t, o.singular) || t == o.typeID {
			return o
		}
	}
	return nil
}

func hubObjectBySuite(module string) *hubObject {
	for i := range hubObjects {
		if hubObjects[i].suite == module {
			return &hubObjects[i]
		}
	}
	return nil
}

func (o *hubObject) prop(hub string) *hubProp {
	for i := range o.props {
		if o.props[i].hub == hub {
			return &o.props[i]
		}
	}
	return nil
}

// known reports whether hub is a property of the object type, including
// the ones every object has.
func (o *hubObject) known(hub string) bool {
	switch hub {
	case "hs_object_id", "createdate", o.modified:
		return true
	}
	return o.prop(hub) != nil || slices.Contains(o.defaults, hub)
}

// HubSpotID is the HubSpot id the emulator gives a department-store
// record (module as the Dataset names it: "Accounts", "Contacts"...):
// prefix-N becomes a number per object type. ok is false for a module
// HubSpot has no object for or an id not in that form.
func HubSpotID(module, id string) (string, bool) {
	o := hubObjectBySuite(module)
	if o == nil {
		return "", false
	}
	n, ok := o.fixedNumber(id)
	if !ok {
		return "", false
	}
	return strconv.Itoa(n), true
}

func (o *hubObject) fixedNumber(id string) (int, bool) {
	rest, ok := strings.CutPrefix(id, o.prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n <= 0 || n >= 1000 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return o.idBase + n, true
}

// HubSpotOwnerID is the HubSpot owner id of a department-store user.
func HubSpotOwnerID(user string) (string, bool) {
	id, ok := hubOwners[user]
	return id, ok
}
