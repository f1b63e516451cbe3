# Module-level tests: for each persona, every module (in both CRMs' naming)
# and every action, whether it is allowed. Run with `opa test rego/` or
# `go test ./rego/`.
package crmgate_test

import data.crmgate

# Subjects of the demo store (ids match rego/data.json and the CRM emulators).
alice := {
	"id": "alice", "roles": ["sales"], "teams": ["store-12"],
	"attributes": {"crm_user_id": "u-sales1"}, "mfa": false,
}

carol := {
	"id": "carol", "roles": ["sales"], "teams": ["store-7"],
	"attributes": {"crm_user_id": "u-sales3"}, "mfa": false,
}

morgan := {
	"id": "morgan", "roles": ["line_manager"], "teams": ["store-12"],
	"attributes": {"crm_user_id": "u-mgr"}, "mfa": false,
}

ivan := {
	"id": "ivan", "roles": ["inventory_manager"], "teams": ["warehouse"],
	"attributes": {"crm_user_id": "u-inv"}, "mfa": false,
}

sky := {
	"id": "sky", "roles": ["support"], "teams": ["helpdesk"],
	"attributes": {"crm_user_id": "u-support"}, "mfa": false,
}

sam := {
	"id": "sam", "roles": ["admin"], "teams": ["hq"],
	"attributes": {"crm_user_id": "u-admin"}, "mfa": true,
}

sam_without_mfa := object.union(sam, {"mfa": false})

customer := {
	"id": "cust-1", "roles": ["customer"], "teams": [],
	"attributes": {"account_id": "acc-1", "contact_id": "c-1"}, "mfa": false,
}

customer2 := {
	"id": "cust-2", "roles": ["customer"], "teams": [],
	"attributes": {"account_id": "acc-2", "contact_id": "c-2"}, "mfa": false,
}

nobody := {"id": "nobody", "roles": [], "teams": [], "attributes": {}, "mfa": true}

# Each logical class with its SuiteCRM 8 and EspoCRM module name.
modules := {
	"account": ["Accounts", "Account"],
	"contact": ["Contacts", "Contact"],
	"lead": ["Leads", "Lead"],
	"opportunity": ["Opportunities", "Opportunity"],
	"case": ["Cases", "Case"],
	"call": ["Calls", "Call"],
	"meeting": ["Meetings", "Meeting"],
	"task": ["Tasks", "Task"],
	"note": ["Notes", "Note"],
	"product": ["AOS_Products", "Product"],
	"quote": ["AOS_Quotes", "Quote"],
	"employee": ["Employees", "Employee"],
	"user": ["Users", "User"],
	"document": ["Documents", "Document"],
}

actions := {"list", "read", "create", "update", "delete", "export", "relate"}

work := {"list", "read", "create", "update", "relate"}

# with_attributes replaces (object.union would merge) a subject's attributes.
with_attributes(subject, attributes) := object.union(object.remove(subject, ["attributes"]), {"attributes": attributes})

# A Monday, 13:00 in Berlin, from the office: the context rules that
# context_test.rego tests let every persona act.
office_hours := {"method": "GET", "path": "/", "time": "2026-11-23T12:00:00Z", "remote_ip": "198.51.100.7"}

request(subject, module, act) := {
	"subject": subject,
	"request": office_hours,
	"resource": {"module": module, "action": act},
}

allowed(subject, module, act) := v if {
	v := crmgate.allow with input as request(subject, module, act)
}

# Every (module, action) whose decision differs from expected, where expected
# maps a class to the actions the persona may perform on it.
mismatches(subject, expected) := {[module, act, got] |
	some class, names in modules
	some module in names
	some act in actions
	got := allowed(subject, module, act)
	(got != act) in object.get(expected, class, set())
}

expect_matrix(subject, expected) if {
	bad := mismatches(subject, expected)
	print("mismatches [module, action, allowed]:", bad)
	count(bad) == 0
}

