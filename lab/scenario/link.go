package scenario

// Link conditions (--link): netem delay, jitter, loss, duplication and
// reordering on the lab link, for any scenario.
//
// They are put inside the server guest, on its lab interface: its root
// qdisc conditions what the server sends (to the client), and an IFB on its
// ingress what it receives (to the server). So the client's own capture —
// the wire verdicts read — sees every frame as the client's NIC sent or
// received it, with the link's delay, loss and reordering beyond it, as on
// a real path; conditions in the client guest would stamp its frames after
// its own qdisc (or lose them before the capture).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/provision"
	"github.com/hostlab/hostlab/provision/guestlink"
	"github.com/hostlab/hostlab/vms"
)

// LinkConditions are a run's link conditions, per direction.
type LinkConditions struct {
	// ToServer conditions the frames the client sends, ToClient those the
	// server sends.
	ToServer guestlink.Netem
	ToClient guestlink.Netem
}

// IsZero reports whether no direction is conditioned.
func (c LinkConditions) IsZero() bool { return c.ToServer.IsZero() && c.ToClient.IsZero() }

// ParseLink reads --link values: "SPEC" conditions both directions,
// "to-server:SPEC" or "to-client:SPEC" one; SPEC is in netem's words
// ("delay 50ms 10ms loss 2%", see guestlink.ParseNetem). A direction given
// twice, or a spec netem would refuse, is a one-line error naming the flag.
func ParseLink(values []string) (LinkConditions, error) {
	var c LinkConditions
	var toServer, toClient bool
	for _, v := range values {
		dir, spec, ok := strings.Cut(v, ":")
		if !ok {
			dir, spec = "", v
		}
		n, err := guestlink.ParseNetem(spec)
		if err != nil {
			return c, fmt.Errorf("--link %q: %w", v, err)
		}
		var server, client bool
		switch dir {
		case "":
			server, client = true, true
		case "to-server":
			server = true
		case "to-client":
			client = true
		default:
			return c, fmt.Errorf("--link %q: direction %q: use to-server: or to-client:, or none for both (e.g. 'to-server:loss 5%%')", v, dir)
		}
		if (server && toServer) || (client && toClient) {
			return c, fmt.Errorf("--link %q: a direction is given twice (one --link for both, or one per direction)", v)
		}
		if server {
			c.ToServer, toServer = n, true
		}
		if client {
			c.ToClient, toClient = n, true
		}
	}
	return c, nil
}

// LinkRecord is what result.json records of the link conditions: as read
// back from the server guest's kernel, and where they sit.
type LinkRecord struct {
	// ToServer and ToClient are the conditions in force, in netem's words
	// ("none" for a direction without).
	ToServer string `json:"to_server"`
	ToClient string `json:"to_client"`
	// Where says where the qdiscs sit.
	Where string `json:"where"`
}

// linkCall runs hostlab-link in the server guest and decodes its report.
// A guest without hostlab-link, or whose kernel lacks a piece netem needs,
// gives an error naming the fix.
func (r *Run) linkCall(ctx context.Context, args string, req *guestlink.Request) (guestlink.Report, error) {
	var rep guestlink.Report
	c, err := r.guest(ctx, lab.RoleServer)
	if err != nil {
		return rep, err
	}
	var stdin []byte
	if req != nil {
		if stdin, err = json.Marshal(req); err != nil {
			return rep, err
		}
	}
	var stdout, stderr bytes.Buffer
	status, err := c.Run(ctx, guestlink.Name+" "+args, provision.RunOptions{Stdin: bytes.NewReader(stdin), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return rep, fmt.Errorf("%s on the server: %w", guestlink.Name, err)
	}
	if status != 0 {
		return rep, linkStatusErr(r.cfg.Lab.Name(), status, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("%s on the server: report: %w", guestlink.Name, err)
	}
	return rep, nil
}

// errNoLinkTool marks a guest without hostlab-link.
var errNoLinkTool = errors.New(guestlink.Name + " is not in the server guest")

// linkStatusErr turns hostlab-link's exit status into one line naming the
// fix.
func linkStatusErr(labName string, status int, stderr string) error {
	redo := fmt.Sprintf("hostlab down --lab %s && hostlab up --lab %s", labName, labName)
	switch status {
	case 127:
		return fmt.Errorf("%w (a lab booted by an older hostlab): bring it up again: %s", errNoLinkTool, redo)
	case guestlink.ExitMissing:
		return fmt.Errorf("the server guest's kernel cannot condition the link (%s): bring the lab up again with this hostlab, which loads sch_netem, ifb, sch_ingress, cls_matchall and act_mirred where the kernel has them as modules (%s), or use a kernel that has them",
			strings.TrimPrefix(stderr, guestlink.Name+": "), redo)
	}
	return fmt.Errorf("%s on the server: exit status %d: %s", guestlink.Name, status, stderr)
}

// applyLink puts the run's --link conditions on the lab link, or clears
// conditions an earlier, killed run left when there are none. It runs
// before anything else changes the guests, and hostlab-link undoes its own
// steps when one fails, so a lab that cannot take the conditions is left
// as it was.
func (r *Run) applyLink(ctx context.Context) error {
	cond, err := ParseLink(r.Opt.Link)
	if err != nil {
		return err
	}
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	if len(srv.Links) == 0 {
		return fmt.Errorf("the server guest has no lab link")
	}
	mac := srv.Links[0].MAC
	if cond.IsZero() {
		if _, err := r.linkCall(ctx, "clear "+mac, nil); err != nil && !errors.Is(err, errNoLinkTool) {
			return fmt.Errorf("clear link conditions: %w", err)
		}
		return nil
	}
	rep, err := r.linkCall(ctx, "apply", &guestlink.Request{MAC: mac, Egress: &cond.ToClient, Ingress: &cond.ToServer})
	if err != nil {
		return fmt.Errorf("--link: %w", err)
	}
	r.link = &LinkRecord{ToServer: rep.Ingress, ToClient: rep.Egress, Where: fmt.Sprintf(
		"netem in the server guest: the root qdisc of %s for frames to the client, an ingress redirect to %s for frames to the server",
		rep.Dev, guestlink.IFBName)}
	if rep.Ingress != cond.ToServer.String() || rep.Egress != cond.ToClient.String() {
		return fmt.Errorf("--link: the server guest reads back to-server %q, to-client %q; asked for %q, %q",
			rep.Ingress, rep.Egress, cond.ToServer, cond.ToClient)
	}
	r.log.Info("link conditions", "to_server", rep.Ingress, "to_client", rep.Egress)
	return nil
}

// clearLink removes the run's link conditions at its end (failed runs
// too), under its own deadline; a server that is not running has none.
func (r *Run) clearLink(ctx context.Context) {
	if r.link == nil {
		return
	}
	r.mu.Lock()
	rebooted := !r.serverBack.IsZero()
	r.mu.Unlock()
	if rebooted {
		r.note("the server rebooted during the run: its link conditions ended at the fault (a fresh boot has none)")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
	defer cancel()
	srv, _ := r.cfg.Lab.State.Guest(lab.RoleServer)
	if st, err := r.cfg.Lab.Hypervisor().State(ctx, srv.Domain); err != nil || st != vms.StateRunning {
		return
	}
	if _, err := r.linkCall(ctx, "clear "+srv.Links[0].MAC, nil); err != nil {
		r.note("clear link conditions: " + err.Error())
	}
}
