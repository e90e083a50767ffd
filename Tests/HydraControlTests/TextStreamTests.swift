import Testing
@testable import HydraControl

/// Without a tokenizer a token's text is its id and a space: "7 " for 7.
@Suite struct TextStreamTests {
    @Test func stopStringsCutTheTextAndNoPartOfThemIsSent() {
        var text = TextStream(tokenizer: nil, stopTokens: [2], stopStrings: ["4 5"])
        #expect(text.push(3) == "3 ")
        #expect(text.push(4) == "", "could be the start of '4 5': held back")
        #expect(text.push(6) == "4 6 ", "it was not")
        #expect(text.push(4) == "")
        #expect(text.push(5) == "" && text.stopped)
        #expect(text.push(7) == "", "nothing after a stop")
    }

    @Test func theEndOfSequenceTokenAddsNoTextAndHeldTextIsFlushed() {
        var text = TextStream(tokenizer: nil, stopTokens: [2], stopStrings: ["9 9"])
        #expect(text.push(9) == "")
        #expect(text.push(2) == "")
        #expect(text.finish() == "9 ")
    }
}
