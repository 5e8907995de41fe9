package faults

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// presets are the named profiles FAULT_PROFILE accepts. Each returns a fresh
// value, so that callers may change what they get.
var presets = map[string]func() Profile{
	// Everything works.
	"healthy": func() Profile { return Profile{} },
	// One call in five fails with 503: the transient failure retries are for.
	"flaky": func() Profile { return Profile{ErrorRate: 0.2, ErrorStatus: 503} },
	// Answers take 250..750 ms, and one call in ten hangs until the client's
	// timeout: what an overloaded legacy system does.
	"slow": func() Profile {
		return Profile{
			Latency:       Duration(500 * time.Millisecond),
			LatencyJitter: Duration(250 * time.Millisecond),
			TimeoutRate:   0.1,
		}
	},
	// Every call fails with 503 until healed through the admin API.
	"outage": func() Profile {
		return Profile{Outage: &Outage{Mode: OutageStatus, Status: 503}}
	},
	// Every allocation is refused with 422: a permanent failure that no retry
	// cures, so every order ends on the dead-letter topic.
	"permanent": func() Profile {
		return Profile{Rules: []Rule{{
			Name:    "reject-every-order",
			OrderID: "^",
			Status:  422,
			Body:    json.RawMessage(`{"error":"unprocessable_entity","message":"the inventory refuses this order"}`),
		}}}
	},
}

// PresetNames lists the preset names in a stable order.
func PresetNames() []string { return slices.Sorted(maps.Keys(presets)) }

// Preset returns the named preset profile, normalized.
func Preset(name string) (Profile, bool) {
	mk, ok := presets[name]
	if !ok {
		return Profile{}, false
	}
	p := mk()
	if err := p.normalize(); err != nil {
		// Presets are constants of this package; a test covers every one.
		panic(fmt.Sprintf("faults: preset %q is invalid: %v", name, err))
	}
	return p, true
}

// Load reads a profile from the form FAULT_PROFILE takes: empty (healthy), a
// preset name, inline JSON starting with "{", or "@path" naming a JSON file,
// read with readFile (os.ReadFile in production).
func Load(spec string, readFile func(string) ([]byte, error)) (Profile, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		p, _ := Preset("healthy")
		return p, nil
	case strings.HasPrefix(spec, "{"):
		return Decode([]byte(spec))
	case strings.HasPrefix(spec, "@"):
		path := strings.TrimPrefix(spec, "@")
		data, err := readFile(path)
		if err != nil {
			return Profile{}, fmt.Errorf("read fault profile file: %w", err)
		}
		p, err := Decode(data)
		if err != nil {
			return Profile{}, fmt.Errorf("%s: %w", path, err)
		}
		return p, nil
	default:
		p, ok := Preset(spec)
		if !ok {
			return Profile{}, fmt.Errorf("unknown fault profile preset %q: want one of %s, inline JSON such as {\"errorRate\":0.2}, or @file.json",
				spec, strings.Join(PresetNames(), ", "))
		}
		return p, nil
	}
}
