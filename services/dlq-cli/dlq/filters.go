package dlq

import (
	"github.com/spf13/cobra"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/filter"
)

// filterFlags are the filters every reading command takes, as typed.
type filterFlags struct {
	orderID    string
	reason     string
	errorClass string
	contains   string
	writtenBy  string
	origTopic  string
	since      string
	until      string
	partition  int
	fromOffset int64
	limit      int
	status     string
}

// addFilterFlags registers the shared filters on cmd; status is the
// default of --status for this command.
func addFilterFlags(cmd *cobra.Command, status filter.Status) *filterFlags {
	ff := &filterFlags{}
	fs := cmd.Flags()
	fs.StringVar(&ff.orderID, "order-id", "", "only this order")
	fs.StringVar(&ff.reason, "reason", "", "only this dead-letter reason: max-attempts, permanent-error or poison")
	fs.StringVar(&ff.errorClass, "error-class", "", "only this error class: transient, permanent or config, or an exception class of another dialect (IOException)")
	fs.StringVar(&ff.writtenBy, "written-by", "", "only letters of this dialect: "+dialectNames())
	fs.StringVar(&ff.origTopic, "original-topic", "", "only letters whose headers name this original topic")
	fs.StringVar(&ff.contains, "contains", "", "only letters whose error message or value contains TEXT (any case)")
	fs.StringVar(&ff.since, "since", "", "dead-lettered at or after: RFC 3339 or a duration ago (2h, 3d)")
	fs.StringVar(&ff.until, "until", "", "dead-lettered before: RFC 3339 or a duration ago (2h, 3d)")
	fs.IntVar(&ff.partition, "partition", -1, "only this partition of the dead-letter topic")
	fs.Int64Var(&ff.fromOffset, "from-offset", 0, "skip offsets below this one")
	fs.IntVar(&ff.limit, "limit", 0, "at most this many letters (0: no limit)")
	fs.StringVar(&ff.status, "status", string(status), "pending, resolved or all")
	_ = cmd.RegisterFlagCompletionFunc("reason", fixedCompletions("max-attempts", "permanent-error", "poison", "oversize"))
	_ = cmd.RegisterFlagCompletionFunc("error-class", fixedCompletions("transient", "permanent", "config"))
	_ = cmd.RegisterFlagCompletionFunc("status", fixedCompletions("pending", "resolved", "all"))
	_ = cmd.RegisterFlagCompletionFunc("written-by", fixedCompletions(dialectList()...))
	return ff
}

// fixedCompletions completes a flag from a fixed list.
func fixedCompletions(values ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)
}

// filter parses the flags; every problem is a usage error.
func (a *app) filter(ff *filterFlags) (filter.Filter, error) {
	f := filter.New()
	var err error
	f.OrderID, f.Contains = ff.orderID, ff.contains
	if ff.reason != "" {
		if f.Reason, err = filter.ParseReason(ff.reason); err != nil {
			return f, usagef("--reason: %v", err)
		}
	}
	if ff.errorClass != "" {
		f.SetErrorClass(ff.errorClass)
	}
	if ff.writtenBy != "" {
		if f.Dialect, err = deadletter.ParseDialect(ff.writtenBy); err != nil {
			return f, usagef("--written-by: %v", err)
		}
	}
	f.OriginalTopic = ff.origTopic
	now := a.env.now()
	if ff.since != "" {
		if f.Since, err = filter.ParseTime(ff.since, now); err != nil {
			return f, usagef("--since: %v", err)
		}
	}
	if ff.until != "" {
		if f.Until, err = filter.ParseTime(ff.until, now); err != nil {
			return f, usagef("--until: %v", err)
		}
	}
	if f.Status, err = filter.ParseStatus(ff.status); err != nil {
		return f, usagef("--status: %v", err)
	}
	f.Partition, f.FromOffset, f.Limit = ff.partition, ff.fromOffset, ff.limit
	if err := f.Validate(); err != nil {
		return f, usageError{err}
	}
	return f, nil
}
