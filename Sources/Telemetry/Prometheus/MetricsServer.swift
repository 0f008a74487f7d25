import FlyingFox
import Foundation

/// Serves `GET /metrics` in the Prometheus text format on `coordinator.metrics_bind`.
public final class MetricsServer: Sendable {
    private let server: HTTPServer
    private let task: Task<Void, any Error>

    /// `bind` is `tcp://HOST:PORT` (port 0 picks a free one); answers with `metrics.exposition()`.
    public init(bind: String, metrics: RunMetrics) async throws {
        guard let (host, port) = Self.parse(bind) else {
            throw MetricsServerError(message: "coordinator.metrics_bind: \(bind) is not tcp://HOST:PORT")
        }
        let server = HTTPServer(address: try .inet(ip4: host, port: port), logger: .disabled)
        await server.appendRoute("GET /metrics") { _ in
            HTTPResponse(
                statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: Data(await metrics.scrape()))
        }
        self.server = server
        task = Task { try await server.run() }
        try await server.waitUntilListening(timeout: 5)
    }

    /// The bound address, `tcp://HOST:PORT`.
    public var address: String {
        get async {
            guard case .ip4(let host, let port) = await server.listeningAddress else { return "" }
            return "tcp://\(host):\(port)"
        }
    }

    /// Closes the listener and ends the server at once (a graceful stop would wait for the
    /// keep-alive connections scrapers hold open).
    public func stop() async {
        await server.stop(timeout: 0)
        task.cancel()
    }

    static func parse(_ bind: String) -> (String, UInt16)? {
        guard bind.hasPrefix("tcp://"), let colon = bind.lastIndex(of: ":") else { return nil }
        let host = String(bind[bind.index(bind.startIndex, offsetBy: 6)..<colon])
        guard !host.isEmpty, let port = UInt16(bind[bind.index(after: colon)...]) else { return nil }
        return (host == "*" ? "0.0.0.0" : host, port)
    }
}

public struct MetricsServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
