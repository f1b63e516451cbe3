package emulator

// DepartmentStore returns a fresh copy of the demo data: a department store
// with two shop floors (teams store-12 and store-7), a warehouse and head
// office. Every module mixes owners so that record filtering is visible in
// lists. The ids are stable: crmgate's example policies and tests use them.
//
// Users (CRM user ids): u-admin Sam Admin; u-mgr Morgan Lee (store-12,
// reports to u-admin); u-sales1 Alice Sales, u-sales2 Bob Sales (store-12,
// report to u-mgr); u-sales3 Carol Sales (store-7, reports to u-mgr7);
// u-mgr7 Dana Park (store-7); u-inv Ivan Stock (warehouse); u-support Sky
// Support (helpdesk).
func DepartmentStore() *Dataset {
	ds := newDataset()
	const ts = "2026-03-02 10:00:00"
	add := func(module, id string, rec map[string]any) {
		if _, ok := rec["date_entered"]; !ok {
			rec["date_entered"] = ts
			rec["date_modified"] = ts
		}
		if _, ok := rec["description"]; !ok {
			rec["description"] = ""
		}
		ds.put(module, id, rec)
	}
	type user struct {
		id, first, last, title, team, reportsTo, phone string
		salary                                         float64
	}
	users := []user{
		{"u-admin", "Sam", "Admin", "Store Director", "head-office", "", "+44 20 7946 0100", 98000},
		{"u-mgr", "Morgan", "Lee", "Floor Manager", "store-12", "u-admin", "+44 20 7946 0112", 52000},
		{"u-sales1", "Alice", "Sales", "Sales Associate", "store-12", "u-mgr", "+44 20 7946 0121", 27500},
		{"u-sales2", "Bob", "Sales", "Sales Associate", "store-12", "u-mgr", "+44 20 7946 0122", 26800},
		{"u-sales3", "Carol", "Sales", "Sales Associate", "store-7", "u-mgr7", "+44 20 7946 0173", 27100},
		{"u-mgr7", "Dana", "Park", "Floor Manager", "store-7", "u-admin", "+44 20 7946 0107", 51000},
		{"u-inv", "Ivan", "Stock", "Inventory Controller", "warehouse", "u-admin", "+44 20 7946 0190", 34000},
		{"u-support", "Sky", "Support", "Helpdesk Advisor", "helpdesk", "u-admin", "+44 20 7946 0150", 29000},
	}
	for _, u := range users {
		email := u.id[2:] + "@store.example"
		add("Users", u.id, map[string]any{
			"user_name": u.id[2:], "first_name": u.first, "last_name": u.last, "title": u.title,
			"department": u.team, "reports_to_id": u.reportsTo, "status": "Active",
			"is_admin": u.id == "u-admin", "email1": email, "phone_work": u.phone,
		})
		// Employees share the user's identity; assigned_user_id is the
		// employee's own user, so "my own record" is expressible.
		add("Employees", "e-"+u.id[2:], map[string]any{
			"first_name": u.first, "last_name": u.last, "title": u.title, "department": u.team,
			"reports_to_id": u.reportsTo, "assigned_user_id": u.id, "phone_work": u.phone,
			"phone_mobile": "+44 7700 900" + u.phone[len(u.phone)-3:], "email1": email,
			"salary_c": u.salary, "employee_status": "Active",
		})
	}

	accounts := []struct{ id, name, typ, industry, owner, phone, city string }{
		{"acc-1", "Pat Customer household", "Customer", "Retail", "u-sales1", "+44 20 7946 0001", "London"},
		{"acc-2", "Riley household", "Customer", "Retail", "u-sales3", "+44 161 496 0002", "Manchester"},
		{"acc-3", "Northwind Catering Ltd", "Customer", "Hospitality", "u-sales2", "+44 20 7946 0003", "London"},
		{"acc-4", "Greenfield Primary School", "Customer", "Education", "u-sales1", "+44 20 7946 0004", "London"},
		{"acc-5", "Harbour Hotel Group", "Customer", "Hospitality", "u-mgr", "+44 117 496 0005", "Bristol"},
		{"acc-6", "Quinn family", "Customer", "Retail", "u-sales3", "+44 161 496 0006", "Manchester"},
	}
	for _, a := range accounts {
		add("Accounts", a.id, map[string]any{
			"name": a.name, "account_type": a.typ, "industry": a.industry, "assigned_user_id": a.owner,
			"phone_office": a.phone, "email1": "info@" + a.id + ".example.net",
			"billing_address_street": "1 High Street", "billing_address_city": a.city,
			"billing_address_postalcode": "EC1A 1BB",
		})
	}

	contacts := []struct{ id, first, last, account, owner, phone, mobile, email, birth string }{
		{"c-1", "Pat", "Customer", "acc-1", "u-sales1", "+44 20 7946 0001", "+44 7700 900001", "pat.customer@example.net", "1984-05-17"},
		{"c-2", "Riley", "Morgan", "acc-2", "u-sales3", "+44 161 496 0002", "+44 7700 900002", "riley.morgan@example.net", "1979-11-02"},
		{"c-3", "Jordan", "Baker", "acc-3", "u-sales2", "+44 20 7946 0003", "+44 7700 900003", "jordan@northwind.example.com", "1990-01-23"},
		{"c-4", "Sam", "Lowe", "acc-3", "u-sales2", "+44 20 7946 0013", "+44 7700 900004", "sam.lowe@northwind.example.com", "1988-07-09"},
		{"c-5", "Avery", "Chen", "acc-4", "u-sales1", "+44 20 7946 0004", "+44 7700 900005", "a.chen@greenfield.example.org", "1975-03-30"},
		{"c-6", "Kim", "Novak", "acc-5", "u-mgr", "+44 117 496 0005", "+44 7700 900006", "kim.novak@harbour.example.com", "1969-12-12"},
		{"c-7", "Quinn", "Taylor", "acc-6", "u-sales3", "+44 161 496 0006", "+44 7700 900007", "quinn.taylor@example.net", "1995-08-14"},
	}
	for _, c := range contacts {
		add("Contacts", c.id, map[string]any{
			"first_name": c.first, "last_name": c.last, "account_id": c.account, "assigned_user_id": c.owner,
			"phone_work": c.phone, "phone_mobile": c.mobile, "email1": c.email, "birthdate": c.birth,
			"primary_address_city": "London",
		})
	}

	opps := []struct {
		id, name, stage, account, owner, closes string
		amount                                  float64
		prob                                    float64
	}{
		{"o-1", "Kitchen refit", "Proposal/Price Quote", "acc-1", "u-sales1", "2026-04-30", 8400, 65},
		{"o-2", "Living room furniture", "Qualification", "acc-2", "u-sales3", "2026-05-15", 3200, 20},
		{"o-3", "Catering equipment contract", "Negotiation/Review", "acc-3", "u-sales2", "2026-04-10", 46000, 80},
		{"o-4", "Classroom furniture", "Closed Won", "acc-4", "u-sales1", "2026-02-28", 12750, 100},
		{"o-5", "Hotel linen supply", "Prospecting", "acc-5", "u-mgr", "2026-07-01", 98000, 10},
		{"o-6", "Garden set", "Closed Lost", "acc-6", "u-sales3", "2026-01-20", 1450, 0},
	}
	for _, o := range opps {
		add("Opportunities", o.id, map[string]any{
			"name": o.name, "amount": o.amount, "sales_stage": o.stage, "probability": o.prob,
			"date_closed": o.closes, "account_id": o.account, "assigned_user_id": o.owner,
		})
	}

	cases := []struct{ id, name, status, priority, account, owner string }{
		{"cs-1", "Delivery damaged", "Open_Assigned", "P1", "acc-1", "u-sales1"},
		{"cs-2", "Refund request", "Open_Pending Input", "P2", "acc-2", "u-sales3"},
		{"cs-3", "Invoice query", "Closed_Closed", "P3", "acc-3", "u-sales2"},
		{"cs-4", "Missing parts", "Open_New", "P2", "acc-3", "u-mgr"},
		{"cs-5", "Warranty claim", "Open_Assigned", "P1", "acc-5", "u-mgr7"},
	}
	for i, c := range cases {
		add("Cases", c.id, map[string]any{
			"name": c.name, "case_number": float64(1001 + i), "status": c.status, "priority": c.priority,
			"account_id": c.account, "assigned_user_id": c.owner,
		})
	}

	type activity struct{ id, name, status, when, parent, owner string }
	for _, a := range []activity{
		{"call-1", "Confirm delivery slot", "Planned", "2026-03-05 09:00:00", "acc-1", "u-sales1"},
		{"call-2", "Quote follow-up", "Held", "2026-03-01 14:30:00", "acc-3", "u-sales2"},
		{"call-3", "Complaint callback", "Planned", "2026-03-06 11:00:00", "acc-2", "u-sales3"},
		{"call-4", "Contract renewal", "Planned", "2026-03-09 16:00:00", "acc-5", "u-mgr"},
	} {
		add("Calls", a.id, map[string]any{
			"name": a.name, "status": a.status, "direction": "Outbound", "date_start": a.when,
			"parent_type": "Accounts", "parent_id": a.parent, "assigned_user_id": a.owner,
		})
	}
	for _, a := range []activity{
		{"m-1", "Kitchen design consultation", "Planned", "2026-03-10 10:00:00", "acc-1", "u-sales1"},
		{"m-2", "Catering showroom visit", "Held", "2026-02-20 13:00:00", "acc-3", "u-sales2"},
		{"m-3", "Store-7 weekly", "Planned", "2026-03-04 08:30:00", "acc-2", "u-mgr7"},
		{"m-4", "Hotel supplier review", "Planned", "2026-03-12 15:00:00", "acc-5", "u-mgr"},
	} {
		add("Meetings", a.id, map[string]any{
			"name": a.name, "status": a.status, "date_start": a.when, "location": "Store",
			"parent_type": "Accounts", "parent_id": a.parent, "assigned_user_id": a.owner,
		})
	}
	for _, a := range []activity{
		{"t-1", "Send kitchen quote", "Not Started", "2026-03-07", "acc-1", "u-sales1"},
		{"t-2", "Chase invoice", "In Progress", "2026-03-03", "acc-3", "u-sales2"},
		{"t-3", "Stock check: garden sets", "Not Started", "2026-03-08", "acc-6", "u-inv"},
		{"t-4", "Approve refund", "Pending Input", "2026-03-04", "acc-2", "u-mgr7"},
		{"t-5", "Quarterly targets", "Not Started", "2026-03-31", "acc-5", "u-admin"},
	} {
		add("Tasks", a.id, map[string]any{
			"name": a.name, "status": a.status, "priority": "Medium", "date_due": a.when,
			"parent_type": "Accounts", "parent_id": a.parent, "assigned_user_id": a.owner,
		})
	}

	products := []struct {
		id, name, part, category string
		cost, price              float64
	}{
		{"p-1", "Oak dining table", "FUR-1001", "pc-furniture", 310, 649},
		{"p-2", "Linen duvet cover", "TEX-2040", "pc-textiles", 18.5, 59},
		{"p-3", "Cast iron casserole", "KIT-3300", "pc-kitchen", 42, 119},
		{"p-4", "Garden bench", "GAR-4100", "pc-garden", 95, 229},
		{"p-5", "Floor lamp", "LIG-5002", "pc-lighting", 27.4, 89.99},
		{"p-6", "Commercial mixer", "KIT-3900", "pc-kitchen", 820, 1499},
	}
	for _, p := range products {
		add("AOS_Products", p.id, map[string]any{
			"name": p.name, "part_number": p.part, "cost": p.cost, "price": p.price,
			"aos_product_category_id": p.category, "assigned_user_id": "u-inv",
		})
	}

	leads := []struct{ id, first, last, status, source, account, owner, email string }{
		{"l-1", "Morgan", "Hughes", "New", "Web Site", "", "u-sales1", "morgan.hughes@example.net"},
		{"l-2", "Ellis", "Wright", "Assigned", "Walk In", "", "u-sales3", "ellis.w@example.net"},
		{"l-3", "Harper", "Khan", "In Process", "Trade Show", "Khan Interiors", "u-sales2", "harper@khaninteriors.example.com"},
		{"l-4", "Rowan", "Patel", "Converted", "Existing Customer", "", "u-sales1", "rowan.patel@example.net"},
		{"l-5", "Skyler", "Evans", "Dead", "Cold Call", "Evans Builders", "u-mgr7", "skyler@evansbuilders.example.com"},
	}
	for _, l := range leads {
		add("Leads", l.id, map[string]any{
			"first_name": l.first, "last_name": l.last, "status": l.status, "lead_source": l.source,
			"account_name": l.account, "assigned_user_id": l.owner, "phone_work": "+44 20 7946 0500",
			"email1": l.email,
		})
	}
	return ds
}
