# Context rule tests (context.rego): admins only from an office network and
# with MFA, customers at any time, staff within working hours in their time
# zone. The reference data is 08:00-18:00 Monday to Friday, Europe/Berlin
# (UTC+1 in November), offices 198.51.100.0/24 and 2001:db8:100::/48.
package crmgate_test

import data.crmgate

# at is a request at an RFC 3339 time from an address ("" sends none).
at(time, ip) := {"method": "GET", "path": "/", "time": time, "remote_ip": ip} if ip != ""

else := {"method": "GET", "path": "/", "time": time}

monday_noon := "2026-11-23T12:00:00Z" # 13:00 in Berlin

saturday_noon := "2026-11-28T12:00:00Z"

office_v4 := "198.51.100.7"

office_v6 := "2001:db8:100::5"

outside := "203.0.113.9"

ctx_input(subject, request) := {
	"subject": subject,
	"request": request,
	"resource": {"module": "Accounts", "action": "read"},
}

may_read(subject, request) if crmgate.allow with input as ctx_input(subject, request)

why(subject, request) := r if r := crmgate.reasons with input as ctx_input(subject, request)

steps_up(subject, request) if crmgate.require_mfa with input as ctx_input(subject, request)

# Admins.

test_admin_with_mfa_from_office_v4 if may_read(sam, at(saturday_noon, office_v4))

test_admin_with_mfa_from_ipv6_office if may_read(sam, at(monday_noon, office_v6))

test_admin_is_not_bound_to_working_hours if may_read(sam, at("2026-11-29T02:00:00Z", office_v4))

test_admin_with_mfa_from_outside_is_denied if {
	not may_read(sam, at(monday_noon, outside))
	"admin access is allowed only from an office network" in why(sam, at(monday_noon, outside))
}

test_admin_next_to_the_office_is_denied if {
	not may_read(sam, at(monday_noon, "198.51.101.7"))
	not may_read(sam, at(monday_noon, "2001:db8:101::5"))
}

test_admin_without_known_address_is_denied if {
	not may_read(sam, at(monday_noon, ""))
	"admin access is allowed only from an office network" in why(sam, at(monday_noon, ""))
}

# An IPv4-mapped IPv6 address is the same host (net.cidr_contains agrees).
test_admin_ipv4_mapped_ipv6_is_the_office if may_read(sam, at(monday_noon, "::ffff:198.51.100.7"))

# Without MFA the admin role is not in effect even in the office: crmgate
# steps the admin up (require_mfa) instead of letting anything through.
test_admin_without_mfa_from_office_is_stepped_up if {
	not may_read(sam_without_mfa, at(monday_noon, office_v4))
	steps_up(sam_without_mfa, at(monday_noon, office_v4))
}

test_admin_without_mfa_from_outside_is_denied if not may_read(sam_without_mfa, at(monday_noon, outside))

test_no_office_networks_means_no_admin if {
	not crmgate.allow with input as ctx_input(sam, at(monday_noon, office_v4))
		with data.crmgate_data.office_networks as []
}

# Customers: any day, any hour, any address, including none.

test_customer_any_time_anywhere if {
	may_read(customer, at(saturday_noon, outside))
	may_read(customer, at("2026-11-29T02:00:00Z", ""))
	may_read(customer, at(monday_noon, office_v6))
}

# Staff: working hours in Berlin by default.

test_staff_within_hours if {
	may_read(alice, at(monday_noon, outside))
	may_read(morgan, at(monday_noon, outside))
	may_read(sky, at(monday_noon, ""))
}

test_staff_hours_start_is_inclusive if {
	not may_read(alice, at("2026-11-23T06:59:00Z", outside)) # 07:59
	may_read(alice, at("2026-11-23T07:00:00Z", outside)) # 08:00
}

test_staff_hours_end_is_exclusive if {
	may_read(alice, at("2026-11-23T16:59:59Z", outside)) # 17:59:59
	not may_read(alice, at("2026-11-23T17:00:00Z", outside)) # 18:00
	not may_read(alice, at("2026-11-23T17:01:00Z", outside)) # 18:01
}

test_staff_on_the_weekend_is_denied if {
	not may_read(alice, at(saturday_noon, office_v4))
	not may_read(sky, at("2026-11-29T12:00:00Z", office_v4))
	some r in why(alice, at(saturday_noon, office_v4))
	startswith(r, "sales access is allowed only within working hours (08:00-18:00 [\"Monday\",")
}

# Every staff role, not only sales.
test_every_staff_role_is_bound_to_hours if {
	some subject in [alice, morgan, sky, ivan]
	not may_read(subject, at(saturday_noon, office_v4))
}

# The office does not open hours: the office is an admin rule.
test_staff_in_the_office_out_of_hours_is_denied if not may_read(alice, at("2026-11-23T20:00:00Z", office_v4))

