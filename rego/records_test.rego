# Record-level tests: which records each persona sees, in both CRMs' field
# naming, including records whose ownership is mixed or missing.
package crmgate_test

import data.crmgate

# EspoCRM's entity types are singular; SuiteCRM's modules plural.
espo_modules := {"Account", "Contact", "Lead", "Opportunity", "Case", "Call", "Meeting", "Task", "Note", "Product", "Quote", "Employee", "User", "Document"}

crm_of(module) := "espocrm" if module in espo_modules

else := "suitecrm8"

record_input(subject, module, act, record) := {
	"subject": subject,
	"request": office_hours,
	"resource": {"crm": crm_of(module), "module": module, "action": act},
	"record": record,
}

sees(subject, module, act, record) := v if {
	v := crmgate.record_allow with input as record_input(subject, module, act, record)
}

hidden_in(subject, module, record) := v if {
	v := crmgate.record_hidden_fields with input as record_input(subject, module, "read", record)
}

suite_owned(owner) := {"id": "r-1", "name": "x", "assigned_user_id": owner}

espo_owned(owner) := {"id": "r-1", "name": "x", "assignedUserId": owner}

test_sales_sees_own_and_team_records_in_both_crms if {
	every module in ["Accounts", "Contacts", "Leads", "Opportunities", "Calls", "Meetings", "Tasks", "Notes"] {
		sees(alice, module, "list", suite_owned("u-sales1"))
		sees(alice, module, "read", suite_owned("u-sales2"))
		not sees(alice, module, "read", suite_owned("u-sales3"))
		not sees(alice, module, "read", suite_owned("u-mgr7"))
	}
	every module in ["Account", "Contact", "Lead", "Opportunity", "Call", "Meeting", "Task", "Note"] {
		sees(alice, module, "list", espo_owned("u-sales1"))
		sees(alice, module, "update", espo_owned("u-sales2"))
		not sees(alice, module, "read", espo_owned("u-sales3"))
	}
}

test_other_team_sales_sees_only_their_team if {
	sees(carol, "Accounts", "read", suite_owned("u-sales3"))
	sees(carol, "Account", "read", espo_owned("u-mgr7"))
	not sees(carol, "Accounts", "read", suite_owned("u-sales1"))
}

test_records_without_a_clear_owner_are_hidden_from_sales if {
	not sees(alice, "Accounts", "read", {"id": "r-1"})
	not sees(alice, "Accounts", "read", suite_owned(""))
	not sees(alice, "Accounts", "read", suite_owned(null))
	not sees(alice, "Accounts", "read", suite_owned("u-unknown"))

	# Only the CRM's own owner field counts: another CRM's spelling of it
	# is an ordinary field and claims nothing.
	sees(alice, "Accounts", "read", {"id": "r-1", "assigned_user_id": "u-sales1", "assignedUserId": "u-sales3"})
	not sees(carol, "Accounts", "read", {"id": "r-1", "assigned_user_id": "u-sales1", "assignedUserId": "u-sales3"})
	not sees(alice, "Accounts", "read", {"id": "r-1", "assignedUserId": "u-sales1"})
	not sees(alice, "Account", "read", {"id": "r-1", "assigned_user_id": "u-sales1"})

	# A record of a CRM the policy has no field table for is nobody's.
	not crmgate.record_allow with input as {"subject": alice, "request": office_hours, "resource": {"crm": "generic", "module": "Accounts", "action": "read"}, "record": suite_owned("u-sales1")}
	not crmgate.record_allow with input as {"subject": alice, "request": office_hours, "resource": {"module": "Accounts", "action": "read"}, "record": suite_owned("u-sales1")}
}

test_sales_deletes_only_own_leads_and_tasks if {
	sees(alice, "Leads", "delete", suite_owned("u-sales1"))
	sees(alice, "Task", "delete", espo_owned("u-sales1"))
	not sees(alice, "Leads", "delete", suite_owned("u-sales2"))
	not sees(alice, "Task", "delete", espo_owned("u-sales2"))

	# The grant stops deleting other modules even for own records.
	not sees(alice, "Accounts", "delete", suite_owned("u-sales1"))
}

test_line_manager_sees_team_and_reports if {
	sees(morgan, "Opportunities", "list", suite_owned("u-mgr"))
	sees(morgan, "Opportunities", "list", suite_owned("u-sales1"))
	sees(morgan, "Opportunity", "export", espo_owned("u-sales2"))
	not sees(morgan, "Opportunities", "export", suite_owned("u-sales3"))

	# A report outside the manager's teams is still theirs.
	moved := object.union(data.crmgate_data.users, {"u-sales2": {"name": "Bob", "team": "store-7", "manager": "u-mgr", "employee_id": "e-sales2"}})
	sees(morgan, "Accounts", "read", suite_owned("u-sales2")) with data.crmgate_data.users as moved
	not sees(alice, "Accounts", "read", suite_owned("u-sales2")) with data.crmgate_data.users as moved

	# Managers may delete their reports' leads, not their team peers'.
	sees(morgan, "Leads", "delete", suite_owned("u-sales1"))
	not sees(morgan, "Leads", "delete", suite_owned("u-sales3"))
}

