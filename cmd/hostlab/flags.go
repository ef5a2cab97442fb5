package main

import (
	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab/runflags"
)

// checkDurations refuses duration flags given on cmd's command line with
// values that make no sense (runflags.CheckDurations): one line naming the
// flag and the fix.
func checkDurations(cmd *cobra.Command) error {
	return runflags.CheckDurations(cmd.Flags())
}
