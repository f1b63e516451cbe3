# Which records each persona may see or act on (input.record is the CRM's
# record, flattened out of its envelope). crmgate drops list entries for
# which record_allow is false and refuses writes to such records.
package crmgate

# Records are invisible unless a role that grants the action says otherwise.
default record_allow := false

record_allow if {
	some role in granting_roles
	record_ok(role)
}

# Where this CRM keeps a record's owner and company: one field each, the
# one the CRM itself uses (data.crmgate_data.record_fields, per profile in
# input.resource.crm). A field spelled like another CRM's owner field is an
# ordinary field here and claims nothing. Undefined for a CRM or class the
# table does not name: such records are nobody's (admins aside).
record_fields := data.crmgate_data.record_fields[input.resource.crm]

owner_field := record_fields.owner

account_field := record_fields.account[class]

# The record's owner and company as the CRM records them. Rules compare them
# with values known before any record is read (the caller's id, their team's
# members), so crmgate can hand the comparison to the CRM's own list query.
record_owner := input.record[owner_field]

record_of_my_account if input.record[account_field] == my_account

# CRM classes whose records belong to a salesperson.
sales_classes := {"account", "contact", "lead", "opportunity", "call", "meeting", "task", "note"}

users := data.crmgate_data.users

# The caller's direct reports (one level).
my_reports := {u | some u, info in users; info.manager == me}

# The CRM users in the caller's teams.
my_team_members := {u | some u, info in users; info.team in input.subject.teams}

# Personnel record ids of a CRM user: SuiteCRM and EspoCRM give an employee
# the id of its user; an HR system may use the employee id instead.
personnel_ids(u) := {u, id} if {
	id := users[u].employee_id
} else := {u}

# Personnel records a staff role may read: everyone their own, a line
# manager also their reports' and their teams'.
personnel_visible_to(role) := personnel_ids(me) if role != "line_manager"

personnel_visible_to("line_manager") := ids if {
	team := {u | some u, info in users; info.team in input.subject.teams}
	ids := {id | some u in (my_reports | team); some id in personnel_ids(u)} | personnel_ids(me)
}

# Customers: their own account, its contacts, opportunities, quotes and
# cases; products are the public catalogue.
record_ok("customer") if {
	class in {"account", "contact", "opportunity", "quote", "case"}
	record_of_my_account
}

record_ok("customer") if {
	class == "contact"
	input.record.id == my_contact
}

record_ok("customer") if class == "product"

# Sales and line managers: their own records and their teams' records.
# Deleting is limited to their own (and, for managers, their reports').
record_ok(role) if {
	role in {"sales", "line_manager"}
	class in sales_classes
	record_owner == crm_id(me)
}

record_ok(role) if {
	role in {"sales", "line_manager"}
	class in sales_classes
	action != "delete"
	record_owner in {crm_id(u) | some u in my_team_members}
}

record_ok("line_manager") if {
	class in sales_classes
	record_owner in {crm_id(u) | some u in my_reports}
}

record_ok(role) if {
	role in {"sales", "line_manager", "inventory_manager", "support"}
	class == "product"
}

# Support works the whole Helpdesk queue and looks up any customer.
record_ok("support") if class in {"case", "account", "contact"}

record_ok(role) if {
	role in {"sales", "line_manager", "inventory_manager", "support"}
	class == "employee"
	input.record.id in personnel_visible_to(role)
}

record_ok("admin")

# A line manager sees the salary of their direct reports and their own; for
# other team members the salary is hidden. Staff other than managers see only
# their own personnel record, salary included: it is their own data.
record_hidden_fields contains f if {
	class == "employee"
	not salary_visible
	some f in data.crmgate_data.fields.salary
}

salary_visible if "admin" in active_roles

salary_visible if input.record.id in personnel_ids(me)

salary_visible if {
	"line_manager" in active_roles
	some u in my_reports
	input.record.id in personnel_ids(u)
}
