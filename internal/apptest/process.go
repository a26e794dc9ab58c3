package apptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/testwait"
)

// Config says how to run a process.
type Config struct {
	// Name names the process in messages (e.g. router-1); default: its
	// first argument.
	Name string
	// Bin is the binary; Start(t, ...) defaults it to Binary(t).
	Bin  string
	Args []string
	// Env is added to this process's environment; with OnlyEnv it is the
	// whole environment.
	Env     []string
	OnlyEnv bool
	// Dir is the working directory; "" is this process's.
	Dir string
	// Wrapper, when set, is the command line run instead, with the binary
	// and its arguments appended: a shell that sets a limit and execs
	// them, say ({"/bin/sh", "-c", `ulimit -n 64 && exec "$0" "$@"`}).
	Wrapper []string
	// LogFile receives the output (standard output and error) of every
	// life, appended; "" keeps it in memory (Output).
	LogFile string
	// Telemetry serves the process's /metrics, /healthz and /readyz on a
	// loopback port free at New (SLUICE_TELEMETRY_ADDR, after Env): see
	// MetricsAddr and WaitReady.
	Telemetry bool
}

// Process is a binary run as a child process, possibly several times: each
// Start begins a new life (after Kill, say), and its CPU time, peak
// resident memory, starts and kills add up over its lives.
type Process struct {
	cfg     Config
	name    string
	metrics string // host:port of its telemetry server, "" without

	out syncBuffer // the output, without a LogFile

	mu     sync.Mutex
	cur    *life // the current (or last) life; nil before the first start
	starts int
	kills  int
	user   time.Duration // CPU time of ended lives
	system time.Duration
	// maxRSS is the largest VmHWM (peak resident set) read from
	// /proc/<pid>/status over all lives, at Kill, Stop and SamplePeak.
	// Not the rusage's ru_maxrss: Linux folds the parent's resident set at
	// fork into a child's ru_maxrss, so a child of a big test or harness
	// would report the parent's memory.
	maxRSS     int64
	unexpected []error
}

// life is one run of the process.
type life struct {
	cmd   *exec.Cmd
	done  chan struct{} // closed when it has ended
	err   error         // how it ended; set before done is closed
	asked bool          // ended by Kill or Stop
}

// New returns the process cfg describes, not started.
func New(cfg Config) (*Process, error) {
	p := &Process{cfg: cfg, name: cfg.Name}
	if p.name == "" && len(cfg.Args) > 0 {
		p.name = cfg.Args[0]
	}
	if cfg.Telemetry {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p.metrics = addr
		p.cfg.Env = append(append([]string(nil), cfg.Env...), "SLUICE_TELEMETRY_ADDR="+addr)
	}
	return p, nil
}

