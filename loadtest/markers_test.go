package loadtest

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
)

type nodeSeq struct{ node, seq int }

func findAll(b []byte) []nodeSeq {
	var out []nodeSeq
	FindMarkers(b, func(node, seq int) { out = append(out, nodeSeq{node, seq}) })
	return out
}

func TestMarker(t *testing.T) {
	for _, tc := range []struct {
		node, seq int
		want      string
	}{
		{0, 0, "ltn0x0"},
		{0, 123, "ltn0x123"},
		{7, 2400000, "ltn7x2400000"},
		{MaxMarkerNode, MaxMarkerSeq, "ltn65535x1099511627775"},
	} {
		if got := Marker(tc.node, tc.seq); got != tc.want {
			t.Errorf("Marker(%d, %d) = %q, want %q", tc.node, tc.seq, got, tc.want)
		}
		if got := findAll([]byte(tc.want)); len(got) != 1 || got[0] != (nodeSeq{tc.node, tc.seq}) {
			t.Errorf("FindMarkers(%q) = %v, want one {%d %d}", tc.want, got, tc.node, tc.seq)
		}
	}
}

func TestFindMarkers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []nodeSeq
	}{
		{"ltn0x123", []nodeSeq{{0, 123}}},
		{"INFO GET /cart 200 12ms ltn3x17", []nodeSeq{{3, 17}}},
		{`{"level":"info","seq":"ltn1x9","http":{"status":200}}`, []nodeSeq{{1, 9}}},
		// Docker json-file escaping: the marker sits between escapes.
		{`{"log":"{\"seq\":\"ltn2x44\"}\n","stream":"stdout"}`, []nodeSeq{{2, 44}}},
		{`{"log":"ERROR failed ltn0x5\n\tat Foo.bar(Foo.java:42) ltn0x6\n"}`, []nodeSeq{{0, 5}, {0, 6}}},
		{"ltn1x2 ltn3x4,ltn5x6.ltn7x8-ltn9x10", []nodeSeq{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}}},
		{"(ltn0x1)[ltn0x2]:ltn0x3;ltn0x4\tltn0x5\r\n", []nodeSeq{{0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}}},
		{"#%% malformed ltn12x0 {\"level\":", []nodeSeq{{12, 0}}},
		{"ltn65535x1099511627775", []nodeSeq{{MaxMarkerNode, MaxMarkerSeq}}},

		// Not whole words.
		{"altn0x1", nil},
		{"Altn0x1", nil},
		{"9ltn0x1", nil},
		{"_ltn0x1", nil},
		{"ltn0x12a", nil},
		{"ltn0x1_", nil},
		{"ltn0x1x2", nil},
		{"ltn1x2ltn3x4", nil},
		{"ltnltn0x1", nil},
		{"lltn0x1", nil},
		{"éltn0x1", nil},
		{"ltn0x1é", nil},
		{`\nltn0x1`, nil}, // an escaped newline glued to it: 'n' precedes it
		// Not markers at all.
		{"", nil},
		{"ltn", nil},
		{"ltn0", nil},
		{"ltn0x", nil},
		{"ltnx1", nil},
		{"ltn x1", nil},
		{"ltn0 x1", nil},
		{"LTN0x1", nil},
		{"ltn0X1", nil},
		{"ltn-1x1", nil},
		// Leading zeros: not what Marker writes.
		{"ltn00x1", nil},
		{"ltn01x1", nil},
		{"ltn0x01", nil},
		{"ltn0x00", nil},
		// Out of range, overflow.
		{"ltn65536x1", nil},
		{"ltn0x1099511627776", nil},
		{"ltn0x99999999999999999999999999999999", nil},
		{"ltn99999999999999999999999999999999x0", nil},
		// A bad candidate does not hide the next one.
		{"ltn0x ltn1x1", []nodeSeq{{1, 1}}},
		{"ltnltn0x1 ltn0x2", []nodeSeq{{0, 2}}},
		{"ltn0x1a ltn0x2", []nodeSeq{{0, 2}}},
		{"ltn0x99999999999999999 ltn0x3", []nodeSeq{{0, 3}}},
	} {
		got := findAll([]byte(tc.in))
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("FindMarkers(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// findMarkersSlow is a plain reading of FindMarkers's contract, to compare
// with: at every "ltn" not preceded by a word byte, two digit runs
// separated by 'x', canonical and in range, not followed by a word byte.
func findMarkersSlow(b []byte) []nodeSeq {
	var out []nodeSeq
	digits := func(p int) int {
		q := p
		for q < len(b) && b[q] >= '0' && b[q] <= '9' {
			q++
		}
		return q
	}
	number := func(s []byte, max uint64) (int, bool) {
		if len(s) == 0 || len(s) > 1 && s[0] == '0' || len(s) > 19 {
			return 0, false
		}
		n, err := strconv.ParseUint(string(s), 10, 64)
		return int(n), err == nil && n <= max
	}
	for i := 0; i+3 <= len(b); i++ {
		if string(b[i:i+3]) != "ltn" || i > 0 && wordByte(b[i-1]) {
			continue
		}
		ne := digits(i + 3)
		if ne >= len(b) || b[ne] != 'x' {
			continue
		}
		se := digits(ne + 1)
		if se < len(b) && wordByte(b[se]) {
			continue
		}
		node, ok1 := number(b[i+3:ne], MaxMarkerNode)
		seq, ok2 := number(b[ne+1:se], MaxMarkerSeq)
		if ok1 && ok2 {
			out = append(out, nodeSeq{node, seq})
		}
	}
	return out
}

func FuzzFindMarkers(f *testing.F) {
	for _, s := range []string{
		"ltn0x123",
		`{"log":"{\"seq\":\"ltn2x44\"}\n","stream":"stdout"}`,
		"2024-03-01T12:00:00Z stderr F \tat Foo.bar(Foo.java:42) ltn0x6",
		"ltn1x2 ltn3x4,ltn5x6",
		"altn0x1 ltn0x12a ltn00x1 ltn0x01 ltn65536x1 ltn0x1099511627776",
		"ltn65535x1099511627775",
		"ltnltn0x1",
		"ltn0x99999999999999999999 ltn0x3",
		"\xffltn1x1\xff",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var got []nodeSeq
		pos := 0
		FindMarkers(b, func(node, seq int) {
			if node < 0 || node > MaxMarkerNode || seq < 0 || seq > MaxMarkerSeq {
				t.Fatalf("marker {%d %d} out of range", node, seq)
			}
			m := []byte(Marker(node, seq))
			i := bytes.Index(b[pos:], m)
			if i < 0 {
				t.Fatalf("reported %s, not in the input after offset %d: %q", m, pos, b)
			}
			pos += i + len(m)
			got = append(got, nodeSeq{node, seq})
		})
		if !bytes.Equal(in, b) {
			t.Fatal("FindMarkers modified its input")
		}
		if want := findMarkersSlow(b); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("FindMarkers(%q) = %v, the contract says %v", b, got, want)
		}
	})
}

func BenchmarkFindMarkers(b *testing.B) {
	var doc []byte
	for i := range 100 {
		doc = fmt.Appendf(doc, `{"message":"INFO GET /cart 200 12ms %s","kubernetes":{"namespace":"shop","pod":"shop-app-1-x2x9z"}}`+"\n", Marker(1, 1000+i))
	}
	b.SetBytes(int64(len(doc)))
	n := 0
	for b.Loop() {
		FindMarkers(doc, func(node, seq int) { n++ })
	}
	if n == 0 {
		b.Fatal("no markers")
	}
}
