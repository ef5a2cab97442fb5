// Package timeline records one history per run: every client, server, host,
// libvirt and sock_diag event on a single host time axis, together with the
// start and end of each fault so that plots can shade fault windows.
//
// A timeline is a JSON Lines file (FileName, "timeline.jsonl"). Its first
// line is a timeline_start record, its last a timeline_end record saying
// whether the run completed; a file without the end record, or with a cut-off
// last line, is a partial timeline, and Read and Completion say so.
//
// # Schema (version 1)
//
// Every line is one JSON object with these fields:
//
//	v          int     required  schema version, always 1
//	src        string  required  "client", "server", "host", "libvirt",
//	                             "sockdiag-client" or "sockdiag-server"
//	ev         string  required  event name, snake_case (e.g. "write",
//	                             "read_err", "fault_start")
//	host_ns    int64   required  nanoseconds since the Unix epoch on the
//	                             host's realtime clock; for guest events the
//	                             guest stamp mapped through the clock fit
//	uncert_ns  int64   required  ± bound on host_ns in nanoseconds (0 for
//	                             events stamped on the host)
//	mono_ns    int64   optional  raw guest CLOCK_MONOTONIC stamp
//	real_ns    int64   optional  raw guest CLOCK_REALTIME stamp
//	data       object  optional  event-specific fields
//
// Reserved events, all with src "host":
//
//	timeline_start  first line; data is the run's description
//	timeline_end    last line; data {"complete": bool, "reason": string}
//	fault_start     data {"name": string}; opens a fault window
//	fault_end       data {"name": string}; closes the oldest open window
//	                of that name
//
// Example:
//
//	{"v":1,"src":"host","ev":"timeline_start","host_ns":1764060000000000000,"uncert_ns":0,"data":{"run":"r1"}}
//	{"v":1,"src":"host","ev":"fault_start","host_ns":1764060001000000000,"uncert_ns":0,"data":{"name":"poweroff"}}
//	{"v":1,"src":"client","ev":"read_err","host_ns":1764060015400000000,"uncert_ns":180000,"mono_ns":51234567890,"data":{"err":"ETIMEDOUT"}}
//	{"v":1,"src":"host","ev":"timeline_end","host_ns":1764060020000000000,"uncert_ns":0,"data":{"complete":true}}
//
// # Clocks
//
// Guests stamp events with their own clocks. EstimateClock fits guest
// CLOCK_REALTIME and CLOCK_MONOTONIC to host realtime from NTP-style samples
// (host send t0, guest stamp t1, host receive t2: offset = t1 - (t0+t2)/2,
// bound = (t2-t0)/2). With samples at different times it also bounds the
// skew; the uncertainty it returns always contains the true host time as
// long as each guest stamp was taken between t0 and t2, the guest clock runs
// at a constant rate, and that rate is within MaxSkew of the host's.
package timeline
