import CHydraShims

public enum HeapTuning {
    /// Serve allocations below `bytes` from the heap and keep freed memory there. Compute
    /// kernels allocate and free activations per call: as mmap'd blocks (glibc's default above
    /// 128 KiB) every call faults and zeroes fresh pages. Measured on SmolLM2 prefill: 1.2× faster.
    public static func keepLargeAllocationsInHeap(upTo bytes: Int = 1 << 30) {
        chydra_keep_large_allocations_in_heap(bytes)
    }
}
