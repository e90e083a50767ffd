import Glibc
import HTTPTypes
import HydraFormat
import HydraSystem
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 channel with one more handler below the HTTP types codec: a route can
/// answer "send these bytes of this chunk file" (`SendfileHandler.header`) and the body goes
/// from the page cache to the socket by sendfile, with no copy through user space — the way
/// nginx serves static files. Plain HTTP only: TLS encrypts in user space, so a TLS server keeps
/// the read-then-write path.
struct SendfileHTTP1Channel: HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let store: StoreDirectory

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture(withResultOf: {
            // As HTTP1Channel does (pipelining is handled by the async channel; errors and header
            // validation by Hummingbird), plus the sendfile handler under the codec.
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false)
            try channel.pipeline.syncOperations.addHandler(SendfileHandler(store: store, logger: logger))
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        })
    }

    /// The connection's requests are handled on its own event loop (`EventLoopExecutor`), not on
    /// Swift's global executor: by default each request's handler ran on a pool thread, woken
    /// from the loop, and each response part went back to the loop through its eventfd. Same
    /// run, curl fetching SmolLM2's 33 chunks over one connection 5 times: 0.92 → 0.84 s of server
    /// CPU, 1936 → 316 context switches (nginx: 0.83–0.85 s, 250–300). The routes make only short
    /// system calls on the loop, as nginx does (open, fstat, mincore, a manifest's small read);
    /// chunk bytes leave by sendfile or are awaited from the io_uring reader's threads.
    func handle(value asyncChannel: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopExecutor(asyncChannel.channel.eventLoop)) {
            await handleHTTP(asyncChannel: asyncChannel, logger: logger)
        }
    }
}

/// Runs the jobs of tasks that prefer it on one event loop, in the order they are enqueued.
final class EventLoopExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Turns a response head carrying `header` ("HASH FIRST LAST", set by the chunk route, never
/// sent) into that head followed by the chunk file's bytes FIRST…LAST as one file region. The
/// route's own body is empty; its end part follows the region.
final class SendfileHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    static let header = "x-hydra-sendfile"
    /// TCP_CORK: while set, only full segments leave (NIO turns Nagle off on every socket).
    static let cork = ChannelOptions.tcpOption(NIOBSDSocket.Option(rawValue: TCP_CORK))

    let store: StoreDirectory
    let logger: Logger
    /// File regions written and not yet sent: pipelined responses queue behind each other, and
    /// the socket stays corked until the last one is out.
    private var regionsInFlight = 0

    init(store: StoreDirectory, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// The header's value for `first…last` of chunk `hash`.
    static func value(hash: String, first: Int, last: Int) -> String { "\(hash) \(first) \(last)" }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = unwrapOutboundIn(data), let value = head.headers.first(name: Self.header) else {
            context.write(data, promise: promise)
            return
        }
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
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
        // Corked from the head to the last byte, as nginx's tcp_nopush: uncorked, sendfile's
        // pieces left as short segments (39 KB on average against 65 KB over loopback) and one
        // connection carried 1.5 GB/s where corked it carries 2.7, as nginx does. Uncorking
        // sends the last partial segment at once, once no pipelined response is queued behind.
        let channel = context.channel
        if regionsInFlight == 0 { try? channel.syncOptions?.setOption(Self.cork, value: 1) }
        regionsInFlight += 1
        context.write(wrapOutboundOut(.head(head)), promise: promise)
        let sent = context.eventLoop.makePromise(of: Void.self)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)  // completions run on this loop too
        sent.futureResult.whenComplete { _ in
            try? handle.close()
            handler.value.regionsInFlight -= 1
            if handler.value.regionsInFlight == 0 { try? channel.syncOptions?.setOption(Self.cork, value: 0) }
        }
        context.write(wrapOutboundOut(.body(.fileRegion(FileRegion(fileHandle: handle, readerIndex: first, endIndex: last + 1)))),
                      promise: sent)
    }
}
