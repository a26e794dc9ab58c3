package schemas

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestDecodeDispatch(t *testing.T) {
	_, cl := testRegistry(t)
	dec := NewDecoder(WithRegistry(cl))
	ctx := context.Background()
	r := sampleRecord()
	single, _ := AppendSingleObject(nil, &r)
	confluent := mustEncode(t, NewConfluentEncoder(cl), testTopic, &r)
	js, _ := AppendJSON(nil, &r)

	tests := []struct {
		name       string
		in         []byte
		wantFormat Format
		wantErr    error
	}{
		{"single-object", single, FormatSingleObject, nil},
		{"confluent", confluent, FormatConfluent, nil},
		{"json", js, FormatJSON, nil},
		{"json after whitespace", append([]byte(" \r\n\t"), js...), FormatJSON, nil},
		{"empty", nil, FormatUnknown, ErrUnknownFormat},
		{"plain text", []byte("GET /healthz 200"), FormatUnknown, ErrUnknownFormat},
		{"text starting with a brace", []byte("{oops} something failed"), FormatUnknown, ErrUnknownFormat},
		{"json array", []byte(`[{"log":"x"}]`), FormatUnknown, ErrUnknownFormat},
		{"utf-8 text starting with C3", []byte("Ãrger im Büro"), FormatUnknown, ErrUnknownFormat},
		{"lone C3", []byte{0xC3}, FormatUnknown, ErrUnknownFormat},
		{"whitespace only", []byte("  \n"), FormatUnknown, ErrUnknownFormat},
		{"single-object, unknown fingerprint", append([]byte{0xC3, 0x01, 9, 9, 9, 9, 9, 9, 9, 9}, single[10:]...), FormatSingleObject, ErrUnknownSchema},
		{"single-object, truncated", single[:len(single)-1], FormatSingleObject, ErrMalformed},
		{"single-object, header only", single[:5], FormatSingleObject, ErrMalformed},
		{"confluent, truncated header", []byte{0, 0, 1}, FormatConfluent, ErrMalformed},
		{"confluent, unknown id", append([]byte{0, 0x7f, 0, 0, 0}, single[10:]...), FormatConfluent, ErrUnknownSchema},
		{"json, wrong field type", []byte(`{"log": 1}`), FormatJSON, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, f, err := dec.Decode(ctx, tt.in)
			if f != tt.wantFormat {
				t.Errorf("format = %v, want %v", f, tt.wantFormat)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mustEqualRecords(t, got, normalized(r))
		})
	}
}

func TestSniff(t *testing.T) {
	tests := []struct {
		in   string
		want Format
	}{
		{"", FormatUnknown},
		{"\xC3\x01", FormatSingleObject},
		{"\xC3\x02", FormatUnknown},
		{"\x00", FormatConfluent},
		{"{", FormatJSON},
		{"\t {", FormatJSON},
		{"x{", FormatUnknown},
		{"\v{", FormatUnknown}, // not JSON whitespace
	}
	for _, tt := range tests {
		if got := Sniff([]byte(tt.in)); got != tt.want {
			t.Errorf("Sniff(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEncoders(t *testing.T) {
	_, cl := testRegistry(t)
	dec := NewDecoder(WithRegistry(cl))
	r := sampleRecord()
	for _, enc := range []Encoder{SingleObjectEncoder{}, NewConfluentEncoder(cl), JSONEncoder{}} {
		t.Run(enc.Format().String(), func(t *testing.T) {
			b, err := enc.AppendEncode(context.Background(), []byte("prefix"), testTopic, &r)
			if err != nil {
				t.Fatal(err)
			}
			if string(b[:6]) != "prefix" {
				t.Fatal("did not append to dst")
			}
			got, f, err := dec.Decode(context.Background(), b[6:])
			if err != nil {
				t.Fatal(err)
			}
			if f != enc.Format() {
				t.Fatalf("decoded as %v", f)
			}
			mustEqualRecords(t, got, normalized(r))
		})
	}
}

func TestFormatNames(t *testing.T) {
	for _, f := range []Format{FormatSingleObject, FormatConfluent, FormatJSON} {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f, got, err)
		}
	}
	for _, s := range []string{"", "unknown", "AVRO", "protobuf"} {
		if _, err := ParseFormat(s); err == nil {
			t.Errorf("ParseFormat(%q) succeeded", s)
		}
	}
	if got := Format(99).String(); got != "Format(99)" {
		t.Errorf("Format(99).String() = %q", got)
	}
}

func TestReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, "other"},
		{errors.New("x"), "other"},
		{fmt.Errorf("ctx: %w", ErrUnknownFormat), "unknown_format"},
		{fmt.Errorf("ctx: %w", ErrUnknownSchema), "unknown_schema"},
		{fmt.Errorf("ctx: %w", ErrMalformed), "malformed"},
		{fmt.Errorf("ctx: %w", ErrNoRegistry), "no_registry"},
		{fmt.Errorf("ctx: %w: %w", ErrRegistry, context.Canceled), "registry"},
		{fmt.Errorf("ctx: %w", ErrInvalidRecord), "invalid_record"},
	} {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
