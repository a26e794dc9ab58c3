package router

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicelogs/sluice/schemas"
)

var updateGolden = flag.Bool("update-router", false, "rewrite router/testdata/golden/*/output.jsonl")

// goldenOutcome is one line of output.jsonl.
type goldenOutcome struct {
	Dataset string          `json:"dataset,omitempty"`
	Dropped bool            `json:"dropped,omitempty"`
	DLQ     *goldenFailure  `json:"dlq,omitempty"`
	Record  *schemas.Record `json:"record,omitempty"`
}

type goldenFailure struct {
	Step     int    `json:"step"`
	StepType string `json:"step_type"`
	Reason   string `json:"reason"`
	Error    string `json:"error"`
}

// TestGolden runs each testdata/golden/<name>/pipeline.yaml (loaded with
// its own tests) over input.jsonl and compares with output.jsonl.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden dirs: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(dir, "pipeline.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			p, err := Load(src)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			in, err := os.ReadFile(filepath.Join(dir, "input.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			sc := bufio.NewScanner(bytes.NewReader(in))
			for sc.Scan() {
				var r schemas.Record
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
					t.Fatalf("input: %v", err)
				}
				r.Tenant = p.Tenant
				res := p.Process(&r)
				o := goldenOutcome{Dataset: res.Dataset, Dropped: res.Dropped}
				switch {
				case res.DLQ != nil:
					o.DLQ = &goldenFailure{res.DLQ.Step, res.DLQ.StepType, res.DLQ.Reason, res.DLQ.Err.Error()}
				case !res.Dropped:
					o.Record = &r
				}
				b, err := json.Marshal(o)
				if err != nil {
					t.Fatal(err)
				}
				out.Write(b)
				out.WriteByte('\n')
			}
			golden := filepath.Join(dir, "output.jsonl")
			if *updateGolden {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./router -run TestGolden -update-router)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s\ngot:\n%s\nwant:\n%s", golden, out.Bytes(), want)
			}
		})
	}
}
