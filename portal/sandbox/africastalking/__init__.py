"""The Africa's Talking simulator: sending SMS and their delivery reports (messaging), and its
HTTP face (views): AT's form endpoint, its plain-text refusals, and the kept messages as JSON."""
