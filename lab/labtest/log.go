package labtest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// logger sends slog records to t.Log.
func logger(t testing.TB) *slog.Logger {
	return slog.New(tHandler{t: t})
}

type tHandler struct {
	t     testing.TB
	attrs []slog.Attr
}

func (h tHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h tHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	h.t.Log(b.String())
	return nil
}

func (h tHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return tHandler{t: h.t, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h tHandler) WithGroup(string) slog.Handler { return h }
