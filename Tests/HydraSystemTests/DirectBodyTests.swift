import Foundation
import Glibc
import Testing
@testable import HydraSystem

/// The response-head parsing of the direct body path (the exchanges themselves run against a
/// real store server in HydraStoreTests/DirectBodyTransferTests).
@Suite struct DirectBodyHeadTests {
    func head(_ text: String) -> DirectBodyConnection.Head? {
        DirectBodyConnection.parseHead(Array(text.utf8)[...])
    }

    @Test func statusLengthAndConnection() {
        #expect(head("HTTP/1.1 206 Partial Content\r\nContent-Length: 42\r\nETag: \"x\"")
                == .init(status: 206, contentLength: 42, closes: false))
        #expect(head("HTTP/1.1 404 Not Found\r\ncontent-length:7\r\nConnection: close")
                == .init(status: 404, contentLength: 7, closes: true))
        #expect(head("HTTP/1.0 200 OK\r\nContent-Length: 0") == .init(status: 200, contentLength: 0, closes: true))
        #expect(head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive") == .init(status: 200, contentLength: 1, closes: false))
    }

    @Test func whatItCannotDelimitOrReadIsRefused() {
        #expect(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked") == .init(status: 200, contentLength: nil, closes: true))
        #expect(head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6") == nil)
        #expect(head("HTTP/1.1 200 OK\r\nContent-Length: -1") == nil)
        #expect(head("SSH-2.0-OpenSSH_9.2") == nil)
        #expect(head("HTTP/1.1 abc OK") == nil)
        #expect(head("") == nil)
    }

    @Test func blankLineIsFoundAcrossReads() {
        let bytes = Array("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody".utf8)
        #expect(DirectBodyConnection.blankLine(in: bytes[...], from: 0) == 21)
        #expect(DirectBodyConnection.blankLine(in: bytes[..<24], from: 0) == nil)
        #expect(DirectBodyConnection.blankLine(in: bytes[...], from: 20) == 21)
    }
}

/// A chunk connection's receive buffer is fixed at 4 MiB where `net.core.rmem_max` allows it,
/// and left to TCP's autotuning where it does not.
@Suite struct ReceiveBufferTests {
    @Test func fixedWhereTheKernelAllowsIt() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        func current() -> Int32 {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, &length)
            return value
        }
        let before = current()
        DirectBodyConnection.fixReceiveBuffer(fd)
        let limit = Int((try? String(contentsOfFile: "/proc/sys/net/core/rmem_max", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        if limit >= 4 << 20 {
            #expect(DirectBodyConnection.receiveBufferBytes == 4 << 20)
            #expect(current() >= 4 << 20, "the kernel keeps twice the request for its bookkeeping")
        } else {
            #expect(DirectBodyConnection.receiveBufferBytes == nil)
            #expect(current() == before)
        }
    }
}