// freeAddr returns a loopback address with a port free at the time.
// FreeAddr returns a loopback address (127.0.0.1:port) free now, for a
// process under test to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start starts a new life of the process; the last must have ended.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && !p.cur.ended() {
		return fmt.Errorf("start %s: it is running", p.name)
	}
	var out io.Writer = &p.out
	var f *os.File
	if p.cfg.LogFile != "" {
		var err error
		if f, err = os.OpenFile(p.cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
		out = f
	}
	argv := append(append(append([]string(nil), p.cfg.Wrapper...), p.cfg.Bin), p.cfg.Args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = p.cfg.Dir
	cmd.Env = p.cfg.Env
	if !p.cfg.OnlyEnv {
		cmd.Env = append(os.Environ(), p.cfg.Env...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		if f != nil {
			f.Close()
		}
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	l := &life{cmd: cmd, done: make(chan struct{})}
	p.cur = l
	p.starts++
	go func() {
		err := cmd.Wait()
		if f != nil {
			f.Close()
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if st := cmd.ProcessState; st != nil {
			p.user += st.UserTime()
			p.system += st.SystemTime()
		}
		if err != nil && !l.asked {
			where := ""
			if p.cfg.LogFile != "" {
				where = " (see " + p.cfg.LogFile + ")"
			}
			p.unexpected = append(p.unexpected, fmt.Errorf("%s exited: %w%s", p.name, err, where))
		}
		l.err = err
		close(l.done)
	}()
	return nil
}

func (l *life) ended() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// current returns the current life, marked as ended by the caller when
// asked is true.
func (p *Process) current(asked bool) (*life, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil, fmt.Errorf("%s was never started", p.name)
	}
	if asked {
		p.cur.asked = true
	}
	return p.cur, nil
}

// Name names the process in messages.
func (p *Process) Name() string { return p.name }

// Pid is the process id of the current (or last) life, 0 before the first
// start.
func (p *Process) Pid() int {
	l, err := p.current(false)
	if err != nil {
		return 0
	}
	return l.cmd.Process.Pid
}

// Done is closed when the current life ends.
func (p *Process) Done() <-chan struct{} {
	l, err := p.current(false)
	if err != nil {
		return nil
	}
	return l.done
}

// Wait waits for the current life to end and returns how it ended: nil for
// exit status 0, else an *exec.ExitError (see Killed).
func (p *Process) Wait() error {
	l, err := p.current(false)
	if err != nil {
		return err
	}
	<-l.done
	return l.err
}

// Killed reports whether err, from Wait, says the process was killed by
// SIGKILL.
func Killed(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Signal sends sig to the current life; an ending it causes is not
// counted as a failure if sig is SIGTERM, SIGKILL or SIGQUIT.
func (p *Process) Signal(sig os.Signal) error {
	asked := sig == syscall.SIGTERM || sig == syscall.SIGKILL || sig == syscall.SIGQUIT
	l, err := p.current(asked)
	if err != nil {
		return err
	}
	return l.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to the current life and waits for it to end (Wait
// tells how it did: Killed, unless it had ended before). It fails only for
// a process never started.
func (p *Process) Kill() error {
	l, err := p.current(true)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.kills++
	p.mu.Unlock()
	p.notePeak(l.cmd.Process.Pid)
	_ = l.cmd.Process.Kill()
	<-l.done
	return nil
}

// Restart kills the current life (SIGKILL) and starts a new one.
func (p *Process) Restart() error {
	if err := p.Kill(); err != nil {
		return err
	}
	return p.Start()
}

// Stop ends the current life with SIGTERM, as Kubernetes does, and with
// SIGKILL if it has not ended after timeout. It returns how the life ended
// (nil: exit status 0), or an error saying it had to be killed.
func (p *Process) Stop(timeout time.Duration) error {
	l, err := p.current(true)
	if err != nil {
		return err
	}
	if l.ended() {
		return l.err
	}
	p.notePeak(l.cmd.Process.Pid)
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
		return l.err
	case <-time.After(timeout):
		_ = l.cmd.Process.Kill()
		<-l.done
		return fmt.Errorf("%s did not exit within %s of SIGTERM: killed", p.name, timeout)
	}
}

// Usage is a process's resource use over its lives.
type Usage struct {
	User, System time.Duration // CPU time of the lives that ended
	// MaxRSS is the largest peak resident set read (at Kill, Stop and
	// SamplePeak), bytes.
	MaxRSS int64
	Starts int // lives started; the restarts are Starts-1
	Kills  int // lives ended by Kill
}

// CPU is the user and system time.
func (u Usage) CPU() time.Duration { return u.User + u.System }

// Usage returns the process's resource use so far.
func (p *Process) Usage() Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Usage{User: p.user, System: p.system, MaxRSS: p.maxRSS, Starts: p.starts, Kills: p.kills}
}

// Failures returns the lives that ended with an error nobody asked for
// (not through Kill, Stop or Signal).
func (p *Process) Failures() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.unexpected...)
}

// SamplePeak reads the running life's peak resident set into
// Usage().MaxRSS.
func (p *Process) SamplePeak() {
	if l, err := p.current(false); err == nil && !l.ended() {
		p.notePeak(l.cmd.Process.Pid)
	}
}

func (p *Process) notePeak(pid int) {
	st, err := ReadProc(pid)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.maxRSS = max(p.maxRSS, st.HWM)
	p.mu.Unlock()
}

// MetricsAddr is the host:port of the process's telemetry server ("" unless
// Config.Telemetry).
func (p *Process) MetricsAddr() string { return p.metrics }

// Output returns what the process's lives wrote, when kept in memory (no
// Config.LogFile).
func (p *Process) Output() string { return p.out.String() }

var httpClient = &http.Client{Timeout: 5 * time.Second}

// WaitReady waits until the process's /readyz answers 200 (it needs
// Config.Telemetry), for at most timeout.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration) error {
	if p.metrics == "" {
		return fmt.Errorf("%s serves no /readyz: Config.Telemetry is off", p.name)
	}
	url := "http://" + p.metrics + "/readyz"
	err := testwait.Until(ctx, timeout, p.name+" to be ready ("+url+")", func() (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		res, err := httpClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode == http.StatusOK, res.Status
	})
	if err != nil && p.cfg.LogFile != "" {
		return fmt.Errorf("%w (see %s)", err, p.cfg.LogFile)
	}
	return err
}

// Start starts a process for a test: the binary Binary built unless
// cfg.Bin is set, its output kept in memory unless cfg.LogFile is set. At
// the end of the test, a life still running is killed and, if the test
// failed, the output is logged (its last 1000 lines).
func Start(t testing.TB, cfg Config) *Process {
	t.Helper()
	if cfg.Bin == "" {
		cfg.Bin = Binary(t)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, _ := p.current(false); l != nil && !l.ended() {
			_ = p.Kill()
		}
		if t.Failed() && cfg.LogFile == "" {
			t.Logf("output of %s (pid %d):\n%s", p.name, p.Pid(), lastLines(p.Output(), 1000))
		}
	})
	return p
}

// Sluice starts the sluice binary for a test with args, and env added to
// the environment: Start with Config{Args: args, Env: env}.
func Sluice(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	return Start(t, Config{Args: args, Env: env})
}

// Terminate ends the process with SIGTERM and fails the test unless it
// exits with status 0 within 30 seconds.
func (p *Process) Terminate(t testing.TB) {
	t.Helper()
	if l, err := p.current(false); err != nil {
		t.Fatal(err)
	} else if l.ended() {
		t.Fatalf("%s ended before SIGTERM: %v", p.name, l.err)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Errorf("%s after SIGTERM: %v, want exit status 0", p.name, err)
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// syncBuffer is a buffer written by the process's output copier and read
// by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(b)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
