import CHydraShims

extension FileDescriptor {
    /// Starts writing this file's dirty pages to disk without waiting, so a later fsync finds
    /// most of the work done (the converter overlaps disk writes with conversion this way).
    /// Advisory: errors are ignored here and reported by fsync.
    public func startWriteback() {
        _ = chydra_start_writeback(rawValue)
    }
}
