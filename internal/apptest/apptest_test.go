package apptest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv, in this test binary's environment, makes it a helper process
// of the tests instead of running them: its value is the helper's mode.
const helperEnv = "APPTEST_HELPER"

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(helperEnv); ok {
		os.Exit(helper(mode))
	}
	os.Exit(Main(m))
}

// helper is a small stand-in for a stage: "serve" serves /readyz on
// SLUICE_TELEMETRY_ADDR, holding 32 MiB, until SIGTERM, then exits 0;
// "ignore-term" ignores SIGTERM; "fail" exits 3; "nofile" prints its
// open-file limit.
func helper(mode string) int {
	switch mode {
	case "fail":
		fmt.Println("failing")
		return 3
	case "nofile":
		var l syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
		fmt.Println("nofile", l.Cur)
		return 0
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if mode == "ignore-term" {
		fmt.Println("ignoring SIGTERM")
		select {}
	}
	held := make([]byte, 32<<20)
	for i := range held {
		held[i] = 1
	}
	http.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	go func() { _ = http.ListenAndServe(os.Getenv("SLUICE_TELEMETRY_ADDR"), nil) }()
	fmt.Println("serving")
	<-term
	fmt.Println("stopping", len(held))
	return 0
}

// helperConfig runs this test binary as a helper in mode.
func helperConfig(mode string) Config {
	return Config{Name: mode, Bin: os.Args[0], Env: []string{helperEnv + "=" + mode}}
}

// TestLives: a process killed and started again adds up its lives; Stop
// ends a life with SIGTERM; neither counts as a failure.
func TestLives(t *testing.T) {
	cfg := helperConfig("serve")
	cfg.Telemetry = true
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(t.Context(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err == nil {
		t.Error("a second life started while the first runs")
	}
	p.SamplePeak()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); !Killed(err) {
		t.Errorf("after Kill: %v, want killed by SIGKILL", err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(t.Context(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Errorf("Stop: %v, want exit status 0", err)
	}
	u := p.Usage()
	if u.Starts != 2 || u.Kills != 1 || u.MaxRSS < 32<<20 || u.CPU() <= 0 {
		t.Errorf("usage %+v: want 2 starts, 1 kill, a peak over 32 MiB, some CPU time", u)
	}
	if out := p.Output(); strings.Count(out, "serving") != 2 || !strings.Contains(out, "stopping") {
		t.Errorf("output %q", out)
	}
	if f := p.Failures(); len(f) != 0 {
		t.Errorf("failures %v", f)
	}
}

// TestFailureAndLogFile: an exit nobody asked for is a failure naming the
// log file, which holds the output.
func TestFailureAndLogFile(t *testing.T) {
	cfg := helperConfig("fail")
	cfg.LogFile = filepath.Join(t.TempDir(), "fail.log")
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		var exit *exec.ExitError
		if err := p.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Errorf("Wait: %v, want exit status 3", err)
		}
	}
	f := p.Failures()
	if len(f) != 2 || !strings.Contains(f[0].Error(), "fail exited: exit status 3 (see "+cfg.LogFile+")") {
		t.Errorf("failures %v", f)
	}
	if b, _ := os.ReadFile(cfg.LogFile); string(b) != "failing\nfailing\n" {
		t.Errorf("log file %q", b)
	}
	if err := p.WaitReady(t.Context(), time.Second); err == nil {
		t.Error("WaitReady without telemetry succeeded")
	}
}

// TestStopTimeout: a process that ignores SIGTERM is killed after the
// timeout, and Stop says so.
func TestStopTimeout(t *testing.T) {
	p := Start(t, helperConfig("ignore-term"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for !strings.Contains(p.Output(), "ignoring SIGTERM") && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	err := p.Stop(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not exit within 200ms of SIGTERM") || !Killed(p.Wait()) {
		t.Errorf("Stop: %v; Wait: %v", err, p.Wait())
	}
	if f := p.Failures(); len(f) != 0 {
		t.Errorf("failures %v", f)
	}
}

// TestWrapper: a wrapper's command line runs the binary with its
// arguments, here under an open-file limit.
func TestWrapper(t *testing.T) {
	cfg := helperConfig("nofile")
	cfg.Wrapper = []string{"/bin/sh", "-c", `ulimit -n 64 && exec "$0" "$@"`}
	p := Start(t, cfg)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if out := p.Output(); out != "nofile 64\n" {
		t.Errorf("output %q", out)
	}
}

// TestBinary builds the sluice binaries once and runs them.
func TestBinary(t *testing.T) {
	bin := Binary(t)
	if Binary(t) != bin {
		t.Error("built twice")
	}
	p := Sluice(t, nil, "version")
	if err := p.Wait(); err != nil || !strings.HasPrefix(p.Output(), "sluice ") {
		t.Errorf("sluice version: %v, %q", err, p.Output())
	}
	// The production build has no sluice dev; the full build has.
	for bin, want := range map[string]string{bin: "Not in this build", DevBinary(t): "Runs the whole pipeline in one process"} {
		p := Start(t, Config{Bin: bin, Args: []string{"dev", "--help"}, Dir: t.TempDir()})
		_ = p.Wait()
		if !strings.Contains(p.Output(), want) {
			t.Errorf("%s dev --help: %q, want %q", bin, p.Output(), want)
		}
	}
}

// TestReadProc reads this process's usage.
func TestReadProc(t *testing.T) {
	u, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.HWM < u.RSS || u.CPU < 0 {
		t.Errorf("%+v", u)
	}
	if _, err := ReadProc(-1); err == nil {
		t.Error("no error for pid -1")
	}
}