test_customer_sees_own_company_only if {
	sees(customer, "Accounts", "read", {"id": "acc-1", "name": "Shop"})
	sees(customer, "Account", "list", {"id": "acc-1", "name": "Shop"})
	not sees(customer, "Accounts", "read", {"id": "acc-2", "name": "Other"})
	sees(customer2, "Accounts", "read", {"id": "acc-2", "name": "Other"})

	sees(customer, "Cases", "read", {"id": "k-1", "account_id": "acc-1"})
	sees(customer, "Case", "update", {"id": "k-1", "accountId": "acc-1"})
	not sees(customer, "Cases", "read", {"id": "k-2", "account_id": "acc-2"})
	not sees(customer, "Cases", "read", {"id": "k-3"})
	not sees(customer, "Cases", "delete", {"id": "k-1", "account_id": "acc-1"})

	sees(customer, "Opportunities", "list", {"id": "o-1", "account_id": "acc-1"})
	sees(customer, "AOS_Quotes", "list", {"id": "q-1", "billing_account_id": "acc-1"})
	sees(customer, "Quote", "list", {"id": "q-1", "accountId": "acc-1"})
	not sees(customer, "Quote", "list", {"id": "q-2", "accountId": "acc-2"})

	sees(customer, "Contacts", "read", {"id": "c-1"})
	sees(customer, "Contacts", "read", {"id": "c-9", "account_id": "acc-1"})
	not sees(customer, "Contacts", "read", {"id": "c-2", "account_id": "acc-2"})
	not sees(customer2, "Contacts", "read", {"id": "c-1"})

	# Records a customer may not use at all stay hidden whatever they hold.
	not sees(customer, "Leads", "read", {"id": "l-1", "account_id": "acc-1"})
	not sees(customer, "Employees", "read", {"id": "e-sales1", "account_id": "acc-1"})
}

test_customer_record_belongs_to_the_company_the_crm_names if {
	# A SuiteCRM quote's company is its billing account, whatever else it holds.
	not sees(customer, "AOS_Quotes", "read", {"id": "q-1", "account_id": "acc-1", "billing_account_id": "acc-2"})
	sees(customer2, "AOS_Quotes", "read", {"id": "q-1", "account_id": "acc-1", "billing_account_id": "acc-2"})
	not sees(customer, "Cases", "read", {"id": "k-1", "accountId": "acc-1"})
}

test_support_works_every_case_and_looks_up_customers if {
	every module in ["Cases", "Accounts", "Contacts"] {
		sees(sky, module, "list", suite_owned("u-sales3"))
		sees(sky, module, "read", {"id": "r-1"})
	}
	sees(sky, "Case", "update", espo_owned("u-sales1"))
	sees(sky, "Employees", "read", {"id": "e-support"})
	not sees(sky, "Employees", "read", {"id": "e-sales1"})
	not sees(sky, "Opportunities", "list", suite_owned("u-support"))
	not sees(sky, "Leads", "list", suite_owned("u-support"))
}

test_products_are_a_catalogue_for_all_staff_and_customers if {
	every subject in [alice, morgan, ivan, customer, sam] {
		sees(subject, "AOS_Products", "list", {"id": "p-1", "name": "Kettle"})
		sees(subject, "Product", "read", {"id": "p-1", "name": "Kettle"})
	}
	sees(ivan, "Product", "delete", {"id": "p-1"})
	not sees(alice, "Product", "delete", {"id": "p-1"})
	not sees(nobody, "Product", "read", {"id": "p-1"})
}

test_personnel_records if {
	sees(alice, "Employees", "read", {"id": "e-sales1", "salary_c": 1})
	sees(alice, "Employee", "read", {"id": "u-sales1", "salary": 1})
	not sees(alice, "Employees", "list", {"id": "e-sales2"})
	not sees(alice, "Users", "read", {"id": "u-sales1"})

	sees(morgan, "Employees", "list", {"id": "e-sales1"})
	sees(morgan, "Employees", "list", {"id": "e-mgr"})
	not sees(morgan, "Employees", "list", {"id": "e-sales3"})
	not sees(morgan, "Employees", "list", {"id": "e-admin"})

	sees(ivan, "Employees", "read", {"id": "e-inv"})
	not sees(ivan, "Employees", "read", {"id": "e-mgr"})

	sees(sam, "Users", "read", {"id": "u-sales1"})
}

test_salary_visibility if {
	# Own record: salary shown.
	count(hidden_in(alice, "Employees", {"id": "e-sales1", "salary_c": 1})) == 0
	count(hidden_in(morgan, "Employees", {"id": "e-mgr", "salary_c": 1})) == 0

	# Direct report: shown to the manager.
	count(hidden_in(morgan, "Employee", {"id": "u-sales1", "salary": 1})) == 0

	# Team member who is not a report: hidden from the manager.
	peer := object.union(data.crmgate_data.users, {"u-peer": {"name": "Pat", "team": "store-12", "manager": "u-mgr7", "employee_id": "e-peer"}})
	sees(morgan, "Employees", "read", {"id": "e-peer"}) with data.crmgate_data.users as peer
	h := hidden_in(morgan, "Employees", {"id": "e-peer", "salary_c": 1}) with data.crmgate_data.users as peer
	{"salary_c", "salary"} & h == {"salary_c", "salary"}

	# Admin sees every salary.
	count(hidden_in(sam, "Employees", {"id": "e-peer", "salary_c": 1})) == 0
}

test_admin_records_need_mfa if {
	sees(sam, "Accounts", "delete", suite_owned("u-sales3"))
	not sees(sam_without_mfa, "Accounts", "read", suite_owned("u-sales3"))
}

test_no_role_sees_no_records if {
	not sees(nobody, "Accounts", "read", suite_owned("u-sales1"))
	not sees(object.union(alice, {"roles": []}), "Accounts", "read", suite_owned("u-sales1"))
}
