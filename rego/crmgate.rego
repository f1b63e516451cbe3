# Reference policy for a department store's CRM, enforced by crmgate.
#
# It works unchanged in front of SuiteCRM 8 and EspoCRM: module names map to
# logical classes (data.crmgate_data.modules: "Accounts" and "Account" are
# both "account"), and logical fields map to each CRM's own field names
# (data.crmgate_data.fields: "buy_price" is cost in SuiteCRM and costPrice in
# EspoCRM). Field rules always name both spellings; crmgate ignores names a
# response does not contain.
#
# Files:
#   crmgate.rego  who may do what to which module (allow, require_mfa, reasons)
#   fields.rego   hidden, masked, read-only and visible fields
#   records.rego  which records each persona sees (record_allow)
#   context.rego  from where and when roles act (office networks, hours)
#
# Personas come from input.subject.roles; a subject with several roles gets
# the union of their grants. Everything not granted below is denied.
package crmgate

# Actions a role may perform per logical class. Who may see WHICH records of
# a class is decided per record in records.rego. The table is written out in
# full, without set unions or object.union, because a literal is a constant
# while anything computed is evaluated again for every request.
grants := {
	# Portal customers: their own company's data, and the catalogue.
	"customer": {
		"account": {"list", "read"},
		"contact": {"list", "read"},
		"opportunity": {"list", "read"},
		"quote": {"list", "read"},
		"case": {"list", "read", "create", "update"},
		"product": {"list", "read"},
	},
	# Sales: their own and their team's customers and activities. The
	# Helpdesk (cases) is support's: sales staff do not see it.
	"sales": {
		"account": {"list", "read", "create", "update", "relate"},
		"contact": {"list", "read", "create", "update", "relate"},
		"lead": {"list", "read", "create", "update", "relate", "delete"}, # delete: own leads only
		"opportunity": {"list", "read", "create", "update", "relate"},
		"call": {"list", "read", "create", "update", "relate"},
		"meeting": {"list", "read", "create", "update", "relate"},
		"task": {"list", "read", "create", "update", "relate", "delete"}, # delete: own tasks only
		"note": {"list", "read", "create", "update", "relate"},
		"product": {"list", "read"}, # the catalogue, without buy prices
		"employee": {"list", "read"}, # their own personnel record only
	},
	# Line managers: what sales has, on more records (records.rego), and they
	# may export their team's opportunities.
	"line_manager": {
		"account": {"list", "read", "create", "update", "relate"},
		"contact": {"list", "read", "create", "update", "relate"},
		"lead": {"list", "read", "create", "update", "relate", "delete"},
		"opportunity": {"list", "read", "create", "update", "relate", "export"},
		"call": {"list", "read", "create", "update", "relate"},
		"meeting": {"list", "read", "create", "update", "relate"},
		"task": {"list", "read", "create", "update", "relate", "delete"},
		"note": {"list", "read", "create", "update", "relate"},
		"product": {"list", "read"},
		"employee": {"list", "read"}, # own, reports' and team's records
	},
	# Support: the Helpdesk. Every case, and the customers (accounts and
	# contacts) it needs to answer them, read-only; the catalogue; their own
	# personnel record.
	"support": {
		"case": {"list", "read", "create", "update", "relate"},
		"account": {"list", "read"},
		"contact": {"list", "read"},
		"product": {"list", "read"},
		"employee": {"list", "read"},
	},
	# Warehouse: the product catalogue including buy prices, and their own
	# personnel record. No customer data.
	"inventory_manager": {
		"product": {"list", "read", "create", "update", "relate", "delete"},
		"employee": {"list", "read"},
	},
}

# The class of the requested module; undefined for modules the policy does
# not know, which only an admin may use.
class := data.crmgate_data.modules[input.resource.module]

action := input.resource.action

# The caller's CRM user id and, for customers, their account and contact.
me := id if {
	id := input.subject.attributes.crm_user_id
	is_string(id)
	id != ""
}

my_account := id if {
	id := input.subject.attributes.account_id
	is_string(id)
	id != ""
}

my_contact := id if {
	id := input.subject.attributes.contact_id
	is_string(id)
	id != ""
}

# Roles that are in effect for this request. A staff role needs the caller's
# CRM user id and a customer needs an account, or they grant nothing. The
# admin role counts only once the caller has proved a second factor.
active_roles contains role if {
	some role in input.subject.roles
	role in {"sales", "line_manager", "inventory_manager", "support"}
	me
}

active_roles contains "customer" if {
	"customer" in input.subject.roles
	my_account
}

active_roles contains "admin" if {
	"admin" in input.subject.roles
	input.subject.mfa == true
}

# Roles that grant this action on this module for this request.
granting_roles contains "admin" if {
	"admin" in active_roles
	not action in never_allowed
	not context_blocked("admin")
}

# Actions nobody performs through crmgate, admins included: the CRM API's
# logout would revoke crmgate's own upstream credential for every user.
never_allowed := {"logout"}

granting_roles contains role if {
	some role in active_roles
	action in grants[role][class]
	not request_blocked(role)
	not context_blocked(role)
}

default allow := false

allow if count(granting_roles) > 0

# An admin is stepped up to MFA for everything, whatever else they may do.
default require_mfa := false

require_mfa if "admin" in input.subject.roles

# Requests a role's grant does not cover although module and action match:
# checks that need only the request, not the stored record. Which records a
# role may read or change is records.rego's job: crmgate applies record_allow
# to every record it returns and to the target of every write, so reads by
# id need no rule here (and the module decision stays cacheable).

# A customer filing or editing a case for another company. Written as "not
# mine" rather than "!=": an account this CRM has no id for (crm_id
# undefined) then blocks, where "!=" would compare with nothing and pass.
request_blocked("customer") if {
	class == "case"
	some f in data.crmgate_data.fields.account
	value := input.resource.body[f]
	not my_account_in_crm(value)
}

my_account_in_crm(value) if value == crm_id(my_account)

reasons contains "subject has no role crmgate knows" if count(active_roles) == 0

reasons contains "admin requires MFA" if require_mfa

reasons contains msg if {
	some role in granting_roles
	msg := sprintf("%s may %s %s", [role, action, input.resource.module])
}

reasons contains msg if {
	count(active_roles) > 0
	count(granting_roles) == 0
	msg := sprintf("no role of the subject may %s %s", [action, input.resource.module])
}

reasons contains msg if {
	not class
	msg := sprintf("module %s is not known to the policy", [input.resource.module])
}
