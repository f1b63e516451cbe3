# Record-level tests in Dataverse naming: persona ids mapped to GUIDs
# (crm_ids), owners in _ownerid_value, owner teams, per-table id columns.
package crmgate_test

import data.crmgate

dyn_input(subject, module, act, record) := {
	"subject": subject,
	"request": office_hours,
	"resource": {"crm": "dynamics", "module": module, "action": act},
	"record": record,
}

dyn_sees(subject, module, act, record) if {
	crmgate.record_allow with input as dyn_input(subject, module, act, record)
}

dyn_guid(id) := data.crmgate_data.crm_ids.dynamics[id]

dyn_owned(owner) := {"accountid": "00000000-0000-0000-0000-000000000001", "name": "x", "_ownerid_value": owner}

test_dynamics_sales_sees_own_team_and_owner_team_rows if {
	dyn_sees(alice, "accounts", "read", dyn_owned(dyn_guid("u-sales1")))
	dyn_sees(alice, "accounts", "read", dyn_owned(dyn_guid("u-sales2")))
	dyn_sees(alice, "accounts", "read", dyn_owned(data.crmgate_data.crm_team_ids.dynamics["store-12"]))
	not dyn_sees(alice, "accounts", "read", dyn_owned(dyn_guid("u-sales3")))
	not dyn_sees(alice, "accounts", "read", dyn_owned(data.crmgate_data.crm_team_ids.dynamics["store-7"]))

	# The dataset id itself is not the owner as Dataverse records it.
	not dyn_sees(alice, "accounts", "read", dyn_owned("u-sales1"))

	# Nor is another CRM's owner field.
	not dyn_sees(alice, "accounts", "read", {"accountid": "a", "assigned_user_id": "u-sales1"})
}

test_dynamics_customer_sees_own_account_and_contact if {
	acc := dyn_guid("acc-1")
	dyn_sees(customer, "accounts", "read", {"accountid": acc})
	dyn_sees(customer, "contacts", "read", {"contactid": "c", "_parentcustomerid_value": acc})
	dyn_sees(customer, "contacts", "read", {"contactid": dyn_guid("c-1")})
	dyn_sees(customer, "incidents", "read", {"incidentid": "i", "_customerid_value": acc})
	not dyn_sees(customer, "accounts", "read", {"accountid": "acc-1"})
	not dyn_sees(customer, "contacts", "read", {"contactid": "c-1"})
	not dyn_sees(customer, "incidents", "read", {"incidentid": "i", "_parentcustomerid_value": acc})
}

test_dynamics_personnel_by_table_key if {
	dyn_sees(alice, "new_employees", "read", {"new_employeeid": dyn_guid("e-sales1")})
	not dyn_sees(alice, "new_employees", "read", {"new_employeeid": dyn_guid("e-sales2")})
	not dyn_sees(alice, "new_employees", "read", {"id": dyn_guid("e-sales1")})
}
