package apptest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ProcStat is a running process's resource use, from /proc.
type ProcStat struct {
	CPU time.Duration // user plus system time so far
	RSS int64         // resident set now (VmRSS), bytes
	HWM int64         // peak resident set so far (VmHWM), bytes
}

// clockTick is the unit of the times in /proc/<pid>/stat (USER_HZ, 100 on
// Linux whatever the kernel's HZ).
const clockTick = 10 * time.Millisecond

// ReadProc reads the usage of process pid from /proc/<pid>/stat and
// /proc/<pid>/status (Linux only).
func ReadProc(pid int) (ProcStat, error) {
	var u ProcStat
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return u, err
	}
	// The command name, in parentheses, may hold spaces: the fields
	// counted from 3 (state) start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, errors.New("apptest: " + dir + "/stat: no command name")
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return u, errors.New("apptest: " + dir + "/stat: too few fields")
	}
	user, err1 := strconv.ParseInt(string(f[11]), 10, 64) // field 14, utime
	sys, err2 := strconv.ParseInt(string(f[12]), 10, 64)  // field 15, stime
	if err := errors.Join(err1, err2); err != nil {
		return u, fmt.Errorf("apptest: %s/stat: %w", dir, err)
	}
	u.CPU = time.Duration(user+sys) * clockTick
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return u, err
	}
	for line := range bytes.Lines(status) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(k) {
		case "VmRSS":
			dst = &u.RSS
		case "VmHWM":
			dst = &u.HWM
		default:
			continue
		}
		kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
		if err != nil {
			return u, fmt.Errorf("apptest: %s/status: %s: %w", dir, k, err)
		}
		*dst = kb << 10
	}
	return u, nil
}
