import Foundation

/// A token bucket: `bytesPerSecond` sustained, `burstBytes` at most at once. Pure state driven
/// by the caller's clock (tests inject it); `SharedTokenBucket` wraps it for threads.
public struct TokenBucket: Sendable {
    public let bytesPerSecond: Double
    public let burstBytes: Double
    private var tokens: Double
    private var lastNanoseconds: UInt64

    public init(bytesPerSecond: Double, burstBytes: Double, nowNanoseconds: UInt64) {
        precondition(bytesPerSecond > 0 && burstBytes > 0)
        self.bytesPerSecond = bytesPerSecond
        self.burstBytes = burstBytes
        tokens = burstBytes
        lastNanoseconds = nowNanoseconds
    }

    /// Takes `bytes` tokens (going into debt if needed) and returns how long the caller must
    /// wait, in nanoseconds, before those bytes are within the rate.
    public mutating func take(_ bytes: Int, nowNanoseconds: UInt64) -> UInt64 {
        if nowNanoseconds > lastNanoseconds {
            tokens = min(burstBytes, tokens + Double(nowNanoseconds - lastNanoseconds) * bytesPerSecond / 1e9)
            lastNanoseconds = nowNanoseconds
        }
        tokens -= Double(bytes)
        return tokens >= 0 ? 0 : UInt64((-tokens / bytesPerSecond * 1e9).rounded(.up))
    }
}

/// A token bucket shared by every connection of a node: an emulated NIC.
public final class SharedTokenBucket: @unchecked Sendable {
    private let lock = NSLock()
    private var bucket: TokenBucket

    /// `gigabitsPerSecond` of payload; bursts of 1/100 s.
    public init(gigabitsPerSecond: Double) {
        let rate = gigabitsPerSecond * 1e9 / 8
        bucket = TokenBucket(bytesPerSecond: rate, burstBytes: max(64 * 1024, rate / 100),
                             nowNanoseconds: DispatchTime.now().uptimeNanoseconds)
    }

    /// Accounts for `bytes` received and sleeps this thread until they fit the rate.
    public func consume(_ bytes: Int) {
        let wait = lock.withLock { bucket.take(bytes, nowNanoseconds: DispatchTime.now().uptimeNanoseconds) }
        if wait > 0 { Thread.sleep(forTimeInterval: Double(wait) / 1e9) }
    }
}
