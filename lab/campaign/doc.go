// Package campaign runs overnight campaigns: the cross product of
// scenarios, kernels, variants (hostlab run's own flags) and repetitions
// written in one YAML file, each cell one run of a scenario, on labs of its
// own — one kernel per lab, reused across its cells, several at once —
// with every finished cell appended durably to results.jsonl so that a
// campaign cut short (Ctrl-C, a crash, kill -9, a power loss) resumes with
// only what is missing. Cells are judged against a detection budget, and
// the campaign lowers its parallelism when its guests' timers fire late.
package campaign
