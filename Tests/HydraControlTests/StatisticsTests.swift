import Testing
@testable import HydraControl

/// The benchmarks' medians and the bootstrap intervals their ratios are quoted with.
@Suite struct StatisticsTests {
    @Test func medianOfOddAndEvenCounts() {
        #expect(median([3, 1, 2]) == 2)
        #expect(median([4, 1, 3, 2]) == 2.5)
        #expect(median([]).isNaN)
    }

    @Test func percentileIsNearestRank() {
        let values = (1...20).map(Double.init)
        #expect(percentile(values, 0.05) == 1 && percentile(values, 0.5) == 10 && percentile(values, 0.95) == 19 && percentile(values, 1) == 20)
    }

    @Test func identicalRunsGiveAPointInterval() throws {
        let runs = [0.20, 0.22, 0.19, 0.25, 0.21]
        let interval = try #require(ratioOfMediansInterval(runs, runs))
        #expect(interval == 1...1)  // paired: every resample takes the same rounds from both sides
    }

    @Test func theIntervalHoldsTheRatioAndExcludesATieWhenOneSideIsClearlyFaster() throws {
        let slow = (0..<15).map { 0.40 + 0.01 * Double($0 % 5) }, fast = (0..<15).map { 0.20 + 0.01 * Double($0 % 3) }
        let ratio = median(slow) / median(fast)
        let interval = try #require(ratioOfMediansInterval(slow, fast))
        #expect(interval.contains(ratio))
        #expect(interval.lowerBound > 1.7 && interval.upperBound < 2.3)
    }

    @Test func noisierRunsWidenTheIntervalAndATieSpansOne() throws {
        let base = [1.0, 1.1, 0.9, 1.05, 0.95, 1.2, 0.8, 1.02, 0.98, 1.0, 1.15, 0.85]
        let quiet = try #require(ratioOfMediansInterval(base, base.reversed()))
        let noisy = try #require(ratioOfMediansInterval(base.map { 1 + ($0 - 1) * 4 }, base.reversed().map { 1 + ($0 - 1) * 4 }))
        #expect(quiet.contains(1) && noisy.contains(1))
        #expect(noisy.upperBound - noisy.lowerBound > quiet.upperBound - quiet.lowerBound)
    }

    @Test func sameRunsSameIntervalAndTooFewRunsNone() {
        let a = [1.0, 1.3, 0.9, 1.1, 1.2], b = [0.5, 0.7, 0.6, 0.55, 0.65, 0.6]  // unequal counts: resampled apart
        #expect(ratioOfMediansInterval(a, b) == ratioOfMediansInterval(a, b))
        #expect(ratioOfMediansInterval(a, b)!.lowerBound > 1)
        #expect(ratioOfMediansInterval([1, 2], [1, 2, 3]) == nil)
    }
}
