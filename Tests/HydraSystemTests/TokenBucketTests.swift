import Testing
@testable import HydraSystem

@Suite struct TokenBucketTests {
    @Test func burstThenTheRate() {
        // 1 MB/s, 100 kB burst, clock driven by the test.
        var bucket = TokenBucket(bytesPerSecond: 1_000_000, burstBytes: 100_000, nowNanoseconds: 0)
        #expect(bucket.take(100_000, nowNanoseconds: 0) == 0)              // the burst is free
        #expect(bucket.take(50_000, nowNanoseconds: 0) == 50_000_000)      // 50 kB of debt: 50 ms
        #expect(bucket.take(0, nowNanoseconds: 50_000_000) == 0)           // paid back after 50 ms
        #expect(bucket.take(10_000, nowNanoseconds: 60_000_000) == 0)      // 10 ms earned 10 kB
        #expect(bucket.take(1, nowNanoseconds: 60_000_000) == 1_000)
    }

    @Test func idleTimeNeverBanksMoreThanTheBurst() {
        var bucket = TokenBucket(bytesPerSecond: 1_000_000, burstBytes: 100_000, nowNanoseconds: 0)
        #expect(bucket.take(100_000, nowNanoseconds: 10_000_000_000) == 0)  // 10 s idle, still 100 kB
        #expect(bucket.take(100_000, nowNanoseconds: 10_000_000_000) == 100_000_000)
    }

    @Test func sustainedTransfersAverageTheRate() {
        // 64 kB pieces at 8 MB/s for 100 pieces: total wait ≈ (6.4 MB − burst) / rate.
        var bucket = TokenBucket(bytesPerSecond: 8_000_000, burstBytes: 80_000, nowNanoseconds: 0)
        var now: UInt64 = 0
        for _ in 0..<100 { now += bucket.take(65_536, nowNanoseconds: now) }
        let expected = Double(100 * 65_536 - 80_000) / 8_000_000
        #expect(abs(Double(now) / 1e9 - expected) < 0.001)
    }
}
