import Glibc
import HydraFormat
import HydraSystem
import Logging
import NIOCore
import NIOHTTP1

/// Sits under Hummingbird's HTTP codec on every store server. Over plain HTTP with sendfile on
/// (`answersWarm`), it sends chunk bytes from the page cache to the socket by sendfile, as one
/// file region with no copy through user space — the way nginx serves static files. Two ways in:
/// - **Warm chunk GETs are answered here**, as the event loop reads them: a `GET /v1/chunks/HASH`
///   (optionally with one Range) whose bytes the page cache holds, authorised when a token is
///   set, is answered without the generic pipeline above (HTTP types, the async channel, the
///   router). Everything else — other paths, HEAD, a cold range, a bad range, an unknown chunk,
///   a missing token, HTTP/1.0 — goes up to the router, which answers it as before; so does
///   every request that arrives while an answer from up there is still being written, so that
///   pipelined answers leave in the order they were asked.
/// - **A route's head carrying `header`** ("HASH FIRST LAST", set by the chunk route, never sent)
///   is turned into that head followed by the chunk file's bytes FIRST…LAST; the route's own
///   body is empty and its end part follows the region.
///
/// On every server, it keeps a graceful shutdown from cutting answers short: the connection
/// handler above closes an idle connection at once and a busy one right after writing its last
/// part, and a close drops whatever the socket has not taken yet (most of a large chunk, sent at
/// the reader's pace). Here that close waits until every part written is out, `drainSeconds` at
/// most.
final class SendfileHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    static let header = "x-hydra-sendfile"
    static let chunkPrefix = "/v1/chunks/"
    /// TCP_CORK: while set, only full segments leave (NIO turns Nagle off on every socket).
    static let cork = ChannelOptions.tcpOption(NIOBSDSocket.Option(rawValue: TCP_CORK))
    /// Warm answers written and not yet sent, at most; past it requests go up to the router,
    /// whose async channel stops reading when its handlers fall behind.
    static let maxWarmInFlight = 16
    /// How long a close waits for the answers being sent (a reader that stopped reading).
    static let drainSeconds: Int64 = 30

    let store: StoreDirectory
    /// Whether warm chunk GETs are answered here (false over TLS or with sendfile off: then
    /// this handler only keeps closes from cutting answers short).
    let answersWarm: Bool
    /// The bearer token every chunk request needs (nil: none).
    let token: String?
    let serverName: String
    let counters: StoreServerCounters
    let logger: Logger
    /// File regions written and not yet sent: pipelined responses queue behind each other, and
    /// the socket stays corked until the last one is out.
    private var regionsInFlight = 0
    /// Requests passed up to the router whose answers have not ended.
    private var passedUp = 0
    /// The warm chunk GET being read: answered at its end part (a GET's body is dropped).
    private var warm: WarmAnswer?
    private var warmInFlight = 0
    /// Parts written (here or above) and not yet sent.
    private var writesInFlight = 0
    /// A close waiting for `writesInFlight` to reach 0.
    private var pendingClose: (promise: EventLoopPromise<Void>?, deadline: Scheduled<Void>)?
    /// The connection is closing (asked to, or after answering `Connection: close`): nothing
    /// more is read.
    private var closing = false
    private var date = HTTPDate()

    init(store: StoreDirectory, answersWarm: Bool, token: String?, serverName: String, counters: StoreServerCounters, logger: Logger) {
        self.store = store
        self.answersWarm = answersWarm
        self.token = token
        self.serverName = serverName
        self.counters = counters
        self.logger = logger
    }

    /// The header's value for `first…last` of chunk `hash`.
    static func value(hash: String, first: Int, last: Int) -> String { "\(hash) \(first) \(last)" }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if answersWarm, passedUp == 0, warmInFlight < Self.maxWarmInFlight, let answer = warmAnswer(head) {
                warm = answer
                return
            }
            passedUp += 1
        case .body:
            if warm != nil { return }
        case .end:
            if let answer = warm {
                warm = nil
                send(answer, context: context)
                return
            }
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Gone before its request's end: the file opened for the answer is closed here.
        if let answer = warm { Glibc.close(answer.fd) }
        warm = nil
        context.fireChannelInactive()
    }

    /// A warm chunk GET's answer, or nil to pass the request up. The file is open from here on.
    struct WarmAnswer {
        let head: HTTPResponseHead
        let fd: Int32
        let range: ByteRange
        let close: Bool
    }

    private func warmAnswer(_ request: HTTPRequestHead) -> WarmAnswer? {
        guard request.method == .GET, request.version == .http1_1, request.uri.hasPrefix(Self.chunkPrefix) else { return nil }
        let hash = request.uri.dropFirst(Self.chunkPrefix.count)
        let ranges = request.headers["range"]
        guard isSHA256Hex(hash), ranges.count <= 1, !request.headers.contains(name: "expect"),
              bearerTokenMatches(request.headers.first(name: "authorization"), token) else { return nil }
        let fd = open(store.chunkPath(String(hash)), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size > 0 else {
            Glibc.close(fd)
            return nil
        }
        guard let (range, contentRange) = ByteRange.selection(ranges.first, length: Int(info.st_size)) else {
            Glibc.close(fd)
            return nil
        }
        let residency = PageCache.residency(fd: fd, offset: range.first, length: range.count)
        guard residency != .cold else {
            Glibc.close(fd)
            return nil
        }
        // The few pages reclaim may have dropped are read back in ahead of the send.
        if residency == .mostly { _ = posix_fadvise(fd, off_t(range.first), off_t(range.count), POSIX_FADV_WILLNEED) }
        var headers = HTTPHeaders()
        headers.reserveCapacity(9)
        headers.add(name: "Accept-Ranges", value: "bytes")
        headers.add(name: "ETag", value: "\"\(hash)\"")
        headers.add(name: "Content-Type", value: "application/octet-stream")
        if let contentRange { headers.add(name: "Content-Range", value: contentRange) }
        headers.add(name: "Content-Length", value: String(range.count))
        headers.add(name: "Date", value: date.now())
        headers.add(name: "Server", value: serverName)
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        return WarmAnswer(head: HTTPResponseHead(version: .http1_1, status: contentRange == nil ? .ok : .partialContent, headers: headers), fd: fd, range: range, close: !keepAlive)
    }

    private func send(_ answer: WarmAnswer, context: ChannelHandlerContext) {
        counters.answeredWarm()
        warmInFlight += 1
        if answer.close { closing = true }
        writeRegion(context: context, head: answer.head, fd: answer.fd, range: answer.range, headPromise: nil)
        let ended = context.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        ended.futureResult.whenComplete { _ in
            let (handler, context) = bound.value
            handler.warmInFlight -= 1
            if answer.close { context.close(promise: nil) }
        }
        forward(.end(nil), context: context, promise: ended)
        context.flush()
    }

    // MARK: Responses from the router

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .end:
            if passedUp > 0 { passedUp -= 1 }
            forward(.end(nil), context: context, promise: promise)
        case .head(var head) where head.headers.contains(name: Self.header):
            let value = head.headers.first(name: Self.header)!
            head.headers.remove(name: Self.header)
            let fields = value.split(separator: " ")
            guard fields.count == 3, isSHA256Hex(String(fields[0])), let first = Int(fields[1]), let last = Int(fields[2]), first <= last else {
                logger.error("malformed \(Self.header) '\(value)'")
                context.close(promise: nil)
                promise?.fail(ChannelError.ioOnClosedChannel)
                return
            }
            let path = store.chunkPath(String(fields[0]))
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                // Removed between the route's check and now: the head is not sent, the client sees
                // the connection close and retries.
                logger.error("cannot open \(path) to send it: \(String(cString: strerror(errno)))")
                context.close(promise: nil)
                promise?.fail(ChannelError.ioOnClosedChannel)
                return
            }
            writeRegion(context: context, head: head, fd: fd, range: ByteRange(first: first, last: last), headPromise: promise)
        case let part:
            forward(part, context: context, promise: promise)
        }
    }

    /// Writes `part` on, counting it until it is sent.
    private func forward(_ part: HTTPServerResponsePart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        writesInFlight += 1
        let written = promise ?? context.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in
            let (handler, context) = bound.value
            handler.writesInFlight -= 1
            if handler.writesInFlight == 0, let close = handler.pendingClose {
                handler.pendingClose = nil
                close.deadline.cancel()
                context.close(promise: close.promise)
            }
        }
        context.write(wrapOutboundOut(part), promise: written)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, writesInFlight > 0 else {
            context.close(mode: mode, promise: promise)
            return
        }
        closing = true
        if let waiting = pendingClose {
            // Closed again while waiting: one close answers both.
            if let promise {
                if let first = waiting.promise { first.futureResult.cascade(to: promise) } else { pendingClose?.promise = promise }
            }
            return
        }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let deadline = context.eventLoop.scheduleTask(in: .seconds(Self.drainSeconds)) {
            let (handler, context) = bound.value
            guard let close = handler.pendingClose else { return }
            handler.pendingClose = nil
            context.close(promise: close.promise)
        }
        pendingClose = (promise, deadline)
        context.flush()
    }

    /// Writes `head`, then bytes `range` of open file `fd` (closed once sent) as one file region.
    /// Corked from the head to the last byte, as nginx's tcp_nopush: uncorked, sendfile's pieces
    /// left as short segments (39 KB on average against 65 KB over loopback) and one connection
    /// carried 1.5 GB/s where corked it carries 2.7, as nginx does. Uncorking sends the last
    /// partial segment at once, once no pipelined response is queued behind.
    private func writeRegion(context: ChannelHandlerContext, head: HTTPResponseHead, fd: Int32, range: ByteRange,
                             headPromise: EventLoopPromise<Void>?) {
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        let channel = context.channel
        if regionsInFlight == 0 { try? channel.syncOptions?.setOption(Self.cork, value: 1) }
        regionsInFlight += 1
        forward(.head(head), context: context, promise: headPromise)
        let sent = context.eventLoop.makePromise(of: Void.self)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)  // completions run on this loop too
        sent.futureResult.whenComplete { _ in
            try? handle.close()
            handler.value.regionsInFlight -= 1
            if handler.value.regionsInFlight == 0 { try? channel.syncOptions?.setOption(Self.cork, value: 0) }
        }
        forward(.body(.fileRegion(FileRegion(fileHandle: handle, readerIndex: range.first, endIndex: range.last + 1))), context: context, promise: sent)
    }
}

/// What a store server has done (the tests read it).
public final class StoreServerCounters: Sendable {
    private let warm = LockedBox(0)

    public init() {}

    /// Chunk GETs answered below the router (`SendfileHandler`).
    public var warmAnswers: Int { warm.value }

    func answeredWarm() { warm.withValue { $0 += 1 } }
}

/// An HTTP Date header's value (RFC 9110 §5.6.7, IMF-fixdate), formatted once a second.
struct HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    private var second = -1
    private var text = ""

    mutating func now() -> String {
        var clock = time(nil)
        guard Int(clock) != second else { return text }
        var parts = tm()
        gmtime_r(&clock, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        text = "\(Self.days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(Self.months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
        second = Int(clock)
        return text
    }
}
