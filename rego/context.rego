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

from_office if {
	ip := input.request.remote_ip
	is_string(ip)
	some cidr in data.crmgate_data.office_networks
	net.cidr_contains(cidr, ip)
}

hours := data.crmgate_data.working_hours

# The subject's own time zone wins over the configured default; a subject
# attribute that is not a non-empty string is ignored.
default time_zone := ""

time_zone := tz if {
	tz := input.subject.attributes.time_zone
	is_string(tz)
	tz != ""
} else := tz if {
	tz := hours.time_zone
	is_string(tz)
}

now_ns := time.parse_rfc3339_ns(input.request.time)

# The request's local wall clock as "HH:MM" and its weekday name, both in
# time_zone (an empty zone is UTC).
local_clock := sprintf("%02d:%02d", [c[0], c[1]]) if c := time.clock([now_ns, time_zone])

local_weekday := time.weekday([now_ns, time_zone])

# "HH:MM", 00:00 to 24:00: zero-padded, so comparing the text compares the
# times.
hh_mm(s) if regex.match(`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`, s)

# start is inclusive and end exclusive (08:00–18:00 admits 17:59, not 18:00).
# A start after the end is a shift across midnight.
within_working_hours if {
	local_weekday in {d | some d in hours.days}
	hh_mm(hours.start)
	hh_mm(hours.end)
	in_span(local_clock, hours.start, hours.end)
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

reasons contains "admin access is allowed only from an office network" if {
	"admin" in active_roles
	context_blocked("admin")
}

reasons contains msg if {
	some role in active_roles
	role in staff_roles
	context_blocked(role)
	msg := sprintf("%s access is allowed only within working hours (%s-%s %s, %s)", [
		role, hours.start, hours.end, concat(",", hours.days), time_zone,
	])
}
