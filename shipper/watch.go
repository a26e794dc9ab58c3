package shipper

import (
	"context"
	"errors"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// watcher turns inotify events into follower wakes, so that idle files cost
// nothing: no timer, no stat, no goroutine. It watches the directory of each
// follower's log file (writes, and the creates and renames of a rotation) and
// the directories of the globs (containers coming and going). A directory
// that cannot be watched (the node's inotify watch limit) leaves its followers
// to the poller.
type watcher struct {
	sh *Shipper
	w  *fsnotify.Watcher

	mu         sync.Mutex
	dirs       map[string]map[*follower]struct{}
	followerIn map[*follower]string
	globDirs   map[string]bool
}

func newWatcher(sh *Shipper) (*watcher, error) {
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return nil, err
	}
	wt := &watcher{sh: sh, w: w, dirs: map[string]map[*follower]struct{}{}, followerIn: map[*follower]string{}, globDirs: map[string]bool{}}
	for _, p := range sh.cfg.Paths {
		dir := filepath.Dir(p)
		if hasMeta(dir) {
			continue // the rescan finds files there
		}
		if err := w.Add(dir); err != nil {
			sh.log.Warn("cannot watch a glob's directory; new files are found by the rescan", "dir", dir, "err", err)
			continue
		}
		wt.globDirs[dir] = true
	}
	return wt, nil
}

// add watches dir for s. It reports false when dir cannot be watched.
func (w *watcher) add(dir string, s *follower) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if old, ok := w.followerIn[s]; ok {
		if old == dir {
			return true
		}
		w.removeLocked(s)
	}
	set, ok := w.dirs[dir]
	if !ok {
		if err := w.w.Add(dir); err != nil {
			w.sh.logLimited("watch", "cannot watch a log directory; its files are polled instead", "dir", dir, "err", err)
			return false
		}
		set = map[*follower]struct{}{}
		w.dirs[dir] = set
	}
	set[s] = struct{}{}
	w.followerIn[s] = dir
	return true
}

// forget stops watching for s.
func (w *watcher) forget(s *follower) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removeLocked(s)
}

func (w *watcher) removeLocked(s *follower) {
	dir, ok := w.followerIn[s]
	if !ok {
		return
	}
	delete(w.followerIn, s)
	set := w.dirs[dir]
	delete(set, s)
	if len(set) == 0 {
		delete(w.dirs, dir)
		if !w.globDirs[dir] {
			_ = w.w.Remove(dir)
		}
	}
}

// run dispatches events until ctx ends.
func (w *watcher) run(ctx context.Context) {
	var followers []*follower
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: look at everything.
				for _, s := range w.sh.followerList() {
					s.wake()
				}
				w.sh.requestRescan()
				continue
			}
			w.sh.logLimited("watch-error", "file watcher error", "err", err)
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			dir := filepath.Dir(ev.Name)
			w.mu.Lock()
			glob := w.globDirs[dir]
			followers = followers[:0]
			for s := range w.dirs[dir] {
				followers = append(followers, s)
			}
			w.mu.Unlock()
			if glob && !ev.Has(fsnotify.Write) {
				w.sh.requestRescan()
			}
			for _, s := range followers {
				if ev.Has(fsnotify.Write) {
					s.notify()
					continue
				}
				// A rotation: open the new files now, even while the
				// reader is held back, so they stay readable.
				s.follow()
				s.wake()
			}
		}
	}
}

func (w *watcher) close() { _ = w.w.Close() }
