package devbroker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// ParseTopics reads a topic list of the form "orders:6,containers:6" (name
// and partition count, comma separated; spaces around entries are ignored).
// An empty string is an empty list. Every malformed entry is reported.
func ParseTopics(s string) (map[string]int, error) {
	topics := make(map[string]int)
	if strings.TrimSpace(s) == "" {
		return topics, nil
	}
	var errs []error
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		name, count, ok := strings.Cut(entry, ":")
		name, count = strings.TrimSpace(name), strings.TrimSpace(count)
		switch {
		case entry == "":
			errs = append(errs, fmt.Errorf("topic entry %d is empty: want name:partitions", i+1))
			continue
		case !ok:
			errs = append(errs, fmt.Errorf("topic entry %q has no partition count: want name:partitions, e.g. orders:6", entry))
			continue
		}
		if err := kafkaclient.CheckTopicName(name); err != nil {
			errs = append(errs, fmt.Errorf("topic entry %q: %w", entry, err))
			continue
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("topic entry %q: partition count %q is not a whole number of at least 1", entry, count))
			continue
		}
		if _, dup := topics[name]; dup {
			errs = append(errs, fmt.Errorf("topic %s is listed twice", name))
			continue
		}
		topics[name] = n
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return topics, nil
}
