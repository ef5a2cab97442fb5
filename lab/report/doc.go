// Package report turns a campaign folder into the morning page: report.html
// (and on request report.csv and report.json), a self-contained page that
// answers "did every variant on every kernel behave as the kernel's rules
// say, and within the budget?" before it shows any detail.
//
// The page reads only what a campaign wrote: DIR/results.jsonl (one line per
// finished cell: the campaign's own fields, then every field of the run's
// result.json at top level), DIR/campaign.json when present, and each run's
// folder (result.json, timeline.jsonl, client.wire.pcap). A folder without
// results.jsonl is read as a folder of plain runs, such as `hostlab bench
// verdicts` leaves. Interrupted runs — a torn last line, complete=false, a
// run folder without result.json or without a line — are shown as
// incomplete, never dropped.
//
// The data behind each plot comes from pure functions (Detections for a
// scenario × variant, TimelineOf for a run) that the tests pin with golden
// files; the plots are drawn with gonum.org/v1/plot as inline SVG, and the
// page is built with html/template, with inline CSS and no script or
// external resource.
package report
