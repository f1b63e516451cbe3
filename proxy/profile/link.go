package profile

// LinkModule returns the module of the records behind a standard link of
// this CRM (SuiteCRM's relationship link names, EspoCRM's link names), so a
// relate or unlink can check the related records too, not only the parent.
// The tables hold the links both CRMs ship; a link they do not hold (a
// custom relationship) is ok=false and the proxy refuses to act on it
// unchecked. The standard names mean the same module on every parent.
func (p *Profile) LinkModule(link string) (string, bool) {
	m, ok := linkModules[p.Name][link]
	return m, ok
}

// linkModules are the standard link names of each built-in CRM. Sources:
// SuiteCRM's vardefs (modules/*/vardefs.php "link" fields) and EspoCRM's
// entityDefs (application/Espo/Modules/Crm/Resources/metadata/entityDefs).
var linkModules = map[string]map[string]string{
	"suitecrm8": {
		"accounts": "Accounts", "contacts": "Contacts", "leads": "Leads", "opportunities": "Opportunities",
		"cases": "Cases", "calls": "Calls", "meetings": "Meetings", "tasks": "Tasks", "notes": "Notes",
		"documents": "Documents", "bugs": "Bugs", "project": "Project", "campaigns": "Campaigns",
		"aos_quotes": "AOS_Quotes", "aos_contracts": "AOS_Contracts", "aos_invoices": "AOS_Invoices",
		"aos_products": "AOS_Products",
	},
	"espocrm": {
		"accounts": "Account", "account": "Account", "contacts": "Contact", "contact": "Contact", "leads": "Lead",
		"opportunities": "Opportunity", "cases": "Case", "calls": "Call", "meetings": "Meeting", "tasks": "Task",
		"notes": "Note", "documents": "Document", "emails": "Email", "targetLists": "TargetList",
		"campaigns": "Campaign", "quotes": "Quote", "products": "Product",
	},
	// Collection-valued navigation properties of the standard tables
	// (Web API EntityType reference: account, contact, systemuser, team).
	// Single-valued ones (primarycontactid, parentcustomerid_account)
	// answer one row, not a list, and are not routed.
	"dynamics": {
		"contact_customer_accounts": "contacts", "incident_customer_accounts": "incidents",
		"opportunity_customer_accounts": "opportunities", "Account_Phonecalls": "phonecalls",
		"Account_Tasks": "tasks", "Account_Appointments": "appointments",
		"incident_customer_contacts": "incidents", "opportunity_customer_contacts": "opportunities",
		"Contact_Phonecalls": "phonecalls", "contact_customer_contacts": "contacts",
		"teammembership_association": "systemusers", "user_accounts": "accounts",
	},
	// Child relationship names of the standard objects (Object Reference,
	// "childRelationships" of Account and Contact describes). Lookups
	// (Owner, Account, Parent) answer one record and are not links.
	"salesforce": {
		"Contacts": "Contact", "Opportunities": "Opportunity", "Cases": "Case", "Tasks": "Task",
		"Events": "Event", "Notes": "Note", "Quotes": "Quote", "Assets": "Asset", "Contracts": "Contract",
		"Orders": "Order",
	},
	// HubSpot's association target is an object type, by name or id.
	"hubspot": hubspotLinks(),
}

// RecordTypes are the values Shape.TypeField may have on a record of
// module: SuiteCRM's V8 API writes the bean's object name ("Contact" for
// Contacts, "Case" for Cases; AOS modules keep the module name), so a
// record of another module can be told from the module's own. Empty when
// the profile's records carry no type.
func (p *Profile) RecordTypes(module string) []string {
	if p.Shape.TypeField == "" {
		return nil
	}
	if obj, ok := objectNames[p.Name][module]; ok && obj != module {
		return []string{module, obj}
	}
	return []string{module}
}

// objectNames are SuiteCRM's bean object names (the $object_name of
// modules/*/*.php, which the V8 API's DataObject "type" carries) where they
// differ from the module name.
var objectNames = map[string]map[string]string{
	"suitecrm8": {
		"Accounts": "Account", "Contacts": "Contact", "Leads": "Lead", "Opportunities": "Opportunity",
		"Cases": "Case", "Calls": "Call", "Meetings": "Meeting", "Tasks": "Task", "Notes": "Note",
		"Documents": "Document", "Bugs": "Bug", "Campaigns": "Campaign", "Employees": "Employee",
		"Users": "User", "Prospects": "Prospect", "ProspectLists": "ProspectList", "Emails": "Email",
		"Project": "Project", "ProjectTask": "ProjectTask",
	},
}
