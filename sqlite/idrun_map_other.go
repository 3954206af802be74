//go:build !unix

package sqlite

// mapFile leaves the run to be read with pread where mapping is not
// available.
func (r *idRun) mapFile() {}

func (r *idRun) unmapFile() {}
