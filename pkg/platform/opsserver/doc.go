// Package opsserver is the HTTP server every service of the suite runs: one Echo
// instance that serves the operational endpoints and whatever routes the service
// mounts on it.
//
// The operational endpoints answer three different questions an orchestrator asks:
//
//   - GET /healthz (liveness): "is the process able to answer at all?". It never
//     looks at dependencies: restarting a service because its database is down
//     does not bring the database back.
//   - GET /readyz (readiness): "should traffic be sent here?". It runs every
//     configured [Check] concurrently, each with a short timeout, and answers 503
//     with a JSON body naming each check and its result when any fails.
//   - GET /metrics: Prometheus text exposition of a private registry the caller
//     owns (never the global default registry, so tests and in-process demos can
//     run several servers side by side).
//
// The server is hardened the way a production Go HTTP server should be: all four
// http.Server timeouts are set (a client that sends headers slowly cannot pin a
// goroutine), request bodies are limited, panics in handlers become a 500 with
// the stack logged instead of a crashed process, and errors are answered as JSON
// {"error": "<code>", "message": "..."} where code is the snake_case status text
// (for example "not_found", "request_entity_too_large").
//
// Typical use:
//
//	srv := opsserver.New(opsserver.Config{
//		Addr:     cfg.HTTPAddr,
//		Log:      log,
//		Registry: reg,
//		Checks:   map[string]opsserver.Check{"postgres": db.PingContext},
//	})
//	srv.Echo().GET("/things/:id", getThing)
//	return srv.Run(ctx) // serves until ctx is done, then shuts down gracefully
//
// Tests use Start with Addr ":0" and read the bound address from Addr.
package opsserver
