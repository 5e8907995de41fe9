package render

import "testing"

func TestCleanRemovesWhatATerminalActsOn(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain text stays", "http-503: POST /x", "http-503: POST /x"},
		{"newline and tab stay", "a\n\tb", "a\n\tb"},
		{"CSI colour", "\x1b[31mred\x1b[0m", "�red�"},
		{"clear screen", "\x1b[2Jx", "�x"},
		{"OSC title ended by BEL", "\x1b]0;owned\x07x", "�x"},
		{"OSC 52 clipboard ended by ST", "\x1b]52;c;cm0=\x1b\\x", "�x"},
		{"reset", "\x1bcx", "�x"},
		{"8-bit CSI", "\u009b31mx", "�31mx"},
		{"carriage return and backspace", "ok\r\bno", "ok��no"},
		{"DEL and BEL", "a\x7f\x07b", "a��b"},
		{"invalid UTF-8", "a\xffb", "a�b"},
		{"unterminated CSI", "\x1b[31", "�"},
		{"UTF-8 text stays", "Zürich → 上海", "Zürich → 上海"},
	}
	for _, tc := range tests {
		if got := Clean(tc.in); got != tc.want {
			t.Errorf("%s: Clean(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
	if got := CleanLine("a\nb\tc"); got != "a b c" {
		t.Errorf("CleanLine = %q", got)
	}
}
