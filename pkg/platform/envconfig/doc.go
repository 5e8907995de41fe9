// Package envconfig reads a service's configuration struct from environment
// variables and says, when a value is wrong, which variable it is and what
// it should look like.
//
// # One struct, read once
//
// Each service describes its whole configuration as one struct whose fields
// carry github.com/caarlos0/env/v11 tags (`env:"RETRY_BASE_DELAY"
// envDefault:"1s"`). main reads it once at start, through a getenv function
// (os.Getenv in production, a map in tests and in the in-process demo), so
// nothing below main ever touches the process environment:
//
//	cfg, err := envconfig.Parse[retrier.Config](os.Getenv)
//
// # Errors an operator can act on
//
// env/v11 reports a bad value with the Go field name ("RetryBaseDelay"),
// which the person who set RETRY_BASE_DELAY=soon never saw. Parse rewrites
// every such error into the variable, the value given and the accepted form:
//
//	RETRY_BASE_DELAY="soon": want a duration such as 500ms, 2s or 1m
//
// and reports all bad variables at once, so a broken deployment is fixed in
// one round. Rules beyond the type (a positive duration, a known jitter
// strategy) belong to the service's own Validate method, which should name
// the variable in the same way.
//
// # Secrets in logs
//
// Services log their configuration at start. [RedactURL] masks the
// password of a URL-valued setting (DATABASE_URL) for that log line.
package envconfig