test_sales_matrix if expect_matrix(alice, {
	"account": work,
	"contact": work,
	"lead": (work | {"delete"}),
	"opportunity": work,
	"call": work,
	"meeting": work,
	"task": (work | {"delete"}),
	"note": work,
	"product": {"list", "read"},
	"employee": {"list", "read"},
})

test_line_manager_matrix if expect_matrix(morgan, {
	"account": work,
	"contact": work,
	"lead": (work | {"delete"}),
	"opportunity": (work | {"export"}),
	"call": work,
	"meeting": work,
	"task": (work | {"delete"}),
	"note": work,
	"product": {"list", "read"},
	"employee": {"list", "read"},
})

test_support_matrix if expect_matrix(sky, {
	"case": work,
	"account": {"list", "read"},
	"contact": {"list", "read"},
	"product": {"list", "read"},
	"employee": {"list", "read"},
})

# Seed 000: the Helpdesk is support's; sales staff and their managers do not
# see cases at all, not even their own customers'.
test_sales_do_not_see_the_helpdesk if {
	every subject in [alice, morgan] {
		every module in ["Cases", "Case"] {
			every act in actions {
				not allowed(subject, module, act)
			}
		}
	}
	allowed(sky, "Cases", "list")
	r := crmgate.reasons with input as request(alice, "Cases", "list")
	"no role of the subject may list Cases" in r
}

test_inventory_manager_matrix if expect_matrix(ivan, {
	"product": {"list", "read", "create", "update", "delete", "relate"},
	"employee": {"list", "read"},
})

test_customer_matrix if expect_matrix(customer, {
	"account": {"list", "read"},
	"contact": {"list", "read"},
	"opportunity": {"list", "read"},
	"quote": {"list", "read"},
	"case": {"list", "read", "create", "update"},
	"product": {"list", "read"},
})

test_admin_with_mfa_may_do_everything if expect_matrix(sam, {class: actions | some class, _ in modules})

test_admin_without_mfa_is_denied_and_stepped_up if {
	expect_matrix(sam_without_mfa, {})
	every names in modules {
		every module in names {
			crmgate.require_mfa with input as request(sam_without_mfa, module, "read")
		}
	}
}

test_admin_needs_mfa_even_with_mfa if {
	crmgate.require_mfa with input as request(sam, "Accounts", "read")
}

test_nobody_may_log_crmgate_out_of_the_crm if {
	not allowed(sam, "Session", "logout")
	not allowed(alice, "Session", "logout")
}

test_admin_may_use_modules_the_policy_does_not_know if {
	allowed(sam, "AOS_Contracts", "update")
	not allowed(alice, "AOS_Contracts", "read")
}

test_no_role_is_denied if {
	expect_matrix(nobody, {})
	not crmgate.require_mfa with input as request(nobody, "Accounts", "read")
	"subject has no role crmgate knows" in crmgate.reasons with input as request(nobody, "Accounts", "read")
}

test_unknown_roles_and_missing_input_are_denied if {
	not allowed(object.union(alice, {"roles": ["superuser"]}), "Accounts", "read")
	not allowed(object.union(alice, {"roles": "sales"}), "Accounts", "read")
	not crmgate.allow with input as {"resource": {"module": "Accounts", "action": "read"}}
	not crmgate.allow with input as {}
}

test_staff_without_crm_user_id_is_denied if {
	not allowed(with_attributes(alice, {}), "Accounts", "read")
	not allowed(with_attributes(alice, {"crm_user_id": ""}), "Accounts", "read")
	not allowed(with_attributes(alice, {"crm_user_id": 17}), "Accounts", "read")
	not allowed(with_attributes(ivan, {}), "AOS_Products", "read")
}

test_customer_without_account_is_denied if {
	not allowed(with_attributes(customer, {"contact_id": "c-1"}), "Cases", "list")
}

test_roles_are_a_union if {
	both := object.union(alice, {"roles": ["sales", "inventory_manager"]})
	allowed(both, "AOS_Products", "create")
	allowed(both, "Accounts", "update")
	not allowed(both, "Accounts", "export")
}

read_by_id(subject, module, id) := v if {
	v := crmgate.allow with input as {
		"subject": subject,
		"request": office_hours,
		"resource": {"module": module, "action": "read", "id": id},
	}
}

