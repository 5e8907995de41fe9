// Package inventory is the HTTP client of the legacy container inventory,
// step (3) of the pattern's happy path: after the reefer database has
// allocated a reefer, the inventory must record it too.
//
//	PUT {INVENTORY_URL}/containers/{containerID}/allocation
//	Idempotency-Key: {orderID}
//	{"orderID": "{orderID}"}
//
// The inventory is the flaky dependency of the story. Three things make a
// call to it safe to retry and cheap to fail.
//
// # A timeout on every request
//
// A request without a deadline can wait forever on a server that accepted
// the connection and never answers, and every such request holds a
// worker. [Config.Timeout] (INVENTORY_TIMEOUT, default 2s) bounds each
// call, connecting included.
//
// # An idempotency key
//
// When a request times out we do not know whether the inventory applied
// it. The retry sends the same request again with the same
// Idempotency-Key (the order id), so the inventory can answer "already
// done" (200) instead of "container taken" (409).
//
// # Classified failures
//
// Every error says whether retrying can help (package failure): 5xx, 408,
// 429, timeouts, refused and reset connections are transient and send the
// order to the retry topic; a server's Retry-After is kept so the retry
// service can wait as long as the server asked. Other 4xx (409: the
// container belongs to another order, 422: the inventory cannot process
// the request) are permanent and send the order to the dead-letter topic.
//
// Only 2xx is success. The client never follows a redirect: following
// would turn the PUT into a GET of the page the Location names, and its
// 200 would count as an allocation the inventory never recorded. A 3xx
// (304 included), 401, 403 and 407 are config failures: the base URL, a
// proxy or the credentials are wrong for every order alike, so the order
// is retried with back-off (never dead-lettered at its first attempt)
// while the breaker opens and the failures_total{class="config"} metric
// tells the operator what to fix.
//
// # A circuit breaker
//
// When the inventory is down, waiting 2 seconds for each of thousands of
// orders only to learn the same thing wastes the consumer's capacity. The
// breaker (github.com/sony/gobreaker/v2) opens after
// [BreakerConfig.MaxFailures] transient failures in a row, or when most of
// the recent calls failed ([BreakerConfig.FailureRatio] of at least
// [BreakerConfig.MinRequests] in a [BreakerConfig.Window]). A merely flaky
// inventory trips neither rule: opening on it would turn calls that would
// have worked into failures. Once open, calls fail at
// once with a transient "circuit-open" error (RetryAfter = time left open)
// without touching the network. After [BreakerConfig.OpenTimeout] it lets
// a probe through (half open): success closes it, failure opens it again.
//
// Permanent answers do not count against the inventory: a 409 or 422 is
// the inventory working correctly on a bad request, so a burst of bad
// orders never blocks the good ones. Neither does our own cancellation.
// Config answers (401, 403, 3xx) do count: every call will fail alike
// until someone fixes the deployment.
//
// Together with the retry topic this keeps the promise of the pattern: a
// failing dependency does not slow the input, it only fills the retry
// topic until the dependency recovers.
package inventory
