package opsserver

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts requests and observes their latency, labelled by the
// route template (/containers/:containerID, not the raw path) so that the
// number of series stays bounded whatever clients send.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Route label for requests that matched no route.
const unmatchedRoute = "unmatched"

// Status label for requests whose connection the handler took over (hijacked),
// for example to drop it: no HTTP status was ever sent.
const hijackedStatus = "hijacked"

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total",
		Help: "HTTP requests served, by route template, method and status code.",
	}, []string{"route", "method", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds",
		Help: "Time from routing to the handler's return, by route template and method.",
		// Sub-millisecond to the 30 s a hung dependency may take.
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route", "method"})

	m := &httpMetrics{requests: requests, duration: duration}
	var err error
	m.requests, err = register(reg, requests)
	if err != nil {
		return nil, err
	}
	m.duration, err = register(reg, duration)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the equal collector already registered
// (two servers sharing one registry then share the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("opsserver: register collector: %w", err)
}

func (m *httpMetrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		res := c.Response()
		tracker := &hijackTracker{ResponseWriter: res.Writer}
		res.Writer = tracker

		err := next(c)
		if err != nil {
			// Let the error handler write the response now, so the status we
			// record is the one the client receives.
			c.Error(err)
		}

		route := c.Path()
		if route == "" {
			route = unmatchedRoute
		}
		method := c.Request().Method
		status := statusLabel(res.Status)
		if tracker.hijacked {
			status = hijackedStatus
		}
		m.requests.WithLabelValues(route, method, status).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		return nil
	}
}

// statusLabel avoids an allocation per request for the common codes.
func statusLabel(code int) string {
	switch code {
	case http.StatusOK:
		return "200"
	case http.StatusNotFound:
		return "404"
	case http.StatusServiceUnavailable:
		return "503"
	default:
		return strconv.Itoa(code)
	}
}

// hijackTracker notes whether the handler took over the connection. It
// forwards everything else through Unwrap (http.ResponseController follows it).
type hijackTracker struct {
	http.ResponseWriter
	hijacked bool
}

func (h *hijackTracker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.hijacked = true
	}
	return conn, rw, err
}

func (h *hijackTracker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
