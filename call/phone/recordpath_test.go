package phone

import "testing"

// TestLegRecordPath: a conference's --record PATH gives each party its own
// Ogg file, with .ogg even when PATH has no extension.
func TestLegRecordPath(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"/tmp/conf.ogg", "/tmp/conf-bob.ogg"},
		{"/tmp/conf", "/tmp/conf-bob.ogg"},
		{"conf.opus", "conf-bob.opus"},
		{"/tmp/a.b/conf", "/tmp/a.b/conf-bob.ogg"},
	} {
		if got := legRecordPath(c.file, "bob"); got != c.want {
			t.Errorf("legRecordPath(%q) = %q, want %q", c.file, got, c.want)
		}
	}
}
