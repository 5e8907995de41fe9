// Package admin is the typed Go client of the mock inventory's admin API, and
// the wire types that API shares with it.
//
// Tests and the local demo use it to steer the mock while it runs: set or
// patch the fault profile, start an outage, heal, read the call log and the
// counters, reset everything between scenarios.
//
//	c := admin.New("http://127.0.0.1:8081", os.Getenv("ADMIN_TOKEN"))
//	if _, err := c.PatchFaults(ctx, map[string]any{"failFirst": map[string]any{"count": 2}}); err != nil { ... }
//	calls, err := c.Calls(ctx, calls.Query{OrderID: "O-1"})
package admin
