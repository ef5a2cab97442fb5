package vms

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// QEMUDomainMonitorCommand answers the QMP commands hostlab sends as QEMU
// 7.2 does: chardev-add, chardev-remove, object-add, object-del and
// qom-list of /objects. A verb named "qmp:COMMAND" in delay or fail delays
// or fails that command (failures as QMP error replies).
func (f *fakeLibvirt) QEMUDomainMonitorCommand(dom libvirt.Domain, cmd string, _ uint32) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var req struct {
		Execute   string         `json:"execute"`
		Arguments map[string]any `json:"arguments"`
	}
	if err := json.Unmarshal([]byte(cmd), &req); err != nil {
		return "", libvirt.Error{Code: uint32(libvirt.ErrInternalError), Message: "cannot parse json " + cmd}
	}
	id, _ := req.Arguments["id"].(string)
	f.record("qmp %s %s %s", req.Execute, dom.Name, id)
	d, err := f.get(dom)
	if err != nil {
		return "", err
	}
	if d.state != libvirt.DomainRunning && d.state != libvirt.DomainPaused {
		return "", libvirt.Error{Code: uint32(libvirt.ErrOperationInvalid), Message: "Requested operation is not valid: domain is not running"}
	}
	time.Sleep(f.delay["qmp:"+req.Execute])
	fail := func(desc string) (string, error) {
		return fmt.Sprintf(`{"id":"libvirt-1","error":{"class":"GenericError","desc":%q}}`, desc), nil
	}
	if err := f.fail["qmp:"+req.Execute]; err != nil {
		return fail(err.Error())
	}
	if d.objects == nil {
		d.objects, d.chardevs = map[string]bool{}, map[string]bool{}
	}
	const ok = `{"return":{},"id":"libvirt-1"}`
	switch req.Execute {
	case "chardev-add":
		if d.chardevs[id] {
			return fail(fmt.Sprintf("attempt to add duplicate property '%s' to object (type 'container')", id))
		}
		d.chardevs[id] = true
	case "chardev-remove":
		if !d.chardevs[id] {
			return fail(fmt.Sprintf("Chardev '%s' not found", id))
		}
		if d.objects[id] {
			return fail(fmt.Sprintf("Chardev '%s' is busy", id))
		}
		delete(d.chardevs, id)
	case "object-add":
		out, _ := req.Arguments["outdev"].(string)
		switch {
		case d.objects[id]:
			return fail(fmt.Sprintf("attempt to add duplicate property '%s' to object (type 'container')", id))
		case !d.chardevs[out]:
			return fail(fmt.Sprintf("Can't find redirector outdev %s", out))
		}
		d.objects[id] = true
	case "object-del":
		if !d.objects[id] {
			return fail(fmt.Sprintf("object '%s' not found", id))
		}
		delete(d.objects, id)
	case "qom-list":
		type prop struct {
			Name string `json:"name"`
			Type string `json:"type"`
		}
		list := []prop{{"type", "string"}, {"dump0", "child<filter-dump>"}}
		var ids []string
		for o := range d.objects {
			ids = append(ids, o)
		}
		sort.Strings(ids)
		for _, o := range ids {
			list = append(list, prop{o, "child<filter-redirector>"})
		}
		b, _ := json.Marshal(map[string]any{"return": list, "id": "libvirt-1"})
		return string(b), nil
	default:
		return fail(fmt.Sprintf("The command %s has not been found", req.Execute))
	}
	return ok, nil
}
