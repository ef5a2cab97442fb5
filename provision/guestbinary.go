package provision

// CheckGuestBinary reports whether path can serve as a guest's /init: a
// static x86-64 executable (ErrDynamicGuestBinary otherwise).
func CheckGuestBinary(path string) error {
	return checkStaticELF(path, "guest binary")
}
