"""The ground floor every domain stands on: database access, the one clock, domain
errors, reporting periods and money. It imports no domain."""
