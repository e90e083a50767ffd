import Foundation
import Glibc

/// A bounded FIFO between threads: `put` waits while full, `take` waits while empty and
/// returns nil once the queue is closed and drained. For pipelines of dedicated threads
/// (never the cooperative pool).
public final class BlockingQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var head = 0
    private var closed = false
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public func put(_ item: Element) {
        condition.lock()
        defer { condition.unlock() }
        precondition(!closed, "put on a closed queue")
        while items.count - head >= capacity { condition.wait() }
        items.append(item)
        condition.broadcast()
    }

    public func take() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.count == head && !closed { condition.wait() }
        guard items.count > head else { return nil }
        let item = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return item
    }

    /// No more puts; takers drain what is left, then get nil.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// A page-aligned buffer that can be handed between threads by reference.
public final class SharedBuffer: @unchecked Sendable {
    public let baseAddress: UnsafeMutableRawPointer
    public let count: Int

    public init(count: Int, alignment: Int = AlignedBuffer.pageBytes) {
        var pointer: UnsafeMutableRawPointer?
        precondition(posix_memalign(&pointer, alignment, max(count, 1)) == 0 && pointer != nil, "posix_memalign(\(count)) failed")
        baseAddress = pointer!
        self.count = count
    }

    deinit { free(baseAddress) }

    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: baseAddress, count: count) }
}
