# Context rules: where and when a role's grants are in effect.
#
#   admin     only from an office network (data.crmgate_data.office_networks)
#             and with MFA (crmgate.rego: the admin role needs input.subject.mfa)
#   customer  any time, from anywhere
#   staff     (sales, line_manager, support, inventory_manager) only within
#             data.crmgate_data.working_hours, in the subject's time zone
#             (input.subject.attributes.time_zone, e.g. mapped from the OIDC
#             zoneinfo claim) or else working_hours.time_zone
#
# input.request.remote_ip is the client address crmgate established (the
# first hop that is not one of listen.trusted_proxies); it is absent when
# crmgate could not establish one, and then no address is an office.
# input.request.time is the request's RFC 3339 time. Anything missing or
# malformed (an unknown time zone, hours that are not HH:MM) leaves the
# condition unproven, so the role grants nothing: fail closed.
package crmgate

staff_roles := {"sales", "line_manager", "support", "inventory_manager"}

# context_blocked(role) holds when the role is active but its context rule
# does not let it act on this request.
context_blocked("admin") if not from_office

context_blocked(role) if {
	role in staff_roles
	not within_working_hours
}

# The builtins below read only input.request, input.subject and data,
# straight or through variables bound to them, never another rule: crmgate
# compiles record_allow (which reaches these rules) into a predicate, and
# proves for that that no builtin can fail on a record value.
from_office if {
	some _ in net.cidr_contains_matches(data.crmgate_data.office_networks, input.request.remote_ip)
}

hours := data.crmgate_data.working_hours

# The subject's own time zone (attributes.time_zone) wins over the
# configured default. A subject zone that is not a non-empty string, or an
# unknown one, proves nothing, so staff are refused.
#
# start is inclusive and end exclusive (08:00-18:00 admits 17:59, not
# 18:00), both "HH:MM" from 00:00 to 24:00, zero-padded so that comparing
# the text compares the times. A start after the end is a shift across
# midnight.
within_working_hours if {
	tz := object.get(input.subject, ["attributes", "time_zone"], data.crmgate_data.working_hours.time_zone)
	is_string(tz)
	tz != ""
	ns := time.parse_rfc3339_ns(input.request.time)
	day := time.weekday([ns, tz])
	day in data.crmgate_data.working_hours.days
	c := time.clock([ns, tz])
	now := sprintf("%02d:%02d", [c[0], c[1]])
	start := data.crmgate_data.working_hours.start
	end := data.crmgate_data.working_hours.end
	regex.match(`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`, start)
	regex.match(`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`, end)
	in_span(now, start, end)
}

in_span(t, start, end) if {
	start <= end
	t >= start
	t < end
}

in_span(t, start, end) if {
	start > end
	t >= start
}

in_span(t, start, end) if {
	start > end
	t < end
}

# The zone the reasons name.
time_zone := object.get(input.subject, ["attributes", "time_zone"], hours.time_zone)

reasons contains "admin access is allowed only from an office network" if {
	"admin" in active_roles
	context_blocked("admin")
}

reasons contains msg if {
	some role in active_roles
	role in staff_roles
	context_blocked(role)
	msg := sprintf("%s access is allowed only within working hours (%v-%v %v, %v)", [
		role, hours.start, hours.end, hours.days, time_zone,
	])
}
