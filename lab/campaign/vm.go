package campaign

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hostlab/hostlab/lab"
	"github.com/hostlab/hostlab/lab/scenario"
	"github.com/hostlab/hostlab/provision"
)

// VMBackend runs cells on real VMs: lab.Up, scenario.Execute, lab.Down.
type VMBackend struct {
	// Base is the configuration of every lab (home, URI, memory, accel,
	// grace, guest binary, log); name, kernel and router are the cell's.
	Base lab.Config
}

// vmLab is a lab VMBackend brought up.
type vmLab struct{ l *lab.Lab }

func (v vmLab) Name() string          { return v.l.Name() }
func (v vmLab) KernelRelease() string { return v.l.State.KernelRelease }
func (v vmLab) Close()                { v.l.Close() }

// Up brings up a lab with kernel k (a lab of that name already up is an
// error wrapping lab.ErrLabExists: never taken over).
func (b *VMBackend) Up(ctx context.Context, name string, k Kernel, routed bool) (Lab, error) {
	cfg := b.Base
	cfg.Name, cfg.Routed = name, routed
	cfg.Kernel = provision.KernelSpec{Package: k.Package, Image: k.Image, ModulesDir: k.Modules}
	l, err := lab.Up(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return vmLab{l}, nil
}

// Execute runs the cell's scenario with its options in the lab.
func (b *VMBackend) Execute(ctx context.Context, l Lab, c Cell, out string, log *slog.Logger) (*scenario.Result, error) {
	vl, ok := l.(vmLab)
	if !ok {
		return nil, fmt.Errorf("lab %s was not brought up by this backend", l.Name())
	}
	return scenario.Execute(ctx, c.scenario, c.opt, scenario.Config{Lab: vl.l, Out: out, Log: log})
}

// Down takes a lab down.
func (b *VMBackend) Down(ctx context.Context, name string) error {
	cfg := b.Base
	cfg.Name = name
	return lab.Down(ctx, cfg)
}
