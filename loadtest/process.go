package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one stage process (shipper, router or indexer replica): the
// real sluice binary, started again after every kill. Its CPU time and peak
// resident memory are summed over its lives from the kernel's rusage.
type process struct {
	name    string // e.g. router-1
	stage   string
	bin     string
	env     []string
	logPath string
	metrics string // host:port of its telemetry server

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
	kills  int
	cpu    time.Duration // user + system, of ended lives
	// maxRSS is the largest VmHWM (peak resident set) read from
	// /proc/<pid>/status over all lives. Not the rusage's ru_maxrss: Linux
	// folds the parent's resident set at fork into a child's ru_maxrss, so
	// a child of a big harness would report the harness's memory.
	maxRSS   int64
	unexpect []error // exits nobody asked for
}

func newProcess(name, stage, bin, logPath string, env []string) (*process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env = append(env, "SLUICE_TELEMETRY_ADDR="+addr, "SLUICE_LOG_FORMAT=json")
	return &process{name: name, stage: stage, bin: bin, env: env, logPath: logPath, metrics: addr}, nil
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start starts a new life of the process; its output is appended to its
// log file.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.stage)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	p.starts++
	exited := p.exited
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		if st := cmd.ProcessState; st != nil {
			p.cpu += st.UserTime() + st.SystemTime()
		}
		if p.cmd == cmd && err != nil { // not killed or stopped by us
			p.unexpect = append(p.unexpect, fmt.Errorf("%s exited: %w (see %s)", p.name, err, p.logPath))
		}
		close(exited)
	}()
	return nil
}

// kill sends SIGKILL, waits for the process to end, and starts it again.
func (p *process) kill() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.kills++
	p.mu.Unlock()
	if cmd == nil {
		return errors.New(p.name + " is not running")
	}
	p.notePeak(cmd.Process.Pid)
	_ = cmd.Process.Kill()
	<-exited
	return p.start()
}

// stop ends the process with SIGTERM, as Kubernetes does, and SIGKILL
// after timeout.
func (p *process) stop(timeout time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	p.notePeak(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// usage returns the CPU time and peak RSS of the ended lives.
func (p *process) usage() (cpu time.Duration, maxRSS int64, starts, kills int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cpu, p.maxRSS, p.starts, p.kills
}

// failures returns the exits nobody asked for.
func (p *process) failures() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.unexpect...)
}

// waitReady waits until the process's /readyz answers 200.
func (p *process) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if ok, _ := getOK(ctx, "http://"+p.metrics+"/readyz"); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s (see %s)", p.name, timeout, p.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// samplePeak reads the running life's peak resident set.
func (p *process) samplePeak() {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil {
		p.notePeak(cmd.Process.Pid)
	}
}

func (p *process) notePeak(pid int) {
	hwm := readHWM(pid)
	p.mu.Lock()
	p.maxRSS = max(p.maxRSS, hwm)
	p.mu.Unlock()
}

// readHWM returns VmHWM of /proc/<pid>/status in bytes, 0 when unknown.
func readHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
