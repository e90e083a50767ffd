import HydraTestSupport
import Testing
@testable import HydraStore

@Suite struct ByteRangeTests {
    @Test func resolvesTheRFCForms() {
        #expect(ByteRange.resolve(nil, length: 100) == .whole)
        #expect(ByteRange.resolve("items=0-5", length: 100) == .whole)  // not a byte range: ignored
        #expect(ByteRange.resolve("bytes=0-9", length: 100) == .partial(ByteRange(first: 0, last: 9)))
        #expect(ByteRange.resolve("bytes=90-", length: 100) == .partial(ByteRange(first: 90, last: 99)))
        #expect(ByteRange.resolve("bytes=-5", length: 100) == .partial(ByteRange(first: 95, last: 99)))
        #expect(ByteRange.resolve("bytes=-500", length: 100) == .partial(ByteRange(first: 0, last: 99)))
        #expect(ByteRange.resolve("bytes=50-5000", length: 100) == .partial(ByteRange(first: 50, last: 99)))
        #expect(ByteRange.resolve(" bytes=1-2 ", length: 100) == .partial(ByteRange(first: 1, last: 2)))
        #expect(ByteRange.resolve("\tbytes= 3 -\t4", length: 100) == .partial(ByteRange(first: 3, last: 4)))
        #expect(ByteRange.resolve("bytes=7-99999999999999999999", length: 100) == .unsatisfiable)  // past Int.max
    }

    @Test func refusesWhatCannotBeServed() {
        for header in ["bytes=100-", "bytes=5-1", "bytes=-0", "bytes=a-b", "bytes=0-1,4-5", "bytes=", "bytes=-", "bytes=-1-2",
                       "bytes=+5-9", "bytes=5-+9", "bytes=0x10-", "bytes=99999999999999999999-", "bytes=1 2-3"] {
            #expect(ByteRange.resolve(header, length: 100) == .unsatisfiable, "\(header)")
        }
        #expect(ByteRange.resolve("bytes=-1", length: 0) == .unsatisfiable)
    }
}
