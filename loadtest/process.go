package loadtest

import "github.com/sluicelogs/sluice/internal/apptest"

// process is one stage process (shipper, router or indexer replica): the
// real sluice binary, run by internal/apptest and started again after every
// kill, its output appended to its log file. Its CPU time and peak resident
// memory add up over its lives.
type process struct {
	*apptest.Process
	stage string
}

func newProcess(name, stage, bin, logPath string, env []string) (*process, error) {
	p, err := apptest.New(apptest.Config{Name: name, Bin: bin, Args: []string{stage},
		Env: append(env, "SLUICE_LOG_FORMAT=json"), LogFile: logPath, Telemetry: true})
	if err != nil {
		return nil, err
	}
	return &process{Process: p, stage: stage}, nil
}