create_with(subject, module, body) := v if {
	v := crmgate.allow with input as {
		"subject": subject,
		"request": office_hours,
		"resource": {"crm": crm_of(module), "module": module, "action": "create", "fields": object.keys(body), "body": body},
	}
}

# Reads by id are allowed at module level and decided by the record rule,
# which crmgate applies to the record the CRM returns (a refusal is a 404).
sees_by_id(subject, module, id) if {
	read_by_id(subject, module, id)
	crmgate.record_allow with input as {
		"subject": subject,
		"request": office_hours,
		"resource": {"crm": crm_of(module), "module": module, "action": "read", "id": id},
		"record": {"id": id},
	}
}

test_customer_reads_only_own_account_by_id if {
	sees_by_id(customer, "Accounts", "acc-1")
	sees_by_id(customer, "Account", "acc-1")
	not sees_by_id(customer, "Accounts", "acc-2")
	not sees_by_id(customer2, "Account", "acc-1")
}

test_customer_files_cases_only_for_own_account if {
	create_with(customer, "Cases", {"name": "Broken till", "account_id": "acc-1"})
	create_with(customer, "Case", {"name": "Broken till", "accountId": "acc-1"})
	create_with(customer, "Cases", {"name": "Broken till"})
	not create_with(customer, "Cases", {"name": "Broken till", "account_id": "acc-2"})
	not create_with(customer, "Case", {"name": "Broken till", "accountId": "acc-2"})
	not create_with(customer, "Cases", {"name": "x", "account_id": "acc-1", "billing_account_id": "acc-2"})
	not create_with(customer, "Cases", {"name": "x", "account_id": null})
}

# An account id the CRM maps to nothing (no crm_ids entry) must block, not
# compare to nothing and pass.
test_customer_case_guard_fails_closed_on_unmapped_account if {
	not crmgate.allow with input as {
		"subject": customer,
		"resource": {"crm": "hubspot", "module": "tickets", "action": "create", "fields": ["associatedcompanyid"], "body": {"associatedcompanyid": "52002"}},
	}
		with data.crmgate_data.crm_ids.hubspot as {"u-sales1": "31000003"}
	not crmgate.allow with input as {
		"subject": customer,
		"resource": {"crm": "hubspot", "module": "tickets", "action": "create", "fields": ["associatedcompanyid"], "body": {"associatedcompanyid": "52002"}},
	}
	crmgate.allow with input as {
		"subject": customer,
		"resource": {"crm": "hubspot", "module": "tickets", "action": "create", "fields": ["associatedcompanyid"], "body": {"associatedcompanyid": "52001"}},
	}
}

test_staff_reads_personnel_by_id_only_where_allowed if {
	sees_by_id(alice, "Employees", "e-sales1")
	sees_by_id(alice, "Employees", "u-sales1")
	not sees_by_id(alice, "Employees", "e-sales2")
	not sees_by_id(alice, "Employees", "u-mgr")
	sees_by_id(morgan, "Employees", "e-sales1")
	sees_by_id(morgan, "Employees", "u-sales2")
	sees_by_id(morgan, "Employees", "e-mgr")
	not sees_by_id(morgan, "Employees", "e-sales3")
	not sees_by_id(morgan, "Employees", "e-admin")
	sees_by_id(ivan, "Employees", "e-inv")
	not sees_by_id(ivan, "Employees", "e-sales1")
	sees_by_id(sam, "Employees", "e-sales3")
}

test_reasons_say_why if {
	r := crmgate.reasons with input as request(alice, "Accounts", "read")
	"sales may read Accounts" in r
	"buy price hidden from sales" in r
	denied := crmgate.reasons with input as request(alice, "Accounts", "export")
	"no role of the subject may export Accounts" in denied
	unknown := crmgate.reasons with input as request(alice, "Bugs", "read")
	"module Bugs is not known to the policy" in unknown
	admin := crmgate.reasons with input as request(sam_without_mfa, "Accounts", "read")
	"admin requires MFA" in admin
}
