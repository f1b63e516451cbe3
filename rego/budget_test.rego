# Read budget tests: every persona's budget, the largest of several roles,
# and none for a subject without a role crmgate knows.
package crmgate_test

import data.crmgate

budget(subject) := b if {
	b := crmgate.read_budget with input as request(subject, "Accounts", "list")
}

test_budget_customer_is_small if budget(customer) == {"records": 200, "per": "1h"}

test_budget_staff_is_moderate if {
	budget(alice) == {"records": 2000, "per": "1h"}
	budget(sky) == {"records": 2000, "per": "1h"}
	budget(morgan) == {"records": 2000, "per": "1h"}
	budget(ivan) == {"records": 2000, "per": "1h"}
}

test_budget_admin_is_larger_but_set if budget(sam) == {"records": 20000, "per": "1h"}

# Without MFA the admin role is not active: sam falls back to no budget
# (and no grant) rather than to the admin's.
test_budget_admin_without_mfa_has_no_admin_budget if {
	not crmgate.read_budget with input as request(sam_without_mfa, "Accounts", "list")
}

test_budget_several_roles_get_the_largest if {
	both := object.union(alice, {"roles": ["sales", "customer"]})
	budget(both) == {"records": 2000, "per": "1h"}
}

test_budget_none_without_a_known_role if {
	not crmgate.read_budget with input as request(nobody, "Accounts", "list")
}
