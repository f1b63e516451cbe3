package crmgate

# Read budgets: how many records may leave crmgate for one person per hour,
# counted across every replica (crmgate's read_budget rule). They are sized
# to the work each persona does, so that only bulk harvesting hits them:
#
# - customer: a portal customer looks at their own account, its contacts
#   and cases: a few dozen records. 200 an hour leaves room for a busy
#   afternoon and stops a stolen portal login from scraping what it can see.
# - sales, support, line_manager, inventory_manager: a working day of lists
#   of 20-50 records is a few hundred per hour; 2,000 is several times that,
#   while a script paging through the whole book of business stops within
#   minutes.
# - admin: larger (20,000) but not none. Admins reach every record, so theirs
#   is the account worth stealing; a legitimate full export goes through the
#   CRM's own admin tools, not through the API a browser session can drive.
#
# A subject holding several roles gets the largest budget of its active
# roles; a subject with no active role has none (it is denied anyway).
budgets := {
	"customer": 200,
	"sales": 2000,
	"support": 2000,
	"line_manager": 2000,
	"inventory_manager": 2000,
	"admin": 20000,
}

read_budget := {"records": max(counts), "per": "1h"} if {
	counts := {n | some role in active_roles; n := budgets[role]}
	count(counts) > 0
}
