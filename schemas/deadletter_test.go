package schemas

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

func TestDeadLetterPayload(t *testing.T) {
	for _, tc := range []struct {
		name      string
		value     []byte
		encoding  string
		truncated bool
		size      int
	}{
		{"text", []byte("a line"), "utf-8", false, 0},
		{"binary", []byte{0xc3, 0x01, 0xff, 0x00}, "base64", false, 0},
		{"long", bytes.Repeat([]byte("x"), MaxDeadLetterPayload+10), "utf-8", true, MaxDeadLetterPayload + 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d DeadLetter
			d.SetPayload(tc.value)
			if d.PayloadEncoding != tc.encoding || d.PayloadTruncated != tc.truncated || d.PayloadSize != tc.size {
				t.Fatalf("encoding %q truncated %v size %d", d.PayloadEncoding, d.PayloadTruncated, d.PayloadSize)
			}
			got := []byte(d.Payload)
			if tc.encoding == "base64" {
				var err error
				if got, err = base64.StdEncoding.DecodeString(d.Payload); err != nil {
					t.Fatal(err)
				}
			}
			want := tc.value[:min(len(tc.value), MaxDeadLetterPayload)]
			if !bytes.Equal(got, want) {
				t.Fatalf("payload does not round-trip")
			}
			var back DeadLetter
			if err := json.Unmarshal(d.Marshal(), &back); err != nil || back.Payload != d.Payload {
				t.Fatalf("marshal round trip: %v", err)
			}
		})
	}
}

func TestDeadLetterDocument(t *testing.T) {
	var d DeadLetter
	d.SetDocument([]byte(`{"a":1}`))
	if string(d.Document) != `{"a":1}` {
		t.Fatalf("document %s", d.Document)
	}
	d.SetDocument([]byte(`{"a":`))
	if d.Document != nil {
		t.Fatalf("invalid JSON kept: %s", d.Document)
	}
	big := append(append([]byte(`"`), bytes.Repeat([]byte("x"), MaxDeadLetterDocument)...), '"')
	d.SetDocument(big)
	if d.Document != nil {
		t.Fatal("oversized document kept")
	}
	if !json.Valid(d.Marshal()) {
		t.Fatal("invalid JSON")
	}
}

// TestDeadLetterFits: whatever goes in, the JSON stays within
// MaxDeadLetterBytes, cutting the document first, then the payload.
func TestDeadLetterFits(t *testing.T) {
	controls := bytes.Repeat([]byte{0x01}, MaxDeadLetterPayload) // valid UTF-8, 6 bytes each in JSON
	doc := append(append([]byte(`"`), bytes.Repeat([]byte(`<`), MaxDeadLetterDocument-2)...), '"')
	var d DeadLetter
	d.SetPayload(controls)
	d.SetDocument(doc)
	if d.Document == nil {
		t.Fatal("document not kept")
	}
	v := d.Marshal()
	if len(v) > MaxDeadLetterBytes || !json.Valid(v) {
		t.Fatalf("%d bytes", len(v))
	}
	var back DeadLetter
	if err := json.Unmarshal(v, &back); err != nil {
		t.Fatal(err)
	}
	if back.Document != nil || !back.PayloadTruncated || back.PayloadSize != len(controls) || len(back.Payload) == 0 ||
		!bytes.HasPrefix(controls, []byte(back.Payload)) {
		t.Fatalf("truncated %v size %d payload %d document %d", back.PayloadTruncated, back.PayloadSize, len(back.Payload), len(back.Document))
	}
	// A document that fits is kept, unescaped.
	d = DeadLetter{}
	d.SetPayload([]byte("x"))
	d.SetDocument([]byte(`{"a":"<b>"}`))
	if v := d.Marshal(); !bytes.Contains(v, []byte(`{"a":"<b>"}`)) {
		t.Fatalf("%s", v)
	}
}
