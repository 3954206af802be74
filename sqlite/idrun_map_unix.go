//go:build unix

package sqlite

import "syscall"

// mapFile maps a run's file read-only, so that reading a block is a copy
// from memory rather than a system call. A run's file never changes once
// written; one that cannot be mapped is read with pread.
func (r *idRun) mapFile() {
	fi, err := r.f.Stat()
	if err != nil || fi.Size() == 0 || fi.Size() != int64(int(fi.Size())) {
		return
	}
	data, err := syscall.Mmap(int(r.f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err == nil {
		r.data = data
	}
}

func (r *idRun) unmapFile() {
	if r.data != nil {
		syscall.Munmap(r.data)
		r.data = nil
	}
}
