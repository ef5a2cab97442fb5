package scenario

import "time"

// ownFrames is how a scenario that reads more of the client's capture than
// one connection's segments trims it for a fixture (nil: the default):
// connect-dead keeps ARP and the echo port's segments from the run's
// start, hang-server the connection from a second before the stop.
func ownFrames(ev *Evidence) func(pcapRecord) bool {
	switch ev.Scenario {
	case "connect-dead":
		return func(f pcapRecord) bool {
			if _, ok := parseARP(f.Data); ok {
				return true
			}
			src, dst, _, ok := ipv4TCP(f)
			return ok && (src.Port == EchoPort || dst.Port == EchoPort)
		}
	case "hang-server":
		con, _ := ev.connectEvent()
		local, _ := parseEndpoint(con.Local)
		peer, _ := parseEndpoint(con.Peer)
		return func(f pcapRecord) bool {
			return !f.At.Before(ev.FaultStart.Add(-time.Second)) && len(tcpSegments([]pcapRecord{f}, local, peer, time.Time{})) == 1
		}
	}
	return nil
}
