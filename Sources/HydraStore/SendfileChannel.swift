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

/// Hummingbird's HTTP/1.1 channel with one more handler below the HTTP types codec
/// (`SendfileHandler`). With `sendsFiles` it answers warm chunk GETs itself, and a route can
/// answer "send these bytes of this chunk file"; either way the body goes from the page cache to
/// the socket by sendfile, with no copy through user space — the way nginx serves static files.
/// Plain HTTP only: TLS encrypts in user space, so a TLS server (and one with sendfile off)
/// keeps the read-then-write path, and the handler only makes closes wait for what is being sent.
struct SendfileHTTP1Channel: HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let store: StoreDirectory
    let sendsFiles: Bool
    let token: String?
    let serverName: String
    let counters: StoreServerCounters

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture(withResultOf: {
            // As HTTP1Channel does (pipelining is handled by the async channel; errors and header
            // validation by Hummingbird), plus the sendfile handler under the codec.
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false)
            try channel.pipeline.syncOperations.addHandler(
                SendfileHandler(store: store, answersWarm: sendsFiles, token: token, serverName: serverName, counters: counters, logger: logger))
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
