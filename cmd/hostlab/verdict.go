package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hostlab/hostlab/lab/scenario"
)

func newVerdictCmd() *cobra.Command {
	var asJSON bool
	var rules string
	cmd := &cobra.Command{
		Use:   "verdict RUN_DIR...",
		Short: "Judge recorded runs again from their evidence",
		Long: `Reads each run folder's result.json, timeline.jsonl and client capture and judges the
run again with the kernel's rules (or, with --rules, one of the wrong models the tests
prove are rejected). Nothing in the folder is changed.`,
		Args: minArgs(1, "at least one RUN_DIR"),
		RunE: func(_ *cobra.Command, args []string) error {
			k, err := lookupRules(rules)
			if err != nil {
				return err
			}
			for _, dir := range args {
				res, err := scenario.Rejudge(dir, k)
				if err != nil {
					return fmt.Errorf("%w: give a run folder (HOME/runs/TIMESTAMP-SCENARIO, or under --out)", err)
				}
				if asJSON {
					enc := json.NewEncoder(os.Stdout)
					enc.SetIndent("", "  ")
					if err := enc.Encode(res); err != nil {
						return err
					}
					continue
				}
				fmt.Print(res.Summary())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the new result as JSON")
	cmd.Flags().StringVar(&rules, "rules", scenario.Kernel.Name, "rule set: "+ruleNames())
	return cmd
}

// lookupRules finds a rule set by name.
func lookupRules(name string) (scenario.Rules, error) {
	for _, k := range append([]scenario.Rules{scenario.Kernel}, scenario.WrongRules...) {
		if k.Name == name {
			return k, nil
		}
	}
	return scenario.Rules{}, fmt.Errorf("--rules %q: use one of %s", name, ruleNames())
}

func ruleNames() string {
	names := []string{fmt.Sprintf("%q", scenario.Kernel.Name)}
	for _, k := range scenario.WrongRules {
		names = append(names, fmt.Sprintf("%q", k.Name))
	}
	return strings.Join(names, ", ")
}
