package inventorymock

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/opsserver"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

// requireToken guards /admin/* with the bearer token when one is configured.
func (s *Service) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	if s.cfg.AdminToken == "" {
		return next
	}
	want := []byte(s.cfg.AdminToken)
	return func(c echo.Context) error {
		scheme, token, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), want) != 1 {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="inventory-mock-admin"`)
			return c.JSON(http.StatusUnauthorized, errorBody{
				Error: opsserver.ErrorCode(http.StatusUnauthorized), Message: "the admin API needs the header Authorization: Bearer <ADMIN_TOKEN>",
			})
		}
		return next(c)
	}
}

func adminError(c echo.Context, status int, code, message string) error {
	return c.JSON(status, errorBody{Error: code, Message: message})
}

// readJSONBody reads an admin request body after checking its media type. Its
// errors are *echo.HTTPError, answered as JSON by the server's error handler.
func readJSONBody(c echo.Context, mediaTypes ...string) ([]byte, error) {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(mediaTypes, mt) {
		return nil, echo.NewHTTPError(http.StatusUnsupportedMediaType,
			"Content-Type "+strconv.Quote(ct)+": want "+strings.Join(mediaTypes, " or "))
	}
	body, err := io.ReadAll(c.Request().Body)
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return nil, he // the body limit's 413
	}
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "read body: "+err.Error())
	}
	return body, nil
}

// profileChanged logs every change of the fault profile: in the demo these
// lines tell the story of what the inventory is doing.
func (s *Service) profileChanged(c echo.Context, how string, p faults.Profile) error {
	b, _ := json.Marshal(p)
	s.log.Info("fault profile "+how, "profile", string(b))
	return c.JSON(http.StatusOK, p)
}

func (s *Service) getFaults(c echo.Context) error {
	return c.JSON(http.StatusOK, s.faults.Profile())
}

func (s *Service) putFaults(c echo.Context) error {
	body, err := readJSONBody(c, echo.MIMEApplicationJSON)
	if err != nil {
		return err
	}
	p, err := faults.Decode(body)
	if err == nil {
		err = s.faults.Set(p)
	}
	if err != nil {
		return adminError(c, http.StatusBadRequest, "invalid_profile", err.Error())
	}
	return s.profileChanged(c, "replaced", s.faults.Profile())
}

func (s *Service) patchFaults(c echo.Context) error {
	body, err := readJSONBody(c, "application/merge-patch+json", echo.MIMEApplicationJSON)
	if err != nil {
		return err
	}
	p, err := s.faults.Patch(body)
	if err != nil {
		return adminError(c, http.StatusBadRequest, "invalid_profile", err.Error())
	}
	return s.profileChanged(c, "patched", p)
}

func (s *Service) deleteFaults(c echo.Context) error {
	return s.profileChanged(c, "healed", s.faults.Heal())
}

// postOutage starts an outage now: ?for=30s (default: until healed),
// &mode=status|drop, &status=503.
func (s *Service) postOutage(c echo.Context) error {
	var o faults.Outage
	if v := c.QueryParam("for"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return adminError(c, http.StatusBadRequest, "invalid_outage", "for="+strconv.Quote(v)+": want a positive duration such as 30s")
		}
		o.For = faults.Duration(d)
	}
	o.Mode = c.QueryParam("mode")
	if v := c.QueryParam("status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return adminError(c, http.StatusBadRequest, "invalid_outage", "status="+strconv.Quote(v)+": want an HTTP status such as 503")
		}
		o.Status = n
	}
	p, err := s.faults.StartOutage(o)
	if err != nil {
		return adminError(c, http.StatusBadRequest, "invalid_outage", err.Error())
	}
	return s.profileChanged(c, "outage started", p)
}

// getCalls answers the call log: ?after=<seq>&limit=&route=&orderID=&containerID=&fault=.
func (s *Service) getCalls(c echo.Context) error {
	q := calls.Query{
		Route:       c.QueryParam("route"),
		OrderID:     c.QueryParam("orderID"),
		ContainerID: c.QueryParam("containerID"),
		Fault:       c.QueryParam("fault"),
	}
	if v := c.QueryParam("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return adminError(c, http.StatusBadRequest, "invalid_query", "after="+strconv.Quote(v)+": want a call sequence number")
		}
		q.After = n
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return adminError(c, http.StatusBadRequest, "invalid_query", "limit="+strconv.Quote(v)+": want a whole number of 1 or more")
		}
		q.Limit = n
	}
	return c.JSON(http.StatusOK, admin.CallList{Calls: s.calls.Calls(q)})
}

func (s *Service) getStats(c echo.Context) error {
	return c.JSON(http.StatusOK, admin.Stats{Calls: s.calls.Stats(), Inventory: s.store.Stats()})
}

// adminContainers lists containers outside the fault profile's reach, so a
// test can check the state while the inventory API itself is failing.
func (s *Service) adminContainers(c echo.Context) error {
	status := store.Status(c.QueryParam("status"))
	switch status {
	case "", store.Allocated, store.Available:
	default:
		return adminError(c, http.StatusBadRequest, "invalid_status",
			"status "+strconv.Quote(string(status))+": want allocated or available")
	}
	return c.JSON(http.StatusOK, admin.ContainerList{Containers: s.store.List(status)})
}

// postReset clears containers, call log, counters and failFirst counts and
// restarts the random sequence; the profile stays.
func (s *Service) postReset(c echo.Context) error {
	s.store.Reset()
	s.calls.Reset()
	s.faults.Reset()
	s.log.Info("inventory mock reset")
	return c.NoContent(http.StatusNoContent)
}