# The day is the local one: Monday 00:30 in Berlin is still Sunday in UTC.
test_staff_weekday_is_local if {
	not may_read(alice, at("2026-11-22T23:30:00Z", outside)) # Monday 00:30 Berlin, before 08:00
	not may_read(alice, at("2026-11-28T07:30:00Z", outside)) # Saturday 08:30
	may_read(alice, at("2026-11-27T16:30:00Z", outside)) # Friday 17:30
}

# The subject's own time zone (e.g. the zoneinfo claim) wins.
new_yorker := with_attributes(alice, {"crm_user_id": "u-sales1", "time_zone": "America/New_York"})

test_staff_in_their_own_time_zone if {
	not may_read(new_yorker, at("2026-11-23T12:59:00Z", outside)) # 07:59 in New York
	may_read(new_yorker, at("2026-11-23T13:00:00Z", outside)) # 08:00
	may_read(new_yorker, at("2026-11-23T22:30:00Z", outside)) # 17:30 (23:30 in Berlin)
	not may_read(new_yorker, at("2026-11-23T23:00:00Z", outside)) # 18:00
}

test_staff_time_zone_attribute_that_is_not_a_zone_name_is_denied if {
	some zone in [5, "", null, ["Europe/Berlin"]]
	odd := with_attributes(alice, {"crm_user_id": "u-sales1", "time_zone": zone})
	not may_read(odd, at(monday_noon, outside))
}

# An unknown zone in the subject's attributes is an evaluation error under
# crmgate's strict builtin errors, so the request fails closed; the Go test
# TestContextRulesUnknownTimeZoneFailsClosed shows it through the pipeline.

test_staff_without_request_time_is_denied if {
	not crmgate.allow with input as {"subject": alice, "resource": {"module": "Accounts", "action": "read"}}
}

# Misconfigured hours deny rather than guess.
test_staff_malformed_hours_deny if {
	some h in [
		{"start": "8:00", "end": "18:00", "days": ["Monday"], "time_zone": "Europe/Berlin"},
		{"start": "08:00", "end": "18:60", "days": ["Monday"], "time_zone": "Europe/Berlin"},
		{"start": "08:00", "end": "18:00", "days": [], "time_zone": "Europe/Berlin"},
		{"start": "08:00", "end": "18:00", "days": ["monday"], "time_zone": "Europe/Berlin"},
		{"end": "18:00", "days": ["Monday"], "time_zone": "Europe/Berlin"},
	]
	not crmgate.allow with input as ctx_input(alice, at(monday_noon, outside))
		with data.crmgate_data.working_hours as h
}

# A night shift: a start after the end runs across midnight.
night := {"start": "22:00", "end": "06:00", "days": ["Monday", "Tuesday"], "time_zone": "UTC"}

test_staff_night_shift if {
	crmgate.allow with input as ctx_input(alice, at("2026-11-23T22:00:00Z", outside)) with data.crmgate_data.working_hours as night
	crmgate.allow with input as ctx_input(alice, at("2026-11-24T05:59:00Z", outside)) with data.crmgate_data.working_hours as night
	not crmgate.allow with input as ctx_input(alice, at("2026-11-24T06:00:00Z", outside)) with data.crmgate_data.working_hours as night
	not crmgate.allow with input as ctx_input(alice, at("2026-11-23T21:59:00Z", outside)) with data.crmgate_data.working_hours as night
}

# All day, every day (the demo's data): 24:00 as the end admits 23:59.
test_staff_all_day if {
	all_day := {
		"start": "00:00", "end": "24:00", "time_zone": "UTC",
		"days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
	}
	crmgate.allow with input as ctx_input(alice, at("2026-11-29T23:59:59Z", outside)) with data.crmgate_data.working_hours as all_day
	crmgate.allow with input as ctx_input(alice, at("2026-11-28T00:00:00Z", outside)) with data.crmgate_data.working_hours as all_day
}

# Out of hours a staff member's records are not visible either: the record
# rule follows granting_roles.
test_staff_out_of_hours_sees_no_records if {
	not crmgate.record_allow with input as {
		"subject": alice, "request": at(saturday_noon, office_v4),
		"resource": {"crm": "suitecrm8", "module": "Accounts", "action": "read"},
		"record": {"id": "r-1", "assigned_user_id": "u-sales1"},
	}
	crmgate.record_allow with input as {
		"subject": alice, "request": at(monday_noon, outside),
		"resource": {"crm": "suitecrm8", "module": "Accounts", "action": "read"},
		"record": {"id": "r-1", "assigned_user_id": "u-sales1"},
	}
}

# A customer who also holds a staff role keeps the customer grants out of
# hours, and only those.
test_roles_out_of_hours_keep_the_customer_grant if {
	both := object.union(customer, {"roles": ["customer", "sales"], "attributes": {"account_id": "acc-1", "crm_user_id": "u-sales1"}})
	crmgate.allow with input as ctx_input(both, at(saturday_noon, outside))
	not crmgate.allow with input as {
		"subject": both, "request": at(saturday_noon, outside),
		"resource": {"module": "Leads", "action": "read"},
	}
}
