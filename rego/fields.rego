# Field rules: what is removed, masked or may not be written. They name both
# CRMs' spellings of each logical field (data.crmgate_data.fields), and apply
# in every module so that a field cannot slip out through a module the rule
# forgot, e.g. a related list or a quote's line items.
package crmgate

fields := data.crmgate_data.fields

# Buy prices (cost, costPrice, quote line cost) are for the warehouse and
# admins only: hidden from everyone else, and never writable by them.
sees_buy_price if {
	some role in active_roles
	role in {"inventory_manager", "admin"}
}

hidden_fields contains f if {
	not sees_buy_price
	some f in fields.buy_price
}

readonly_fields contains f if {
	not sees_buy_price
	some f in fields.buy_price
}

reasons contains sprintf("buy price hidden from %s", [concat(", ", sort(active_roles))]) if {
	count(active_roles) > 0
	not sees_buy_price
}

# Sales staff see contacts' phone numbers as the last four digits and email
# addresses masked, except on Leads (which they must work) and personnel
# records (where they only see their own). EspoCRM's lists of all numbers and
# addresses would undo the masking, so they are hidden.
contact_details_masked if {
	some role in active_roles
	role in {"sales", "line_manager"}
	not "admin" in active_roles
	not class in {"lead", "employee", "user"}
}

masked_fields[f] := "last4" if {
	contact_details_masked
	some f in fields.phone
}

masked_fields[f] := "email" if {
	contact_details_masked
	some f in fields.email
}

hidden_fields contains f if {
	contact_details_masked
	some f in fields.contact_detail_lists
}

reasons contains "contact phone and email masked for sales" if contact_details_masked

# Internal sales notes on cases and opportunities are not for customers,
# unless the caller also holds a staff role for this request.
customer_view if {
	"customer" in granting_roles
	count(granting_roles) == 1
}

hidden_fields contains f if {
	customer_view
	some f in fields.sales_internal
}

# Customers see the product catalogue only: an allow-list, so fields added to
# the CRM later stay hidden until listed here.
visible_fields := {f | some f in fields.catalogue} if {
	customer_view
	class == "product"
}

# A customer may not move a case to another company or reassign it.
readonly_fields contains f if {
	customer_view
	class == "case"
	action == "update"
	some logical in ["account", "owner"]
	some f in fields[logical]
}

# Products are read-only for sales: every field a write touches is refused,
# in addition to the grant not allowing writes in the first place.
readonly_fields contains f if {
	some role in active_roles
	role in {"sales", "line_manager"}
	not sees_buy_price
	class == "product"
	some f in input.resource.fields
}

# Salaries are changed in the HR system, never through the CRM, except by an
# admin.
readonly_fields contains f if {
	not "admin" in active_roles
	some f in fields.salary
}
