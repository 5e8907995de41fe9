package opsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is the JSON body of /readyz.
type Readiness struct {
	// Status is "ready" or "not_ready" (a check failed).
	Status string                 `json:"status"`
	Checks map[string]CheckResult `json:"checks"`
}

// CheckResult is the outcome of one readiness check.
type CheckResult struct {
	// Status is "ok" or "fail".
	Status     string  `json:"status"`
	Error      string  `json:"error,omitempty"`
	DurationMs float64 `json:"durationMs"`
}

// ErrorBody is the JSON body of every error the server answers itself
// (404, 405, 413, panics, errors returned by handlers).
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// ErrorCode is the machine-readable code for an HTTP status: its status text in
// snake_case ("not_found", "request_entity_too_large", "service_unavailable").
func ErrorCode(status int) string {
	text := http.StatusText(status)
	if text == "" {
		return fmt.Sprintf("status_%d", status)
	}
	return strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(strings.ToLower(text))
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	r := s.runChecks(c.Request().Context())
	status := http.StatusOK
	if r.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, r)
}

// checkGrace is how long readiness waits past CheckTimeout for checks to return.
const checkGrace = 50 * time.Millisecond

type namedResult struct {
	name   string
	result CheckResult
}

// runChecks runs every check concurrently, each under CheckTimeout. A check
// that ignores its context is reported as failed at the deadline; its result
// channel slot is buffered so that the goroutine can still finish later.
func (s *Server) runChecks(ctx context.Context) Readiness {
	out := Readiness{Status: "ready", Checks: make(map[string]CheckResult, len(s.cfg.Checks))}
	if len(s.cfg.Checks) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
	defer cancel()
	// Collect until slightly after the checks' deadline, so that a check which
	// honours ctx reports its own error; only one that ignores ctx is cut off.
	collect := time.NewTimer(s.cfg.CheckTimeout + checkGrace)
	defer collect.Stop()
	results := make(chan namedResult, len(s.cfg.Checks))
	for name, check := range s.cfg.Checks {
		go func() {
			start := time.Now()
			err := runCheck(ctx, check)
			res := CheckResult{Status: "ok", DurationMs: durationMs(time.Since(start))}
			if err != nil {
				res.Status, res.Error = "fail", err.Error()
			}
			results <- namedResult{name, res}
		}()
	}
	start := time.Now()
	for range len(s.cfg.Checks) {
		select {
		case r := <-results:
			out.Checks[r.name] = r.result
		case <-collect.C:
			// Name every check that has not answered.
			for name := range s.cfg.Checks {
				if _, ok := out.Checks[name]; !ok {
					out.Checks[name] = CheckResult{Status: "fail", Error: fmt.Sprintf("no answer within %s", s.cfg.CheckTimeout), DurationMs: durationMs(time.Since(start))}
				}
			}
		}
		if len(out.Checks) == len(s.cfg.Checks) {
			break
		}
	}
	for name, r := range out.Checks {
		if r.Status != "ok" {
			out.Status = "not_ready"
			s.log.Warn("readiness check failed", "check", name, "err", r.Error)
		}
	}
	return out
}

// runCheck turns a panicking check into a failed one.
func runCheck(ctx context.Context, check Check) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	return check(ctx)
}

func durationMs(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

func metricsHandler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// handleError answers every error as JSON ErrorBody. 5xx are logged once here,
// with the route; internal details go to the log, not to the client.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.Debug("error after response was committed", "route", c.Path(), "err", err)
		return
	}
	status := http.StatusInternalServerError
	message := "internal server error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
		switch m := he.Message.(type) {
		case string:
			message = m
		case error:
			message = m.Error()
		default:
			message = fmt.Sprint(m)
		}
	}
	if status >= http.StatusInternalServerError {
		s.log.Error("request failed", "method", c.Request().Method, "route", c.Path(),
			"status", status, "err", err)
	}
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(status)
	} else {
		werr = c.JSON(status, ErrorBody{Error: ErrorCode(status), Message: message})
	}
	if werr != nil {
		s.log.Debug("write error response", "err", werr)
	}
}
